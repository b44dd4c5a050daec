//! One bounded JSON POST for the reporters (Slack, Discord, GitHub): a short timeout, one retry
//! on 5xx or a refused connection, `429 Retry-After` honoured once when it is short, and error
//! text that never carries the URL or a token (webhook URLs are secrets). Slack and Discord
//! post through [`Http::post`]; GitHub goes through octocrab on the same client and the same
//! retry decision ([`Http::with_retry`], `report/github.rs`).

use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::runner::redact::Redactor;

/// How long and how often a reporter may try. The defaults keep a dead chat service from
/// adding more than a few seconds to a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Limit for one request, connect to last byte.
    pub timeout: Duration,
    /// Pause before the one retry after a 5xx or a refused connection.
    pub retry_delay: Duration,
    /// The longest `Retry-After` honoured; a longer one gives up instead of waiting.
    pub max_retry_after: Duration,
    /// The most one reporter (all its calls together) may take at the start or at the end of
    /// a run; past it the reporter is given up with a warning.
    pub budget: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout: Duration::from_secs(5),
            retry_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
            budget: Duration::from_secs(15),
        }
    }
}

/// What a service answered with a 2xx status.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON, `Value::Null` when empty or not JSON (Discord answers 204).
    pub json: Value,
}

/// A JSON POST to send: `target` names it in warnings ("Slack webhook"), never the URL.
#[derive(Debug, Clone, Copy)]
pub struct Post<'a> {
    pub target: &'a str,
    pub url: &'a str,
    pub bearer: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a Value,
}

/// The shared client for every reporter of a run, with the secrets to scrub from error text.
#[derive(Debug, Clone)]
pub struct Http {
    client: Option<reqwest::Client>,
    policy: Policy,
    redactor: Redactor,
}

/// What one attempt came to, before the retry decision.
pub(crate) enum Attempt {
    Done(Answer),
    Retry { wait: Duration, why: String },
    Fail(String),
}

impl Http {
    /// A client with `policy`; `secrets` (webhook URLs, tokens) are replaced by `***` in any
    /// error text, as a second guard behind never printing URLs at all.
    pub fn new(policy: Policy, secrets: Vec<String>) -> Http {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(concat!("ecs-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok();
        Http {
            client,
            policy,
            redactor: Redactor::new(secrets),
        }
    }

    /// The time limits this client works to.
    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    /// Removes this client's secrets from `text`.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.redactor.text(text)
    }

    /// The reqwest client (timeouts, user agent, rustls) that every reporter shares; `None`
    /// when it could not be set up.
    pub(crate) fn client(&self) -> Option<&reqwest::Client> {
        self.client.as_ref()
    }

    /// An error for `target` with this client's secrets scrubbed from `problem`.
    pub(crate) fn failure(&self, target: &str, problem: &str) -> Error {
        Error::Notify {
            target: target.to_string(),
            problem: self.redact(problem),
        }
    }

    /// Sends `post`, retrying once when the service asks for it or is briefly down.
    pub(crate) async fn post(&self, post: Post<'_>) -> Result<Answer, Error> {
        let Some(client) = &self.client else {
            return Err(self.failure(post.target, "the HTTP client could not be set up (TLS)"));
        };
        self.with_retry(post.target, || self.attempt(client, post))
            .await
    }

    /// Runs `attempt`, and once more when it asks for a retry (after the wait it names): the
    /// one retry policy of every reporter, whatever client sends the request.
    pub(crate) async fn with_retry<F, Fut>(&self, target: &str, attempt: F) -> Result<Answer, Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Attempt>,
    {
        let fail = |problem: String| self.failure(target, &problem);
        match attempt().await {
            Attempt::Done(a) => Ok(a),
            Attempt::Fail(why) => Err(fail(why)),
            Attempt::Retry { wait, why } => {
                tokio::time::sleep(wait).await;
                match attempt().await {
                    Attempt::Done(a) => Ok(a),
                    Attempt::Fail(again) | Attempt::Retry { why: again, .. } if again == why => {
                        Err(fail(format!("{why}; retried once with the same result")))
                    }
                    Attempt::Fail(again) | Attempt::Retry { why: again, .. } => {
                        Err(fail(format!("{why}; retried once: {again}")))
                    }
                }
            }
        }
    }

    async fn attempt(&self, client: &reqwest::Client, post: Post<'_>) -> Attempt {
        let mut req = client.post(post.url).json(post.body);
        if let Some(token) = post.bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in post.headers {
            req = req.header(*k, *v);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_failure(&e),
        };
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return self.transport_failure(&e),
        };
        self.classify(status, retry_after, &body)
    }

    /// What an HTTP answer means under this client's policy (see [`classify`]).
    pub(crate) fn classify(&self, status: u16, retry_after: Option<u64>, body: &[u8]) -> Attempt {
        classify(status, retry_after, body, &self.policy)
    }

