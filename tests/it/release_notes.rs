//! Release notes and tidy revisions (issue 24).
//!
//! Release notes: wiremock plays the registry (the live image's manifest and config blob, for
//! its revision label) and GitHub's REST API (compare, deployments and their statuses) on
//! loopback, with the failures a real run meets (404, 500, rate limits). The library's `find`
//! is driven directly for the order of the fallbacks; the binary, deploying on moto, shows that
//! every failure only warns and the deploy still succeeds. The renderings are snapshots.
//!
//! `keep-task-definitions`: moto's ECS (ListTaskDefinitions, ListServices, DescribeServices,
//! DeregisterTaskDefinition are all CRUD it implements), through the binary's real rolling
//! deploy (`MOTO_ECS_SERVICE_RUNNING` lets the wait end) and its dry run.

use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinitionStatus};
use ecs_deploy::github::Api;
use ecs_deploy::release_notes::{Anchor, Commit, Direction, Live, Lookup, ReleaseNotes, find};
use ecs_deploy::report::{AppReport, Report, RunInfo, Status, discord, github, slack, summary};
use ecs_deploy::runner::http::{Http, Policy};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{BinOutput, MotoServer, sdk_config, web1_deploy};

const TOKEN: &str = "ghs_notesTOKEN0000";
/// The commit deployed (GITHUB_SHA).
const HEAD: &str = "cccccccccccccccccccccccccccccccccccccccc";
/// The commit the live image's label names.
const LABELLED: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// The commit of the last successful GitHub deployment.
const DEPLOYED: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const CONFIG_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3";

/// Short limits: a failing answer is retried once after 50 ms, a `Retry-After` over 2 s is not
/// waited for (as the production limits do at 1 s and 5 s).
fn fast() -> Policy {
    Policy {
        timeout: Duration::from_millis(2000),
        retry_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
        budget: Duration::from_secs(5),
    }
}

fn api(server: &MockServer) -> Api {
    let http = Http::new(fast(), vec![TOKEN.into()]);
    Api::new(&http, "GitHub API", &server.uri(), TOKEN).expect("client")
}

/// The live image, in the registry wiremock plays.
fn live_image(server: &MockServer) -> String {
    format!("127.0.0.1:{}/web1:v1.2.2", server.address().port())
}

/// The registry answers for `web1:v1.2.2`: an image manifest, and a config blob whose labels
/// are `labels`.
async fn registry_with_labels(server: &MockServer, labels: Value) {
    Mock::given(method("GET"))
        .and(path("/v2/web1/manifests/v1.2.2"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .set_body_json(json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG_DIGEST, "size": 100 },
                    "layers": []
                })),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/web1/blobs/{CONFIG_DIGEST}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "architecture": "amd64", "os": "linux", "config": { "Labels": labels }
        })))
        .mount(server)
        .await;
}

/// A compare answer GitHub gives for `base...HEAD` ahead by these commits (oldest first).
fn compare_answer(base: &str, commits: &[(&str, &str, &str)]) -> Value {
    json!({
        "status": "ahead",
        "ahead_by": commits.len(),
        "behind_by": 0,
        "total_commits": commits.len(),
        "html_url": format!("https://github.com/acme/shop/compare/{base}...{HEAD}"),
        "commits": commits.iter().map(|(sha, message, login)| json!({
            "sha": sha,
            "html_url": format!("https://github.com/acme/shop/commit/{sha}"),
            "commit": { "message": message, "author": { "name": format!("{login} (name)") } },
            "author": { "login": login },
        })).collect::<Vec<_>>(),
        "files": []
    })
}

async fn compare_answers(server: &MockServer, base: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!("/repos/acme/shop/compare/{base}...{HEAD}")))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// The paths the server was asked for, in order.
async fn asked(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r: &Request| r.url.path().to_string())
        .collect()
}

fn lookup(api: &Api) -> Lookup<'_> {
    Lookup {
        api,
        repo: "acme/shop",
        environment: "production",
        head: HEAD,
    }
}

