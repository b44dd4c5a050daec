//! The one-off task before the update (`run-task-command`, e.g. `python manage.py migrate`, or
//! the deploy action's `run-task: true`): run the new task definition once (with that command,
//! or with the `run-task-*` overrides, network, launch type and tags), wait for it to stop, and
//! fail the deploy (before the service is touched) unless it exited 0.

use std::time::Duration;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, LaunchType, NetworkConfiguration, Task,
    TaskOverride,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Prepared;
use super::diagnosis::{self, Kind, classify, words};
use super::poll::{self, Ended, Failure, Look, Wait};
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::inputs::RunTask;
use crate::outcome::Outcome;

/// How often the task is looked at while it runs.
const POLL: Duration = Duration::from_secs(3);

/// How often once ECS is stopping it (the exit code is seconds away).
const STOPPING_POLL: Duration = Duration::from_secs(1);

/// The interval before the next look at a task in `last_status`. Pure.
pub(crate) fn interval(last_status: &str) -> Duration {
    match last_status {
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" => STOPPING_POLL,
        _ => POLL,
    }
}

/// How the one-off task ended, judged from DescribeTasks. Pure, so each case is tested.
pub(crate) fn verdict(task: &Task, container: &str) -> std::result::Result<(), String> {
    let c = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(container));
    let exit = c.and_then(|c| c.exit_code());
    if exit == Some(0) {
        return Ok(());
    }
    let mut why = match exit {
        Some(code) => format!("exited with code {code}"),
        None => "stopped without an exit code".to_string(),
    };
    if let Some(r) = task.stopped_reason() {
        why.push_str(&format!("; stopped reason: {r}"));
    }
    if let Some(r) = c.and_then(|c| c.reason()) {
        why.push_str(&format!("; container reason: {r}"));
    }
    // What to do about a task that could not pull or ran out of memory; an exit code is the
    // command's own answer and needs no more words.
    let kind = classify(task);
    if matches!(
        kind,
        Kind::ImageNotFound { .. } | Kind::CannotPull { .. } | Kind::OutOfMemory { .. }
    ) {
        why.push_str(&format!("; {}", words(&kind, task.stopped_reason())));
    }
    Err(why)
}

/// What the one-off task runs: `run-task-command` (the deployed container with that command,
/// always waited for) or `run-task: true` (the task definition as it is, with the deploy
/// action's `run-task-*` settings; waited for with `wait-for-task-stopped`).
#[derive(Debug, Clone, Copy)]
pub enum OneOff<'a> {
    Command(&'a [String]),
    Task(&'a RunTask),
}

impl OneOff<'_> {
    /// The input that asked for it, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            OneOff::Command(c) => format!("run-task-command `{}`", c.join(" ")),
            OneOff::Task(_) => "run-task".into(),
        }
    }
}

