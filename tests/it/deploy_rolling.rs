//! The rolling deployment, end to end.
//!
//! Against moto (real ECS API shapes and CRUD): the binary registers the new revision, updates
//! the service and sets its outputs; a re-run of the same version registers nothing.
//!
//! Against a scripted ECS (aws-smithy-mocks): the sequences moto cannot play, because moto
//! never moves a rollout (no IN_PROGRESS → COMPLETED over time, no circuit breaker FAILED, no
//! vanishing deployment, no throttling). These tests run on tokio's paused clock, so minutes of
//! rollout take no wall time and timings are exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::describe_services::{DescribeServicesError, DescribeServicesOutput};
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, ContainerDefinition, Deployment, DeploymentRolloutState, HostEntry,
    KeyValuePair, LogConfiguration, LogDriver, NetworkConfiguration, NetworkMode, PortMapping,
    Service, ServiceEvent, Task, TaskStopCode,
};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::poll::Poller;
use ecs_deploy::deploy::{Prepared, rolling};
use ecs_deploy::inputs::DeploymentChoice;
use ecs_deploy::outcome::{Outcome, Status};
use ecs_deploy::plan::{AppPlan, DeployPlan};

use crate::support::{
    BinOutput, BinRun, MotoServer, aws_env, dispatch_run, fixture, repo_root, sdk_config,
    slow_server, web1_deploy,
};

const ACCOUNT_TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition";
const NEW_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3";

// ---------------------------------------------------------------------------------------------
// moto: the real request/response shapes.

fn ecs_client(moto: &MotoServer) -> Client {
    Client::new(&sdk_config(&moto.endpoint()))
}

/// Runs the binary for a workflow_dispatch of the monorepo fixture with `inputs`.
fn deploy_bin(moto: &MotoServer, inputs: &[(&str, &str)]) -> BinOutput {
    deploy_bin_with(moto, inputs, &[])
}

/// [`deploy_bin`] with more environment (`RUNNER_TEMP`, ...).
fn deploy_bin_with(moto: &MotoServer, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> BinOutput {
    run_deploy_bin(&fixture("monorepo"), moto, inputs, env)
}

/// [`deploy_bin`] in another workspace.
fn deploy_bin_in(workspace: &Path, moto: &MotoServer, inputs: &[(&str, &str)]) -> BinOutput {
    run_deploy_bin(workspace, moto, inputs, &[])
}

/// The binary for a workflow_dispatch in `workspace` against moto, with `inputs` and `env`.
fn run_deploy_bin(
    workspace: &Path,
    moto: &MotoServer,
    inputs: &[(&str, &str)],
    env: &[(&str, &str)],
) -> BinOutput {
    let mut r = dispatch_run(&moto.endpoint())
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("INPUT_CLUSTER", "prod")
        .envs(env.iter().copied());
    for (k, v) in inputs {
        r = r.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    r.run()
}

/// A realistic EC2 web app: bridge networking, dynamic host port, soft memory limit.
async fn create_bridge_service(ecs: &Client) -> String {
    create_bridge_service_named(ecs, "web1").await
}

async fn create_bridge_service_named(ecs: &Client, name: &str) -> String {
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    let container = ContainerDefinition::builder()
        .name(name)
        .image(format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v1.2.2"
        ))
        .essential(true)
        .memory_reservation(256)
        .cpu(256)
        .port_mappings(
            PortMapping::builder()
                .container_port(8000)
                .host_port(0)
                .protocol("tcp".into())
                .build(),
        )
        .environment(
            KeyValuePair::builder()
                .name("DJANGO_SETTINGS_MODULE")
                .value("shop.settings.prod")
                .build(),
        )
        .extra_hosts(
            HostEntry::builder()
                .hostname("db")
                .ip_address("10.0.0.5")
                .build()
                .unwrap(),
        )
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", format!("/ecs/{name}"))
                .options("awslogs-region", "us-east-1")
                .build()
                .unwrap(),
        )
        .build();
    let arn = ecs
        .register_task_definition()
        .family(name)
        .network_mode(NetworkMode::Bridge)
        .container_definitions(container)
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    ecs.create_service()
        .cluster("prod")
        .service_name(name)
        .task_definition(&arn)
        .desired_count(2)
        .send()
        .await
        .unwrap();
    arn
}

/// One EC2 Query API call to moto (awsvpc services need a real subnet and security group);
/// returns the text of the first `<field>` of the answer. The crate has no EC2 SDK client,
/// and two calls do not justify one.
async fn ec2(moto: &MotoServer, params: &[(&str, &str)], field: &str) -> String {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.push(("Version", "2016-11-15"));
    let form = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&");
    let body = reqwest::Client::new()
        .post(moto.endpoint())
        // moto routes by the credential scope's service and does not check the signature.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open = format!("<{field}>");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        + open.len();
    let end = start + body[start..].find('<').unwrap();
    body[start..end].to_string()
}

async fn revisions(ecs: &Client, family: &str) -> Vec<String> {
    ecs.list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec()
}

async fn containers(ecs: &Client, arn: &str) -> Vec<ContainerDefinition> {
    ecs.describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .container_definitions()
        .to_vec()
}

async fn service_task_definition(ecs: &Client, service: &str) -> String {
    ecs.describe_services()
        .cluster("prod")
        .services(service)
        .send()
        .await
        .unwrap()
        .services()[0]
        .task_definition()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_new_image_on_an_ec2_bridge_service_registers_a_revision_where_only_the_image_changed() {
    // MOTO_ECS_SERVICE_RUNNING: moto reports the service's tasks as running, so the wait ends.
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let ecs = ecs_client(&moto);
    let first = create_bridge_service(&ecs).await;

    let out = deploy_bin(
        &moto,
        &[
            ("package-json", "apps/web1/package.json"),
            ("image", NEW_IMAGE),
            ("service", "web1"),
            ("container-name", "web1"),
        ],
    );
    out.assert_success();
    let second = format!("{ACCOUNT_TD}/web1:2");
    assert_eq!(
        out.output("task-definition-arn"),
        Some(second.as_str()),
        "{out}"
    );
    assert_eq!(
        out.output("previous-task-definition-arn"),
        Some(first.as_str())
    );
    assert_eq!(out.output("deployment-kind"), Some("rolling"));
    assert_eq!(out.output("status"), Some("succeeded"));
    assert!(
        out.output("deployment-id")
            .is_some_and(|d| d.starts_with("ecs-svc/")),
        "{out}"
    );
    assert!(out.stdout.contains("completed"), "{out}");

    // Field by field: the new revision is the old one with the image swapped.
    let before = containers(&ecs, &first).await;
    let after = containers(&ecs, &second).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].image(), Some(NEW_IMAGE));
    let mut expected = before[0].clone();
    expected.image = Some(NEW_IMAGE.to_string());
    assert_eq!(after[0], expected);
    assert_eq!(after[0].memory_reservation(), Some(256));
    assert_eq!(after[0].port_mappings()[0].host_port(), Some(0));
    assert_eq!(service_task_definition(&ecs, "web1").await, second);

    // The same version again: nothing registered, nothing updated, still a success.
    let again = deploy_bin(
        &moto,
        &[
            ("package-json", "apps/web1/package.json"),
            ("image", NEW_IMAGE),
            ("service", "web1"),
            ("container-name", "web1"),
        ],
    );
    again.assert_success();
    assert_eq!(
        revisions(&ecs, "web1").await,
        vec![first.clone(), second.clone()]
    );
    assert_eq!(again.output("task-definition-arn"), Some(second.as_str()));
    assert_eq!(again.output("status"), Some("succeeded"));
    assert!(
        again.stdout.contains("nothing registered, nothing updated"),
        "{again}"
    );
}

#[tokio::test]
async fn a_fargate_awsvpc_service_deploys_the_task_definition_file_and_a_rerun_registers_nothing() {
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "1")]);
    let ecs = ecs_client(&moto);
    let vpc = ec2(
        &moto,
        &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
        "vpcId",
    )
    .await;
    let subnet = ec2(
        &moto,
        &[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", "10.0.1.0/24"),
        ],
        "subnetId",
    )
    .await;
    let sg = ec2(
        &moto,
        &[
            ("Action", "CreateSecurityGroup"),
            ("VpcId", &vpc),
            ("GroupName", "web2"),
            ("GroupDescription", "web2"),
        ],
        "groupId",
    )
    .await;
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    // The live service runs an older, hand-registered revision.
    let old = ecs
        .register_task_definition()
        .family("web2")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web2")
                .image("web2:old")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    ecs.create_service()
        .cluster("prod")
        .service_name("web2")
        .task_definition(&old)
        .desired_count(1)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets(&subnet)
                        .security_groups(&sg)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let inputs = [
        ("package-json", "apps/web2/package.json"),
        (
            "image",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web2:v2.1.0",
        ),
        ("service", "web2"),
        ("container-name", "web2"),
        ("task-definition", "deploy/web2-task-definition.json"),
        ("deployment", "rolling"),
        ("environment-variables", "FEATURE_X=on"),
    ];
    let temp = tempfile::tempdir().expect("RUNNER_TEMP");
    let runner_temp = temp.path().to_str().expect("utf-8 temp path");
    let out = deploy_bin_with(&moto, &inputs, &[("RUNNER_TEMP", runner_temp)]);
    out.assert_success();
    let new = format!("{ACCOUNT_TD}/web2:2");
    assert_eq!(
        out.output("task-definition-arn"),
        Some(new.as_str()),
        "{out}"
    );
    // amazon-ecs-render-task-definition's `task-definition`: the rendered file, under
    // RUNNER_TEMP, holding what was registered.
    let rendered_path = temp.path().join("ecs-deploy/web2-task-definition.json");
    assert_eq!(
        out.output("task-definition"),
        rendered_path.to_str(),
        "{out}"
    );
    let rendered: Value =
        serde_json::from_str(&std::fs::read_to_string(&rendered_path).expect("rendered file"))
            .expect("rendered JSON");
    assert_eq!(
        rendered["containerDefinitions"][0]["image"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web2:v2.1.0"
    );
    assert_eq!(rendered["family"], "web2");
    assert_eq!(
        out.output("registry"),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
        "{out}"
    );
    // A rolling deploy of an image built elsewhere: no CodeDeploy id, no one-off task, no
    // build result.
    for empty in [
        "codedeploy-deployment-id",
        "run-task-arn",
        "digest",
        "imageid",
        "metadata",
    ] {
        assert_eq!(out.output(empty), Some(""), "{empty}: {out}");
    }
    assert_eq!(
        out.output("previous-task-definition-arn"),
        Some(old.as_str())
    );
    assert_eq!(service_task_definition(&ecs, "web2").await, new);

    // The registered revision is the file with the image swapped and the variable added.
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("monorepo/deploy/web2-task-definition.json")).unwrap(),
    )
    .unwrap();
    let registered = containers(&ecs, &new).await;
    let c = &registered[0];
    let f = &file["containerDefinitions"][0];
    assert_eq!(
        c.image(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/web2:v2.1.0")
    );
    assert_eq!(c.name(), f["name"].as_str());
    assert_eq!(
        c.port_mappings()[0].container_port(),
        f["portMappings"][0]["containerPort"]
            .as_i64()
            .map(|p| p as i32)
    );
    let env: BTreeMap<&str, &str> = c
        .environment()
        .iter()
        .map(|e| (e.name().unwrap(), e.value().unwrap()))
        .collect();
    assert_eq!(env.get("FEATURE_X"), Some(&"on"));
    assert_eq!(env.get("NODE_ENV"), Some(&"production"));
    let td = ecs
        .describe_task_definition()
        .task_definition(&new)
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!(td.network_mode(), Some(&NetworkMode::Awsvpc));
    assert_eq!(td.cpu(), Some("512"));
    assert_eq!(td.memory(), Some("1024"));
    assert_eq!(td.task_role_arn(), file["taskRoleArn"].as_str());

    let again = deploy_bin(&moto, &inputs);
    again.assert_success();
    assert_eq!(revisions(&ecs, "web2").await, vec![old, new.clone()]);
    assert_eq!(again.output("task-definition-arn"), Some(new.as_str()));
}

