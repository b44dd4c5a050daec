//! Rolling a Deployment back after its rollout failed, timed out or was cancelled, as
//! `kubectl rollout undo` does: at undo time, the Deployment's own ReplicaSets are read, the one
//! of the previous revision (the highest below the current one) is chosen, its pod template
//! (without the controller's `pod-template-hash` label) replaces the Deployment's, and the
//! rollout back is followed until every replica is available again. `rolled-back` only then.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Api;
use kube::api::Patch;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::progress::{self, CHANGE_CAUSE};
use super::{Ended, Follow, KubeChecked, POLL, api_error, patch_params, replica_sets};
use crate::deploy::follow_limits;
use crate::error::{Error, Result};
use crate::outcome::{Outcome, Status};
use crate::plan::AppPlan;

/// The shortest wait for the rollback itself, even with a small `wait-for-minutes`.
const MIN_ROLLBACK_WAIT: Duration = Duration::from_secs(5 * 60);

/// The patch that puts `previous` back as the whole pod template (`$patch: replace`, so
/// nothing of the failed template survives), with the change cause. Pure.
pub fn undo_patch(previous: &PodTemplateSpec, cause: &str) -> Result<serde_json::Value> {
    let template = progress::template_without_hash(previous);
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

/// What a rollback did: in words, and whether every replica was seen available again.
struct Restored {
    how: String,
    verified: bool,
}

/// Rolls the Deployment back after `cause`; sets the report's status (`rolled-back` once the
/// previous revision is available again; `cancelled` when a cancelled run had no time left to
/// see that; `failed` when the rollback failed) and returns the error the app ends with.
pub async fn undo(
    checked: &KubeChecked,
    plan: &AppPlan,
    cause: Error,
    report: &mut Outcome,
) -> Error {
    let target = checked.target();
    let cancelled = matches!(cause, Error::Cancelled { .. });
    println!("{}: {cause}", plan.app);
    match restore(checked, plan, cancelled).await {
        Ok(Restored { how, verified }) => {
            println!("{}: rolled back: {how}", plan.app);
            report.status = Some(if verified {
                Status::RolledBack
            } else {
                Status::Cancelled
            });
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

/// Reads the Deployment and its ReplicaSets, patches the previous revision's template back and
/// follows that rollout until it is available (after a cancellation, for a few seconds only).
async fn restore(checked: &KubeChecked, plan: &AppPlan, cancelled: bool) -> Result<Restored> {
    let target = checked.target();
    let client = checked.conn.client().await?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &checked.namespace);
    let live = api
        .get(&checked.name)
        .await
        .map_err(|e| api_error(&target, "reading it to roll back", e))?;
    let sets = replica_sets(&client, &checked.namespace, &live, &target).await?;
    let previous = progress::previous_replica_set(&live, &sets).ok_or_else(|| Error::Kubernetes {
        target: target.clone(),
        problem: "has no earlier revision among its ReplicaSets to roll back to (revisionHistoryLimit 0, or a first deploy); fix the image and deploy again".into(),
    })?;
    let template = previous
        .spec
        .template
        .clone()
        .ok_or_else(|| Error::Kubernetes {
            target: target.clone(),
            problem: format!(
                "ReplicaSet {} has no pod template to roll back to",
                previous.metadata.name.as_deref().unwrap_or("?")
            ),
        })?;
    let revision = progress::revision(&previous.metadata)
        .map(|r| format!("revision {r}"))
        .unwrap_or_else(|| "the previous revision".into());
    let image = progress::template_image(Some(&template), &checked.container)
        .unwrap_or_default()
        .to_string();
    let mut line = format!(
        "rolling back to {revision} (ReplicaSet {}, container {} on {image})",
        previous.metadata.name.as_deref().unwrap_or("?"),
        checked.container
    );
    if image != checked.previous_image {
        line.push_str(&format!(
            "; the preflight saw {}: the Deployment changed since, and its history decides, as for kubectl rollout undo",
            checked.previous_image
        ));
    }
    println!("{}: {line}", plan.app);
    let cause = format!(
        "ecs-deploy: rollback of {} {} to {revision}",
        plan.app, plan.version.value
    );
    let patch = undo_patch(&template, &cause)?;
    let patched = api
        .patch(&checked.name, &patch_params(), &Patch::Strategic(&patch))
        .await
        .map_err(|e| api_error(&target, "patching the previous pod template back", e))?;
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
        Ended::Done { revision: now } => Ok(Restored {
            how: format!(
                "{target} back on {image} ({revision}, now revision {}), every replica available",
                now.map(|r| r.to_string()).unwrap_or_else(|| "?".into())
            ),
            verified: true,
        }),
        Ended::TimedOut(waited) if cancelled => Ok(Restored {
            how: format!(
                "{target} set back to {image} ({revision}); not seen available within the {} s a cancelled run has (the Deployment controller goes on with it)",
                waited.as_secs()
            ),
            verified: false,
        }),
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
