//! A scripted ECS over real HTTP (wiremock speaking ECS's JSON protocol) for what moto cannot
//! play: ThrottlingException answers, a call that is accepted and never answered, and rollouts
//! that complete on a known timeline. Rolling services only: each starts on revision 1 with one
//! COMPLETED deployment; UpdateService starts a new PRIMARY deployment whose one task runs
//! after half the rollout time, and which is COMPLETED (the old one gone) after all of it.
//! The benchmark `benches/throttle.rs` includes this file too, so both script one ECS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// What the script does besides answering.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The first this many calls (any operation) answer ThrottlingException.
    pub throttle_first: usize,
    /// Operations (`UpdateService`) that are accepted and never answered.
    pub hang: Vec<&'static str>,
    /// From UpdateService to COMPLETED.
    pub rollout: Duration,
}

/// One service's state.
#[derive(Debug, Clone)]
struct Svc {
    revision: u32,
    updated: Option<(Instant, u32)>,
}

#[derive(Debug)]
struct State {
    script: Script,
    calls: Vec<(String, bool)>,
    services: BTreeMap<String, Svc>,
    registered: BTreeMap<String, u32>,
}

/// The running server and its state.
pub struct ScriptedEcs {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

impl ScriptedEcs {
    /// Starts a fresh (never pooled: a hung answer must not leak into another test) server
    /// knowing `services` in cluster `prod`.
    pub async fn start(services: &[&str], script: Script) -> ScriptedEcs {
        let state = Arc::new(Mutex::new(State {
            script,
            calls: Vec::new(),
            services: services
                .iter()
                .map(|s| {
                    (
                        s.to_string(),
                        Svc {
                            revision: 1,
                            updated: None,
                        },
                    )
                })
                .collect(),
            registered: BTreeMap::new(),
        }));
        let server = MockServer::builder().start().await;
        Mock::given(any())
            .respond_with(Answer(state.clone()))
            .mount(&server)
            .await;
        ScriptedEcs { server, state }
    }

    /// `services`, whose `operation` calls are accepted and never answered.
    pub async fn hanging(services: &[&str], operation: &'static str) -> ScriptedEcs {
        let script = Script {
            hang: vec![operation],
            rollout: Duration::from_secs(1),
            ..Default::default()
        };
        ScriptedEcs::start(services, script).await
    }

    /// `AWS_ENDPOINT_URL` for the binary.
    pub fn endpoint(&self) -> String {
        self.server.uri()
    }

    /// Every call so far: the operation and whether it was throttled.
    pub fn calls(&self) -> Vec<(String, bool)> {
        self.state
            .lock()
            .map(|s| s.calls.clone())
            .unwrap_or_default()
    }

    /// How many calls of `operation` arrived.
    pub fn count(&self, operation: &str) -> usize {
        self.calls().iter().filter(|(o, _)| o == operation).count()
    }
}

/// The task definition ARN of `family:revision`.
pub fn td_arn(family: &str, revision: u32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}")
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn deployment(id: &str, status: &str, td: &str, running: i32, state: &str) -> Value {
    json!({
        "id": id, "status": status, "taskDefinition": td,
        "desiredCount": 1, "runningCount": running, "pendingCount": 1 - running,
        "rolloutState": state, "launchType": "EC2",
        "createdAt": epoch(SystemTime::now()), "updatedAt": epoch(SystemTime::now()),
    })
}

fn service_json(name: &str, svc: &Svc, rollout: Duration) -> Value {
    let old = td_arn(name, svc.revision);
    let deployments = match svc.updated {
        None => vec![deployment(
            &format!("ecs-svc/{name}-1"),
            "PRIMARY",
            &old,
            1,
            "COMPLETED",
        )],
        Some((at, revision)) => {
            let new = td_arn(name, revision);
            let id = format!("ecs-svc/{name}-{revision}");
            let t = at.elapsed();
            if t >= rollout {
                vec![deployment(&id, "PRIMARY", &new, 1, "COMPLETED")]
            } else {
                let running = i32::from(t >= rollout / 2);
                vec![
                    deployment(&id, "PRIMARY", &new, running, "IN_PROGRESS"),
                    deployment(
                        &format!("ecs-svc/{name}-{}", svc.revision),
                        "ACTIVE",
                        &old,
                        1 - running,
                        "COMPLETED",
                    ),
                ]
            }
        }
    };
    let current = match svc.updated {
        Some((_, r)) => td_arn(name, r),
        None => old,
    };
    json!({
        "serviceName": name,
        "serviceArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{name}"),
        "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"),
        "status": "ACTIVE", "taskDefinition": current, "launchType": "EC2",
        "desiredCount": 1, "runningCount": 1, "pendingCount": 0,
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
        "deployments": deployments, "events": [],
    })
}

