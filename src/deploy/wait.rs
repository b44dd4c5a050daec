//! Waiting for an ECS deployment to finish, cheaply and promptly.
//!
//! One [`Poller`] serves the whole run: every app that waits asks it for a fresh look at its
//! service, and the asks that land on the same tick are answered by one DescribeServices call
//! per cluster (up to 10 services per call, the API's limit). Waiters sleep to ticks aligned on
//! the poller's clock, so apps deploying together share calls. How often a waiter looks is a
//! pure policy ([`next_interval`]): every second at first and once the new tasks are all
//! running (the rollout is about to complete), slower in between, and backing off when AWS
//! throttles. Progress lines (counts, rollout state, new service events) are printed as they
//! change, so a person can follow the rollout in the log.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// DescribeServices takes at most this many services per call.
const SERVICES_PER_CALL: usize = 10;

/// How long the first ask of a tick waits for the other apps' asks before calling AWS.
const GATHER: Duration = Duration::from_millis(40);

/// Consecutive failed looks (other than throttling) before the wait gives up.
const MAX_ERRORS: u32 = 4;

/// How often to look at a service, by phase. The defaults keep a deployment's detection lag
/// near one second where it matters while staying far below ECS's DescribeServices rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Interval right after the update and once the new tasks are all running.
    pub fast: Duration,
    /// Interval while tasks are still starting (the long middle of a rollout).
    pub slow: Duration,
    /// How long after the start the fast interval is kept.
    pub warmup: Duration,
    /// The longest interval after repeated throttling.
    pub max_backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fast: Duration::from_secs(1),
            slow: Duration::from_secs(3),
            warmup: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Where a rollout is, as far as the polling interval cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// New tasks are still being placed or started.
    Starting,
    /// Every new task runs: ECS is draining the old ones and will mark the rollout COMPLETED.
    Finishing,
}

/// The interval before the next look, from the time since the wait began, the phase, and how
/// many throttling answers came in a row (each doubles the interval, up to `max_backoff`).
pub fn next_interval(policy: &Policy, elapsed: Duration, phase: Phase, throttled: u32) -> Duration {
    let base = if elapsed < policy.warmup || phase == Phase::Finishing {
        policy.fast
    } else {
        policy.slow
    };
    if throttled == 0 {
        return base;
    }
    let factor = 1u32 << throttled.min(8);
    (base * factor).min(policy.max_backoff).max(base)
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
    if completed && steady {
        Assessment::Done
    } else if all_running {
        Assessment::InProgress(Phase::Finishing)
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

/// A failed look at a service, shared by all waiters of a batch.
#[derive(Debug, Clone)]
pub struct LookError {
    pub message: String,
    /// True when AWS said "slow down": the waiter backs off and keeps waiting.
    pub throttled: bool,
}

type Answer = std::result::Result<Option<Service>, LookError>;

struct Ask {
    service: String,
    reply: oneshot::Sender<Answer>,
}

struct Shared {
    ecs: aws_sdk_ecs::Client,
    clock: Instant,
    pending: Mutex<HashMap<String, Vec<Ask>>>,
    calls: AtomicU64,
}

/// Looks at services for every waiter of the run, batching concurrent asks per cluster into
/// DescribeServices calls of up to 10 services. Cheap to clone.
#[derive(Clone)]
pub struct Poller {
    shared: Arc<Shared>,
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
    /// A poller with the default policy.
    pub fn new(ecs: aws_sdk_ecs::Client) -> Poller {
        Poller::with_policy(ecs, Policy::default())
    }

    /// A poller with its own policy (tests and the benchmark use shorter intervals).
    pub fn with_policy(ecs: aws_sdk_ecs::Client, policy: Policy) -> Poller {
        Poller {
            shared: Arc::new(Shared {
                ecs,
                clock: Instant::now(),
                pending: Mutex::new(HashMap::new()),
                calls: AtomicU64::new(0),
            }),
            policy,
        }
    }

    /// The polling policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many DescribeServices calls this poller has made.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// A fresh look at `service` (name or ARN) in `cluster`; `None` when ECS says it is missing.
    pub async fn look(&self, cluster: &str, service: &str) -> Answer {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let asks = pending.entry(cluster.to_string()).or_default();
            asks.push(Ask {
                service: service.to_string(),
                reply,
            });
            asks.len() == 1
        };
        if first {
            // The batch runs in its own task: a waiter that is dropped (cancelled) must not
            // leave the others of its batch without an answer.
            let shared = self.shared.clone();
            let cluster = cluster.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(GATHER).await;
                flush(&shared, &cluster).await;
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(LookError {
                message: "the poller stopped before answering".into(),
                throttled: false,
            })
        })
    }

    /// Sleeps until the next tick of `interval` on the poller's clock, so that waiters using
    /// the same interval wake together and share one call.
    pub async fn sleep_to_tick(&self, interval: Duration) {
        let step = interval.as_millis().max(1);
        let elapsed = self.shared.clock.elapsed().as_millis();
        let next = (elapsed / step + 1) * step;
        let at = self.shared.clock + Duration::from_millis(u64::try_from(next).unwrap_or(u64::MAX));
        tokio::time::sleep_until(at).await;
    }
}

