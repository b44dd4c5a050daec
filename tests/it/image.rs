//! The image step on real parts: this machine's Docker engine builds (FROM scratch), a real
//! registry (Debian's docker-registry on 127.0.0.1) receives the push and is read back over its
//! own API, and moto plays ECR's control plane (token, repositories, DescribeImages).

use std::path::{Path, PathBuf};

use crate::support::bin::SECRET_MARKS;
use crate::support::registry::{LocalImages, remove_local_images};
use crate::support::{
    BinOutput, BinRun, MotoServer, Registry, aws_env, fixture, recording_server, sdk_config,
};
use aws_sdk_ecr::types::ImageTagMutability;
use base64::Engine as _;
use ecs_deploy::aws::Aws;
use ecs_deploy::image::{build, ecr};
use ecs_deploy::inputs::CreateRepository;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678";
const MOTO_USER: &str = "AWS";
const MOTO_PASSWORD: &str = "123456789012-auth-token";

/// A merged `release/web1` PR run against `workspace`, with `env` on top.
fn run(workspace: &Path, event: &str, aws_endpoint: &str, env: &[(&str, &str)]) -> BinOutput {
    let mut r = BinRun::new()
        .envs(aws_env(aws_endpoint))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_EVENT_NAME", event_name(event))
        .env(
            "GITHUB_EVENT_PATH",
            fixture(Path::new("events").join(event)),
        );
    for (k, v) in env {
        r = r.env(k, v);
    }
    r.run()
}

/// True when `secret` appears in the log anywhere but the `::add-mask::` line that hides it.
fn shown(out: &BinOutput, secret: &str) -> bool {
    out.stdout
        .lines()
        .chain(out.stderr.lines())
        .any(|l| l.contains(secret) && !l.starts_with("::add-mask::"))
}

fn event_name(file: &str) -> &'static str {
    if file.starts_with("workflow-dispatch") {
        "workflow_dispatch"
    } else {
        "pull_request"
    }
}

/// Tags the registry holds for `repo`, sorted.
pub(crate) fn registry_tags(registry: &Registry, repo: &str) -> Vec<String> {
    let mut req = ureq_get(registry, &format!("/v2/{repo}/tags/list"));
    let body: serde_json::Value = req.take_json();
    let mut tags: Vec<String> = body["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// The registry's own digest for `repo:tag` (the `Docker-Content-Digest` header).
pub(crate) fn registry_digest(registry: &Registry, repo: &str, tag: &str) -> Option<String> {
    let resp = ureq_get(registry, &format!("/v2/{repo}/manifests/{tag}"));
    resp.digest
}

pub(crate) struct Got {
    status: u16,
    digest: Option<String>,
    body: Vec<u8>,
}

impl Got {
    pub(crate) fn take_json(&mut self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One blocking request to the registry with its credentials (tests run it from sync code):
/// the status, the `Docker-Content-Digest` header and the body.
fn registry_send(
    registry: &Registry,
    method: reqwest::Method,
    path: &str,
    header: (&'static str, String),
    body: Option<Vec<u8>>,
) -> (u16, Option<String>, Vec<u8>) {
    let url = format!("{}{path}", registry.url());
    let creds = registry
        .credentials()
        .map(|(u, p)| (u.to_string(), p.to_string()));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut req = reqwest::Client::new()
                .request(method, &url)
                .header(header.0, header.1);
            if let Some(body) = body {
                req = req.body(body);
            }
            if let Some((u, p)) = creds {
                req = req.basic_auth(u, Some(p));
            }
            let resp = req.send().await.expect("registry answers");
            let status = resp.status().as_u16();
            let digest = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.bytes().await.expect("body").to_vec();
            (status, digest, body)
        })
    })
    .join()
    .expect("registry request thread")
}

/// A blocking GET on the registry with its credentials, asking for image manifests.
pub(crate) fn ureq_get(registry: &Registry, path: &str) -> Got {
    let accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
    let (status, digest, body) = registry_send(
        registry,
        reqwest::Method::GET,
        path,
        ("Accept", accept.to_string()),
        None,
    );
    Got {
        status,
        digest: if status == 200 { digest } else { None },
        body,
    }
}

/// Points `repo:tag` at a variant of `repo:from`'s manifest (the same config and layers plus an
/// annotation), pushed with the registry's own API; returns the variant's digest.
fn move_tag_to_a_variant(registry: &Registry, repo: &str, from: &str, tag: &str) -> String {
    let mut manifest = ureq_get(registry, &format!("/v2/{repo}/manifests/{from}")).take_json();
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    manifest["annotations"] = serde_json::json!({ "org.example.test": "moved away" });
    let (status, digest, _) = registry_send(
        registry,
        reqwest::Method::PUT,
        &format!("/v2/{repo}/manifests/{tag}"),
        ("Content-Type", media_type),
        Some(serde_json::to_vec(&manifest).expect("manifest JSON")),
    );
    assert!((200..300).contains(&status), "PUT manifest: {status}");
    digest.expect("the registry names the pushed digest")
}

/// The SHA-256 of `data` in lowercase hex, as `sha256sum` prints it.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The engine's id of a local image (`docker image inspect --format {{.Id}}`).
fn local_image_id(name: &str) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", name])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn local_image_exists(name: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// web1 of the monorepo in a temp workspace with its own index.html, so BuildKit cannot share
/// its steps with another test's concurrent build (a shared step reports progress to one only).
fn unique_web1_workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp workspace");
    let ws = dir.path().canonicalize().expect("canonical workspace");
    let app = ws.join("apps/web1");
    std::fs::create_dir_all(&app).expect("apps/web1");
    for f in ["Dockerfile", "package.json"] {
        std::fs::copy(fixture("monorepo/apps/web1").join(f), app.join(f)).expect("copy fixture");
    }
    std::fs::write(
        app.join("index.html"),
        format!("<p>web1 {}</p>\n", ws.display()),
    )
    .expect("index.html");
    (dir, ws)
}

