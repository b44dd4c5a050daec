//! ECS native blue/green, linear and canary (services with the `ECS` controller and a
//! `deploymentConfiguration.strategy` other than ROLLING): lifecycle stages, bake time, rollback.
//!
//! The story: check the service can take this path, UpdateService to the new task definition,
//! find the service deployment that update started (ListServiceDeployments, matched by its
//! target revision's task definition), follow it with DescribeServiceDeployments until it ends.
//! ECS itself moves traffic and rolls back on failed health checks or alarms; this module rolls
//! back (StopServiceDeployment, stopType ROLLBACK) only when wait-for-minutes runs out or the
//! job is cancelled, then waits until traffic is back on blue.
//!
//! The verification gate sits inside the follow: when a PAUSE lifecycle hook holds our
//! deployment (AWAITING_ACTION), the gate verifies (the test listener at
//! POST_TEST_TRAFFIC_SHIFT) and answers the hook (ContinueServiceDeployment: CONTINUE when it
//! passed, ROLLBACK when it failed), then the follow goes on to the end. Without verify inputs
//! the run never answers a hook: it says the deployment waits for someone and looks rarely.

pub mod hook;
pub mod progress;
mod rollback;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use aws_sdk_ecs::types::{
    CreatedAt, DeploymentLifecycleHookStage, ServiceDeployment, ServiceDeploymentStatus,
    StopServiceDeploymentStopType,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use progress::{
    Policy, Progress, Verdict, check_service, outcome, pick_ours, stage_text, strategy_text,
};

use super::diagnosis::{self, Watch as TaskWatch};
use super::follow_limits;
use super::poll::{self, Batcher, Ended, Failure, Look, Wait};
use super::poll::{Poller, ServiceDeploymentAnswer};
use super::strategy::{Ended as StrategyEnded, Followed, Strategy};
use super::{CANCELLED_ROLLBACK_WAIT, Prepared};
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::outcome::{DeployPath, Link, Outcome, Status};
use crate::plan::AppPlan;
use crate::runner::console;
use crate::verify::{self, Gate};
use hook::Answer;
use progress::Paused;
use rollback::{Asked, Rollback, rollback};

/// The value of the `deployment-kind` output for this path.
pub const KIND: &str = "ecs-blue-green";

pub use super::timing::{Cadence, Timing};

/// Deploys `prepared` through ECS native blue/green; fills the report's deployment fields and
/// status. `poller` is the run's: apps deploying together share their looks.
pub(crate) async fn deploy(
    aws: &Aws,
    poller: &Poller,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<()> {
    let timing = Timing::of(&plan.settings.rollout).with_poller(poller);
    deploy_with(aws, plan, prepared, cancel, report, timing).await
}

/// [`deploy`] with explicit timing (tests use milliseconds). A failure is explained by the new
/// revision's stopped tasks (their cause, console link and last log lines) when there are any.
pub async fn deploy_with(
    aws: &Aws,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut Outcome,
    timing: Timing,
) -> Result<()> {
    let since = SystemTime::now();
    let poller = match &timing.poller {
        Some(p) => p.clone(),
        None => Poller::new(aws.ecs.clone()),
    };
    let gate = plan.settings.verify.is_set().then(|| {
        Gate::new(
            &plan.settings.verify,
            aws.cloudwatch.clone(),
            verify::Pace::default(),
        )
    });
    let strategy = BlueGreen {
        aws,
        plan,
        prepared,
        cancel,
        tasks: diagnosis::of_revision(aws, plan, prepared, since),
        since,
        poller,
        policy: Policy::of(timing.cadence),
        timing,
        pauses: progress::pause_stages(prepared.live.deployment_configuration()),
        gate,
    };
    super::strategy::drive_into(&strategy, report).await
}

/// The ECS blue/green path of one service: what [`Strategy`]'s phases need.
pub(crate) struct BlueGreen<'a> {
    aws: &'a Aws,
    plan: &'a AppPlan,
    prepared: &'a Prepared,
    cancel: &'a CancellationToken,
    /// The new revision's stopped tasks, read while ours runs (fail fast, diagnosis).
    tasks: TaskWatch,
    /// When the deploy started: the service deployment ours is must be newer.
    since: SystemTime,
    /// The run's poller (or this deploy's own).
    poller: Poller,
    /// How soon to look again, by lifecycle stage (of `timing.cadence`).
    policy: Policy,
    timing: Timing,
    /// The stages of the service's PAUSE lifecycle hooks.
    pauses: Vec<DeploymentLifecycleHookStage>,
    /// The verification gate (`verify-*`), when set: it answers the PAUSE hooks.
    gate: Option<Gate>,
}

/// Our service deployment, found after the UpdateService.
pub(crate) struct Started {
    arn: String,
    deadline: Instant,
    /// What the last look saw of it.
    last: Option<Progress>,
    /// What the follow did at its PAUSE hooks.
    hooks: Hooks,
}

/// What the follow of one deployment did at its PAUSE hooks, across its looks.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// The pauses answered (with a gate) or said (without), by hook id and stage: each once.
    /// Keyed by stage too: one hook may pause the deployment at several stages.
    handled: HashSet<(String, String)>,
    /// The pause the next look answers (found by the last one).
    act: Option<Paused>,
    /// A verdict reached whose answer did not get through yet (throttled, a 5xx): sent again at
    /// the next look without verifying again.
    unsent: Option<((String, String), Answer)>,
    /// The failed verification's headline, once the gate answered ROLLBACK.
    rolled_back: Option<String>,
    /// The pause holding the deployment for someone else to answer (no verify inputs).
    waiting: Option<Paused>,
    /// The pause whose answer ECS refused, and why (an access denied; a hook someone else
    /// answered meanwhile, which the next look tells apart: it no longer waits).
    refused: Option<((String, String), String)>,
}

