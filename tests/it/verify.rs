//! The verification gate against real local servers: a wiremock app answering 200, 500, slowly,
//! with redirects on and off its host, a closed port, and CloudWatch alarms (see the alarm
//! tests for which server plays them). Each test asserts what was sent and what the gate made
//! of the answers.

use std::time::Duration;

use ecs_deploy::inputs::VerifySettings;
use ecs_deploy::verify::{self, Gate, Pace, ProbeAnswer, Verdict};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{free_port, sdk_config};

/// Short limits so a timeout test takes a fraction of a second.
fn pace() -> Pace {
    Pace {
        timeout: Duration::from_millis(300),
        gap: Duration::from_millis(10),
    }
}

/// A CloudWatch client that must not be called (no alarms named): an unused port.
fn no_cloudwatch() -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&sdk_config(&format!("http://127.0.0.1:{}", free_port())))
}

fn gate(url: &str, requests: u32, max_failures: u32) -> Gate {
    let settings = VerifySettings {
        url: Some(url.to_string()),
        test_url: None,
        requests,
        max_failures,
        alarms: Vec::new(),
    };
    Gate::new(&settings, no_cloudwatch(), pace())
}

#[tokio::test]
async fn a_healthy_url_passes_and_no_credential_or_cookie_is_sent() {
    let app = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).insert_header("set-cookie", "session=abc; Path=/"))
        .mount(&app)
        .await;
    let port = app.address().port();
    // userinfo in the URL: reqwest would send it as basic auth; the gate removes it.
    let g = gate(
        &format!("http://deploy:s3cret@127.0.0.1:{port}/health"),
        3,
        0,
    );
    let v = verify::verify(&g, None, &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Passed, "{}", v.headline());
    assert_eq!(v.probes.len(), 3);
    assert!(
        v.probes
            .iter()
            .all(|p| p.answer == ProbeAnswer::Status(200))
    );
    assert_eq!(
        v.url.as_deref(),
        Some(format!("http://127.0.0.1:{port}/health").as_str())
    );
    assert!(!v.headline().contains("s3cret"), "{}", v.headline());
    let received = app.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 3);
    for r in &received {
        assert_eq!(r.method.as_str(), "GET");
        for h in ["authorization", "cookie", "referer"] {
            assert!(!r.headers.contains_key(h), "{h} sent: {:?}", r.headers);
        }
    }
}

