//! The rolling deployment (services with the `ECS` deployment controller and the ROLLING
//! strategy): UpdateService to the new task definition, wait for our deployment to complete,
//! roll back on failure (`rollback.rs`).

pub mod early;
pub mod progress;
pub mod rollback;

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_ecs::types::{Deployment, Service};
use tokio_util::sync::CancellationToken;

pub use self::early::EarlyFor;
use self::early::EarlyWatch;
use self::progress::{
    Assessment, Early, EarlySuccess, Phase, Policy, assess, look_interval, new_events,
    progress_line, service_interval, superseded_by,
};
use super::Prepared;
use super::diagnosis::{self, Watch, WatchFor};
use super::poll::{self, Ended as PollEnded, Failure, Look, Poller, Wait};
use super::service::{console_link, event_ids, primary_deployment, update_service};
use super::strategy::{self, AfterFollow, Ended as StrategyEnded, Followed, Strategy};
use super::timing::Timing;
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::outcome::{DeployPath, Outcome};
use crate::plan::AppPlan;
use crate::verify::{Gate, Pace};
use tokio::time::Instant;

/// The rolling path of one service: what [`Strategy`]'s phases need.
pub(crate) struct Rolling<'a> {
    aws: &'a Aws,
    poller: &'a Poller,
    plan: &'a AppPlan,
    prepared: &'a Prepared,
    cancel: &'a CancellationToken,
    /// The verification gate run after the rollout (`verify-*`), when set.
    gate: Option<Gate>,
    /// How long the rollout may take and the longest pause between looks (the cadence is the
    /// run's poller's).
    timing: Timing,
}

/// A started rolling deployment: its id, the service events already seen, and the watch on
/// its stopped tasks.
pub(crate) struct Started {
    deployment_id: String,
    /// The service deployment UpdateService named current (early success follows it).
    service_deployment: Option<String>,
    seen: HashSet<String>,
    watch: Watch,
}

