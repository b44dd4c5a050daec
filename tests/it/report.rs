//! Telling people (issue 6): Slack (webhook and bot), Discord and GitHub Deployments against
//! recording wiremock servers, and the job summary.
//!
//! Two layers. Library-level tests drive `Notifier` with a hand-built `Report` and short time
//! limits: exact JSON for success, failure and rolled-back (snapshots), the postMessage →
//! update → thread sequence, the deployment → statuses sequence, and every way a reporter can
//! fail. Binary-level tests run the real `ecs-deploy` (an external image and no service, so no
//! AWS call; or a service on moto whose one-off task cannot run, for a failure after the start)
//! and check the exit code, the warnings and that no log line carries a test secret.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ecs_deploy::inputs::{ReportSettings, Secret, Settings};
use ecs_deploy::plan::Plan;
use ecs_deploy::report::notify::Notifier;
use ecs_deploy::report::{
    AppReport, Link, Report, RunInfo, Status, discord, github, slack, summary,
};
use ecs_deploy::runner::http::Policy;
use ecs_deploy::trigger::Decision;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::bin::SECRET_MARKS;
use crate::support::{
    BinOutput, BinRun, MotoServer, fixture, recording_server, repo_root, sdk_config,
};
use ecs_deploy::aws::Aws;

const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678";
const TS: &str = "1700000000.000100";

// The test secrets. Every log line and every warning of this suite is searched for them.
const SLACK_HOOK_PATH: &str = "/services/T0000/B0000/slackHOOKsecret42";
const BOT_TOKEN: &str = "xoxb-0000-slackBOTsecret42";
const DISCORD_HOOK_PATH: &str = "/api/webhooks/1234/discordHOOKsecret42";
const GITHUB_TOKEN: &str = "ghs_githubTOKENsecret42";
/// Panics when `text` carries any test secret (the marks are shared with the harness, which
/// checks every run of the suite).
#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for line in text.lines() {
        for mark in SECRET_MARKS {
            assert!(
                !line.contains(mark),
                "{what} leaks a secret ({mark}): {line}"
            );
        }
    }
}

/// Every log line of a binary run except the `::add-mask::` lines, which must name the secret
/// so the runner can hide it.
#[track_caller]
fn assert_log_has_no_secret(out: &BinOutput) {
    let log: Vec<&str> = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect();
    assert_no_secret("the log", &log.join("\n"));
    assert_no_secret("the outputs", &out.outputs_raw);
    assert_no_secret("the job summary", &out.summary);
}

/// Short limits so failure tests take a second, not the production five.
fn fast() -> Policy {
    Policy {
        timeout: Duration::from_millis(500),
        retry_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
        budget: Duration::from_secs(3),
    }
}

fn run_info() -> RunInfo {
    RunInfo {
        repository: Some("acme/shop".into()),
        sha: Some(SHA.into()),
        git_ref: Some("refs/heads/main".into()),
        actor: Some("octocat".into()),
        workflow: Some("deploy".into()),
        event_name: Some("pull_request".into()),
        run_url: Some("https://github.com/acme/shop/actions/runs/4242".into()),
        commit_url: Some(format!("https://github.com/acme/shop/commit/{SHA}")),
    }
}

fn app(status: Status) -> AppReport {
    AppReport {
        app: "web1".into(),
        version: Some("1.2.3".into()),
        image: Some("123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web1:v1.2.3".into()),
        image_digest: Some(
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        ),
        image_built: Some(true),
        task_definition_arn: Some(
            "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/web1:42".into(),
        ),
        previous_task_definition_arn: Some(
            "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/web1:41".into(),
        ),
        deployment_id: Some("ecs-svc/1234567890123456789".into()),
        deployment_kind: Some(ecs_deploy::outcome::DeployPath::Rolling),
        status: Some(status),
        steps: vec![
            "registered task definition web1:42".into(),
            "service prod/web1 updated to web1:42".into(),
            "rollout COMPLETED: 2 of 2 tasks running".into(),
        ],
        links: vec![Link {
            label: "ECS service web1".into(),
            url: "https://ap-northeast-2.console.aws.amazon.com/ecs/v2/clusters/prod/services/web1/deployments?region=ap-northeast-2".into(),
        }],
        duration: Duration::from_secs(185),
        ..Default::default()
    }
}

fn report_with(a: AppReport) -> Report {
    Report {
        run: run_info(),
        trigger: Some("PR #7 merged: release/web1 → main".into()),
        apps: vec![a],
        duration: Duration::from_secs(187),
        ..Default::default()
    }
}

fn succeeded() -> Report {
    report_with(app(Status::Succeeded))
}

