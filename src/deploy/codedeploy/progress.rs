//! The pure side of a CodeDeploy deployment: default names, the console link, a snapshot of a
//! deployment's lifecycle and traffic, the lines that describe what changed between two
//! snapshots, what a finished deployment means for the run (succeeded, failed, rolled back),
//! and how often to look at it: the stage it is in and when the deployment config (traffic
//! steps) and the group (ready wait, termination wait) say the next change is due.
//! The I/O around it lives in `codedeploy.rs`.

use crate::deploy::timing::Cadence;
use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_codedeploy::types::{
    BlueGreenDeploymentConfiguration, DeploymentInfo, DeploymentReadyAction, DeploymentStatus,
    EcsTarget, InstanceAction, LifecycleEventStatus, TrafficRoutingConfig, TrafficRoutingType,
};
use tokio::time::Instant;

use super::poll::{Expect, Pace, toward};

/// The lifecycle events of an ECS blue/green deployment, in the order CodeDeploy runs them.
pub const LIFECYCLE_EVENTS: [&str; 8] = [
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
];

/// The statuses of a deployment that has not finished: ListDeployments' filter for "someone
/// else is deploying this group" and the wait loop's "keep polling".
pub const UNFINISHED_STATUSES: [DeploymentStatus; 5] = [
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Ready,
    DeploymentStatus::Baking,
];

/// The last part of an ARN (`arn:aws:ecs:…:cluster/prod` → `prod`,
/// `arn:aws:ecs:…:service/prod/web1` → `web1`); a plain name is returned as is.
pub(crate) fn short_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
    } else {
        name_or_arn
    }
}

/// The application and deployment group AWS CLI's `aws ecs deploy` assumes when none is given:
/// `AppECS-<cluster>-<service>` and `DgpECS-<cluster>-<service>` (the names the ECS console
/// creates for a blue/green service).
pub(crate) fn default_names(cluster: &str, service: &str) -> (String, String) {
    let (c, s) = (short_name(cluster), short_name(service));
    (format!("AppECS-{c}-{s}"), format!("DgpECS-{c}-{s}"))
}

/// The longest a CodeDeploy deployment is watched, as `aws ecs deploy` and
/// amazon-ecs-deploy-task-definition cap it: 6 hours.
pub const MAX_WAIT: Duration = Duration::from_secs(6 * 60 * 60);

/// How long our deployment may run before it is stopped: `wait-for-minutes` plus the time the
/// deployment group itself waits (before rerouting traffic, and before terminating the original
/// task set), at most [`MAX_WAIT`]. Without the group's waits a group that keeps the original
/// tasks for an hour would be rolled back after a healthy traffic shift.
pub(crate) fn total_wait(
    wait_for: Duration,
    ready_wait_minutes: i32,
    termination_wait_minutes: i32,
) -> Duration {
    let group = u64::try_from(ready_wait_minutes.max(0)).unwrap_or(0)
        + u64::try_from(termination_wait_minutes.max(0)).unwrap_or(0);
    (wait_for + Duration::from_secs(group * 60)).min(MAX_WAIT)
}

/// The CodeDeploy console page of a deployment.
pub(crate) fn console_url(region: &str, deployment_id: &str) -> String {
    format!(
        "{}/codesuite/codedeploy/deployments/{deployment_id}?region={region}",
        crate::aws::console_base(region)
    )
}

/// One task set of the deployment target: which side it is and how much traffic it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSet {
    /// `blue` (the original tasks) or `green` (the new ones); the task set id when unlabelled.
    pub label: String,
    pub traffic_weight: f64,
    pub running: i64,
    pub desired: i64,
}

/// What a deployment looked like at one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The deployment's status (Created, InProgress, Ready, Succeeded, Failed, Stopped…).
    pub status: DeploymentStatus,
    /// (lifecycle event, status) as CodeDeploy lists them.
    pub events: Vec<(String, LifecycleEventStatus)>,
    pub task_sets: Vec<TaskSet>,
}

impl Default for Snapshot {
    /// Nothing seen yet: an unknown status, no events, no task sets.
    fn default() -> Snapshot {
        Snapshot {
            status: DeploymentStatus::from("Unknown"),
            events: Vec::new(),
            task_sets: Vec::new(),
        }
    }
}

impl Snapshot {
    /// Reads a snapshot out of GetDeployment's answer and, once there is one, the ECS target.
    pub(crate) fn from_sdk(deployment: &DeploymentInfo, target: Option<&EcsTarget>) -> Snapshot {
        let status = deployment
            .status()
            .cloned()
            .unwrap_or_else(|| DeploymentStatus::from("Unknown"));
        let Some(target) = target else {
            return Snapshot {
                status,
                ..Snapshot::default()
            };
        };
        let events = target
            .lifecycle_events()
            .iter()
            .map(|e| {
                (
                    e.lifecycle_event_name().unwrap_or("?").to_string(),
                    e.status().cloned().unwrap_or(LifecycleEventStatus::Pending),
                )
            })
            .collect();
        let task_sets = target
            .task_sets_info()
            .iter()
            .map(|t| TaskSet {
                label: t
                    .task_set_label()
                    .map(|l| l.as_str().to_ascii_lowercase())
                    .or_else(|| t.identifer().map(str::to_string))
                    .unwrap_or_else(|| "task set".into()),
                traffic_weight: t.traffic_weight(),
                running: t.running_count(),
                desired: t.desired_count(),
            })
            .collect();
        Snapshot {
            status,
            events,
            task_sets,
        }
    }

