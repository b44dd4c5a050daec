//! Moving over from aws-actions/amazon-ecs-render-task-definition and
//! amazon-ecs-deploy-task-definition: the "after" steps are read from the book's migration page
//! (docs/src/migration.md) and run through the binary in a dry run against moto, and the rendered task definition must carry what
//! the "before" steps would have put in it. Also: the render action's container inputs given
//! directly reach the rendered diff, and the refused names stop the run before any AWS call.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{BinOutput, BinRun, MotoServer, aws_env, fixture, sdk_config};

/// The task definition file of the migration examples: what `task-definition.json` holds.
const TASK_DEFINITION: &str = r#"{
  "family": "web1",
  "networkMode": "bridge",
  "containerDefinitions": [
    {"name": "web1", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.2",
     "memory": 256, "portMappings": [{"containerPort": 8000}]}
  ]
}"#;

/// The `with:` inputs of each step of the first ```yaml block after `marker` in the section of
/// the book's migration page (docs/src/migration.md) headed `heading`.
fn readme_steps(heading: &str, marker: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let readme = crate::readme::book_page("migration.md");
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("docs/src/migration.md has no section {heading:?}"))
        + 1;
    let section = &readme[start..];
    let end = section[3..].find("\n# ").map_or(section.len(), |i| i + 3);
    let end = section[3..].find("\n## ").map_or(end, |i| (i + 3).min(end));
    let section = &section[..end];
    let at = section
        .find(&format!("\n{marker}\n"))
        .unwrap_or_else(|| panic!("{heading}: no {marker:?} block"));
    let block = &section[at..];
    let open = block.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let close = block[open..].find("```").expect("closed block") + open;
    let steps: Vec<serde_yaml::Value> =
        serde_yaml::from_str(&block[open..close]).expect("the block is a YAML list of steps");
    steps
        .iter()
        .map(|step| {
            let uses = step["uses"].as_str().expect("uses").to_string();
            let with = step["with"]
                .as_mapping()
                .expect("with")
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_yaml::Value::String(s) => s.clone(),
                        serde_yaml::Value::Bool(b) => b.to_string(),
                        serde_yaml::Value::Number(n) => n.to_string(),
                        other => panic!("unexpected input value {other:?}"),
                    };
                    (k.as_str().expect("input name").to_string(), v)
                })
                .collect();
            (uses, with)
        })
        .collect()
}

/// A push to main in a fresh workspace holding `task-definition.json`, against moto, with
/// `inputs` as `INPUT_*` and a dry run.
fn dry_run(moto: &MotoServer, inputs: &BTreeMap<String, String>) -> BinOutput {
    let dir = tempfile::tempdir().expect("workspace");
    write_task_definition(dir.path());
    let mut r = push_run(dir.path(), &moto.endpoint()).env("INPUT_DRY-RUN", "true");
    for (k, v) in inputs {
        r = r.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    r.run()
}

/// The binary as the runner starts it for a push to main in `workspace`, AWS at `endpoint`.
fn push_run(workspace: &Path, endpoint: &str) -> BinRun {
    BinRun::new()
        .cwd(crate::support::repo_root())
        .envs(aws_env(endpoint))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", fixture("events/push-branch-main.json"))
}

/// Writes the examples' `task-definition.json` into `dir`.
fn write_task_definition(dir: &Path) {
    std::fs::write(dir.join("task-definition.json"), TASK_DEFINITION).expect("task definition");
}

/// moto: cluster prod with service web1 (its live task definition runs v1.2.2).
fn moto_with_service() -> MotoServer {
    let moto = MotoServer::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&moto.endpoint()));
    rt.block_on(crate::support::moto::web1_service(&ecs));
    moto
}

/// True when the dry run's diff adds a line holding `needle`.
fn adds(out: &BinOutput, needle: &str) -> bool {
    out.stdout
        .lines()
        .any(|l| l.starts_with('+') && l.contains(needle))
}

/// The added lines of the dry run's diff, without the `+` (and without the `+++` header).
fn added(out: &BinOutput) -> Vec<&str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| l[1..].trim().trim_end_matches(','))
        .collect()
}

/// True when the diff adds `run` as consecutive lines, in order.
fn added_run(out: &BinOutput, run: &[String]) -> bool {
    added(out)
        .windows(run.len())
        .any(|w| w.iter().zip(run).all(|(l, r)| l == r))
}

/// Every `KEY=VALUE` line of `pairs` is added to the list `list` as `{name, <value_key>}`.
#[track_caller]
fn assert_named(out: &BinOutput, list: &str, pairs: &str, value_key: &str) {
    for (k, v) in lines(pairs) {
        let entry = [
            format!("\"name\": \"{k}\""),
            format!("\"{value_key}\": \"{v}\""),
        ];
        assert!(added_run(out, &entry), "{list} entry {k}={v}:\n{out}");
    }
}

