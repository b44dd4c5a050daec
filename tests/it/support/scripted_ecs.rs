//! A scripted ECS over real HTTP (wiremock speaking ECS's JSON protocol) for what moto cannot
//! play: ThrottlingException answers, a call that is accepted and never answered, rollouts
//! that complete on a known timeline, and ECS's early success criteria. Rolling services only:
//! each starts on revision 1 with one COMPLETED deployment; UpdateService starts a new PRIMARY
//! deployment whose one task runs after half the rollout time, and which is COMPLETED (the old
//! one gone) after all of it. Each UpdateService also starts a service deployment
//! (DescribeServiceDeployments, its target revision in DescribeServiceRevisions), SUCCESSFUL
//! when the rollout is.
//!
//! With [`Script::early`] the services have `earlySuccessCriteria` (80%, DEFERRED or
//! BLOCKING cleanup), five tasks, and ECS's timeline for it: four new tasks run before the
//! rollout time and are healthy at it; with DEFERRED the service deployment is SUCCESSFUL then,
//! while the old deployment stays listed with its five tasks draining for [`EarlyScript::drain`]
//! (our deployment still IN_PROGRESS, the fifth new task started after success); with BLOCKING
//! the old tasks drain first and SUCCESSFUL comes with COMPLETED after the drain. moto 5.2 plays
//! none of this: its deployments never move and it has no early success.
//!
//! The benchmarks `benches/throttle.rs` and `benches/early_success.rs` include this file too,
//! so they script the same ECS.

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
    /// Operations answered AccessDeniedException, as for a role whose policy lacks them.
    pub deny: Vec<&'static str>,
    /// From UpdateService to COMPLETED; with `early`, to the new tasks being healthy.
    pub rollout: Duration,
    /// Early success criteria on every service, and how long the old tasks drain.
    pub early: Option<EarlyScript>,
}

/// The services' `earlySuccessCriteria` (80% healthy) and the old tasks' drain.
#[derive(Debug, Clone, Copy)]
pub struct EarlyScript {
    /// `DEFERRED` (SUCCESSFUL before the drain) or `BLOCKING` (after it).
    pub cleanup: &'static str,
    /// How long the old tasks drain (the target group's deregistration delay).
    pub drain: Duration,
}

/// One service's state.
#[derive(Debug, Clone)]
struct Svc {
    revision: u32,
    /// Every UpdateService: when, and to which revision.
    updates: Vec<(Instant, u32)>,
}

impl Svc {
    fn updated(&self) -> Option<(Instant, u32)> {
        self.updates.last().copied()
    }

    /// The revision before the latest update.
    fn previous(&self) -> u32 {
        match self.updates.len() {
            0 | 1 => self.revision,
            n => self.updates[n - 2].1,
        }
    }
}

