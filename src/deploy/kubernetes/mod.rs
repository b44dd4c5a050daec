//! The Kubernetes target: the same release flow rolled out to a Deployment (EKS or any cluster
//! a kubeconfig reaches). The story: the preflight reads the Deployment (exists, its container,
//! not paused, a rollout already running is noted) and the manifest file; the deploy waits for a
//! rollout already running, patches the container's image with a `kubernetes.io/change-cause`,
//! follows the rollout as `kubectl rollout status` does (failing fast on pods that cannot
//! start), rolls back as `kubectl rollout undo` does, then commits the manifest. Every wait runs
//! on the shared loop ([`poll::until`]: deadline, cancellation, throttling, transient errors).
//! One verb per file: `auth` (reaching the cluster), `progress` (reading a rollout, pure),
//! `rollback`, `manifest`.

pub mod auth;
pub mod manifest;
pub mod progress;
pub mod rollback;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use tokio::time::Instant;

use self::auth::Connection;
use self::progress::Rollout;
use crate::aws::Aws;
use crate::deploy::poll::{self, Failure, Kind, Look};
use crate::deploy::strategy::{self, Ended as StrategyEnded, Followed, Strategy};
use crate::error::{Error, Result};
use crate::outcome::{DeployPath, Outcome};
use crate::plan::AppPlan;

/// How often the rollout is looked at (one GET of the Deployment, and the new pods while it
/// waits). The detection lag of a finished rollout is at most this (benches/kube_rollout.rs).
pub const POLL: Duration = Duration::from_millis(500);

/// The field manager named in every write, as `kubectl` names itself.
pub const FIELD_MANAGER: &str = "ecs-deploy";

/// The parameters of every write: the field manager, nothing forced.
pub(crate) fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// What the preflight read and checked about the Deployment; the deploy consumes it.
#[derive(Debug, Clone)]
pub struct KubeChecked {
    pub conn: Arc<Connection>,
    pub namespace: String,
    /// The Deployment's name.
    pub name: String,
    /// The container that gets the image.
    pub container: String,
    /// The image that container runs before the deploy.
    pub previous_image: String,
    /// The Deployment's revision before the deploy.
    pub previous_revision: Option<i64>,
    /// The manifest file and its text as checked out, when `kubernetes-manifest` was given.
    pub manifest: Option<ManifestChecked>,
    /// What the preflight noticed but did not refuse (a rollout already running).
    pub notes: Vec<String>,
}

/// The manifest file the preflight read and found the container in.
#[derive(Debug, Clone)]
pub struct ManifestChecked {
    pub file: PathBuf,
    /// Its path inside the repository (for the contents API).
    pub repo_path: String,
    /// Its text as checked out.
    pub text: String,
}

impl KubeChecked {
    /// The Deployment as messages name it.
    pub(crate) fn target(&self) -> String {
        format!("Deployment {}/{}", self.namespace, self.name)
    }

    /// The command a person follows the rollout with.
    pub(crate) fn status_command(&self) -> String {
        format!(
            "kubectl rollout status deployment/{} -n {}",
            self.name, self.namespace
        )
    }

    /// The command a person lists the Deployment's revisions with.
    pub(crate) fn history_command(&self) -> String {
        format!(
            "kubectl rollout history deployment/{} -n {}",
            self.name, self.namespace
        )
    }

    /// The command a person goes back to a revision with (`N` when none is known).
    pub(crate) fn undo_command(&self, revision: Option<i64>) -> String {
        let to = revision.map_or_else(|| "N".to_string(), |r| r.to_string());
        format!(
            "kubectl rollout undo deployment/{} -n {} --to-revision={to}",
            self.name, self.namespace
        )
    }
}

/// How the shared wait loop treats a failed Kubernetes API call: 429 backs off, a 5xx or a
/// broken connection is tried again (a bounded number of times in a row), anything else (401,
/// 403, 404, a body that does not parse) ends the wait. Pure.
pub(crate) fn kind_of(e: &kube::Error) -> Kind {
    match e {
        kube::Error::Api(s) if s.code == 429 => Kind::Throttled,
        kube::Error::Api(s) if s.code >= 500 => Kind::Transient,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            Kind::Transient
        }
        _ => Kind::Fatal,
    }
}

