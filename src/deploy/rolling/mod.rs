//! The rolling deployment (services with the `ECS` deployment controller and the ROLLING
//! strategy): UpdateService to the new task definition, wait for our deployment to complete,
//! roll back on failure (`rollback.rs`).

pub mod rollback;

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_ecs::types::Deployment;
use tokio_util::sync::CancellationToken;

use super::Prepared;
use super::diagnosis::{self, Watch, WatchFor};
use super::service::{console_link, event_ids, primary_deployment, update_service};
use super::strategy::{self, Ended as StrategyEnded, Followed, Strategy};
use super::wait::{self, Poller, Target};
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::outcome::{DeployPath, Outcome};
use crate::plan::AppPlan;

/// The rolling path of one service: what [`Strategy`]'s phases need.
pub(crate) struct Rolling<'a> {
    aws: &'a Aws,
    poller: &'a Poller,
    plan: &'a AppPlan,
    prepared: &'a Prepared,
    cancel: &'a CancellationToken,
}

/// A started rolling deployment: its id, the service events already seen, and the watch on
/// its stopped tasks.
pub(crate) struct Started {
    deployment_id: String,
    seen: HashSet<String>,
    watch: Watch,
}

/// The rolling deploy, as one call: update the service (a fresh deployment when
/// `prepared.redeploy`), wait for our deployment, roll back on failure. The outcome is written
/// into `report`; the error says why it did not succeed.
pub async fn deploy(
    aws: &Aws,
    poller: &Poller,
    plan: &AppPlan,
    prepared: &Prepared,
    cancel: &CancellationToken,
    report: &mut Outcome,
) -> Result<()> {
    let rolling = Rolling {
        aws,
        poller,
        plan,
        prepared,
        cancel,
    };
    strategy::drive_into(&rolling, report).await
}

impl Strategy for Rolling<'_> {
    type Started = Started;
    type Stopped = Error;

    fn path(&self) -> DeployPath {
        DeployPath::Rolling
    }

    fn follows(&self) -> bool {
        self.plan.settings.wait_for_service_stability
    }

    async fn start(&self, report: &mut Outcome) -> std::result::Result<Started, StrategyEnded> {
        let (aws, plan, prepared) = (self.aws, self.plan, self.prepared);
        crate::runner::shutdown::unless_cancelled(self.cancel, || {
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
        if let Some(link) =
            console_link(aws.region.as_deref(), &prepared.cluster, &prepared.service)
        {
            println!("{}: follow it at {}", plan.app, link.url);
        }
        if !self.follows() {
            println!(
                "{}: not waiting for the rollout (wait-for-service-stability: false)",
                plan.app
            );
        }
        let seen = event_ids(&prepared.live);
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
        Ok(Started {
            deployment_id,
            seen,
            watch,
        })
    }

    async fn follow(&self, started: &mut Started, report: &mut Outcome) -> Result<Followed<Error>> {
        let (aws, plan, prepared) = (self.aws, self.plan, self.prepared);
        let deployment_id = started.deployment_id.as_str();
        let target = Target {
            label: &plan.app,
            cluster: &prepared.cluster,
            service: &prepared.service,
            deployment_id,
            timeout: plan.settings.deploy_wait(),
            cap: Duration::MAX,
            rollback_to: prepared.previous_task_definition_arn.as_deref(),
        };
        let waited = wait::wait_watching(
            self.poller,
            &target,
            &mut started.seen,
            self.cancel,
            Some(&started.watch),
        )
        .await;
        let waited = match waited {
            Err(cause) if !matches!(cause, Error::Cancelled { .. }) => {
                Err(diagnosis::explain_failure(
                    aws,
                    &plan.app,
                    &prepared.task_definition,
                    &started.watch,
                    cause,
                    report,
                )
                .await)
            }
            waited => waited,
        };
        Ok(match waited {
            Ok(()) => {
                report
                    .steps
                    .push(format!("deployment {deployment_id} completed"));
                Followed::Succeeded
            }
            // Another run's deployment is live now: never roll back over it.
            Err(cause @ Error::Superseded { .. }) => {
                println!("{}: {cause}", plan.app);
                report.rollback = Some(
                    "not rolled back: the service now runs another deployment, which a rollback would undo".into(),
                );
                report.steps.push(cause.to_string());
                Followed::Superseded(cause)
            }
            Err(cause) => Followed::Stopped(cause),
        })
    }

    async fn roll_back(
        &self,
        started: Started,
        cause: Error,
        report: &mut Outcome,
    ) -> StrategyEnded {
        if !self.plan.settings.rollback_on_failure {
            println!(
                "{}: not rolling back (rollback-on-failure: false)",
                self.plan.app
            );
            return StrategyEnded::of(cause);
        }
        let Started {
            deployment_id,
            mut seen,
            ..
        } = started;
        rollback::roll_back(
            self,
            rollback::Failed {
                deployment_id: &deployment_id,
                cause,
            },
            &mut seen,
            report,
        )
        .await
    }
}