/// What the follow does at a PAUSE hook: verify and answer it (with a gate), or say once that
/// the deployment waits for someone (without).
struct AtPause<'a> {
    ecs: &'a aws_sdk_ecs::Client,
    service: &'a str,
    gate: Option<&'a Gate>,
    cancel: &'a CancellationToken,
    /// The stages of the service's PAUSE hooks.
    stages: &'a [DeploymentLifecycleHookStage],
}

/// Why following stopped short.
pub(crate) enum Stopped {
    /// ECS ended it without success (its own rollback, a failure).
    Finished(Box<ServiceDeployment>),
    /// We stop it: a timeout, a cancellation, or the new tasks keep stopping.
    Stop(Stop),
}

impl BlueGreen<'_> {
    /// The frame of a look at deployment `arn`, by `deadline`.
    fn watched<'s>(&'s self, arn: &'s str, deadline: Instant) -> Watched<'s> {
        Watched {
            batcher: self.poller.service_deployments(),
            cluster: &self.prepared.cluster,
            arn,
            policy: &self.policy,
            deadline,
            cancel: Some(self.cancel),
            cap: self.timing.max_delay,
            tasks: Some(&self.tasks),
            pause: Some(AtPause {
                ecs: &self.aws.ecs,
                service: &self.prepared.service,
                gate: self.gate.as_ref(),
                cancel: self.cancel,
                stages: &self.pauses,
            }),
        }
    }

    /// `web1 (ECS service web1 in cluster prod)`: the target a failed verification names.
    fn target(&self) -> String {
        format!(
            "{} (ECS service {} in cluster {})",
            self.plan.app, self.prepared.service, self.prepared.cluster
        )
    }
}

