//! The preflight: every read-only check of a run, made before its first write. No image is
//! built or pushed, no tag moved, nothing registered, updated or started until every app has
//! passed. What it read is what the execute phase consumes (the service as described, the path,
//! the task definition to start from, the CodeDeploy target, the registry logged in, whether the
//! version tag exists), so nothing is read twice. The dry run is this same phase, then the diff.

use std::time::Duration;

use aws_sdk_ecs::types::Service;
use serde_json::Value;

use crate::aws::Aws;
use crate::deploy::poll::{self, Poller};
use crate::deploy::{self, Checked, DeployPath, bluegreen, codedeploy, register, service};
use crate::error::{Error, Result};
use crate::image;
use crate::plan::{AppPlan, DeployPlan, Plan};
use crate::task_definition;

/// The status of a service that can be deployed (ECS has no enum for a service's status; the
/// one read of [`service::describe_service`] says the same).
const ACTIVE: &str = "ACTIVE";

/// How long a dry run waits for each read-only AWS look-up before it says it could not read it.
const DRY_RUN_READ: Duration = Duration::from_secs(5);

/// The image a rendering check puts into the task definition before the real one is known.
const PLACEHOLDER_IMAGE: &str = "preflight.invalid/placeholder:check";

/// The task definition ARN an AppSpec is checked with before anything is registered.
const PLACEHOLDER_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/preflight:1";

/// Whether the run will write (every read must answer) or is a dry run (a read that gets no
/// answer is said and skipped, so the plan can be shown without AWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Deploy,
    DryRun,
}

/// The deploy side of an app's preflight.
#[derive(Debug, Clone)]
pub enum DeployCheck {
    /// No `service`: build and push only.
    NoDeploy,
    /// The service, its path and task definition, checked.
    Checked(Box<Checked>),
    /// Deploys one service together with the group's first app, whose check covers this app's
    /// container too.
    WithLead,
    /// A dry run could not read the service (the reason); a deploy never gets here.
    Unread(String),
    /// A Kubernetes Deployment (`eks-cluster` or `kubeconfig`), checked.
    Kubernetes(Box<deploy::kubernetes::KubeChecked>),
}

/// What the preflight found for one app; the execute phase consumes it.
#[derive(Debug, Clone)]
pub struct AppChecked {
    pub image: image::Checked,
    pub deploy: DeployCheck,
    /// What a dry run could not read, one line each, shown in its output.
    pub unread: Vec<String>,
}

/// Checks every app of the plan (concurrently, read-only), one result per app in plan order.
/// `groups` are the apps that deploy one service together (indices into `plan.apps`, first =
/// lead): the lead's check covers the others' containers. An app that fails is not built,
/// pushed or deployed; apps deploying one service together stand or fall together. The services
/// are read through the run's `poller`, so the apps of one cluster share one DescribeServices
/// per ten services, as the waits after them do.
pub(crate) async fn check(
    aws: &Aws,
    poller: &Poller,
    plan: &Plan,
    groups: &[Vec<usize>],
    mode: Mode,
) -> Vec<Result<AppChecked>> {
    let checks = plan.apps.iter().enumerate().map(|(i, app)| {
        let group = groups.iter().find(|g| g.contains(&i));
        let others: Vec<&AppPlan> = match group {
            Some(g) if g[0] == i => g[1..].iter().map(|&j| &plan.apps[j]).collect(),
            _ => Vec::new(),
        };
        let lead = group.is_none_or(|g| g[0] == i);
        async move { check_app(aws, Some(poller), app, lead, &others, mode).await }
    });
    futures_util::future::join_all(checks).await
}

/// The service side of one app's preflight alone, for a deploy (a run checks all its apps, image
/// and service, with [`check`]).
pub async fn check_deploy(aws: &Aws, plan: &AppPlan) -> Result<Checked> {
    let d = plan.deploy.as_ref().ok_or_else(|| Error::MissingInput {
        name: "service".into(),
        why: format!("to deploy {}", plan.app),
    })?;
    match check_service(aws, None, plan, d, &[], Mode::Deploy).await? {
        Ok(c) => Ok(c),
        Err(why) => Err(deploy::service_error(d, why)),
    }
}

