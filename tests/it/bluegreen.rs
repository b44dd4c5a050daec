//! ECS native blue/green, linear and canary (`deploy::bluegreen`), called directly with a
//! hand-built `Prepared`.
//!
//! What moto 5.2.5 plays here (probed with boto3 and asserted in
//! `moto_takes_the_update_but_does_not_play_service_deployments`):
//! - CreateService ignores `deploymentConfiguration` (the strategy is dropped);
//! - UpdateService stores `deploymentConfiguration` (strategy, bakeTimeInMinutes) and
//!   DescribeServices returns it; UpdateService records the task definition; it never sets
//!   `currentServiceDeployment`;
//! - ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions and
//!   StopServiceDeployment are not implemented (moto raises NotImplementedError).
//!
//! So a deployment moving through its lifecycle stages, ECS's own rollback, our rollback on
//! timeout or cancel: scripted ECS answers (aws-smithy-mocks, `ScriptedEcs` below), which
//! record every request so the tests assert what was sent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::describe_service_deployments::DescribeServiceDeploymentsOutput;
use aws_sdk_ecs::operation::describe_service_revisions::DescribeServiceRevisionsOutput;
use aws_sdk_ecs::operation::list_service_deployments::{
    ListServiceDeploymentsInput, ListServiceDeploymentsOutput,
};
use aws_sdk_ecs::operation::stop_service_deployment::{
    StopServiceDeploymentError, StopServiceDeploymentInput, StopServiceDeploymentOutput,
};
use aws_sdk_ecs::operation::update_service::{UpdateServiceInput, UpdateServiceOutput};
use aws_sdk_ecs::types::error::ConflictException;
use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentStrategy, Service, ServiceDeployment,
    ServiceDeploymentBrief, ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
    ServiceRevision, ServiceRevisionSummary, StopServiceDeploymentStopType,
};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::Prepared;
use ecs_deploy::deploy::bluegreen::{self, Cadence, Timing};
use ecs_deploy::error::Error;
use ecs_deploy::inputs::{AppSettings, DeploymentChoice, RawInputs};
use ecs_deploy::outcome::{Outcome, Status};
use ecs_deploy::plan::{AppPlan, DeployPlan, ImagePlan, ImageSource};
use ecs_deploy::version::Version;
use tokio_util::sync::CancellationToken;

use crate::support::aws::{StoppingTasks, stopped_service_task, stopping_task_rules};
use crate::support::{MotoServer, sdk_config};

const CLUSTER: &str = "prod";
const SERVICE: &str = "web1";
const BLUE_TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:7";
const GREEN_TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:8";
const PREVIOUS: &str = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web1/blueOld";
const OURS: &str = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web1/greenNew";
const BLUE_REV: &str = "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/web1/111";
const GREEN_REV: &str = "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/web1/222";
/// Another run's deployment (of web1:9) that lands while we follow ours.
const OTHER: &str = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web1/otherRun";
const OTHER_TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:9";

const STAGES: [&str; 10] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

fn settings(extra: &[(&str, &str)]) -> AppSettings {
    let mut values: BTreeMap<String, String> = [
        ("cluster", CLUSTER),
        ("service", SERVICE),
        ("deployment", "ecs-blue-green"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        values.insert(k.to_string(), v.to_string());
    }
    AppSettings::from_raw(&RawInputs { values }).expect("valid test settings")
}

fn plan(extra: &[(&str, &str)]) -> AppPlan {
    AppPlan {
        app: "web1".into(),
        settings: settings(extra),
        version: Version {
            value: "1.2.3".into(),
            tag: "v1.2.3".into(),
            prerelease: false,
            note: None,
        },
        version_source: ecs_deploy::plan::VersionSource::PackageJson {
            shown: "package.json".into(),
        },
        image: ImagePlan {
            registry: Some("registry.example".into()),
            repository: "web1".into(),
            tags: vec!["v1.2.3".into()],
            source: ImageSource::Existing,
        },
        deploy: Some(DeployPlan {
            cluster: CLUSTER.into(),
            service: SERVICE.into(),
            task_definition_file: None,
            container: Some("web1".into()),
            deployment: DeploymentChoice::EcsBlueGreen,
            appspec_file: None,
        }),
        notes: vec![],
        watch: vec![],
    }
}

fn live(strategy: DeploymentStrategy) -> Service {
    Service::builder()
        .service_name(SERVICE)
        .task_definition(BLUE_TD)
        .current_service_deployment(PREVIOUS)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .strategy(strategy)
                .bake_time_in_minutes(5)
                .build(),
        )
        .build()
}

fn prepared(strategy: DeploymentStrategy) -> Prepared {
    Prepared {
        cluster: CLUSTER.into(),
        service: SERVICE.into(),
        live: live(strategy),
        task_definition_arn: GREEN_TD.into(),
        previous_task_definition_arn: Some(BLUE_TD.into()),
        container: "web1".into(),
        container_port: Some(8080),
        changed: true,
        redeploy: false,
        task_definition: serde_json::json!({}),
        codedeploy: None,
        previous_digest: None,
    }
}

fn fast() -> Timing {
    Timing {
        cadence: Cadence::Every(Duration::from_millis(5)),
        timeout: Duration::from_secs(10),
        queue_limit: Duration::from_secs(5),
        rollback_timeout: Duration::from_secs(10),
        poller: None,
        max_delay: Duration::MAX,
    }
}

