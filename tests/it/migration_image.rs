//! The book's migration guide for the image steps (docs/src/migration.md:
//! docker/build-push-action and aws-actions/amazon-ecr-login), checked: each "after" step's
//! inputs are read from the book's block and run through the binary, and what they do is
//! compared with what the "before" steps' inputs say. The build runs for real (this machine's
//! Docker engine, FROM scratch) and pushes to a real registry on 127.0.0.1 opened by moto's ECR
//! token; the other accounts' registries of `registries` do not exist here, so that step runs as
//! a dry run, which reads their logins from moto's ECR but pulls nothing.

use std::collections::BTreeMap;
use std::path::Path;

use crate::image::{registry_digest, registry_tags, sha256_hex, ureq_get};
use crate::readme::book_page;
use crate::support::registry::LocalImages;
use crate::support::{
    AwsTrap, BinOutput, BinRun, MotoServer, Registry, aws_env, copy_tree, fixture,
};

const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678";

/// The `yaml` blocks of one section of the book's migration page (`## {title}` in
/// docs/src/migration.md), in order, as step lists.
fn readme_blocks(title: &str) -> Vec<Vec<serde_yaml::Value>> {
    let text = book_page("migration.md");
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("docs/src/migration.md has no section `## {title}`"));
    let section = &text[start + 1..];
    let end = section[3..]
        .find("\n# ")
        .into_iter()
        .chain(section[3..].find("\n## "))
        .min()
        .map_or(section.len(), |e| e + 3);
    section[..end]
        .split("```yaml\n")
        .skip(1)
        .map(|b| {
            let block = b.split("```").next().unwrap_or_default();
            serde_yaml::from_str(block)
                .unwrap_or_else(|e| panic!("a {title} block is not a YAML step list: {e}"))
        })
        .collect()
}

/// The `with:` of the step whose `uses:` starts with `action`, `${{ … }}` filled in from `vars`.
fn with_of(
    steps: &[serde_yaml::Value],
    action: &str,
    vars: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let step = steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
        .unwrap_or_else(|| panic!("no step uses {action}"));
    step["with"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let mut value = match v {
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other)
                    .expect("scalar")
                    .trim()
                    .to_string(),
            };
            for (name, with) in vars {
                value = value.replace(&format!("${{{{ {name} }}}}"), with);
            }
            assert!(!value.contains("${{"), "unfilled expression in {value}");
            (k.as_str().expect("input name").to_string(), value)
        })
        .collect()
}

/// The lines (or comma items) of a list input, trimmed.
fn items(value: &str) -> Vec<String> {
    value
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The migration app in a temp workspace with its own index.html, so BuildKit cannot share its
/// steps with another test's concurrent build.
fn workspace() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp workspace");
    let ws = dir.path().canonicalize().expect("canonical workspace");
    copy_tree(&fixture("migration"), &ws);
    std::fs::write(ws.join("index.html"), format!("<p>{}</p>\n", ws.display()))
        .expect("index.html");
    (dir, ws)
}

