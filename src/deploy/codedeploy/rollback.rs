//! Taking a CodeDeploy deployment back: after CodeDeploy failed or stopped it (following its
//! own rollback deployment), and when this run stops it (StopDeployment with auto rollback per
//! `rollback-on-failure`, after a timeout, a cancellation, stopping tasks or a failed
//! verification), until traffic is back on the original task set.

use super::*;

impl Watch<'_> {
    /// Our deployment failed or was stopped by CodeDeploy: rolled back when CodeDeploy started a
    /// rollback and it finished, failed otherwise.
    pub(super) async fn after_failure(
        &self,
        what: String,
        rollback_deployment: Option<String>,
        rollback_message: Option<String>,
        report: &mut Outcome,
    ) -> StrategyEnded {
        let follow = Follow::new(&self.timing, false);
        match rollback_deployment {
            Some(rb) => match self.await_rollback(&rb, follow, report).await {
                Ok(Rolled::Done(done)) => {
                    report.rollback = Some(
                        rollback_message
                            .map(|m| format!("{m} ({done})"))
                            .unwrap_or(done),
                    );
                    StrategyEnded::rolled_back(self.error(format!(
                        "{what}; CodeDeploy rolled back to the original task set"
                    )))
                }
                // Not cancelled: the wait ends in Done or an error; StillRunning is only a guard.
                Ok(Rolled::StillRunning) => {
                    report.rollback = Some(format!("rollback deployment {rb} still running"));
                    StrategyEnded::failed(self.error(format!(
                        "{what}; the rollback deployment {rb} has not finished: check it in the console"
                    )))
                }
                Err(e) => {
                    report.rollback = Some(e.to_string());
                    StrategyEnded::failed(
                        self.error(format!("{what}; the rollback did not finish: {e}")),
                    )
                }
            },
            None => {
                report.rollback = rollback_message.clone();
                StrategyEnded::failed(self.error(format!(
                    "{what}; CodeDeploy did not roll back{} (enable automatic rollback on the deployment group to have traffic moved back on failure)",
                    rollback_message.map(|m| format!(": {m}")).unwrap_or_default()
                )))
            }
        }
    }

    /// Waits for CodeDeploy's rollback deployment `rb` to finish; says how traffic ended up.
    /// After a cancellation (`follow.cancelled`) it gives up quietly at the deadline instead.
    pub(super) async fn await_rollback(
        &self,
        rb: &str,
        follow: Follow,
        report: &mut Outcome,
    ) -> Result<Rolled> {
        step(report, format!("rollback deployment {rb} started"));
        let fail = |problem: String| self.error_of(rb, problem);
        let wait = self.wait(rb, follow.deadline, None, follow.cap, &fail);
        let mut tracker = Tracker::new(rb, None);
        let policy = &Policy::of(self.timing.cadence);
        let mut last: Option<Snapshot> = None;
        let ended = poll::until(
            &wait,
            &mut last,
            |stage: &Stage, _| interval(policy, *stage, Instant::now()),
            async |at: Instant| self.look(&mut tracker, at).await,
            |before, now, _| {
                for line in changes(before, now) {
                    step(report, format!("rollback: {line}"));
                }
            },
        )
        .await?;
        let info = match ended {
            Ended::Done(info) => info,
            Ended::TimedOut | Ended::Cancelled if follow.cancelled => {
                return Ok(Rolled::StillRunning);
            }
            Ended::TimedOut | Ended::Cancelled => {
                return Err(self.error_of(
                    rb,
                    format!(
                        "(the rollback) has not finished after {}; it keeps running in CodeDeploy: check it in the console",
                        human(self.timing.rollback_timeout)
                    ),
                ));
            }
        };
        match outcome(&info) {
            Verdict::Ended { status, reason, .. } => Err(self.error_of(
                rb,
                format!(
                    "(the rollback) {}: {reason}; check the service's traffic in the console",
                    describe_status(&status)
                ),
            )),
            _ => {
                let traffic = if last.as_ref().is_some_and(Snapshot::traffic_on_blue) {
                    "traffic is back on the original (blue) task set"
                } else {
                    "rollback deployment succeeded"
                };
                Ok(Rolled::Done(format!("{rb}: {traffic}")))
            }
        }
    }

    /// Stops our deployment (StopDeployment, auto rollback per `rollback-on-failure`) and waits
    /// until it has ended and, with rollback, until traffic is back on the original task set.
    pub(super) async fn stop(&self, reason: StopReason, report: &mut Outcome) -> StrategyEnded {
        let why = match &reason {
            StopReason::Timeout => format!(
                "did not finish within {} (wait-for-minutes)",
                human(self.timing.timeout)
            ),
            StopReason::Cancelled => "the job was cancelled".to_string(),
            StopReason::FailedFast => self.tasks.found_diagnosis().map_or_else(
                || "the new revision's tasks keep stopping".to_string(),
                |d| d.problem(true),
            ),
            StopReason::Verification { headline } => headline.clone(),
        };
        step(
            report,
            format!(
                "stopping deployment {} ({why}){}",
                self.id,
                if self.rollback_on_failure {
                    ", with rollback"
                } else {
                    ", without rollback (rollback-on-failure is false)"
                }
            ),
        );
        let failed_status = match reason {
            StopReason::Timeout | StopReason::FailedFast | StopReason::Verification { .. } => {
                Status::Failed
            }
            StopReason::Cancelled => Status::Cancelled,
        };
        // How the stop ended: `status`, and `rest` after why it was stopped. A failed
        // verification keeps its own error; `rest` is then what became of the traffic.
        let end = |this: &Self, report: &mut Outcome, status: Status, rest: String| {
            let error = match &reason {
                StopReason::Timeout | StopReason::FailedFast => {
                    this.error(format!("{why}; {rest}"))
                }
                StopReason::Cancelled => Error::Cancelled {
                    what: format!("CodeDeploy deployment {}: {why}; {rest}", this.id),
                },
                StopReason::Verification { headline } => {
                    report.rollback.get_or_insert(rest);
                    this.verification_failed(headline.clone())
                }
            };
            StrategyEnded::with(status, error)
        };
        // After a cancellation the request and the follow share the rollback budget.
        let cancelled = matches!(reason, StopReason::Cancelled);
        let budget = cancelled.then(|| Instant::now() + crate::deploy::CANCELLED_ROLLBACK_WAIT);
        let send = self
            .aws
            .codedeploy
            .stop_deployment()
            .deployment_id(self.id)
            .auto_rollback_enabled(self.rollback_on_failure)
            .send();
        let stopped = match budget {
            Some(d) => match tokio::time::timeout_at(d, send).await {
                Ok(stopped) => stopped,
                Err(_) => {
                    let at = match &self.aws.region {
                        Some(region) => console_url(region, self.id),
                        None => "the deployment in the CodeDeploy console".into(),
                    };
                    let text = format!("rollback requested, still running; look at {at}");
                    report.rollback = Some(text.clone());
                    return end(self, report, Status::Cancelled, text);
                }
            },
            None => send.await,
        };
        match stopped {
            Ok(_) => {}
            // It ended between our last look and the stop: the follow below reads how.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_deployment_already_completed_exception()) =>
            {
                step(
                    report,
                    format!(
                        "deployment {} had already ended when StopDeployment arrived",
                        self.id
                    ),
                );
            }
            Err(e) => {
                let msg = crate::error::error_chain(&Error::aws("CodeDeploy", "StopDeployment", e));
                report.rollback = Some(format!("StopDeployment failed: {msg}"));
                return end(
                    self,
                    report,
                    Status::Failed,
                    format!(
                        "stopping it failed ({msg}); it may still be running: stop it in the CodeDeploy console"
                    ),
                );
            }
        }
        // Wait for our deployment to end (CodeDeploy starts the rollback while stopping it).
        // After a cancellation only briefly: the job is killed soon, and CodeDeploy finishes the
        // stop and the rollback on its own.
        let mut follow = Follow::new(&self.timing, cancelled);
        if let Some(d) = budget {
            follow.deadline = d;
        }
        let still_running = |this: &Self, report: &mut Outcome| {
            let text = format!(
                "StopDeployment{} was sent; the run was cancelled, so it reports before CodeDeploy has finished (it goes on in the background): check {} in the console",
                if this.rollback_on_failure {
                    " with rollback"
                } else {
                    ""
                },
                this.id
            );
            report.rollback = Some(text.clone());
            end(this, report, Status::Cancelled, text)
        };
        let fail = |problem: String| self.error(problem);
        let wait = self.wait(self.id, follow.deadline, None, follow.cap, &fail);
        let mut tracker = Tracker::new(self.id, None);
        let soon = Policy::of(self.timing.cadence).soon;
        let ended = poll::until(
            &wait,
            &mut None,
            |_: &Stage, _| soon,
            async |at: Instant| {
                let (seen, _) = self.look(&mut tracker, at).await?;
                Ok((seen, ()))
            },
            |_, _, _| {},
        )
        .await;
        let ended = match ended {
            Ok(ended) => ended,
            Err(e) => return StrategyEnded::of(e),
        };
        let info = match ended {
            Ended::Done(info) => info,
            Ended::TimedOut | Ended::Cancelled if follow.cancelled => {
                return still_running(self, report);
            }
            Ended::TimedOut | Ended::Cancelled => {
                return end(
                    self,
                    report,
                    Status::Failed,
                    format!(
                        "StopDeployment was sent but the deployment has not ended after {}: check it in the console",
                        human(self.timing.rollback_timeout)
                    ),
                );
            }
        };
        match outcome(&info) {
            Verdict::Succeeded => {
                // It finished before the stop took effect: the new version is live.
                step(
                    report,
                    format!(
                        "deployment {} succeeded before the stop took effect",
                        self.id
                    ),
                );
                match &reason {
                    StopReason::Timeout | StopReason::FailedFast => StrategyEnded {
                        status: Status::Succeeded,
                        error: None,
                    },
                    // The new version is live, unverified: the run fails, saying why it was
                    // not rolled back.
                    StopReason::Verification { headline } => {
                        report.rollback = Some(format!(
                            "not rolled back: deployment {} succeeded before StopDeployment took effect, and CodeDeploy has deleted the original task set; deploy the previous version to go back",
                            self.id
                        ));
                        StrategyEnded::failed(self.verification_failed(headline.clone()))
                    }
                    // The job still ends cancelled: it was, though the version is live.
                    StopReason::Cancelled => StrategyEnded::cancelled(Error::Cancelled {
                        what: format!(
                            "the job was cancelled, but CodeDeploy deployment {} had already succeeded: the new version is live",
                            self.id
                        ),
                    }),
                }
            }
            Verdict::Ended {
                rollback_deployment: Some(rb),
                rollback_message,
                ..
            } => match self.await_rollback(&rb, follow, report).await {
                Ok(Rolled::StillRunning) => still_running(self, report),
                Ok(Rolled::Done(done)) => {
                    report.rollback = Some(
                        rollback_message
                            .map(|m| format!("{m} ({done})"))
                            .unwrap_or(done.clone()),
                    );
                    end(
                        self,
                        report,
                        Status::RolledBack,
                        format!("stopped and rolled back ({done})"),
                    )
                }
                Err(e) => {
                    report.rollback = Some(e.to_string());
                    end(
                        self,
                        report,
                        Status::Failed,
                        format!("stopped, but the rollback did not finish: {e}"),
                    )
                }
            },
            _ => {
                let status = info
                    .status()
                    .cloned()
                    .unwrap_or_else(|| DeploymentStatus::from("Unknown"));
                let traffic = if self.rollback_on_failure {
                    "CodeDeploy reported no rollback deployment; check the service's traffic in the console"
                } else {
                    "no rollback was asked for: traffic stays where CodeDeploy left it"
                };
                report.rollback = Some(traffic.to_string());
                end(
                    self,
                    report,
                    failed_status,
                    format!("deployment {}: {traffic}", describe_status(&status)),
                )
            }
        }
    }
}