    /// A request that got no HTTP answer: a refused connection is worth the one retry, a
    /// timeout or a broken answer is not.
    pub(crate) fn transport_failure(&self, e: &reqwest::Error) -> Attempt {
        let why = describe_reqwest(e, self.policy.timeout);
        if e.is_connect() {
            Attempt::Retry {
                wait: self.policy.retry_delay,
                why,
            }
        } else {
            Attempt::Fail(why)
        }
    }
}

/// An answer's `Retry-After`, in whole seconds (see [`retry_after_seconds`]).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after_seconds)
}

/// `Retry-After` in whole seconds, rounded up: `2`, or `1.5` as Discord sometimes sends. An
/// HTTP date (rare from these services) is not read; the caller then waits one second.
fn retry_after_seconds(value: &str) -> Option<u64> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| secs.ceil() as u64)
}

/// Decides what an HTTP answer means: done, worth one retry, or a failure to report.
fn classify(status: u16, retry_after: Option<u64>, body: &[u8], policy: &Policy) -> Attempt {
    let text = snippet(body);
    match status {
        200..=299 => Attempt::Done(Answer {
            status,
            json: serde_json::from_slice(body).unwrap_or(Value::Null),
        }),
        429 => {
            let wait = Duration::from_secs(retry_after.unwrap_or(1));
            if wait <= policy.max_retry_after {
                Attempt::Retry {
                    wait,
                    why: format!("rate limited (HTTP 429, Retry-After {}s)", wait.as_secs()),
                }
            } else {
                Attempt::Fail(format!(
                    "rate limited (HTTP 429, Retry-After {}s, longer than the {}s a reporter waits)",
                    wait.as_secs(),
                    policy.max_retry_after.as_secs()
                ))
            }
        }
        500..=599 => Attempt::Retry {
            wait: policy.retry_delay,
            why: format!("HTTP {status}{text}"),
        },
        _ => Attempt::Fail(format!("HTTP {status}{text}")),
    }
}

/// The start of a response body for an error message (services put the reason there).
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        return String::new();
    }
    let cut: String = s.chars().take(200).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!(": {}{more}", cut.replace(['\n', '\r'], " "))
}

/// A reqwest error as words, without its URL (reqwest prints the URL, which may be a secret).
pub(crate) fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", timeout.as_secs_f32());
    }
    if e.is_builder() {
        return "the URL is not valid (check that the whole URL was pasted)".into();
    }
    let kind = if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read"
    } else {
        "the request failed"
    };
    // Walk the source chain of the URL-less error: hyper and rustls explain the cause.
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", parts.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::default()
    }

    #[test]
    fn a_2xx_answer_is_done_and_parsed_when_json() {
        match classify(200, None, br#"{"ok":true}"#, &policy()) {
            Attempt::Done(a) => assert_eq!(a.json, serde_json::json!({"ok": true})),
            _ => panic!("expected done"),
        }
        match classify(204, None, b"", &policy()) {
            Attempt::Done(a) => assert_eq!(a.json, Value::Null),
            _ => panic!("expected done"),
        }
    }

    #[test]
    fn a_short_retry_after_is_honoured_and_a_long_one_gives_up() {
        match classify(429, Some(2), b"", &policy()) {
            Attempt::Retry { wait, .. } => assert_eq!(wait, Duration::from_secs(2)),
            _ => panic!("expected a retry"),
        }
        match classify(429, Some(60), b"", &policy()) {
            Attempt::Fail(why) => assert!(why.contains("Retry-After 60s"), "{why}"),
            _ => panic!("expected a failure"),
        }
    }

    #[test]
    fn retry_after_is_read_in_whole_seconds_rounded_up() {
        assert_eq!(retry_after_seconds("2"), Some(2));
        assert_eq!(retry_after_seconds(" 1.2 "), Some(2));
        assert_eq!(retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(retry_after_seconds("-1"), None);
    }

    #[test]
    fn a_5xx_is_retried_and_a_4xx_is_not() {
        assert!(matches!(
            classify(503, None, b"down", &policy()),
            Attempt::Retry { .. }
        ));
        match classify(404, None, b"no_service", &policy()) {
            Attempt::Fail(why) => assert_eq!(why, "HTTP 404: no_service"),
            _ => panic!("expected a failure"),
        }
    }

    #[test]
    fn a_webhook_path_alone_is_redacted_too() {
        let http = Http::new(
            policy(),
            vec!["https://discord.test/api/webhooks/123/TOKENabc".into()],
        );
        assert_eq!(
            http.redact("POST /api/webhooks/123/TOKENabc: 404"),
            "POST ***: 404"
        );
        assert_eq!(
            http.redact("at https://discord.test/api/webhooks/123/TOKENabc"),
            "at ***"
        );
    }

    #[tokio::test]
    async fn a_bad_url_fails_without_echoing_it() {
        let url = "https://exa mple.invalid/hooks/SECRET";
        let http = Http::new(policy(), vec![url.into()]);
        let err = http
            .post(Post {
                target: "Slack webhook",
                url,
                bearer: None,
                headers: &[],
                body: &serde_json::json!({}),
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Slack webhook: "), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }
}
