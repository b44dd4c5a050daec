//! A scripted ECS (wiremock speaking ECS's JSON protocol) for what moto cannot play: a service
//! deployment that walks its lifecycle stages and waits at a PAUSE hook until
//! ContinueServiceDeployment answers it, and a rolling deployment that ECS marks SUCCESSFUL
//! early while the old tasks still drain. moto 5.2 has no PAUSE hooks, no lifecycle stages and
//! no early success: its service deployments never move (see DESIGN.md, the test bed).
//!
//! Two services in cluster `prod`: `bg` (BLUE_GREEN, a PAUSE hook at POST_TEST_TRAFFIC_SHIFT)
//! and `early` (ROLLING, early success at 80% with DEFERRED cleanup). Times count from start.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012";

/// The service deployment ARN of `service`.
pub fn deployment_arn(service: &str) -> String {
    format!("{PREFIX}:service-deployment/prod/{service}/sd-1")
}

/// The timeline the script plays.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// `bg`: from start to AWAITING_ACTION at POST_TEST_TRAFFIC_SHIFT.
    pub pause_at: Duration,
    /// `bg`: from the answer to SUCCESSFUL (CONTINUE) or ROLLBACK_SUCCESSFUL (ROLLBACK).
    pub after_answer: Duration,
    /// `early`: from start to SUCCESSFUL (80% of the new tasks healthy).
    pub success_at: Duration,
    /// `early`: how long the old tasks drain after SUCCESSFUL (the old deployment stays listed).
    pub drain: Duration,
}

#[derive(Debug)]
struct State {
    start: Instant,
    timeline: Timeline,
    /// The ContinueServiceDeployment answer and when it came.
    answered: Option<(String, Instant)>,
    /// Every call: the operation and its request body.
    calls: Vec<(String, Value)>,
}

/// The running server and its state.
pub struct ScriptedPause {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

impl ScriptedPause {
    /// Starts the script; its clock starts now.
    pub async fn start(timeline: Timeline) -> ScriptedPause {
        let state = Arc::new(Mutex::new(State {
            start: Instant::now(),
            timeline,
            answered: None,
            calls: Vec::new(),
        }));
        let server = MockServer::builder().start().await;
        Mock::given(any())
            .respond_with(Answer(state.clone()))
            .mount(&server)
            .await;
        ScriptedPause { server, state }
    }

