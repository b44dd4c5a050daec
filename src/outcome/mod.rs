//! What a deploy hands back, as one value: the path it took, its ids, steps, links, rollback
//! facts and status. `deploy` fills it, `report` renders it (`AppReport::apply`); both import
//! this module and neither imports the other.

pub mod diagnosis;

use serde::Serialize;

pub use diagnosis::{Diagnosis, LogTail};

/// The deployment path a service takes (the `deployment-kind` output, serialized by its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeployPath {
    /// `ECS` controller, ROLLING strategy: UpdateService and wait (`rolling/`).
    #[serde(rename = "rolling")]
    Rolling,
    /// `CODE_DEPLOY` controller: a CodeDeploy blue/green deployment (`codedeploy/`).
    #[serde(rename = "codedeploy")]
    CodeDeploy,
    /// `ECS` controller with the BLUE_GREEN, LINEAR or CANARY strategy (`bluegreen/`).
    #[serde(rename = "ecs-blue-green")]
    EcsBlueGreen,
    /// A Kubernetes Deployment (EKS or any cluster): patch the image, follow the rollout
    /// (`kubernetes/`).
    #[serde(rename = "kubernetes")]
    Kubernetes,
}

impl std::fmt::Display for DeployPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DeployPath {
    /// The `deployment-kind` output value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployPath::Rolling => "rolling",
            DeployPath::CodeDeploy => "codedeploy",
            DeployPath::EcsBlueGreen => "ecs-blue-green",
            DeployPath::Kubernetes => "kubernetes",
        }
    }
}

/// The outcome of a run or of one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Skipped,
    Succeeded,
    Cancelled,
    RolledBack,
    Failed,
}

impl Status {
    /// The value of the `status` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skipped => "skipped",
            Status::Succeeded => "succeeded",
            Status::Cancelled => "cancelled",
            Status::RolledBack => "rolled-back",
            Status::Failed => "failed",
        }
    }

    /// True when the job should fail (exit 1).
    pub(crate) fn is_failure(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::RolledBack | Status::Cancelled
        )
    }

    /// The worst of several statuses (several apps: the run's status).
    pub(crate) fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses.into_iter().max().unwrap_or(Status::Skipped)
    }
}

/// A link a person can click (ECS console, CodeDeploy console, run, commit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// What one deploy did: built by the deploy skeleton and its path, read by the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The path the service took.
    pub kind: Option<DeployPath>,
    /// The task definition deployed (registered, or the live one when nothing changed).
    pub task_definition_arn: Option<String>,
    /// The task definition the service ran before (the rollback target).
    pub previous_task_definition_arn: Option<String>,
    /// The image the container ran before (Kubernetes).
    pub previous_image: Option<String>,
    /// The task definition as rendered (raw JSON), for the `task-definition` output's file.
    pub rendered_task_definition: Option<serde_json::Value>,
    /// The one-off tasks started (`run-task-command`), for the `run-task-arn` output.
    pub run_task_arns: Vec<String>,
    /// The deployment's id (ECS deployment, CodeDeploy deployment, ECS service deployment ARN).
    pub deployment_id: Option<String>,
    /// How it ended; `None` until the path says (the caller turns an error into `failed`).
    pub status: Option<Status>,
    /// What the rollback did (or why it failed).
    pub rollback: Option<String>,
    /// Steps as they happened, for the log and the summary.
    pub steps: Vec<String>,
    /// Console links for people.
    pub links: Vec<Link>,
    /// Why the deploy failed, read from its stopped tasks (and their last log lines).
    pub diagnosis: Option<Diagnosis>,
    /// What the verification gate found (`verify-*` inputs), when it ran.
    pub verification: Option<Verification>,
}

/// A deploy that did not succeed: what it did before it stopped, and why.
#[derive(Debug)]
pub struct Failed {
    /// Boxed: the error side of a `Result` stays small.
    pub outcome: Box<Outcome>,
    pub error: crate::error::Error,
}

/// What the verification gate decided: the `verification` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    /// No `verify-url` and no `verify-alarms`, or the deploy never reached the gate.
    #[default]
    Skipped,
    /// The probes failed at most `verify-max-failures` times and no alarm was in ALARM.
    Passed,
    /// Too many probes failed, an alarm was in ALARM or missing, or the gate could not look.
    Failed,
}

impl Verdict {
    /// The value of the `verification` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Skipped => "skipped",
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
        }
    }
}

/// What one GET of the verify URL got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// An HTTP answer with this status (2xx and 3xx pass).
    Status(u16),
    /// A redirect to another host, not followed (its status, and that host): the app answered,
    /// so it passes like any 3xx, but nothing was sent to the other host.
    RedirectOffHost { status: u16, host: String },
    /// No answer within the probe's time limit.
    Timeout,
    /// No connection: refused, or the host could not be reached (the reason, without the URL).
    Refused(String),
    /// Any other failure (TLS, a broken answer, too many redirects), without the URL.
    Error(String),
}

