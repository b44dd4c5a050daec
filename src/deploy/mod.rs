//! Deploying a checked target: one entry ([`deploy`]) for every path (rolling, CodeDeploy, ECS
//! blue/green, Kubernetes), handing back an [`Outcome`].
//!
//! Every path is a [`strategy::Strategy`] (start, follow, roll back) in its own folder
//! (`rolling/`, `codedeploy/`, `bluegreen/`, `kubernetes/`: `mod.rs` the strategy, `progress.rs`
//! the pure reading of what the service says, `rollback.rs`), driven by the one story in
//! `strategy.rs`. The ECS skeleton every ECS path shares lives here once: render and register
//! ([`prepare`]), the unchanged guard, the one-off task. Shared helpers are one noun per file:
//! `service` (describe, update), `register` (task definitions as raw JSON), `poll` (the one wait
//! loop and the run's shared poller), `run_task`, `appspec`, `diagnosis`.

pub mod appspec;
pub mod bluegreen;
pub mod codedeploy;
pub mod diagnosis;
pub mod kubernetes;
pub mod poll;
pub mod register;
pub mod revisions;
pub mod rolling;
pub mod run_task;
pub mod service;
pub(crate) mod strategy;
pub mod timing;

use std::time::Duration;

use aws_sdk_ecs::types::{DeploymentControllerType, DeploymentStrategy, Service};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::inputs::DeploymentChoice;
use crate::outcome::{Failed, Outcome, Status};
use crate::plan::{AppPlan, DeployPlan};
use crate::runner::shutdown::unless_cancelled;
use crate::task_definition;

/// What every deployment path starts from, once the task definition is registered (or found to
/// be the live one already).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub cluster: String,
    pub service: String,
    /// The service as described before the deploy.
    pub live: aws_sdk_ecs::types::Service,
    /// The task definition to deploy (newly registered, or the live one when nothing changed).
    pub task_definition_arn: String,
    /// The service's task definition before the deploy (the rollback target).
    pub previous_task_definition_arn: Option<String>,
    /// The container that got the new image.
    pub container: String,
    /// That container's first port (load balancer target of blue/green paths), if it has one.
    pub container_port: Option<i32>,
    /// False when the rendered task definition equals the live one: nothing was registered.
    pub changed: bool,
    /// A new deployment is wanted even when nothing changed: `force-new-deployment`, or a rebuilt
    /// tag whose new digest the running tasks do not run yet.
    pub redeploy: bool,
    /// The task definition as rendered (raw JSON): what was registered, or the live one.
    pub task_definition: Value,
    /// The CodeDeploy application and group the preflight checked (CodeDeploy path only).
    pub codedeploy: Option<codedeploy::CodeDeployTarget>,
    /// For a same-revision deploy (force-new-deployment, a rebuilt tag): the image digest the
    /// service's tasks ran before, which a rollback pins in a new revision (going "back" to the
    /// same revision would redeploy the failing image).
    pub previous_digest: Option<String>,
}

/// What the preflight read and checked about a service before the first write. [`prepare`]
/// consumes it, so the deploy never reads the service or its task definition again.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The service as described (ACTIVE).
    pub live: Service,
    /// The path its controller and strategy (and the `deployment` input) call for.
    pub path: DeployPath,
    /// Where the task definition to render comes from, for messages: the file or the live ARN.
    pub source_name: String,
    /// The task definition to render: the `task-definition` file or the live one.
    pub base: Value,
    /// The live task definition (raw JSON), when the service has one.
    pub live_task_definition: Option<Value>,
    /// The container that gets the app's image (present in `base`).
    pub container: String,
    /// The CodeDeploy application and group (CodeDeploy path only).
    pub codedeploy: Option<codedeploy::CodeDeployTarget>,
}

pub use crate::outcome::DeployPath;

