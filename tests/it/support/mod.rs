//! Shared test bed for the integration tests: real local stand-ins for AWS (moto), an OCI
//! registry (docker-registry), recording HTTP servers (wiremock) and a runner for the binary.
//! Everything listens on 127.0.0.1 only; `scripts/setup-testbed.sh` installs the programs.

// Helpers and re-exports are shared by every test module; no one module uses them all.
#![allow(dead_code, unused_imports)]

pub mod action_image;
pub mod aws;
pub mod bin;
pub mod http;
pub mod json_rpc;
pub mod kube_api;
pub mod moto;
pub mod net;
pub mod registry;
pub mod scripted_codedeploy;
pub mod scripted_ecs;
pub mod scripted_pause;

// Re-exports so tests can write `use crate::support::{MotoServer, aws_env};`.
pub use action_image::copy_tree;
pub use aws::{AwsTrap, aws_env, sdk_config};
pub use bin::{
    BinOutput, BinRun, Running, dispatch_run, parse_github_output, run_bin, web1_deploy,
};
pub use http::{received_json, recording_server, slow_server};
pub use moto::MotoServer;
pub use net::free_port;
pub use registry::Registry;

use std::path::{Path, PathBuf};

/// The repository root, so helpers find `.testbed/` and `fixtures/` from any working dir.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// When `token` is cancelled (on the test's clock, so a paused clock works too): a task whose
/// result is that moment, to measure how soon the code under test reported after the signal.
pub fn when_cancelled(
    token: &tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<tokio::time::Instant> {
    let token = token.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        tokio::time::Instant::now()
    })
}

/// App `app`'s plan as the engine gets it, version 1.2.3, `image` built elsewhere, from the
/// inputs `inputs` (no ECS service: set `deploy` for one): for tests that drive the engine
/// in-process.
pub fn app_plan_with(app: &str, inputs: &[(&str, &str)], image: &str) -> ecs_deploy::plan::AppPlan {
    use ecs_deploy::plan::{AppPlan, ImagePlan, ImageSource};
    let mut raw = ecs_deploy::inputs::RawInputs::default();
    for (k, v) in inputs {
        raw.values.insert(k.to_string(), v.to_string());
    }
    AppPlan {
        app: app.to_string(),
        settings: ecs_deploy::inputs::AppSettings::from_raw(&raw).expect("inputs"),
        version: ecs_deploy::version::Version {
            value: "1.2.3".into(),
            tag: "v1.2.3".into(),
            prerelease: false,
            note: None,
        },
        version_source: ecs_deploy::plan::VersionSource::PackageJson {
            shown: "test".into(),
        },
        image: ImagePlan {
            registry: None,
            repository: app.to_string(),
            tags: vec![],
            source: ImageSource::External {
                reference: image.into(),
            },
        },
        deploy: None,
        notes: vec![],
        watch: vec![],
    }
}

/// App web1's plan on service web1 of cluster prod, deployed by `deployment`, from `inputs` (the
/// cluster, service and container inputs added): for tests that drive one ECS deploy in-process.
pub fn web1_plan(
    deployment: ecs_deploy::inputs::DeploymentChoice,
    inputs: &[(&str, &str)],
    image: &str,
) -> ecs_deploy::plan::AppPlan {
    let mut all = vec![
        ("cluster", "prod"),
        ("service", "web1"),
        ("container-name", "web1"),
    ];
    all.extend_from_slice(inputs);
    ecs_deploy::plan::AppPlan {
        deploy: Some(ecs_deploy::plan::DeployPlan {
            cluster: "prod".into(),
            service: "web1".into(),
            task_definition_file: None,
            container: Some("web1".into()),
            deployment,
            appspec_file: None,
        }),
        ..app_plan_with("web1", &all, image)
    }
}

/// A path under the repository's `fixtures/` directory.
pub fn fixture(rel: impl AsRef<Path>) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// A run's preflight of `plan`'s service, then its deploy of `image` (no digest, no other apps),
/// in turn as the binary does them: for tests that drive the engine with scripted clients.
pub async fn checked_deploy(
    aws: &ecs_deploy::aws::Aws,
    plan: &ecs_deploy::plan::AppPlan,
    image: &str,
) -> Result<ecs_deploy::outcome::Outcome, ecs_deploy::outcome::Failed> {
    let checked = ecs_deploy::preflight::check_deploy(aws, plan)
        .await
        .expect("preflight");
    let job = ecs_deploy::deploy::Job {
        plan,
        checked: ecs_deploy::deploy::Target::Ecs(&checked),
        image,
        digest: None,
        others: &[],
    };
    let poller = ecs_deploy::deploy::poll::Poller::new(aws.ecs.clone());
    ecs_deploy::deploy::deploy(
        aws,
        &poller,
        job,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
}
