//! Proves the test bed itself works for real (moto ECS/ECR, the local registry with and
//! without auth, wiremock recording, the binary runner), so other tests can rely on it.

use crate::support::{
    BinRun, MotoServer, Registry, aws_env, parse_github_output, received_json, recording_server,
    sdk_config,
};
use base64::Engine as _;

#[tokio::test]
async fn testbed_moto_ecs_creates_and_lists_a_cluster() {
    let moto = MotoServer::start();
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&moto.endpoint()));

    let created = ecs
        .create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("CreateCluster against moto");
    let arn = created
        .cluster()
        .and_then(|c| c.cluster_arn())
        .expect("cluster arn");
    assert_eq!(arn, "arn:aws:ecs:us-east-1:123456789012:cluster/prod");

    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    assert_eq!(listed.cluster_arns(), [arn.to_string()]);

    moto.reset();
    let listed = ecs
        .list_clusters()
        .send()
        .await
        .expect("ListClusters after reset");
    assert!(
        listed.cluster_arns().is_empty(),
        "reset must wipe moto's state"
    );
}

#[tokio::test]
async fn testbed_moto_runs_services_when_told_by_env() {
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&moto.endpoint()));
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("CreateCluster");
    let container = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name("web1")
        .image("web1:1.0.0")
        .memory(128)
        .build();
    ecs.register_task_definition()
        .family("web1")
        .container_definitions(container)
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster("prod")
        .service_name("web1")
        .task_definition("web1")
        .desired_count(2)
        .send()
        .await
        .expect("CreateService");

    let described = ecs
        .describe_services()
        .cluster("prod")
        .services("web1")
        .send()
        .await
        .expect("DescribeServices");
    let service = &described.services()[0];
    assert_eq!(
        service.running_count(),
        2,
        "MOTO_ECS_SERVICE_RUNNING reaches moto"
    );
}

#[tokio::test]
async fn testbed_moto_ecr_token_opens_the_local_registry() {
    let moto = MotoServer::start();
    let ecr = aws_sdk_ecr::Client::new(&sdk_config(&moto.endpoint()));
    let auth = ecr
        .get_authorization_token()
        .send()
        .await
        .expect("GetAuthorizationToken against moto");
    let data = &auth.authorization_data()[0];
    let token = data.authorization_token().expect("authorizationToken");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("token is base64");
    let decoded = String::from_utf8(decoded).expect("token is UTF-8");
    let (user, password) = decoded.split_once(':').expect("token is user:password");
    assert_eq!(user, "AWS");
    assert_eq!(password, "123456789012-auth-token");

    // The same credentials really open a registry started with them.
    let registry = Registry::start_with_auth(user, password);
    let http = reqwest::Client::new();
    let catalog = format!("{}/v2/_catalog", registry.url());
    let status = http
        .get(&catalog)
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("GET /v2/_catalog")
        .status();
    assert_eq!(status, 200, "registry log:\n{}", registry.log());
}

#[tokio::test]
async fn testbed_registry_serves_catalog() {
    let registry = Registry::start();
    assert!(registry.host().starts_with("127.0.0.1:"));
    let body: serde_json::Value = reqwest::get(format!("{}/v2/_catalog", registry.url()))
        .await
        .expect("GET /v2/_catalog")
        .error_for_status()
        .expect("catalog answers 200")
        .json()
        .await
        .expect("catalog is JSON");
    assert_eq!(body, serde_json::json!({ "repositories": [] }));
}

#[tokio::test]
async fn testbed_registry_with_auth_refuses_anonymous_and_wrong_password() {
    let registry = Registry::start_with_auth("AWS", "123456789012-auth-token");
    assert_eq!(
        registry.credentials(),
        Some(("AWS", "123456789012-auth-token"))
    );
    let http = reqwest::Client::new();
    let catalog = format!("{}/v2/_catalog", registry.url());

    let anonymous = http.get(&catalog).send().await.expect("anonymous GET");
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous
        .headers()
        .get("www-authenticate")
        .expect("401 has a challenge");
    assert!(challenge.to_str().unwrap_or_default().starts_with("Basic"));

    let wrong = http
        .get(&catalog)
        .basic_auth("AWS", Some("wrong"))
        .send()
        .await
        .expect("GET with a wrong password");
    assert_eq!(wrong.status(), 401);

    let right = http
        .get(&catalog)
        .basic_auth("AWS", Some("123456789012-auth-token"))
        .send()
        .await
        .expect("GET with the right password");
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn testbed_wiremock_records_post_bodies() {
    let server = recording_server().await;
    let url = format!("{}/services/T000/B000/XXX", server.uri());
    let status = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({ "text": "deployed web1 1.2.3" }))
        .send()
        .await
        .expect("POST to wiremock")
        .status();
    assert_eq!(status, 200);
    assert_eq!(
        received_json(&server, "/services/T000/B000/XXX").await,
        [serde_json::json!({ "text": "deployed web1 1.2.3" })]
    );
}