/// Every `KEY=VALUE` line of `pairs` is added to the map `map` as `"KEY": "VALUE"`.
#[track_caller]
fn assert_keyed(out: &BinOutput, map: &str, pairs: &str) {
    for (k, v) in lines(pairs) {
        assert!(
            adds(out, &format!("\"{k}\": \"{v}\"")),
            "{map} {k}={v}:\n{out}"
        );
    }
}

/// The number of task definition revisions moto holds (a dry run registers none).
fn revisions(moto: &MotoServer) -> usize {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&moto.endpoint()));
    rt.block_on(ecs.list_task_definitions().send())
        .expect("list")
        .task_definition_arns()
        .len()
}

/// `KEY=VALUE` lines as pairs (the render action's format).
fn lines(v: &str) -> Vec<(String, String)> {
    v.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn the_render_and_deploy_steps_become_one_step_that_renders_the_same_container() {
    let before = readme_steps("aws-actions/amazon-ecs-render-task-definition", "Before:");
    let after = readme_steps("aws-actions/amazon-ecs-render-task-definition", "After:");
    assert_eq!(after.len(), 1, "one step replaces both");
    let (uses, with) = &after[0];
    assert!(crate::action_contract::is_this_action(uses), "{uses}");
    let render = &before
        .iter()
        .find(|(u, _)| u.starts_with("aws-actions/amazon-ecs-render-task-definition@"))
        .expect("a render step")
        .1;
    let deploy = &before
        .iter()
        .find(|(u, _)| u.starts_with("aws-actions/amazon-ecs-deploy-task-definition@"))
        .expect("a deploy step")
        .1;
    // What the before steps meant, carried over under the same names.
    for (k, v) in render.iter().chain(deploy) {
        if k == "task-definition" && v.contains("${{") {
            continue; // the render output: the after step reads the file itself
        }
        assert_eq!(with.get(k), Some(v), "input {k} of the before steps");
    }
    let moto = moto_with_service();
    let out = dry_run(&moto, with);
    out.assert_success();
    assert!(
        adds(&out, &format!("\"image\": \"{}\"", render["image"])),
        "{out}"
    );
    assert_named(
        &out,
        "environment",
        &render["environment-variables"],
        "value",
    );
    assert_named(&out, "secrets", &render["secrets"], "valueFrom");
    assert_keyed(&out, "dockerLabels", &render["docker-labels"]);
    assert_keyed(&out, "options", &render["log-configuration-options"]);
    let words: Vec<String> = render["command"]
        .split_whitespace()
        .map(|w| format!("\"{w}\""))
        .collect();
    assert!(
        added_run(&out, &words),
        "command {:?} in order:\n{out}",
        render["command"]
    );
    let driver = &render["log-configuration-log-driver"];
    assert!(adds(&out, &format!("\"logDriver\": \"{driver}\"")), "{out}");
    for arn in render["env-files"].lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            added_run(
                &out,
                &[
                    format!("\"value\": \"{}\"", arn.trim()),
                    "\"type\": \"s3\"".into()
                ]
            ) || added_run(
                &out,
                &[
                    "\"type\": \"s3\"".into(),
                    format!("\"value\": \"{}\"", arn.trim())
                ]
            ),
            "environmentFiles {arn}:\n{out}"
        );
    }
    for (input, key) in [
        ("task-role-arn", "taskRoleArn"),
        ("execution-role-arn", "executionRoleArn"),
    ] {
        assert!(
            adds(&out, &format!("\"{key}\": \"{}\"", render[input])),
            "{input}:\n{out}"
        );
    }
    assert!(out.stdout.contains("deployment path: rolling"), "{out}");
    assert_eq!(revisions(&moto), 1, "a dry run registers nothing");
}

#[test]
fn the_deploy_step_keeps_its_inputs_and_deploys_the_file_as_it_is() {
    let before = readme_steps("aws-actions/amazon-ecs-deploy-task-definition", "Before:");
    let after = readme_steps("aws-actions/amazon-ecs-deploy-task-definition", "After:");
    assert_eq!((before.len(), after.len()), (1, 1));
    let (uses, with) = &after[0];
    assert!(crate::action_contract::is_this_action(uses), "{uses}");
    for (k, v) in &before[0].1 {
        assert_eq!(with.get(k), Some(v), "input {k} of the before step");
    }
    let moto = moto_with_service();
    let out = dry_run(&moto, with);
    out.assert_success();
    // The file's own content is what is registered: only its image differs from the live one.
    assert!(
        adds(&out, &format!("\"image\": \"{}\"", with["image"])),
        "{out}"
    );
    assert!(out.stdout.contains("deployment path: rolling"), "{out}");
    assert!(
        out.stdout
            .contains(&format!("up to {} min", with["wait-for-minutes"])),
        "wait-for-minutes reaches the plan:\n{out}"
    );
    assert!(
        out.stdout.contains(&format!(
            "service:     desiredCount {}, enableECSManagedTags {}, propagateTags {}",
            with["desired-count"], with["enable-ecs-managed-tags"], with["propagate-tags"]
        )),
        "the service inputs reach the UpdateService of the plan:\n{out}"
    );
    assert_eq!(revisions(&moto), 1, "a dry run registers nothing");
}

