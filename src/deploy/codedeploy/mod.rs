//! Blue/green and canary through AWS CodeDeploy (services whose deployment controller is
//! `CODE_DEPLOY`): AppSpec, CreateDeployment, lifecycle progress, StopDeployment rollback.
//!
//! The story: build the AppSpec (the `codedeploy-appspec` file with the new task definition
//! filled in, or one generated from the service's load balancer) and check it against the task
//! definition; check the application and deployment group belong to this service; wait for any
//! unfinished deployment of the group (never stack two); create ours; poll it and its ECS target,
//! printing every lifecycle and traffic change; on timeout or cancellation stop it with
//! rollback and wait until traffic is back on the original task set.

pub mod progress;
mod rollback;

use std::time::{Duration, SystemTime};

use aws_sdk_codedeploy::types::{
    AppSpecContent, DeploymentInfo, DeploymentStatus, EcsTarget, LifecycleEventStatus,
    RevisionLocation, RevisionLocationType,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use aws_sdk_ecs::types::Service;

pub use self::progress::Policy;
use self::progress::{
    EventTimes, Routing, Snapshot, Stage, UNFINISHED_STATUSES, Verdict, changes, console_url,
    default_names, describe_status, group_waits, interval, outcome, reads_target, routing_of_name,
    routing_of_sdk, short_name, stage, total_wait,
};
use super::Prepared;
use super::appspec::{self, AppSpec, ContainerPorts, Expected};
use super::diagnosis::{self, Watch as TaskWatch};
use super::follow_limits;
use super::poll::{self, Batcher, Ended, Failure, Kind, Look, Wait};
use super::poll::{Poller, deployments_batcher};
use super::strategy::{Ended as StrategyEnded, Followed, Strategy};
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::inputs::RolloutSettings;
use crate::outcome::{DeployPath, Link, Outcome, Status};
use crate::plan::AppPlan;
use crate::verify::{Gate, Pace};

pub use super::timing::{Cadence, Timing};

/// How long to wait, after a stop or a failure, for traffic to be back on the original tasks.
const ROLLBACK_LIMIT: Duration = Duration::from_secs(600);

/// This path's timing in a real run: [`Timing::of`] the rollout settings, with at most 10
/// minutes for traffic to come back after a stop or a failure.
pub fn timing(rollout: &RolloutSettings) -> Timing {
    Timing {
        rollback_timeout: ROLLBACK_LIMIT,
        ..Timing::of(rollout)
    }
}

/// Deploys `prepared` through CodeDeploy; fills the report's deployment fields and status.
/// `poller` is the run's: apps deploying together share their looks.
pub(crate) async fn deploy(
    aws: &Aws,
    poller: &Poller,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<()> {
    let timing = timing(&plan.settings.rollout).with_poller(poller);
    deploy_with(aws, plan, prepared, cancel, report, timing).await
}

/// [`deploy`] with an explicit [`Timing`] (tests poll fast and time out in seconds).
pub async fn deploy_with(
    aws: &Aws,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut Outcome,
    timing: Timing,
) -> Result<()> {
    let since = SystemTime::now();
    let gate = plan.settings.verify.is_set().then(|| {
        Gate::new(
            &plan.settings.verify,
            aws.cloudwatch.clone(),
            Pace::default(),
        )
    });
    let strategy = CodeDeploy {
        aws,
        plan,
        prepared,
        cancel,
        tasks: diagnosis::of_revision(aws, plan, prepared, since),
        timing,
        gate,
    };
    super::strategy::drive_into(&strategy, report).await
}

/// The CodeDeploy path of one service: what [`Strategy`]'s phases need.
pub(crate) struct CodeDeploy<'a> {
    aws: &'a Aws,
    plan: &'a AppPlan,
    prepared: &'a Prepared,
    cancel: &'a CancellationToken,
    /// The new revision's stopped tasks, read while the deployment runs (fail fast, diagnosis).
    tasks: TaskWatch,
    timing: Timing,
    /// The verification gate run once traffic is on the replacement task set (`verify-*`).
    gate: Option<Gate>,
}

/// A created CodeDeploy deployment.
pub(crate) struct Started {
    id: String,
    target: String,
    created_at: Instant,
    /// The group's ready wait and termination wait (minutes), as the preflight read them.
    group_minutes: (i32, i32),
    timing: Timing,
}

/// Why following the deployment stopped short.
pub(crate) enum Stopped {
    /// We stop it: a timeout, a cancellation, the new tasks keep stopping, or the verification
    /// failed while traffic was on the replacement task set.
    Stop(StopReason),
    /// The verification failed after CodeDeploy had already ended the deployment successfully
    /// (no look saw traffic on the replacement while it could still be stopped): nothing is left
    /// to stop, and the original task set is gone. `headline` says what the gate saw.
    Finished { headline: String },
    /// CodeDeploy ended it (failed or stopped): `what` says how, and its own rollback, if any.
    Ended {
        what: String,
        rollback_deployment: Option<String>,
        rollback_message: Option<String>,
    },
}

impl CodeDeploy<'_> {
    /// The watch on a started deployment.
    fn watch<'s>(&'s self, started: &'s Started) -> Watch<'s> {
        let deployments = match started.timing.poller.as_ref().and_then(Poller::deployments) {
            Some(shared) => shared.clone(),
            None => deployments_batcher(self.aws.codedeploy.clone()),
        };
        Watch {
            aws: self.aws,
            id: &started.id,
            target: &started.target,
            rollback_on_failure: self.plan.settings.rollout.rollback_on_failure,
            timing: started.timing.clone(),
            deployments,
            created_at: started.created_at,
            group_minutes: started.group_minutes,
            tasks: &self.tasks,
            cap: started.timing.max_delay,
            app: &self.plan.app,
            gate: self.gate.as_ref(),
        }
    }
}

