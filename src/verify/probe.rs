//! The gate's HTTP probes: GET the verify URL `verify-requests` times, one after another, and
//! record each answer. What is never done: follow a redirect to another host, send a credential
//! (no Authorization header, no cookies: this client keeps no cookie store, and userinfo is
//! taken out of the URL before reqwest could turn it into basic auth), or send a Referer.
//!
//! Its own reqwest client rather than the reporters' (`runner::http`): that one POSTs JSON with
//! a retry policy and follows redirects anywhere, where a probe must GET once, never retry (a
//! retry would hide the failure it exists to count) and stay on the URL's host.

use std::time::Duration;

use reqwest::Url;
use reqwest::redirect::{Attempt, Policy};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Pace;
use crate::outcome::{Probe, ProbeAnswer};

/// Same-host redirects followed per probe, as browsers and curl bound them.
const MAX_REDIRECTS: usize = 10;

/// The probing client, with the time limit of its [`Pace`].
#[derive(Debug, Clone)]
pub struct Prober {
    /// `None` when TLS could not be set up: every probe then fails, saying so.
    client: Option<reqwest::Client>,
    pace: Pace,
}

/// The URL to GET: `raw` parsed, http or https with a host, without userinfo or fragment.
/// `verify-url` was checked by the inputs; an override (the test listener) is checked here.
pub(crate) fn target(raw: &str) -> Result<Url, String> {
    let mut url = Url::parse(raw).map_err(|e| format!("the verify URL is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("the verify URL must be http:// or https:// with a host".into());
    }
    // Cannot fail for an http(s) URL with a host (checked just above).
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    Ok(url)
}

/// Follows a redirect only while it stays on the first URL's host (any port or scheme of that
/// host), at most [`MAX_REDIRECTS`] times; a redirect elsewhere is not followed, and its 3xx
/// answer is what the probe records.
fn same_host_only(attempt: Attempt) -> reqwest::redirect::Action {
    let origin = attempt.previous().first().and_then(Url::host_str);
    if attempt.previous().len() > MAX_REDIRECTS {
        attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
    } else if origin.is_some() && attempt.url().host_str() == origin {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

impl Prober {
    /// A client with `pace`'s time limit, the same-host redirect rule and no Referer.
    pub fn new(pace: Pace) -> Prober {
        let client = reqwest::Client::builder()
            .timeout(pace.timeout)
            .connect_timeout(pace.timeout)
            .redirect(Policy::custom(same_host_only))
            .referer(false)
            .user_agent(concat!("ecs-deploy-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok();
        Prober { client, pace }
    }

    /// `requests` probes of `url`, [`Pace::gap`] apart; stops early when the run is cancelled.
    pub async fn run(&self, url: &Url, requests: u32, cancel: &CancellationToken) -> Vec<Probe> {
        let mut probes = Vec::new();
        for i in 0..requests {
            if i > 0 {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(self.pace.gap) => {}
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                p = self.probe(url) => probes.push(p),
            }
        }
        probes
    }

    /// One GET of `url`.
    pub(crate) async fn probe(&self, url: &Url) -> Probe {
        let start = Instant::now();
        let answer = match &self.client {
            None => ProbeAnswer::Error("the HTTP client could not be set up (TLS)".into()),
            Some(client) => match client.get(url.clone()).send().await {
                Ok(resp) => answer_of(url, &resp),
                Err(e) => failure_of(&e, self.pace.timeout),
            },
        };
        Probe {
            answer,
            elapsed: start.elapsed(),
        }
    }
}

/// An HTTP answer: its status, or a redirect to another host (not followed) and that host.
fn answer_of(url: &Url, resp: &reqwest::Response) -> ProbeAnswer {
    let status = resp.status().as_u16();
    let elsewhere = resp
        .status()
        .is_redirection()
        .then(|| resp.headers().get(http::header::LOCATION))
        .flatten()
        .and_then(|l| l.to_str().ok())
        .and_then(|l| resp.url().join(l).ok())
        .and_then(|to| to.host_str().map(str::to_string))
        .filter(|host| Some(host.as_str()) != url.host_str());
    match elsewhere {
        Some(host) => ProbeAnswer::RedirectOffHost { status, host },
        None => ProbeAnswer::Status(status),
    }
}

/// A GET that got no HTTP answer, in words without the URL.
fn failure_of(e: &reqwest::Error, timeout: Duration) -> ProbeAnswer {
    if e.is_timeout() {
        return ProbeAnswer::Timeout;
    }
    let why = crate::runner::http::describe_reqwest(e, timeout);
    if e.is_connect() {
        ProbeAnswer::Refused(why)
    } else {
        ProbeAnswer::Error(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_drops_userinfo_and_fragment_and_keeps_the_rest() {
        let u = target("https://user:secret@app.example:8443/health?deep=1#top").unwrap();
        assert_eq!(u.as_str(), "https://app.example:8443/health?deep=1");
        assert!(target("ftp://app.example/").is_err());
        assert!(target("not a url").is_err());
    }
}
