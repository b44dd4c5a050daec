//! Why a deploy failed, as the outcome carries it: the stopped task's cause in words, how many
//! tasks shared it, its console link and the last lines it logged. Plain data with its words;
//! `deploy::diagnosis` reads it from ECS and CloudWatch Logs, `report` renders it.

/// One container of a stopped task, as DescribeTasks told it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    pub name: String,
    pub image: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub health: Option<String>,
}

/// Why one task stopped: what ECS said, and the first cause in words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cause {
    /// The stopped task's ARN (empty for a placement failure: no task ran).
    pub task_arn: String,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<String>,
    /// The task's health status (`HEALTHY`, `UNHEALTHY`, `UNKNOWN`).
    pub health: Option<String>,
    pub containers: Vec<ContainerState>,
    /// The first cause, in words a person acts on (also what tasks are grouped by).
    pub first: String,
}

impl Cause {
    /// The task's id (the last part of its ARN), as the console and the log stream name it.
    pub(crate) fn task_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }

    /// One line for the log: the task, its stop code and reason, each container's exit.
    pub fn details(&self) -> String {
        let mut line = format!(
            "task {} stopped ({}: {})",
            self.task_id(),
            self.stop_code.as_deref().unwrap_or("no stop code"),
            self.stopped_reason.as_deref().unwrap_or("no reason given")
        );
        if let Some(h) = &self.health {
            line.push_str(&format!(", health {h}"));
        }
        for c in &self.containers {
            line.push_str(&format!(
                "; container {}: exit {}",
                c.name,
                c.exit_code.map_or("-".to_string(), |e| e.to_string())
            ));
            if let Some(r) = &c.reason {
                line.push_str(&format!(" ({r})"));
            }
            if let Some(h) = &c.health {
                line.push_str(&format!(", health {h}"));
            }
        }
        line
    }
}

/// The last lines a stopped task's container wrote, read from CloudWatch Logs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogTail {
    pub group: String,
    pub stream: String,
    /// Bounded by `deploy::diagnosis::LOG_LINES` and `LOG_BYTES`, not yet redacted.
    pub lines: Vec<String>,
    /// The stream's console page, when the region is known.
    pub url: Option<String>,
}

/// What the wait found: the cause it failed on, how many tasks shared it, its console link, and
/// the log lines of its task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnosis {
    pub cause: Cause,
    pub count: usize,
    pub task_url: Option<String>,
    pub log: Option<LogTail>,
}

impl Diagnosis {
    /// The problem text of the deploy's error: the cause, how many tasks, where to look.
    pub(crate) fn problem(&self, failed_fast: bool) -> String {
        let s = if self.count == 1 { "" } else { "s" };
        let what = if self.cause.task_arn.is_empty() {
            format!("{} placement failure{s}", self.count)
        } else {
            format!("{} task{s} of the new revision stopped", self.count)
        };
        let mut p = format!("{what}: {}", self.cause.first);
        if let Some(url) = &self.task_url {
            p.push_str(&format!(" (stopped task: {url})"));
        }
        if failed_fast {
            p.push_str(
                "; failing now instead of waiting out wait-for-minutes (fail-fast-after-stopped-tasks)",
            );
        }
        p
    }
}