/// A copy of a build fixture with a static busybox next to the Dockerfile (RUN needs a shell).
fn build_workspace(dockerfile_dir: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp workspace");
    let ws = dir.path().canonicalize().expect("canonical workspace");
    std::fs::copy(
        fixture(Path::new("build").join(dockerfile_dir).join("Dockerfile")),
        ws.join("Dockerfile"),
    )
    .expect("copy Dockerfile");
    std::fs::copy(fixture("build/package.json"), ws.join("package.json")).expect("package.json");
    if dockerfile_dir.starts_with("secret") {
        std::fs::copy("/bin/busybox", ws.join("busybox"))
            .expect("a static busybox at /bin/busybox (Debian package busybox-static)");
    }
    (dir, ws)
}

#[test]
fn web1_is_built_every_tag_pushed_and_the_digest_output_is_the_registrys_then_a_second_run_reuses_it()
 {
    let moto = MotoServer::start();
    let registry = Registry::start_with_auth(MOTO_USER, MOTO_PASSWORD);
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let env = [
        ("INPUT_REGISTRY", host.as_str()),
        ("INPUT_ECR-REPOSITORY", "web1"),
        ("INPUT_REGISTRY-IS-ECR", "true"),
        ("INPUT_CREATE-REPOSITORY", "true"),
    ];
    let first = run(
        &fixture("monorepo"),
        "pr-merged-release-web1.json",
        &moto.endpoint(),
        &env,
    );
    first.assert_success();
    let image = format!("{host}/web1:v1.2.3");
    assert_eq!(first.output("image"), Some(image.as_str()), "{first}");
    assert_eq!(first.output("image-built"), Some("true"), "{first}");
    assert_eq!(
        registry_tags(&registry, "web1"),
        vec!["latest", "sha-1a2b3c4", "v1.2.3"],
        "{first}"
    );
    let digest = registry_digest(&registry, "web1", "v1.2.3").expect("the tag exists");
    assert!(digest.starts_with("sha256:"));
    assert_eq!(first.output("image-digest"), Some(digest.as_str()));
    // docker/build-push-action's and amazon-ecr-login's names for the same facts.
    assert_eq!(first.output("digest"), Some(digest.as_str()), "{first}");
    assert_eq!(first.output("registry"), Some(host.as_str()), "{first}");
    let image_id = local_image_id(&image).expect("the built image is in the engine");
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    assert_eq!(first.output("imageid"), Some(image_id.as_str()), "{first}");
    let metadata: serde_json::Value =
        serde_json::from_str(first.output("metadata").unwrap_or("null")).expect("metadata JSON");
    assert_eq!(
        metadata,
        serde_json::json!({
            "containerimage.config.digest": image_id,
            "containerimage.digest": digest,
            "image.name": image,
        }),
        "{first}"
    );
    assert_eq!(
        registry_digest(&registry, "web1", "latest").as_deref(),
        Some(digest.as_str())
    );
    assert!(
        first
            .stdout
            .contains("no service given, so no deploy was asked for"),
        "{first}"
    );
    // The OCI labels are in the pushed image's config.
    let manifest = ureq_get(&registry, "/v2/web1/manifests/v1.2.3").take_json();
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config = ureq_get(&registry, &format!("/v2/web1/blobs/{config_digest}")).take_json();
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], SHA);
    assert_eq!(labels["org.opencontainers.image.version"], "1.2.3");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/acme/shop"
    );
    assert!(
        labels["org.opencontainers.image.created"]
            .as_str()
            .is_some_and(|c| c.ends_with('Z') && c.len() == 20),
        "{labels}"
    );
    // moto created the ECR repository (create-repository: true).
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let repos = rt.block_on(async {
        aws_sdk_ecr::Client::new(&sdk_config(&moto.endpoint()))
            .describe_repositories()
            .send()
            .await
            .expect("describe repositories")
    });
    let names: Vec<_> = repos
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name())
        .collect();
    assert_eq!(names, vec!["web1"]);

    // Second run, nothing changed: no build, same digest, and `latest` moved back to it. So
    // that the move can be seen, `latest` first points at another manifest (same blobs, one
    // annotation more, so another digest).
    let moved = move_tag_to_a_variant(&registry, "web1", "v1.2.3", "latest");
    assert_ne!(moved, digest);
    assert_eq!(
        registry_digest(&registry, "web1", "latest").as_deref(),
        Some(moved.as_str())
    );
    remove_local_images(&format!("{host}/"));
    let second = run(
        &fixture("monorepo"),
        "pr-merged-release-web1.json",
        &moto.endpoint(),
        &env,
    );
    second.assert_success();
    assert_eq!(second.output("image-built"), Some("false"), "{second}");
    assert_eq!(second.output("image-digest"), Some(digest.as_str()));
    assert_eq!(second.output("digest"), Some(digest.as_str()));
    // Nothing built: no image id, no build metadata.
    assert_eq!(second.output("imageid"), Some(""), "{second}");
    assert_eq!(second.output("metadata"), Some(""), "{second}");
    assert!(second.stdout.contains("reusing it, no build"), "{second}");
    assert!(!second.stdout.contains("build context"), "{second}");
    assert!(
        !local_image_exists(&image),
        "the second run must not build (no local image appeared)"
    );
    assert_eq!(
        registry_digest(&registry, "web1", "latest").as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn a_build_arg_and_a_secret_reach_the_build_and_the_secret_is_in_no_layer_history_or_log() {
    let registry = Registry::start();
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let (_dir, ws) = build_workspace("secret");
    let secret = "s3cr3t-value-0451";
    let out = run(
        &ws,
        "pr-merged-release-web1.json",
        "http://127.0.0.1:9",
        &[
            ("INPUT_REGISTRY", host.as_str()),
            ("INPUT_BUILD-ARGS", "GREETING=hello-from-arg"),
            ("INPUT_BUILD-SECRETS", &format!("token={secret}")),
        ],
    );
    out.assert_success();
    let image = format!("{host}/web1:v2.0.0");
    assert_eq!(out.output("image"), Some(image.as_str()), "{out}");
    assert!(!shown(&out, secret), "{out}");

    // Every layer and the config, as the engine holds them.
    let saved = std::process::Command::new("docker")
        .args(["save", &image])
        .output()
        .expect("docker save");
    assert!(saved.status.success());
    let mut files = std::collections::BTreeMap::new();
    let mut outer = tar::Archive::new(saved.stdout.as_slice());
    for entry in outer.entries().expect("saved tar") {
        let mut entry = entry.expect("entry");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read entry");
        let name = entry.path().expect("path").display().to_string();
        let needle = secret.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the secret is in {name} of the saved image"
        );
        if name.ends_with("layer.tar") {
            let mut layer = tar::Archive::new(bytes.as_slice());
            for f in layer.entries().expect("layer tar") {
                let mut f = f.expect("layer entry");
                let path = f.path().expect("path").display().to_string();
                let mut content = String::new();
                let _ = std::io::Read::read_to_string(&mut f, &mut content);
                files.insert(path, content);
            }
        }
    }
    assert_eq!(
        files.get("greeting.txt").map(String::as_str),
        Some("hello-from-arg\n")
    );
    let expected = sha256_hex(secret.as_bytes());
    assert_eq!(
        files.get("token.sha256").map(|s| s.trim().to_string()),
        Some(expected),
        "the secret reached RUN (its hash is in the image)"
    );
    assert!(
        !files
            .keys()
            .any(|k| k.starts_with("run/secrets/") && k.len() > 12),
        "only the empty mount point is left: {files:?}"
    );
    let history = std::process::Command::new("docker")
        .args(["history", "--no-trunc", &image])
        .output()
        .expect("docker history");
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(history.contains("GREETING=hello-from-arg"), "{history}");
    assert!(!history.contains(secret), "{history}");
}

