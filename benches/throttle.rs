//! Benchmark of a throttling burst: the wall time of one run of the real `ecs-deploy` binary
//! deploying ten rolling services, when ECS answers the first 4 API calls with
//! ThrottlingException (HTTP 400, as ECS's JSON protocol sends it), against the same run without
//! throttling. The ECS side is scripted over HTTP (`tests/it/support/scripted_ecs.rs`): each
//! rollout is COMPLETED a fixed time after its UpdateService. A fresh process per run, so the
//! SDK's process-wide retry state (the adaptive mode's client-side rate limiter, the retry
//! quota) starts empty each time, as in a job.
//!
//! The action's own retry policy is compared with the SDK's adaptive mode at 8 attempts (the
//! policy the action had before; set here through `AWS_RETRY_MODE`/`AWS_MAX_ATTEMPTS`, which
//! replace the action's policy).
//!
//! Run: `cargo bench --bench throttle --profile dev` (prints a Markdown table; the figures are
//! waits, not CPU). `THROTTLE_BENCH_RUNS` sets the runs per scenario (default 3).

#[allow(dead_code)]
#[path = "../tests/it/support/scripted_ecs.rs"]
mod scripted_ecs;

mod binary;

use std::time::{Duration, Instant};

use scripted_ecs::{Script, ScriptedEcs};

const SERVICES: usize = 10;
const ROLLOUT: Duration = Duration::from_secs(6);

/// Environment variables added to a run.
type Env = [(&'static str, &'static str)];

struct Run {
    secs: f64,
    status: String,
    calls: usize,
    throttled: usize,
}

async fn one_run(throttle_first: usize, env: &[(&str, &str)]) -> Run {
    let names: Vec<String> = (0..SERVICES).map(|i| format!("web{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ecs = ScriptedEcs::start(
        &refs,
        Script {
            throttle_first,
            rollout: ROLLOUT,
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    binary::workspace(dir.path(), &refs);
    let output = dir.path().join("github_output");
    std::fs::write(&output, "").expect("output file");
    let mut cmd = binary::command(dir.path(), &ecs.endpoint(), &output, false);
    cmd.envs(env.iter().copied());
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .expect("run thread")
        .expect("start ecs-deploy");
    let secs = started.elapsed().as_secs_f64();
    let status_output = binary::status_output(&output);
    let calls = ecs.calls();
    Run {
        secs,
        status: format!("{status_output} (exit {})", status.code().unwrap_or(-1)),
        calls: calls.len(),
        throttled: calls.iter().filter(|(_, t)| *t).count(),
    }
}

fn row(label: &str, runs: &[Run]) -> String {
    let n = runs.len().max(1) as f64;
    let mean = runs.iter().map(|r| r.secs).sum::<f64>() / n;
    let min = runs.iter().map(|r| r.secs).fold(f64::MAX, f64::min);
    let max = runs.iter().map(|r| r.secs).fold(0.0, f64::max);
    let mut statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    statuses.dedup();
    format!(
        "| {label} | {} | {mean:.1} s | {min:.1} s | {max:.1} s | {:.0} | {} | {} |",
        runs.len(),
        runs.iter().map(|r| r.calls).sum::<usize>() as f64 / n,
        runs.first().map(|r| r.throttled).unwrap_or(0),
        statuses.join(", ")
    )
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("THROTTLE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let adaptive = [("AWS_RETRY_MODE", "adaptive"), ("AWS_MAX_ATTEMPTS", "8")];
    let scenarios: [(&str, usize, &Env); 4] = [
        ("no throttling, the action's retry policy", 0, &[]),
        ("first 4 calls throttled, the action's retry policy", 4, &[]),
        ("no throttling, adaptive mode, 8 attempts", 0, &adaptive),
        (
            "first 4 calls throttled, adaptive mode, 8 attempts",
            4,
            &adaptive,
        ),
    ];
    let mut rows = Vec::new();
    for (label, throttle, env) in scenarios {
        let mut results = Vec::new();
        for _ in 0..runs {
            results.push(one_run(throttle, env).await);
        }
        eprintln!("{}", row(label, &results));
        rows.push(row(label, &results));
    }
    println!();
    println!(
        "{SERVICES} rolling services in one run; each rollout COMPLETED {} s after its UpdateService",
        ROLLOUT.as_secs()
    );
    println!("| scenario | runs | mean wall time | min | max | API calls | throttled | status |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