#[tokio::test]
async fn a_missing_service_fails_clearly_and_registers_nothing() {
    let moto = MotoServer::start();
    let ecs = ecs_client(&moto);
    let first = create_bridge_service(&ecs).await;
    let out = deploy_bin(
        &moto,
        &[
            ("package-json", "apps/web1/package.json"),
            ("image", NEW_IMAGE),
            ("service", "no-such-service"),
            ("container-name", "web1"),
        ],
    );
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("failed"));
    assert!(
        out.stdout
            .contains("ECS service no-such-service in cluster prod: not found"),
        "{out}"
    );
    assert_eq!(revisions(&ecs, "web1").await, vec![first]);
}

#[tokio::test]
async fn a_codedeploy_service_forced_to_rolling_fails_before_any_write() {
    let moto = MotoServer::start();
    let ecs = ecs_client(&moto);
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    let first = ecs
        .register_task_definition()
        .family("web1")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web1")
                .image("web1:1")
                .memory(128)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    ecs.create_service()
        .cluster("prod")
        .service_name("web1")
        .task_definition(&first)
        .desired_count(1)
        .deployment_controller(
            aws_sdk_ecs::types::DeploymentController::builder()
                .r#type(aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let out = deploy_bin(
        &moto,
        &[
            ("package-json", "apps/web1/package.json"),
            ("image", NEW_IMAGE),
            ("service", "web1"),
            ("deployment", "rolling"),
        ],
    );
    out.assert_code(1);
    assert!(
        out.stdout.contains("cannot take `deployment: rolling`")
            && out.stdout.contains("CODE_DEPLOY"),
        "{out}"
    );
    assert_eq!(revisions(&ecs, "web1").await, vec![first]);
}

#[tokio::test]
async fn an_invalid_image_reference_is_refused_before_any_write() {
    let moto = MotoServer::start();
    let ecs = ecs_client(&moto);
    let first = create_bridge_service(&ecs).await;
    let out = deploy_bin(
        &moto,
        &[
            ("package-json", "apps/web1/package.json"),
            ("image", "Registry.example.com/Web1:v1 2"),
            ("service", "web1"),
        ],
    );
    out.assert_code(1);
    assert!(out.stdout.contains("input `image`"), "{out}");
    assert_eq!(revisions(&ecs, "web1").await, vec![first.clone()]);
    assert_eq!(service_task_definition(&ecs, "web1").await, first);
}

// ---------------------------------------------------------------------------------------------
// A scripted ECS for the rollout sequences moto cannot play.

/// How a scripted rollout of one service goes, in seconds after its UpdateService.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// New tasks all running at `running`, rollout COMPLETED at `done`.
    Completes { running: u64, done: u64 },
    /// The circuit breaker marks the rollout FAILED at `at`; with `breaker_rolls_back` ECS
    /// itself starts a deployment of the previous revision.
    Fails { at: u64, breaker_rolls_back: bool },
    /// Our deployment leaves the list at `at` (another deployment replaced it).
    Vanishes { at: u64 },
    /// Stays IN_PROGRESS forever.
    Never,
    /// Stays IN_PROGRESS, and from 5 s on ECS says every 10 s it is unable to place a task.
    Unplaceable,
}

#[derive(Default)]
struct FakeState {
    /// (service, task definition, when) of every UpdateService received.
    updates: Vec<(String, String, Instant)>,
    /// The services named in each DescribeServices call.
    describes: Vec<Vec<String>>,
    /// DescribeServices calls (0-based) answered with ThrottlingException.
    throttle: Vec<usize>,
    /// Tasks of the new revision that stop, each this many seconds after the first update.
    stops: Vec<(u64, Task)>,
    /// (startedBy, desiredStatus) of every ListTasks call.
    list_tasks: Vec<(Option<String>, Option<String>)>,
}

struct Fake {
    state: Arc<Mutex<FakeState>>,
    endings: Arc<BTreeMap<String, Ending>>,
    client: Client,
    rules: Vec<aws_smithy_mocks::Rule>,
}

fn prev_arn(service: &str) -> String {
    format!("{ACCOUNT_TD}/{service}:1")
}
fn new_arn(service: &str) -> String {
    format!("{ACCOUNT_TD}/{service}:2")
}

fn dep(
    id: &str,
    status: &str,
    td: &str,
    running: i32,
    state: DeploymentRolloutState,
) -> Deployment {
    Deployment::builder()
        .id(id)
        .status(status)
        .task_definition(td)
        .desired_count(2)
        .running_count(running)
        .pending_count(2 - running)
        .rollout_state(state.clone())
        .rollout_state_reason(match state {
            DeploymentRolloutState::Failed => {
                "ECS deployment circuit breaker: tasks failed to start."
            }
            _ => "in progress",
        })
        .build()
}

/// The service as ECS would describe it `now`, given the updates it received.
fn scripted_service(
    name: &str,
    ending: Ending,
    updates: &[(String, String, Instant)],
    now: Instant,
) -> Service {
    use DeploymentRolloutState::{Completed, Failed, InProgress};
    let prev = prev_arn(name);
    let new = new_arn(name);
    let old = dep(&format!("{name}-old"), "PRIMARY", &prev, 2, Completed);
    let ours: Vec<&(String, String, Instant)> = updates.iter().filter(|u| u.0 == name).collect();
    let mut events = vec![
        ServiceEvent::builder()
            .id(format!("{name}-e0"))
            .message(format!("(service {name}) has reached a steady state."))
            .build(),
    ];
    let deployments = match ours.first() {
        None => vec![old],
        Some((_, _, t0)) => {
            let s = now.saturating_duration_since(*t0).as_secs();
            let new_primary =
                |running, state| dep(&format!("{name}-new"), "PRIMARY", &new, running, state);
            let old_active =
                |running| dep(&format!("{name}-old"), "ACTIVE", &prev, running, Completed);
            let rollback = ours.iter().find(|u| u.1 == prev).map(|u| u.2);
            let main = match ending {
                Ending::Completes { running, done } => {
                    if s >= 1 {
                        events.insert(
                            0,
                            ServiceEvent::builder()
                                .id(format!("{name}-e1"))
                                .message(format!("(service {name}) has started 2 tasks."))
                                .build(),
                        );
                    }
                    if s >= done {
                        vec![new_primary(2, Completed)]
                    } else if s >= running {
                        vec![new_primary(2, InProgress), old_active(1)]
                    } else {
                        vec![new_primary(0, InProgress), old_active(2)]
                    }
                }
                Ending::Fails {
                    at,
                    breaker_rolls_back,
                } => {
                    if s >= at + 5 && breaker_rolls_back {
                        vec![dep(
                            &format!("{name}-breaker"),
                            "PRIMARY",
                            &prev,
                            2,
                            Completed,
                        )]
                    } else if s >= at && breaker_rolls_back {
                        vec![
                            dep(&format!("{name}-breaker"), "PRIMARY", &prev, 2, InProgress),
                            dep(&format!("{name}-new"), "ACTIVE", &new, 0, Failed),
                        ]
                    } else if s >= at {
                        vec![
                            dep(&format!("{name}-new"), "PRIMARY", &new, 0, Failed),
                            old_active(2),
                        ]
                    } else {
                        vec![new_primary(0, InProgress), old_active(2)]
                    }
                }
                Ending::Vanishes { at } => {
                    if s >= at {
                        let someone_else = format!("{ACCOUNT_TD}/{name}:3");
                        vec![dep(
                            &format!("{name}-other"),
                            "PRIMARY",
                            &someone_else,
                            2,
                            InProgress,
                        )]
                    } else {
                        vec![new_primary(0, InProgress), old_active(2)]
                    }
                }
                Ending::Never => vec![new_primary(0, InProgress), old_active(2)],
                Ending::Unplaceable => {
                    for k in (0..=s.saturating_sub(5) / 10).filter(|_| s >= 5) {
                        events.insert(
                            0,
                            ServiceEvent::builder()
                                .id(format!("{name}-p{k}"))
                                .message(format!("(service {name}) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance 5c3f) has insufficient memory available."))
                                .build(),
                        );
                    }
                    vec![new_primary(0, InProgress), old_active(2)]
                }
            };
            match rollback {
                // Our rollback's deployment completes 3 s after its UpdateService.
                Some(t) => {
                    let done = now.saturating_duration_since(t).as_secs() >= 3;
                    vec![dep(
                        &format!("{name}-rollback"),
                        "PRIMARY",
                        &prev,
                        2,
                        if done { Completed } else { InProgress },
                    )]
                    .into_iter()
                    .chain(if done {
                        vec![]
                    } else {
                        main.into_iter()
                            .map(|mut d| {
                                d.status = Some("ACTIVE".into());
                                d
                            })
                            .collect()
                    })
                    .collect()
                }
                None => main,
            }
        }
    };
    Service::builder()
        .service_name(name)
        .service_arn(format!(
            "arn:aws:ecs:us-east-1:123456789012:service/prod/{name}"
        ))
        .status("ACTIVE")
        .task_definition(
            updates
                .iter()
                .rev()
                .find(|u| u.0 == name)
                .map(|u| u.1.clone())
                .unwrap_or(prev.clone()),
        )
        .set_events(Some(events))
        .set_deployments(Some(deployments))
        .build()
}

