//! A scripted CodeDeploy over real HTTP (wiremock speaking CodeDeploy's JSON 1.1 protocol,
//! errors named by `__type`) for what moto cannot play: an ECS blue/green deployment that moves
//! production traffic in a canary step, keeps the original task set for the group's termination
//! wait, and ends; and StopDeployment with `autoRollbackEnabled`, after which CodeDeploy reroutes
//! traffic to the original task set in a rollback deployment of its own. moto's CodeDeploy (5.2)
//! sets a deployment `Created` and never moves it, and has no StopDeployment,
//! ListDeploymentTargets or GetDeploymentTarget (DESIGN.md, the test bed).
//!
//! What it plays, as CodeDeploy does for ECS (times count from CreateDeployment):
//! - until `install`: `Created`, then `InProgress` through BeforeInstall … BeforeAllowTraffic,
//!   all traffic on blue;
//! - at `install` (the traffic step): AllowTraffic, `first_share`% on green (100: all at once);
//! - after `interval` more: all traffic on green, AllowTraffic and AfterAllowTraffic done, the
//!   target `Succeeded` and the deployment still `InProgress` for `termination` (the original
//!   task set kept), then `Succeeded`;
//! - StopDeployment on an unfinished deployment answers `Pending`; `stop_lag` later the
//!   deployment is `Stopped` (MANUAL_STOP) and, with `autoRollbackEnabled`, names the rollback
//!   deployment `d-ROLLBACK1` in its `rollbackInfo`, which shows traffic back on blue and
//!   succeeds after `rollback`. On a finished deployment it answers
//!   DeploymentAlreadyCompletedException, as CodeDeploy does.
//!
//! GetDeploymentConfig describes a custom config (the preflight's read); the ECS calls of the
//! path (ListTasks, DescribeTasks) answer empty.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_ecs::types::{DeploymentController, DeploymentControllerType, LoadBalancer, Service};
use ecs_deploy::deploy::Prepared;
use ecs_deploy::deploy::codedeploy::CodeDeployTarget;
use ecs_deploy::deploy::codedeploy::progress::LIFECYCLE_EVENTS;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

use super::json_rpc::{calls_of, epoch, error, ok, operation, serve};

/// Our deployment's id.
pub const OURS: &str = "d-BAKE00001";
/// The rollback deployment CodeDeploy starts when our deployment is stopped with rollback.
pub const ROLLBACK: &str = "d-ROLLBACK1";

/// The timeline the script plays.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// From CreateDeployment to the traffic step (AllowTraffic).
    pub install: Duration,
    /// The share of production traffic the first step moves to green (100: all at once).
    pub first_share: f64,
    /// The canary interval: from the first step to all traffic on green.
    pub interval: Duration,
    /// The group's termination wait: all traffic on green, the original task set kept.
    pub termination: Duration,
    /// From StopDeployment to our deployment `Stopped`.
    pub stop_lag: Duration,
    /// From the rollback deployment's start to its `Succeeded`.
    pub rollback: Duration,
}

#[derive(Debug)]
struct State {
    timeline: Timeline,
    config: String,
    created: Option<Instant>,
    /// When StopDeployment reached an unfinished deployment, and with rollback or not.
    stopped: Option<(Instant, bool)>,
    /// Every call: the operation, its request body and when it came.
    calls: Vec<(String, Value, Instant)>,
}

/// The running server and its state.
pub struct ScriptedCodeDeploy {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

impl ScriptedCodeDeploy {
    /// Starts the script; its deployment runs with deployment config `config`.
    pub async fn start(timeline: Timeline, config: &str) -> ScriptedCodeDeploy {
        let state = Arc::new(Mutex::new(State {
            timeline,
            config: config.to_string(),
            created: None,
            stopped: None,
            calls: Vec::new(),
        }));
        let server = serve(Answer(state.clone())).await;
        ScriptedCodeDeploy { server, state }
    }

    /// Every call's request body for `operation`, in order.
    pub fn bodies(&self, operation: &str) -> Vec<Value> {
        self.calls(operation).into_iter().map(|(b, _)| b).collect()
    }

    /// Every call of `operation`: its body and when it came.
    pub fn calls(&self, operation: &str) -> Vec<(Value, Instant)> {
        self.state
            .lock()
            .map(|s| calls_of(&s.calls, operation))
            .unwrap_or_default()
    }

