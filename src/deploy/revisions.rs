//! `keep-task-definitions: N`: after a successful deploy, the family's ACTIVE revisions beyond
//! the newest N are deregistered, so the family does not grow by one revision per deploy
//! forever. A revision a service of the cluster runs, or an in-flight deployment (or a
//! CodeDeploy task set) uses, is never deregistered, wherever it stands.
//!
//! [`select`] decides (pure); [`in_use`] and [`prune`] are the reads and the writes.

use std::collections::HashSet;

use aws_sdk_ecs::types::{Service, SortOrder, TaskDefinitionStatus};

use crate::aws::Aws;
use crate::error::{Error, Result};

/// DescribeServices takes at most this many services per call.
const DESCRIBE_BATCH: usize = 10;

/// `web1:42` → (`web1`, 42): the family and revision of an ARN or a `family:revision`. `None`
/// for a family alone or anything else.
pub(crate) fn family_revision(task_definition: &str) -> Option<(&str, u32)> {
    let short = task_definition.rsplit('/').next()?;
    let (family, revision) = short.rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

/// The revisions to deregister (pure): of `active` (ARNs, any order; ListTaskDefinitions'
/// family prefix also matches longer families, which are dropped here), every revision of
/// exactly `family` but the newest `keep`, and never one in `in_use` (ARNs or
/// `family:revision`). Oldest first.
pub(crate) fn select(
    active: &[String],
    family: &str,
    in_use: &HashSet<String>,
    keep: usize,
) -> Vec<String> {
    let used: HashSet<(&str, u32)> = in_use.iter().filter_map(|t| family_revision(t)).collect();
    let mut mine: Vec<(u32, &String)> = active
        .iter()
        .filter_map(|arn| match family_revision(arn) {
            Some((f, r)) if f == family => Some((r, arn)),
            _ => None,
        })
        .collect();
    mine.sort_by_key(|m| std::cmp::Reverse(m.0));
    mine.dedup_by_key(|(r, _)| *r);
    let mut out: Vec<String> = mine
        .into_iter()
        .skip(keep)
        .filter(|(r, _)| !used.contains(&(family, *r)))
        .map(|(_, arn)| arn.clone())
        .collect();
    out.reverse();
    out
}

/// The task definitions a service uses: the one it runs, each deployment's (an in-flight one
/// included) and each task set's (CodeDeploy).
pub(crate) fn used_by(service: &Service) -> impl Iterator<Item = &str> {
    service
        .task_definition()
        .into_iter()
        .chain(
            service
                .deployments()
                .iter()
                .filter_map(|d| d.task_definition()),
        )
        .chain(
            service
                .task_sets()
                .iter()
                .filter_map(|t| t.task_definition()),
        )
}

/// Every task definition the services of `cluster` use (see [`used_by`]): ListServices, then
/// DescribeServices in batches of ten.
pub(crate) async fn in_use(aws: &Aws, cluster: &str) -> Result<HashSet<String>> {
    let arns: Vec<String> = aws
        .ecs
        .list_services()
        .cluster(cluster)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::aws("ECS", "ListServices", e))?;
    let mut used = HashSet::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let out = aws
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| Error::aws("ECS", "DescribeServices", e))?;
        for s in out.services() {
            used.extend(used_by(s).map(str::to_string));
        }
    }
    Ok(used)
}

/// The ACTIVE revisions ListTaskDefinitions gives for `family` as a prefix (longer families
/// included: [`select`] drops them), newest first.
pub(crate) async fn active(aws: &Aws, family: &str) -> Result<Vec<String>> {
    aws.ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| Error::aws("ECS", "ListTaskDefinitions", e))
}

/// What to prune after a deploy: the family, how many revisions stay, the cluster whose
/// services are asked what they use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep<'a> {
    pub(crate) family: &'a str,
    pub(crate) keep: usize,
    pub(crate) cluster: &'a str,
}

/// The revisions [`prune`] would deregister now (read-only: the dry run shows them).
pub(crate) async fn planned(aws: &Aws, k: Keep<'_>) -> Result<Vec<String>> {
    let active = active(aws, k.family).await?;
    let used = in_use(aws, k.cluster).await?;
    Ok(select(&active, k.family, &used, k.keep))
}

/// Deregisters the family's revisions beyond the newest `keep` that nothing uses; returns
/// those deregistered (`family:revision`). Stops at the first refusal, with what was done.
pub(crate) async fn prune(
    aws: &Aws,
    k: Keep<'_>,
) -> std::result::Result<Vec<String>, (Vec<String>, Error)> {
    let doomed = planned(aws, k).await.map_err(|e| (Vec::new(), e))?;
    let mut done = Vec::new();
    for arn in doomed {
        if let Err(e) = super::register::deregister(&aws.ecs, &arn).await {
            return Err((done, e));
        }
        done.push(crate::task_definition::short_task_definition(&arn).to_string());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arns(family: &str, revisions: &[u32]) -> Vec<String> {
        revisions
            .iter()
            .map(|r| format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{r}"))
            .collect()
    }

    #[test]
    fn the_newest_n_stay_and_the_rest_go_oldest_first() {
        let active = arns("web1", &[5, 4, 3, 2, 1]);
        assert_eq!(
            select(&active, "web1", &HashSet::new(), 2),
            arns("web1", &[1, 2, 3])
        );
        assert!(select(&active, "web1", &HashSet::new(), 5).is_empty());
        assert!(select(&active, "web1", &HashSet::new(), 9).is_empty());
    }

    #[test]
    fn a_revision_in_use_stays_whatever_its_age_and_however_it_is_named() {
        let active = arns("web1", &[1, 2, 3, 4, 5]);
        let used = HashSet::from([
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:1".to_string(),
            // moto answers with the string sent; a family alone names no revision.
            "web1:3".to_string(),
            "web1".to_string(),
        ]);
        assert_eq!(select(&active, "web1", &used, 2), arns("web1", &[2]));
    }

    #[test]
    fn a_longer_family_that_shares_the_prefix_is_left_alone() {
        let mut active = arns("web1", &[3, 2, 1]);
        active.extend(arns("web10", &[9, 8]));
        active.extend(arns("web1-worker", &[4]));
        assert_eq!(
            select(&active, "web1", &HashSet::new(), 1),
            arns("web1", &[1, 2])
        );
    }

    #[test]
    fn a_family_and_revision_are_read_from_an_arn_or_a_short_name() {
        assert_eq!(
            family_revision("arn:aws:ecs:us-east-1:1:task-definition/web1:42"),
            Some(("web1", 42))
        );
        assert_eq!(family_revision("web1:7"), Some(("web1", 7)));
        assert_eq!(family_revision("web1"), None);
        assert_eq!(family_revision("web1:x"), None);
    }
}
