//! The rolling path: `wait_watching` (with the stopped-task watch) on a scripted ECS whose rollouts have every new task
//! running at 20 s (the old tasks draining from then on) and are `COMPLETED` at 26 s, plus
//! [`STAGGER`] per deployment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use ecs_deploy::deploy::diagnosis::{Tasks, Watch, WatchFor};
use ecs_deploy::deploy::poll::Poller;
use ecs_deploy::deploy::rolling::progress::Policy;
use ecs_deploy::deploy::rolling::{Target, wait_watching};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::common::{self, Outcome, STAGGER, cluster_outcome};

/// When every new task runs (old ones start draining), seconds after the update.
const RUNNING_AT: f64 = 20.0;
/// When the first deployment is COMPLETED; deployment `i` completes `i * STAGGER` s later.
const DONE_AT: f64 = 26.0;

fn dep(id: &str, status: &str, running: i32, state: DeploymentRolloutState) -> Deployment {
    Deployment::builder()
        .id(id)
        .status(status)
        .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/web:2")
        .desired_count(2)
        .running_count(running)
        .pending_count(2 - running)
        .rollout_state(state)
        .build()
}

fn done_at(index: usize) -> f64 {
    DONE_AT + index as f64 * STAGGER
}

fn service(name: &str, index: usize, t: f64) -> Service {
    use DeploymentRolloutState::{Completed, InProgress};
    let deployments = if t >= done_at(index) {
        vec![dep("new", "PRIMARY", 2, Completed)]
    } else if t >= RUNNING_AT {
        vec![
            dep("new", "PRIMARY", 2, InProgress),
            dep("old", "ACTIVE", 1, Completed),
        ]
    } else {
        vec![
            dep("new", "PRIMARY", (t / RUNNING_AT * 2.0) as i32, InProgress),
            dep("old", "ACTIVE", 2, Completed),
        ]
    };
    Service::builder()
        .service_name(name)
        .status("ACTIVE")
        .set_deployments(Some(deployments))
        .build()
}

/// One cluster with one poller: the deployments `indexes` wait together.
async fn cluster(policy: Policy, indexes: Vec<usize>) -> Outcome {
    let start = Instant::now();
    let rule = mock!(Client::describe_services).then_compute_response(move |req| {
        let t = start.elapsed().as_secs_f64();
        let services = req
            .services()
            .iter()
            .map(|n| {
                let index: usize = n.trim_start_matches("web").parse().unwrap_or(0);
                service(n, index, t)
            })
            .collect();
        MockResponse::Output(
            DescribeServicesOutput::builder()
                .set_services(Some(services))
                .build(),
        )
    });
    let task_reads = Arc::new(AtomicU64::new(0));
    let tasks = common::no_stopped_tasks(task_reads.clone());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule, &tasks]);
    let poller = Arc::new(Poller::new(client.clone()));
    let cancel = CancellationToken::new();
    let waits = indexes.into_iter().map(|index| {
        let poller = poller.clone();
        let cancel = cancel.clone();
        let client = client.clone();
        async move {
            let name = format!("web{index}");
            let target = Target {
                label: &name,
                cluster: "prod",
                service: &name,
                deployment_id: "new",
                timeout: Duration::from_secs(600),
                cap: Duration::MAX,
                rollback_to: None,
                early: None,
                policy,
            };
            let mut seen = Default::default();
            // The stopped-task watch the rolling deploy runs beside the wait.
            let watch = Watch::new(
                client.clone(),
                WatchFor {
                    label: &name,
                    cluster: "prod",
                    tasks: Tasks::StartedBy("ecs-svc/new".into()),
                    task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
                    region: None,
                    threshold: 3,
                    events_before: Default::default(),
                },
            );
            wait_watching(&poller, &target, &mut seen, &cancel, Some(&watch))
                .await
                .map(|_| start.elapsed().as_secs_f64() - done_at(index))
                .map_err(|e| e.to_string())
        }
    });
    let lags = futures_util::future::join_all(waits).await;
    let reads = (poller.calls(), task_reads.load(Ordering::Relaxed));
    cluster_outcome("rolling", lags, reads, start.elapsed())
}

/// 1 service per cluster (10 clusters, to sample the lag 10 times), and 10 services in one.
pub async fn scenarios(policy: Policy) -> (Outcome, Outcome) {
    common::scenarios(|indexes| cluster(policy, indexes)).await
}

/// The adaptive policy the action uses.
pub fn adaptive() -> Policy {
    Policy::default()
}

/// A fixed 15 s poll (the SDK's services-stable waiter delay), for comparison.
pub fn fixed_15s() -> Policy {
    Policy::every(Duration::from_secs(15))
}
