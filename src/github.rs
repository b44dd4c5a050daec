//! The GitHub REST API, reached through octocrab: its routing under the `github-api-url` base
//! (GitHub Enterprise Server has its own), its bearer auth and headers, on the reporters' shared
//! reqwest client (rustls, the same timeouts) and under their one retry policy.
//!
//! Requests go out through octocrab's raw `_post`/`_get`, not its typed handlers: the answer's
//! status and `Retry-After` decide the retry (the typed handlers keep only a message), and a
//! partial answer (a 202 with a message and no deployment id) is read as what it is, not as a
//! parse error.

use bytes::Bytes;
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde_json::Value;

use crate::error::Error;
use crate::inputs::ReportSettings;
use crate::runner::http::{Attempt, Http, Policy, describe_reqwest, retry_after};

/// The media type and API version GitHub documents for REST calls.
const ACCEPT: &str = "application/vnd.github+json";
const API_VERSION: &str = "2022-11-28";

/// The GitHub deployment environment when `environment` is not given.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// The REST API base of the run: `GITHUB_API_URL` (the runner sets it; GitHub Enterprise Server
/// has its own), else the public API; without a trailing `/`.
pub(crate) fn api_base(settings: &ReportSettings) -> String {
    settings
        .github_api_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("https://api.github.com")
        .trim_end_matches('/')
        .to_string()
}

/// A GitHub REST client for one token and one API base, sharing [`Http`]'s client and policy.
#[derive(Debug, Clone)]
pub struct Api {
    crab: Octocrab,
    http: Http,
}

impl Api {
    /// The client for `api` (`https://api.github.com`, or GHES's `https://HOST/api/v3`) with
    /// `token`. Needs a tokio runtime (octocrab spawns its request buffer). Errors name
    /// `target`, never the token.
    pub fn new(http: &Http, target: &str, api: &str, token: &str) -> Result<Api, Error> {
        let Some(client) = http.client() else {
            return Err(http.failure(target, "the HTTP client could not be set up (TLS)"));
        };
        // octocrab turns the token into a header value with `unwrap`: refuse what a header
        // cannot carry here, so a pasted line break is a warning and never a panic.
        if reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(http.failure(
                target,
                "github-token holds characters an HTTP header cannot carry (a line break?); pass the token alone",
            ));
        }
        let builder = Octocrab::builder().base_uri(api).map_err(|_| {
            http.failure(
                target,
                &format!(
                    "the GitHub API URL {api:?} is not a URL (GITHUB_API_URL, e.g. https://github.example.com/api/v3)"
                ),
            )
        })?;
        let crab = builder
            .personal_token(token.to_string())
            .add_header(reqwest::header::ACCEPT, ACCEPT.to_string())
            .add_header(
                reqwest::header::HeaderName::from_static("x-github-api-version"),
                API_VERSION.to_string(),
            )
            .build_with_reqwest(client.clone())
            .map_err(|e| http.failure(target, &octocrab_words(&e)))?;
        Ok(Api {
            crab,
            http: http.clone(),
        })
    }

    /// The client of a run's `github-token` and API base (`GITHUB_API_URL`), with the default
    /// time limits: for the calls outside the reporters (changed-only, the release notes).
    /// `None` without a token.
    pub(crate) fn for_report(
        settings: &ReportSettings,
        target: &str,
    ) -> Option<Result<Api, Error>> {
        let token = settings.github_token.as_ref()?;
        let http = Http::new(Policy::default(), vec![token.expose().to_string()]);
        Some(Api::new(&http, target, &api_base(settings), token.expose()))
    }

    /// `POST route` (a path such as `/repos/OWNER/REPO/deployments`) with a JSON body; the
    /// answer's JSON (`Value::Null` when empty). `target` names the call in errors.
    pub(crate) async fn post(
        &self,
        target: &str,
        route: &str,
        body: &Value,
    ) -> Result<Value, Error> {
        self.http
            .with_retry(target, || async {
                match self.crab._post(route, Some(body)).await {
                    Ok(resp) => self.answer(resp).await,
                    Err(e) => self.failure(&e),
                }
            })
            .await
            .map(|a| a.json)
    }

    /// `GET route` (path and query); the answer's JSON.
    pub(crate) async fn get(&self, target: &str, route: &str) -> Result<Value, Error> {
        self.http
            .with_retry(target, || async {
                match self.crab._get(route).await {
                    Ok(resp) => self.answer(resp).await,
                    Err(e) => self.failure(&e),
                }
            })
            .await
            .map(|a| a.json)
    }

    /// `GET route`, where a 404 is an answer (`None`: the commit, tag or object is not there)
    /// rather than a failure; any other failure is an error as with [`Api::get`].
    pub(crate) async fn get_found(
        &self,
        target: &str,
        route: &str,
    ) -> Result<Option<Value>, Error> {
        self.http
            .with_retry(target, || async {
                match self.crab._get(route).await {
                    Ok(resp) if resp.status() == http::StatusCode::NOT_FOUND => {
                        Attempt::Done(crate::runner::http::Answer {
                            status: 404,
                            json: Value::Null,
                        })
                    }
                    Ok(resp) => self.answer(resp).await,
                    Err(e) => self.failure(&e),
                }
            })
            .await
            .map(|a| (a.status != 404).then_some(a.json))
    }

    /// GitHub's compare of `base...head` in `repo` (commits and files, `per_page` commits per
    /// page): the one compare call of `changed-only` (its files) and the release notes (its
    /// commits). `None` when GitHub does not know one of the two ends (HTTP 404).
    pub(crate) async fn compare(
        &self,
        repo: &str,
        base: &str,
        head: &str,
        per_page: usize,
    ) -> Result<Option<Value>, Error> {
        self.get_found(
            "GitHub compare",
            &format!("/repos/{repo}/compare/{base}...{head}?per_page={per_page}"),
        )
        .await
    }

    /// An HTTP answer, read whole, through the shared retry decision.
    async fn answer(
        &self,
        resp: http::Response<http_body_util::combinators::BoxBody<Bytes, octocrab::Error>>,
    ) -> Attempt {
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        match resp.into_body().collect().await {
            Ok(body) => self.http.classify(status, retry_after, &body.to_bytes()),
            Err(e) => self.failure(&e),
        }
    }

    /// A request that got no answer: reqwest's own errors keep their retry meaning (a refused
    /// connection is retried, a timeout is not).
    fn failure(&self, e: &octocrab::Error) -> Attempt {
        match reqwest_cause(e) {
            Some(r) => self.http.transport_failure(r),
            None => Attempt::Fail(octocrab_words(e)),
        }
    }
}

/// The reqwest error under an octocrab error: octocrab's request buffer wraps the transport's
/// error (`Service` around `Reqwest`), so the chain is searched.
fn reqwest_cause(e: &octocrab::Error) -> Option<&reqwest::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<reqwest::Error>() {
            return Some(r);
        }
        if let Some(octocrab::Error::Reqwest { source, .. }) = c.downcast_ref::<octocrab::Error>() {
            return Some(source);
        }
        cause = c.source();
    }
    None
}

/// An octocrab error as words: its causes, never its own display (some variants print a
/// backtrace) and never a URL (reqwest's display carries it).
fn octocrab_words(e: &octocrab::Error) -> String {
    if let Some(r) = reqwest_cause(e) {
        return describe_reqwest(r, std::time::Duration::ZERO);
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("the request failed: {}", crate::error::error_chain(cause)),
        None => "the request failed".into(),
    }
}
