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

#[allow(dead_code)]
#[path = "../tests/it/support/aws.rs"]
mod test_aws;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scripted_ecs::{Script, ScriptedEcs};

const SERVICES: usize = 10;
const ROLLOUT: Duration = Duration::from_secs(6);

/// A workspace with one package.json and a config deploying `web0`..`web9`.
fn workspace(dir: &Path) {
    std::fs::create_dir_all(dir.join(".github")).expect("workspace");
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"shop","version":"1.2.3"}"#,
    )
    .expect("package.json");
    let mut config =
        String::from("defaults:\n  cluster: prod\n  package-json: package.json\napps:\n");
    for i in 0..SERVICES {
        config.push_str(&format!(
            "  web{i}:\n    image: registry.example.com/web{i}:v1.2.3\n    service: web{i}\n    container-name: web{i}\n"
        ));
    }
    std::fs::write(dir.join(".github/ecs-deploy.yml"), config).expect("config");
}

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
    workspace(dir.path());
    let output = dir.path().join("github_output");
    std::fs::write(&output, "").expect("output file");
    let event =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events/workflow-dispatch-latest.json");
    let endpoint = ecs.endpoint();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecs-deploy"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .envs(test_aws::aws_env(&endpoint))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("GITHUB_WORKSPACE", dir.path())
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_OUTPUT", &output)
        .env("INPUT_CONFIG", ".github/ecs-deploy.yml")
        .env("INPUT_APP", "all")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .expect("run thread")
        .expect("start ecs-deploy");
    let secs = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    let status_output = text
        .split("status<<")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .unwrap_or("?")
        .to_string();
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
