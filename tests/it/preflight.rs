//! The preflight: bad setups that a read-only look finds are refused with exit 1 and one
//! `::error::` before anything is written: no image built or pushed (the local registry holds no
//! repository, no ECR repository is created), no task definition registered, no task started, no
//! service updated (moto's state is read back after each run).
//!
//! moto plays the services, task definitions, CodeDeploy applications and groups, and ECR. It
//! drops a service's `deploymentConfiguration` strategy on CreateService (see bluegreen.rs), so
//! an ECS blue/green service without its load balancer settings is scripted (aws-smithy-mocks).

use std::path::{Path, PathBuf};

use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentController, DeploymentControllerType, DeploymentStrategy,
    LoadBalancer, Service,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use crate::support::registry::LocalImages;
use crate::support::{BinOutput, BinRun, MotoServer, Registry, aws_env, fixture, sdk_config};
use ecs_deploy::aws::Aws;

const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678";
const MOTO_USER: &str = "AWS";
const MOTO_PASSWORD: &str = "123456789012-auth-token";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3";

/// A merged `release/web1` PR in `workspace` against moto, with `inputs` as `INPUT_*`.
fn run(workspace: &Path, moto: &str, inputs: &[(&str, &str)]) -> BinOutput {
    let mut r = BinRun::new()
        .envs(aws_env(moto))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env(
            "GITHUB_EVENT_PATH",
            fixture("events/pr-merged-release-web1.json"),
        )
        .env("INPUT_CLUSTER", "prod");
    for (k, v) in inputs {
        r = r.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    r.run()
}

/// The one `::error::` line of a failed run (exactly one is written).
pub(crate) fn the_error(out: &BinOutput) -> String {
    let errors: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 1, "one ::error:: line:\n{out}");
    errors[0].to_string()
}

/// A fresh copy of the web1 app (Dockerfile, package.json), so a build would be really needed.
fn web1_workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp workspace");
    let ws = dir.path().canonicalize().expect("canonical workspace");
    let app = ws.join("apps/web1");
    std::fs::create_dir_all(&app).expect("apps/web1");
    for f in ["Dockerfile", "package.json", "index.html"] {
        std::fs::copy(fixture("monorepo/apps/web1").join(f), app.join(f)).expect("copy fixture");
    }
    (dir, ws)
}

/// True when the local registry holds any repository (something was pushed).
fn registry_has_repositories(registry: &Registry) -> bool {
    fn walk(dir: &Path) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let p = e.path();
                (p.file_name().is_some_and(|n| n == "repositories")
                    && std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_some()))
                    || (p.is_dir() && walk(&p))
            })
    }
    walk(&registry.storage_dir())
}

/// moto: cluster prod, task definition web1:1 (container web1, port 8000), and service `name`
/// with `controller`. Returns the task definition's ARN.
async fn moto_service(aws: &Aws, name: &str, controller: DeploymentControllerType) -> String {
    crate::support::moto::web1_service_with(&aws.ecs, name, Some(controller), Some(8000)).await
}

/// What moto holds after a run: task definition ARNs, the service's task definition, tasks.
async fn moto_state(aws: &Aws, service: &str) -> (Vec<String>, Option<String>, usize) {
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
        .services(service)
        .send()
        .await
        .expect("describe")
        .services()
        .first()
        .and_then(|s| s.task_definition().map(str::to_string));
    let tasks = aws
        .ecs
        .list_tasks()
        .cluster("prod")
        .send()
        .await
        .expect("list tasks")
        .task_arns()
        .len();
    (tds, svc, tasks)
}

