//! `ecs-deploy`: the action's entry point and the CLI. Tiny on purpose: everything is in the
//! library, so tests drive the same code.

#[tokio::main]
async fn main() {
    // ECS_DEPLOY_LOG wins; else the runner's debug mode (re-run with debug logging sets
    // RUNNER_DEBUG=1) turns on the SDK's and this crate's debug logs; else warnings only.
    let default = if std::env::var("RUNNER_DEBUG").is_ok_and(|v| v == "1") {
        "debug,hyper=info,hyper_util=info,h2=info,rustls=info,tower=info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ECS_DEPLOY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let env = |name: &str| std::env::var(name).ok();
    let code = ecs_deploy::main_with(std::env::args_os(), &env).await;
    // Exit here, not by returning: dropping the runtime waits for blocking work still running
    // (a build context being read, a DNS lookup), and a cancelled job has no time for that.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = std::io::Write::flush(&mut std::io::stderr());
    std::process::exit(i32::from(code))
}
