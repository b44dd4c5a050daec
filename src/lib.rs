//! ecs-deploy: from "a release was merged" to "the new version is live on Amazon ECS, and the
//! team was told". This file tells that story top to bottom; each step lives in its own module.

pub mod aws;
pub mod config;
pub mod deploy;
pub mod error;
pub mod image;
pub mod inputs;
pub mod plan;
pub mod report;
pub mod trigger;
pub mod version;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::inputs::{Settings, Sources};
use crate::plan::{AppPlan, Plan};
use crate::report::console::{self, Group};
use crate::report::notify::Notifier;
use crate::report::{AppReport, Link, Report, RunInfo, Status};
use crate::trigger::{Decision, Trigger};

/// How long the dry run waits for each read-only AWS look-up before saying it could not read it.
const DRY_RUN_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Run facts for reporters, from the GitHub context.
pub fn run_info(settings: &Settings) -> RunInfo {
    let g = &settings.github;
    RunInfo {
        repository: g.repository.clone(),
        sha: g.sha.clone(),
        git_ref: g.git_ref.clone(),
        actor: g.actor.clone(),
        workflow: g.workflow.clone(),
        event_name: g.event_name.clone(),
        run_url: g.run_url(),
        commit_url: g.commit_url(),
    }
}

/// Decides from the event whether to deploy.
pub fn decide(settings: &Settings) -> Result<Decision> {
    let name = settings
        .github
        .event_name
        .as_deref()
        .ok_or(Error::MissingEventName)?;
    match &settings.github.event_path {
        Some(path) => trigger::decide_from_file(name, path, &settings.trigger),
        // Started by hand from a terminal: a dispatch needs no payload.
        None if name == "workflow_dispatch" => {
            trigger::decide("workflow_dispatch", "{}", &settings.trigger).map_err(|reason| {
                Error::InvalidEvent {
                    event_name: name.to_string(),
                    path: "(none)".into(),
                    reason,
                }
            })
        }
        None => Err(Error::MissingInput {
            name: "event".into(),
            why: format!("for a {name} event (the payload file; GitHub sets GITHUB_EVENT_PATH)"),
        }),
    }
}

/// Console links for an app's service, so a person can click through from the log.
pub fn service_links(region: Option<&str>, plan: &AppPlan) -> Vec<Link> {
    let (Some(region), Some(d)) = (region, &plan.deploy) else {
        return Vec::new();
    };
    vec![Link {
        label: format!("ECS service {}", d.service),
        url: format!(
            "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{}/services/{}/deployments?region={region}",
            d.cluster, d.service
        ),
    }]
}

/// Runs one app: image, then deploy. Never panics; the error lands in the app's report.
async fn run_app(
    aws: &Aws,
    poller: &deploy::wait::Poller,
    settings: &Settings,
    plan: &AppPlan,
    cancel: &CancellationToken,
) -> AppReport {
    let started = Instant::now();
    let mut rep = AppReport {
        app: plan.app.clone(),
        version: Some(plan.version.value.clone()),
        links: service_links(aws.region.as_deref(), plan),
        ..Default::default()
    };
    let result = async {
        let image = {
            let _g = Group::start(&format!(
                "{}: image {}",
                plan.app,
                plan.image.display_reference()
            ));
            image::ensure(aws, plan, &settings.github, cancel).await?
        };
        rep.image = Some(image.reference.clone());
        rep.image_digest = image.digest.clone();
        rep.image_built = Some(image.built);
        if plan.deploy.is_some() {
            let _g = Group::start(&format!("{}: deploy", plan.app));
            deploy::deploy(aws, poller, plan, &image.reference, cancel, &mut rep).await?;
        } else {
            println!(
                "{}: image pushed; no service given, so no deploy was asked for",
                plan.app
            );
        }
        Ok::<(), Error>(())
    }
    .await;
    match result {
        Ok(()) => {
            if rep.status.is_none() {
                rep.status = Some(Status::Succeeded);
            }
        }
        Err(e) => {
            if rep.status.is_none() || rep.status == Some(Status::Succeeded) {
                rep.status = Some(match e {
                    Error::Cancelled { .. } => Status::Cancelled,
                    _ => Status::Failed,
                });
            }
            rep.error = Some(e.to_string());
        }
    }
    rep.duration = started.elapsed();
    rep
}

/// The dry run: prints what each app would do, reading (never writing) AWS where it can.
async fn dry_run(aws: &Aws, plan: &Plan) -> Vec<AppReport> {
    let mut reports = Vec::new();
    for a in &plan.apps {
        let _g = Group::start(&format!("{}: dry run", a.app));
        let registry = match a.image.registry.clone() {
            Some(r) => r,
            None => match tokio::time::timeout(DRY_RUN_READ_TIMEOUT, image::registry_host(aws, a))
                .await
            {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    println!(
                        "could not read the account's ECR registry ({e}); showing a placeholder"
                    );
                    "<account ECR registry>".into()
                }
                Err(_) => {
                    println!(
                        "could not read the account's ECR registry (no answer in {DRY_RUN_READ_TIMEOUT:?}); showing a placeholder"
                    );
                    "<account ECR registry>".into()
                }
            },
        };
        let image = a.image.reference(&registry);
        println!("image: {image}");
        if a.deploy.is_some() {
            match tokio::time::timeout(DRY_RUN_READ_TIMEOUT, deploy::preview(aws, a, &image)).await
            {
                Ok(Ok(text)) => print!("{text}"),
                Ok(Err(e)) => println!("could not preview the deploy: {e}"),
                Err(_) => println!(
                    "could not preview the deploy: no answer from AWS in {DRY_RUN_READ_TIMEOUT:?}"
                ),
            }
        }
        println!("dry run: nothing was built, pushed, registered or updated");
        reports.push(AppReport {
            app: a.app.clone(),
            version: Some(a.version.value.clone()),
            image: Some(image),
            image_built: Some(false),
            deployment_kind: a.deploy.as_ref().map(|d| d.deployment.as_str().to_string()),
            status: Some(Status::Succeeded),
            ..Default::default()
        });
    }
    reports
}

