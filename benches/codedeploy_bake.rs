//! Benchmark of the verification gate inside a CodeDeploy deployment, with a real run's timing
//! (the phase-aware polling policy, one probe a second): how soon after CodeDeploy moves
//! production traffic to the replacement task set the gate sends its first probe, and how soon
//! after a failed verdict (the last probe's answer) StopDeployment goes out.
//!
//! CodeDeploy is the scripted one of the integration tests (`tests/it/support/scripted_codedeploy.rs`,
//! real HTTP on 127.0.0.1, a 10% canary); the app behind `verify-url` is a local server noting
//! when each probe came. The traffic step is spread across the polling tick (6 s while green
//! starts). Real time, not a paused clock.
//!
//! Run: `cargo bench --bench codedeploy_bake --profile dev` (prints a Markdown table).
//! `CODEDEPLOY_BAKE_RUNS` sets the deployments measured (default 8), each failing its smoke
//! test (HTTP 500), so each is stopped and rolled back.

// The test bed itself allows what a user of a part of it leaves unused.
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::codedeploy;
use ecs_deploy::inputs::DeploymentChoice;
use ecs_deploy::outcome::{Outcome, Status};
use ecs_deploy::plan::DeployPlan;
use support::scripted_codedeploy::{ScriptedCodeDeploy, Timeline, prepared};
use tokio_util::sync::CancellationToken;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

const CANARY: &str = "CodeDeployDefault.ECSCanary10Percent5Minutes";

/// The app: answers every GET with `status`, noting when it came.
struct App {
    status: u16,
    times: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for App {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if let Ok(mut t) = self.times.lock() {
            t.push(Instant::now());
        }
        ResponseTemplate::new(self.status)
    }
}

/// One measured deployment.
struct Run {
    /// From the script's traffic step to the first probe.
    to_probe: Duration,
    /// From the last probe to StopDeployment (a failed verdict only).
    to_stop: Option<Duration>,
    status: Option<Status>,
}

/// Deploys web1 through a fresh script whose traffic moves `install` after CreateDeployment,
/// the app answering `status`.
async fn deploy(install: Duration, status: u16) -> Run {
    let timeline = Timeline {
        install,
        first_share: 10.0,
        interval: Duration::from_secs(20),
        termination: Duration::from_secs(1),
        stop_lag: Duration::from_millis(500),
        rollback: Duration::from_secs(1),
    };
    let fake = ScriptedCodeDeploy::start(timeline, CANARY).await;
    let times = Arc::new(Mutex::new(Vec::new()));
    let app = support::json_rpc::serve(App {
        status,
        times: times.clone(),
    })
    .await;
    let url = app_url(&app);
    let inputs = [
        ("cluster", "prod"),
        ("service", "web1"),
        ("codedeploy-deployment-config", CANARY),
        ("verify-url", url.as_str()),
        ("verify-requests", "3"),
    ];
    let plan = ecs_deploy::plan::AppPlan {
        deploy: Some(DeployPlan {
            cluster: "prod".into(),
            service: "web1".into(),
            task_definition_file: None,
            container: Some("web1".into()),
            deployment: DeploymentChoice::CodeDeploy,
            appspec_file: None,
        }),
        ..support::app_plan_with("web1", &inputs, "registry.example.com/web1:v2")
    };
    let aws = Aws::from_config(&support::sdk_config(&fake.server.uri()));
    let mut report = Outcome::default();
    // A real run's timing, from the plan's settings (wait-for-minutes 30).
    let timing = codedeploy::timing(&plan.settings.rollout);
    let _ = codedeploy::deploy_with(
        &aws,
        &plan,
        &prepared("arn:aws:ecs:us-east-1:123456789012:task-definition/web1:8"),
        &CancellationToken::new(),
        &mut report,
        timing,
    )
    .await;
    let step = fake.traffic_step().expect("created");
    let probes = times.lock().map(|t| t.clone()).unwrap_or_default();
    let first = *probes.first().expect("the gate probed");
    let last = *probes.last().expect("the gate probed");
    let to_stop = fake
        .calls("StopDeployment")
        .first()
        .map(|(_, at)| at.saturating_duration_since(last));
    Run {
        to_probe: first.saturating_duration_since(step),
        to_stop,
        status: report.status,
    }
}

fn app_url(app: &MockServer) -> String {
    format!("{}/health", app.uri())
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let runs: u32 = std::env::var("CODEDEPLOY_BAKE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    // A failing smoke test gives both figures and ends soon (the stop); a passing one would
    // follow the 5-minute canary's slow looks to its end for no more figures.
    let mut to_probe = Vec::new();
    let mut to_stop = Vec::new();
    let mut statuses = Vec::new();
    for i in 0..runs {
        // Traffic moves at a different point of the 6 s tick each time.
        let install = Duration::from_secs_f64(1.0 + (f64::from(i) * 0.77) % 6.0);
        let run = deploy(install, 500).await;
        to_probe.push(run.to_probe);
        to_stop.extend(run.to_stop);
        statuses.push(run.status.map_or("?", |s| s.as_str()));
    }
    to_probe.sort();
    to_stop.sort();
    statuses.sort();
    statuses.dedup();
    let median = |v: &[Duration]| v.get(v.len() / 2).copied();
    println!(
        "| runs | traffic on green → first GET (median) | (max) | failed verdict → StopDeployment (median) | (max) | status |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {runs} | {} | {} | {} | {} | {} |",
        median(&to_probe).map_or("-".into(), secs),
        to_probe.last().copied().map_or("-".into(), secs),
        median(&to_stop).map_or("-".into(), millis),
        to_stop.last().copied().map_or("-".into(), millis),
        statuses.join(", "),
    );
}
