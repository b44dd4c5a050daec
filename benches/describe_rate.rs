//! Benchmark of a run's DescribeServices: ten rolling services of one cluster deployed from the
//! config file by the real `ecs-deploy` binary against a scripted ECS
//! (`tests/it/support/scripted_ecs.rs`; each rollout is COMPLETED a fixed time after its
//! UpdateService). Counts the DescribeServices calls made before the first write (the
//! preflight), over the whole run, and the run's wall time, so the rate per second of the one
//! cluster can be read off (the target: at most one a second, preflight included).
//!
//! Run: `cargo bench --bench describe_rate --profile dev` (prints a Markdown table; the figures
//! are waits, not CPU). `DESCRIBE_BENCH_RUNS` sets the number of runs (default 3).

#[allow(dead_code)]
#[path = "../tests/it/support/scripted_ecs.rs"]
mod scripted_ecs;

mod binary;

use std::time::{Duration, Instant};

use scripted_ecs::{Script, ScriptedEcs};

const SERVICES: usize = 10;
const ROLLOUT: Duration = Duration::from_secs(6);

/// The calls that change something: the preflight is every call before the first of them.
const WRITES: &[&str] = &["RegisterTaskDefinition", "UpdateService"];

struct Run {
    secs: f64,
    status: String,
    preflight: usize,
    total: usize,
}

async fn one_run() -> Run {
    let names: Vec<String> = (0..SERVICES).map(|i| format!("web{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ecs = ScriptedEcs::start(
        &refs,
        Script {
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
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .expect("run thread")
        .expect("start ecs-deploy");
    let secs = started.elapsed().as_secs_f64();
    let status_output = binary::status_output(&output);
    let calls = ecs.calls();
    let first_write = calls
        .iter()
        .position(|(op, _)| WRITES.contains(&op.as_str()))
        .unwrap_or(calls.len());
    let describes = |calls: &[(String, bool)]| {
        calls
            .iter()
            .filter(|(op, _)| op == "DescribeServices")
            .count()
    };
    Run {
        secs,
        status: format!("{status_output} (exit {})", status.code().unwrap_or(-1)),
        preflight: describes(&calls[..first_write]),
        total: describes(&calls),
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("DESCRIBE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!(
        "{SERVICES} rolling services of one cluster from the config file; each rollout COMPLETED {} s after its UpdateService",
        ROLLOUT.as_secs()
    );
    println!(
        "| run | wall time | DescribeServices in the preflight | DescribeServices in the run | per second | status |"
    );
    println!("|---|---|---|---|---|---|");
    for i in 1..=runs {
        let r = one_run().await;
        println!(
            "| {i} | {:.1} s | {} | {} | {:.2} | {} |",
            r.secs,
            r.preflight,
            r.total,
            r.total as f64 / r.secs.max(0.001),
            r.status
        );
    }
}
