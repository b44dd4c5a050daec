//! Benchmark of how soon a run ends under faults, through the real `ecs-deploy` binary:
//! - an UpdateService that is accepted and never answered (scripted ECS over HTTP): the time
//!   from the start to the exit;
//! - SIGTERM mid-wait (moto, which never completes a rollout) with a Slack webhook that answers
//!   after 8 s, and with one that answers at once: the time from the signal to the exit;
//! - a second signal right after the first: the time from the second signal to the exit.
//!
//! Run: `cargo bench --bench faults --profile dev` (prints a Markdown table; the figures are
//! waits, not CPU). `FAULTS_BENCH_RUNS` sets the runs of each signal scenario (default 3).
//! Needs the test bed (`scripts/setup-testbed.sh`: moto).

// The test bed itself allows what a user of a part of it leaves unused.
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use aws_sdk_ecs::Client;
use support::scripted_ecs::ScriptedEcs;
use support::{BinRun, MotoServer, sdk_config, slow_server, web1_deploy};

/// The binary deploying web1 (cluster prod) at `endpoint`, Slack's webhook at `slack`.
fn deploy(endpoint: &str, slack: Option<&str>) -> BinRun {
    let mut run = web1_deploy(endpoint, "registry.example.com/web1:v1.2.3")
        .env("INPUT_WAIT-FOR-MINUTES", "1")
        .timeout(Duration::from_secs(300));
    if let Some(url) = slack {
        run = run.env(
            "INPUT_SLACK-WEBHOOK-URL",
            format!("{url}/services/T0/B0/bench"),
        );
    }
    run
}

/// A cluster `prod` with a service web1 on a one-container revision, in a fresh moto.
async fn moto_with_service() -> MotoServer {
    let moto = MotoServer::start();
    support::moto::web1_service(&Client::new(&sdk_config(&moto.endpoint()))).await;
    moto
}

/// Seconds from the (last) signal to the exit, and the `status` output.
async fn signalled(slack_delay: Duration, second: bool) -> (f64, String) {
    let moto = moto_with_service().await;
    let slack = slow_server(slack_delay).await;
    let run = deploy(&moto.endpoint(), Some(&slack.uri()));
    tokio::task::spawn_blocking(move || {
        let mut running = run.spawn();
        running.wait_for_stdout("waiting for deployment", Duration::from_secs(60));
        running.signal("TERM");
        if second {
            running.wait_for_stdout("cancellation requested", Duration::from_secs(5));
            running.signal("INT");
        }
        let at = Instant::now();
        let out = running.wait();
        let secs = at.elapsed().as_secs_f64();
        (secs, out.output("status").unwrap_or("?").to_string())
    })
    .await
    .expect("run thread")
}

fn row(label: &str, runs: &[(f64, String)]) -> String {
    let n = runs.len().max(1) as f64;
    let mean = runs.iter().map(|r| r.0).sum::<f64>() / n;
    let max = runs.iter().map(|r| r.0).fold(0.0, f64::max);
    let mut statuses: Vec<&str> = runs.iter().map(|r| r.1.as_str()).collect();
    statuses.dedup();
    format!(
        "| {label} | {} | {mean:.2} s | {max:.2} s | {} |",
        runs.len(),
        statuses.join(", ")
    )
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("FAULTS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut rows = Vec::new();

    let ecs = ScriptedEcs::hanging(&["web1"], "UpdateService").await;
    let run = deploy(&ecs.endpoint(), None);
    let hung = tokio::task::spawn_blocking(move || {
        let at = Instant::now();
        let out = run.run();
        (
            at.elapsed().as_secs_f64(),
            out.output("status").unwrap_or("?").to_string(),
        )
    })
    .await
    .expect("run thread");
    rows.push(row("UpdateService never answers: start to exit", &[hung]));
    eprintln!("{}", rows[rows.len() - 1]);

    let scenarios = [
        (
            "SIGTERM mid-wait, Slack answers after 8 s: signal to exit",
            Duration::from_secs(8),
            false,
        ),
        (
            "SIGTERM mid-wait, Slack answers at once: signal to exit",
            Duration::ZERO,
            false,
        ),
        (
            "SIGTERM then SIGINT mid-wait: second signal to exit",
            Duration::from_secs(8),
            true,
        ),
    ];
    for (label, delay, second) in scenarios {
        let mut results = Vec::new();
        for _ in 0..runs {
            results.push(signalled(delay, second).await);
        }
        rows.push(row(label, &results));
        eprintln!("{}", rows[rows.len() - 1]);
    }
    println!();
    println!("| scenario | runs | mean | max | status |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