/// A failed API call of a wait: its kind ([`kind_of`]) and the error that names it.
fn failure(target: &str, doing: &str, e: kube::Error) -> Failure {
    Failure {
        kind: kind_of(&e),
        error: api_error(target, doing, e),
    }
}

/// A Kubernetes API error as one line, with what to do for the usual ones.
pub(crate) fn api_error(target: &str, doing: &str, e: kube::Error) -> Error {
    let problem = match &e {
        kube::Error::Api(s) if s.code == 401 => format!(
            "{doing}: 401 Unauthorized ({}); for EKS, the token's IAM identity is not known to the cluster: add an access entry (or aws-auth mapping) for the role this workflow uses",
            s.message
        ),
        kube::Error::Api(s) if s.code == 403 => format!(
            "{doing}: 403 Forbidden ({}); give the identity RBAC rights to get/patch deployments and list replicasets, pods and events in the namespace",
            s.message
        ),
        kube::Error::Api(s) => format!("{doing}: {} {} ({})", s.code, s.reason, s.message),
        other => format!("{doing}: {}", crate::error::error_chain(other)),
    };
    Error::Kubernetes {
        target: target.to_string(),
        problem,
    }
}

/// The read-only preflight of a Kubernetes app: the cluster answers, the Deployment exists,
/// the container is there (the only one, or `container-name`), the Deployment is not paused, a
/// running rollout is noted, and the manifest file holds the container.
pub async fn check(aws: &Aws, plan: &AppPlan) -> Result<KubeChecked> {
    let k = plan
        .settings
        .kubernetes
        .as_ref()
        .ok_or_else(|| Error::MissingInput {
            name: "eks-cluster".into(),
            why: format!("(or `kubeconfig`) to deploy {} to Kubernetes", plan.app),
        })?;
    let name = k.deployment.clone().unwrap_or_else(|| plan.app.clone());
    let target = format!("Deployment {}/{name}", k.namespace);
    let conn = Connection::open(aws, &k.source, &k.namespace, k.api_url.as_deref()).await?;
    let client = conn.client().await?;
    let api: Api<Deployment> = Api::namespaced(client, &k.namespace);
    let d = api
        .get_opt(&name)
        .await
        .map_err(|e| api_error(&target, &format!("reading it on {}", conn.describe()), e))?
        .ok_or_else(|| Error::Kubernetes {
            target: target.clone(),
            problem: format!(
                "not found on {}; check `kubernetes-deployment` (default: the app name) and `kubernetes-namespace`",
                conn.describe()
            ),
        })?;
    let names = progress::container_names(&d);
    let container = match plan.settings.rollout.container_name.as_deref() {
        Some(c) if names.iter().any(|n| n == c) => c.to_string(),
        Some(c) => {
            return Err(Error::Kubernetes {
                target,
                problem: format!(
                    "has no container {c} (its containers: {}); fix `container-name`",
                    names.join(", ")
                ),
            });
        }
        None => match names.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::Kubernetes {
                    target,
                    problem: "has no containers in its pod template".into(),
                });
            }
            many => {
                return Err(Error::Kubernetes {
                    target,
                    problem: format!(
                        "has several containers ({}); name the one that gets the image with `container-name`",
                        many.join(", ")
                    ),
                });
            }
        },
    };
    if d.spec.paused == Some(true) {
        return Err(Error::Kubernetes {
            target: target.clone(),
            problem: format!(
                "is paused (spec.paused: true), so a new image would not roll out; resume it (kubectl rollout resume deployment/{name} -n {}) and run again",
                k.namespace
            ),
        });
    }
    let previous_image = progress::template_image(progress::template(&d), &container)
        .unwrap_or_default()
        .to_string();
    let mut notes = Vec::new();
    match progress::assess(&d) {
        Rollout::Waiting(what) => notes.push(format!(
            "a rollout of {target} is already in progress ({what}); the deploy waits for it (wait-for-minutes) before patching"
        )),
        Rollout::Failed(why) => notes.push(format!(
            "the last rollout of {target} failed ({why}); this deploy replaces it"
        )),
        Rollout::Done => {}
    }
    let manifest = match (&k.manifest, &k.manifest_repo_path) {
        (Some(file), Some(repo_path)) => {
            let text = std::fs::read_to_string(file).map_err(|source| Error::ReadFile {
                what: "the kubernetes-manifest file".into(),
                path: file.clone(),
                source,
            })?;
            manifest::set_image(&text, &name, &container, "preflight.invalid/check:1").map_err(
                |problem| Error::Kubernetes {
                    target: format!("manifest {repo_path}"),
                    problem,
                },
            )?;
            Some(ManifestChecked {
                file: file.clone(),
                repo_path: repo_path.clone(),
                text,
            })
        }
        _ => None,
    };
    for n in &notes {
        println!("{}: {n}", plan.app);
    }
    Ok(KubeChecked {
        conn: Arc::new(conn),
        namespace: k.namespace.clone(),
        name,
        container,
        previous_image,
        previous_revision: progress::revision(&d.metadata),
        manifest,
        notes,
    })
}

