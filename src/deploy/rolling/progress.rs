//! Reading a rolling deployment, pure: which phase it is in ([`assess`]), how soon to look
//! again ([`next_interval`]: every second right after the update and once the old tasks are
//! gone, every 1.5 s while they drain, every 5 s while the new tasks start), whether another
//! deployment replaced ours ([`superseded_by`]), and the progress lines a person follows in the
//! log ([`progress_line`], [`new_events`]). And ECS's early success: whether the service has
//! early success criteria with the old tasks drained afterwards (`sourceServiceRevisionCleanup:
//! DEFERRED`, [`early_success`]), and whether ECS has marked our service deployment SUCCESSFUL
//! ([`reading`]): with them the rollout is done at SUCCESSFUL while the old tasks still drain.

use crate::deploy::timing::Cadence;
use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_ecs::types::{
    Deployment, DeploymentConfiguration, DeploymentEarlySuccessCriteria, DeploymentRolloutState,
    Service, ServiceDeployment, ServiceDeploymentStatus, ServiceRevisionCleanup,
};

use crate::task_definition::short_task_definition;

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
    /// Interval while ECS may mark our service deployment SUCCESSFUL any moment (early success:
    /// enough new tasks run); under a second, so the wait ends within a second of it.
    pub early: Duration,
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
            early: Duration::from_millis(750),
        }
    }
}

impl Policy {
    /// The policy of a run's cadence: the phase-aware default, or one interval everywhere.
    pub fn of(cadence: Cadence) -> Policy {
        match cadence {
            Cadence::Phased => Policy::default(),
            Cadence::Every(interval) => Policy::every(interval),
        }
    }

