//! Taking an ECS blue/green deployment back when following it stopped short (wait-for-minutes
//! ran out, the job was cancelled, the new tasks keep stopping): StopServiceDeployment with
//! stopType ROLLBACK, then following ECS until production traffic is back on blue.

use super::*;

/// Why a rollback is sent, and by when a cancelled run reports.
pub(super) struct Asked<'a> {
    pub(super) stop: Stop,
    pub(super) why: &'a str,
    /// After a cancellation: the request and the follow both end by then.
    pub(super) deadline: Option<Instant>,
}

/// What a rollback acts on: the service deployment `arn` of the prepared service, followed
/// through `batcher`.
pub(super) struct Rollback<'a> {
    pub(super) aws: &'a Aws,
    pub(super) batcher: &'a Batcher<ServiceDeploymentAnswer>,
    pub(super) prepared: &'a Prepared,
    pub(super) arn: &'a str,
    pub(super) timing: &'a Timing,
}

/// Rolls our deployment back through ECS (StopServiceDeployment, stopType ROLLBACK) after a
/// timeout or a cancellation, and waits until traffic is back on blue.
pub(super) async fn rollback(
    target: Rollback<'_>,
    asked: &Asked<'_>,
    report: &mut Outcome,
    last: &mut Option<Progress>,
) -> StrategyEnded {
    let Rollback {
        aws,
        batcher,
        prepared,
        arn,
        timing,
    } = target;
    let (stop, why) = (asked.stop, asked.why);
    let svc = &prepared.service;
    let blue = prepared
        .previous_task_definition_arn
        .clone()
        .unwrap_or_else(|| "the previous revision".into());
    let failed = |report: &mut Outcome, rollback: String, problem: String| {
        report.rollback = Some(rollback);
        StrategyEnded::failed(deployment_error(prepared, arn, problem))
    };
    // ECS may already be rolling back on its own (health checks, alarms): a second request
    // would be refused, so wait for that rollback instead.
    let already = last
        .as_ref()
        .map(|p| outcome(Some(&ServiceDeploymentStatus::from(p.status.as_str()))))
        == Some(Verdict::RollingBack);
    if already {
        step(
            report,
            format!("{why}; ECS is already rolling back {arn}: waiting for it"),
        );
    } else {
        console::warning(&format!(
            "{svc}: {why}; rolling back service deployment {arn}"
        ));
        step(
            report,
            format!("{why}: StopServiceDeployment (ROLLBACK) {arn}"),
        );
        match request_rollback(aws, arn, asked.deadline).await {
            Ok(true) => {}
            Ok(false) => return still_rolling_back(aws, prepared, arn, report),
            Err(e) => {
                return failed(
                    report,
                    format!("rollback request failed: {e}"),
                    format!("{why}; and the rollback request failed: {e}"),
                );
            }
        }
    }
    // The job may already be cancelled: the rollback wait does not listen to it. After a
    // cancellation it is followed only until the deadline (the job is killed soon; ECS goes on
    // without us).
    let cancelled = stop == Stop::Cancelled;
    let (limit, cap) = follow_limits(timing.rollback_timeout, Duration::MAX, cancelled);
    let watched = Watched {
        batcher,
        cluster: &prepared.cluster,
        arn,
        policy: &Policy::of(timing.cadence),
        deadline: asked.deadline.unwrap_or_else(|| Instant::now() + limit),
        cancel: None,
        cap,
        tasks: None,
        pause: None,
    };
    let ended = match watched.follow(report, last, &mut Hooks::default()).await {
        Ok(ended) => ended,
        Err(e) => {
            return failed(
                report,
                format!("rollback requested; following it failed: {e}"),
                format!("{why}; rollback requested, then following it failed: {e}"),
            );
        }
    };
    let d = match ended {
        Ok(d) => d,
        // Traffic not seen back on blue before the deadline: ECS goes on without us.
        Err(_) if cancelled => return still_rolling_back(aws, prepared, arn, report),
        Err(_) => {
            return failed(
                report,
                format!(
                    "rollback requested; not finished after {} min",
                    timing.rollback_timeout.as_secs().div_ceil(60)
                ),
                format!("{why}; the rollback did not finish in time either: check the service"),
            );
        }
    };
    let status = d.status().map_or("no status", |s| s.as_str());
    let reason = d
        .status_reason()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match outcome(d.status()) {
        Verdict::RolledBack => {
            report.rollback = Some(format!(
                "rolled back to {blue}: production traffic is on blue again"
            ));
            step(report, format!("rolled back: traffic is on {blue} again"));
            StrategyEnded::rolled_back(match stop {
                Stop::Cancelled => Error::Cancelled {
                    what: format!(
                        "ECS blue/green deployment {arn} of {svc}; rolled back to {blue}"
                    ),
                },
                Stop::TimedOut | Stop::FailedFast | Stop::Unanswered => {
                    deployment_error(prepared, arn, format!("{why}; rolled back to {blue}"))
                }
            })
        }
        Verdict::Succeeded => failed(
            report,
            format!("too late: the deployment finished {status} before the rollback took effect"),
            format!(
                "{why}; the deployment finished {status} before the rollback took effect, so the new revision serves"
            ),
        ),
        _ => failed(
            report,
            format!("rollback ended {status}{reason}"),
            format!("{why}; and the rollback ended {status}{reason}: check the service now"),
        ),
    }
}

/// StopServiceDeployment (ROLLBACK) for `arn`; with a deadline (a cancelled run), `Ok(false)`
/// when ECS has not answered by then (the request may still take effect).
async fn request_rollback(aws: &Aws, arn: &str, deadline: Option<Instant>) -> Result<bool> {
    let send = aws
        .ecs
        .stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send();
    let sent = match deadline {
        Some(d) => match tokio::time::timeout_at(d, send).await {
            Ok(sent) => sent,
            Err(_) => return Ok(false),
        },
        None => send.await,
    };
    sent.map(|_| true)
        .map_err(|e| Error::aws("ECS", "StopServiceDeployment", e))
}

/// A cancelled run out of time before ECS answered its rollback request: `cancelled`, and
/// where a person looks to see it through.
fn still_rolling_back(
    aws: &Aws,
    prepared: &Prepared,
    arn: &str,
    report: &mut Outcome,
) -> StrategyEnded {
    let at = aws.region.as_deref().map_or_else(
        || "the service's deployments in the ECS console".to_string(),
        |r| crate::aws::ecs_service_url(r, &prepared.cluster, &prepared.service),
    );
    let text = format!("rollback requested, still running; look at {at}");
    step(report, text.clone());
    report.rollback = Some(text.clone());
    StrategyEnded::cancelled(Error::Cancelled {
        what: format!(
            "ECS blue/green deployment {arn} of {}; {text}",
            prepared.service
        ),
    })
}
