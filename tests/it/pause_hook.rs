//! The verification gate at an ECS blue/green PAUSE hook, through the blue/green deploy
//! (UpdateService, the service deployment found and followed, the gate, the answer, the end)
//! and its preflight, on the scripted ECS of `support/scripted_pause.rs`: moto plays no
//! lifecycle stages, no PAUSE hook and neither ListServiceDeployments,
//! DescribeServiceDeployments, ContinueServiceDeployment nor StopServiceDeployment (see that
//! file and `bluegreen.rs`). The app behind the listeners is a real local HTTP server
//! (wiremock) answering 200 or 500. Each test asserts what was sent to ECS and to the app, and
//! what the deploy made of it.

use std::time::Duration;

use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::Prepared;
use ecs_deploy::deploy::bluegreen::{self, Cadence, Timing};
use ecs_deploy::error::Error;
use ecs_deploy::inputs::DeploymentChoice;
use ecs_deploy::outcome::{Outcome, Status, Verdict};
use ecs_deploy::plan::{AppPlan, DeployPlan};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::scripted_pause::{ScriptedPause, Timeline, deployment_arn, td_arn};
use crate::support::sdk_config;

/// App `bg`'s plan: ECS blue/green service `bg` in cluster `prod`, with `extra` inputs.
fn plan(service: &str, extra: &[(&str, &str)]) -> AppPlan {
    let mut inputs = vec![
        ("cluster", "prod"),
        ("service", service),
        ("container-name", service),
        ("deployment", "ecs-blue-green"),
    ];
    inputs.extend_from_slice(extra);
    AppPlan {
        deploy: Some(DeployPlan {
            cluster: "prod".into(),
            service: service.into(),
            task_definition_file: None,
            container: Some(service.into()),
            deployment: DeploymentChoice::EcsBlueGreen,
            appspec_file: None,
        }),
        ..crate::support::app_plan_with(service, &inputs, "registry.example.com/bg:v2")
    }
}

/// An app answering every GET with `status`.
async fn app(status: u16) -> MockServer {
    let app = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&app)
        .await;
    app
}

async fn gets(app: &MockServer) -> usize {
    app.received_requests().await.unwrap_or_default().len()
}

/// Looks every 20 ms; `timeout` for the deployment (`wait-for-minutes`).
fn timing(timeout: Duration) -> Timing {
    Timing {
        cadence: Cadence::Every(Duration::from_millis(20)),
        timeout,
        rollback_timeout: Duration::from_secs(10),
        queue_limit: Duration::from_secs(5),
        max_delay: Duration::MAX,
        poller: None,
    }
}

/// `bg` as the preflight hands it over: described by the script, bg:2 registered over bg:1.
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
        task_definition: json!({}),
        codedeploy: None,
        previous_digest: None,
    }
}

/// The blue/green deploy of `bg` with `inputs`, against `ecs`.
async fn deploy(
    ecs: &ScriptedPause,
    inputs: &[(&str, &str)],
    timing: Timing,
) -> (Result<(), Error>, Outcome) {
    let aws = Aws::from_config(&sdk_config(&ecs.server.uri())).without_region();
    let prepared = prepared(&aws).await;
    let mut outcome = Outcome::default();
    let r = bluegreen::deploy_with(
        &aws,
        &plan("bg", inputs),
        &prepared,
        &CancellationToken::new(),
        &mut outcome,
        timing,
    )
    .await;
    (r, outcome)
}

/// `bg` deployed on `timeline`, the app behind verify-url answering its 2 GETs with `status`:
/// the script, the app, the result and the outcome.
async fn smoke_tested(
    timeline: Timeline,
    status: u16,
) -> (ScriptedPause, MockServer, Result<(), Error>, Outcome) {
    let ecs = ScriptedPause::start(timeline).await;
    let app = app(status).await;
    let (r, outcome) = deploy(
        &ecs,
        &[("verify-url", &app.uri()), ("verify-requests", "2")],
        timing(Duration::from_secs(30)),
    )
    .await;
    (ecs, app, r, outcome)
}

fn answer(action: &str) -> serde_json::Value {
    json!({"serviceDeploymentArn": deployment_arn("bg"), "hookId": "h-1", "action": action})
}

fn has_step(outcome: &Outcome, prefix: &str) -> bool {
    outcome.steps.iter().any(|s| s.starts_with(prefix))
}