/// The change cause recorded on the Deployment (`kubectl rollout history` shows it).
pub(crate) fn change_cause(plan: &AppPlan, run: Option<&str>) -> String {
    let mut cause = format!("ecs-deploy: {} {}", plan.app, plan.version.value);
    if let Some(r) = run {
        cause.push_str(&format!(" ({r})"));
    }
    cause
}

/// The strategic merge patch that sets one container's image, with the change cause (and a
/// restart stamp when the image is the same, as `kubectl rollout restart` does). Pure.
pub(crate) fn image_patch(
    container: &str,
    image: &str,
    cause: &str,
    restart: Option<&str>,
) -> serde_json::Value {
    let mut p = json!({
        "metadata": {"annotations": {progress::CHANGE_CAUSE: cause}},
        "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}
    });
    if let Some(at) = restart {
        p["spec"]["template"]["metadata"] =
            json!({"annotations": {"kubectl.kubernetes.io/restartedAt": at}});
    }
    p
}

pub use super::timing::{Cadence, Timing};

/// Deploys `image` to the checked Deployment with its timing given (tests shorten it): wait for
/// a rollout already in progress, patch, follow, roll back on failure, commit the manifest. A
/// run goes through [`deploy_gated`], which adds the verification gate.
pub async fn deploy_with(
    checked: &KubeChecked,
    plan: &AppPlan,
    image: &str,
    cancel: &CancellationToken,
    report: &mut Outcome,
    timing: Timing,
) -> Result<()> {
    let strategy = Kubernetes {
        checked,
        plan,
        image,
        cancel,
        timing,
        gate: None,
    };
    strategy::drive_into(&strategy, report).await
}

/// What a deploy with the verification gate is given: the checked Deployment, the plan, the
/// image, and the gate run after the rollout (`verify-*`), when set.
pub(crate) struct Gated<'a> {
    pub(crate) checked: &'a KubeChecked,
    pub(crate) plan: &'a AppPlan,
    pub(crate) image: &'a str,
    pub(crate) gate: Option<crate::verify::Gate>,
}

/// [`deploy`] with the verification gate after the rollout: a failed verification undoes it as
/// a failed rollout would be.
pub(crate) async fn deploy_gated(
    g: Gated<'_>,
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<()> {
    let strategy = Kubernetes {
        checked: g.checked,
        plan: g.plan,
        image: g.image,
        cancel,
        timing: Timing::of(&g.plan.settings.rollout),
        gate: g.gate,
    };
    strategy::drive_into(&strategy, report).await
}

/// The Kubernetes path of one Deployment: what [`Strategy`]'s phases need.
pub(crate) struct Kubernetes<'a> {
    checked: &'a KubeChecked,
    plan: &'a AppPlan,
    image: &'a str,
    cancel: &'a CancellationToken,
    timing: Timing,
    /// The verification gate run after the rollout (`verify-*`), when set.
    gate: Option<crate::verify::Gate>,
}