impl Strategy for BlueGreen<'_> {
    type Started = Started;
    type Stopped = Stopped;

    fn path(&self) -> DeployPath {
        DeployPath::EcsBlueGreen
    }

    fn follows(&self) -> bool {
        self.plan.settings.rollout.wait_for_service_stability
    }

    fn unchanged(&self) -> Option<String> {
        (!self.prepared.changed && !self.prepared.redeploy).then(|| {
            format!(
                "task definition unchanged ({}); no deployment started (force-new-deployment: true starts one anyway)",
                self.prepared.task_definition_arn
            )
        })
    }

    /// UpdateService, then find the service deployment it started.
    async fn start(&self, report: &mut Outcome) -> std::result::Result<Started, StrategyEnded> {
        let (aws, prepared) = (self.aws, self.prepared);
        let svc = &prepared.service;
        check_service(&prepared.live).map_err(|problem| service_error(prepared, problem))?;
        println!(
            "{svc}: ECS native deployment ({})",
            strategy_text(prepared.live.deployment_configuration())
        );
        let update = aws
            .ecs
            .update_service()
            .cluster(&prepared.cluster)
            .service(svc)
            .task_definition(&prepared.task_definition_arn)
            .force_new_deployment(prepared.redeploy);
        let updated =
            super::service::with_service_update(update, &self.plan.settings.ecs.service_update)
                .send()
                .await
                .map_err(|e| Error::aws("ECS", "UpdateService", e))?;
        step(
            report,
            format!("UpdateService: {svc} → {}", prepared.task_definition_arn),
        );
        let previous = prepared.live.current_service_deployment();
        let hint = updated
            .service()
            .and_then(|u| u.current_service_deployment())
            .filter(|h| Some(*h) != previous);

        let timeout = self.timing.timeout;
        let deadline = Instant::now() + timeout;
        let looking = Looking {
            since: self.since,
            deadline,
            policy: &self.policy,
            cancel: self.cancel,
        };
        let arn = match find_ours(aws, prepared, hint, &looking).await? {
            Ok(arn) => arn,
            Err(stop) => {
                // Without the deployment's ARN there is nothing to hand StopServiceDeployment.
                let e = Error::Service {
                    cluster: prepared.cluster.clone(),
                    service: svc.clone(),
                    problem: format!(
                        "{} before ECS listed the service deployment for {}; no rollback was sent. \
                         Look at the service's deployments in the console: ECS may still be deploying",
                        stop.describe(timeout),
                        prepared.task_definition_arn
                    ),
                };
                return Err(if stop == Stop::Cancelled {
                    StrategyEnded::cancelled(e)
                } else {
                    StrategyEnded::failed(e)
                });
            }
        };
        report.deployment_id = Some(arn.clone());
        println!("{svc}: service deployment {arn}");
        add_link(report, aws.region.as_deref(), prepared);
        if !self.follows() {
            step(
                report,
                "not waiting for the deployment (wait-for-service-stability: false)".into(),
            );
        }
        Ok(Started {
            arn,
            deadline,
            last: None,
            hooks: Hooks::default(),
        })
    }

    async fn follow(
        &self,
        started: &mut Started,
        report: &mut Outcome,
    ) -> Result<Followed<Stopped>> {
        let watched = self.watched(&started.arn, started.deadline);
        let ended = watched
            .follow(report, &mut started.last, &mut started.hooks)
            .await?;
        Ok(match ended {
            Ok(d) if outcome(d.status()) == Verdict::Succeeded => Followed::Succeeded,
            // ECS stops an unfinished deployment when a newer one starts.
            Ok(d) if outcome(d.status()) == Verdict::Stopped => {
                match replaced_by(&self.poller, self.prepared, &started.arn, None).await {
                    Some(by) => Followed::Superseded(superseded(
                        self.prepared,
                        &started.arn,
                        by,
                        d.status_reason(),
                        report,
                    )),
                    None => Followed::Stopped(Stopped::Finished(Box::new(d))),
                }
            }
            Ok(d) => Followed::Stopped(Stopped::Finished(Box::new(d))),
            Err(stop) => Followed::Stopped(Stopped::Stop(stop)),
        })
    }

    async fn roll_back(
        &self,
        mut started: Started,
        stopped: Stopped,
        report: &mut Outcome,
    ) -> StrategyEnded {
        let (aws, prepared) = (self.aws, self.prepared);
        let arn = started.arn.as_str();
        let stop = match stopped {
            Stopped::Finished(d) => {
                let gate = started
                    .hooks
                    .rolled_back
                    .as_deref()
                    .map(|headline| (self.target(), headline.to_string()));
                let ended = finish(prepared, arn, &d, report, gate);
                if ended.status == Status::RolledBack && started.hooks.rolled_back.is_some() {
                    super::deregister_after_rollback(aws, self.plan, prepared, report).await;
                }
                return ended;
            }
            Stopped::Stop(stop) => stop,
        };
        // From here on, a cancelled run reports by this deadline, whatever AWS does.
        let deadline = (stop == Stop::Cancelled).then(|| Instant::now() + CANCELLED_ROLLBACK_WAIT);
        // Roll back only while the service still points at ours.
        if let Some(by) = replaced_by(&self.poller, prepared, arn, deadline).await {
            return StrategyEnded::failed(superseded(prepared, arn, by, None, report));
        }
        let why = match (stop, self.tasks.found_diagnosis()) {
            (Stop::FailedFast, Some(d)) => d.problem(true),
            (Stop::Unanswered, _) => started.hooks.refused.as_ref().map_or_else(
                || stop.describe(self.timing.timeout),
                |(_, why)| why.clone(),
            ),
            _ => stop.describe(self.timing.timeout),
        };
        // Waiting at a PAUSE hook nobody answered: the error says so.
        let why = match (&started.hooks.waiting, stop) {
            (Some(p), Stop::TimedOut) => format!(
                "{why}: the deployment was {} and nobody continued it",
                p.text()
            ),
            _ => why,
        };
        if !self.plan.settings.rollout.rollback_on_failure {
            report.rollback = Some("not rolled back (rollback-on-failure: false)".into());
            let error = deployment_error(
                prepared,
                arn,
                format!("{why}; rollback-on-failure is false, so ECS keeps deploying it"),
            );
            return match stop {
                Stop::Cancelled => StrategyEnded::cancelled(error),
                Stop::TimedOut | Stop::FailedFast | Stop::Unanswered => {
                    StrategyEnded::failed(error)
                }
            };
        }
        let asked = Asked {
            stop,
            why: &why,
            deadline,
        };
        let ended = rollback(
            Rollback {
                aws,
                batcher: self.poller.service_deployments(),
                prepared,
                arn,
                timing: &self.timing,
            },
            &asked,
            report,
            &mut started.last,
        )
        .await;
        if ended.status == Status::RolledBack {
            super::deregister_after_rollback(aws, self.plan, prepared, report).await;
        }
        ended
    }

    async fn explain(&self, error: Error, report: &mut Outcome) -> Error {
        diagnosis::explain_error(
            self.aws,
            self.plan,
            self.prepared,
            &self.tasks,
            error,
            report,
        )
        .await
    }
}

