//! Rolling back a rolling deployment that failed, timed out or was cancelled: put the service
//! back on the task definition it ran before, wait for it to be steady, and say what happened.
//! When the deployment circuit breaker already started that rollback, it is followed, not
//! duplicated.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use aws_sdk_ecs::types::Deployment;
use tokio_util::sync::CancellationToken;

use super::Rolling;
use super::Target;
use super::progress::Policy;
use crate::aws::Aws;
use crate::deploy::poll::Poller;
use crate::deploy::strategy::Ended;
use crate::deploy::{CANCELLED_ROLLBACK_WAIT, Prepared, deregister_failed, follow_limits};
use crate::deploy::{register, service};
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::plan::AppPlan;

/// The shortest wait for the rollback itself, even with a small `wait-for-minutes`.
const MIN_ROLLBACK_WAIT: Duration = Duration::from_secs(5 * 60);

/// The deployment that failed and why.
#[derive(Debug)]
pub struct Failed<'a> {
    pub deployment_id: &'a str,
    pub cause: Error,
}

/// Rolls the service back after `cause`: `rolled-back`, or `failed` when the rollback failed
/// too (or there is nothing to go back to), with the error the app ends with.
pub(crate) async fn roll_back(
    rolling: &Rolling<'_>,
    failed: Failed<'_>,
    seen_events: &mut HashSet<String>,
    report: &mut Outcome,
) -> Ended {
    let Rolling {
        aws,
        poller,
        plan,
        prepared,
        ..
    } = *rolling;
    let Failed {
        deployment_id: failed_deployment,
        cause,
    } = failed;
    let Some(previous) = prepared.previous_task_definition_arn.as_deref() else {
        report.rollback = Some("no previous task definition to roll back to".into());
        return Ended::failed(cause);
    };
    // A same-revision deploy (force-new-deployment, a rebuilt tag): "back" to that revision
    // would redeploy the failing image. The known good is what the tasks ran before, by digest.
    let pinned;
    let previous = if previous == prepared.task_definition_arn {
        let Some(digest) = prepared.previous_digest.as_deref() else {
            report.rollback = Some(format!(
                "not rolled back: this deploy reused {} (a same-revision redeploy) and the image digest its tasks ran before is not known, so going back would redeploy the failing image; deploy the previous version by its tag",
                crate::task_definition::short_task_definition(previous)
            ));
            return Ended::failed(cause);
        };
        match pin_previous(aws, prepared, digest).await {
            Ok(arn) => {
                report.steps.push(format!(
                    "registered {} with the previous image pinned ({digest}) to roll back to",
                    crate::task_definition::short_task_definition(&arn)
                ));
                pinned = arn;
                pinned.as_str()
            }
            Err(e) => {
                report.rollback = Some(format!(
                    "not rolled back: the revision pinning the previous image could not be registered: {e}"
                ));
                return Ended::failed(cause);
            }
        }
    } else {
        previous
    };
    println!(
        "{}: {cause}\n{}: rolling back to {}",
        plan.app,
        plan.app,
        crate::task_definition::short_task_definition(previous)
    );
    let cancelled = matches!(cause, Error::Cancelled { .. });
    let asked = Restore {
        previous,
        failed_deployment,
        // A cancelled run has seconds left: the rollback, its UpdateService included, gets
        // CANCELLED_ROLLBACK_WAIT in all, and ECS finishes it on its own.
        deadline: cancelled.then(|| Instant::now() + CANCELLED_ROLLBACK_WAIT),
        policy: Policy::of(rolling.timing.cadence),
    };
    match restore(aws, poller, plan, prepared, &asked, seen_events).await {
        Ok((how, steady)) => {
            println!("{}: rolled back: {how}", plan.app);
            report.rollback = Some(how.clone());
            report.steps.push(format!("rolled back: {how}"));
            // A revision that may still serve (a cancelled run reports before the rollback is
            // steady) stays registered.
            if plan.settings.ecs.deregister_failed_task_definition && prepared.changed && steady {
                deregister_failed(aws, plan, &prepared.task_definition_arn, report).await;
            }
            Ended::rolled_back(cause)
        }
        Err(rollback_error) => {
            report.rollback = Some(format!("rollback failed: {rollback_error}"));
            Ended::failed(Error::RollbackFailed {
                target: format!(
                    "ECS service {} (cluster {})",
                    prepared.service, prepared.cluster
                ),
                cause: cause.to_string(),
                rollback: rollback_error.to_string(),
            })
        }
    }
}

/// Registers the deployed revision again with the app's container pinned to `digest` (what its
/// tasks ran before a same-revision deploy): the rollback target when "the previous revision" is
/// our own.
async fn pin_previous(aws: &Aws, prepared: &Prepared, digest: &str) -> Result<String> {
    let td = &prepared.task_definition;
    let image =
        crate::task_definition::container_image(td, &prepared.container).unwrap_or_default();
    let pinned = pinned_reference(image, digest);
    let rendered = crate::task_definition::render(
        td,
        &prepared.container,
        &pinned,
        &crate::task_definition::ContainerEdits::default(),
    )?;
    register::register_raw(&aws.ecs, &rendered).await
}

