//! Benchmark of the rolling wait: how soon after a rollout completes the action notices
//! (detection lag), and how many DescribeServices calls a deployment costs, for 1 service and
//! for 10 services deploying together (one shared poller).
//!
//! The ECS side is scripted (aws-smithy-mocks, answering instantly): each service's new tasks
//! are all running at `RUNNING_AT` and its rollout is COMPLETED at a known moment, staggered by
//! 100 ms per service so the lag is sampled across the polling tick. Real time, not a paused
//! clock: the figures are what a run would see, minus DescribeServices' own latency.
//!
//! Run: `cargo bench --bench wait` (prints a Markdown table).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use ecs_deploy::deploy::wait::{Policy, Poller, Target, wait_for_deployment};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// When every new task runs (old ones start draining), seconds after the update.
const RUNNING_AT: f64 = 20.0;
/// When the first service's rollout is COMPLETED; service `i` completes `i * 0.1` s later.
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
    DONE_AT + index as f64 * 0.1
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

struct Outcome {
    lags: Vec<f64>,
    calls: u64,
    deployments: usize,
}

/// Runs `groups` independent runs (each with its own poller) of `per_group` services each.
async fn scenario(policy: Policy, groups: usize, per_group: usize) -> Outcome {
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
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule]);
    let cancel = CancellationToken::new();
    let mut pollers = Vec::new();
    let mut waits = Vec::new();
    for g in 0..groups {
        let poller = Arc::new(Poller::with_policy(client.clone(), policy));
        pollers.push(poller.clone());
        for s in 0..per_group {
            let index = g * per_group + s;
            let poller = poller.clone();
            let cancel = cancel.clone();
            waits.push(tokio::spawn(async move {
                let name = format!("web{index}");
                let target = Target {
                    label: &name,
                    cluster: "prod",
                    service: &name,
                    deployment_id: "new",
                    timeout: Duration::from_secs(600),
                };
                let mut seen = Default::default();
                wait_for_deployment(&poller, &target, &mut seen, &cancel)
                    .await
                    .map(|()| start.elapsed().as_secs_f64() - done_at(index))
            }));
        }
    }
    let mut lags = Vec::new();
    for w in waits {
        match w.await {
            Ok(Ok(lag)) => lags.push(lag),
            Ok(Err(e)) => eprintln!("wait failed: {e}"),
            Err(e) => eprintln!("wait panicked: {e}"),
        }
    }
    Outcome {
        deployments: lags.len(),
        lags,
        calls: pollers.iter().map(|p| p.calls()).sum(),
    }
}

fn row(label: &str, o: &Outcome) -> String {
    let n = o.lags.len().max(1) as f64;
    let mean = o.lags.iter().sum::<f64>() / n;
    let max = o.lags.iter().copied().fold(0.0, f64::max);
    format!(
        "| {label} | {} | {mean:.2} s | {max:.2} s | {} | {:.1} |",
        o.deployments,
        o.calls,
        o.calls as f64 / o.deployments.max(1) as f64
    )
}

#[tokio::main]
async fn main() {
    // Progress lines go to stdout; keep them out of the table by printing it at the end.
    let adaptive = Policy::default();
    // What a fixed 15 s poll (the SDK's services-stable waiter delay) would give.
    let fixed = Policy {
        fast: Duration::from_secs(15),
        slow: Duration::from_secs(15),
        warmup: Duration::ZERO,
        max_backoff: Duration::from_secs(60),
    };
    let (one, ten, fixed_ten) = tokio::join!(
        // 1 service: 10 separate runs (own poller each), to sample the lag 10 times.
        scenario(adaptive, 10, 1),
        // 10 services in one run: one shared poller.
        scenario(adaptive, 1, 10),
        scenario(fixed, 1, 10),
    );
    println!();
    println!(
        "rollout: new tasks running at {RUNNING_AT} s, COMPLETED at {DONE_AT} s + 0.1 s per service"
    );
    println!(
        "| scenario | deployments | mean lag | max lag | DescribeServices calls | calls per deployment |"
    );
    println!("|---|---|---|---|---|---|");
    println!("{}", row("1 service per run (adaptive, 10 runs)", &one));
    println!(
        "{}",
        row("10 services in one run (adaptive, shared poller)", &ten)
    );
    println!(
        "{}",
        row("10 services, fixed 15 s poll (baseline)", &fixed_ten)
    );
}
