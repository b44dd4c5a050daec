//! A scripted Kubernetes API over real HTTP on 127.0.0.1, for the Kubernetes target's tests. No
//! API server can be installed on these machines (Debian ships only kubectl 1.20, no apiserver),
//! so this one speaks the Deployment / ReplicaSet / Pod / Event JSON the real API serves and plays
//! the Deployment controller one step per look at the Deployment:
//!
//! - a new pod template gets a ReplicaSet (a template seen before gets its old one back, with a
//!   new revision, as `kubectl rollout undo` makes the controller do), then one replica moves per
//!   step from the old ReplicaSets to the new one;
//! - an image whose reference contains `crash` crash-loops (CrashLoopBackOff, one restart per
//!   step, BackOff events), `missing` cannot be pulled (ImagePullBackOff), `slow` never becomes
//!   ready: the Progressing condition turns `ProgressDeadlineExceeded` after a few steps;
//! - [`KubeApi::overtake_after`] makes "someone else" patch the image while a rollout runs;
//!   [`KubeApi::change_before_patch`] has them roll out another image between the action's
//!   preflight and its patch (the ReplicaSet history a rollback reads then differs from what the
//!   preflight saw); [`KubeApi::set_image`] before a run leaves a rollout in progress at start;
//! - [`KubeApi::hold_until`] holds the controller (no step) until some PATCHes arrived;
//! - the controller's timing, as a real one has it: [`KubeApi::observe_after`] delays its
//!   observing a new generation (observedGeneration < generation on the reads right after a
//!   PATCH), [`KubeApi::terminate_after`] keeps a replaced ReplicaSet's unavailable pods (a
//!   crash-looping one) alive for a while before they are scaled down;
//! - [`KubeApi::amend_on_patch`] has someone else add an env var and a container to the
//!   template right after the action's first PATCH (the failing revision carries both);
//!   [`KubeApi::undo_cannot_start`] makes the revision a rollback restores unable to start
//!   again (Recreate strategy: its pods were gone; its Secret was deleted since).
//!
//! It accepts the two patch types the action sends, by their content type: a strategic merge
//! patch (the image) and a JSON patch (the rollback's `/spec/template` replace).
//!
//! Every request is recorded (method, path and query, body, Authorization) so tests assert what
//! was sent, and that nothing was written when a preflight refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Steps without progress before a stuck rollout's deadline is exceeded.
pub const DEADLINE_STEPS: u32 = 4;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone)]
struct Rs {
    hash: String,
    revision: i64,
    /// The pod template as the Deployment had it (without `pod-template-hash`).
    template: Value,
    replicas: i32,
    available: i32,
    /// Steps since it was last made current (restarts of a crash-looping pod).
    steps: i32,
    /// When another ReplicaSet was made current instead (its pods start terminating).
    left_at: Option<Instant>,
    /// Its pods cannot start again (see [`KubeApi::undo_cannot_start`]).
    broken: bool,
}

#[derive(Debug)]
struct State {
    namespace: String,
    name: String,
    exists: bool,
    paused: bool,
    replicas: i32,
    generation: i64,
    observed: i64,
    annotations: BTreeMap<String, String>,
    template: Value,
    sets: Vec<Rs>,
    stuck_steps: u32,
    deadline_exceeded: bool,
    requests: Vec<Recorded>,
    /// After this many steps following the first PATCH, "someone else" sets this image.
    overtake: Option<(u32, String)>,
    steps_since_patch: Option<u32>,
    /// A look at the Deployment takes no controller step while fewer PATCHes than this arrived
    /// (see [`KubeApi::hold_until`]).
    held_until_patches: usize,
    patches: usize,
    /// On the first PATCH, someone else's rollout of this image happens first.
    change_before_patch: Option<String>,
    /// ReplicaSets of another Deployment with the same labels (listed, never owned).
    foreign: Vec<Value>,
    /// When `generation` last changed.
    changed_at: Instant,
    /// How long after a change of generation the controller observes it.
    observe_delay: Duration,
    /// How long a replaced ReplicaSet's unavailable pods live on before they are scaled down.
    terminating: Duration,
    /// Right after the first PATCH, someone else adds this env var (name, value) to container
    /// `app` and this container to the template.
    amend: Option<((String, String), String)>,
    /// The template the rollback's PATCH restores cannot start (see [`KubeApi::undo_cannot_start`]).
    undo_cannot_start: bool,
    /// The Deployment's strategy is Recreate: the old pods go before the new ones start.
    recreate: bool,
    /// GETs of the Deployment after the first PATCH that answer 500 (see
    /// [`KubeApi::unavailable_after_patch`]).
    unavailable: usize,
}

