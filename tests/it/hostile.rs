//! Hostile files and inputs, through the real binary against moto: every file of the seeded
//! corpus in `fixtures/hostile/` (wrong types, a key written twice, truncated, NUL bytes, not
//! UTF-8, deep nesting, and huge files made here) is refused with exit 1 and one `::error`
//! naming the file, before anything is written (moto's state is read back: no task definition
//! registered, the service on its first revision). A UTF-8 byte order mark is accepted in every
//! JSON and YAML file the action reads; leading and trailing whitespace of name inputs is
//! dropped; an `image` without a registry is refused with what to write.

use std::path::{Path, PathBuf};

use crate::support::{BinOutput, BinRun, MotoServer, aws_env, fixture, sdk_config};
use ecs_deploy::aws::Aws;

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3";

/// A workspace holding web1's package.json and the hostile corpus under `hostile/`.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp workspace");
    let ws = dir.path().canonicalize().expect("canonical workspace");
    std::fs::create_dir_all(ws.join("apps/web1")).expect("apps/web1");
    std::fs::copy(
        fixture("monorepo/apps/web1/package.json"),
        ws.join("apps/web1/package.json"),
    )
    .expect("package.json");
    std::fs::create_dir_all(ws.join("hostile")).expect("hostile");
    for entry in std::fs::read_dir(fixture("hostile")).expect("corpus") {
        let p = entry.expect("corpus entry").path();
        std::fs::copy(&p, ws.join("hostile").join(p.file_name().expect("name"))).expect("copy");
    }
    (dir, ws)
}

/// A merged `release/web1` PR deploying IMAGE to service web1 of cluster prod, with `inputs`
/// (`INPUT_*`, given as names) on top; `event` replaces the event payload file.
fn run(ws: &Path, moto: &str, inputs: &[(&str, &str)], event: Option<&Path>) -> BinOutput {
    let mut r = BinRun::new()
        .envs(aws_env(moto))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("GITHUB_WORKSPACE", ws)
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env(
            "GITHUB_EVENT_PATH",
            event
                .map(Path::to_path_buf)
                .unwrap_or_else(|| fixture("events/pr-merged-release-web1.json")),
        );
    let defaults = [
        ("cluster", "prod"),
        ("service", "web1"),
        ("container-name", "web1"),
        ("image", IMAGE),
    ];
    for (k, v) in defaults {
        if !inputs.iter().any(|(name, _)| *name == k) {
            r = r.env(format!("INPUT_{}", k.to_uppercase()), v);
        }
    }
    for (k, v) in inputs {
        r = r.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    r.run()
}

/// The `::error` lines of a run.
fn errors(out: &BinOutput) -> Vec<&str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect()
}

/// What moto holds: the task definitions registered and web1's task definition.
async fn moto_state(aws: &Aws) -> (Vec<String>, Option<String>) {
    let tds = aws
        .ecs
        .list_task_definitions()
        .send()
        .await
        .expect("list task definitions")
        .task_definition_arns()
        .to_vec();
    let svc = aws
        .ecs
        .describe_services()
        .cluster("prod")
        .services("web1")
        .send()
        .await
        .expect("describe")
        .services()
        .first()
        .and_then(|s| s.task_definition().map(str::to_string));
    (tds, svc)
}

