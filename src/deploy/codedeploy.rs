//! Blue/green and canary through AWS CodeDeploy (services whose deployment controller is
//! `CODE_DEPLOY`): AppSpec, CreateDeployment, lifecycle progress, StopDeployment rollback.

use tokio_util::sync::CancellationToken;

use super::Prepared;
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::plan::AppPlan;
use crate::report::AppReport;

/// Deploys `prepared` through CodeDeploy; fills the report's deployment fields and status.
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
        problem: "CodeDeploy deployments are being built (placeholder replaced before release)".into(),
    })
}