/// One probe of the verify URL: its answer and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub answer: ProbeAnswer,
    pub elapsed: std::time::Duration,
}

impl Probe {
    /// True for a 2xx or 3xx answer; a 4xx/5xx, a timeout or no connection is a failure.
    pub(crate) fn passed(&self) -> bool {
        match &self.answer {
            ProbeAnswer::Status(s) => (200..400).contains(s),
            ProbeAnswer::RedirectOffHost { .. } => true,
            ProbeAnswer::Timeout | ProbeAnswer::Refused(_) | ProbeAnswer::Error(_) => false,
        }
    }

    /// The answer in a few words: `HTTP 200`, `timeout`, `connection refused: ...`.
    pub fn text(&self) -> String {
        match &self.answer {
            ProbeAnswer::Status(s) => format!("HTTP {s}"),
            ProbeAnswer::RedirectOffHost { status, host } => {
                format!("HTTP {status} to {host} (another host: not followed)")
            }
            ProbeAnswer::Timeout => format!("no answer within {:.1}s", self.elapsed.as_secs_f32()),
            ProbeAnswer::Refused(why) => format!("no connection ({why})"),
            ProbeAnswer::Error(why) => why.clone(),
        }
    }
}

/// One CloudWatch alarm as the gate read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmReading {
    pub name: String,
    /// Its state; `None` when DescribeAlarms did not return it (no such alarm in this account
    /// and region).
    pub state: Option<aws_sdk_cloudwatch::types::StateValue>,
    /// CloudWatch's reason for the state, when in ALARM.
    pub reason: Option<String>,
}

impl AlarmReading {
    /// True when the alarm fails the gate: in ALARM, or not found. INSUFFICIENT_DATA does not
    /// fail it (an alarm without data has nothing to say about the new version).
    pub(crate) fn fails(&self) -> bool {
        use aws_sdk_cloudwatch::types::StateValue;
        match &self.state {
            None | Some(StateValue::Alarm) => true,
            Some(_) => false,
        }
    }

    /// `name: OK`, `name: ALARM (reason)`, `name: not found`.
    pub fn text(&self) -> String {
        match (&self.state, &self.reason) {
            (None, _) => format!("{}: not found", self.name),
            (Some(s), Some(r)) if self.fails() => format!("{}: {} ({r})", self.name, s.as_str()),
            (Some(s), _) => format!("{}: {}", self.name, s.as_str()),
        }
    }
}

/// What the verification gate found: its verdict, each probe and each alarm, for the outputs,
/// the summary and the messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    pub verdict: Verdict,
    /// The URL probed (userinfo removed), when there was one.
    pub url: Option<String>,
    pub probes: Vec<Probe>,
    /// Failed probes the gate allows (`verify-max-failures`).
    pub max_failures: u32,
    pub alarms: Vec<AlarmReading>,
    /// Why the gate could not look (alarms unreadable, cancelled): a failure of its own.
    pub problem: Option<String>,
}

impl Verification {
    /// Nothing to verify: no URL, no alarms.
    pub(crate) fn skipped() -> Verification {
        Verification::default()
    }

    /// The probes that failed.
    pub fn failures(&self) -> usize {
        self.probes.iter().filter(|p| !p.passed()).count()
    }

    /// One line saying what the gate decided and why, for the log, the summary and messages.
    pub fn headline(&self) -> String {
        let mut parts = Vec::new();
        if let Some(url) = &self.url {
            parts.push(format!(
                "{} of {} probes of {url} failed ({} allowed)",
                self.failures(),
                self.probes.len(),
                self.max_failures
            ));
        }
        if !self.alarms.is_empty() {
            let failing: Vec<&str> = self
                .alarms
                .iter()
                .filter(|a| a.fails())
                .map(|a| a.name.as_str())
                .collect();
            parts.push(if failing.is_empty() {
                format!("{} alarms not in ALARM", self.alarms.len())
            } else {
                format!("alarms failing: {}", failing.join(", "))
            });
        }
        if let Some(p) = &self.problem {
            parts.push(p.clone());
        }
        if parts.is_empty() {
            return format!("verification {}", self.verdict.as_str());
        }
        format!(
            "verification {}: {}",
            self.verdict.as_str(),
            parts.join("; ")
        )
    }

    /// The details under the headline: the probes' answers counted (`HTTP 200 ×9`), then each
    /// alarm's state.
    pub fn details(&self) -> Vec<String> {
        let mut counted: Vec<(String, usize)> = Vec::new();
        for p in &self.probes {
            let t = p.text();
            match counted.iter_mut().find(|(k, _)| *k == t) {
                Some((_, n)) => *n += 1,
                None => counted.push((t, 1)),
            }
        }
        let mut out: Vec<String> = counted
            .into_iter()
            .map(|(t, n)| format!("probes: {t} ×{n}"))
            .collect();
        out.extend(self.alarms.iter().map(|a| format!("alarm {}", a.text())));
        out
    }
}
