//! Faults that must still end in a report, in time: an AWS call that is accepted and never
//! answered, and a burst of throttling. Through the real binary, against the scripted ECS over
//! HTTP (`support/scripted_ecs.rs`): moto always answers, at once, and never throttles.

use std::time::{Duration, Instant};

use crate::support::scripted_ecs::{Script, ScriptedEcs, td_arn};
use crate::support::{BinOutput, BinRun, web1_deploy};

/// The binary deploying `registry.example.com/web1:v1.2.3` to service web1 (cluster prod) of
/// the scripted ECS, waiting at most one minute for the rollout.
fn deploy(ecs: &ScriptedEcs) -> BinRun {
    web1_deploy(&ecs.endpoint(), "registry.example.com/web1:v1.2.3")
        .env("INPUT_WAIT-FOR-MINUTES", "1")
}

async fn run_blocking(run: BinRun) -> (BinOutput, Duration) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = run.run();
        (out, started.elapsed())
    })
    .await
    .expect("run thread")
}

#[tokio::test]
async fn an_update_service_that_never_answers_fails_the_run_naming_the_call_and_the_timeout() {
    let ecs = ScriptedEcs::hanging(&["web1"], "UpdateService").await;
    let (out, took) = run_blocking(deploy(&ecs).timeout(Duration::from_secs(240))).await;
    out.assert_code(1);
    assert!(!out.timed_out, "{out}");
    // The bound is the 60 s operation timeout, plus the preflight and the register: the job
    // ends a minute in, not at its own timeout. (The exact figure is in the README.)
    assert!(took < Duration::from_secs(100), "took {took:?}\n{out}");
    assert_eq!(out.output("status"), Some("failed"), "{out}");
    let error = serde_json::from_str::<serde_json::Value>(out.output("results").unwrap()).unwrap()
        [0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("UpdateService"), "{error}");
    assert!(
        error.contains("operation timeout") && error.contains("60s"),
        "{error}"
    );
    assert!(out.stdout.contains("UpdateService"), "{out}");
    // Three stuck attempts of 20 s fit in the minute; no rollback was sent (the update never
    // took), and the new revision was registered before.
    assert_eq!(ecs.count("UpdateService"), 3, "{:?}", ecs.calls());
    assert_eq!(ecs.count("RegisterTaskDefinition"), 1, "{:?}", ecs.calls());
    assert_eq!(
        out.output("task-definition-arn"),
        Some(td_arn("web1", 2).as_str())
    );
}

#[tokio::test]
async fn a_burst_of_throttling_is_ridden_out_by_retrying_each_throttled_call() {
    let ecs = ScriptedEcs::start(
        &["web1"],
        Script {
            throttle_first: 4,
            rollout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    let (out, _) = run_blocking(deploy(&ecs).timeout(Duration::from_secs(120))).await;
    out.assert_success();
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    let calls = ecs.calls();
    // The first call (the preflight's DescribeServices) was throttled four times in a row and
    // tried a fifth time; everything after went through once.
    let throttled: Vec<&str> = calls
        .iter()
        .filter(|(_, t)| *t)
        .map(|(o, _)| o.as_str())
        .collect();
    assert_eq!(throttled, ["DescribeServices"; 4], "{calls:?}");
    assert_eq!(
        calls[4],
        ("DescribeServices".to_string(), false),
        "{calls:?}"
    );
    assert_eq!(ecs.count("UpdateService"), 1, "{calls:?}");
}
