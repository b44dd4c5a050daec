//! GitHub Deployments: a deployment for the environment at the commit when the deploy starts
//! (`in_progress`), and its final status (`success`, `failure`, `inactive`) at the end, so the
//! repository's Environments page shows what runs where.
//!
//! Plain reqwest rather than octocrab: two POST endpoints with small JSON bodies do not need a
//! typed client, and octocrab would add its own HTTP stack (hyper-util, tower, jsonwebtoken) to
//! a build that already takes minutes on two cores.

use serde_json::{Value, json};

use crate::error::Error;
use crate::plan::Plan;
use crate::report::facts::{apps_line, display_version, status_words, truncate};
use crate::report::http::{Http, Post};
use crate::report::{Report, RunInfo, Status};

/// GitHub rejects descriptions longer than 140 characters.
const DESCRIPTION_MAX: usize = 140;

const HEADERS: &[(&str, &str)] = &[
    ("accept", "application/vnd.github+json"),
    ("x-github-api-version", "2022-11-28"),
];

/// The deployment's final state for a run status.
pub fn final_state(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "success",
        Status::Failed | Status::RolledBack => "failure",
        // Nothing new is live: the deployment no longer describes the environment.
        Status::Cancelled | Status::Skipped => "inactive",
    }
}

/// The body of `POST /repos/{repo}/deployments`: the commit, the environment, the apps.
pub fn create_body(plan: &Plan, sha: &str, environment: &str) -> Value {
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
pub fn start_status(plan: &Plan, run: &RunInfo) -> Value {
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
    let description = format!(
        "{} {}",
        apps_line(report, &report.run),
        status_words(status)
    );
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

async fn post(
    http: &Http,
    url: &str,
    token: &str,
    what: &str,
    body: &Value,
) -> Result<Value, Error> {
    http.post(Post {
        target: what,
        url,
        bearer: Some(token),
        headers: HEADERS,
        body,
    })
    .await
    .map(|a| a.json)
}

/// Creates the deployment and sets it `in_progress`. Returns the deployment id for [`finish`]
/// whenever the deployment was created (even if the `in_progress` status then failed, so the
/// final status still lands), and the problems met.
pub async fn start(
    http: &Http,
    api: &str,
    token: &str,
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
    let created = match post(
        http,
        &format!("{api}/repos/{repo}/deployments"),
        token,
        "GitHub create deployment",
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
    let problems = post(
        http,
        &format!("{api}/repos/{repo}/deployments/{id}/statuses"),
        token,
        "GitHub deployment status",
        &start_status(plan, run),
    )
    .await
    .err()
    .into_iter()
    .collect();
    (Some(id), problems)
}

/// Sets the deployment's final status from the report.
pub async fn finish(
    http: &Http,
    api: &str,
    token: &str,
    run: &RunInfo,
    id: u64,
    report: &Report,
) -> Result<(), Error> {
    let Some(repo) = &run.repository else {
        return Ok(());
    };
    post(
        http,
        &format!("{api}/repos/{repo}/deployments/{id}/statuses"),
        token,
        "GitHub deployment status",
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
