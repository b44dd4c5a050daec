//! What aws-actions/amazon-ecs-deploy-task-definition's own tests (`index.test.js`, v2.6.3)
//! assert, asserted of this action: the same inputs and the same task definition files, the
//! payload ECS gets read back from moto. The register-only cases run without `service` (the
//! official action then registers the file and outputs its ARN); the exact payloads its tests
//! expect are compared in `src/task_definition.rs`. Each file here adds `"memory": 256` to the
//! container: moto, as ECS, refuses an EC2 container without memory, where the official tests
//! mock RegisterTaskDefinition and send none.

use std::path::Path;

use crate::support::{BinOutput, BinRun, MotoServer, aws_env, fixture, sdk_config};

/// The image every case deploys (built elsewhere: nothing is built or pushed).
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3";

/// The binary for a push to main in `workspace` holding `task-definition.json` = `file`,
/// with `inputs`, against moto; no service.
fn register_only(moto: &MotoServer, file: &str, inputs: &[(&str, &str)]) -> BinOutput {
    let dir = tempfile::tempdir().expect("workspace");
    std::fs::write(dir.path().join("task-definition.json"), file).expect("task definition");
    let mut run = bin(dir.path(), &moto.endpoint())
        .env("INPUT_APP", "web1")
        .env("INPUT_IMAGE", IMAGE)
        .env("INPUT_TASK-DEFINITION", "task-definition.json");
    for (k, v) in inputs {
        run = run.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    run.run()
}

fn bin(workspace: &Path, endpoint: &str) -> BinRun {
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

/// The registered revision as moto describes it (with its tags), as JSON.
fn described(moto: &MotoServer, arn: &str) -> (serde_json::Value, Vec<(String, String)>) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&moto.endpoint()));
    rt.block_on(async {
        let td = ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .expect("DescribeTaskDefinition")
            .task_definition
            .expect("a task definition");
        let tags = ecs
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource")
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        let c = &td.container_definitions()[0];
        let env: Vec<serde_json::Value> = c
            .environment()
            .iter()
            .map(|e| serde_json::json!({"name": e.name(), "value": e.value()}))
            .collect();
        let proxy: Vec<serde_json::Value> = td
            .proxy_configuration()
            .map(|p| {
                p.properties()
                    .iter()
                    .map(|e| serde_json::json!({"name": e.name(), "value": e.value()}))
                    .collect()
            })
            .unwrap_or_default();
        (
            serde_json::json!({
                "family": td.family(),
                "image": c.image(),
                "environment": env,
                "proxyProperties": proxy,
            }),
            tags,
        )
    })
}

/// index.test.js 'does not update service if none specified' and 'cleans empty strings and
/// objects out of the task definition contents': without `service` the file is registered
/// (cleaned as there, an empty variable kept as empty) and `task-definition-arn` is its ARN.
#[test]
fn without_a_service_the_file_is_registered_and_its_arn_is_the_output() {
    let moto = MotoServer::start();
    let file = r#"{
        "memory": "",
        "containerDefinitions": [ {
            "name": "sample-container",
            "logConfiguration": {},
            "repositoryCredentials": { "credentialsParameter": "" },
            "command": [ "" ],
            "environment": [
                { "name": "hello", "value": "world" },
                { "name": "test", "value": "" },
                { "name": "", "value": "" }
            ],
            "secretOptions": [ { "name": "", "valueFrom": "" } ],
            "cpu": 0,
            "memory": 256,
            "essential": false
        } ],
        "requiresCompatibilities": [ "EC2" ],
        "registeredAt": 1611690781,
        "family": "task-def-family"
    }"#;
    let out = register_only(&moto, file, &[]);
    out.assert_success();
    let arn = out
        .output("task-definition-arn")
        .expect("task-definition-arn")
        .to_string();
    assert!(arn.ends_with(":task-definition/task-def-family:1"), "{out}");
    assert!(
        out.stdout.contains("no service was updated"),
        "says what it did: {out}"
    );
    let (td, _) = described(&moto, &arn);
    assert_eq!(
        td,
        serde_json::json!({
            "family": "task-def-family",
            "image": IMAGE,
            "environment": [
                {"name": "hello", "value": "world"},
                {"name": "test", "value": ""}
            ],
            "proxyProperties": []
        })
    );
}