#[test]
fn a_missing_service_is_refused_before_the_image_is_built_or_pushed() {
    let moto = MotoServer::start();
    let registry = Registry::start_with_auth(MOTO_USER, MOTO_PASSWORD);
    let host = registry.host();
    let _cleanup = LocalImages(format!("{host}/"));
    let (_dir, ws) = web1_workspace();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    rt.block_on(aws.ecs.create_cluster().cluster_name("prod").send())
        .expect("cluster");
    let out = run(
        &ws,
        &moto.endpoint(),
        &[
            ("registry", &host),
            ("registry-is-ecr", "true"),
            ("ecr-repository", "web1"),
            ("create-repository", "true"),
            ("service", "web1-missing"),
        ],
    );
    out.assert_code(1);
    let error = the_error(&out);
    assert!(
        error.contains("web1-missing") && error.contains("not found"),
        "{error}"
    );
    assert!(error.contains("check `cluster` and `service`"), "{error}");
    assert!(
        !out.stdout.contains("build context"),
        "nothing built:\n{out}"
    );
    assert!(
        !registry_has_repositories(&registry),
        "nothing pushed (no v1.2.3, latest or sha- tag):\n{out}"
    );
    let repos = rt.block_on(aws.ecr.describe_repositories().send());
    assert!(
        repos.map(|r| r.repositories().is_empty()).unwrap_or(true),
        "no ECR repository was created"
    );
    assert_eq!(out.output("status"), Some("failed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_codedeploy_application_or_group_or_a_service_input_it_cannot_apply_is_refused_before_the_one_off_task_starts()
 {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    let live = moto_codedeploy_service(&aws).await;
    for (input, value) in [
        ("codedeploy-application", "AppECS-prod-web1-typo"),
        ("codedeploy-deployment-group", "DgpECS-prod-web1-typo"),
        // A CodeDeploy service gets no UpdateService to carry the deploy action's service inputs.
        ("desired-count", "3"),
    ] {
        let out = run(
            &fixture("monorepo"),
            &moto.endpoint(),
            &[
                ("image", IMAGE),
                ("service", "web1"),
                ("run-task-command", "python manage.py migrate"),
                (input, value),
            ],
        );
        out.assert_code(1);
        let error = the_error(&out);
        assert!(error.contains(value) && error.contains(input), "{error}");
        let (tds, svc, tasks) = moto_state(&aws, "web1").await;
        assert_eq!(tds, vec![live.clone()], "nothing registered:\n{out}");
        assert_eq!(svc.as_deref(), Some(live.as_str()));
        assert_eq!(tasks, 0, "no one-off task started:\n{out}");
    }
}

/// web1 on moto as a CodeDeploy service, with its application and deployment group under the
/// default names: all at once (what CodeDeploy gives an ECS group; moto's own default is the
/// EC2 config OneAtATime) and no termination wait.
async fn moto_codedeploy_service(aws: &Aws) -> String {
    let live = moto_service(aws, "web1", DeploymentControllerType::CodeDeploy).await;
    aws.codedeploy
        .create_application()
        .application_name("AppECS-prod-web1")
        .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Ecs)
        .send()
        .await
        .expect("application");
    aws.codedeploy
        .create_deployment_group()
        .application_name("AppECS-prod-web1")
        .deployment_group_name("DgpECS-prod-web1")
        .deployment_config_name("CodeDeployDefault.ECSAllAtOnce")
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .ecs_services(
            aws_sdk_codedeploy::types::EcsService::builder()
                .cluster_name("prod")
                .service_name("web1")
                .build(),
        )
        .send()
        .await
        .expect("deployment group");
    live
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_inputs_on_a_codedeploy_group_that_ends_as_traffic_moves_are_refused_before_anything_is_registered()
 {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    let live = moto_codedeploy_service(&aws).await;
    let out = run(
        &fixture("monorepo"),
        &moto.endpoint(),
        &[
            ("image", IMAGE),
            ("service", "web1"),
            ("verify-url", "https://web1.example.com/health"),
        ],
    );
    out.assert_code(1);
    let error = the_error(&out);
    assert!(
        error.contains("deploys by CodeDeploy with CodeDeployDefault.ECSAllAtOnce")
            && error.contains("terminationWaitTimeInMinutes, is 0")
            && error.contains("set that wait to at least 1 minute on the group"),
        "{error}"
    );
    let (tds, svc, _) = moto_state(&aws, "web1").await;
    assert_eq!(tds, vec![live.clone()], "nothing registered:\n{out}");
    assert_eq!(svc.as_deref(), Some(live.as_str()));
    let deployments = aws
        .codedeploy
        .list_deployments()
        .application_name("AppECS-prod-web1")
        .deployment_group_name("DgpECS-prod-web1")
        .send()
        .await
        .expect("ListDeployments");
    assert!(
        deployments.deployments().is_empty(),
        "no deployment created:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_the_task_definition_lacks_a_kind_the_controller_refuses_and_a_bad_image_change_nothing()
 {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    let live = moto_service(&aws, "web1", DeploymentControllerType::Ecs).await;
    let cases: [Case; 4] = [
        (
            &[("image", IMAGE), ("container-name", "nope")],
            &["nope", "web1"],
        ),
        (
            &[("image", IMAGE), ("deployment", "codedeploy")],
            &["deployment: codedeploy", "CODE_DEPLOY controller"],
        ),
        (
            &[("image", IMAGE), ("deployment", "ecs-blue-green")],
            &["deployment: ecs-blue-green", "BLUE_GREEN, LINEAR or CANARY"],
        ),
        (
            &[("image", "registry.example.com/Web1:v1")],
            &[
                "input `image`",
                "registry.example.com/Web1:v1",
                "repository name",
            ],
        ),
    ];
    for (inputs, expected) in cases {
        let mut all = vec![("service", "web1")];
        all.extend_from_slice(inputs);
        let out = run(&fixture("monorepo"), &moto.endpoint(), &all);
        out.assert_code(1);
        let error = the_error(&out);
        for e in expected {
            assert!(error.contains(e), "{e:?} in {error}");
        }
        assert!(error.contains("preflight"), "{error}");
        let (tds, svc, _) = moto_state(&aws, "web1").await;
        assert_eq!(tds, vec![live.clone()], "nothing registered:\n{out}");
        assert_eq!(svc.as_deref(), Some(live.as_str()), "service untouched");
    }
    // A CODE_DEPLOY service refuses ecs-blue-green too.
    moto_service_only(&aws, "web2", &live).await;
    let out = run(
        &fixture("monorepo"),
        &moto.endpoint(),
        &[
            ("image", IMAGE),
            ("service", "web2"),
            ("container-name", "web1"),
            ("deployment", "ecs-blue-green"),
        ],
    );
    out.assert_code(1);
    let error = the_error(&out);
    assert!(
        error.contains("CODE_DEPLOY") && error.contains("deployment: ecs-blue-green"),
        "{error}"
    );
}

/// A bad setup: the inputs on top of `service: web1`, and what its error must say.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

/// A CODE_DEPLOY service `name` on task definition `td` (cluster prod exists).
pub(crate) async fn moto_service_only(aws: &Aws, name: &str, td: &str) {
    aws.ecs
        .create_service()
        .cluster("prod")
        .service_name(name)
        .task_definition(td)
        .desired_count(1)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::CodeDeploy)
                .build()
                .expect("controller"),
        )
        .send()
        .await
        .expect("service");
}

#[tokio::test]
async fn an_ecs_blue_green_service_without_its_load_balancer_settings_is_refused_in_the_preflight()
{
    // moto drops the strategy on CreateService: the service is scripted. The preflight reads it
    // and its task definition, and nothing else is answered (no write would be).
    let service = Service::builder()
        .service_name("web1")
        .status("ACTIVE")
        .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/web1:3")
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::BlueGreen)
                .bake_time_in_minutes(5)
                .build(),
        )
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(
                    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web1-blue/1",
                )
                .container_name("web1")
                .container_port(8000)
                .build(),
        )
        .build();
    let describe = mock!(aws_sdk_ecs::Client::describe_services).then_output(move || {
        aws_sdk_ecs::operation::describe_services::DescribeServicesOutput::builder()
            .services(service.clone())
            .build()
    });
    let live_td = serde_json::json!({"taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:3",
        "family": "web1", "revision": 3,
        "containerDefinitions": [{"name": "web1", "image": "r/web1:v1",
            "portMappings": [{"containerPort": 8000}]}]}})
    .to_string();
    let describe_td = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .sequence()
        .http_status(200, Some(live_td))
        .repeatedly()
        .build();
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &describe_td]);
    let aws = Aws::from_config(&sdk_config("http://127.0.0.1:9"))
        .with_ecs(ecs)
        .without_region();
    let plan = blue_green_plan();
    let err = ecs_deploy::preflight::check_deploy(&aws, &plan)
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("web1-blue/1")
            && err.contains("advancedConfiguration")
            && err.contains("alternateTargetGroupArn"),
        "{err}"
    );
    assert_eq!(describe.num_calls(), 1);
}

