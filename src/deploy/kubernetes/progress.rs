//! Reading a rollout from what the Kubernetes API serves (pure): whether it finished, failed or
//! still runs, decided as `kubectl rollout status` decides it; the pods of the new ReplicaSet
//! that cannot start (ImagePullBackOff, CrashLoopBackOff after a bounded number of restarts);
//! and the progress lines people read in the log.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The annotation the Deployment controller numbers revisions with.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// The annotation `kubectl rollout history` shows as the cause of a revision.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// The label the controller adds to each ReplicaSet's pods (not part of the template a person
/// wrote: a rollback drops it).
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Restarts of a crash-looping container before the rollout is failed without waiting for the
/// progress deadline.
pub const MAX_RESTARTS: i32 = 3;

/// Waiting reasons that mean the image cannot be pulled or used: the rollout fails at once.
const IMAGE_FAILURES: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Still going; what it waits for.
    Waiting(String),
    /// Every replica updated and available, no old replica left.
    Done,
    /// The controller gave up (progress deadline exceeded).
    Failed(String),
}

/// The reason of the `Progressing` condition when the controller gave up on a rollout.
const DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// The rollout of `d` as `kubectl rollout status` judges it: the controller has seen the latest
/// spec (observedGeneration ≥ generation), then `ProgressDeadlineExceeded` fails it, and it is
/// done when updatedReplicas = replicas, no old replica is left and all updated ones are
/// available.
pub(crate) fn assess(d: &Deployment) -> Rollout {
    assess_toward(d, None)
}

/// [`assess`] of a rollout toward one ReplicaSet (`toward`, by name: the one a rollback
/// restores). The controller names the ReplicaSet it gave up on in the condition's message
/// (`ReplicaSet "web-5d9c" has timed out progressing.`); a deadline it reports about another
/// ReplicaSet (the failed one, before it turns the condition over) is not this rollout's. Pure.
pub(crate) fn assess_toward(d: &Deployment, toward: Option<&str>) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else {
        return Rollout::Waiting("waiting for the deployment's status".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("waiting for the deployment spec update to be observed".into());
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        && c.reason.as_deref() == Some(DEADLINE_EXCEEDED)
        && !toward.is_some_and(|rs| names_another_replica_set(c.message.as_deref(), rs))
    {
        let deadline = d.spec.progress_deadline_seconds.unwrap_or(600);
        return Rollout::Failed(format!(
            "exceeded its progress deadline ({deadline} s): {}",
            c.message.as_deref().unwrap_or("no progress")
        ));
    }
    let want = d.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        return Rollout::Waiting(format!("{updated} of {want} new replicas updated"));
    }
    if replicas > updated {
        return Rollout::Waiting(format!(
            "{} old replicas pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Rollout::Waiting(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Rollout::Done
}

/// True when a condition's message names a ReplicaSet other than `rs`. Pure.
fn names_another_replica_set(message: Option<&str>, rs: &str) -> bool {
    message.is_some_and(|m| m.contains("ReplicaSet \"") && !m.contains(&format!("\"{rs}\"")))
}

/// One line of counts for the log: `2/3 updated, 2 ready, 1 available, 1 old`.
pub(crate) fn counts(d: &Deployment) -> String {
    let want = d.spec.replicas.unwrap_or(1);
    let s = d.status.clone().unwrap_or_default();
    let updated = s.updated_replicas.unwrap_or(0);
    let old = (s.replicas.unwrap_or(0) - updated).max(0);
    let mut line = format!(
        "{updated}/{want} updated, {} ready, {} available",
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0)
    );
    if old > 0 {
        line.push_str(&format!(", {old} old"));
    }
    line
}

/// The revision number an object carries (Deployment or ReplicaSet).
pub(crate) fn revision(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

/// The image of `container` in a pod template.
pub(crate) fn template_image<'a>(
    t: Option<&'a PodTemplateSpec>,
    container: &str,
) -> Option<&'a str> {
    t?.spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?
        .image
        .as_deref()
}

/// The Deployment's pod template.
pub(crate) fn template(d: &Deployment) -> Option<&PodTemplateSpec> {
    Some(&d.spec.template)
}

/// The container names of the Deployment's pod template.
pub(crate) fn container_names(d: &Deployment) -> Vec<String> {
    template(d)
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The Deployment's label selector as a `labelSelector` query (`app=web,tier=front`). Pure.
pub(crate) fn selector(d: &Deployment) -> String {
    d.spec
        .selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// True when the Deployment owns `rs` (its ownerReferences name the Deployment's uid): a
/// ReplicaSet another Deployment with the same labels made is not part of its history.
pub(crate) fn owned_by(d: &Deployment, rs: &ReplicaSet) -> bool {
    let Some(uid) = d.metadata.uid.as_deref() else {
        return false;
    };
    rs.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Deployment")
}

/// The ReplicaSet of the Deployment's current revision (owned by it), whose pods are the new ones.
pub(crate) fn current_replica_set<'a>(
    d: &Deployment,
    sets: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let rev = revision(&d.metadata)?;
    sets.iter()
        .find(|rs| revision(&rs.metadata) == Some(rev) && owned_by(d, rs))
}

/// A pod template without the controller's `pod-template-hash` label: what a person
/// wrote, so a ReplicaSet's template compares equal to the Deployment's it was made from.
pub(crate) fn template_without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(m) = t.metadata.as_mut() {
        if let Some(labels) = m.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH);
        }
        if m.labels.as_ref().is_some_and(BTreeMap::is_empty) {
            m.labels = None;
        }
    }
    t
}