/// One look at our deployment: status, stage, green's running count and production weight.
fn look(status: &str, stage: &str, green_running: i32, weight: f64) -> ServiceDeployment {
    ServiceDeployment::builder()
        .service_deployment_arn(OURS)
        .status(ServiceDeploymentStatus::from(status))
        .lifecycle_stage(ServiceDeploymentLifecycleStage::from(stage))
        .target_service_revision(
            ServiceRevisionSummary::builder()
                .arn(GREEN_REV)
                .running_task_count(green_running)
                .requested_task_count(2)
                .requested_production_traffic_weight(weight)
                .build(),
        )
        .source_service_revisions(
            ServiceRevisionSummary::builder()
                .arn(BLUE_REV)
                .running_task_count(2)
                .requested_task_count(2)
                .requested_production_traffic_weight(100.0 - weight)
                .build(),
        )
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::BlueGreen)
                .bake_time_in_minutes(5)
                .build(),
        )
        .build()
}

fn with_reason(mut d: ServiceDeployment, reason: &str) -> ServiceDeployment {
    d.status_reason = Some(reason.into());
    d
}

/// What the scripted ECS recorded and still has to say.
#[derive(Default)]
struct State {
    /// Operation names in the order they were called.
    calls: Vec<&'static str>,
    updates: Vec<UpdateServiceInput>,
    lists: Vec<ListServiceDeploymentsInput>,
    stops: Vec<StopServiceDeploymentInput>,
    /// DescribeServiceDeployments answers before any stop; the last one repeats.
    looks: VecDeque<ServiceDeployment>,
    /// Answers after StopServiceDeployment; the last one repeats.
    rollback_looks: VecDeque<ServiceDeployment>,
    stopped: bool,
    /// How many ListServiceDeployments answers leave our deployment out (ECS lists it late).
    unlisted_for: usize,
    /// Whether the UpdateService answer names our deployment as currentServiceDeployment.
    update_names_ours: bool,
    /// Cancel this token on the n-th DescribeServiceDeployments (1-based).
    cancel_on_look: Option<(usize, CancellationToken)>,
    looks_served: usize,
    /// Make StopServiceDeployment fail.
    stop_fails: bool,
    /// From this DescribeServiceDeployments look on (1-based), another run's UpdateService has
    /// landed: the service points at OTHER (web1:9) and ours is answered from `after_other`.
    other_lands_on_look: Option<usize>,
    /// Our deployment's looks once the other run's has landed; the last one repeats.
    after_other: VecDeque<ServiceDeployment>,
    /// Make StopServiceDeployment hang (sent, never answered).
    stop_hangs: bool,
    /// DescribeServiceDeployments answers HTTP 500 this many times in a row after its first look.
    read_errors: usize,
    /// Green tasks that stop, on a schedule from UpdateService; kept out of `calls`.
    tasks: Arc<Mutex<StoppingTasks>>,
}

/// A scripted ECS endpoint (aws-smithy-mocks): no emulator plays service deployments.
#[derive(Clone)]
struct ScriptedEcs(Arc<Mutex<State>>);

impl ScriptedEcs {
    fn new(looks: Vec<ServiceDeployment>) -> Self {
        ScriptedEcs(Arc::new(Mutex::new(State {
            looks: looks.into(),
            ..Default::default()
        })))
    }

