//! A scripted ECS (wiremock speaking ECS's JSON protocol) for what moto cannot play: a service
//! deployment that walks its lifecycle stages and waits at a PAUSE hook until
//! ContinueServiceDeployment answers it, and a rolling deployment that ECS marks SUCCESSFUL
//! early while the old tasks still drain. moto 5.2 has no PAUSE hooks, no lifecycle stages and
//! no early success: ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment
//! and ContinueServiceDeployment are not implemented there, and its deployments never move
//! (see DESIGN.md, the test bed, and `bluegreen::moto_takes_the_update_but_does_not_play_...`).
//!
//! Three services in cluster `prod`: `bg` (BLUE_GREEN, a PAUSE hook at
//! [`Timeline::pause_stage`], POST_TEST_TRAFFIC_SHIFT unless told), `nohook` (BLUE_GREEN, no
//! lifecycle hook) and `early` (ROLLING, early success at 80% with DEFERRED cleanup). `bg`
//! starts on `bg:1` with its deployment `sd-0` done; an UpdateService starts `sd-1` and its
//! clock (before any UpdateService, `sd-1` runs on the server's clock, for tests that only
//! describe it). Everything else a deploy reads is played too: the task definitions, the
//! service deployments listed, the stopped tasks (none), StopServiceDeployment (ROLLBACK).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

use super::json_rpc::{self, calls_of, epoch, ok, operation, serve};

const PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012";

/// The service deployment ARN of `service` (for `bg`: the one an UpdateService starts).
pub fn deployment_arn(service: &str) -> String {
    format!("{PREFIX}:service-deployment/prod/{service}/sd-1")
}

/// The service deployment `bg` ran before any UpdateService (done).
pub fn previous_arn(service: &str) -> String {
    format!("{PREFIX}:service-deployment/prod/{service}/sd-0")
}

/// The task definition ARN of `family:revision`.
pub fn td_arn(family: &str, revision: u32) -> String {
    format!("{PREFIX}:task-definition/{family}:{revision}")
}

/// The lifecycle stages ECS walks, in order.
const STAGES: [&str; 11] = ecs_deploy::deploy::bluegreen::progress::LIFECYCLE;

/// The timeline the script plays.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// `bg`: from the start to AWAITING_ACTION at `pause_stage`; the stages from SCALE_UP to
    /// it share this time equally.
    pub pause_at: Duration,
    /// `bg`: from the answer (or a StopServiceDeployment) to SUCCESSFUL (CONTINUE) or
    /// ROLLBACK_SUCCESSFUL (ROLLBACK).
    pub after_answer: Duration,
    /// `early`: from start to SUCCESSFUL (80% of the new tasks healthy).
    pub success_at: Duration,
    /// `early`: how long the old tasks drain after SUCCESSFUL (the old deployment stays listed).
    pub drain: Duration,
    /// `bg`: the stage of its PAUSE hook, one where green takes traffic.
    pub pause_stage: &'static str,
    /// The first this many ContinueServiceDeployment calls answer HTTP 500 (ServerException).
    pub continue_errors: usize,
    /// ContinueServiceDeployment answers AccessDeniedException (a role without
    /// `ecs:ContinueServiceDeployment`).
    pub continue_denied: bool,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            pause_at: Duration::from_millis(300),
            after_answer: Duration::from_millis(200),
            success_at: Duration::from_millis(300),
            drain: Duration::from_secs(60),
            pause_stage: "POST_TEST_TRAFFIC_SHIFT",
            continue_errors: 0,
            continue_denied: false,
        }
    }
}

#[derive(Debug)]
struct State {
    start: Instant,
    timeline: Timeline,
    /// Whether `bg` was updated (to `bg:2`, starting `sd-1`).
    updated: bool,
    /// The ContinueServiceDeployment answer (or `STOP_ROLLBACK` for a StopServiceDeployment)
    /// and when it came.
    answered: Option<(String, Instant)>,
    /// Every call: the operation, its request body and when it came.
    calls: Vec<(String, Value, Instant)>,
}

/// The running server and its state.
pub struct ScriptedPause {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

impl ScriptedPause {
    /// Starts the script; its clock starts now (and again at `bg`'s UpdateService).
    pub async fn start(timeline: Timeline) -> ScriptedPause {
        let state = Arc::new(Mutex::new(State {
            start: Instant::now(),
            timeline,
            updated: false,
            answered: None,
            calls: Vec::new(),
        }));
        let server = serve(Answer(state.clone())).await;
        ScriptedPause { server, state }
    }

