//! The pure half of a rolling deployment's early success: whether the service has ECS's early
//! success criteria with the old tasks drained afterwards (`sourceServiceRevisionCleanup:
//! DEFERRED`), and whether ECS has marked our service deployment SUCCESSFUL. With them, the
//! rollout is done at SUCCESSFUL, while the old tasks still drain: waiting for one deployment
//! to be left (the wait without them) would wait out exactly what early success avoids.

use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentEarlySuccessCriteria, Service, ServiceDeployment,
    ServiceDeploymentStatus, ServiceRevisionCleanup,
};

/// The service's early success criteria, when they change when the rollout is done: enabled,
/// with the old tasks drained after success (DEFERRED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlySuccess {
    /// The share of the desired count that must be healthy, in percent, when given.
    pub healthy_percent: Option<i32>,
}

/// Reads `deploymentConfiguration.earlySuccessCriteria`: `Some` when enabled with DEFERRED
/// cleanup. With BLOCKING cleanup ECS marks success only after the old tasks are gone, which is
/// the wait of a service without the setting, so `None` then. Pure.
pub fn early_success(service: &Service) -> Option<EarlySuccess> {
    let c = service
        .deployment_configuration()
        .and_then(DeploymentConfiguration::early_success_criteria)?;
    let deferred = c.source_service_revision_cleanup() == Some(&ServiceRevisionCleanup::Deferred);
    (c.enable() && deferred).then(|| EarlySuccess {
        healthy_percent: DeploymentEarlySuccessCriteria::healthy_percent(c),
    })
}

/// What our service deployment (DescribeServiceDeployments) says about the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// PENDING or IN_PROGRESS (or none yet): keep following as today.
    Running,
    /// SUCCESSFUL: the rollout is done; the old tasks may still drain.
    Successful,
    /// Any other status: the rollout did not succeed (ECS rolled back or someone stopped it);
    /// the service's own wait says how.
    Ended(ServiceDeploymentStatus),
}

/// Reads our service deployment's status. Pure.
pub fn reading(d: &ServiceDeployment) -> Reading {
    match d.status() {
        None | Some(ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress) => {
            Reading::Running
        }
        Some(ServiceDeploymentStatus::Successful) => Reading::Successful,
        Some(other) => Reading::Ended(other.clone()),
    }
}

impl EarlySuccess {
    /// What the log, the summary and the message say when the rollout ends at SUCCESSFUL.
    pub fn text(self) -> String {
        let at = self
            .healthy_percent
            .map_or(String::new(), |p| format!(" ({p}% of the tasks healthy)"));
        format!(
            "ECS marked the deployment SUCCESSFUL early{at}; the old tasks drain in the background, and ECS's rollback of this deployment no longer applies"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(criteria: Option<DeploymentEarlySuccessCriteria>) -> Service {
        Service::builder()
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .set_early_success_criteria(criteria)
                    .build(),
            )
            .build()
    }

    fn criteria(
        enable: bool,
        cleanup: Option<ServiceRevisionCleanup>,
    ) -> DeploymentEarlySuccessCriteria {
        DeploymentEarlySuccessCriteria::builder()
            .enable(enable)
            .healthy_percent(80)
            .set_source_service_revision_cleanup(cleanup)
            .build()
    }

    #[test]
    fn early_success_counts_only_when_enabled_with_deferred_cleanup() {
        let on = early_success(&service(Some(criteria(
            true,
            Some(ServiceRevisionCleanup::Deferred),
        ))));
        assert_eq!(
            on,
            Some(EarlySuccess {
                healthy_percent: Some(80)
            })
        );
        assert_eq!(
            early_success(&service(Some(criteria(
                true,
                Some(ServiceRevisionCleanup::Blocking)
            )))),
            None,
            "BLOCKING: success comes after the drain, as without the setting"
        );
        assert_eq!(
            early_success(&service(Some(criteria(
                false,
                Some(ServiceRevisionCleanup::Deferred)
            )))),
            None
        );
        assert_eq!(early_success(&service(Some(criteria(true, None)))), None);
        assert_eq!(early_success(&service(None)), None);
        assert_eq!(early_success(&Service::builder().build()), None);
    }

    #[test]
    fn our_service_deployment_is_done_at_successful() {
        let d = |s: Option<ServiceDeploymentStatus>| {
            reading(&ServiceDeployment::builder().set_status(s).build())
        };
        assert_eq!(d(None), Reading::Running);
        assert_eq!(
            d(Some(ServiceDeploymentStatus::InProgress)),
            Reading::Running
        );
        assert_eq!(d(Some(ServiceDeploymentStatus::Pending)), Reading::Running);
        assert_eq!(
            d(Some(ServiceDeploymentStatus::Successful)),
            Reading::Successful
        );
        assert_eq!(
            d(Some(ServiceDeploymentStatus::RollbackSuccessful)),
            Reading::Ended(ServiceDeploymentStatus::RollbackSuccessful)
        );
    }

    #[test]
    fn the_text_says_the_old_tasks_drain_and_ecs_no_longer_rolls_back() {
        let t = EarlySuccess {
            healthy_percent: Some(80),
        }
        .text();
        assert!(
            t.contains("(80% of the tasks healthy)") && t.contains("drain in the background"),
            "{t}"
        );
        assert!(
            t.contains("rollback of this deployment no longer applies"),
            "{t}"
        );
    }
}