/// How an image behaves in the scripted cluster (by its reference).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Health {
    Healthy,
    Crash,
    Missing,
    Slow,
    /// A Secret it needs is gone: CreateContainerConfigError.
    ConfigGone,
}

fn health(image: &str) -> Health {
    if image.contains("crash") {
        Health::Crash
    } else if image.contains("missing") {
        Health::Missing
    } else if image.contains("slow") {
        Health::Slow
    } else {
        Health::Healthy
    }
}

/// The JSON text with every object's keys sorted: equal templates, equal text.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, String> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let inner: Vec<String> = sorted.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn hash_of(template: &Value) -> String {
    // FNV-1a of the template's canonical JSON: stable, and different for different templates.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in canonical(template).bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

fn image_of(template: &Value) -> String {
    template["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

impl Rs {
    fn health(&self) -> Health {
        if self.broken {
            Health::ConfigGone
        } else {
            health(&image_of(&self.template))
        }
    }
}

impl State {
    fn uid(&self) -> String {
        format!("uid-{}", self.name)
    }

    /// A new generation of the spec (not observed yet).
    fn bump_generation(&mut self) {
        self.generation += 1;
        self.changed_at = Instant::now();
    }

    fn current(&self) -> Option<usize> {
        let h = hash_of(&self.template);
        self.sets.iter().position(|r| r.hash == h)
    }

    /// One step of the Deployment controller.
    fn step(&mut self) {
        if self.paused {
            return;
        }
        if let Some(n) = self.steps_since_patch.as_mut() {
            *n += 1;
            if let Some((after, image)) = self.overtake.clone()
                && *n >= after
            {
                self.overtake = None;
                self.template["spec"]["containers"][0]["image"] = json!(image);
                self.bump_generation();
            }
        }
        if self.generation > self.observed {
            if self.changed_at.elapsed() < self.observe_delay {
                // The controller has not got to it yet: the status is as it was.
                return;
            }
            self.observed = self.generation;
            let max = self.sets.iter().map(|r| r.revision).max().unwrap_or(0);
            let h = hash_of(&self.template);
            let now = Instant::now();
            for rs in self.sets.iter_mut().filter(|r| r.hash != h) {
                rs.left_at.get_or_insert(now);
                if self.recreate {
                    rs.replicas = 0;
                    rs.available = 0;
                }
            }
            match self.sets.iter_mut().find(|r| r.hash == h) {
                Some(rs) => {
                    rs.revision = max + 1;
                    rs.steps = 0;
                    rs.left_at = None;
                }
                None => self.sets.push(Rs {
                    hash: h,
                    revision: max + 1,
                    template: self.template.clone(),
                    replicas: 0,
                    available: 0,
                    steps: 0,
                    left_at: None,
                    broken: false,
                }),
            }
            self.annotations.insert(
                "deployment.kubernetes.io/revision".into(),
                (max + 1).to_string(),
            );
            self.stuck_steps = 0;
            self.deadline_exceeded = false;
            return;
        }
        let Some(i) = self.current() else { return };
        let want = self.replicas;
        let h = self.sets[i].health();
        self.sets[i].steps += 1;
        if h == Health::Healthy {
            if self.sets[i].replicas < want {
                self.sets[i].replicas += 1;
            }
            self.sets[i].available = self.sets[i].replicas;
            let room = want - self.sets[i].replicas;
            for (j, rs) in self.sets.iter_mut().enumerate() {
                if j == i {
                    continue;
                }
                if rs.available == 0 {
                    // Scaled down once its pods had their time to terminate.
                    if rs.left_at.is_none_or(|t| t.elapsed() >= self.terminating) {
                        rs.replicas = 0;
                    }
                } else {
                    rs.replicas = rs.replicas.min(room);
                    rs.available = rs.replicas;
                }
            }
            self.stuck_steps = 0;
        } else {
            // One surge pod that never becomes available.
            self.sets[i].replicas = self.sets[i].replicas.max(1);
            self.sets[i].available = 0;
            self.stuck_steps += 1;
            if self.stuck_steps >= DEADLINE_STEPS {
                self.deadline_exceeded = true;
            }
        }
    }

    /// Runs the controller until the rollout is complete (at most 50 steps).
    fn settle(&mut self) {
        for _ in 0..50 {
            self.step();
            let d = self.deployment_json();
            let st = &d["status"];
            if st["observedGeneration"] == d["metadata"]["generation"]
                && st["updatedReplicas"] == d["spec"]["replicas"]
                && st["replicas"] == d["spec"]["replicas"]
                && st["availableReplicas"] == d["spec"]["replicas"]
            {
                return;
            }
        }
    }

    fn replica_set_json(&self, rs: &Rs) -> Value {
        let mut template = rs.template.clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!(rs.hash);
        json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": format!("{}-{}", self.name, rs.hash),
                "namespace": self.namespace,
                "uid": format!("uid-rs-{}", rs.hash),
                "labels": template["metadata"]["labels"].clone(),
                "annotations": {"deployment.kubernetes.io/revision": rs.revision.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name,
                                      "uid": self.uid(), "controller": true}]
            },
            "spec": {"replicas": rs.replicas, "selector": {"matchLabels": {"app": self.name, "pod-template-hash": rs.hash}},
                     "template": template},
            "status": {"replicas": rs.replicas, "availableReplicas": rs.available, "readyReplicas": rs.available}
        })
    }

    fn deployment_json(&self) -> Value {
        let i = self.current();
        let updated = i.map(|i| self.sets[i].replicas).unwrap_or(0);
        let total: i32 = self.sets.iter().map(|r| r.replicas).sum();
        let available: i32 = self.sets.iter().map(|r| r.available).sum();
        let progressing = if self.deadline_exceeded {
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                   "message": format!("ReplicaSet \"{}-{}\" has timed out progressing.", self.name,
                                      i.map(|i| self.sets[i].hash.clone()).unwrap_or_default())})
        } else {
            json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "progressing"})
        };
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name, "namespace": self.namespace, "uid": self.uid(),
                "generation": self.generation, "annotations": self.annotations,
                "labels": {"app": self.name}
            },
            "spec": {
                "replicas": self.replicas,
                "paused": self.paused,
                "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": self.name}},
                "template": self.template,
                "strategy": if self.recreate { json!({"type": "Recreate"}) } else {
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
                }
            },
            "status": {
                "observedGeneration": self.observed,
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": available,
                "availableReplicas": available,
                "unavailableReplicas": (self.replicas - available).max(0),
                "conditions": [
                    {"type": "Available", "status": if available >= self.replicas { "True" } else { "False" }},
                    progressing
                ]
            }
        })
    }

    fn pods(&self, hash: Option<&str>) -> Vec<Value> {
        let mut out = Vec::new();
        for rs in &self.sets {
            if hash.is_some_and(|h| h != rs.hash) {
                continue;
            }
            let image = image_of(&rs.template);
            let h = rs.health();
            for n in 0..rs.replicas {
                let name = format!("{}-{}-{n}", self.name, rs.hash);
                let status = match h {
                    Health::Healthy | Health::Slow => {
                        json!({"name": "app", "image": image, "imageID": "",
                        "ready": h == Health::Healthy, "restartCount": 0, "state": {"running": {}}})
                    }
                    Health::Crash => {
                        json!({"name": "app", "image": image, "imageID": "", "ready": false,
                        "restartCount": rs.steps,
                        "state": {"waiting": {"reason": "CrashLoopBackOff",
                            "message": format!("back-off 10s restarting failed container=app pod={name}")}}})
                    }
                    Health::Missing => {
                        json!({"name": "app", "image": image, "imageID": "", "ready": false,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ImagePullBackOff",
                            "message": format!("Back-off pulling image \"{image}\"")}}})
                    }
                    Health::ConfigGone => {
                        json!({"name": "app", "image": image, "imageID": "", "ready": false,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "CreateContainerConfigError",
                            "message": format!("secret \"{}-env\" not found", self.name)}}})
                    }
                };
                out.push(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": self.namespace,
                                 "labels": {"app": self.name, "pod-template-hash": rs.hash}},
                    "spec": rs.template["spec"].clone(),
                    "status": {"phase": if matches!(h, Health::Missing | Health::ConfigGone) { "Pending" } else { "Running" },
                               "containerStatuses": [status]}
                }));
            }
        }
        out
    }

    fn events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for rs in &self.sets {
            let (reason, message) = match rs.health() {
                Health::Crash => (
                    "BackOff",
                    "Back-off restarting failed container app".to_string(),
                ),
                Health::Missing => (
                    "Failed",
                    format!(
                        "Failed to pull image \"{}\": not found",
                        image_of(&rs.template)
                    ),
                ),
                Health::ConfigGone => (
                    "Failed",
                    format!("Error: secret \"{}-env\" not found", self.name),
                ),
                _ => continue,
            };
            for n in 0..rs.replicas {
                let pod = format!("{}-{}-{n}", self.name, rs.hash);
                out.push(json!({
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": format!("{pod}.1"), "namespace": self.namespace},
                    "involvedObject": {"kind": "Pod", "name": pod, "namespace": self.namespace},
                    "type": "Warning", "reason": reason, "message": message, "count": rs.steps.max(1)
                }));
            }
        }
        out
    }

    /// Applies a strategic merge patch to the Deployment (the parts the action sends).
    fn patch(&mut self, body: &Value) {
        if let Some(a) = body["metadata"]["annotations"].as_object() {
            for (k, v) in a {
                self.annotations
                    .insert(k.clone(), v.as_str().unwrap_or_default().to_string());
            }
        }
        let before = self.template.clone();
        let t = &body["spec"]["template"];
        if t.get("$patch").and_then(Value::as_str) == Some("replace") {
            let mut new = t.clone();
            if let Some(m) = new.as_object_mut() {
                m.remove("$patch");
            }
            self.template = new;
        } else if t.is_object() {
            if let Some(a) = t["metadata"]["annotations"].as_object() {
                for (k, v) in a {
                    self.template["metadata"]["annotations"][k] = v.clone();
                }
            }
            for c in t["spec"]["containers"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default();
                if let Some(live) = self.template["spec"]["containers"]
                    .as_array_mut()
                    .and_then(|cs| cs.iter_mut().find(|x| x["name"] == name))
                {
                    for (k, v) in c.as_object().into_iter().flatten() {
                        live[k] = v.clone();
                    }
                }
            }
        }
        self.patched(before);
    }

    /// What every PATCH does after changing the Deployment: a new generation when the template
    /// changed, the count of steps since the first PATCH started.
    fn patched(&mut self, before: Value) {
        if self.template != before {
            self.bump_generation();
        }
        if self.steps_since_patch.is_none() {
            self.steps_since_patch = Some(0);
        }
    }

    /// Applies a JSON patch (RFC 6902) to the Deployment: the operations on the paths a rollback
    /// writes (`/spec/template`, `/metadata/annotations[/key]`); anything else is refused as
    /// the real API would refuse a path it cannot apply, so a test sees it.
    fn json_patch(&mut self, body: &Value) -> Result<(), String> {
        let before = self.template.clone();
        let ops = body.as_array().ok_or("a JSON patch is an array")?;
        for op in ops {
            let kind = op["op"].as_str().unwrap_or_default();
            let path = op["path"].as_str().unwrap_or_default();
            let value = op["value"].clone();
            match (kind, path) {
                ("replace", "/spec/template") => self.template = value,
                ("add" | "replace", "/metadata/annotations") => {
                    self.annotations = value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect();
                }
                ("add" | "replace", p) if p.starts_with("/metadata/annotations/") => {
                    let key = p["/metadata/annotations/".len()..]
                        .replace("~1", "/")
                        .replace("~0", "~");
                    self.annotations
                        .insert(key, value.as_str().unwrap_or_default().to_string());
                }
                _ => return Err(format!("the scripted API does not play {kind} {path}")),
            }
        }
        self.patched(before);
        Ok(())
    }

    /// Someone else's change right after the action's first PATCH: an env var in container
    /// `app` and one more container, a generation the controller observes with ours.
    fn amend(&mut self) {
        let Some(((env, value), container)) = self.amend.take() else {
            return;
        };
        self.template["spec"]["containers"][0]["env"] = json!([{"name": env, "value": value}]);
        if let Some(cs) = self.template["spec"]["containers"].as_array_mut() {
            cs.push(json!({"name": container, "image": format!("{container}:1")}));
        }
        self.bump_generation();
    }
}