fn failed() -> Report {
    let mut a = app(Status::Failed);
    a.deployment_kind = Some(ecs_deploy::outcome::DeployPath::CodeDeploy);
    a.deployment_id = Some("d-ABCDEF123".into());
    a.steps = vec![
        "registered task definition web1:42".into(),
        "CodeDeploy d-ABCDEF123 created".into(),
        "BeforeAllowTraffic hook failed".into(),
    ];
    a.error = Some(
        "CodeDeploy deployment d-ABCDEF123 of web1 failed: the BeforeAllowTraffic hook \
         returned Failed; look at the hook function's log, fix it and run the deploy again"
            .into(),
    );
    report_with(a)
}

fn rolled_back() -> Report {
    let mut a = app(Status::RolledBack);
    a.steps = vec![
        "registered task definition web1:42".into(),
        "service prod/web1 updated to web1:42".into(),
        "circuit breaker: 3 tasks failed to start, rollout FAILED".into(),
        "rolled back: service prod/web1 updated to web1:41".into(),
    ];
    a.error = Some(
        "the new tasks of web1 kept stopping (Essential container in task exited, exit code 1); \
         see the stopped tasks in the console"
            .into(),
    );
    a.rollback = Some("service prod/web1 is back on web1:41".into());
    report_with(a)
}

/// Reporting settings pointing every channel at `server`.
fn settings(server: &MockServer) -> ReportSettings {
    ReportSettings {
        slack_webhook_url: Some(Secret::new(format!("{}{SLACK_HOOK_PATH}", server.uri()))),
        slack_bot_token: Some(Secret::new(BOT_TOKEN)),
        slack_channel: Some("C0123456789".into()),
        discord_webhook_url: Some(Secret::new(format!("{}{DISCORD_HOOK_PATH}", server.uri()))),
        github_token: Some(Secret::new(GITHUB_TOKEN)),
        environment: Some("production".into()),
        github_api_url: Some(server.uri()),
        slack_api_url: Some(server.uri()),
        ..Default::default()
    }
}

/// Only the Slack webhook.
fn webhook_only(server: &MockServer) -> ReportSettings {
    ReportSettings {
        slack_webhook_url: Some(Secret::new(format!("{}{SLACK_HOOK_PATH}", server.uri()))),
        ..Default::default()
    }
}

/// A real plan, as the binary builds it: web1 from the monorepo fixture, an external image.
fn plan() -> Plan {
    let env = |k: &str| -> Option<String> {
        let v = match k {
            "GITHUB_EVENT_NAME" => "pull_request".to_string(),
            "GITHUB_EVENT_PATH" => fixture("events/pr-merged-release-web1.json")
                .display()
                .to_string(),
            "GITHUB_WORKSPACE" => fixture("monorepo").display().to_string(),
            "GITHUB_REPOSITORY" => "acme/shop".into(),
            "GITHUB_SHA" => SHA.into(),
            "INPUT_IMAGE" => "registry.example/web1:v1.2.3".into(),
            "INPUT_CLUSTER" => "prod".into(),
            "INPUT_SERVICE" => "web1".into(),
            _ => return None,
        };
        Some(v)
    };
    let sources = ecs_deploy::inputs::read_sources(["ecs-deploy"], &env).expect("sources");
    let settings = Settings::from_sources(&sources).expect("settings");
    let Decision::Deploy(trigger) = ecs_deploy::decide(&settings).expect("decision") else {
        panic!("the merged release PR must deploy");
    };
    ecs_deploy::plan::build(&settings, &trigger).expect("plan")
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

/// The paths the server was sent, in order.
async fn paths(server: &MockServer) -> Vec<String> {
    requests(server)
        .await
        .iter()
        .map(|r| r.url.path().to_string())
        .collect()
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}

fn header<'a>(r: &'a Request, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Mounts Slack's Web API answering `ok: true` with channel id and `ts`.
async fn slack_api_ok(server: &MockServer) {
    for m in ["/chat.postMessage", "/chat.update"] {
        Mock::given(method("POST"))
            .and(path(m))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "ok": true, "channel": "C0123456789", "ts": TS })),
            )
            .mount(server)
            .await;
    }
}

/// Mounts the GitHub Deployments API: deployment 42 is created, statuses are accepted.
async fn github_ok(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/repos/acme/shop/deployments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 42 })))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/shop/deployments/42/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .mount(server)
        .await;
}

/// Runs start and finish the way the binary does; returns the notifier and the ts.
async fn notify(
    settings: &ReportSettings,
    plan: Option<&Plan>,
    report: &Report,
) -> (Notifier, Option<String>) {
    let mut n = Notifier::with_policy(settings, &report.run, fast());
    if let Some(p) = plan {
        n.start(p).await;
    }
    let ts = n.finish(report).await;
    for w in n.warnings() {
        assert_no_secret("a warning", w);
    }
    (n, ts)
}

// ---------------------------------------------------------------------------------------------
// What is sent: exact payloads (snapshots)