impl Strategy for CodeDeploy<'_> {
    type Started = Started;
    type Stopped = Stopped;

    fn path(&self) -> DeployPath {
        DeployPath::CodeDeploy
    }

    fn follows(&self) -> bool {
        self.plan.settings.rollout.wait_for_service_stability
    }

    fn unchanged(&self) -> Option<String> {
        (!self.prepared.changed && !self.prepared.redeploy).then(|| {
            format!(
                "task definition unchanged ({}): no CodeDeploy deployment started; set force-new-deployment: true to deploy it again",
                self.prepared.task_definition_arn
            )
        })
    }

    async fn start(&self, report: &mut Outcome) -> std::result::Result<Started, StrategyEnded> {
        let (aws, plan, prepared) = (self.aws, self.plan, self.prepared);
        let s = &plan.settings;
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
            timeout: total_wait(
                self.timing.timeout,
                checked.ready_wait,
                checked.termination_wait,
            ),
            ..self.timing.clone()
        };
        wait_for_others(aws, (&application, &group), self.cancel, &timing, report).await?;

        let description = s
            .codedeploy
            .deployment_description
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
            .set_deployment_config_name(s.codedeploy.deployment_config.clone())
            .description(description)
            .revision(
                RevisionLocation::builder()
                    .revision_type(RevisionLocationType::AppSpecContent)
                    .app_spec_content(
                        AppSpecContent::builder()
                            // As amazon-ecs-deploy-task-definition sends it: CodeDeploy checks
                            // the content against it.
                            .sha256(crate::deploy::appspec::sha256_hex(&content))
                            .content(content)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| Error::aws("CodeDeploy", "CreateDeployment", e))?;
        let created_at = Instant::now();
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
                s.codedeploy
                    .deployment_config
                    .as_deref()
                    .unwrap_or("the group's deployment config")
            ),
        );
        if self.follows() {
            step(
                report,
                format!(
                    "watching it for up to {} (wait-for-minutes plus the group's own waits)",
                    human(timing.timeout)
                ),
            );
        } else {
            // As aws-actions/amazon-ecs-deploy-task-definition does: created, not followed.
            step(
                report,
                format!(
                    "not waiting for deployment {id} (wait-for-service-stability: false): follow it in the CodeDeploy console"
                ),
            );
        }
        Ok(Started {
            id,
            target: target_name,
            created_at,
            group_minutes: (checked.ready_wait, checked.termination_wait),
            timing,
        })
    }

    async fn follow(
        &self,
        started: &mut Started,
        report: &mut Outcome,
    ) -> Result<Followed<Stopped>> {
        self.watch(started).run(self.cancel, report).await
    }

    async fn roll_back(
        &self,
        started: Started,
        stopped: Stopped,
        report: &mut Outcome,
    ) -> StrategyEnded {
        let watch = self.watch(&started);
        let ended = match stopped {
            Stopped::Stop(reason) => watch.stop(reason, report).await,
            Stopped::Finished { headline } => {
                report.rollback = Some(format!(
                    "not rolled back: CodeDeploy deployment {} had succeeded and deleted the original task set before the verification ended; deploy the previous version to go back",
                    started.id
                ));
                StrategyEnded::failed(watch.verification_failed(headline))
            }
            Stopped::Ended {
                what,
                rollback_deployment,
                rollback_message,
            } => {
                watch
                    .after_failure(what, rollback_deployment, rollback_message, report)
                    .await
            }
        };
        if ended.status == Status::RolledBack {
            super::deregister_after_rollback(self.aws, self.plan, self.prepared, report).await;
        }
        ended
    }

    async fn explain(&self, error: Error, report: &mut Outcome) -> Error {
        let (aws, plan, prepared) = (self.aws, self.plan, self.prepared);
        diagnosis::explain_error(aws, plan, prepared, &self.tasks, error, report).await
    }
}