impl Fake {
    fn new(endings: &[(&str, Ending)], throttle: &[usize]) -> Fake {
        Fake::stopping(endings, throttle, vec![])
    }

    /// A fake whose new tasks stop as `stops` says (ListTasks STOPPED, DescribeTasks).
    fn stopping(endings: &[(&str, Ending)], throttle: &[usize], stops: Vec<(u64, Task)>) -> Fake {
        let state = Arc::new(Mutex::new(FakeState {
            throttle: throttle.to_vec(),
            stops,
            ..Default::default()
        }));
        let endings: Arc<BTreeMap<String, Ending>> =
            Arc::new(endings.iter().map(|(s, e)| (s.to_string(), *e)).collect());
        let (st, en) = (state.clone(), endings.clone());
        let describe = mock!(Client::describe_services).then_compute_response(move |req| {
            let mut s = st.lock().unwrap();
            let call = s.describes.len();
            s.describes.push(req.services().to_vec());
            if s.throttle.contains(&call) {
                return MockResponse::Error(DescribeServicesError::generic(
                    ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                ));
            }
            let now = Instant::now();
            let services = req
                .services()
                .iter()
                .map(|n| {
                    scripted_service(
                        n,
                        en.get(n).copied().unwrap_or(Ending::Never),
                        &s.updates,
                        now,
                    )
                })
                .collect();
            MockResponse::Output(
                DescribeServicesOutput::builder()
                    .set_services(Some(services))
                    .build(),
            )
        });
        let (st, en) = (state.clone(), endings.clone());
        let update = mock!(Client::update_service).then_compute_response(move |req| {
            let mut s = st.lock().unwrap();
            let name = req.service().unwrap().to_string();
            s.updates.push((
                name.clone(),
                req.task_definition().unwrap().to_string(),
                Instant::now(),
            ));
            let svc = scripted_service(
                &name,
                en.get(&name).copied().unwrap_or(Ending::Never),
                &s.updates,
                Instant::now(),
            );
            MockResponse::Output(UpdateServiceOutput::builder().service(svc).build())
        });
        // The tasks stopped so far: those due since the first UpdateService.
        let stopped = |s: &FakeState| -> Vec<Task> {
            let Some(t0) = s.updates.first().map(|u| u.2) else {
                return vec![];
            };
            let at = Instant::now().saturating_duration_since(t0).as_secs();
            s.stops
                .iter()
                .filter(|(due, _)| *due <= at)
                .map(|(_, t)| t.clone())
                .rev()
                .collect()
        };
        let st = state.clone();
        let list = mock!(Client::list_tasks).then_compute_response(move |req| {
            let mut s = st.lock().unwrap();
            s.list_tasks.push((
                req.started_by().map(str::to_string),
                req.desired_status().map(|d| d.as_str().to_string()),
            ));
            let arns = stopped(&s)
                .iter()
                .filter_map(|t| t.task_arn().map(str::to_string))
                .collect();
            MockResponse::Output(ListTasksOutput::builder().set_task_arns(Some(arns)).build())
        });
        let st = state.clone();
        let tasks = mock!(Client::describe_tasks).then_compute_response(move |req| {
            let s = st.lock().unwrap();
            let found = stopped(&s)
                .into_iter()
                .filter(|t| req.tasks().iter().any(|a| Some(a.as_str()) == t.task_arn()))
                .collect();
            MockResponse::Output(
                DescribeTasksOutput::builder()
                    .set_tasks(Some(found))
                    .build(),
            )
        });
        // SDK retries off: the production client retries throttling itself (adaptive, 8 tries);
        // here each throttled answer reaches the poller, which must back off and keep waiting.
        let client = mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&describe, &update, &list, &tasks],
            |c| c.retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
        );
        Fake {
            state,
            endings,
            client,
            rules: vec![describe, update],
        }
    }

    fn aws(&self) -> Aws {
        Aws::from_config(&sdk_config("http://127.0.0.1:9")).with_ecs(self.client.clone())
    }

    fn updates(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .unwrap()
            .updates
            .iter()
            .map(|u| (u.0.clone(), u.1.clone()))
            .collect()
    }

    fn describes(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().describes.clone()
    }

    fn live(&self, name: &str) -> Service {
        scripted_service(name, self.endings[name], &[], Instant::now())
    }
}

fn app_plan(app: &str, extra: &[(&str, &str)]) -> AppPlan {
    let mut inputs = vec![
        ("cluster", "prod"),
        ("service", app),
        ("container-name", app),
    ];
    inputs.extend_from_slice(extra);
    AppPlan {
        deploy: Some(DeployPlan {
            cluster: "prod".into(),
            service: app.to_string(),
            task_definition_file: None,
            container: Some(app.to_string()),
            deployment: DeploymentChoice::Rolling,
            appspec_file: None,
        }),
        ..crate::support::app_plan_with(app, &inputs, NEW_IMAGE)
    }
}

fn prepared(fake: &Fake, app: &str) -> Prepared {
    Prepared {
        cluster: "prod".into(),
        service: app.into(),
        live: fake.live(app),
        task_definition_arn: new_arn(app),
        previous_task_definition_arn: Some(prev_arn(app)),
        container: app.into(),
        container_port: Some(8000),
        changed: true,
        redeploy: false,
        task_definition: serde_json::json!({}),
        codedeploy: None,
        previous_digest: None,
    }
}

/// Runs the rolling deploy of each app concurrently with one poller; returns each app's
/// result, report, and when it ended (seconds on the paused clock).
async fn run_all(
    fake: &Fake,
    apps: &[(&str, &[(&str, &str)])],
    cancel: &CancellationToken,
) -> Vec<(Result<(), String>, Outcome, u64)> {
    let aws = fake.aws();
    let poller = Poller::new(aws.ecs.clone());
    let start = Instant::now();
    let runs = apps.iter().map(|(app, extra)| {
        let (aws, poller) = (&aws, &poller);
        async move {
            let plan = app_plan(app, extra);
            let prep = prepared(fake, app);
            let mut report = Outcome::default();
            let r = rolling::deploy(aws, poller, &plan, &prep, cancel, &mut report)
                .await
                .map_err(|e| e.to_string());
            (r, report, start.elapsed().as_secs())
        }
    });
    futures_util::future::join_all(runs).await
}

#[tokio::test(start_paused = true)]
async fn a_rollout_in_progress_for_a_while_then_completed_succeeds_when_it_completes() {
    let fake = Fake::new(
        &[(
            "web1",
            Ending::Completes {
                running: 40,
                done: 75,
            },
        )],
        &[],
    );
    let out = run_all(&fake, &[("web1", &[])], &CancellationToken::new()).await;
    let (r, report, ended) = &out[0];
    assert_eq!(r, &Ok(()), "{report:?}");
    assert_eq!(report.deployment_id.as_deref(), Some("web1-new"));
    assert_eq!(report.kind.map(|k| k.as_str()), Some("rolling"));
    assert_eq!(fake.updates(), vec![("web1".into(), new_arn("web1"))]);
    // Detected within a second of completing (the fast interval near the end).
    assert!((75..=76).contains(ended), "ended at {ended} s");
    // Fewer calls than one per second: the middle of the rollout is polled slowly.
    let calls = fake.describes().len();
    assert!(calls < 60, "{calls} DescribeServices calls");
}

#[tokio::test(start_paused = true)]
async fn fails_if_the_circuit_breaker_marks_the_rollout_failed_and_rolls_back_to_the_previous_revision()
 {
    let fake = Fake::new(
        &[(
            "web1",
            Ending::Fails {
                at: 30,
                breaker_rolls_back: false,
            },
        )],
        &[],
    );
    let out = run_all(&fake, &[("web1", &[])], &CancellationToken::new()).await;
    let (r, report, _) = &out[0];
    let e = r.as_ref().unwrap_err();
    assert!(e.contains("FAILED") && e.contains("circuit breaker"), "{e}");
    assert_eq!(report.status, Some(Status::RolledBack));
    // The rollback's UpdateService carries the previous ARN.
    assert_eq!(
        fake.updates(),
        vec![
            ("web1".into(), new_arn("web1")),
            ("web1".into(), prev_arn("web1"))
        ]
    );
    assert!(report.rollback.as_deref().unwrap().contains("steady again"));
}

