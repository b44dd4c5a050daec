//! ecs-deploy: from "a release was merged" to "the new version is live on Amazon ECS, and the
//! team was told". This file tells that story top to bottom; each step lives in its own module.

pub mod aws;
pub mod changes;
pub mod config;
pub mod deploy;
pub mod error;
pub(crate) mod file_text;
pub mod github;
pub mod image;
pub mod inputs;
pub mod location;
pub mod outcome;
pub mod plan;
pub mod preflight;
#[cfg(test)]
mod proptests;
pub mod release_notes;
pub mod report;
pub mod runner;
pub mod task_definition;
pub(crate) mod task_definition_check;
pub mod trigger;
pub mod verify;
pub mod version;

use std::path::PathBuf;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::inputs::{Settings, Sources};
use crate::plan::{AppPlan, Plan};
use crate::preflight::{AppChecked, DeployCheck};
use crate::report::known::Known;
use crate::report::notify::Notifier;
use crate::report::{AppReport, Link, Report, RunInfo, Status};
use crate::runner::console::{self, Group};
use crate::runner::redact::Redactor;
use crate::runner::shutdown::Shutdown;
use crate::trigger::{Decision, Trigger};

/// Run facts for reporters, from the GitHub context.
pub(crate) fn run_info(settings: &Settings) -> RunInfo {
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
pub(crate) fn service_links(region: Option<&str>, plan: &AppPlan) -> Vec<Link> {
    let (Some(region), Some(d)) = (region, &plan.deploy) else {
        return Vec::new();
    };
    vec![Link {
        label: format!("ECS service {}", d.service),
        url: aws::ecs_service_url(region, &d.cluster, &d.service),
    }]
}

/// Where the rendered task definition files go, and how a later step names the directory:
/// `RUNNER_TEMP/ecs-deploy` when the runner's temp directory is there (a JavaScript-style
/// run, the CLI), else `.ecs-deploy` in the workspace, named relative to it: in the action's
/// container `RUNNER_TEMP` is a host path that is not mounted, and the workspace is the one
/// directory the later steps and the container share.
pub(crate) fn task_definition_dir(github: &inputs::GithubContext) -> (PathBuf, PathBuf) {
    match &github.runner_temp {
        Some(t) if t.is_dir() => (t.join("ecs-deploy"), t.join("ecs-deploy")),
        _ => (
            github.workspace.join(".ecs-deploy"),
            PathBuf::from(".ecs-deploy"),
        ),
    }
}

/// Writes an app's rendered task definition (pretty JSON) for the `task-definition` output. A
/// failure is a warning: the deploy is done, only the copy for later steps is missing.
fn write_task_definition(github: &inputs::GithubContext, rep: &mut AppReport) {
    let Some(td) = &rep.rendered_task_definition else {
        return;
    };
    let (dir, shown) = task_definition_dir(github);
    let name = format!("{}-task-definition.json", rep.app);
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| {
            // Keep the copy out of `git add -A` when it lands in the workspace.
            let ignore = dir.join(".gitignore");
            if !ignore.exists() {
                std::fs::write(ignore, "*\n")?;
            }
            Ok(())
        })
        .and_then(|()| {
            let text = serde_json::to_string_pretty(td).unwrap_or_default() + "\n";
            std::fs::write(dir.join(&name), text)
        });
    match written {
        Ok(()) => rep.task_definition_file = Some(shown.join(&name).display().to_string()),
        Err(e) => console::warning(&format!(
            "{}: the rendered task definition could not be written to {}: {e} (the task-definition output stays empty)",
            rep.app,
            dir.display()
        )),
    }
}