#[test]
fn the_slack_message_for_success_failure_and_rollback_is_exactly_the_snapshot() {
    insta::assert_json_snapshot!("slack_succeeded", slack::outcome_message(&succeeded()));
    insta::assert_json_snapshot!("slack_failed", slack::outcome_message(&failed()));
    insta::assert_json_snapshot!("slack_rolled_back", slack::outcome_message(&rolled_back()));
}

#[test]
fn the_slack_start_message_names_the_app_version_and_service() {
    insta::assert_json_snapshot!("slack_start", slack::start_message(&plan(), &run_info()));
}

#[test]
fn the_slack_failure_thread_carries_the_error_rollback_and_steps() {
    insta::assert_snapshot!(
        "slack_thread_rolled_back",
        slack::failure_thread(&rolled_back()).expect("a thread reply for a rollback")
    );
    assert_eq!(slack::failure_thread(&succeeded()), None);
}

#[test]
fn the_discord_embed_for_success_failure_and_rollback_is_exactly_the_snapshot() {
    insta::assert_json_snapshot!("discord_succeeded", discord::outcome_message(&succeeded()));
    insta::assert_json_snapshot!("discord_failed", discord::outcome_message(&failed()));
    insta::assert_json_snapshot!(
        "discord_rolled_back",
        discord::outcome_message(&rolled_back())
    );
}

/// A rolling deploy whose new tasks crash at start (a missing setting): failed fast on the third
/// stopped task, rolled back, with the cause, the stopped task, its log stream and last lines.
fn crash_looped() -> Report {
    let mut a = app(Status::RolledBack);
    let task = "3f2a9c0e1b7d4e6fa8c5d2b1e0f9a7c6";
    let task_url = format!(
        "https://ap-northeast-2.console.aws.amazon.com/ecs/v2/clusters/prod/tasks/{task}/configuration?region=ap-northeast-2"
    );
    let stream = format!("ecs/web1/{task}");
    a.steps = vec![
        "registered task definition web1:42".into(),
        "service prod/web1 updated to web1:42".into(),
        "cause: essential container web1 exited 1 (Essential container in task exited): the app stopped at start; see its last log lines".into(),
        "rolled back: service prod/web1 updated to web1:41".into(),
    ];
    a.links.push(Link {
        label: format!("stopped task {task}"),
        url: task_url.clone(),
    });
    a.links.push(Link {
        label: format!("log stream {stream}"),
        url: format!("https://ap-northeast-2.console.aws.amazon.com/cloudwatch/home?region=ap-northeast-2#logsV2:log-groups/log-group/$252Fecs$252Fweb1/log-events/ecs$252Fweb1$252F{task}"),
    });
    a.error = Some(format!(
        "deployment ecs-svc/1234567890123456789 of ECS service web1 (cluster prod): 3 tasks of the new revision stopped: essential container web1 exited 1 (Essential container in task exited): the app stopped at start; see its last log lines (stopped task: {task_url}); failing now instead of waiting out wait-for-minutes (fail-fast-after-stopped-tasks)"
    ));
    a.rollback = Some("service prod/web1 is back on web1:41".into());
    a.log_tail = Some(ecs_deploy::deploy::diagnosis::LogTail {
        group: "/ecs/web1".into(),
        stream,
        lines: vec![
            "Traceback (most recent call last):".into(),
            "  File \"/app/manage.py\", line 22, in <module>".into(),
            "    main()".into(),
            "  File \"/app/shop/settings.py\", line 31, in <module>".into(),
            "    DATABASES = {\"default\": env.db(\"DATABASE_URL\")}".into(),
            "KeyError: 'DATABASE_URL'".into(),
        ],
        url: None,
    });
    report_with(a)
}

/// The crash-loop summary the book shows (docs/src/deploying.md), exactly as rendered, as a
/// Markdown quote.
#[test]
fn the_book_shows_the_summary_of_a_crash_looping_deploy_as_rendered() {
    let rendered = summary::render(&crash_looped());
    insta::assert_snapshot!("summary_crash_loop", rendered);
    let quoted: String = rendered
        .trim_end()
        .lines()
        .map(|l| {
            if l.is_empty() {
                ">\n".to_string()
            } else {
                format!("> {l}\n")
            }
        })
        .collect();
    let page = crate::readme::book_page("deploying.md");
    assert!(
        page.contains(&quoted),
        "docs/src/deploying.md's crash-loop summary differs from the rendered one; put this in \
         it:\n{quoted}"
    );
}

#[test]
fn the_job_summary_shows_the_table_the_steps_and_the_error() {
    insta::assert_snapshot!("summary_succeeded", summary::render(&succeeded()));
    insta::assert_snapshot!("summary_rolled_back", summary::render(&rolled_back()));
}