/// The rolling deploy, as one call: update the service (a fresh deployment when
/// `prepared.redeploy`), wait for our deployment, roll back on failure. The outcome is written
/// into `report`; the error says why it did not succeed.
pub async fn deploy(
    aws: &Aws,
    poller: &Poller,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<()> {
    let gate = plan.settings.verify.is_set().then(|| {
        Gate::new(
            &plan.settings.verify,
            aws.cloudwatch.clone(),
            Pace::default(),
        )
    });
    let rolling = Rolling {
        aws,
        poller,
        plan,
        prepared,
        cancel,
        gate,
        timing: Timing::of(&plan.settings.rollout),
    };
    strategy::drive_into(&rolling, report).await
}

impl Strategy for Rolling<'_> {
    type Started = Started;
    type Stopped = Error;

    fn path(&self) -> DeployPath {
        DeployPath::Rolling
    }

    fn follows(&self) -> bool {
        self.plan.settings.rollout.wait_for_service_stability
    }

    fn gate_after_follow(&self) -> Option<AfterFollow<'_>> {
        Some(AfterFollow {
            gate: self.gate.as_ref()?,
            cancel: self.cancel,
            target: format!(
                "{} (ECS service {} in cluster {})",
                self.plan.app, self.prepared.service, self.prepared.cluster
            ),
        })
    }

    /// A failed verification rolls back like a failed rollout.
    fn verification_stop(&self, error: Error) -> Result<Error> {
        Ok(error)
    }

    async fn start(&self, report: &mut Outcome) -> std::result::Result<Started, StrategyEnded> {
        let (aws, plan, prepared) = (self.aws, self.plan, self.prepared);
        crate::runner::shutdown::unless_cancelled(self.cancel, || {
            format!("before updating service {}", prepared.service)
        })?;
        let updated = update_service(
            &aws.ecs,
            &prepared.cluster,
            &prepared.service,
            &prepared.task_definition_arn,
            prepared.redeploy,
            &plan.settings.ecs.service_update,
        )
        .await?;
        let deployment_id = primary_deployment(&updated)
            .and_then(Deployment::id)
            .map(str::to_string)
            .ok_or_else(|| Error::Service {
                cluster: prepared.cluster.clone(),
                service: prepared.service.clone(),
                problem: "UpdateService answered without a PRIMARY deployment to follow".into(),
            })?;
        let service_deployment = updated.current_service_deployment().map(str::to_string);
        report.deployment_id = Some(deployment_id.clone());
        report.steps.push(format!(
            "service {} updated to {} (deployment {deployment_id})",
            prepared.service,
            crate::task_definition::short_task_definition(&prepared.task_definition_arn)
        ));
        println!(
            "{}: service {} updated to {}; deployment {deployment_id}",
            plan.app,
            prepared.service,
            crate::task_definition::short_task_definition(&prepared.task_definition_arn)
        );
        if let Some(link) =
            console_link(aws.region.as_deref(), &prepared.cluster, &prepared.service)
        {
            println!("{}: follow it at {}", plan.app, link.url);
        }
        if !self.follows() {
            println!(
                "{}: not waiting for the rollout (wait-for-service-stability: false)",
                plan.app
            );
        }
        let seen = event_ids(&prepared.live);
        let watch = Watch::new(
            aws.ecs.clone(),
            WatchFor {
                label: &plan.app,
                cluster: &prepared.cluster,
                tasks: diagnosis::Tasks::StartedBy(diagnosis::started_by(&deployment_id)),
                task_definition: &prepared.task_definition_arn,
                region: aws.region.as_deref(),
                threshold: plan.settings.ecs.fail_fast_after_stopped_tasks,
                events_before: seen.clone(),
            },
        );
        Ok(Started {
            deployment_id,
            service_deployment,
            seen,
            watch,
        })
    }

    async fn follow(&self, started: &mut Started, report: &mut Outcome) -> Result<Followed<Error>> {
        let (aws, plan, prepared) = (self.aws, self.plan, self.prepared);
        let deployment_id = started.deployment_id.as_str();
        let target = Target {
            label: &plan.app,
            cluster: &prepared.cluster,
            service: &prepared.service,
            deployment_id,
            timeout: self.timing.timeout,
            cap: self.timing.max_delay,
            rollback_to: prepared.previous_task_definition_arn.as_deref(),
            early: Some(EarlyFor {
                ecs: &aws.ecs,
                task_definition: &prepared.task_definition_arn,
                before: prepared.live.current_service_deployment(),
                hint: started.service_deployment.as_deref(),
            }),
            policy: Policy::of(self.timing.cadence),
        };
        let waited = wait_watching(
            self.poller,
            &target,
            &mut started.seen,
            self.cancel,
            Some(&started.watch),
        )
        .await;
        let waited = match waited {
            Err(cause) if !matches!(cause, Error::Cancelled { .. }) => {
                Err(diagnosis::explain_failure(
                    aws,
                    &plan.app,
                    &prepared.task_definition,
                    &started.watch,
                    cause,
                    report,
                )
                .await)
            }
            waited => waited,
        };
        Ok(match waited {
            Ok(Finish::Completed) => {
                report
                    .steps
                    .push(format!("deployment {deployment_id} completed"));
                Followed::Succeeded
            }
            Ok(Finish::EarlySuccess(early)) => {
                let text = early.text();
                report
                    .steps
                    .push(format!("deployment {deployment_id} succeeded: {text}"));
                report.notices.push(text);
                Followed::Succeeded
            }
            // Another run's deployment is live now: never roll back over it.
            Err(cause @ Error::Superseded { .. }) => {
                println!("{}: {cause}", plan.app);
                report.rollback = Some(
                    "not rolled back: the service now runs another deployment, which a rollback would undo".into(),
                );
                report.steps.push(cause.to_string());
                Followed::Superseded(cause)
            }
            Err(cause) => Followed::Stopped(cause),
        })
    }

    async fn roll_back(
        &self,
        started: Started,
        cause: Error,
        report: &mut Outcome,
    ) -> StrategyEnded {
        if !self.plan.settings.rollout.rollback_on_failure {
            println!(
                "{}: not rolling back (rollback-on-failure: false)",
                self.plan.app
            );
            return StrategyEnded::of(cause);
        }
        let Started {
            deployment_id,
            mut seen,
            ..
        } = started;
        rollback::roll_back(
            self,
            rollback::Failed {
                deployment_id: &deployment_id,
                cause,
            },
            &mut seen,
            report,
        )
        .await
    }
}

