//! Benchmark of the Kubernetes rollout follow: how soon after a Deployment's rollout is complete
//! the action notices (detection lag), and how many API requests a followed rollout costs.
//!
//! The API is the scripted one of the integration tests (`tests/it/support/kube_api.rs`, real
//! HTTP on 127.0.0.1, driven by the real `kube` client). Its controller is held: each rollout is
//! completed at once at a chosen moment, spread across the polling tick, and the lag is the time
//! from that moment to the follow's return. Real time, not a paused clock.
//!
//! Run: `cargo bench --bench kube_rollout --profile dev` (prints a Markdown table).

#[allow(dead_code)]
#[path = "../tests/it/support/kube_api.rs"]
mod kube_api;

use std::sync::Arc;
use std::time::Duration;

use ecs_deploy::aws::Aws;
use ecs_deploy::deploy::kubernetes::auth::Connection;
use ecs_deploy::deploy::kubernetes::{Ended, Follow, Judged, KubeChecked, POLL};
use ecs_deploy::inputs::ClusterSource;
use kube_api::{KubeApi, Setup};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Rollouts measured.
const ROLLOUTS: u32 = 20;

#[tokio::main]
async fn main() {
    let api = KubeApi::start(Setup::new("web", "r/web:v0")).await;
    api.hold();
    let dir = std::env::temp_dir().join(format!("kube-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = api.kubeconfig(&dir, "bench");
    let aws = Aws::from_config(
        &aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build(),
    );
    let conn = Connection::open(&aws, &ClusterSource::Kubeconfig(kubeconfig), "shop", None)
        .await
        .expect("kubeconfig connection");
    let checked = KubeChecked {
        conn: Arc::new(conn),
        namespace: "shop".into(),
        name: "web".into(),
        container: "app".into(),
        previous_image: "r/web:v0".into(),
        previous_revision: Some(1),
        manifest: None,
        notes: Vec::new(),
    };
    let mut lags = Vec::new();
    let mut requests = Vec::new();
    for i in 1..=ROLLOUTS {
        let image = format!("r/web:v{i}");
        api.set_image(&image);
        let generation = api.deployment()["metadata"]["generation"]
            .as_i64()
            .unwrap_or(0);
        let before = api.requests().len();
        let follow = Follow {
            label: "web",
            target: "Deployment shop/web",
            checked: &checked,
            image: &image,
            generation,
            timeout: Duration::from_secs(60),
            poll: POLL,
            judged: Judged::Current,
        };
        // Spread the completion moments across the polling tick.
        let delay = Duration::from_secs_f64(0.3 + (f64::from(i) * 0.137) % 1.0);
        let finisher = async {
            tokio::time::sleep(delay).await;
            api.settle();
            Instant::now()
        };
        let ((ended, noticed), settled) = tokio::join!(
            async {
                let r = follow.run(&CancellationToken::new()).await;
                (r, Instant::now())
            },
            finisher
        );
        assert!(
            matches!(ended, Ok(Ended::Done { .. })),
            "rollout {i}: {ended:?}"
        );
        lags.push(noticed.duration_since(settled).as_secs_f64());
        requests.push(api.requests().len() - before);
    }
    lags.sort_by(|a, b| a.total_cmp(b));
    let mean = lags.iter().sum::<f64>() / lags.len() as f64;
    let p50 = lags[lags.len() / 2];
    let max = lags.last().copied().unwrap_or(0.0);
    let per = requests.iter().sum::<usize>() as f64 / requests.len() as f64;
    println!(
        "| rollouts | poll | mean detection lag | median | max lag | API requests per rollout |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {ROLLOUTS} | {} ms | {mean:.2} s | {p50:.2} s | {max:.2} s | {per:.1} |",
        POLL.as_millis()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