#[test]
fn testbed_aws_env_points_everything_at_the_endpoint() {
    let env = aws_env("http://127.0.0.1:1");
    let get = |k: &str| {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("AWS_ENDPOINT_URL"), Some("http://127.0.0.1:1"));
    assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));
    assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("testing"));
    assert_eq!(get("AWS_REGION"), Some("us-east-1"));
}

#[test]
fn testbed_parses_github_output_heredocs_and_plain_lines() {
    let text = "version=1.2.3\nresults<<ghadelimiter_1\n[{\"app\":\"web1\"},\n{\"app\":\"web2\"}]\nghadelimiter_1\n\
                empty<<EOF\nEOF\nimage=repo:tag=x\nversion=1.2.4\n";
    let outputs = parse_github_output(text);
    assert_eq!(outputs["version"], "1.2.4", "a later line wins");
    assert_eq!(
        outputs["results"],
        "[{\"app\":\"web1\"},\n{\"app\":\"web2\"}]"
    );
    assert_eq!(outputs["empty"], "");
    assert_eq!(outputs["image"], "repo:tag=x");
}

#[test]
fn testbed_runner_gives_a_clean_env_and_reads_outputs_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = r##"
        echo "out:$FOO:${AWS_PROFILE:-unset}:$(pwd)"
        echo "err" >&2
        echo "plain=one" >> "$GITHUB_OUTPUT"
        printf 'multi<<EOF\nline1\nline2\nEOF\n' >> "$GITHUB_OUTPUT"
        echo "# Summary" >> "$GITHUB_STEP_SUMMARY"
        exit 3
    "##;
    let run = BinRun::new()
        .program("/bin/sh")
        .args(["-c", script])
        .env("FOO", "bar")
        .cwd(dir.path())
        .run();
    run.assert_code(3);
    let cwd = dir.path().canonicalize().expect("canonical temp dir");
    assert_eq!(
        run.stdout.trim(),
        format!("out:bar:unset:{}", cwd.display())
    );
    assert_eq!(run.stderr.trim(), "err");
    assert_eq!(run.output("plain"), Some("one"));
    assert_eq!(run.output("multi"), Some("line1\nline2"));
    assert_eq!(run.summary, "# Summary\n");
}

#[test]
fn testbed_docker_engine_logs_in_and_pushes_to_local_registry() {
    // The machine's Docker engine treats 127.0.0.0/8 registries as insecure-allowed,
    // so a FROM-scratch image pushes over plain HTTP with moto's ECR credentials.
    let registry = Registry::start_with_auth("AWS", "123456789012-auth-token");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /\n",
    )
    .expect("write Dockerfile");
    std::fs::write(dir.path().join("hello.txt"), "hi\n").expect("write hello.txt");
    let config = dir.path().join("docker-config");
    let image = format!("{}/testbed:{}", registry.host(), registry.port());
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .arg("--config")
            .arg(&config)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run the docker CLI (is Docker installed?)");
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}\n{}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            registry.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let login = ["login", "-u", "AWS", "-p", "123456789012-auth-token"];
    docker(&[&login[..], &[registry.host().as_str()]].concat());
    docker(&["build", "-q", "-t", &image, "."]);
    let pushed = docker(&["push", &image]);
    docker(&["rmi", &image]);
    assert!(pushed.contains("digest: sha256:"), "push output: {pushed}");
    let manifests = registry
        .storage_dir()
        .join("docker/registry/v2/repositories/testbed");
    assert!(
        manifests.is_dir(),
        "the registry stored the pushed repository"
    );
}
