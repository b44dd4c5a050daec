//! Why a deploy failed, in words a person acts on: the stopped tasks of the new revision (their
//! `stoppedReason`, `stopCode`, each container's exit code, reason and health), placement
//! failures from the service events, and the last lines the container wrote to CloudWatch Logs.
//!
//! The middle is pure ([`cause_of`], [`placement_failure`], [`repeated`], [`awslogs_stream`],
//! [`bound_lines`]); the edges are one ListTasks + DescribeTasks read ([`stopped_tasks`]) and one
//! GetLogEvents read ([`log_tail`]). [`Watch`] is what every ECS wait (rolling, CodeDeploy, ECS
//! blue/green) asks on each look: has the same cause stopped `fail-fast-after-stopped-tasks`
//! tasks yet? [`explain_failure`] turns what it saw into the failed deploy's cause and log lines.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_ecs::types::{DesiredStatus, Service, Task};
use serde_json::Value;
use tokio::time::Instant;

use crate::error::{Error, Result};
pub use crate::outcome::diagnosis::{Cause, ContainerState, Diagnosis, LogTail};

/// How often the wait reads the stopped tasks (ListTasks + DescribeTasks): a task lives tens of
/// seconds at least before it stops, so this costs little and still fails within a task lifetime.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// At most this many log lines of a stopped task are shown.
pub const LOG_LINES: usize = 30;

/// At most this many bytes of log lines are shown.
pub const LOG_BYTES: usize = 4096;

/// What made a task stop, as far as a person needs to know to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The image (tag or digest) is not in the repository.
    ImageNotFound { image: String },
    /// The image could not be pulled for another reason (permissions, network).
    CannotPull { image: String },
    /// The task could not get its secrets or registry credentials (`ResourceInitializationError`).
    ResourceInitialization,
    /// The container was killed for using more memory than its limit.
    OutOfMemory { container: String },
    /// The container or load balancer health check failed.
    HealthCheck,
    /// An essential container exited with this code.
    Exited { container: String, code: i32 },
    /// ECS could not place the task (capacity, constraints): from the service events.
    Placement,
    /// Anything else: the stopped reason as ECS gave it.
    Other,
}

/// The stopped task's console page.
pub(crate) fn task_url(region: &str, cluster: &str, task_id: &str) -> String {
    format!(
        "{}/ecs/v2/clusters/{cluster}/tasks/{task_id}/configuration?region={region}",
        crate::aws::console_base(region)
    )
}

/// A log stream's console page.
pub(crate) fn log_stream_url(region: &str, group: &str, stream: &str) -> String {
    // The console's fragment encodes `/` as `$252F` (a `%2F` escaped once more with `$25`).
    let enc = |s: &str| s.replace('/', "$252F");
    format!(
        "{}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
        crate::aws::console_base(region),
        enc(group),
        enc(stream)
    )
}

/// Classifies what ECS said about the task. Pure.
pub(crate) fn classify(task: &Task) -> Kind {
    let stopped = task.stopped_reason().unwrap_or_default();
    let containers = task.containers();
    let texts = || {
        std::iter::once((None, stopped)).chain(
            containers
                .iter()
                .map(|c| (Some(c), c.reason().unwrap_or_default())),
        )
    };
    let image_of = |c: Option<&aws_sdk_ecs::types::Container>| {
        c.or_else(|| containers.first())
            .and_then(|c| c.image())
            .unwrap_or("the container's image")
            .to_string()
    };
    if let Some((c, text)) = texts().find(|(_, t)| t.contains("CannotPullContainerError")) {
        let image = image_of(c);
        let lower = text.to_ascii_lowercase();
        return if ["not found", "manifest unknown", "does not exist"]
            .iter()
            .any(|p| lower.contains(p))
        {
            Kind::ImageNotFound { image }
        } else {
            Kind::CannotPull { image }
        };
    }
    if texts().any(|(_, t)| t.contains("ResourceInitializationError")) {
        return Kind::ResourceInitialization;
    }
    let oom = containers.iter().find(|c| {
        c.reason().is_some_and(|r| r.contains("OutOfMemory"))
            || (c.exit_code() == Some(137) && stopped.contains("OutOfMemory"))
    });
    if let Some(c) = oom {
        return Kind::OutOfMemory {
            container: c.name().unwrap_or("?").to_string(),
        };
    }
    if stopped.contains("OutOfMemory") {
        return Kind::OutOfMemory {
            container: containers
                .first()
                .and_then(|c| c.name())
                .unwrap_or("?")
                .to_string(),
        };
    }
    if stopped.contains("health check") {
        return Kind::HealthCheck;
    }
    let exited = containers
        .iter()
        .find(|c| c.exit_code().is_some_and(|e| e != 0));
    if let Some(c) = exited {
        let name = c.name().unwrap_or("?").to_string();
        let code = c.exit_code().unwrap_or_default();
        if code == 137 {
            return Kind::OutOfMemory { container: name };
        }
        return Kind::Exited {
            container: name,
            code,
        };
    }
    Kind::Other
}

