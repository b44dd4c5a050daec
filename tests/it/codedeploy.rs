//! CodeDeploy blue/green and canary (`ecs_deploy::deploy::codedeploy`).
//!
//! What plays what:
//! - **moto** (5.2.5) plays CreateApplication, CreateDeploymentGroup, GetApplication,
//!   GetDeploymentGroup, ListDeployments (with `includeOnlyStatuses`), CreateDeployment and
//!   GetDeployment, and ECS RegisterTaskDefinition / DescribeTaskDefinition. Its deployments stay
//!   `Created` forever, it has no ListDeploymentTargets / GetDeploymentTarget, and StopDeployment
//!   answers HTTP 500. So moto covers: default application/group names, the group checks, the
//!   AppSpec actually stored with the deployment, the "another deployment is unfinished" refusal,
//!   and what happens when StopDeployment fails.
//! - **Scripted sequences** (aws-smithy-mocks, CodeDeploy and ECS clients) cover what no emulator
//!   plays: a deployment moving through its lifecycle events and traffic shifts, a failure at
//!   AfterAllowTestTraffic with CodeDeploy's rollback, a timeout and a cancellation that send
//!   StopDeployment(autoRollbackEnabled=true) and wait for traffic to return to blue, and an
//!   unfinished deployment of the group that ends before ours is created. Each records the
//!   requests it received; the tests assert them.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_codedeploy::Client as CodeDeploy;
use aws_sdk_codedeploy::operation::create_deployment::{
    CreateDeploymentInput, CreateDeploymentOutput,
};
use aws_sdk_codedeploy::operation::get_application::GetApplicationOutput;
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::get_deployment_target::GetDeploymentTargetOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
use aws_sdk_codedeploy::operation::stop_deployment::{StopDeploymentInput, StopDeploymentOutput};
use aws_sdk_codedeploy::types::{
    ApplicationInfo, ComputePlatform, DeploymentGroupInfo, DeploymentInfo, DeploymentStatus,
    DeploymentTarget, DeploymentTargetType, EcsService, EcsTarget, EcsTaskSet, ErrorCode,
    ErrorInformation, LifecycleEvent, LifecycleEventStatus, RollbackInfo, StopStatus, TargetLabel,
};
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::types::{ContainerDefinition, PortMapping, TaskDefinition};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use tokio_util::sync::CancellationToken;

use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::Prepared;
use ecs_deploy::deploy::codedeploy::{self, Cadence, Timing};
use ecs_deploy::inputs::{AppSettings, DeploymentChoice, RawInputs};
use ecs_deploy::outcome::{Outcome, Status};
use ecs_deploy::plan::{AppPlan, DeployPlan, ImagePlan, ImageSource};
use ecs_deploy::version::Version;

use crate::support::aws::{StoppingTasks, stopped_service_task, stopping_task_rules};
use crate::support::scripted_codedeploy::prepared;
use crate::support::{MotoServer, fixture, sdk_config};

const TD_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:8";
const OURS: &str = "d-OURS12345";
const ROLLBACK: &str = "d-ROLLBACK1";
const CANARY: &str = "CodeDeployDefault.ECSCanary10Percent5Minutes";

fn fast() -> Timing {
    Timing {
        cadence: Cadence::Every(Duration::from_millis(10)),
        timeout: Duration::from_secs(20),
        queue_limit: Duration::from_secs(5),
        rollback_timeout: Duration::from_secs(5),
        poller: None,
        max_delay: Duration::MAX,
    }
}

/// An app plan for web1 on prod/web1 with the given inputs and AppSpec fixture.
fn plan(inputs: &[(&str, &str)], appspec: Option<&str>) -> AppPlan {
    let values: BTreeMap<String, String> = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = AppSettings::from_raw(&RawInputs { values }).expect("valid inputs");
    let appspec_file = appspec.map(|name| {
        let path: PathBuf = fixture(format!("appspecs/{name}"));
        let text = std::fs::read_to_string(&path).expect("fixture");
        (path, text)
    });
    AppPlan {
        app: "web1".into(),
        settings,
        version: Version {
            value: "1.4.0".into(),
            tag: "v1.4.0".into(),
            prerelease: false,
            note: None,
        },
        version_source: ecs_deploy::plan::VersionSource::PackageJson {
            shown: "apps/web1/package.json".into(),
        },
        image: ImagePlan {
            registry: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com".into()),
            repository: "web1".into(),
            tags: vec!["v1.4.0".into()],
            source: ImageSource::Existing,
        },
        deploy: Some(DeployPlan {
            cluster: "prod".into(),
            service: "web1".into(),
            task_definition_file: None,
            container: Some("web1".into()),
            deployment: DeploymentChoice::CodeDeploy,
            appspec_file,
        }),
        notes: vec![],
        watch: vec![],
    }
}

/// [`prepared`] with the CodeDeploy target as the preflight finds it before the first write:
/// the plan's application and group read and checked (GetApplication, GetDeploymentGroup).
async fn checked(
    aws: &Aws,
    plan: &AppPlan,
    arn: &str,
) -> Result<Prepared, ecs_deploy::error::Error> {
    let (application, group) = codedeploy::target_names(plan, "prod", "web1");
    let target = codedeploy::check_group(aws, "prod", "web1", &application, &group).await?;
    Ok(Prepared {
        codedeploy: Some(target),
        ..prepared(arn)
    })
}

// ---------------------------------------------------------------------------------------------
// The scripted CodeDeploy: answers by operation, records what it received.
// ---------------------------------------------------------------------------------------------

/// One poll of our deployment: its status and, once it has one, its ECS target.
#[derive(Clone)]
struct Phase {
    info: DeploymentInfo,
    target: Option<EcsTarget>,
}

#[derive(Default)]
struct Script {
    /// StopDeployment is sent and never answered.
    stop_hangs: bool,
    /// Our deployment, one phase per GetDeployment; the last repeats.
    phases: Vec<Phase>,
    /// Our deployment once StopDeployment was received.
    after_stop: Option<Phase>,
    /// CodeDeploy's rollback deployment.
    rollback: Option<Phase>,
    /// ListDeployments answers (unfinished deployments of the group), one per call; then none.
    unfinished: VecDeque<Vec<String>>,
    /// GetDeployment answers for another deployment of the group; the last repeats.
    other: Vec<DeploymentStatus>,
    /// Cancel this token when our deployment has been polled this many times (SIGTERM).
    cancel_at_poll: Option<(usize, CancellationToken)>,
    /// GetDeployment of ours answers HTTP 500 this many times in a row after its second poll.
    read_errors: usize,
    /// Tasks of the new revision that stop, on a schedule from CreateDeployment.
    tasks: Arc<Mutex<StoppingTasks>>,
    // What was received.
    calls: Vec<String>,
    created: Vec<CreateDeploymentInput>,
    stops: Vec<StopDeploymentInput>,
    listed_statuses: Vec<Vec<DeploymentStatus>>,
    polls: usize,
    other_polls: usize,
}

type Shared = Arc<Mutex<Script>>;

fn info(id: &str, status: DeploymentStatus) -> DeploymentInfo {
    DeploymentInfo::builder()
        .deployment_id(id)
        .application_name("AppECS-prod-web1")
        .deployment_group_name("DgpECS-prod-web1")
        .status(status)
        .build()
}

fn ecs_target(events: &[(&str, LifecycleEventStatus)], blue: f64, green: f64) -> EcsTarget {
    let mut t = EcsTarget::builder()
        .deployment_id(OURS)
        .target_id("prod:web1")
        .task_sets_info(
            EcsTaskSet::builder()
                .identifer("ecs-svc/111")
                .task_set_label(TargetLabel::Blue)
                .traffic_weight(blue)
                .running_count(2)
                .desired_count(2)
                .build(),
        )
        .task_sets_info(
            EcsTaskSet::builder()
                .identifer("ecs-svc/222")
                .task_set_label(TargetLabel::Green)
                .traffic_weight(green)
                .running_count(2)
                .desired_count(2)
                .build(),
        );
    for (name, status) in events {
        t = t.lifecycle_events(
            LifecycleEvent::builder()
                .lifecycle_event_name(*name)
                .status(status.clone())
                .build(),
        );
    }
    t.build()
}