    /// Every call's request body for `operation`, in order.
    pub fn bodies(&self, operation: &str) -> Vec<Value> {
        self.calls_of(operation)
            .into_iter()
            .map(|(b, _)| b)
            .collect()
    }

    /// Every call of `operation`: its body and when it came.
    pub fn calls_of(&self, operation: &str) -> Vec<(Value, Instant)> {
        self.state
            .lock()
            .map(|s| calls_of(&s.calls, operation))
            .unwrap_or_default()
    }

    /// Every operation called, in order.
    pub fn operations(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.calls.iter().map(|(o, _, _)| o.clone()).collect())
            .unwrap_or_default()
    }

    /// When `bg`'s hook began AWAITING_ACTION (its clock's start plus `pause_at`).
    pub fn paused_since(&self) -> Option<Instant> {
        self.state
            .lock()
            .ok()
            .map(|s| s.start + s.timeline.pause_at)
    }
}

/// An ECS error: the JSON protocol's `__type` and message, with the query-compatible error
/// header ECS sends beside it.
fn error(code: &str, message: &str) -> ResponseTemplate {
    json_rpc::error(code, message)
        .insert_header("x-amzn-query-error", format!("{code};Sender").as_str())
}

fn ecs_deployment(name: &str, status: &str, revision: u32, state: &str) -> Value {
    let now = epoch(SystemTime::now());
    json!({
        "id": format!("ecs-svc/{name}-{revision}"), "status": status,
        "taskDefinition": td_arn(name, revision),
        "desiredCount": 2, "runningCount": 2, "pendingCount": 0,
        "rolloutState": state, "createdAt": now, "updatedAt": now,
    })
}

fn blue_green_config(name: &str, st: &State) -> Value {
    let mut config = json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0});
    if name == "bg" {
        config["lifecycleHooks"] = json!([{
            "targetType": "PAUSE", "lifecycleStages": [st.timeline.pause_stage],
            "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"},
        }]);
    }
    config
}

fn service(name: &str, st: &State) -> Value {
    if name == "early" {
        return early_service(st);
    }
    // `bg` after its UpdateService: `sd-1` of bg:2, both revisions listed until it ends.
    let (current, revision, deployments) = if name == "bg" && st.updated {
        match blue_green_status(st) {
            "SUCCESSFUL" => (1, 2, vec![ecs_deployment(name, "PRIMARY", 2, "COMPLETED")]),
            "ROLLBACK_SUCCESSFUL" => (1, 1, vec![ecs_deployment(name, "PRIMARY", 1, "COMPLETED")]),
            _ => (
                1,
                2,
                vec![
                    ecs_deployment(name, "PRIMARY", 2, "IN_PROGRESS"),
                    ecs_deployment(name, "ACTIVE", 1, "COMPLETED"),
                ],
            ),
        }
    } else {
        (0, 1, vec![ecs_deployment(name, "PRIMARY", 1, "COMPLETED")])
    };
    let current = if current == 1 {
        deployment_arn(name)
    } else {
        previous_arn(name)
    };
    json!({
        "serviceName": name,
        "serviceArn": format!("{PREFIX}:service/prod/{name}"),
        "clusterArn": format!("{PREFIX}:cluster/prod"),
        "status": "ACTIVE", "desiredCount": 2, "runningCount": 2, "pendingCount": 0,
        "taskDefinition": td_arn(name, revision),
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": blue_green_config(name, st),
        "currentServiceDeployment": current,
        "deployments": deployments, "events": [],
    })
}

fn early_service(st: &State) -> Value {
    let name = "early";
    let config = json!({
        "strategy": "ROLLING", "maximumPercent": 200, "minimumHealthyPercent": 100,
        "earlySuccessCriteria": {
            "enable": true, "healthyPercent": 80, "sourceServiceRevisionCleanup": "DEFERRED",
        },
    });
    let now = epoch(SystemTime::now());
    let t = st.start.elapsed();
    let tl = st.timeline;
    let drained = t >= tl.success_at + tl.drain;
    let mut deployments = vec![json!({
        "id": format!("ecs-svc/{name}-2"), "status": "PRIMARY",
        "taskDefinition": td_arn(name, 2),
        "desiredCount": 5, "runningCount": if t >= tl.success_at { 4 } else { 1 },
        "pendingCount": 0, "rolloutState": if drained { "COMPLETED" } else { "IN_PROGRESS" },
        "createdAt": now, "updatedAt": now,
    })];
    if !drained {
        // The old revision's tasks, draining (deregistration delay) after SUCCESSFUL.
        deployments.push(json!({
            "id": format!("ecs-svc/{name}-1"), "status": "ACTIVE",
            "taskDefinition": td_arn(name, 1),
            "desiredCount": 0, "runningCount": 5, "pendingCount": 0,
            "rolloutState": "COMPLETED", "createdAt": now, "updatedAt": now,
        }));
    }
    json!({
        "serviceName": name,
        "serviceArn": format!("{PREFIX}:service/prod/{name}"),
        "clusterArn": format!("{PREFIX}:cluster/prod"),
        "status": "ACTIVE", "desiredCount": 5, "runningCount": 5, "pendingCount": 0,
        "taskDefinition": td_arn(name, 2),
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": config,
        "currentServiceDeployment": deployment_arn(name),
        "deployments": deployments, "events": [],
    })
}

