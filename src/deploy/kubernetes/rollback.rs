//! Rolling a Deployment back after its rollout failed, timed out or was cancelled, as
//! `kubectl rollout undo` does: at undo time, the Deployment's own ReplicaSets are read, the one
//! of the previous revision (the highest below the current one) is chosen, and a JSON patch
//! replaces `/spec/template` with its pod template (without the controller's `pod-template-hash`
//! label), so nothing the failed template added survives. The rollback is then followed as
//! `kubectl rollout status` does: once the controller has observed it, only the restored
//! ReplicaSet is judged (the failed one's pods are terminating, not the rollback's).
//! `rolled-back` once the Deployment is available on the previous template; `failed` only when
//! the restored ReplicaSet itself cannot become available.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Api;
use kube::api::Patch;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::progress::{self, CHANGE_CAUSE};
use super::{Ended, Follow, Judged, KubeChecked, Timing, api_error, patch_params, replica_sets};
use crate::deploy::follow_limits;
use crate::deploy::strategy::Ended as StrategyEnded;
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::plan::AppPlan;

/// The shortest wait for the rollback itself, even with a small `wait-for-minutes`.
const MIN_ROLLBACK_WAIT: Duration = Duration::from_secs(5 * 60);

/// A JSON pointer to `key` under `/metadata/annotations` (RFC 6901: `~` and `/` escaped). Pure.
fn annotation_pointer(key: &str) -> String {
    format!(
        "/metadata/annotations/{}",
        key.replace('~', "~0").replace('/', "~1")
    )
}

/// The JSON patch `kubectl rollout undo` sends: `/spec/template` replaced whole by `previous`
/// without the controller's `pod-template-hash` label (a strategic merge patch would keep an
/// env var or a container the failed template added), and the change cause set on `live` (added
/// to its annotations, or as its only one when it has none). Pure.
pub(crate) fn undo_patch(
    live: &Deployment,
    previous: &PodTemplateSpec,
    cause: &str,
) -> Result<serde_json::Value> {
    let template = progress::template_without_hash(previous);
    let value = serde_json::to_value(&template).map_err(|e| Error::Kubernetes {
        target: "rollback".into(),
        problem: format!("cannot write the previous pod template: {e}"),
    })?;
    let annotation = if live.metadata.annotations.is_some() {
        json!({"op": "add", "path": annotation_pointer(CHANGE_CAUSE), "value": cause})
    } else {
        json!({"op": "add", "path": "/metadata/annotations", "value": {CHANGE_CAUSE: cause}})
    };
    Ok(json!([
        {"op": "replace", "path": "/spec/template", "value": value},
        annotation
    ]))
}

/// What a rollback did: in words, and whether every replica was seen available again.
struct Restored {
    how: String,
    verified: bool,
}

/// Why a rollback did not end available: the error, and the revision a person could go back to
/// by hand (when it was not the one that failed).
struct NotRestored {
    error: Error,
    revision: Option<i64>,
}

impl From<Error> for NotRestored {
    fn from(error: Error) -> NotRestored {
        NotRestored {
            error,
            revision: None,
        }
    }
}

/// Rolls the Deployment back after `cause`; sets the report's status (`rolled-back` once the
/// previous revision is available again; `cancelled` when a cancelled run had no time left to
/// see that; `failed` when the rollback failed) and returns the error the app ends with.
pub(crate) async fn undo(
    checked: &KubeChecked,
    plan: &AppPlan,
    cause: Error,
    timing: &Timing,
    report: &mut Outcome,
) -> StrategyEnded {
    let cancelled = matches!(cause, Error::Cancelled { .. });
    println!("{}: {cause}", plan.app);
    match restore(checked, plan, cancelled, timing).await {
        Ok(Restored { how, verified }) => {
            println!("{}: rolled back: {how}", plan.app);
            report.rollback = Some(how.clone());
            report.steps.push(format!("rolled back: {how}"));
            if verified {
                StrategyEnded::rolled_back(cause)
            } else {
                StrategyEnded::cancelled(cause)
            }
        }
        Err(NotRestored { error, revision }) => {
            report.rollback = Some(format!("rollback failed: {error}"));
            StrategyEnded::failed(Error::KubernetesRollbackFailed {
                cause: cause.to_string(),
                rollback: error.to_string(),
                fix: format!(
                    "list its revisions with `{}` and go back to one that ran with `{}`",
                    checked.history_command(),
                    checked.undo_command(revision)
                ),
            })
        }
    }
}

