//! Blue/green and canary through AWS CodeDeploy (services whose deployment controller is
//! `CODE_DEPLOY`): AppSpec, CreateDeployment, lifecycle progress, StopDeployment rollback.
//!
//! The story: build the AppSpec (the `codedeploy-appspec` file with the new task definition
//! filled in, or one generated from the service's load balancer) and check it against the task
//! definition; check the application and deployment group belong to this service; wait for any
//! unfinished deployment of the group (never stack two); create ours; poll it and its ECS target,
//! printing every lifecycle and traffic change; on timeout or cancellation stop it with
//! rollback and wait until traffic is back on the original task set.

use std::time::Duration;

use aws_sdk_codedeploy::types::{
    AppSpecContent, DeploymentInfo, DeploymentStatus, RevisionLocation, RevisionLocationType,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use aws_sdk_ecs::types::Service;

use super::Prepared;
use super::appspec::{self, AppSpec, ContainerPorts, Expected};
use super::codedeploy_progress::{
    Outcome, Snapshot, UNFINISHED_STATUSES, changes, console_url, default_names, describe_status,
    outcome, short_name, total_wait,
};
use super::rollback::follow_limits;
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::plan::AppPlan;
use crate::report::{AppReport, Link, Status};

/// How often and how long the deployment is watched. `deploy` takes it from the settings;
/// tests shorten it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Pause between two polls of GetDeployment / GetDeploymentTarget.
    pub poll: Duration,
    /// How long our deployment may take before it is stopped and rolled back (`wait-for-minutes`).
    pub timeout: Duration,
    /// How long to wait for another unfinished deployment of the same group before giving up.
    pub queue_limit: Duration,
    /// How long to wait, after a stop or a failure, for traffic to be back on the original tasks.
    pub rollback_limit: Duration,
}

impl Timing {
    /// The timing for a real run: poll every 15 s (as the AWS CLI waiter does), `wait-for-minutes`
    /// for our deployment, at most 10 minutes behind another deployment, 10 minutes for rollback.
    pub fn from_minutes(wait_for_minutes: u64) -> Timing {
        Timing {
            poll: Duration::from_secs(15),
            timeout: Duration::from_secs(wait_for_minutes.saturating_mul(60)),
            queue_limit: Duration::from_secs(600),
            rollback_limit: Duration::from_secs(600),
        }
    }
}

/// Deploys `prepared` through CodeDeploy; fills the report's deployment fields and status.
pub async fn deploy(
    aws: &Aws,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut AppReport,
) -> Result<()> {
    let timing = Timing::from_minutes(plan.settings.wait_for_minutes);
    deploy_with(aws, plan, prepared, cancel, report, timing).await
}