#[derive(Debug)]
struct State {
    script: Script,
    calls: Vec<(String, bool)>,
    /// Every call's request body, by operation.
    bodies: Vec<(String, Value)>,
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
            bodies: Vec::new(),
            services: services
                .iter()
                .map(|s| {
                    (
                        s.to_string(),
                        Svc {
                            revision: 1,
                            updates: Vec::new(),
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

    /// Every request body of `operation`, in order.
    pub fn bodies(&self, operation: &str) -> Vec<Value> {
        self.state
            .lock()
            .map(|s| {
                s.bodies
                    .iter()
                    .filter(|(o, _)| o == operation)
                    .map(|(_, b)| b.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// When `service`'s latest service deployment is (or will be) SUCCESSFUL, by the script.
    pub fn successful_at(&self, service: &str) -> Option<Instant> {
        let st = self.state.lock().ok()?;
        let (at, _) = st.services.get(service)?.updated()?;
        Some(at + ends(&st.script).0)
    }

    /// When `service`'s old tasks are gone after its latest update, by the script.
    pub fn drained_at(&self, service: &str) -> Option<Instant> {
        let st = self.state.lock().ok()?;
        let (at, _) = st.services.get(service)?.updated()?;
        Some(at + ends(&st.script).1)
    }
}

/// The service deployment ARN of `service`'s `n`th update (0: the one before any).
pub fn service_deployment_arn(service: &str, n: usize) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/prod/{service}/sd-{n}")
}

/// The service revision ARN of `service`'s `n`th update (0: the one before any).
pub fn service_revision_arn(service: &str, n: usize) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/prod/{service}/{n}")
}

/// After an update: when its service deployment is SUCCESSFUL, and when the old tasks are gone.
fn ends(script: &Script) -> (Duration, Duration) {
    match script.early {
        None => (script.rollout, script.rollout),
        Some(e) if e.cleanup == "DEFERRED" => (script.rollout, script.rollout + e.drain),
        Some(e) => (script.rollout + e.drain, script.rollout + e.drain),
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

fn service_json(name: &str, svc: &Svc, script: &Script) -> Value {
    if let Some(early) = script.early {
        return early_service_json(name, svc, script, early);
    }
    let rollout = script.rollout;
    let old = td_arn(name, svc.previous());
    let deployments = match svc.updated() {
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
                        &format!("ecs-svc/{name}-{}", svc.previous()),
                        "ACTIVE",
                        &old,
                        1 - running,
                        "COMPLETED",
                    ),
                ]
            }
        }
    };
    let current = match svc.updated() {
        Some((_, r)) => td_arn(name, r),
        None => old,
    };
    json!({
        "currentServiceDeployment": service_deployment_arn(name, svc.updates.len()),
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

/// A deployment of `desired` tasks (early success services run five).
fn deployment_of(id: &str, status: &str, td: &str, counts: (i32, i32), state: &str) -> Value {
    let (desired, running) = counts;
    let mut d = deployment(id, status, td, running, state);
    d["desiredCount"] = json!(desired);
    d["pendingCount"] = json!((desired - running).max(0));
    d
}

/// A service with early success criteria, on ECS's timeline for them (see the module doc).
fn early_service_json(name: &str, svc: &Svc, script: &Script, early: EarlyScript) -> Value {
    const DESIRED: i32 = 5;
    let r = script.rollout;
    let (_, drained) = ends(script);
    let deployments = match svc.updated() {
        None => vec![deployment_of(
            &format!("ecs-svc/{name}-{}", svc.revision),
            "PRIMARY",
            &td_arn(name, svc.revision),
            (DESIRED, DESIRED),
            "COMPLETED",
        )],
        Some((at, revision)) => {
            let t = at.elapsed();
            // Four new tasks run before they are healthy (at `rollout`); the fifth starts after.
            let running = match t {
                t if t < r / 3 => 0,
                t if t < r * 2 / 3 => 2,
                t if t < r * 4 / 3 => 4,
                _ => DESIRED,
            };
            let ours = |state| {
                deployment_of(
                    &format!("ecs-svc/{name}-{revision}"),
                    "PRIMARY",
                    &td_arn(name, revision),
                    (DESIRED, running),
                    state,
                )
            };
            if t >= drained {
                vec![ours("COMPLETED")]
            } else {
                // The old tasks run until healthy new ones replace them, then drain (still
                // RUNNING through the deregistration delay) until `drained`.
                let desired = if t >= r { 0 } else { DESIRED };
                vec![
                    ours("IN_PROGRESS"),
                    deployment_of(
                        &format!("ecs-svc/{name}-{}", svc.previous()),
                        "ACTIVE",
                        &td_arn(name, svc.previous()),
                        (desired, DESIRED),
                        "COMPLETED",
                    ),
                ]
            }
        }
    };
    let running: i64 = deployments
        .iter()
        .map(|d| d["runningCount"].as_i64().unwrap_or(0))
        .sum();
    let current = td_arn(name, svc.updated().map_or(svc.revision, |(_, r)| r));
    json!({
        "serviceName": name,
        "serviceArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{name}"),
        "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"),
        "status": "ACTIVE", "taskDefinition": current, "launchType": "EC2",
        "desiredCount": DESIRED, "runningCount": running, "pendingCount": 0,
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": {
            "strategy": "ROLLING", "maximumPercent": 200, "minimumHealthyPercent": 100,
            "earlySuccessCriteria": {
                "enable": true, "healthyPercent": 80,
                "sourceServiceRevisionCleanup": early.cleanup,
            },
        },
        "currentServiceDeployment": service_deployment_arn(name, svc.updates.len()),
        "deployments": deployments, "events": [],
    })
}

/// Service deployment `n` of `name` (0: the one before any update): IN_PROGRESS until the
/// script's SUCCESSFUL, STOPPED when a newer update came first.
fn service_deployment_json(name: &str, svc: &Svc, n: usize, script: &Script) -> Value {
    let (successful, _) = ends(script);
    let done = |i: usize| match i.checked_sub(1).and_then(|k| svc.updates.get(k)) {
        None => true,
        Some((at, _)) => at.elapsed() >= successful,
    };
    let status = if done(n) {
        "SUCCESSFUL"
    } else if n < svc.updates.len() {
        "STOPPED"
    } else {
        "IN_PROGRESS"
    };
    let created = n
        .checked_sub(1)
        .and_then(|k| svc.updates.get(k))
        .map_or(0.0, |(at, _)| epoch(SystemTime::now() - at.elapsed()));
    let mut d = json!({
        "serviceDeploymentArn": service_deployment_arn(name, n),
        "serviceArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{name}"),
        "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"),
        "status": status, "createdAt": created,
        "targetServiceRevision": {"arn": service_revision_arn(name, n)},
    });
    if n > 0 {
        d["sourceServiceRevisions"] = json!([{"arn": service_revision_arn(name, n - 1)}]);
    }
    d
}

/// The task definition revision service revision `n` of `svc` runs.
fn revision_of(svc: &Svc, n: usize) -> Option<u32> {
    match n {
        0 => Some(svc.revision),
        n => svc.updates.get(n - 1).map(|(_, r)| *r),
    }
}

/// `(service, n)` from a service deployment or revision ARN of this script.
fn parse_arn(arn: &str) -> Option<(String, usize)> {
    let mut parts = arn.rsplit('/');
    let n = parts.next()?.trim_start_matches("sd-").parse().ok()?;
    let service = parts.next()?.to_string();
    Some((service, n))
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
        st.bodies.push((operation.clone(), body.clone()));
        if throttled {
            return error("ThrottlingException", "Rate exceeded");
        }
        if st.script.hang.contains(&operation.as_str()) {
            return ok(json!({})).set_delay(Duration::from_secs(3600));
        }
        if st.script.deny.contains(&operation.as_str()) {
            return error(
                "AccessDeniedException",
                &format!(
                    "User: arn:aws:sts::{ACCOUNT}:assumed-role/deploy/run is not authorized to perform: ecs:{operation}"
                ),
            );
        }
        let name_of = |v: &Value| {
            v.as_str()
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
                .unwrap_or_default()
        };
        let script = st.script.clone();
        match operation.as_str() {
            "DescribeServices" => {
                let mut services = Vec::new();
                let mut failures = Vec::new();
                for n in body["services"].as_array().into_iter().flatten() {
                    let name = name_of(n);
                    match st.services.get(&name) {
                        Some(svc) => services.push(service_json(&name, svc, &script)),
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
                svc.updates.push((Instant::now(), revision));
                let svc = svc.clone();
                ok(json!({"service": service_json(&name, &svc, &script)}))
            }
            "DescribeServiceDeployments" => {
                let mut found = Vec::new();
                let mut failures = Vec::new();
                for arn in body["serviceDeploymentArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let arn = arn.as_str().unwrap_or_default();
                    let known = parse_arn(arn).and_then(|(name, n)| {
                        let svc = st.services.get(&name)?;
                        (n <= svc.updates.len())
                            .then(|| service_deployment_json(&name, svc, n, &script))
                    });
                    match known {
                        Some(d) => found.push(d),
                        None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                    }
                }
                ok(json!({"serviceDeployments": found, "failures": failures}))
            }
            "DescribeServiceRevisions" => {
                let mut found = Vec::new();
                let mut failures = Vec::new();
                for arn in body["serviceRevisionArns"].as_array().into_iter().flatten() {
                    let arn = arn.as_str().unwrap_or_default();
                    let known = parse_arn(arn).and_then(|(name, n)| {
                        let revision = revision_of(st.services.get(&name)?, n)?;
                        Some(json!({
                            "serviceRevisionArn": arn,
                            "serviceArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{name}"),
                            "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"),
                            "taskDefinition": td_arn(&name, revision),
                        }))
                    });
                    match known {
                        Some(r) => found.push(r),
                        None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                    }
                }
                ok(json!({"serviceRevisions": found, "failures": failures}))
            }
            other => error(
                "InvalidParameterException",
                &format!("the scripted ECS does not play {other}"),
            ),
        }
    }
}