/// The first cause in words a person acts on, from the kind and what ECS said. Pure.
pub(crate) fn words(kind: &Kind, stopped_reason: Option<&str>) -> String {
    let said = stopped_reason.unwrap_or("no reason given");
    match kind {
        Kind::ImageNotFound { image } => format!(
            "image {image} not found ({said}): check that this tag was pushed to the repository, and that the task's execution role may pull from it"
        ),
        Kind::CannotPull { image } => format!(
            "cannot pull image {image} ({said}): check the task's execution role (ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer), the repository's policy, and the tasks' network path to the registry"
        ),
        Kind::ResourceInitialization => format!(
            "the task could not start ({said}): check that the task's execution role may read its secrets and the registry credentials (secretsmanager:GetSecretValue, ssm:GetParameters, ecr:GetAuthorizationToken) and that the tasks reach those services (a NAT gateway or VPC endpoints)"
        ),
        Kind::OutOfMemory { container } => format!(
            "container {container} ran out of memory (exit 137, {said}): raise its memory limit in the task definition, or find what uses the memory"
        ),
        Kind::HealthCheck => format!(
            "health check failed ({said}): the app did not answer its health check in time; see its last log lines, the health check command or path, and its grace period"
        ),
        Kind::Exited { container, code } => format!(
            "essential container {container} exited {code} ({said}): the app stopped at start; see its last log lines"
        ),
        Kind::Placement => format!(
            "ECS is unable to place the tasks ({said}): the cluster lacks capacity (CPU, memory, ports, IPs) or no instance matches the placement constraints"
        ),
        Kind::Other => format!("tasks stopped: {said}"),
    }
}

/// The cause of one stopped task. Pure.
pub(crate) fn cause_of(task: &Task) -> Cause {
    let kind = classify(task);
    Cause {
        task_arn: task.task_arn().unwrap_or_default().to_string(),
        stopped_reason: task.stopped_reason().map(str::to_string),
        stop_code: task.stop_code().map(|c| c.as_str().to_string()),
        health: task.health_status().map(|h| h.as_str().to_string()),
        containers: task
            .containers()
            .iter()
            .map(|c| ContainerState {
                name: c.name().unwrap_or("?").to_string(),
                image: c.image().map(str::to_string),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_string),
                health: c.health_status().map(|h| h.as_str().to_string()),
            })
            .collect(),
        first: words(&kind, task.stopped_reason()),
    }
}

/// A service event saying a task could not be placed, as a cause. Pure.
pub(crate) fn placement_failure(message: &str) -> Option<Cause> {
    message.contains("unable to place a task").then(|| Cause {
        stopped_reason: Some(message.to_string()),
        // The event names the service and the reason; the words group them all as one cause.
        first: words(&Kind::Placement, Some(placement_reason(message))),
        ..Cause::default()
    })
}

/// The part of a placement event after "because" (the reason, without the service's name).
fn placement_reason(message: &str) -> &str {
    message
        .split_once("because ")
        .map_or(message, |(_, r)| r.trim_end_matches('.'))
}

/// The first cause shared by at least `n` of `causes` (in their order), with how many share it.
/// Pure.
pub(crate) fn repeated(causes: &[Cause], n: usize) -> Option<(&Cause, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for c in causes {
        *counts.entry(c.first.as_str()).or_default() += 1;
    }
    causes
        .iter()
        .map(|c| (c, counts[c.first.as_str()]))
        .find(|(_, k)| *k >= n.max(1))
}

/// The cause most of `causes` share (the first of them on a tie), with how many. Pure.
pub(crate) fn most_common(causes: &[Cause]) -> Option<(&Cause, usize)> {
    let mut best: Option<(&Cause, usize)> = None;
    for c in causes {
        let n = causes.iter().filter(|o| o.first == c.first).count();
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((c, n));
        }
    }
    best
}

