//! What the benchmarks that run the real `ecs-deploy` binary against the scripted ECS share:
//! the workspace (a package.json and a config of rolling services in cluster `prod`), the
//! command as the runner would start it (workflow_dispatch, dummy AWS credentials, every call to
//! the scripted endpoint), and the `status` output it wrote.

use std::path::Path;
use std::process::{Command, Stdio};

#[allow(dead_code)]
#[path = "../../tests/it/support/aws.rs"]
mod test_aws;

/// A workspace in `dir`: one package.json (version 1.2.3) and a config deploying `services`
/// (each its own app, image `registry.example.com/<service>:v1.2.3`) of cluster `prod`.
pub fn workspace(dir: &Path, services: &[&str]) {
    std::fs::create_dir_all(dir.join(".github")).expect("workspace");
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"shop","version":"1.2.3"}"#,
    )
    .expect("package.json");
    let mut config =
        String::from("defaults:\n  cluster: prod\n  package-json: package.json\napps:\n");
    for s in services {
        config.push_str(&format!(
            "  {s}:\n    image: registry.example.com/{s}:v1.2.3\n    service: {s}\n    container-name: {s}\n"
        ));
    }
    std::fs::write(dir.join(".github/ecs-deploy.yml"), config).expect("config");
}

/// The binary deploying every app of the workspace in `dir` against `endpoint`, its outputs
/// written to `output`, its log thrown away unless `log`.
pub fn command(dir: &Path, endpoint: &str, output: &Path, log: bool) -> Command {
    let event =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events/workflow-dispatch-latest.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecs-deploy"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .envs(test_aws::aws_env(endpoint))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("GITHUB_WORKSPACE", dir)
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_OUTPUT", output)
        .env("INPUT_CONFIG", ".github/ecs-deploy.yml")
        .env("INPUT_APP", "all")
        .stdin(Stdio::null());
    if !log {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    cmd
}

/// The `status` output the run wrote to `output` (`?` when it wrote none).
pub fn status_output(output: &Path) -> String {
    let text = std::fs::read_to_string(output).unwrap_or_default();
    text.split("status<<")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .unwrap_or("?")
        .to_string()
}
