//! The action image run exactly as GitHub's runner runs a container action: the local action
//! image (scripts/local-action-image.sh: the static binary and the CA bundle in a `FROM scratch`
//! image, like the published one) started with `docker run`, the host's Docker socket, the
//! workspace, workflow and file-command folders mounted, `INPUT_*`/`GITHUB_*` in its env and
//! `--network host` to reach the test bed on 127.0.0.1. It builds the fixture app in the host's
//! engine, pushes it to a real registry behind moto's ECR login, deploys it to moto's ECS, and
//! the outputs appear in the mounted `GITHUB_OUTPUT` file.

use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode, PortMapping};

use crate::support::action_image::{RunnerStep, action_image};
use crate::support::registry::LocalImages;
use crate::support::{MotoServer, Registry, fixture, sdk_config};

const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678";

/// AWS settings of the container: dummy credentials, moto as every endpoint, no IMDS.
fn aws(moto: &MotoServer) -> Vec<(String, String)> {
    crate::support::aws_env(&moto.endpoint())
        .into_iter()
        .chain([
            ("AWS_MAX_ATTEMPTS".to_string(), "2".to_string()),
            ("GITHUB_SHA".to_string(), SHA.to_string()),
        ])
        .collect()
}

/// An EC2 web service `web1` in cluster `prod` running `image`; returns its task definition ARN.
async fn web1_service(ecs: &Client, image: &str) -> String {
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("create cluster");
    let container = ContainerDefinition::builder()
        .name("web1")
        .image(image)
        .essential(true)
        .memory_reservation(128)
        .port_mappings(
            PortMapping::builder()
                .container_port(8000)
                .host_port(0)
                .build(),
        )
        .build();
    let arn = ecs
        .register_task_definition()
        .family("web1")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(container)
        .send()
        .await
        .expect("register task definition")
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("task definition arn")
        .to_string();
    ecs.create_service()
        .cluster("prod")
        .service_name("web1")
        .task_definition(&arn)
        .desired_count(2)
        .send()
        .await
        .expect("create service");
    arn
}

#[tokio::test]
async fn the_action_image_run_as_the_runner_runs_it_builds_pushes_and_deploys_and_writes_the_mounted_outputs()
 {
    let image = action_image();
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let registry = Registry::start_with_auth("AWS", "123456789012-auth-token");
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let ecs = Client::new(&sdk_config(&moto.endpoint()));
    let first = web1_service(&ecs, &format!("{host}/web1:v1.2.2")).await;

    let step = RunnerStep::new(
        &fixture("monorepo"),
        "pull_request",
        &fixture("events/pr-merged-release-web1.json"),
    );
    // Its own page, so BuildKit cannot share this build's steps with another test's build.
    std::fs::write(
        step.workspace().join("apps/web1/index.html"),
        format!("<p>web1 in the action container {}</p>\n", moto.port()),
    )
    .expect("index.html");
    let step = step.envs(aws(&moto)).envs([
        ("INPUT_REGISTRY", host.as_str()),
        ("INPUT_ECR-REPOSITORY", "web1"),
        ("INPUT_REGISTRY-IS-ECR", "true"),
        ("INPUT_CREATE-REPOSITORY", "true"),
        ("INPUT_CLUSTER", "prod"),
        ("INPUT_SERVICE", "web1"),
        ("INPUT_CONTAINER-NAME", "web1"),
        ("INPUT_WAIT-FOR-MINUTES", "2"),
    ]);
    let out = step.run(image, Duration::from_secs(300));
    out.assert_success();

    // The outputs came back through the mounted file-commands folder.
    let pushed = format!("{host}/web1:v1.2.3");
    let second = "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:2";
    assert_eq!(out.output("app"), Some("web1"), "{out}");
    assert_eq!(out.output("version"), Some("1.2.3"), "{out}");
    assert_eq!(out.output("image"), Some(pushed.as_str()), "{out}");
    assert_eq!(out.output("image-built"), Some("true"), "{out}");
    assert_eq!(out.output("task-definition-arn"), Some(second), "{out}");
    assert_eq!(
        out.output("previous-task-definition-arn"),
        Some(first.as_str())
    );
    assert_eq!(out.output("deployment-kind"), Some("rolling"), "{out}");
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    assert_eq!(out.output("skipped"), Some("false"), "{out}");
    // The digest output is the registry's own.
    let digest = out.output("image-digest").unwrap_or_default().to_string();
    assert!(digest.starts_with("sha256:"), "{out}");
    let manifest = reqwest::Client::new()
        .get(format!("{}/v2/web1/manifests/v1.2.3", registry.url()))
        .basic_auth("AWS", Some("123456789012-auth-token"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .await
        .expect("registry answers");
    assert_eq!(
        manifest
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok()),
        Some(digest.as_str())
    );
    // The job summary reached the mounted file too; the log used the runner's commands.
    assert!(out.summary.contains("web1"), "{out}");
    assert!(out.summary.contains("1.2.3"), "{out}");
    assert!(out.stdout.contains("::group::"), "{out}");

    // moto's service now runs the new revision, whose container has the pushed image.
    let service = ecs
        .describe_services()
        .cluster("prod")
        .services("web1")
        .send()
        .await
        .expect("describe services");
    assert_eq!(service.services()[0].task_definition(), Some(second));
    let registered = ecs
        .describe_task_definition()
        .task_definition(second)
        .send()
        .await
        .expect("describe task definition");
    let containers = registered
        .task_definition()
        .map(|t| t.container_definitions())
        .unwrap_or_default();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].image(), Some(pushed.as_str()));
}