/// What the image patch left to follow.
pub(crate) enum Started {
    /// The Deployment already ran the image: nothing was patched.
    Unchanged,
    /// Patched: the generation the controller is to roll out.
    Patched { generation: i64 },
}

impl Strategy for Kubernetes<'_> {
    type Started = Started;
    type Stopped = Error;

    fn path(&self) -> DeployPath {
        DeployPath::Kubernetes
    }

    fn follows(&self) -> bool {
        self.plan.settings.rollout.wait_for_service_stability
    }

    fn gate_after_follow(&self) -> Option<strategy::AfterFollow<'_>> {
        Some(strategy::AfterFollow {
            gate: self.gate.as_ref()?,
            cancel: self.cancel,
            target: format!("{} ({})", self.plan.app, self.checked.target()),
        })
    }

    /// A failed verification undoes the rollout as a failed rollout would be.
    fn verification_stop(&self, error: Error) -> Result<Error> {
        Ok(error)
    }

    /// Waits for a rollout already in progress, then patches the image (with its change cause).
    async fn start(&self, report: &mut Outcome) -> std::result::Result<Started, StrategyEnded> {
        let (checked, plan, image) = (self.checked, self.plan, self.image);
        let target = checked.target();
        report.previous_image = Some(checked.previous_image.clone());
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled {
                what: format!("before updating {target}"),
            }
            .into());
        }
        // Never patch over a rollout still going (another run's, a person's): wait for it; what
        // it leaves is what ours starts from.
        let before =
            wait_for_rollout_in_progress(checked, &plan.app, &self.timing, self.cancel, report)
                .await?;
        let previous_image =
            progress::template_image(progress::template(&before), &checked.container)
                .unwrap_or_default()
                .to_string();
        println!(
            "{}: {target} on {}: container {} runs {previous_image} (revision {})",
            plan.app,
            checked.conn.describe(),
            checked.container,
            progress::revision(&before.metadata)
                .map(|r| r.to_string())
                .unwrap_or_else(|| "?".into())
        );
        report.previous_image = Some(previous_image.clone());
        let same = previous_image == image;
        if same && !plan.settings.rollout.force_new_deployment {
            let what = format!(
                "{target} already runs {image}: nothing patched (set force-new-deployment: true to restart its pods anyway)"
            );
            println!("{}: {what}", plan.app);
            report.steps.push(what);
            return Ok(Started::Unchanged);
        }
        let run = plan
            .settings
            .kubernetes
            .as_ref()
            .and_then(|k| k.run_url.as_deref());
        let cause = change_cause(plan, run);
        let restart = same.then(now_rfc3339);
        let patch = image_patch(&checked.container, image, &cause, restart.as_deref());
        let client = checked.conn.client().await?;
        let api: Api<Deployment> = Api::namespaced(client, &checked.namespace);
        let patched = api
            .patch(&checked.name, &patch_params(), &Patch::Strategic(&patch))
            .await
            .map_err(|e| api_error(&target, "patching its image", e))?;
        let generation = patched.metadata.generation.unwrap_or(0);
        let step = format!(
            "{target}: container {} → {image} (generation {generation})",
            checked.container
        );
        println!("{}: {step}", plan.app);
        report.steps.push(step);
        if !self.follows() {
            println!(
                "{}: not waiting for the rollout (wait-for-service-stability: false)",
                plan.app
            );
        }
        Ok(Started::Patched { generation })
    }

    /// Follows the rollout as `kubectl rollout status` does; commits the manifest once done.
    async fn follow(&self, started: &mut Started, report: &mut Outcome) -> Result<Followed<Error>> {
        let (checked, plan, image) = (self.checked, self.plan, self.image);
        let Started::Patched { generation } = *started else {
            return Ok(Followed::Succeeded);
        };
        let target = checked.target();
        let follow = Follow {
            label: &plan.app,
            target: &target,
            checked,
            image,
            generation,
            timeout: self.timing.timeout,
            poll: self.timing.cadence.interval_or(POLL),
            judged: Judged::Current,
        };
        Ok(match follow.run(self.cancel).await? {
            Ended::Done { revision } => {
                let revision = revision.map(|r| r.to_string()).unwrap_or_default();
                report.deployment_id = Some(revision.clone());
                let step =
                    format!("{target}: revision {revision} rolled out, every replica available");
                println!("{}: {step}", plan.app);
                report.steps.push(step);
                if let Some(m) = &checked.manifest {
                    commit_manifest(checked, m, plan, image, report).await;
                }
                Followed::Succeeded
            }
            Ended::Overtaken(why) => Followed::Superseded(Error::Kubernetes {
                target,
                problem: format!(
                    "{why}; the newer change is left in place (no rollback), check who changed it"
                ),
            }),
            Ended::Failed(why) => Followed::Stopped(Error::Deployment {
                target: target.clone(),
                deployment_id: format!("generation {generation}"),
                problem: why,
            }),
            Ended::TimedOut(waited) => Followed::Stopped(Error::Deployment {
                target: target.clone(),
                deployment_id: format!("generation {generation}"),
                problem: format!(
                    "did not finish rolling out within {} min (wait-for-minutes)",
                    waited.as_secs() / 60
                ),
            }),
            Ended::Cancelled => Followed::Stopped(Error::Cancelled {
                what: format!("while {target} was rolling out"),
            }),
        })
    }

    /// `kubectl rollout undo`: the previous revision's template back, followed until available.
    async fn roll_back(
        &self,
        started: Started,
        cause: Error,
        report: &mut Outcome,
    ) -> StrategyEnded {
        if let Started::Unchanged = started {
            // Nothing was patched: there is nothing of ours to undo.
            return StrategyEnded::of(cause);
        }
        if self.plan.settings.rollout.rollback_on_failure {
            rollback::undo(self.checked, self.plan, cause, &self.timing, report).await
        } else {
            println!(
                "{}: not rolling back (rollback-on-failure: false)",
                self.plan.app
            );
            StrategyEnded::of(cause)
        }
    }
}

