//! The one error type of the crate: every failure names the thing, the value and what to do next.

use std::path::PathBuf;

use crate::location::FileLocation;

/// Everything that can stop a run. Each variant's message is written for the person reading the
/// workflow log: what was wrong, the value seen, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input (or CLI flag) has a value outside the accepted set or shape.
    #[error("input `{name}` has the value {value:?}: {reason}")]
    InvalidInput {
        name: String,
        value: String,
        reason: String,
    },

    /// Two inputs that cannot be used together, or one that needs another.
    #[error("inputs do not fit together: {message}")]
    InputConflict { message: String },

    /// A required input is missing for what this run has to do.
    #[error("input `{name}` is required {why}; set it in the step's `with:` (or pass --{name})")]
    MissingInput { name: String, why: String },

    /// A file named by an input could not be read.
    #[error(
        "cannot read {what} at {path}: {source}; check that the path is right (relative paths start at the workspace)"
    )]
    ReadFile {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file that was read but cannot be used as text: too large, or not UTF-8.
    #[error("{what} at {path} {problem}")]
    UnusableFile {
        what: String,
        path: PathBuf,
        problem: String,
    },

    /// The GitHub event payload is not the JSON the event name promises.
    #[error(
        "the {event_name} event payload at {path} is not valid: {reason}; pass the file GitHub wrote to GITHUB_EVENT_PATH (or --event FILE)"
    )]
    InvalidEvent {
        event_name: String,
        path: PathBuf,
        reason: String,
    },

    /// No event name was given: the binary cannot decide whether to deploy.
    #[error(
        "no GitHub event name: set GITHUB_EVENT_NAME or pass --event-name (pull_request, workflow_dispatch, push)"
    )]
    MissingEventName,

    /// A package.json that cannot be used as the source of the version.
    #[error("package.json at {path} {problem}")]
    PackageJson { path: PathBuf, problem: String },

    /// A version string that fails the configured version format.
    #[error("version {value:?} (from {source_name}) is not valid: {reason}")]
    InvalidVersion {
        value: String,
        source_name: String,
        reason: String,
    },

    /// A pushed tag whose version differs from package.json: one of them is wrong.
    #[error(
        "tag {tag} says version {tag_version}, but {path} says {package_version}; bump package.json or push the matching tag"
    )]
    TagVersionMismatch {
        tag: String,
        tag_version: String,
        path: PathBuf,
        package_version: String,
    },

    /// The config file (several apps) cannot be used.
    #[error("config file {path}: {problem}")]
    Config { path: PathBuf, problem: String },

    /// A task definition file or rendering problem.
    #[error("task definition {source_name}: {problem}")]
    TaskDefinition {
        source_name: String,
        problem: String,
    },

    /// An AppSpec file or rendering problem.
    #[error("AppSpec {source_name}: {problem}")]
    AppSpec {
        source_name: String,
        problem: String,
    },

    /// A call to an AWS API failed (after the SDK's own retries).
    #[error("AWS {service} {operation} failed: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        message: String,
    },

    /// The ECS service cannot be deployed as asked.
    #[error("ECS service {service} in cluster {cluster}: {problem}")]
    Service {
        cluster: String,
        service: String,
        problem: String,
    },

    /// A Kubernetes cluster or Deployment that cannot be reached or deployed as asked.
    #[error("Kubernetes {target}: {problem}")]
    Kubernetes { target: String, problem: String },

    /// The image could not be built, found or pushed.
    #[error("image {image}: {problem}")]
    Image { image: String, problem: String },

    /// The Docker engine could not be reached or refused a request.
    #[error("Docker engine: {problem}")]
    Docker { problem: String },

    /// The deployment did not reach a healthy end.
    #[error("deployment {deployment_id} of {target}: {problem}")]
    Deployment {
        target: String,
        deployment_id: String,
        problem: String,
    },

    /// Another deployment (another run, a person) replaced ours while we waited: reported, and
    /// never rolled back over.
    #[error(
        "deployment {deployment_id} of {target} was superseded by {by}: another run or a person deployed the service while this run waited, so nothing was rolled back over it; look at that deployment, and run again if this version should be live"
    )]
    Superseded {
        target: String,
        deployment_id: String,
        by: String,
    },

    /// A deployment failed and putting the service back failed too: both errors, so a person
    /// knows the service may be half-deployed.
    #[error(
        "{target}: {cause}; and the rollback failed too: {rollback}; check the service in the console and deploy the previous task definition by hand"
    )]
    RollbackFailed {
        target: String,
        cause: String,
        rollback: String,
    },

    /// A Kubernetes rollout failed and rolling the Deployment back failed too: both errors, and
    /// the kubectl commands a person picks a revision and goes back to it with (`fix`). Both
    /// errors name the Deployment.
    #[error("{cause}; and the rollback failed too: {rollback}; {fix}")]
    KubernetesRollbackFailed {
        cause: String,
        rollback: String,
        fix: String,
    },

    /// The verification gate cannot do what its inputs ask: an alarm that does not exist, a
    /// blue/green service with no PAUSE hook where the gate would stop.
    #[error("{input}: {problem}")]
    Verify {
        input: &'static str,
        problem: String,
    },

    /// The new version failed the verification gate (`verify-*`): handled like a failed
    /// rollout (rolled back when rollback-on-failure is on).
    #[error(
        "{target} failed verification: {headline}; look at the probes' answers and the alarms in the job summary, fix the new version and deploy again (or raise verify-max-failures if those failures are expected)"
    )]
    VerificationFailed { target: String, headline: String },

    /// The run was cancelled (SIGTERM/SIGINT, as GitHub sends on job cancel).
    #[error("cancelled: {what}")]
    Cancelled { what: String },

    /// Writing a GitHub file command (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) failed.
    #[error("cannot write {what} to {path}: {source}")]
    WriteFile {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A reporter (Slack, Discord, GitHub Deployments) could not deliver. Shown as a warning:
    /// it never changes the deploy's outcome. `problem` never holds a URL or a token.
    #[error("{target}: {problem}; the deploy's result is unchanged")]
    Notify { target: String, problem: String },

    /// `changed-only` could not learn which files the push or pull request changed.
    #[error(
        "changed-only: cannot list the files changed by {what}: {problem}; check that github-token may read the repository (permissions: contents: read, pull-requests: read), or set changed-only: false to deploy every selected app"
    )]
    ChangedFiles { what: String, problem: String },

    /// The preflight found several problems with one app; each says its fix.
    #[error("{}", problems.join("; and "))]
    Preflight { problems: Vec<String> },

    /// An error about a place in a file (package.json, a task definition, an AppSpec, the config
    /// file): the same message, and where, for the `::error file=…,line=…,col=…` annotation.
    #[error("{error}")]
    InFile {
        location: FileLocation,
        error: Box<Error>,
    },

    /// Several apps ran and at least one failed; each app's error is in the results.
    #[error("{failed} of {total} apps failed: {summary}")]
    AppsFailed {
        failed: usize,
        total: usize,
        summary: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::InvalidInput`] without spelling out the field names at every call.
    pub(crate) fn invalid_input(
        name: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidInput {
            name: name.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::Aws`] from any SDK error, keeping the service's own message and code.
    pub(crate) fn aws<E>(service: &'static str, operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        let mut message = error_chain(&err);
        // The SDK's words name the limit (`operation timeout ... occurred after 60s`); say
        // what to do about it.
        if message.contains("timed out") || message.contains("timeout") {
            message.push_str(
                " (the action's time limits for every AWS call; AWS did not answer in time: check the AWS Health Dashboard for the region, then run again)",
            );
        }
        Error::Aws {
            service,
            operation,
            message,
        }
    }
}

impl Error {
    /// This error, located in `file` (at `at`: line, column, when known). A location already
    /// known with a line is kept: it was found closer to the problem.
    pub(crate) fn in_file(self, file: impl Into<PathBuf>, at: Option<(usize, usize)>) -> Error {
        match self {
            Error::InFile { location, error } if location.line.is_some() => {
                Error::InFile { location, error }
            }
            Error::InFile { error, .. } => Error::InFile {
                location: FileLocation::new(file, at),
                error,
            },
            other => Error::InFile {
                location: FileLocation::new(file, at),
                error: Box::new(other),
            },
        }
    }

    /// The file (and line and column, when known) this error is about: a located error's
    /// place, or the file of an error that names one (a file that cannot be read, a
    /// package.json, the config file).
    pub fn file_location(&self) -> Option<FileLocation> {
        match self {
            Error::InFile { location, .. } => Some(location.clone()),
            Error::ReadFile { path, .. }
            | Error::UnusableFile { path, .. }
            | Error::PackageJson { path, .. }
            | Error::Config { path, .. }
            | Error::TagVersionMismatch { path, .. } => Some(FileLocation::new(path, None)),
            _ => None,
        }
    }
}

/// Joins an error and its sources into one line, the way the log shows it once.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}
