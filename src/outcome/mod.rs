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
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::RolledBack | Status::Cancelled
        )
    }

    /// The worst of several statuses (several apps: the run's status).
    pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
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
}

/// A deploy that did not succeed: what it did before it stopped, and why.
#[derive(Debug)]
pub struct Failed {
    /// Boxed: the error side of a `Result` stays small.
    pub outcome: Box<Outcome>,
    pub error: crate::error::Error,
}