/// Runs the one-off task once in `prepared`'s new task definition and (unless `run-task`
/// without `wait-for-task-stopped`) waits for it to stop, for at most `timeout`, looking at
/// least every `cap` (`wait-max-delay-seconds`). The task's ARN goes into the report as
/// soon as it started (the `run-task-arn` output), so a task that then fails can still be
/// looked up.
pub(crate) async fn run_once(
    aws: &Aws,
    prepared: &Prepared,
    what: OneOff<'_>,
    (timeout, cap): (Duration, Duration),
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<()> {
    let err = |problem: String| Error::Service {
        cluster: prepared.cluster.clone(),
        service: prepared.service.clone(),
        problem,
    };
    let live = &prepared.live;
    let (overrides, started_by) = match what {
        OneOff::Command(command) => (
            Some(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name(&prepared.container)
                            .set_command(Some(command.to_vec()))
                            .build(),
                    )
                    .build(),
            ),
            "ecs-deploy".to_string(),
        ),
        OneOff::Task(t) => (
            (!t.container_overrides.is_empty()).then(|| {
                TaskOverride::builder()
                    .set_container_overrides(Some(t.container_overrides.clone()))
                    .build()
            }),
            t.started_by.clone(),
        ),
    };
    let network = match what {
        OneOff::Task(t) if !t.subnets.is_empty() => Some(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .set_subnets(Some(t.subnets.clone()))
                        .set_security_groups(Some(t.security_groups.clone()))
                        .assign_public_ip(AssignPublicIp::from(
                            t.assign_public_ip.as_deref().unwrap_or("DISABLED"),
                        ))
                        .build()
                        .map_err(|e| err(format!("run-task-subnets: {e}")))?,
                )
                .build(),
        ),
        _ => live.network_configuration().cloned(),
    };
    let mut req = aws
        .ecs
        .run_task()
        .cluster(&prepared.cluster)
        .task_definition(&prepared.task_definition_arn)
        .count(1)
        .started_by(started_by)
        .set_overrides(overrides)
        .set_network_configuration(network)
        .set_platform_version(live.platform_version().map(str::to_string));
    match what {
        OneOff::Task(t) if t.launch_type.is_some() => {
            req = req.launch_type(LaunchType::from(
                t.launch_type.as_deref().unwrap_or("FARGATE"),
            ));
        }
        OneOff::Task(t) if !t.capacity_provider_strategy.is_empty() => {
            req = req.set_capacity_provider_strategy(Some(t.capacity_provider_strategy.clone()));
        }
        // A service uses a launch type or a capacity provider strategy, never both.
        _ if live.capacity_provider_strategy().is_empty() => {
            req = req.set_launch_type(live.launch_type().cloned());
        }
        _ => {
            req = req
                .set_capacity_provider_strategy(Some(live.capacity_provider_strategy().to_vec()));
        }
    }
    if let OneOff::Task(t) = what {
        for (k, v) in &t.tags {
            req = req.tags(aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
        }
        if let Some(volume) = &t.volume {
            req = req.volume_configurations(volume.clone());
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| Error::aws("ECS", "RunTask", e))?;
    let Some(task_arn) = out.tasks().first().and_then(|t| t.task_arn()) else {
        let why = out
            .failures()
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f.reason().unwrap_or("unknown"),
                    f.detail().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(err(format!(
            "the one-off task ({}) could not start: {why}; the service was not updated",
            what.describe()
        )));
    };
    let task_arn = task_arn.to_string();
    report.run_task_arns.push(task_arn.clone());
    if let OneOff::Task(t) = what
        && !t.wait
    {
        println!(
            "one-off task {task_arn} started (run-task); not waiting for it (wait-for-task-stopped: false)"
        );
        return Ok(());
    }
    println!(
        "one-off task {task_arn} started: {} (service not updated until it succeeds)",
        what.describe()
    );
    let fail = |problem: String| err(problem);
    let wait = Wait {
        label: "one-off task",
        what: format!("one-off task {task_arn}"),
        where_to_look: format!(
            "the cluster's tasks in the ECS console (cluster {})",
            prepared.cluster
        ),
        deadline: Instant::now() + timeout,
        cancel: Some(cancel),
        cap,
        fail: &fail,
    };
    let look = async |at: Instant| {
        poll::at(at).await;
        let described = aws
            .ecs
            .describe_tasks()
            .cluster(&prepared.cluster)
            .tasks(&task_arn)
            .send()
            .await
            .map_err(|e| Failure::aws("ECS", "DescribeTasks", e))?;
        let task = described.tasks().first();
        let status = task
            .and_then(Task::last_status)
            .unwrap_or("not listed yet")
            .to_string();
        let seen = match task {
            Some(t) if t.last_status() == Some("STOPPED") => {
                Look::Done(verdict(t, &prepared.container).map_err(|why| (why, t.clone())))
            }
            _ => Look::Running(status.clone()),
        };
        Ok((seen, status))
    };
    let show = |_: Option<&String>, status: &String, elapsed: Duration| {
        println!(
            "one-off task {task_arn}: {status} ({} s)",
            elapsed.as_secs()
        );
    };
    let why = match poll::until(&wait, &mut None, |s: &String, _| interval(s), look, show).await? {
        Ended::Done(Ok(())) => {
            println!("one-off task {task_arn} exited 0");
            return Ok(());
        }
        Ended::Done(Err((why, task))) => {
            let shown = explain(aws, prepared, &task, report).await;
            return Err(err(format!(
                "the one-off task ({}) {why}; the service was not updated{shown}",
                what.describe()
            )));
        }
        Ended::Cancelled => "cancelled",
        Ended::TimedOut => "timed out",
    };
    let _ = aws
        .ecs
        .stop_task()
        .cluster(&prepared.cluster)
        .task(&task_arn)
        .reason(format!("ecs-deploy: {why}"))
        .send()
        .await;
    let problem = format!(
        "the one-off task {task_arn} {why} before it stopped (it was stopped); the service was not updated"
    );
    Err(if why == "cancelled" {
        Error::Cancelled { what: problem }
    } else {
        err(problem)
    })
}

/// A failed one-off task, explained as a failed deployment's tasks are: its cause, its console
/// link and its container's last log lines (printed, and in the report's diagnosis, so the
/// summary and the messages show them). Answers what to add to the error.
async fn explain(aws: &Aws, prepared: &Prepared, task: &Task, report: &mut Outcome) -> String {
    let cause = diagnosis::cause_of(task);
    let task_url = aws
        .region
        .as_deref()
        .map(|r| diagnosis::task_url(r, &prepared.cluster, cause.task_id()));
    let mut d = diagnosis::Diagnosis {
        cause,
        count: 1,
        task_url,
        log: None,
    };
    diagnosis::add_log_tail(
        &aws.logs,
        aws.region.as_deref(),
        &prepared.task_definition,
        &mut d,
        "one-off task",
    )
    .await;
    let shown = match &d.log {
        Some(log) if !log.lines.is_empty() => {
            diagnosis::print_log_tail("one-off task", log);
            if let Some(url) = &log.url {
                report.links.push(crate::outcome::Link {
                    label: format!("log stream {}", log.stream),
                    url: url.clone(),
                });
            }
            format!(" (its last {} log lines are above)", log.lines.len())
        }
        _ => String::new(),
    };
    report.diagnosis = Some(d);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::Container;

    #[test]
    fn only_an_exit_code_of_zero_in_our_container_passes() {
        let task = |code: Option<i32>| {
            Task::builder()
                .last_status("STOPPED")
                .stopped_reason("Essential container in task exited")
                .containers(Container::builder().name("sidecar").exit_code(0).build())
                .containers(Container::builder().name("web").set_exit_code(code).build())
                .build()
        };
        assert_eq!(verdict(&task(Some(0)), "web"), Ok(()));
        let e = verdict(&task(Some(3)), "web").unwrap_err();
        assert!(
            e.contains("exited with code 3") && e.contains("Essential container"),
            "{e}"
        );
        assert!(
            verdict(&task(None), "web")
                .unwrap_err()
                .contains("without an exit code")
        );
    }

    #[test]
    fn a_one_off_task_that_cannot_pull_says_what_to_check() {
        let task = Task::builder()
            .stopped_reason("CannotPullContainerError: pull access denied for r/web")
            .containers(Container::builder().name("web").image("r/web:v2").build())
            .build();
        let e = verdict(&task, "web").unwrap_err();
        assert!(
            e.contains("stopped without an exit code")
                && e.contains("cannot pull image r/web:v2")
                && e.contains("execution role"),
            "{e}"
        );
    }

    #[test]
    fn a_task_being_stopped_is_looked_at_every_second() {
        assert_eq!(interval("RUNNING"), POLL);
        assert_eq!(interval("PROVISIONING"), POLL);
        assert_eq!(interval("DEPROVISIONING"), STOPPING_POLL);
    }
}