    /// When the script moved production traffic to green (CreateDeployment + `install`).
    pub fn traffic_step(&self) -> Option<Instant> {
        let s = self.state.lock().ok()?;
        Some(s.created? + s.timeline.install)
    }
}

/// Where a deployment is: its status, its lifecycle events (the first `done` Succeeded, the
/// next one InProgress when `running`), green's share of traffic, and the target's status.
struct Phase {
    status: &'static str,
    done: usize,
    running: bool,
    green: f64,
    target: &'static str,
}

/// Our deployment at `t` after CreateDeployment, had nobody stopped it.
fn unstopped(tl: &Timeline, t: Duration) -> Phase {
    let shifted = tl.install + tl.interval;
    let phase = |status, done, running, green, target| Phase {
        status,
        done,
        running,
        green,
        target,
    };
    if t < tl.install / 3 {
        phase("Created", 0, false, 0.0, "Pending")
    } else if t < tl.install {
        phase("InProgress", 3, true, 0.0, "InProgress")
    } else if t < shifted && tl.first_share < 100.0 {
        phase("InProgress", 6, true, tl.first_share, "InProgress")
    } else if t < shifted + tl.termination {
        // The termination wait: every event done, the target Succeeded, the original task set
        // kept; the deployment's status stays InProgress until the wait ends.
        phase("InProgress", 8, false, 100.0, "Succeeded")
    } else {
        phase("Succeeded", 8, false, 100.0, "Succeeded")
    }
}

impl State {
    fn elapsed(&self, since: Instant) -> Duration {
        Instant::now().saturating_duration_since(since)
    }

    /// Our deployment now: its phase, and whether it was stopped with rollback.
    fn ours(&self) -> Option<(Phase, Option<bool>)> {
        let created = self.created?;
        match self.stopped {
            Some((at, rollback)) => {
                let frozen = unstopped(&self.timeline, at.saturating_duration_since(created));
                if self.elapsed(at) < self.timeline.stop_lag {
                    Some((frozen, None))
                } else {
                    // Stopped: traffic where the rollback (or the stop) left it.
                    let green = if rollback { 0.0 } else { frozen.green };
                    let phase = Phase {
                        status: "Stopped",
                        green,
                        running: false,
                        target: "Failed",
                        ..frozen
                    };
                    Some((phase, Some(rollback)))
                }
            }
            None => Some((unstopped(&self.timeline, self.elapsed(created)), None)),
        }
    }

    /// The rollback deployment, once our stopped deployment names it.
    fn rollback(&self) -> Option<Phase> {
        let (at, true) = self.stopped? else {
            return None;
        };
        let started = at + self.timeline.stop_lag;
        if Instant::now() < started {
            return None;
        }
        let status = if self.elapsed(started) < self.timeline.rollback {
            "InProgress"
        } else {
            "Succeeded"
        };
        Some(Phase {
            status,
            done: 8,
            running: false,
            green: 0.0,
            target: if status == "Succeeded" {
                "Succeeded"
            } else {
                "InProgress"
            },
        })
    }

    fn info(&self, id: &str) -> Option<Value> {
        let created = epoch(SystemTime::now() - self.elapsed(self.created?));
        let (phase, rollback) = if id == OURS {
            self.ours()?
        } else if id == ROLLBACK {
            (self.rollback()?, None)
        } else {
            return None;
        };
        let mut d = json!({
            "deploymentId": id,
            "applicationName": "AppECS-prod-web1",
            "deploymentGroupName": "DgpECS-prod-web1",
            "deploymentConfigName": self.config,
            "status": phase.status,
            "createTime": created,
            "computePlatform": "ECS",
            "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        });
        if phase.status == "Stopped" {
            d["errorInformation"] = json!({
                "code": "MANUAL_STOP",
                "message": "The deployment was stopped by a user request",
            });
        }
        if rollback == Some(true) {
            d["rollbackInfo"] = json!({
                "rollbackDeploymentId": ROLLBACK,
                "rollbackMessage": format!("Deployment rolled back by {ROLLBACK}: the deployment was stopped"),
            });
        }
        if id == ROLLBACK {
            d["rollbackInfo"] = json!({"rollbackTriggeringDeploymentId": OURS});
        }
        Some(d)
    }

    fn target(&self, id: &str) -> Option<Value> {
        let phase = if id == OURS {
            self.ours()?.0
        } else if id == ROLLBACK {
            self.rollback()?
        } else {
            return None;
        };
        let events: Vec<Value> = LIFECYCLE_EVENTS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let status = if i < phase.done {
                    "Succeeded"
                } else if i == phase.done && phase.running {
                    "InProgress"
                } else if phase.status == "Stopped" {
                    "Skipped"
                } else {
                    "Pending"
                };
                json!({"lifecycleEventName": name, "status": status})
            })
            .collect();
        let task_set = |label: &str, id: &str, weight: f64| {
            json!({
                "identifer": id, "desiredCount": 2, "pendingCount": 0, "runningCount": 2,
                "status": if weight > 0.0 { "PRIMARY" } else { "ACTIVE" },
                "trafficWeight": weight, "taskSetLabel": label,
                "targetGroup": {"name": format!("web1-{}", label.to_ascii_lowercase())},
            })
        };
        Some(json!({"deploymentTarget": {
            "deploymentTargetType": "ECSTarget",
            "ecsTarget": {
                "deploymentId": id,
                "targetId": "prod:web1",
                "targetArn": "arn:aws:ecs:us-east-1:123456789012:service/prod/web1",
                "lastUpdatedAt": epoch(SystemTime::now()),
                "lifecycleEvents": events,
                "status": phase.target,
                "taskSetsInfo": [
                    task_set("Blue", "ecs-svc/111", 100.0 - phase.green),
                    task_set("Green", "ecs-svc/222", phase.green),
                ],
            },
        }}))
    }