#[tokio::test]
async fn the_live_images_revision_label_is_where_the_compare_starts() {
    let server = MockServer::start().await;
    registry_with_labels(
        &server,
        json!({ "org.opencontainers.image.revision": LABELLED }),
    )
    .await;
    compare_answers(
        &server,
        LABELLED,
        ResponseTemplate::new(200).set_body_json(compare_answer(
            LABELLED,
            &[
                ("d111111111", "Fix the login (#12)\n\nlong body", "ann"),
                (
                    "d222222222",
                    "Merge pull request #13 from acme/faster",
                    "bob",
                ),
            ],
        )),
    )
    .await;
    let api = api(&server);
    let image = live_image(&server);
    let notes = find(
        &lookup(&api),
        Live {
            image: Some(&image),
            access: None,
        },
    )
    .await
    .expect("notes");
    assert_eq!(
        notes.anchor,
        Anchor::Label {
            image: image.clone()
        }
    );
    assert_eq!(notes.direction, Direction::Forward);
    assert_eq!(notes.base, LABELLED);
    assert_eq!(notes.total, 2);
    // Newest first, the pull request from either subject form.
    let subjects: Vec<(&str, Option<u64>, &str)> = notes
        .commits
        .iter()
        .map(|c| (c.subject.as_str(), c.pr, c.author.as_str()))
        .collect();
    assert_eq!(
        subjects,
        [
            ("Merge pull request #13 from acme/faster", Some(13), "bob"),
            ("Fix the login (#12)", Some(12), "ann"),
        ]
    );
    assert_eq!(
        notes.compare_url.as_deref(),
        Some(format!("https://github.com/acme/shop/compare/{LABELLED}...{HEAD}").as_str())
    );
    assert_eq!(
        asked(&server).await,
        [
            "/v2/web1/manifests/v1.2.2".to_string(),
            format!("/v2/web1/blobs/{CONFIG_DIGEST}"),
            format!("/repos/acme/shop/compare/{LABELLED}...{HEAD}"),
        ]
    );
    let compare = &server.received_requests().await.unwrap_or_default()[2];
    assert_eq!(compare.url.query(), Some("per_page=100"));
    assert_eq!(
        compare
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn without_a_label_the_tag_then_the_last_successful_deployment_is_the_base() {
    let server = MockServer::start().await;
    // The registry has no such image (404): no label.
    Mock::given(method("GET"))
        .and(path("/v2/web1/manifests/v1.2.2"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    // The tag is no git tag.
    compare_answers(
        &server,
        "v1.2.2",
        ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })),
    )
    .await;
    // This run's own deployment (in progress) first, then an older success.
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "id": 3, "sha": HEAD, "environment": "production" },
            { "id": 2, "sha": DEPLOYED, "environment": "production" },
        ])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/deployments/3/statuses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{ "state": "in_progress" }])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/shop/deployments/2/statuses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{ "state": "success" }])))
        .mount(&server)
        .await;
    compare_answers(
        &server,
        DEPLOYED,
        ResponseTemplate::new(200).set_body_json(compare_answer(
            DEPLOYED,
            &[("d333333333", "Bump the cache", "cid")],
        )),
    )
    .await;
    let api = api(&server);
    let image = live_image(&server);
    let notes = find(
        &lookup(&api),
        Live {
            image: Some(&image),
            access: None,
        },
    )
    .await
    .expect("notes");
    assert_eq!(notes.anchor, Anchor::Deployment { id: 2 });
    assert_eq!(notes.base, DEPLOYED);
    assert_eq!(notes.commits.len(), 1);
    assert_eq!(notes.commits[0].author, "cid");
    let paths = asked(&server).await;
    assert_eq!(
        paths,
        [
            "/v2/web1/manifests/v1.2.2".to_string(),
            format!("/repos/acme/shop/compare/v1.2.2...{HEAD}"),
            "/repos/acme/shop/deployments".into(),
            "/repos/acme/shop/deployments/3/statuses".into(),
            "/repos/acme/shop/deployments/2/statuses".into(),
            format!("/repos/acme/shop/compare/{DEPLOYED}...{HEAD}"),
        ]
    );
    let list = &server.received_requests().await.unwrap_or_default()[2];
    assert_eq!(list.url.query(), Some("environment=production&per_page=10"));
}

