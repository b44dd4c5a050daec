//! Waiting for a rolling ECS deployment to finish, cheaply and promptly, and the run's shared
//! poller.
//!
//! One [`Poller`] serves the whole run: every app that waits asks it for a fresh look at what
//! it waits for, and one call answers every app waiting on the same kind of thing
//! ([`poll::Batcher`]): DescribeServices per cluster (10 services a call, the API's limit),
//! DescribeServiceDeployments per cluster (20 a call), GetDeployment or BatchGetDeployments for
//! CodeDeploy (25 a call). So a cluster is read as often as its most eager waiter asks,
//! whatever the number of services. How often a waiter
//! asks is a pure policy ([`next_interval`]) of the rollout's phase: every second right after
//! the update and once the old tasks are gone (ECS is about to mark the rollout COMPLETED),
//! every 1.5 s while they drain (for a minute; slower for a long deregistration delay), every
//! 5 s while the new tasks start. The loop itself (deadline, cancellation, throttling backoff,
//! retries) is [`poll::until`]. Progress lines (counts, rollout state, new service events) are
//! printed as they change, so a person can follow the rollout in the log.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_codedeploy::types::DeploymentInfo;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service, ServiceDeployment};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::poll::{self, Batcher, Ended, Failure, Look, LookError, Wait};
use crate::error::{Error, Result};

/// DescribeServices takes at most this many services per call.
const SERVICES_PER_CALL: usize = 10;

/// DescribeServiceDeployments takes at most this many service deployments per call.
const SERVICE_DEPLOYMENTS_PER_CALL: usize = 20;

/// BatchGetDeployments takes at most this many CodeDeploy deployments per call.
const DEPLOYMENTS_PER_CALL: usize = 25;

/// A described service deployment, or why DescribeServiceDeployments did not return it.
pub type ServiceDeploymentAnswer = std::result::Result<ServiceDeployment, String>;

/// How often to look at a service, by phase. The defaults keep a deployment's detection lag
/// under a second where it matters (the end) while a cluster costs at most about 30
/// DescribeServices calls a minute (`benches/wait.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Interval right after the update and once the old tasks are gone.
    pub fast: Duration,
    /// Interval while the new tasks are still starting (the long middle of a rollout).
    pub slow: Duration,
    /// Interval while the old tasks drain (the rollout ends when they are stopped).
    pub drain: Duration,
    /// How long after the start the fast interval is kept.
    pub warmup: Duration,
    /// A drain longer than this is a long deregistration delay: the interval then grows with
    /// the time spent draining, up to `max_drain`.
    pub long_drain: Duration,
    /// The longest interval of a long drain.
    pub max_drain: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fast: Duration::from_secs(1),
            slow: Duration::from_secs(5),
            drain: Duration::from_millis(1500),
            warmup: Duration::from_secs(2),
            long_drain: Duration::from_secs(60),
            max_drain: Duration::from_secs(10),
        }
    }
}

impl Policy {
    /// The same interval in every phase (the benchmark's comparison with a fixed poll).
    pub fn every(interval: Duration) -> Policy {
        Policy {
            fast: interval,
            slow: interval,
            drain: interval,
            warmup: Duration::ZERO,
            long_drain: Duration::MAX,
            max_drain: interval,
        }
    }
}

/// Where a rollout is, as far as the polling interval cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// New tasks are still being placed or started.
    Starting,
    /// Every new task runs and older deployments still have running tasks: they drain (the
    /// target group's deregistration delay), then ECS stops them.
    Finishing,
    /// Every new task runs and no older task does: ECS is about to mark the rollout COMPLETED.
    Settling,
}

/// The interval before the next look, from the time since the wait began, the phase and how
/// long the rollout has been in it. Throttling backs off on top ([`poll::backoff`]).
pub fn next_interval(
    policy: &Policy,
    elapsed: Duration,
    phase: Phase,
    in_phase: Duration,
) -> Duration {
    if elapsed < policy.warmup {
        return policy.fast;
    }
    match phase {
        Phase::Starting => policy.slow,
        Phase::Settling => policy.fast,
        Phase::Finishing if in_phase <= policy.long_drain => policy.drain,
        Phase::Finishing => {
            let grown = policy
                .drain
                .mul_f64(in_phase.as_secs_f64() / policy.long_drain.as_secs_f64());
            grown.clamp(policy.drain, policy.max_drain.max(policy.drain))
        }
    }
}