#[tokio::test(start_paused = true)]
async fn when_the_circuit_breaker_already_rolls_back_its_rollback_is_followed_not_repeated() {
    let fake = Fake::new(
        &[(
            "web1",
            Ending::Fails {
                at: 30,
                breaker_rolls_back: true,
            },
        )],
        &[],
    );
    let out = run_all(&fake, &[("web1", &[])], &CancellationToken::new()).await;
    let (r, report, _) = &out[0];
    assert!(r.is_err());
    assert_eq!(report.status, Some(Status::RolledBack));
    assert_eq!(fake.updates(), vec![("web1".into(), new_arn("web1"))]);
    assert!(
        report
            .rollback
            .as_deref()
            .unwrap()
            .contains("ECS already rolled back"),
        "{report:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deployment_that_supersedes_ours_is_reported_and_never_rolled_back_over() {
    // Another run (or a person) deploys web1:3 while we wait on web1:2. Before issue 12 this
    // rolled the service back to web1:1 over their deploy and said rolled-back.
    let fake = Fake::new(&[("web1", Ending::Vanishes { at: 20 })], &[]);
    let out = run_all(&fake, &[("web1", &[])], &CancellationToken::new()).await;
    let (r, report, _) = &out[0];
    let e = r.as_ref().unwrap_err();
    assert!(
        e.contains("was superseded by deployment web1-other (web1:3")
            && e.contains("nothing was rolled back over it"),
        "{r:?}"
    );
    assert_eq!(report.status, Some(Status::Failed));
    assert!(
        report
            .rollback
            .as_deref()
            .is_some_and(|r| r.starts_with("not rolled back")),
        "{report:?}"
    );
    assert_eq!(
        fake.updates(),
        vec![("web1".into(), new_arn("web1"))],
        "only our own UpdateService: nothing sent over theirs"
    );
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_throttling_is_waited_out_not_failed() {
    let fake = Fake::new(
        &[(
            "web1",
            Ending::Completes {
                running: 5,
                done: 20,
            },
        )],
        &[1, 2, 3, 4, 5, 6],
    );
    let out = run_all(&fake, &[("web1", &[])], &CancellationToken::new()).await;
    let (r, report, ended) = &out[0];
    assert_eq!(r, &Ok(()), "{report:?}");
    assert_eq!(fake.updates().len(), 1, "no rollback");
    assert!(fake.describes().len() > 7);
    // Backing off costs time, but the deploy still ends.
    assert!(*ended >= 20, "{ended}");
}

#[tokio::test(start_paused = true)]
async fn a_rollout_that_outlasts_wait_for_minutes_times_out_and_rolls_back() {
    let fake = Fake::new(&[("web1", Ending::Never)], &[]);
    let out = run_all(
        &fake,
        &[("web1", &[("wait-for-minutes", "2")])],
        &CancellationToken::new(),
    )
    .await;
    let (r, report, _) = &out[0];
    assert!(
        r.as_ref()
            .unwrap_err()
            .contains("did not complete within 120 s"),
        "{r:?}"
    );
    assert_eq!(report.status, Some(Status::RolledBack));
    assert_eq!(
        fake.updates().last(),
        Some(&("web1".into(), prev_arn("web1")))
    );
}

#[tokio::test(start_paused = true)]
async fn without_rollback_on_failure_a_failed_rollout_is_left_alone() {
    let fake = Fake::new(
        &[(
            "web1",
            Ending::Fails {
                at: 10,
                breaker_rolls_back: false,
            },
        )],
        &[],
    );
    let out = run_all(
        &fake,
        &[("web1", &[("rollback-on-failure", "false")])],
        &CancellationToken::new(),
    )
    .await;
    assert!(out[0].0.is_err());
    assert_eq!(
        out[0].1.status,
        Some(Status::Failed),
        "the path decides failed itself"
    );
    assert_eq!(fake.updates().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancellation_mid_wait_rolls_back_to_the_previous_revision() {
    let fake = Fake::new(&[("web1", Ending::Never)], &[]);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(25)).await;
        c.cancel();
    });
    let out = run_all(&fake, &[("web1", &[])], &cancel).await;
    let (r, report, ended) = &out[0];
    assert!(r.as_ref().unwrap_err().starts_with("cancelled"), "{r:?}");
    assert_eq!(report.status, Some(Status::RolledBack));
    assert_eq!(
        fake.updates(),
        vec![
            ("web1".into(), new_arn("web1")),
            ("web1".into(), prev_arn("web1"))
        ]
    );
    assert!((25..=32).contains(ended), "{ended}");
}

#[tokio::test(start_paused = true)]
async fn several_services_deploy_together_share_their_polls_and_one_failing_does_not_stop_the_others()
 {
    let fake = Fake::new(
        &[
            (
                "web1",
                Ending::Completes {
                    running: 20,
                    done: 40,
                },
            ),
            (
                "web2",
                Ending::Completes {
                    running: 50,
                    done: 90,
                },
            ),
            (
                "web3",
                Ending::Fails {
                    at: 30,
                    breaker_rolls_back: false,
                },
            ),
        ],
        &[],
    );
    let out = run_all(
        &fake,
        &[("web1", &[]), ("web2", &[]), ("web3", &[])],
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(out[0].0, Ok(()));
    assert_eq!(out[1].0, Ok(()));
    assert!(out[2].0.is_err());
    assert_eq!(out[2].1.status, Some(Status::RolledBack));
    // Each ends when its own rollout does; the whole takes as long as the slowest.
    assert!((40..=41).contains(&out[0].2), "{}", out[0].2);
    assert!((90..=91).contains(&out[1].2), "{}", out[1].2);
    // Polls are shared: calls name several services, and there are far fewer calls than
    // the three waits would make alone.
    let describes = fake.describes();
    assert!(describes.iter().any(|d| d.len() == 3), "{describes:?}");
    assert!(
        describes[..10].iter().all(|d| d.len() == 3),
        "{describes:?}"
    );
    let looks: usize = describes.iter().map(Vec::len).sum();
    assert!(
        describes.len() * 3 < looks * 2,
        "{} calls for {looks} looks",
        describes.len()
    );
    assert!(fake.rules.iter().all(|r| r.num_calls() > 0));
}

// ---------------------------------------------------------------------------------------------
// The real binary and a real signal, against moto (which keeps the rollout IN_PROGRESS).

#[tokio::test]
async fn sigterm_mid_wait_rolls_the_service_back_and_still_writes_the_outputs() {
    use std::process::{Command, Stdio};
    let moto = MotoServer::start();
    let ecs = ecs_client(&moto);
    let first = create_bridge_service(&ecs).await;
    let dir = tempfile::tempdir().unwrap();
    let output_file = dir.path().join("github_output");
    let log = dir.path().join("stdout");
    std::fs::write(&output_file, "").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecs-deploy"))
        .current_dir(repo_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .envs(aws_env(&moto.endpoint()))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("GITHUB_WORKSPACE", fixture("monorepo"))
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env(
            "GITHUB_EVENT_PATH",
            fixture("events/workflow-dispatch-latest.json"),
        )
        .env("GITHUB_OUTPUT", &output_file)
        .env("INPUT_CLUSTER", "prod")
        .env("INPUT_SERVICE", "web1")
        .env("INPUT_CONTAINER-NAME", "web1")
        .env("INPUT_PACKAGE-JSON", "apps/web1/package.json")
        .env("INPUT_IMAGE", NEW_IMAGE)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = std::time::Instant::now();
    while !read_log().contains("waiting for deployment") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never started waiting:\n{}",
            read_log()
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exited early ({status}):\n{}", read_log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        service_task_definition(&ecs, "web1").await,
        format!("{ACCOUNT_TD}/web1:2")
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // GitHub kills a cancelled job about 10 s after the first signal: the run must end first.
    let signalled = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if signalled.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM:\n{}", read_log());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = read_log();
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("cancellation requested"), "{stdout}");
    assert!(stdout.contains("rolling back to web1:1"), "{stdout}");
    // The rollback's UpdateService carried the previous revision's ARN.
    assert_eq!(service_task_definition(&ecs, "web1").await, first);
    let outputs =
        crate::support::parse_github_output(&std::fs::read_to_string(&output_file).unwrap());
    assert_eq!(
        outputs.get("status").map(String::as_str),
        Some("rolled-back"),
        "{outputs:?}\n{stdout}"
    );
    assert_eq!(outputs.get("previous-task-definition-arn"), Some(&first));
}

/// The binary deploying web1 to moto, Slack's webhook at `slack`.
fn cancellable_run(moto: &MotoServer, slack: &wiremock::MockServer) -> BinRun {
    web1_deploy(&moto.endpoint(), NEW_IMAGE)
        .env(
            "INPUT_SLACK-WEBHOOK-URL",
            format!("{}/services/T0/B0/slackHOOKsecret42", slack.uri()),
        )
        .timeout(Duration::from_secs(120))
}

#[tokio::test]
async fn sigterm_with_a_slack_that_answers_after_8s_writes_the_outputs_first_and_exits_within_8s() {
    let moto = MotoServer::start();
    let ecs = ecs_client(&moto);
    let first = create_bridge_service(&ecs).await;
    let slack = slow_server(Duration::from_secs(8)).await;
    let run = cancellable_run(&moto, &slack);
    let (out, exit_after, early) = tokio::task::spawn_blocking(move || {
        let mut running = run.spawn();
        running.wait_for_stdout("waiting for deployment", Duration::from_secs(60));
        running.signal("TERM");
        let signalled = std::time::Instant::now();
        // A second in, the rollback is still being followed: the outputs and the summary are
        // already there, with what was known at the signal.
        std::thread::sleep(Duration::from_secs(1));
        let early = (running.is_running(), running.outputs(), running.summary());
        let out = running.wait();
        (out, signalled.elapsed(), early)
    })
    .await
    .unwrap();
    let (still_running, early_outputs, early_summary) = early;
    assert!(still_running, "{out}");
    assert_eq!(
        early_outputs.get("status").map(String::as_str),
        Some("cancelled"),
        "{early_outputs:?}\n{out}"
    );
    assert!(early_summary.contains("cancelled"), "{early_summary}");
    // GitHub kills a cancelled job about 10 s after its first signal; the action's bound is
    // 8 s (the measured figure is in the README).
    assert!(
        exit_after < Duration::from_millis(8500),
        "exited {exit_after:?} after SIGTERM\n{out}"
    );
    out.assert_code(1);
    assert!(out.stdout.contains("rolling back to web1:1"), "{out}");
    assert_eq!(service_task_definition(&ecs, "web1").await, first);
    // The final outputs replaced the early ones (one `status`, one summary).
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    assert_eq!(out.outputs_raw.matches("status<<").count(), 1, "{out}");
    assert_eq!(
        out.output("previous-task-definition-arn"),
        Some(first.as_str())
    );
    assert!(out.summary.contains("rolled-back"), "{out}");
    assert!(
        !out.summary.contains("cancelled before web1 finished"),
        "{out}"
    );
    // Slack was told (the request went out) and given up on, with a warning that says why.
    let asked = slack.received_requests().await.unwrap_or_default();
    assert_eq!(asked.len(), 1, "{out}");
    let body = String::from_utf8_lossy(&asked[0].body);
    assert!(body.contains("rolled back"), "{body}");
    assert!(
        out.stdout
            .contains("Slack webhook: given up 7s after the cancellation"),
        "{out}"
    );
}

#[tokio::test]
async fn a_second_signal_writes_what_is_known_and_exits_at_once() {
    let moto = MotoServer::start();
    let ecs = ecs_client(&moto);
    create_bridge_service(&ecs).await;
    let slack = slow_server(Duration::from_secs(8)).await;
    let run = cancellable_run(&moto, &slack);
    let (out, exit_after) = tokio::task::spawn_blocking(move || {
        let mut running = run.spawn();
        running.wait_for_stdout("waiting for deployment", Duration::from_secs(60));
        running.signal("TERM");
        running.wait_for_stdout("cancellation requested", Duration::from_secs(5));
        // The rollback is being followed (moto never completes it): the run is mid-way.
        running.signal("INT");
        let signalled = std::time::Instant::now();
        let out = running.wait();
        (out, signalled.elapsed())
    })
    .await
    .unwrap();
    assert!(
        exit_after < Duration::from_millis(1500),
        "exited {exit_after:?} after the second signal\n{out}"
    );
    out.assert_code(1);
    assert!(out.stdout.contains("second signal"), "{out}");
    // What was known: web1 had not finished, so it is reported cancelled, and says so.
    assert_eq!(out.output("status"), Some("cancelled"), "{out}");
    let results: Vec<Value> = serde_json::from_str(out.output("results").unwrap()).unwrap();
    assert_eq!(results[0]["image"], NEW_IMAGE, "{results:?}");
    assert!(
        results[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cancelled before web1 finished")),
        "{results:?}"
    );
    assert!(out.summary.contains("cancelled"), "{out}");
    assert_eq!(out.outputs_raw.matches("status<<").count(), 1, "{out}");
    // The outcome never reached Slack: the run stopped before the reporters.
    assert!(
        slack
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// The one-off task, through the whole `deploy()` story, against a scripted ECS (moto's RunTask
// never stops a task, so an exit code cannot be played there).

fn live_fargate_service() -> Service {
    Service::builder()
        .service_name("web1")
        .status("ACTIVE")
        .task_definition(prev_arn("web1"))
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets("subnet-1")
                        .security_groups("sg-1")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .deployments(dep(
            "web1-old",
            "PRIMARY",
            &prev_arn("web1"),
            2,
            DeploymentRolloutState::Completed,
        ))
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_one_off_task_that_exits_non_zero_fails_the_deploy_before_the_service_is_updated() {
    use aws_sdk_ecs::operation::deregister_task_definition::DeregisterTaskDefinitionOutput;
    use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
    use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
    use aws_sdk_ecs::operation::run_task::RunTaskOutput;
    use aws_sdk_ecs::types::{Container, LaunchType, Task, TaskDefinition};

    let describe = mock!(Client::describe_services).then_output(|| {
        DescribeServicesOutput::builder()
            .services(live_fargate_service())
            .build()
    });
    let live_td = serde_json::json!({"taskDefinition": {
        "taskDefinitionArn": prev_arn("web1"), "revision": 1, "status": "ACTIVE",
        "family": "web1", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{"name": "web1", "image": "web1:old", "essential": true}]
    }})
    .to_string();
    let describe_td = mock!(Client::describe_task_definition)
        .sequence()
        .http_status(200, Some(live_td))
        .repeatedly()
        .build();
    let register = mock!(Client::register_task_definition).then_output(|| {
        RegisterTaskDefinitionOutput::builder()
            .task_definition(
                TaskDefinition::builder()
                    .task_definition_arn(new_arn("web1"))
                    .build(),
            )
            .build()
    });
    let run = mock!(Client::run_task)
        .match_requests(|r| {
            let o = &r.overrides().unwrap().container_overrides()[0];
            o.name() == Some("web1")
                && o.command() == ["python", "manage.py", "migrate"]
                && r.task_definition() == Some(new_arn("web1").as_str())
                && r.launch_type() == Some(&LaunchType::Fargate)
                && r.network_configuration()
                    .and_then(|n| n.awsvpc_configuration())
                    .is_some_and(|a| a.subnets() == ["subnet-1"])
        })
        .then_output(|| {
            RunTaskOutput::builder()
                .tasks(Task::builder().task_arn("arn:task/1").build())
                .build()
        });
    let tasks = mock!(Client::describe_tasks)
        .sequence()
        .output(|| {
            DescribeTasksOutput::builder()
                .tasks(Task::builder().last_status("RUNNING").build())
                .build()
        })
        .times(3)
        .output(|| {
            DescribeTasksOutput::builder()
                .tasks(
                    Task::builder()
                        .last_status("STOPPED")
                        .stopped_reason("Essential container in task exited")
                        .containers(Container::builder().name("web1").exit_code(1).build())
                        .build(),
                )
                .build()
        })
        .build();
    let deregister = mock!(Client::deregister_task_definition)
        .match_requests(|r| r.task_definition() == Some(new_arn("web1").as_str()))
        .then_output(|| DeregisterTaskDefinitionOutput::builder().build());
    let update =
        mock!(Client::update_service).then_output(|| UpdateServiceOutput::builder().build());
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [
            &describe,
            &describe_td,
            &register,
            &run,
            &tasks,
            &deregister,
            &update
        ]
    );
    let aws = Aws::from_config(&sdk_config("http://127.0.0.1:9"))
        .with_ecs(client.clone())
        .without_region();
    let plan = app_plan(
        "web1",
        &[
            ("run-task-command", "python manage.py migrate"),
            ("deregister-failed-task-definition", "true"),
        ],
    );
    let failed = crate::support::checked_deploy(&aws, &plan, NEW_IMAGE)
        .await
        .expect_err("the one-off task fails");
    let report = failed.outcome;
    let e = failed.error.to_string();
    assert!(
        e.contains("exited with code 1")
            && e.contains("Essential container in task exited")
            && e.contains("the service was not updated"),
        "{e}"
    );
    assert_eq!(register.num_calls(), 1);
    assert_eq!(
        run.num_calls(),
        1,
        "RunTask with the command, new revision, service network"
    );
    assert_eq!(tasks.num_calls(), 4);
    assert_eq!(
        update.num_calls(),
        0,
        "no UpdateService after a failed one-off task"
    );
    assert_eq!(deregister.num_calls(), 1);
    assert_eq!(report.task_definition_arn, Some(new_arn("web1")));
    // The task's ARN is an output even though it failed (amazon-ecs-deploy-task-definition's
    // `run-task-arn`: a JSON array), as the runner reads it back from GITHUB_OUTPUT.
    assert_eq!(report.run_task_arns, ["arn:task/1"]);
    let file = tempfile::NamedTempFile::new().expect("GITHUB_OUTPUT");
    let outputs = ecs_deploy::report::outputs::outputs(
        &ecs_deploy::report::Report {
            apps: vec![{
                let mut app = ecs_deploy::report::AppReport::default();
                app.apply(&report);
                app
            }],
            ..Default::default()
        },
        None,
    );
    ecs_deploy::report::outputs::write(Some(file.path()), &outputs).expect("write outputs");
    let parsed: BTreeMap<String, String> = crate::support::parse_github_output(
        &std::fs::read_to_string(file.path()).expect("read outputs"),
    );
    assert_eq!(parsed["run-task-arn"], r#"["arn:task/1"]"#);
    assert_eq!(parsed["codedeploy-deployment-id"], "");
}

#[tokio::test]
async fn the_dry_run_without_a_file_diffs_the_live_task_definition_and_writes_nothing() {
    let moto = MotoServer::start();
    let ecs = ecs_client(&moto);
    let first = create_bridge_service(&ecs).await;
    let out = deploy_bin(
        &moto,
        &[
            ("package-json", "apps/web1/package.json"),
            ("image", NEW_IMAGE),
            ("service", "web1"),
            ("container-name", "web1"),
            ("dry-run", "true"),
        ],
    );
    out.assert_success();
    assert!(out.stdout.contains("deployment path: rolling"), "{out}");
    assert!(
        out.stdout.contains(
            "-      \"image\": \"123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.2\""
        ) && out
            .stdout
            .contains(&format!("+      \"image\": \"{NEW_IMAGE}\"")),
        "{out}"
    );
    assert_eq!(revisions(&ecs, "web1").await, vec![first.clone()]);
    assert_eq!(service_task_definition(&ecs, "web1").await, first);
}

/// The runner's log groups cannot nest or overlap: every `::group::` is closed before the next.
#[track_caller]
fn assert_groups_never_overlap(log: &str) {
    let mut open: Option<&str> = None;
    for line in log.lines() {
        if line.starts_with("::group::") {
            assert!(open.is_none(), "{line:?} opened inside {open:?}:\n{log}");
            open = Some(line);
        } else if line == "::endgroup::" {
            assert!(open.is_some(), "an ::endgroup:: with no group open:\n{log}");
            open = None;
        }
    }
}

#[tokio::test]
async fn the_config_form_deploys_its_apps_together_and_one_failing_does_not_stop_the_others() {
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let ecs = ecs_client(&moto);
    let web1 = create_bridge_service_named(&ecs, "web1").await;
    let web2 = create_bridge_service_named(&ecs, "web2").await;
    let dir = config_workspace();
    let config = dir.path().join("ecs-deploy.yml");
    std::fs::write(
        &config,
        format!(
            r#"defaults:
  cluster: prod
apps:
  web1:
    package-json: apps/web1/package.json
    image: {NEW_IMAGE}
    service: web1
    container-name: web1
  web2:
    package-json: apps/web2/package.json
    image: registry.example.com/web2:v2.0.1
    service: web2
    container-name: web2
  web3:
    package-json: apps/web2/package.json
    image: registry.example.com/web3:v2.0.1
    service: web3-missing
"#
        ),
    )
    .unwrap();
    let out = deploy_bin_in(
        dir.path(),
        &moto,
        &[("config", config.to_str().unwrap()), ("app", "all")],
    );
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("failed"));
    assert_groups_never_overlap(&out.stdout);
    let results: Vec<Value> = serde_json::from_str(out.output("results").unwrap()).unwrap();
    let by_app: BTreeMap<&str, &Value> = results
        .iter()
        .map(|r| (r["app"].as_str().unwrap(), r))
        .collect();
    assert_eq!(by_app.len(), 3, "{out}");
    assert_eq!(by_app["web1"]["status"], "succeeded");
    assert_eq!(by_app["web2"]["status"], "succeeded");
    assert_eq!(by_app["web3"]["status"], "failed");
    assert!(
        by_app["web3"]["error"]
            .as_str()
            .unwrap()
            .contains("web3-missing")
    );
    assert_eq!(
        by_app["web1"]["task-definition-arn"],
        format!("{ACCOUNT_TD}/web1:2")
    );
    assert_eq!(
        by_app["web2"]["task-definition-arn"],
        format!("{ACCOUNT_TD}/web2:2")
    );
    assert_eq!(
        by_app["web1"]["previous-task-definition-arn"],
        web1.as_str()
    );
    assert_eq!(
        by_app["web2"]["previous-task-definition-arn"],
        web2.as_str()
    );
    assert_eq!(by_app["web2"]["deployment-kind"], "rolling");
    assert_eq!(
        containers(&ecs, &format!("{ACCOUNT_TD}/web2:2")).await[0].image(),
        Some("registry.example.com/web2:v2.0.1")
    );
}

/// A service `shop` whose task has two containers, `web1` and `worker`; returns its revision.
async fn create_two_container_service(ecs: &Client) -> String {
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    let container = |name: &str, image: &str| {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .essential(true)
            .memory_reservation(128)
            .build()
    };
    let arn = ecs
        .register_task_definition()
        .family("shop")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(container(
            "web1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.2",
        ))
        .container_definitions(container("worker", "registry.example.com/worker:v2.0.0"))
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    ecs.create_service()
        .cluster("prod")
        .service_name("shop")
        .task_definition(&arn)
        .desired_count(2)
        .send()
        .await
        .unwrap();
    arn
}

/// A workspace for a config file written by the test: web1's and web2's package.json as in the
/// monorepo (a config file, like every input path, must be inside the workspace).
fn config_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for app in ["web1", "web2"] {
        let to = dir.path().join("apps").join(app);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(
            fixture("monorepo/apps").join(app).join("package.json"),
            to.join("package.json"),
        )
        .unwrap();
    }
    dir
}

fn two_apps_one_service_config(dir: &Path, worker_extra: &str) -> PathBuf {
    let config = dir.join("ecs-deploy.yml");
    std::fs::write(
        &config,
        format!(
            r#"defaults:
  cluster: prod
  service: shop
apps:
  web1:
    package-json: apps/web1/package.json
    image: {NEW_IMAGE}
    container-name: web1
  worker:
    package-json: apps/web2/package.json
    image: registry.example.com/worker:v2.0.1
{worker_extra}
"#
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn apps_of_the_config_deploying_one_service_get_one_revision_with_each_image_in_its_container()
 {
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let ecs = ecs_client(&moto);
    let first = create_two_container_service(&ecs).await;
    let dir = config_workspace();
    let config = two_apps_one_service_config(
        dir.path(),
        "    container-name: worker\n    environment-variables: |\n      QUEUE=orders",
    );
    // The dry run shows one diff with both images, under the app that leads.
    let dry = deploy_bin_in(
        dir.path(),
        &moto,
        &[
            ("config", config.to_str().unwrap()),
            ("app", "all"),
            ("dry-run", "true"),
        ],
    );
    dry.assert_success();
    assert!(
        dry.stdout
            .contains("+      \"image\": \"registry.example.com/worker:v2.0.1\","),
        "{dry}"
    );
    assert!(
        dry.stdout
            .contains(&format!("+      \"image\": \"{NEW_IMAGE}\",")),
        "{dry}"
    );
    assert!(
        dry.stdout
            .contains("deploys service shop together with web1: see web1's diff"),
        "{dry}"
    );
    assert_eq!(revisions(&ecs, "shop").await, vec![first.clone()]);

    let out = deploy_bin_in(
        dir.path(),
        &moto,
        &[("config", config.to_str().unwrap()), ("app", "all")],
    );
    out.assert_success();
    assert_groups_never_overlap(&out.stdout);
    let second = format!("{ACCOUNT_TD}/shop:2");
    assert_eq!(
        revisions(&ecs, "shop").await,
        vec![first.clone(), second.clone()]
    );
    assert_eq!(service_task_definition(&ecs, "shop").await, second);
    let after = containers(&ecs, &second).await;
    let image_of = |name: &str| {
        after
            .iter()
            .find(|c| c.name() == Some(name))
            .and_then(|c| c.image())
            .map(str::to_string)
    };
    assert_eq!(image_of("web1").as_deref(), Some(NEW_IMAGE));
    assert_eq!(
        image_of("worker").as_deref(),
        Some("registry.example.com/worker:v2.0.1")
    );
    let worker_env = after
        .iter()
        .find(|c| c.name() == Some("worker"))
        .map(|c| c.environment().to_vec())
        .unwrap_or_default();
    assert_eq!(worker_env.len(), 1, "{worker_env:?}");
    assert_eq!(worker_env[0].name(), Some("QUEUE"));
    let web1_env = after
        .iter()
        .find(|c| c.name() == Some("web1"))
        .map(|c| c.environment().len());
    assert_eq!(
        web1_env,
        Some(0),
        "the worker's variables stay in its container"
    );
    let results: Vec<Value> = serde_json::from_str(out.output("results").unwrap()).unwrap();
    assert_eq!(results.len(), 2, "{out}");
    for r in &results {
        assert_eq!(r["status"], "succeeded", "{out}");
        assert_eq!(r["task-definition-arn"], second.as_str(), "{out}");
        assert_eq!(r["previous-task-definition-arn"], first.as_str(), "{out}");
        assert_eq!(r["deployment-kind"], "rolling", "{out}");
    }
    assert_eq!(results[0]["deployment-id"], results[1]["deployment-id"]);
    assert!(
        out.stdout
            .contains("apps web1, worker deploy one service together"),
        "{out}"
    );
}

#[tokio::test]
async fn apps_of_one_service_without_their_own_containers_or_with_other_settings_are_refused_before_any_write()
 {
    let moto = MotoServer::start();
    let ecs = ecs_client(&moto);
    let first = create_two_container_service(&ecs).await;
    let dir = config_workspace();
    for (extra, expect) in [
        (
            "    container-name: web1",
            "apps web1 and worker both put their image into container web1 of service shop",
        ),
        (
            "",
            "each needs its own `container-name` (app worker has none)",
        ),
        (
            "    container-name: worker\n    wait-for-minutes: 5",
            "apps web1 and worker deploy service shop in cluster prod together (one revision, one deployment) but disagree",
        ),
    ] {
        let config = two_apps_one_service_config(dir.path(), extra);
        let out = deploy_bin_in(
            dir.path(),
            &moto,
            &[("config", config.to_str().unwrap()), ("app", "all")],
        );
        out.assert_code(1);
        assert!(out.stdout.contains(expect), "{expect}\n{out}");
        assert_eq!(revisions(&ecs, "shop").await, vec![first.clone()]);
        assert_eq!(service_task_definition(&ecs, "shop").await, first);
    }
}

/// A scripted ECS whose service web1 has another deployment in flight (`other`, on web1:1b,
/// beside the old one) for its first `busy_for` DescribeServices, then only `other` COMPLETED;
/// RegisterTaskDefinition and UpdateService are recorded. moto cannot play it: its services
/// never show two deployments, and never finish one.
struct InFlight {
    describe: aws_smithy_mocks::Rule,
    register: aws_smithy_mocks::Rule,
    update: aws_smithy_mocks::Rule,
    describe_td: aws_smithy_mocks::Rule,
    aws: Aws,
}

fn in_flight_ecs(busy_for: usize) -> InFlight {
    use DeploymentRolloutState::{Completed, InProgress};
    use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
    use aws_sdk_ecs::types::TaskDefinition;
    let theirs = format!("{ACCOUNT_TD}/web1:3");
    let calls = Arc::new(Mutex::new(0usize));
    let (c, t) = (calls.clone(), theirs.clone());
    let describe = mock!(Client::describe_services).then_compute_response(move |_| {
        let mut n = c.lock().unwrap();
        *n += 1;
        let deployments = if *n <= busy_for {
            vec![
                dep("web1-theirs", "PRIMARY", &t, 1, InProgress),
                dep("web1-old", "ACTIVE", &prev_arn("web1"), 1, Completed),
            ]
        } else {
            vec![dep("web1-theirs", "PRIMARY", &t, 2, Completed)]
        };
        let td = if *n <= busy_for {
            prev_arn("web1")
        } else {
            t.clone()
        };
        MockResponse::Output(
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_name("web1")
                        .status("ACTIVE")
                        .task_definition(td)
                        .set_deployments(Some(deployments))
                        .build(),
                )
                .build(),
        )
    });
    let live_td = |arn: &str| {
        serde_json::json!({"taskDefinition": {
            "taskDefinitionArn": arn, "family": "web1",
            "containerDefinitions": [{"name": "web1", "image": "r/web1:v1", "memory": 256}]}})
        .to_string()
    };
    let describe_td = mock!(Client::describe_task_definition)
        .sequence()
        .http_status(200, Some(live_td(&prev_arn("web1"))))
        .http_status(200, Some(live_td(&theirs)))
        .repeatedly()
        .build();
    let register = mock!(Client::register_task_definition).then_output(|| {
        RegisterTaskDefinitionOutput::builder()
            .task_definition(
                TaskDefinition::builder()
                    .task_definition_arn(format!("{ACCOUNT_TD}/web1:4"))
                    .build(),
            )
            .build()
    });
    let update = mock!(Client::update_service).then_output(|| {
        UpdateServiceOutput::builder()
            .service(
                Service::builder()
                    .service_name("web1")
                    .deployments(dep(
                        "web1-ours",
                        "PRIMARY",
                        &format!("{ACCOUNT_TD}/web1:4"),
                        0,
                        DeploymentRolloutState::InProgress,
                    ))
                    .build(),
            )
            .build()
    });
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&describe, &describe_td, &register, &update]
    );
    let aws = Aws::from_config(&sdk_config("http://127.0.0.1:9"))
        .with_ecs(client)
        .without_region();
    InFlight {
        describe,
        register,
        update,
        describe_td,
        aws,
    }
}

#[tokio::test(start_paused = true)]
async fn a_deployment_in_flight_at_start_is_waited_for_and_ours_starts_from_what_it_left() {
    let ecs = in_flight_ecs(3);
    let plan = app_plan("web1", &[("wait-for-service-stability", "false")]);
    let started = Instant::now();
    let outcome = crate::support::checked_deploy(&ecs.aws, &plan, NEW_IMAGE)
        .await
        .expect("deploys once the other deployment ended");
    assert!(
        outcome.steps[0]
            .contains("deployment web1-theirs (web1:3, IN_PROGRESS) is already in flight"),
        "{:?}",
        outcome.steps
    );
    assert!(
        outcome.steps[1].contains("ended after"),
        "{:?}",
        outcome.steps
    );
    assert_eq!(
        ecs.describe.num_calls(),
        4,
        "the preflight's look, two that still see it, one that sees it ended"
    );
    assert_eq!(ecs.register.num_calls(), 1);
    assert_eq!(ecs.update.num_calls(), 1);
    // Ours starts from what the other deployment left: web1:3 is the revision to go back to.
    assert_eq!(
        outcome.previous_task_definition_arn,
        Some(format!("{ACCOUNT_TD}/web1:3"))
    );
    assert_eq!(ecs.describe_td.num_calls(), 2);
    assert!(started.elapsed() >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_deployment_still_in_flight_after_wait_for_minutes_fails_with_nothing_written() {
    let ecs = in_flight_ecs(usize::MAX);
    let plan = app_plan("web1", &[("wait-for-minutes", "1")]);
    let failed = crate::support::checked_deploy(&ecs.aws, &plan, NEW_IMAGE)
        .await
        .expect_err("refused");
    let e = failed.error.to_string();
    assert!(
        e.contains("still in flight after 1 min")
            && e.contains("nothing was registered or updated"),
        "{e}"
    );
    assert_eq!(ecs.register.num_calls(), 0);
    assert_eq!(ecs.update.num_calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// Why a deploy failed: the stopped tasks of the new revision (scripted ECS: moto never starts
// or stops a task of a service, so it has no stopped tasks, reasons or exit codes to list).

/// A task of the new revision of web1 that stopped with `reason`, its container with `exit`.
fn stopped_task(n: u32, reason: &str, exit: Option<i32>, container_reason: Option<&str>) -> Task {
    Task::builder()
        .task_arn(format!(
            "arn:aws:ecs:us-east-1:123456789012:task/prod/{n:032x}"
        ))
        .task_definition_arn(new_arn("web1"))
        .started_by("ecs-svc/web1-new")
        .last_status("STOPPED")
        .stopped_reason(reason)
        .stop_code(if exit.is_some() {
            TaskStopCode::EssentialContainerExited
        } else {
            TaskStopCode::TaskFailedToStart
        })
        .containers(
            aws_sdk_ecs::types::Container::builder()
                .name("web1")
                .image(NEW_IMAGE)
                .set_exit_code(exit)
                .set_reason(container_reason.map(str::to_string))
                .build(),
        )
        .build()
}

/// The same stop, every 15 s from 10 s after the update: a crash loop.
fn crash_loop(reason: &str, exit: Option<i32>, container_reason: Option<&str>) -> Vec<(u64, Task)> {
    (0..6)
        .map(|i| {
            (
                10 + 15 * u64::from(i),
                stopped_task(i, reason, exit, container_reason),
            )
        })
        .collect()
}

/// The rolling deploy of web1 against a fake whose new tasks stop as `stops` says (the rollout
/// itself never completes): the fake, and the deploy's result, report and end (seconds).
async fn crash(
    stops: Vec<(u64, Task)>,
    extra: &[(&str, &str)],
) -> (Fake, (Result<(), String>, Outcome, u64)) {
    let fake = Fake::stopping(&[("web1", Ending::Never)], &[], stops);
    let mut out = run_all(&fake, &[("web1", extra)], &CancellationToken::new()).await;
    let first = out.remove(0);
    (fake, first)
}

const PULL_ERROR: &str = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3: not found";

/// Scripted: moto runs no container, so no task of its services ever fails to pull and stops.
#[tokio::test(start_paused = true)]
async fn a_pull_error_fails_fast_naming_the_image_and_the_execution_role_and_rolls_back() {
    let (fake, (r, report, ended)) = crash(crash_loop(PULL_ERROR, None, None), &[]).await;
    let e = r.as_ref().unwrap_err();
    assert!(
        e.contains(&format!(
            "3 tasks of the new revision stopped: image {NEW_IMAGE} not found"
        )) && e.contains("execution role")
            && e.contains("repository")
            && e.contains("failing now instead of waiting out wait-for-minutes"),
        "{e}"
    );
    // The third stop is at 40 s; the tasks are read every 10 s: failed well before the 30
    // minutes of wait-for-minutes (the 3 s after it are the rollback).
    assert!((40..=55).contains(&ended), "ended at {ended} s");
    assert_eq!(report.status, Some(Status::RolledBack));
    assert_eq!(
        fake.updates().last(),
        Some(&("web1".into(), prev_arn("web1")))
    );
    // Asked for the stopped tasks of our deployment.
    let asked = fake.state.lock().unwrap().list_tasks.clone();
    assert!(!asked.is_empty());
    assert!(
        asked
            .iter()
            .all(|(by, status)| by.as_deref() == Some("ecs-svc/web1-new")
                && status.as_deref() == Some("STOPPED"))
    );
    // The cause and the stopped task's console link are in the report.
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.starts_with(&format!("cause: image {NEW_IMAGE} not found"))),
        "{:?}",
        report.steps
    );
    let task = format!("{:032x}", 0);
    assert!(
        report.links.iter().any(|l| l.url
            == format!("https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/tasks/{task}/configuration?region=us-east-1")),
        "{:?}",
        report.links
    );
    assert!(e.contains(&format!("/tasks/{task}/configuration")), "{e}");
}

/// Scripted: moto never starts a service's containers, so none exits 1 over and over.
#[tokio::test(start_paused = true)]
async fn an_exit_1_loop_fails_fast_and_without_rollback_on_failure_is_left_alone() {
    let (fake, (r, report, ended)) = crash(
        crash_loop("Essential container in task exited", Some(1), None),
        &[("rollback-on-failure", "false")],
    )
    .await;
    let e = r.as_ref().unwrap_err();
    assert!(
        e.contains("3 tasks of the new revision stopped: essential container web1 exited 1"),
        "{e}"
    );
    assert!((40..=50).contains(&ended), "ended at {ended} s");
    assert_eq!(fake.updates().len(), 1, "no rollback");
    assert_ne!(report.status, Some(Status::RolledBack));
}

/// Scripted: moto has no memory limits to exceed nor OOM-killed tasks to list.
#[tokio::test(start_paused = true)]
async fn out_of_memory_fails_after_the_configured_number_of_stopped_tasks() {
    let (_fake, (r, _, ended)) = crash(
        crash_loop(
            "Essential container in task exited",
            Some(137),
            Some("OutOfMemoryError: Container killed due to memory usage"),
        ),
        &[("fail-fast-after-stopped-tasks", "2")],
    )
    .await;
    let e = r.as_ref().unwrap_err();
    assert!(
        e.contains(
            "2 tasks of the new revision stopped: container web1 ran out of memory (exit 137"
        ),
        "{e}"
    );
    // The second stop is at 25 s.
    assert!((25..=40).contains(&ended), "ended at {ended} s");
}

/// Scripted: moto neither stops tasks nor keeps a rollout IN_PROGRESS until a timeout.
#[tokio::test(start_paused = true)]
async fn with_fail_fast_off_the_timeout_still_names_the_cause_of_the_stopped_tasks() {
    let (fake, (r, report, ended)) = crash(
        crash_loop("Essential container in task exited", Some(1), None),
        &[
            ("fail-fast-after-stopped-tasks", "0"),
            ("wait-for-minutes", "2"),
        ],
    )
    .await;
    let e = r.as_ref().unwrap_err();
    assert!(
        e.contains("did not complete within 120 s")
            && e.contains("6 tasks of the new revision stopped: essential container web1 exited 1")
            && !e.contains("failing now"),
        "{e}"
    );
    assert!(ended >= 120, "ended at {ended} s");
    assert_eq!(report.status, Some(Status::RolledBack));
    assert_eq!(
        fake.updates().last(),
        Some(&("web1".into(), prev_arn("web1")))
    );
}

/// Scripted: moto writes no "unable to place a task" service events (it places nothing).
#[tokio::test(start_paused = true)]
async fn placement_failures_in_the_service_events_fail_fast_too() {
    let fake = Fake::new(&[("web1", Ending::Unplaceable)], &[]);
    let out = run_all(&fake, &[("web1", &[])], &CancellationToken::new()).await;
    let (r, report, ended) = &out[0];
    let e = r.as_ref().unwrap_err();
    assert!(
        e.contains("3 placement failures: ECS is unable to place the tasks (no container instance met all of its requirements")
            && e.contains("lacks capacity"),
        "{e}"
    );
    // The third placement event is at 25 s; the events are read on every look.
    assert!((25..=35).contains(ended), "ended at {ended} s");
    assert_eq!(report.status, Some(Status::RolledBack));
}

/// The task's container writes to awslogs with a stream prefix (`ecs/web1/<task id>`).
fn awslogs_task_definition() -> Value {
    serde_json::json!({"family": "web1", "containerDefinitions": [{"name": "web1",
        "image": NEW_IMAGE, "logConfiguration": {"logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/web1", "awslogs-region": "us-east-1",
        "awslogs-stream-prefix": "ecs"}}}]})
}

/// The stopped tasks come from the scripted ECS (moto never stops a service's task); their
/// last log lines from moto's CloudWatch Logs (real GetLogEvents shapes). On the real clock
/// (moto answers over real sockets, which a paused clock would race with its timeouts): one
/// task stopped at once fails the wait on its first look.
#[tokio::test]
async fn the_failure_carries_the_last_log_lines_of_the_stopped_task_read_from_cloudwatch_logs() {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let moto = MotoServer::start();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config(&moto.endpoint()));
    let task_id = format!("{:032x}", 0);
    let stream = format!("ecs/web1/{task_id}");
    logs.create_log_group()
        .log_group_name("/ecs/web1")
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name("/ecs/web1")
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events: Vec<InputLogEvent> = (0..40)
        .map(|i| {
            InputLogEvent::builder()
                .timestamp(now_ms + i)
                .message(format!("boot line {i}"))
                .build()
                .unwrap()
        })
        .chain(std::iter::once(
            InputLogEvent::builder()
                .timestamp(now_ms + 40)
                .message("KeyError: 'DATABASE_URL'")
                .build()
                .unwrap(),
        ))
        .collect();
    logs.put_log_events()
        .log_group_name("/ecs/web1")
        .log_stream_name(&stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();

    let fake = Fake::stopping(
        &[("web1", Ending::Never)],
        &[],
        vec![(
            0,
            stopped_task(0, "Essential container in task exited", Some(1), None),
        )],
    );
    let aws = fake.aws().with_logs(logs);
    let poller = Poller::new(aws.ecs.clone());
    let plan = app_plan("web1", &[("fail-fast-after-stopped-tasks", "1")]);
    let prep = Prepared {
        task_definition: awslogs_task_definition(),
        ..prepared(&fake, "web1")
    };
    let mut report = Outcome::default();
    let e = rolling::deploy(
        &aws,
        &poller,
        &plan,
        &prep,
        &CancellationToken::new(),
        &mut report,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("1 task of the new revision stopped: essential container web1 exited 1"),
        "{e}"
    );
    let log = report
        .diagnosis
        .as_ref()
        .and_then(|d| d.log.clone())
        .unwrap_or_else(|| panic!("no log lines in {report:?}"));
    assert_eq!(
        (log.group.as_str(), log.stream.as_str()),
        ("/ecs/web1", stream.as_str())
    );
    // The last 30 lines, oldest first, ending with the error.
    assert_eq!(log.lines.len(), 30, "{:?}", log.lines);
    assert_eq!(log.lines[0], "boot line 11");
    assert_eq!(log.lines[29], "KeyError: 'DATABASE_URL'");
    assert!(
        report
            .links
            .iter()
            .any(|l| l.label == format!("log stream {stream}")
                && l.url
                    .contains("log-group/$252Fecs$252Fweb1/log-events/ecs$252Fweb1$252F")),
        "{:?}",
        report.links
    );
}

/// Scripted: moto runs no health checks, so no task stops for failing one.
#[tokio::test(start_paused = true)]
async fn a_failing_health_check_fails_fast_and_the_summary_and_slack_thread_name_it() {
    use ecs_deploy::report::{AppReport, Report, slack, summary};
    let (_fake, (r, outcome, ended)) = crash(
        crash_loop("Task failed container health checks", Some(143), None),
        &[],
    )
    .await;
    let e = r.unwrap_err();
    assert!(
        e.contains("3 tasks of the new revision stopped: health check failed (Task failed container health checks)"),
        "{e}"
    );
    assert!((40..=55).contains(&ended), "ended at {ended} s");
    // What a person reads: the report is built from the outcome, as the binary does.
    let mut app = AppReport {
        app: "web1".into(),
        error: Some(e.clone()),
        ..Default::default()
    };
    app.apply(&outcome);
    let report = Report {
        apps: vec![app],
        ..Default::default()
    };
    let md = summary::render(&report);
    assert!(md.contains("health check failed"), "{md}");
    assert!(md.contains("cause: health check failed"), "{md}");
    assert!(md.contains("[stopped task "), "{md}");
    let thread = slack::failure_thread(&report).unwrap();
    assert!(thread.contains("health check failed"), "{thread}");
}

/// What the same-revision scripted ECS received.
#[derive(Default)]
struct SameRevision {
    /// (task definition, force new deployment) of each UpdateService.
    updates: Vec<(String, bool)>,
    updated_at: Vec<Instant>,
    /// The family of each RegisterTaskDefinition (its JSON body is sent raw, past the typed
    /// input this mock sees; `pinned_reference`'s unit test covers the image it carries).
    registered: Vec<String>,
}

/// Scripted: moto completes every rollout at once, so it cannot play a forced redeploy of the
/// live revision that never gets healthy, nor the rollback to a newly registered revision that
/// pins the image digest the old tasks ran.
#[tokio::test(start_paused = true)]
async fn a_failed_same_revision_redeploy_rolls_back_to_a_new_revision_pinning_the_old_digest() {
    use DeploymentRolloutState::{Completed, InProgress};
    use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
    use aws_sdk_ecs::types::TaskDefinition;
    const OLD_DIGEST: &str =
        "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let live_td = format!("{ACCOUNT_TD}/web1:1");
    let pinned_td = format!("{ACCOUNT_TD}/web1:3");
    let state = Arc::new(Mutex::new(SameRevision::default()));
    let (st, live, pinned) = (state.clone(), live_td.clone(), pinned_td.clone());
    let describe = mock!(Client::describe_services).then_compute_output(move |_| {
        let s = st.lock().unwrap();
        let deployments = match (s.updates.len(), s.updated_at.last()) {
            // Before the deploy: the live revision, steady.
            (0, _) => vec![dep("web1-old", "PRIMARY", &live, 2, Completed)],
            // Our forced redeploy of the same revision: its new tasks never get healthy.
            (1, _) => vec![
                dep("web1-new", "PRIMARY", &live, 0, InProgress),
                dep("web1-old", "ACTIVE", &live, 2, Completed),
            ],
            // The rollback to the pinned revision: steady 20 s after the update.
            (_, Some(t)) if t.elapsed() >= Duration::from_secs(20) => {
                vec![dep("web1-back", "PRIMARY", &pinned, 2, Completed)]
            }
            _ => vec![
                dep("web1-back", "PRIMARY", &pinned, 1, InProgress),
                dep("web1-new", "ACTIVE", &live, 0, InProgress),
            ],
        };
        DescribeServicesOutput::builder()
            .services(
                Service::builder()
                    .service_name("web1")
                    .status("ACTIVE")
                    .set_deployments(Some(deployments))
                    .build(),
            )
            .build()
    });
    let st = state.clone();
    let update = mock!(Client::update_service).then_compute_output(move |req| {
        let mut s = st.lock().unwrap();
        let td = req.task_definition().unwrap_or_default().to_string();
        s.updates
            .push((td.clone(), req.force_new_deployment().unwrap_or(false)));
        s.updated_at.push(Instant::now());
        let id = if s.updates.len() == 1 {
            "web1-new"
        } else {
            "web1-back"
        };
        UpdateServiceOutput::builder()
            .service(
                Service::builder()
                    .service_name("web1")
                    .deployments(dep(id, "PRIMARY", &td, 0, InProgress))
                    .build(),
            )
            .build()
    });
    let (st, pinned) = (state.clone(), pinned_td.clone());
    let register = mock!(Client::register_task_definition).then_compute_output(move |req| {
        st.lock()
            .unwrap()
            .registered
            .push(req.family().unwrap_or_default().to_string());
        RegisterTaskDefinitionOutput::builder()
            .task_definition(
                TaskDefinition::builder()
                    .task_definition_arn(&pinned)
                    .revision(3)
                    .build(),
            )
            .build()
    });
    let no_tasks = mock!(Client::list_tasks).then_output(|| ListTasksOutput::builder().build());
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&describe, &update, &register, &no_tasks],
        |c| c.retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
    );
    let aws = Aws::from_config(&sdk_config("http://127.0.0.1:9")).with_ecs(client);
    let poller = Poller::new(aws.ecs.clone());
    let plan = app_plan(
        "web1",
        &[("wait-for-minutes", "2"), ("force-new-deployment", "true")],
    );
    let prepared = Prepared {
        cluster: "prod".into(),
        service: "web1".into(),
        live: Service::builder()
            .service_name("web1")
            .deployments(dep("web1-old", "PRIMARY", &live_td, 2, Completed))
            .build(),
        task_definition_arn: live_td.clone(),
        previous_task_definition_arn: Some(live_td.clone()),
        container: "web1".into(),
        container_port: Some(8000),
        changed: false,
        redeploy: true,
        task_definition: serde_json::json!({
            "family": "web1",
            "containerDefinitions": [{"name": "web1", "image": NEW_IMAGE, "essential": true}]
        }),
        codedeploy: None,
        previous_digest: Some(OLD_DIGEST.into()),
    };
    let mut report = Outcome::default();
    let r = rolling::deploy(
        &aws,
        &poller,
        &plan,
        &prepared,
        &CancellationToken::new(),
        &mut report,
    )
    .await;

    let e = r
        .expect_err("a redeploy that never gets healthy fails")
        .to_string();
    assert!(e.contains("2 min") || e.contains("wait-for-minutes"), "{e}");
    let s = state.lock().unwrap();
    // The redeploy forced a new deployment of the live revision; the rollback went to the
    // pinned revision, never to the failing one again.
    assert_eq!(s.updates[0], (live_td.clone(), true));
    assert_eq!(s.updates.len(), 2, "{:?}", s.updates);
    assert_eq!(s.updates[1].0, pinned_td);
    assert_eq!(s.registered, ["web1"]);
    drop(s);
    // rolled-back only because ECS shows the pinned revision steady again.
    assert_eq!(
        report.status,
        Some(Status::RolledBack),
        "{:?}",
        report.steps
    );
    assert!(
        report.steps.iter().any(|l| l.contains("web1:3")
            && l.contains(&format!("previous image pinned ({OLD_DIGEST})"))),
        "{:?}",
        report.steps
    );
}

/// amazon-ecs-deploy-task-definition's service inputs reach moto's UpdateService, and the roles
/// and environment files of the render action the registered revision.
#[tokio::test]
async fn the_deploy_actions_service_inputs_and_the_render_actions_roles_reach_ecs() {
    // moto keeps the deployment's own desiredCount at 2 (only the service's moves): 2 running tasks
    // complete it.
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let ecs = ecs_client(&moto);
    create_bridge_service(&ecs).await;
    let out = deploy_bin(
        &moto,
        &[
            ("package-json", "apps/web1/package.json"),
            ("image", NEW_IMAGE),
            ("service", "web1"),
            ("container-name", "web1"),
            ("desired-count", "3"),
            ("propagate-tags", "SERVICE"),
            ("enable-ecs-managed-tags", "true"),
            ("task-role-arn", "arn:aws:iam::123456789012:role/web1-task"),
            (
                "execution-role-arn",
                "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            ),
            ("env-files", "arn:aws:s3:::shop-config/web1.env"),
            ("wait-for-minutes", "1"),
        ],
    );
    out.assert_success();
    let svc = ecs
        .describe_services()
        .cluster("prod")
        .services("web1")
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    assert_eq!(svc.desired_count(), 3, "{out}");
    assert_eq!(
        svc.propagate_tags(),
        Some(&aws_sdk_ecs::types::PropagateTags::Service)
    );
    assert!(svc.enable_ecs_managed_tags());
    let td = ecs
        .describe_task_definition()
        .task_definition(format!("{ACCOUNT_TD}/web1:2"))
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    assert_eq!(
        td.task_role_arn(),
        Some("arn:aws:iam::123456789012:role/web1-task")
    );
    assert_eq!(
        td.execution_role_arn(),
        Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole")
    );
    let files = td.container_definitions()[0].environment_files();
    assert_eq!(files.len(), 1, "{td:?}");
    assert_eq!(files[0].value(), "arn:aws:s3:::shop-config/web1.env");
}

/// amazon-ecs-deploy-task-definition's `run-task: true` on moto: the new revision runs once
/// outside the service, started by and tagged as the inputs say, before the service moves to it;
/// without `wait-for-task-stopped` it is not waited for (moto's tasks never stop anyway).
#[tokio::test]
async fn run_task_runs_the_new_revision_once_before_the_update_as_the_deploy_action_does() {
    let moto = MotoServer::start_with_env([("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let ecs = ecs_client(&moto);
    create_bridge_service(&ecs).await;
    let out = deploy_bin(
        &moto,
        &[
            ("package-json", "apps/web1/package.json"),
            ("image", NEW_IMAGE),
            ("service", "web1"),
            ("container-name", "web1"),
            ("run-task", "true"),
            // moto runs a task only on Fargate or on a registered container instance.
            ("run-task-launch-type", "FARGATE"),
            ("run-task-started-by", "release-1.2.3"),
            ("run-task-tags", r#"[{"key": "team", "value": "shop"}]"#),
            (
                "run-task-container-overrides",
                r#"[{"name": "web1", "command": ["node", "warm-cache.js"]}]"#,
            ),
        ],
    );
    out.assert_success();
    assert!(
        out.stdout
            .contains("before:      run-task (started by release-1.2.3, the service's network), not waited for"),
        "{out}"
    );
    let listed = ecs
        .list_tasks()
        .cluster("prod")
        .started_by("release-1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.task_arns().len(), 1, "{out}");
    let task = ecs
        .describe_tasks()
        .cluster("prod")
        .tasks(&listed.task_arns()[0])
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .unwrap()
        .tasks()[0]
        .clone();
    assert_eq!(task.task_definition_arn(), Some(new_arn("web1").as_str()));
    assert_eq!(
        out.output("run-task-arn"),
        Some(format!(r#"["{}"]"#, listed.task_arns()[0]).as_str())
    );
    assert!(
        task.tags()
            .iter()
            .any(|t| t.key() == Some("team") && t.value() == Some("shop")),
        "{task:?}"
    );
    assert_eq!(service_task_definition(&ecs, "web1").await, new_arn("web1"));
}