/// The ReplicaSet `kubectl rollout undo` goes back to, among those the Deployment owns: the one
/// with the highest revision below the current one. The current one is the ReplicaSet whose
/// template is the Deployment's (the hash label aside, as the controller matches them); when
/// the controller has not made it yet, every ReplicaSet is older. Read at undo time, so a change
/// made since the preflight (another rollout, an edit) is what it goes back to. Pure.
pub(crate) fn previous_replica_set<'a>(
    d: &Deployment,
    sets: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let live = template_without_hash(&d.spec.template);
    let owned: Vec<(&ReplicaSet, i64)> = sets
        .iter()
        .filter(|rs| owned_by(d, rs))
        .filter_map(|rs| Some((rs, revision(&rs.metadata)?)))
        .collect();
    let current = owned
        .iter()
        .filter(|(rs, _)| {
            rs.spec
                .template
                .as_ref()
                .is_some_and(|t| template_without_hash(t) == live)
        })
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(i64::MAX);
    owned
        .into_iter()
        .filter(|(_, r)| *r < current)
        .max_by_key(|(_, r)| *r)
        .map(|(rs, _)| rs)
}

/// The label selector of the pods of a ReplicaSet (its `pod-template-hash`).
pub(crate) fn pod_selector(rs: &ReplicaSet) -> Option<String> {
    let hash = rs.metadata.labels.as_ref()?.get(POD_TEMPLATE_HASH)?;
    Some(format!("{POD_TEMPLATE_HASH}={hash}"))
}

/// A container of a new pod that is not starting, with the kubelet's reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    pub container: String,
    pub reason: String,
    pub message: String,
    pub restarts: i32,
}

impl PodProblem {
    /// True when the rollout cannot succeed: the image cannot be pulled or used, or the
    /// container crash-loops past [`MAX_RESTARTS`].
    pub(crate) fn is_fatal(&self) -> bool {
        IMAGE_FAILURES.contains(&self.reason.as_str())
            || (self.reason == "CrashLoopBackOff" && self.restarts >= MAX_RESTARTS)
    }

    /// The problem as one line.
    pub(crate) fn line(&self) -> String {
        let restarts = if self.restarts > 0 {
            format!(", {} restarts", self.restarts)
        } else {
            String::new()
        };
        let message = if self.message.is_empty() {
            String::new()
        } else {
            format!(": {}", self.message)
        };
        format!(
            "pod {} container {}: {}{restarts}{message}",
            self.pod, self.container, self.reason
        )
    }
}