/// The `matrix` entries of a plan: one per app, in the plan's order.
pub(crate) fn matrix(plan: &Plan) -> Vec<report::MatrixEntry> {
    plan.apps
        .iter()
        .map(|a| report::MatrixEntry {
            app: a.app.clone(),
            version: a.version.value.clone(),
            cluster: a.settings.ecs.cluster.clone(),
            service: a
                .deploy
                .as_ref()
                .map(|d| d.service.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// A fresh report for an app, before anything ran.
fn app_report(aws: &Aws, plan: &AppPlan) -> AppReport {
    AppReport {
        app: plan.app.clone(),
        version: Some(plan.version.value.clone()),
        links: service_links(aws.region.as_deref(), plan),
        ..Default::default()
    }
}

/// The image step of one app; records the image in its report.
async fn app_image(
    aws: &Aws,
    settings: &Settings,
    (plan, checked): (&AppPlan, &AppChecked),
    (cancel, known): (&CancellationToken, &Known),
    rep: &mut AppReport,
) -> Result<image::ImageOutcome> {
    let _g = Group::start(&format!("{}: image {}", plan.app, checked.image.reference));
    let image = image::ensure(aws, plan, &checked.image, &settings.github, cancel).await?;
    rep.image = Some(image.reference.clone());
    rep.image_digest = image.digest.clone();
    rep.image_built = Some(image.built);
    rep.registry = image::registry_of(&image.reference);
    rep.image_id = image.image_id.clone();
    known.app(rep);
    Ok(image)
}

/// Moves the image's `latest` after a successful deploy (or push, for a build-only app). A
/// failure is a warning: the deploy itself succeeded, and the tag can be moved by hand. A
/// cancelled run moves nothing: the cancel is checked before every write.
async fn latest(image: &image::ImageOutcome, cancel: &CancellationToken) {
    if cancel.is_cancelled() {
        if image.latest.is_some() {
            println!("`latest` not moved: the run was cancelled");
        }
        return;
    }
    if let Err(e) = image::move_latest(image).await {
        console::warning(&format!(
            "the deploy succeeded but `latest` was not moved: {e}"
        ));
    }
}

/// Takes a deploy's outcome into the app's report; moves `latest` when it succeeded, else
/// hands back the error the app ends with.
async fn took(
    rep: &mut AppReport,
    image: &image::ImageOutcome,
    r: std::result::Result<outcome::Outcome, outcome::Failed>,
    cancel: &CancellationToken,
) -> Result<()> {
    match r {
        Ok(o) => {
            rep.apply(&o);
            latest(image, cancel).await;
            Ok(())
        }
        Err(f) => {
            rep.apply(&f.outcome);
            Err(f.error)
        }
    }
}

/// Why an app did not succeed, as its report says it.
#[derive(Debug, Clone)]
struct AppFailure {
    text: String,
    /// The status it ends with when no deploy path decided one (a check, the image).
    status: Status,
}

impl AppFailure {
    /// A failure from an error: `cancelled` for the job's cancellation, else `failed`.
    fn of(error: &Error) -> AppFailure {
        AppFailure {
            text: error.to_string(),
            status: if matches!(error, Error::Cancelled { .. }) {
                Status::Cancelled
            } else {
                Status::Failed
            },
        }
    }

    /// A failure said in words.
    fn failed(text: String) -> AppFailure {
        AppFailure {
            text,
            status: Status::Failed,
        }
    }
}

/// Turns an app's result into its final status and error, and stamps its duration.
fn conclude(rep: &mut AppReport, result: Result<()>, started: Instant) {
    if let Err(e) = &result {
        rep.error_location = e.file_location();
    }
    let failure = result.err().map(|e| AppFailure::of(&e));
    conclude_with(rep, failure, started);
}

/// [`conclude`] from the failure (`None`: success). A status the deploy path decided
/// (rolled-back, ...) is kept; otherwise the failure's, or `succeeded`.
fn conclude_with(rep: &mut AppReport, failure: Option<AppFailure>, started: Instant) {
    match failure {
        None => {
            rep.status.get_or_insert(Status::Succeeded);
        }
        Some(f) => {
            rep.status.get_or_insert(f.status);
            rep.error = Some(f.text);
        }
    }
    rep.duration = started.elapsed();
}

/// Runs one app: image, then deploy. Never panics; the error lands in the app's report.
async fn run_app(
    aws: &Aws,
    poller: &deploy::poll::Poller,
    settings: &Settings,
    (plan, checked): (&AppPlan, &AppChecked),
    (cancel, known): (&CancellationToken, &Known),
) -> AppReport {
    let started = Instant::now();
    let mut rep = app_report(aws, plan);
    let result = async {
        let image = app_image(aws, settings, (plan, checked), (cancel, known), &mut rep).await?;
        let target = match &checked.deploy {
            DeployCheck::Kubernetes(k) => Some(deploy::Target::Kubernetes(k)),
            DeployCheck::Checked(c) => Some(deploy::Target::Ecs(c)),
            _ => None,
        };
        if let Some(target) = target {
            let _g = Group::start(&match target {
                deploy::Target::Kubernetes(_) => format!("{}: deploy to Kubernetes", plan.app),
                deploy::Target::Ecs(_) => format!("{}: deploy", plan.app),
            });
            let job = deploy::Job {
                plan,
                checked: target,
                image: &image.reference,
                digest: image.digest.as_deref(),
                others: &[],
            };
            let r = deploy::deploy(aws, poller, job, cancel).await;
            took(&mut rep, &image, r, cancel).await?;
        } else {
            // As amazon-ecs-deploy-task-definition without `service`: a named task definition
            // is registered with the new image, and its ARN is an output.
            let registered = deploy::register::register_without_service(
                &aws.ecs,
                plan,
                &settings.github.workspace,
                &image.reference,
            )
            .await?;
            latest(&image, cancel).await;
            match registered {
                Some(arn) => {
                    println!(
                        "{}: registered {arn}; no service given, so no service was updated",
                        plan.app
                    );
                    rep.steps.push(format!(
                        "registered {} (no service to update)",
                        task_definition::short_task_definition(&arn)
                    ));
                    rep.task_definition_arn = Some(arn);
                }
                None => println!(
                    "{}: image pushed; no service given, so no deploy was asked for",
                    plan.app
                ),
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    conclude(&mut rep, result, started);
    known.app(&rep);
    rep
}

/// Runs apps that deploy one service together: every image first, then one revision with each
/// image in its app's container and one deployment, led by the first app. Each app's report
/// carries the shared deployment's fields. An image that fails stops the deployment for all.
async fn run_service_group(
    aws: &Aws,
    poller: &deploy::poll::Poller,
    settings: &Settings,
    plans: &[(&AppPlan, &AppChecked)],
    (cancel, known): (&CancellationToken, &Known),
) -> Vec<AppReport> {
    let started = Instant::now();
    let mut reps: Vec<AppReport> = plans.iter().map(|(p, _)| app_report(aws, p)).collect();
    let images = futures_util::future::join_all(
        plans
            .iter()
            .zip(reps.iter_mut())
            .map(|(pc, rep)| app_image(aws, settings, *pc, (cancel, known), rep)),
    )
    .await;
    let mut swaps = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut results: Vec<Option<Result<()>>> = Vec::new();
    let mut lead_digest = None;
    let mut built = Vec::new();
    for ((p, _), image) in plans.iter().zip(images) {
        match image {
            Ok(img) => {
                if swaps.is_empty() {
                    lead_digest = img.digest.clone();
                }
                swaps.push(deploy::Swap::for_app(p, img.reference.clone()));
                built.push(img);
                results.push(None);
            }
            Err(e) => {
                failed.push(p.app.clone());
                results.push(Some(Err(e)));
            }
        }
    }
    let Some((lead, lead_checked)) = plans.first().copied() else {
        return reps;
    };
    let (Some(d), DeployCheck::Checked(checked)) = (lead.deploy.as_ref(), &lead_checked.deploy)
    else {
        return reps;
    };
    let shared = if failed.is_empty() && !swaps.is_empty() {
        let lead_image = swaps.remove(0).image;
        let _g = Group::start(&format!(
            "{}: deploy (with {})",
            lead.app,
            swaps
                .iter()
                .map(|o| o.app.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let job = deploy::Job {
            plan: lead,
            checked: deploy::Target::Ecs(checked),
            image: &lead_image,
            digest: lead_digest.as_deref(),
            others: &swaps,
        };
        let r = deploy::deploy(aws, poller, job, cancel).await;
        if r.is_ok() {
            for img in &built {
                latest(img, cancel).await;
            }
        }
        Some(r)
    } else {
        None
    };
    let (outcome, deploy_error) = match shared {
        Some(Ok(o)) => (Some(o), None),
        Some(Err(f)) => (Some(*f.outcome), Some(AppFailure::of(&f.error))),
        None => (None, None),
    };
    for (i, rep) in reps.iter_mut().enumerate() {
        if let Some(err) = results[i].take() {
            conclude(rep, err, started);
            continue;
        }
        let Some(o) = &outcome else {
            let text = format!(
                "not deployed: the image of {} failed, and the apps of service {} (cluster {}) deploy together; fix it and run again",
                failed.join(", "),
                d.service,
                d.cluster
            );
            conclude_with(rep, Some(AppFailure::failed(text)), started);
            continue;
        };
        // Every app of the group carries the one deployment's outcome.
        rep.apply(o);
        let failure = deploy_error.as_ref().map(|f| AppFailure {
            text: if i == 0 {
                f.text.clone()
            } else {
                format!("deployed together with {}: {}", lead.app, f.text)
            },
            status: f.status,
        });
        conclude_with(rep, failure, started);
        known.app(rep);
    }
    reps
}

/// The dry run: the preflight's findings and, for each service, the diff between the live task
/// definition and the one that would be registered. Apps that deploy one service together show
/// one diff, under the app that leads them. Writes nothing.
fn dry_run(
    plan: &Plan,
    checked: &[std::result::Result<AppChecked, Refused>],
    groups: &[Vec<usize>],
) -> Vec<AppReport> {
    let mut reports = Vec::new();
    for (i, (a, c)) in plan.apps.iter().zip(checked).enumerate() {
        let _g = Group::start(&format!("{}: dry run", a.app));
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                println!("the real run would stop here: {e}");
                println!("dry run: nothing was built, pushed, registered or updated");
                reports.push(AppReport {
                    app: a.app.clone(),
                    version: Some(a.version.value.clone()),
                    status: Some(Status::Failed),
                    error: Some(e.text.clone()),
                    error_location: e.location.clone(),
                    ..Default::default()
                });
                continue;
            }
        };
        let image = c.image.reference.clone();
        println!("image: {image}");
        let group = groups
            .iter()
            .find(|g| g.contains(&i))
            .filter(|g| g.len() > 1);
        let preview = match (&c.deploy, &a.deploy) {
            (DeployCheck::Kubernetes(k), _) => Some(if k.previous_image == image {
                format!(
                    "{}: container {} already runs {image}: nothing would be patched\n",
                    k.target(),
                    k.container
                )
            } else {
                format!(
                    "{}: container {} would go from {} to {image}{}\n",
                    k.target(),
                    k.container,
                    k.previous_image,
                    k.manifest
                        .as_ref()
                        .map(|m| format!(", and {} would be committed", m.repo_path))
                        .unwrap_or_default()
                )
            }),
            (DeployCheck::NoDeploy, _) | (_, None) => None,
            (DeployCheck::WithLead, Some(d)) => {
                let lead = group.map(|g| plan.apps[g[0]].app.as_str()).unwrap_or("?");
                Some(format!(
                    "deploys service {} together with {lead}: see {lead}'s diff\n",
                    d.service
                ))
            }
            (DeployCheck::Checked(_) | DeployCheck::Unread(_), Some(_)) => {
                let others: Vec<deploy::Swap> = group
                    .map(|g| &g[1..])
                    .unwrap_or_default()
                    .iter()
                    .map(|&j| {
                        let image = checked[j]
                            .as_ref()
                            .map(|c| c.image.reference.clone())
                            .unwrap_or_default();
                        deploy::Swap::for_app(&plan.apps[j], image)
                    })
                    .collect();
                let live = match &c.deploy {
                    DeployCheck::Checked(k) => Ok(k.as_ref()),
                    DeployCheck::Unread(why) => Err(why.as_str()),
                    _ => Err("not checked"),
                };
                Some(match deploy::preview(a, live, &image, &others) {
                    Ok(text) => text,
                    Err(e) => format!("could not preview the deploy: {e}\n"),
                })
            }
        };
        if let Some(text) = &preview {
            print!("{text}");
        }
        println!("dry run: nothing was built, pushed, registered or updated");
        let kind = match &c.deploy {
            DeployCheck::Checked(k) => Some(k.path),
            DeployCheck::Kubernetes(_) => Some(outcome::DeployPath::Kubernetes),
            _ => a.deploy.as_ref().and_then(|d| d.deployment.path()),
        };
        reports.push(AppReport {
            app: a.app.clone(),
            version: Some(a.version.value.clone()),
            image: Some(image),
            image_built: Some(false),
            deployment_kind: kind,
            status: Some(Status::Succeeded),
            preview,
            ..Default::default()
        });
    }
    reports
}

/// The dry run's `keep-task-definitions` lines (read-only), printed and added to each app's
/// preview.
async fn keep_previews(
    aws: &Aws,
    plan: &Plan,
    checked: &[std::result::Result<AppChecked, Refused>],
    apps: &mut [AppReport],
) {
    for ((a, c), rep) in plan.apps.iter().zip(checked).zip(apps) {
        let Ok(c) = c else { continue };
        let DeployCheck::Checked(k) = &c.deploy else {
            continue;
        };
        if let Some(line) = deploy::keep_preview(aws, a, k, &c.image.reference).await {
            print!("{}: {line}", a.app);
            rep.preview.get_or_insert_default().push_str(&line);
        }
    }
}

/// Reads the release notes of the apps that deployed into their reports (before any reporter
/// renders them); a missing token or a GitHub failure is a warning, never the deploy's.
async fn release_notes_into(
    settings: &Settings,
    checked: &[std::result::Result<AppChecked, Refused>],
    apps: &mut [AppReport],
) {
    let live: Vec<Option<String>> = checked
        .iter()
        .map(|c| c.as_ref().ok().and_then(release_notes::live_image))
        .collect();
    let deployed: Vec<release_notes::Deployed> = apps
        .iter()
        .zip(checked.iter().zip(&live))
        .map(|(rep, (c, image))| release_notes::Deployed {
            app: &rep.app,
            shipped: matches!(rep.status, Some(Status::Succeeded | Status::RolledBack))
                && rep.deployment_kind.is_some(),
            live: release_notes::Live {
                image: image.as_deref(),
                access: c.as_ref().ok().and_then(|c| c.image.access.as_ref()),
            },
        })
        .collect();
    let _g = Group::start("Release notes");
    let (notes, warnings) = release_notes::fetch(settings, &deployed).await;
    for w in &warnings {
        console::warning(w);
    }
    for (rep, n) in apps.iter_mut().zip(notes) {
        if let Some(n) = &n {
            println!(
                "{}: {} (from {})",
                rep.app,
                n.heading(rep.status == Some(Status::RolledBack)),
                n.anchor.describe()
            );
        }
        rep.changes = n;
    }
}

/// Why the preflight refused an app: the message, and the file it is about when it is.
#[derive(Debug, Clone)]
pub struct Refused {
    pub text: String,
    pub location: Option<location::FileLocation>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The preflight's results with every app of a group failed when one of them failed (apps that
/// deploy one service together stand or fall together), as error texts for the reports.
fn settle_groups(
    plan: &Plan,
    groups: &[Vec<usize>],
    results: Vec<Result<AppChecked>>,
) -> Vec<std::result::Result<AppChecked, Refused>> {
    let mut out: Vec<std::result::Result<AppChecked, Refused>> = results
        .into_iter()
        .map(|r| {
            r.map_err(|e| Refused {
                text: format!("preflight (nothing was built, pushed or changed): {e}"),
                location: e.file_location(),
            })
        })
        .collect();
    for g in groups.iter().filter(|g| g.len() > 1) {
        let failed: Vec<&str> = g
            .iter()
            .filter(|&&i| out[i].is_err())
            .map(|&i| plan.apps[i].app.as_str())
            .collect();
        if failed.is_empty() {
            continue;
        }
        let service = plan.apps[g[0]]
            .deploy
            .as_ref()
            .map(|d| format!("service {} (cluster {})", d.service, d.cluster))
            .unwrap_or_default();
        for &i in g {
            if out[i].is_ok() {
                out[i] = Err(Refused {
                    text: format!(
                        "not deployed: the preflight of {} failed, and the apps of {service} deploy together; fix it and run again",
                        failed.join(", ")
                    ),
                    location: None,
                });
            }
        }
    }
    out
}

/// The run after inputs are validated: decide, plan, preflight (read-only), then the dry run or
/// execute (the first write), report. The notifier
/// announces the start once the plan is known; the caller sends the outcome. What the run
/// learns is published to `known` as it goes, for a cancelled job that cannot wait for the end.
pub async fn run(
    settings: &Settings,
    aws: &Aws,
    notifier: &mut Notifier,
    cancel: &CancellationToken,
    known: &Known,
) -> Report {
    let mut report = run_steps(settings, aws, notifier, cancel, known).await;
    // Annotations name files relative to the workspace (the repository).
    let ws = &settings.github.workspace;
    let relative = |l: &mut Option<location::FileLocation>| {
        *l = l.as_ref().and_then(|l| l.in_workspace(ws));
    };
    relative(&mut report.error_location);
    for a in &mut report.apps {
        relative(&mut a.error_location);
    }
    report
}

/// [`run`]'s steps, each early return a finished report.
async fn run_steps(
    settings: &Settings,
    aws: &Aws,
    notifier: &mut Notifier,
    cancel: &CancellationToken,
    known: &Known,
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
            report.error_location = e.file_location();
            report.error = Some(e.to_string());
            report.duration = started.elapsed();
            return report;
        }
        Ok(Decision::Skip { reason }) => {
            // A notice, so the run's page says why nothing was deployed (a green step alone
            // looks like a deploy).
            console::notice(&format!("skipped: {reason}"));
            report.skip_reason = Some(reason);
            report.duration = started.elapsed();
            return report;
        }
        Ok(Decision::Deploy(t)) => t,
    };
    report.trigger = Some(trigger.describe());
    known.publish(&report);
    let plan = {
        let _g = Group::start("Plan");
        // The image login is decided with the plan, so an input that would send ECR's token to
        // a host that is not ECR stops the run before anything is written.
        let built = plan::build(settings, &trigger).and_then(|p| {
            p.apps
                .iter()
                .try_for_each(|a| image::auth_kind(&a.settings).map(drop))
                .map(|()| p)
        });
        let mut plan = match built {
            Ok(p) => p,
            Err(e) => {
                report.error_location = e.file_location();
                report.error = Some(e.to_string());
                report.duration = started.elapsed();
                return report;
            }
        };
        if settings.changed_only {
            match changes::keep_changed(settings, &mut plan).await {
                Ok(selection) => {
                    println!("{}", selection.note);
                    if plan.apps.is_empty() {
                        let reason = format!("{}: nothing to deploy", selection.note);
                        console::notice(&format!("skipped: {reason}"));
                        report.skip_reason = Some(reason);
                        report.duration = started.elapsed();
                        return report;
                    }
                }
                Err(e) => {
                    report.error_location = e.file_location();
                    report.error = Some(e.to_string());
                    report.duration = started.elapsed();
                    return report;
                }
            }
        }
        report.matrix = matrix(&plan);
        match deploy::service_groups(&plan.apps) {
            Ok(groups) => {
                print!("{}", plan.render_text(settings));
                for g in groups.iter().filter(|g| g.len() > 1) {
                    let names: Vec<&str> = g.iter().map(|&i| plan.apps[i].app.as_str()).collect();
                    println!(
                        "apps {} deploy one service together: one revision with each image in its own container, one deployment led by {}",
                        names.join(", "),
                        names[0]
                    );
                }
                (plan, groups)
            }
            Err(e) => {
                report.error_location = e.file_location();
                report.error = Some(e.to_string());
                report.duration = started.elapsed();
                return report;
            }
        }
    };
    let (plan, groups) = plan;
    if settings.plan_only {
        // The matrix job: the plan is the result. No AWS call, no build, no message.
        println!(
            "plan only: nothing was read from AWS, built, pushed or deployed; the matrix output lists {}",
            plan.apps
                .iter()
                .map(|a| a.app.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        report.plan_only = true;
        report.apps = plan
            .apps
            .iter()
            .map(|a| AppReport {
                app: a.app.clone(),
                version: Some(a.version.value.clone()),
                status: Some(Status::Succeeded),
                ..Default::default()
            })
            .collect();
        report.duration = started.elapsed();
        return report;
    }
    // Every read-only check, before the first write (and the same for a dry run).
    let mode = if settings.dry_run {
        preflight::Mode::DryRun
    } else {
        preflight::Mode::Deploy
    };
    // One poller for the run, preflight included: apps of one cluster share their describe calls.
    let poller = deploy::poll::Poller::for_aws(aws);
    let checked = {
        let _g = Group::start("Preflight");
        let checked = settle_groups(
            &plan,
            &groups,
            preflight::check(aws, &poller, &plan, &groups, mode).await,
        );
        for (a, c) in plan.apps.iter().zip(&checked) {
            match c {
                Ok(c) if c.unread.is_empty() => {
                    println!("preflight: {} checked; nothing written yet", a.app)
                }
                Ok(c) => println!(
                    "preflight: {} checked what AWS answered ({} could not be read); nothing written",
                    a.app,
                    c.unread.len()
                ),
                Err(e) => println!("preflight: {}: {e}", a.app),
            }
        }
        checked
    };
    if settings.dry_run {
        report.apps = dry_run(&plan, &checked, &groups);
        keep_previews(aws, &plan, &checked, &mut report.apps).await;
        report.duration = started.elapsed();
        return report;
    }
    // From here on something may be written: a cancelled job reports each app as it stood.
    for a in &plan.apps {
        known.app(&app_report(aws, a));
    }
    notifier.start(&plan).await;
    // Several units at once would overlap their log groups: their lines interleave instead.
    console::set_groups(groups.len() < 2);
    let runs = groups.iter().map(|g| {
        let plans: Vec<(&AppPlan, &AppChecked)> = g
            .iter()
            .filter_map(|&i| checked[i].as_ref().ok().map(|c| (&plan.apps[i], c)))
            .collect();
        let poller = &poller;
        let refused: Vec<AppReport> = g
            .iter()
            .filter_map(|&i| {
                let e = checked[i].as_ref().err()?;
                let mut rep = app_report(aws, &plan.apps[i]);
                rep.error_location = e.location.clone();
                conclude_with(&mut rep, Some(AppFailure::failed(e.text.clone())), started);
                known.app(&rep);
                Some(rep)
            })
            .collect();
        async move {
            if !refused.is_empty() {
                return g.iter().copied().zip(refused).collect::<Vec<_>>();
            }
            let reps = match plans.as_slice() {
                [one] => vec![run_app(aws, poller, settings, *one, (cancel, known)).await],
                _ => run_service_group(aws, poller, settings, &plans, (cancel, known)).await,
            };
            g.iter().copied().zip(reps).collect::<Vec<_>>()
        }
    });
    let mut done: Vec<(usize, AppReport)> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    // In the plan's order, whatever order the groups finished in.
    done.sort_by_key(|(i, _)| *i);
    console::set_groups(true);
    report.apps = done.into_iter().map(|(_, r)| r).collect();
    for rep in &mut report.apps {
        write_task_definition(&settings.github, rep);
    }
    if !cancel.is_cancelled() {
        release_notes_into(settings, &checked, &mut report.apps).await;
    }
    report.duration = started.elapsed();
    report
}

/// Says how the run ended on the console (the links, then the one error annotation or the
/// status line) and returns the exit code: 0 for success or a clean skip, 1 otherwise. The
/// outputs and the summary are written before, by [`Known::write`].
pub(crate) fn conclude_run(report: &Report) -> u8 {
    let status = report.status();
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
        console::error(
            &format!("ecs-deploy {}", status.as_str()),
            &message,
            report.error_location(),
        );
        1
    } else {
        println!("status: {}", status.as_str());
        0
    }
}

/// The end of a run: its report goes to the outputs and the summary first (a job cancelled
/// now still has them), then to Slack, Discord and GitHub, then to the console.
async fn report_run(mut report: Report, notifier: &mut Notifier, known: &Known) -> u8 {
    known.last(&report, notifier.slack_message_ts());
    known.write();
    if !report.dry_run && !report.plan_only {
        let ts = notifier.finish(&report).await;
        // What Slack answered (slack-github-action's outputs), and the `ts` of a message the
        // outcome posted of its own (no start message).
        if let Some(sent) = notifier.slack_sent() {
            report.slack = Some(sent.clone());
            known.last(&report, ts.as_deref());
            known.write();
        }
    }
    conclude_run(&report)
}

/// The whole program for `main`: read inputs, mask secrets, run, report. Returns the exit code.
/// After a SIGTERM or SIGINT it returns within [`shutdown::EXIT_WITHIN`] of it, whatever AWS,
/// Slack, Discord or GitHub do: what is known is written at the signal, and again at the end
/// (or at a second signal, or when the time is up, as it stands then).
pub async fn main_with<I, T>(args: I, env: &dyn Fn(&str) -> Option<String>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    // The hidden `contract` subcommand prints action.yml or the inputs reference (generated).
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(generated) = inputs::contract_cli(&words) {
        return match generated {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(usage) => {
                eprintln!("{usage}");
                2
            }
        };
    }
    let sources: Sources = match inputs::read_sources(args, env) {
        Ok(s) => s,
        Err(e) if inputs::is_help(&e) => return 0,
        Err(e) => {
            console::error("ecs-deploy: bad arguments", &e.to_string(), None);
            return 1;
        }
    };
    // Mask first: nothing may print a secret before the runner knows to hide it.
    console::mask(&sources.raw.secrets());
    let settings = match Settings::from_sources(&sources) {
        Ok(s) => s,
        Err(e) => {
            // Outputs still go to the runner's files so later steps can read `status`.
            let file = |k: &str| sources.context.get(k).map(PathBuf::from);
            let known = Known::new(
                file("output-file").as_deref(),
                file("summary-file").as_deref(),
            );
            let report = Report {
                error: Some(e.to_string()),
                ..Default::default()
            };
            known.last(&report, None);
            known.write();
            return conclude_run(&known.report());
        }
    };
    // AWS_MAX_ATTEMPTS / AWS_RETRY_MODE set by the user win over the action's own retry policy.
    let user_retry = ["AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"]
        .iter()
        .any(|name| env(name).is_some_and(|v| !v.trim().is_empty()));
    // plan-only makes no AWS call at all: not even the SDK chain's region and credential
    // look-ups (instance metadata), so the matrix job needs no AWS settings.
    let aws = if settings.plan_only {
        Aws::offline()
    } else if let Some(attempts) = settings.max_attempts {
        // The step's `max-retries` is explicit: it wins over the environment's.
        Aws::from_env_with(Some(aws::retry_with(attempts))).await
    } else {
        Aws::from_env(!user_retry).await
    };
    let shutdown = Shutdown::new();
    shutdown.listen();
    let known = Known::new(
        settings.github.output_file.as_deref(),
        settings.github.summary_file.as_deref(),
    );
    let mut notifier =
        Notifier::new(&settings.report, &run_info(&settings)).until(shutdown.clone());
    let work = async {
        let mut report = run(&settings, &aws, &mut notifier, shutdown.token(), &known).await;
        // Once, before any reporter renders it: no message, summary or output carries a secret.
        report::redact(&Redactor::known(), &mut report);
        report_run(report, &mut notifier, &known).await
    };
    // At the first signal, before the rollback and the reporters: what is known so far.
    let first_write = async {
        shutdown.token().cancelled().await;
        known.write();
        std::future::pending::<u8>().await
    };
    tokio::select! {
        code = work => code,
        code = first_write => code,
        () = shutdown.stop() => {
            println!("stopping now: writing what is known and exiting");
            known.write();
            conclude_run(&known.report())
        }
    }
}