/// Where `bg`'s deployment is: status, stage, the hook's status, green's production weight.
fn blue_green_walk(st: &State) -> (&'static str, &'static str, Option<&'static str>, f64) {
    let t = st.start.elapsed();
    let tl = st.timeline;
    let from = STAGES.iter().position(|s| *s == "SCALE_UP").unwrap_or(0);
    let pause = STAGES
        .iter()
        .position(|s| *s == tl.pause_stage)
        .unwrap_or(5)
        .max(from);
    let weight = |i: usize| {
        if i > STAGES
            .iter()
            .position(|s| *s == "PRODUCTION_TRAFFIC_SHIFT")
            .unwrap_or(7)
        {
            100.0
        } else {
            0.0
        }
    };
    match &st.answered {
        None if t < tl.pause_at => {
            // The stages before the pause share its time.
            let steps = (pause - from) as u32;
            let each = tl.pause_at / steps.max(1);
            let i = from + usize::try_from(t.as_nanos() / each.as_nanos().max(1)).unwrap_or(0);
            let i = i.min(pause.saturating_sub(1)).max(from);
            ("IN_PROGRESS", STAGES[i], None, weight(i))
        }
        None => (
            "IN_PROGRESS",
            STAGES[pause],
            Some("AWAITING_ACTION"),
            weight(pause),
        ),
        Some((action, at)) => {
            let done = at.elapsed() >= tl.after_answer;
            let next = (pause + 1).min(STAGES.len() - 1);
            match (action.as_str(), done) {
                ("CONTINUE", false) => {
                    ("IN_PROGRESS", STAGES[next], Some("SUCCEEDED"), weight(next))
                }
                ("CONTINUE", true) => ("SUCCESSFUL", "CLEAN_UP", Some("SUCCEEDED"), 100.0),
                ("ROLLBACK", false) => (
                    "ROLLBACK_IN_PROGRESS",
                    "TEST_TRAFFIC_SHIFT",
                    Some("FAILED"),
                    0.0,
                ),
                ("ROLLBACK", true) => ("ROLLBACK_SUCCESSFUL", "CLEAN_UP", Some("FAILED"), 0.0),
                // StopServiceDeployment (ROLLBACK): what the hook says then is not scripted.
                (_, false) => ("ROLLBACK_IN_PROGRESS", "TEST_TRAFFIC_SHIFT", None, 0.0),
                (_, true) => ("ROLLBACK_SUCCESSFUL", "CLEAN_UP", None, 0.0),
            }
        }
    }
}

fn blue_green_status(st: &State) -> &'static str {
    blue_green_walk(st).0
}

