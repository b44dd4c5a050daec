//! A private moto server (local AWS) per test, so tests never share AWS state.

use super::net::{Ready, free_port, http_status, kill, log_tail, wait_http};
use std::ffi::OsStr;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Env var that overrides the moto_server binary (default `<repo>/.testbed/venv/bin/moto_server`).
pub const MOTO_ENV: &str = "ECS_DEPLOY_TEST_MOTO";

/// A running `moto_server` on 127.0.0.1:`port`; killed when dropped.
pub struct MotoServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl MotoServer {
    /// Starts a fresh server with moto's default behaviour.
    pub fn start() -> Self {
        Self::start_with_env(std::iter::empty::<(&str, &str)>())
    }

    /// Starts a fresh server with extra env, e.g. `[("MOTO_ECS_SERVICE_RUNNING", "2")]`.
    pub fn start_with_env<I, K, V>(env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let bin = moto_binary();
        let env: Vec<_> = env
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        let dir = tempfile::tempdir().expect("create a temp dir for the moto log");
        let log_path = dir.path().join("moto.log");
        let mut last_error = String::new();
        // A free port can be taken between the probe and moto's bind: retry a few times.
        for _ in 0..3 {
            let port = free_port();
            let log = File::create(&log_path).expect("create moto log file");
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone moto log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("failed to start {}: {e}", bin.display()));
            match wait_http(
                &mut child,
                port,
                "/moto-api/",
                &[200],
                Duration::from_secs(15),
            ) {
                Ready::Up => return MotoServer { child, port, dir },
                Ready::Exited(why) | Ready::TimedOut(why) => {
                    kill(&mut child);
                    last_error = format!("{why}; log:\n{}", log_tail(&log_path, 2000));
                }
            }
        }
        panic!(
            "moto_server ({}) did not come up: {last_error}",
            bin.display()
        );
    }

    /// The base URL to give SDK clients / `AWS_ENDPOINT_URL`: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Wipes all of moto's state (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let status =
            http_status(self.port, "POST", "/moto-api/reset").expect("POST /moto-api/reset");
        assert_eq!(status, 200, "moto reset answered {status}");
    }

    /// The server's stdout+stderr so far (request log), handy in assertion messages.
    pub fn log(&self) -> String {
        log_tail(&self.dir.path().join("moto.log"), usize::MAX)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Cluster prod and service web1 (one container web1, revision 1, EC2 launch type, no
/// instances: moto places no task and never completes a rollout, so a deploy waits until it is
/// stopped, and RunTask fails there).
pub async fn web1_service(ecs: &aws_sdk_ecs::Client) {
    web1_service_with(ecs, "web1", None, None).await;
}

/// Cluster prod, task definition web1:1 (container web1, mapping `port` when given) and service
/// `name` on it, with the deployment `controller` when given. Returns the task definition's ARN.
pub async fn web1_service_with(
    ecs: &aws_sdk_ecs::Client,
    name: &str,
    controller: Option<aws_sdk_ecs::types::DeploymentControllerType>,
    port: Option<i32>,
) -> String {
    use aws_sdk_ecs::types::{ContainerDefinition, DeploymentController, PortMapping};
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .expect("cluster");
    let mut container = ContainerDefinition::builder()
        .name("web1")
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.2")
        .memory(256);
    if let Some(p) = port {
        container = container.port_mappings(PortMapping::builder().container_port(p).build());
    }
    let td = ecs
        .register_task_definition()
        .family("web1")
        .container_definitions(container.build())
        .send()
        .await
        .expect("task definition");
    let arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("arn")
        .to_string();
    let controller = controller.map(|c| {
        DeploymentController::builder()
            .r#type(c)
            .build()
            .expect("controller")
    });
    ecs.create_service()
        .cluster("prod")
        .service_name(name)
        .task_definition(&arn)
        .desired_count(1)
        .set_deployment_controller(controller)
        .send()
        .await
        .expect("service");
    arn
}

/// Where moto_server is: `$ECS_DEPLOY_TEST_MOTO` or the venv that setup-testbed.sh makes.
fn moto_binary() -> PathBuf {
    let bin = std::env::var_os(MOTO_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo_root().join(".testbed/venv/bin/moto_server"));
    assert!(
        bin.is_file(),
        "moto_server not found at {} (set {MOTO_ENV} or run scripts/setup-testbed.sh)",
        bin.display()
    );
    bin
}