/// Whether another deployment replaced ours (see [`progress::superseded_by`]): one look at the
/// service through the run's poller, by `deadline` at the latest. `None` while the service still
/// points at ours, or when it cannot be read (in time): ours is then taken as current.
async fn replaced_by(
    poller: &Poller,
    prepared: &Prepared,
    arn: &str,
    deadline: Option<Instant>,
) -> Option<String> {
    let look = poller.look(&prepared.cluster, &prepared.service);
    let service = match deadline {
        Some(d) => tokio::time::timeout_at(d, look).await.ok()?,
        None => look.await,
    }
    .ok()??;
    progress::superseded_by(
        &service,
        arn,
        &prepared.task_definition_arn,
        prepared.previous_task_definition_arn.as_deref(),
    )
}

/// Ends the run on a deployment that replaced ours (`by`): `failed`, nothing rolled back over
/// it; ECS's reason for stopping ours, when it gave one, goes with it.
fn superseded(
    prepared: &Prepared,
    arn: &str,
    by: String,
    reason: Option<&str>,
    report: &mut Outcome,
) -> Error {
    let by = match reason {
        Some(r) => format!("{by}; ECS stopped ours: {r}"),
        None => by,
    };
    let e = Error::Superseded {
        target: format!(
            "ECS service {} in cluster {}",
            prepared.service, prepared.cluster
        ),
        deployment_id: arn.to_string(),
        by,
    };
    console::warning(&format!("{}: {e}", prepared.service));
    report.rollback = Some(
        "not rolled back: the service now runs another deployment, which a rollback would undo"
            .into(),
    );
    report.steps.push(e.to_string());
    e
}

/// Why a wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    TimedOut,
    Cancelled,
    /// `fail-fast-after-stopped-tasks` tasks of the new revision stopped with one cause.
    FailedFast,
    /// ECS refused the gate's answer to a PAUSE hook for good ([`Hooks::refused`] says why):
    /// the deployment would wait at the hook until its timeout.
    Unanswered,
}

impl Stop {
    fn describe(self, timeout: Duration) -> String {
        match self {
            Stop::TimedOut => format!(
                "not finished after {} min (wait-for-minutes)",
                timeout.as_secs().div_ceil(60)
            ),
            Stop::Cancelled => "the job was cancelled".into(),
            Stop::FailedFast => "the new revision's tasks keep stopping".into(),
            Stop::Unanswered => "ECS refused the answer to its PAUSE hook".into(),
        }
    }
}

/// How the search for our service deployment runs: newer than `since`, by `deadline`.
#[derive(Clone, Copy)]
struct Looking<'a> {
    since: SystemTime,
    deadline: Instant,
    policy: &'a Policy,
    cancel: &'a CancellationToken,
}