#[tokio::test]
async fn a_passing_smoke_test_at_the_pause_hook_continues_the_deployment() {
    let ecs = ScriptedPause::start(Timeline::default()).await;
    let (production, test_listener) = (app(200).await, app(200).await);
    let (r, outcome) = deploy(
        &ecs,
        &[
            ("verify-url", &production.uri()),
            (
                "verify-test-url",
                &format!("{}/health", test_listener.uri()),
            ),
            ("verify-requests", "3"),
        ],
        timing(Duration::from_secs(10)),
    )
    .await;
    r.expect("the deployment continued and succeeded");
    assert_eq!(outcome.status, Some(Status::Succeeded));
    assert_eq!(
        ecs.bodies("ContinueServiceDeployment"),
        [answer("CONTINUE")]
    );
    assert!(ecs.bodies("StopServiceDeployment").is_empty());
    let v = outcome.verification.as_ref().expect("the gate ran");
    assert_eq!(v.verdict, Verdict::Passed, "{}", v.headline());
    // At POST_TEST_TRAFFIC_SHIFT green serves the test listener only: that is what is probed.
    assert_eq!(
        v.url.as_deref(),
        Some(format!("{}/health", test_listener.uri()).as_str())
    );
    assert_eq!(gets(&test_listener).await, 3);
    assert_eq!(gets(&production).await, 0, "verify-url is not probed there");
    for step in [
        "paused at POST_TEST_TRAFFIC_SHIFT awaiting action (hook h-1; expires ",
        "verification passed: 0 of 3 probes",
        "ContinueServiceDeployment CONTINUE (hook h-1)",
        "SUCCESSFUL CLEAN_UP",
    ] {
        assert!(has_step(&outcome, step), "{step}: {:#?}", outcome.steps);
    }
}