    /// The first lifecycle event that failed, if any.
    pub(crate) fn failed_event(&self) -> Option<&str> {
        self.events
            .iter()
            .find(|(_, s)| *s == LifecycleEventStatus::Failed)
            .map(|(e, _)| e.as_str())
    }

    /// The traffic split as one line: `traffic: blue 90% (2/2 running), green 10% (2/2 running)`.
    pub(crate) fn traffic_line(&self) -> Option<String> {
        if self.task_sets.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .task_sets
            .iter()
            .map(|t| {
                format!(
                    "{} {}% ({}/{} running)",
                    t.label,
                    percent(t.traffic_weight),
                    t.running,
                    t.desired
                )
            })
            .collect();
        Some(format!("traffic: {}", parts.join(", ")))
    }

    /// True when the original (blue) task set takes all the traffic again.
    pub(crate) fn traffic_on_blue(&self) -> bool {
        self.task_sets
            .iter()
            .any(|t| t.label == "blue" && t.traffic_weight >= 99.95)
            && self
                .task_sets
                .iter()
                .filter(|t| t.label != "blue")
                .all(|t| t.traffic_weight < 0.05)
    }
}

/// A traffic weight (0-100, possibly fractional) as people read it.
fn percent(weight: f64) -> String {
    if (weight - weight.round()).abs() < 0.05 {
        format!("{}", weight.round() as i64)
    } else {
        format!("{weight:.1}")
    }
}

/// The human-readable lines for what changed from `before` to `now`: the deployment status,
/// each lifecycle event whose status moved, and the traffic split. Nothing when nothing changed.
pub(crate) fn changes(before: Option<&Snapshot>, now: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let status_line = (before.map(|b| b.status.as_str()) != Some(now.status.as_str()))
        .then(|| format!("deployment {}", describe_status(&now.status)));
    // A finished deployment's status comes after the last events and traffic it reports, so
    // the log reads in the order things happened.
    let finished = matches!(
        now.status,
        DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped
    );
    if !finished {
        out.extend(status_line.clone());
    }
    // Events in CodeDeploy's lifecycle order, so a poll that saw several move prints them in
    // the order they ran.
    let mut events: Vec<&(String, LifecycleEventStatus)> = now.events.iter().collect();
    events.sort_by_key(|(name, _)| {
        LIFECYCLE_EVENTS
            .iter()
            .position(|e| e == name)
            .unwrap_or(LIFECYCLE_EVENTS.len())
    });
    for (name, status) in events {
        let was = before.and_then(|b| b.events.iter().find(|(n, _)| n == name).map(|(_, s)| s));
        let unchanged =
            was == Some(status) || (was.is_none() && *status == LifecycleEventStatus::Pending);
        if !unchanged {
            out.push(format!("{name}: {}", status.as_str()));
        }
    }
    let line = now.traffic_line();
    if line.is_some() && line != before.and_then(Snapshot::traffic_line) {
        out.extend(line);
    }
    if finished {
        out.extend(status_line);
    }
    out
}

/// A deployment status with what it means for a person watching.
pub(crate) fn describe_status(status: &DeploymentStatus) -> String {
    match status {
        DeploymentStatus::Created => "created, waiting to start".into(),
        DeploymentStatus::Queued => "queued behind another deployment of the group".into(),
        DeploymentStatus::InProgress => "in progress".into(),
        DeploymentStatus::Ready => "ready: green tasks are up, waiting for traffic to be rerouted (ContinueDeployment or the group's wait time)".into(),
        DeploymentStatus::Baking => "baking: traffic is on green, the original tasks are kept until the wait time ends".into(),
        DeploymentStatus::Succeeded => "succeeded".into(),
        DeploymentStatus::Failed => "failed".into(),
        DeploymentStatus::Stopped => "stopped".into(),
        other => other.as_str().to_string(),
    }
}

/// What a deployment's status means for the wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Still running: keep polling.
    Running,
    Succeeded,
    /// Failed or Stopped. `rollback_deployment` is the deployment CodeDeploy started to move
    /// traffic back to the original task set, when it did.
    Ended {
        status: DeploymentStatus,
        reason: String,
        rollback_deployment: Option<String>,
        rollback_message: Option<String>,
    },
}

