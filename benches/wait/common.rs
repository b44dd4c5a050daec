//! What every scenario of the wait benchmark shares: the app plan, the measured outcome and the
//! table row.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ecs_deploy::report::Status;

use ecs_deploy::inputs::{AppSettings, DeploymentChoice, RawInputs};
use ecs_deploy::plan::{AppPlan, DeployPlan, ImagePlan, ImageSource};
use ecs_deploy::version::Version;

/// How far apart the scripted ends of the deployments of one scenario are: 1.3 s samples the
/// lag across a 1 s tick and across a 15 s one (0, 1.3, 2.6 … 11.7 s).
pub const STAGGER: f64 = 1.3;

/// The plan of app `app` on service `app` of cluster `prod`, deployed by `deployment`, with
/// `extra` inputs.
pub fn plan(app: &str, deployment: DeploymentChoice, extra: &[(&str, &str)]) -> AppPlan {
    let mut values = BTreeMap::new();
    for (k, v) in [
        ("cluster", "prod"),
        ("service", app),
        ("container-name", app),
    ]
    .iter()
    .chain(extra)
    {
        values.insert(k.to_string(), v.to_string());
    }
    AppPlan {
        app: app.to_string(),
        settings: AppSettings::from_raw(&RawInputs { values }).expect("valid bench inputs"),
        version: Version {
            value: "1.4.0".into(),
            tag: "v1.4.0".into(),
            prerelease: false,
            note: None,
        },
        version_source: ecs_deploy::plan::VersionSource::PackageJson {
            shown: "bench".into(),
        },
        watch: vec![],
        image: ImagePlan {
            registry: None,
            repository: app.to_string(),
            tags: vec![],
            source: ImageSource::External {
                reference: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{app}:v1.4.0"),
            },
        },
        deploy: Some(DeployPlan {
            cluster: "prod".into(),
            service: app.to_string(),
            task_definition_file: None,
            container: Some(app.to_string()),
            deployment,
            appspec_file: None,
        }),
        notes: vec![],
    }
}

/// One cluster's share of a scenario: its read calls and how long its waits took in all.
#[derive(Debug, Clone, Copy)]
pub struct Cluster {
    pub calls: u64,
    /// ListTasks calls of the stopped-task watch (diagnosis, fail fast).
    pub task_reads: u64,
    pub span: Duration,
}

/// What a scenario measured: one detection lag per deployment (seconds after the scripted end)
/// and the calls of each cluster.
#[derive(Debug, Default)]
pub struct Outcome {
    pub lags: Vec<f64>,
    pub clusters: Vec<Cluster>,
    pub failures: usize,
}