#[test]
fn a_run_in_a_from_scratch_image_fails_with_exit_1_and_the_builds_own_error() {
    let registry = Registry::start();
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let (_dir, ws) = build_workspace("failing");
    let out = run(
        &ws,
        "pr-merged-release-web1.json",
        "http://127.0.0.1:9",
        &[("INPUT_REGISTRY", host.as_str())],
    );
    out.assert_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("::error"), "{out}");
    assert!(all.contains("the build failed"), "{out}");
    assert!(
        all.contains("executor failed running [/bin/sh -c echo this cannot run]"),
        "{out}"
    );
    // The build's own log line is quoted in the error annotation.
    let error_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_default();
    assert!(
        error_line.contains("stat /bin/sh: no such file or directory"),
        "{out}"
    );
    assert_eq!(out.output("status"), Some("failed"), "{out}");
    assert_eq!(
        ureq_get(&registry, "/v2/web1/tags/list").status,
        404,
        "nothing was pushed"
    );
}

#[tokio::test]
async fn a_run_that_prints_a_build_secret_and_fails_shows_it_nowhere_and_its_workflow_commands_are_text()
 {
    let registry = Registry::start();
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let chat = recording_server().await;
    let (_dir, ws) = build_workspace("secret-printed");
    let secret = "s3cr3t-value-0451";
    assert!(
        SECRET_MARKS.contains(&secret),
        "the harness scans every run for it"
    );
    let slack = format!("{}/services/T0000/B0000/slackHOOKsecret42", chat.uri());
    let discord = format!("{}/api/webhooks/1234/discordHOOKsecret42", chat.uri());
    for (at, id) in [("", 42), ("/42/statuses", 1)] {
        Mock::given(method("POST"))
            .and(path(format!("/repos/acme/shop/deployments{at}")))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({ "id": id })))
            .mount(&chat)
            .await;
    }
    let out = run(
        &ws,
        "pr-merged-release-web1.json",
        "http://127.0.0.1:9",
        &[
            ("INPUT_REGISTRY", host.as_str()),
            ("INPUT_BUILD-SECRETS", &format!("token={secret}")),
            ("INPUT_SLACK-WEBHOOK-URL", &slack),
            ("INPUT_DISCORD-WEBHOOK-URL", &discord),
            ("INPUT_GITHUB-TOKEN", "ghs_githubTOKENsecret42"),
            ("GITHUB_API_URL", &chat.uri()),
        ],
    );
    // The harness already found the secret in no log line, output or summary line.
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("failed"), "{out}");
    // The line is there, redacted, in the log, the error, the summary and `results`.
    let redacted = "the token is ***";
    assert!(out.stdout.contains(&format!("   {redacted}")), "{out}");
    let error_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_default();
    assert!(error_line.contains(redacted), "{out}");
    assert!(out.summary.contains(redacted), "{}", out.summary);
    assert!(
        out.output("results").is_some_and(|r| r.contains(redacted)),
        "{out}"
    );
    // Slack and Discord each got the failure with the build's last lines, redacted.
    let bodies: Vec<(String, String)> = chat
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r.url.path().to_string(),
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        })
        .collect();
    for hook in ["slackHOOKsecret42", "discordHOOKsecret42"] {
        let sent: Vec<&String> = bodies
            .iter()
            .filter(|(p, _)| p.ends_with(hook))
            .map(|(_, b)| b)
            .collect();
        assert_eq!(sent.len(), 1, "{hook}: {bodies:?}");
        assert!(sent[0].contains(redacted), "{hook}: {}", sent[0]);
    }
    // GitHub's deployment was set in progress, then to failure.
    let states: Vec<&String> = bodies
        .iter()
        .filter(|(p, _)| p.ends_with("/deployments/42/statuses"))
        .map(|(_, b)| b)
        .collect();
    assert!(
        states.len() == 2 && states[1].contains(r#""state":"failure""#),
        "{bodies:?}"
    );
    for (p, body) in &bodies {
        assert!(!body.contains(secret), "the secret reached {p}: {body}");
    }
    // The build's own `::error::` and `::add-mask::` are printed inside a stop-commands window,
    // so the runner shows them as text; the window is closed before the action's own error.
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let stop = lines
        .iter()
        .position(|l| l.starts_with("::stop-commands::"))
        .unwrap_or_else(|| panic!("no stop-commands:\n{out}"));
    let token = lines[stop].trim_start_matches("::stop-commands::");
    assert!(token.len() >= 20, "a random token: {token:?}");
    let resume = lines
        .iter()
        .rposition(|l| *l == format!("::{token}::"))
        .unwrap_or_else(|| panic!("commands never resumed:\n{out}"));
    for printed in ["::error::from the build", "::add-mask::the"] {
        let i = at(printed).unwrap_or_else(|| panic!("{printed} not printed:\n{out}"));
        assert!(
            stop < i && i < resume,
            "{printed} outside the window:\n{out}"
        );
    }
    let own_error = lines
        .iter()
        .position(|l| l.starts_with("::error title="))
        .unwrap_or_default();
    assert!(resume < own_error, "{out}");
}