/// Classifies GetDeployment's answer: running, succeeded, or ended (with CodeDeploy's error
/// message and rollback info).
pub fn outcome(deployment: &DeploymentInfo) -> Verdict {
    let Some(status) = deployment.status() else {
        return Verdict::Running;
    };
    match status {
        DeploymentStatus::Succeeded => Verdict::Succeeded,
        DeploymentStatus::Failed | DeploymentStatus::Stopped => {
            let reason = deployment
                .error_information()
                .and_then(|e| {
                    let code = e.code().map(|c| c.as_str().to_string());
                    match (code, e.message()) {
                        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                        (None, Some(m)) => Some(m.to_string()),
                        (Some(c), None) => Some(c),
                        (None, None) => None,
                    }
                })
                .unwrap_or_else(|| {
                    format!("CodeDeploy reports the deployment {}", status.as_str())
                });
            let rollback = deployment.rollback_info();
            Verdict::Ended {
                status: status.clone(),
                reason,
                rollback_deployment: rollback
                    .and_then(|r| r.rollback_deployment_id())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                rollback_message: rollback
                    .and_then(|r| r.rollback_message())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            }
        }
        _ => Verdict::Running,
    }
}

/// How often a CodeDeploy deployment is looked at, by [`Stage`]. Each look is GetDeployment
/// and, when its lifecycle or traffic may have moved, GetDeploymentTarget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Toward an expected change (a traffic step, the end of the termination wait).
    pub pace: Pace,
    /// Before traffic moves (green starting, hooks): nothing says when it moves on.
    pub starting: Duration,
    /// When the end is near but not timed: all traffic on green, the last hooks, a late step.
    pub soon: Duration,
    /// Waiting for another deployment of the group to end before ours is created.
    pub queue: Duration,
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
            starting: Duration::from_secs(6),
            soon: Duration::from_secs(2),
            queue: Duration::from_secs(5),
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
            queue: interval,
        }
    }
}

/// How CodeDeploy moves production traffic to green (the deployment config's traffic routing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Routing {
    AllAtOnce,
    /// A first share, the rest after `interval`.
    Canary {
        interval: Duration,
    },
    /// `percent` more every `interval`.
    Linear {
        percent: f64,
        interval: Duration,
    },
}

/// The routing of a predefined ECS config (`CodeDeployDefault.ECSCanary10Percent5Minutes`,
/// `…ECSLinear10PercentEvery3Minutes`, `…ECSAllAtOnce`); `None` for any other name.
pub(crate) fn routing_of_name(config: &str) -> Option<Routing> {
    let rest = config.strip_prefix("CodeDeployDefault.ECS")?;
    if rest == "AllAtOnce" {
        return Some(Routing::AllAtOnce);
    }
    let minutes = |s: &str| -> Option<Duration> {
        let n: u64 = s.strip_suffix("Minutes")?.parse().ok()?;
        Some(Duration::from_secs(n * 60))
    };
    if let Some(r) = rest.strip_prefix("Canary") {
        let (_, after) = r.split_once("Percent")?;
        return Some(Routing::Canary {
            interval: minutes(after)?,
        });
    }
    let r = rest.strip_prefix("Linear")?;
    let (percent, after) = r.split_once("PercentEvery")?;
    Some(Routing::Linear {
        percent: percent.parse().ok()?,
        interval: minutes(after)?,
    })
}

/// The routing of a config as GetDeploymentConfig describes it.
pub(crate) fn routing_of_sdk(config: &TrafficRoutingConfig) -> Option<Routing> {
    let minutes = |m: i32| Duration::from_secs(u64::try_from(m.max(0)).unwrap_or(0) * 60);
    match config.r#type()? {
        TrafficRoutingType::AllAtOnce => Some(Routing::AllAtOnce),
        TrafficRoutingType::TimeBasedCanary => Some(Routing::Canary {
            interval: minutes(config.time_based_canary()?.canary_interval()),
        }),
        TrafficRoutingType::TimeBasedLinear => {
            let l = config.time_based_linear()?;
            Some(Routing::Linear {
                percent: f64::from(l.linear_percentage()),
                interval: minutes(l.linear_interval()),
            })
        }
        _ => None,
    }
}

/// The deployment group's own waits, as far as the polling interval cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupWaits {
    /// A Ready deployment is stopped after this long unless someone reroutes traffic
    /// (deployment ready option STOP_DEPLOYMENT); `None` when it goes on by itself.
    pub stop_if_not_rerouted: Option<Duration>,
    /// How long the original task set is kept after traffic moved (TERMINATE action).
    pub termination: Duration,
}

/// The group's waits from the deployment's copy of its blue/green configuration, or, when
/// GetDeployment gave none, from the group as the preflight read it (`minutes`: ready wait,
/// termination wait).
pub(crate) fn group_waits(
    config: Option<&BlueGreenDeploymentConfiguration>,
    minutes: (i32, i32),
) -> GroupWaits {
    let of = |m: i32| Duration::from_secs(u64::try_from(m.max(0)).unwrap_or(0) * 60);
    let Some(config) = config else {
        return GroupWaits {
            stop_if_not_rerouted: (minutes.0 > 0).then(|| of(minutes.0)),
            termination: of(minutes.1),
        };
    };
    let ready = config.deployment_ready_option();
    let terminate = config.terminate_blue_instances_on_deployment_success();
    GroupWaits {
        stop_if_not_rerouted: ready
            .filter(|r| r.action_on_timeout() == Some(&DeploymentReadyAction::StopDeployment))
            .map(|r| of(r.wait_time_in_minutes())),
        termination: terminate
            .filter(|t| t.action() != Some(&InstanceAction::KeepAlive))
            .map(|t| of(t.termination_wait_time_in_minutes()))
            .unwrap_or_default(),
    }
}