/// Records a step in the report and prints it, so the log and the job summary tell the same story.
fn step(report: &mut Outcome, line: String) {
    println!("codedeploy: {line}");
    report.steps.push(line);
}

/// The AppSpec to send for task definition `arn`: the user's file (task definition filled in; a
/// hooks-only file gets its resources generated) or one generated from the service, checked
/// against the task definition's containers and the service's load balancer. Pure: the
/// preflight calls it with a placeholder ARN before anything is registered, the deploy with the
/// registered one.
pub(crate) fn appspec_for(
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
pub(crate) fn task_definition_containers(td: &serde_json::Value) -> Vec<ContainerPorts> {
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
    /// The group's own deployment config (`deploymentConfigName`), used when
    /// `codedeploy-deployment-config` is not given.
    pub config: Option<String>,
    /// Whether the group has a test listener (a target group pair's `testTrafficRoute`): it
    /// sends all its traffic to the replacement task set from AllowTestTraffic on.
    pub test_listener: bool,
}

/// The application and group names for a plan: the inputs, else the names the ECS console gives
/// them (AppECS-<cluster>-<service>, DgpECS-<cluster>-<service>).
pub fn target_names(plan: &AppPlan, cluster: &str, service: &str) -> (String, String) {
    let (default_app, default_group) = default_names(cluster, service);
    let s = &plan.settings;
    (
        s.codedeploy.application.clone().unwrap_or(default_app),
        s.codedeploy
            .deployment_group
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
        config: info
            .and_then(|i| i.deployment_config_name())
            .map(str::to_string),
        test_listener: info.and_then(|i| i.load_balancer_info()).is_some_and(|lb| {
            lb.target_group_pair_info_list().iter().any(|p| {
                p.test_traffic_route()
                    .is_some_and(|r| !r.listener_arns().is_empty())
            })
        }),
    })
}

/// The deployment config a deployment of `target` runs with: `codedeploy-deployment-config`,
/// else the group's, else CodeDeploy's default for ECS (all at once).
fn config_of<'t>(plan: &'t AppPlan, target: &'t CodeDeployTarget) -> &'t str {
    plan.settings
        .codedeploy
        .deployment_config
        .as_deref()
        .or(target.config.as_deref())
        .unwrap_or("CodeDeployDefault.ECSAllAtOnce")
}