/// Chooses the path from the `deployment` input and the service's deployment controller type
/// and strategy (absent means ECS and ROLLING, as ECS defaults). The error says why the service
/// cannot take the asked path and what to change.
pub(crate) fn choose_path(
    choice: DeploymentChoice,
    controller: Option<&DeploymentControllerType>,
    strategy: Option<&DeploymentStrategy>,
) -> std::result::Result<DeployPath, String> {
    let controller = controller.unwrap_or(&DeploymentControllerType::Ecs);
    let strategy = strategy.unwrap_or(&DeploymentStrategy::Rolling);
    let natural = match (controller, strategy) {
        (DeploymentControllerType::Ecs, DeploymentStrategy::Rolling) => Ok(DeployPath::Rolling),
        (
            DeploymentControllerType::Ecs,
            DeploymentStrategy::BlueGreen | DeploymentStrategy::Linear | DeploymentStrategy::Canary,
        ) => Ok(DeployPath::EcsBlueGreen),
        (DeploymentControllerType::Ecs, other) => Err(format!(
            "uses the deployment strategy {}, which this action does not know; use ROLLING, BLUE_GREEN, LINEAR or CANARY",
            other.as_str()
        )),
        (DeploymentControllerType::CodeDeploy, _) => Ok(DeployPath::CodeDeploy),
        (DeploymentControllerType::External, _) => Err(
            "uses the EXTERNAL deployment controller: its deployments are made with task sets by another tool, not by this action; deploy it with that tool, or recreate the service with the ECS or CODE_DEPLOY controller".into(),
        ),
        (other, _) => Err(format!(
            "uses the deployment controller {}, which this action does not know; use ECS or CODE_DEPLOY",
            other.as_str()
        )),
    };
    let (controller, strategy) = (controller.as_str(), strategy.as_str());
    let want = match choice {
        DeploymentChoice::Auto => return natural,
        DeploymentChoice::Rolling => DeployPath::Rolling,
        DeploymentChoice::CodeDeploy => DeployPath::CodeDeploy,
        DeploymentChoice::EcsBlueGreen => DeployPath::EcsBlueGreen,
        DeploymentChoice::Kubernetes => {
            return Err(
                "cannot take `deployment: kubernetes`: that is for a Kubernetes Deployment (give eks-cluster or kubeconfig instead of service)".into(),
            );
        }
    };
    match natural {
        Ok(p) if p == want => Ok(p),
        Ok(_) => Err(format!(
            "cannot take `deployment: {}`: it has the {controller} deployment controller with the {strategy} strategy, which needs {}; set `deployment: auto` or change the service",
            choice.as_str(),
            match want {
                DeployPath::Rolling => "the ECS controller with the ROLLING strategy",
                DeployPath::CodeDeploy => "the CODE_DEPLOY controller",
                DeployPath::EcsBlueGreen =>
                    "the ECS controller with the BLUE_GREEN, LINEAR or CANARY strategy",
                DeployPath::Kubernetes => "a Kubernetes Deployment (eks-cluster or kubeconfig)",
            }
        )),
        Err(e) => Err(e),
    }
}

/// The service's deployment controller type and strategy, as [`choose_path`] takes them.
pub(crate) fn controller_and_strategy(
    service: &Service,
) -> (
    Option<&DeploymentControllerType>,
    Option<&DeploymentStrategy>,
) {
    (
        service.deployment_controller().map(|c| c.r#type()),
        service
            .deployment_configuration()
            .and_then(|c| c.strategy()),
    )
}

/// An [`Error::Service`] for the plan's service.
pub(crate) fn service_error(d: &DeployPlan, problem: impl Into<String>) -> Error {
    Error::Service {
        cluster: d.cluster.clone(),
        service: d.service.clone(),
        problem: problem.into(),
    }
}

/// Renders the new task definition and compares it with the live one: `(rendered, changed)`.
/// Pure: the same file and image as what runs gives `changed == false`.
pub(crate) fn render_and_compare(
    source_name: &str,
    base: &Value,
    live: Option<&Value>,
    container: Option<&str>,
    image: &str,
    env: &task_definition::ContainerEdits,
) -> Result<(String, Value, bool)> {
    let from = RenderFrom {
        source_name,
        base,
        live,
        container,
    };
    render_with_others(from, image, env, &[])
}

/// What a revision is rendered from: the task definition (`base`, named `source_name` in
/// messages), the live one to compare with, and the container that gets the image (`None`: the
/// only or the app-named one).
#[derive(Debug, Clone, Copy)]
pub struct RenderFrom<'a> {
    pub source_name: &'a str,
    pub base: &'a Value,
    pub live: Option<&'a Value>,
    pub container: Option<&'a str>,
}

impl<'a> RenderFrom<'a> {
    /// From what the preflight checked: its source, the live revision and the chosen container.
    pub(crate) fn checked(checked: &'a Checked) -> RenderFrom<'a> {
        RenderFrom {
            source_name: &checked.source_name,
            base: &checked.base,
            live: checked.live_task_definition.as_ref(),
            container: Some(&checked.container),
        }
    }
}

/// [`render_and_compare`] with every other app's image put into its own container of the same
/// revision (apps deploying one service together). Pure.
pub(crate) fn render_with_others(
    from: RenderFrom<'_>,
    image: &str,
    env: &task_definition::ContainerEdits,
    others: &[Swap],
) -> Result<(String, Value, bool)> {
    let RenderFrom {
        source_name,
        base,
        live,
        container,
    } = from;
    let container = task_definition::pick_container(source_name, base, container)?;
    let mut rendered = task_definition::render(base, &container, image, env)?;
    for o in others {
        task_definition::pick_container(source_name, base, Some(&o.container))?;
        rendered = task_definition::render(&rendered, &o.container, &o.image, &o.env)?;
    }
    let changed = !live.is_some_and(|l| task_definition::equivalent(&rendered, l));
    Ok((container, rendered, changed))
}

/// Renders, compares and (when it changed) registers the task definition: the [`Prepared`]
/// value every path starts from. Reads nothing: the preflight's [`Checked`] holds the service
/// and the task definitions.
pub(crate) async fn prepare(
    aws: &Aws,
    plan: &AppPlan,
    d: &DeployPlan,
    checked: &Checked,
    image: &str,
    others: &[Swap],
) -> Result<Prepared> {
    let (container, rendered, changed) = render_with_others(
        RenderFrom::checked(checked),
        image,
        &plan.settings.ecs.container_edits,
        others,
    )?;
    let previous = checked.live.task_definition().map(str::to_string);
    let task_definition_arn = match (&previous, changed) {
        (Some(arn), false) => arn.clone(),
        _ => {
            let arn = register::register_raw(&aws.ecs, &rendered).await?;
            println!(
                "{}: registered {} ({container} → {image})",
                plan.app,
                crate::task_definition::short_task_definition(&arn)
            );
            for o in others {
                println!(
                    "{}: in the same revision: {} → {} (app {})",
                    plan.app, o.container, o.image, o.app
                );
            }
            arn
        }
    };
    Ok(Prepared {
        cluster: d.cluster.clone(),
        service: d.service.clone(),
        live: checked.live.clone(),
        task_definition_arn,
        previous_task_definition_arn: previous,
        container_port: task_definition::container_port(&rendered, &container),
        container,
        changed,
        redeploy: plan.settings.rollout.force_new_deployment,
        task_definition: rendered,
        codedeploy: checked.codedeploy.clone(),
        previous_digest: None,
    })
}

/// What the preflight checked a target to be: an ECS service (rolling, CodeDeploy, ECS
/// blue/green) or a Kubernetes Deployment.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Ecs(&'a Checked),
    Kubernetes(&'a kubernetes::KubeChecked),
}

impl Target<'_> {
    /// The path this target deploys by.
    pub(crate) fn path(&self) -> DeployPath {
        match self {
            Target::Ecs(c) => c.path,
            Target::Kubernetes(_) => DeployPath::Kubernetes,
        }
    }
}

