//! The rolling deployment (services with the `ECS` deployment controller and the ROLLING
//! strategy): UpdateService to the new task definition, wait for our deployment to complete,
//! roll back on failure. Also the ECS service reads and writes every path shares.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_ecs::types::{Deployment, Service};
use tokio_util::sync::CancellationToken;

use super::Prepared;
use super::rollback;
use super::wait::{self, Poller, Target};
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::plan::AppPlan;
use crate::report::{AppReport, Link};

/// Describes the service, failing clearly when it is missing or not ACTIVE.
pub async fn describe_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Service> {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await;
    let err = |problem: String| Error::Service {
        cluster: cluster.to_string(),
        service: service.to_string(),
        problem,
    };
    let out = match out {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_cluster_not_found_exception()) =>
        {
            return Err(err(
                "the cluster was not found; check `cluster` (a name or ARN) and the region".into(),
            ));
        }
        Err(e) => return Err(Error::aws("ECS", "DescribeServices", e)),
    };
    let Some(found) = out.services().first() else {
        let reason = out
            .failures()
            .first()
            .and_then(|f| f.reason())
            .unwrap_or("MISSING");
        return Err(err(format!(
            "not found ({reason}); check `cluster` and `service` (and the region)"
        )));
    };
    match found.status() {
        Some("ACTIVE") => Ok(found.clone()),
        other => Err(err(format!(
            "is {} and cannot be deployed; recreate it or point `service` at an active one",
            other.unwrap_or("in an unknown state")
        ))),
    }
}

/// Moves the service to `task_definition` (with a fresh deployment when `force`), returning the
/// service as UpdateService answered.
pub async fn update_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    task_definition: &str,
    force: bool,
) -> Result<Service> {
    let out = ecs
        .update_service()
        .cluster(cluster)
        .service(service)
        .task_definition(task_definition)
        .force_new_deployment(force)
        .send()
        .await
        .map_err(|e| Error::aws("ECS", "UpdateService", e))?;
    out.service().cloned().ok_or_else(|| Error::Service {
        cluster: cluster.to_string(),
        service: service.to_string(),
        problem: "UpdateService answered without the service".into(),
    })
}

/// The deployment UpdateService started: the PRIMARY one.
pub fn primary_deployment(service: &Service) -> Option<&Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
}

/// The console page of the service's deployments, for people reading the log.
pub fn console_link(region: Option<&str>, cluster: &str, service: &str) -> Option<Link> {
    let region = region?;
    Some(Link {
        label: format!("ECS service {service} deployments"),
        url: format!(
            "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{service}/deployments?region={region}"
        ),
    })
}

/// How long to wait for a deployment (`wait-for-minutes`, at least one minute).
pub fn wait_timeout(plan: &AppPlan) -> Duration {
    Duration::from_secs(plan.settings.wait_for_minutes.max(1) * 60)
}

/// The ids of the service's events so far: they are history, not news of this deploy.
pub fn event_ids(service: &Service) -> HashSet<String> {
    service
        .events()
        .iter()
        .filter_map(|e| e.id().map(str::to_string))
        .collect()
}

/// The rolling deploy: update the service (a fresh deployment when `prepared.redeploy`), wait
/// for our deployment, roll back on failure.
pub async fn deploy(
    aws: &Aws,
    poller: &Poller,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut AppReport,
) -> Result<()> {
    report.deployment_kind = Some("rolling".into());
    crate::shutdown::unless_cancelled(cancel, || {
        format!("before updating service {}", prepared.service)
    })?;
    let updated = update_service(
        &aws.ecs,
        &prepared.cluster,
        &prepared.service,
        &prepared.task_definition_arn,
        prepared.redeploy,
    )
    .await?;
    let deployment_id = primary_deployment(&updated)
        .and_then(Deployment::id)
        .map(str::to_string)
        .ok_or_else(|| Error::Service {
            cluster: prepared.cluster.clone(),
            service: prepared.service.clone(),
            problem: "UpdateService answered without a PRIMARY deployment to follow".into(),
        })?;
    report.deployment_id = Some(deployment_id.clone());
    report.steps.push(format!(
        "service {} updated to {} (deployment {deployment_id})",
        prepared.service,
        wait::short_task_definition(&prepared.task_definition_arn)
    ));
    println!(
        "{}: service {} updated to {}; deployment {deployment_id}",
        plan.app,
        prepared.service,
        wait::short_task_definition(&prepared.task_definition_arn)
    );
    if let Some(link) = console_link(aws.region.as_deref(), &prepared.cluster, &prepared.service) {
        println!("{}: follow it at {}", plan.app, link.url);
    }
    if !plan.settings.wait_for_service_stability {
        println!(
            "{}: not waiting for the rollout (wait-for-service-stability: false)",
            plan.app
        );
        return Ok(());
    }
    let target = Target {
        label: &plan.app,
        cluster: &prepared.cluster,
        service: &prepared.service,
        deployment_id: &deployment_id,
        timeout: wait_timeout(plan),
    };
    let mut seen = event_ids(&prepared.live);
    match wait::wait_for_deployment(poller, &target, &mut seen, cancel).await {
        Ok(()) => {
            report
                .steps
                .push(format!("deployment {deployment_id} completed"));
            Ok(())
        }
        Err(cause) if plan.settings.rollback_on_failure => Err(rollback::roll_back(
            aws,
            poller,
            plan,
            prepared,
            rollback::Failed {
                deployment_id: &deployment_id,
                cause,
            },
            &mut seen,
            report,
        )
        .await),
        Err(cause) => {
            println!(
                "{}: not rolling back (rollback-on-failure: false)",
                plan.app
            );
            Err(cause)
        }
    }
}