#[test]
fn the_action_image_skips_a_pr_closed_without_merging_and_says_why_in_the_mounted_outputs() {
    let image = action_image();
    // No AWS endpoint that answers: a skip must not need one.
    let out = RunnerStep::new(
        &fixture("monorepo"),
        "pull_request",
        &fixture("events/pr-closed-unmerged.json"),
    )
    .envs([
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("GITHUB_SHA", SHA),
        ("INPUT_SERVICE", "web1"),
    ])
    .run(image, Duration::from_secs(60));
    out.assert_success();
    assert_eq!(out.output("skipped"), Some("true"), "{out}");
    assert_eq!(out.output("status"), Some("skipped"), "{out}");
    assert!(
        out.output("skip-reason")
            .is_some_and(|r| r.contains("closed without merging")),
        "{out}"
    );
}

#[test]
fn the_action_image_holds_only_the_binary_the_ca_bundle_tmp_and_its_users() {
    let image = action_image();
    let created = std::process::Command::new("docker")
        .args(["create", image])
        .output()
        .expect("docker create");
    assert!(created.status.success(), "docker create {image} failed");
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let export = std::process::Command::new("sh")
        .args(["-c", &format!("docker export {id} | tar -t")])
        .output()
        .expect("docker export");
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &id])
        .output();
    let mut files: Vec<String> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        // docker export adds the engine's own mount points and env files.
        .filter(|l| !["dev", "proc", "sys", "etc", ".dockerenv"].contains(&l.as_str()))
        .filter(|l| !l.starts_with("dev/") && !l.starts_with("proc/") && !l.starts_with("sys/"))
        .filter(|l| {
            !["etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab"].contains(&l.as_str())
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            "etc/group",
            "etc/passwd",
            "etc/ssl",
            "etc/ssl/certs",
            "etc/ssl/certs/ca-certificates.crt",
            "tmp",
            "usr",
            "usr/local",
            "usr/local/bin",
            "usr/local/bin/ecs-deploy",
        ],
        "unexpected files in {image}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_action_image_rolls_a_merged_release_out_to_an_eks_deployment_commits_the_manifest_and_tells_discord()
 {
    use crate::kubernetes::{
        GITHUB_TOKEN, MANIFEST, NEW_IMAGE, OLD_IMAGE, assert_manifest_commit, assert_rolled_out,
        eks_cluster, mount_manifest_commit, presigned_url, workspace,
    };
    use crate::support::kube_api::{KubeApi, Setup};
    let image = action_image();
    // moto plays eks:DescribeCluster; the Kubernetes API is the scripted one (no API server
    // can be installed here); GitHub and Discord are one recording server.
    let moto = MotoServer::start();
    eks_cluster(&moto, "shop").await;
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let github = crate::support::recording_server().await;
    mount_manifest_commit(&github).await;
    let discord = format!("{}/api/webhooks/1/discordHOOKsecret42", github.uri());
    let (_dir, ws) = workspace();
    let step = RunnerStep::new(
        &ws,
        "pull_request",
        &fixture("events/pr-merged-release-web1.json"),
    )
    .envs(aws(&moto))
    .envs([
        ("INPUT_IMAGE", NEW_IMAGE),
        ("INPUT_EKS-CLUSTER", "shop"),
        ("INPUT_KUBERNETES-NAMESPACE", "shop"),
        ("INPUT_KUBERNETES-MANIFEST", "deploy/k8s.yaml"),
        ("INPUT_GITHUB-TOKEN", GITHUB_TOKEN),
        ("INPUT_DISCORD-WEBHOOK-URL", discord.as_str()),
        ("INPUT_WAIT-FOR-MINUTES", "2"),
    ])
    .envs([
        ("ECS_DEPLOY_KUBERNETES_API_URL", api.url()),
        ("GITHUB_API_URL", github.uri()),
    ]);
    let out = step.run(image, Duration::from_secs(120));
    assert_rolled_out(&out);
    assert!(out.summary.contains("web1"), "{out}");
    // The Deployment runs the new image; every request carried an EKS token.
    let d = api.deployment();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        NEW_IMAGE
    );
    assert_eq!(d["status"]["availableReplicas"], 3, "{d}");
    let patches = api.patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    for r in api.requests() {
        presigned_url(r.authorization.as_deref());
    }
    // The manifest commit went out with the checked-out file's blob sha; the mounted workspace
    // follows it.
    assert_manifest_commit(&github).await;
    assert_eq!(
        std::fs::read_to_string(step.workspace().join("deploy/k8s.yaml")).expect("manifest"),
        MANIFEST.replace("web1:v1.2.2 # bumped", "web1:v1.2.3 # bumped")
    );
    let told = crate::support::received_json(&github, "/api/webhooks/1/discordHOOKsecret42").await;
    assert_eq!(told.len(), 1, "one Discord message: {told:?}");
    let text = told[0].to_string();
    assert!(text.contains("web1") && text.contains("1.2.3"), "{text}");
}