/// Waits (within `timing.timeout`) for a rollout of the Deployment already in progress to end,
/// with a line each time its counts change, before anything is patched; past the time, fails
/// with nothing patched. One the controller gave up on (progress deadline exceeded) is not
/// waited for: ours replaces it. Returns the Deployment as it is then.
pub(crate) async fn wait_for_rollout_in_progress(
    checked: &KubeChecked,
    label: &str,
    timing: &Timing,
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<Deployment> {
    let target = checked.target();
    let fail = |problem: String| Error::Kubernetes {
        target: target.clone(),
        problem,
    };
    let wait = poll::Wait {
        label,
        what: target.clone(),
        where_to_look: checked.status_command(),
        deadline: Instant::now() + timing.timeout,
        cancel: Some(cancel),
        cap: timing.cadence.interval_or(POLL),
        fail: &fail,
    };
    let started = Instant::now();
    let mut first: Option<String> = None;
    let mut last: Option<Option<String>> = None;
    let ended = poll::until(
        &wait,
        &mut last,
        |_: &(), _| timing.cadence.interval_or(POLL),
        async |due: Instant| {
            poll::at(due).await;
            let client = checked.conn.client().await.map_err(Failure::fatal)?;
            let api: Api<Deployment> = Api::namespaced(client, &checked.namespace);
            let d = api
                .get(&checked.name)
                .await
                .map_err(|e| failure(&target, "reading it before the patch", e))?;
            let what = match progress::assess(&d) {
                Rollout::Done => return Ok((Look::Done((d, None)), None)),
                Rollout::Failed(why) => return Ok((Look::Done((d, Some(why))), None)),
                Rollout::Waiting(what) => what,
            };
            if first.is_none() {
                let line = format!(
                    "a rollout of {target} is already in progress ({what}): waiting for it to end (up to {}) before patching ours",
                    span(timing.timeout)
                );
                println!("{label}: {line}");
                report.steps.push(line);
                first = Some(what.clone());
            }
            let line = format!("{} ({what})", progress::counts(&d));
            Ok((Look::Running(()), Some(line)))
        },
        |_, line: &Option<String>, _| {
            if let Some(line) = line {
                println!("{label}: in progress: {line}");
            }
        },
    )
    .await?;
    match ended {
        poll::Ended::Done((d, None)) => {
            if first.is_some() {
                let line = format!(
                    "the rollout already in progress ended after {} s ({}); patching ours",
                    started.elapsed().as_secs(),
                    progress::counts(&d)
                );
                println!("{label}: {line}");
                report.steps.push(format!("{target}: {line}"));
            }
            Ok(d)
        }
        poll::Ended::Done((d, Some(why))) => {
            let line = format!("the rollout already there failed ({why}); ours replaces it");
            println!("{label}: {line}");
            report.steps.push(format!("{target}: {line}"));
            Ok(d)
        }
        poll::Ended::TimedOut => Err(Error::Kubernetes {
            problem: format!(
                "a rollout already in progress ({}) had not ended after {} (wait-for-minutes; now: {}): nothing was patched; wait for it to end ({}) or undo it, and run again",
                first.unwrap_or_default(),
                span(timing.timeout),
                last.flatten().unwrap_or_default(),
                checked.status_command()
            ),
            target,
        }),
        poll::Ended::Cancelled => Err(Error::Cancelled {
            what: format!(
                "while waiting for the rollout already in progress of {target}; nothing was patched"
            ),
        }),
    }
}

/// A wait as people say it: `20 min`, or `90 s` when not whole minutes. Pure.
pub(crate) fn span(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// The ReplicaSets the Deployment's selector matches (its own and any other's with the same
/// labels: [`progress::owned_by`] tells them apart).
pub(crate) async fn replica_sets(
    client: &kube::Client,
    namespace: &str,
    d: &Deployment,
) -> std::result::Result<Vec<ReplicaSet>, kube::Error> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default().labels(&progress::selector(d)))
        .await
        .map(|l| l.items)
}