/// What to wait for.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Prefix of every progress line (the app name).
    pub label: &'a str,
    pub cluster: &'a str,
    pub service: &'a str,
    pub deployment_id: &'a str,
    /// The wait fails when the deployment has not completed after this long.
    pub timeout: Duration,
    /// Every interval is at most this: `Duration::MAX`, or a second while a cancelled run
    /// follows its rollback ([`super::follow_limits`]).
    pub cap: Duration,
    /// The task definition a rollback of ours would go back to (the circuit breaker's target):
    /// a newer PRIMARY deployment of anything else is another run's, and supersedes ours.
    /// `None`: no such check (following our own rollback).
    pub rollback_to: Option<&'a str>,
    /// How to find our service deployment, so the wait ends at ECS's early success when the
    /// service has it (see `early.rs`). `None`: the wait always lasts until one deployment is
    /// left (following our own rollback).
    pub early: Option<EarlyFor<'a>>,
    /// How soon to look again, by phase: the default in a run (from the timing's cadence), a
    /// fixed interval in the benchmark's comparison.
    pub policy: Policy,
}

impl Target<'_> {
    fn describe(&self) -> String {
        format!("ECS service {} (cluster {})", self.service, self.cluster)
    }

    fn error(&self, problem: String) -> Error {
        Error::Deployment {
            target: self.describe(),
            deployment_id: self.deployment_id.to_string(),
            problem,
        }
    }
}

/// How a followed rollout ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// COMPLETED, and ours is the only deployment left: the old tasks are gone.
    Completed,
    /// ECS marked our service deployment SUCCESSFUL by the service's early success criteria;
    /// the old tasks still drain.
    EarlySuccess(EarlySuccess),
}

/// Waits until the deployment is COMPLETED and the service steady, printing progress. Fails
/// when the rollout FAILED, the deployment vanished, the timeout passed, or `cancel` fired.
/// `seen_events` holds the ids of service events printed already (or from before the deploy).
pub(crate) async fn wait_for_deployment(
    poller: &Poller,
    target: &Target<'_>,
    seen_events: &mut HashSet<String>,
    cancel: &CancellationToken,
) -> Result<()> {
    wait_watching(poller, target, seen_events, cancel, None)
        .await
        .map(|_| ())
}

/// How sooner than due a look may read the service again while early success is in reach:
/// the looks then come every [`Policy::early`](progress::Policy), the service's reads at its
/// own interval, and a look landing just short of that interval reads it.
const SERVICE_SLACK: Duration = Duration::from_millis(100);