/// Cancels `token` on SIGTERM or SIGINT (GitHub sends these when a job is cancelled).
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        println!("cancellation requested: stopping and rolling back what was started");
        token.cancel();
    });
}

/// The run after inputs are validated: decide, plan, (dry run | execute), report. The notifier
/// announces the start once the plan is known; the caller sends the outcome.
pub async fn run(
    settings: &Settings,
    aws: &Aws,
    notifier: &mut Notifier,
    cancel: &CancellationToken,
) -> Report {
    let started = Instant::now();
    let mut report = Report {
        run: run_info(settings),
        dry_run: settings.dry_run,
        ..Default::default()
    };
    let decision = {
        let _g = Group::start("Trigger");
        plan::check_config(settings).and_then(|()| decide(settings))
    };
    let trigger: Trigger = match decision {
        Err(e) => {
            report.error = Some(e.to_string());
            report.duration = started.elapsed();
            return report;
        }
        Ok(Decision::Skip { reason }) => {
            println!("skipped: {reason}");
            report.skip_reason = Some(reason);
            report.duration = started.elapsed();
            return report;
        }
        Ok(Decision::Deploy(t)) => t,
    };
    report.trigger = Some(trigger.describe());
    let plan = {
        let _g = Group::start("Plan");
        match plan::build(settings, &trigger)
            .and_then(|p| deploy::check_distinct_services(&p.apps).map(|()| p))
        {
            Ok(p) => {
                print!("{}", p.render_text(settings));
                p
            }
            Err(e) => {
                report.error = Some(e.to_string());
                report.duration = started.elapsed();
                return report;
            }
        }
    };
    if settings.dry_run {
        report.apps = dry_run(aws, &plan).await;
        report.duration = started.elapsed();
        return report;
    }
    notifier.start(&plan).await;
    // One poller for the run: apps deploying together share their DescribeServices calls.
    let poller = deploy::wait::Poller::new(aws.ecs.clone());
    let runs = plan
        .apps
        .iter()
        .map(|a| run_app(aws, &poller, settings, a, cancel));
    report.apps = futures_util::future::join_all(runs).await;
    report.duration = started.elapsed();
    report
}

/// Renders the report everywhere it goes (outputs, summary, messages, the one error annotation)
/// and returns the exit code: 0 for success or a clean skip, 1 otherwise.
pub async fn finish(
    output_file: Option<&Path>,
    summary_file: Option<&Path>,
    report: &Report,
    slack_ts: Option<&str>,
) -> u8 {
    let status = report.status();
    if let Err(e) = report::outputs::write(output_file, &report::outputs::outputs(report, slack_ts))
    {
        console::warning(&e.to_string());
    }
    if let Err(e) = report::summary::write(summary_file, report) {
        console::warning(&e.to_string());
    }
    for a in &report.apps {
        for l in &a.links {
            println!("{}: {} {}", a.app, l.label, l.url);
        }
    }
    if status.is_failure() || report.error.is_some() {
        let errors = report.errors();
        let message = if errors.is_empty() {
            format!("deploy ended with status {}", status.as_str())
        } else {
            errors.join("\n")
        };
        console::error(&format!("ecs-deploy {}", status.as_str()), &message);
        1
    } else {
        println!("status: {}", status.as_str());
        0
    }
}

/// The whole program for `main`: read inputs, mask secrets, run, report. Returns the exit code.
pub async fn main_with<I, T>(args: I, env: &dyn Fn(&str) -> Option<String>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let sources: Sources = match inputs::read_sources(args, env) {
        Ok(s) => s,
        Err(e) if inputs::is_help(&e) => return 0,
        Err(e) => {
            console::error("ecs-deploy: bad arguments", &e.to_string());
            return 1;
        }
    };
    // Mask first: nothing may print a secret before the runner knows to hide it.
    console::mask(&sources.raw.secrets());
    let settings = match Settings::from_sources(&sources) {
        Ok(s) => s,
        Err(e) => {
            let report = Report {
                error: Some(e.to_string()),
                ..Default::default()
            };
            // Outputs still go to the runner's files so later steps can read `status`.
            let file = |k: &str| sources.context.get(k).map(PathBuf::from);
            return finish(
                file("output-file").as_deref(),
                file("summary-file").as_deref(),
                &report,
                None,
            )
            .await;
        }
    };
    // AWS_MAX_ATTEMPTS / AWS_RETRY_MODE set by the user win over the action's own retry policy.
    let user_retry = ["AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"]
        .iter()
        .any(|name| env(name).is_some_and(|v| !v.trim().is_empty()));
    let aws = Aws::from_env(!user_retry).await;
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone());
    let mut notifier = Notifier::new(&settings.report, &run_info(&settings));
    let report = run(&settings, &aws, &mut notifier, &cancel).await;
    let slack_ts = if report.dry_run {
        None
    } else {
        notifier.finish(&report).await
    };
    finish(
        settings.github.output_file.as_deref(),
        settings.github.summary_file.as_deref(),
        &report,
        slack_ts.as_deref(),
    )
    .await
}