/// When each lifecycle event started and ended, on the runner's clock.
pub type EventTimes = HashMap<String, (Option<Instant>, Option<Instant>)>;

/// Where a deployment is, as far as the polling interval cares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage {
    /// Created, queued, green starting, test traffic hooks: nothing says when it moves on.
    Starting,
    /// Ready: green is up and traffic waits to be rerouted; the group stops it `until` then
    /// (ready option STOP_DEPLOYMENT), if it does.
    Ready { until: Option<Instant> },
    /// Production traffic moving; the next step is due `next` (unknown routing: `None`).
    Shifting { next: Option<Instant> },
    /// All traffic on green; the last hooks run.
    Hooks,
    /// The original task set is kept until `until`, then deleted, and the deployment ends.
    Terminating { until: Instant },
}

fn green_weight(snapshot: &Snapshot) -> f64 {
    snapshot
        .task_sets
        .iter()
        .filter(|t| t.label == "green")
        .map(|t| t.traffic_weight)
        .fold(0.0, f64::max)
}

fn event_status<'a>(snapshot: &'a Snapshot, name: &str) -> Option<&'a LifecycleEventStatus> {
    snapshot
        .events
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
}

/// The stage of a deployment from its last snapshot, when its events started and ended
/// (`times`), since when it has its current status, its routing and its group's waits. Pure.
pub(crate) fn stage(
    snapshot: &Snapshot,
    times: &EventTimes,
    status_since: Instant,
    routing: Option<Routing>,
    waits: GroupWaits,
) -> Stage {
    let done = |s: Option<&LifecycleEventStatus>| {
        matches!(
            s,
            Some(LifecycleEventStatus::Succeeded | LifecycleEventStatus::Skipped)
        )
    };
    let after_traffic = |since: Instant| {
        let end = times
            .get("AfterAllowTraffic")
            .and_then(|(_, end)| *end)
            .unwrap_or(since);
        Stage::Terminating {
            until: end + waits.termination,
        }
    };
    match snapshot.status {
        DeploymentStatus::Ready => Stage::Ready {
            until: waits.stop_if_not_rerouted.map(|w| status_since + w),
        },
        DeploymentStatus::Baking => after_traffic(status_since),
        DeploymentStatus::InProgress => {
            if done(event_status(snapshot, "AfterAllowTraffic")) {
                return after_traffic(status_since);
            }
            let allow = event_status(snapshot, "AllowTraffic");
            if done(allow) {
                return Stage::Hooks;
            }
            if allow != Some(&LifecycleEventStatus::InProgress) {
                return Stage::Starting;
            }
            let green = green_weight(snapshot);
            if green >= 99.95 {
                return Stage::Hooks;
            }
            let start = times.get("AllowTraffic").and_then(|(start, _)| *start);
            let next = match (routing, start) {
                (Some(Routing::AllAtOnce), Some(s)) => Some(s),
                (Some(Routing::Canary { interval }), Some(s)) => Some(s + interval),
                (Some(Routing::Linear { percent, interval }), Some(s)) if percent > 0.0 => {
                    // The first step is taken at the start; each later one `interval` apart.
                    let steps = ((green / percent).round() as u32).max(1);
                    Some(s + interval * steps)
                }
                _ => None,
            };
            Stage::Shifting { next }
        }
        _ => Stage::Starting,
    }
}

/// The interval before the next look at a deployment in `stage`, seen at `now`. Pure.
pub(crate) fn interval(policy: &Policy, stage: Stage, now: Instant) -> Duration {
    match stage {
        Stage::Starting | Stage::Ready { until: None } => policy.starting,
        Stage::Ready { until: Some(u) } => {
            toward(&policy.pace, Expect::at(u, now), policy.starting)
        }
        Stage::Shifting { next: Some(n) } => toward(&policy.pace, Expect::at(n, now), policy.soon),
        Stage::Shifting { next: None } | Stage::Hooks => policy.soon,
        Stage::Terminating { until } => toward(&policy.pace, Expect::at(until, now), policy.soon),
    }
}

/// Whether a look in `stage` at `now` reads the ECS target too (lifecycle events and
/// traffic): not while the original task set is kept (nothing in the target moves until the
/// deployment ends, and that is a change of status), nor between traffic steps still far off.
/// A change of status is always read in full.
pub(crate) fn reads_target(policy: &Policy, stage: Stage, now: Instant) -> bool {
    let pace = &policy.pace;
    match stage {
        Stage::Terminating { .. } => false,
        Stage::Shifting { next: Some(n) } => match Expect::at(n, now) {
            Expect::In(d) => d <= pace.lead + pace.near,
            Expect::Overdue(d) => d <= pace.linger,
            Expect::Unknown => true,
        },
        _ => true,
    }
}

