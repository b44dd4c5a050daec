//! The scale-out path through the real binary: `plan-only` stops after the plan with no AWS
//! call and writes the `matrix` output; `changed-only` keeps the apps the push or pull request
//! touched, asking a recording GitHub API (wiremock on 127.0.0.1) for the changed files.
//!
//! AWS is the counting trap (`AwsTrap`): a plan-only run must not connect to it at all.

use std::path::Path;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{AwsTrap, BinOutput, BinRun, copy_tree, fixture, recording_server, repo_root};

const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678";
/// `before` of fixtures/events/push-branch-main.json.
const BEFORE: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f009876543";
/// Carries a mark of `SECRET_MARKS`: the harness fails any run whose log or outputs show it.
const TOKEN: &str = "ghs_githubTOKENsecret42";

/// The monorepo fixture planned for every app on `event`, plan-only, with `env` on top; the
/// GitHub API and Slack point at `server`.
fn plan_run(
    trap: &AwsTrap,
    server: &MockServer,
    workspace: &Path,
    event: (&str, &str),
    env: &[(&str, &str)],
) -> BinOutput {
    let mut r = BinRun::new()
        .cwd(repo_root())
        .envs(trap.env())
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_EVENT_NAME", event.0)
        .env(
            "GITHUB_EVENT_PATH",
            fixture(Path::new("events").join(event.1)),
        )
        .env("GITHUB_API_URL", server.uri())
        .env("INPUT_CONFIG", ".github/ecs-deploy.yml")
        .env("INPUT_APP", "all")
        .env(
            "INPUT_DEPLOY-ON",
            "push,pull-request-merged,workflow-dispatch",
        )
        .env("INPUT_PLAN-ONLY", "true")
        .env(
            "INPUT_SLACK-WEBHOOK-URL",
            format!("{}/services/T0/B0/hook", server.uri()),
        );
    for (k, v) in env {
        r = r.env(k, v);
    }
    r.run()
}

/// The push of fixtures/events/push-branch-main.json.
const PUSH: (&str, &str) = ("push", "push-branch-main.json");

/// [`plan_run`] with `changed-only: true` and a token.
fn changed_run(
    trap: &AwsTrap,
    server: &MockServer,
    workspace: &Path,
    event: (&str, &str),
) -> BinOutput {
    plan_run(
        trap,
        server,
        workspace,
        event,
        &[
            ("INPUT_CHANGED-ONLY", "true"),
            ("INPUT_GITHUB-TOKEN", TOKEN),
        ],
    )
}

fn matrix(out: &BinOutput) -> Value {
    serde_json::from_str(out.output("matrix").unwrap_or("null")).expect("matrix is JSON")
}

