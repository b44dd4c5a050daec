//! The ECS service reads and writes every path shares: describe it (missing, inactive or in a
//! missing cluster said plainly), update it, its primary deployment, its console link, the ids
//! of its events so far, and how long a wait may take.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_ecs::types::{Deployment, Service};

use crate::error::{Error, Result};
use crate::inputs::ServiceUpdate;
use crate::outcome::Link;
use crate::plan::AppPlan;

/// Describes the service, failing clearly when it is missing or not ACTIVE.
pub(crate) async fn describe_service(
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
pub(crate) async fn update_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    task_definition: &str,
    force: bool,
    extra: &ServiceUpdate,
) -> Result<Service> {
    let update = ecs
        .update_service()
        .cluster(cluster)
        .service(service)
        .task_definition(task_definition)
        .force_new_deployment(force);
    let out = with_service_update(update, extra)
        .send()
        .await
        .map_err(|e| Error::aws("ECS", "UpdateService", e))?;
    out.service().cloned().ok_or_else(|| Error::Service {
        cluster: cluster.to_string(),
        service: service.to_string(),
        problem: "UpdateService answered without the service".into(),
    })
}

/// An UpdateService request with the service settings the inputs give (`desired-count`,
/// `enable-ecs-managed-tags`, `propagate-tags`); the others are left as the service has them.
pub(crate) fn with_service_update(
    update: aws_sdk_ecs::operation::update_service::builders::UpdateServiceFluentBuilder,
    extra: &ServiceUpdate,
) -> aws_sdk_ecs::operation::update_service::builders::UpdateServiceFluentBuilder {
    update
        .set_desired_count(extra.desired_count)
        .set_enable_ecs_managed_tags(extra.enable_ecs_managed_tags)
        .set_propagate_tags(
            extra
                .propagate_tags
                .as_deref()
                .map(aws_sdk_ecs::types::PropagateTags::from),
        )
}

/// The deployment UpdateService started: the PRIMARY one.
pub(crate) fn primary_deployment(service: &Service) -> Option<&Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
}

/// The console page of the service's deployments, for people reading the log.
pub(crate) fn console_link(region: Option<&str>, cluster: &str, service: &str) -> Option<Link> {
    let region = region?;
    Some(Link {
        label: format!("ECS service {service} deployments"),
        url: crate::aws::ecs_service_url(region, cluster, service),
    })
}

/// How long to wait for a deployment (`wait-for-minutes`, at least one minute).
pub(crate) fn wait_timeout(plan: &AppPlan) -> Duration {
    plan.settings.rollout.deploy_wait()
}

/// The ids of the service's events so far: they are history, not news of this deploy.
pub(crate) fn event_ids(service: &Service) -> HashSet<String> {
    service
        .events()
        .iter()
        .filter_map(|e| e.id().map(str::to_string))
        .collect()
}