/// Now as RFC 3339, for the restart stamp.
fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Updates and commits the manifest; any failure is a warning (the rollout already counts).
async fn commit_manifest(
    checked: &KubeChecked,
    m: &ManifestChecked,
    plan: &AppPlan,
    image: &str,
    report: &mut Outcome,
) {
    let warn = |report: &mut Outcome, why: String| {
        let line = format!(
            "{}: manifest {} not committed: {why}",
            plan.app, m.repo_path
        );
        crate::runner::console::warning(&line);
        report
            .steps
            .push(format!("manifest {} not committed: {why}", m.repo_path));
    };
    let Some(git) = plan
        .settings
        .kubernetes
        .as_ref()
        .and_then(|k| k.git.as_ref())
    else {
        return warn(report, "no repository context".into());
    };
    if git.token.is_none() {
        return warn(
            report,
            "no `github-token` (it needs contents: write); the deploy still counts".into(),
        );
    }
    let new = match manifest::set_image(&m.text, &checked.name, &checked.container, image) {
        Ok((new, _)) => new,
        Err(why) => return warn(report, why),
    };
    if new == m.text {
        report
            .steps
            .push(format!("manifest {} already names {image}", m.repo_path));
        return;
    }
    let c = manifest::Commit {
        git,
        path: &m.repo_path,
        old: &m.text,
        new: &new,
        message: format!("deploy: {} {} [skip ci]", plan.app, plan.version.value),
    };
    match manifest::commit(&c).await {
        Ok(sha) => {
            // The workspace follows the branch, so later steps see what was committed.
            let _ = std::fs::write(&m.file, &new);
            let step = format!(
                "manifest {} committed to {} ({})",
                m.repo_path,
                git.branch,
                &sha[..sha.len().min(12)]
            );
            println!("{}: {step}", plan.app);
            report.steps.push(step);
        }
        Err(e) => warn(report, e.to_string()),
    }
}