    /// Every call's request body for `operation`, in order.
    pub fn bodies(&self, operation: &str) -> Vec<Value> {
        self.state
            .lock()
            .map(|s| {
                s.calls
                    .iter()
                    .filter(|(o, _)| o == operation)
                    .map(|(_, b)| b.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

fn error(code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .insert_header("x-amzn-query-error", format!("{code};Sender").as_str())
        .set_body_json(json!({"__type": code, "message": message}))
}

fn service(name: &str, st: &State) -> Value {
    let config = if name == "bg" {
        json!({
            "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0,
            "lifecycleHooks": [{
                "targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"},
            }],
        })
    } else {
        json!({
            "strategy": "ROLLING", "maximumPercent": 200, "minimumHealthyPercent": 100,
            "earlySuccessCriteria": {
                "enable": true, "healthyPercent": 80, "sourceServiceRevisionCleanup": "DEFERRED",
            },
        })
    };
    let now = epoch(SystemTime::now());
    let t = st.start.elapsed();
    let tl = st.timeline;
    let drained = t >= tl.success_at + tl.drain;
    let mut deployments = vec![json!({
        "id": format!("ecs-svc/{name}-2"), "status": "PRIMARY",
        "taskDefinition": format!("{PREFIX}:task-definition/{name}:2"),
        "desiredCount": 5, "runningCount": if t >= tl.success_at { 4 } else { 1 },
        "pendingCount": 0, "rolloutState": if drained { "COMPLETED" } else { "IN_PROGRESS" },
        "createdAt": now, "updatedAt": now,
    })];
    if !drained {
        // The old revision's tasks, draining (deregistration delay) after SUCCESSFUL.
        deployments.push(json!({
            "id": format!("ecs-svc/{name}-1"), "status": "ACTIVE",
            "taskDefinition": format!("{PREFIX}:task-definition/{name}:1"),
            "desiredCount": 0, "runningCount": 5, "pendingCount": 0,
            "rolloutState": "COMPLETED", "createdAt": now, "updatedAt": now,
        }));
    }
    json!({
        "serviceName": name,
        "serviceArn": format!("{PREFIX}:service/prod/{name}"),
        "clusterArn": format!("{PREFIX}:cluster/prod"),
        "status": "ACTIVE", "desiredCount": 5, "runningCount": 5, "pendingCount": 0,
        "taskDefinition": format!("{PREFIX}:task-definition/{name}:2"),
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": config,
        "currentServiceDeployment": deployment_arn(name),
        "deployments": deployments, "events": [],
    })
}

/// `bg`'s deployment: SCALE_UP, TEST_TRAFFIC_SHIFT, then paused at POST_TEST_TRAFFIC_SHIFT
/// until answered; after CONTINUE production traffic moves and it ends SUCCESSFUL, after
/// ROLLBACK traffic goes back and it ends ROLLBACK_SUCCESSFUL.
fn blue_green(st: &State) -> Value {
    let t = st.start.elapsed();
    let tl = st.timeline;
    let (status, stage, hook) = match &st.answered {
        None if t < tl.pause_at / 2 => ("IN_PROGRESS", "SCALE_UP", None),
        None if t < tl.pause_at => ("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", None),
        None => (
            "IN_PROGRESS",
            "POST_TEST_TRAFFIC_SHIFT",
            Some("AWAITING_ACTION"),
        ),
        Some((action, at)) => {
            let done = at.elapsed() >= tl.after_answer;
            match (action.as_str(), done) {
                ("CONTINUE", false) => {
                    ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", Some("SUCCEEDED"))
                }
                ("CONTINUE", true) => ("SUCCESSFUL", "CLEAN_UP", Some("SUCCEEDED")),
                (_, false) => ("ROLLBACK_IN_PROGRESS", "TEST_TRAFFIC_SHIFT", Some("FAILED")),
                (_, true) => ("ROLLBACK_SUCCESSFUL", "CLEAN_UP", Some("FAILED")),
            }
        }
    };
    let expires = epoch(SystemTime::now()) + 3600.0;
    let mut d = json!({
        "serviceDeploymentArn": deployment_arn("bg"),
        "serviceArn": format!("{PREFIX}:service/prod/bg"),
        "clusterArn": format!("{PREFIX}:cluster/prod"),
        "status": status, "lifecycleStage": stage,
        "targetServiceRevision": {"arn": format!("{PREFIX}:service-revision/prod/bg/2"), "requestedTaskCount": 1, "runningTaskCount": 1, "pendingTaskCount": 0},
    });
    if let Some(h) = hook {
        d["lifecycleHookDetails"] = json!([{
            "hookId": "h-1", "targetType": "PAUSE", "status": h,
            "expiresAt": expires, "timeoutAction": "ROLLBACK",
        }]);
    }
    d
}

/// `early`'s deployment: IN_PROGRESS, then SUCCESSFUL at `success_at` (the old tasks drain
/// after that; DescribeServices still lists them).
fn early(st: &State) -> Value {
    let status = if st.start.elapsed() >= st.timeline.success_at {
        "SUCCESSFUL"
    } else {
        "IN_PROGRESS"
    };
    json!({
        "serviceDeploymentArn": deployment_arn("early"),
        "serviceArn": format!("{PREFIX}:service/prod/early"),
        "clusterArn": format!("{PREFIX}:cluster/prod"),
        "status": status,
    })
}

struct Answer(Arc<Mutex<State>>);

impl Respond for Answer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let operation = req
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_string();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let Ok(mut st) = self.0.lock() else {
            return error("ServerException", "the script's state is poisoned");
        };
        st.calls.push((operation.clone(), body.clone()));
        match operation.as_str() {
            "DescribeServices" => {
                let services: Vec<Value> = body["services"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|n| service(n.rsplit('/').next().unwrap_or(n), &st))
                    .collect();
                ok(json!({"services": services, "failures": []}))
            }
            "DescribeServiceDeployments" => {
                let found: Vec<Value> = body["serviceDeploymentArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| match a.as_str() {
                        Some(a) if a == deployment_arn("bg") => Some(blue_green(&st)),
                        Some(a) if a == deployment_arn("early") => Some(early(&st)),
                        _ => None,
                    })
                    .collect();
                ok(json!({"serviceDeployments": found, "failures": []}))
            }
            "ContinueServiceDeployment" => {
                let paused = st.answered.is_none() && st.start.elapsed() >= st.timeline.pause_at;
                if body["serviceDeploymentArn"] != json!(deployment_arn("bg"))
                    || body["hookId"] != json!("h-1")
                    || !paused
                {
                    // What ECS answers for a hook that is not awaiting action.
                    return error(
                        "InvalidParameterException",
                        "The lifecycle hook is not awaiting action.",
                    );
                }
                let action = body["action"].as_str().unwrap_or_default().to_string();
                st.answered = Some((action, Instant::now()));
                ok(json!({"serviceDeploymentArn": deployment_arn("bg")}))
            }
            other => error(
                "InvalidParameterException",
                &format!("the scripted ECS does not play {other}"),
            ),
        }
    }
}
