//! The rolling deployment (services with the `ECS` deployment controller and the ROLLING
//! strategy): UpdateService to the new task definition, wait for our deployment to complete,
//! roll back on failure (`rollback.rs`).

pub mod rollback;

use aws_sdk_ecs::types::Deployment;
use tokio_util::sync::CancellationToken;

use super::Prepared;
use super::diagnosis::{self, Watch, WatchFor};
use super::service::{console_link, event_ids, primary_deployment, update_service, wait_timeout};
use super::wait::{self, Poller, Target};
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::outcome::{DeployPath, Outcome};
use crate::plan::AppPlan;

/// The rolling deploy: update the service (a fresh deployment when `prepared.redeploy`), wait
/// for our deployment, roll back on failure.
pub async fn deploy(
    aws: &Aws,
    poller: &Poller,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<()> {
    report.kind = Some(DeployPath::Rolling);
    crate::shutdown::unless_cancelled(cancel, || {
        format!("before updating service {}", prepared.service)
    })?;
    let updated = update_service(
        &aws.ecs,
        &prepared.cluster,
        &prepared.service,
        &prepared.task_definition_arn,
        prepared.redeploy,
        &plan.settings.service_update,
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
        cap: plan.settings.poll_cap(),
        rollback_to: prepared.previous_task_definition_arn.as_deref(),
    };
    let mut seen = event_ids(&prepared.live);
    let watch = Watch::new(
        aws.ecs.clone(),
        WatchFor {
            label: &plan.app,
            cluster: &prepared.cluster,
            tasks: diagnosis::Tasks::StartedBy(diagnosis::started_by(&deployment_id)),
            task_definition: &prepared.task_definition_arn,
            region: aws.region.as_deref(),
            threshold: plan.settings.fail_fast_after_stopped_tasks,
            events_before: seen.clone(),
        },
    );
    let waited = match wait::wait_watching(poller, &target, &mut seen, cancel, Some(&watch)).await {
        Err(cause) if !matches!(cause, Error::Cancelled { .. }) => Err(diagnosis::explain_failure(
            aws,
            &plan.app,
            &prepared.task_definition,
            &watch,
            cause,
            report,
        )
        .await),
        waited => waited,
    };
    match waited {
        Ok(()) => {
            report
                .steps
                .push(format!("deployment {deployment_id} completed"));
            Ok(())
        }
        // Another run's deployment is live now: never roll back over it.
        Err(cause @ Error::Superseded { .. }) => {
            println!("{}: {cause}", plan.app);
            report.status = Some(crate::outcome::Status::Failed);
            report.rollback = Some(
                "not rolled back: the service now runs another deployment, which a rollback would undo".into(),
            );
            report.steps.push(cause.to_string());
            Err(cause)
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
