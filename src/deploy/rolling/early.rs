//! Early success on a rolling service, followed: with `earlySuccessCriteria` enabled and
//! `sourceServiceRevisionCleanup: DEFERRED`, ECS marks our service deployment SUCCESSFUL once
//! `healthyPercent` of the new tasks are healthy and drains the old tasks afterwards; the rolling
//! wait ([`super::wait_watching`]) then ends at SUCCESSFUL, not after the drain.
//!
//! What it reads, and when: nothing until the service (as the wait reads it anyway) has the
//! setting and enough of our tasks run for SUCCESSFUL to be possible; from then on our service
//! deployment, through the run's poller (DescribeServiceDeployments, batched per cluster), and
//! once DescribeServiceRevisions of its target revision, to know it is ours (it runs the task
//! definition we deployed). Without the setting, or with BLOCKING cleanup (ECS then says
//! SUCCESSFUL only after the drain, when the service wait ends anyway), nothing is read.

use std::collections::HashSet;

use aws_sdk_ecs::types::{Service, ServiceDeployment};
use tokio::time::Instant;

use super::progress::{Early, EarlySuccess, Reading, early_success, reading};
use crate::deploy::poll::{Batcher, Failure, Kind, ServiceDeploymentAnswer};
use crate::task_definition::short_task_definition;

/// Which service deployment is ours, for [`EarlyWatch`]: what our UpdateService deployed and
/// what it left behind.
#[derive(Debug, Clone)]
pub struct EarlyFor<'a> {
    /// For DescribeServiceRevisions (once per service deployment looked at).
    pub ecs: &'a aws_sdk_ecs::Client,
    /// The task definition we deployed: our service deployment's target revision runs it.
    pub task_definition: &'a str,
    /// The service deployment current before our update: never ours.
    pub before: Option<&'a str>,
    /// The service deployment UpdateService named current, when it named one.
    pub hint: Option<&'a str>,
}

/// The state of early success over one wait: our service deployment once found, the ones found
/// not ours, and since when ECS may mark SUCCESSFUL any moment.
pub(crate) struct EarlyWatch<'a> {
    of: &'a EarlyFor<'a>,
    batcher: &'a Batcher<ServiceDeploymentAnswer>,
    cluster: &'a str,
    label: &'a str,
    ours: Option<String>,
    not_ours: HashSet<String>,
    /// When enough of our tasks first ran (the criteria in reach), and the criteria then.
    reach_since: Option<Instant>,
    criteria: Option<EarlySuccess>,
    /// Set when early success cannot be followed (the reads are denied, ECS names no service
    /// deployment): the wait goes on as without the setting.
    off: bool,
}