/// Finds the service deployment our UpdateService started (see [`pick_ours`]), looking again
/// until it is listed, the deadline passes or the job is cancelled.
async fn find_ours(
    aws: &Aws,
    prepared: &Prepared,
    hint: Option<&str>,
    looking: &Looking<'_>,
) -> Result<Result<String, Stop>> {
    let Looking {
        since,
        deadline,
        policy,
        cancel,
    } = *looking;
    // A minute of slack for the runner's clock against AWS's; the task definition match and
    // the exclusion of the previous deployment keep older ones out.
    let after = since
        .checked_sub(Duration::from_secs(60))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let previous = prepared.live.current_service_deployment();
    let fail = |problem: String| Error::Aws {
        service: "ECS",
        operation: "ListServiceDeployments",
        message: problem,
    };
    let wait = Wait {
        label: &prepared.service,
        what: format!("the service deployments of {}", prepared.service),
        where_to_look: "the service's deployments in the ECS console".into(),
        deadline,
        cancel: Some(cancel),
        cap: Duration::MAX,
        fail: &fail,
    };
    let look = async |at: Instant| {
        poll::at(at).await;
        let mut briefs = Vec::new();
        let mut token = None;
        loop {
            let page = aws
                .ecs
                .list_service_deployments()
                .cluster(&prepared.cluster)
                .service(&prepared.service)
                .created_at(CreatedAt::builder().after(after.into()).build())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| Failure::aws("ECS", "ListServiceDeployments", e))?;
            briefs.extend(page.service_deployments().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let listed_hint = hint.filter(|h| {
            briefs
                .iter()
                .any(|b| b.service_deployment_arn() == Some(*h))
        });
        let revisions = if listed_hint.is_some() {
            HashMap::new()
        } else {
            let wanted: Vec<String> = briefs
                .iter()
                .filter(|b| b.service_deployment_arn() != previous)
                .filter_map(|b| b.target_service_revision_arn().map(str::to_string))
                .collect();
            revision_task_definitions(aws, &wanted).await?
        };
        let ours = pick_ours(
            &briefs,
            &revisions,
            &prepared.task_definition_arn,
            hint,
            previous,
        );
        let seen = match ours {
            Some(arn) => Look::Done(arn.to_string()),
            None => Look::Running(()),
        };
        Ok((seen, ()))
    };
    let starting = |_: &(), _| policy.starting;
    Ok(
        match poll::until(&wait, &mut None, starting, look, |_, _, _| {}).await? {
            Ended::Done(arn) => Ok(arn),
            Ended::TimedOut => Err(Stop::TimedOut),
            Ended::Cancelled => Err(Stop::Cancelled),
        },
    )
}

/// Maps service revision ARNs to their task definitions (DescribeServiceRevisions, 20 a call).
async fn revision_task_definitions(
    aws: &Aws,
    revision_arns: &[String],
) -> Result<HashMap<String, String>, Failure> {
    let mut out = HashMap::new();
    for chunk in revision_arns.chunks(20) {
        let answer = aws
            .ecs
            .describe_service_revisions()
            .set_service_revision_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| Failure::aws("ECS", "DescribeServiceRevisions", e))?;
        for r in answer.service_revisions() {
            if let (Some(arn), Some(td)) = (r.service_revision_arn(), r.task_definition()) {
                out.insert(arn.to_string(), td.to_string());
            }
        }
    }
    Ok(out)
}

/// One service deployment being followed: how often, until when, what stops the wait.
struct Watched<'a> {
    /// DescribeServiceDeployments, shared with the run's other waiters of the cluster.
    batcher: &'a Batcher<ServiceDeploymentAnswer>,
    cluster: &'a str,
    arn: &'a str,
    policy: &'a Policy,
    deadline: Instant,
    /// None: the wait does not listen to a cancellation (our rollback being followed).
    cancel: Option<&'a CancellationToken>,
    /// Every interval at most this (a short follow after a cancellation).
    cap: Duration,
    /// The new revision's stopped tasks, read while ours runs (fail fast); `None` for a rollback.
    tasks: Option<&'a TaskWatch>,
    /// What to do at a PAUSE hook; `None` for a rollback (nothing is answered then).
    pause: Option<AtPause<'a>>,
}

