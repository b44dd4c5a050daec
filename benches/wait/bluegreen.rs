//! The ECS blue/green path: `bluegreen::deploy_with` on a scripted ECS that plays a real
//! BLUE_GREEN service deployment with a 5-minute bake: green running at 50 s, production traffic
//! on green at 60 s, bake time from 62 s to 362 s, then blue scales down (CLEAN_UP) and the
//! deployment is `SUCCESSFUL` 5 s later, plus [`STAGGER`] per deployment (how long blue takes
//! to stop is not known in advance).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::describe_service_deployments::DescribeServiceDeploymentsOutput;
use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentStrategy, Service, ServiceDeployment,
    ServiceDeploymentBrief, ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
    ServiceRevisionSummary,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::Prepared;
use ecs_deploy::deploy::bluegreen::{self, Timing};
use ecs_deploy::deploy::poll::Poller;
use ecs_deploy::inputs::DeploymentChoice;
use ecs_deploy::outcome::Outcome as DeployOutcome;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::common::{self, Outcome, STAGGER, plan};

const BAKE_MINUTES: i32 = 5;
/// Lifecycle stages and when each starts (seconds after UpdateService); CLEAN_UP ends at
/// [`done_at`].
const STAGES: [(&str, f64); 11] = [
    ("RECONCILE_SERVICE", 0.0),
    ("PRE_SCALE_UP", 2.0),
    ("SCALE_UP", 5.0),
    ("POST_SCALE_UP", 50.0),
    ("TEST_TRAFFIC_SHIFT", 52.0),
    ("POST_TEST_TRAFFIC_SHIFT", 55.0),
    ("PRE_PRODUCTION_TRAFFIC_SHIFT", 57.0),
    ("PRODUCTION_TRAFFIC_SHIFT", 58.0),
    ("POST_PRODUCTION_TRAFFIC_SHIFT", 60.0),
    ("BAKE_TIME", 62.0),
    ("CLEAN_UP", 62.0 + BAKE_MINUTES as f64 * 60.0),
];

/// When deployment `index` is SUCCESSFUL, seconds after its UpdateService.
fn done_at(index: usize) -> f64 {
    STAGES[10].1 + 5.0 + index as f64 * STAGGER
}

fn arn(service: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/{service}/green")
}

fn strategy() -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::BlueGreen)
        .bake_time_in_minutes(BAKE_MINUTES)
        .build()
}

fn look(service: &str, index: usize, t: f64) -> ServiceDeployment {
    let stage = STAGES
        .iter()
        .rev()
        .find(|(_, at)| t >= *at)
        .map_or("RECONCILE_SERVICE", |(s, _)| *s);
    let status = if t >= done_at(index) {
        "SUCCESSFUL"
    } else if t >= 2.0 {
        "IN_PROGRESS"
    } else {
        "PENDING"
    };
    let green_running = if t >= 50.0 { 2 } else { (t / 25.0) as i32 };
    let weight = if t >= 60.0 { 100.0 } else { 0.0 };
    let blue_running = if t >= done_at(index) { 0 } else { 2 };
    ServiceDeployment::builder()
        .service_deployment_arn(arn(service))
        .status(ServiceDeploymentStatus::from(status))
        .lifecycle_stage(ServiceDeploymentLifecycleStage::from(stage))
        .target_service_revision(
            ServiceRevisionSummary::builder()
                .arn(format!("{}-rev", arn(service)))
                .running_task_count(green_running)
                .requested_task_count(2)
                .requested_production_traffic_weight(weight)
                .build(),
        )
        .source_service_revisions(
            ServiceRevisionSummary::builder()
                .arn(format!("{}-blue-rev", arn(service)))
                .running_task_count(blue_running)
                .requested_task_count(2)
                .requested_production_traffic_weight(100.0 - weight)
                .build(),
        )
        .deployment_configuration(strategy())
        .build()
}