/// How a followed rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Every replica of our template updated and available; the revision it got.
    Done { revision: Option<i64> },
    /// The controller gave up, or a new pod cannot start.
    Failed(String),
    /// Someone else changed the Deployment's template while it rolled out.
    Overtaken(String),
    /// No end within the limit (how long was waited).
    TimedOut(Duration),
    /// The run was cancelled.
    Cancelled,
}

/// Whose pods a follow reads for problems, and whose deadline can fail it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged<'a> {
    /// The ReplicaSet of the Deployment's current revision: a rollout of ours.
    Current,
    /// The ReplicaSet a rollback restores (its name, and its pods' `pod-template-hash`
    /// selector): the failed ReplicaSet's pods are terminating, not the rollback's.
    Restored { name: &'a str, pods: &'a str },
}

/// Following one rollout: of `image` in `checked.container`, from `generation` on.
#[derive(Debug, Clone, Copy)]
pub struct Follow<'a> {
    pub label: &'a str,
    pub target: &'a str,
    pub checked: &'a KubeChecked,
    pub image: &'a str,
    pub generation: i64,
    pub timeout: Duration,
    pub poll: Duration,
    pub judged: Judged<'a>,
}

impl Follow<'_> {
    /// Looks at the rollout every `poll` (on the shared wait loop) until it ends, printing a
    /// line when its counts change and each new warning about its pods. An API error that is
    /// not throttling or transient ends it with the error.
    pub async fn run(&self, cancel: &CancellationToken) -> Result<Ended> {
        let fail = |problem: String| Error::Kubernetes {
            target: self.target.to_string(),
            problem,
        };
        let wait = poll::Wait {
            label: self.label,
            what: self.target.to_string(),
            where_to_look: self.checked.status_command(),
            deadline: Instant::now() + self.timeout,
            cancel: Some(cancel),
            cap: self.poll,
            fail: &fail,
        };
        let mut seen = HashSet::new();
        let ended = poll::until(
            &wait,
            &mut None,
            |_: &(), _| self.poll,
            async |due: Instant| {
                poll::at(due).await;
                self.look(&mut seen).await
            },
            |_, line: &Option<String>, _| {
                if let Some(line) = line {
                    println!("{}: {line}", self.label);
                }
            },
        )
        .await?;
        Ok(match ended {
            poll::Ended::Done(e) => e,
            poll::Ended::TimedOut => Ended::TimedOut(self.timeout),
            poll::Ended::Cancelled => Ended::Cancelled,
        })
    }

    /// One look: the Deployment, then (while it runs) the judged pods and their new warnings.
    async fn look(
        &self,
        seen: &mut HashSet<String>,
    ) -> std::result::Result<(Look<Ended, ()>, Option<String>), Failure> {
        let client = self.checked.conn.client().await.map_err(Failure::fatal)?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &self.checked.namespace);
        let d = deployments
            .get(&self.checked.name)
            .await
            .map_err(|e| failure(self.target, "reading its rollout", e))?;
        let now_image = progress::template_image(progress::template(&d), &self.checked.container)
            .unwrap_or_default();
        if d.metadata.generation.unwrap_or(0) > self.generation && now_image != self.image {
            return Ok((
                Look::Done(Ended::Overtaken(format!(
                    "changed by someone else while rolling out: container {} now runs {now_image} (generation {})",
                    self.checked.container,
                    d.metadata.generation.unwrap_or(0)
                ))),
                None,
            ));
        }
        let toward = match self.judged {
            Judged::Current => None,
            Judged::Restored { name, .. } => Some(name),
        };
        let waiting = match progress::assess_toward(&d, toward) {
            Rollout::Done => {
                let line = format!("{} (done)", progress::counts(&d));
                let revision = progress::revision(&d.metadata);
                return Ok((Look::Done(Ended::Done { revision }), Some(line)));
            }
            Rollout::Failed(why) => return Ok((Look::Done(Ended::Failed(why)), None)),
            Rollout::Waiting(w) => w,
        };
        let (problems, warnings) = self.pods(&client, &d, seen).await?;
        for w in warnings {
            println!("{}: {w}", self.label);
        }
        let mut line = format!("{} ({waiting})", progress::counts(&d));
        for p in &problems {
            line.push_str(&format!("; {}", p.line()));
        }
        if let Some(p) = progress::fatal_problem(&problems) {
            let whose = match self.judged {
                Judged::Current => "a new pod",
                Judged::Restored { .. } => "a pod of the restored ReplicaSet",
            };
            let why = format!("{whose} cannot start: {}", p.line());
            return Ok((Look::Done(Ended::Failed(why)), Some(line)));
        }
        Ok((Look::Running(()), Some(line)))
    }

    /// The judged pods: their problems, and warning events not shown yet.
    async fn pods(
        &self,
        client: &kube::Client,
        d: &Deployment,
        seen: &mut HashSet<String>,
    ) -> std::result::Result<(Vec<progress::PodProblem>, Vec<String>), Failure> {
        let ns = &self.checked.namespace;
        let pod_selector = match self.judged {
            Judged::Restored { pods, .. } => pods.to_string(),
            Judged::Current => {
                let sets = replica_sets(client, ns, d)
                    .await
                    .map_err(|e| failure(self.target, "listing its ReplicaSets", e))?;
                let Some(selector) =
                    progress::current_replica_set(d, &sets).and_then(progress::pod_selector)
                else {
                    return Ok((Vec::new(), Vec::new()));
                };
                selector
            }
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pods = pods
            .list(&ListParams::default().labels(&pod_selector))
            .await
            .map_err(|e| failure(self.target, "listing its pods", e))?;
        let problems = progress::pod_problems(&pods.items);
        let names: Vec<&str> = pods
            .items
            .iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        let warnings = if names.is_empty() {
            Vec::new()
        } else {
            let events: Api<Event> = Api::namespaced(client.clone(), ns);
            match events
                .list(&ListParams::default().fields("involvedObject.kind=Pod"))
                .await
            {
                Ok(list) => progress::new_warnings(&list.items, &names, seen),
                // Events are for people; a cluster that hides them does not stop the rollout.
                Err(_) => Vec::new(),
            }
        };
        Ok((problems, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": code, "message": "m", "reason": "r"
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn api_errors_are_throttled_transient_or_fatal_for_the_wait_loop() {
        assert_eq!(kind_of(&api(429)), Kind::Throttled);
        assert_eq!(kind_of(&api(500)), Kind::Transient);
        assert_eq!(kind_of(&api(503)), Kind::Transient);
        for fatal in [401, 403, 404, 422] {
            assert_eq!(kind_of(&api(fatal)), Kind::Fatal, "{fatal}");
        }
        let io = kube::Error::ReadEvents(std::io::Error::other("connection reset"));
        assert_eq!(kind_of(&io), Kind::Transient);
    }

    #[test]
    fn a_wait_is_said_in_minutes_when_whole_else_in_seconds() {
        assert_eq!(span(Duration::from_secs(30 * 60)), "30 min");
        assert_eq!(span(Duration::from_secs(90)), "90 s");
        assert_eq!(span(Duration::from_secs(2)), "2 s");
    }

    #[test]
    fn the_image_patch_names_the_container_and_the_cause() {
        let p = image_patch("web", "r/web:v2", "ecs-deploy: web 1.2.3", None);
        assert_eq!(
            p,
            json!({
                "metadata": {"annotations": {"kubernetes.io/change-cause": "ecs-deploy: web 1.2.3"}},
                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "r/web:v2"}]}}}
            })
        );
        let p = image_patch("web", "r/web:v2", "c", Some("2024-01-01T00:00:00Z"));
        assert_eq!(
            p["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            "2024-01-01T00:00:00Z"
        );
    }
}
