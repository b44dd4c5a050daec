//! ECS's early success criteria on a rolling service, through the whole deploy (preflight,
//! register, update, follow, verify, roll back) against the scripted ECS of
//! `support/scripted_ecs.rs` (`Script::early`). moto cannot play it: moto 5.2 has no
//! `earlySuccessCriteria`, its service deployments never leave IN_PROGRESS and its rollouts
//! never complete, so neither SUCCESSFUL before the drain nor the drain itself exists there.
//!
//! Each test asserts what was sent (which service deployment and revision were read, the
//! rollback's UpdateService) and what came out (the status, when the wait ended against the
//! script's SUCCESSFUL and drain, the words in the steps, the summary and the messages). A role
//! whose policy predates the reads (AccessDeniedException) waits for the drain, as before.

use std::time::{Duration, Instant};

use ecs_deploy::aws::Aws;
use ecs_deploy::inputs::DeploymentChoice;
use ecs_deploy::outcome::{Outcome, Status};
use ecs_deploy::plan::AppPlan;
use ecs_deploy::report::{AppReport, Report};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::scripted_ecs::{
    EarlyScript, Script, ScriptedEcs, service_deployment_arn, service_revision_arn, td_arn,
};
use crate::support::sdk_config;

const IMAGE: &str = "registry.example.com/web1:v2";

/// What the rollout's end says about early success.
const EARLY_WORDS: &str = "ECS marked the deployment SUCCESSFUL early (80% of the tasks healthy); the old tasks drain in the background, and ECS's rollback of this deployment no longer applies";

fn plan(extra: &[(&str, &str)]) -> AppPlan {
    crate::support::web1_plan(DeploymentChoice::Rolling, extra, IMAGE)
}

async fn scripted(rollout: Duration, cleanup: &'static str, drain: Duration) -> (ScriptedEcs, Aws) {
    scripted_with(Script {
        rollout,
        early: Some(EarlyScript { cleanup, drain }),
        ..Default::default()
    })
    .await
}

async fn scripted_with(script: Script) -> (ScriptedEcs, Aws) {
    let ecs = ScriptedEcs::start(&["web1"], script).await;
    let aws = Aws::from_config(&sdk_config(&ecs.endpoint())).without_region();
    (ecs, aws)
}

/// A deploy that succeeded, and when it returned.
async fn deployed(aws: &Aws) -> (Outcome, Instant) {
    let outcome = crate::support::checked_deploy(aws, &plan(&[]), IMAGE)
        .await
        .expect("deployed");
    let returned = Instant::now();
    assert_eq!(outcome.status, Some(Status::Succeeded));
    (outcome, returned)
}

/// A deploy that succeeded only once the old tasks were gone, as without early success: its
/// steps say `completed`, and nothing about early success.
async fn waited_for_the_drain(ecs: &ScriptedEcs, aws: &Aws) {
    let (outcome, returned) = deployed(aws).await;
    let drained = ecs.drained_at("web1").expect("updated");
    assert!(returned >= drained, "after the old tasks are gone");
    assert!(outcome.notices.is_empty(), "{:?}", outcome.notices);
    let deployment = outcome.deployment_id.clone().unwrap_or_default();
    assert!(
        outcome
            .steps
            .contains(&format!("deployment {deployment} completed")),
        "{:?}",
        outcome.steps
    );
}

/// The report of one app with `outcome`, as the run builds it.
fn report_of(outcome: &Outcome) -> Report {
    let mut app = AppReport {
        app: "web1".into(),
        version: Some("1.2.3".into()),
        ..Default::default()
    };
    app.apply(outcome);
    Report {
        apps: vec![app],
        ..Default::default()
    }
}

/// The summary, the Slack message and the Discord message each say `words`.
fn every_message_says(report: &Report, words: &str) {
    let summary = ecs_deploy::report::summary::render(report);
    assert!(
        summary.contains(&format!("### Notice\n\n- {words}")),
        "{summary}"
    );
    let slack = ecs_deploy::report::slack::outcome_message(report).to_string();
    assert!(slack.contains(&format!("*Notice*\\n{words}")), "{slack}");
    let discord = ecs_deploy::report::discord::outcome_message(report);
    let fields = discord["embeds"][0]["fields"].as_array().cloned();
    assert!(
        fields
            .unwrap_or_default()
            .iter()
            .any(|f| f["name"] == "Notice" && f["value"] == words),
        "{discord}"
    );
}