#[test]
fn github_deployment_statuses_follow_the_outcome() {
    let s = github::final_status(&succeeded());
    assert_eq!(s["state"], "success");
    assert_eq!(
        s["log_url"],
        "https://github.com/acme/shop/actions/runs/4242"
    );
    assert!(
        s["environment_url"]
            .as_str()
            .unwrap_or_default()
            .contains("services/web1")
    );
    assert_eq!(github::final_status(&failed())["state"], "failure");
    assert_eq!(github::final_status(&rolled_back())["state"], "failure");
    let mut cancelled = succeeded();
    cancelled.apps[0].status = Some(Status::Cancelled);
    assert_eq!(github::final_status(&cancelled)["state"], "inactive");
    insta::assert_json_snapshot!(
        "github_rolled_back_status",
        github::final_status(&rolled_back())
    );
}

#[test]
fn a_slack_payload_template_is_filled_with_the_report() {
    let settings = ReportSettings {
        slack_payload: Some(
            r#"{"text": "{status_emoji} {app} {version} {status} by {actor}", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<{run_url}|run> {error}"}}]}"#
                .into(),
        ),
        ..Default::default()
    };
    let report = failed();
    let vars = ecs_deploy::report::facts::variables(&report, "production");
    let (message, problem) = slack::outcome_or_template(&report, &settings, &vars);
    assert!(problem.is_none());
    assert_eq!(message["text"], "❌ web1 1.2.3 failed by octocat");
    let text = message["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.starts_with("<https://github.com/acme/shop/actions/runs/4242|run> CodeDeploy"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// How it is sent: the sequences, against recording servers

#[tokio::test]
async fn the_webhook_gets_one_block_kit_message_at_the_end() {
    let server = recording_server().await;
    let report = rolled_back();
    let (n, ts) = notify(&webhook_only(&server), None, &report).await;
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1, "one message, at the end");
    assert_eq!(sent[0].url.path(), SLACK_HOOK_PATH);
    assert_eq!(body(&sent[0]), slack::outcome_message(&report));
    assert_eq!(ts, None, "a webhook has no message ts");
    assert!(n.warnings().is_empty(), "{:?}", n.warnings());
}

#[tokio::test]
async fn the_bot_posts_at_the_start_then_updates_the_same_message_and_replies_in_its_thread() {
    let server = MockServer::start().await;
    slack_api_ok(&server).await;
    let settings = ReportSettings {
        slack_bot_token: Some(Secret::new(BOT_TOKEN)),
        slack_channel: Some("#deploys".into()),
        slack_api_url: Some(server.uri()),
        ..Default::default()
    };
    let plan = plan();
    let report = failed();
    let (n, ts) = notify(&settings, Some(&plan), &report).await;
    assert_eq!(ts.as_deref(), Some(TS), "the ts of the one message");
    assert!(n.warnings().is_empty(), "{:?}", n.warnings());

    let sent = requests(&server).await;
    let calls: Vec<&str> = sent.iter().map(|r| r.url.path()).collect();
    assert_eq!(
        calls,
        ["/chat.postMessage", "/chat.update", "/chat.postMessage"]
    );
    for r in &sent {
        assert_eq!(header(r, "authorization"), format!("Bearer {BOT_TOKEN}"));
    }
    let start = body(&sent[0]);
    assert_eq!(start["channel"], "#deploys");
    assert_eq!(start["text"], "🚀 Deploying web1 v1.2.3…");

    let mut expected_update = slack::outcome_message(&report);
    expected_update["channel"] = json!("C0123456789");
    expected_update["ts"] = json!(TS);
    assert_eq!(
        body(&sent[1]),
        expected_update,
        "chat.update of the same message"
    );

    let reply = body(&sent[2]);
    assert_eq!(reply["thread_ts"], TS);
    assert_eq!(reply["channel"], "C0123456789");
    assert!(
        reply["text"]
            .as_str()
            .unwrap_or_default()
            .contains("BeforeAllowTraffic hook"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_successful_deploy_updates_the_message_without_a_thread_reply() {
    let server = MockServer::start().await;
    slack_api_ok(&server).await;
    let settings = ReportSettings {
        slack_bot_token: Some(Secret::new(BOT_TOKEN)),
        slack_channel: Some("C0123456789".into()),
        slack_api_url: Some(server.uri()),
        ..Default::default()
    };
    let (_, ts) = notify(&settings, Some(&plan()), &succeeded()).await;
    assert_eq!(ts.as_deref(), Some(TS));
    let calls = paths(&server).await;
    assert_eq!(calls, ["/chat.postMessage", "/chat.update"]);
}

#[tokio::test]
async fn a_github_deployment_is_created_at_the_commit_then_set_in_progress_then_to_the_outcome() {
    let server = MockServer::start().await;
    github_ok(&server).await;
    let settings = ReportSettings {
        github_token: Some(Secret::new(GITHUB_TOKEN)),
        environment: Some("staging".into()),
        github_api_url: Some(server.uri()),
        ..Default::default()
    };
    let report = rolled_back();
    let (n, _) = notify(&settings, Some(&plan()), &report).await;
    assert!(n.warnings().is_empty(), "{:?}", n.warnings());

    let sent = requests(&server).await;
    let calls: Vec<&str> = sent.iter().map(|r| r.url.path()).collect();
    assert_eq!(
        calls,
        [
            "/repos/acme/shop/deployments",
            "/repos/acme/shop/deployments/42/statuses",
            "/repos/acme/shop/deployments/42/statuses"
        ]
    );
    for r in &sent {
        assert_eq!(header(r, "authorization"), format!("Bearer {GITHUB_TOKEN}"));
        assert_eq!(header(r, "accept"), "application/vnd.github+json");
    }
    assert_eq!(
        body(&sent[0]),
        json!({
            "ref": SHA,
            "environment": "staging",
            "task": "deploy",
            "description": "web1 v1.2.3",
            "auto_merge": false,
            "required_contexts": [],
            "payload": { "apps": [{ "app": "web1", "version": "1.2.3" }] },
        })
    );
    assert_eq!(
        body(&sent[1]),
        json!({
            "state": "in_progress",
            "description": "deploying web1 v1.2.3",
            "log_url": "https://github.com/acme/shop/actions/runs/4242",
        })
    );
    assert_eq!(body(&sent[2]), github::final_status(&report));
    assert_eq!(body(&sent[2])["state"], "failure");
}

#[tokio::test]
async fn a_github_enterprise_api_url_keeps_its_path_and_a_token_with_a_line_break_is_a_warning() {
    // GitHub Enterprise Server serves the REST API under /api/v3: octocrab's routes go below it.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v3/repos/acme/shop/deployments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 7 })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/repos/acme/shop/deployments/7/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .mount(&server)
        .await;
    let settings = ReportSettings {
        github_token: Some(Secret::new(GITHUB_TOKEN)),
        github_api_url: Some(format!("{}/api/v3/", server.uri())),
        ..Default::default()
    };
    let (n, _) = notify(&settings, Some(&plan()), &succeeded()).await;
    assert!(n.warnings().is_empty(), "{:?}", n.warnings());
    let calls = paths(&server).await;
    assert_eq!(
        calls,
        [
            "/api/v3/repos/acme/shop/deployments",
            "/api/v3/repos/acme/shop/deployments/7/statuses",
            "/api/v3/repos/acme/shop/deployments/7/statuses"
        ]
    );

    // A token pasted with a line break cannot be a header: a warning, nothing sent, no panic.
    let server = recording_server().await;
    let settings = ReportSettings {
        github_token: Some(Secret::new(format!("{GITHUB_TOKEN}\nx"))),
        github_api_url: Some(server.uri()),
        ..Default::default()
    };
    let (n, _) = notify(&settings, Some(&plan()), &succeeded()).await;
    assert!(requests(&server).await.is_empty());
    assert_eq!(
        n.warnings(),
        [
            "GitHub create deployment: github-token holds characters an HTTP header cannot carry \
          (a line break?); pass the token alone; the deploy's result is unchanged"
        ]
    );
}

#[tokio::test]
async fn without_a_github_token_no_deployment_is_recorded_and_nothing_is_sent() {
    let server = recording_server().await;
    let settings = ReportSettings {
        github_api_url: Some(server.uri()),
        ..Default::default()
    };
    let (n, _) = notify(&settings, Some(&plan()), &succeeded()).await;
    assert!(requests(&server).await.is_empty());
    assert!(
        n.warnings().is_empty(),
        "a missing token is a notice, not a warning"
    );
}

#[tokio::test]
async fn discord_gets_one_embed_at_the_end() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(DISCORD_HOOK_PATH))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let settings = ReportSettings {
        discord_webhook_url: Some(Secret::new(format!("{}{DISCORD_HOOK_PATH}", server.uri()))),
        ..Default::default()
    };
    let report = failed();
    let (n, _) = notify(&settings, Some(&plan()), &report).await;
    assert!(n.warnings().is_empty(), "{:?}", n.warnings());
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(body(&sent[0]), discord::outcome_message(&report));
}

// ---------------------------------------------------------------------------------------------
// Reporters never decide the outcome: every failure is a warning naming what went wrong

#[tokio::test]
async fn a_5xx_from_every_service_is_retried_once_then_becomes_a_warning_per_service() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&server)
        .await;
    let (n, ts) = notify(&settings(&server), Some(&plan()), &succeeded()).await;
    assert_eq!(ts, None);
    let w = n.warnings().join("\n");
    for target in [
        "Slack chat.postMessage",
        "GitHub create deployment",
        "Slack webhook",
        "Discord webhook",
    ] {
        assert!(
            w.contains(&format!("{target}: HTTP 503: upstream down; retried once")),
            "{target} in {w}"
        );
    }
    // Start: postMessage ×2, create deployment ×2. End: webhook ×2, discord ×2, and the bot
    // (no start message) tries a fresh postMessage ×2. No statuses: no deployment was created.
    assert_eq!(count(&server, "/chat.postMessage").await, 4);
    assert_eq!(count(&server, "/repos/acme/shop/deployments").await, 2);
    assert_eq!(count(&server, SLACK_HOOK_PATH).await, 2);
    assert_eq!(count(&server, DISCORD_HOOK_PATH).await, 2);
}

