//! The pure side of a CodeDeploy deployment: default names, the console link, a snapshot of a
//! deployment's lifecycle and traffic, the lines that describe what changed between two
//! snapshots, and what a finished deployment means for the run (succeeded, failed, rolled back).
//! The I/O around it lives in `codedeploy.rs`.

use std::time::Duration;

use aws_sdk_codedeploy::types::{DeploymentInfo, EcsTarget};

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
pub const UNFINISHED_STATUSES: [&str; 5] = ["Created", "Queued", "InProgress", "Ready", "Baking"];

/// The last part of an ARN (`arn:aws:ecs:…:cluster/prod` → `prod`,
/// `arn:aws:ecs:…:service/prod/web1` → `web1`); a plain name is returned as is.
pub fn short_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
    } else {
        name_or_arn
    }
}

/// The application and deployment group AWS CLI's `aws ecs deploy` assumes when none is given:
/// `AppECS-<cluster>-<service>` and `DgpECS-<cluster>-<service>` (the names the ECS console
/// creates for a blue/green service).
pub fn default_names(cluster: &str, service: &str) -> (String, String) {
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
pub fn total_wait(
    wait_for: Duration,
    ready_wait_minutes: i32,
    termination_wait_minutes: i32,
) -> Duration {
    let group = u64::try_from(ready_wait_minutes.max(0)).unwrap_or(0)
        + u64::try_from(termination_wait_minutes.max(0)).unwrap_or(0);
    (wait_for + Duration::from_secs(group * 60)).min(MAX_WAIT)
}

/// The CodeDeploy console page of a deployment.
pub fn console_url(region: &str, deployment_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codedeploy/deployments/{deployment_id}?region={region}"
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// The deployment's status (Created, InProgress, Ready, Succeeded, Failed, Stopped…).
    pub status: String,
    /// (lifecycle event, status) as CodeDeploy lists them.
    pub events: Vec<(String, String)>,
    pub task_sets: Vec<TaskSet>,
}

impl Snapshot {
    /// Reads a snapshot out of GetDeployment's answer and, once there is one, the ECS target.
    pub fn from_sdk(deployment: &DeploymentInfo, target: Option<&EcsTarget>) -> Snapshot {
        let status = deployment
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "Unknown".into());
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
                    e.status()
                        .map(|s| s.as_str())
                        .unwrap_or("Pending")
                        .to_string(),
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
    pub fn failed_event(&self) -> Option<&str> {
        self.events
            .iter()
            .find(|(_, s)| s == "Failed")
            .map(|(e, _)| e.as_str())
    }

    /// The traffic split as one line: `traffic: blue 90% (2/2 running), green 10% (2/2 running)`.
    pub fn traffic_line(&self) -> Option<String> {
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
    pub fn traffic_on_blue(&self) -> bool {
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
pub fn changes(before: Option<&Snapshot>, now: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let status_line = (before.map(|b| b.status.as_str()) != Some(now.status.as_str()))
        .then(|| format!("deployment {}", describe_status(&now.status)));
    // A finished deployment's status comes after the last events and traffic it reports, so
    // the log reads in the order things happened.
    let finished = matches!(now.status.as_str(), "Succeeded" | "Failed" | "Stopped");
    if !finished {
        out.extend(status_line.clone());
    }
    // Events in CodeDeploy's lifecycle order, so a poll that saw several move prints them in
    // the order they ran.
    let mut events: Vec<&(String, String)> = now.events.iter().collect();
    events.sort_by_key(|(name, _)| {
        LIFECYCLE_EVENTS
            .iter()
            .position(|e| e == name)
            .unwrap_or(LIFECYCLE_EVENTS.len())
    });
    for (name, status) in events {
        let was = before.and_then(|b| b.events.iter().find(|(n, _)| n == name).map(|(_, s)| s));
        let unchanged = was == Some(status) || (was.is_none() && status == "Pending");
        if !unchanged {
            out.push(format!("{name}: {status}"));
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
pub fn describe_status(status: &str) -> String {
    match status {
        "Created" => "created, waiting to start".into(),
        "Queued" => "queued behind another deployment of the group".into(),
        "InProgress" => "in progress".into(),
        "Ready" => "ready: green tasks are up, waiting for traffic to be rerouted (ContinueDeployment or the group's wait time)".into(),
        "Baking" => "baking: traffic is on green, the original tasks are kept until the wait time ends".into(),
        "Succeeded" => "succeeded".into(),
        "Failed" => "failed".into(),
        "Stopped" => "stopped".into(),
        other => other.to_string(),
    }
}

/// What a deployment's status means for the wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still running: keep polling.
    Running,
    Succeeded,
    /// Failed or Stopped. `rollback_deployment` is the deployment CodeDeploy started to move
    /// traffic back to the original task set, when it did.
    Ended {
        status: String,
        reason: String,
        rollback_deployment: Option<String>,
        rollback_message: Option<String>,
    },
}

/// Classifies GetDeployment's answer: running, succeeded, or ended (with CodeDeploy's error
/// message and rollback info).
pub fn outcome(deployment: &DeploymentInfo) -> Outcome {
    let status = deployment.status().map(|s| s.as_str()).unwrap_or("Unknown");
    match status {
        "Succeeded" => Outcome::Succeeded,
        "Failed" | "Stopped" => {
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
                .unwrap_or_else(|| format!("CodeDeploy reports the deployment {status}"));
            let rollback = deployment.rollback_info();
            Outcome::Ended {
                status: status.to_string(),
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
        _ => Outcome::Running,
    }
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
                .map(|(e, s)| (e.to_string(), s.to_string()))
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
        assert_eq!(s.status, "InProgress");
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
            Outcome::Ended {
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
            let d = DeploymentInfo::builder()
                .status(DeploymentStatus::from(s))
                .build();
            assert_eq!(outcome(&d), Outcome::Running, "{s}");
        }
        let d = DeploymentInfo::builder()
            .status(DeploymentStatus::Succeeded)
            .build();
        assert_eq!(outcome(&d), Outcome::Succeeded);
    }
}