/// The preflight's check of a CodeDeploy deployment that verifies (`verify-*`): the gate runs
/// while production traffic is on the replacement task set and the deployment can still be
/// stopped, so a deployment config and group that give no such moment (all at once, no
/// termination wait) are refused, naming the setting to change; a window shorter than the
/// gate's probes is a note (`Ok(Some)`). A custom config's steps are read (GetDeploymentConfig).
/// `verify-test-url` needs the group's test listener: without one it would reach no new task.
pub async fn check_bake(
    aws: &Aws,
    plan: &AppPlan,
    target: &CodeDeployTarget,
) -> Result<Option<String>> {
    if plan.settings.verify.test_url.is_some() && !target.test_listener {
        return Err(Error::Verify {
            input: "verify-test-url",
            problem: format!(
                "app {} deploys by CodeDeploy and deployment group {}/{} has no test listener (loadBalancerInfo.targetGroupPairInfoList[].testTrafficRoute), so the test URL would not reach the replacement task set; add a test listener to the group, or leave verify-test-url out and the gate GETs verify-url",
                plan.app, target.application, target.group
            ),
        });
    }
    let config = config_of(plan, target);
    let routing = match routing_of_name(config) {
        Some(r) => Some(r),
        None => aws
            .codedeploy
            .get_deployment_config()
            .deployment_config_name(config)
            .send()
            .await
            .ok()
            .and_then(|out| {
                out.deployment_config_info()
                    .and_then(|i| i.traffic_routing_config())
                    .and_then(routing_of_sdk)
            }),
    };
    let gate = Pace::default().gap * plan.settings.verify.requests;
    let gate = if plan.settings.verify.url.is_some() {
        gate
    } else {
        Duration::ZERO
    };
    progress::check_bake_window(
        config,
        routing,
        &format!("{}/{}", target.application, target.group),
        target.termination_wait,
        gate,
    )
    .map_err(|problem| Error::Verify {
        input: "verify-url / verify-alarms",
        problem: format!("app {} {problem}", plan.app),
    })
}