/// What the deploy of one service is given: the plan that leads it, what the preflight checked,
/// the image (and its digest when the registry told it) and the other apps' images that go into
/// the same revision.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub plan: &'a AppPlan,
    pub checked: Target<'a>,
    pub image: &'a str,
    pub digest: Option<&'a str>,
    pub others: &'a [Swap],
}

/// Deploys the job's image by the path the preflight chose, for every target, and hands back
/// what happened: the [`Outcome`] (kind, ids, steps, links, rollback facts, status), or the
/// same with the error that stopped it. The report is built from that value.
pub async fn deploy(
    aws: &Aws,
    poller: &poll::Poller,
    job: Job<'_>,
    cancel: &CancellationToken,
) -> std::result::Result<Outcome, Failed> {
    let mut outcome = Outcome {
        kind: Some(job.checked.path()),
        ..Outcome::default()
    };
    let r = match job.checked {
        Target::Ecs(checked) => run(aws, poller, (job, checked), cancel, &mut outcome).await,
        Target::Kubernetes(checked) => {
            // The image patch is its first write.
            match unless_cancelled(cancel, || {
                format!(
                    "before updating the Kubernetes Deployment of {}",
                    job.plan.app
                )
            }) {
                Ok(()) => {
                    let gate = job.plan.settings.verify.is_set().then(|| {
                        crate::verify::Gate::new(
                            &job.plan.settings.verify,
                            aws.cloudwatch.clone(),
                            crate::verify::Pace::default(),
                        )
                    });
                    let k = kubernetes::Gated {
                        checked,
                        plan: job.plan,
                        image: job.image,
                        gate,
                    };
                    kubernetes::deploy_gated(k, cancel, &mut outcome).await
                }
                Err(e) => Err(e),
            }
        }
    };
    settle(outcome, r)
}

/// A path's filled outcome and its result as one value. The status is the path's; where the
/// deploy stopped before a path decided (a check, the register, the one-off task), it is
/// `succeeded` without an error and `failed` or `cancelled` by the error's kind.
fn settle(mut outcome: Outcome, r: Result<()>) -> std::result::Result<Outcome, Failed> {
    match r {
        Ok(()) => {
            outcome.status.get_or_insert(Status::Succeeded);
            Ok(outcome)
        }
        Err(error) => {
            outcome
                .status
                .get_or_insert(strategy::Ended::of_kind(&error));
            Err(Failed {
                outcome: Box::new(outcome),
                error,
            })
        }
    }
}

