//! The CodeDeploy path: `codedeploy::deploy_with` on a scripted CodeDeploy that plays a real
//! canary (CodeDeployDefault.ECSCanary10Percent5Minutes) on a group that keeps the original task
//! set 5 minutes: green up at 60 s, 10% of traffic at 65 s, all of it at 365 s, the termination
//! wait from 368 s to 668 s, then the original task set is deleted and the deployment
//! `Succeeded` 2 s later, plus [`STAGGER`] per deployment (deleting takes a while, and how long
//! is not known in advance).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_codedeploy::Client as CodeDeploy;
use aws_sdk_codedeploy::operation::batch_get_deployments::BatchGetDeploymentsOutput;
use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment_target::GetDeploymentTargetOutput;
use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
use aws_sdk_codedeploy::types::{
    BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, DeploymentInfo,
    DeploymentReadyAction, DeploymentReadyOption, DeploymentStatus, DeploymentTarget,
    DeploymentTargetType, EcsTarget, EcsTaskSet, InstanceAction, LifecycleEvent,
    LifecycleEventStatus, TargetLabel, TargetStatus,
};
use aws_sdk_ecs::types::{DeploymentController, DeploymentControllerType, LoadBalancer, Service};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::Prepared;
use ecs_deploy::deploy::codedeploy::{self, CodeDeployTarget, Timing};
use ecs_deploy::deploy::poll::Poller;
use ecs_deploy::inputs::DeploymentChoice;
use ecs_deploy::outcome::Outcome as DeployOutcome;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::common::{self, Outcome, STAGGER, plan};

const CANARY: &str = "CodeDeployDefault.ECSCanary10Percent5Minutes";
/// The group's termination wait (minutes): the original task set is kept that long.
const TERMINATION_WAIT: i32 = 5;
/// Lifecycle events: name, start and end (seconds after CreateDeployment).
const EVENTS: [(&str, f64, f64); 8] = [
    ("BeforeInstall", 1.0, 3.0),
    ("Install", 3.0, 60.0),
    ("AfterInstall", 60.0, 61.0),
    ("AllowTestTraffic", 61.0, 62.0),
    ("AfterAllowTestTraffic", 62.0, 64.0),
    ("BeforeAllowTraffic", 64.0, 65.0),
    ("AllowTraffic", 65.0, 366.0),
    ("AfterAllowTraffic", 366.0, 368.0),
];
/// 10% of production traffic moves to green at AllowTraffic's start, the rest 5 minutes later.
const CANARY_AT: f64 = 65.0;
const ALL_AT: f64 = 365.0;
/// The termination wait ends here; the original task set is deleted after it.
const WAIT_ENDS: f64 = 368.0 + TERMINATION_WAIT as f64 * 60.0;
/// The AWS clock runs this far ahead of the runner's (real clocks differ).
const SKEW: f64 = 2.5;

/// When deployment `index` is Succeeded, seconds after its CreateDeployment.
fn done_at(index: usize) -> f64 {
    WAIT_ENDS + 2.0 + index as f64 * STAGGER
}

fn server_time(epoch: SystemTime, t: f64) -> DateTime {
    DateTime::from(epoch + Duration::from_secs_f64(t + SKEW))
}