    fn with(self, f: impl FnOnce(&mut State)) -> Self {
        f(&mut self.0.lock().unwrap());
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    fn client(&self) -> Client {
        let s = self.0.clone();
        let update = mock!(Client::update_service).then_compute_output(move |req| {
            let mut st = s.lock().unwrap();
            st.calls.push("UpdateService");
            st.updates.push(req.clone());
            st.tasks.lock().unwrap().start();
            let mut svc = live(DeploymentStrategy::BlueGreen);
            svc.task_definition = req.task_definition().map(str::to_string);
            if st.update_names_ours {
                svc.current_service_deployment = Some(OURS.into());
            }
            UpdateServiceOutput::builder().service(svc).build()
        });
        let s = self.0.clone();
        let list = mock!(Client::list_service_deployments).then_compute_output(move |req| {
            let mut st = s.lock().unwrap();
            st.calls.push("ListServiceDeployments");
            st.lists.push(req.clone());
            let mut briefs = vec![
                ServiceDeploymentBrief::builder()
                    .service_deployment_arn(PREVIOUS)
                    .target_service_revision_arn(BLUE_REV)
                    .status(ServiceDeploymentStatus::Successful)
                    .build(),
            ];
            if st.unlisted_for > 0 {
                st.unlisted_for -= 1;
            } else {
                briefs.push(
                    ServiceDeploymentBrief::builder()
                        .service_deployment_arn(OURS)
                        .target_service_revision_arn(GREEN_REV)
                        .status(ServiceDeploymentStatus::Pending)
                        .build(),
                );
            }
            ListServiceDeploymentsOutput::builder()
                .set_service_deployments(Some(briefs))
                .build()
        });
        let s = self.0.clone();
        let revisions = mock!(Client::describe_service_revisions).then_compute_output(move |req| {
            s.lock().unwrap().calls.push("DescribeServiceRevisions");
            let revs = req
                .service_revision_arns()
                .iter()
                .filter_map(|arn| {
                    let td = match arn.as_str() {
                        BLUE_REV => BLUE_TD,
                        GREEN_REV => GREEN_TD,
                        _ => return None,
                    };
                    Some(
                        ServiceRevision::builder()
                            .service_revision_arn(arn)
                            .task_definition(td)
                            .build(),
                    )
                })
                .collect();
            DescribeServiceRevisionsOutput::builder()
                .set_service_revisions(Some(revs))
                .build()
        });
        let s = self.0.clone();
        let describe =
            mock!(Client::describe_service_deployments).then_compute_response(move |req| {
                let mut st = s.lock().unwrap();
                st.calls.push("DescribeServiceDeployments");
                assert_eq!(req.service_deployment_arns(), [OURS.to_string()]);
                if st.looks_served >= 1 && st.read_errors > 0 {
                    st.read_errors -= 1;
                    return MockResponse::Http(aws_smithy_runtime_api::http::Response::new(
                        aws_smithy_runtime_api::http::StatusCode::try_from(500).unwrap(),
                        aws_smithy_types::body::SdkBody::from(
                            r#"{"__type":"ServerException","message":"internal error"}"#,
                        ),
                    ));
                }
                st.looks_served += 1;
                if let Some((n, token)) = &st.cancel_on_look
                    && *n == st.looks_served
                {
                    token.cancel();
                }
                let stopped = st.stopped;
                let landed = st.other_lands_on_look.is_some_and(|n| st.looks_served >= n);
                let queue = if stopped {
                    &mut st.rollback_looks
                } else if landed {
                    &mut st.after_other
                } else {
                    &mut st.looks
                };
                let d = if queue.len() > 1 {
                    queue.pop_front()
                } else {
                    queue.front().cloned()
                };
                MockResponse::Output(
                    DescribeServiceDeploymentsOutput::builder()
                        .set_service_deployments(d.map(|d| vec![d]))
                        .build(),
                )
            });
        let s = self.0.clone();
        let stop = mock!(Client::stop_service_deployment).then_compute_response(move |req| {
            let mut st = s.lock().unwrap();
            st.calls.push("StopServiceDeployment");
            st.stops.push(req.clone());
            if st.stop_fails {
                return MockResponse::Error(StopServiceDeploymentError::ConflictException(
                    ConflictException::builder()
                        .message("the service deployment is in a state that cannot be stopped")
                        .build(),
                ));
            }
            st.stopped = true;
            MockResponse::Output(
                StopServiceDeploymentOutput::builder()
                    .service_deployment_arn(OURS)
                    .build(),
            )
        });
        let s = self.0.clone();
        // The service as DescribeServices shows it: on ours after our update, on the other
        // run's deployment (a PRIMARY deployment of web1:9) once it landed.
        let services = mock!(Client::describe_services).then_compute_output(move |_| {
            let mut st = s.lock().unwrap();
            st.calls.push("DescribeServices");
            let landed = st.other_lands_on_look.is_some_and(|n| st.looks_served >= n);
            let (current, td) = if landed {
                (OTHER, OTHER_TD)
            } else {
                (OURS, GREEN_TD)
            };
            let mut svc = live(DeploymentStrategy::BlueGreen);
            svc.task_definition = Some(td.into());
            svc.current_service_deployment = Some(current.into());
            svc.deployments = Some(vec![
                aws_sdk_ecs::types::Deployment::builder()
                    .id("ecs-svc/primary")
                    .status("PRIMARY")
                    .task_definition(td)
                    .created_at(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .build(),
            ]);
            aws_sdk_ecs::operation::describe_services::DescribeServicesOutput::builder()
                .services(svc)
                .build()
        });
        let [list_tasks, describe_tasks] = stopping_task_rules(&self.0.lock().unwrap().tasks);
        let rules = [
            &update,
            &list,
            &revisions,
            &describe,
            &stop,
            &services,
            &list_tasks,
            &describe_tasks,
        ];
        // SDK retries off: each 500 reaches the follow loop, which must bear a few in a row.
        let no_retries = aws_sdk_ecs::config::retry::RetryConfig::disabled();
        if self.0.lock().unwrap().stop_hangs {
            return mock_client!(aws_sdk_ecs, RuleMode::MatchAny, rules, |c| c
                .retry_config(no_retries.clone())
                .http_client(crate::support::aws::hanging_http("StopServiceDeployment")));
        }
        mock_client!(aws_sdk_ecs, RuleMode::MatchAny, rules, |c| c
            .retry_config(no_retries.clone()))
    }

    fn aws(&self) -> Aws {
        // ECR and CodeDeploy are never called on this path: point them at a closed port.
        Aws::from_config(&sdk_config("http://127.0.0.1:9")).with_ecs(self.client())
    }
}

/// Runs the deploy with a fresh token; returns the result and the report.
async fn run(
    ecs: &ScriptedEcs,
    plan: &AppPlan,
    prepared: &Prepared,
    timing: Timing,
) -> (Result<(), Error>, Outcome) {
    let cancel = CancellationToken::new();
    run_with(ecs, plan, prepared, timing, &cancel).await
}

async fn run_with(
    ecs: &ScriptedEcs,
    plan: &AppPlan,
    prepared: &Prepared,
    timing: Timing,
    cancel: &CancellationToken,
) -> (Result<(), Error>, Outcome) {
    let mut report = Outcome::default();
    let aws = ecs.aws();
    let result = bluegreen::deploy_with(&aws, plan, prepared, cancel, &mut report, timing).await;
    (result, report)
}

fn assert_update_sent(st: &State, force: bool) {
    assert_eq!(st.updates.len(), 1, "calls: {:?}", st.calls);
    let u = &st.updates[0];
    assert_eq!(u.cluster(), Some(CLUSTER));
    assert_eq!(u.service(), Some(SERVICE));
    assert_eq!(u.task_definition(), Some(GREEN_TD));
    assert_eq!(u.force_new_deployment(), Some(force));
}

/// The report's rollback line begins with `prefix`.
fn assert_rollback_starts(report: &Outcome, prefix: &str) {
    let rollback = report.rollback.as_deref().unwrap_or_default();
    assert!(rollback.starts_with(prefix), "{rollback:?}");
}

fn assert_rollback_sent(st: &State) {
    assert_eq!(st.stops.len(), 1, "calls: {:?}", st.calls);
    assert_eq!(st.stops[0].service_deployment_arn(), Some(OURS));
    assert_eq!(
        st.stops[0].stop_type(),
        Some(&StopServiceDeploymentStopType::Rollback)
    );
}

#[tokio::test]
async fn a_blue_green_deployment_walks_every_lifecycle_stage_to_successful() {
    let mut looks: Vec<ServiceDeployment> = STAGES
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let green = if i < 2 { 0 } else { 2 };
            let weight = if i >= 6 { 100.0 } else { 0.0 };
            look("IN_PROGRESS", stage, green, weight)
        })
        .collect();
    looks.insert(0, look("PENDING", "RECONCILE_SERVICE", 0, 0.0));
    looks.push(look("SUCCESSFUL", "CLEAN_UP", 2, 100.0));
    let ecs = ScriptedEcs::new(looks);
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        fast(),
    )
    .await;

    result.expect("the deployment succeeds");
    assert_eq!(report.status, Some(Status::Succeeded));
    assert_eq!(report.deployment_id.as_deref(), Some(OURS));
    assert_eq!(report.kind.map(|k| k.as_str()), Some("ecs-blue-green"));
    assert_eq!(report.rollback, None);
    let st = ecs.state();
    assert_update_sent(&st, false);
    assert!(
        st.stops.is_empty(),
        "no rollback on success: {:?}",
        st.calls
    );
    // The listing asks for this service's deployments created around our update.
    let l = &st.lists[0];
    assert_eq!((l.cluster(), l.service()), (Some(CLUSTER), Some(SERVICE)));
    assert!(l.created_at().and_then(|c| c.after()).is_some());
    // Every stage is a step of the summary, in order, with counts and the bake time.
    let mut at = 0;
    for stage in STAGES {
        let found = report.steps[at..]
            .iter()
            .position(|s| s.contains(&format!("IN_PROGRESS {stage} (")))
            .unwrap_or_else(|| panic!("no step for {stage} after step {at}: {:#?}", report.steps));
        at += found + 1;
    }
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.contains("BAKE_TIME") && s.contains("bake time 5 min")),
        "{:#?}",
        report.steps
    );
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.contains("SCALE_UP") && s.contains("green 2/2 running; blue 2/2 running")),
        "{:#?}",
        report.steps
    );
    assert!(
        report
            .steps
            .last()
            .unwrap()
            .starts_with("SUCCESSFUL CLEAN_UP")
    );
    assert!(report.steps[0].contains(&format!("UpdateService: {SERVICE} → {GREEN_TD}")));
}