/// Which stopped tasks belong to the deployment being followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tasks {
    /// A rolling deployment's tasks: `startedBy` is its id (`ecs-svc/...`).
    StartedBy(String),
    /// The tasks a CodeDeploy or ECS blue/green deployment starts for the service: no id of
    /// theirs is on the task, so they are found by their revision (ListTasks by family, then
    /// the revision's ARN), as service tasks (`group: service:...`) created since the deploy began.
    Revision { family: String, since: SystemTime },
}

impl Tasks {
    /// The tasks of a revision's family created since `since` (a CodeDeploy or ECS blue/green
    /// deployment of `task_definition`).
    pub(crate) fn of_revision(task_definition: &str, since: SystemTime) -> Tasks {
        Tasks::Revision {
            family: family_of(task_definition),
            since,
        }
    }
}

/// The family of a task definition ARN (`...:task-definition/web1:8` → `web1`) or
/// `family:revision`. Pure.
pub(crate) fn family_of(task_definition: &str) -> String {
    let short = crate::task_definition::short_task_definition(task_definition);
    short.split(':').next().unwrap_or(short).to_string()
}

/// Whether a described task is one of `tasks` that ran `task_definition`. Pure.
pub(crate) fn belongs(task: &Task, tasks: &Tasks, task_definition: &str) -> bool {
    let same_revision = task
        .task_definition_arn()
        .is_none_or(|a| a == task_definition);
    match tasks {
        Tasks::StartedBy(_) => same_revision,
        Tasks::Revision { since, .. } => {
            let service_task = task.group().is_none_or(|g| g.starts_with("service:"));
            let recent = task
                .created_at()
                .and_then(|t| SystemTime::try_from(*t).ok())
                .is_none_or(|t| t >= *since);
            task.task_definition_arn() == Some(task_definition) && service_task && recent
        }
    }
}

/// The stopped tasks of `tasks` that ran `task_definition`, newest first as ECS lists them (at
/// most 100).
pub(crate) async fn stopped_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    tasks: &Tasks,
    task_definition: &str,
) -> Result<Vec<Task>> {
    let list = ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(DesiredStatus::Stopped);
    let list = match tasks {
        Tasks::StartedBy(by) => list.started_by(by),
        Tasks::Revision { family, .. } => list.family(family),
    };
    let listed = list
        .send()
        .await
        .map_err(|e| Error::aws("ECS", "ListTasks", e))?;
    if listed.task_arns().is_empty() {
        return Ok(Vec::new());
    }
    let described = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(listed.task_arns().iter().take(100).cloned().collect()))
        .send()
        .await
        .map_err(|e| Error::aws("ECS", "DescribeTasks", e))?;
    Ok(described
        .tasks()
        .iter()
        .filter(|t| belongs(t, tasks, task_definition))
        .cloned()
        .collect())
}

/// The `startedBy` of a service deployment's tasks: the deployment's id (`ecs-svc/...`).
pub(crate) fn started_by(deployment_id: &str) -> String {
    if deployment_id.starts_with("ecs-svc/") {
        deployment_id.to_string()
    } else {
        format!("ecs-svc/{deployment_id}")
    }
}

