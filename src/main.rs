//! `ecs-deploy`: the action's entry point and the CLI. Tiny on purpose: everything is in the
//! library, so tests drive the same code.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ECS_DEPLOY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let env = |name: &str| std::env::var(name).ok();
    ExitCode::from(ecs_deploy::main_with(std::env::args_os(), &env).await)
}