/// The waiting containers of `pods` (init containers too), one problem each.
pub(crate) fn pod_problems(pods: &[Pod]) -> Vec<PodProblem> {
    let mut out = Vec::new();
    for p in pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let Some(status) = &p.status else { continue };
        let all = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for c in all {
            let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = waiting.reason.clone().unwrap_or_default();
            if reason.is_empty() || reason == "ContainerCreating" || reason == "PodInitializing" {
                continue;
            }
            out.push(PodProblem {
                pod: name.clone(),
                container: c.name.clone(),
                reason,
                message: waiting.message.clone().unwrap_or_default(),
                restarts: c.restart_count,
            });
        }
    }
    out
}

/// The first problem that fails the rollout, if any.
pub(crate) fn fatal_problem(problems: &[PodProblem]) -> Option<&PodProblem> {
    problems.iter().find(|p| p.is_fatal())
}

/// Warning events about `pods` not shown yet (marks them shown), one line each, oldest first.
pub(crate) fn new_warnings(
    events: &[Event],
    pods: &[&str],
    seen: &mut HashSet<String>,
) -> Vec<String> {
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    for e in events {
        if e.type_.as_deref() != Some("Warning") {
            continue;
        }
        let Some(object) = e.involved_object.name.as_deref() else {
            continue;
        };
        if !pods.contains(&object) {
            continue;
        }
        let key = format!(
            "{}/{}",
            e.metadata.name.as_deref().unwrap_or(object),
            e.count.unwrap_or(1)
        );
        if !seen.insert(key.clone()) {
            continue;
        }
        let when = e
            .last_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let times = match e.count {
            Some(n) if n > 1 => format!(" (x{n})"),
            _ => String::new(),
        };
        lines.insert(
            format!("{when}{key}"),
            format!(
                "event {} on pod {object}{times}: {}",
                e.reason.as_deref().unwrap_or("Warning"),
                e.message.as_deref().unwrap_or("")
            ),
        );
    }
    lines.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    fn with_status(generation: i64, status: serde_json::Value) -> Deployment {
        deployment(json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": 3, "progressDeadlineSeconds": 120,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "r/web:v2"}]}}},
            "status": status
        }))
    }

    #[test]
    fn a_rollout_is_followed_as_kubectl_rollout_status_does() {
        let d = with_status(
            4,
            json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert!(matches!(assess(&d), Rollout::Waiting(w) if w.contains("observed")));
        let d = with_status(
            4,
            json!({"observedGeneration": 4, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}),
        );
        assert_eq!(
            assess(&d),
            Rollout::Waiting("1 of 3 new replicas updated".into())
        );
        let d = with_status(
            4,
            json!({"observedGeneration": 4, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(
            assess(&d),
            Rollout::Waiting("1 old replicas pending termination".into())
        );
        let d = with_status(
            4,
            json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
        );
        assert_eq!(
            assess(&d),
            Rollout::Waiting("2 of 3 updated replicas available".into())
        );
        let d = with_status(
            4,
            json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 3}),
        );
        assert_eq!(assess(&d), Rollout::Done);
        assert_eq!(counts(&d), "3/3 updated, 3 ready, 3 available");
    }

    #[test]
    fn a_progress_deadline_exceeded_fails_the_rollout() {
        let d = with_status(
            2,
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
                   "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                   "message": "ReplicaSet \"web-5d\" has timed out progressing."}]}),
        );
        match assess(&d) {
            Rollout::Failed(why) => {
                assert!(why.contains("120 s") && why.contains("timed out"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rollback_is_not_failed_by_the_deadline_the_failed_replica_set_exceeded() {
        let d = with_status(
            5,
            json!({"observedGeneration": 5, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3,
                   "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                   "message": "ReplicaSet \"web-c3\" has timed out progressing."}]}),
        );
        assert_eq!(
            assess_toward(&d, Some("web-a1")),
            Rollout::Waiting("1 old replicas pending termination".into()),
            "the failed ReplicaSet's deadline, not the restored one's"
        );
        assert!(matches!(
            assess_toward(&d, Some("web-c3")),
            Rollout::Failed(_)
        ));
        assert!(matches!(assess(&d), Rollout::Failed(_)));
    }

    fn pod(name: &str, reason: &str, restarts: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"containerStatuses": [{"name": "web", "image": "r/web:v2", "imageID": "", "ready": false,
                "restartCount": restarts, "state": {"waiting": {"reason": reason, "message": "back-off 10s"}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn image_pull_failures_are_fatal_at_once_and_crash_loops_after_the_bound() {
        let p = pod_problems(&[pod("a", "ImagePullBackOff", 0)]);
        assert!(fatal_problem(&p).is_some());
        let p = pod_problems(&[pod("a", "CrashLoopBackOff", MAX_RESTARTS - 1)]);
        assert!(fatal_problem(&p).is_none());
        assert_eq!(
            p[0].line(),
            "pod a container web: CrashLoopBackOff, 2 restarts: back-off 10s"
        );
        let p = pod_problems(&[pod("a", "CrashLoopBackOff", MAX_RESTARTS)]);
        assert!(fatal_problem(&p).is_some());
        assert!(pod_problems(&[pod("a", "ContainerCreating", 0)]).is_empty());
    }

    fn replica_set(hash: &str, revision: i64, image: &str, owner: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{hash}"), "uid": format!("rs-{hash}"),
                         "labels": {"app": "web", "pod-template-hash": hash},
                         "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": "web", "uid": owner}]},
            "spec": {"selector": {"matchLabels": {"app": "web", "pod-template-hash": hash}},
                     "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": hash}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}
        }))
        .unwrap()
    }

    fn live(image: &str) -> Deployment {
        deployment(json!({
            "metadata": {"name": "web", "uid": "d-web", "generation": 5,
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}
        }))
    }

    #[test]
    fn the_previous_replica_set_is_the_owned_one_just_below_the_current_template() {
        let sets = vec![
            replica_set("a1", 1, "r/web:v1", "d-web"),
            // Same labels, another Deployment's: not part of this history.
            replica_set("zz", 2, "r/other:v9", "d-other"),
            replica_set("c3", 3, "r/web:v3-crash", "d-web"),
        ];
        let d = live("r/web:v3-crash");
        assert_eq!(selector(&d), "app=web");
        let prev = previous_replica_set(&d, &sets).unwrap();
        assert_eq!(prev.metadata.name.as_deref(), Some("web-a1"));
        // The controller has not made the new template's ReplicaSet yet: the newest is previous.
        let prev = previous_replica_set(&live("r/web:v4"), &sets).unwrap();
        assert_eq!(prev.metadata.name.as_deref(), Some("web-c3"));
        // Back on revision 1's template (revision 4 now): revision 3 is the one before.
        let mut sets = sets;
        sets[0] = replica_set("a1", 4, "r/web:v1", "d-web");
        let prev = previous_replica_set(&live("r/web:v1"), &sets).unwrap();
        assert_eq!(prev.metadata.name.as_deref(), Some("web-c3"));
        // Only the current revision: no history to go back to.
        assert!(previous_replica_set(&live("r/web:v1"), &sets[..1]).is_none());
    }

    #[test]
    fn warnings_about_the_new_pods_are_shown_once() {
        let events: Vec<Event> = serde_json::from_value(json!([
            {"metadata": {"name": "e1"}, "involvedObject": {"name": "a"}, "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container", "count": 1},
            {"metadata": {"name": "e2"}, "involvedObject": {"name": "zzz"}, "type": "Warning", "reason": "BackOff", "message": "other pod", "count": 1},
            {"metadata": {"name": "e3"}, "involvedObject": {"name": "a"}, "type": "Normal", "reason": "Pulled", "message": "ok", "count": 1}
        ]))
        .unwrap();
        let mut seen = HashSet::new();
        let lines = new_warnings(&events, &["a"], &mut seen);
        assert_eq!(
            lines,
            vec!["event BackOff on pod a: Back-off restarting failed container"]
        );
        assert!(new_warnings(&events, &["a"], &mut seen).is_empty());
    }
}