/// What one look at the service says about our deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Our deployment is COMPLETED and the service is steady (only it remains, all tasks running).
    Done,
    /// Still rolling out.
    InProgress(Phase),
    /// ECS marked the rollout FAILED (the deployment circuit breaker): the reason given.
    Failed(String),
    /// Our deployment is no longer in the service's list, or no longer its primary one.
    Vanished(String),
}

/// The deployment that replaced ours, when it is not ours and not a rollback to `rollback_to`
/// (the circuit breaker's): another run's or a person's. Pure.
pub fn superseded_by(service: &Service, deployment_id: &str, rollback_to: &str) -> Option<String> {
    let primary = service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))?;
    if primary.id() == Some(deployment_id) {
        return None;
    }
    let td = primary.task_definition().unwrap_or_default();
    if td == rollback_to || short_task_definition(td) == short_task_definition(rollback_to) {
        return None;
    }
    Some(format!(
        "deployment {} ({}{})",
        primary.id().unwrap_or("?"),
        short_task_definition(td),
        primary
            .created_at()
            .map(|t| format!(", started {t}"))
            .unwrap_or_default()
    ))
}

/// Judges one DescribeServices answer for `deployment_id`. Pure, so every case is unit-tested.
pub fn assess(service: &Service, deployment_id: &str) -> Assessment {
    let deployments = service.deployments();
    let Some(ours) = deployments.iter().find(|d| d.id() == Some(deployment_id)) else {
        return Assessment::Vanished(format!(
            "is no longer among the service's deployments ({}): the circuit breaker rolled it back or another deployment replaced it",
            list_deployments(deployments)
        ));
    };
    if ours.rollout_state() == Some(&DeploymentRolloutState::Failed) {
        return Assessment::Failed(
            ours.rollout_state_reason()
                .unwrap_or("no reason given")
                .to_string(),
        );
    }
    if ours.status() != Some("PRIMARY") {
        return Assessment::Vanished(format!(
            "is no longer the service's primary deployment (status {}; deployments: {}): another deployment replaced it",
            ours.status().unwrap_or("unknown"),
            list_deployments(deployments)
        ));
    }
    let all_running = ours.running_count() >= ours.desired_count() && ours.pending_count() == 0;
    let steady = deployments.len() == 1 && all_running;
    let completed = match ours.rollout_state() {
        Some(DeploymentRolloutState::Completed) => true,
        // Old deployments (no rollout state reported): steady is the only signal there is.
        None => true,
        Some(_) => false,
    };
    let older_running = deployments
        .iter()
        .filter(|d| d.id() != Some(deployment_id))
        .any(|d| d.running_count() > 0);
    if completed && steady {
        Assessment::Done
    } else if all_running && older_running {
        Assessment::InProgress(Phase::Finishing)
    } else if all_running {
        Assessment::InProgress(Phase::Settling)
    } else {
        Assessment::InProgress(Phase::Starting)
    }
}