#[tokio::test]
async fn a_linear_deployment_records_each_production_traffic_step() {
    let looks = vec![
        look("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2, 25.0),
        look("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2, 25.0),
        look("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2, 50.0),
        look("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2, 75.0),
        look("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2, 100.0),
        look("SUCCESSFUL", "CLEAN_UP", 2, 100.0),
    ];
    let ecs = ScriptedEcs::new(looks);
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::Linear),
        fast(),
    )
    .await;

    result.expect("the deployment succeeds");
    let shifts: Vec<&String> = report
        .steps
        .iter()
        .filter(|s| s.contains("PRODUCTION_TRAFFIC_SHIFT"))
        .collect();
    assert_eq!(
        shifts.len(),
        4,
        "one step per weight, repeats folded: {shifts:#?}"
    );
    for (s, w) in shifts.iter().zip(["25%", "50%", "75%", "100%"]) {
        assert!(
            s.contains(&format!("production traffic on green {w}")),
            "{s}"
        );
    }
}

#[tokio::test]
async fn a_deployment_ecs_rolls_back_itself_ends_rolled_back_without_our_rollback() {
    let looks = vec![
        look("IN_PROGRESS", "SCALE_UP", 1, 0.0),
        look("ROLLBACK_IN_PROGRESS", "SCALE_UP", 0, 0.0),
        with_reason(
            look("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, 0.0),
            "Service deployment rolled back because the circuit breaker threshold was exceeded.",
        ),
    ];
    let ecs = ScriptedEcs::new(looks);
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        fast(),
    )
    .await;

    let err = result
        .expect_err("a rolled back deployment fails the job")
        .to_string();
    assert_eq!(report.status, Some(Status::RolledBack));
    assert!(
        err.contains(OURS) && err.contains("ECS rolled the deployment back"),
        "{err}"
    );
    assert!(err.contains("circuit breaker threshold"), "{err}");
    let rollback = report.rollback.expect("the rollback is reported");
    assert!(rollback.contains(BLUE_TD), "{rollback}");
    let st = ecs.state();
    assert_update_sent(&st, false);
    assert!(
        st.stops.is_empty(),
        "ECS rolled back; we must not: {:?}",
        st.calls
    );
}

#[tokio::test]
async fn a_rollback_that_fails_in_ecs_is_a_failure() {
    let looks = vec![with_reason(
        look("ROLLBACK_FAILED", "PRODUCTION_TRAFFIC_SHIFT", 1, 50.0),
        "blue tasks failed to start",
    )];
    let ecs = ScriptedEcs::new(looks);
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::Canary),
        fast(),
    )
    .await;

    let err = result.expect_err("fails").to_string();
    assert_eq!(report.status, Some(Status::Failed));
    assert!(
        err.contains("ECS's rollback failed too") && err.contains("blue tasks failed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_timeout_sends_the_rollback_for_our_deployment_and_waits_for_blue() {
    let ecs = ScriptedEcs::new(vec![look("IN_PROGRESS", "BAKE_TIME", 2, 100.0)]).with(|s| {
        s.rollback_looks = vec![
            look("ROLLBACK_REQUESTED", "BAKE_TIME", 2, 100.0),
            look("ROLLBACK_IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2, 0.0),
            look("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, 0.0),
        ]
        .into()
    });
    let timing = Timing {
        timeout: Duration::from_millis(150),
        ..fast()
    };
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        timing,
    )
    .await;

    let err = result.expect_err("a timeout fails the job");
    assert!(matches!(err, Error::Deployment { .. }), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("wait-for-minutes") && err.contains("rolled back to"),
        "{err}"
    );
    assert_eq!(report.status, Some(Status::RolledBack));
    assert_eq!(report.deployment_id.as_deref(), Some(OURS));
    let st = ecs.state();
    assert_update_sent(&st, false);
    assert_rollback_sent(&st);
    // We waited for ECS to finish the rollback: the last call is a look at ROLLBACK_SUCCESSFUL.
    assert_eq!(st.calls.last(), Some(&"DescribeServiceDeployments"));
    assert!(st.rollback_looks.len() == 1);
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.starts_with("ROLLBACK_SUCCESSFUL"))
    );
    assert!(
        report
            .rollback
            .unwrap()
            .contains("traffic is on blue again")
    );
}

#[tokio::test]
async fn a_timeout_while_ecs_already_rolls_back_waits_for_that_rollback_without_a_second_request() {
    // 40 looks of ROLLBACK_IN_PROGRESS take at least 40 polls (200 ms): the 60 ms timeout
    // always comes first.
    let mut looks = vec![look("ROLLBACK_IN_PROGRESS", "SCALE_UP", 0, 0.0); 40];
    looks.push(look("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, 0.0));
    let ecs = ScriptedEcs::new(looks);
    let timing = Timing {
        timeout: Duration::from_millis(60),
        ..fast()
    };
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        timing,
    )
    .await;

    let err = result.expect_err("fails").to_string();
    assert!(
        err.contains("wait-for-minutes") && err.contains("rolled back to"),
        "{err}"
    );
    assert_eq!(report.status, Some(Status::RolledBack));
    let st = ecs.state();
    assert!(st.stops.is_empty(), "{:?}", st.calls);
    assert_eq!(st.looks.len(), 1, "followed to ROLLBACK_SUCCESSFUL");
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.contains("ECS is already rolling back"))
    );
}

#[tokio::test]
async fn cancelling_mid_wait_sends_the_rollback_and_reports_rolled_back() {
    let cancel = CancellationToken::new();
    let ecs = ScriptedEcs::new(vec![look("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", 2, 0.0)]).with(|s| {
        s.cancel_on_look = Some((3, cancel.clone()));
        s.rollback_looks = vec![
            look("ROLLBACK_IN_PROGRESS", "CLEAN_UP", 2, 0.0),
            look("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, 0.0),
        ]
        .into();
    });
    let (result, report) = run_with(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        fast(),
        &cancel,
    )
    .await;

    let err = result.expect_err("a cancelled job fails");
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert!(err.to_string().contains(OURS), "{err}");
    assert_eq!(report.status, Some(Status::RolledBack));
    let st = ecs.state();
    assert_rollback_sent(&st);
    // Cancelled on the third look: no fourth look before the stop, then the rollback looks.
    let before_stop = st
        .calls
        .iter()
        .take_while(|c| **c != "StopServiceDeployment")
        .filter(|c| **c == "DescribeServiceDeployments")
        .count();
    assert_eq!(before_stop, 3, "{:?}", st.calls);
    assert!(
        st.rollback_looks.len() == 1,
        "the rollback was followed to its end"
    );
}

#[tokio::test]
async fn a_refused_rollback_request_is_a_failure_naming_both_errors() {
    let ecs = ScriptedEcs::new(vec![look("IN_PROGRESS", "BAKE_TIME", 2, 100.0)])
        .with(|s| s.stop_fails = true);
    let timing = Timing {
        timeout: Duration::from_millis(60),
        ..fast()
    };
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        timing,
    )
    .await;

    let err = result.expect_err("fails").to_string();
    assert_eq!(report.status, Some(Status::Failed));
    assert!(err.contains("wait-for-minutes"), "{err}");
    assert!(
        err.contains("StopServiceDeployment") && err.contains("cannot be stopped"),
        "{err}"
    );
    assert_rollback_sent(&ecs.state());
}

#[tokio::test]
async fn with_rollback_off_a_timeout_fails_and_sends_no_rollback() {
    let ecs = ScriptedEcs::new(vec![look("IN_PROGRESS", "BAKE_TIME", 2, 100.0)]);
    let timing = Timing {
        timeout: Duration::from_millis(60),
        ..fast()
    };
    let (result, report) = run(
        &ecs,
        &plan(&[("rollback-on-failure", "false")]),
        &prepared(DeploymentStrategy::BlueGreen),
        timing,
    )
    .await;

    let err = result.expect_err("fails").to_string();
    assert!(err.contains("rollback-on-failure is false"), "{err}");
    assert_eq!(report.status, Some(Status::Failed));
    assert!(ecs.state().stops.is_empty());
}

#[tokio::test]
async fn a_deployment_listed_late_is_still_found_by_its_task_definition() {
    let ecs = ScriptedEcs::new(vec![look("SUCCESSFUL", "CLEAN_UP", 2, 100.0)])
        .with(|s| s.unlisted_for = 2);
    let (result, report) = run(
        &ecs,
        &plan(&[("force-new-deployment", "true")]),
        &Prepared {
            redeploy: true,
            ..prepared(DeploymentStrategy::BlueGreen)
        },
        fast(),
    )
    .await;

    result.expect("succeeds");
    assert_eq!(report.deployment_id.as_deref(), Some(OURS));
    let st = ecs.state();
    assert_update_sent(&st, true);
    assert_eq!(st.lists.len(), 3, "{:?}", st.calls);
    assert!(st.calls.contains(&"DescribeServiceRevisions"));
}

#[tokio::test]
async fn the_deployment_update_service_names_is_taken_without_describing_revisions() {
    let ecs = ScriptedEcs::new(vec![look("SUCCESSFUL", "CLEAN_UP", 2, 100.0)])
        .with(|s| s.update_names_ours = true);
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        fast(),
    )
    .await;

    result.expect("succeeds");
    assert_eq!(report.deployment_id.as_deref(), Some(OURS));
    assert!(!ecs.state().calls.contains(&"DescribeServiceRevisions"));
}