/// A registry stand-in on 127.0.0.1 that answers `GET /v2/` with 401 (with `challenge` as its
/// `WWW-Authenticate` when given) and records every request, `Authorization` included.
async fn recording_registry(challenge: Option<&str>) -> MockServer {
    let server = MockServer::start().await;
    let mut refused = ResponseTemplate::new(401);
    if let Some(c) = challenge {
        refused = refused.insert_header("WWW-Authenticate", c);
    }
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(refused)
        .mount(&server)
        .await;
    server
}

/// The `user:password` pairs of the Basic `Authorization` headers a server received.
async fn basic_logins(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.headers.get("authorization"))
        .filter_map(|v| v.to_str().ok()?.strip_prefix("Basic ").map(str::to_string))
        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// web1's release to `registry` with `ecr-repository: web1` and `extra` inputs, moto playing
/// ECR: a run that must fail before any build. Returns the whole log.
fn failed_release_to(registry: &MockServer, moto: &MotoServer, extra: &[(&str, &str)]) -> String {
    let host = registry.address().to_string();
    let mut env = vec![
        ("INPUT_REGISTRY", host.as_str()),
        ("INPUT_ECR-REPOSITORY", "web1"),
    ];
    env.extend_from_slice(extra);
    let out = run(
        &fixture("monorepo"),
        "pr-merged-release-web1.json",
        &moto.endpoint(),
        &env,
    );
    out.assert_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("build context"), "nothing was built:\n{out}");
    all
}

