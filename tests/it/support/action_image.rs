//! The action image as GitHub's runner starts it: `docker run` of the local action image
//! (scripts/local-action-image.sh) with the runner's mounts (`/var/run/docker.sock`,
//! `/github/workspace`, `/github/workflow`, `/github/file_commands`, `/github/home`), its
//! `GITHUB_*` variables and the `INPUT_*` variables passed by name (`-e NAME`, values from the
//! docker CLI's own environment, so no value is on a command line), plus `--network host` so
//! the container reaches moto and the registry on 127.0.0.1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::bin::{BinOutput, BinRun};
use super::repo_root;

/// Env var naming an already built local action image (scripts/test.sh builds it once before
/// `cargo test`); without it the first test that needs the image builds it.
pub const ACTION_IMAGE_ENV: &str = "ECS_DEPLOY_TEST_ACTION_IMAGE";

/// The tag the tests build when [`ACTION_IMAGE_ENV`] is not set.
const DEFAULT_TAG: &str = "ecs-deploy-action:it";

/// The local action image's tag, built once per test binary when not given.
pub fn action_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        if let Ok(tag) = std::env::var(ACTION_IMAGE_ENV)
            && !tag.is_empty()
            && image_exists(&tag)
        {
            return tag;
        }
        let out = Command::new(repo_root().join("scripts/local-action-image.sh"))
            .args(["--tag", DEFAULT_TAG])
            .current_dir(repo_root())
            .output()
            .expect("run scripts/local-action-image.sh");
        assert!(
            out.status.success(),
            "scripts/local-action-image.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        DEFAULT_TAG.to_string()
    })
}

fn image_exists(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", tag])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// One step of a workflow run, as the runner lays it out on the host: a temp dir holding the
/// folders it mounts into the action's container.
pub struct RunnerStep {
    dir: tempfile::TempDir,
    name: String,
    env: BTreeMap<String, String>,
}

/// File names the runner gives the step's file commands (it appends a per-step uuid).
const OUTPUT_FILE: &str = "set_output_4a1b";
const SUMMARY_FILE: &str = "step_summary_4a1b";

impl RunnerStep {
    /// A step with `workspace` copied to the mounted `/github/workspace` and `event` (a JSON
    /// payload) at `/github/workflow/event.json`, for event `event_name`.
    pub fn new(workspace: &Path, event_name: &str, event: &Path) -> Self {
        let dir = tempfile::tempdir().expect("runner temp dir");
        for sub in ["workspace", "workflow", "file_commands", "home"] {
            std::fs::create_dir(dir.path().join(sub)).expect("runner folder");
        }
        copy_tree(workspace, &dir.path().join("workspace"));
        std::fs::copy(event, dir.path().join("workflow/event.json")).expect("event payload");
        for f in [OUTPUT_FILE, SUMMARY_FILE] {
            std::fs::write(dir.path().join("file_commands").join(f), "").expect("file command");
        }
        let name = format!(
            "ecs-deploy-it-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map(|n| n
                    .to_string_lossy()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), ""))
                .unwrap_or_default()
        );
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("CI", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("HOME", "/github/home"),
            ("GITHUB_WORKSPACE", "/github/workspace"),
            ("GITHUB_EVENT_PATH", "/github/workflow/event.json"),
            ("GITHUB_EVENT_NAME", event_name),
            ("GITHUB_OUTPUT", "/github/file_commands/set_output_4a1b"),
            (
                "GITHUB_STEP_SUMMARY",
                "/github/file_commands/step_summary_4a1b",
            ),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_RUN_ID", "4242"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_WORKFLOW", "Deploy"),
            ("GITHUB_REF", "refs/heads/main"),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        RunnerStep { dir, name, env }
    }

    /// The host folder mounted at `/github/workspace`.
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    /// Sets one variable of the container (`INPUT_*`, `GITHUB_*`, `AWS_*`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets several variables.
    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in env {
            self.env.insert(k.into(), v.into());
        }
        self
    }

    /// `docker run`s `image` as the runner does, waits for it, and reads back the mounted
    /// `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files.
    pub fn run(&self, image: &str, timeout: Duration) -> BinOutput {
        let root = self.dir.path();
        let mount = |host: &str, inside: &str| format!("{}:{inside}", root.join(host).display());
        let mut run = BinRun::new()
            .program("docker")
            .timeout(timeout)
            .args(["run", "--rm", "--name", &self.name, "--network", "host"])
            .args(["--workdir", "/github/workspace"])
            .args(["-v", "/var/run/docker.sock:/var/run/docker.sock"])
            .args(["-v", &mount("home", "/github/home")])
            .args(["-v", &mount("workflow", "/github/workflow")])
            .args(["-v", &mount("file_commands", "/github/file_commands")])
            .args(["-v", &mount("workspace", "/github/workspace")])
            // The docker CLI itself must not see the step's GITHUB_OUTPUT as a host path.
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY");
        for (k, v) in &self.env {
            run = run.arg("-e").arg(k).env(k, v);
        }
        // The container's HOME is /github/home; the docker CLI needs its own.
        run = run.env("HOME", root.join("home"));
        let mut out = run.arg(image).run();
        if out.timed_out {
            let _ = Command::new("docker")
                .args(["rm", "-f", &self.name])
                .output();
        }
        let read = |f: &str| {
            std::fs::read_to_string(root.join("file_commands").join(f)).unwrap_or_default()
        };
        out.outputs_raw = read(OUTPUT_FILE);
        out.outputs = super::bin::parse_github_output(&out.outputs_raw);
        out.summary = read(SUMMARY_FILE);
        super::bin::assert_no_secret_in(&out);
        out
    }
}

impl Drop for RunnerStep {
    fn drop(&mut self) {
        // A container left by a failed assertion must not outlive the test.
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// Copies a directory tree (files and directories) into `to`, which must exist.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("readable workspace") {
        let entry = entry.expect("dir entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&dest).expect("create dir");
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy file");
        }
    }
}