    /// The same interval in every phase (the benchmark's comparison with a fixed poll).
    pub fn every(interval: Duration) -> Policy {
        Policy {
            fast: interval,
            slow: interval,
            drain: interval,
            warmup: Duration::ZERO,
            long_drain: Duration::MAX,
            max_drain: interval,
            early: interval,
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
pub(crate) fn next_interval(
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

/// The interval while ECS may mark early success any moment, from how long that has been so:
/// `early` for the first `long_drain` (health checks and a bake time usually end within it),
/// then growing with the wait like a long drain, up to `max_drain`, so a service whose new tasks
/// never turn healthy costs few calls. Pure.
pub(crate) fn early_interval(policy: &Policy, in_reach: Duration) -> Duration {
    if in_reach <= policy.long_drain {
        return policy.early;
    }
    let grown = policy
        .early
        .mul_f64(in_reach.as_secs_f64() / policy.long_drain.as_secs_f64());
    grown.clamp(policy.early, policy.max_drain.max(policy.early))
}

/// Where early success stands, as far as the interval cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Early {
    /// The service has no early success with DEFERRED cleanup (or it cannot be followed): the
    /// rolling policy alone.
    Off,
    /// It has, and too few new tasks run yet: ECS may say SUCCESSFUL as soon as enough run
    /// (healthy can be running, without health checks), so the service is read every `fast`
    /// while they start, not every `slow`.
    Awaiting,
    /// Enough new tasks run, for this long: our service deployment is read every `early`.
    InReach(Duration),
}

/// The interval before the service's next read: [`next_interval`], but while new tasks start on
/// a service with early success, `fast` (the run reads a cluster's services once a second at
/// most) for a minute, then growing like [`early_interval`], up to `slow`. Pure.
pub(crate) fn service_interval(
    policy: &Policy,
    elapsed: Duration,
    (phase, in_phase): (Phase, Duration),
    early: Early,
) -> Duration {
    let usual = next_interval(policy, elapsed, phase, in_phase);
    match (early, phase) {
        (Early::Off, _) | (_, Phase::Finishing | Phase::Settling) => usual,
        (_, Phase::Starting) => {
            let starting = early_interval(policy, in_phase).max(policy.fast);
            usual.min(starting.min(policy.slow))
        }
    }
}

/// The interval before the next look: the service's ([`service_interval`]), or sooner while
/// early success is in reach ([`early_interval`]: the look then reads our service deployment,
/// and the service only when it is due). Pure.
pub(crate) fn look_interval(
    policy: &Policy,
    elapsed: Duration,
    at: (Phase, Duration),
    early: Early,
) -> Duration {
    let service = service_interval(policy, elapsed, at, early);
    match early {
        Early::InReach(r) => service.min(early_interval(policy, r)),
        Early::Off | Early::Awaiting => service,
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
pub(crate) fn superseded_by(
    service: &Service,
    deployment_id: &str,
    rollback_to: &str,
) -> Option<String> {
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
pub(crate) fn assess(service: &Service, deployment_id: &str) -> Assessment {
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

/// One progress line for a person: counts of our deployment, its rollout state, older ones.
pub(crate) fn progress_line(service: &Service, deployment_id: &str) -> String {
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
pub(crate) fn new_events(service: &Service, seen: &mut HashSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for e in service.events().iter().rev() {
        let id = e.id().unwrap_or_default().to_string();
        if seen.insert(id) {
            out.push(e.message().unwrap_or_default().to_string());
        }
    }
    out
}

/// The service's early success criteria, when they change when the rollout is done: enabled,
/// with the old tasks drained after success (DEFERRED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlySuccess {
    /// The share of the desired count that must be healthy, in percent, when given.
    pub healthy_percent: Option<i32>,
}

/// Reads `deploymentConfiguration.earlySuccessCriteria`: `Some` when enabled with DEFERRED
/// cleanup. With BLOCKING cleanup ECS marks success only after the old tasks are gone, which is
/// the wait of a service without the setting, so `None` then. Pure.
pub fn early_success(service: &Service) -> Option<EarlySuccess> {
    let c = service
        .deployment_configuration()
        .and_then(DeploymentConfiguration::early_success_criteria)?;
    let deferred = c.source_service_revision_cleanup() == Some(&ServiceRevisionCleanup::Deferred);
    (c.enable() && deferred).then(|| EarlySuccess {
        healthy_percent: DeploymentEarlySuccessCriteria::healthy_percent(c),
    })
}

/// What our service deployment (DescribeServiceDeployments) says about the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// PENDING or IN_PROGRESS (or none yet): keep following as today.
    Running,
    /// SUCCESSFUL: the rollout is done; the old tasks may still drain.
    Successful,
    /// Any other status: the rollout did not succeed (ECS rolled back or someone stopped it);
    /// the service's own wait says how.
    Ended(ServiceDeploymentStatus),
}

/// Reads our service deployment's status. Pure.
pub fn reading(d: &ServiceDeployment) -> Reading {
    match d.status() {
        None | Some(ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress) => {
            Reading::Running
        }
        Some(ServiceDeploymentStatus::Successful) => Reading::Successful,
        Some(other) => Reading::Ended(other.clone()),
    }
}

impl EarlySuccess {
    /// Whether enough of `ours` (our deployment, as DescribeServices lists it) runs for ECS to
    /// mark it SUCCESSFUL: `healthyPercent` of the desired count, rounded up (ECS's rule), and
    /// all of it when no percentage is given. Running is not yet healthy, so this is the earliest
    /// moment, not the moment itself. Pure.
    pub(crate) fn within_reach(self, ours: &Deployment) -> bool {
        let percent = i64::from(self.healthy_percent.unwrap_or(100).clamp(0, 100));
        i64::from(ours.running_count()) * 100 >= i64::from(ours.desired_count()) * percent
    }

    /// What the log, the summary and the message say when the rollout ends at SUCCESSFUL.
    pub fn text(self) -> String {
        let at = self
            .healthy_percent
            .map_or(String::new(), |p| format!(" ({p}% of the tasks healthy)"));
        format!(
            "ECS marked the deployment SUCCESSFUL early{at}; the old tasks drain in the background, and ECS's rollback of this deployment no longer applies"
        )
    }
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

#[cfg(test)]
mod early_tests {
    use super::*;

    fn service(criteria: Option<DeploymentEarlySuccessCriteria>) -> Service {
        Service::builder()
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .set_early_success_criteria(criteria)
                    .build(),
            )
            .build()
    }

    fn criteria(
        enable: bool,
        cleanup: Option<ServiceRevisionCleanup>,
    ) -> DeploymentEarlySuccessCriteria {
        DeploymentEarlySuccessCriteria::builder()
            .enable(enable)
            .healthy_percent(80)
            .set_source_service_revision_cleanup(cleanup)
            .build()
    }

    #[test]
    fn early_success_counts_only_when_enabled_with_deferred_cleanup() {
        let on = early_success(&service(Some(criteria(
            true,
            Some(ServiceRevisionCleanup::Deferred),
        ))));
        assert_eq!(
            on,
            Some(EarlySuccess {
                healthy_percent: Some(80)
            })
        );
        assert_eq!(
            early_success(&service(Some(criteria(
                true,
                Some(ServiceRevisionCleanup::Blocking)
            )))),
            None,
            "BLOCKING: success comes after the drain, as without the setting"
        );
        assert_eq!(
            early_success(&service(Some(criteria(
                false,
                Some(ServiceRevisionCleanup::Deferred)
            )))),
            None
        );
        assert_eq!(early_success(&service(Some(criteria(true, None)))), None);
        assert_eq!(early_success(&service(None)), None);
        assert_eq!(early_success(&Service::builder().build()), None);
    }

    #[test]
    fn our_service_deployment_is_done_at_successful() {
        let d = |s: Option<ServiceDeploymentStatus>| {
            reading(&ServiceDeployment::builder().set_status(s).build())
        };
        assert_eq!(d(None), Reading::Running);
        assert_eq!(
            d(Some(ServiceDeploymentStatus::InProgress)),
            Reading::Running
        );
        assert_eq!(d(Some(ServiceDeploymentStatus::Pending)), Reading::Running);
        assert_eq!(
            d(Some(ServiceDeploymentStatus::Successful)),
            Reading::Successful
        );
        assert_eq!(
            d(Some(ServiceDeploymentStatus::RollbackSuccessful)),
            Reading::Ended(ServiceDeploymentStatus::RollbackSuccessful)
        );
    }

    #[test]
    fn early_success_is_within_reach_once_enough_new_tasks_run_rounded_up() {
        let ours = |running: i32, desired: i32| {
            Deployment::builder()
                .running_count(running)
                .desired_count(desired)
                .build()
        };
        let at = |p: Option<i32>| EarlySuccess { healthy_percent: p };
        // 80% of 5 is 4 tasks; 50% of 3 is 2 (ECS rounds up).
        assert!(!at(Some(80)).within_reach(&ours(3, 5)));
        assert!(at(Some(80)).within_reach(&ours(4, 5)));
        assert!(!at(Some(50)).within_reach(&ours(1, 3)));
        assert!(at(Some(50)).within_reach(&ours(2, 3)));
        assert!(!at(None).within_reach(&ours(4, 5)), "no percentage: all");
        assert!(at(None).within_reach(&ours(5, 5)));
    }

    #[test]
    fn without_early_success_every_interval_is_the_rolling_policy() {
        let p = Policy::default();
        let s = Duration::from_secs;
        for (elapsed, phase, in_phase) in [
            (s(1), Phase::Starting, s(1)),
            (s(60), Phase::Starting, s(60)),
            (s(60), Phase::Finishing, s(30)),
            (s(900), Phase::Finishing, s(800)),
            (s(60), Phase::Settling, s(0)),
        ] {
            let usual = next_interval(&p, elapsed, phase, in_phase);
            assert_eq!(
                look_interval(&p, elapsed, (phase, in_phase), Early::Off),
                usual
            );
            assert_eq!(
                service_interval(&p, elapsed, (phase, in_phase), Early::Off),
                usual
            );
        }
    }

    #[test]
    fn with_early_success_starting_tasks_and_our_deployment_are_read_every_early_interval() {
        let p = Policy::default();
        let s = Duration::from_secs;
        let early = p.early;
        // New tasks starting: every second for a minute, then slower, never slower than `slow`.
        let starting =
            |in_phase| service_interval(&p, s(30), (Phase::Starting, in_phase), Early::Awaiting);
        assert_eq!(starting(s(10)), p.fast);
        assert_eq!(starting(s(120)), Duration::from_millis(1500));
        assert_eq!(starting(s(3600)), p.slow);
        // In reach while the old tasks drain: the service every 1.5 s, the looks every 0.75 s.
        let draining = (Phase::Finishing, s(10));
        assert_eq!(
            service_interval(&p, s(30), draining, Early::InReach(s(5))),
            p.drain
        );
        assert_eq!(
            look_interval(&p, s(30), draining, Early::InReach(s(5))),
            early
        );
        let long = (Phase::Finishing, s(240));
        assert_eq!(
            look_interval(&p, s(300), long, Early::InReach(s(240))),
            Duration::from_secs(3),
            "a long wait in reach slows down too"
        );
    }

    #[test]
    fn the_early_interval_is_short_for_a_minute_then_grows_to_the_drain_cap() {
        let p = Policy::default();
        let s = Duration::from_secs;
        assert_eq!(early_interval(&p, s(0)), Duration::from_millis(750));
        assert_eq!(early_interval(&p, s(60)), Duration::from_millis(750));
        assert_eq!(early_interval(&p, s(120)), Duration::from_millis(1500));
        assert_eq!(early_interval(&p, s(3600)), p.max_drain);
        assert!(
            p.early < Duration::from_secs(1),
            "SUCCESSFUL seen within a second"
        );
    }

    #[test]
    fn the_text_says_the_old_tasks_drain_and_ecs_no_longer_rolls_back() {
        let t = EarlySuccess {
            healthy_percent: Some(80),
        }
        .text();
        assert!(
            t.contains("(80% of the tasks healthy)") && t.contains("drain in the background"),
            "{t}"
        );
        assert!(
            t.contains("rollback of this deployment no longer applies"),
            "{t}"
        );
    }
}