#[tokio::test]
async fn ecrs_token_is_never_sent_to_a_registry_host_that_is_not_ecr() {
    let moto = MotoServer::start();
    let fake = recording_registry(None).await;
    let host = fake.address().to_string();

    // `ecr-repository` once sent ECR's token to any host: now the plan stops, naming the host
    // and the input, before any request leaves.
    let log = failed_release_to(&fake, &moto, &[]);
    assert!(
        log.contains(&format!("registry {host} is not an ECR host"))
            && log.contains("registry-is-ecr: true"),
        "{log}"
    );
    let seen = fake.received_requests().await.unwrap_or_default();
    assert!(seen.is_empty(), "the host was contacted: {seen:?}");

    // With the registry's own login, the host gets that login and never ECR's token.
    let log = failed_release_to(
        &fake,
        &moto,
        &[
            ("INPUT_REGISTRY-USERNAME", "deployer"),
            ("INPUT_REGISTRY-PASSWORD", "registry-pass-77"),
        ],
    );
    assert!(
        log.contains(&format!("the registry {host} refused the credentials")),
        "{log}"
    );
    let logins = basic_logins(&fake).await;
    assert!(!logins.is_empty(), "the login was tried");
    for login in &logins {
        assert_eq!(login, "deployer:registry-pass-77");
        assert!(!login.contains(MOTO_PASSWORD));
    }
}