/// A read of the preflight, with a dry run's leash: no answer in time, or an AWS call that
/// failed, becomes `Ok(Err(reason))` in a dry run; a definite finding (service missing, a bad
/// file) is an error in both modes.
async fn read<T>(
    mode: Mode,
    what: &str,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<std::result::Result<T, String>> {
    if mode == Mode::Deploy {
        return fut.await.map(Ok);
    }
    match tokio::time::timeout(DRY_RUN_READ, fut).await {
        Ok(Ok(v)) => Ok(Ok(v)),
        Ok(Err(e @ Error::Aws { .. })) => Ok(Err(format!("{what}: {e}"))),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(Err(format!(
            "{what}: no answer from AWS in {DRY_RUN_READ:?}"
        ))),
    }
}

/// One app: the image, then (for the group's lead or a lone app) the service.
async fn check_app(
    aws: &Aws,
    poller: Option<&Poller>,
    plan: &AppPlan,
    lead: bool,
    others: &[&AppPlan],
    mode: Mode,
) -> Result<AppChecked> {
    let mut unread = Vec::new();
    // Both sides are checked even when one fails, so one run names every problem.
    let deploy = async {
        Ok(match (&plan.deploy, lead) {
            (None, _) if plan.settings.kubernetes.is_some() => {
                crate::verify::check_test_url(
                    DeployPath::Kubernetes,
                    plan.settings.verify.test_url.is_some(),
                    &format!("app {}", plan.app),
                )?;
                match read(
                    mode,
                    "the Kubernetes Deployment",
                    deploy::kubernetes::check(aws, plan),
                )
                .await?
                {
                    Ok(k) => DeployCheck::Kubernetes(Box::new(k)),
                    Err(why) => DeployCheck::Unread(why),
                }
            }
            (None, _) => DeployCheck::NoDeploy,
            (Some(_), false) => DeployCheck::WithLead,
            (Some(d), true) => match check_service(aws, poller, plan, d, others, mode).await? {
                Ok(c) => DeployCheck::Checked(Box::new(c)),
                Err(why) => DeployCheck::Unread(why),
            },
        })
    };
    let (deploy, image, alarms) = tokio::join!(
        deploy,
        check_image(aws, plan, mode),
        check_alarms(aws, plan, mode)
    );
    let mut problems: Vec<Error> = Vec::new();
    let deploy = deploy.map_err(|e| problems.push(e)).ok();
    let image = image.map_err(|e| problems.push(e)).ok();
    match alarms {
        Ok(Ok(())) => {}
        Ok(Err(why)) => unread.push(why),
        Err(e) => problems.push(e),
    }
    match (deploy, image) {
        (Some(deploy), Some(image)) if problems.is_empty() => {
            if let DeployCheck::Unread(why) = &deploy {
                unread.push(why.clone());
            }
            Ok(AppChecked {
                image,
                deploy,
                unread,
            })
        }
        _ if problems.len() == 1 => Err(problems.remove(0)),
        _ => Err(Error::Preflight {
            problems: problems.iter().map(ToString::to_string).collect(),
        }),
    }
}

/// The verification gate's alarms (`verify-alarms`) exist, for an app that deploys: a typo is
/// found before the deploy, not as a failed verification after it. A dry run that cannot read
/// them says so (`Ok(Err(reason))`).
async fn check_alarms(
    aws: &Aws,
    plan: &AppPlan,
    mode: Mode,
) -> Result<std::result::Result<(), String>> {
    let alarms = &plan.settings.verify.alarms;
    let deploys = plan.deploy.is_some() || plan.settings.kubernetes.is_some();
    if alarms.is_empty() || !deploys {
        return Ok(Ok(()));
    }
    read(
        mode,
        "the verify-alarms (CloudWatch DescribeAlarms)",
        crate::verify::alarms::check_exist(&aws.cloudwatch, alarms),
    )
    .await
}

/// The image side: the registry checks of a deploy, or in a dry run the names only.
async fn check_image(aws: &Aws, plan: &AppPlan, mode: Mode) -> Result<image::Checked> {
    match mode {
        Mode::Deploy => image::check(aws, plan, None).await,
        // A dry run names the image but does not contact the registry.
        Mode::DryRun => {
            let external = matches!(plan.image.source, crate::plan::ImageSource::External { .. });
            let host = if external {
                // An image built elsewhere names its own registry.
                String::new()
            } else {
                match read(
                    mode,
                    "the account's ECR registry",
                    image::registry_host(aws, plan),
                )
                .await?
                {
                    Ok(h) => h,
                    Err(why) => {
                        println!("{}: could not read {why}; showing a placeholder", plan.app);
                        "<account ECR registry>".into()
                    }
                }
            };
            image::check(aws, plan, Some(&host)).await
        }
    }
}

/// The service side: it exists and is ACTIVE; its controller and strategy fit the `deployment`
/// input; the task definition (file or live) holds every container the run writes to and
/// renders; the path's own settings are there (CodeDeploy application and group that deploy
/// this service, an AppSpec that validates; ECS blue/green load balancer settings); a one-off
/// task has the network settings it needs.
async fn check_service(
    aws: &Aws,
    poller: Option<&Poller>,
    plan: &AppPlan,
    d: &DeployPlan,
    others: &[&AppPlan],
    mode: Mode,
) -> Result<std::result::Result<Checked, String>> {
    let live = match read(mode, "the live service", describe_service(aws, poller, d)).await? {
        Ok(l) => l,
        Err(why) => return Ok(Err(why)),
    };
    let (controller, strategy) = deploy::controller_and_strategy(&live);
    let path = deploy::choose_path(d.deployment, controller, strategy)
        .map_err(|p| deploy::service_error(d, p))?;
    let target = format!("ECS service {} in cluster {}", d.service, d.cluster);
    crate::verify::check_test_url(path, plan.settings.verify.test_url.is_some(), &target)?;
    let live_arn = live.task_definition().map(str::to_string);
    let live_td = match &live_arn {
        Some(arn) => match read(
            mode,
            "the live task definition",
            register::describe_raw(&aws.ecs, arn),
        )
        .await?
        {
            Ok(td) => Some(td),
            Err(why) => return Ok(Err(why)),
        },
        None => None,
    };
    // `task-definition-arn` / `-family[:revision]`: a registered one to start from.
    let registered = match &plan.settings.ecs.task_definition_ref {
        Some(r) => match read(
            mode,
            &format!("task definition {r} (task-definition-arn/-family)"),
            async {
                register::describe_raw(&aws.ecs, r).await.map_err(|e| Error::TaskDefinition {
                    source_name: r.clone(),
                    problem: format!(
                        "(task-definition-arn/-family/-revision) cannot be read: {}; name a registered revision of this account and region",
                        crate::error::error_chain(&e)
                    ),
                })
            },
        )
        .await?
        {
            Ok(td) => Some((r.clone(), td)),
            Err(why) => return Ok(Err(why)),
        },
        None => None,
    };
    let (source_name, base) = match (&d.task_definition_file, &registered, &live_arn, &live_td) {
        (Some((path, td)), _, _, _) => (path.display().to_string(), td.clone()),
        (None, Some((r, td)), _, _) => (r.clone(), td.clone()),
        (None, None, Some(arn), Some(td)) => (arn.clone(), td.clone()),
        _ => {
            return Err(deploy::service_error(
                d,
                "has no task definition to start from; give `task-definition` (a JSON file)",
            ));
        }
    };
    let container =
        task_definition::pick_container(&source_name, &base, deploy::planned_container(plan))?;
    let mut rendered = task_definition::render(
        &base,
        &container,
        PLACEHOLDER_IMAGE,
        &plan.settings.ecs.container_edits,
    )?;
    for o in others {
        let c = deploy::planned_container(o).unwrap_or_default();
        task_definition::pick_container(&source_name, &base, Some(c))?;
        rendered = task_definition::render(
            &rendered,
            c,
            PLACEHOLDER_IMAGE,
            &o.settings.ecs.container_edits,
        )?;
    }
    // The registered JSON has ECS's size limit: a file near it plus the inputs' edits.
    crate::task_definition_check::check_size(&source_name, &rendered)?;
    let own_network = plan
        .settings
        .ecs
        .run_task
        .as_ref()
        .is_some_and(|t| !t.subnets.is_empty());
    if (plan.settings.ecs.run_task_command.is_some() || plan.settings.ecs.run_task.is_some())
        && !own_network
    {
        check_one_off(d, &live, &rendered)?;
    }
    let port = task_definition::container_port(&rendered, &container);
    if path == DeployPath::CodeDeploy && !plan.settings.ecs.service_update.is_empty() {
        return Err(deploy::service_error(
            d,
            format!(
                "is deployed by CodeDeploy, which sends no UpdateService, so {} cannot be applied; set them on the service (console, CLI or IaC) or leave them out",
                plan.settings.ecs.service_update.names().join(", ")
            ),
        ));
    }
    let codedeploy = match path {
        DeployPath::CodeDeploy => {
            let (application, group) = codedeploy::target_names(plan, &d.cluster, &d.service);
            let target = match read(
                mode,
                "the CodeDeploy application and deployment group",
                codedeploy::check_group(aws, &d.cluster, &d.service, &application, &group),
            )
            .await?
            {
                Ok(t) => Some(t),
                Err(why) if mode == Mode::DryRun => {
                    println!("{}: could not read {why}", plan.app);
                    None
                }
                Err(why) => return Ok(Err(why)),
            };
            if let Some(t) = &target
                && plan.settings.verify.is_set()
                && let Some(note) = codedeploy::check_bake(aws, plan, t).await?
            {
                println!("{}: {note}", plan.app);
            }
            let spec = codedeploy::appspec_for(
                plan,
                &live,
                &container,
                port,
                &codedeploy::task_definition_containers(&rendered),
                PLACEHOLDER_ARN,
            )?;
            spec.render()?;
            target
        }
        DeployPath::EcsBlueGreen => {
            bluegreen::progress::check_service(&live).map_err(|p| deploy::service_error(d, p))?;
            check_blue_green_load_balancers(&live).map_err(|p| deploy::service_error(d, p))?;
            let note = bluegreen::progress::check_pause_hook(
                live.deployment_configuration(),
                plan.settings.verify.is_set(),
            )
            .map_err(|p| deploy::service_error(d, p))?;
            if let Some(note) = note {
                println!("{}: {note}", plan.app);
            }
            None
        }
        DeployPath::Rolling | DeployPath::Kubernetes => None,
    };
    Ok(Ok(Checked {
        live,
        path,
        source_name,
        base,
        live_task_definition: live_td,
        container,
        codedeploy,
    }))
}

/// The live service, read through the run's poller when there is one (one DescribeServices
/// answers every app of the cluster). A service that is missing or not ACTIVE, or a call refused
/// for good (a cluster that does not exist, access denied), is read again alone, so the error
/// says why in the words of [`service::describe_service`]; only a failing run pays that second
/// call. A call that failed on the way (throttled, timed out, a 5xx) after the SDK's retries is
/// the error as it is: asking again would only double the retries.
async fn describe_service(aws: &Aws, poller: Option<&Poller>, d: &DeployPlan) -> Result<Service> {
    if let Some(poller) = poller {
        match poller.look(&d.cluster, &d.service).await {
            Ok(Some(live)) if live.status() == Some(ACTIVE) => return Ok(live),
            Err(e) if e.kind != poll::Kind::Fatal => return Err(e.failure().error),
            _ => {}
        }
    }
    service::describe_service(&aws.ecs, &d.cluster, &d.service).await
}

/// ECS native blue/green moves traffic through each load balancer's advanced configuration
/// (alternate target group, production listener rule, the role ECS assumes): without them ECS
/// refuses the deployment after the task definition is registered. Pure.
pub(crate) fn check_blue_green_load_balancers(live: &Service) -> std::result::Result<(), String> {
    for lb in live.load_balancers() {
        let name = lb
            .target_group_arn()
            .or(lb.load_balancer_name())
            .unwrap_or("(unnamed)");
        let Some(adv) = lb.advanced_configuration() else {
            return Err(format!(
                "its load balancer {name} has no advancedConfiguration (alternateTargetGroupArn, productionListenerRule, roleArn), which ECS blue/green needs to shift traffic; add it to the service (aws ecs update-service --load-balancers ...)"
            ));
        };
        let missing: Vec<&str> = [
            ("alternateTargetGroupArn", adv.alternate_target_group_arn()),
            ("productionListenerRule", adv.production_listener_rule()),
            ("roleArn", adv.role_arn()),
        ]
        .iter()
        .filter(|(_, v)| v.is_none_or(str::is_empty))
        .map(|(k, _)| *k)
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "its load balancer {name} lacks {} in advancedConfiguration, which ECS blue/green needs to shift traffic; set it on the service",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

/// The one-off task runs with the service's network settings: an `awsvpc` task definition needs
/// the service to have a network configuration to copy, and the command must not be empty.
fn check_one_off(d: &DeployPlan, live: &Service, rendered: &Value) -> Result<()> {
    let awsvpc = rendered.get("networkMode").and_then(Value::as_str) == Some("awsvpc");
    if awsvpc && live.network_configuration().is_none() {
        return Err(deploy::service_error(
            d,
            "has no network configuration, but its task definition uses awsvpc networking: the one-off task (run-task-command or run-task) takes the service's subnets and security groups; give the service a network configuration, or run-task-subnets and run-task-security-groups",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{AdvancedConfiguration, LoadBalancer};

    fn service_with(lb: LoadBalancer) -> Service {
        Service::builder().load_balancers(lb).build()
    }

    #[test]
    fn blue_green_needs_the_advanced_configuration_of_each_load_balancer() {
        let tg = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/blue/1";
        let bare = LoadBalancer::builder().target_group_arn(tg).build();
        let e = check_blue_green_load_balancers(&service_with(bare)).unwrap_err();
        assert!(
            e.contains("blue/1") && e.contains("no advancedConfiguration"),
            "{e}"
        );
        let partial = LoadBalancer::builder()
            .target_group_arn(tg)
            .advanced_configuration(
                AdvancedConfiguration::builder()
                    .alternate_target_group_arn("green")
                    .build(),
            )
            .build();
        let e = check_blue_green_load_balancers(&service_with(partial)).unwrap_err();
        assert!(
            e.contains("productionListenerRule, roleArn") && !e.contains("alternate"),
            "{e}"
        );
        let full = LoadBalancer::builder()
            .target_group_arn(tg)
            .advanced_configuration(
                AdvancedConfiguration::builder()
                    .alternate_target_group_arn("green")
                    .production_listener_rule("rule")
                    .role_arn("role")
                    .build(),
            )
            .build();
        assert!(check_blue_green_load_balancers(&service_with(full)).is_ok());
        assert!(check_blue_green_load_balancers(&Service::builder().build()).is_ok());
    }
}
