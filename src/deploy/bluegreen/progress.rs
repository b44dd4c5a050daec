//! The pure half of ECS native blue/green: whether a service can take this path, what a service
//! deployment's status means for the run, how its lifecycle stage and task counts read in the
//! log, which of the listed service deployments is the one our UpdateService started, and how
//! often to look at it (its stage, and when the strategy's bake time and traffic steps end).

use crate::deploy::timing::Cadence;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use crate::deploy::poll::{Expect, Pace, toward};

use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentControllerType, DeploymentLifecycleHookAction,
    DeploymentLifecycleHookStage, DeploymentLifecycleHookStatus, DeploymentLifecycleHookTargetType,
    DeploymentStrategy, Service, ServiceDeployment, ServiceDeploymentBrief,
    ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
};

/// What a service deployment's status means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// PENDING, IN_PROGRESS (or a status this build does not know): keep following.
    Running,
    /// ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS: ECS is moving traffic back to blue.
    RollingBack,
    /// STOP_REQUESTED: someone stopped it; wait for STOPPED.
    Stopping,
    /// SUCCESSFUL: green serves all production traffic and blue is cleaned up.
    Succeeded,
    /// ROLLBACK_SUCCESSFUL: traffic is back on blue.
    RolledBack,
    /// ROLLBACK_FAILED: ECS could not restore blue; a person has to look.
    RollbackFailed,
    /// STOPPED: stopped without a rollback (manual stop, or a failure with rollback off).
    Stopped,
}

impl Verdict {
    /// True when the deployment will not move any more.
    pub(crate) fn is_final(self) -> bool {
        matches!(
            self,
            Verdict::Succeeded | Verdict::RolledBack | Verdict::RollbackFailed | Verdict::Stopped
        )
    }
}

/// Maps a service deployment status to what it means for the run. ECS has no FAILED status for
/// service deployments: a failed one ends ROLLBACK_* (rollback on) or STOPPED (rollback off).
pub fn outcome(status: Option<&ServiceDeploymentStatus>) -> Verdict {
    match status {
        Some(ServiceDeploymentStatus::Successful) => Verdict::Succeeded,
        Some(
            ServiceDeploymentStatus::RollbackRequested
            | ServiceDeploymentStatus::RollbackInProgress,
        ) => Verdict::RollingBack,
        Some(ServiceDeploymentStatus::RollbackSuccessful) => Verdict::RolledBack,
        Some(ServiceDeploymentStatus::RollbackFailed) => Verdict::RollbackFailed,
        Some(ServiceDeploymentStatus::StopRequested) => Verdict::Stopping,
        Some(ServiceDeploymentStatus::Stopped) => Verdict::Stopped,
        // PENDING, IN_PROGRESS, none yet, or a value added after this build: keep following
        // (the log shows the raw value) until it ends or wait-for-minutes runs out.
        _ => Verdict::Running,
    }
}

/// What a lifecycle stage means, in words a person on call understands.
pub fn stage_text(stage: &str) -> &'static str {
    match stage {
        "RECONCILE_SERVICE" => "reconciling the service's active revisions",
        "PRE_SCALE_UP" => "green not started yet; blue serves all production traffic",
        "SCALE_UP" => "green tasks starting; green gets no traffic yet",
        "POST_SCALE_UP" => "green tasks running; blue serves all production traffic",
        "TEST_TRAFFIC_SHIFT" => "test traffic moving to green",
        "POST_TEST_TRAFFIC_SHIFT" => "green serves all test traffic",
        "PRE_PRODUCTION_TRAFFIC_SHIFT" => "about to move production traffic",
        "PRODUCTION_TRAFFIC_SHIFT" => "production traffic moving to green",
        "POST_PRODUCTION_TRAFFIC_SHIFT" => "green serves all production traffic",
        "BAKE_TIME" => "bake time: both revisions run, blue kept for an instant rollback",
        "CLEAN_UP" => "blue scaling down to 0",
        _ => "stage not known to this build",
    }
}

/// Task counts of one side (green: the target revision; blue: the source revisions summed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub running: i32,
    pub pending: i32,
    pub requested: i32,
}

impl Counts {
    fn text(self) -> String {
        let mut s = format!("{}/{} running", self.running, self.requested);
        if self.pending > 0 {
            let _ = write!(s, ", {} pending", self.pending);
        }
        s
    }
}

/// One look at a service deployment, reduced to what the log shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    pub status: String,
    pub stage: Option<String>,
    pub green: Option<Counts>,
    pub blue: Option<Counts>,
    /// Share of production traffic requested for green, in percent.
    pub production_weight: Option<f64>,
    /// Share of test traffic requested for green, in percent.
    pub test_weight: Option<f64>,
    /// The bake time in minutes, shown while the deployment bakes.
    pub bake_minutes: Option<i32>,
    pub reason: Option<String>,
}

/// Reduces a described service deployment to its [`Progress`].
pub(crate) fn progress(d: &ServiceDeployment) -> Progress {
    let green = d.target_service_revision().map(|r| Counts {
        running: r.running_task_count(),
        pending: r.pending_task_count(),
        requested: r.requested_task_count(),
    });
    let blue = (!d.source_service_revisions().is_empty()).then(|| {
        d.source_service_revisions()
            .iter()
            .fold(Counts::default(), |acc, r| Counts {
                running: acc.running + r.running_task_count(),
                pending: acc.pending + r.pending_task_count(),
                requested: acc.requested + r.requested_task_count(),
            })
    });
    let stage = d.lifecycle_stage().map(|s| s.as_str().to_string());
    let bake_minutes = if stage.as_deref() == Some("BAKE_TIME") {
        d.deployment_configuration()
            .and_then(DeploymentConfiguration::bake_time_in_minutes)
    } else {
        None
    };
    Progress {
        status: d
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "UNKNOWN".into()),
        stage,
        green,
        blue,
        production_weight: d
            .target_service_revision()
            .and_then(|r| r.requested_production_traffic_weight()),
        test_weight: d
            .target_service_revision()
            .and_then(|r| r.requested_test_traffic_weight()),
        bake_minutes,
        reason: d.status_reason().map(str::to_string),
    }
}