#[tokio::test]
async fn a_token_service_on_another_host_never_gets_ecrs_token() {
    let moto = MotoServer::start();
    let elsewhere = recording_server().await;
    let realm = format!("{}/token", elsewhere.uri());
    let challenge = format!(r#"Bearer realm="{realm}",service="registry""#);
    let fake = recording_registry(Some(&challenge)).await;
    let host = fake.address().to_string();
    let log = failed_release_to(
        &fake,
        &moto,
        &[
            ("INPUT_REGISTRY-IS-ECR", "true"),
            ("INPUT_CREATE-REPOSITORY", "true"),
        ],
    );
    assert!(
        log.contains(&format!("its token service {realm}"))
            && log.contains(&format!("is not on {host} itself"))
            && log.contains("no credentials were sent"),
        "{log}"
    );
    // The host declared to be in front of ECR got ECR's login; the other host got nothing.
    assert_eq!(
        basic_logins(&fake).await,
        vec![format!("{MOTO_USER}:{MOTO_PASSWORD}")]
    );
    let asked = elsewhere.received_requests().await.unwrap_or_default();
    assert!(asked.is_empty(), "the token service was asked: {asked:?}");
}

#[test]
fn a_requested_version_that_was_never_pushed_fails_naming_the_repository_and_tag_before_deploying()
{
    let moto = MotoServer::start();
    let registry = Registry::start_with_auth(MOTO_USER, MOTO_PASSWORD);
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let out = run(
        &fixture("monorepo"),
        "workflow-dispatch-version.json",
        &moto.endpoint(),
        &[
            ("INPUT_APP", "web1"),
            ("INPUT_REGISTRY", host.as_str()),
            ("INPUT_ECR-REPOSITORY", "web1"),
            ("INPUT_REGISTRY-IS-ECR", "true"),
            ("INPUT_CREATE-REPOSITORY", "true"),
            ("INPUT_CLUSTER", "prod"),
            ("INPUT_SERVICE", "web1"),
        ],
    );
    out.assert_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("the repository web1") && all.contains("has no tag v1.2.0"),
        "{out}"
    );
    assert!(
        !all.contains("web1: deploy"),
        "no deploy step started:\n{out}"
    );
    assert!(!all.contains("build context"), "nothing was built:\n{out}");
}

#[test]
fn a_registry_that_refuses_the_credentials_stops_the_run_before_any_build() {
    let registry = Registry::start_with_auth("deployer", "right-password");
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let out = run(
        &fixture("monorepo"),
        "pr-merged-release-web1.json",
        "http://127.0.0.1:9",
        &[
            ("INPUT_REGISTRY", host.as_str()),
            ("INPUT_REGISTRY-USERNAME", "deployer"),
            ("INPUT_REGISTRY-PASSWORD", "wrong-password"),
        ],
    );
    out.assert_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(&format!("the registry {host} refused the credentials")),
        "{out}"
    );
    assert!(
        !shown(&out, "wrong-password"),
        "the password is masked:\n{out}"
    );
    assert!(!all.contains("build context"), "nothing was built:\n{out}");
}