#[tokio::test]
async fn a_rolling_service_is_refused_before_anything_is_sent() {
    let ecs = ScriptedEcs::new(vec![]);
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::Rolling),
        fast(),
    )
    .await;

    let err = result.expect_err("refused").to_string();
    assert!(
        err.contains(SERVICE) && err.contains("strategy is ROLLING"),
        "{err}"
    );
    assert!(ecs.state().calls.is_empty(), "{:?}", ecs.state().calls);
    assert_eq!(
        report.status,
        Some(Status::Failed),
        "the path decides failed itself"
    );
}

#[tokio::test]
async fn an_unchanged_task_definition_without_force_starts_nothing() {
    let ecs = ScriptedEcs::new(vec![]);
    let mut p = prepared(DeploymentStrategy::BlueGreen);
    p.changed = false;
    p.task_definition_arn = BLUE_TD.into();
    let (result, report) = run(&ecs, &plan(&[]), &p, fast()).await;

    result.expect("nothing to do is fine");
    assert_eq!(report.status, Some(Status::Succeeded));
    assert!(ecs.state().calls.is_empty());
    assert!(
        report.steps[0].contains("force-new-deployment"),
        "{:?}",
        report.steps
    );
}

#[tokio::test]
async fn without_waiting_the_deployment_id_is_reported_and_nothing_is_followed() {
    let ecs = ScriptedEcs::new(vec![]);
    let (result, report) = run(
        &ecs,
        &plan(&[("wait-for-service-stability", "false")]),
        &prepared(DeploymentStrategy::BlueGreen),
        fast(),
    )
    .await;

    result.expect("succeeds");
    assert_eq!(report.deployment_id.as_deref(), Some(OURS));
    assert!(!ecs.state().calls.contains(&"DescribeServiceDeployments"));
}