async fn count(server: &MockServer, p: &str) -> usize {
    requests(server)
        .await
        .iter()
        .filter(|r| r.url.path() == p)
        .count()
}

#[tokio::test]
async fn a_service_that_does_not_answer_is_given_up_within_the_time_limit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let t = Instant::now();
    let (n, _) = notify(&settings(&server), Some(&plan()), &failed()).await;
    let took = t.elapsed();
    // Start and finish each run their reporters side by side; each request stops at 0.5 s.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let w = n.warnings().join("\n");
    for target in [
        "Slack chat.postMessage",
        "GitHub create deployment",
        "Slack webhook",
        "Discord webhook",
    ] {
        assert!(
            w.contains(&format!("{target}: no answer within 0.5s")),
            "{target} in {w}"
        );
    }
}

#[tokio::test]
async fn slack_ok_false_answers_are_warnings_naming_slacks_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ok": false, "error": "channel_not_found" })),
        )
        .mount(&server)
        .await;
    let settings = ReportSettings {
        slack_bot_token: Some(Secret::new(BOT_TOKEN)),
        slack_channel: Some("C0123456789".into()),
        slack_api_url: Some(server.uri()),
        ..Default::default()
    };
    let (n, ts) = notify(&settings, Some(&plan()), &succeeded()).await;
    assert_eq!(ts, None);
    assert_eq!(
        n.warnings().len(),
        1,
        "a refused channel is not tried again at the end: {:?}",
        n.warnings()
    );
    assert_eq!(requests(&server).await.len(), 1);
    assert!(
        n.warnings()[0].starts_with(
            "Slack chat.postMessage: Slack answered channel_not_found (check slack-channel"
        ),
        "{:?}",
        n.warnings()
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ok": false, "error": "invalid_auth" })),
        )
        .mount(&server)
        .await;
    let settings = ReportSettings {
        slack_api_url: Some(server.uri()),
        ..settings
    };
    let (n, _) = notify(&settings, None, &succeeded()).await;
    assert!(
        n.warnings()[0].contains("Slack answered invalid_auth (check slack-bot-token"),
        "{:?}",
        n.warnings()
    );
}

