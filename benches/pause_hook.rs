//! Benchmark of the verification gate at an ECS blue/green PAUSE hook, through the blue/green
//! deploy with the run's own timing (`Timing::of`: the phase-aware cadence, the
//! gate's 1 s between GETs), against the scripted ECS of the integration tests
//! (`tests/it/support/scripted_pause.rs`, real HTTP on 127.0.0.1) and a local app answering 200.
//! Real time, not a paused clock: the gate's GETs are real requests.
//!
//! (a) From the moment the hook is AWAITING_ACTION to our ContinueServiceDeployment, minus the
//! verification's own time (its first GET to its last one): how late the gate starts and how
//! late its answer goes. The pause moments are spread over a second, across the polling tick.
//! (b) While a hook holds the deployment and no verify input is set (the run never answers):
//! the ECS calls of one minute of that pause.
//!
//! Run: `cargo bench --bench pause_hook --profile dev` (prints two Markdown tables).
//! `PAUSE_BENCH_RUNS` sets the runs of (a) (default 8).

#[allow(dead_code)]
#[path = "../tests/it/support/json_rpc.rs"]
mod json_rpc;
#[allow(dead_code)]
#[path = "../tests/it/support/scripted_pause.rs"]
mod scripted_pause;

#[allow(dead_code)]
#[path = "../tests/it/support/aws.rs"]
mod test_aws;

#[allow(dead_code)]
#[path = "wait/common.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::Prepared;
use ecs_deploy::deploy::bluegreen::{self, Timing};
use ecs_deploy::inputs::DeploymentChoice;
use ecs_deploy::outcome::Outcome;
use scripted_pause::{ScriptedPause, Timeline, td_arn};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The GETs of the verification, a run.
const REQUESTS: &str = "3";

/// How long (b) watches a pause nobody answers.
const WATCHED: Duration = Duration::from_secs(60);

/// An app answering 200 that notes when each GET came.
#[derive(Clone, Default)]
struct Noted(Arc<Mutex<Vec<Instant>>>);

impl Respond for Noted {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if let Ok(mut at) = self.0.lock() {
            at.push(Instant::now());
        }
        ResponseTemplate::new(200)
    }
}

/// `bg` as the preflight hands it over.
async fn prepared(aws: &Aws) -> Prepared {
    let live = aws
        .ecs
        .describe_services()
        .cluster("prod")
        .services("bg")
        .send()
        .await
        .expect("DescribeServices")
        .services()[0]
        .clone();
    Prepared {
        cluster: "prod".into(),
        service: "bg".into(),
        live,
        task_definition_arn: td_arn("bg", 2),
        previous_task_definition_arn: Some(td_arn("bg", 1)),
        container: "bg".into(),
        container_port: Some(8080),
        changed: true,
        redeploy: false,
        task_definition: serde_json::json!({}),
        codedeploy: None,
        previous_digest: None,
    }
}

/// Deploys `bg` with `inputs` and the run's own timing until it ends or `cancel` fires.
async fn deploy(
    ecs: &ScriptedPause,
    inputs: &[(&str, &str)],
    cancel: &CancellationToken,
) -> Outcome {
    let aws = Aws::from_config(&test_aws::sdk_config(&ecs.server.uri())).without_region();
    let plan = common::plan("bg", DeploymentChoice::EcsBlueGreen, inputs);
    let timing = Timing::of(&plan.settings.rollout);
    let prepared = prepared(&aws).await;
    let mut outcome = Outcome::default();
    let _ = bluegreen::deploy_with(&aws, &plan, &prepared, cancel, &mut outcome, timing).await;
    outcome
}

/// One run of (a): (detection: pause → first GET, answer: last GET → ContinueServiceDeployment,
/// the verification's own time).
async fn one_pause(pause_at: Duration) -> (f64, f64, f64) {
    let ecs = ScriptedPause::start(Timeline {
        pause_at,
        after_answer: Duration::from_millis(500),
        ..Timeline::default()
    })
    .await;
    let app = MockServer::start().await;
    let noted = Noted::default();
    Mock::given(method("GET"))
        .respond_with(noted.clone())
        .mount(&app)
        .await;
    let url = app.uri();
    let inputs = [("verify-url", url.as_str()), ("verify-requests", REQUESTS)];
    let outcome = deploy(&ecs, &inputs, &CancellationToken::new()).await;
    assert_eq!(
        outcome.status,
        Some(ecs_deploy::outcome::Status::Succeeded),
        "{:#?}",
        outcome.steps
    );
    let paused = ecs.paused_since().expect("the pause");
    let answered = ecs.calls_of("ContinueServiceDeployment")[0].1;
    let gets = noted.0.lock().map(|g| g.clone()).unwrap_or_default();
    let (first, last) = (gets[0], gets[gets.len() - 1]);
    (
        first.duration_since(paused).as_secs_f64(),
        answered.duration_since(last).as_secs_f64(),
        last.duration_since(first).as_secs_f64(),
    )
}

/// One run of (b): the ECS calls, by operation, during `WATCHED` of a pause nobody answers.
async fn unanswered() -> Vec<(String, usize)> {
    let ecs = ScriptedPause::start(Timeline {
        pause_at: Duration::from_secs(2),
        ..Timeline::default()
    })
    .await;
    let cancel = CancellationToken::new();
    let stop = async {
        tokio::time::sleep(Duration::from_secs(2) + WATCHED + Duration::from_millis(500)).await;
        cancel.cancel();
    };
    tokio::join!(deploy(&ecs, &[], &cancel), stop);
    let from = ecs.paused_since().expect("the pause");
    let to = from + WATCHED;
    [
        "DescribeServiceDeployments",
        "ListTasks",
        "DescribeServices",
    ]
    .iter()
    .map(|op| {
        let n = ecs
            .calls_of(op)
            .iter()
            .filter(|(_, at)| *at >= from && *at < to)
            .count();
        (op.to_string(), n)
    })
    .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: u32 = std::env::var("PAUSE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let (mut detect, mut answer, mut lag, mut own) = (vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        // Pauses spread over one second: 6.0 s, 6.125 s, … after the UpdateService.
        let pause_at = Duration::from_secs(6) + Duration::from_secs(1) * i / runs;
        let (d, a, v) = one_pause(pause_at).await;
        detect.push(d);
        answer.push(a);
        lag.push(d + a);
        own.push(v);
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let calls = unanswered().await;

    println!(
        "\n(a) PAUSE hook AWAITING_ACTION → our ContinueServiceDeployment, minus the verification ({REQUESTS} GETs, 1 s apart), {runs} runs\n"
    );
    println!(
        "| median lag | max lag | of which: pause → first GET (median, max) | last GET → ContinueServiceDeployment (median, max) | the verification's own time (median) |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {:.2} s | {:.2} s | {:.2} s, {:.2} s | {:.3} s, {:.3} s | {:.2} s |",
        median(&mut lag.clone()),
        max(&lag),
        median(&mut detect.clone()),
        max(&detect),
        median(&mut answer.clone()),
        max(&answer),
        median(&mut own),
    );
    println!(
        "\n(b) ECS calls in {} s of a pause nobody answers (no verify inputs)\n",
        WATCHED.as_secs()
    );
    let n = |op: &str| calls.iter().find(|(o, _)| o == op).map_or(0, |(_, n)| *n);
    println!("| DescribeServiceDeployments | ListTasks | DescribeServices |");
    println!("|---|---|---|");
    println!(
        "| {} | {} | {} |",
        n("DescribeServiceDeployments"),
        n("ListTasks"),
        n("DescribeServices")
    );
}
