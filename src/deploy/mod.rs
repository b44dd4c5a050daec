//! Deploying a planned app: register the rendered task definition and move the service to it,
//! by the path its deployment controller calls for (rolling, CodeDeploy, ECS blue/green).

pub mod task_definition;

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::plan::AppPlan;
use crate::report::AppReport;

/// Deploys `image` for the app; fills the report's deploy fields and status as it goes.
pub async fn deploy(
    _aws: &Aws,
    plan: &AppPlan,
    _image: &str,
    _cancel: &CancellationToken,
    _report: &mut AppReport,
) -> Result<()> {
    let Some(d) = &plan.deploy else {
        return Ok(());
    };
    Err(Error::Service {
        cluster: d.cluster.clone(),
        service: d.service.clone(),
        problem: "deploying is not available in this build".into(),
    })
}

/// What a deploy would do, read-only: the live service and the task definition diff.
pub async fn preview(_aws: &Aws, plan: &AppPlan, image: &str) -> Result<String> {
    let Some(d) = &plan.deploy else {
        return Ok(String::new());
    };
    match (
        plan.rendered_file_task_definition(image)?,
        &d.task_definition_file,
    ) {
        (Some(new), Some((path, old))) => Ok(task_definition::diff(
            old,
            &new,
            &path.display().to_string(),
            "to register",
        )),
        _ => Ok(String::new()),
    }
}