#[tokio::test]
async fn a_registry_that_fails_costs_only_the_label_and_the_tag_is_tried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/web1/manifests/v1.2.2"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    compare_answers(
        &server,
        "v1.2.2",
        ResponseTemplate::new(200).set_body_json(compare_answer(
            "v1.2.2",
            &[("d444444444", "Tagged work", "dee")],
        )),
    )
    .await;
    let api = api(&server);
    let image = live_image(&server);
    let notes = find(
        &lookup(&api),
        Live {
            image: Some(&image),
            access: None,
        },
    )
    .await
    .expect("notes");
    assert_eq!(
        notes.anchor,
        Anchor::Tag {
            tag: "v1.2.2".into()
        }
    );
    assert_eq!(notes.commits[0].subject, "Tagged work");
}

#[tokio::test]
async fn a_github_failure_or_rate_limit_gives_no_list_and_says_why() {
    let cases = [
        (
            ResponseTemplate::new(500).set_body_json(json!({ "message": "boom" })),
            "GitHub compare: HTTP 500",
        ),
        (
            ResponseTemplate::new(429).insert_header("retry-after", "60"),
            "rate limited (HTTP 429, Retry-After 60s",
        ),
        (
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .set_body_json(
                    json!({ "message": "API rate limit exceeded for installation ID 1." }),
                ),
            "HTTP 403: {\"message\":\"API rate limit exceeded",
        ),
    ];
    for (answer, says) in cases {
        let server = MockServer::start().await;
        registry_with_labels(
            &server,
            json!({ "org.opencontainers.image.revision": LABELLED }),
        )
        .await;
        compare_answers(&server, LABELLED, answer).await;
        let api = api(&server);
        let image = live_image(&server);
        let why = find(
            &lookup(&api),
            Live {
                image: Some(&image),
                access: None,
            },
        )
        .await
        .expect_err("no list");
        assert!(why.contains(says), "{says}: {why}");
        assert!(!why.contains(TOKEN), "{why}");
        // No other base is tried once GitHub itself failed: the next answer would fail too.
        assert!(
            !asked(&server)
                .await
                .iter()
                .any(|p| p.contains("deployments") || p.contains("v1.2.2...")),
            "{says}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The renderings with the notes (snapshots).

fn notes(total: usize, shown: usize) -> ReleaseNotes {
    let sha = |i: usize| format!("abc{i:04}{:033}", 0);
    let commits = (0..shown)
        .map(|i| Commit {
            sha: sha(i),
            subject: if i % 3 == 0 {
                format!("Fix <checkout> & cart *step* {i} (#{})", 100 + i)
            } else {
                format!("Change {i}")
            },
            author: "octocat".into(),
            pr: (i % 3 == 0).then_some(100 + i as u64),
            url: Some(format!("https://github.com/acme/shop/commit/{}", sha(i))),
        })
        .collect();
    ReleaseNotes {
        base: LABELLED.into(),
        head: HEAD.into(),
        anchor: Anchor::Label {
            image: "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web1:v1.2.2".into(),
        },
        direction: Direction::Forward,
        commits,
        total,
        compare_url: Some(format!(
            "https://github.com/acme/shop/compare/{LABELLED}...{HEAD}"
        )),
    }
}

fn report(status: Status, changes: ReleaseNotes) -> Report {
    Report {
        run: RunInfo {
            repository: Some("acme/shop".into()),
            sha: Some(HEAD.into()),
            git_ref: Some("refs/heads/main".into()),
            actor: Some("octocat".into()),
            workflow: Some("deploy".into()),
            event_name: Some("pull_request".into()),
            run_url: Some("https://github.com/acme/shop/actions/runs/4242".into()),
            commit_url: Some(format!("https://github.com/acme/shop/commit/{HEAD}")),
        },
        trigger: Some("PR #2 merged: release/web1 → main".into()),
        apps: vec![AppReport {
            app: "web1".into(),
            version: Some("1.2.3".into()),
            image: Some("123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/web1:v1.2.3".into()),
            task_definition_arn: Some(
                "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/web1:42".into(),
            ),
            deployment_kind: Some(ecs_deploy::outcome::DeployPath::Rolling),
            status: Some(status),
            changes: Some(changes),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn slack_shows_ten_commits_and_how_many_more_with_the_compare_link() {
    let message = slack::outcome_message(&report(Status::Succeeded, notes(14, 12)));
    insta::assert_json_snapshot!("slack_with_changes", message);
    let section = message["attachments"][0]["blocks"][2]["text"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        section.starts_with("*web1: What changed: 14 commits since aaaaaaa*"),
        "{section}"
    );
    assert_eq!(section.matches("\n• ").count(), 10, "{section}");
    assert!(
        section.contains("and 4 more · <https://github.com/acme/shop/compare/"),
        "{section}"
    );
    // Text from a commit subject is escaped: no link or mention can be smuggled in.
    assert!(
        section.contains("Fix &lt;checkout&gt; &amp; cart"),
        "{section}"
    );
}

#[test]
fn a_rollback_says_what_it_took_back_out_everywhere() {
    let r = report(Status::RolledBack, notes(2, 2));
    let slack = slack::outcome_message(&r).to_string();
    assert!(
        slack.contains("Taken back out by the rollback: 2 commits"),
        "{slack}"
    );
    let discord = discord::outcome_message(&r).to_string();
    assert!(
        discord.contains("Taken back out by the rollback: 2 commits"),
        "{discord}"
    );
    let md = summary::render(&r);
    assert!(
        md.contains("web1: Taken back out by the rollback: 2 commits"),
        "{md}"
    );
    let status = github::final_status(&r);
    assert_eq!(
        status["description"],
        "web1 v1.2.3 deploy failed and was rolled back: 2 commits taken back out (#100, abc0001)"
    );
}

#[test]
fn discord_shows_the_commits_in_one_field_within_its_limits() {
    let message = discord::outcome_message(&report(Status::Succeeded, notes(14, 12)));
    insta::assert_json_snapshot!("discord_with_changes", message);
    let fields = message["embeds"][0]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let field = fields
        .iter()
        .find(|f| f["name"] == "web1: What changed: 14 commits since aaaaaaa")
        .expect("the changes field");
    let value = field["value"].as_str().unwrap_or_default();
    assert!(value.chars().count() <= 1024, "{value}");
    // Ten linked commits do not fit in a field's 1024 characters: whole lines are shown, the
    // rest counted, and the compare link stays.
    let shown = value.matches("• ").count();
    assert!((5..10).contains(&shown), "{value}");
    assert!(
        value.ends_with(&format!(
            "and {} more · [compare on GitHub](https://github.com/acme/shop/compare/{LABELLED}...{HEAD})",
            14 - shown
        )),
        "{value}"
    );
    // Discord markdown in a subject shows as typed.
    assert!(value.contains("cart \\*step\\*"), "{value}");
}

#[test]
fn the_summary_lists_every_commit_read_in_a_details_block() {
    let md = summary::render(&report(Status::Succeeded, notes(14, 12)));
    insta::assert_snapshot!("summary_with_changes", md);
    assert!(
        md.contains("<details><summary>web1: What changed: 14 commits since aaaaaaa</summary>")
    );
    assert_eq!(md.matches("\n- [`").count(), 12, "{md}");
    assert!(md.contains("and 2 more · [compare on GitHub]"), "{md}");
    assert!(
        md.contains("base: the revision label of the live image"),
        "{md}"
    );
}

#[test]
fn the_deployment_description_names_the_commits_within_140_characters() {
    let status = github::final_status(&report(Status::Succeeded, notes(14, 12)));
    assert_eq!(
        status["description"],
        "web1 v1.2.3 deployed: 14 commits (#100, abc0001, abc0002, #103, abc0004, abc0005, #106, abc0007, abc0008, #109, abc0010, abc0011)"
    );
    let status = github::final_status(&report(Status::Succeeded, notes(60, 60)));
    let description = status["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("web1 v1.2.3 deployed: 60 commits (#100, abc0001"),
        "{description}"
    );
    assert_eq!(description.chars().count(), 140, "{description}");
    assert!(description.ends_with('…'), "{description}");
}

// ---------------------------------------------------------------------------------------------
// Through the binary, deploying on moto.

fn ecs(moto: &MotoServer) -> Client {
    Client::new(&sdk_config(&moto.endpoint()))
}

/// Registers a revision of `family` with container web1 on `image`; its ARN.
async fn register(ecs: &Client, family: &str, image: &str) -> String {
    ecs.register_task_definition()
        .family(family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("web1")
                .image(image)
                .memory(256)
                .build(),
        )
        .send()
        .await
        .expect("task definition")
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("arn")
        .to_string()
}

/// Cluster prod and service `name` running `task_definition`.
async fn service(ecs: &Client, name: &str, task_definition: &str) {
    ecs.create_service()
        .cluster("prod")
        .service_name(name)
        .task_definition(task_definition)
        .desired_count(1)
        .send()
        .await
        .expect("service");
}

async fn cluster(ecs: &Client) {
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("cluster");
}

/// The ACTIVE revisions of `family` exactly, as `family:revision`, oldest first.
async fn active(ecs: &Client, family: &str) -> Vec<String> {
    let mut out: Vec<String> = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .send()
        .await
        .expect("list")
        .task_definition_arns()
        .iter()
        .filter_map(|a| a.rsplit('/').next())
        .filter(|s| s.rsplit_once(':').is_some_and(|(f, _)| f == family))
        .map(str::to_string)
        .collect();
    out.sort_by_key(|s| s.rsplit_once(':').and_then(|(_, r)| r.parse::<u32>().ok()));
    out
}

/// A rolling deploy of NEW_IMAGE to service web1 on moto, with `inputs` and `env`.
fn deploy(moto: &MotoServer, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> BinOutput {
    let mut run = web1_deploy(&moto.endpoint(), NEW_IMAGE)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_SHA", HEAD)
        .envs(env.iter().copied());
    for (k, v) in inputs {
        run = run.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    run.run()
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_task_definitions_leaves_the_newest_two_and_every_revision_in_use() {
    // MOTO_ECS_SERVICE_RUNNING: moto reports the service's tasks as running, so the wait ends.
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "1")]);
    let ecs = ecs(&moto);
    cluster(&ecs).await;
    let mut arns = Vec::new();
    for i in 1..=5 {
        arns.push(register(&ecs, "web1", &format!("127.0.0.1:9/web1:v1.0.{i}")).await);
    }
    // ListTaskDefinitions' familyPrefix matches this family too: it must stay untouched.
    register(&ecs, "web10", "127.0.0.1:9/web10:v1").await;
    service(&ecs, "web1", &arns[4]).await;
    // Another service of the cluster still runs revision 1.
    service(&ecs, "legacy", &arns[0]).await;

    // The dry run lists what would go (the revision it would register counts as the newest).
    let dry = deploy(
        &moto,
        &[("keep-task-definitions", "2"), ("dry-run", "true")],
        &[],
    );
    dry.assert_success();
    assert!(
        dry.stdout
            .contains("web1: keep-task-definitions: 2: after a successful deploy, would deregister web1:2, web1:3, web1:4"),
        "{dry}"
    );
    assert_eq!(
        active(&ecs, "web1").await.len(),
        5,
        "the dry run deregistered something"
    );

    let out = deploy(&moto, &[("keep-task-definitions", "2")], &[]);
    out.assert_success();
    assert_eq!(out.output("status"), Some("succeeded"));
    assert_eq!(
        active(&ecs, "web1").await,
        ["web1:1", "web1:5", "web1:6"],
        "{out}"
    );
    assert_eq!(active(&ecs, "web10").await, ["web10:1"]);
    assert!(
        out.summary
            .contains("keep-task-definitions: 2: deregistered web1:2, web1:3, web1:4"),
        "{out}"
    );
    // No github-token: the notes are missing, and the warning says why.
    assert!(
        out.stdout.lines().any(|l| l.starts_with("::warning")
            && l.contains("release notes left out: no github-token given")),
        "{out}"
    );
    assert_eq!(out.output("changes"), Some(""));
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_task_definitions_must_be_a_whole_number_of_one_or_more() {
    // Refused before any AWS call: the moto server is never asked.
    let moto = MotoServer::start();
    for bad in ["0", "-1", "two", "1.5"] {
        let out = deploy(&moto, &[("keep-task-definitions", bad)], &[]);
        out.assert_code(1);
        let log = format!("{}{}", out.stdout, out.stderr);
        assert!(
            log.contains(&format!(
                "input `keep-task-definitions` has the value {bad:?}: must be a whole number of revisions, 1 or more"
            )),
            "{bad}: {out}"
        );
    }
    assert!(!moto.log().contains("POST /"), "{}", moto.log());
}

/// A deploy whose live image is in the wiremock registry (label LABELLED), with GitHub at the
/// same server answering the compare with `compare`.
async fn deploy_with_github(compare: ResponseTemplate) -> (BinOutput, MockServer) {
    let server = MockServer::start().await;
    registry_with_labels(
        &server,
        json!({ "org.opencontainers.image.revision": LABELLED }),
    )
    .await;
    compare_answers(&server, LABELLED, compare).await;
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "1")]);
    let ecs = ecs(&moto);
    cluster(&ecs).await;
    let live = register(&ecs, "web1", &live_image(&server)).await;
    service(&ecs, "web1", &live).await;
    let out = deploy(
        &moto,
        &[("github-token", TOKEN)],
        &[("GITHUB_API_URL", server.uri().as_str())],
    );
    (out, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_posts_its_commits_to_the_outputs_and_the_summary() {
    let (out, _server) = deploy_with_github(ResponseTemplate::new(200).set_body_json(
        compare_answer(LABELLED, &[("d111111111", "Fix the login (#12)", "ann")]),
    ))
    .await;
    out.assert_success();
    let changes: Value = serde_json::from_str(out.output("changes").unwrap_or_default())
        .unwrap_or_else(|e| panic!("changes is JSON ({e}): {out}"));
    assert_eq!(
        changes,
        json!([{
            "sha": "d111111111",
            "subject": "Fix the login (#12)",
            "author": "ann",
            "pr": 12,
            "url": "https://github.com/acme/shop/commit/d111111111",
        }])
    );
    assert!(
        out.summary
            .contains("<details><summary>web1: What changed: 1 commit since aaaaaaa</summary>"),
        "{out}"
    );
    // The token is named once, to the runner, to be masked; nowhere else.
    assert!(
        !out.stdout
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .any(|l| l.contains(TOKEN))
            && !out.summary.contains(TOKEN)
            && !out.outputs_raw.contains(TOKEN),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_github_failure_only_warns_and_the_deploy_still_succeeds() {
    for (answer, says) in [
        (ResponseTemplate::new(500), "GitHub compare: HTTP 500"),
        (
            ResponseTemplate::new(429).insert_header("retry-after", "60"),
            "rate limited (HTTP 429",
        ),
        (
            ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })),
            "no commit to compare with",
        ),
    ] {
        let (out, _server) = deploy_with_github(answer).await;
        out.assert_success();
        assert_eq!(out.output("status"), Some("succeeded"), "{out}");
        assert_eq!(out.output("changes"), Some(""), "{out}");
        let warning = out
            .stdout
            .lines()
            .find(|l| l.starts_with("::warning") && l.contains("release notes left out"))
            .unwrap_or_else(|| panic!("{says}: no warning: {out}"));
        assert!(
            warning.contains("the deploy is not affected") && warning.contains(says),
            "{says}: {warning}"
        );
    }
}