#[test]
fn a_copied_input_this_action_does_not_honour_stops_the_run_before_any_aws_call() {
    // No moto: the endpoint answers nothing, so any AWS call would fail differently.
    let moto_less = "http://127.0.0.1:9";
    for (name, value, instead) in [
        // A setting of the task `run-task: true` runs, without it: refused, not ignored.
        ("run-task-subnets", "subnet-0123", "run-task: true"),
        ("wait-for-task-stopped", "true", "run-task: true"),
        (
            "service-managed-ebs-volume-name",
            "data",
            "volumeConfigurations",
        ),
    ] {
        let dir = tempfile::tempdir().expect("workspace");
        write_task_definition(dir.path());
        let out = push_run(dir.path(), moto_less)
            .env("INPUT_DEPLOY-ON", "push")
            .env("INPUT_APP", "web1")
            .env(
                "INPUT_IMAGE",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3",
            )
            .env("INPUT_SERVICE", "web1")
            .env(format!("INPUT_{}", name.to_uppercase()), value)
            .run();
        assert_eq!(out.code, Some(1), "{name}:\n{out}");
        let error = crate::preflight::the_error(&out);
        assert!(
            error.contains(name) && error.contains(instead),
            "{name}: {error}"
        );
    }
}

#[test]
fn a_registered_task_definition_named_by_family_is_the_one_rendered() {
    let moto = moto_with_service();
    // A second revision of web1 in moto, with a marker the live one (revision 1) does not have.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&moto.endpoint()));
    rt.block_on(
        ecs.register_task_definition()
            .family("web1")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("web1")
                    .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.2")
                    .memory(512)
                    .docker_labels("from", "revision-2")
                    .build(),
            )
            .send(),
    )
    .expect("register web1:2");
    drop(rt);
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3";
    let inputs = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
        [
            ("deploy-on", "push"),
            ("app", "web1"),
            ("image", image),
            ("cluster", "prod"),
            ("service", "web1"),
            ("container-name", "web1"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let dir = tempfile::tempdir().expect("workspace");
    let run = |with: &BTreeMap<String, String>| {
        let mut r = push_run(dir.path(), &moto.endpoint()).env("INPUT_DRY-RUN", "true");
        for (k, v) in with {
            r = r.env(format!("INPUT_{}", k.to_uppercase()), v);
        }
        r.run()
    };
    // The family's latest revision (2), as amazon-ecs-render-task-definition reads it.
    let out = run(&inputs(&[("task-definition-family", "web1")]));
    out.assert_success();
    assert!(
        out.stdout.contains("task def:    web1 (registered)"),
        "{out}"
    );
    assert!(adds(&out, "\"memory\": 512"), "{out}");
    assert!(adds(&out, &format!("\"image\": \"{image}\"")), "{out}");
    // An explicit revision (1) and an ARN.
    let out = run(&inputs(&[
        ("task-definition-family", "web1"),
        ("task-definition-revision", "1"),
    ]));
    out.assert_success();
    assert!(
        out.stdout.contains("task def:    web1:1 (registered)"),
        "{out}"
    );
    assert!(!adds(&out, "revision-2"), "{out}");
    let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:2";
    let out = run(&inputs(&[("task-definition-arn", arn)]));
    out.assert_success();
    assert!(adds(&out, "\"memory\": 512"), "{out}");
    // A family moto does not have: refused in the preflight, naming it, before any write (the
    // dry run says the real run would stop there).
    for dry_run in ["true", "false"] {
        let out = run(&inputs(&[
            ("task-definition-family", "nope"),
            ("dry-run", dry_run),
        ]));
        assert_eq!(out.code, Some(1), "{out}");
        assert!(
            crate::preflight::the_error(&out).contains("task definition nope")
                && out.stdout.contains("name a registered revision"),
            "{out}"
        );
    }
    assert_eq!(revisions(&moto), 2, "a dry run registers nothing");
}

#[test]
fn run_task_without_a_service_is_refused_rather_than_skipped() {
    let dir = tempfile::tempdir().expect("workspace");
    let out = push_run(dir.path(), "http://127.0.0.1:9")
        .env("INPUT_APP", "web1")
        .env(
            "INPUT_IMAGE",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3",
        )
        .env("INPUT_RUN-TASK", "true")
        .run();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        crate::preflight::the_error(&out).contains("no `service` is given"),
        "{out}"
    );
}