#[tokio::test]
async fn server_errors_past_the_allowance_fail_and_within_it_pass() {
    let app = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app)
        .await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&app)
        .await;
    let url = format!("{}/health", app.uri());
    let v = verify::verify(&gate(&url, 4, 1), None, &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Passed, "{}", v.headline());
    assert_eq!(v.failures(), 1);
    assert_eq!(
        v.details(),
        vec!["probes: HTTP 503 ×1", "probes: HTTP 200 ×3"]
    );

    let failing = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&failing)
        .await;
    let url = format!("{}/health", failing.uri());
    let v = verify::verify(&gate(&url, 2, 1), None, &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Failed);
    assert_eq!(
        v.headline(),
        format!("verification failed: 2 of 2 probes of {url} failed (1 allowed)")
    );
    assert_eq!(
        failing.received_requests().await.unwrap_or_default().len(),
        2,
        "never retried"
    );
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_and_a_closed_port_no_connection() {
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slow)
        .await;
    let started = std::time::Instant::now();
    let v = verify::verify(&gate(&slow.uri(), 2, 0), None, &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Failed);
    assert!(
        v.probes.iter().all(|p| p.answer == ProbeAnswer::Timeout),
        "{:?}",
        v.probes
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "each probe ends at its 300 ms limit, not at the 3 s answer: {:?}",
        started.elapsed()
    );

    // A port nothing listens on (bound, then released).
    let closed = format!("http://127.0.0.1:{}/health", free_port());
    let v = verify::verify(&gate(&closed, 1, 0), None, &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Failed);
    match &v.probes[0].answer {
        ProbeAnswer::Refused(why) => assert!(!why.contains("127.0.0.1"), "no URL: {why}"),
        other => panic!("expected no connection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_and_one_on_the_same_host_is() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&elsewhere)
        .await;
    let app = MockServer::start().await;
    // `localhost` is another host name than `127.0.0.1`, though the same machine.
    let login = format!("http://localhost:{}/login", elsewhere.address().port());
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", login.as_str()))
        .mount(&app)
        .await;
    Mock::given(method("GET"))
        .and(path("/old"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/ready"))
        .mount(&app)
        .await;
    Mock::given(method("GET"))
        .and(path("/ready"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&app)
        .await;

    let v = verify::verify(
        &gate(&format!("{}/health", app.uri()), 1, 0),
        None,
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(
        v.probes[0].answer,
        ProbeAnswer::RedirectOffHost {
            status: 302,
            host: "localhost".into()
        }
    );
    assert_eq!(v.verdict, Verdict::Passed, "a 3xx is an answer");
    assert!(
        elsewhere
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "nothing was sent to the other host"
    );
    assert!(v.details()[0].contains("not followed"), "{:?}", v.details());

    let v = verify::verify(
        &gate(&format!("{}/old", app.uri()), 1, 0),
        None,
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(v.probes[0].answer, ProbeAnswer::Status(200));
    let paths: Vec<String> = app
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(paths, ["/health", "/old", "/ready"]);
}

#[tokio::test]
async fn the_url_override_is_probed_instead_of_verify_url() {
    let production = MockServer::start().await;
    let test_listener = MockServer::start().await;
    for s in [&production, &test_listener] {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .mount(s)
            .await;
    }
    let g = gate(&production.uri(), 2, 0);
    let over = format!("{}/health", test_listener.uri());
    let v = verify::verify(&g, Some(&over), &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Passed);
    assert_eq!(v.url.as_deref(), Some(over.as_str()));
    assert_eq!(
        test_listener
            .received_requests()
            .await
            .unwrap_or_default()
            .len(),
        2
    );
    assert!(
        production
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn a_cancelled_run_stops_probing_and_fails_the_verification() {
    let app = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&app)
        .await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let v = verify::verify(&gate(&app.uri(), 5, 0), None, &cancel).await;
    assert_eq!(v.verdict, Verdict::Failed);
    assert!(v.probes.is_empty());
    assert!(v.headline().contains("cancelled"), "{}", v.headline());
}

#[tokio::test]
async fn nothing_to_verify_is_skipped_without_a_request() {
    let g = Gate::new(&VerifySettings::default(), no_cloudwatch(), pace());
    assert!(!g.is_set());
    let v = verify::verify(&g, None, &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Skipped);
}

/// Two metric alarms on moto: `web1-5xx` and `web1-p99`, both OK.
async fn two_alarms(cw: &aws_sdk_cloudwatch::Client) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
    for name in ["web1-5xx", "web1-p99"] {
        cw.put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .send()
            .await
            .expect("PutMetricAlarm on moto");
        set_state(cw, name, StateValue::Ok, "fine").await;
    }
}

async fn set_state(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
    state: aws_sdk_cloudwatch::types::StateValue,
    reason: &str,
) {
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason(reason)
        .send()
        .await
        .expect("SetAlarmState on moto");
}

// moto 5.2 serves CloudWatch in the Smithy RPC v2 CBOR protocol that aws-sdk-cloudwatch speaks
// (checked here: PutMetricAlarm, SetAlarmState and DescribeAlarms round-trip), so the alarms
// are real moto state, not a script.
#[tokio::test]
async fn an_alarm_in_alarm_fails_the_verification_and_says_its_reason() {
    use aws_sdk_cloudwatch::types::StateValue;
    let moto = crate::support::MotoServer::start();
    let cw = aws_sdk_cloudwatch::Client::new(&sdk_config(&moto.endpoint()));
    two_alarms(&cw).await;
    let settings = VerifySettings {
        alarms: vec!["web1-p99".into(), "web1-5xx".into()],
        ..VerifySettings::default()
    };
    let g = Gate::new(&settings, cw.clone(), pace());
    let v = verify::verify(&g, None, &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Passed, "{}", v.headline());
    assert_eq!(v.headline(), "verification passed: 2 alarms not in ALARM");

    set_state(
        &cw,
        "web1-5xx",
        StateValue::Alarm,
        "Threshold Crossed: 5 errors",
    )
    .await;
    let v = verify::verify(&g, None, &CancellationToken::new()).await;
    assert_eq!(v.verdict, Verdict::Failed);
    assert_eq!(
        v.alarms[0].state,
        Some(StateValue::Ok),
        "in the order named"
    );
    assert_eq!(
        v.alarms[1].text(),
        "web1-5xx: ALARM (Threshold Crossed: 5 errors)"
    );
    assert_eq!(
        v.headline(),
        "verification failed: alarms failing: web1-5xx"
    );
}

#[tokio::test]
async fn the_preflight_names_the_alarms_that_do_not_exist() {
    let moto = crate::support::MotoServer::start();
    let cw = aws_sdk_cloudwatch::Client::new(&sdk_config(&moto.endpoint()));
    two_alarms(&cw).await;
    let names = [
        "web1-p99".to_string(),
        "web1-5XX".into(),
        "web2-gone".into(),
    ];
    let e = verify::alarms::check_exist(&cw, &names)
        .await
        .expect_err("two names do not exist")
        .to_string();
    assert!(
        e.starts_with("verify-alarms: no CloudWatch alarm named web1-5XX, web2-gone in this account and region"),
        "{e}"
    );
    verify::alarms::check_exist(&cw, &names[..1])
        .await
        .expect("web1-p99 exists");
}

#[tokio::test]
async fn alarms_that_cannot_be_read_fail_the_verification_saying_why() {
    // Nothing listens there: the SDK gets no connection (its retries are quick on a refused
    // connection, within the 60 s operation limit).
    let cw = no_cloudwatch();
    let settings = VerifySettings {
        alarms: vec!["web1-5xx".into()],
        ..VerifySettings::default()
    };
    let v = verify::verify(
        &Gate::new(&settings, cw, pace()),
        None,
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(v.verdict, Verdict::Failed);
    assert!(
        v.problem
            .as_deref()
            .is_some_and(|p| p
                .starts_with("the alarms could not be read: AWS CloudWatch DescribeAlarms failed")),
        "{:?}",
        v.problem
    );
}

mod scripted {
    //! The gate at a PAUSE hook and early success, on the scripted ECS of
    //! `support/scripted_pause.rs` (moto plays neither: its service deployments never move, and
    //! it has no lifecycle hooks). The follow loop here is the test's own: it asserts what the
    //! pure readings make of ECS's answers and what ContinueServiceDeployment sends. The
    //! blue/green deploy's own follow at the hook is tested in `pause_hook.rs`.

    use super::*;
    use crate::support::scripted_pause::{ScriptedPause, Timeline, deployment_arn};
    use aws_sdk_ecs::types::{DeploymentLifecycleHookAction, ServiceDeploymentStatus};
    use ecs_deploy::deploy::bluegreen::{hook, progress as bg};
    use ecs_deploy::deploy::rolling::progress as rolling;
    use serde_json::json;

    fn timeline() -> Timeline {
        Timeline::default()
    }

    async fn describe(
        ecs: &aws_sdk_ecs::Client,
        service: &str,
    ) -> aws_sdk_ecs::types::ServiceDeployment {
        ecs.describe_service_deployments()
            .service_deployment_arns(deployment_arn(service))
            .send()
            .await
            .expect("DescribeServiceDeployments")
            .service_deployments()
            .first()
            .cloned()
            .expect("the deployment")
    }

    /// Follows `bg` every 50 ms; at the pause, verifies against `app` (the test listener) and
    /// answers by the verdict; returns the verdict and the final status.
    async fn walk(
        ecs: &aws_sdk_ecs::Client,
        app: &MockServer,
    ) -> (Verdict, ServiceDeploymentStatus) {
        let g = gate("http://prod.invalid/health", 3, 0);
        let mut verdict = Verdict::Skipped;
        for _ in 0..100 {
            let d = describe(ecs, "bg").await;
            if let Some(p) = bg::paused(&d) {
                assert_eq!(p.hook_id, "h-1");
                assert!(p.at_test_traffic(), "{p:?}");
                assert_eq!(
                    p.timeout_action,
                    Some(DeploymentLifecycleHookAction::Rollback)
                );
                assert!(
                    p.text().starts_with(
                        "paused at POST_TEST_TRAFFIC_SHIFT awaiting action (hook h-1; expires "
                    ),
                    "{}",
                    p.text()
                );
                let test_listener = format!("{}/health", app.uri());
                let v = verify::verify(&g, Some(&test_listener), &CancellationToken::new()).await;
                verdict = v.verdict;
                let answer = match v.verdict {
                    Verdict::Passed => hook::Answer::Continue,
                    _ => hook::Answer::Rollback,
                };
                hook::answer(ecs, &deployment_arn("bg"), &p.hook_id, answer)
                    .await
                    .expect("ContinueServiceDeployment");
            }
            match d.status() {
                Some(
                    s @ (ServiceDeploymentStatus::Successful
                    | ServiceDeploymentStatus::RollbackSuccessful),
                ) => {
                    return (verdict, s.clone());
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        panic!("the scripted deployment never ended");
    }

    #[tokio::test]
    async fn a_passing_verification_at_the_pause_hook_continues_the_deployment() {
        let ecs_fake = ScriptedPause::start(timeline()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk_config(&ecs_fake.server.uri()));
        let app = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&app)
            .await;
        // The service as described has the PAUSE hook the preflight looks for.
        let live = ecs
            .describe_services()
            .cluster("prod")
            .services("bg")
            .send()
            .await
            .expect("DescribeServices");
        let cfg = live.services()[0].deployment_configuration();
        assert_eq!(bg::check_pause_hook(cfg, true), Ok(None));

        let (verdict, end) = walk(&ecs, &app).await;
        assert_eq!(verdict, Verdict::Passed);
        assert_eq!(end, ServiceDeploymentStatus::Successful);
        assert_eq!(
            ecs_fake.bodies("ContinueServiceDeployment"),
            vec![
                json!({"serviceDeploymentArn": deployment_arn("bg"), "hookId": "h-1", "action": "CONTINUE"})
            ]
        );
        assert_eq!(
            app.received_requests().await.unwrap_or_default().len(),
            3,
            "the test listener was probed"
        );
    }

    #[tokio::test]
    async fn a_failing_verification_at_the_pause_hook_rolls_the_deployment_back() {
        let ecs_fake = ScriptedPause::start(timeline()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk_config(&ecs_fake.server.uri()));
        let app = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(502))
            .mount(&app)
            .await;
        let (verdict, end) = walk(&ecs, &app).await;
        assert_eq!(verdict, Verdict::Failed);
        assert_eq!(end, ServiceDeploymentStatus::RollbackSuccessful);
        assert_eq!(
            ecs_fake.bodies("ContinueServiceDeployment"),
            vec![
                json!({"serviceDeploymentArn": deployment_arn("bg"), "hookId": "h-1", "action": "ROLLBACK"})
            ]
        );
    }

    #[tokio::test]
    async fn an_answer_to_a_hook_that_is_not_awaiting_action_is_an_error_naming_the_call() {
        let ecs_fake = ScriptedPause::start(Timeline {
            pause_at: Duration::from_secs(3600),
            ..timeline()
        })
        .await;
        let ecs = aws_sdk_ecs::Client::new(&sdk_config(&ecs_fake.server.uri()));
        assert_eq!(
            bg::paused(&describe(&ecs, "bg").await),
            None,
            "not paused yet"
        );
        let e = hook::answer(&ecs, &deployment_arn("bg"), "h-1", hook::Answer::Continue)
            .await
            .expect_err("not awaiting action")
            .to_string();
        assert!(
            e.starts_with("AWS ECS ContinueServiceDeployment failed"),
            "{e}"
        );
        assert!(e.contains("not awaiting action"), "{e}");
    }

    #[tokio::test]
    async fn early_success_is_read_at_successful_while_the_old_tasks_still_drain() {
        let ecs_fake = ScriptedPause::start(timeline()).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk_config(&ecs_fake.server.uri()));
        let described = || async {
            ecs.describe_services()
                .cluster("prod")
                .services("early")
                .send()
                .await
                .expect("DescribeServices")
                .services()[0]
                .clone()
        };
        let svc = described().await;
        let early = rolling::early_success(&svc).expect("early success with DEFERRED cleanup");
        assert_eq!(early.healthy_percent, Some(80));
        let started = std::time::Instant::now();
        loop {
            match rolling::reading(&describe(&ecs, "early").await) {
                rolling::Reading::Successful => break,
                rolling::Reading::Running => tokio::time::sleep(Duration::from_millis(50)).await,
                other => panic!("unexpected {other:?}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never SUCCESSFUL"
            );
        }
        // Done at SUCCESSFUL, within a poll of it, while the service still lists the old
        // deployment draining: the wait for one deployment would hold for the minute of drain.
        assert!(
            started.elapsed() < Duration::from_millis(300 + 500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            described().await.deployments().len(),
            2,
            "the old tasks still drain"
        );
        // The other service (blue/green) has no early success criteria.
        let bg_svc = ecs
            .describe_services()
            .cluster("prod")
            .services("bg")
            .send()
            .await
            .expect("DescribeServices")
            .services()[0]
            .clone();
        assert_eq!(rolling::early_success(&bg_svc), None);
    }
}

mod after_the_rollout {
    //! The gate after a rolling rollout, through the whole deploy (preflight, register, update,
    //! follow, verify, roll back) against the scripted ECS of `support/scripted_ecs.rs`: moto
    //! never completes a rollout (its deployments stay IN_PROGRESS), so it cannot reach the gate.

    use super::*;
    use crate::support::scripted_ecs::{Script, ScriptedEcs};
    use ecs_deploy::aws::Aws;
    use ecs_deploy::inputs::DeploymentChoice;
    use ecs_deploy::outcome::Status;
    use ecs_deploy::plan::{AppPlan, DeployPlan};

    fn plan(url: &str) -> AppPlan {
        let inputs = [
            ("cluster", "prod"),
            ("service", "web1"),
            ("container-name", "web1"),
            ("verify-url", url),
            ("verify-requests", "2"),
        ];
        AppPlan {
            deploy: Some(DeployPlan {
                cluster: "prod".into(),
                service: "web1".into(),
                task_definition_file: None,
                container: Some("web1".into()),
                deployment: DeploymentChoice::Rolling,
                appspec_file: None,
            }),
            ..crate::support::app_plan_with("web1", &inputs, "registry.example.com/web1:v2")
        }
    }

    async fn scripted() -> (ScriptedEcs, Aws) {
        let ecs = ScriptedEcs::start(
            &["web1"],
            Script {
                rollout: Duration::from_millis(500),
                ..Default::default()
            },
        )
        .await;
        let aws = Aws::from_config(&sdk_config(&ecs.endpoint())).without_region();
        (ecs, aws)
    }

    #[tokio::test]
    async fn a_passing_verification_after_the_rollout_keeps_the_new_version() {
        let (ecs, aws) = scripted().await;
        let app = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&app)
            .await;
        let outcome =
            crate::support::checked_deploy(&aws, &plan(&app.uri()), "registry.example.com/web1:v2")
                .await
                .expect("deployed and verified");
        assert_eq!(outcome.status, Some(Status::Succeeded));
        let v = outcome.verification.expect("the gate ran");
        assert_eq!(v.verdict, Verdict::Passed);
        assert_eq!(app.received_requests().await.unwrap_or_default().len(), 2);
        assert_eq!(ecs.count("UpdateService"), 1, "no rollback");
        assert!(
            outcome
                .steps
                .iter()
                .any(|s| s.starts_with("verification passed: 0 of 2 probes")),
            "{:?}",
            outcome.steps
        );
    }

    #[tokio::test]
    async fn a_failed_verification_after_the_rollout_rolls_the_service_back() {
        let (ecs, aws) = scripted().await;
        let app = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&app)
            .await;
        let failed =
            crate::support::checked_deploy(&aws, &plan(&app.uri()), "registry.example.com/web1:v2")
                .await
                .expect_err("the verification failed");
        assert_eq!(failed.outcome.status, Some(Status::RolledBack));
        let v = failed.outcome.verification.as_ref().expect("the gate ran");
        assert_eq!(v.verdict, Verdict::Failed);
        let e = failed.error.to_string();
        assert!(e.contains("web1 (ECS service web1 in cluster prod) failed verification: verification failed: 2 of 2 probes"), "{e}");
        assert_eq!(
            ecs.count("UpdateService"),
            2,
            "the update, then the rollback to web1:1"
        );
        assert!(
            failed.outcome.rollback.is_some(),
            "{:?}",
            failed.outcome.rollback
        );
    }
}
