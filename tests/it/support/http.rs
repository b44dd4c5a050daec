//! Recording HTTP servers (wiremock) standing in for Slack, Discord and the GitHub API.

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A wiremock server that answers every request with 200 `{"ok":true}` and records it.
/// The catch-all has the lowest priority, so `Mock`s you mount later (default priority) win.
pub async fn recording_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "ok": true })))
        .with_priority(u8::MAX)
        .mount(&server)
        .await;
    server
}

/// A server that takes `delay` to answer each request (200 `ok`, as a Slack webhook does): a
/// reporter that does not answer in time. Never pooled: a held answer must not reach another
/// test through wiremock's pool of servers.
pub async fn slow_server(delay: std::time::Duration) -> MockServer {
    let server = MockServer::builder().start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("ok")
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

/// JSON bodies of the requests the server received on `path` (method-agnostic), in order.
/// Non-JSON bodies come back as JSON strings so nothing is silently dropped.
pub async fn received_json(server: &MockServer, path: &str) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .expect("request recording is enabled on wiremock servers by default")
        .into_iter()
        .filter(|req| req.url.path() == path)
        .map(|req| {
            serde_json::from_slice(&req.body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&req.body).into_owned())
            })
        })
        .collect()
}