#[test]
fn a_missing_ecr_repository_is_an_error_naming_it_unless_create_repository_is_set() {
    let moto = MotoServer::start();
    let registry = Registry::start_with_auth(MOTO_USER, MOTO_PASSWORD);
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let out = run(
        &fixture("monorepo"),
        "pr-merged-release-web1.json",
        &moto.endpoint(),
        &[
            ("INPUT_REGISTRY", host.as_str()),
            ("INPUT_ECR-REPOSITORY", "web1"),
            ("INPUT_REGISTRY-IS-ECR", "true"),
        ],
    );
    out.assert_code(1);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains(
            "the ECR repository \"web1\" does not exist; create it, or set `create-repository: true`"
        ),
        "{out}"
    );
    assert!(!out.stdout.contains("build context"), "{out}");
}

#[test]
fn a_second_build_with_the_registry_cache_takes_its_steps_from_the_cache() {
    // The registry needs ECR's login, so the cache import also proves the build session hands
    // the credentials to BuildKit.
    let moto = MotoServer::start();
    let registry = Registry::start_with_auth(MOTO_USER, MOTO_PASSWORD);
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let (_dir, ws) = unique_web1_workspace();
    let env = [
        ("INPUT_REGISTRY", host.as_str()),
        ("INPUT_ECR-REPOSITORY", "web1"),
        ("INPUT_REGISTRY-IS-ECR", "true"),
        ("INPUT_CREATE-REPOSITORY", "true"),
        ("INPUT_CACHE", "registry"),
        ("INPUT_REBUILD", "true"),
    ];
    let first = run(&ws, "pr-merged-release-web1.json", &moto.endpoint(), &env);
    first.assert_success();
    assert!(
        registry_tags(&registry, "web1").contains(&"buildcache".to_string()),
        "{first}"
    );
    // Drop the engine's local copy and its build cache, so only the registry can help.
    remove_local_images(&format!("{host}/"));
    let _ = std::process::Command::new("docker")
        .args(["builder", "prune", "-af"])
        .output();
    let second = run(&ws, "pr-merged-release-web1.json", &moto.endpoint(), &env);
    second.assert_success();
    assert_eq!(second.output("image-built"), Some("true"));
    assert!(
        second.stdout.contains("registry cache: importing from"),
        "{second}"
    );
    let line = second
        .stdout
        .lines()
        .find(|l| l.contains(" from cache"))
        .unwrap_or_default()
        .to_string();
    let cached: usize = line
        .rsplit(", ")
        .next()
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        cached > 0,
        "some steps came from the cache: {line:?}\n{second}"
    );
}