/// index.test.js 'maintains empty keys in proxyConfiguration.properties for APPMESH': the
/// properties with an empty value keep it, a property without a name gets an empty one.
#[test]
fn app_mesh_proxy_properties_keep_their_empty_values_on_moto() {
    let moto = MotoServer::start();
    let file = r#"{
        "family": "task-def-family",
        "containerDefinitions": [ { "name": "sample-container", "memory": 256, "essential": false } ],
        "proxyConfiguration": {
            "type": "APPMESH",
            "containerName": "envoy",
            "properties": [
                { "name": "ProxyIngressPort", "value": "15000" },
                { "name": "IgnoredGID", "value": "" },
                { "name": "EgressIgnoredPorts", "value": "" },
                { "value": "some-value" }
            ]
        }
    }"#;
    let out = register_only(&moto, file, &[]);
    out.assert_success();
    let arn = out.output("task-definition-arn").expect("arn").to_string();
    let (td, _) = described(&moto, &arn);
    assert_eq!(
        td["proxyProperties"],
        serde_json::json!([
            {"name": "ProxyIngressPort", "value": "15000"},
            {"name": "IgnoredGID", "value": ""},
            {"name": "EgressIgnoredPorts", "value": ""},
            {"name": "", "value": "some-value"}
        ])
    );
}

/// The revision carries the tags of its source: the file's top-level `tags` (as
/// `aws ecs describe-task-definition --include TAGS` writes them next to `taskDefinition`),
/// and, started from a registered revision (`task-definition-family`), that revision's tags.
#[test]
fn the_new_revision_carries_the_tags_of_its_source() {
    let moto = MotoServer::start();
    let described_with_tags = r#"{
        "taskDefinition": {
            "family": "web1",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:7",
            "revision": 7,
            "containerDefinitions": [ { "name": "web1", "image": "web1:v1", "memory": 256 } ]
        },
        "tags": [ { "key": "team", "value": "shop" }, { "key": "cost-center", "value": "42" } ]
    }"#;
    let out = register_only(&moto, described_with_tags, &[]);
    out.assert_success();
    let first = out.output("task-definition-arn").expect("arn").to_string();
    let (_, tags) = described(&moto, &first);
    let expected = vec![
        ("cost-center".to_string(), "42".to_string()),
        ("team".to_string(), "shop".to_string()),
    ];
    let mut sorted = tags.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "the file's tags: {out}");

    // From the registered revision by family: DescribeTaskDefinition with include TAGS.
    let dir = tempfile::tempdir().expect("workspace");
    let out = bin(dir.path(), &moto.endpoint())
        .env("INPUT_APP", "web1")
        .env("INPUT_IMAGE", IMAGE)
        .env("INPUT_TASK-DEFINITION-FAMILY", "web1")
        .run();
    out.assert_success();
    let second = out.output("task-definition-arn").expect("arn").to_string();
    assert!(second.ends_with("web1:2"), "{out}");
    let (td, tags) = described(&moto, &second);
    assert_eq!(td["image"], IMAGE);
    let mut sorted = tags;
    sorted.sort();
    assert_eq!(sorted, expected, "the live revision's tags: {out}");
}

/// index.test.js 'waits for the service to be stable for max 6 hours': a wait above the cap
/// is capped with a notice, not refused (the cap is 720 minutes here, 360 there).
#[test]
fn a_wait_above_the_cap_is_capped_with_a_notice() {
    let moto = MotoServer::start();
    let file = r#"{"family": "web1", "containerDefinitions": [{"name": "web1", "memory": 256}]}"#;
    let out = register_only(&moto, file, &[("wait-for-minutes", "1000")]);
    out.assert_success();
    assert!(
        out.stdout.contains(
            "wait-for-minutes 1000 is above the 720 minutes this action waits at most: waiting 720"
        ),
        "{out}"
    );
}

/// index.test.js 'cleans empty arrays out of the task definition contents' and the
/// keep-null-value-keys cases, with the input as that action takes it (a comma list of keys).
#[test]
fn keep_null_value_keys_takes_the_deploy_actions_list_of_keys() {
    let moto = MotoServer::start();
    let file = r#"{
        "family": "task-def-family",
        "tags": [],
        "containerDefinitions": [{
            "name": "sample-container",
            "environment": [{"name": "TEST_ENV", "value": ""}],
            "logConfiguration": {"logDriver": "splunk", "options": {"tag": ""}},
            "memory": 256,
            "essential": true
        }]
    }"#;
    let out = register_only(&moto, file, &[("keep-null-value-keys", "environment, tag")]);
    out.assert_success();
    let arn = out.output("task-definition-arn").expect("arn").to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&moto.endpoint()));
    let td = rt
        .block_on(ecs.describe_task_definition().task_definition(&arn).send())
        .expect("describe")
        .task_definition
        .expect("task definition");
    let c = &td.container_definitions()[0];
    assert_eq!(c.environment()[0].value(), Some(""));
    let options = c
        .log_configuration()
        .and_then(|l| l.options())
        .expect("options kept");
    assert_eq!(options.get("tag").map(String::as_str), Some(""));
    // The old boolean form is refused no more, and a key that is no key is named.
    let out = register_only(&moto, file, &[("keep-null-value-keys", "env ironment")]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("keep-null-value-keys"), "{out}");
}