/// Where `container`'s output of task `task_id` lands in CloudWatch Logs: `(group, stream,
/// region)`, from the task definition's log configuration. The awslogs driver writes to
/// `<awslogs-stream-prefix>/<container>/<task id>`; FireLens (`awsfirelens` with Fluent Bit's
/// `cloudwatch_logs` or `cloudwatch` output) to `<log_stream_prefix><container>-firelens-<task
/// id>` or its fixed `log_stream_name`. `None` for another driver, without a stream prefix (the
/// stream is then named by the container's id, unknown here) or with templated names. Pure.
pub(crate) fn awslogs_stream(
    task_definition: &Value,
    container: &str,
    task_id: &str,
) -> Option<(String, String, Option<String>)> {
    let def = task_definition
        .get("containerDefinitions")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?;
    let log = def.get("logConfiguration")?;
    let opt = |k: &str| {
        log.get("options")
            .and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (group, stream, region) = match log.get("logDriver").and_then(Value::as_str)? {
        "awslogs" => (
            opt("awslogs-group")?,
            format!("{}/{container}/{task_id}", opt("awslogs-stream-prefix")?),
            opt("awslogs-region"),
        ),
        "awsfirelens" => {
            let output = opt("Name")?.to_ascii_lowercase();
            if output != "cloudwatch_logs" && output != "cloudwatch" {
                return None;
            }
            let stream = match opt("log_stream_name") {
                Some(name) => name,
                None => format!(
                    "{}{container}-firelens-{task_id}",
                    opt("log_stream_prefix")?
                ),
            };
            (opt("log_group_name")?, stream, opt("region"))
        }
        _ => return None,
    };
    // Fluent Bit fills `$(ecs_task_id)` and friends at run time: not a name to read here.
    if group.contains("$(") || stream.contains("$(") {
        return None;
    }
    Some((group, stream, region))
}

/// The last lines of `lines` that fit in `max_lines` and `max_bytes` (whole lines, trailing
/// newlines dropped), oldest first. Pure.
pub(crate) fn bound_lines(lines: &[String], max_lines: usize, max_bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for l in lines.iter().rev().take(max_lines) {
        let l = l.trim_end_matches(['\n', '\r']);
        if bytes + l.len() + 1 > max_bytes {
            break;
        }
        bytes += l.len() + 1;
        out.push(l.to_string());
    }
    out.reverse();
    out
}

/// Reads the last lines of `stream` in `group` (GetLogEvents from the end), bounded.
pub(crate) async fn log_tail(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Result<Vec<String>> {
    let out = logs
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .start_from_head(false)
        .limit(LOG_LINES as i32)
        .send()
        .await
        .map_err(|e| Error::aws("CloudWatch Logs", "GetLogEvents", e))?;
    let lines: Vec<String> = out
        .events()
        .iter()
        .filter_map(|e| e.message().map(str::to_string))
        .collect();
    Ok(bound_lines(&lines, LOG_LINES, LOG_BYTES))
}

/// What an ECS wait asks on each look: reads the stopped tasks of the new revision at most
/// every [`CHECK_EVERY`], prints each once, counts placement failures among the service events
/// (rolling path), and says when `threshold` of them share a cause.
#[derive(Debug)]
pub struct Watch {
    ecs: aws_sdk_ecs::Client,
    cluster: String,
    tasks: Tasks,
    task_definition: String,
    region: Option<String>,
    label: String,
    /// 0: only read, never fail fast.
    threshold: usize,
    state: Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    last: Option<Instant>,
    printed: HashSet<String>,
    tasks: Vec<Cause>,
    /// Ids of the service events seen (from before the deploy, or counted).
    events: HashSet<String>,
    placements: Vec<Cause>,
    found: Option<Diagnosis>,
    /// A failed read was printed already.
    warned: bool,
}

/// What a [`Watch`] follows: the deployment's tasks and what counts as "too many".
#[derive(Debug, Clone)]
pub struct WatchFor<'a> {
    pub label: &'a str,
    pub cluster: &'a str,
    /// Which stopped tasks are the deployment's.
    pub tasks: Tasks,
    pub task_definition: &'a str,
    pub region: Option<&'a str>,
    pub threshold: usize,
    /// The ids of the service events from before the deploy (not counted).
    pub events_before: HashSet<String>,
}

impl Watch {
    /// A watch of the deployment's stopped tasks.
    pub fn new(ecs: aws_sdk_ecs::Client, w: WatchFor<'_>) -> Watch {
        Watch {
            ecs,
            cluster: w.cluster.to_string(),
            tasks: w.tasks,
            task_definition: w.task_definition.to_string(),
            region: w.region.map(str::to_string),
            label: w.label.to_string(),
            threshold: w.threshold,
            state: Mutex::new(WatchState {
                events: w.events_before,
                ..WatchState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks at the service just described and, when due, at the stopped tasks: the problem to
    /// fail the wait with when `threshold` tasks (or placement failures) share a cause. A failed
    /// read is printed and skipped: the wait goes on as without the watch.
    pub(crate) async fn check(&self, service: &Service) -> Option<String> {
        let placements = {
            let mut s = self.lock();
            for e in service.events().iter().rev() {
                let id = e.id().unwrap_or_default().to_string();
                if s.events.insert(id)
                    && let Some(c) = e.message().and_then(placement_failure)
                {
                    s.placements.push(c);
                }
            }
            s.placements.clone()
        };
        if self.threshold > 0
            && let Some((c, n)) = repeated(&placements, self.threshold)
        {
            return Some(self.found(c.clone(), n, true));
        }
        self.check_tasks().await
    }

    /// For the paths that do not describe the service (CodeDeploy, ECS blue/green): when due,
    /// reads the stopped tasks; the problem to fail with when `threshold` of them share a cause.
    pub(crate) async fn check_tasks(&self) -> Option<String> {
        let due = self.lock().last.is_none_or(|l| l.elapsed() >= CHECK_EVERY);
        if !due {
            return None;
        }
        let causes = self.read_tasks().await;
        if self.threshold == 0 {
            return None;
        }
        let (c, n) = repeated(&causes, self.threshold)?;
        Some(self.found(c.clone(), n, true))
    }

    /// Reads the stopped tasks once, prints the new ones, and hands back every one seen so far.
    async fn read_tasks(&self) -> Vec<Cause> {
        self.lock().last = Some(Instant::now());
        let read =
            stopped_tasks(&self.ecs, &self.cluster, &self.tasks, &self.task_definition).await;
        let mut s = self.lock();
        match read {
            Ok(tasks) => {
                for t in &tasks {
                    let c = cause_of(t);
                    if s.printed.insert(c.task_arn.clone()) {
                        println!("{}: {}", self.label, c.details());
                        s.tasks.push(c);
                    }
                }
            }
            // Said once: a role without ecs:ListTasks would repeat it every look.
            Err(e) if !s.warned => {
                s.warned = true;
                println!(
                    "{}: could not read the stopped tasks (going on without them): {e}",
                    self.label
                );
            }
            Err(_) => {}
        }
        s.tasks.clone()
    }

    fn found(&self, cause: Cause, count: usize, failed_fast: bool) -> String {
        let task_url = (!cause.task_arn.is_empty())
            .then(|| {
                self.region
                    .as_deref()
                    .map(|r| task_url(r, &self.cluster, cause.task_id()))
            })
            .flatten();
        let d = Diagnosis {
            cause,
            count,
            task_url,
            log: None,
        };
        let problem = d.problem(failed_fast);
        self.lock().found = Some(d);
        problem
    }

    /// After a failure the watch did not call (timeout, circuit breaker): the most common cause
    /// among the stopped tasks (read once more) and placement failures, if there is any.
    pub(crate) async fn explain(&self) -> Option<Diagnosis> {
        if let Some(d) = self.found_diagnosis() {
            return Some(d);
        }
        let mut all = self.read_tasks().await;
        all.extend(self.lock().placements.iter().cloned());
        let (c, n) = most_common(&all)?;
        self.found(c.clone(), n, false);
        self.found_diagnosis()
    }

    /// The diagnosis the watch failed the wait with, if it did.
    pub(crate) fn found_diagnosis(&self) -> Option<Diagnosis> {
        self.lock().found.clone()
    }
}

/// Prints a task's last log lines in a log group, redacted.
pub(crate) fn print_log_tail(label: &str, log: &LogTail) {
    let redactor = crate::runner::redact::Redactor::known();
    let _group = crate::runner::console::Group::start(&format!(
        "{label}: last {} log lines of {} ({})",
        log.lines.len(),
        log.stream,
        log.group
    ));
    for l in &log.lines {
        println!("{label}: | {}", redactor.text(l));
    }
}

/// Reads the last log lines of the diagnosed task's container (the first container that
/// exited non-zero, else the first one), when its task definition sends them to awslogs with a
/// stream prefix. A failed read is printed and skipped.
pub(crate) async fn add_log_tail(
    logs: &aws_sdk_cloudwatchlogs::Client,
    region: Option<&str>,
    task_definition: &Value,
    d: &mut Diagnosis,
    label: &str,
) {
    if d.cause.task_arn.is_empty() {
        return;
    }
    let container = d
        .cause
        .containers
        .iter()
        .find(|c| c.exit_code.is_some_and(|e| e != 0))
        .or(d.cause.containers.first());
    let Some(container) = container else { return };
    let Some((group, stream, log_region)) =
        awslogs_stream(task_definition, &container.name, d.cause.task_id())
    else {
        return;
    };
    match log_tail(logs, &group, &stream).await {
        Ok(lines) => {
            let region = log_region.as_deref().or(region);
            d.log = Some(LogTail {
                url: region.map(|r| log_stream_url(r, &group, &stream)),
                group,
                stream,
                lines,
            });
        }
        Err(e) => {
            println!("{label}: could not read the task's log lines from {group}/{stream}: {e}")
        }
    }
}

/// After a failed wait: the cause the stopped tasks tell (the one the wait failed fast on, or
/// the most common one), its task's console link and last log lines, into the report; the
/// error then names that cause (a fail-fast error names it already).
pub(crate) async fn explain_failure(
    aws: &crate::aws::Aws,
    label: &str,
    task_definition: &Value,
    watch: &Watch,
    cause: Error,
    report: &mut crate::outcome::Outcome,
) -> Error {
    let failed_fast = watch.found_diagnosis().is_some();
    let Some(mut d) = watch.explain().await else {
        return cause;
    };
    add_log_tail(
        &aws.logs,
        aws.region.as_deref(),
        task_definition,
        &mut d,
        label,
    )
    .await;
    report.steps.push(format!("cause: {}", d.cause.first));
    if let Some(url) = &d.task_url {
        report.links.push(crate::outcome::Link {
            label: format!("stopped task {}", d.cause.task_id()),
            url: url.clone(),
        });
    }
    if let Some(log) = &d.log {
        print_log_tail(label, log);
        if let Some(url) = &log.url {
            report.links.push(crate::outcome::Link {
                label: format!("log stream {}", log.stream),
                url: url.clone(),
            });
        }
    }
    let problem = d.problem(false);
    report.diagnosis = Some(d);
    match cause {
        Error::Deployment {
            target,
            deployment_id,
            problem: was,
        } if !failed_fast => Error::Deployment {
            target,
            deployment_id,
            problem: format!("{was}; {problem}"),
        },
        other => other,
    }
}

/// The watch of a CodeDeploy or ECS blue/green deployment of `prepared`'s new revision, begun
/// at `since`: the service tasks of that revision (see [`Tasks::Revision`]).
pub(crate) fn of_revision(
    aws: &crate::aws::Aws,
    plan: &crate::plan::AppPlan,
    prepared: &super::Prepared,
    since: SystemTime,
) -> Watch {
    Watch::new(
        aws.ecs.clone(),
        WatchFor {
            label: &plan.app,
            cluster: &prepared.cluster,
            tasks: Tasks::of_revision(&prepared.task_definition_arn, since),
            task_definition: &prepared.task_definition_arn,
            region: aws.region.as_deref(),
            threshold: plan.settings.ecs.fail_fast_after_stopped_tasks,
            events_before: HashSet::new(),
        },
    )
}

/// A deploy's error with a failed deployment explained by `watch` (see [`explain_failure`]);
/// other errors (cancelled, superseded, bad input) as they are.
pub(crate) async fn explain_error(
    aws: &crate::aws::Aws,
    plan: &crate::plan::AppPlan,
    prepared: &super::Prepared,
    watch: &Watch,
    error: Error,
    report: &mut crate::outcome::Outcome,
) -> Error {
    match error {
        cause @ Error::Deployment { .. } => {
            explain_failure(
                aws,
                &plan.app,
                &prepared.task_definition,
                watch,
                cause,
                report,
            )
            .await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Container, HealthStatus, TaskStopCode};
    use serde_json::json;

    fn task(reason: &str, containers: Vec<Container>) -> Task {
        Task::builder()
            .task_arn("arn:aws:ecs:us-east-1:1:task/prod/abc123")
            .stopped_reason(reason)
            .stop_code(TaskStopCode::EssentialContainerExited)
            .set_containers(Some(containers))
            .build()
    }

    fn container(exit: Option<i32>, reason: Option<&str>) -> Container {
        Container::builder()
            .name("web1")
            .image("1.dkr.ecr.us-east-1.amazonaws.com/web1:v2")
            .set_exit_code(exit)
            .set_reason(reason.map(str::to_string))
            .build()
    }

    #[test]
    fn a_missing_image_names_the_image_the_repository_and_the_execution_role() {
        let t = Task::builder()
            .stopped_reason("CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 1.dkr.ecr.us-east-1.amazonaws.com/web1:v2: not found")
            .stop_code(TaskStopCode::TaskFailedToStart)
            .containers(container(None, None))
            .build();
        let kind = classify(&t);
        assert_eq!(
            kind,
            Kind::ImageNotFound {
                image: "1.dkr.ecr.us-east-1.amazonaws.com/web1:v2".into()
            }
        );
        let c = cause_of(&t);
        assert!(
            c.first
                .starts_with("image 1.dkr.ecr.us-east-1.amazonaws.com/web1:v2 not found"),
            "{}",
            c.first
        );
        assert!(c.first.contains("execution role") && c.first.contains("repository"));
    }

    #[test]
    fn a_pull_denied_points_at_the_execution_role() {
        let t = task(
            "CannotPullContainerError: AccessDeniedException: not authorized to perform ecr:GetAuthorizationToken",
            vec![container(None, None)],
        );
        let k = classify(&t);
        assert!(
            matches!(&k, Kind::CannotPull { image } if image.ends_with("web1:v2")),
            "{k:?}"
        );
        assert!(
            cause_of(&t)
                .first
                .contains("execution role (ecr:GetAuthorizationToken")
        );
    }

    #[test]
    fn a_task_that_cannot_read_its_secrets_points_at_the_execution_role_and_the_network() {
        let t = task(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm",
            vec![container(None, None)],
        );
        assert_eq!(classify(&t), Kind::ResourceInitialization);
        let w = cause_of(&t).first;
        assert!(
            w.contains("secretsmanager:GetSecretValue") && w.contains("VPC endpoints"),
            "{w}"
        );
    }

    #[test]
    fn an_essential_container_exiting_non_zero_says_its_name_and_code() {
        let t = task(
            "Essential container in task exited",
            vec![container(Some(1), None)],
        );
        assert_eq!(
            classify(&t),
            Kind::Exited {
                container: "web1".into(),
                code: 1
            }
        );
        let c = cause_of(&t);
        assert!(
            c.first.starts_with("essential container web1 exited 1"),
            "{}",
            c.first
        );
        assert_eq!(c.task_id(), "abc123");
        assert_eq!(
            c.details(),
            "task abc123 stopped (EssentialContainerExited: Essential container in task exited); container web1: exit 1"
        );
    }

    #[test]
    fn out_of_memory_is_told_by_the_reason_or_exit_137() {
        let t = task(
            "Essential container in task exited",
            vec![container(
                Some(137),
                Some("OutOfMemoryError: Container killed due to memory usage"),
            )],
        );
        assert_eq!(
            classify(&t),
            Kind::OutOfMemory {
                container: "web1".into()
            }
        );
        assert!(cause_of(&t).first.contains("ran out of memory"));
        let t = task(
            "Essential container in task exited",
            vec![container(Some(137), None)],
        );
        assert_eq!(
            classify(&t),
            Kind::OutOfMemory {
                container: "web1".into()
            }
        );
    }

    #[test]
    fn a_failed_health_check_is_told_apart_from_an_exit() {
        let mut t = task(
            "Task failed container health checks",
            vec![container(Some(143), None)],
        );
        t.health_status = Some(HealthStatus::Unhealthy);
        assert_eq!(classify(&t), Kind::HealthCheck);
        let c = cause_of(&t);
        assert!(c.first.starts_with("health check failed"), "{}", c.first);
        assert_eq!(c.health.as_deref(), Some("UNHEALTHY"));
        let t = task(
            "Task failed ELB health checks in (target-group arn:...)",
            vec![],
        );
        assert_eq!(classify(&t), Kind::HealthCheck);
    }

    #[test]
    fn placement_failures_come_from_service_events_and_group_as_one_cause() {
        let a = placement_failure("(service web1) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance 1) has insufficient memory available.").unwrap();
        let b = placement_failure("(service web1) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance 1) has insufficient memory available.").unwrap();
        assert!(
            a.first
                .starts_with("ECS is unable to place the tasks (no container instance"),
            "{}",
            a.first
        );
        assert!(placement_failure("(service web1) has reached a steady state.").is_none());
        let causes = [a.clone(), b];
        assert_eq!(
            repeated(&causes, 2).map(|(c, n)| (c.first.clone(), n)),
            Some((a.first, 2))
        );
        assert!(repeated(&causes, 3).is_none());
    }

    #[test]
    fn the_same_cause_must_repeat_to_count() {
        let exit1 = cause_of(&task("x", vec![container(Some(1), None)]));
        let exit2 = cause_of(&task("x", vec![container(Some(2), None)]));
        let causes = [exit1.clone(), exit2.clone(), exit1.clone()];
        assert!(repeated(&causes, 3).is_none());
        assert_eq!(repeated(&causes, 2).map(|(_, n)| n), Some(2));
        assert_eq!(
            repeated(&causes, 1).map(|(c, _)| c.first.clone()),
            Some(exit1.first)
        );
    }

    #[test]
    fn the_awslogs_stream_is_prefix_container_task_id() {
        let td = json!({"containerDefinitions": [{"name": "web1", "logConfiguration": {
            "logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web1",
            "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs"}}}]});
        assert_eq!(
            awslogs_stream(&td, "web1", "abc"),
            Some((
                "/ecs/web1".into(),
                "ecs/web1/abc".into(),
                Some("eu-west-1".into())
            ))
        );
        assert_eq!(awslogs_stream(&td, "other", "abc"), None);
        let no_prefix = json!({"containerDefinitions": [{"name": "web1", "logConfiguration": {
            "logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web1"}}}]});
        assert_eq!(awslogs_stream(&no_prefix, "web1", "abc"), None);
        let splunk = json!({"containerDefinitions": [{"name": "web1", "logConfiguration": {
            "logDriver": "splunk", "options": {}}}]});
        assert_eq!(awslogs_stream(&splunk, "web1", "abc"), None);
    }

    #[test]
    fn log_lines_are_bounded_by_count_and_bytes_keeping_the_last() {
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}\n")).collect();
        let b = bound_lines(&lines, 30, 4096);
        assert_eq!(b.len(), 30);
        assert_eq!(b[0], "line 70");
        assert_eq!(b[29], "line 99");
        let long: Vec<String> = (0..10)
            .map(|i| format!("{i}{}", "x".repeat(1000)))
            .collect();
        let b = bound_lines(&long, 30, 4096);
        assert_eq!(b.len(), 4);
        assert!(b[3].starts_with('9'));
    }

    #[test]
    fn console_links_name_the_task_and_the_stream() {
        assert_eq!(
            task_url("us-east-1", "prod", "abc"),
            "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/tasks/abc/configuration?region=us-east-1"
        );
        assert!(
            log_stream_url("us-east-1", "/ecs/web1", "ecs/web1/abc")
                .ends_with("log-group/$252Fecs$252Fweb1/log-events/ecs$252Fweb1$252Fabc")
        );
        assert_eq!(started_by("ecs-svc/123"), "ecs-svc/123");
        assert_eq!(started_by("123"), "ecs-svc/123");
    }

    #[test]
    fn a_firelens_container_logs_to_the_prefix_its_name_firelens_and_the_task_id() {
        let td = json!({"containerDefinitions": [
            {"name": "web1", "logConfiguration": {"logDriver": "awsfirelens", "options": {
                "Name": "cloudwatch_logs", "region": "eu-west-1",
                "log_group_name": "/ecs/web1", "log_stream_prefix": "from-fluent-bit-"}}},
            {"name": "fixed", "logConfiguration": {"logDriver": "awsfirelens", "options": {
                "Name": "cloudwatch", "log_group_name": "/ecs/web1", "log_stream_name": "all"}}},
            {"name": "templated", "logConfiguration": {"logDriver": "awsfirelens", "options": {
                "Name": "cloudwatch_logs", "log_group_name": "/ecs/web1",
                "log_stream_name": "web1-$(ecs_task_id)"}}},
            {"name": "s3", "logConfiguration": {"logDriver": "awsfirelens", "options": {
                "Name": "s3", "bucket": "logs"}}}
        ]});
        assert_eq!(
            awslogs_stream(&td, "web1", "abc123"),
            Some((
                "/ecs/web1".into(),
                "from-fluent-bit-web1-firelens-abc123".into(),
                Some("eu-west-1".into())
            ))
        );
        assert_eq!(
            awslogs_stream(&td, "fixed", "abc123"),
            Some(("/ecs/web1".into(), "all".into(), None))
        );
        assert_eq!(awslogs_stream(&td, "templated", "abc123"), None);
        assert_eq!(awslogs_stream(&td, "s3", "abc123"), None);
    }

    #[test]
    fn deployment_tasks_are_found_by_revision_service_group_and_start_time() {
        use aws_sdk_ecs::primitives::DateTime;
        let td = "arn:aws:ecs:us-east-1:1:task-definition/web1:8";
        assert_eq!(family_of(td), "web1");
        assert_eq!(family_of("web1:8"), "web1");
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let tasks = Tasks::of_revision(td, since);
        let t = |def: &str, group: &str, created: i64| {
            Task::builder()
                .task_definition_arn(def)
                .group(group)
                .created_at(DateTime::from_secs(created))
                .build()
        };
        assert!(belongs(&t(td, "service:web1", 1_001), &tasks, td));
        assert!(
            !belongs(&t(td, "service:web1", 999), &tasks, td),
            "from before the deploy"
        );
        assert!(
            !belongs(&t(td, "family:web1", 1_001), &tasks, td),
            "a one-off task"
        );
        let older = "arn:aws:ecs:us-east-1:1:task-definition/web1:7";
        assert!(
            !belongs(&t(older, "service:web1", 1_001), &tasks, td),
            "blue's task"
        );
    }
}