impl Watched<'_> {
    /// Describes the deployment no later than `at`; a failure entry becomes an error naming it.
    async fn describe(&self, at: Instant) -> Result<ServiceDeployment, Failure> {
        let answer = self.batcher.look(self.cluster, self.arn, at).await;
        let why = match answer.map_err(|e| e.failure())? {
            Some(Ok(d)) => return Ok(d),
            Some(Err(why)) => why,
            None => String::new(),
        };
        Err(Failure::fatal(Error::Aws {
            service: "ECS",
            operation: "DescribeServiceDeployments",
            message: format!(
                "{} was not returned{}",
                self.arn,
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                }
            ),
        }))
    }

    /// Follows the deployment until it ends (`Ok(Ok)` with its last description), or the
    /// deadline passes / the job is cancelled (`Ok(Err)`). Prints each change; stage changes
    /// become steps. At a PAUSE hook, [`Watched::at_pause`] and [`Watched::answer`] (`hooks`
    /// keeps what they did).
    async fn follow(
        &self,
        report: &mut Outcome,
        last: &mut Option<Progress>,
        hooks: &mut Hooks,
    ) -> Result<Result<ServiceDeployment, Stop>> {
        let fail = |problem: String| Error::Deployment {
            target: "ECS blue/green".into(),
            deployment_id: self.arn.to_string(),
            problem,
        };
        let wait = Wait {
            label: "ecs blue/green",
            what: format!("service deployment {}", self.arn),
            where_to_look: "the service's deployments in the ECS console".into(),
            deadline: self.deadline,
            cancel: self.cancel,
            cap: self.cap,
            fail: &fail,
        };
        let now = Instant::now();
        let mut stage_since = (last.as_ref().and_then(|p| p.stage.clone()), now);
        let mut weight_since = (last.as_ref().and_then(|p| p.production_weight), now);
        // The look (the gate's steps) and the show (progress lines) both write the outcome.
        let report = RefCell::new(report);
        let look = async |at: Instant| {
            // A pause the last look found: verified and answered now, then looked at again.
            if let Some(p) = hooks.act.take() {
                self.answer(p, hooks, &report).await;
            }
            let d = self.describe(at).await?;
            let now = progress::progress(&d);
            let seen_at = Instant::now();
            if now.stage != stage_since.0 {
                stage_since = (now.stage.clone(), seen_at);
            }
            if now.production_weight != weight_since.0 {
                weight_since = (now.production_weight, seen_at);
            }
            let seen = if outcome(d.status()).is_final() {
                Look::Done(Ok(d.clone()))
            } else if let Some(w) = self.tasks
                && w.check_tasks().await.is_some()
            {
                // The new tasks keep stopping for one reason: roll back now, not at the timeout.
                Look::Done(Err(Stop::FailedFast))
            } else {
                let stage = progress::stage(
                    &now,
                    d.deployment_configuration(),
                    stage_since.1,
                    weight_since.1,
                );
                match self.at_pause(&d, stage, hooks, &report) {
                    Some(stage) => Look::Running(stage),
                    None => Look::Done(Err(Stop::Unanswered)),
                }
            };
            Ok((seen, now))
        };
        let policy = self.policy;
        let interval =
            |stage: &progress::Stage, _| progress::interval(policy, *stage, Instant::now());
        let show = |before: Option<&Progress>, now: &Progress, _| {
            let line = now.line();
            println!("{line}");
            if now.is_new_step(before) {
                report.borrow_mut().steps.push(line);
            }
        };
        Ok(
            match poll::until(&wait, last, interval, look, show).await? {
                Ended::Done(ended) => ended,
                Ended::TimedOut => Err(Stop::TimedOut),
                Ended::Cancelled => Err(Stop::Cancelled),
            },
        )
    }

    /// What a look does about the PAUSE hooks of a deployment still running in `stage`: the
    /// stage the next look is timed by, or `None` when ECS refused the gate's answer for good
    /// and the deployment still waits at that hook (`hooks.refused` says why; it is rolled back
    /// as after a timeout). Decides only; [`Watched::answer`] acts, at the start of the next
    /// look (at once), so the log and the steps read in order: the stage, then the gate.
    ///
    /// Held at a hook (AWAITING_ACTION) with a gate: answered once per hook and stage. Without
    /// a gate: said once, never answered, looked at rarely. Near the stage of a hook the gate
    /// answers: looked at often, so the gate starts within a second of the pause.
    fn at_pause(
        &self,
        d: &ServiceDeployment,
        stage: progress::Stage,
        hooks: &mut Hooks,
        report: &RefCell<&mut Outcome>,
    ) -> Option<progress::Stage> {
        use progress::Stage;
        let Some(at) = &self.pause else {
            return Some(stage);
        };
        let paused = progress::paused(d);
        let key = paused.as_ref().map(pause_key);
        if let Some((k, why)) = hooks.refused.take() {
            if Some(&k) == key.as_ref() {
                hooks.refused = Some((k, why));
                return None;
            }
            // Someone else answered it (or it timed out) while the gate was at work.
            step(
                &mut report.borrow_mut(),
                format!("{why}; the hook no longer waits for an answer: following on"),
            );
        }
        let (Some(p), Some(key)) = (paused, key) else {
            hooks.waiting = None;
            let near = at.gate.is_some()
                && matches!(stage, Stage::Starting | Stage::Shifted)
                && progress::near_pause(d.lifecycle_stage().map(|s| s.as_str()), at.stages);
            return Some(if near { Stage::NearPause } else { stage });
        };
        if at.gate.is_none() {
            if hooks.handled.insert(key) {
                let text = format!(
                    "{}; no verify-url or verify-alarms is set, so this run does not answer it: continue or roll it back in the ECS console (or aws ecs continue-service-deployment --service-deployment-arn {} --hook-id {} --action CONTINUE); the run follows it until then, or until wait-for-minutes ends",
                    p.text(),
                    self.arn,
                    p.hook_id
                );
                console::notice(&format!("{}: {text}", at.service));
                let mut report = report.borrow_mut();
                report.steps.push(text);
                // The summary and the messages say it too, however the deploy ends: a person
                // continued (or rolled back) what this run left paused.
                report.notices.push(format!(
                    "{}: this run does not answer a hook without verify-url or verify-alarms, so a person (or the hook's timeout) decided",
                    p.text()
                ));
            }
            hooks.waiting = Some(p);
            return Some(Stage::AwaitingAction);
        }
        if hooks.handled.contains(&key) {
            // Answered: ECS moves on within seconds.
            return Some(Stage::NearPause);
        }
        // An answer that did not get through is sent again a second later; a new pause at once.
        let retry = hooks.unsent.as_ref().is_some_and(|(k, _)| *k == key);
        hooks.act = Some(p);
        Some(if retry {
            Stage::NearPause
        } else {
            Stage::Verifying
        })
    }

    /// Answers pause `p` ([`Watched::at_pause`] chose it): the paused text, the verification
    /// where green takes traffic (its verdict in the outcome), then ContinueServiceDeployment at
    /// once: CONTINUE when it passed (or where green takes no traffic: nothing to verify),
    /// ROLLBACK when it failed. An answer that does not get through (throttled, a 5xx) is kept
    /// for the next look, without verifying again; one refused for good is kept in `hooks`.
    async fn answer(&self, p: Paused, hooks: &mut Hooks, report: &RefCell<&mut Outcome>) {
        let Some(at) = &self.pause else { return };
        let Some(gate) = at.gate else { return };
        let key = pause_key(&p);
        let answer = match hooks.unsent.take() {
            Some((k, answer)) if k == key => answer,
            _ => {
                step(&mut report.borrow_mut(), p.text());
                let stage = DeploymentLifecycleHookStage::from(key.1.as_str());
                if progress::green_serves_at(&stage) {
                    verify_at(&p, gate, at.cancel, hooks, report).await
                } else {
                    step(
                        &mut report.borrow_mut(),
                        format!(
                            "not verified at {}: green takes no traffic there, so the gate continues",
                            key.1
                        ),
                    );
                    Answer::Continue
                }
            }
        };
        let action = answer.action();
        match hook::send(at.ecs, self.arn, &p.hook_id, answer).await {
            Ok(()) => {
                step(
                    &mut report.borrow_mut(),
                    format!(
                        "ContinueServiceDeployment {} (hook {})",
                        action.as_str(),
                        p.hook_id
                    ),
                );
                hooks.handled.insert(key);
            }
            Err(f) if f.kind != poll::Kind::Fatal => {
                println!(
                    "{}: could not answer hook {} yet ({}), trying again",
                    at.service, p.hook_id, f.error
                );
                hooks.unsent = Some((key, answer));
            }
            Err(f) => {
                let verdict = hooks
                    .rolled_back
                    .as_ref()
                    .map_or(String::new(), |h| format!("{h}; "));
                let why = format!(
                    "{verdict}ContinueServiceDeployment ({}) for hook {} was refused: {}",
                    action.as_str(),
                    p.hook_id,
                    f.error
                );
                println!("{}: {why}", at.service);
                hooks.refused = Some((key, why));
            }
        }
    }
}