#[tokio::test]
async fn an_early_success_rollout_ends_at_successful_while_the_old_tasks_still_drain() {
    let (ecs, aws) = scripted(
        Duration::from_millis(900),
        "DEFERRED",
        Duration::from_secs(60),
    )
    .await;
    let (outcome, returned) = deployed(&aws).await;

    let successful = ecs.successful_at("web1").expect("updated");
    let drained = ecs.drained_at("web1").expect("updated");
    assert!(returned >= successful, "not before SUCCESSFUL");
    assert!(
        returned - successful <= Duration::from_secs(1),
        "within a second of SUCCESSFUL: {:?}",
        returned - successful
    );
    assert!(
        returned + Duration::from_secs(55) < drained,
        "ended long before the drain"
    );
    // The service still lists the old deployment, its tasks draining.
    let live = aws
        .ecs
        .describe_services()
        .cluster("prod")
        .services("web1")
        .send()
        .await
        .expect("DescribeServices");
    assert_eq!(live.services()[0].deployments().len(), 2);

    // What was read: only ours (the update's, not the one before it), and its revision once.
    let ours = service_deployment_arn("web1", 1);
    let described = ecs.bodies("DescribeServiceDeployments");
    assert!(!described.is_empty());
    assert!(
        described
            .iter()
            .all(|b| *b == json!({"serviceDeploymentArns": [ours]})),
        "{described:?}"
    );
    assert_eq!(
        ecs.bodies("DescribeServiceRevisions"),
        vec![json!({"serviceRevisionArns": [service_revision_arn("web1", 1)]})]
    );
    assert_eq!(ecs.count("UpdateService"), 1);

    assert_eq!(outcome.notices, vec![EARLY_WORDS.to_string()]);
    let deployment = outcome.deployment_id.clone().unwrap_or_default();
    assert!(
        outcome
            .steps
            .contains(&format!("deployment {deployment} succeeded: {EARLY_WORDS}")),
        "{:?}",
        outcome.steps
    );
    every_message_says(&report_of(&outcome), EARLY_WORDS);
}

#[tokio::test]
async fn a_blocking_service_waits_for_the_drain_as_without_early_success() {
    let (ecs, aws) = scripted(
        Duration::from_millis(500),
        "BLOCKING",
        Duration::from_millis(1500),
    )
    .await;
    waited_for_the_drain(&ecs, &aws).await;
    // As today: the service alone is read, no service deployment.
    assert_eq!(ecs.count("DescribeServiceDeployments"), 0);
    assert_eq!(ecs.count("DescribeServiceRevisions"), 0);
}

#[tokio::test]
async fn a_role_without_the_service_deployment_reads_waits_for_the_drain_as_before() {
    // An IAM policy from before this version: DescribeServiceDeployments is denied.
    let (ecs, aws) = scripted_with(Script {
        rollout: Duration::from_millis(500),
        early: Some(EarlyScript {
            cleanup: "DEFERRED",
            drain: Duration::from_millis(1500),
        }),
        deny: vec!["DescribeServiceDeployments"],
        ..Default::default()
    })
    .await;
    waited_for_the_drain(&ecs, &aws).await;
    assert_eq!(
        ecs.count("DescribeServiceDeployments"),
        1,
        "denied once, then not asked again"
    );
}

#[tokio::test]
async fn a_failed_verification_after_early_success_rolls_the_service_back() {
    let (ecs, _) = scripted(
        Duration::from_millis(600),
        "DEFERRED",
        Duration::from_millis(1500),
    )
    .await;
    let app = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&app)
        .await;
    let url = format!("{}/health", app.uri());
    // Through the binary: the exit code and the outputs as a job gets them.
    let run = crate::support::web1_deploy(&ecs.endpoint(), "registry.example.com/web1:v1.2.3")
        .env("INPUT_VERIFY-URL", &url)
        .env("INPUT_VERIFY-REQUESTS", "2")
        .timeout(Duration::from_secs(120));
    let out = tokio::task::spawn_blocking(move || run.run())
        .await
        .expect("run thread");
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    assert_eq!(out.output("verification"), Some("failed"), "{out}");
    assert_eq!(app.received_requests().await.unwrap_or_default().len(), 2);
    let error = format!(
        "web1 (ECS service web1 in cluster prod): verification failed: 2 of 2 probes of {url} failed (0 allowed); look at"
    );
    assert!(out.stdout.contains(&error), "{out}");

    // The rollout ended early; then our rollback (ECS's no longer applies) went back to web1:1,
    // followed as always.
    assert!(
        out.summary
            .contains(&format!("### Notice\n\n- {EARLY_WORDS}")),
        "{out}"
    );
    assert!(
        out.summary
            .contains("### Rollback\n\n- service updated back to web1:1"),
        "{out}"
    );
    let updates = ecs.bodies("UpdateService");
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(updates[1]["taskDefinition"], json!(td_arn("web1", 1)));
    // The early success reads were ours only.
    assert!(
        ecs.bodies("DescribeServiceDeployments")
            .iter()
            .all(|b| *b == json!({"serviceDeploymentArns": [service_deployment_arn("web1", 1)]}))
    );
}