/// [`deploy`] with an explicit [`Timing`] (tests poll fast and time out in seconds).
pub async fn deploy_with(
    aws: &Aws,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut AppReport,
    timing: Timing,
) -> Result<()> {
    report.deployment_kind = Some("codedeploy".into());
    let s = &plan.settings;
    if !prepared.changed && !prepared.redeploy {
        step(
            report,
            format!(
                "task definition unchanged ({}): no CodeDeploy deployment started; set force-new-deployment: true to deploy it again",
                prepared.task_definition_arn
            ),
        );
        report.status = Some(Status::Succeeded);
        return Ok(());
    }
    // The application and group were read and checked in the preflight; the AppSpec is
    // rendered from what is known (pure), so nothing is read again here.
    let checked = prepared.codedeploy.as_ref().ok_or_else(|| Error::Service {
        cluster: prepared.cluster.clone(),
        service: prepared.service.clone(),
        problem: "reached the CodeDeploy path without its preflight check of the application and deployment group; run the whole action (the preflight reads them) rather than this step alone".into(),
    })?;
    let application = checked.application.clone();
    let group = checked.group.clone();
    let target_name = format!("CodeDeploy {application}/{group}");
    let spec = appspec_for(
        plan,
        &prepared.live,
        &prepared.container,
        prepared.container_port,
        &task_definition_containers(&prepared.task_definition),
        &prepared.task_definition_arn,
    )?;
    let content = spec.render()?;
    let timing = Timing {
        timeout: total_wait(timing.timeout, checked.ready_wait, checked.termination_wait),
        ..timing
    };
    wait_for_others(aws, &application, &group, cancel, timing, report).await?;

    let description = s
        .codedeploy_deployment_description
        .clone()
        .unwrap_or_else(|| {
            format!(
                "{} {} ({}) by ecs-deploy-action",
                plan.app, plan.version.value, prepared.task_definition_arn
            )
        });
    let created = aws
        .codedeploy
        .create_deployment()
        .application_name(&application)
        .deployment_group_name(&group)
        .set_deployment_config_name(s.codedeploy_deployment_config.clone())
        .description(description)
        .revision(
            RevisionLocation::builder()
                .revision_type(RevisionLocationType::AppSpecContent)
                .app_spec_content(AppSpecContent::builder().content(content).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| Error::aws("CodeDeploy", "CreateDeployment", e))?;
    let id = created
        .deployment_id()
        .ok_or_else(|| Error::Deployment {
            target: target_name.clone(),
            deployment_id: "(none)".into(),
            problem: "CreateDeployment answered without a deployment id; look for the deployment in the CodeDeploy console".into(),
        })?
        .to_string();
    report.deployment_id = Some(id.clone());
    if let Some(region) = &aws.region {
        report.links.push(Link {
            label: "CodeDeploy deployment".into(),
            url: console_url(region, &id),
        });
    }
    step(
        report,
        format!(
            "created deployment {id} ({application}/{group}, {})",
            s.codedeploy_deployment_config
                .as_deref()
                .unwrap_or("the group's deployment config")
        ),
    );

    if !s.wait_for_service_stability {
        // As aws-actions/amazon-ecs-deploy-task-definition does: created, not followed.
        step(
            report,
            format!(
                "not waiting for deployment {id} (wait-for-service-stability: false): follow it in the CodeDeploy console"
            ),
        );
        report.status = Some(Status::Succeeded);
        return Ok(());
    }
    step(
        report,
        format!(
            "watching it for up to {} (wait-for-minutes plus the group's own waits)",
            human(timing.timeout)
        ),
    );
    let watch = Watch {
        aws,
        id: &id,
        target: &target_name,
        rollback_on_failure: s.rollback_on_failure,
        timing,
    };
    watch.run(cancel, report).await
}

/// Records a step in the report and prints it, so the log and the job summary tell the same story.
fn step(report: &mut AppReport, line: String) {
    println!("codedeploy: {line}");
    report.steps.push(line);
}

/// The AppSpec to send for task definition `arn`: the user's file (task definition filled in; a
/// hooks-only file gets its resources generated) or one generated from the service, checked
/// against the task definition's containers and the service's load balancer. Pure: the
/// preflight calls it with a placeholder ARN before anything is registered, the deploy with the
/// registered one.
pub fn appspec_for(
    plan: &AppPlan,
    live: &Service,
    container: &str,
    container_port: Option<i32>,
    containers: &[ContainerPorts],
    arn: &str,
) -> Result<AppSpec> {
    let service_targets: Vec<(String, i32)> = live
        .load_balancers()
        .iter()
        .filter_map(|lb| Some((lb.container_name()?.to_string(), lb.container_port()?)))
        .collect();
    let generated_target = || -> Result<(String, i32)> {
        if let Some(t) = service_targets.first() {
            return Ok(t.clone());
        }
        match container_port {
            Some(port) => Ok((container.to_string(), port)),
            None => Err(Error::Service {
                cluster: plan
                    .deploy
                    .as_ref()
                    .map(|d| d.cluster.clone())
                    .unwrap_or_default(),
                service: plan
                    .deploy
                    .as_ref()
                    .map(|d| d.service.clone())
                    .unwrap_or_default(),
                problem: format!(
                    "has no load balancer container and port, and container {container} maps no port, so no AppSpec can be generated; give `codedeploy-appspec` with LoadBalancerInfo (ContainerName, ContainerPort)"
                ),
            }),
        }
    };
    let file = plan.deploy.as_ref().and_then(|d| d.appspec_file.as_ref());
    // A problem of the user's AppSpec file points at it (and at the line when it does not parse).
    let in_file = |e: Error| match file {
        Some((path, text)) => e.in_file(path, crate::location::yaml_error_at(text)),
        None => e,
    };
    let spec = match file {
        Some((path, text)) => {
            let parsed = appspec::parse(&path.display().to_string(), text).map_err(in_file)?;
            if appspec::has_resources(&parsed) {
                parsed.with_task_definition(arn).map_err(in_file)?
            } else {
                let (container, port) = generated_target()?;
                let hooks = appspec::hooks(&parsed).map_err(in_file)?;
                let mut spec = appspec::generate(arn, &container, port, &hooks);
                spec.format = parsed.format;
                spec.source_name = format!("{} (resources generated)", parsed.source_name);
                spec
            }
        }
        None => {
            let (container, port) = generated_target()?;
            appspec::generate(arn, &container, port, &[])
        }
    };
    spec.validate(&Expected {
        task_definition_arn: arn,
        containers,
        service_targets: &service_targets,
    })
    .map_err(in_file)?;
    Ok(spec)
}

/// The containers and port mappings of a task definition (raw JSON, as rendered). Pure.
pub fn task_definition_containers(td: &serde_json::Value) -> Vec<ContainerPorts> {
    td.get("containerDefinitions")
        .and_then(serde_json::Value::as_array)
        .map(|defs| {
            defs.iter()
                .map(|c| ContainerPorts {
                    name: c
                        .get("name")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    ports: c
                        .get("portMappings")
                        .and_then(serde_json::Value::as_array)
                        .map(|ps| {
                            ps.iter()
                                .filter_map(|p| p.get("containerPort")?.as_i64())
                                .filter_map(|p| i32::try_from(p).ok())
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The CodeDeploy application and deployment group a service deploys through, as the preflight
/// found them, with the group's own waits in minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDeployTarget {
    pub application: String,
    pub group: String,
    /// Minutes the group waits before traffic is rerouted (deployment ready option).
    pub ready_wait: i32,
    /// Minutes the group keeps the original task set after success.
    pub termination_wait: i32,
}

/// The application and group names for a plan: the inputs, else the names the ECS console gives
/// them (AppECS-<cluster>-<service>, DgpECS-<cluster>-<service>).
pub fn target_names(plan: &AppPlan, cluster: &str, service: &str) -> (String, String) {
    let (default_app, default_group) = default_names(cluster, service);
    let s = &plan.settings;
    (
        s.codedeploy_application.clone().unwrap_or(default_app),
        s.codedeploy_deployment_group
            .clone()
            .unwrap_or(default_group),
    )
}

/// Checks, as `aws ecs deploy` does, that the application and deployment group exist, are for
/// ECS, and deploy this very service. Returns the group's own waits in minutes (before traffic
/// is rerouted, before the original task set is terminated).
pub async fn check_group(
    aws: &Aws,
    cluster: &str,
    service: &str,
    application: &str,
    group: &str,
) -> Result<CodeDeployTarget> {
    let conflict = |problem: String| Error::Service {
        cluster: cluster.to_string(),
        service: service.to_string(),
        problem,
    };
    let app = aws
        .codedeploy
        .get_application()
        .application_name(application)
        .send()
        .await
        .map_err(|e| {
            conflict(format!(
                "CodeDeploy application {application} cannot be read ({}); set `codedeploy-application` to the application of this service (default AppECS-<cluster>-<service>)",
                crate::error::error_chain(&e)
            ))
        })?;
    let platform = app
        .application()
        .and_then(|a| a.compute_platform())
        .map(|p| p.as_str().to_string());
    if platform.as_deref() != Some("ECS") {
        return Err(conflict(format!(
            "CodeDeploy application {application} has compute platform {}, not ECS; use the application created for this ECS service",
            platform.unwrap_or_else(|| "unknown".into())
        )));
    }
    let dg = aws
        .codedeploy
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
        .map_err(|e| {
            conflict(format!(
                "CodeDeploy deployment group {group} of {application} cannot be read ({}); set `codedeploy-deployment-group` (default DgpECS-<cluster>-<service>)",
                crate::error::error_chain(&e)
            ))
        })?;
    let info = dg.deployment_group_info();
    let services = info.map(|i| i.ecs_services()).unwrap_or_default();
    let cluster_ok =
        |c: Option<&str>| c.is_some_and(|c| c == cluster || short_name(c) == short_name(cluster));
    let service_ok =
        |s: Option<&str>| s.is_some_and(|s| s == service || short_name(s) == short_name(service));
    if !services
        .iter()
        .any(|s| cluster_ok(s.cluster_name()) && service_ok(s.service_name()))
    {
        let listed: Vec<String> = services
            .iter()
            .map(|s| {
                format!(
                    "{}/{}",
                    s.cluster_name().unwrap_or("?"),
                    s.service_name().unwrap_or("?")
                )
            })
            .collect();
        return Err(conflict(format!(
            "CodeDeploy deployment group {application}/{group} deploys {}, not this service; set `codedeploy-deployment-group` to this service's group",
            if listed.is_empty() {
                "no ECS service".into()
            } else {
                listed.join(", ")
            }
        )));
    }
    let blue_green = info.and_then(|i| i.blue_green_deployment_configuration());
    Ok(CodeDeployTarget {
        application: application.to_string(),
        group: group.to_string(),
        ready_wait: blue_green
            .and_then(|b| b.deployment_ready_option())
            .map(|r| r.wait_time_in_minutes())
            .unwrap_or(0),
        termination_wait: blue_green
            .and_then(|b| b.terminate_blue_instances_on_deployment_success())
            .map(|t| t.termination_wait_time_in_minutes())
            .unwrap_or(0),
    })
}

/// Waits (up to `timing.queue_limit`) for unfinished deployments of the group to end, so ours is
/// never stacked behind or on top of another one; fails clearly when they do not end in time.
async fn wait_for_others(
    aws: &Aws,
    application: &str,
    group: &str,
    cancel: &CancellationToken,
    timing: Timing,
    report: &mut AppReport,
) -> Result<()> {
    let target = format!("CodeDeploy {application}/{group}");
    let deadline = Instant::now() + timing.queue_limit;
    let mut announced = false;
    loop {
        let listed = aws
            .codedeploy
            .list_deployments()
            .application_name(application)
            .deployment_group_name(group)
            .set_include_only_statuses(Some(
                UNFINISHED_STATUSES
                    .iter()
                    .map(|s| DeploymentStatus::from(*s))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| Error::aws("CodeDeploy", "ListDeployments", e))?;
        let others = listed.deployments().to_vec();
        if others.is_empty() {
            return Ok(());
        }
        if !announced {
            step(
                report,
                format!(
                    "waiting for unfinished deployment {} of {application}/{group} before starting ours",
                    others.join(", ")
                ),
            );
            announced = true;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Deployment {
                target,
                deployment_id: others.join(", "),
                problem: format!(
                    "is still unfinished after {}; a second deployment was not started. Wait for it, or stop it (aws deploy stop-deployment --deployment-id {} --auto-rollback-enabled) and run again",
                    human(timing.queue_limit),
                    others[0]
                ),
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                report.status = Some(Status::Cancelled);
                return Err(Error::Cancelled {
                    what: format!("while waiting for deployment {} of {application}/{group}; nothing was deployed", others.join(", ")),
                });
            }
            _ = tokio::time::sleep(timing.poll.min(deadline - now)) => {}
        }
    }
}

/// `90 s`, `10 min`: a duration as the log shows it.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else if secs >= 1 {
        format!("{secs} s")
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Why our deployment is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Timeout,
    Cancelled,
}

/// How a rollback is followed: until when, how often, and whether the job was cancelled (then
/// the deadline is short and reaching it is not an error: CodeDeploy goes on without us).
#[derive(Debug, Clone, Copy)]
struct Follow {
    deadline: Instant,
    poll: Duration,
    cancelled: bool,
}

impl Follow {
    fn new(timing: Timing, cancelled: bool) -> Follow {
        let (limit, poll) = follow_limits(timing.rollback_limit, timing.poll, cancelled);
        Follow {
            deadline: Instant::now() + limit,
            poll,
            cancelled,
        }
    }
}

/// Where a followed rollback ended.
enum Rolled {
    /// Finished; says how traffic ended up.
    Done(String),
    /// Still running when a cancelled run had to report.
    StillRunning,
}

/// Watching one created deployment to its end.
struct Watch<'a> {
    aws: &'a Aws,
    id: &'a str,
    target: &'a str,
    rollback_on_failure: bool,
    timing: Timing,
}

impl Watch<'_> {
    fn error(&self, problem: String) -> Error {
        Error::Deployment {
            target: self.target.to_string(),
            deployment_id: self.id.to_string(),
            problem,
        }
    }

    /// Polls until the deployment ends, the time is up, or the job is cancelled.
    async fn run(&self, cancel: &CancellationToken, report: &mut AppReport) -> Result<()> {
        let deadline = Instant::now() + self.timing.timeout;
        let mut last: Option<Snapshot> = None;
        let mut target_id: Option<String> = None;
        loop {
            let (info, snapshot) = self.poll(self.id, &mut target_id).await?;
            for line in changes(last.as_ref(), &snapshot) {
                step(report, line);
            }
            match outcome(&info) {
                Outcome::Running => {}
                Outcome::Succeeded => {
                    report.status = Some(Status::Succeeded);
                    return Ok(());
                }
                Outcome::Ended {
                    status,
                    reason,
                    rollback_deployment,
                    rollback_message,
                } => {
                    let at = snapshot
                        .failed_event()
                        .or_else(|| last.as_ref().and_then(Snapshot::failed_event))
                        .map(|e| format!(" at {e}"))
                        .unwrap_or_default();
                    let what = format!("{}{at}: {reason}", describe_status(&status));
                    return self
                        .after_failure(what, rollback_deployment, rollback_message, report)
                        .await;
                }
            }
            last = Some(snapshot);
            let now = Instant::now();
            if now >= deadline {
                return self.stop(StopReason::Timeout, report).await;
            }
            tokio::select! {
                _ = cancel.cancelled() => return self.stop(StopReason::Cancelled, report).await,
                _ = tokio::time::sleep(self.timing.poll.min(deadline - now)) => {}
            }
        }
    }

    /// One look at a deployment: GetDeployment, then its ECS target once it has one.
    async fn poll(
        &self,
        id: &str,
        target_id: &mut Option<String>,
    ) -> Result<(DeploymentInfo, Snapshot)> {
        let info = self
            .aws
            .codedeploy
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| {
                self.error(format!(
                    "cannot be read ({}); it may still be running: check the CodeDeploy console",
                    crate::error::error_chain(&Error::aws("CodeDeploy", "GetDeployment", e))
                ))
            })?
            .deployment_info
            .ok_or_else(|| self.error("GetDeployment answered without deployment info".into()))?;
        // A Created or Queued deployment has no target yet (and moto never gets further).
        let has_target = !matches!(
            info.status(),
            None | Some(DeploymentStatus::Created) | Some(DeploymentStatus::Queued)
        );
        let mut target = None;
        if has_target {
            if target_id.is_none() {
                let listed = self
                    .aws
                    .codedeploy
                    .list_deployment_targets()
                    .deployment_id(id)
                    .send()
                    .await
                    .map_err(|e| Error::aws("CodeDeploy", "ListDeploymentTargets", e))?;
                *target_id = listed.target_ids().first().cloned();
            }
            if let Some(t) = target_id.as_deref() {
                let got = self
                    .aws
                    .codedeploy
                    .get_deployment_target()
                    .deployment_id(id)
                    .target_id(t)
                    .send()
                    .await
                    .map_err(|e| Error::aws("CodeDeploy", "GetDeploymentTarget", e))?;
                target = got.deployment_target.and_then(|d| d.ecs_target);
            }
        }
        let snapshot = Snapshot::from_sdk(&info, target.as_ref());
        Ok((info, snapshot))
    }

    /// Our deployment failed or was stopped by CodeDeploy: rolled back when CodeDeploy started a
    /// rollback and it finished, failed otherwise.
    async fn after_failure(
        &self,
        what: String,
        rollback_deployment: Option<String>,
        rollback_message: Option<String>,
        report: &mut AppReport,
    ) -> Result<()> {
        let follow = Follow::new(self.timing, false);
        match rollback_deployment {
            Some(rb) => match self.await_rollback(&rb, follow, report).await {
                Ok(Rolled::Done(done)) => {
                    report.status = Some(Status::RolledBack);
                    report.rollback = Some(
                        rollback_message
                            .map(|m| format!("{m} ({done})"))
                            .unwrap_or(done),
                    );
                    Err(self.error(format!(
                        "{what}; CodeDeploy rolled back to the original task set"
                    )))
                }
                // Not cancelled: the wait ends in Done or an error; StillRunning is only a guard.
                Ok(Rolled::StillRunning) => {
                    report.status = Some(Status::Failed);
                    report.rollback = Some(format!("rollback deployment {rb} still running"));
                    Err(self.error(format!(
                        "{what}; the rollback deployment {rb} has not finished: check it in the console"
                    )))
                }
                Err(e) => {
                    report.status = Some(Status::Failed);
                    report.rollback = Some(e.to_string());
                    Err(self.error(format!("{what}; the rollback did not finish: {e}")))
                }
            },
            None => {
                report.status = Some(Status::Failed);
                report.rollback = rollback_message.clone();
                Err(self.error(format!(
                    "{what}; CodeDeploy did not roll back{} (enable automatic rollback on the deployment group to have traffic moved back on failure)",
                    rollback_message.map(|m| format!(": {m}")).unwrap_or_default()
                )))
            }
        }
    }

    /// Waits for CodeDeploy's rollback deployment `rb` to finish; says how traffic ended up.
    /// After a cancellation (`follow.cancelled`) it gives up quietly at the deadline instead.
    async fn await_rollback(
        &self,
        rb: &str,
        follow: Follow,
        report: &mut AppReport,
    ) -> Result<Rolled> {
        step(report, format!("rollback deployment {rb} started"));
        let mut last: Option<Snapshot> = None;
        let mut target_id = None;
        loop {
            let (info, snapshot) = self.poll(rb, &mut target_id).await?;
            for line in changes(last.as_ref(), &snapshot) {
                step(report, format!("rollback: {line}"));
            }
            match outcome(&info) {
                Outcome::Succeeded => {
                    let traffic = if snapshot.traffic_on_blue() {
                        "traffic is back on the original (blue) task set"
                    } else {
                        "rollback deployment succeeded"
                    };
                    return Ok(Rolled::Done(format!("{rb}: {traffic}")));
                }
                Outcome::Ended { status, reason, .. } => {
                    return Err(Error::Deployment {
                        target: self.target.to_string(),
                        deployment_id: rb.to_string(),
                        problem: format!(
                            "(the rollback) {}: {reason}; check the service's traffic in the console",
                            describe_status(&status)
                        ),
                    });
                }
                Outcome::Running => {}
            }
            last = Some(snapshot);
            let now = Instant::now();
            if now >= follow.deadline {
                if follow.cancelled {
                    return Ok(Rolled::StillRunning);
                }
                return Err(Error::Deployment {
                    target: self.target.to_string(),
                    deployment_id: rb.to_string(),
                    problem: format!(
                        "(the rollback) has not finished after {}; it keeps running in CodeDeploy: check it in the console",
                        human(self.timing.rollback_limit)
                    ),
                });
            }
            tokio::time::sleep(follow.poll.min(follow.deadline - now)).await;
        }
    }

    /// Stops our deployment (StopDeployment, auto rollback per `rollback-on-failure`) and waits
    /// until it has ended and, with rollback, until traffic is back on the original task set.
    async fn stop(&self, reason: StopReason, report: &mut AppReport) -> Result<()> {
        let why = match reason {
            StopReason::Timeout => format!(
                "did not finish within {} (wait-for-minutes)",
                human(self.timing.timeout)
            ),
            StopReason::Cancelled => "the job was cancelled".to_string(),
        };
        step(
            report,
            format!(
                "stopping deployment {} ({why}){}",
                self.id,
                if self.rollback_on_failure {
                    ", with rollback"
                } else {
                    ", without rollback (rollback-on-failure is false)"
                }
            ),
        );
        let failed_status = match reason {
            StopReason::Timeout => Status::Failed,
            StopReason::Cancelled => Status::Cancelled,
        };
        let end = |this: &Self, report: &mut AppReport, status: Status, text: String| {
            report.status = Some(status);
            match reason {
                StopReason::Timeout => Err(this.error(text)),
                StopReason::Cancelled => Err(Error::Cancelled {
                    what: format!("CodeDeploy deployment {}: {text}", this.id),
                }),
            }
        };
        let stopped = self
            .aws
            .codedeploy
            .stop_deployment()
            .deployment_id(self.id)
            .auto_rollback_enabled(self.rollback_on_failure)
            .send()
            .await;
        if let Err(e) = stopped {
            let msg = crate::error::error_chain(&Error::aws("CodeDeploy", "StopDeployment", e));
            report.rollback = Some(format!("StopDeployment failed: {msg}"));
            return end(
                self,
                report,
                Status::Failed,
                format!(
                    "{why}, and stopping it failed ({msg}); it may still be running: stop it in the CodeDeploy console"
                ),
            );
        }
        // Wait for our deployment to end (CodeDeploy starts the rollback while stopping it).
        // After a cancellation only briefly: the job is killed soon, and CodeDeploy finishes the
        // stop and the rollback on its own.
        let follow = Follow::new(self.timing, matches!(reason, StopReason::Cancelled));
        let still_running = |this: &Self, report: &mut AppReport| {
            let text = format!(
                "StopDeployment{} was sent; the run was cancelled, so it reports before CodeDeploy has finished (it goes on in the background): check {} in the console",
                if this.rollback_on_failure {
                    " with rollback"
                } else {
                    ""
                },
                this.id
            );
            report.rollback = Some(text.clone());
            end(this, report, Status::Cancelled, format!("{why}; {text}"))
        };
        let mut target_id = None;
        let info = loop {
            let (info, _) = self.poll(self.id, &mut target_id).await?;
            if !matches!(outcome(&info), Outcome::Running) {
                break info;
            }
            let now = Instant::now();
            if now >= follow.deadline {
                if follow.cancelled {
                    return still_running(self, report);
                }
                return end(
                    self,
                    report,
                    Status::Failed,
                    format!(
                        "{why}; StopDeployment was sent but the deployment has not ended after {}: check it in the console",
                        human(self.timing.rollback_limit)
                    ),
                );
            }
            tokio::time::sleep(follow.poll.min(follow.deadline - now)).await;
        };
        match outcome(&info) {
            Outcome::Succeeded => {
                // It finished before the stop took effect: the new version is live.
                step(
                    report,
                    format!(
                        "deployment {} succeeded before the stop took effect",
                        self.id
                    ),
                );
                report.status = Some(Status::Succeeded);
                match reason {
                    StopReason::Timeout => Ok(()),
                    StopReason::Cancelled => Err(Error::Cancelled {
                        what: format!(
                            "the job was cancelled, but CodeDeploy deployment {} had already succeeded: the new version is live",
                            self.id
                        ),
                    }),
                }
            }
            Outcome::Ended {
                rollback_deployment: Some(rb),
                rollback_message,
                ..
            } => match self.await_rollback(&rb, follow, report).await {
                Ok(Rolled::StillRunning) => still_running(self, report),
                Ok(Rolled::Done(done)) => {
                    report.rollback = Some(
                        rollback_message
                            .map(|m| format!("{m} ({done})"))
                            .unwrap_or(done.clone()),
                    );
                    end(
                        self,
                        report,
                        Status::RolledBack,
                        format!("{why}; stopped and rolled back ({done})"),
                    )
                }
                Err(e) => {
                    report.rollback = Some(e.to_string());
                    end(
                        self,
                        report,
                        Status::Failed,
                        format!("{why}; stopped, but the rollback did not finish: {e}"),
                    )
                }
            },
            _ => {
                let status = info.status().map(|s| s.as_str()).unwrap_or("Unknown");
                let traffic = if self.rollback_on_failure {
                    "CodeDeploy reported no rollback deployment; check the service's traffic in the console"
                } else {
                    "no rollback was asked for: traffic stays where CodeDeploy left it"
                };
                report.rollback = Some(traffic.to_string());
                end(
                    self,
                    report,
                    failed_status,
                    format!("{why}; deployment {}: {traffic}", describe_status(status)),
                )
            }
        }
    }
}