    fn stop(&mut self, body: &Value) -> ResponseTemplate {
        let ended = matches!(
            self.ours().map(|(p, _)| p.status),
            Some("Succeeded" | "Stopped" | "Failed")
        );
        if self.created.is_none() || body["deploymentId"] != OURS {
            return error(
                "DeploymentDoesNotExistException",
                "The deployment does not exist",
            );
        }
        if ended || self.stopped.is_some() {
            return error(
                "DeploymentAlreadyCompletedException",
                &format!("The deployment {OURS} has already completed."),
            );
        }
        let rollback = body["autoRollbackEnabled"].as_bool().unwrap_or(false);
        self.stopped = Some((Instant::now(), rollback));
        ok(json!({"status": "Pending", "statusMessage": "Stopping the deployment"}))
    }
}

struct Answer(Arc<Mutex<State>>);

impl Respond for Answer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let operation = operation(req);
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let Ok(mut st) = self.0.lock() else {
            return error("InternalFailure", "the script's state is poisoned");
        };
        st.calls
            .push((operation.clone(), body.clone(), Instant::now()));
        let missing = || {
            error(
                "DeploymentDoesNotExistException",
                "The deployment does not exist",
            )
        };
        match operation.as_str() {
            "CreateDeployment" => {
                st.created = Some(Instant::now());
                ok(json!({"deploymentId": OURS}))
            }
            "ListDeployments" => ok(json!({"deployments": []})),
            "GetDeployment" => match body["deploymentId"].as_str().and_then(|id| st.info(id)) {
                Some(d) => ok(json!({"deploymentInfo": d})),
                None => missing(),
            },
            "BatchGetDeployments" => {
                let infos: Vec<Value> = body["deploymentIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| st.info(id.as_str()?))
                    .collect();
                ok(json!({"deploymentsInfo": infos}))
            }
            "ListDeploymentTargets" => match body["deploymentId"].as_str() {
                Some(id) if st.info(id).is_some() => ok(json!({"targetIds": ["prod:web1"]})),
                _ => missing(),
            },
            "GetDeploymentTarget" => {
                match body["deploymentId"].as_str().and_then(|id| st.target(id)) {
                    Some(t) => ok(t),
                    None => missing(),
                }
            }
            "StopDeployment" => st.stop(&body),
            // A custom config: `My…AllAtOnce` moves traffic at once, any other name is a 10%
            // canary of one minute.
            "GetDeploymentConfig" => {
                let name = body["deploymentConfigName"].as_str().unwrap_or_default();
                let routing = if name.ends_with("AllAtOnce") {
                    json!({"type": "AllAtOnce"})
                } else {
                    json!({"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 1}})
                };
                ok(json!({"deploymentConfigInfo": {
                    "deploymentConfigName": name, "computePlatform": "ECS",
                    "trafficRoutingConfig": routing,
                }}))
            }
            "ListTasks" => ok(json!({"taskArns": []})),
            "DescribeTasks" => ok(json!({"tasks": [], "failures": []})),
            other => error(
                "UnknownOperationException",
                &format!("the script does not play {other}"),
            ),
        }
    }
}

/// web1 as the deploy gets it from the preflight: a CodeDeploy blue/green service behind a load
/// balancer (as DescribeServices shows it), task definition `task_definition_arn`, the group
/// with no waits of its own. The scripted CodeDeploy's tests and its benchmark deploy it.
pub fn prepared(task_definition_arn: &str) -> Prepared {
    Prepared {
        cluster: "prod".into(),
        service: "web1".into(),
        live: Service::builder()
            .service_name("web1")
            .cluster_arn("arn:aws:ecs:us-east-1:123456789012:cluster/prod")
            .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/web1:7")
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(DeploymentControllerType::CodeDeploy)
                    .build()
                    .expect("controller"),
            )
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web1-blue/0123456789abcdef")
                    .container_name("web1")
                    .container_port(3000)
                    .build(),
            )
            .build(),
        task_definition_arn: task_definition_arn.into(),
        previous_task_definition_arn: Some(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:7".into(),
        ),
        container: "web1".into(),
        container_port: Some(3000),
        changed: true,
        redeploy: false,
        task_definition: serde_json::json!({
            "family": "web1",
            "containerDefinitions": [
                {"name": "web1", "portMappings": [{"containerPort": 3000}]},
                {"name": "log-router"}
            ]
        }),
        codedeploy: Some(CodeDeployTarget {
            application: "AppECS-prod-web1".into(),
            group: "DgpECS-prod-web1".into(),
            ready_wait: 0,
            termination_wait: 0,
            config: None,
            test_listener: false,
        }),
        previous_digest: None,
    }
}