/// Reads the Deployment and its ReplicaSets, patches the previous revision's template back and
/// follows that rollout until it is available (after a cancellation, for a few seconds only).
async fn restore(
    checked: &KubeChecked,
    plan: &AppPlan,
    cancelled: bool,
    timing: &Timing,
) -> std::result::Result<Restored, NotRestored> {
    let target = checked.target();
    let client = checked.conn.client().await?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &checked.namespace);
    let live = api
        .get(&checked.name)
        .await
        .map_err(|e| api_error(&target, "reading it to roll back", e))?;
    let sets = replica_sets(&client, &checked.namespace, &live)
        .await
        .map_err(|e| api_error(&target, "listing its ReplicaSets", e))?;
    let previous = progress::previous_replica_set(&live, &sets).ok_or_else(|| Error::Kubernetes {
        target: target.clone(),
        problem: "has no earlier revision among its ReplicaSets to roll back to (revisionHistoryLimit 0, or a first deploy); fix the image and deploy again".into(),
    })?;
    let rs_name = previous.metadata.name.clone().unwrap_or_default();
    let template = previous
        .spec
        .template
        .clone()
        .ok_or_else(|| Error::Kubernetes {
            target: target.clone(),
            problem: format!("ReplicaSet {rs_name} has no pod template to roll back to"),
        })?;
    let pods = progress::pod_selector(previous).ok_or_else(|| Error::Kubernetes {
        target: target.clone(),
        problem: format!(
            "ReplicaSet {rs_name} has no {} label to find its pods by",
            progress::POD_TEMPLATE_HASH
        ),
    })?;
    let previous_revision = progress::revision(&previous.metadata);
    let revision = previous_revision
        .map(|r| format!("revision {r}"))
        .unwrap_or_else(|| "the previous revision".into());
    let image = progress::template_image(Some(&template), &checked.container)
        .unwrap_or_default()
        .to_string();
    let mut line = format!(
        "rolling back to {revision} (ReplicaSet {rs_name}, container {} on {image})",
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
    let patch = undo_patch(&live, &template, &cause)?;
    let patch = serde_json::from_value(patch).map_err(|e| Error::Kubernetes {
        target: target.clone(),
        problem: format!("cannot write the rollback's JSON patch: {e}"),
    })?;
    let patched = api
        .patch(&checked.name, &patch_params(), &Patch::<()>::Json(patch))
        .await
        .map_err(|e| NotRestored {
            error: api_error(
                &target,
                "replacing its pod template with the previous one",
                e,
            ),
            revision: previous_revision,
        })?;
    let (limit, poll) = follow_limits(
        timing.rollback_timeout.max(MIN_ROLLBACK_WAIT),
        timing.cadence.interval_or(super::POLL),
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
        judged: Judged::Restored {
            name: &rs_name,
            pods: &pods,
        },
    };
    // A second cancellation must not cut the rollback short: it has its own short limit.
    let not_restored = |problem: String| NotRestored {
        error: Error::Kubernetes {
            target: target.clone(),
            problem,
        },
        revision: None,
    };
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
        Ended::TimedOut(waited) => Err(not_restored(format!(
            "the rollback to {image} ({revision}, ReplicaSet {rs_name}) did not become available within {} min",
            waited.as_secs() / 60
        ))),
        Ended::Failed(why) => Err(not_restored(format!(
            "the rollback to {image} ({revision}, ReplicaSet {rs_name}) failed: {why}"
        ))),
        Ended::Overtaken(why) => Err(not_restored(format!(
            "the rollback to {image} was overtaken: {why}"
        ))),
        Ended::Cancelled => Err(NotRestored::from(Error::Cancelled {
            what: format!("rollback of {target}"),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(annotations: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "annotations": annotations},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [
                         {"name": "web", "image": "r/web:v2-crash", "env": [{"name": "DEBUG", "value": "1"}]},
                         {"name": "sidecar", "image": "envoy:1"}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn the_undo_patch_replaces_the_template_whole_without_the_controllers_hash() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "5d9c"}},
            "spec": {"containers": [{"name": "web", "image": "r/web:v1"}]}
        }))
        .unwrap();
        let p = undo_patch(
            &live(json!({"deployment.kubernetes.io/revision": "2"})),
            &t,
            "back",
        )
        .unwrap();
        assert_eq!(
            p,
            json!([
                {"op": "replace", "path": "/spec/template", "value": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "r/web:v1"}]}
                }},
                {"op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause", "value": "back"}
            ])
        );
        // No annotations yet: the change cause becomes the only one.
        let p = undo_patch(&live(serde_json::Value::Null), &t, "back").unwrap();
        assert_eq!(
            p[1],
            json!({"op": "add", "path": "/metadata/annotations",
                   "value": {"kubernetes.io/change-cause": "back"}})
        );
        // kube accepts it as a JSON patch.
        let _: Patch<()> = Patch::Json(serde_json::from_value(p).unwrap());
    }

    #[test]
    fn an_annotation_key_is_escaped_as_a_json_pointer() {
        assert_eq!(annotation_pointer("a~b/c"), "/metadata/annotations/a~0b~1c");
    }
}