/// The shared skeleton of every path, once: prepare (render, compare, register), the unchanged
/// guard, the one-off task, the path itself, and deregistering a failed revision once traffic is
/// back on the old one. Nothing is read that the preflight already read.
async fn run(
    aws: &Aws,
    poller: &poll::Poller,
    (job, checked): (Job<'_>, &Checked),
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<()> {
    let Job {
        plan,
        image,
        digest,
        others,
        ..
    } = job;
    let Some(d) = &plan.deploy else {
        return Ok(());
    };
    let path = checked.path;
    report.kind = Some(path);
    println!(
        "{}: service {} (cluster {}) deploys by the {} path",
        plan.app,
        d.service,
        d.cluster,
        path.as_str()
    );
    // Never land on top of a deployment already in flight (another run's, a person's): wait
    // for it first; the service it leaves behind is the one ours starts from.
    let settled = wait_for_in_flight(aws, plan, d, checked, cancel, report).await?;
    let checked = settled.as_ref().unwrap_or(checked);
    unless_cancelled(cancel, || {
        format!("before registering a task definition for {}", d.service)
    })?;
    let mut prepared = prepare(aws, plan, d, checked, image, others).await?;
    report.task_definition_arn = Some(prepared.task_definition_arn.clone());
    report.previous_task_definition_arn = prepared.previous_task_definition_arn.clone();
    report.rendered_task_definition = Some(prepared.task_definition.clone());
    // Same task definition, but the tag may now point at a new image (a rebuilt tag): ECS only
    // pulls it with a new deployment, so a changed digest forces one (no new revision).
    if !prepared.changed {
        let tasks = running_tasks(aws, &prepared).await;
        let stale = digest.is_some_and(|d| digest_differs(&tasks, &prepared.container, d));
        if let (true, Some(d)) = (stale, digest) {
            println!(
                "service {}: the task definition is unchanged but its tasks run another image digest than {d}: starting a new deployment",
                prepared.service
            );
        }
        prepared.redeploy = prepared.redeploy || stale;
        // A rollback of a same-revision deploy pins what runs now, by digest.
        prepared.previous_digest = container_digests(&tasks, &prepared.container)
            .find(|r| Some(*r) != digest)
            .map(str::to_string);
    }
    if !prepared.changed && !prepared.redeploy {
        let what = format!(
            "service {} already runs {} with this image and these settings: nothing registered, nothing updated (set force-new-deployment: true to redeploy anyway)",
            d.service,
            crate::task_definition::short_task_definition(&prepared.task_definition_arn)
        );
        println!("{}: {what}", plan.app);
        report.steps.push(what);
        return Ok(());
    }
    if prepared.changed {
        report.steps.push(format!(
            "registered {}",
            crate::task_definition::short_task_definition(&prepared.task_definition_arn)
        ));
    }
    let one_off = match (
        &plan.settings.ecs.run_task_command,
        &plan.settings.ecs.run_task,
    ) {
        (Some(command), _) => Some(run_task::OneOff::Command(command)),
        (None, Some(t)) => Some(run_task::OneOff::Task(t)),
        (None, None) => None,
    };
    if let Some(what) = one_off {
        unless_cancelled(cancel, || {
            format!(
                "after registering {}, before the one-off task (RunTask); the service was not touched",
                crate::task_definition::short_task_definition(&prepared.task_definition_arn)
            )
        })?;
        if let Err(e) = run_task::run_once(
            aws,
            &prepared,
            what,
            (
                service::wait_timeout(plan),
                plan.settings.rollout.poll_cap(),
            ),
            cancel,
            report,
        )
        .await
        {
            if plan.settings.ecs.deregister_failed_task_definition && prepared.changed {
                deregister_failed(aws, plan, &prepared.task_definition_arn, report).await;
            }
            return Err(e);
        }
        report.steps.push(match what {
            run_task::OneOff::Task(t) if !t.wait => "one-off task (run-task) started".into(),
            other => format!("one-off task ({}) exited 0", other.describe()),
        });
    }
    // The rolling path checks right before its UpdateService (rolling/mod.rs); the other two here,
    // before CreateDeployment or the blue/green UpdateService.
    if path != DeployPath::Rolling {
        unless_cancelled(cancel, || {
            format!(
                "before the {} deployment of service {}; the service was not touched",
                path.as_str(),
                d.service
            )
        })?;
    }
    // One match arm a path: each strategy deregisters a failed revision after its own rollback
    // (only once traffic is back: a revision that may still serve stays registered).
    let result = match path {
        DeployPath::Rolling => rolling::deploy(aws, poller, plan, &prepared, cancel, report).await,
        DeployPath::CodeDeploy => {
            codedeploy::deploy(aws, poller, plan, &prepared, cancel, report).await
        }
        DeployPath::EcsBlueGreen => {
            bluegreen::deploy(aws, poller, plan, &prepared, cancel, report).await
        }
        // choose_path never picks it for an ECS service: a Kubernetes target is checked as one.
        DeployPath::Kubernetes => Err(service_error(
            d,
            "is an ECS service; a Kubernetes Deployment is deployed with eks-cluster or kubeconfig",
        )),
    };
    if result.is_ok() {
        keep_task_definitions(aws, plan, &prepared, report).await;
    }
    result
}

/// After a rollback that put traffic back on the previous revision: deregisters the failed
/// one, when `deregister-failed-task-definition` asks and this deploy registered it.
pub(crate) async fn deregister_after_rollback(
    aws: &Aws,
    plan: &AppPlan,
    prepared: &Prepared,
    report: &mut Outcome,
) {
    if plan.settings.ecs.deregister_failed_task_definition && prepared.changed {
        deregister_failed(aws, plan, &prepared.task_definition_arn, report).await;
    }
}

/// The dry run's line for `keep-task-definitions`: what a successful deploy would deregister
/// now (read-only). A deploy that registers a revision makes it the newest, so one fewer of
/// today's revisions would stay.
pub(crate) async fn keep_preview(
    aws: &Aws,
    plan: &AppPlan,
    checked: &Checked,
    image: &str,
) -> Option<String> {
    let keep = plan.settings.ecs.keep_task_definitions?;
    let d = plan.deploy.as_ref()?;
    let family = checked.base.get("family")?.as_str()?;
    let changed = render_and_compare(
        &checked.source_name,
        &checked.base,
        checked.live_task_definition.as_ref(),
        Some(&checked.container),
        image,
        &plan.settings.ecs.container_edits,
    )
    .map_or(true, |(_, _, changed)| changed);
    let k = revisions::Keep {
        family,
        keep: if changed { keep - 1 } else { keep },
        cluster: &d.cluster,
    };
    Some(match revisions::planned(aws, k).await {
        Ok(v) if v.is_empty() => {
            format!(
                "keep-task-definitions: {keep}: no revision of {family} would be deregistered\n"
            )
        }
        Ok(v) => format!(
            "keep-task-definitions: {keep}: after a successful deploy, would deregister {}\n",
            v.iter()
                .map(|a| crate::task_definition::short_task_definition(a))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!(
            "keep-task-definitions: {keep}: could not list what would be deregistered: {e}\n"
        ),
    })
}

/// `keep-task-definitions` after a successful deploy: the family's revisions beyond the newest
/// N that nothing uses are deregistered, and the steps say which. A failure is a warning: the
/// deploy itself succeeded.
async fn keep_task_definitions(
    aws: &Aws,
    plan: &AppPlan,
    prepared: &Prepared,
    report: &mut Outcome,
) {
    let (Some(keep), Some((family, _))) = (
        plan.settings.ecs.keep_task_definitions,
        revisions::family_revision(&prepared.task_definition_arn),
    ) else {
        return;
    };
    let k = revisions::Keep {
        family,
        keep,
        cluster: &prepared.cluster,
    };
    let (done, problem) = match revisions::prune(aws, k).await {
        Ok(done) => (done, None),
        Err((done, e)) => (done, Some(e)),
    };
    let line = if done.is_empty() {
        format!("keep-task-definitions: {keep}: no revision of {family} to deregister")
    } else {
        format!(
            "keep-task-definitions: {keep}: deregistered {}",
            done.join(", ")
        )
    };
    println!("{}: {line}", plan.app);
    report.steps.push(line);
    if let Some(e) = problem {
        crate::runner::console::warning(&format!(
            "{}: the deploy succeeded, but the old revisions of {family} were not all deregistered: {e}",
            plan.app
        ));
    }
}

/// The deployment already in flight on the service, if any, for people: a PRIMARY deployment
/// that still has an older one beside it (ECS is replacing tasks), or a CodeDeploy deployment's
/// second task set. A lone PRIMARY deployment still settling (a new service) is not counted: it
/// replaces nothing. Pure.
pub(crate) fn in_flight(live: &Service) -> Option<String> {
    let deployments = live.deployments();
    let busy = (deployments.len() > 1)
        .then(|| {
            deployments
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
                .or(deployments.first())
        })
        .flatten();
    if let Some(d) = busy {
        return Some(format!(
            "deployment {} ({}, {})",
            d.id().unwrap_or("?"),
            crate::task_definition::short_task_definition(d.task_definition().unwrap_or("?")),
            d.rollout_state().map_or("in progress", |r| r.as_str())
        ));
    }
    let sets = live.task_sets();
    (sets.len() > 1).then(|| {
        format!(
            "a CodeDeploy deployment (task sets {})",
            sets.iter()
                .map(|t| t.id().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Waits (within `wait-for-minutes`) for a deployment already in flight on the service to end,
/// before this run writes anything; past the time, fails with nothing registered or updated.
/// Returns the service as it is then (its task definition re-read if it changed), or `None`
/// when nothing was in flight.
async fn wait_for_in_flight(
    aws: &Aws,
    plan: &AppPlan,
    d: &DeployPlan,
    checked: &Checked,
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<Option<Checked>> {
    let Some(what) = in_flight(&checked.live) else {
        return Ok(None);
    };
    let timeout = service::wait_timeout(plan);
    let line = format!(
        "{what} is already in flight on service {}: waiting for it to end (up to {} min) before starting ours",
        d.service,
        timeout.as_secs() / 60
    );
    println!("{}: {line}", plan.app);
    report.steps.push(line);
    let started = tokio::time::Instant::now();
    let fail = |problem: String| service_error(d, problem);
    let wait = poll::Wait {
        label: &plan.app,
        what: format!("service {}", d.service),
        where_to_look: aws
            .region
            .as_deref()
            .map(|r| crate::aws::ecs_service_url(r, &d.cluster, &d.service))
            .unwrap_or_else(|| "the ECS console".into()),
        deadline: started + timeout,
        cancel: Some(cancel),
        cap: Duration::MAX,
        fail: &fail,
    };
    let look = async |at: tokio::time::Instant| {
        poll::at(at).await;
        let live = service::describe_service(&aws.ecs, &d.cluster, &d.service)
            .await
            .map_err(poll::Failure::fatal)?;
        let now = in_flight(&live);
        Ok(match now {
            None => (poll::Look::Done(live), String::new()),
            Some(w) => (poll::Look::Running(()), w),
        })
    };
    let show = |_: Option<&String>, now: &String, _| {
        if !now.is_empty() {
            println!("{}: still in flight: {now}", plan.app);
        }
    };
    let live = match poll::until(&wait, &mut None, |_, _| IN_FLIGHT_POLL, look, show).await? {
        poll::Ended::Done(live) => live,
        poll::Ended::TimedOut => {
            return Err(fail(format!(
                "{what} was still in flight after {} min (wait-for-minutes): nothing was registered or updated; wait for it to end (or stop it) and run again",
                timeout.as_secs() / 60
            )));
        }
        poll::Ended::Cancelled => {
            return Err(Error::Cancelled {
                what: format!(
                    "while waiting for {what} on service {}; nothing was registered or updated",
                    d.service
                ),
            });
        }
    };
    let ended = format!(
        "{what} ended after {} s; starting ours",
        started.elapsed().as_secs()
    );
    println!("{}: {ended}", plan.app);
    report.steps.push(ended);
    let mut fresh = checked.clone();
    if live.task_definition() != checked.live.task_definition() {
        // It left the service on another revision: that is the one ours starts from.
        if let Some(arn) = live.task_definition() {
            let td = register::describe_raw(&aws.ecs, arn).await?;
            if d.task_definition_file.is_none() && plan.settings.ecs.task_definition_ref.is_none() {
                fresh.source_name = arn.to_string();
                fresh.base = td.clone();
            }
            fresh.live_task_definition = Some(td);
        }
    }
    fresh.live = live;
    Ok(Some(fresh))
}

/// How often a deployment already in flight is looked at while we wait for it to end.
const IN_FLIGHT_POLL: Duration = Duration::from_secs(5);

/// The image digests `container` runs from in `tasks`. Pure.
pub(crate) fn container_digests<'a>(
    tasks: &'a [aws_sdk_ecs::types::Task],
    container: &'a str,
) -> impl Iterator<Item = &'a str> {
    tasks
        .iter()
        .flat_map(|t| t.containers())
        .filter(move |c| c.name() == Some(container))
        .filter_map(|c| c.image_digest())
}

/// True when a running task of the service runs `container` from an image digest other than
/// `digest`. Pure, so each case is tested.
pub(crate) fn digest_differs(
    tasks: &[aws_sdk_ecs::types::Task],
    container: &str,
    digest: &str,
) -> bool {
    container_digests(tasks, container).any(|d| d != digest)
}

/// The service's running tasks (empty when unknown: none, or a read error). Read only for a
/// same-revision deploy: whether a rebuilt tag needs a new deployment, and the digest a rollback
/// pins.
async fn running_tasks(aws: &Aws, prepared: &Prepared) -> Vec<aws_sdk_ecs::types::Task> {
    let Ok(listed) = aws
        .ecs
        .list_tasks()
        .cluster(&prepared.cluster)
        .service_name(&prepared.service)
        .send()
        .await
    else {
        return Vec::new();
    };
    if listed.task_arns().is_empty() {
        return Vec::new();
    }
    aws.ecs
        .describe_tasks()
        .cluster(&prepared.cluster)
        .set_tasks(Some(listed.task_arns().iter().take(100).cloned().collect()))
        .send()
        .await
        .map(|d| d.tasks().to_vec())
        .unwrap_or_default()
}

/// Another container of the same service that gets its own app's image in the same revision
/// (the `config` form: several apps naming one service, each with its own `container-name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Swap {
    /// The app whose image it is, for the log.
    pub app: String,
    pub container: String,
    pub image: String,
    pub env: task_definition::ContainerEdits,
}

impl Swap {
    /// `plan`'s image `image` for its own container, with its environment variables.
    pub(crate) fn for_app(plan: &AppPlan, image: String) -> Swap {
        Swap {
            app: plan.app.clone(),
            container: planned_container(plan).unwrap_or_default().to_string(),
            image,
            env: plan.settings.ecs.container_edits.clone(),
        }
    }
}

/// The container an app's image goes into, when the plan names one.
pub(crate) fn planned_container(plan: &AppPlan) -> Option<&str> {
    plan.deploy
        .as_ref()
        .and_then(|d| d.container.as_deref())
        .or(plan.settings.rollout.container_name.as_deref())
}

/// The settings of a deployment as a whole (one per service): apps deploying one service
/// together must agree on them, because the service gets one revision and one deployment.
fn service_settings(a: &AppPlan) -> String {
    let s = &a.settings;
    let d = a.deploy.as_ref();
    format!(
        "deployment={:?} task-definition={:?} task-definition-arn/family={:?} keep-null-value-keys={:?} {:?} codedeploy-appspec={:?} wait-for-service-stability={} wait-for-minutes={} fail-fast-after-stopped-tasks={} rollback-on-failure={} deregister-failed-task-definition={} force-new-deployment={} run-task-command={:?} run-task={:?} codedeploy-application={:?} codedeploy-deployment-group={:?} codedeploy-deployment-config={:?} codedeploy-deployment-description={:?}",
        d.map(|d| d.deployment.as_str()),
        d.and_then(|d| d.task_definition_file.as_ref().map(|(p, _)| p.clone())),
        s.ecs.task_definition_ref,
        s.ecs.keep_null_value_keys,
        s.ecs.service_update,
        d.and_then(|d| d.appspec_file.as_ref().map(|(p, _)| p.clone())),
        s.rollout.wait_for_service_stability,
        s.rollout.wait_for_minutes,
        s.ecs.fail_fast_after_stopped_tasks,
        s.rollout.rollback_on_failure,
        s.ecs.deregister_failed_task_definition,
        s.rollout.force_new_deployment,
        s.ecs.run_task_command,
        s.ecs.run_task,
        s.codedeploy.application,
        s.codedeploy.deployment_group,
        s.codedeploy.deployment_config,
        s.codedeploy.deployment_description,
    )
}

/// Groups the apps of a run by the service they deploy (indices into `apps`, in plan order;
/// build-only apps stand alone). Apps sharing a service deploy together: one revision with each
/// app's image in its own container, one deployment, led by the first of them. Refused before
/// anything is built or written: two apps of one service without distinct `container-name`s
/// (the second update would undo the first's image), or with different deployment settings.
pub(crate) fn service_groups(apps: &[AppPlan]) -> Result<Vec<Vec<usize>>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, a) in apps.iter().enumerate() {
        let Some(d) = &a.deploy else {
            groups.push(vec![i]);
            continue;
        };
        let same = groups.iter_mut().find(|g| {
            apps[g[0]]
                .deploy
                .as_ref()
                .is_some_and(|l| l.cluster == d.cluster && l.service == d.service)
        });
        match same {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    for g in groups.iter().filter(|g| g.len() > 1) {
        let lead = &apps[g[0]];
        let Some(d) = &lead.deploy else { continue };
        let names: Vec<&str> = g.iter().map(|&i| apps[i].app.as_str()).collect();
        let conflict = |message: String| Error::InputConflict { message };
        let lead_settings = service_settings(lead);
        let mut containers: Vec<(&str, &str)> = Vec::new();
        for &i in g {
            let a = &apps[i];
            let Some(c) = planned_container(a) else {
                return Err(conflict(format!(
                    "apps {} all deploy service {} in cluster {}: each needs its own `container-name` (app {} has none), so that each image goes into its own container of one revision",
                    names.join(", "),
                    d.service,
                    d.cluster,
                    a.app
                )));
            };
            if let Some((other, _)) = containers.iter().find(|(_, oc)| *oc == c) {
                return Err(conflict(format!(
                    "apps {other} and {} both put their image into container {c} of service {} in cluster {}: give each app its own `container-name`",
                    a.app, d.service, d.cluster
                )));
            }
            containers.push((&a.app, c));
            let settings = service_settings(a);
            if settings != lead_settings {
                return Err(conflict(format!(
                    "apps {} and {} deploy service {} in cluster {} together (one revision, one deployment) but disagree on its deployment settings ({} vs {}): set those in `defaults` or on {} only",
                    lead.app, a.app, d.service, d.cluster, lead_settings, settings, lead.app
                )));
            }
        }
    }
    Ok(groups)
}

/// What a deploy would do, from what the preflight read (pure): the path, and the diff between
/// the live task definition and the one that would be registered. `unread` is the preflight's
/// reason when it could not read the service (a dry run without AWS): then the diff is against
/// the `task-definition` file, or the error says there is nothing to show.
pub(crate) fn preview(
    plan: &AppPlan,
    checked: std::result::Result<&Checked, &str>,
    image: &str,
    others: &[Swap],
) -> Result<String> {
    let Some(d) = &plan.deploy else {
        return Ok(String::new());
    };
    let env = &plan.settings.ecs.container_edits;
    let checked = match checked {
        Ok(c) => c,
        Err(why) => {
            let Some((path, file)) = &d.task_definition_file else {
                return Err(service_error(
                    d,
                    format!(
                        "could not be read ({why}), and there is no `task-definition` file to diff against"
                    ),
                ));
            };
            let name = path.display().to_string();
            let from = RenderFrom {
                source_name: &name,
                base: file,
                live: None,
                container: planned_container(plan),
            };
            let (_, rendered, _) = render_with_others(from, image, env, others)?;
            return Ok(format!(
                "could not read {why}; diff against the file:\n{}",
                task_definition::diff(file, &rendered, &name, "to register")
            ));
        }
    };
    let mut out = format!("deployment path: {}\n", checked.path.as_str());
    let (_, rendered, changed) =
        render_with_others(RenderFrom::checked(checked), image, env, others)?;
    match (
        &checked.live_task_definition,
        checked.live.task_definition(),
    ) {
        (Some(_), _) if !changed => out.push_str(
            "the live task definition already matches: nothing would be registered or updated\n",
        ),
        (Some(td), arn) => out.push_str(&task_definition::diff(
            td,
            &rendered,
            &format!(
                "live {}",
                crate::task_definition::short_task_definition(arn.unwrap_or("(none)"))
            ),
            "to register",
        )),
        (None, _) => out.push_str(&task_definition::diff(
            &checked.base,
            &rendered,
            &checked.source_name,
            "to register",
        )),
    }
    Ok(out)
}

/// After a cancellation, how long a rollback (of any deployment path) is followed before the run
/// reports. GitHub kills a cancelled job about 10 s after its first signal (SIGINT, SIGTERM after
/// 7.5 s, SIGKILL 2.5 s later): the outputs and messages must be written by then.
pub const CANCELLED_ROLLBACK_WAIT: Duration = Duration::from_secs(5);

/// The poll interval while following a rollback after a cancellation: the budget is short.
pub const CANCELLED_ROLLBACK_POLL: Duration = Duration::from_secs(1);

/// How long and how often a rollback is followed: as configured, or after a cancellation at
/// most [`CANCELLED_ROLLBACK_WAIT`], one look every [`CANCELLED_ROLLBACK_POLL`] at most.
pub(crate) fn follow_limits(
    limit: Duration,
    poll: Duration,
    cancelled: bool,
) -> (Duration, Duration) {
    if cancelled {
        (
            limit.min(CANCELLED_ROLLBACK_WAIT),
            poll.min(CANCELLED_ROLLBACK_POLL),
        )
    } else {
        (limit, poll)
    }
}

/// Deregisters the revision that failed (`deregister-failed-task-definition`); a failure here is
/// a warning, the deploy's outcome is already decided.
pub(crate) async fn deregister_failed(aws: &Aws, plan: &AppPlan, arn: &str, report: &mut Outcome) {
    match register::deregister(&aws.ecs, arn).await {
        Ok(()) => {
            println!("{}: deregistered {arn}", plan.app);
            report.steps.push(format!(
                "deregistered {}",
                crate::task_definition::short_task_definition(arn)
            ));
        }
        Err(e) => crate::runner::console::warning(&format!(
            "{}: could not deregister {arn}: {e}",
            plan.app
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// [`super::choose_path`] with the controller and strategy as ECS spells them.
    fn choose_path(
        choice: DeploymentChoice,
        controller: Option<&str>,
        strategy: Option<&str>,
    ) -> std::result::Result<DeployPath, String> {
        super::choose_path(
            choice,
            controller.map(DeploymentControllerType::from).as_ref(),
            strategy.map(DeploymentStrategy::from).as_ref(),
        )
    }

    #[test]
    fn auto_follows_the_controller_and_strategy() {
        use DeploymentChoice::Auto;
        assert_eq!(choose_path(Auto, None, None), Ok(DeployPath::Rolling));
        assert_eq!(
            choose_path(Auto, Some("ECS"), Some("ROLLING")),
            Ok(DeployPath::Rolling)
        );
        for s in ["BLUE_GREEN", "LINEAR", "CANARY"] {
            assert_eq!(
                choose_path(Auto, Some("ECS"), Some(s)),
                Ok(DeployPath::EcsBlueGreen)
            );
        }
        assert_eq!(
            choose_path(Auto, Some("CODE_DEPLOY"), None),
            Ok(DeployPath::CodeDeploy)
        );
        let e = choose_path(Auto, Some("EXTERNAL"), None).unwrap_err();
        assert!(e.contains("EXTERNAL") && e.contains("task sets"), "{e}");
        assert!(choose_path(Auto, Some("NEW_THING"), None).is_err());
    }

    #[test]
    fn a_forced_path_the_service_cannot_take_fails_with_the_reason() {
        let e = choose_path(DeploymentChoice::Rolling, Some("CODE_DEPLOY"), None).unwrap_err();
        assert!(
            e.contains("deployment: rolling") && e.contains("CODE_DEPLOY"),
            "{e}"
        );
        let e = choose_path(DeploymentChoice::CodeDeploy, Some("ECS"), None).unwrap_err();
        assert!(e.contains("needs the CODE_DEPLOY controller"), "{e}");
        let e =
            choose_path(DeploymentChoice::EcsBlueGreen, Some("ECS"), Some("ROLLING")).unwrap_err();
        assert!(e.contains("BLUE_GREEN, LINEAR or CANARY"), "{e}");
        assert_eq!(
            choose_path(DeploymentChoice::EcsBlueGreen, Some("ECS"), Some("CANARY")),
            Ok(DeployPath::EcsBlueGreen)
        );
        assert_eq!(
            choose_path(DeploymentChoice::CodeDeploy, Some("CODE_DEPLOY"), None),
            Ok(DeployPath::CodeDeploy)
        );
        assert!(choose_path(DeploymentChoice::Rolling, Some("EXTERNAL"), None).is_err());
    }

    #[test]
    fn a_task_running_another_digest_is_stale() {
        use aws_sdk_ecs::types::{Container, Task};
        let task = |d: &str| {
            Task::builder()
                .containers(Container::builder().name("web1").image_digest(d).build())
                .containers(
                    Container::builder()
                        .name("envoy")
                        .image_digest("sha256:e")
                        .build(),
                )
                .build()
        };
        assert!(!digest_differs(&[task("sha256:a")], "web1", "sha256:a"));
        assert!(digest_differs(
            &[task("sha256:a"), task("sha256:b")],
            "web1",
            "sha256:a"
        ));
        assert!(!digest_differs(&[], "web1", "sha256:a"));
    }

    #[test]
    fn a_rendered_definition_equal_to_the_live_one_is_unchanged() {
        let file = json!({"family": "web1", "containerDefinitions": [
            {"name": "web1", "image": "r/web1:v1", "memoryReservation": 256,
             "portMappings": [{"containerPort": 8000, "hostPort": 0}]}]});
        let live = json!({"family": "web1", "revision": 4, "containerDefinitions": [
            {"name": "web1", "image": "r/web1:v2", "memoryReservation": 256, "essential": true,
             "portMappings": [{"containerPort": 8000, "protocol": "tcp"}]}]});
        let none = task_definition::ContainerEdits::default();
        let (c, r, changed) =
            render_and_compare("f", &file, Some(&live), None, "r/web1:v2", &none).unwrap();
        assert_eq!(c, "web1");
        assert!(!changed);
        assert_eq!(r["containerDefinitions"][0]["image"], "r/web1:v2");
        let (_, _, changed) =
            render_and_compare("f", &file, Some(&live), None, "r/web1:v3", &none).unwrap();
        assert!(changed);
        let (_, _, changed) = render_and_compare(
            "f",
            &file,
            Some(&live),
            None,
            "r/web1:v2",
            &task_definition::ContainerEdits::env(vec![("A".into(), "1".into())]),
        )
        .unwrap();
        assert!(changed);
        assert!(render_and_compare("f", &file, None, Some("nope"), "r/web1:v2", &none).is_err());
    }
}