impl Snapshot {
    /// Whether production traffic is on the replacement (green) task set of a deployment CodeDeploy
    /// can still stop: a canary or linear step has moved a share of it (AllowTraffic in progress,
    /// green's weight above 0), or all of it has moved and the original task set is kept for the
    /// group's termination wait (AllowTraffic done, the deployment still InProgress, or Baking).
    /// This is the moment the verification gate runs: the new version serves real requests and
    /// StopDeployment with auto rollback still reroutes them to the original task set, which
    /// CodeDeploy deletes only when the deployment ends. Pure.
    pub fn serving_green(&self) -> bool {
        let running = matches!(
            self.status,
            DeploymentStatus::InProgress | DeploymentStatus::Baking
        );
        let allowed = matches!(
            event_status(self, "AllowTraffic"),
            Some(LifecycleEventStatus::Succeeded)
        );
        running
            && (self.status == DeploymentStatus::Baking || allowed || green_weight(self) >= 0.05)
    }
}

/// How long a deployment keeps production traffic on green while it can still be stopped: from
/// the first traffic step to the end of the group's termination wait. All at once: the
/// termination wait alone; canary: its interval too; linear: every interval after the first
/// step. Zero: CodeDeploy ends the deployment (and deletes the original task set) the moment
/// traffic moves, and no verification can stop it. Pure.
pub fn bake_window(routing: Routing, termination_wait: Duration) -> Duration {
    let shifting = match routing {
        Routing::AllAtOnce => Duration::ZERO,
        Routing::Canary { interval } => interval,
        Routing::Linear { percent, interval } if percent > 0.0 => {
            let steps = (100.0 / percent).ceil().max(1.0) as u32;
            interval * (steps - 1)
        }
        Routing::Linear { .. } => Duration::ZERO,
    };
    shifting + termination_wait
}

