//! GitHub Deployments: a deployment for the environment at the commit when the deploy starts
//! (`in_progress`), and its final status (`success`, `failure`, `inactive`) at the end, so the
//! repository's Environments page shows what runs where.
//!
//! The bodies are built here (pure); they go out through octocrab (`crate::github::Api`).

use serde_json::{Value, json};

use crate::error::Error;
use crate::github::Api;
use crate::plan::Plan;
use crate::release_notes::Direction;
use crate::report::facts::{apps_line, display_version, short_sha, status_words, truncate};
use crate::report::{Report, RunInfo, Status};

/// GitHub rejects descriptions longer than 140 characters.
const DESCRIPTION_MAX: usize = 140;

/// The deployment's final state for a run status.
pub(crate) fn final_state(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "success",
        Status::Failed | Status::RolledBack => "failure",
        // Nothing new is live: the deployment no longer describes the environment.
        Status::Cancelled | Status::Skipped => "inactive",
    }
}

/// The body of `POST /repos/{repo}/deployments`: the commit, the environment, the apps.
pub(crate) fn create_body(plan: &Plan, sha: &str, environment: &str) -> Value {
    let apps: Vec<Value> = plan
        .apps
        .iter()
        .map(|a| json!({ "app": a.app, "version": a.version.value }))
        .collect();
    let names: Vec<String> = plan
        .apps
        .iter()
        .map(|a| format!("{} {}", a.app, display_version(&a.version.value)))
        .collect();
    json!({
        "ref": sha,
        "environment": environment,
        "task": "deploy",
        "description": truncate(&names.join(", "), DESCRIPTION_MAX),
        // The deploy is already decided: no merge of the default branch, no waiting for checks
        // (this very workflow is one of the pending checks).
        "auto_merge": false,
        "required_contexts": [],
        "payload": { "apps": apps },
    })
}

/// The body of the `in_progress` status posted at the start.
pub(crate) fn start_status(plan: &Plan, run: &RunInfo) -> Value {
    let names: Vec<String> = plan
        .apps
        .iter()
        .map(|a| format!("{} {}", a.app, display_version(&a.version.value)))
        .collect();
    let mut body = json!({
        "state": "in_progress",
        "description": truncate(&format!("deploying {}", names.join(", ")), DESCRIPTION_MAX),
    });
    if let Some(url) = &run.run_url {
        body["log_url"] = json!(url);
    }
    body
}

/// The body of the final status: state, a one-line description, the run, and the service's
/// console page as the environment URL when the report has one.
pub fn final_status(report: &Report) -> Value {
    let status = report.status();
    let mut description = format!(
        "{} {}",
        apps_line(report, &report.run),
        status_words(status)
    );
    if let Some(changes) = changes_text(report) {
        description.push_str(&format!(": {changes}"));
    }
    let mut body = json!({
        "state": final_state(status),
        "description": truncate(&description, DESCRIPTION_MAX),
    });
    if let Some(url) = &report.run.run_url {
        body["log_url"] = json!(url);
    }
    if let Some(link) = report.apps.iter().flat_map(|a| &a.links).next() {
        body["environment_url"] = json!(link.url);
    }
    body
}

/// The release notes in a few words for the deployment's one-line description: per app, how
/// many commits went live (or were taken back out) and their pull requests or shas, as many as
/// fit. `None` when no app has notes.
pub(crate) fn changes_text(report: &Report) -> Option<String> {
    let parts: Vec<String> = report
        .apps
        .iter()
        .filter_map(|a| {
            let notes = a.changes.as_ref()?;
            let n = notes.total;
            let commits = if n == 1 { "commit" } else { "commits" };
            let rolled_back = a.status == Some(Status::RolledBack);
            let what = match (notes.direction, rolled_back) {
                (Direction::Same, _) => return Some(format!("{}: no new commits", a.app)),
                (Direction::Forward, false) => format!("{n} {commits}"),
                (Direction::Forward, true) => format!("{n} {commits} taken back out"),
                (Direction::Backward, false) => format!("{n} {commits} taken out"),
                (Direction::Backward, true) => format!("{n} {commits} kept"),
            };
            let ids: Vec<String> = notes
                .commits
                .iter()
                .map(|c| match c.pr {
                    Some(pr) => format!("#{pr}"),
                    None => short_sha(&c.sha).to_string(),
                })
                .collect();
            let name = if report.apps.len() > 1 {
                format!("{} ", a.app)
            } else {
                String::new()
            };
            Some(if ids.is_empty() {
                format!("{name}{what}")
            } else {
                format!("{name}{what} ({})", ids.join(", "))
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Creates the deployment and sets it `in_progress`. Returns the deployment id for [`finish`]
/// whenever the deployment was created (even if the `in_progress` status then failed, so the
/// final status still lands), and the problems met.
pub async fn start(
    api: &Api,
    run: &RunInfo,
    environment: &str,
    plan: &Plan,
) -> (Option<u64>, Vec<Error>) {
    let (Some(repo), Some(sha)) = (&run.repository, &run.sha) else {
        return (
            None,
            vec![Error::Notify {
                target: "GitHub deployment".into(),
                problem: "GITHUB_REPOSITORY and GITHUB_SHA are needed to record a deployment \
                          (the runner sets them; pass --repository and --sha on a terminal)"
                    .into(),
            }],
        );
    };
    let created = match api
        .post(
            "GitHub create deployment",
            &format!("/repos/{repo}/deployments"),
            &create_body(plan, sha, environment),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return (None, vec![e]),
    };
    let Some(id) = created.get("id").and_then(Value::as_u64) else {
        // 202 "Auto-merged main into topic branch" and similar answers carry a message, no id.
        return (
            None,
            vec![Error::Notify {
                target: "GitHub create deployment".into(),
                problem: format!(
                    "GitHub created no deployment: {}",
                    created
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("the answer had no id")
                ),
            }],
        );
    };
    let problems = api
        .post(
            "GitHub deployment status",
            &format!("/repos/{repo}/deployments/{id}/statuses"),
            &start_status(plan, run),
        )
        .await
        .err()
        .into_iter()
        .collect();
    (Some(id), problems)
}

/// Sets the deployment's final status from the report.
pub async fn finish(api: &Api, run: &RunInfo, id: u64, report: &Report) -> Result<(), Error> {
    let Some(repo) = &run.repository else {
        return Ok(());
    };
    api.post(
        "GitHub deployment status",
        &format!("/repos/{repo}/deployments/{id}/statuses"),
        &final_status(report),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_deployment_states() {
        assert_eq!(final_state(Status::Succeeded), "success");
        assert_eq!(final_state(Status::RolledBack), "failure");
        assert_eq!(final_state(Status::Failed), "failure");
        assert_eq!(final_state(Status::Cancelled), "inactive");
    }
}