fn info(id: &str, index: usize, t: f64, epoch: SystemTime) -> DeploymentInfo {
    let status = if t >= done_at(index) {
        DeploymentStatus::Succeeded
    } else if t >= 1.0 {
        DeploymentStatus::InProgress
    } else {
        DeploymentStatus::Created
    };
    DeploymentInfo::builder()
        .deployment_id(id)
        .application_name(format!("AppECS-prod-web{index}"))
        .deployment_group_name(format!("DgpECS-prod-web{index}"))
        .deployment_config_name(CANARY)
        .status(status)
        .create_time(server_time(epoch, 0.0))
        .instance_termination_wait_time_started(t >= 368.0)
        .blue_green_deployment_configuration(
            BlueGreenDeploymentConfiguration::builder()
                .deployment_ready_option(
                    DeploymentReadyOption::builder()
                        .action_on_timeout(DeploymentReadyAction::ContinueDeployment)
                        .wait_time_in_minutes(0)
                        .build(),
                )
                .terminate_blue_instances_on_deployment_success(
                    BlueInstanceTerminationOption::builder()
                        .action(InstanceAction::Terminate)
                        .termination_wait_time_in_minutes(TERMINATION_WAIT)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn target(id: &str, index: usize, t: f64, epoch: SystemTime) -> EcsTarget {
    let green = if t >= ALL_AT {
        100.0
    } else if t >= CANARY_AT {
        10.0
    } else {
        0.0
    };
    let done = t >= done_at(index);
    let mut b = EcsTarget::builder()
        .deployment_id(id)
        .target_id(format!("prod:web{index}"))
        .status(if done {
            TargetStatus::Succeeded
        } else {
            TargetStatus::InProgress
        })
        .task_sets_info(
            EcsTaskSet::builder()
                .identifer("ecs-svc/222")
                .task_set_label(TargetLabel::Green)
                .traffic_weight(green)
                .running_count(if t >= 60.0 { 2 } else { 0 })
                .desired_count(2)
                .build(),
        );
    if !done {
        b = b.task_sets_info(
            EcsTaskSet::builder()
                .identifer("ecs-svc/111")
                .task_set_label(TargetLabel::Blue)
                .traffic_weight(100.0 - green)
                .running_count(2)
                .desired_count(2)
                .build(),
        );
    }
    for (name, start, end) in EVENTS {
        let (status, started, ended) = if t >= end {
            (LifecycleEventStatus::Succeeded, true, true)
        } else if t >= start {
            (LifecycleEventStatus::InProgress, true, false)
        } else {
            (LifecycleEventStatus::Pending, false, false)
        };
        let mut e = LifecycleEvent::builder()
            .lifecycle_event_name(name)
            .status(status);
        if started {
            e = e.start_time(server_time(epoch, start));
        }
        if ended {
            e = e.end_time(server_time(epoch, end));
        }
        b = b.lifecycle_events(e.build());
    }
    b.build()
}

#[derive(Default)]
struct State {
    created: HashMap<String, Instant>,
    reads: u64,
    task_reads: Arc<AtomicU64>,
}

fn index_of(id: &str) -> usize {
    id.trim_start_matches("d-web").parse().unwrap_or(0)
}

/// The Aws clients of one cluster: CodeDeploy scripted, ECS answering the task watch, ECR never
/// called.
fn aws(state: &Arc<Mutex<State>>) -> Aws {
    let epoch = SystemTime::now();
    let s = state.clone();
    let create = mock!(CodeDeploy::create_deployment).then_compute_output(move |req| {
        let id = format!(
            "d-{}",
            req.application_name()
                .unwrap_or_default()
                .trim_start_matches("AppECS-prod-")
        );
        s.lock().unwrap().created.insert(id.clone(), Instant::now());
        CreateDeploymentOutput::builder().deployment_id(id).build()
    });
    let list = mock!(CodeDeploy::list_deployments)
        .then_compute_output(|_| ListDeploymentsOutput::builder().build());
    let s = state.clone();
    let get = mock!(CodeDeploy::get_deployment).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        s.reads += 1;
        let id = req.deployment_id().unwrap_or_default();
        let t = s.created[id].elapsed().as_secs_f64();
        GetDeploymentOutput::builder()
            .deployment_info(info(id, index_of(id), t, epoch))
            .build()
    });
    let s = state.clone();
    let batch = mock!(CodeDeploy::batch_get_deployments).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        s.reads += 1;
        let infos = req
            .deployment_ids()
            .iter()
            .map(|id| {
                let t = s.created[id].elapsed().as_secs_f64();
                info(id, index_of(id), t, epoch)
            })
            .collect();
        BatchGetDeploymentsOutput::builder()
            .set_deployments_info(Some(infos))
            .build()
    });
    let s = state.clone();
    let targets = mock!(CodeDeploy::list_deployment_targets).then_compute_output(move |req| {
        s.lock().unwrap().reads += 1;
        let id = req.deployment_id().unwrap_or_default();
        ListDeploymentTargetsOutput::builder()
            .target_ids(format!("prod:web{}", index_of(id)))
            .build()
    });
    let s = state.clone();
    let get_target = mock!(CodeDeploy::get_deployment_target).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        s.reads += 1;
        let id = req.deployment_id().unwrap_or_default();
        let t = s.created[id].elapsed().as_secs_f64();
        GetDeploymentTargetOutput::builder()
            .deployment_target(
                DeploymentTarget::builder()
                    .deployment_target_type(DeploymentTargetType::EcsTarget)
                    .ecs_target(target(id, index_of(id), t, epoch))
                    .build(),
            )
            .build()
    });
    let codedeploy = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [&create, &list, &get, &batch, &targets, &get_target]
    );
    // ECS: only the stopped-task watch's ListTasks (never a stopped task).
    let tasks = common::no_stopped_tasks(state.lock().unwrap().task_reads.clone());
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&tasks]);
    Aws::from_config(&common::closed_config())
        .with_codedeploy(codedeploy)
        .with_ecs(ecs)
}