/// `registry/repo:tag` (or `@digest`) as `registry/repo@digest`. Pure.
pub(crate) fn pinned_reference(image: &str, digest: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let name = match name[last_slash..].rfind(':') {
        Some(i) => &name[..last_slash + i],
        None => name,
    };
    format!("{name}@{digest}")
}

/// What to restore: the revision to go back to, the deployment that failed, and, when the run
/// was cancelled, the moment the rollback reports by (requested or not, steady or not).
struct Restore<'a> {
    previous: &'a str,
    failed_deployment: &'a str,
    deadline: Option<Instant>,
    /// How soon to look again while following the rollback (the deploy's cadence).
    policy: Policy,
}

/// Puts the service back on `previous` and waits until that deployment is steady; says what it
/// did and whether the service was seen steady (a cancelled run may report before).
async fn restore(
    aws: &Aws,
    poller: &Poller,
    plan: &AppPlan,
    prepared: &Prepared,
    asked: &Restore<'_>,
    seen_events: &mut HashSet<String>,
) -> Result<(String, bool)> {
    let previous = asked.previous;
    // The circuit breaker (rollback: true) may already have started a deployment of the
    // previous revision: follow it instead of starting another one.
    let look = poller.look(&prepared.cluster, &prepared.service);
    let current = match asked.deadline {
        Some(d) => tokio::time::timeout_at(d, look).await.ok(),
        None => Some(look.await),
    }
    .and_then(|r| r.ok())
    .flatten();
    let already = current
        .as_ref()
        .and_then(service::primary_deployment)
        .filter(|d| {
            d.task_definition() == Some(previous) && d.id() != Some(asked.failed_deployment)
        })
        .and_then(Deployment::id)
        .map(str::to_string);
    let (deployment_id, how) = match already {
        Some(id) => (
            id.clone(),
            format!(
                "ECS already rolled back to {} (deployment {id})",
                crate::task_definition::short_task_definition(previous)
            ),
        ),
        None => {
            // Only the revision goes back; a desired count the deploy set stays.
            let unchanged = crate::inputs::ServiceUpdate::default();
            let update = service::update_service(
                &aws.ecs,
                &prepared.cluster,
                &prepared.service,
                previous,
                false,
                &unchanged,
            );
            let updated = match asked.deadline {
                Some(d) => tokio::time::timeout_at(d, update).await.unwrap_or_else(|_| {
                    Err(Error::Service {
                        cluster: prepared.cluster.clone(),
                        service: prepared.service.clone(),
                        problem: format!(
                            "the rollback's UpdateService to {} got no answer within {}s of the cancellation; check the service's deployments",
                            crate::task_definition::short_task_definition(previous),
                            CANCELLED_ROLLBACK_WAIT.as_secs()
                        ),
                    })
                }),
                None => update.await,
            }?;
            let id = service::primary_deployment(&updated)
                .and_then(Deployment::id)
                .map(str::to_string)
                .ok_or_else(|| Error::Service {
                    cluster: prepared.cluster.clone(),
                    service: prepared.service.clone(),
                    problem: "the rollback's UpdateService answered without a PRIMARY deployment"
                        .into(),
                })?;
            (
                id.clone(),
                format!(
                    "service updated back to {} (deployment {id})",
                    crate::task_definition::short_task_definition(previous)
                ),
            )
        }
    };
    let target = Target {
        label: &plan.app,
        cluster: &prepared.cluster,
        service: &prepared.service,
        deployment_id: &deployment_id,
        timeout: service::wait_timeout(plan).max(MIN_ROLLBACK_WAIT),
        // After a cancellation: one look a second, as every path follows its rollback then.
        cap: follow_limits(
            CANCELLED_ROLLBACK_WAIT,
            Duration::MAX,
            asked.deadline.is_some(),
        )
        .1,
        rollback_to: None,
        early: None,
        policy: asked.policy,
    };
    // The run may have been cancelled already: the rollback is followed with a token of its own.
    let own = CancellationToken::new();
    let waiting = super::wait_for_deployment(poller, &target, seen_events, &own);
    if let Some(deadline) = asked.deadline {
        let reported = tokio::time::sleep_until(deadline);
        return tokio::select! {
            r = waiting => r.map(|()| (format!("{how}, steady again"), true)),
            () = reported => Ok((format!(
                "{how}; the run was cancelled, so it reports before the service is steady (ECS goes on rolling back)"
            ), false)),
        };
    }
    waiting.await?;
    Ok((format!("{how}, steady again"), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_reference_swaps_the_tag_for_the_digest() {
        let d = "sha256:0123";
        assert_eq!(
            pinned_reference("123.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3", d),
            "123.dkr.ecr.us-east-1.amazonaws.com/web1@sha256:0123"
        );
        assert_eq!(
            pinned_reference("localhost:5000/web1:latest", d),
            "localhost:5000/web1@sha256:0123"
        );
        assert_eq!(
            pinned_reference("localhost:5000/web1", d),
            "localhost:5000/web1@sha256:0123"
        );
        assert_eq!(pinned_reference("web1@sha256:ffff", d), "web1@sha256:0123");
    }
}
