//! Rolling a Deployment back after its rollout failed, timed out or was cancelled, as
//! `kubectl rollout undo` does: the pod template of the revision that ran before (read by the
//! preflight, without the controller's `pod-template-hash` label) replaces the template, and the
//! rollout back is followed until every replica is available again.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Api;
use kube::api::Patch;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::progress::{self, CHANGE_CAUSE, POD_TEMPLATE_HASH};
use super::{Ended, Follow, KubeChecked, POLL, api_error, patch_params};
use crate::deploy::follow_limits;
use crate::error::{Error, Result};
use crate::outcome::{Outcome, Status};
use crate::plan::AppPlan;

/// The shortest wait for the rollback itself, even with a small `wait-for-minutes`.
const MIN_ROLLBACK_WAIT: Duration = Duration::from_secs(5 * 60);

/// The patch that puts `previous` back as the whole pod template (`$patch: replace`, so
/// nothing of the failed template survives), with the change cause. Pure.
pub fn undo_patch(previous: &PodTemplateSpec, cause: &str) -> Result<serde_json::Value> {
    let mut template = previous.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let mut value = serde_json::to_value(&template).map_err(|e| Error::Kubernetes {
        target: "rollback".into(),
        problem: format!("cannot write the previous pod template: {e}"),
    })?;
    if let Some(m) = value.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    Ok(json!({
        "metadata": {"annotations": {CHANGE_CAUSE: cause}},
        "spec": {"template": value}
    }))
}

/// Rolls the Deployment back after `cause`; sets the report's status (`rolled-back`, or
/// `failed` when the rollback failed too) and returns the error the app ends with.
pub async fn undo(
    checked: &KubeChecked,
    plan: &AppPlan,
    cause: Error,
    report: &mut Outcome,
) -> Error {
    let target = checked.target();
    let cancelled = matches!(cause, Error::Cancelled { .. });
    let revision = checked
        .previous_revision
        .map(|r| format!("revision {r}"))
        .unwrap_or_else(|| "the previous revision".into());
    println!(
        "{}: {cause}\n{}: rolling back to {revision} ({})",
        plan.app, plan.app, checked.previous_image
    );
    match restore(checked, plan, &revision, cancelled).await {
        Ok(how) => {
            println!("{}: rolled back: {how}", plan.app);
            report.status = Some(Status::RolledBack);
            report.rollback = Some(how.clone());
            report.steps.push(format!("rolled back: {how}"));
            cause
        }
        Err(e) => {
            report.status = Some(Status::Failed);
            report.rollback = Some(format!("rollback failed: {e}"));
            Error::RollbackFailed {
                target,
                cause: cause.to_string(),
                rollback: e.to_string(),
            }
        }
    }
}

/// Patches the previous template back and follows that rollout until it is available.
async fn restore(
    checked: &KubeChecked,
    plan: &AppPlan,
    revision: &str,
    cancelled: bool,
) -> Result<String> {
    let target = checked.target();
    let cause = format!(
        "ecs-deploy: rollback of {} {} to {revision}",
        plan.app, plan.version.value
    );
    let patch = undo_patch(&checked.previous_template, &cause)?;
    let client = checked.conn.client().await?;
    let api: Api<Deployment> = Api::namespaced(client, &checked.namespace);
    let patched = api
        .patch(&checked.name, &patch_params(), &Patch::Strategic(&patch))
        .await
        .map_err(|e| api_error(&target, "patching the previous pod template back", e))?;
    let image = progress::template_image(progress::template(&patched), &checked.container)
        .unwrap_or(&checked.previous_image)
        .to_string();
    let (limit, poll) = follow_limits(
        crate::deploy::service::wait_timeout(plan).max(MIN_ROLLBACK_WAIT),
        POLL,
        cancelled,
    );
    let follow = Follow {
        label: &plan.app,
        target: &target,
        checked,
        image: &image,
        generation: patched.metadata.generation.unwrap_or(0),
        timeout: limit,
        poll,
    };
    // A second cancellation must not cut the rollback short: it has its own short limit.
    match follow.run(&CancellationToken::new()).await? {
        Ended::Done { revision: now } => Ok(format!(
            "{target} back on {image} ({revision}, now revision {}), every replica available",
            now.map(|r| r.to_string()).unwrap_or_else(|| "?".into())
        )),
        Ended::TimedOut(waited) if cancelled => Ok(format!(
            "{target} set back to {image} ({revision}); not followed to the end after the cancellation ({} s)",
            waited.as_secs()
        )),
        Ended::TimedOut(waited) => Err(Error::Kubernetes {
            target,
            problem: format!(
                "the rollback to {image} did not finish within {} min",
                waited.as_secs() / 60
            ),
        }),
        Ended::Failed(why) | Ended::Overtaken(why) => Err(Error::Kubernetes {
            target,
            problem: format!("the rollback to {image} failed: {why}"),
        }),
        Ended::Cancelled => Err(Error::Cancelled {
            what: format!("rollback of {target}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_undo_patch_replaces_the_template_without_the_controllers_hash() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "5d9c"}},
            "spec": {"containers": [{"name": "web", "image": "r/web:v1"}]}
        }))
        .unwrap();
        let p = undo_patch(&t, "back").unwrap();
        assert_eq!(
            p,
            json!({
                "metadata": {"annotations": {"kubernetes.io/change-cause": "back"}},
                "spec": {"template": {
                    "$patch": "replace",
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "r/web:v1"}]}
                }}
            })
        );
    }
}