/// Waits (up to `timing.queue_limit`) for unfinished deployments of the group to end, so ours is
/// never stacked behind or on top of another one; fails clearly when they do not end in time.
async fn wait_for_others(
    aws: &Aws,
    (application, group): (&str, &str),
    cancel: &CancellationToken,
    timing: &Timing,
    report: &mut Outcome,
) -> Result<()> {
    let target = format!("CodeDeploy {application}/{group}");
    let fail = |problem: String| Error::Deployment {
        target: target.clone(),
        deployment_id: "(the group's unfinished deployments)".into(),
        problem,
    };
    let wait = Wait {
        label: "codedeploy",
        what: format!("the deployments of {application}/{group}"),
        where_to_look: "the deployment group in the CodeDeploy console".into(),
        deadline: Instant::now() + timing.queue_limit,
        cancel: Some(cancel),
        cap: Duration::MAX,
        fail: &fail,
    };
    let look = async |at: Instant| {
        poll::at(at).await;
        let listed = aws
            .codedeploy
            .list_deployments()
            .application_name(application)
            .deployment_group_name(group)
            .set_include_only_statuses(Some(UNFINISHED_STATUSES.to_vec()))
            .send()
            .await
            .map_err(|e| Failure::aws("CodeDeploy", "ListDeployments", e))?;
        let others = listed.deployments().to_vec();
        let seen = if others.is_empty() {
            Look::Done(())
        } else {
            Look::Running(())
        };
        Ok((seen, others))
    };
    let show = |_: Option<&Vec<String>>, others: &Vec<String>, _| {
        if !others.is_empty() {
            step(
                report,
                format!(
                    "waiting for unfinished deployment {} of {application}/{group} before starting ours",
                    others.join(", ")
                ),
            );
        }
    };
    let mut others = None;
    let queue = |_: &(), _| Policy::of(timing.cadence).queue;
    let ended = poll::until(&wait, &mut others, queue, look, show).await?;
    let others = others.unwrap_or_default();
    match ended {
        Ended::Done(()) => Ok(()),
        Ended::TimedOut => Err(Error::Deployment {
            target,
            deployment_id: others.join(", "),
            problem: format!(
                "is still unfinished after {}; a second deployment was not started. Wait for it, or stop it (aws deploy stop-deployment --deployment-id {} --auto-rollback-enabled) and run again",
                human(timing.queue_limit),
                others.first().map_or("<id>", String::as_str)
            ),
        }),
        Ended::Cancelled => Err(Error::Cancelled {
            what: format!(
                "while waiting for deployment {} of {application}/{group}; nothing was deployed",
                others.join(", ")
            ),
        }),
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopReason {
    Timeout,
    Cancelled,
    /// `fail-fast-after-stopped-tasks` tasks of the new revision stopped with one cause.
    FailedFast,
    /// The verification gate failed while production traffic was on the replacement task set;
    /// `headline` says what it saw.
    Verification {
        headline: String,
    },
}

/// How a rollback is followed: until when, how often at most, and whether the job was cancelled
/// (then the deadline is short and reaching it is not an error: CodeDeploy goes on without us).
#[derive(Debug, Clone, Copy)]
struct Follow {
    deadline: Instant,
    cap: Duration,
    cancelled: bool,
}

impl Follow {
    fn new(timing: &Timing, cancelled: bool) -> Follow {
        let (limit, cap) = follow_limits(timing.rollback_timeout, Duration::MAX, cancelled);
        Follow {
            deadline: Instant::now() + limit,
            cap,
            cancelled,
        }
    }
}

/// What the watch keeps between looks at one deployment: its ECS target, when its lifecycle
/// events started and ended on the runner's clock, since when it has its status, its traffic
/// routing and the stage the last look saw.
struct Tracker<'a> {
    id: &'a str,
    target_id: Option<String>,
    target: Option<EcsTarget>,
    /// When CreateDeployment answered (our deployment only): with the deployment's create time
    /// it places AWS's timestamps on the runner's clock, whatever the two clocks say.
    created_at: Option<Instant>,
    anchor: Option<(Instant, SystemTime)>,
    times: EventTimes,
    status: Option<(String, Instant)>,
    /// `None` until traffic starts moving; then what the deployment config says, if known.
    routing: Option<Option<Routing>>,
    stage: Stage,
    /// The last lifecycle event seen Failed.
    failed_at: Option<String>,
}

impl<'a> Tracker<'a> {
    fn new(id: &'a str, created_at: Option<Instant>) -> Tracker<'a> {
        Tracker {
            id,
            target_id: None,
            target: None,
            created_at,
            anchor: None,
            times: EventTimes::new(),
            status: None,
            routing: None,
            stage: Stage::Starting,
            failed_at: None,
        }
    }

    /// Records when each lifecycle event started and ended: from AWS's timestamps when the
    /// anchor places them, else when a look first saw it.
    fn note_times(&mut self, now: Instant) {
        let Some(target) = &self.target else { return };
        let local = |t: Option<&aws_smithy_types::DateTime>| -> Option<Instant> {
            let (at, server) = self.anchor?;
            let t = SystemTime::try_from(*t?).ok()?;
            match t.duration_since(server) {
                Ok(after) => Some(at + after),
                Err(before) => at.checked_sub(before.duration()),
            }
        };
        for e in target.lifecycle_events() {
            let Some(name) = e.lifecycle_event_name() else {
                continue;
            };
            let status = e.status().map(|s| s.as_str()).unwrap_or("Pending");
            let seen = self.times.entry(name.to_string()).or_default();
            let started = status != "Pending";
            let ended = matches!(status, "Succeeded" | "Failed" | "Skipped");
            if started {
                seen.0 = local(e.start_time()).or(seen.0).or(Some(now));
            }
            if ended {
                seen.1 = local(e.end_time()).or(seen.1).or(Some(now));
            }
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
    /// Answers GetDeployment, shared with the run's other waiters.
    deployments: Batcher<DeploymentInfo>,
    /// When CreateDeployment answered.
    created_at: Instant,
    /// The group's ready wait and termination wait (minutes), as the preflight read them.
    group_minutes: (i32, i32),
    /// The new revision's stopped tasks, read while the deployment runs (fail fast, diagnosis).
    tasks: &'a TaskWatch,
    /// The longest pause between two looks (`wait-max-delay-seconds`).
    cap: Duration,
    /// The app deployed, for the verification's error.
    app: &'a str,
    /// The verification gate, run once traffic is on the replacement task set (`verify-*`).
    gate: Option<&'a Gate>,
}

/// What one look of the follow found that ends the current wait.
enum Seen {
    /// The deployment ended (succeeded, failed, stopped).
    Ended(Box<DeploymentInfo>),
    /// The new revision's tasks keep stopping for one reason.
    FailedFast,
    /// Production traffic is on the replacement task set and the gate has not run yet.
    OnGreen,
}

impl Watch<'_> {
    fn error(&self, problem: String) -> Error {
        self.error_of(self.id, problem)
    }

    /// The error of a failed verification of this deployment.
    fn verification_failed(&self, headline: String) -> Error {
        Error::VerificationFailed {
            target: format!("{} ({} deployment {})", self.app, self.target, self.id),
            headline,
        }
    }

    fn error_of(&self, id: &str, problem: String) -> Error {
        Error::Deployment {
            target: self.target.to_string(),
            deployment_id: id.to_string(),
            problem,
        }
    }

    /// The frame of a wait on deployment `id`.
    fn wait<'w>(
        &self,
        id: &str,
        deadline: Instant,
        cancel: Option<&'w CancellationToken>,
        cap: Duration,
        fail: &'w (dyn Fn(String) -> Error + Sync),
    ) -> Wait<'w> {
        Wait {
            label: "codedeploy",
            what: format!("CodeDeploy deployment {id}"),
            where_to_look: match &self.aws.region {
                Some(region) => console_url(region, id),
                None => "the deployment in the CodeDeploy console".into(),
            },
            deadline,
            cancel,
            cap,
            fail,
        }
    }

    /// Polls until the deployment ends, the time is up, or the job is cancelled; with the
    /// verification gate, runs it once at the first look that sees production traffic on the
    /// replacement task set, and stops there when it fails.
    ///
    /// What the gate relies on, as CodeDeploy runs an ECS blue/green deployment: AllowTraffic
    /// moves production traffic to the replacement (green) task set, all at once or in the
    /// canary or linear steps of the deployment config, and the ECS target's task sets show the
    /// weights as they move; after AfterAllowTraffic the deployment stays InProgress (its target
    /// Succeeded) for the group's termination wait, keeping the original task set, and only then
    /// ends Succeeded and deletes it. Until then StopDeployment with `autoRollbackEnabled`
    /// stops it and CodeDeploy reroutes traffic to the original task set in a rollback
    /// deployment of its own (our deployment ends Stopped, naming it in `rollbackInfo`). An
    /// all-at-once config with no termination wait ends the deployment the moment traffic
    /// moves: the preflight refuses verify inputs there ([`check_bake`]).
    async fn run(
        &self,
        cancel: &CancellationToken,
        report: &mut Outcome,
    ) -> Result<Followed<Stopped>> {
        let fail = |problem: String| self.error(problem);
        let wait = self.wait(
            self.id,
            Instant::now() + self.timing.timeout,
            Some(cancel),
            self.cap,
            &fail,
        );
        let mut tracker = Tracker::new(self.id, Some(self.created_at));
        let policy = &Policy::of(self.timing.cadence);
        let mut last: Option<Snapshot> = None;
        // The gate runs once: it is taken when a look sees traffic on green.
        let mut gate = self.gate;
        let info = loop {
            let verifying = gate.is_some();
            let ended = poll::until(
                &wait,
                &mut last,
                |stage: &Stage, _| interval(policy, *stage, Instant::now()),
                async |at: Instant| {
                    let (seen, snapshot) = self.look(&mut tracker, at).await?;
                    let seen = match seen {
                        Look::Done(info) => Look::Done(Seen::Ended(Box::new(info))),
                        Look::Running(_) if verifying && snapshot.serving_green() => {
                            Look::Done(Seen::OnGreen)
                        }
                        // The new tasks keep stopping for one reason: stop now, not at the timeout.
                        Look::Running(_) if self.tasks.check_tasks().await.is_some() => {
                            Look::Done(Seen::FailedFast)
                        }
                        Look::Running(stage) => Look::Running(stage),
                    };
                    Ok((seen, snapshot))
                },
                |before, now, _| {
                    for line in changes(before, now) {
                        step(report, line);
                    }
                },
            )
            .await?;
            match ended {
                Ended::Done(Seen::Ended(info)) => break *info,
                Ended::Done(Seen::OnGreen) => {
                    if let Some(g) = gate.take()
                        && let Some(stop) = self.verify(g, cancel, report).await
                    {
                        return Ok(Followed::Stopped(Stopped::Stop(stop)));
                    }
                }
                Ended::Done(Seen::FailedFast) => {
                    return Ok(Followed::Stopped(Stopped::Stop(StopReason::FailedFast)));
                }
                Ended::TimedOut => {
                    return Ok(Followed::Stopped(Stopped::Stop(StopReason::Timeout)));
                }
                Ended::Cancelled => {
                    return Ok(Followed::Stopped(Stopped::Stop(StopReason::Cancelled)));
                }
            }
        };
        match outcome(&info) {
            Verdict::Succeeded => {
                let Some(g) = gate else {
                    return Ok(Followed::Succeeded);
                };
                // No look saw traffic on green while the deployment could still be stopped
                // (its window was shorter than a poll): verify anyway, for the record.
                step(
                    report,
                    format!(
                        "deployment {} succeeded before a look saw traffic on the replacement task set; verifying now, when it can no longer be stopped",
                        self.id
                    ),
                );
                match self.verify(g, cancel, report).await {
                    Some(StopReason::Verification { headline }) => {
                        Ok(Followed::Stopped(Stopped::Finished { headline }))
                    }
                    _ => Ok(Followed::Succeeded),
                }
            }
            Verdict::Ended {
                status,
                reason,
                rollback_deployment,
                rollback_message,
            } => {
                let at = tracker
                    .failed_at
                    .as_ref()
                    .map(|e| format!(" at {e}"))
                    .unwrap_or_default();
                let what = format!("{}{at}: {reason}", describe_status(&status));
                Ok(Followed::Stopped(Stopped::Ended {
                    what,
                    rollback_deployment,
                    rollback_message,
                }))
            }
            // A look answers Ended only for a deployment that ended.
            Verdict::Running => Err(self.error("ended in an unknown state".into())),
        }
    }

    /// Runs the gate once and records it (a step, the outcome's verification). Why to stop
    /// the deployment, if anything: the verification failed, or the job was cancelled while
    /// the gate looked (a cancellation, not a verdict on the new version).
    async fn verify(
        &self,
        gate: &Gate,
        cancel: &CancellationToken,
        report: &mut Outcome,
    ) -> Option<StopReason> {
        println!(
            "codedeploy: production traffic is on the replacement task set of deployment {}: verifying",
            self.id
        );
        // The test listener, when given, sends the gate's GETs to the replacement alone; the
        // production URL reaches it by the traffic share (10% in a canary's first step).
        let failed = super::strategy::run_gate(gate, gate.test_url(), cancel, report).await;
        if cancel.is_cancelled() {
            return Some(StopReason::Cancelled);
        }
        failed.map(|headline| StopReason::Verification { headline })
    }

    /// One look at a deployment: GetDeployment, then its ECS target once it has one and its
    /// lifecycle or traffic may have moved. Done once the deployment has ended.
    async fn look(
        &self,
        tracker: &mut Tracker<'_>,
        at: Instant,
    ) -> std::result::Result<(Look<DeploymentInfo, Stage>, Snapshot), Failure> {
        let id = tracker.id;
        let answer = self.deployments.look("", id, at).await;
        // Answered before our own look was due: another app's call. Its status is news; its
        // target is read on our own schedule only.
        let early = Instant::now() < at;
        let info = answer
            .map_err(|e| {
                let f = e.failure();
                match f.kind {
                    Kind::Fatal => Failure::fatal(self.error_of(
                        id,
                        format!(
                            "cannot be read ({}); it may still be running: check the CodeDeploy console",
                            f.error
                        ),
                    )),
                    _ => f,
                }
            })?
            .ok_or_else(|| {
                Failure::fatal(
                    self.error_of(id, "GetDeployment answered without deployment info".into()),
                )
            })?;
        let now = Instant::now();
        let status = info.status().map_or("Unknown", |s| s.as_str()).to_string();
        let changed = tracker.status.as_ref().map(|s| s.0.as_str()) != Some(status.as_str());
        if changed {
            tracker.status = Some((status.clone(), now));
        }
        if tracker.anchor.is_none()
            && let (Some(local), Some(created)) = (tracker.created_at, info.create_time())
            && let Ok(server) = SystemTime::try_from(*created)
        {
            tracker.anchor = Some((local, server));
        }
        // A Created or Queued deployment has no target yet (and moto never gets further).
        let has_target = !matches!(
            info.status(),
            None | Some(DeploymentStatus::Created) | Some(DeploymentStatus::Queued)
        );
        let read_target = tracker.target.is_none()
            || changed
            || (!early && reads_target(&Policy::of(self.timing.cadence), tracker.stage, now));
        if has_target && read_target {
            self.read_target(tracker).await?;
        }
        tracker.note_times(now);
        let snapshot = Snapshot::from_sdk(&info, tracker.target.as_ref());
        if let Some(e) = snapshot.failed_event() {
            tracker.failed_at = Some(e.to_string());
        }
        if !matches!(outcome(&info), Verdict::Running) {
            return Ok((Look::Done(info), snapshot));
        }
        let moving = snapshot
            .events
            .iter()
            .any(|(name, s)| name == "AllowTraffic" && *s != LifecycleEventStatus::Pending);
        if moving && tracker.routing.is_none() {
            tracker.routing = Some(self.routing(info.deployment_config_name()).await);
        }
        let waits = group_waits(
            info.blue_green_deployment_configuration(),
            self.group_minutes,
        );
        let since = tracker.status.as_ref().map_or(now, |s| s.1);
        tracker.stage = stage(
            &snapshot,
            &tracker.times,
            since,
            tracker.routing.flatten(),
            waits,
        );
        Ok((Look::Running(tracker.stage), snapshot))
    }

    /// Reads the deployment's ECS target (finding its id first).
    async fn read_target(&self, tracker: &mut Tracker<'_>) -> std::result::Result<(), Failure> {
        let id = tracker.id;
        if tracker.target_id.is_none() {
            let listed = self
                .aws
                .codedeploy
                .list_deployment_targets()
                .deployment_id(id)
                .send()
                .await
                .map_err(|e| Failure::aws("CodeDeploy", "ListDeploymentTargets", e))?;
            tracker.target_id = listed.target_ids().first().cloned();
        }
        if let Some(t) = tracker.target_id.as_deref() {
            let got = self
                .aws
                .codedeploy
                .get_deployment_target()
                .deployment_id(id)
                .target_id(t)
                .send()
                .await
                .map_err(|e| Failure::aws("CodeDeploy", "GetDeploymentTarget", e))?;
            tracker.target = got.deployment_target.and_then(|d| d.ecs_target);
        }
        Ok(())
    }

    /// How the deployment config moves traffic: known for CodeDeploy's predefined ECS configs,
    /// read once (GetDeploymentConfig) for others. Unknown when it cannot be read: the steps are
    /// then not timed, only looked for more often.
    async fn routing(&self, config: Option<&str>) -> Option<Routing> {
        let config = config?;
        if let Some(r) = routing_of_name(config) {
            return Some(r);
        }
        match self
            .aws
            .codedeploy
            .get_deployment_config()
            .deployment_config_name(config)
            .send()
            .await
        {
            Ok(out) => out
                .deployment_config_info()
                .and_then(|i| i.traffic_routing_config())
                .and_then(routing_of_sdk),
            Err(e) => {
                println!(
                    "codedeploy: could not read deployment config {config} ({}); its traffic steps are not timed",
                    crate::error::error_chain(&e)
                );
                None
            }
        }
    }
}
