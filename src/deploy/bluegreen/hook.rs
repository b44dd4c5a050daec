//! Answering a PAUSE lifecycle hook: ContinueServiceDeployment with the hook's id, CONTINUE
//! (the verification passed) or ROLLBACK (it failed). The reading of the pause is pure
//! (`progress::paused`); this is the one write.

use aws_sdk_ecs::types::DeploymentLifecycleHookAction;

use crate::deploy::poll::Failure;
use crate::error::Result;

/// What the gate tells ECS about a paused deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Move on to the next lifecycle stage.
    Continue,
    /// Roll back to the source revision (ECS moves traffic back to blue).
    Rollback,
}

impl Answer {
    /// The SDK's action for this answer.
    pub(crate) fn action(self) -> DeploymentLifecycleHookAction {
        match self {
            Answer::Continue => DeploymentLifecycleHookAction::Continue,
            Answer::Rollback => DeploymentLifecycleHookAction::Rollback,
        }
    }
}

/// Sends ContinueServiceDeployment for the service deployment `arn` paused at hook `hook_id`.
pub async fn answer(
    ecs: &aws_sdk_ecs::Client,
    arn: &str,
    hook_id: &str,
    answer: Answer,
) -> Result<()> {
    send(ecs, arn, hook_id, answer).await.map_err(|f| f.error)
}

/// [`answer`], its failure classified for the follow loop (throttled or transient: answered
/// again at the next look; anything else: refused for good).
pub(crate) async fn send(
    ecs: &aws_sdk_ecs::Client,
    arn: &str,
    hook_id: &str,
    answer: Answer,
) -> std::result::Result<(), Failure> {
    ecs.continue_service_deployment()
        .service_deployment_arn(arn)
        .hook_id(hook_id)
        .action(answer.action())
        .send()
        .await
        .map_err(|e| Failure::aws("ECS", "ContinueServiceDeployment", e))?;
    Ok(())
}