/// web1's plan on prod/web1 with `deployment: ecs-blue-green` and an image built elsewhere.
fn blue_green_plan() -> ecs_deploy::plan::AppPlan {
    crate::support::web1_plan(
        ecs_deploy::inputs::DeploymentChoice::EcsBlueGreen,
        &[("deployment", "ecs-blue-green")],
        IMAGE,
    )
}

/// The plan the binary would build for a merged release/web1 PR in `workspace`, with `inputs`.
fn plan_in(workspace: &Path, inputs: &[(&str, &str)]) -> ecs_deploy::plan::Plan {
    let inputs: Vec<(String, String)> = inputs
        .iter()
        .map(|(k, v)| (format!("INPUT_{}", k.to_uppercase()), v.to_string()))
        .collect();
    let env = |k: &str| -> Option<String> {
        match k {
            "GITHUB_EVENT_NAME" => Some("pull_request".into()),
            "GITHUB_EVENT_PATH" => Some(
                fixture("events/pr-merged-release-web1.json")
                    .display()
                    .to_string(),
            ),
            "GITHUB_WORKSPACE" => Some(workspace.display().to_string()),
            "GITHUB_REPOSITORY" => Some("acme/shop".into()),
            _ => inputs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        }
    };
    let sources = ecs_deploy::inputs::read_sources(["ecs-deploy"], &env).expect("sources");
    let settings = ecs_deploy::inputs::Settings::from_sources(&sources).expect("settings");
    let ecs_deploy::trigger::Decision::Deploy(trigger) =
        ecs_deploy::decide(&settings).expect("decision")
    else {
        panic!("the merged release PR deploys");
    };
    ecs_deploy::plan::build(&settings, &trigger).expect("plan")
}