fn percent(w: f64) -> String {
    if w.fract() == 0.0 {
        format!("{w:.0}%")
    } else {
        format!("{w:.1}%")
    }
}

impl Progress {
    /// One log line: status, stage and its meaning, counts, traffic weights, bake time.
    pub(crate) fn line(&self) -> String {
        let mut s = self.status.clone();
        if let Some(stage) = &self.stage {
            let _ = write!(s, " {stage} ({})", stage_text(stage));
        }
        if let Some(g) = self.green {
            let _ = write!(s, "; green {}", g.text());
        }
        if let Some(b) = self.blue {
            let _ = write!(s, "; blue {}", b.text());
        }
        if let Some(w) = self.production_weight {
            let _ = write!(s, "; production traffic on green {}", percent(w));
        }
        if let Some(w) = self.test_weight {
            let _ = write!(s, "; test traffic on green {}", percent(w));
        }
        if let Some(m) = self.bake_minutes {
            let _ = write!(s, "; bake time {m} min");
        }
        if let Some(r) = &self.reason {
            let _ = write!(s, "; reason: {r}");
        }
        s
    }

    /// True when this look is a new step for the job summary: the status, the stage or a
    /// traffic weight moved (linear and canary repeat PRODUCTION_TRAFFIC_SHIFT per step).
    /// Count changes alone only go to the log.
    pub(crate) fn is_new_step(&self, previous: Option<&Progress>) -> bool {
        previous.is_none_or(|p| {
            p.status != self.status
                || p.stage != self.stage
                || p.production_weight != self.production_weight
                || p.test_weight != self.test_weight
        })
    }
}

/// Describes the service's strategy for the log: `linear, 20% every 2 min, bake time 5 min`.
pub fn strategy_text(cfg: Option<&DeploymentConfiguration>) -> String {
    let Some(cfg) = cfg else {
        return "no deployment configuration".into();
    };
    let mut s = match cfg.strategy() {
        Some(DeploymentStrategy::BlueGreen) => "blue/green".to_string(),
        Some(DeploymentStrategy::Linear) => {
            let mut s = "linear".to_string();
            if let Some(l) = cfg.linear_configuration() {
                if let Some(p) = l.step_percent() {
                    let _ = write!(s, ", {} per step", percent(p));
                }
                if let Some(m) = l.step_bake_time_in_minutes() {
                    let _ = write!(s, ", {m} min between steps");
                }
            }
            s
        }
        Some(DeploymentStrategy::Canary) => {
            let mut s = "canary".to_string();
            if let Some(c) = cfg.canary_configuration() {
                if let Some(p) = c.canary_percent() {
                    let _ = write!(s, ", {} first", percent(p));
                }
                if let Some(m) = c.canary_bake_time_in_minutes() {
                    let _ = write!(s, " for {m} min, then the rest");
                }
            }
            s
        }
        Some(other) => other.as_str().to_lowercase(),
        None => "rolling".into(),
    };
    if let Some(m) = cfg.bake_time_in_minutes() {
        let _ = write!(s, ", bake time {m} min");
    }
    s
}

/// Checks that the live service deploys through ECS itself with a blue/green, linear or canary
/// strategy; otherwise says what to change. Runs before the first write.
pub fn check_service(live: &Service) -> Result<(), String> {
    match live.deployment_controller().map(|c| c.r#type()) {
        None | Some(DeploymentControllerType::Ecs) => {}
        Some(other) => {
            return Err(format!(
                "its deployment controller is {}, not ECS; ECS native blue/green needs the ECS \
                 controller (use deployment: codedeploy for a CODE_DEPLOY service)",
                other.as_str()
            ));
        }
    }
    let strategy = live
        .deployment_configuration()
        .and_then(DeploymentConfiguration::strategy);
    match strategy {
        Some(
            DeploymentStrategy::BlueGreen | DeploymentStrategy::Linear | DeploymentStrategy::Canary,
        ) => Ok(()),
        other => Err(format!(
            "its deploymentConfiguration.strategy is {}, not BLUE_GREEN, LINEAR or CANARY; set the \
             strategy on the service (with the alternate target group and listener rule it needs), \
             or use deployment: rolling",
            other.map_or("ROLLING (not set)", DeploymentStrategy::as_str)
        )),
    }
}

/// Picks the service deployment our UpdateService started among the listed ones: the ARN the
/// UpdateService answer named (`hint`) when it is listed, else the newest one whose target
/// revision runs `task_definition_arn`. `previous` (the deployment current before our update)
/// is never ours. `revisions` maps service revision ARN → task definition ARN.
pub fn pick_ours<'a>(
    briefs: &'a [ServiceDeploymentBrief],
    revisions: &HashMap<String, String>,
    task_definition_arn: &str,
    hint: Option<&str>,
    previous: Option<&str>,
) -> Option<&'a str> {
    let candidates = briefs
        .iter()
        .filter(|b| b.service_deployment_arn().is_some() && b.service_deployment_arn() != previous);
    if let Some(h) = hint
        && let Some(b) = candidates
            .clone()
            .find(|b| b.service_deployment_arn() == Some(h))
    {
        return b.service_deployment_arn();
    }
    candidates
        .filter(|b| {
            b.target_service_revision_arn()
                .and_then(|r| revisions.get(r))
                .is_some_and(|td| td == task_definition_arn)
        })
        .max_by_key(|b| b.created_at().copied())
        .and_then(ServiceDeploymentBrief::service_deployment_arn)
}