/// The input that points at a corpus file, by the file's name.
fn input_for(name: &str) -> &'static str {
    match name.split('-').next() {
        Some("td") => "task-definition",
        Some("package") => "package-json",
        Some("config") => "config",
        Some("appspec") => "codedeploy-appspec",
        _ => panic!("corpus file {name} has no known prefix"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hostile_file_is_refused_naming_it_with_nothing_written() {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    let live = crate::support::moto::web1_service_with(&aws.ecs, "web1", None, Some(8000)).await;
    let (_dir, ws) = workspace();
    // Huge files, made here rather than kept in the repository.
    let containers: Vec<serde_json::Value> = (0..20_000)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "r/x:1", "memory": 8}))
        .collect();
    let huge = serde_json::json!({"family": "web1", "containerDefinitions": containers});
    std::fs::write(ws.join("hostile/td-huge.json"), huge.to_string()).expect("huge");
    // Under the file limit, over ECS's own 64 KiB.
    let mut over: Vec<serde_json::Value> = (0..2000)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "r/x:1", "memory": 8}))
        .collect();
    over[0] = serde_json::json!({"name": "web1", "image": "r/x:1", "memory": 8});
    let over = serde_json::json!({"family": "web1", "containerDefinitions": over});
    std::fs::write(ws.join("hostile/td-over-64k.json"), over.to_string()).expect("over");
    let padding = "x".repeat(2 * 1024 * 1024);
    std::fs::write(
        ws.join("hostile/package-huge.json"),
        format!("{{\"name\": \"web1\", \"version\": \"1.2.3\", \"pad\": \"{padding}\"}}"),
    )
    .expect("huge package.json");

    let mut names: Vec<String> = std::fs::read_dir(ws.join("hostile"))
        .expect("corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "README.md" && !n.starts_with("bom-") && n != "td-unknown-field.json")
        .collect();
    names.sort();
    assert!(names.len() >= 25, "the corpus: {names:?}");
    // What some refusals must say, besides the file's name.
    let says: &[(&str, &str)] = &[
        ("td-memory-string.json", "containerDefinitions[0].memory"),
        ("td-port-mappings-string.json", "portMappings"),
        ("td-essential-string.json", "true or false"),
        ("td-duplicate-key.json", "\"family\" twice"),
        ("package-duplicate-version.json", "\"version\" twice"),
        ("td-huge.json", "65536"),
        ("td-over-64k.json", "65536"),
        ("package-huge.json", "more than the 1048576"),
        ("td-not-utf8.json", "not UTF-8"),
    ];
    for name in &names {
        let rel = format!("hostile/{name}");
        let mut inputs = vec![(input_for(name), rel.as_str()), ("wait-for-minutes", "1")];
        if input_for(name) == "config" {
            // The step's inputs override the file's: the file alone names the service.
            inputs.extend([("service", ""), ("container-name", "")]);
        }
        let out = run(&ws, &moto.endpoint(), &inputs, None);
        assert_eq!(out.code, Some(1), "{name}: refused\n{out}");
        let errs = errors(&out);
        assert_eq!(errs.len(), 1, "{name}: one ::error line\n{out}");
        assert!(
            errs[0].contains(name.as_str()),
            "{name} named in {}",
            errs[0]
        );
        for (file, words) in says.iter().filter(|(f, _)| f == name) {
            assert!(errs[0].contains(words), "{file}: {words:?} in {}", errs[0]);
        }
        assert!(!out.stderr.contains("panicked"), "{name}: no panic\n{out}");
        let (tds, svc) = moto_state(&aws).await;
        assert_eq!(tds, vec![live.clone()], "{name}: nothing registered\n{out}");
        assert_eq!(
            svc.as_deref(),
            Some(live.as_str()),
            "{name}: service untouched"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrongly_typed_field_is_annotated_at_its_line_before_any_write() {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    let live = crate::support::moto::web1_service_with(&aws.ecs, "web1", None, Some(8000)).await;
    let (_dir, ws) = workspace();
    let text = std::fs::read_to_string(ws.join("hostile/td-memory-string.json")).expect("read");
    let line = text
        .lines()
        .position(|l| l.contains("\"memory\": \"256\""))
        .expect("the field")
        + 1;
    for dry_run in ["false", "true"] {
        let out = run(
            &ws,
            &moto.endpoint(),
            &[
                ("task-definition", "hostile/td-memory-string.json"),
                ("dry-run", dry_run),
            ],
            None,
        );
        out.assert_code(1);
        let errs = errors(&out);
        assert_eq!(errs.len(), 1, "{out}");
        assert!(
            errs[0].starts_with(&format!(
                "::error file=hostile/td-memory-string.json,line={line},"
            )),
            "{}",
            errs[0]
        );
        assert!(
            errs[0].contains("is a string (\"256\")") && errs[0].contains("without quotes"),
            "{}",
            errs[0]
        );
    }
    let (tds, svc) = moto_state(&aws).await;
    assert_eq!(tds, vec![live.clone()]);
    assert_eq!(svc.as_deref(), Some(live.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_byte_order_mark_is_accepted_in_every_file_the_action_reads() {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    crate::support::moto::web1_service_with(&aws.ecs, "web1", None, Some(8000)).await;
    let (_dir, ws) = workspace();
    let event = ws.join("hostile/event-bom.json");
    let payload =
        std::fs::read_to_string(fixture("events/pr-merged-release-web1.json")).expect("event");
    std::fs::write(&event, format!("\u{feff}{payload}")).expect("event with a BOM");
    let cases: [&[(&str, &str)]; 4] = [
        &[("task-definition", "hostile/bom-task-definition.json")],
        &[("package-json", "hostile/bom-package.json")],
        &[("config", "hostile/bom-config.yml")],
        &[("codedeploy-appspec", "hostile/bom-appspec.yml")],
    ];
    for inputs in cases {
        let mut all = inputs.to_vec();
        all.push(("dry-run", "true"));
        let out = run(&ws, &moto.endpoint(), &all, Some(&event));
        out.assert_success();
        assert!(errors(&out).is_empty(), "{inputs:?}\n{out}");
        assert_eq!(out.output("status"), Some("succeeded"), "{inputs:?}\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_the_sdk_model_does_not_know_is_kept_and_named_in_a_warning() {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    crate::support::moto::web1_service_with(&aws.ecs, "web1", None, Some(8000)).await;
    let (_dir, ws) = workspace();
    let out = run(
        &ws,
        &moto.endpoint(),
        &[
            ("task-definition", "hostile/td-unknown-field.json"),
            ("dry-run", "true"),
        ],
        None,
    );
    out.assert_success();
    let warning = out
        .stdout
        .lines()
        .find(|l| l.starts_with("::warning") && l.contains("someFutureField"))
        .unwrap_or_else(|| panic!("a warning naming the field:\n{out}"));
    assert!(warning.contains("kept"), "{warning}");
    // The dry run's diff shows the field is kept in what would be registered.
    assert!(out.stdout.contains("\"someFutureField\""), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn name_inputs_lose_surrounding_whitespace_and_an_image_must_name_its_registry() {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    crate::support::moto::web1_service_with(&aws.ecs, "web1", None, Some(8000)).await;
    let (_dir, ws) = workspace();
    let image = format!(" {IMAGE}\r\n");
    let out = run(
        &ws,
        &moto.endpoint(),
        &[
            ("cluster", "prod\r"),
            ("service", "\tweb1 "),
            ("container-name", "web1\r\n"),
            ("image", &image),
            ("dry-run", "true"),
        ],
        None,
    );
    out.assert_success();
    assert_eq!(out.output("image"), Some(IMAGE), "{out}");
    for bad in ["web1", "web1:v1.2.3", "acme/web1:v1"] {
        let out = run(&ws, &moto.endpoint(), &[("image", bad)], None);
        out.assert_code(1);
        let errs = errors(&out);
        assert_eq!(errs.len(), 1, "{out}");
        assert!(
            errs[0].contains("input `image`")
                && errs[0].contains("does not name a registry")
                && errs[0].contains("docker.io/library/"),
            "{}",
            errs[0]
        );
    }
    for good in [
        "localhost/web1:1",
        "localhost:5000/web1:1",
        "ghcr.io/acme/web1:v1",
    ] {
        let out = run(
            &ws,
            &moto.endpoint(),
            &[("image", good), ("dry-run", "true")],
            None,
        );
        out.assert_success();
    }
}