#[test]
fn an_image_built_elsewhere_needs_no_package_json_and_its_tag_is_the_version() {
    let dir = tempfile::tempdir().expect("workspace");
    let plan = plan_in(
        dir.path(),
        &[
            ("image", "ghcr.io/acme/web1:v2.4.0"),
            ("cluster", "prod"),
            ("service", "web1"),
        ],
    );
    let app = &plan.apps[0];
    assert_eq!(app.app, "web1");
    assert_eq!(app.version.value, "2.4.0");
    assert_eq!(
        app.version_source.to_string(),
        "the image tag of ghcr.io/acme/web1:v2.4.0"
    );
    // A package.json, when there is one, still names the version.
    std::fs::write(dir.path().join("package.json"), r#"{"version": "2.4.1"}"#).expect("write");
    let plan = plan_in(dir.path(), &[("image", "ghcr.io/acme/web1:v2.4.0")]);
    assert_eq!(plan.apps[0].version.value, "2.4.1");
}

#[test]
fn an_appspec_at_the_workspace_root_is_used_when_none_is_named() {
    let dir = tempfile::tempdir().expect("workspace");
    std::fs::write(dir.path().join("package.json"), r#"{"version": "1.2.3"}"#).expect("write");
    let spec = fixture("appspecs/web1-appspec.yml");
    std::fs::copy(&spec, dir.path().join("appspec.yaml")).expect("copy appspec");
    let inputs = [("image", IMAGE), ("cluster", "prod"), ("service", "web1")];
    let plan = plan_in(dir.path(), &inputs);
    let (path, text) = plan.apps[0]
        .deploy
        .as_ref()
        .and_then(|d| d.appspec_file.clone())
        .expect("the root appspec.yaml is picked up");
    assert!(path.ends_with("appspec.yaml"), "{path:?}");
    assert_eq!(text, std::fs::read_to_string(spec).expect("fixture"));
    // A named one wins.
    std::fs::copy(
        fixture("appspecs/web1-appspec.json"),
        dir.path().join("mine.json"),
    )
    .expect("copy");
    let mut named = inputs.to_vec();
    named.push(("codedeploy-appspec", "mine.json"));
    let plan = plan_in(dir.path(), &named);
    let path = plan.apps[0]
        .deploy
        .as_ref()
        .and_then(|d| d.appspec_file.clone());
    assert!(path.expect("named").0.ends_with("mine.json"));
}

#[test]
fn input_paths_that_lead_out_of_the_workspace_are_refused_before_use() {
    let (_dir, ws) = web1_workspace();
    let outside = tempfile::tempdir().expect("outside");
    let secret = outside.path().join("secret.json");
    std::fs::write(&secret, r#"{"version": "9.9.9", "family": "x"}"#).expect("write");
    std::os::unix::fs::symlink("/proc/self/environ", ws.join("Dockerfile.link")).expect("link");
    std::os::unix::fs::symlink(&secret, ws.join("td.json")).expect("link");
    std::os::unix::fs::symlink(&secret, ws.join("appspec.yaml")).expect("link");
    let up = format!(
        "../{}/secret.json",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    let abs = secret.display().to_string();
    let cases: [(&str, &str); 6] = [
        ("dockerfile", "Dockerfile.link"),
        ("package-json", &up),
        ("package-json", &abs),
        ("task-definition", "td.json"),
        ("config", &abs),
        ("codedeploy-appspec", "appspec.yaml"),
    ];
    for (input, value) in cases {
        let mut inputs = vec![(input, value)];
        if input != "dockerfile" && input != "package-json" {
            inputs.extend([("image", IMAGE), ("service", "web1")]);
        }
        let out = run(&ws, "http://127.0.0.1:9", &inputs);
        out.assert_code(1);
        let error = the_error(&out);
        assert!(
            error.contains(&format!("input `{input}`"))
                && error.contains("must be inside the workspace"),
            "{input}={value}: {error}"
        );
        assert!(
            !out.stdout.contains("9.9.9"),
            "nothing of the file was read:\n{out}"
        );
    }
    // The root appspec.yaml is found by default, and refused the same way when it leads out.
    let out = run(
        &ws,
        "http://127.0.0.1:9",
        &[("image", IMAGE), ("service", "web1")],
    );
    out.assert_code(1);
    assert!(
        the_error(&out).contains("input `codedeploy-appspec`"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verify_alarm_that_does_not_exist_is_refused_before_anything_is_registered() {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    let live = moto_service(&aws, "web1", DeploymentControllerType::Ecs).await;
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name("web1-5xx")
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(
            aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
        )
        .send()
        .await
        .expect("PutMetricAlarm on moto");
    let out = run(
        &fixture("monorepo"),
        &moto.endpoint(),
        &[
            ("image", IMAGE),
            ("service", "web1"),
            ("verify-alarms", "web1-5xx, web1-p99-typo"),
        ],
    );
    out.assert_code(1);
    let error = the_error(&out);
    assert!(
        error.contains(
            "verify-alarms: no CloudWatch alarm named web1-p99-typo in this account and region"
        ),
        "{error}"
    );
    assert!(
        !error.contains("web1-5xx,"),
        "the existing one is not named: {error}"
    );
    let (tds, svc, _) = moto_state(&aws, "web1").await;
    assert_eq!(tds, vec![live.clone()], "nothing registered:\n{out}");
    assert_eq!(svc.as_deref(), Some(live.as_str()), "service untouched");
    assert_eq!(out.output("verification"), Some("skipped"));
}

/// Ten rolling services of cluster prod from a config file, each deploying an image built
/// elsewhere; the run's binary against `endpoint`.
fn ten_services(endpoint: &str, ws: &Path, dry_run: bool) -> BinOutput {
    std::fs::create_dir_all(ws.join(".github")).expect("workspace");
    std::fs::write(
        ws.join("package.json"),
        r#"{"name":"shop","version":"1.2.3"}"#,
    )
    .expect("package.json");
    let mut config =
        String::from("defaults:\n  cluster: prod\n  package-json: package.json\napps:\n");
    for i in 0..10 {
        config.push_str(&format!(
            "  web{i}:\n    image: registry.example.com/web{i}:v1.2.3\n    service: web{i}\n    container-name: web{i}\n"
        ));
    }
    std::fs::write(ws.join(".github/ecs-deploy.yml"), config).expect("config");
    BinRun::new()
        .envs(aws_env(endpoint))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("GITHUB_WORKSPACE", ws)
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env(
            "GITHUB_EVENT_PATH",
            fixture("events/workflow-dispatch-latest.json"),
        )
        .env("INPUT_CONFIG", ".github/ecs-deploy.yml")
        .env("INPUT_APP", "all")
        .env("INPUT_DRY-RUN", if dry_run { "true" } else { "false" })
        .run()
}

/// The scripted ECS counts calls by operation and plays rollouts that complete on a timeline,
/// which moto cannot (its rollouts never move).
#[tokio::test(flavor = "multi_thread")]
async fn the_preflight_reads_ten_services_of_a_cluster_in_one_call_and_a_run_stays_under_one_a_second()
 {
    use crate::support::scripted_ecs::{Script, ScriptedEcs};
    let names: Vec<String> = (0..10).map(|i| format!("web{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ecs = ScriptedEcs::start(
        &refs,
        Script {
            rollout: std::time::Duration::from_secs(4),
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = ecs.endpoint();
    let ws = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || ten_services(&endpoint, &ws, true))
        .await
        .expect("dry run");
    out.assert_success();
    assert_eq!(
        ecs.count("DescribeServices"),
        1,
        "one call for ten services:\n{out}"
    );
    assert_eq!(
        ecs.count("RegisterTaskDefinition") + ecs.count("UpdateService"),
        0
    );

    let ecs = ScriptedEcs::start(
        &refs,
        Script {
            rollout: std::time::Duration::from_secs(4),
            ..Default::default()
        },
    )
    .await;
    let endpoint = ecs.endpoint();
    let ws = dir.path().to_path_buf();
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || ten_services(&endpoint, &ws, false))
        .await
        .expect("run");
    let secs = started.elapsed().as_secs_f64();
    out.assert_success();
    assert_eq!(ecs.count("UpdateService"), 10, "{out}");
    let calls = ecs.calls();
    let first_write = calls
        .iter()
        .position(|(op, _)| op == "RegisterTaskDefinition" || op == "UpdateService")
        .expect("a write");
    let before = calls[..first_write]
        .iter()
        .filter(|(op, _)| op == "DescribeServices")
        .count();
    assert_eq!(before, 1, "the preflight's DescribeServices");
    // One a second at most: calls at least a second apart, so n calls take n - 1 seconds.
    let describes = ecs.count("DescribeServices");
    assert!(
        describes as f64 <= secs + 1.0,
        "{describes} DescribeServices in {secs:.1} s: more than one a second"
    );
}