/// moto plays UpdateService for a service whose strategy UpdateService set, but none of the
/// service deployment calls: the deploy sends the real update, then fails cleanly naming
/// ListServiceDeployments.
#[tokio::test(flavor = "multi_thread")]
async fn moto_takes_the_update_but_does_not_play_service_deployments() {
    let moto = MotoServer::start();
    let aws = Aws::from_config(&sdk_config(&moto.endpoint()));
    let ecs = &aws.ecs;
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    let register = |image: &'static str| {
        ecs.register_task_definition()
            .family("web1")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("web1")
                    .image(image)
                    .memory(128)
                    .build(),
            )
            .send()
    };
    let blue = register("web1:1.2.2").await.unwrap();
    let blue_arn = blue
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    let green = register("web1:1.2.3").await.unwrap();
    let green_arn = green
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    let bg = DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::BlueGreen)
        .bake_time_in_minutes(5)
        .build();
    let created = ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .task_definition(&blue_arn)
        .desired_count(1)
        .deployment_configuration(bg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        created
            .service()
            .unwrap()
            .deployment_configuration()
            .and_then(|c| c.strategy()),
        None,
        "moto's CreateService now keeps the strategy: update the module docs"
    );
    // moto keeps the strategy when UpdateService sets it.
    ecs.update_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .deployment_configuration(bg)
        .send()
        .await
        .unwrap();
    let live = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(SERVICE)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    assert_eq!(
        live.deployment_configuration().and_then(|c| c.strategy()),
        Some(&DeploymentStrategy::BlueGreen)
    );
    let prepared = Prepared {
        cluster: CLUSTER.into(),
        service: SERVICE.into(),
        live,
        task_definition_arn: green_arn.clone(),
        previous_task_definition_arn: Some(blue_arn),
        container: "web1".into(),
        container_port: None,
        changed: true,
        redeploy: false,
        task_definition: serde_json::json!({}),
        codedeploy: None,
        previous_digest: None,
    };
    let mut report = Outcome::default();
    let result = bluegreen::deploy_with(
        &aws,
        &plan(&[]),
        &prepared,
        &CancellationToken::new(),
        &mut report,
        fast(),
    )
    .await;

    let err = result.expect_err("moto has no ListServiceDeployments");
    assert!(
        matches!(
            err,
            Error::Aws {
                operation: "ListServiceDeployments",
                ..
            }
        ),
        "{err:?}"
    );
    let after = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(SERVICE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.services()[0].task_definition(),
        Some(green_arn.as_str())
    );
    assert_eq!(report.kind.map(|k| k.as_str()), Some("ecs-blue-green"));
    assert_eq!(report.deployment_id, None);
}