#[tokio::test]
async fn a_message_deleted_before_the_update_is_posted_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.update"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ok": false, "error": "message_not_found" })),
        )
        .mount(&server)
        .await;
    slack_api_ok(&server).await;
    let settings = ReportSettings {
        slack_bot_token: Some(Secret::new(BOT_TOKEN)),
        slack_channel: Some("C0123456789".into()),
        slack_api_url: Some(server.uri()),
        ..Default::default()
    };
    let (n, ts) = notify(&settings, Some(&plan()), &succeeded()).await;
    assert_eq!(ts.as_deref(), Some(TS));
    let calls = paths(&server).await;
    assert_eq!(
        calls,
        ["/chat.postMessage", "/chat.update", "/chat.postMessage"]
    );
    assert!(
        n.warnings()[0].contains("message_not_found"),
        "{:?}",
        n.warnings()
    );
}

#[tokio::test]
async fn a_short_retry_after_is_honoured_once_and_a_long_one_is_not_waited_for() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let t = Instant::now();
    let (n, _) = notify(&webhook_only(&server), None, &succeeded()).await;
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "waited the Retry-After"
    );
    assert!(n.warnings().is_empty(), "{:?}", n.warnings());
    assert_eq!(requests(&server).await.len(), 2);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "60"))
        .mount(&server)
        .await;
    let t = Instant::now();
    let (n, _) = notify(&webhook_only(&server), None, &succeeded()).await;
    assert!(t.elapsed() < Duration::from_secs(3), "did not wait 60 s");
    assert_eq!(requests(&server).await.len(), 1);
    assert!(
        n.warnings()[0].contains("Retry-After 60s, longer than the 2s"),
        "{:?}",
        n.warnings()
    );
}

#[tokio::test]
async fn unreachable_and_malformed_urls_are_warnings_that_never_print_the_url() {
    // A port nobody listens on: connection refused, retried once, then a warning.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dead = format!("http://127.0.0.1:{port}");
    let settings = ReportSettings {
        slack_webhook_url: Some(Secret::new(format!("{dead}{SLACK_HOOK_PATH}"))),
        discord_webhook_url: Some(Secret::new(format!("http://exa mple{DISCORD_HOOK_PATH}"))),
        ..Default::default()
    };
    let (n, _) = notify(&settings, None, &succeeded()).await;
    let w = n.warnings().join("\n");
    assert!(w.contains("Slack webhook: could not connect"), "{w}");
    assert!(w.contains("Discord webhook: the URL is not valid"), "{w}");

    // The guard matters: reqwest's own error text names the URL, secret path included.
    let raw = reqwest::Client::new()
        .post(format!("{dead}{SLACK_HOOK_PATH}"))
        .send()
        .await
        .expect_err("nothing listens there")
        .to_string();
    assert!(raw.contains("slackHOOKsecret42"), "reqwest's error: {raw}");
}