/// The eight ECS lifecycle events, the first `done` Succeeded, the next one `current`, the rest
/// Pending.
fn events(done: usize, current: LifecycleEventStatus) -> Vec<(&'static str, LifecycleEventStatus)> {
    const ALL: [&str; 8] = [
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "AllowTestTraffic",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
    ];
    ALL.iter()
        .enumerate()
        .map(|(i, e)| {
            let s = if i < done {
                LifecycleEventStatus::Succeeded
            } else if i == done {
                current.clone()
            } else {
                LifecycleEventStatus::Pending
            };
            (*e, s)
        })
        .collect()
}

fn phase(status: DeploymentStatus, target: Option<EcsTarget>) -> Phase {
    Phase {
        info: info(OURS, status),
        target,
    }
}

/// Aws clients whose CodeDeploy plays `script` and whose ECS describes web1's task definition.
fn scripted_aws(script: &Shared) -> Aws {
    let s = script.clone();
    let get_app = mock!(CodeDeploy::get_application).then_compute_output(move |_| {
        s.lock().unwrap().calls.push("GetApplication".into());
        GetApplicationOutput::builder()
            .application(
                ApplicationInfo::builder()
                    .application_name("AppECS-prod-web1")
                    .compute_platform(ComputePlatform::Ecs)
                    .build(),
            )
            .build()
    });
    let s = script.clone();
    let get_group = mock!(CodeDeploy::get_deployment_group).then_compute_output(move |_| {
        s.lock().unwrap().calls.push("GetDeploymentGroup".into());
        GetDeploymentGroupOutput::builder()
            .deployment_group_info(
                DeploymentGroupInfo::builder()
                    .deployment_group_name("DgpECS-prod-web1")
                    .compute_platform(ComputePlatform::Ecs)
                    .ecs_services(
                        EcsService::builder()
                            .cluster_name("prod")
                            .service_name("web1")
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let s = script.clone();
    let list = mock!(CodeDeploy::list_deployments).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        s.calls.push("ListDeployments".into());
        s.listed_statuses.push(req.include_only_statuses().to_vec());
        let ids = s.unfinished.pop_front().unwrap_or_default();
        ListDeploymentsOutput::builder()
            .set_deployments(Some(ids))
            .build()
    });
    let s = script.clone();
    let create = mock!(CodeDeploy::create_deployment).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        s.calls.push("CreateDeployment".into());
        s.created.push(req.clone());
        s.tasks.lock().unwrap().start();
        CreateDeploymentOutput::builder()
            .deployment_id(OURS)
            .build()
    });
    let s = script.clone();
    let get = mock!(CodeDeploy::get_deployment).then_compute_response(move |req| {
        let mut s = s.lock().unwrap();
        let id = req.deployment_id().unwrap_or_default().to_string();
        s.calls.push(format!("GetDeployment {id}"));
        if id == OURS && s.polls >= 2 && s.read_errors > 0 {
            s.read_errors -= 1;
            return MockResponse::Http(aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(500).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"InternalFailure","message":"We encountered an internal error"}"#,
                ),
            ));
        }
        let answer = if id == OURS {
            s.polls += 1;
            if let Some((at, token)) = &s.cancel_at_poll
                && s.polls == *at
            {
                token.cancel();
            }
            match (&s.after_stop, s.stops.is_empty()) {
                (Some(p), false) => p.info.clone(),
                _ => s.phases[(s.polls - 1).min(s.phases.len() - 1)].info.clone(),
            }
        } else if id == ROLLBACK {
            s.rollback.as_ref().expect("rollback scripted").info.clone()
        } else {
            s.other_polls += 1;
            let status = s.other[(s.other_polls - 1).min(s.other.len() - 1)].clone();
            info(&id, status)
        };
        MockResponse::Output(
            GetDeploymentOutput::builder()
                .deployment_info(answer)
                .build(),
        )
    });
    let s = script.clone();
    let targets = mock!(CodeDeploy::list_deployment_targets).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        s.calls.push(format!(
            "ListDeploymentTargets {}",
            req.deployment_id().unwrap_or_default()
        ));
        ListDeploymentTargetsOutput::builder()
            .target_ids("prod:web1")
            .build()
    });
    let s = script.clone();
    let target = mock!(CodeDeploy::get_deployment_target).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        let id = req.deployment_id().unwrap_or_default().to_string();
        s.calls.push(format!("GetDeploymentTarget {id}"));
        let t = if id == ROLLBACK {
            s.rollback.as_ref().and_then(|p| p.target.clone())
        } else if let (Some(p), false) = (&s.after_stop, s.stops.is_empty()) {
            p.target.clone()
        } else {
            s.phases[(s.polls.max(1) - 1).min(s.phases.len() - 1)]
                .target
                .clone()
        };
        GetDeploymentTargetOutput::builder()
            .deployment_target(
                DeploymentTarget::builder()
                    .deployment_target_type(DeploymentTargetType::EcsTarget)
                    .set_ecs_target(t)
                    .build(),
            )
            .build()
    });
    let s = script.clone();
    let stop = mock!(CodeDeploy::stop_deployment).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        s.calls.push("StopDeployment".into());
        s.stops.push(req.clone());
        StopDeploymentOutput::builder()
            .status(StopStatus::Pending)
            .status_message("Stopping the deployment")
            .build()
    });
    let rules = [
        &get_app, &get_group, &list, &create, &get, &targets, &target, &stop,
    ];
    // SDK retries off: each 500 reaches the follow loop, which must bear a few in a row.
    let codedeploy = if script.lock().unwrap().stop_hangs {
        mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled())
            .http_client(crate::support::aws::hanging_http("StopDeployment")))
    } else {
        mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    };
    let describe =
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_compute_output(|req| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .task_definition_arn(req.task_definition().unwrap_or_default())
                        .family("web1")
                        .container_definitions(
                            ContainerDefinition::builder()
                                .name("web1")
                                .port_mappings(PortMapping::builder().container_port(3000).build())
                                .build(),
                        )
                        .container_definitions(
                            ContainerDefinition::builder().name("log-router").build(),
                        )
                        .build(),
                )
                .build()
        });
    let [list_tasks, describe_tasks] = stopping_task_rules(&script.lock().unwrap().tasks);
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&describe, &list_tasks, &describe_tasks]
    );
    // ECR, Logs and EKS are not used by a CodeDeploy deployment: they point at a closed port.
    Aws::from_config(&sdk_config("http://127.0.0.1:9"))
        .with_ecs(ecs)
        .with_codedeploy(codedeploy)
}

fn shared(script: Script) -> Shared {
    Arc::new(Mutex::new(script))
}

/// The AppSpec text sent with the (one) CreateDeployment.
fn sent_appspec(script: &Shared) -> String {
    let s = script.lock().unwrap();
    assert_eq!(s.created.len(), 1, "exactly one CreateDeployment");
    s.created[0]
        .revision()
        .and_then(|r| r.app_spec_content())
        .and_then(|c| c.content())
        .expect("appSpecContent")
        .to_string()
}

/// A canary run: green comes up, test traffic, 10% of traffic, then all of it.
fn canary_phases() -> Vec<Phase> {
    use LifecycleEventStatus::{InProgress, Succeeded};
    vec![
        phase(DeploymentStatus::Created, None),
        phase(
            DeploymentStatus::InProgress,
            Some(ecs_target(&events(1, InProgress), 100.0, 0.0)),
        ),
        phase(
            DeploymentStatus::InProgress,
            Some(ecs_target(&events(6, InProgress), 90.0, 10.0)),
        ),
        phase(
            DeploymentStatus::InProgress,
            Some(ecs_target(&events(6, InProgress), 90.0, 10.0)),
        ),
        phase(
            DeploymentStatus::Succeeded,
            Some(ecs_target(&events(8, Succeeded), 0.0, 100.0)),
        ),
    ]
}