/// A run with production timing (the phase-aware policy, wait-for-minutes 30) whose job is
/// cancelled on the second look at our deployment mid test-traffic shift; `script` adds the rest
/// of the timeline. Returns the result, the report, how soon after the signal it reported, and
/// the scripted ECS.
async fn cancelled_in_production(
    script: impl FnOnce(&mut State),
) -> (Result<(), Error>, Outcome, Duration, ScriptedEcs) {
    let cancel = CancellationToken::new();
    let ecs = ScriptedEcs::new(vec![look("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", 2, 0.0)]).with(|s| {
        s.cancel_on_look = Some((2, cancel.clone()));
        script(s);
    });
    let timing = Timing {
        cadence: Cadence::Phased,
        timeout: Duration::from_secs(30 * 60),
        rollback_timeout: Duration::from_secs(30 * 60),
        ..fast()
    };
    let cancelled_at = crate::support::when_cancelled(&cancel);
    let (result, report) = run_with(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        timing,
        &cancel,
    )
    .await;
    let reported_after = cancelled_at.await.expect("cancel watcher").elapsed();
    (result, report, reported_after, ecs)
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_reports_within_seconds_while_ecs_goes_on_rolling_back() {
    // GitHub kills a cancelled job about 10 s after its first signal, so the rollback is
    // followed for 5 s at most.
    let (result, report, reported_after, ecs) = cancelled_in_production(|s| {
        s.rollback_looks = vec![look("ROLLBACK_IN_PROGRESS", "CLEAN_UP", 2, 0.0)].into();
    })
    .await;

    let err = result.expect_err("a cancelled job fails");
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert!(
        reported_after <= Duration::from_secs(6),
        "reported {reported_after:?} after the signal"
    );
    assert_eq!(report.status, Some(Status::Cancelled));
    assert_rollback_starts(
        &report,
        "rollback requested, still running; look at https://",
    );
    let st = ecs.state();
    assert_rollback_sent(&st);
    // Followed once a second after the stop: several looks, none 15 s apart.
    let after_stop = st
        .calls
        .iter()
        .skip_while(|c| **c != "StopServiceDeployment")
        .filter(|c| **c == "DescribeServiceDeployments")
        .count();
    assert!((4..=7).contains(&after_stop), "{:?}", st.calls);
}

// ---------------------------------------------------------------------------------------------
// Beside other runs: a deployment of another run (or a person) that lands while we follow ours.
// Scripted: moto plays no service deployments at all (see the module docs).

/// The outputs and the job summary a run ending with `report` and `err` writes.
fn rendered(report: &Outcome, err: &Error) -> (Vec<(&'static str, String)>, String) {
    use ecs_deploy::report::{AppReport, Report, outputs, summary};
    let mut app = AppReport {
        app: "web1".into(),
        error: Some(err.to_string()),
        ..Default::default()
    };
    app.apply(report);
    let run = Report {
        apps: vec![app],
        ..Default::default()
    };
    (outputs::outputs(&run, None), summary::render(&run))
}

fn output<'a>(outputs: &'a [(&'static str, String)], name: &str) -> &'a str {
    outputs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no output {name}"))
}

/// A linear deployment whose wait-for-minutes runs out after 100 ms.
async fn run_out_of_time(ecs: &ScriptedEcs) -> (Result<(), Error>, Outcome) {
    let timing = Timing {
        timeout: Duration::from_millis(100),
        ..fast()
    };
    run(
        ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::Linear),
        timing,
    )
    .await
}

#[tokio::test]
async fn another_runs_deployment_landing_mid_bake_is_reported_superseded_and_never_rolled_back_over()
 {
    // Before issue 12's blue/green part this ended "ended STOPPED without a rollback", or, when
    // ours was still stopping at the timeout, sent our rollback over their deployment.
    let ecs = ScriptedEcs::new(vec![look("IN_PROGRESS", "BAKE_TIME", 2, 100.0)]).with(|s| {
        s.other_lands_on_look = Some(3);
        s.after_other = vec![
            look("STOP_REQUESTED", "BAKE_TIME", 2, 100.0),
            with_reason(
                look("STOPPED", "BAKE_TIME", 2, 100.0),
                "a newer service deployment was started",
            ),
        ]
        .into();
    });
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        fast(),
    )
    .await;

    let err = result.expect_err("a superseded deployment fails the run");
    assert!(matches!(err, Error::Superseded { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{OURS} of ECS service web1 in cluster prod was superseded by {OTHER} (web1:9, started 2023-11-14T22:13:20Z)"))
            && text.contains("ECS stopped ours: a newer service deployment was started")
            && text.contains("nothing was rolled back over it"),
        "{text}"
    );
    assert_eq!(report.status, Some(Status::Failed));
    assert_rollback_starts(&report, "not rolled back");
    let st = ecs.state();
    assert_update_sent(&st, false);
    assert!(
        st.stops.is_empty(),
        "no rollback over theirs: {:?}",
        st.calls
    );
    drop(st);
    let (outputs, summary) = rendered(&report, &err);
    assert_eq!(output(&outputs, "status"), "failed");
    assert!(
        output(&outputs, "results").contains("was superseded by"),
        "{outputs:?}"
    );
    assert!(summary.contains("superseded by"), "{summary}");
    assert!(summary.contains("not rolled back"), "{summary}");
}

#[tokio::test]
async fn another_runs_deployment_landing_mid_shift_keeps_our_timeout_from_rolling_back_over_it() {
    // Ours is still shifting when wait-for-minutes runs out; the service already points at the
    // other run's deployment, so the rollback a timeout sends is not sent.
    let ecs = ScriptedEcs::new(vec![look(
        "IN_PROGRESS",
        "PRODUCTION_TRAFFIC_SHIFT",
        2,
        50.0,
    )])
    .with(|s| {
        s.other_lands_on_look = Some(2);
        s.after_other = vec![look("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 2, 50.0)].into();
    });
    let (result, report) = run_out_of_time(&ecs).await;

    let err = result.expect_err("fails");
    assert!(matches!(err, Error::Superseded { .. }), "{err:?}");
    assert!(err.to_string().contains(OTHER), "{err}");
    assert_eq!(report.status, Some(Status::Failed));
    let st = ecs.state();
    assert!(
        st.stops.is_empty(),
        "no rollback over theirs: {:?}",
        st.calls
    );
    assert_eq!(
        st.calls.last(),
        Some(&"DescribeServices"),
        "the service was read right before the rollback would have been sent: {:?}",
        st.calls
    );
}

#[tokio::test]
async fn a_timeout_while_the_service_still_points_at_ours_rolls_back_as_before() {
    // The same look before the rollback: ours is current, so the rollback is sent.
    let ecs = ScriptedEcs::new(vec![look(
        "IN_PROGRESS",
        "PRODUCTION_TRAFFIC_SHIFT",
        2,
        50.0,
    )])
    .with(|s| s.rollback_looks = vec![look("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, 0.0)].into());
    let (result, report) = run_out_of_time(&ecs).await;

    assert!(result.is_err());
    assert_eq!(report.status, Some(Status::RolledBack));
    let st = ecs.state();
    assert!(st.calls.contains(&"DescribeServices"), "{:?}", st.calls);
    assert_rollback_sent(&st);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_whose_rollback_request_hangs_reports_cancelled_within_the_budget() {
    // StopServiceDeployment is sent and never answered (scripted: moto has no
    // StopServiceDeployment, and no emulator hangs a call). The run must still report within
    // the 5 s a cancelled run's rollback gets, so the outputs are written before GitHub kills it.
    let (result, report, reported_after, ecs) =
        cancelled_in_production(|s| s.stop_hangs = true).await;

    let err = result.expect_err("a cancelled job fails");
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert!(
        reported_after <= Duration::from_secs(5),
        "reported {reported_after:?} after the signal"
    );
    assert_eq!(report.status, Some(Status::Cancelled));
    let link = "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web1";
    assert_rollback_starts(
        &report,
        &format!("rollback requested, still running; look at {link}"),
    );
    let st = ecs.state();
    assert_rollback_sent(&st);
    drop(st);
    let (outputs, summary) = rendered(&report, &err);
    assert_eq!(output(&outputs, "status"), "cancelled");
    assert!(
        summary.contains("rollback requested, still running"),
        "{summary}"
    );
}

/// A green task (web1:8) the load balancer found unhealthy, so ECS stopped it.
fn unhealthy_green_task(n: u32) -> aws_sdk_ecs::types::Task {
    stopped_service_task(
        n,
        GREEN_TD,
        aws_sdk_ecs::types::TaskStopCode::ServiceSchedulerInitiated,
        "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web1-green/abc)",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v2",
        Some(143),
    )
}

/// Scripted: moto plays no service deployments (see the module doc) and runs no containers,
/// so no green task fails its load balancer health check while the deployment scales up.
#[tokio::test(start_paused = true)]
async fn green_tasks_failing_health_checks_roll_back_early_naming_the_cause() {
    let ecs = ScriptedEcs::new(vec![look("IN_PROGRESS", "SCALE_UP", 0, 0.0)]).with(|s| {
        s.rollback_looks = vec![
            look("ROLLBACK_IN_PROGRESS", "CLEAN_UP", 0, 0.0),
            look("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, 0.0),
        ]
        .into();
        s.tasks.lock().unwrap().stopping = (0..3)
            .map(|n| {
                (
                    Duration::from_secs(10 + 15 * u64::from(n)),
                    unhealthy_green_task(n),
                )
            })
            .collect();
    });
    let timing = Timing {
        cadence: Cadence::Every(Duration::from_secs(1)),
        timeout: Duration::from_secs(30 * 60),
        ..fast()
    };
    let started = tokio::time::Instant::now();
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        timing,
    )
    .await;
    let ended = started.elapsed().as_secs();

    let err = result.expect_err("unhealthy green tasks fail the deployment");
    // The third task stops at 40 s; the tasks are read every 10 s.
    assert!((40..=60).contains(&ended), "ended at {ended} s");
    let msg = err.to_string();
    assert!(
        msg.contains("3 tasks of the new revision stopped:")
            && msg.contains("health check")
            && msg.contains("rolled back to"),
        "{msg}"
    );
    assert_eq!(report.status, Some(Status::RolledBack));
    let st = ecs.state();
    assert_rollback_sent(&st);
    let families = st.tasks.lock().unwrap().listed_families.clone();
    assert!(
        !families.is_empty() && families.iter().all(|f| f.as_deref() == Some("web1")),
        "{families:?}"
    );
    drop(st);
    assert!(
        report.steps.iter().any(|l| l.starts_with("cause: ")),
        "{:?}",
        report.steps
    );
}

/// Scripted: moto has no DescribeServiceDeployments (see the module doc), let alone one that
/// answers 500 for a while mid-deployment.
#[tokio::test]
async fn a_few_failed_reads_in_a_row_do_not_abandon_the_deployment_and_more_say_where_to_look() {
    let looks = || {
        vec![
            look("IN_PROGRESS", "SCALE_UP", 1, 0.0),
            look("IN_PROGRESS", "BAKE_TIME", 2, 100.0),
            look("SUCCESSFUL", "CLEAN_UP", 2, 100.0),
        ]
    };
    let ecs = ScriptedEcs::new(looks()).with(|s| s.read_errors = 3);
    let (result, report) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        fast(),
    )
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(report.status, Some(Status::Succeeded));
    assert_eq!(ecs.state().read_errors, 0, "the three 500s were served");

    let ecs = ScriptedEcs::new(looks()).with(|s| s.read_errors = usize::MAX);
    let (result, _) = run(
        &ecs,
        &plan(&[]),
        &prepared(DeploymentStrategy::BlueGreen),
        fast(),
    )
    .await;
    let msg = result
        .expect_err("an unreadable deployment is no success")
        .to_string();
    assert!(
        msg.contains("could not be read 4 times in a row")
            && msg.contains("it may still be running: look at"),
        "{msg}"
    );
    // Nothing is rolled back on a guess: ECS may be deploying fine.
    assert!(ecs.state().stops.is_empty(), "{:?}", ecs.state().calls);
}
