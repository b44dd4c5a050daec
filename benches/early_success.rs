//! Benchmark of ECS's early success on a rolling service: how soon after ECS marks our service
//! deployment SUCCESSFUL the `ecs-deploy` process exits, while the old tasks still drain (for
//! five minutes: a long deregistration delay, which the wait no longer sits out). The real
//! binary deploys one rolling service against the scripted ECS of the tests
//! (`tests/it/support/scripted_ecs.rs`, `Script::early` with DEFERRED cleanup): four of five new
//! tasks run before the rollout time and are healthy at it, when the service deployment turns
//! SUCCESSFUL (6 s after the update in the first run, the new tasks running from 4 s: a gap
//! shorter than any load balancer health check's). Each run moves that moment by 0.17 s, so
//! SUCCESSFUL falls at every point of the 0.75 s look interval. Wall clock, a fresh process a
//! run; the lag is the process's exit minus the script's SUCCESSFUL, both on this process's
//! clock.
//!
//! Run: `cargo bench --bench early_success --profile dev` (prints a Markdown table);
//! `EARLY_BENCH_RUNS` sets the runs (default 8), `EARLY_BENCH_FIRST` the first run's SUCCESSFUL in
//! milliseconds after the update (default 6000), `EARLY_BENCH_LOG=1` shows each run's log.

#[allow(dead_code)]
#[path = "../tests/it/support/scripted_ecs.rs"]
mod scripted_ecs;

mod binary;

use std::time::{Duration, Instant};

use scripted_ecs::{EarlyScript, Script, ScriptedEcs};

/// How long the old tasks drain after SUCCESSFUL.
const DRAIN: Duration = Duration::from_secs(300);

/// One run's figures.
struct Run {
    /// Seconds from the script's SUCCESSFUL to the process's exit.
    lag: f64,
    /// Seconds from the process's start to its exit.
    wall: f64,
    /// Whether it exited before the old tasks were gone.
    before_drain: bool,
    status: String,
    describe_services: usize,
    describe_service_deployments: usize,
    describe_service_revisions: usize,
}

async fn one_run(rollout: Duration) -> Run {
    let ecs = ScriptedEcs::start(
        &["web1"],
        Script {
            rollout,
            early: Some(EarlyScript {
                cleanup: "DEFERRED",
                drain: DRAIN,
            }),
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    binary::workspace(dir.path(), &["web1"]);
    let output = dir.path().join("github_output");
    std::fs::write(&output, "").expect("output file");
    let log = std::env::var_os("EARLY_BENCH_LOG").is_some();
    let mut cmd = binary::command(dir.path(), &ecs.endpoint(), &output, log);
    let started = Instant::now();
    let exit = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .expect("run thread")
        .expect("start ecs-deploy");
    let exited = Instant::now();
    let successful = ecs.successful_at("web1").expect("the service was updated");
    let drained = ecs.drained_at("web1").expect("the service was updated");
    let lag = if exited >= successful {
        (exited - successful).as_secs_f64()
    } else {
        -(successful - exited).as_secs_f64()
    };
    let status = binary::status_output(&output);
    Run {
        lag,
        wall: (exited - started).as_secs_f64(),
        before_drain: exited < drained,
        status: format!("{status} (exit {})", exit.code().unwrap_or(-1)),
        describe_services: ecs.count("DescribeServices"),
        describe_service_deployments: ecs.count("DescribeServiceDeployments"),
        describe_service_revisions: ecs.count("DescribeServiceRevisions"),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("EARLY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut results = Vec::new();
    for i in 0..runs {
        let rollout = Duration::from_millis(
            std::env::var("EARLY_BENCH_FIRST")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(6000)
                + 170 * i as u64,
        );
        let r = one_run(rollout).await;
        eprintln!(
            "run {i}: SUCCESSFUL at {:.2} s, exit {:.3} s after it ({:.2} s in all), {}; before the drain: {}; DescribeServices {}, DescribeServiceDeployments {}, DescribeServiceRevisions {}",
            rollout.as_secs_f64(),
            r.lag,
            r.wall,
            r.status,
            r.before_drain,
            r.describe_services,
            r.describe_service_deployments,
            r.describe_service_revisions
        );
        results.push(r);
    }
    let lags: Vec<f64> = results.iter().map(|r| r.lag).collect();
    let max = lags.iter().copied().fold(f64::MIN, f64::max);
    let min = lags.iter().copied().fold(f64::MAX, f64::min);
    let n = results.len().max(1) as f64;
    let mean_of = |f: &dyn Fn(&Run) -> usize| results.iter().map(f).sum::<usize>() as f64 / n;
    let mut statuses: Vec<&str> = results.iter().map(|r| r.status.as_str()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    println!();
    println!(
        "one rolling service, early success at 80% with DEFERRED cleanup, the old tasks draining {} s after SUCCESSFUL",
        DRAIN.as_secs()
    );
    println!(
        "| runs | median SUCCESSFUL → exit | min | max | exited before the drain | DescribeServices a run | DescribeServiceDeployments a run | DescribeServiceRevisions a run | status |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.2} s | {min:.2} s | {max:.2} s | {} of {} | {:.1} | {:.1} | {:.1} | {} |",
        results.len(),
        median(&lags),
        results.iter().filter(|r| r.before_drain).count(),
        results.len(),
        mean_of(&|r| r.describe_services),
        mean_of(&|r| r.describe_service_deployments),
        mean_of(&|r| r.describe_service_revisions),
        statuses.join(", ")
    );
}