#[tokio::test]
async fn a_failing_smoke_test_at_the_pause_hook_rolls_the_deployment_back() {
    let (ecs, failing, r, outcome) = smoke_tested(Timeline::default(), 500).await;
    let e = r.expect_err("the verification failed");
    assert!(matches!(e, Error::VerificationFailed { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.starts_with("bg (ECS service bg in cluster prod): verification failed: 2 of 2 probes"),
        "{e}"
    );
    assert_eq!(outcome.status, Some(Status::RolledBack));
    assert_eq!(
        ecs.bodies("ContinueServiceDeployment"),
        [answer("ROLLBACK")]
    );
    assert!(
        ecs.bodies("StopServiceDeployment").is_empty(),
        "ECS rolls back on the hook's answer; no second rollback"
    );
    assert_eq!(gets(&failing).await, 2, "each probe sent once");
    let v = outcome.verification.as_ref().expect("the gate ran");
    assert_eq!(v.verdict, Verdict::Failed);
    let rollback = outcome.rollback.as_deref().unwrap_or_default();
    assert!(
        rollback.starts_with(&format!(
            "rolled back to {} by the verification gate",
            td_arn("bg", 1)
        )),
        "{rollback}"
    );
    assert!(
        has_step(&outcome, "ROLLBACK_SUCCESSFUL"),
        "{:#?}",
        outcome.steps
    );
}

#[tokio::test]
async fn without_verify_inputs_the_paused_deployment_is_never_continued_and_the_timeout_rolls_it_back()
 {
    let ecs = ScriptedPause::start(Timeline::default()).await;
    let (r, outcome) = deploy(&ecs, &[], timing(Duration::from_millis(1500))).await;
    let e = r
        .expect_err("nobody answered before wait-for-minutes")
        .to_string();
    assert!(
        e.contains("not finished after 1 min (wait-for-minutes): the deployment was paused at POST_TEST_TRAFFIC_SHIFT awaiting action (hook h-1; expires ")
            && e.contains("and nobody continued it; rolled back to"),
        "{e}"
    );
    assert_eq!(outcome.status, Some(Status::RolledBack));
    assert!(
        ecs.bodies("ContinueServiceDeployment").is_empty(),
        "the run never answers a hook by itself"
    );
    assert_eq!(
        ecs.bodies("StopServiceDeployment"),
        [json!({"serviceDeploymentArn": deployment_arn("bg"), "stopType": "ROLLBACK"})],
        "the timeout's rollback, as without a hook"
    );
    let said: Vec<&String> = outcome
        .steps
        .iter()
        .filter(|s| s.starts_with("paused at POST_TEST_TRAFFIC_SHIFT awaiting action (hook h-1"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {:#?}", outcome.steps);
    assert!(
        said[0].contains("no verify-url or verify-alarms is set, so this run does not answer it"),
        "{}",
        said[0]
    );
    assert!(outcome.verification.is_none());
    assert_eq!(
        outcome.notices.len(),
        1,
        "the pause is a notice too, so the summary and the messages carry it: {:#?}",
        outcome.notices
    );
    assert!(
        outcome.notices[0]
            .starts_with("paused at POST_TEST_TRAFFIC_SHIFT awaiting action (hook h-1")
            && outcome.notices[0].contains("a person (or the hook's timeout) decided"),
        "{}",
        outcome.notices[0]
    );
}

#[tokio::test]
async fn an_answer_that_fails_on_the_way_is_sent_again_without_verifying_again() {
    // Three 500s: the SDK's own three attempts give up on the first answer; ours sends it again.
    let timeline = Timeline {
        continue_errors: 3,
        ..Timeline::default()
    };
    let (ecs, app, r, outcome) = smoke_tested(timeline, 200).await;
    r.expect("continued at the second answer");
    assert_eq!(outcome.status, Some(Status::Succeeded));
    let answers = ecs.bodies("ContinueServiceDeployment");
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert!(
        answers.iter().all(|a| *a == answer("CONTINUE")),
        "{answers:?}"
    );
    assert_eq!(gets(&app).await, 2, "verified once");
    let said = outcome
        .steps
        .iter()
        .filter(|s| s.starts_with("ContinueServiceDeployment CONTINUE"))
        .count();
    assert_eq!(said, 1, "{:#?}", outcome.steps);
}

#[tokio::test]
async fn an_answer_ecs_refuses_rolls_the_deployment_back_saying_why() {
    let timeline = Timeline {
        continue_denied: true,
        ..Timeline::default()
    };
    let (ecs, _, r, outcome) = smoke_tested(timeline, 200).await;
    let e = r.expect_err("the hook could not be answered").to_string();
    assert!(
        e.contains("ContinueServiceDeployment (CONTINUE) for hook h-1 was refused")
            && e.contains("ecs:ContinueServiceDeployment")
            && e.contains("rolled back to"),
        "{e}"
    );
    assert_eq!(outcome.status, Some(Status::RolledBack));
    assert_eq!(
        ecs.bodies("ContinueServiceDeployment"),
        [answer("CONTINUE")]
    );
    assert_eq!(
        ecs.bodies("StopServiceDeployment"),
        [json!({"serviceDeploymentArn": deployment_arn("bg"), "stopType": "ROLLBACK"})],
        "rolled back as after a timeout, not left waiting at the hook"
    );
}

#[tokio::test]
async fn after_the_test_traffic_stage_the_gate_probes_verify_url_not_the_test_listener() {
    let ecs = ScriptedPause::start(Timeline {
        pause_stage: "POST_PRODUCTION_TRAFFIC_SHIFT",
        ..Timeline::default()
    })
    .await;
    let (production, test_listener) = (app(200).await, app(200).await);
    let (r, outcome) = deploy(
        &ecs,
        &[
            ("verify-url", &production.uri()),
            ("verify-test-url", &test_listener.uri()),
            ("verify-requests", "2"),
        ],
        timing(Duration::from_secs(10)),
    )
    .await;
    r.expect("continued at POST_PRODUCTION_TRAFFIC_SHIFT");
    assert_eq!(
        ecs.bodies("ContinueServiceDeployment"),
        [answer("CONTINUE")]
    );
    assert_eq!(gets(&production).await, 2);
    assert_eq!(gets(&test_listener).await, 0);
    assert!(
        has_step(
            &outcome,
            "paused at POST_PRODUCTION_TRAFFIC_SHIFT awaiting action"
        ),
        "{:#?}",
        outcome.steps
    );
}

#[tokio::test]
async fn the_preflight_refuses_verify_inputs_on_a_blue_green_service_without_a_pause_hook() {
    let ecs = ScriptedPause::start(Timeline::default()).await;
    let aws = Aws::from_config(&sdk_config(&ecs.server.uri())).without_region();
    let verify = [("verify-url", "https://nohook.example.com/health")];
    let e = ecs_deploy::preflight::check_deploy(&aws, &plan("nohook", &verify))
        .await
        .expect_err("no PAUSE hook for the gate")
        .to_string();
    assert!(
        e.contains("nohook")
            && e.contains("no PAUSE lifecycle hook")
            && e.contains("lifecycleHooks: targetType PAUSE")
            && e.contains("docs/src/verification.md"),
        "{e}"
    );
    // The service with a hook passes the same check.
    ecs_deploy::preflight::check_deploy(&aws, &plan("bg", &verify))
        .await
        .expect("bg has a PAUSE hook at POST_TEST_TRAFFIC_SHIFT");
    let ops = ecs.operations();
    assert!(
        ops.iter().all(|o| o.starts_with("Describe")),
        "reads only, no write: {ops:?}"
    );
}

/// The whole run's deploy (preflight, register, update, follow, gate, answer) with the run's
/// own timing: the gate comes from the inputs, nothing from the test.
#[tokio::test]
async fn the_whole_deploy_of_a_service_with_a_pause_hook_is_verified_and_continued() {
    let ecs = ScriptedPause::start(Timeline::default()).await;
    let aws = Aws::from_config(&sdk_config(&ecs.server.uri())).without_region();
    let test_listener = app(204).await;
    let plan = plan(
        "bg",
        &[
            ("verify-url", "https://bg.example.invalid/health"),
            ("verify-test-url", &test_listener.uri()),
            ("verify-requests", "2"),
        ],
    );
    let outcome = crate::support::checked_deploy(&aws, &plan, "registry.example.com/bg:v2")
        .await
        .expect("verified and continued");
    assert_eq!(outcome.status, Some(Status::Succeeded));
    assert_eq!(
        outcome.verification.as_ref().map(|v| v.verdict),
        Some(Verdict::Passed)
    );
    assert_eq!(gets(&test_listener).await, 2);
    assert_eq!(
        ecs.bodies("ContinueServiceDeployment"),
        [answer("CONTINUE")]
    );
    let updates = ecs.bodies("UpdateService");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["taskDefinition"], json!(td_arn("bg", 2)));
}
