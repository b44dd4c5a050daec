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

#[allow(dead_code)]
#[path = "../tests/it/support/aws.rs"]
mod test_aws;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scripted_ecs::{Script, ScriptedEcs};

const SERVICES: usize = 10;
const ROLLOUT: Duration = Duration::from_secs(6);

/// The calls that change something: the preflight is every call before the first of them.
const WRITES: &[&str] = &["RegisterTaskDefinition", "UpdateService"];

/// A workspace with one package.json and a config deploying `web0`..`web9` of cluster `prod`.
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
    workspace(dir.path());
    let output = dir.path().join("github_output");
    std::fs::write(&output, "").expect("output file");
    let event =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events/workflow-dispatch-latest.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecs-deploy"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .envs(test_aws::aws_env(&ecs.endpoint()))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("GITHUB_WORKSPACE", dir.path())
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_OUTPUT", &output)
        .env("INPUT_CONFIG", ".github/ecs-deploy.yml")
        .env("INPUT_APP", "all")
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