/// The deployment that replaced ours, when the service no longer points at ours: its current
/// service deployment is another one, or its PRIMARY deployment runs neither our task definition
/// (`ours_td`) nor blue's (`blue`, what ECS's own rollback of ours goes back to). Another run's or
/// a person's: a rollback of ours would undo it. Says its id, revision and start time (ECS does
/// not say who started it). Pure.
pub(crate) fn superseded_by(
    service: &Service,
    ours: &str,
    ours_td: &str,
    blue: Option<&str>,
) -> Option<String> {
    let primary = service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    let td = primary.and_then(|d| d.task_definition());
    let is_blue = td.is_some_and(|td| blue.is_some_and(|b| same_task_definition(td, b)));
    let current = service.current_service_deployment().filter(|c| *c != ours);
    let newer = match (current, td) {
        _ if is_blue => return None,
        (Some(c), _) => c.to_string(),
        (None, Some(td)) if !same_task_definition(td, ours_td) => {
            format!("deployment {}", primary.and_then(|d| d.id()).unwrap_or("?"))
        }
        _ => return None,
    };
    let mut by = newer;
    if let Some(td) = td {
        let _ = write!(
            by,
            " ({}",
            crate::task_definition::short_task_definition(td)
        );
        if let Some(t) = primary.and_then(|d| d.created_at()) {
            let _ = write!(by, ", started {t}");
        }
        by.push(')');
    }
    Some(by)
}

/// The same task definition, by ARN or `family:revision`.
fn same_task_definition(a: &str, b: &str) -> bool {
    use crate::task_definition::short_task_definition as short;
    a == b || short(a) == short(b)
}

/// How often a service deployment is looked at, by [`Stage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Toward an expected change (the next traffic step, the end of the bake time, the end of
    /// the clean-up).
    pub pace: Pace,
    /// Before production traffic moves (green starting, test traffic, hooks) and while ECS
    /// has not listed our deployment yet.
    pub starting: Duration,
    /// When something is due but not timed: hooks after the shift, a late step, a rollback.
    pub soon: Duration,
    /// While a PAUSE hook holds the deployment for someone else to answer (no verify inputs):
    /// a person may take hours, so a few looks a minute.
    pub paused: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            pace: Pace {
                near: Duration::from_secs(1),
                far: Duration::from_secs(30),
                lead: Duration::from_secs(2),
                linger: Duration::from_secs(30),
            },
            starting: Duration::from_secs(5),
            soon: Duration::from_secs(2),
            paused: Duration::from_secs(20),
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

    /// The same interval in every stage (tests, and a fixed poll for comparison).
    pub fn every(interval: Duration) -> Policy {
        Policy {
            pace: Pace::every(interval),
            starting: interval,
            soon: interval,
            paused: interval,
        }
    }
}

/// Where a service deployment is, as far as the polling interval cares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage {
    /// Green starting, test traffic, hooks: nothing says when it moves on.
    Starting,
    /// Production traffic moving; the next step is due `next` (`None`: not timed).
    Shifting { next: Option<Instant> },
    /// Traffic on green, the post-shift hooks running.
    Shifted,
    /// Both revisions run until `until` (the strategy's bake time).
    Baking { until: Instant },
    /// Blue scaling down since `since`: the deployment ends soon after.
    CleaningUp { since: Instant },
    /// ECS is rolling back or stopping: it ends when blue is back.
    Ending,
    /// Held at a PAUSE hook this run does not answer: someone else continues it (or not).
    AwaitingAction,
    /// At or just before a stage where a PAUSE hook this run answers holds the deployment:
    /// looked at often, so the gate starts within a second of the pause ([`near_pause`]).
    NearPause,
    /// Held at a PAUSE hook the gate answers: the next look verifies and answers at once.
    Verifying,
}

fn minutes(m: Option<i32>) -> Option<Duration> {
    m.map(|m| Duration::from_secs(u64::try_from(m.max(0)).unwrap_or(0) * 60))
}

/// The stage of a deployment from its last look, the strategy it runs, since when it is in its
/// lifecycle stage (`stage_since`) and since when green has its production weight
/// (`weight_since`). Pure.
pub(crate) fn stage(
    now: &Progress,
    config: Option<&DeploymentConfiguration>,
    stage_since: Instant,
    weight_since: Instant,
) -> Stage {
    if !matches!(
        outcome(Some(&ServiceDeploymentStatus::from(now.status.as_str()))),
        Verdict::Running
    ) {
        return Stage::Ending;
    }
    match now.stage.as_deref() {
        Some("PRODUCTION_TRAFFIC_SHIFT") => {
            let weight = now.production_weight.unwrap_or(0.0);
            if weight >= 99.95 {
                return Stage::Shifted;
            }
            let step = config.and_then(|c| match c.strategy() {
                Some(DeploymentStrategy::Linear) => minutes(
                    c.linear_configuration()
                        .and_then(|l| l.step_bake_time_in_minutes()),
                ),
                Some(DeploymentStrategy::Canary) => minutes(
                    c.canary_configuration()
                        .and_then(|l| l.canary_bake_time_in_minutes()),
                ),
                // All at once: the shift is due now.
                _ => Some(Duration::ZERO),
            });
            let since = if weight > 0.0 {
                weight_since
            } else {
                stage_since
            };
            Stage::Shifting {
                next: step.map(|d| since + d),
            }
        }
        Some("POST_PRODUCTION_TRAFFIC_SHIFT") => Stage::Shifted,
        Some("BAKE_TIME") => {
            let bake = minutes(config.and_then(DeploymentConfiguration::bake_time_in_minutes));
            Stage::Baking {
                until: stage_since + bake.unwrap_or_default(),
            }
        }
        Some("CLEAN_UP") => Stage::CleaningUp { since: stage_since },
        _ => Stage::Starting,
    }
}

