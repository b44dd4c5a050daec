//! ECS native blue/green, linear and canary (services with the `ECS` controller and a
//! `deploymentConfiguration.strategy` other than ROLLING): lifecycle stages, bake time, rollback.

use tokio_util::sync::CancellationToken;

use super::Prepared;
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::plan::AppPlan;
use crate::report::AppReport;

/// Deploys `prepared` through ECS native blue/green; fills the report's deployment fields and status.
pub async fn deploy(
    _aws: &Aws,
    _plan: &AppPlan,
    prepared: &Prepared,
    _cancel: &CancellationToken,
    _report: &mut AppReport,
) -> Result<()> {
    Err(Error::Service {
        cluster: prepared.cluster.clone(),
        service: prepared.service.clone(),
        problem: "ECS native blue/green is being built (placeholder replaced before release)".into(),
    })
}