async fn flush(shared: &Shared, cluster: &str) {
    let asks = {
        let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(cluster).unwrap_or_default()
    };
    let mut names: Vec<String> = asks.iter().map(|a| a.service.clone()).collect();
    names.sort();
    names.dedup();
    let mut answers: HashMap<String, Answer> = HashMap::new();
    for chunk in names.chunks(SERVICES_PER_CALL) {
        shared.calls.fetch_add(1, Ordering::SeqCst);
        let result = shared
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await;
        match result {
            Ok(out) => {
                for name in chunk {
                    let found = out
                        .services()
                        .iter()
                        .find(|s| {
                            s.service_name() == Some(name.as_str())
                                || s.service_arn() == Some(name.as_str())
                        })
                        .cloned();
                    answers.insert(name.clone(), Ok(found));
                }
            }
            Err(e) => {
                let throttled = matches!(
                    e.code(),
                    Some(
                        "ThrottlingException"
                            | "Throttling"
                            | "TooManyRequestsException"
                            | "RequestLimitExceeded"
                    )
                );
                let err = LookError {
                    message: crate::error::error_chain(&e),
                    throttled,
                };
                for name in chunk {
                    answers.insert(name.clone(), Err(err.clone()));
                }
            }
        }
    }
    for ask in asks {
        let answer = answers.get(&ask.service).cloned().unwrap_or(Ok(None));
        // A waiter that went away (cancelled) no longer needs its answer.
        let _ = ask.reply.send(answer);
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
    let started = Instant::now();
    let deadline = started + target.timeout;
    let mut phase = Phase::Starting;
    let mut throttled = 0u32;
    let mut errors = 0u32;
    let mut last_line = String::new();
    println!(
        "{}: waiting for deployment {} of {} (up to {} s)",
        target.label,
        target.deployment_id,
        target.describe(),
        target.timeout.as_secs()
    );
    loop {
        let answer = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Error::Cancelled {
                what: format!("waiting for deployment {} of {}", target.deployment_id, target.describe()),
            }),
            () = tokio::time::sleep_until(deadline) => return Err(timed_out(target)),
            a = poller.look(target.cluster, target.service) => a,
        };
        match answer {
            Err(e) if e.throttled => {
                throttled += 1;
                println!(
                    "{}: AWS is throttling DescribeServices; backing off ({})",
                    target.label, e.message
                );
            }
            Err(e) => {
                errors += 1;
                if errors >= MAX_ERRORS {
                    return Err(target.error(format!(
                        "cannot read the service ({errors} tries): {}",
                        e.message
                    )));
                }
                println!(
                    "{}: could not read the service, trying again: {}",
                    target.label, e.message
                );
            }
            Ok(None) => {
                return Err(target.error(
                    "the service is gone (DescribeServices says MISSING); was it deleted?".into(),
                ));
            }
            Ok(Some(service)) => {
                throttled = 0;
                errors = 0;
                for event in new_events(&service, seen_events) {
                    println!("{}: event: {event}", target.label);
                }
                let line = progress_line(&service, target.deployment_id);
                if line != last_line {
                    println!(
                        "{}: [{:>4} s] {line}",
                        target.label,
                        started.elapsed().as_secs()
                    );
                    last_line = line;
                }
                match assess(&service, target.deployment_id) {
                    Assessment::Done => {
                        println!(
                            "{}: deployment {} completed in {} s",
                            target.label,
                            target.deployment_id,
                            started.elapsed().as_secs()
                        );
                        return Ok(());
                    }
                    Assessment::Failed(reason) => {
                        return Err(target.error(format!(
                            "the rollout FAILED ({reason}); the deployment circuit breaker stopped it, see the service events above"
                        )));
                    }
                    Assessment::Vanished(why) => return Err(target.error(why)),
                    Assessment::InProgress(p) => phase = p,
                }
            }
        }
        let interval = next_interval(poller.policy(), started.elapsed(), phase, throttled);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Error::Cancelled {
                what: format!("waiting for deployment {} of {}", target.deployment_id, target.describe()),
            }),
            () = tokio::time::sleep_until(deadline) => return Err(timed_out(target)),
            () = poller.sleep_to_tick(interval) => {}
        }
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
    fn the_interval_is_fast_at_first_and_near_the_end_and_backs_off_when_throttled() {
        let p = Policy::default();
        let s = Duration::from_secs;
        assert_eq!(next_interval(&p, s(2), Phase::Starting, 0), p.fast);
        assert_eq!(next_interval(&p, s(60), Phase::Starting, 0), p.slow);
        assert_eq!(next_interval(&p, s(60), Phase::Finishing, 0), p.fast);
        assert_eq!(next_interval(&p, s(60), Phase::Finishing, 1), p.fast * 2);
        assert_eq!(next_interval(&p, s(60), Phase::Starting, 3), s(24));
        assert_eq!(next_interval(&p, s(60), Phase::Starting, 30), p.max_backoff);
        assert!(next_interval(&p, s(0), Phase::Finishing, 0) >= Duration::from_secs(1));
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