impl<'a> EarlyWatch<'a> {
    /// A watch of `of`'s service deployment in `cluster`, read through `batcher`.
    pub(crate) fn new(
        of: &'a EarlyFor<'a>,
        batcher: &'a Batcher<ServiceDeploymentAnswer>,
        cluster: &'a str,
        label: &'a str,
    ) -> EarlyWatch<'a> {
        EarlyWatch {
            of,
            batcher,
            cluster,
            label,
            ours: None,
            not_ours: HashSet::new(),
            reach_since: None,
            criteria: None,
            off: false,
        }
    }

    /// The criteria, when `service` (just read) has early success with DEFERRED cleanup and
    /// enough of deployment `deployment_id` runs for ECS to mark it SUCCESSFUL: then this look
    /// reads our service deployment. Remembers the first such moment.
    pub(crate) fn armed(&mut self, service: &Service, deployment_id: &str) -> Option<EarlySuccess> {
        if self.off {
            return None;
        }
        let criteria = early_success(service)?;
        let ours = service
            .deployments()
            .iter()
            .find(|d| d.id() == Some(deployment_id))?;
        self.criteria = Some(criteria);
        if self.reach_since.is_none() {
            if !criteria.within_reach(ours) {
                return None;
            }
            self.reach_since = Some(Instant::now());
            let at = criteria
                .healthy_percent
                .map_or("all".to_string(), |p| format!("{p}%"));
            println!(
                "{}: early success: ECS marks the deployment SUCCESSFUL once {at} of the new tasks are healthy and drains the old ones afterwards; the wait ends then",
                self.label
            );
        }
        Some(criteria)
    }

    /// Where early success stands for the interval, after a look at `service`.
    pub(crate) fn pace(&self, service: &Service) -> Early {
        match self.reach_since {
            _ if self.off || early_success(service).is_none() => Early::Off,
            Some(since) => Early::InReach(since.elapsed()),
            None => Early::Awaiting,
        }
    }

    /// Our service deployment's ARN when it is known and the watch reads: a look may then read
    /// it beside the service, no later than its own time.
    pub(crate) fn known(&self) -> Option<&str> {
        self.ours
            .as_deref()
            .filter(|_| !self.off && self.reach_since.is_some())
    }

    /// The criteria, when `read` (of our known service deployment) says ECS marked it
    /// SUCCESSFUL.
    pub(crate) fn successful(
        &self,
        read: &std::result::Result<Option<ServiceDeployment>, Failure>,
    ) -> Option<EarlySuccess> {
        match read {
            Ok(Some(d)) if reading(d) == Reading::Successful => self.criteria,
            _ => None,
        }
    }

    /// Our service deployment as ECS describes it now (no later than `at`): `None` when it
    /// could not be read this time (said in the log; the next look tries again). Only
    /// throttling comes back as a failure, so the wait backs off.
    pub(crate) async fn read(
        &self,
        arn: &str,
        at: Instant,
    ) -> std::result::Result<Option<ServiceDeployment>, Failure> {
        match self.batcher.look(self.cluster, arn, at).await {
            Ok(Some(Ok(d))) => Ok(Some(d)),
            Ok(Some(Err(why))) => {
                println!(
                    "{}: service deployment {arn} not described ({why}); looking again",
                    self.label
                );
                Ok(None)
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e.failure()),
        }
    }

    /// After this look's read of the service: finds our service deployment when not known yet,
    /// reads it (unless `read` already did, beside the service), and says whether ECS marked it
    /// SUCCESSFUL. A read that is denied turns the watch off (the wait goes on as without early
    /// success, and the log says which permission is missing); one that fails on the way is
    /// tried again at the next look.
    pub(crate) async fn check(
        &mut self,
        criteria: EarlySuccess,
        service: &Service,
        read: Option<std::result::Result<Option<ServiceDeployment>, Failure>>,
        at: Instant,
    ) -> std::result::Result<Option<EarlySuccess>, Failure> {
        let described = match read {
            Some(r) => r,
            None => match self.find(service, at).await {
                Ok(Some(found)) => Ok(Some(found)),
                Ok(None) => return Ok(None),
                Err(f) => Err(f),
            },
        };
        let described = match described {
            Ok(d) => d,
            Err(f) => return self.failed(f),
        };
        Ok(match described.as_ref().map(reading) {
            Some(Reading::Successful) => Some(criteria),
            Some(Reading::Ended(status)) => {
                // ECS ended it otherwise (its rollback, a stop): the service's own reading says
                // how, as without early success.
                println!(
                    "{}: service deployment {} ended {}; following the service",
                    self.label,
                    self.ours.as_deref().unwrap_or("?"),
                    status.as_str()
                );
                self.off = true;
                None
            }
            Some(Reading::Running) | None => None,
        })
    }

    /// Finds our service deployment: the service's current one (or the one UpdateService
    /// named), when it is not the one before our update and its target revision runs our task
    /// definition. Answers it as described, so this look needs no second read.
    async fn find(
        &mut self,
        service: &Service,
        at: Instant,
    ) -> std::result::Result<Option<ServiceDeployment>, Failure> {
        if let Some(arn) = self.ours.clone() {
            return self.read(&arn, at).await;
        }
        let candidate = service
            .current_service_deployment()
            .or(self.of.hint)
            .filter(|c| Some(*c) != self.of.before && !self.not_ours.contains(*c))
            .map(str::to_string);
        let Some(arn) = candidate else {
            if service.current_service_deployment().is_none() && self.of.hint.is_none() {
                println!(
                    "{}: ECS names no service deployment for the service; waiting for the old tasks to drain, as without early success",
                    self.label
                );
                self.off = true;
            }
            return Ok(None);
        };
        let Some(described) = self.read(&arn, at).await? else {
            return Ok(None);
        };
        let revision = described
            .target_service_revision()
            .and_then(|r| r.arn())
            .map(str::to_string);
        let task_definition = match revision {
            Some(r) => self.revision_task_definition(&r).await?,
            None => None,
        };
        let Some(task_definition) = task_definition else {
            return Ok(None);
        };
        if same_task_definition(&task_definition, self.of.task_definition) {
            println!("{}: following service deployment {arn}", self.label);
            self.ours = Some(arn);
            Ok(Some(described))
        } else {
            println!(
                "{}: service deployment {arn} deploys {}, not {}: not ours",
                self.label,
                short_task_definition(&task_definition),
                short_task_definition(self.of.task_definition)
            );
            self.not_ours.insert(arn);
            Ok(None)
        }
    }

    /// The task definition service revision `revision` runs (DescribeServiceRevisions).
    async fn revision_task_definition(
        &self,
        revision: &str,
    ) -> std::result::Result<Option<String>, Failure> {
        let answer = self
            .of
            .ecs
            .describe_service_revisions()
            .service_revision_arns(revision)
            .send()
            .await
            .map_err(|e| Failure::aws("ECS", "DescribeServiceRevisions", e))?;
        Ok(answer
            .service_revisions()
            .iter()
            .find(|r| r.service_revision_arn() == Some(revision))
            .and_then(|r| r.task_definition())
            .map(str::to_string))
    }

    /// A failed read: throttling goes back to the wait (it backs off); a refusal turns the
    /// watch off, saying which permission is missing; anything else is tried again next look.
    fn failed(&mut self, f: Failure) -> std::result::Result<Option<EarlySuccess>, Failure> {
        match f.kind {
            Kind::Throttled => Err(f),
            Kind::Transient => {
                println!(
                    "{}: could not read the service deployment, trying again: {}",
                    self.label, f.error
                );
                Ok(None)
            }
            Kind::Fatal => {
                crate::runner::console::warning(&format!(
                    "{}: early success not followed ({}); waiting for the old tasks to drain, as without it. Allow ecs:DescribeServiceDeployments and ecs:DescribeServiceRevisions (see the IAM page) to end the wait at SUCCESSFUL",
                    self.label, f.error
                ));
                self.off = true;
                Ok(None)
            }
        }
    }
}

/// The same task definition, by ARN or `family:revision`.
fn same_task_definition(a: &str, b: &str) -> bool {
    a == b || short_task_definition(a) == short_task_definition(b)
}