/// A pause's hook id and stage: what is answered (or said) once.
fn pause_key(p: &Paused) -> (String, String) {
    let stage = p.stage.as_ref().map_or("", |s| s.as_str());
    (p.hook_id.clone(), stage.to_string())
}

/// Runs the gate at pause `p`: the test listener (`verify-test-url`) while green serves the test
/// traffic only, else `verify-url`. Records the verification and its headline in the outcome; a
/// failure is kept in `hooks` (the deploy ends `rolled-back` for it).
async fn verify_at(
    p: &Paused,
    gate: &Gate,
    cancel: &CancellationToken,
    hooks: &mut Hooks,
    report: &RefCell<&mut Outcome>,
) -> Answer {
    let url = if p.at_test_traffic() {
        gate.test_url()
    } else {
        None
    };
    let v = verify::verify(gate, url, cancel).await;
    let headline = v.headline();
    let failed = v.verdict == crate::outcome::Verdict::Failed;
    let mut report = report.borrow_mut();
    step(&mut report, headline.clone());
    for d in v.details() {
        println!("  {d}");
    }
    report.verification = Some(v);
    if failed {
        hooks.rolled_back = Some(headline);
        Answer::Rollback
    } else {
        Answer::Continue
    }
}

/// Turns how ECS ended the deployment into the report's status and the run's result. `gate`:
/// the target and headline of a failed verification the gate answered ROLLBACK for, so a
/// rollback ends with that error.
fn finish(
    prepared: &Prepared,
    arn: &str,
    d: &ServiceDeployment,
    report: &mut Outcome,
    gate: Option<(String, String)>,
) -> StrategyEnded {
    let reason = d
        .status_reason()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let blue = prepared
        .previous_task_definition_arn
        .as_deref()
        .unwrap_or("the previous revision");
    match (outcome(d.status()), gate) {
        (Verdict::RolledBack, Some((target, headline))) => {
            report.rollback = Some(format!(
                "rolled back to {blue} by the verification gate (ContinueServiceDeployment ROLLBACK): production traffic is on blue again"
            ));
            step(report, format!("rolled back: traffic is on {blue} again"));
            StrategyEnded::rolled_back(Error::VerificationFailed { target, headline })
        }
        (Verdict::Succeeded, Some((target, headline))) => {
            report.rollback = Some(format!(
                "too late: the deployment finished {} before the gate's ROLLBACK took effect",
                d.status().map_or("", |s| s.as_str())
            ));
            StrategyEnded::failed(Error::VerificationFailed { target, headline })
        }
        (Verdict::Succeeded, None) => StrategyEnded {
            status: Status::Succeeded,
            error: None,
        },
        (Verdict::RolledBack, None) => {
            report.rollback = Some(format!("ECS rolled back to {blue}{reason}"));
            StrategyEnded::rolled_back(deployment_error(
                prepared,
                arn,
                format!(
                    "ECS rolled the deployment back; traffic is on {blue} again{reason}. \
                     Check the new tasks' health checks and alarms (service events in the console)"
                ),
            ))
        }
        (Verdict::RollbackFailed, _) => {
            report.rollback = Some(format!("ECS's rollback failed{reason}"));
            StrategyEnded::failed(deployment_error(
                prepared,
                arn,
                format!(
                    "the deployment failed and ECS's rollback failed too{reason}; \
                     look at the service now: traffic may be split between revisions"
                ),
            ))
        }
        (other, _) => StrategyEnded::failed(deployment_error(
            prepared,
            arn,
            format!(
                "ended {} ({other:?}) without a rollback{reason}; \
                     the service keeps whichever revision ECS left serving",
                d.status().map_or("without a status", |s| s.as_str())
            ),
        )),
    }
}

fn step(report: &mut Outcome, text: String) {
    println!("{text}");
    report.steps.push(text);
}

/// Adds the console link to the service's deployments tab unless the run already shows it.
fn add_link(report: &mut Outcome, region: Option<&str>, prepared: &Prepared) {
    let Some(region) = region else { return };
    let url = crate::aws::ecs_service_url(region, &prepared.cluster, &prepared.service);
    if !report.links.iter().any(|l| l.url == url) {
        report.links.push(Link {
            label: format!("ECS service {} deployments", prepared.service),
            url,
        });
    }
}

fn service_error(prepared: &Prepared, problem: String) -> Error {
    Error::Service {
        cluster: prepared.cluster.clone(),
        service: prepared.service.clone(),
        problem,
    }
}

fn deployment_error(prepared: &Prepared, arn: &str, problem: String) -> Error {
    Error::Deployment {
        target: format!(
            "ECS service {} in cluster {}",
            prepared.service, prepared.cluster
        ),
        deployment_id: arn.to_string(),
        problem,
    }
}