// ---------------------------------------------------------------------------------------------
// The real binary: exit codes, outputs, the summary and the log

/// A listener that counts and drops every connection: an AWS endpoint that never answers.
struct DeadAws {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl DeadAws {
    fn start() -> DeadAws {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        DeadAws { port, hits }
    }
}

/// The binary as the runner starts it for the merged `release/web1` PR, every reporter
/// pointed at `server`, the image already built elsewhere.
fn deploy_run(aws: &DeadAws, server: &MockServer, extra: &[(&str, &str)]) -> BinOutput {
    let mut r = BinRun::new()
        .cwd(repo_root())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", aws.port))
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env(
            "GITHUB_EVENT_PATH",
            fixture(Path::new("events/pr-merged-release-web1.json")),
        )
        .env("GITHUB_WORKSPACE", fixture("monorepo"))
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_ACTOR", "octocat")
        .env("GITHUB_API_URL", server.uri())
        .env("ECS_DEPLOY_SLACK_API_URL", server.uri())
        .env("INPUT_IMAGE", "registry.example/web1:v1.2.3")
        .env(
            "INPUT_SLACK-WEBHOOK-URL",
            format!("{}{SLACK_HOOK_PATH}", server.uri()),
        )
        .env("INPUT_SLACK-BOT-TOKEN", BOT_TOKEN)
        .env("INPUT_SLACK-CHANNEL", "C0123456789")
        .env(
            "INPUT_DISCORD-WEBHOOK-URL",
            format!("{}{DISCORD_HOOK_PATH}", server.uri()),
        )
        .env("INPUT_GITHUB-TOKEN", GITHUB_TOKEN)
        .timeout(Duration::from_secs(120));
    for (k, v) in extra {
        r = r.env(k, v);
    }
    let out = r.run();
    assert_log_has_no_secret(&out);
    out
}

fn warnings(out: &BinOutput) -> Vec<&str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("::warning::"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_deploy_tells_every_channel_and_sets_the_slack_message_ts() {
    let server = recording_server().await;
    slack_api_ok(&server).await;
    github_ok(&server).await;
    let aws = DeadAws::start();
    let out = deploy_run(&aws, &server, &[]);
    out.assert_success();
    assert_eq!(
        aws.hits.load(Ordering::SeqCst),
        0,
        "no AWS call for an external image"
    );
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    assert_eq!(out.output("slack-message-ts"), Some(TS), "{out}");
    assert!(warnings(&out).is_empty(), "{out}");

    let sent = requests(&server).await;
    let mut calls: Vec<&str> = sent.iter().map(|r| r.url.path()).collect();
    // The start calls come first (in either order), then the end calls (in any order).
    let (start, end) = calls.split_at_mut(3);
    start.sort();
    end.sort();
    assert_eq!(
        start,
        [
            "/chat.postMessage",
            "/repos/acme/shop/deployments",
            "/repos/acme/shop/deployments/42/statuses"
        ]
    );
    assert_eq!(
        end,
        [
            DISCORD_HOOK_PATH,
            "/chat.update",
            "/repos/acme/shop/deployments/42/statuses",
            SLACK_HOOK_PATH
        ]
    );
    let update = sent
        .iter()
        .find(|r| r.url.path() == "/chat.update")
        .map(body)
        .unwrap_or_default();
    assert_eq!(update["ts"], TS);
    assert_eq!(update["text"], "✅ web1 v1.2.3 deployed");
    let statuses: Vec<Value> = sent
        .iter()
        .filter(|r| r.url.path().ends_with("/statuses"))
        .map(body)
        .collect();
    assert_eq!(statuses[0]["state"], "in_progress");
    assert_eq!(statuses[1]["state"], "success");
    assert!(
        out.summary
            .contains("| web1 | 1.2.3 | `registry.example/web1:v1.2.3` |"),
        "{out}"
    );
    assert!(out.summary.contains("by octocat"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_deploy_stays_successful_when_every_reporter_fails() {
    let server = MockServer::start().await;
    // Slack's Web API refuses the token, its webhook and GitHub are down, Discord hangs.
    Mock::given(path("/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ok": false, "error": "invalid_auth" })),
        )
        .mount(&server)
        .await;
    Mock::given(path(SLACK_HOOK_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal error"))
        .mount(&server)
        .await;
    Mock::given(path("/repos/acme/shop/deployments"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    Mock::given(path(DISCORD_HOOK_PATH))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let aws = DeadAws::start();
    let t = Instant::now();
    let out = deploy_run(&aws, &server, &[]);
    let took = t.elapsed();
    out.assert_success();
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    assert_eq!(out.output("slack-message-ts"), Some(""), "{out}");
    let w = warnings(&out).join("\n");
    assert!(w.contains("Slack answered invalid_auth"), "{out}");
    assert!(
        w.contains("Slack webhook: HTTP 500: internal error; retried once"),
        "{out}"
    );
    assert!(w.contains("GitHub create deployment: HTTP 502"), "{out}");
    assert!(w.contains("Discord webhook: no answer within 5s"), "{out}");
    assert!(!out.stdout.contains("::error"), "{out}");
    // Bounded: the default limits (5 s per request, 15 s per reporter), not Discord's 30 s.
    assert!(took < Duration::from_secs(25), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_deploy_updates_the_message_replies_with_the_cause_and_marks_the_deployment_failed()
 {
    let server = recording_server().await;
    slack_api_ok(&server).await;
    github_ok(&server).await;
    // The deploy must fail after the start (a preflight failure tells no "deploying"): on moto
    // the service passes the preflight, then the one-off task cannot run (EC2 launch type, no
    // instances), so the deploy fails once the reporters have announced it.
    let moto = MotoServer::start();
    crate::support::moto::web1_service(&Aws::from_config(&sdk_config(&moto.endpoint())).ecs).await;
    let aws = DeadAws::start();
    let out = deploy_run(
        &aws,
        &server,
        &[
            ("AWS_ENDPOINT_URL", &moto.endpoint()),
            ("INPUT_CLUSTER", "prod"),
            ("INPUT_SERVICE", "web1"),
            ("INPUT_RUN-TASK-COMMAND", "migrate"),
        ],
    );
    out.assert_code(1);
    assert!(out.stdout.contains("RunTask"), "{out}");
    assert_eq!(out.output("status"), Some("failed"), "{out}");
    assert_eq!(out.output("slack-message-ts"), Some(TS), "{out}");
    let sent = requests(&server).await;
    let update = sent
        .iter()
        .find(|r| r.url.path() == "/chat.update")
        .map(body)
        .unwrap_or_default();
    assert_eq!(update["ts"], TS, "{out}");
    assert_eq!(update["text"], "❌ web1 v1.2.3 deploy failed");
    let thread: Vec<Value> = sent
        .iter()
        .filter(|r| r.url.path() == "/chat.postMessage")
        .map(body)
        .filter(|b| b.get("thread_ts").is_some())
        .collect();
    assert_eq!(thread.len(), 1, "{out}");
    assert_eq!(thread[0]["thread_ts"], TS);
    let error = out.output("results").unwrap_or_default();
    assert!(!error.is_empty());
    let statuses: Vec<Value> = sent
        .iter()
        .filter(|r| r.url.path().ends_with("/statuses"))
        .map(body)
        .collect();
    assert_eq!(
        statuses.last().map(|s| s["state"].clone()),
        Some(json!("failure")),
        "{out}"
    );
    let webhook = sent
        .iter()
        .find(|r| r.url.path() == SLACK_HOOK_PATH)
        .map(body)
        .unwrap_or_default();
    let text = webhook.to_string();
    assert!(
        text.contains("*Error*"),
        "the webhook message carries the cause: {text}"
    );
    assert!(out.summary.contains("### Error"), "{out}");
}

#[tokio::test]
async fn a_reporter_is_given_up_when_all_its_calls_together_pass_the_budget() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let policy = Policy {
        timeout: Duration::from_secs(5),
        budget: Duration::from_millis(300),
        ..fast()
    };
    let mut n = Notifier::with_policy(&webhook_only(&server), &run_info(), policy);
    let t = Instant::now();
    n.finish(&succeeded()).await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(
        n.warnings(),
        ["Slack webhook: gave up after 0.3s; the deploy's result is unchanged"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_deploy_exits_0_when_every_service_answers_500() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .mount(&server)
        .await;
    let out = deploy_run(&DeadAws::start(), &server, &[]);
    out.assert_success();
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    let w = warnings(&out).join("\n");
    for target in [
        "Slack chat.postMessage",
        "GitHub create deployment",
        "Slack webhook",
        "Discord webhook",
    ] {
        assert!(
            w.contains(&format!("{target}: HTTP 500: oops")),
            "{target}:\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_deploy_exits_0_when_no_service_answers_in_time() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let t = Instant::now();
    let out = deploy_run(&DeadAws::start(), &server, &[]);
    let took = t.elapsed();
    out.assert_success();
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    let w = warnings(&out).join("\n");
    for target in [
        "Slack chat.postMessage",
        "GitHub create deployment",
        "Slack webhook",
        "Discord webhook",
    ] {
        assert!(
            w.contains(&format!("{target}: no answer within 5s")),
            "{target}:\n{out}"
        );
    }
    // Start and end each wait one request limit (5 s), the reporters side by side.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}