/// The interval before the next look at a deployment in `stage`, seen at `now`. Pure.
pub(crate) fn interval(policy: &Policy, stage: Stage, now: Instant) -> Duration {
    let pace = &policy.pace;
    match stage {
        Stage::Starting => policy.starting,
        Stage::Shifting { next: Some(n) } => toward(pace, Expect::at(n, now), policy.soon),
        Stage::Shifting { next: None } | Stage::Shifted | Stage::Ending => policy.soon,
        Stage::Baking { until } => toward(pace, Expect::at(until, now), policy.soon),
        Stage::CleaningUp { since } => toward(pace, Expect::at(since, now), policy.soon),
        Stage::AwaitingAction => policy.paused,
        Stage::NearPause => pace.near,
        Stage::Verifying => Duration::ZERO,
    }
}

/// The lifecycle stages of a service deployment, in the order ECS walks them.
pub const LIFECYCLE: [&str; 11] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

/// How many stages before a PAUSE hook's stage the follow already looks often: the stages
/// just before a hook (the traffic moves, the hooks after scale-up) take seconds, so a rarer
/// look there could miss the moment the pause begins by several seconds. Earlier stages
/// (green's tasks starting: minutes) keep their own interval.
const NEAR_PAUSE_STAGES: usize = 2;

/// True when a deployment in lifecycle stage `stage` is at one of `pauses` (the stages of the
/// PAUSE hooks the gate answers) or at most [`NEAR_PAUSE_STAGES`] stages before one. Pure.
pub(crate) fn near_pause(stage: Option<&str>, pauses: &[DeploymentLifecycleHookStage]) -> bool {
    let index = |s: &str| LIFECYCLE.iter().position(|l| *l == s);
    let Some(at) = stage.and_then(index) else {
        return false;
    };
    pauses
        .iter()
        .filter_map(|p| index(p.as_str()))
        .any(|p| p >= at && p - at <= NEAR_PAUSE_STAGES)
}

/// A service deployment held at a PAUSE lifecycle hook, waiting for ContinueServiceDeployment
/// (CONTINUE or ROLLBACK with this hook id) or for the hook's timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct Paused {
    /// The id ContinueServiceDeployment names.
    pub hook_id: String,
    /// The deployment's lifecycle stage while paused.
    pub stage: Option<ServiceDeploymentLifecycleStage>,
    /// When ECS stops waiting and takes the timeout action.
    pub expires_at: Option<aws_smithy_types::DateTime>,
    /// What ECS does at expiry (CONTINUE or ROLLBACK; ECS's default is ROLLBACK).
    pub timeout_action: Option<DeploymentLifecycleHookAction>,
}

impl Paused {
    /// True at POST_TEST_TRAFFIC_SHIFT: green serves all test traffic and none of production,
    /// so the gate probes the test listener.
    pub fn at_test_traffic(&self) -> bool {
        self.stage == Some(ServiceDeploymentLifecycleStage::PostTestTrafficShift)
    }

    /// For the log, the summary and the message: `paused at POST_TEST_TRAFFIC_SHIFT awaiting
    /// action (hook h-1; expires 2026-12-07T22:00:00Z, then ECS will ROLLBACK)`.
    pub fn text(&self) -> String {
        let stage = self
            .stage
            .as_ref()
            .map_or("an unknown stage", ServiceDeploymentLifecycleStage::as_str);
        let mut s = format!("paused at {stage} awaiting action (hook {}", self.hook_id);
        if let Some(at) = self
            .expires_at
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        {
            let _ = write!(s, "; expires {at}");
            if let Some(a) = &self.timeout_action {
                let _ = write!(s, ", then ECS will {}", a.as_str());
            }
        } else if let Some(a) = &self.timeout_action {
            let _ = write!(s, "; at its timeout ECS will {}", a.as_str());
        }
        s.push(')');
        s
    }
}

/// The PAUSE hook a service deployment waits at, if any: a lifecycle hook detail of target type
/// PAUSE whose status is AWAITING_ACTION and that has a hook id. Pure.
pub fn paused(d: &ServiceDeployment) -> Option<Paused> {
    d.lifecycle_hook_details()
        .iter()
        .filter(|h| h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause))
        .filter(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))
        .find_map(|h| {
            Some(Paused {
                hook_id: h.hook_id().filter(|id| !id.is_empty())?.to_string(),
                stage: d.lifecycle_stage().cloned(),
                expires_at: h.expires_at().copied(),
                timeout_action: h.timeout_action().cloned(),
            })
        })
}

/// The stages of the service's PAUSE lifecycle hooks (`deploymentConfiguration.lifecycleHooks`
/// with target type PAUSE). Pure.
pub(crate) fn pause_stages(
    cfg: Option<&DeploymentConfiguration>,
) -> Vec<DeploymentLifecycleHookStage> {
    cfg.map(DeploymentConfiguration::lifecycle_hooks)
        .unwrap_or_default()
        .iter()
        .filter(|h| h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause))
        .flat_map(|h| h.lifecycle_stages().iter().cloned())
        .collect()
}