impl Outcome {
    /// Merges the outcome of another cluster into this one.
    pub fn add(&mut self, other: Outcome) {
        self.lags.extend(other.lags);
        self.clusters.extend(other.clusters);
        self.failures += other.failures;
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A Markdown row: path, scenario, deployments, median / mean / max lag, calls a minute per
/// cluster (mean over the scenario's clusters), all calls.
pub fn row(path: &str, scenario: &str, o: &Outcome) -> String {
    let n = o.lags.len().max(1) as f64;
    let mean = o.lags.iter().sum::<f64>() / n;
    let max = o.lags.iter().copied().fold(0.0, f64::max);
    let per_minute: Vec<f64> = o
        .clusters
        .iter()
        .map(|c| c.calls as f64 / (c.span.as_secs_f64() / 60.0).max(1e-9))
        .collect();
    let rate = per_minute.iter().sum::<f64>() / per_minute.len().max(1) as f64;
    let calls: u64 = o.clusters.iter().map(|c| c.calls).sum();
    let task_reads: u64 = o.clusters.iter().map(|c| c.task_reads).sum();
    let minutes: f64 = o.clusters.iter().map(|c| c.span.as_secs_f64() / 60.0).sum();
    // Each deploy watches its own tasks: the rate is per deploy, over the clusters' wait time.
    let task_rate = task_reads as f64 / (minutes.max(1e-9) * o.lags.len().max(1) as f64)
        * o.clusters.len() as f64;
    let failed = if o.failures > 0 {
        format!(" ({} failed)", o.failures)
    } else {
        String::new()
    };
    format!(
        "| {path} | {scenario} | {}{failed} | {:.2} s | {mean:.2} s | {max:.2} s | {rate:.1} | {calls} | {task_rate:.1} |",
        o.lags.len(),
        median(&o.lags),
    )
}

/// The table's header.
pub const HEADER: &str = "| path | scenario | deployments | median lag | mean lag | max lag | describe calls a minute per cluster | calls | stopped-task reads (ListTasks) a minute per deploy |\n|---|---|---|---|---|---|---|---|---|";

/// The SDK settings of the clients a path never calls: a closed port on 127.0.0.1.
pub fn closed_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build()
}

/// A deploy's lag (seconds after `end`, measured at `now`), when it succeeded.
pub fn lag<E: std::fmt::Debug>(
    result: Result<(), E>,
    status: Option<Status>,
    now: f64,
    end: f64,
) -> Result<f64, String> {
    match (result, status) {
        (Ok(()), Some(Status::Succeeded)) => Ok(now - end),
        (r, status) => Err(format!("{r:?} {status:?}")),
    }
}

/// One cluster's outcome from its deploys' lags, its read calls (describe, ListTasks) and how
/// long it took.
pub fn cluster_outcome(
    path: &str,
    lags: Vec<Result<f64, String>>,
    (calls, task_reads): (u64, u64),
    span: Duration,
) -> Outcome {
    let mut out = Outcome::default();
    for r in lags {
        match r {
            Ok(lag) => out.lags.push(lag),
            Err(e) => {
                eprintln!("{path} wait failed: {e}");
                out.failures += 1;
            }
        }
    }
    out.clusters.push(Cluster {
        calls,
        task_reads,
        span,
    });
    out
}

/// Runs the deploys `indexes` of one cluster together: `deploy(index)` answers the deploy's
/// result and status, `done_at(index)` its scripted end, `reads()` the cluster's read calls
/// (describe, ListTasks).
pub async fn run_cluster<D, Fut, E>(
    path: &str,
    indexes: Vec<usize>,
    deploy: D,
    done_at: fn(usize) -> f64,
    reads: impl Fn() -> (u64, u64),
) -> Outcome
where
    D: Fn(usize) -> Fut,
    Fut: Future<Output = (Result<(), E>, Option<Status>)>,
    E: std::fmt::Debug,
{
    let start = tokio::time::Instant::now();
    let runs = indexes.into_iter().map(|index| {
        let deploy = &deploy;
        async move {
            let (r, status) = deploy(index).await;
            lag(r, status, start.elapsed().as_secs_f64(), done_at(index))
        }
    });
    let lags = futures_util::future::join_all(runs).await;
    cluster_outcome(path, lags, reads(), start.elapsed())
}

/// Runs 1 service per cluster (10 clusters, to sample the lag 10 times) and 10 services in one
/// cluster, all at once; `cluster` runs the deploys of the given indexes in one cluster.
pub async fn scenarios<F, Fut>(cluster: F) -> (Outcome, Outcome)
where
    F: Fn(Vec<usize>) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let singles = futures_util::future::join_all((0..10).map(|i| cluster(vec![i])));
    let (singles, ten) = tokio::join!(singles, cluster((0..10).collect()));
    let mut one = Outcome::default();
    for o in singles {
        one.add(o);
    }
    (one, ten)
}

/// ListTasks of a cluster whose deploys' tasks never stop (every wait of the benchmark ends in
/// success): an empty list, counted in `count`.
pub fn no_stopped_tasks(count: Arc<AtomicU64>) -> aws_smithy_mocks::Rule {
    aws_smithy_mocks::mock!(aws_sdk_ecs::Client::list_tasks).then_compute_output(move |_| {
        count.fetch_add(1, Ordering::Relaxed);
        aws_sdk_ecs::operation::list_tasks::ListTasksOutput::builder().build()
    })
}