/// The binary under `on: push` to main (no `deploy-on`: the default deploys it), with the
/// step's inputs as the runner passes them, plus `extra`.
fn run_step(
    ws: &Path,
    aws: &[(String, String)],
    with: &BTreeMap<String, String>,
    extra: &[(&str, &str)],
) -> BinOutput {
    let mut run = BinRun::new()
        .envs(aws.iter().cloned())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("GITHUB_WORKSPACE", ws)
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", fixture("events/push-branch-main.json"));
    for (k, v) in with {
        run = run.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    for (k, v) in extra {
        run = run.env(k, v);
    }
    run.run()
}

#[test]
fn the_build_push_action_after_step_pushes_the_same_tags_labels_build_args_and_target() {
    let blocks = readme_blocks("docker/build-push-action");
    assert_eq!(blocks.len(), 2, "a before and an after block");
    let moto = MotoServer::start();
    let registry = Registry::start_with_auth("AWS", "123456789012-auth-token");
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let vars = [
        ("steps.login-ecr.outputs.registry", host.as_str()),
        ("github.sha", SHA),
    ];
    let before = with_of(&blocks[0], "docker/build-push-action@", &vars);
    let after = with_of(&blocks[1], "ecs-deploy-action/ecs-deploy-action@", &vars);
    // The settings the build gets are the same text under the same names.
    for name in ["context", "file", "target", "build-args", "labels", "push"] {
        assert_eq!(before.get(name), after.get(name), "input {name}");
    }
    let (_dir, ws) = workspace();
    // The account's ECR registry is the local one here (moto's token opens it).
    let out = run_step(
        &ws,
        &aws_env(&moto.endpoint()),
        &after,
        &[
            ("INPUT_REGISTRY", host.as_str()),
            ("INPUT_REGISTRY-IS-ECR", "true"),
            ("INPUT_CREATE-REPOSITORY", "true"),
        ],
    );
    out.assert_success();

    // The same references as the before step's `tags`, and no other tag.
    let expected: Vec<String> = items(&before["tags"]);
    let mut pushed: Vec<String> = registry_tags(&registry, "web1")
        .into_iter()
        .map(|t| format!("{host}/web1:{t}"))
        .collect();
    pushed.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(pushed, want, "{out}");
    let digest = registry_digest(&registry, "web1", SHA).expect("the sha tag exists");
    assert_eq!(
        registry_digest(&registry, "web1", "latest").as_deref(),
        Some(digest.as_str())
    );
    // The outputs the before steps gave, under their names.
    assert_eq!(out.output("digest"), Some(digest.as_str()), "{out}");
    assert_eq!(out.output("registry"), Some(host.as_str()), "{out}");
    assert!(
        out.output("imageid")
            .is_some_and(|i| i.starts_with("sha256:")),
        "{out}"
    );
    let metadata: serde_json::Value =
        serde_json::from_str(out.output("metadata").unwrap_or("null")).expect("metadata JSON");
    assert_eq!(metadata["containerimage.digest"], digest.as_str());
    assert_eq!(metadata["image.name"], expected[0].as_str());

    // Labels, the build argument and the target stage, read from the pushed image's config.
    let manifest = ureq_get(&registry, &format!("/v2/web1/manifests/{SHA}")).take_json();
    let config_digest = manifest["config"]["digest"].as_str().expect("config");
    let config = ureq_get(&registry, &format!("/v2/web1/blobs/{config_digest}")).take_json();
    let labels = &config["config"]["Labels"];
    for line in items(&before["labels"]) {
        let (k, v) = line.split_once('=').expect("KEY=VALUE");
        assert_eq!(labels[k], v, "label {k}: {labels}");
    }
    assert_eq!(before["build-args"].trim(), "NODE_ENV=production");
    assert_eq!(labels["node-env"], "production", "build arg: {labels}");
    assert_eq!(
        labels["stage"],
        before["target"].as_str(),
        "target: {labels}"
    );
    // Again with one tag more: the version tag (the first) exists, so nothing is built and the
    // new tag is put on the same manifest, read back.
    let mut again = after.clone();
    again.insert("tags".into(), format!("{SHA}\nhotfix-1"));
    let env = [
        ("INPUT_REGISTRY", host.as_str()),
        ("INPUT_REGISTRY-IS-ECR", "true"),
    ];
    let out = run_step(&ws, &aws_env(&moto.endpoint()), &again, &env);
    out.assert_success();
    assert_eq!(out.output("image-built"), Some("false"), "{out}");
    assert_eq!(
        registry_digest(&registry, "web1", "hotfix-1").as_deref(),
        Some(digest.as_str()),
        "{out}"
    );
    // A rebuild takes the Dockerfile's steps from the engine's cache; with no-cache it takes
    // none of them (BuildKit still reuses its own copy of the uploaded context).
    again.insert("rebuild".into(), "true".into());
    let cached = run_step(&ws, &aws_env(&moto.endpoint()), &again, &env);
    cached.assert_success();
    assert!(dockerfile_steps_cached(&cached) > 0, "{cached}");
    again.insert("no-cache".into(), "true".into());
    let fresh = run_step(&ws, &aws_env(&moto.endpoint()), &again, &env);
    fresh.assert_success();
    assert_eq!(dockerfile_steps_cached(&fresh), 0, "{fresh}");
}

/// The Dockerfile steps (`[stage n/m] ...`) a build took from the cache, as its log says.
fn dockerfile_steps_cached(out: &BinOutput) -> usize {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("CACHED ["))
        .count()
}