fn list_deployments(deployments: &[Deployment]) -> String {
    if deployments.is_empty() {
        return "none".into();
    }
    deployments
        .iter()
        .map(|d| {
            format!(
                "{} {} on {}",
                d.id().unwrap_or("?"),
                d.status().unwrap_or("?"),
                short_task_definition(d.task_definition().unwrap_or("?"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `family:revision` from a task definition ARN (or the input unchanged).
pub fn short_task_definition(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// One progress line for a person: counts of our deployment, its rollout state, older ones.
pub fn progress_line(service: &Service, deployment_id: &str) -> String {
    let deployments = service.deployments();
    let Some(ours) = deployments.iter().find(|d| d.id() == Some(deployment_id)) else {
        return format!("deployment {deployment_id} not found");
    };
    let mut line = format!(
        "running {}/{}, pending {}, rollout {}",
        ours.running_count(),
        ours.desired_count(),
        ours.pending_count(),
        ours.rollout_state().map(|s| s.as_str()).unwrap_or("-"),
    );
    if ours.failed_tasks() > 0 {
        line.push_str(&format!(", failed tasks {}", ours.failed_tasks()));
    }
    let others: Vec<&Deployment> = deployments
        .iter()
        .filter(|d| d.id() != Some(deployment_id))
        .collect();
    if !others.is_empty() {
        let running: i32 = others.iter().map(|d| d.running_count()).sum();
        line.push_str(&format!(
            "; older deployments {} (running {running})",
            others.len()
        ));
    }
    line
}

/// The service events not seen before, oldest first (ECS lists them newest first).
pub fn new_events(service: &Service, seen: &mut HashSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for e in service.events().iter().rev() {
        let id = e.id().unwrap_or_default().to_string();
        if seen.insert(id) {
            out.push(e.message().unwrap_or_default().to_string());
        }
    }
    out
}

type Answer = std::result::Result<Option<Service>, LookError>;

/// Looks at what every waiter of the run waits for, batching the looks of a cluster (or of
/// CodeDeploy) into as few calls as the APIs allow. Cheap to clone.
#[derive(Clone)]
pub struct Poller {
    services: Batcher<Service>,
    service_deployments: Batcher<ServiceDeploymentAnswer>,
    deployments: Option<Batcher<DeploymentInfo>>,
    policy: Policy,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("calls", &self.calls())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Poller {
    /// A poller of ECS with the default rolling policy (CodeDeploy looks are then not shared
    /// between apps: see [`Poller::for_aws`]).
    pub fn new(ecs: aws_sdk_ecs::Client) -> Poller {
        Poller::with_policy(ecs, Policy::default())
    }

    /// The run's poller: ECS and CodeDeploy looks shared between its apps.
    pub fn for_aws(aws: &crate::aws::Aws) -> Poller {
        Poller::new(aws.ecs.clone()).with_codedeploy(aws.codedeploy.clone())
    }

    /// A poller with its own rolling policy (the benchmark compares it with a fixed interval).
    pub fn with_policy(ecs: aws_sdk_ecs::Client, policy: Policy) -> Poller {
        Poller {
            // At most one DescribeServices a second per cluster (the fast interval, when it is
            // shorter): the preflight's look and the waits' first looks come close together.
            services: Batcher::with_min_gap(
                SERVICES_PER_CALL,
                describe_services(ecs.clone()),
                policy.fast.min(Duration::from_secs(1)),
            ),
            service_deployments: Batcher::new(
                SERVICE_DEPLOYMENTS_PER_CALL,
                describe_service_deployments(ecs),
            ),
            deployments: None,
            policy,
        }
    }

    /// This poller with CodeDeploy looks shared too.
    pub fn with_codedeploy(self, codedeploy: aws_sdk_codedeploy::Client) -> Poller {
        Poller {
            deployments: Some(deployments_batcher(codedeploy)),
            ..self
        }
    }

    /// The rolling policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many DescribeServices calls this poller has made.
    pub fn calls(&self) -> u64 {
        self.services.calls()
    }

    /// A fresh look at `service` (name or ARN) in `cluster` now; `None` when ECS says it is
    /// missing.
    pub async fn look(&self, cluster: &str, service: &str) -> Answer {
        self.look_by(cluster, service, Instant::now()).await
    }

    /// A fresh look at `service` no later than `due`: sooner when another waiter of the
    /// cluster looks first (its call answers both).
    pub async fn look_by(&self, cluster: &str, service: &str, due: Instant) -> Answer {
        self.services.look(cluster, service, due).await
    }

    /// The batcher of DescribeServiceDeployments (per cluster).
    pub fn service_deployments(&self) -> &Batcher<ServiceDeploymentAnswer> {
        &self.service_deployments
    }

    /// The batcher of CodeDeploy deployments, when this poller shares them.
    pub fn deployments(&self) -> Option<&Batcher<DeploymentInfo>> {
        self.deployments.as_ref()
    }
}

fn describe_services(ecs: aws_sdk_ecs::Client) -> poll::Fetch<Service> {
    Box::new(move |cluster, names| {
        let ecs = ecs.clone();
        Box::pin(async move {
            let out = ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(names.clone()))
                .send()
                .await
                .map_err(|e| LookError::aws("ECS", "DescribeServices", &e))?;
            let mut found = HashMap::new();
            for name in names {
                let service = out.services().iter().find(|s| {
                    s.service_name() == Some(name.as_str())
                        || s.service_arn() == Some(name.as_str())
                });
                if let Some(service) = service {
                    found.insert(name, service.clone());
                }
            }
            Ok(found)
        })
    })
}

fn describe_service_deployments(ecs: aws_sdk_ecs::Client) -> poll::Fetch<ServiceDeploymentAnswer> {
    Box::new(move |_cluster, arns| {
        let ecs = ecs.clone();
        Box::pin(async move {
            let out = ecs
                .describe_service_deployments()
                .set_service_deployment_arns(Some(arns.clone()))
                .send()
                .await
                .map_err(|e| LookError::aws("ECS", "DescribeServiceDeployments", &e))?;
            let mut found = HashMap::new();
            for arn in arns {
                let described = out
                    .service_deployments()
                    .iter()
                    .find(|d| d.service_deployment_arn() == Some(arn.as_str()));
                let answer = match described {
                    Some(d) => Ok(d.clone()),
                    None => Err(out
                        .failures()
                        .iter()
                        .filter(|f| f.arn().is_none_or(|a| a == arn))
                        .map(|f| {
                            format!(
                                "{} {}",
                                f.reason().unwrap_or("no reason"),
                                f.detail().unwrap_or("")
                            )
                            .trim()
                            .to_string()
                        })
                        .collect::<Vec<_>>()
                        .join("; ")),
                };
                found.insert(arn, answer);
            }
            Ok(found)
        })
    })
}

/// CodeDeploy deployments: GetDeployment for one, BatchGetDeployments for several.
pub fn deployments_batcher(codedeploy: aws_sdk_codedeploy::Client) -> Batcher<DeploymentInfo> {
    let fetch: poll::Fetch<DeploymentInfo> = Box::new(move |_, ids| {
        let codedeploy = codedeploy.clone();
        Box::pin(async move {
            if let [id] = ids.as_slice() {
                let info = codedeploy
                    .get_deployment()
                    .deployment_id(id)
                    .send()
                    .await
                    .map_err(|e| LookError::aws("CodeDeploy", "GetDeployment", &e))?
                    .deployment_info;
                return Ok(info.map(|i| (id.clone(), i)).into_iter().collect());
            }
            let infos = codedeploy
                .batch_get_deployments()
                .set_deployment_ids(Some(ids))
                .send()
                .await
                .map_err(|e| LookError::aws("CodeDeploy", "BatchGetDeployments", &e))?
                .deployments_info
                .unwrap_or_default();
            Ok(infos
                .into_iter()
                .filter_map(|i| Some((i.deployment_id()?.to_string(), i)))
                .collect())
        })
    });
    Batcher::new(DEPLOYMENTS_PER_CALL, fetch)
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

/// Waits until the deployment is COMPLETED and the service steady, printing progress. Fails
/// when the rollout FAILED, the deployment vanished, the timeout passed, or `cancel` fired.
/// `seen_events` holds the ids of service events printed already (or from before the deploy).
pub async fn wait_for_deployment(
    poller: &Poller,
    target: &Target<'_>,
    seen_events: &mut HashSet<String>,
    cancel: &CancellationToken,
) -> Result<()> {
    wait_watching(poller, target, seen_events, cancel, None).await
}

/// [`wait_for_deployment`] that also asks `watch`, on each look while the rollout is in
/// progress, whether its stopped tasks already tell the deployment failed (fail fast).
pub async fn wait_watching(
    poller: &Poller,
    target: &Target<'_>,
    seen_events: &mut HashSet<String>,
    cancel: &CancellationToken,
    watch: Option<&super::diagnosis::Watch>,
) -> Result<()> {
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
    let mut phase = (Phase::Starting, started);
    let look = async |at: Instant| {
        let service = poller
            .look_by(target.cluster, target.service, at)
            .await
            .map_err(|e| e.failure())?
            .ok_or_else(|| {
                Failure::fatal(target.error(
                    "the service is gone (DescribeServices says MISSING); was it deleted?".into(),
                ))
            })?;
        for event in new_events(&service, seen_events) {
            println!("{}: event: {event}", target.label);
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
            Assessment::Done => Look::Done(Ok(())),
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
            (Look::Running(r), Some(w)) => match w.check(&service).await {
                Some(problem) => Look::Done(Err(target.error(problem))),
                None => Look::Running(r),
            },
            (seen, _) => seen,
        };
        Ok((seen, line))
    };
    let policy = poller.policy();
    let interval = |&(p, in_phase): &(Phase, Duration), elapsed: Duration| {
        next_interval(policy, elapsed, p, in_phase)
    };
    let show = |_: Option<&String>, line: &String, elapsed: Duration| {
        println!("{}: [{:>4} s] {line}", target.label, elapsed.as_secs());
    };
    match poll::until(&wait, &mut None, interval, look, show).await? {
        Ended::Done(Ok(())) => {
            println!(
                "{}: deployment {} completed in {} s",
                target.label,
                target.deployment_id,
                started.elapsed().as_secs()
            );
            Ok(())
        }
        Ended::Done(Err(e)) => Err(e),
        Ended::TimedOut => Err(timed_out(target)),
        Ended::Cancelled => Err(Error::Cancelled {
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::ServiceEvent;

    fn dep(id: &str, status: &str, state: Option<DeploymentRolloutState>, run: i32) -> Deployment {
        Deployment::builder()
            .id(id)
            .status(status)
            .task_definition(format!("arn:aws:ecs:us-east-1:1:task-definition/web:{id}"))
            .desired_count(2)
            .running_count(run)
            .pending_count(2 - run)
            .set_rollout_state(state)
            .rollout_state_reason("reason text")
            .build()
    }

    fn svc(deps: Vec<Deployment>) -> Service {
        Service::builder()
            .service_name("web")
            .set_deployments(Some(deps))
            .build()
    }

    #[test]
    fn a_completed_steady_deployment_is_done() {
        let s = svc(vec![dep(
            "new",
            "PRIMARY",
            Some(DeploymentRolloutState::Completed),
            2,
        )]);
        assert_eq!(assess(&s, "new"), Assessment::Done);
    }

    #[test]
    fn all_new_tasks_running_with_old_ones_draining_is_the_finishing_phase() {
        let s = svc(vec![
            dep(
                "new",
                "PRIMARY",
                Some(DeploymentRolloutState::InProgress),
                2,
            ),
            dep("old", "ACTIVE", Some(DeploymentRolloutState::Completed), 2),
        ]);
        assert_eq!(assess(&s, "new"), Assessment::InProgress(Phase::Finishing));
        let s = svc(vec![dep(
            "new",
            "PRIMARY",
            Some(DeploymentRolloutState::InProgress),
            1,
        )]);
        assert_eq!(assess(&s, "new"), Assessment::InProgress(Phase::Starting));
    }

    #[test]
    fn a_failed_rollout_and_a_vanished_deployment_are_reported() {
        let s = svc(vec![dep(
            "new",
            "PRIMARY",
            Some(DeploymentRolloutState::Failed),
            0,
        )]);
        assert_eq!(assess(&s, "new"), Assessment::Failed("reason text".into()));
        let s = svc(vec![dep(
            "other",
            "PRIMARY",
            Some(DeploymentRolloutState::InProgress),
            0,
        )]);
        assert!(
            matches!(assess(&s, "new"), Assessment::Vanished(w) if w.contains("other PRIMARY"))
        );
        let s = svc(vec![
            dep(
                "other",
                "PRIMARY",
                Some(DeploymentRolloutState::InProgress),
                0,
            ),
            dep("new", "ACTIVE", Some(DeploymentRolloutState::InProgress), 2),
        ]);
        assert!(matches!(assess(&s, "new"), Assessment::Vanished(w) if w.contains("primary")));
    }

    #[test]
    fn the_interval_is_fast_at_first_and_near_the_end_and_slows_for_a_long_drain() {
        let p = Policy::default();
        let s = Duration::from_secs;
        let z = Duration::ZERO;
        assert_eq!(next_interval(&p, s(1), Phase::Starting, z), p.fast);
        assert_eq!(next_interval(&p, s(60), Phase::Starting, s(60)), p.slow);
        assert_eq!(next_interval(&p, s(60), Phase::Settling, z), p.fast);
        assert_eq!(next_interval(&p, s(60), Phase::Finishing, s(30)), p.drain);
        assert_eq!(next_interval(&p, s(200), Phase::Finishing, s(120)), s(3));
        assert_eq!(
            next_interval(&p, s(900), Phase::Finishing, s(800)),
            p.max_drain
        );
        let every = Policy::every(s(15));
        for phase in [Phase::Starting, Phase::Finishing, Phase::Settling] {
            assert_eq!(next_interval(&every, s(0), phase, s(900)), s(15));
        }
    }

    #[test]
    fn old_tasks_gone_with_ours_running_is_the_settling_phase() {
        let s = svc(vec![
            dep(
                "new",
                "PRIMARY",
                Some(DeploymentRolloutState::InProgress),
                2,
            ),
            dep("old", "ACTIVE", Some(DeploymentRolloutState::Completed), 0),
        ]);
        assert_eq!(assess(&s, "new"), Assessment::InProgress(Phase::Settling));
    }

    #[test]
    fn progress_shows_counts_state_and_older_deployments_and_events_print_once() {
        let mut s = svc(vec![
            dep(
                "new",
                "PRIMARY",
                Some(DeploymentRolloutState::InProgress),
                1,
            ),
            dep("old", "ACTIVE", Some(DeploymentRolloutState::Completed), 2),
        ]);
        assert_eq!(
            progress_line(&s, "new"),
            "running 1/2, pending 1, rollout IN_PROGRESS; older deployments 1 (running 2)"
        );
        s.events = Some(vec![
            ServiceEvent::builder().id("2").message("second").build(),
            ServiceEvent::builder().id("1").message("first").build(),
        ]);
        let mut seen = HashSet::from(["1".to_string()]);
        assert_eq!(new_events(&s, &mut seen), vec!["second".to_string()]);
        assert!(new_events(&s, &mut seen).is_empty());
    }
}