fn status(code: u16, reason: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    }))
}

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": items
    }))
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

struct Scripted(Arc<Mutex<State>>);

impl Respond for Scripted {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().expect("scripted API state");
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let path = req.url.path().to_string();
        s.requests.push(Recorded {
            method: req.method.to_string(),
            path: match req.url.query() {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            },
            body: body.clone(),
            authorization: req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            content_type: req
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        });
        let ns = s.namespace.clone();
        let deployment = format!("/apis/apps/v1/namespaces/{ns}/deployments/{}", s.name);
        let method = req.method.as_str();
        if path.starts_with("/apis/apps/v1/namespaces/") && path.contains("/deployments/") {
            if path != deployment || !s.exists {
                let name = path.rsplit('/').next().unwrap_or_default();
                return status(
                    404,
                    "NotFound",
                    &format!("deployments.apps \"{name}\" not found"),
                );
            }
            match method {
                "GET" => {
                    if s.patches > 0 && s.unavailable > 0 {
                        s.unavailable -= 1;
                        return status(500, "InternalError", "etcdserver: request timed out");
                    }
                    if s.patches >= s.held_until_patches {
                        s.step();
                    }
                    ResponseTemplate::new(200).set_body_json(s.deployment_json())
                }
                "PATCH" => {
                    let ct = req
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if let Some(image) = s.change_before_patch.take() {
                        s.template["spec"]["containers"][0]["image"] = json!(image);
                        s.bump_generation();
                        s.settle();
                    }
                    match ct {
                        "application/strategic-merge-patch+json" => s.patch(&body),
                        "application/json-patch+json" => {
                            if let Err(why) = s.json_patch(&body) {
                                return status(422, "Invalid", &why);
                            }
                        }
                        _ => {
                            return status(
                                415,
                                "UnsupportedMediaType",
                                &format!("content type {ct}"),
                            );
                        }
                    }
                    s.patches += 1;
                    if s.patches == 2 && s.undo_cannot_start {
                        // The restored revision's pods were gone (Recreate) and its Secret was
                        // deleted since they last started: none of them can start again.
                        let h = hash_of(&s.template);
                        if let Some(rs) = s.sets.iter_mut().find(|r| r.hash == h) {
                            rs.broken = true;
                            rs.replicas = 0;
                            rs.available = 0;
                        }
                    }
                    let answer = s.deployment_json();
                    if s.patches == 1 {
                        s.amend();
                    }
                    ResponseTemplate::new(200).set_body_json(answer)
                }
                _ => status(405, "MethodNotAllowed", method),
            }
        } else if path == format!("/apis/apps/v1/namespaces/{ns}/replicasets") {
            let items = s
                .sets
                .iter()
                .map(|r| s.replica_set_json(r))
                .chain(s.foreign.iter().cloned())
                .collect();
            list("ReplicaSetList", "apps/v1", items)
        } else if path == format!("/api/v1/namespaces/{ns}/pods") {
            let hash = query(req, "labelSelector")
                .and_then(|l| l.split("pod-template-hash=").nth(1).map(str::to_string));
            list("PodList", "v1", s.pods(hash.as_deref()))
        } else if path == format!("/api/v1/namespaces/{ns}/events") {
            list("EventList", "v1", s.events())
        } else {
            status(
                404,
                "NotFound",
                &format!("the server could not find {path}"),
            )
        }
    }
}

