//! Deploying a planned app: register the rendered task definition and move the service to it,
//! by the path its deployment controller calls for (rolling, CodeDeploy, ECS blue/green).
//!
//! Every path starts from a [`Prepared`] value: the service as it was before the deploy and the
//! task definition registered for it. Helpers the paths share live one verb per file:
//! `ecs` (describe the service, update it), `register` (task definitions as raw JSON),
//! `wait` (the shared poller and the wait for a deployment), `rollback`, `run_task`.

pub mod appspec;
pub mod bluegreen;
pub mod codedeploy;
pub mod codedeploy_progress;
pub mod register;
pub mod task_definition;

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::plan::AppPlan;
use crate::report::AppReport;

/// What every deployment path starts from, once the task definition is registered (or found to
/// be the live one already).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub cluster: String,
    pub service: String,
    /// The service as described before the deploy.
    pub live: aws_sdk_ecs::types::Service,
    /// The task definition to deploy (newly registered, or the live one when nothing changed).
    pub task_definition_arn: String,
    /// The service's task definition before the deploy (the rollback target).
    pub previous_task_definition_arn: Option<String>,
    /// The container that got the new image.
    pub container: String,
    /// That container's first port (load balancer target of blue/green paths), if it has one.
    pub container_port: Option<i32>,
    /// False when the rendered task definition equals the live one: nothing was registered.
    pub changed: bool,
}

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