fn prepared(app: &str) -> Prepared {
    Prepared {
        cluster: "prod".into(),
        service: app.into(),
        live: Service::builder()
            .service_name(app)
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(DeploymentControllerType::CodeDeploy)
                    .build()
                    .expect("controller"),
            )
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(format!(
                        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{app}-blue/0123456789abcdef"
                    ))
                    .container_name(app)
                    .container_port(3000)
                    .build(),
            )
            .build(),
        task_definition_arn: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{app}:8"),
        previous_task_definition_arn: Some(format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/{app}:7"
        )),
        container: app.into(),
        container_port: Some(3000),
        changed: true,
        redeploy: false,
        task_definition: serde_json::json!({
            "family": app,
            "containerDefinitions": [{"name": app, "portMappings": [{"containerPort": 3000}]}]
        }),
        codedeploy: Some(CodeDeployTarget {
            application: format!("AppECS-prod-{app}"),
            group: format!("DgpECS-prod-{app}"),
            ready_wait: 0,
            termination_wait: TERMINATION_WAIT,
            config: None,
            test_listener: false,
        }),
        previous_digest: None,
    }
}

/// One cluster: the deployments `indexes` created together, each watched to its end.
async fn cluster(timing: Timing, indexes: Vec<usize>) -> Outcome {
    let state = Arc::new(Mutex::new(State::default()));
    let aws = aws(&state);
    // One poller for the cluster's deploys, as a run has.
    let timing = Timing {
        poller: Some(Poller::for_aws(&aws)),
        ..timing
    };
    let cancel = CancellationToken::new();
    let deploy = |index: usize| {
        let (aws, cancel, timing) = (&aws, &cancel, timing.clone());
        async move {
            let app = format!("web{index}");
            let plan = plan(
                &app,
                DeploymentChoice::CodeDeploy,
                &[("codedeploy-deployment-config", CANARY)],
            );
            let mut report = DeployOutcome::default();
            let r =
                codedeploy::deploy_with(aws, &plan, &prepared(&app), cancel, &mut report, timing)
                    .await;
            (r, report.status)
        }
    };
    let reads = || {
        let s = state.lock().unwrap();
        (s.reads, s.task_reads.load(Ordering::Relaxed))
    };
    common::run_cluster("codedeploy", indexes, deploy, done_at, reads).await
}

/// 1 service per cluster (10 clusters), and 10 services in one cluster.
pub async fn scenarios(timing: Timing) -> (Outcome, Outcome) {
    common::scenarios(|indexes| cluster(timing.clone(), indexes)).await
}

/// The timing of a real run (`wait-for-minutes: 30`).
pub fn production() -> Timing {
    codedeploy::timing(
        &plan("web0", DeploymentChoice::CodeDeploy, &[])
            .settings
            .rollout,
    )
}