#[tokio::test]
async fn a_canary_deployment_moves_through_its_lifecycle_and_succeeds() {
    let script = shared(Script {
        phases: canary_phases(),
        ..Script::default()
    });
    let aws = scripted_aws(&script);
    let plan = plan(
        &[
            ("codedeploy-deployment-config", CANARY),
            ("codedeploy-deployment-description", "web1 1.4.0 from PR #2"),
        ],
        Some("web1-appspec.yml"),
    );
    let mut report = Outcome::default();
    // As a run does: the preflight reads the application and group, then the deploy writes.
    let prepared = checked(&aws, &plan, TD_ARN).await.expect("preflight");
    let result = codedeploy::deploy_with(
        &aws,
        &plan,
        &prepared,
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(report.status, Some(Status::Succeeded));
    assert_eq!(report.kind.map(|k| k.as_str()), Some("codedeploy"));
    assert_eq!(report.deployment_id.as_deref(), Some(OURS));
    assert_eq!(
        report.links[0].url,
        format!(
            "https://us-east-1.console.aws.amazon.com/codesuite/codedeploy/deployments/{OURS}?region=us-east-1"
        )
    );
    // The steps people read in the job summary, in order, each change once.
    let steps = report.steps.join("\n");
    for expected in [
        "created deployment d-OURS12345 (AppECS-prod-web1/DgpECS-prod-web1, CodeDeployDefault.ECSCanary10Percent5Minutes)",
        "deployment created, waiting to start",
        "deployment in progress",
        "BeforeInstall: Succeeded",
        "Install: InProgress",
        "traffic: blue 100% (2/2 running), green 0% (2/2 running)",
        "AfterAllowTestTraffic: Succeeded",
        "AllowTraffic: InProgress",
        "traffic: blue 90% (2/2 running), green 10% (2/2 running)",
        "AfterAllowTraffic: Succeeded",
        "traffic: blue 0% (2/2 running), green 100% (2/2 running)",
        "deployment succeeded",
    ] {
        assert!(
            steps.contains(expected),
            "missing {expected:?} in:\n{steps}"
        );
    }
    assert_eq!(
        report
            .steps
            .iter()
            .filter(|l| l.contains("green 10%"))
            .count(),
        1,
        "an unchanged poll prints nothing: {steps}"
    );

    let s = script.lock().unwrap();
    // Checked before the first write, and never stacked on another deployment.
    assert_eq!(
        &s.calls[..4],
        [
            "GetApplication",
            "GetDeploymentGroup",
            "ListDeployments",
            "CreateDeployment"
        ]
    );
    let statuses: Vec<&str> = s.listed_statuses[0].iter().map(|x| x.as_str()).collect();
    for st in ["Created", "Queued", "InProgress", "Ready"] {
        assert!(statuses.contains(&st), "{statuses:?}");
    }
    let created = &s.created[0];
    assert_eq!(created.application_name(), Some("AppECS-prod-web1"));
    assert_eq!(created.deployment_group_name(), Some("DgpECS-prod-web1"));
    assert_eq!(created.deployment_config_name(), Some(CANARY));
    assert_eq!(created.description(), Some("web1 1.4.0 from PR #2"));
    assert!(s.stops.is_empty());
    drop(s);

    let content = sent_appspec(&script);
    let doc: serde_yaml::Value = serde_yaml::from_str(&content).unwrap();
    let props = &doc["Resources"][0]["TargetService"]["Properties"];
    assert_eq!(props["TaskDefinition"].as_str(), Some(TD_ARN));
    assert_eq!(
        props["LoadBalancerInfo"]["ContainerName"].as_str(),
        Some("web1")
    );
    assert_eq!(
        props["LoadBalancerInfo"]["ContainerPort"].as_i64(),
        Some(3000)
    );
    assert_eq!(props["PlatformVersion"].as_str(), Some("LATEST"));
    insta::assert_snapshot!("codedeploy_appspec_sent_from_yaml_file", content);
}

/// Our deployment fails at AfterAllowTestTraffic (a hook said Failed) and CodeDeploy's own
/// rollback deployment brings traffic back to blue.
fn failing_at_after_allow_test_traffic() -> Script {
    use LifecycleEventStatus::{Failed, InProgress, Succeeded};
    let failed = DeploymentInfo::builder()
        .deployment_id(OURS)
        .status(DeploymentStatus::Failed)
        .error_information(
            ErrorInformation::builder()
                .code(ErrorCode::HookExecutionFailure)
                .message("The AfterAllowTestTraffic hook web1-smoke-test returned Failed")
                .build(),
        )
        .rollback_info(
            RollbackInfo::builder()
                .rollback_deployment_id(ROLLBACK)
                .rollback_message("Deployment d-OURS12345 failed; rolled back by d-ROLLBACK1")
                .build(),
        )
        .build();
    Script {
        phases: vec![
            phase(
                DeploymentStatus::InProgress,
                Some(ecs_target(&events(4, InProgress), 100.0, 0.0)),
            ),
            Phase {
                info: failed,
                target: Some(ecs_target(&events(4, Failed), 100.0, 0.0)),
            },
        ],
        rollback: Some(Phase {
            info: info(ROLLBACK, DeploymentStatus::Succeeded),
            target: Some(ecs_target(&events(8, Succeeded), 100.0, 0.0)),
        }),
        ..Script::default()
    }
}

#[tokio::test]
async fn a_deployment_failing_at_after_allow_test_traffic_reports_rolled_back() {
    let script = shared(failing_at_after_allow_test_traffic());
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    let err = codedeploy::deploy_with(
        &aws,
        &plan(&[], Some("web1-appspec.yml")),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await
    .expect_err("a failed deployment is an error");

    assert_eq!(report.status, Some(Status::RolledBack));
    let msg = err.to_string();
    assert!(msg.contains("d-OURS12345"), "{msg}");
    assert!(msg.contains("failed at AfterAllowTestTraffic"), "{msg}");
    assert!(msg.contains("HOOK_EXECUTION_FAILURE"), "{msg}");
    assert!(
        msg.contains("rolled back to the original task set"),
        "{msg}"
    );
    let rollback = report.rollback.clone().unwrap_or_default();
    assert!(
        rollback.contains("traffic is back on the original (blue) task set"),
        "{rollback}"
    );
    assert!(
        report
            .steps
            .iter()
            .any(|l| l == "AfterAllowTestTraffic: Failed")
    );
    let s = script.lock().unwrap();
    assert!(
        s.stops.is_empty(),
        "CodeDeploy rolled back by itself: no StopDeployment"
    );
    assert!(s.calls.iter().any(|c| c == "GetDeployment d-ROLLBACK1"));
}

/// Our deployment stays in AllowTraffic until stopped; then CodeDeploy's rollback deployment
/// moves traffic back to blue.
fn stuck_until_stopped() -> Script {
    use LifecycleEventStatus::{InProgress, Succeeded};
    Script {
        phases: vec![phase(
            DeploymentStatus::InProgress,
            Some(ecs_target(&events(6, InProgress), 90.0, 10.0)),
        )],
        after_stop: Some(Phase {
            info: DeploymentInfo::builder()
                .deployment_id(OURS)
                .status(DeploymentStatus::Stopped)
                .rollback_info(
                    RollbackInfo::builder()
                        .rollback_deployment_id(ROLLBACK)
                        .rollback_message("Deployment stopped by user; rolled back")
                        .build(),
                )
                .build(),
            target: Some(ecs_target(&events(6, InProgress), 90.0, 10.0)),
        }),
        rollback: Some(Phase {
            info: info(ROLLBACK, DeploymentStatus::Succeeded),
            target: Some(ecs_target(&events(8, Succeeded), 100.0, 0.0)),
        }),
        ..Script::default()
    }
}

#[tokio::test]
async fn a_deployment_that_outlives_wait_for_minutes_is_stopped_with_rollback() {
    let script = shared(stuck_until_stopped());
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    let timing = Timing {
        timeout: Duration::from_millis(300),
        ..fast()
    };
    let err = codedeploy::deploy_with(
        &aws,
        &plan(&[], None),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        timing,
    )
    .await
    .expect_err("a timeout is an error");

    let s = script.lock().unwrap();
    assert_eq!(s.stops.len(), 1, "{:?}", s.calls);
    assert_eq!(s.stops[0].deployment_id(), Some(OURS));
    assert_eq!(s.stops[0].auto_rollback_enabled(), Some(true));
    assert!(
        s.calls
            .iter()
            .any(|c| c == "GetDeploymentTarget d-ROLLBACK1")
    );
    drop(s);
    assert_eq!(report.status, Some(Status::RolledBack));
    let msg = err.to_string();
    assert!(msg.contains("did not finish within 300 ms"), "{msg}");
    assert!(msg.contains("stopped and rolled back"), "{msg}");
    assert!(
        msg.contains("traffic is back on the original (blue) task set"),
        "{msg}"
    );
    assert!(
        report
            .steps
            .iter()
            .any(|l| l == "rollback: traffic: blue 100% (2/2 running), green 0% (2/2 running)"),
        "{:?}",
        report.steps
    );
}

#[tokio::test]
async fn sigterm_mid_wait_stops_the_deployment_with_rollback() {
    let token = CancellationToken::new();
    let mut script = stuck_until_stopped();
    // The runner's SIGTERM arrives while our deployment is being watched (third poll).
    script.cancel_at_poll = Some((3, token.clone()));
    let script = shared(script);
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    let err = codedeploy::deploy_with(
        &aws,
        &plan(&[], None),
        &prepared(TD_ARN),
        &token,
        &mut report,
        fast(),
    )
    .await
    .expect_err("a cancelled deployment is an error");

    assert!(
        matches!(err, ecs_deploy::error::Error::Cancelled { .. }),
        "{err}"
    );
    let s = script.lock().unwrap();
    assert_eq!(s.stops.len(), 1);
    assert_eq!(s.stops[0].auto_rollback_enabled(), Some(true));
    assert_eq!(
        s.polls, 4,
        "stopped right after the poll that saw the signal: {:?}",
        s.calls
    );
    drop(s);
    assert_eq!(report.status, Some(Status::RolledBack));
    assert!(err.to_string().contains("the job was cancelled"), "{err}");
}

#[tokio::test]
async fn without_rollback_on_failure_a_timeout_stops_without_rollback_and_fails() {
    let mut script = stuck_until_stopped();
    if let Some(p) = script.after_stop.as_mut() {
        p.info = info(OURS, DeploymentStatus::Stopped);
    }
    let script = shared(script);
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    let err = codedeploy::deploy_with(
        &aws,
        &plan(&[("rollback-on-failure", "false")], None),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        Timing {
            timeout: Duration::from_millis(100),
            ..fast()
        },
    )
    .await
    .expect_err("a timeout is an error");
    assert_eq!(
        script.lock().unwrap().stops[0].auto_rollback_enabled(),
        Some(false)
    );
    assert_eq!(report.status, Some(Status::Failed));
    assert!(
        err.to_string().contains("no rollback was asked for"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unfinished_deployment_of_the_group_is_waited_for_before_ours_is_created() {
    let script = shared(Script {
        phases: canary_phases(),
        unfinished: VecDeque::from(vec![
            vec!["d-OTHER0001".to_string()],
            vec!["d-OTHER0001".to_string()],
        ]),
        ..Script::default()
    });
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    codedeploy::deploy_with(
        &aws,
        &plan(&[], Some("web1-hooks-only.yml")),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await
    .expect("ours runs once the other one is done");

    let s = script.lock().unwrap();
    let list_calls = s.calls.iter().filter(|c| *c == "ListDeployments").count();
    assert_eq!(list_calls, 3, "{:?}", s.calls);
    let create_at = s
        .calls
        .iter()
        .position(|c| c == "CreateDeployment")
        .unwrap();
    let last_list = s
        .calls
        .iter()
        .rposition(|c| c == "ListDeployments")
        .unwrap();
    assert!(last_list < create_at, "{:?}", s.calls);
    drop(s);
    assert!(report.steps[0].contains("waiting for unfinished deployment d-OTHER0001"));
    // A hooks-only file: resources generated from the service, hooks kept.
    let content = sent_appspec(&script);
    assert!(content.contains(TD_ARN) && content.contains("ContainerName: web1"));
    assert!(content.contains("ContainerPort: 3000"));
    assert!(content.contains("BeforeAllowTraffic: web1-check-green"));
    insta::assert_snapshot!("codedeploy_appspec_sent_from_hooks_only_file", content);
}

#[tokio::test]
async fn a_json_appspec_is_sent_as_json_with_the_new_task_definition() {
    let script = shared(Script {
        phases: canary_phases(),
        ..Script::default()
    });
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    codedeploy::deploy_with(
        &aws,
        &plan(&[], Some("web1-appspec.json")),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await
    .expect("succeeds");
    let content = sent_appspec(&script);
    // As amazon-ecs-deploy-task-definition's tests assert: the content's SHA-256 goes with it.
    let sha = script.lock().unwrap().created[0]
        .revision()
        .and_then(|r| r.app_spec_content())
        .and_then(|c| c.sha256())
        .map(str::to_string);
    {
        use sha2::Digest as _;
        let expected: String = sha2::Sha256::digest(content.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha.as_deref(), Some(expected.as_str()));
    }
    let v: serde_json::Value = serde_json::from_str(&content).expect("JSON sent");
    assert_eq!(
        v["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"],
        TD_ARN
    );
    insta::assert_snapshot!("codedeploy_appspec_sent_from_json_file", content);
}

#[tokio::test]
async fn an_appspec_port_the_task_definition_lacks_is_refused_before_any_write() {
    let script = shared(Script {
        phases: canary_phases(),
        ..Script::default()
    });
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    let err = codedeploy::deploy_with(
        &aws,
        &plan(&[], Some("web1-wrong-port.yml")),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await
    .expect_err("refused");
    assert!(
        err.to_string()
            .contains("ContainerPort 8080 is not a port mapping of container web1"),
        "{err}"
    );
    // The annotation points at the user's AppSpec file.
    assert_eq!(
        err.file_location().map(|l| l.file),
        Some(fixture("appspecs/web1-wrong-port.yml"))
    );
    let s = script.lock().unwrap();
    assert!(s.created.is_empty() && s.stops.is_empty(), "{:?}", s.calls);
    assert!(report.deployment_id.is_none());
}

#[tokio::test]
async fn an_unchanged_task_definition_starts_no_deployment_unless_forced() {
    let script = shared(Script {
        phases: canary_phases(),
        ..Script::default()
    });
    let aws = scripted_aws(&script);
    let mut same = prepared(TD_ARN);
    same.changed = false;
    let mut report = Outcome::default();
    codedeploy::deploy_with(
        &aws,
        &plan(&[], None),
        &same,
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await
    .expect("nothing to do is a success");
    assert!(script.lock().unwrap().calls.is_empty());
    assert_eq!(report.status, Some(Status::Succeeded));
    assert!(report.deployment_id.is_none());
    assert!(report.steps[0].contains("task definition unchanged"));

    // force-new-deployment, or a rebuilt tag (deploy() sets `redeploy` for both).
    same.redeploy = true;
    let mut report = Outcome::default();
    codedeploy::deploy_with(
        &aws,
        &plan(&[("force-new-deployment", "true")], None),
        &same,
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await
    .expect("forced deployment succeeds");
    assert_eq!(script.lock().unwrap().created.len(), 1);
    assert_eq!(report.deployment_id.as_deref(), Some(OURS));
}

// ---------------------------------------------------------------------------------------------
// moto: the calls it plays.
// ---------------------------------------------------------------------------------------------

/// Clients on moto; SDK retries off so moto's HTTP 500 for StopDeployment answers at once.
fn moto_aws(moto: &MotoServer) -> Aws {
    let config = sdk_config(&moto.endpoint())
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    Aws::from_config(&config)
}

/// Registers web1's task definition, and creates the application and group for prod/web1.
async fn moto_setup(aws: &Aws, app: &str, group: &str, service: &str) -> String {
    let td = aws
        .ecs
        .register_task_definition()
        .family("web1")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web1")
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.4.0")
                .memory(512)
                .port_mappings(PortMapping::builder().container_port(3000).build())
                .build(),
        )
        .send()
        .await
        .expect("register task definition");
    let arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("arn")
        .to_string();
    aws.codedeploy
        .create_application()
        .application_name(app)
        .compute_platform(ComputePlatform::Ecs)
        .send()
        .await
        .expect("create application");
    aws.codedeploy
        .create_deployment_group()
        .application_name(app)
        .deployment_group_name(group)
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .ecs_services(
            EcsService::builder()
                .cluster_name("prod")
                .service_name(service)
                .build(),
        )
        .send()
        .await
        .expect("create deployment group");
    arn
}

/// Cluster prod and its CODE_DEPLOY service web1 on task definition `td`, on moto.
async fn moto_codedeploy_service(aws: &Aws, td: &str) {
    aws.ecs
        .create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("cluster");
    crate::preflight::moto_service_only(aws, "web1", td).await;
}

async fn moto_deployments(aws: &Aws, app: &str, group: &str) -> Vec<String> {
    aws.codedeploy
        .list_deployments()
        .application_name(app)
        .deployment_group_name(group)
        .send()
        .await
        .expect("list deployments")
        .deployments()
        .to_vec()
}

#[tokio::test]
async fn on_moto_the_deployment_is_created_under_the_default_names_with_the_filled_appspec() {
    let moto = MotoServer::start();
    let aws = moto_aws(&moto);
    let arn = moto_setup(&aws, "AppECS-prod-web1", "DgpECS-prod-web1", "web1").await;
    let mut report = Outcome::default();
    // moto keeps the deployment "Created" forever: the wait times out, and StopDeployment is
    // answered with HTTP 500, so the run ends failed, saying the deployment may still run.
    let plan = plan(
        &[(
            "codedeploy-deployment-config",
            "CodeDeployDefault.ECSAllAtOnce",
        )],
        Some("web1-appspec.yml"),
    );
    let prepared = checked(&aws, &plan, &arn).await.expect("preflight");
    let err = codedeploy::deploy_with(
        &aws,
        &plan,
        &prepared,
        &CancellationToken::new(),
        &mut report,
        Timing {
            timeout: Duration::from_millis(300),
            cadence: Cadence::Every(Duration::from_millis(50)),
            ..fast()
        },
    )
    .await
    .expect_err("moto never finishes a deployment");

    let ids = moto_deployments(&aws, "AppECS-prod-web1", "DgpECS-prod-web1").await;
    assert_eq!(ids.len(), 1);
    assert_eq!(report.deployment_id.as_deref(), Some(ids[0].as_str()));
    let stored = aws
        .codedeploy
        .get_deployment()
        .deployment_id(&ids[0])
        .send()
        .await
        .unwrap()
        .deployment_info
        .unwrap();
    assert_eq!(
        stored.deployment_config_name(),
        Some("CodeDeployDefault.ECSAllAtOnce")
    );
    assert_eq!(
        stored.description(),
        Some(format!("web1 1.4.0 ({arn}) by ecs-deploy-action").as_str())
    );
    let content = stored
        .revision()
        .and_then(|r| r.app_spec_content())
        .and_then(|c| c.content())
        .expect("moto stored the AppSpec")
        .to_string();
    assert!(
        content.contains(&format!("TaskDefinition: {arn}")),
        "{content}"
    );
    assert!(content.contains("ContainerName: web1") && content.contains("ContainerPort: 3000"));

    assert_eq!(report.status, Some(Status::Failed));
    let msg = err.to_string();
    assert!(msg.contains("StopDeployment"), "{msg}");
    assert!(msg.contains("may still be running"), "{msg}");
    assert!(
        report
            .steps
            .iter()
            .any(|l| l == "deployment created, waiting to start")
    );
}

#[tokio::test]
async fn on_moto_an_unfinished_deployment_of_the_group_is_never_stacked() {
    let moto = MotoServer::start();
    let aws = moto_aws(&moto);
    let arn = moto_setup(&aws, "web1-app", "web1-blue-green", "web1").await;
    let other = aws
        .codedeploy
        .create_deployment()
        .application_name("web1-app")
        .deployment_group_name("web1-blue-green")
        .send()
        .await
        .expect("another deployment")
        .deployment_id()
        .unwrap()
        .to_string();
    let mut report = Outcome::default();
    let plan = plan(
        &[
            ("codedeploy-application", "web1-app"),
            ("codedeploy-deployment-group", "web1-blue-green"),
        ],
        None,
    );
    let prepared = checked(&aws, &plan, &arn).await.expect("preflight");
    let err = codedeploy::deploy_with(
        &aws,
        &plan,
        &prepared,
        &CancellationToken::new(),
        &mut report,
        Timing {
            queue_limit: Duration::from_millis(300),
            cadence: Cadence::Every(Duration::from_millis(50)),
            ..fast()
        },
    )
    .await
    .expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains(&other), "{msg}");
    assert!(msg.contains("a second deployment was not started"), "{msg}");
    assert!(msg.contains("aws deploy stop-deployment"), "{msg}");
    assert_eq!(
        moto_deployments(&aws, "web1-app", "web1-blue-green").await,
        vec![other]
    );
    assert!(report.deployment_id.is_none());
}

#[tokio::test]
async fn on_moto_a_deployment_group_of_another_service_is_refused_before_any_write() {
    let moto = MotoServer::start();
    let aws = moto_aws(&moto);
    let arn = moto_setup(&aws, "AppECS-prod-web1", "DgpECS-prod-web1", "web2").await;
    // The preflight's read of the application and group: it fails before anything is written.
    let err = checked(&aws, &plan(&[], None), &arn)
        .await
        .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("DgpECS-prod-web1 deploys prod/web2, not this service"),
        "{msg}"
    );
    assert!(
        moto_deployments(&aws, "AppECS-prod-web1", "DgpECS-prod-web1")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn on_moto_a_missing_application_names_the_default_and_the_input_to_set() {
    let moto = MotoServer::start();
    let aws = moto_aws(&moto);
    let arn = moto_setup(&aws, "something-else", "DgpECS-prod-web1", "web1").await;
    // The preflight's read of the application and group: it fails before anything is written.
    let err = checked(&aws, &plan(&[], None), &arn)
        .await
        .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("CodeDeploy application AppECS-prod-web1 cannot be read"),
        "{msg}"
    );
    assert!(msg.contains("codedeploy-application"), "{msg}");
}

/// Runs `script` (stuck until stopped) with production timing, the job cancelled on the second
/// poll; `edit` adds to the timeline. Returns the report, how soon after the signal it reported,
/// and the script; the run must have ended `Cancelled`.
async fn cancelled_in_production(edit: impl FnOnce(&mut Script)) -> (Outcome, Duration, Shared) {
    let token = CancellationToken::new();
    let mut script = stuck_until_stopped();
    script.cancel_at_poll = Some((2, token.clone()));
    edit(&mut script);
    let script = shared(script);
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    let cancelled_at = crate::support::when_cancelled(&token);
    let err = codedeploy::deploy_with(
        &aws,
        &plan(&[], None),
        &prepared(TD_ARN),
        &token,
        &mut report,
        codedeploy::timing(&plan(&[], None).settings.rollout),
    )
    .await
    .expect_err("a cancelled deployment is an error");
    let reported_after = cancelled_at.await.expect("cancel watcher").elapsed();

    assert!(
        matches!(err, ecs_deploy::error::Error::Cancelled { .. }),
        "{err}"
    );
    (report, reported_after, script)
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_reports_within_seconds_while_codedeploy_goes_on_rolling_back() {
    use LifecycleEventStatus::InProgress;
    // Production timing: GitHub kills a cancelled job about 10 s after its first signal, so
    // after StopDeployment the rollback is followed for 5 s at most, once a second.
    let (report, reported_after, script) = cancelled_in_production(|script| {
        script.rollback = Some(Phase {
            info: info(ROLLBACK, DeploymentStatus::InProgress),
            target: Some(ecs_target(&events(6, InProgress), 50.0, 50.0)),
        });
    })
    .await;
    assert!(
        reported_after <= Duration::from_secs(6),
        "reported {reported_after:?} after the signal"
    );
    let s = script.lock().unwrap();
    assert_eq!(s.stops.len(), 1);
    assert_eq!(s.stops[0].auto_rollback_enabled(), Some(true));
    assert!(
        s.calls.iter().any(|c| c == "GetDeployment d-ROLLBACK1"),
        "the rollback deployment was looked at: {:?}",
        s.calls
    );
    drop(s);
    assert_eq!(report.status, Some(Status::Cancelled));
    assert!(
        report
            .rollback
            .as_deref()
            .is_some_and(|r| r.contains("StopDeployment with rollback was sent")),
        "{:?}",
        report.rollback
    );
}

#[tokio::test]
async fn without_wait_for_service_stability_the_deployment_is_created_and_not_followed() {
    let script = shared(stuck_until_stopped());
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    codedeploy::deploy_with(
        &aws,
        &plan(&[("wait-for-service-stability", "false")], None),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await
    .expect("created, not followed");

    let s = script.lock().unwrap();
    assert!(
        s.calls.iter().any(|c| c == "CreateDeployment"),
        "{:?}",
        s.calls
    );
    assert!(
        !s.calls
            .iter()
            .any(|c| c == &format!("GetDeployment {OURS}")),
        "{:?}",
        s.calls
    );
    assert!(s.stops.is_empty());
    drop(s);
    assert_eq!(report.status, Some(Status::Succeeded));
    assert_eq!(report.deployment_id.as_deref(), Some(OURS));
    assert!(
        report
            .steps
            .iter()
            .any(|l| l.contains("wait-for-service-stability: false")),
        "{:?}",
        report.steps
    );
}

#[tokio::test]
async fn after_codedeploy_rolled_back_the_failed_revision_is_deregistered_when_asked() {
    // ECS on moto (service, task definitions, register/deregister), CodeDeploy scripted: moto
    // never moves a deployment, so it cannot fail one.
    let moto = MotoServer::start();
    let on_moto = moto_aws(&moto);
    let blue = moto_setup(&on_moto, "AppECS-prod-web1", "DgpECS-prod-web1", "web1").await;
    moto_codedeploy_service(&on_moto, &blue).await;
    // Fails at once (no poll interval to sit through), then CodeDeploy's rollback succeeds.
    let mut failing = failing_at_after_allow_test_traffic();
    failing.phases.remove(0);
    let script = shared(failing);
    let aws = scripted_aws(&script).with_ecs(on_moto.ecs.clone());
    let plan = plan(
        &[("deregister-failed-task-definition", "true")],
        Some("web1-appspec.yml"),
    );
    let failed = crate::support::checked_deploy(
        &aws,
        &plan,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.5.0",
    )
    .await
    .expect_err("a failed deployment is an error");
    let (err, report) = (failed.error, failed.outcome);

    assert!(err.to_string().contains("AfterAllowTestTraffic"), "{err}");
    assert_eq!(report.status, Some(Status::RolledBack));
    assert_eq!(report.kind.map(|k| k.as_str()), Some("codedeploy"));
    let green = report.task_definition_arn.clone().expect("registered");
    assert!(green.ends_with("task-definition/web1:2"), "{green}");
    let status = |arn: String| {
        let ecs = on_moto.ecs.clone();
        async move {
            ecs.describe_task_definition()
                .task_definition(arn)
                .send()
                .await
                .expect("describe")
                .task_definition()
                .and_then(|t| t.status().cloned())
                .map(|s| s.as_str().to_string())
        }
    };
    assert_eq!(status(green).await.as_deref(), Some("INACTIVE"));
    assert_eq!(status(blue).await.as_deref(), Some("ACTIVE"));
    assert!(
        report.steps.iter().any(|l| l == "deregistered web1:2"),
        "{:?}",
        report.steps
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_on_moto_sets_codedeploy_deployment_id_and_writes_the_rendered_task_definition_into_the_workspace()
 {
    // amazon-ecs-deploy-task-definition's `codedeploy-deployment-id`, and the render action's
    // `task-definition` where the action's container has no RUNNER_TEMP (the workspace).
    let moto = MotoServer::start();
    let aws = moto_aws(&moto);
    let td = moto_setup(&aws, "AppECS-prod-web1", "DgpECS-prod-web1", "web1").await;
    moto_codedeploy_service(&aws, &td).await;
    let ws = tempfile::tempdir().expect("workspace");
    crate::support::copy_tree(&fixture("monorepo"), ws.path());
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3";
    let out = crate::support::BinRun::new()
        .envs(crate::support::aws_env(&moto.endpoint()))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("RUNNER_TEMP")
        .env("GITHUB_WORKSPACE", ws.path())
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_SHA", "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env(
            "GITHUB_EVENT_PATH",
            fixture("events/pr-merged-release-web1.json"),
        )
        .env("INPUT_CLUSTER", "prod")
        .env("INPUT_SERVICE", "web1")
        .env("INPUT_CONTAINER-NAME", "web1")
        .env("INPUT_IMAGE", image)
        .env("INPUT_WAIT-FOR-SERVICE-STABILITY", "false")
        .run();
    out.assert_success();
    let ids = moto_deployments(&aws, "AppECS-prod-web1", "DgpECS-prod-web1").await;
    assert_eq!(ids.len(), 1, "{out}");
    assert_eq!(out.output("deployment-kind"), Some("codedeploy"), "{out}");
    assert_eq!(
        out.output("codedeploy-deployment-id"),
        Some(ids[0].as_str()),
        "{out}"
    );
    assert_eq!(out.output("deployment-id"), Some(ids[0].as_str()));
    // Relative to the workspace: the same path on the host and in the action's container.
    assert_eq!(
        out.output("task-definition"),
        Some(".ecs-deploy/web1-task-definition.json"),
        "{out}"
    );
    let rendered: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.path().join(".ecs-deploy/web1-task-definition.json"))
            .expect("the rendered file is in the workspace"),
    )
    .expect("rendered JSON");
    assert_eq!(rendered["containerDefinitions"][0]["image"], image);
    assert_eq!(
        std::fs::read_to_string(ws.path().join(".ecs-deploy/.gitignore")).ok(),
        Some("*\n".to_string()),
        "the copy stays out of git"
    );
    let arn = out.output("task-definition-arn").unwrap_or_default();
    assert!(arn.ends_with(":task-definition/web1:2"), "{out}");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_whose_stop_deployment_hangs_reports_cancelled_within_the_budget() {
    // Scripted: moto's StopDeployment answers HTTP 500 at once; none hangs. The run must report
    // within the 5 s a cancelled run's rollback gets, saying where to look.
    let (report, reported_after, script) =
        cancelled_in_production(|script| script.stop_hangs = true).await;
    assert!(
        reported_after <= Duration::from_secs(5),
        "reported {reported_after:?} after the signal"
    );
    assert_eq!(
        script.lock().unwrap().stops.len(),
        1,
        "StopDeployment was sent"
    );
    assert_eq!(report.status, Some(Status::Cancelled));
    let rollback = report.rollback.clone().unwrap_or_default();
    assert!(
        rollback.starts_with("rollback requested, still running; look at https://")
            && rollback.contains(OURS),
        "{rollback}"
    );
}

/// A task of the new revision (web1:8) started by the deployment, stopped by a pull error.
fn pull_error_task(n: u32) -> aws_sdk_ecs::types::Task {
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v2";
    stopped_service_task(
        n,
        TD_ARN,
        aws_sdk_ecs::types::TaskStopCode::TaskFailedToStart,
        &format!(
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref {image}: not found"
        ),
        image,
        None,
    )
}

/// Scripted: moto's CodeDeploy deployments never leave `Created` and its ECS runs no
/// containers, so no green task ever fails to pull and stops while CodeDeploy waits.
#[tokio::test(start_paused = true)]
async fn green_tasks_that_keep_failing_to_pull_stop_the_deployment_early_naming_the_image() {
    let script = stuck_until_stopped();
    script.tasks.lock().unwrap().stopping = (0..3)
        .map(|n| {
            (
                Duration::from_secs(10 + 15 * u64::from(n)),
                pull_error_task(n),
            )
        })
        .collect();
    let script = shared(script);
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    let timing = Timing {
        cadence: Cadence::Every(Duration::from_secs(1)),
        timeout: Duration::from_secs(30 * 60),
        ..fast()
    };
    let started = tokio::time::Instant::now();
    let err = codedeploy::deploy_with(
        &aws,
        &plan(&[], None),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        timing,
    )
    .await
    .expect_err("green tasks that cannot start fail the deployment");
    let ended = started.elapsed().as_secs();

    // The third task stops at 40 s; the tasks are read every 10 s: stopped well before the
    // 30 minutes of wait-for-minutes.
    assert!((40..=60).contains(&ended), "ended at {ended} s");
    let s = script.lock().unwrap();
    assert_eq!(s.stops.len(), 1, "{:?}", s.calls);
    assert_eq!(s.stops[0].auto_rollback_enabled(), Some(true));
    let families = s.tasks.lock().unwrap().listed_families.clone();
    assert!(
        !families.is_empty() && families.iter().all(|f| f.as_deref() == Some("web1")),
        "{families:?}"
    );
    drop(s);
    assert_eq!(report.status, Some(Status::RolledBack));
    let msg = err.to_string();
    assert!(
        msg.contains(
            "3 tasks of the new revision stopped: image 123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v2 not found"
        ) && msg.contains("execution role")
            && msg.contains("stopped and rolled back"),
        "{msg}"
    );
    assert!(
        report.steps.iter().any(|l| l.starts_with(
            "cause: image 123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v2 not found"
        )),
        "{:?}",
        report.steps
    );
    assert!(
        report
            .links
            .iter()
            .any(|l| l.label.starts_with("stopped task ")),
        "{:?}",
        report.links
    );
}

/// The canary deployment with GetDeployment of ours answering 500 `read_errors` times in a row
/// after its second poll: the result, the report and the script.
async fn canary_with_read_errors(
    read_errors: usize,
) -> (Result<(), ecs_deploy::error::Error>, Outcome, Shared) {
    let script = shared(Script {
        phases: canary_phases(),
        read_errors,
        ..Script::default()
    });
    let aws = scripted_aws(&script);
    let mut report = Outcome::default();
    let result = codedeploy::deploy_with(
        &aws,
        &plan(&[], None),
        &prepared(TD_ARN),
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await;
    (result, report, script)
}

/// Scripted: moto's GetDeployment never fails, so it cannot play CodeDeploy answering 500 for a
/// while mid-deployment.
#[tokio::test]
async fn a_few_failed_reads_in_a_row_do_not_abandon_the_deployment() {
    let (result, report, script) = canary_with_read_errors(3).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(report.status, Some(Status::Succeeded));
    let s = script.lock().unwrap();
    assert_eq!(s.read_errors, 0, "the three 500s were served");
    assert!(s.stops.is_empty(), "{:?}", s.calls);
}

/// Scripted, as above: CodeDeploy answering 500 to every read from some point on.
#[tokio::test]
async fn reads_failing_on_and_on_end_the_wait_saying_it_may_still_run_and_where_to_look() {
    let (result, _, script) = canary_with_read_errors(usize::MAX).await;
    let msg = result
        .expect_err("a deployment that cannot be read is not a success")
        .to_string();
    assert!(
        msg.contains("could not be read 4 times in a row")
            && msg.contains("it may still be running: look at https://us-east-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-OURS12345"),
        "{msg}"
    );
    let s = script.lock().unwrap();
    // Nothing is stopped or rolled back on a guess: CodeDeploy may be deploying fine.
    assert!(s.stops.is_empty(), "{:?}", s.calls);
}

mod bake {
    //! The verification gate inside a CodeDeploy deployment, against the scripted CodeDeploy of
    //! `support/scripted_codedeploy.rs` (wiremock speaking CodeDeploy's JSON 1.1 protocol):
    //! moto's CodeDeploy leaves every deployment `Created` and has no StopDeployment,
    //! ListDeploymentTargets or GetDeploymentTarget, so it can neither move traffic to the
    //! replacement task set nor roll it back. The app behind `verify-url` is a local wiremock
    //! server that records when each probe came, to hold the gate's timing against the script's
    //! traffic step.

    use super::*;
    use crate::support::scripted_codedeploy::{OURS, ROLLBACK, ScriptedCodeDeploy, Timeline};
    use ecs_deploy::verify::Verdict;
    use serde_json::json;
    use std::time::Instant;
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    /// The app: answers every GET with `status`, noting when it came.
    #[derive(Clone)]
    struct App {
        status: u16,
        times: Arc<Mutex<Vec<Instant>>>,
    }

    impl Respond for App {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            self.times.lock().unwrap().push(Instant::now());
            ResponseTemplate::new(self.status)
        }
    }

    async fn app(status: u16) -> (MockServer, Arc<Mutex<Vec<Instant>>>) {
        let server = MockServer::start().await;
        let times = Arc::new(Mutex::new(Vec::new()));
        Mock::given(any())
            .respond_with(App {
                status,
                times: times.clone(),
            })
            .mount(&server)
            .await;
        (server, times)
    }

    /// A 10% canary: traffic moves 300 ms after CreateDeployment, all of it 3.5 s later (the
    /// gate's 3 probes take 2 s), the original task set kept 500 ms more.
    fn canary() -> Timeline {
        Timeline {
            install: Duration::from_millis(300),
            first_share: 10.0,
            interval: Duration::from_millis(3500),
            termination: Duration::from_millis(500),
            stop_lag: Duration::from_millis(100),
            rollback: Duration::from_millis(300),
        }
    }

    /// Deploys web1 through the script, looking every 10 ms, the gate probing `url` as in a
    /// real run (one GET a second).
    async fn deploy(
        fake: &ScriptedCodeDeploy,
        config: &str,
        url: &str,
    ) -> (Result<(), ecs_deploy::error::Error>, Outcome) {
        deploy_with_inputs(fake, config, &[("verify-url", url)]).await
    }

    /// [`deploy`] with these verify inputs (3 requests).
    async fn deploy_with_inputs(
        fake: &ScriptedCodeDeploy,
        config: &str,
        verify: &[(&str, &str)],
    ) -> (Result<(), ecs_deploy::error::Error>, Outcome) {
        let aws = Aws::from_config(&sdk_config(&fake.server.uri()));
        let mut report = Outcome::default();
        let mut inputs = vec![
            ("codedeploy-deployment-config", config),
            ("verify-requests", "3"),
        ];
        inputs.extend_from_slice(verify);
        let r = codedeploy::deploy_with(
            &aws,
            &plan(&inputs, None),
            &prepared(TD_ARN),
            &CancellationToken::new(),
            &mut report,
            fast(),
        )
        .await;
        (r, report)
    }

    #[tokio::test]
    async fn a_passing_smoke_test_during_the_canary_lets_the_deployment_succeed() {
        let fake = ScriptedCodeDeploy::start(canary(), CANARY).await;
        let (app, probes) = app(200).await;
        let (r, report) = deploy(&fake, CANARY, &app.uri()).await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(report.status, Some(Status::Succeeded));
        let v = report.verification.as_ref().expect("the gate ran");
        assert_eq!(v.verdict, Verdict::Passed, "{}", v.headline());
        assert!(fake.bodies("StopDeployment").is_empty(), "never stopped");
        // Once, while 10% of the traffic was on green: after the traffic step, before all of it.
        let step = fake.traffic_step().expect("created");
        let times = probes.lock().unwrap().clone();
        assert_eq!(times.len(), 3, "the gate ran once: verify-requests probes");
        assert!(
            times.iter().all(|t| *t >= step),
            "a probe before traffic moved"
        );
        assert!(
            times.iter().all(|t| *t < step + canary().interval),
            "probed during the canary interval"
        );
        assert!(
            times[0] - step < Duration::from_secs(1),
            "first probe {:?} after the traffic step",
            times[0] - step
        );
        let steps = report.steps.join("\n");
        let shifted = steps
            .find("traffic: blue 90% (2/2 running), green 10% (2/2 running)")
            .expect(&steps);
        let verified = steps
            .find("verification passed: 0 of 3 probes")
            .expect(&steps);
        let succeeded = steps.find("deployment succeeded").expect(&steps);
        assert!(shifted < verified && verified < succeeded, "{steps}");
    }

    #[tokio::test]
    async fn a_failing_smoke_test_during_the_canary_stops_the_deployment_and_rolls_it_back() {
        let fake = ScriptedCodeDeploy::start(canary(), CANARY).await;
        let (app, probes) = app(500).await;
        let (r, report) = deploy(&fake, CANARY, &app.uri()).await;
        let e = r.expect_err("the verification failed").to_string();
        assert!(
            e.starts_with(&format!(
                "web1 (CodeDeploy AppECS-prod-web1/DgpECS-prod-web1 deployment {OURS}): verification failed: 3 of 3 probes"
            )),
            "{e}"
        );
        assert_eq!(report.status, Some(Status::RolledBack));
        let v = report.verification.as_ref().expect("the gate ran");
        assert_eq!(v.verdict, Verdict::Failed);
        let stops = fake.calls("StopDeployment");
        assert_eq!(
            stops.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>(),
            vec![json!({"deploymentId": OURS, "autoRollbackEnabled": true})],
            "one StopDeployment with auto rollback"
        );
        // The gate ran once, after traffic reached green and before the stop.
        let step = fake.traffic_step().expect("created");
        let times = probes.lock().unwrap().clone();
        assert_eq!(times.len(), 3);
        assert!(times.iter().all(|t| *t >= step && *t < stops[0].1));
        // Followed until CodeDeploy's rollback deployment had traffic back on blue.
        let rollback = report.rollback.clone().unwrap_or_default();
        assert!(
            rollback.contains(&format!(
                "{ROLLBACK}: traffic is back on the original (blue) task set"
            )),
            "{rollback}"
        );
        assert!(
            fake.bodies("GetDeployment")
                .iter()
                .any(|b| b["deploymentId"] == ROLLBACK)
        );
        let steps = report.steps.join("\n");
        assert!(
            steps.contains(&format!(
                "stopping deployment {OURS} (verification failed: 3 of 3 probes"
            )),
            "{steps}"
        );
    }

    #[tokio::test]
    async fn without_rollback_on_failure_a_failed_verification_stops_the_deployment_and_fails() {
        let fake = ScriptedCodeDeploy::start(canary(), CANARY).await;
        let (app, _) = app(500).await;
        let url = app.uri();
        let (r, report) = deploy_with_inputs(
            &fake,
            CANARY,
            &[("verify-url", &url), ("rollback-on-failure", "false")],
        )
        .await;
        let e = r.expect_err("the verification failed").to_string();
        assert!(e.contains("): verification failed: 3 of 3 probes"), "{e}");
        assert_eq!(report.status, Some(Status::Failed));
        assert_eq!(
            fake.bodies("StopDeployment"),
            vec![json!({"deploymentId": OURS, "autoRollbackEnabled": false})]
        );
        assert_eq!(
            report.rollback.as_deref(),
            Some("no rollback was asked for: traffic stays where CodeDeploy left it")
        );
        assert!(
            !fake
                .bodies("GetDeployment")
                .iter()
                .any(|b| b["deploymentId"] == ROLLBACK),
            "no rollback deployment to follow"
        );
    }

    #[tokio::test]
    async fn all_at_once_is_verified_in_the_termination_wait_and_stopped_there() {
        let timeline = Timeline {
            first_share: 100.0,
            interval: Duration::ZERO,
            termination: Duration::from_secs(4),
            ..canary()
        };
        let all = "CodeDeployDefault.ECSAllAtOnce";
        let fake = ScriptedCodeDeploy::start(timeline, all).await;
        let (app, probes) = app(503).await;
        let (r, report) = deploy(&fake, all, &app.uri()).await;
        assert!(r.is_err());
        assert_eq!(report.status, Some(Status::RolledBack));
        let stops = fake.calls("StopDeployment");
        assert_eq!(stops.len(), 1);
        let step = fake.traffic_step().expect("created");
        assert!(
            stops[0].1 > step && stops[0].1 < step + timeline.termination,
            "stopped within the termination wait"
        );
        let times = probes.lock().unwrap().clone();
        assert_eq!(times.len(), 3);
        assert!(times.iter().all(|t| *t >= step));
    }

    #[tokio::test]
    async fn a_deployment_that_ends_before_the_verdict_fails_and_says_it_was_not_rolled_back() {
        // The termination wait (500 ms) is shorter than the gate (3 probes a second apart):
        // CodeDeploy ends the deployment while the gate looks, so StopDeployment answers
        // DeploymentAlreadyCompletedException.
        let timeline = Timeline {
            first_share: 100.0,
            interval: Duration::ZERO,
            termination: Duration::from_millis(500),
            ..canary()
        };
        let all = "CodeDeployDefault.ECSAllAtOnce";
        let fake = ScriptedCodeDeploy::start(timeline, all).await;
        let (app, _) = app(500).await;
        let (r, report) = deploy(&fake, all, &app.uri()).await;
        let e = r.expect_err("the verification failed").to_string();
        assert!(e.contains("): verification failed: 3 of 3 probes"), "{e}");
        assert_eq!(report.status, Some(Status::Failed), "not rolled back");
        assert_eq!(fake.bodies("StopDeployment").len(), 1);
        let rollback = report.rollback.clone().unwrap_or_default();
        assert!(
            rollback.starts_with(&format!(
                "not rolled back: deployment {OURS} succeeded before StopDeployment took effect"
            )),
            "{rollback}"
        );
        assert!(
            report.steps.iter().any(|s| s
                == &format!("deployment {OURS} had already ended when StopDeployment arrived")),
            "{:?}",
            report.steps
        );
    }

    #[tokio::test]
    async fn with_a_test_url_the_gate_gets_the_test_listener_which_reaches_only_the_new_tasks() {
        let fake = ScriptedCodeDeploy::start(canary(), CANARY).await;
        let (production, on_production) = app(200).await;
        let (test_listener, on_test) = app(200).await;
        let (prod_url, test_url) = (production.uri(), test_listener.uri());
        let (r, report) = deploy_with_inputs(
            &fake,
            CANARY,
            &[("verify-url", &prod_url), ("verify-test-url", &test_url)],
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        let v = report.verification.as_ref().expect("the gate ran");
        assert_eq!(v.url.as_deref(), Some(format!("{test_url}/").as_str()));
        assert_eq!(on_test.lock().unwrap().len(), 3);
        assert!(on_production.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_group_that_gives_the_gate_no_window_is_refused_naming_the_setting() {
        let fake = ScriptedCodeDeploy::start(canary(), CANARY).await;
        let aws = Aws::from_config(&sdk_config(&fake.server.uri()));
        let target = |termination_wait: i32, config: Option<&str>| codedeploy::CodeDeployTarget {
            application: "AppECS-prod-web1".into(),
            group: "DgpECS-prod-web1".into(),
            ready_wait: 0,
            termination_wait,
            config: config.map(str::to_string),
            test_listener: false,
        };
        let url = "https://web1.example.com/health";
        let no_config = plan(&[("verify-url", url)], None);
        // No config anywhere: CodeDeploy's default for ECS, all at once.
        let e = codedeploy::check_bake(&aws, &no_config, &target(0, None))
            .await
            .expect_err("no window")
            .to_string();
        assert!(
            e.starts_with("verify-url / verify-alarms: app web1 deploys by CodeDeploy with CodeDeployDefault.ECSAllAtOnce, which moves all production traffic at once"),
            "{e}"
        );
        assert!(
            e.contains(
                "terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes, is 0"
            ) && e.contains("set that wait to at least 1 minute on the group"),
            "{e}"
        );
        assert!(
            codedeploy::check_bake(&aws, &no_config, &target(5, None))
                .await
                .expect("a termination wait is a window")
                .is_none()
        );
        // The group's own config, and the input over it.
        let group_canary = target(0, Some(CANARY));
        assert!(
            codedeploy::check_bake(&aws, &no_config, &group_canary)
                .await
                .expect("a canary interval is a window")
                .is_none()
        );
        let forced = plan(
            &[
                ("verify-url", url),
                (
                    "codedeploy-deployment-config",
                    "CodeDeployDefault.ECSAllAtOnce",
                ),
            ],
            None,
        );
        assert!(
            codedeploy::check_bake(&aws, &forced, &group_canary)
                .await
                .is_err()
        );
        // A custom config is read: its traffic routing decides.
        let custom = plan(
            &[
                ("verify-url", url),
                ("codedeploy-deployment-config", "MyAllAtOnce"),
            ],
            None,
        );
        assert!(
            codedeploy::check_bake(&aws, &custom, &target(0, None))
                .await
                .is_err()
        );
        assert_eq!(
            fake.bodies("GetDeploymentConfig"),
            vec![json!({"deploymentConfigName": "MyAllAtOnce"})]
        );
        // verify-test-url needs the group's test listener.
        let with_test_url = plan(
            &[
                ("verify-url", url),
                ("verify-test-url", "https://web1.example.com:8443/health"),
            ],
            None,
        );
        let e = codedeploy::check_bake(&aws, &with_test_url, &target(5, None))
            .await
            .expect_err("no test listener")
            .to_string();
        assert!(
            e.starts_with("verify-test-url: app web1 deploys by CodeDeploy and deployment group AppECS-prod-web1/DgpECS-prod-web1 has no test listener"),
            "{e}"
        );
        let listening = codedeploy::CodeDeployTarget {
            test_listener: true,
            ..target(5, None)
        };
        assert!(
            codedeploy::check_bake(&aws, &with_test_url, &listening)
                .await
                .expect("a test listener")
                .is_none()
        );
        assert!(
            fake.bodies("CreateDeployment").is_empty(),
            "nothing written"
        );
    }
}