/// `bg`'s deployment: SCALE_UP and the stages after it, then paused at the hook's stage until
/// answered; after CONTINUE it moves on and ends SUCCESSFUL, after ROLLBACK (or a
/// StopServiceDeployment) traffic goes back and it ends ROLLBACK_SUCCESSFUL.
fn blue_green(st: &State) -> Value {
    let (status, stage, hook, weight) = blue_green_walk(st);
    let expires = epoch(SystemTime::now()) + 3600.0;
    let mut d = json!({
        "serviceDeploymentArn": deployment_arn("bg"),
        "serviceArn": format!("{PREFIX}:service/prod/bg"),
        "clusterArn": format!("{PREFIX}:cluster/prod"),
        "status": status, "lifecycleStage": stage,
        "targetServiceRevision": {
            "arn": format!("{PREFIX}:service-revision/prod/bg/2"),
            "requestedTaskCount": 2, "runningTaskCount": 2, "pendingTaskCount": 0,
            "requestedProductionTrafficWeight": weight,
        },
        "sourceServiceRevisions": [{
            "arn": format!("{PREFIX}:service-revision/prod/bg/1"),
            "requestedTaskCount": 2, "runningTaskCount": 2, "pendingTaskCount": 0,
            "requestedProductionTrafficWeight": 100.0 - weight,
        }],
        "deploymentConfiguration": blue_green_config("bg", st),
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

fn task_definition(family: &str, revision: u32) -> Value {
    json!({
        "taskDefinitionArn": td_arn(family, revision), "family": family,
        "revision": revision, "status": "ACTIVE", "networkMode": "bridge",
        "containerDefinitions": [{
            "name": family, "image": format!("registry.example.com/{family}:v1.0.0"),
            "essential": true, "memory": 128,
            "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
        }],
    })
}

struct Answer(Arc<Mutex<State>>);

impl Respond for Answer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let operation = operation(req);
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let Ok(mut st) = self.0.lock() else {
            return error("ServerException", "the script's state is poisoned");
        };
        st.calls
            .push((operation.clone(), body.clone(), Instant::now()));
        let name_of = |v: &Value| {
            v.as_str()
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
                .unwrap_or_default()
        };
        match operation.as_str() {
            "DescribeServices" => {
                let services: Vec<Value> = body["services"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| service(&name_of(n), &st))
                    .collect();
                ok(json!({"services": services, "failures": []}))
            }
            "DescribeTaskDefinition" => {
                let (family, revision) = body["taskDefinition"]
                    .as_str()
                    .and_then(|a| a.rsplit('/').next())
                    .and_then(|fr| fr.split_once(':'))
                    .map(|(f, r)| (f.to_string(), r.parse().unwrap_or(1)))
                    .unwrap_or_default();
                ok(json!({"taskDefinition": task_definition(&family, revision)}))
            }
            "RegisterTaskDefinition" => {
                let family = body["family"].as_str().unwrap_or_default();
                let mut td = body.clone();
                td["taskDefinitionArn"] = json!(td_arn(family, 2));
                td["revision"] = json!(2);
                td["status"] = json!("ACTIVE");
                ok(json!({"taskDefinition": td}))
            }
            "UpdateService" => {
                let name = name_of(&body["service"]);
                if name != "bg" {
                    return error(
                        "InvalidParameterException",
                        &format!("the scripted ECS updates bg only, not {name}"),
                    );
                }
                // A new service deployment: its own clock.
                st.updated = true;
                st.start = Instant::now();
                st.answered = None;
                ok(json!({"service": service(&name, &st)}))
            }
            "ListServiceDeployments" => {
                let name = name_of(&body["service"]);
                let mut briefs = vec![json!({
                    "serviceDeploymentArn": previous_arn(&name),
                    "targetServiceRevisionArn": format!("{PREFIX}:service-revision/prod/{name}/1"),
                    "status": "SUCCESSFUL",
                })];
                if name == "bg" && st.updated {
                    briefs.push(json!({
                        "serviceDeploymentArn": deployment_arn("bg"),
                        "targetServiceRevisionArn": format!("{PREFIX}:service-revision/prod/bg/2"),
                        "status": blue_green_status(&st),
                        "createdAt": epoch(SystemTime::now()),
                    }));
                }
                ok(json!({"serviceDeployments": briefs}))
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
            // No task of the new revision stops in this script.
            "ListTasks" => ok(json!({"taskArns": []})),
            "ContinueServiceDeployment" => {
                let tries = st.calls.iter().filter(|(o, _, _)| o == &operation).count();
                if tries <= st.timeline.continue_errors {
                    return ResponseTemplate::new(500)
                        .insert_header("content-type", "application/x-amz-json-1.1")
                        .set_body_json(
                            json!({"__type": "ServerException", "message": "internal error"}),
                        );
                }
                if st.timeline.continue_denied {
                    return error(
                        "AccessDeniedException",
                        "User is not authorized to perform: ecs:ContinueServiceDeployment",
                    );
                }
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
            "StopServiceDeployment" => {
                let running =
                    !matches!(blue_green_status(&st), "SUCCESSFUL" | "ROLLBACK_SUCCESSFUL");
                if body["serviceDeploymentArn"] != json!(deployment_arn("bg")) || !running {
                    return error(
                        "ConflictException",
                        "The service deployment is in a state that cannot be stopped.",
                    );
                }
                st.answered = Some(("STOP_ROLLBACK".into(), Instant::now()));
                ok(json!({"serviceDeploymentArn": deployment_arn("bg")}))
            }
            other => error(
                "InvalidParameterException",
                &format!("the scripted ECS does not play {other}"),
            ),
        }
    }
}