/// The preflight's reading of a deployment that verifies (`verify-*`) on a group: refused
/// (`Err`, saying which setting to change) when `config` gives the gate no window (all at
/// once with no termination wait); a note (`Ok(Some)`) when the window is shorter than the
/// gate's own time (`gate`: its probes, one a second), so the deployment may end while the gate
/// still looks; `Ok(None)` otherwise, or when the routing is unknown. Pure.
pub fn check_bake_window(
    config: &str,
    routing: Option<Routing>,
    group: &str,
    termination_wait_minutes: i32,
    gate: Duration,
) -> Result<Option<String>, String> {
    let Some(routing) = routing else {
        return Ok(Some(format!(
            "the traffic steps of deployment config {config} could not be read, so whether the verification runs before CodeDeploy ends the deployment is not checked"
        )));
    };
    let termination =
        Duration::from_secs(u64::try_from(termination_wait_minutes.max(0)).unwrap_or(0) * 60);
    let window = bake_window(routing, termination);
    let minutes = gate.as_secs().div_ceil(60).max(1);
    if window.is_zero() {
        return Err(format!(
            "deploys by CodeDeploy with {config}, which moves all production traffic at once, and deployment group {group} deletes the original task set as soon as it has (its original revision termination wait, blueGreenDeploymentConfiguration.terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes, is 0), so CodeDeploy ends the deployment the moment traffic moves and a failed verification could no longer roll it back; set that wait to at least {minutes} minute{} on the group, or deploy with a canary or linear codedeploy-deployment-config",
            if minutes == 1 { "" } else { "s" }
        ));
    }
    if window < gate {
        return Ok(Some(format!(
            "deployment group {group} with {config} keeps traffic on the new tasks for {} s before CodeDeploy ends the deployment, less than the verification's {} s: it may end before the verdict, and a failure then cannot roll it back; a longer termination wait on the group gives the gate room",
            window.as_secs(),
            gate.as_secs()
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codedeploy::types::{
        DeploymentStatus, EcsTaskSet, ErrorCode, ErrorInformation, LifecycleEvent,
        LifecycleEventStatus, RollbackInfo, TargetLabel,
    };

    fn snap(status: &str, events: &[(&str, &str)], traffic: &[(&str, f64)]) -> Snapshot {
        Snapshot {
            status: status.into(),
            events: events
                .iter()
                .map(|(e, s)| (e.to_string(), LifecycleEventStatus::from(*s)))
                .collect(),
            task_sets: traffic
                .iter()
                .map(|(l, w)| TaskSet {
                    label: l.to_string(),
                    traffic_weight: *w,
                    running: 2,
                    desired: 2,
                })
                .collect(),
        }
    }

    #[test]
    fn default_names_follow_the_aws_cli_and_strip_arns() {
        assert_eq!(
            default_names("prod", "web1"),
            ("AppECS-prod-web1".into(), "DgpECS-prod-web1".into())
        );
        assert_eq!(
            default_names(
                "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
                "arn:aws:ecs:us-east-1:123456789012:service/prod/web1"
            ),
            ("AppECS-prod-web1".into(), "DgpECS-prod-web1".into())
        );
    }

    #[test]
    fn the_wait_adds_the_groups_own_waits_and_stops_at_six_hours() {
        let m = |n: u64| Duration::from_secs(n * 60);
        assert_eq!(total_wait(m(30), 0, 0), m(30));
        assert_eq!(total_wait(m(30), 5, 60), m(95));
        assert_eq!(total_wait(m(30), -1, 0), m(30));
        assert_eq!(total_wait(m(30), 0, 2880), MAX_WAIT);
    }

    #[test]
    fn the_console_link_names_region_and_deployment() {
        assert_eq!(
            console_url("ap-northeast-2", "d-ABCDEF123"),
            "https://ap-northeast-2.console.aws.amazon.com/codesuite/codedeploy/deployments/d-ABCDEF123?region=ap-northeast-2"
        );
    }

    #[test]
    fn the_first_snapshot_prints_status_started_events_and_traffic() {
        let now = snap(
            "InProgress",
            &[
                ("BeforeInstall", "Succeeded"),
                ("Install", "InProgress"),
                ("AfterInstall", "Pending"),
            ],
            &[("blue", 100.0), ("green", 0.0)],
        );
        assert_eq!(
            changes(None, &now),
            vec![
                "deployment in progress",
                "BeforeInstall: Succeeded",
                "Install: InProgress",
                "traffic: blue 100% (2/2 running), green 0% (2/2 running)",
            ]
        );
    }

    #[test]
    fn only_what_moved_is_printed_in_lifecycle_order() {
        let before = snap(
            "InProgress",
            &[
                ("AllowTestTraffic", "InProgress"),
                ("AllowTraffic", "Pending"),
            ],
            &[("blue", 100.0), ("green", 0.0)],
        );
        let now = snap(
            "InProgress",
            &[
                ("AllowTraffic", "InProgress"),
                ("AllowTestTraffic", "Succeeded"),
            ],
            &[("blue", 90.0), ("green", 10.0)],
        );
        assert_eq!(
            changes(Some(&before), &now),
            vec![
                "AllowTestTraffic: Succeeded",
                "AllowTraffic: InProgress",
                "traffic: blue 90% (2/2 running), green 10% (2/2 running)",
            ]
        );
        assert!(changes(Some(&now), &now).is_empty());
    }

    #[test]
    fn a_finished_status_comes_after_the_last_events_and_traffic() {
        let before = snap(
            "InProgress",
            &[("AllowTraffic", "InProgress")],
            &[("blue", 90.0), ("green", 10.0)],
        );
        let now = snap(
            "Succeeded",
            &[("AllowTraffic", "Succeeded")],
            &[("blue", 0.0), ("green", 100.0)],
        );
        assert_eq!(
            changes(Some(&before), &now),
            vec![
                "AllowTraffic: Succeeded",
                "traffic: blue 0% (2/2 running), green 100% (2/2 running)",
                "deployment succeeded",
            ]
        );
    }

    #[test]
    fn fractional_weights_keep_one_decimal() {
        let now = snap("InProgress", &[], &[("blue", 66.7), ("green", 33.3)]);
        assert_eq!(
            now.traffic_line().unwrap(),
            "traffic: blue 66.7% (2/2 running), green 33.3% (2/2 running)"
        );
    }

    #[test]
    fn traffic_is_on_blue_only_when_green_has_none() {
        assert!(snap("Stopped", &[], &[("blue", 100.0), ("green", 0.0)]).traffic_on_blue());
        assert!(!snap("Stopped", &[], &[("blue", 90.0), ("green", 10.0)]).traffic_on_blue());
        assert!(!snap("Stopped", &[], &[]).traffic_on_blue());
    }

    #[test]
    fn a_snapshot_reads_events_labels_and_weights_from_the_sdk_types() {
        let d = DeploymentInfo::builder()
            .status(DeploymentStatus::InProgress)
            .build();
        let t = EcsTarget::builder()
            .lifecycle_events(
                LifecycleEvent::builder()
                    .lifecycle_event_name("AfterAllowTestTraffic")
                    .status(LifecycleEventStatus::Failed)
                    .build(),
            )
            .task_sets_info(
                EcsTaskSet::builder()
                    .task_set_label(TargetLabel::Green)
                    .traffic_weight(10.0)
                    .running_count(1)
                    .desired_count(2)
                    .build(),
            )
            .build();
        let s = Snapshot::from_sdk(&d, Some(&t));
        assert_eq!(s.status.as_str(), "InProgress");
        assert_eq!(s.failed_event(), Some("AfterAllowTestTraffic"));
        assert_eq!(
            s.traffic_line().unwrap(),
            "traffic: green 10% (1/2 running)"
        );
    }

    #[test]
    fn a_failed_deployment_carries_the_error_and_the_rollback() {
        let d = DeploymentInfo::builder()
            .status(DeploymentStatus::Failed)
            .error_information(
                ErrorInformation::builder()
                    .code(ErrorCode::HealthConstraints)
                    .message("The deployment failed because a hook failed")
                    .build(),
            )
            .rollback_info(
                RollbackInfo::builder()
                    .rollback_deployment_id("d-ROLLBACK1")
                    .rollback_message("Deployment rolled back")
                    .build(),
            )
            .build();
        assert_eq!(
            outcome(&d),
            Verdict::Ended {
                status: "Failed".into(),
                reason: "HEALTH_CONSTRAINTS: The deployment failed because a hook failed".into(),
                rollback_deployment: Some("d-ROLLBACK1".into()),
                rollback_message: Some("Deployment rolled back".into()),
            }
        );
    }

    #[test]
    fn unfinished_statuses_keep_the_wait_going() {
        for s in UNFINISHED_STATUSES {
            let d = DeploymentInfo::builder().status(s.clone()).build();
            assert_eq!(outcome(&d), Verdict::Running, "{}", s.as_str());
        }
        let d = DeploymentInfo::builder()
            .status(DeploymentStatus::Succeeded)
            .build();
        assert_eq!(outcome(&d), Verdict::Succeeded);
    }

    #[test]
    fn predefined_ecs_configs_say_how_traffic_moves() {
        let min = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(
            routing_of_name("CodeDeployDefault.ECSCanary10Percent5Minutes"),
            Some(Routing::Canary { interval: min(5) })
        );
        assert_eq!(
            routing_of_name("CodeDeployDefault.ECSLinear10PercentEvery3Minutes"),
            Some(Routing::Linear {
                percent: 10.0,
                interval: min(3)
            })
        );
        assert_eq!(
            routing_of_name("CodeDeployDefault.ECSAllAtOnce"),
            Some(Routing::AllAtOnce)
        );
        assert_eq!(routing_of_name("MyCanary"), None);
        assert_eq!(routing_of_name("CodeDeployDefault.OneAtATime"), None);
    }

    #[test]
    fn the_stage_times_the_next_traffic_step_and_the_end_of_the_termination_wait() {
        use aws_sdk_codedeploy::types::{BlueInstanceTerminationOption, DeploymentReadyOption};
        let t0 = Instant::now();
        let min = |m: u64| Duration::from_secs(m * 60);
        let waits = group_waits(
            Some(
                &BlueGreenDeploymentConfiguration::builder()
                    .deployment_ready_option(
                        DeploymentReadyOption::builder()
                            .action_on_timeout(DeploymentReadyAction::StopDeployment)
                            .wait_time_in_minutes(10)
                            .build(),
                    )
                    .terminate_blue_instances_on_deployment_success(
                        BlueInstanceTerminationOption::builder()
                            .action(InstanceAction::Terminate)
                            .termination_wait_time_in_minutes(5)
                            .build(),
                    )
                    .build(),
            ),
            (0, 0),
        );
        assert_eq!(
            waits,
            GroupWaits {
                stop_if_not_rerouted: Some(min(10)),
                termination: min(5)
            }
        );
        assert_eq!(
            group_waits(None, (0, 60)),
            GroupWaits {
                stop_if_not_rerouted: None,
                termination: min(60)
            }
        );
        let mut times = EventTimes::new();
        times.insert("AllowTraffic".into(), (Some(t0), None));
        let canary = Some(Routing::Canary { interval: min(5) });
        let shifting = snap(
            "InProgress",
            &[("AllowTraffic", "InProgress")],
            &[("blue", 90.0), ("green", 10.0)],
        );
        assert_eq!(
            stage(&shifting, &times, t0, canary, waits),
            Stage::Shifting {
                next: Some(t0 + min(5))
            }
        );
        let linear = Some(Routing::Linear {
            percent: 10.0,
            interval: min(1),
        });
        let at_30 = snap(
            "InProgress",
            &[("AllowTraffic", "InProgress")],
            &[("blue", 70.0), ("green", 30.0)],
        );
        assert_eq!(
            stage(&at_30, &times, t0, linear, waits),
            Stage::Shifting {
                next: Some(t0 + min(3))
            }
        );
        assert_eq!(
            stage(&shifting, &times, t0, None, waits),
            Stage::Shifting { next: None }
        );
        times.insert("AfterAllowTraffic".into(), (Some(t0), Some(t0 + min(6))));
        let kept = snap(
            "InProgress",
            &[
                ("AllowTraffic", "Succeeded"),
                ("AfterAllowTraffic", "Succeeded"),
            ],
            &[("blue", 0.0), ("green", 100.0)],
        );
        assert_eq!(
            stage(&kept, &times, t0, canary, waits),
            Stage::Terminating {
                until: t0 + min(11)
            }
        );
        let ready = snap("Ready", &[], &[]);
        assert_eq!(
            stage(&ready, &times, t0, canary, waits),
            Stage::Ready {
                until: Some(t0 + min(10))
            }
        );
        let hooks = snap(
            "InProgress",
            &[
                ("AllowTraffic", "Succeeded"),
                ("AfterAllowTraffic", "InProgress"),
            ],
            &[("blue", 0.0), ("green", 100.0)],
        );
        assert_eq!(stage(&hooks, &times, t0, canary, waits), Stage::Hooks);
        assert_eq!(
            stage(
                &snap("InProgress", &[("Install", "InProgress")], &[]),
                &times,
                t0,
                canary,
                waits
            ),
            Stage::Starting
        );
    }

    #[test]
    fn the_interval_is_near_around_a_timed_change_and_the_target_is_read_only_when_it_may_move() {
        let p = Policy::default();
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(interval(&p, Stage::Starting, now), p.starting);
        assert_eq!(interval(&p, Stage::Hooks, now), p.soon);
        let far = Stage::Terminating {
            until: now + s(300),
        };
        assert_eq!(interval(&p, far, now), p.pace.far);
        let close = Stage::Terminating { until: now + s(1) };
        assert_eq!(interval(&p, close, now), p.pace.near);
        let late = Stage::Terminating {
            until: now - s(120),
        };
        assert_eq!(interval(&p, late, now), p.soon);
        assert!(
            !reads_target(&p, close, now),
            "the end is a change of status"
        );
        let step_far = Stage::Shifting {
            next: Some(now + s(200)),
        };
        let step_close = Stage::Shifting {
            next: Some(now + s(2)),
        };
        assert!(!reads_target(&p, step_far, now));
        assert!(reads_target(&p, step_close, now));
        assert!(reads_target(&p, Stage::Shifting { next: None }, now));
        assert!(reads_target(&p, Stage::Starting, now));
    }

    #[test]
    fn green_serves_during_a_canary_step_and_the_termination_wait_but_not_before_or_after() {
        use LifecycleEventStatus as E;
        let shifting = |green: f64| {
            snap(
                "InProgress",
                &[("AllowTraffic", "InProgress")],
                &[("blue", 100.0 - green), ("green", green)],
            )
        };
        assert!(
            !shifting(0.0).serving_green(),
            "AllowTraffic started, nothing moved yet"
        );
        assert!(shifting(10.0).serving_green());
        let kept = snap(
            "InProgress",
            &[
                ("AllowTraffic", "Succeeded"),
                ("AfterAllowTraffic", "Succeeded"),
            ],
            &[],
        );
        assert!(
            kept.serving_green(),
            "the termination wait, target not read again"
        );
        assert!(snap("Baking", &[], &[]).serving_green());
        assert!(!snap("Ready", &[], &[]).serving_green());
        assert!(
            !snap(
                "InProgress",
                &[("AllowTestTraffic", "Succeeded")],
                &[("blue", 100.0)]
            )
            .serving_green()
        );
        for done in ["Succeeded", "Stopped", "Failed"] {
            assert!(
                !snap(done, &[("AllowTraffic", "Succeeded")], &[("green", 100.0)]).serving_green(),
                "{done}"
            );
        }
        let _ = E::Pending;
    }

    #[test]
    fn the_bake_window_runs_from_the_first_step_to_the_end_of_the_termination_wait() {
        let min = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(bake_window(Routing::AllAtOnce, min(0)), min(0));
        assert_eq!(bake_window(Routing::AllAtOnce, min(5)), min(5));
        assert_eq!(
            bake_window(Routing::Canary { interval: min(5) }, min(0)),
            min(5)
        );
        let linear = Routing::Linear {
            percent: 10.0,
            interval: min(3),
        };
        assert_eq!(bake_window(linear, min(1)), min(28));
        let thirds = Routing::Linear {
            percent: 33.0,
            interval: min(1),
        };
        assert_eq!(
            bake_window(thirds, min(0)),
            min(3),
            "four steps: 33, 66, 99, 100"
        );
    }

    #[test]
    fn all_at_once_without_a_termination_wait_is_refused_naming_the_group_setting() {
        let gate = Duration::from_secs(10);
        let e = check_bake_window(
            "CodeDeployDefault.ECSAllAtOnce",
            Some(Routing::AllAtOnce),
            "AppECS-prod-web1/DgpECS-prod-web1",
            0,
            gate,
        )
        .unwrap_err();
        assert!(e.starts_with("deploys by CodeDeploy with CodeDeployDefault.ECSAllAtOnce, which moves all production traffic at once, and deployment group AppECS-prod-web1/DgpECS-prod-web1 deletes"), "{e}");
        assert!(e.contains("terminationWaitTimeInMinutes, is 0"), "{e}");
        assert!(
            e.contains("set that wait to at least 1 minute on the group"),
            "{e}"
        );
        let long_gate = check_bake_window(
            "X",
            Some(Routing::AllAtOnce),
            "a/g",
            0,
            Duration::from_secs(130),
        );
        assert!(long_gate.unwrap_err().contains("at least 3 minutes"));
        assert_eq!(
            check_bake_window("X", Some(Routing::AllAtOnce), "a/g", 1, gate),
            Ok(None)
        );
        let canary = Some(Routing::Canary {
            interval: Duration::from_secs(60),
        });
        assert_eq!(check_bake_window("C", canary, "a/g", 0, gate), Ok(None));
        let note = check_bake_window("C", canary, "a/g", 0, Duration::from_secs(100))
            .expect("not refused")
            .expect("a note");
        assert!(
            note.contains(
                "for 60 s before CodeDeploy ends the deployment, less than the verification's 100 s"
            ),
            "{note}"
        );
        assert!(
            check_bake_window("Mine", None, "a/g", 0, gate)
                .unwrap()
                .unwrap()
                .contains("Mine could not be read")
        );
    }
}