/// [`wait_for_deployment`] that also asks `watch`, on each look while the rollout is in
/// progress, whether its stopped tasks already tell the deployment failed (fail fast), and,
/// with `target.early`, ends at ECS's early success: once enough new tasks run on a service
/// with early success (DEFERRED cleanup), each look also reads our service deployment (every
/// [`Policy::early`](progress::Policy)), and SUCCESSFUL ends the wait while the old tasks drain.
/// The service itself is read at its usual interval all along.
pub async fn wait_watching(
    poller: &Poller,
    target: &Target<'_>,
    seen_events: &mut HashSet<String>,
    cancel: &CancellationToken,
    watch: Option<&super::diagnosis::Watch>,
) -> Result<Finish> {
    let started = Instant::now();
    println!(
        "{}: waiting for deployment {} of {} (up to {} s)",
        target.label,
        target.deployment_id,
        target.describe(),
        target.timeout.as_secs()
    );
    let fail = |problem: String| target.error(problem);
    let wait = Wait {
        label: target.label,
        what: target.describe(),
        where_to_look: "the service's deployments and events in the ECS console".into(),
        deadline: started + target.timeout,
        cancel: Some(cancel),
        cap: target.cap,
        fail: &fail,
    };
    let policy = &target.policy;
    let mut phase = (Phase::Starting, started);
    let mut early = target.early.as_ref().map(|of| {
        EarlyWatch::new(
            of,
            poller.service_deployments(),
            target.cluster,
            target.label,
        )
    });
    // The service as last read, and when it is due again (early success in reach only).
    let mut last: Option<(Service, Instant)> = None;
    let read_service = async |at: Instant| {
        poller
            .look_by(target.cluster, target.service, at)
            .await
            .map_err(|e| e.failure())?
            .ok_or_else(|| {
                Failure::fatal(target.error(
                    "the service is gone (DescribeServices says MISSING); was it deleted?".into(),
                ))
            })
    };
    let look = async |at: Instant| {
        // Early success in reach, our service deployment known: it is read first, and
        // SUCCESSFUL ends the wait at once; the service is read when its own interval is due.
        let read = match early.as_ref().and_then(|e| Some((e, e.known()?))) {
            Some((e, arn)) => Some(e.read(arn, at).await),
            None => None,
        };
        if let (Some(e), Some(r), Some((service, _))) = (early.as_ref(), &read, &last)
            && let Some(success) = e.successful(r)
        {
            let line = progress_line(service, target.deployment_id);
            return Ok((Look::Done(Ok(Finish::EarlySuccess(success))), line));
        }
        let reuse = match &last {
            Some((service, due)) if read.is_some() && at + SERVICE_SLACK < *due => {
                Some(service.clone())
            }
            _ => None,
        };
        let (service, fresh) = match reuse {
            Some(service) => (service, false),
            None => (read_service(at).await?, true),
        };
        if fresh {
            for event in new_events(&service, seen_events) {
                println!("{}: event: {event}", target.label);
            }
        }
        let line = progress_line(&service, target.deployment_id);
        let by = target
            .rollback_to
            .and_then(|to| superseded_by(&service, target.deployment_id, to));
        let seen = match assess(&service, target.deployment_id) {
            _ if by.is_some() => Look::Done(Err(Error::Superseded {
                target: target.describe(),
                deployment_id: target.deployment_id.to_string(),
                by: by.unwrap_or_default(),
            })),
            Assessment::Done => Look::Done(Ok(Finish::Completed)),
            Assessment::Failed(reason) => Look::Done(Err(target.error(format!(
                "the rollout FAILED ({reason}); the deployment circuit breaker stopped it, see the service events above"
            )))),
            Assessment::Vanished(why) => Look::Done(Err(target.error(why))),
            Assessment::InProgress(p) => {
                if p != phase.0 {
                    phase = (p, Instant::now());
                }
                Look::Running((p, phase.1.elapsed()))
            }
        };
        let seen = match (seen, watch) {
            (Look::Running(r), Some(w)) if fresh => match w.check(&service).await {
                Some(problem) => Look::Done(Err(target.error(problem))),
                None => Look::Running(r),
            },
            (seen, _) => seen,
        };
        let seen = match (seen, early.as_mut()) {
            (Look::Running(at_phase), Some(e)) => {
                let success = match e.armed(&service, target.deployment_id) {
                    Some(criteria) => e.check(criteria, &service, read, at).await?,
                    None => None,
                };
                match success {
                    Some(success) => Look::Done(Ok(Finish::EarlySuccess(success))),
                    None => Look::Running((at_phase, e.pace(&service))),
                }
            }
            (Look::Running(at_phase), None) => Look::Running((at_phase, Early::Off)),
            (Look::Done(d), _) => Look::Done(d),
        };
        if fresh {
            let pace = early.as_ref().map_or(Early::Off, |e| e.pace(&service));
            let at_phase = (phase.0, phase.1.elapsed());
            let due = Instant::now() + service_interval(policy, started.elapsed(), at_phase, pace);
            last = Some((service, due));
        }
        Ok((seen, line))
    };
    let interval = |&(at_phase, pace): &((Phase, Duration), Early), elapsed: Duration| {
        look_interval(policy, elapsed, at_phase, pace)
    };
    let show = |_: Option<&String>, line: &String, elapsed: Duration| {
        println!("{}: [{:>4} s] {line}", target.label, elapsed.as_secs());
    };
    match poll::until(&wait, &mut None, interval, look, show).await? {
        PollEnded::Done(Ok(Finish::Completed)) => {
            println!(
                "{}: deployment {} completed in {} s",
                target.label,
                target.deployment_id,
                started.elapsed().as_secs()
            );
            Ok(Finish::Completed)
        }
        PollEnded::Done(Ok(Finish::EarlySuccess(e))) => {
            println!(
                "{}: deployment {} succeeded in {} s: {}",
                target.label,
                target.deployment_id,
                started.elapsed().as_secs(),
                e.text()
            );
            Ok(Finish::EarlySuccess(e))
        }
        PollEnded::Done(Err(e)) => Err(e),
        PollEnded::TimedOut => Err(timed_out(target)),
        PollEnded::Cancelled => Err(Error::Cancelled {
            what: format!(
                "waiting for deployment {} of {}",
                target.deployment_id,
                target.describe()
            ),
        }),
    }
}

fn timed_out(target: &Target<'_>) -> Error {
    target.error(format!(
        "did not complete within {} s (wait-for-minutes); look at the service events, or raise wait-for-minutes",
        target.timeout.as_secs()
    ))
}