/// True for a stage at which green takes traffic (test or production), so a verification there
/// sees the new version; at RECONCILE_SERVICE, PRE_SCALE_UP and POST_SCALE_UP green gets none.
pub(crate) fn green_serves_at(stage: &DeploymentLifecycleHookStage) -> bool {
    matches!(
        stage,
        DeploymentLifecycleHookStage::PostTestTrafficShift
            | DeploymentLifecycleHookStage::PreProductionTrafficShift
            | DeploymentLifecycleHookStage::PostProductionTrafficShift
    )
}

/// The preflight's reading of a blue/green service's PAUSE hooks against the verify inputs
/// (`verify_set`): the gate runs when a PAUSE hook holds the deployment where green takes
/// traffic, so verify inputs without such a hook are refused (they would never run). A PAUSE
/// hook without verify inputs is allowed, and said (`Ok(Some(note))`): the run will not continue
/// it by itself. Pure.
pub fn check_pause_hook(
    cfg: Option<&DeploymentConfiguration>,
    verify_set: bool,
) -> Result<Option<String>, String> {
    let stages = pause_stages(cfg);
    let names = || {
        stages
            .iter()
            .map(DeploymentLifecycleHookStage::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (verify_set, stages.iter().any(green_serves_at)) {
        (true, true) => Ok(None),
        (true, false) if stages.is_empty() => Err(
            "has verify-url or verify-alarms, but no PAUSE lifecycle hook: on ECS blue/green the verification runs while a PAUSE hook holds the deployment, then continues or rolls it back; add one to the service (deploymentConfiguration.lifecycleHooks: targetType PAUSE, lifecycleStages [POST_TEST_TRAFFIC_SHIFT]; the manual's page \"Verified rollouts\", docs/src/verification.md, shows how), or leave the verify inputs out".into(),
        ),
        (true, false) => Err(format!(
            "has verify-url or verify-alarms, but its PAUSE lifecycle hooks ({}) hold the deployment before green takes any traffic, so the verification would see the old version; pause at POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT or POST_PRODUCTION_TRAFFIC_SHIFT (the manual's page \"Verified rollouts\", docs/src/verification.md)",
            names()
        )),
        (false, _) if stages.is_empty() => Ok(None),
        (false, _) => Ok(Some(format!(
            "the service pauses its deployments at {} (PAUSE lifecycle hook) and no verify input is set: this run will not continue it; it follows until someone continues or rolls it back, or wait-for-minutes ends",
            names()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{
        CanaryConfiguration, DeploymentController, LinearConfiguration,
        ServiceDeploymentLifecycleStage, ServiceRevisionSummary,
    };
    use aws_smithy_types::DateTime;

    #[test]
    fn every_service_deployment_status_maps_to_an_outcome() {
        let cases = [
            ("PENDING", Verdict::Running),
            ("IN_PROGRESS", Verdict::Running),
            ("SUCCESSFUL", Verdict::Succeeded),
            ("ROLLBACK_REQUESTED", Verdict::RollingBack),
            ("ROLLBACK_IN_PROGRESS", Verdict::RollingBack),
            ("ROLLBACK_SUCCESSFUL", Verdict::RolledBack),
            ("ROLLBACK_FAILED", Verdict::RollbackFailed),
            ("STOP_REQUESTED", Verdict::Stopping),
            ("STOPPED", Verdict::Stopped),
            ("SOMETHING_NEW", Verdict::Running),
        ];
        for (status, want) in cases {
            assert_eq!(
                outcome(Some(&ServiceDeploymentStatus::from(status))),
                want,
                "{status}"
            );
        }
        assert_eq!(outcome(None), Verdict::Running);
        assert!(Verdict::RolledBack.is_final() && Verdict::Stopped.is_final());
        assert!(!Verdict::RollingBack.is_final() && !Verdict::Stopping.is_final());
    }

    #[test]
    fn every_lifecycle_stage_of_the_sdk_has_words() {
        for stage in ServiceDeploymentLifecycleStage::values() {
            assert_ne!(stage_text(stage), stage_text("NOT_A_STAGE"), "{stage}");
        }
        assert_eq!(
            stage_text("PRE_PRODUCTION_TRAFFIC_SHIFT"),
            "about to move production traffic"
        );
    }

    fn deployment(stage: &str, green: (i32, i32, i32), weight: f64) -> ServiceDeployment {
        ServiceDeployment::builder()
            .status(ServiceDeploymentStatus::InProgress)
            .lifecycle_stage(ServiceDeploymentLifecycleStage::from(stage))
            .target_service_revision(
                ServiceRevisionSummary::builder()
                    .running_task_count(green.0)
                    .pending_task_count(green.1)
                    .requested_task_count(green.2)
                    .requested_production_traffic_weight(weight)
                    .build(),
            )
            .source_service_revisions(
                ServiceRevisionSummary::builder()
                    .running_task_count(2)
                    .requested_task_count(2)
                    .build(),
            )
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .strategy(DeploymentStrategy::BlueGreen)
                    .bake_time_in_minutes(5)
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_progress_line_shows_stage_counts_and_traffic() {
        let p = progress(&deployment("SCALE_UP", (1, 1, 2), 0.0));
        assert_eq!(
            p.line(),
            "IN_PROGRESS SCALE_UP (green tasks starting; green gets no traffic yet); \
             green 1/2 running, 1 pending; blue 2/2 running; production traffic on green 0%"
        );
    }

    #[test]
    fn the_bake_time_shows_only_while_baking() {
        let p = progress(&deployment("BAKE_TIME", (2, 0, 2), 100.0));
        assert_eq!(p.bake_minutes, Some(5));
        assert!(
            p.line()
                .ends_with("production traffic on green 100%; bake time 5 min")
        );
        let p = progress(&deployment("CLEAN_UP", (2, 0, 2), 100.0));
        assert_eq!(p.bake_minutes, None);
    }

    #[test]
    fn a_traffic_step_is_a_new_step_but_a_count_change_is_not() {
        let a = progress(&deployment("PRODUCTION_TRAFFIC_SHIFT", (2, 0, 2), 10.0));
        let more_tasks = progress(&deployment("PRODUCTION_TRAFFIC_SHIFT", (3, 0, 3), 10.0));
        let next_step = progress(&deployment("PRODUCTION_TRAFFIC_SHIFT", (2, 0, 2), 20.0));
        assert!(a.is_new_step(None));
        assert!(!more_tasks.is_new_step(Some(&a)));
        assert!(next_step.is_new_step(Some(&a)));
    }

    #[test]
    fn strategies_read_with_their_steps_and_bake_time() {
        let linear = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::Linear)
            .linear_configuration(
                LinearConfiguration::builder()
                    .step_percent(20.0)
                    .step_bake_time_in_minutes(2)
                    .build(),
            )
            .bake_time_in_minutes(5)
            .build();
        assert_eq!(
            strategy_text(Some(&linear)),
            "linear, 20% per step, 2 min between steps, bake time 5 min"
        );
        let canary = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::Canary)
            .canary_configuration(
                CanaryConfiguration::builder()
                    .canary_percent(12.5)
                    .canary_bake_time_in_minutes(10)
                    .build(),
            )
            .build();
        assert_eq!(
            strategy_text(Some(&canary)),
            "canary, 12.5% first for 10 min, then the rest"
        );
    }

    fn service(
        controller: Option<DeploymentControllerType>,
        strategy: Option<DeploymentStrategy>,
    ) -> Service {
        let mut b = Service::builder().deployment_configuration(
            DeploymentConfiguration::builder()
                .set_strategy(strategy)
                .build(),
        );
        if let Some(c) = controller {
            b = b.deployment_controller(DeploymentController::builder().r#type(c).build().unwrap());
        }
        b.build()
    }

    #[test]
    fn only_ecs_controlled_blue_green_linear_or_canary_services_are_accepted() {
        for s in [
            DeploymentStrategy::BlueGreen,
            DeploymentStrategy::Linear,
            DeploymentStrategy::Canary,
        ] {
            assert_eq!(check_service(&service(None, Some(s.clone()))), Ok(()));
            assert_eq!(
                check_service(&service(Some(DeploymentControllerType::Ecs), Some(s))),
                Ok(())
            );
        }
        let rolling = check_service(&service(None, Some(DeploymentStrategy::Rolling))).unwrap_err();
        assert!(rolling.contains("strategy is ROLLING") && rolling.contains("deployment: rolling"));
        let unset = check_service(&service(None, None)).unwrap_err();
        assert!(unset.contains("ROLLING (not set)"));
        let cd = check_service(&service(
            Some(DeploymentControllerType::CodeDeploy),
            Some(DeploymentStrategy::BlueGreen),
        ))
        .unwrap_err();
        assert!(cd.contains("CODE_DEPLOY") && cd.contains("deployment: codedeploy"));
    }

    fn brief(arn: &str, revision: &str, created: i64) -> ServiceDeploymentBrief {
        ServiceDeploymentBrief::builder()
            .service_deployment_arn(arn)
            .target_service_revision_arn(revision)
            .created_at(DateTime::from_secs(created))
            .build()
    }

    #[test]
    fn ours_is_the_newest_deployment_targeting_our_task_definition() {
        let briefs = [
            brief("sd/old", "rev/old", 100),
            brief("sd/ours-earlier", "rev/a", 200),
            brief("sd/ours", "rev/b", 300),
            brief("sd/other", "rev/c", 400),
        ];
        let revisions: HashMap<String, String> = [
            ("rev/old", "td:1"),
            ("rev/a", "td:2"),
            ("rev/b", "td:2"),
            ("rev/c", "td:3"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(
            pick_ours(&briefs, &revisions, "td:2", None, Some("sd/old")),
            Some("sd/ours")
        );
        assert_eq!(pick_ours(&briefs, &revisions, "td:9", None, None), None);
        // The deployment current before our update is never ours, even on a forced redeploy.
        assert_eq!(
            pick_ours(&briefs, &revisions, "td:1", None, Some("sd/old")),
            None
        );
    }

    #[test]
    fn the_arn_update_service_named_wins_when_it_is_listed() {
        let briefs = [brief("sd/a", "rev/a", 100), brief("sd/b", "rev/b", 200)];
        let revisions = HashMap::new();
        assert_eq!(
            pick_ours(&briefs, &revisions, "td:2", Some("sd/a"), None),
            Some("sd/a")
        );
        assert_eq!(
            pick_ours(&briefs, &revisions, "td:2", Some("sd/missing"), None),
            None
        );
    }

    fn service_on(current: Option<&str>, primary_td: &str) -> Service {
        use aws_sdk_ecs::types::Deployment;
        Service::builder()
            .set_current_service_deployment(current.map(str::to_string))
            .deployments(
                Deployment::builder()
                    .id("ecs-svc/1")
                    .status("PRIMARY")
                    .task_definition(primary_td)
                    .created_at(DateTime::from_secs(1_700_000_000))
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_newer_deployment_of_another_revision_supersedes_ours_but_ecs_rolling_back_to_blue_does_not()
     {
        let td = |r: u32| format!("arn:aws:ecs:us-east-1:1:task-definition/web1:{r}");
        let (green, blue) = (td(8), td(7));
        let check = |s: &Service| superseded_by(s, "sd/ours", &green, Some(&blue));
        assert_eq!(check(&service_on(Some("sd/ours"), &green)), None);
        assert_eq!(check(&service_on(None, &green)), None);
        // ECS's own rollback of ours puts blue back: not another run's deploy.
        assert_eq!(check(&service_on(Some("sd/ours"), &blue)), None);
        assert_eq!(check(&service_on(Some("sd/rollback"), &blue)), None);
        let by = check(&service_on(Some("sd/other"), &td(9))).unwrap();
        assert!(
            by.starts_with("sd/other (web1:9, started 2023-11-14T22:13:20Z"),
            "{by}"
        );
        // Another run's forced redeploy of our own revision: only the current ARN tells.
        let by = check(&service_on(Some("sd/other"), &green)).unwrap();
        assert!(by.starts_with("sd/other (web1:8"), "{by}");
        let by = check(&service_on(None, &td(9))).unwrap();
        assert!(by.starts_with("deployment ecs-svc/1 (web1:9"), "{by}");
    }

    #[test]
    fn the_stage_times_the_bake_time_and_the_traffic_steps() {
        let t0 = Instant::now();
        let min = |m: u64| Duration::from_secs(m * 60);
        let cfg = |strategy: DeploymentStrategy| {
            DeploymentConfiguration::builder()
                .strategy(strategy)
                .bake_time_in_minutes(5)
                .linear_configuration(
                    LinearConfiguration::builder()
                        .step_percent(25.0)
                        .step_bake_time_in_minutes(2)
                        .build(),
                )
                .canary_configuration(
                    CanaryConfiguration::builder()
                        .canary_percent(10.0)
                        .canary_bake_time_in_minutes(3)
                        .build(),
                )
                .build()
        };
        let at = |stage: &str, weight: f64| Progress {
            status: "IN_PROGRESS".into(),
            stage: Some(stage.into()),
            production_weight: Some(weight),
            ..Progress::default()
        };
        let bg = cfg(DeploymentStrategy::BlueGreen);
        let later = t0 + min(1);
        assert_eq!(
            stage(&at("BAKE_TIME", 100.0), Some(&bg), t0, t0),
            Stage::Baking { until: t0 + min(5) }
        );
        assert_eq!(
            stage(
                &at("PRODUCTION_TRAFFIC_SHIFT", 25.0),
                Some(&cfg(DeploymentStrategy::Linear)),
                t0,
                later
            ),
            Stage::Shifting {
                next: Some(later + min(2))
            }
        );
        assert_eq!(
            stage(
                &at("PRODUCTION_TRAFFIC_SHIFT", 10.0),
                Some(&cfg(DeploymentStrategy::Canary)),
                t0,
                later
            ),
            Stage::Shifting {
                next: Some(later + min(3))
            }
        );
        assert_eq!(
            stage(&at("PRODUCTION_TRAFFIC_SHIFT", 0.0), Some(&bg), t0, later),
            Stage::Shifting { next: Some(t0) }
        );
        assert_eq!(
            stage(&at("PRODUCTION_TRAFFIC_SHIFT", 100.0), Some(&bg), t0, later),
            Stage::Shifted
        );
        assert_eq!(
            stage(&at("CLEAN_UP", 100.0), Some(&bg), t0, t0),
            Stage::CleaningUp { since: t0 }
        );
        assert_eq!(
            stage(&at("SCALE_UP", 0.0), Some(&bg), t0, t0),
            Stage::Starting
        );
        let rolling_back = Progress {
            status: "ROLLBACK_IN_PROGRESS".into(),
            ..at("SCALE_UP", 0.0)
        };
        assert_eq!(stage(&rolling_back, Some(&bg), t0, t0), Stage::Ending);
    }

    #[test]
    fn the_interval_is_far_while_baking_and_near_at_its_end_and_in_the_clean_up() {
        let p = Policy::default();
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(interval(&p, Stage::Starting, now), p.starting);
        assert_eq!(
            interval(
                &p,
                Stage::Baking {
                    until: now + s(200)
                },
                now
            ),
            p.pace.far
        );
        assert_eq!(
            interval(&p, Stage::Baking { until: now + s(1) }, now),
            p.pace.near
        );
        assert_eq!(
            interval(&p, Stage::CleaningUp { since: now - s(5) }, now),
            p.pace.near
        );
        assert_eq!(
            interval(&p, Stage::CleaningUp { since: now - s(90) }, now),
            p.soon
        );
        assert_eq!(interval(&p, Stage::Ending, now), p.soon);
    }
}

#[cfg(test)]
mod pause_tests {
    use super::*;
    use aws_sdk_ecs::types::{DeploymentLifecycleHook, DeploymentLifecycleHookDetail};
    use aws_smithy_types::DateTime;

    fn hook(
        target: DeploymentLifecycleHookTargetType,
        status: DeploymentLifecycleHookStatus,
    ) -> DeploymentLifecycleHookDetail {
        DeploymentLifecycleHookDetail::builder()
            .hook_id("h-1")
            .target_type(target)
            .status(status)
            .expires_at(DateTime::from_secs(1_796_803_200))
            .timeout_action(DeploymentLifecycleHookAction::Rollback)
            .build()
    }

    fn deployment(details: Vec<DeploymentLifecycleHookDetail>) -> ServiceDeployment {
        ServiceDeployment::builder()
            .lifecycle_stage(ServiceDeploymentLifecycleStage::PostTestTrafficShift)
            .set_lifecycle_hook_details(Some(details))
            .build()
    }

    #[test]
    fn a_pause_hook_awaiting_action_is_read_with_its_id_expiry_and_timeout_action() {
        let d = deployment(vec![
            hook(
                DeploymentLifecycleHookTargetType::AwsLambda,
                DeploymentLifecycleHookStatus::InProgress,
            ),
            hook(
                DeploymentLifecycleHookTargetType::Pause,
                DeploymentLifecycleHookStatus::AwaitingAction,
            ),
        ]);
        let p = paused(&d).expect("paused");
        assert_eq!(p.hook_id, "h-1");
        assert!(p.at_test_traffic());
        assert_eq!(
            p.timeout_action,
            Some(DeploymentLifecycleHookAction::Rollback)
        );
        assert_eq!(
            p.text(),
            "paused at POST_TEST_TRAFFIC_SHIFT awaiting action (hook h-1; expires 2026-12-09T08:00:00Z, then ECS will ROLLBACK)"
        );
    }

    #[test]
    fn a_hook_that_is_not_a_pause_or_not_awaiting_action_is_no_pause() {
        for (t, s) in [
            (
                DeploymentLifecycleHookTargetType::AwsLambda,
                DeploymentLifecycleHookStatus::AwaitingAction,
            ),
            (
                DeploymentLifecycleHookTargetType::Pause,
                DeploymentLifecycleHookStatus::Succeeded,
            ),
            (
                DeploymentLifecycleHookTargetType::Pause,
                DeploymentLifecycleHookStatus::TimedOut,
            ),
        ] {
            assert_eq!(
                paused(&deployment(vec![hook(t.clone(), s.clone())])),
                None,
                "{t:?} {s:?}"
            );
        }
        assert_eq!(paused(&ServiceDeployment::builder().build()), None);
    }

    fn config(stages: &[DeploymentLifecycleHookStage]) -> DeploymentConfiguration {
        DeploymentConfiguration::builder()
            .lifecycle_hooks(
                DeploymentLifecycleHook::builder()
                    .target_type(DeploymentLifecycleHookTargetType::Pause)
                    .set_lifecycle_stages(Some(stages.to_vec()))
                    .build(),
            )
            .lifecycle_hooks(
                DeploymentLifecycleHook::builder()
                    .target_type(DeploymentLifecycleHookTargetType::AwsLambda)
                    .hook_target_arn("arn:aws:lambda:us-east-1:1:function:f")
                    .lifecycle_stages(DeploymentLifecycleHookStage::PostTestTrafficShift)
                    .build(),
            )
            .build()
    }

    #[test]
    fn verify_inputs_need_a_pause_hook_where_green_takes_traffic() {
        let none = DeploymentConfiguration::builder().build();
        let e = check_pause_hook(Some(&none), true).unwrap_err();
        assert!(e.contains("no PAUSE lifecycle hook"), "{e}");
        let early = config(&[DeploymentLifecycleHookStage::PreScaleUp]);
        let e = check_pause_hook(Some(&early), true).unwrap_err();
        assert!(
            e.contains("(PRE_SCALE_UP)") && e.contains("old version"),
            "{e}"
        );
        let good = config(&[DeploymentLifecycleHookStage::PostTestTrafficShift]);
        assert_eq!(check_pause_hook(Some(&good), true), Ok(None));
        assert_eq!(
            pause_stages(Some(&good)),
            vec![DeploymentLifecycleHookStage::PostTestTrafficShift],
            "the Lambda hook is not a pause"
        );
    }

    #[test]
    fn the_follow_looks_often_at_and_just_before_a_pause_stage_only() {
        let post_test = [DeploymentLifecycleHookStage::PostTestTrafficShift];
        for (stage, near) in [
            ("SCALE_UP", false),
            ("POST_SCALE_UP", true),
            ("TEST_TRAFFIC_SHIFT", true),
            ("POST_TEST_TRAFFIC_SHIFT", true),
            ("PRE_PRODUCTION_TRAFFIC_SHIFT", false),
            ("BAKE_TIME", false),
        ] {
            assert_eq!(near_pause(Some(stage), &post_test), near, "{stage}");
        }
        assert!(!near_pause(None, &post_test));
        assert!(!near_pause(Some("A_NEW_STAGE"), &post_test));
        assert!(!near_pause(Some("TEST_TRAFFIC_SHIFT"), &[]));
        let p = Policy::default();
        let now = Instant::now();
        assert_eq!(interval(&p, Stage::NearPause, now), Duration::from_secs(1));
        assert_eq!(interval(&p, Stage::Verifying, now), Duration::ZERO);
        assert_eq!(
            interval(&p, Stage::AwaitingAction, now),
            Duration::from_secs(20),
            "three looks a minute while someone else is to answer"
        );
    }

    #[test]
    fn a_pause_hook_without_verify_inputs_is_allowed_and_said() {
        let good = config(&[DeploymentLifecycleHookStage::PostTestTrafficShift]);
        let note = check_pause_hook(Some(&good), false)
            .unwrap()
            .expect("a note");
        assert!(note.contains("will not continue it"), "{note}");
        assert_eq!(check_pause_hook(None, false), Ok(None));
    }
}