#[test]
fn secret_files_reach_the_build_as_secrets_and_a_file_outside_the_workspace_is_refused() {
    let registry = Registry::start();
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let dir = tempfile::tempdir().expect("temp workspace");
    let ws = dir.path().canonicalize().expect("canonical workspace");
    copy_tree(&fixture("migration-secret"), &ws);
    std::fs::copy("/bin/busybox", ws.join("busybox"))
        .expect("a static busybox at /bin/busybox (Debian package busybox-static)");
    let secret = "file-secret-0451\n";
    std::fs::write(ws.join("token.txt"), secret).expect("secret file");
    let with = BTreeMap::from([
        ("ecr-repository".to_string(), "web1".to_string()),
        ("tags".to_string(), "v1".to_string()),
        ("secret-files".to_string(), "token=token.txt".to_string()),
        ("build-args".to_string(), format!("NONCE={}", ws.display())),
        ("registry".to_string(), host.clone()),
        ("registry-is-ecr".to_string(), "false".to_string()),
    ]);
    let out = run_step(&ws, &AwsTrap::start().env(), &with, &[]);
    out.assert_success();
    let expected = sha256_hex(secret.as_bytes());
    assert!(
        out.stdout
            .contains(&format!("{expected}  /run/secrets/token")),
        "the file's content reached RUN: {out}"
    );
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.contains("file-secret-0451") && !l.starts_with("::add-mask::")),
        "the secret is masked, never shown: {out}"
    );

    let mut outside = with.clone();
    outside.insert("secret-files".into(), "token=/etc/hostname".into());
    let trap = AwsTrap::start();
    let out = run_step(&ws, &trap.env(), &outside, &[]);
    out.assert_code(1);
    assert!(
        out.stdout.contains("input `secret-files`") && out.stdout.contains("inside the workspace"),
        "{out}"
    );
    assert_eq!(trap.hits(), 0, "refused before any AWS call");
}

#[test]
fn with_a_package_json_the_tags_come_on_top_of_the_version_tags() {
    let trap = AwsTrap::start();
    let with = BTreeMap::from([
        ("app".to_string(), "web1".to_string()),
        ("tags".to_string(), format!("stable, {SHA}")),
        ("dry-run".to_string(), "true".to_string()),
    ]);
    let out = run_step(&fixture("monorepo"), &trap.env(), &with, &[]);
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "tags:        v1.2.3, latest, sha-1a2b3c4, stable, {SHA}\n"
        )),
        "{out}"
    );
}
#[test]
fn the_amazon_ecr_login_after_step_logs_the_build_in_to_every_registry_of_registries() {
    let blocks = readme_blocks("aws-actions/amazon-ecr-login");
    assert_eq!(blocks.len(), 2, "a before and an after block");
    let vars = [("github.sha", SHA)];
    let login = with_of(&blocks[0], "aws-actions/amazon-ecr-login@", &vars);
    let build = with_of(&blocks[0], "docker/build-push-action@", &vars);
    let after = with_of(&blocks[1], "ecs-deploy-action/ecs-deploy-action@", &vars);
    assert_eq!(login["registries"], after["registries"]);
    assert_eq!(build["tags"], after["tags"]);
    let moto = MotoServer::start();
    let (_dir, ws) = workspace();
    std::fs::rename(ws.join("docker/Dockerfile"), ws.join("Dockerfile")).expect("Dockerfile");
    let out = run_step(
        &ws,
        &aws_env(&moto.endpoint()),
        &after,
        &[("INPUT_DRY-RUN", "true")],
    );
    out.assert_success();
    // The image and tag the before step pushed.
    let reference = &build["tags"];
    assert!(
        out.stdout.contains(&format!("image:       {reference}")),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!("tags:        {SHA}\n")),
        "{out}"
    );
    // One login per account of `registries`, from moto's ECR token, in the token's region.
    let hosts: Vec<String> = items(&login["registries"])
        .iter()
        .map(|id| format!("{id}.dkr.ecr.us-east-1.amazonaws.com"))
        .collect();
    assert!(
        out.stdout.contains(&format!(
            "the build logs in to {} for its base images (registries)",
            hosts.join(", ")
        )),
        "{out}"
    );
}

#[test]
fn inputs_the_image_steps_have_and_this_action_does_not_are_refused_before_any_aws_call() {
    let trap = AwsTrap::start();
    let (_dir, ws) = workspace();
    for (name, value, says) in [
        ("cache-from", "type=gha", "cache: registry"),
        ("provenance", "mode=max", "pushes no attestations"),
        ("platforms", "linux/amd64,linux/arm64", "one platform only"),
        ("registry-type", "public", "ECR Public is not supported"),
        ("mask-password", "false", "docker_password"),
        ("push", "false", "always pushes"),
    ] {
        let with = BTreeMap::from([(name.to_string(), value.to_string())]);
        let out = run_step(&ws, &trap.env(), &with, &[]);
        out.assert_code(1);
        let log = format!("{}{}", out.stdout, out.stderr);
        assert!(
            log.contains(&format!("input `{name}`")) && log.contains(says),
            "{name}: {out}"
        );
    }
    assert_eq!(
        trap.hits(),
        0,
        "a refused input stops the run before any AWS call"
    );
}
