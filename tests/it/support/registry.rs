//! A real OCI Distribution registry (Debian's `docker-registry`) on 127.0.0.1 per test, for
//! push, digest and login tests. Plain HTTP: Docker treats 127.0.0.0/8 registries as insecure-OK.

use super::net::{Ready, free_port, kill, log_tail, wait_http};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Env var that overrides the registry binary (default: `docker-registry` on PATH).
pub const REGISTRY_ENV: &str = "ECS_DEPLOY_TEST_REGISTRY";

/// A running `docker-registry serve` with storage in a temp dir; killed when dropped.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    credentials: Option<(String, String)>,
}

impl Registry {
    /// Starts an open registry (no auth).
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// Starts a registry that requires HTTP basic auth (htpasswd, bcrypt) for `user`/`password`.
    /// `start_with_auth("AWS", "123456789012-auth-token")` accepts moto's ECR token.
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::spawn(Some((user.to_string(), password.to_string())))
    }

    fn spawn(credentials: Option<(String, String)>) -> Self {
        let bin = registry_binary();
        let dir = tempfile::tempdir().expect("create a temp dir for the registry");
        let auth = match &credentials {
            Some((user, password)) => {
                let htpasswd = dir.path().join("htpasswd");
                write_htpasswd(&htpasswd, user, password);
                format!(
                    "auth:\n  htpasswd:\n    realm: ecs-deploy-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let log_path = dir.path().join("registry.log");
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{auth}",
                root = dir.path().join("data").display(),
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("write registry config");
            let log = File::create(&log_path).expect("create registry log file");
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&config_path)
                .env_clear()
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone registry log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("failed to start {}: {e}", bin.display()));
            match wait_http(
                &mut child,
                port,
                "/v2/",
                &[200, 401],
                Duration::from_secs(10),
            ) {
                Ready::Up => {
                    return Registry {
                        child,
                        port,
                        dir,
                        credentials,
                    };
                }
                Ready::Exited(why) | Ready::TimedOut(why) => {
                    kill(&mut child);
                    last_error = format!("{why}; log:\n{}", log_tail(&log_path, 2000));
                }
            }
        }
        panic!(
            "docker-registry ({}) did not come up: {last_error}",
            bin.display()
        );
    }

    /// `127.0.0.1:PORT`: the registry part of an image reference (`{host}/repo:tag`).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`: base URL for the `/v2/` API.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The TCP port the registry listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `(user, password)` it was started with, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Where blobs and manifests are stored on disk.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry's log so far (access log included), handy in assertion messages.
    pub fn log(&self) -> String {
        log_tail(&self.dir.path().join("registry.log"), usize::MAX)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Writes a bcrypt htpasswd file with `htpasswd -Bbn` (the only hash docker-registry accepts).
fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .unwrap_or_else(|e| panic!("failed to run htpasswd ({e}): run scripts/setup-testbed.sh"));
    assert!(
        out.status.success(),
        "htpasswd -Bbn failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    std::fs::write(path, format!("{}\n", line.trim())).expect("write htpasswd file");
}

/// `$ECS_DEPLOY_TEST_REGISTRY`, or `docker-registry` found on PATH.
fn registry_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os(REGISTRY_ENV) {
        return PathBuf::from(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("docker-registry"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("docker-registry not found on PATH (set {REGISTRY_ENV} or run scripts/setup-testbed.sh)")
        })
}

/// Removes local images whose name starts with `prefix` (the engine is shared by all tests).
pub fn remove_local_images(prefix: &str) {
    let out = std::process::Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .expect("docker images");
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        if name.starts_with(prefix) {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", name])
                .output();
        }
    }
}

/// Removes this test's local images when the test ends, passed or failed.
pub struct LocalImages(pub String);

impl Drop for LocalImages {
    fn drop(&mut self) {
        remove_local_images(&self.0);
    }
}