fn index_of(service: &str) -> usize {
    service.trim_start_matches("web").parse().unwrap_or(0)
}

#[derive(Default)]
struct State {
    updated: HashMap<String, Instant>,
    reads: u64,
    task_reads: Arc<AtomicU64>,
}

fn live(service: &str) -> Service {
    Service::builder()
        .service_name(service)
        .task_definition(format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/{service}:7"
        ))
        .current_service_deployment(format!(
            "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/{service}/blue"
        ))
        .deployment_configuration(strategy())
        .build()
}

/// The Aws clients of one cluster: ECS scripted, ECR and CodeDeploy never called.
fn aws(state: &Arc<Mutex<State>>) -> Aws {
    let s = state.clone();
    let update = mock!(Client::update_service).then_compute_output(move |req| {
        let name = req.service().unwrap_or_default().to_string();
        s.lock()
            .unwrap()
            .updated
            .insert(name.clone(), Instant::now());
        let mut svc = live(&name);
        svc.current_service_deployment = Some(arn(&name));
        UpdateServiceOutput::builder().service(svc).build()
    });
    let s = state.clone();
    let list = mock!(Client::list_service_deployments).then_compute_output(move |req| {
        s.lock().unwrap().reads += 1;
        let name = req.service().unwrap_or_default();
        ListServiceDeploymentsOutput::builder()
            .service_deployments(
                ServiceDeploymentBrief::builder()
                    .service_deployment_arn(arn(name))
                    .status(ServiceDeploymentStatus::Pending)
                    .build(),
            )
            .build()
    });
    let s = state.clone();
    let describe = mock!(Client::describe_service_deployments).then_compute_output(move |req| {
        let mut s = s.lock().unwrap();
        s.reads += 1;
        let looks = req
            .service_deployment_arns()
            .iter()
            .map(|a| {
                let name = a.split('/').nth(2).unwrap_or_default().to_string();
                let t = s.updated[&name].elapsed().as_secs_f64();
                look(&name, index_of(&name), t)
            })
            .collect();
        DescribeServiceDeploymentsOutput::builder()
            .set_service_deployments(Some(looks))
            .build()
    });
    let tasks = common::no_stopped_tasks(state.lock().unwrap().task_reads.clone());
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&update, &list, &describe, &tasks]
    );
    Aws::from_config(&common::closed_config()).with_ecs(ecs)
}

fn prepared(service: &str) -> Prepared {
    Prepared {
        cluster: "prod".into(),
        service: service.into(),
        live: live(service),
        task_definition_arn: format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/{service}:8"
        ),
        previous_task_definition_arn: Some(format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/{service}:7"
        )),
        container: service.into(),
        container_port: Some(8080),
        changed: true,
        redeploy: false,
        task_definition: serde_json::json!({}),
        codedeploy: None,
        previous_digest: None,
    }
}

/// One cluster: the services `indexes` updated together, each followed to its end.
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
            let plan = plan(&app, DeploymentChoice::EcsBlueGreen, &[]);
            let mut report = DeployOutcome::default();
            let r =
                bluegreen::deploy_with(aws, &plan, &prepared(&app), cancel, &mut report, timing)
                    .await;
            (r, report.status)
        }
    };
    let reads = || {
        let s = state.lock().unwrap();
        (s.reads, s.task_reads.load(Ordering::Relaxed))
    };
    common::run_cluster("ecs blue/green", indexes, deploy, done_at, reads).await
}

/// 1 service per cluster (10 clusters), and 10 services in one cluster.
pub async fn scenarios(timing: Timing) -> (Outcome, Outcome) {
    common::scenarios(|indexes| cluster(timing.clone(), indexes)).await
}

/// The timing of a real run (`wait-for-minutes: 30`).
pub fn production() -> Timing {
    let plan = plan("web0", DeploymentChoice::EcsBlueGreen, &[]);
    Timing::of(&plan.settings.rollout)
}