#[tokio::test]
async fn moto_ecr_token_decodes_and_its_repository_and_tag_checks_answer() {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    let login = ecr::login(&aws).await.expect("login");
    assert_eq!(login.credentials.username, MOTO_USER);
    assert_eq!(login.credentials.password.expose(), MOTO_PASSWORD);
    assert!(ecr::is_ecr_host(&login.host), "{}", login.host);

    assert!(
        !ecr::repository_exists(&aws, "web2")
            .await
            .expect("describe")
    );
    let err = ecr::ensure_repository(&aws, &login.host, "web2", CreateRepository::No)
        .await
        .expect_err("missing repository");
    assert!(err.to_string().contains("\"web2\" does not exist"), "{err}");
    ecr::ensure_repository(&aws, &login.host, "web2", CreateRepository::Mutable)
        .await
        .expect("created");
    assert!(
        ecr::repository_exists(&aws, "web2")
            .await
            .expect("describe")
    );
    // `create-repository: immutable`: scan on push, immutable tags except the moving ones.
    ecr::ensure_repository(&aws, &login.host, "web3", CreateRepository::Immutable)
        .await
        .expect("created immutable");
    let described = aws
        .ecr
        .describe_repositories()
        .repository_names("web2")
        .repository_names("web3")
        .send()
        .await
        .expect("describe repositories");
    let by_name = |name: &str| {
        described
            .repositories()
            .iter()
            .find(|r| r.repository_name() == Some(name))
            .cloned()
            .expect("repository listed")
    };
    let (web2, web3) = (by_name("web2"), by_name("web3"));
    for repo in [&web2, &web3] {
        assert_eq!(
            repo.image_scanning_configuration()
                .map(|c| c.scan_on_push()),
            Some(true)
        );
    }
    assert_eq!(
        web2.image_tag_mutability(),
        Some(&ImageTagMutability::Mutable)
    );
    assert_eq!(
        web3.image_tag_mutability(),
        Some(&ImageTagMutability::ImmutableWithExclusion)
    );
    let excluded: Vec<&str> = web3
        .image_tag_mutability_exclusion_filters()
        .iter()
        .map(|f| f.filter())
        .collect();
    assert_eq!(excluded, vec!["latest", "buildcache"]);

    assert_eq!(
        ecr::tag_digest(&aws, "web2", "v1.2.3")
            .await
            .expect("describe"),
        None
    );
    let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;
    let put = aws
        .ecr
        .put_image()
        .repository_name("web2")
        .image_tag("v1.2.3")
        .image_manifest(manifest)
        .send()
        .await
        .expect("put image");
    let pushed = put
        .image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .expect("digest")
        .to_string();
    assert_eq!(
        ecr::tag_digest(&aws, "web2", "v1.2.3")
            .await
            .expect("describe"),
        Some(pushed)
    );
}

#[tokio::test]
async fn an_unreachable_docker_socket_is_an_error_naming_the_socket() {
    let err = build::connect_to(Path::new("/nonexistent/docker.sock"))
        .await
        .expect_err("no engine there");
    let text = err.to_string();
    assert!(
        text.contains("cannot reach the engine at /nonexistent/docker.sock"),
        "{text}"
    );
}

#[test]
fn latest_moves_only_once_the_deploy_succeeded() {
    let moto = MotoServer::start();
    let registry = Registry::start_with_auth(MOTO_USER, MOTO_PASSWORD);
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    rt.block_on(crate::support::moto::web1_service(&aws.ecs));
    let (_dir, ws) = unique_web1_workspace();
    let base = [
        ("INPUT_REGISTRY", host.as_str()),
        ("INPUT_REGISTRY-IS-ECR", "true"),
        ("INPUT_ECR-REPOSITORY", "web1"),
        ("INPUT_CREATE-REPOSITORY", "true"),
        ("INPUT_CLUSTER", "prod"),
        ("INPUT_SERVICE", "web1"),
    ];
    // The deploy fails after the push (moto cannot run the one-off task on EC2 without
    // instances): the version and sha- tags are pushed, `latest` is not moved.
    let mut failing = base.to_vec();
    failing.push(("INPUT_RUN-TASK-COMMAND", "migrate"));
    let first = run(
        &ws,
        "pr-merged-release-web1.json",
        &moto.endpoint(),
        &failing,
    );
    first.assert_code(1);
    assert_eq!(first.output("image-built"), Some("true"), "{first}");
    assert!(first.stdout.contains("RunTask"), "{first}");
    assert_eq!(
        registry_tags(&registry, "web1"),
        vec!["sha-1a2b3c4", "v1.2.3"],
        "latest stays where it was when the deploy fails:\n{first}"
    );
    // The same version deployed successfully (not waiting, so moto's rollout that never ends
    // does not matter): the existing image is reused and `latest` moves to it.
    let mut ok = base.to_vec();
    ok.push(("INPUT_WAIT-FOR-SERVICE-STABILITY", "false"));
    let second = run(&ws, "pr-merged-release-web1.json", &moto.endpoint(), &ok);
    second.assert_success();
    assert_eq!(second.output("image-built"), Some("false"), "{second}");
    assert_eq!(
        registry_tags(&registry, "web1"),
        vec!["latest", "sha-1a2b3c4", "v1.2.3"],
        "{second}"
    );
    assert_eq!(
        registry_digest(&registry, "web1", "latest"),
        registry_digest(&registry, "web1", "v1.2.3")
    );
    assert!(second.stdout.contains("moved "), "{second}");
}
