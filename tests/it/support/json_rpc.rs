//! What a scripted AWS service speaking the JSON 1.x protocol needs from every answer: the
//! operation a request names (`x-amz-target: Service_20141006.Operation`), a 200 with a JSON
//! body, an error named by `__type`, and timestamps as epoch seconds.

use std::time::{Instant, SystemTime};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A fresh server (never pooled: a script's state must not reach another test) whose every
/// request `script` answers.
pub async fn serve(script: impl Respond + 'static) -> MockServer {
    let server = MockServer::builder().start().await;
    Mock::given(any()).respond_with(script).mount(&server).await;
    server
}

/// The operation `req` calls: the part of `x-amz-target` after the last dot.
pub fn operation(req: &Request) -> String {
    req.headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_string()
}

/// The calls of `operation` in a script's log of (operation, request body, when it came): each
/// one's body and when it came, in order.
pub fn calls_of(log: &[(String, Value, Instant)], operation: &str) -> Vec<(Value, Instant)> {
    log.iter()
        .filter(|(o, _, _)| o == operation)
        .map(|(_, body, at)| (body.clone(), *at))
        .collect()
}

/// A timestamp as the JSON protocols send it: seconds since the epoch.
pub fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// HTTP 200 with `body`.
pub fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

/// HTTP 400 with the error `code` (`__type`) and `message`.
pub fn error(code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(json!({"__type": code, "message": message}))
}