/// What the scripted cluster starts with: Deployment `name` in `namespace`, `replicas` pods of
/// `image` in container `app` (plus `extra_containers`), at revision 1.
#[derive(Debug, Clone)]
pub struct Setup {
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub replicas: i32,
    pub paused: bool,
    pub exists: bool,
    pub extra_containers: Vec<String>,
}

impl Setup {
    /// Deployment `name` in namespace `shop`: 3 replicas of `image`, running.
    pub fn new(name: &str, image: &str) -> Setup {
        Setup {
            namespace: "shop".into(),
            name: name.into(),
            image: image.into(),
            replicas: 3,
            paused: false,
            exists: true,
            extra_containers: Vec::new(),
        }
    }
}

/// The scripted API server; stops when dropped.
pub struct KubeApi {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl KubeApi {
    /// Starts the server with `setup` deployed and settled (revision 1, every replica available).
    pub async fn start(setup: Setup) -> KubeApi {
        let mut containers = vec![json!({"name": "app", "image": setup.image,
            "ports": [{"containerPort": 8000, "protocol": "TCP"}]})];
        for c in &setup.extra_containers {
            containers.push(json!({"name": c, "image": format!("{c}:1")}));
        }
        let template = json!({
            "metadata": {"labels": {"app": setup.name}},
            "spec": {"containers": containers}
        });
        let rs = Rs {
            hash: hash_of(&template),
            revision: 1,
            template: template.clone(),
            replicas: setup.replicas,
            available: setup.replicas,
            steps: 0,
            left_at: None,
            broken: false,
        };
        let state = State {
            namespace: setup.namespace,
            name: setup.name,
            exists: setup.exists,
            paused: setup.paused,
            replicas: setup.replicas,
            generation: 1,
            observed: 1,
            annotations: [(
                "deployment.kubernetes.io/revision".to_string(),
                "1".to_string(),
            )]
            .into_iter()
            .collect(),
            template,
            sets: vec![rs],
            stuck_steps: 0,
            deadline_exceeded: false,
            requests: Vec::new(),
            overtake: None,
            steps_since_patch: None,
            held_until_patches: 0,
            patches: 0,
            change_before_patch: None,
            foreign: Vec::new(),
            changed_at: Instant::now(),
            observe_delay: Duration::ZERO,
            terminating: Duration::ZERO,
            amend: None,
            undo_cannot_start: false,
            recreate: false,
            unavailable: 0,
        };
        let state = Arc::new(Mutex::new(state));
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Scripted(state.clone()))
            .mount(&server)
            .await;
        KubeApi { server, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Writes a kubeconfig pointing at this server (token `token`, namespace unset) into `dir`.
    pub fn kubeconfig(&self, dir: &Path, token: &str) -> PathBuf {
        let path = dir.join("kubeconfig.yaml");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: scripted\n  cluster:\n    server: {}\ncontexts:\n- name: scripted\n  context:\n    cluster: scripted\n    user: ci\ncurrent-context: scripted\nusers:\n- name: ci\n  user:\n    token: {token}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// After `steps` looks at the Deployment following the first PATCH, someone else sets
    /// container `app` to `image`.
    pub fn overtake_after(&self, steps: u32, image: &str) {
        self.state.lock().expect("state").overtake = Some((steps, image.to_string()));
    }

    /// Holds the controller: looks at the Deployment take no step until [`KubeApi::settle`]
    /// (the benchmark finishes a rollout at a moment of its choosing).
    pub fn hold(&self) {
        self.hold_until(usize::MAX);
    }

    /// Holds the controller until `patches` PATCHes arrived: a rollout that does not move
    /// until, say, the rollback's PATCH (1: the action's own patch is not rolled out either).
    pub fn hold_until(&self, patches: usize) {
        self.state.lock().expect("state").held_until_patches = patches;
    }

    /// Lets the controller go on (after [`KubeApi::hold`]).
    pub fn release(&self) {
        self.hold_until(0);
    }

    /// Runs the controller until the rollout is complete (at most 50 steps).
    pub fn settle(&self) {
        self.state.lock().expect("state").settle();
    }

    /// When the action's first PATCH arrives, someone else has just rolled out `image` (a new
    /// revision, complete): the history at undo time is not what the preflight read.
    pub fn change_before_patch(&self, image: &str) {
        self.state.lock().expect("state").change_before_patch = Some(image.to_string());
    }

    /// A ReplicaSet with the Deployment's labels that another Deployment owns, at `revision`.
    pub fn add_foreign_replica_set(&self, image: &str, revision: i64) {
        let mut s = self.state.lock().expect("state");
        let template = json!({"metadata": {"labels": {"app": s.name, "pod-template-hash": "f0f0f0f0f0"}},
                              "spec": {"containers": [{"name": "app", "image": image}]}});
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{}-canary-f0f0f0f0f0", s.name), "namespace": s.namespace,
                         "uid": "uid-rs-foreign", "labels": template["metadata"]["labels"].clone(),
                         "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": format!("{}-canary", s.name),
                                              "uid": "uid-canary", "controller": true}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": template["metadata"]["labels"].clone()},
                     "template": template},
            "status": {"replicas": 1, "availableReplicas": 1, "readyReplicas": 1}
        });
        s.foreign.push(rs);
    }

    /// Someone sets container `app` to `image` (a new generation, not observed yet).
    pub fn set_image(&self, image: &str) {
        let mut s = self.state.lock().expect("state");
        s.template["spec"]["containers"][0]["image"] = json!(image);
        s.bump_generation();
    }

    /// The controller observes a new generation only `delay` after it was written (a real one
    /// is busy, or its informer lags): the reads right after a PATCH show the old status.
    pub fn observe_after(&self, delay: Duration) {
        self.state.lock().expect("state").observe_delay = delay;
    }

    /// A replaced ReplicaSet's unavailable pods (a crash-looping one) live on `linger` after the
    /// controller made another ReplicaSet current, as terminating pods do, before it scales
    /// them down.
    pub fn terminate_after(&self, linger: Duration) {
        self.state.lock().expect("state").terminating = linger;
    }

    /// Right after the action's first PATCH, someone else adds env var `env` (name, value) to
    /// container `app` and a container `container` to the template: the revision that rolls
    /// out (and fails) carries both, the one before has neither.
    pub fn amend_on_patch(&self, env: (&str, &str), container: &str) {
        self.state.lock().expect("state").amend = Some((
            (env.0.to_string(), env.1.to_string()),
            container.to_string(),
        ));
    }

    /// After the action's first PATCH, the next `reads` GETs of the Deployment answer 500
    /// InternalError `etcdserver: request timed out`, as an API server does while its etcd lags
    /// (kube's client retries 429/503/504 itself; a 500 reaches the action's wait loop).
    pub fn unavailable_after_patch(&self, reads: usize) {
        self.state.lock().expect("state").unavailable = reads;
    }

    /// The Deployment rolls out by Recreate (the old pods go first), and the revision the
    /// rollback's PATCH restores cannot start again (CreateContainerConfigError: a Secret it
    /// needs was deleted since its pods last started).
    pub fn undo_cannot_start(&self) {
        let mut s = self.state.lock().expect("state");
        s.undo_cannot_start = true;
        s.recreate = true;
    }

    /// The pod template of the ReplicaSet at `revision`, as the server lists it (with its
    /// pod-template-hash label); Null when there is none.
    pub fn replica_set_template(&self, revision: i64) -> Value {
        let s = self.state.lock().expect("state");
        s.sets
            .iter()
            .find(|r| r.revision == revision)
            .map(|r| s.replica_set_json(r)["spec"]["template"].clone())
            .unwrap_or(Value::Null)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("state").requests.clone()
    }

    /// The PATCH requests sent, in order.
    pub fn patch_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect()
    }

    /// The PATCH bodies sent, in order.
    pub fn patches(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| r.body)
            .collect()
    }

    /// True when any request wrote (anything but GET).
    pub fn wrote(&self) -> bool {
        self.requests().iter().any(|r| r.method != "GET")
    }

    /// The Deployment as the server holds it now (without taking a controller step).
    pub fn deployment(&self) -> Value {
        self.state.lock().expect("state").deployment_json()
    }
}