fn apps(out: &BinOutput) -> Vec<String> {
    matrix(out)["include"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["app"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn paths(server: &MockServer) -> Vec<String> {
    requests(server)
        .await
        .iter()
        .map(|r| match r.url.query() {
            Some(q) => format!("{}?{q}", r.url.path()),
            None => r.url.path().to_string(),
        })
        .collect()
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

/// Mounts the compare of the push fixture answering with `files`.
async fn compare(server: &MockServer, files: &[&str]) {
    let files: Vec<Value> = files.iter().map(|f| json!({ "filename": f })).collect();
    Mock::given(method("GET"))
        .and(path(format!("/repos/acme/shop/compare/{BEFORE}...{SHA}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "files": files })))
        .mount(server)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_only_writes_the_matrix_of_every_app_and_calls_neither_aws_nor_anyone() {
    let trap = AwsTrap::start();
    let server = recording_server().await;
    let out = plan_run(&trap, &server, &fixture("monorepo"), PUSH, &[]);
    out.assert_success();
    assert_eq!(
        matrix(&out),
        json!({ "include": [
            { "app": "web1", "version": "1.2.3", "cluster": "prod", "service": "web1" },
            { "app": "web2", "version": "2.0.1", "cluster": "prod", "service": "web2" },
        ]}),
        "{out}"
    );
    assert_eq!(out.output("app"), Some("web1,web2"), "{out}");
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    assert_eq!(trap.hits(), 0, "plan-only connected to AWS:\n{out}");
    assert!(
        requests(&server).await.is_empty(),
        "plan-only sends no message"
    );
    assert!(out.summary.contains("ECS deploy (plan only)"), "{out}");
    assert!(
        out.stdout.contains("plan only: nothing was read from AWS"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_only_run_needs_no_aws_settings_at_all() {
    // The matrix job has no AWS credentials or region: the run must not even look for them.
    let server = recording_server().await;
    let out = BinRun::new()
        .cwd(repo_root())
        .env("GITHUB_WORKSPACE", fixture("monorepo"))
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env(
            "GITHUB_EVENT_PATH",
            fixture("events/pr-merged-release-web1.json"),
        )
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.uri())
        .env("INPUT_CONFIG", ".github/ecs-deploy.yml")
        .env("INPUT_PLAN-ONLY", "true")
        .run();
    out.assert_success();
    assert_eq!(out.output("app"), Some("web1"), "{out}");
    assert!(
        requests(&server).await.is_empty(),
        "instance metadata was asked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_only_keeps_the_apps_whose_directory_or_task_definition_changed_in_the_push() {
    let trap = AwsTrap::start();
    let server = recording_server().await;
    compare(
        &server,
        &["apps/web2/index.html", "README.md", "apps/web10/x"],
    )
    .await;
    let out = changed_run(&trap, &server, &fixture("monorepo"), PUSH);
    out.assert_success();
    assert_eq!(apps(&out), ["web2"], "{out}");
    assert!(
        out.stdout.contains(
            "changed-only: push 0f1e2d3...1a2b3c4 changed 3 files; unchanged, not deployed: web1"
        ),
        "{out}"
    );
    let sent = requests(&server).await;
    assert_eq!(
        paths(&server).await,
        [format!(
            "/repos/acme/shop/compare/{BEFORE}...{SHA}?per_page=1"
        )]
    );
    let header = |name: &str| {
        sent[0]
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(header("accept"), "application/vnd.github+json");
    assert_eq!(trap.hits(), 0, "{out}");

    // The task definition file is the app's too.
    let server = recording_server().await;
    compare(&server, &["deploy/web1-task-definition.json"]).await;
    let out = changed_run(&trap, &server, &fixture("monorepo"), PUSH);
    assert_eq!(apps(&out), ["web1"], "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_path_named_in_the_config_counts_for_its_app_only() {
    let ws = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("monorepo"), ws.path());
    let config = ws.path().join(".github/ecs-deploy.yml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "    deployment: codedeploy",
        "    deployment: codedeploy\n    paths: [libs/shared, ./libs/payments/]",
    );
    std::fs::write(&config, text).expect("write config");
    let trap = AwsTrap::start();
    let server = recording_server().await;
    compare(&server, &["libs/payments/pay.ts"]).await;
    let out = changed_run(&trap, &server, ws.path(), PUSH);
    out.assert_success();
    assert_eq!(apps(&out), ["web2"], "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_is_read_page_by_page_and_no_change_is_a_skip() {
    let trap = AwsTrap::start();
    let server = recording_server().await;
    // A full first page (100 files elsewhere), then the page holding web1's change.
    let page1: Vec<Value> = (0..100)
        .map(|i| json!({ "filename": format!("docs/page{i}.md") }))
        .collect();
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/pulls/2/files"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page1))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/pulls/2/files"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "filename": "apps/web1/index.html", "previous_filename": "apps/web1/old.html" }
        ])))
        .mount(&server)
        .await;
    let out = changed_run(
        &trap,
        &server,
        &fixture("monorepo"),
        ("pull_request", "pr-merged-release-web1.json"),
    );
    out.assert_success();
    assert_eq!(apps(&out), ["web1"], "{out}");
    assert_eq!(
        paths(&server).await,
        [
            "/repos/acme/shop/pulls/2/files?per_page=100&page=1",
            "/repos/acme/shop/pulls/2/files?per_page=100&page=2"
        ]
    );

    // Nothing of any app changed: a skip with a notice, an empty matrix, exit 0.
    let server = recording_server().await;
    compare(&server, &["README.md"]).await;
    let out = changed_run(&trap, &server, &fixture("monorepo"), PUSH);
    out.assert_success();
    assert_eq!(out.output("skipped"), Some("true"), "{out}");
    assert_eq!(out.output("matrix"), Some(r#"{"include":[]}"#), "{out}");
    assert_eq!(out.output("app"), Some(""), "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("::notice::skipped: changed-only: ")
                && l.contains("unchanged, not deployed: web1, web2")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_github_api_failure_fails_the_run_with_what_to_do_and_no_token() {
    let trap = AwsTrap::start();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })))
        .mount(&server)
        .await;
    let out = changed_run(&trap, &server, &fixture("monorepo"), PUSH);
    out.assert_code(1);
    let error = out
        .stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_default();
    assert!(
        error.contains("changed-only: cannot list the files changed by push 0f1e2d3...1a2b3c4: GitHub compare: HTTP 404")
            && error.contains("set changed-only: false"),
        "{out}"
    );
    assert_eq!(out.output("matrix"), Some(r#"{"include":[]}"#), "{out}");

    // Without a token, changed-only is refused before anything runs.
    let out = plan_run(
        &trap,
        &server,
        &fixture("monorepo"),
        PUSH,
        &[("INPUT_CHANGED-ONLY", "true")],
    );
    out.assert_code(1);
    assert!(
        out.stdout
            .contains("input `github-token` is required with changed-only: true"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatch_has_no_change_set_and_keeps_every_app() {
    let trap = AwsTrap::start();
    let server = recording_server().await;
    let out = changed_run(
        &trap,
        &server,
        &fixture("monorepo"),
        ("workflow_dispatch", "workflow-dispatch-latest.json"),
    );
    out.assert_success();
    assert_eq!(apps(&out), ["web1", "web2"], "{out}");
    assert!(
        out.stdout.contains(
            "changed-only: a workflow_dispatch has no change set; every selected app counts as changed"
        ),
        "{out}"
    );
    assert!(requests(&server).await.is_empty());
}