fn task_definition_json(family: &str, revision: u32, image: &str) -> Value {
    json!({
        "taskDefinitionArn": td_arn(family, revision), "family": family,
        "revision": revision, "status": "ACTIVE", "networkMode": "bridge",
        "containerDefinitions": [{"name": family, "image": image, "essential": true, "memory": 128}],
    })
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(body)
}

/// An error as ECS's JSON protocol sends it: HTTP 400, `__type` in the body and the query
/// compatible code in `x-amzn-query-error`.
fn error(code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .insert_header("x-amzn-query-error", format!("{code};Sender").as_str())
        .set_body_json(json!({"__type": code, "message": message}))
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
        let throttled = st.calls.len() < st.script.throttle_first;
        st.calls.push((operation.clone(), throttled));
        if throttled {
            return error("ThrottlingException", "Rate exceeded");
        }
        if st.script.hang.contains(&operation.as_str()) {
            return ok(json!({})).set_delay(Duration::from_secs(3600));
        }
        let name_of = |v: &Value| {
            v.as_str()
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
                .unwrap_or_default()
        };
        let rollout = st.script.rollout;
        match operation.as_str() {
            "DescribeServices" => {
                let mut services = Vec::new();
                let mut failures = Vec::new();
                for n in body["services"].as_array().into_iter().flatten() {
                    let name = name_of(n);
                    match st.services.get(&name) {
                        Some(svc) => services.push(service_json(&name, svc, rollout)),
                        None => failures.push(json!({"arn": name, "reason": "MISSING"})),
                    }
                }
                ok(json!({"services": services, "failures": failures}))
            }
            "DescribeTaskDefinition" => {
                let arn = body["taskDefinition"].as_str().unwrap_or_default();
                let (family, revision) = arn
                    .rsplit('/')
                    .next()
                    .and_then(|fr| fr.split_once(':'))
                    .map(|(f, r)| (f.to_string(), r.parse().unwrap_or(1)))
                    .unwrap_or_default();
                ok(
                    json!({"taskDefinition": task_definition_json(&family, revision, &format!("registry.example.com/{family}:v1.0.0"))}),
                )
            }
            "RegisterTaskDefinition" => {
                let family = body["family"].as_str().unwrap_or_default().to_string();
                let revision = st.registered.get(&family).copied().unwrap_or(1) + 1;
                st.registered.insert(family.clone(), revision);
                let mut td = body.clone();
                td["taskDefinitionArn"] = json!(td_arn(&family, revision));
                td["revision"] = json!(revision);
                td["status"] = json!("ACTIVE");
                ok(json!({"taskDefinition": td}))
            }
            "UpdateService" => {
                let name = name_of(&body["service"]);
                let revision = body["taskDefinition"]
                    .as_str()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(1);
                let Some(svc) = st.services.get_mut(&name) else {
                    return error("ServiceNotFoundException", "Service not found.");
                };
                svc.updated = Some((Instant::now(), revision));
                let svc = svc.clone();
                ok(json!({"service": service_json(&name, &svc, rollout)}))
            }
            other => error(
                "InvalidParameterException",
                &format!("the scripted ECS does not play {other}"),
            ),
        }
    }
}
