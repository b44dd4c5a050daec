//! Action outputs: the report turned into `name → value` pairs and written to `GITHUB_OUTPUT`
//! in the heredoc form, with a delimiter that never occurs in the value.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::outcome::DeployPath;
use crate::report::{AppReport, Report};

/// Formats one output in the heredoc form `name<<DELIM\nvalue\nDELIM\n`.
pub(crate) fn format_output(name: &str, value: &str, delimiter: &str) -> String {
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// A delimiter not found in `value`: `ghadelimiter_<nonce>`, extended until it is unique.
pub(crate) fn delimiter_for(value: &str, nonce: u128) -> String {
    let mut d = format!("ghadelimiter_{nonce:032x}");
    while value.contains(&d) {
        d.push('_');
    }
    d
}

fn nonce() -> u128 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    t ^ ((std::process::id() as u128) << 64)
}

/// `deployment-kind`: the path the app's deploy took, empty when none.
fn kind(a: &AppReport) -> String {
    a.deployment_kind.map(|k| k.to_string()).unwrap_or_default()
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// `codedeploy-deployment-id`: the deployment id when CodeDeploy made the deployment.
fn codedeploy_deployment_id(a: &AppReport) -> String {
    match a.deployment_kind {
        Some(DeployPath::CodeDeploy) => opt(&a.deployment_id),
        _ => String::new(),
    }
}

/// `run-task-arn`: a JSON array of the one-off tasks' ARNs (amazon-ecs-deploy-task-definition's
/// format), empty when none ran.
fn run_task_arn(a: &AppReport) -> String {
    if a.run_task_arns.is_empty() {
        return String::new();
    }
    serde_json::to_string(&a.run_task_arns).unwrap_or_default()
}

/// `changes`: the commits the deploy shipped (or, on a rollback, took back out) as a JSON
/// array, newest first; empty when they could not be read.
fn changes(a: &AppReport) -> String {
    a.changes
        .as_ref()
        .and_then(|n| serde_json::to_string(&n.commits).ok())
        .unwrap_or_default()
}

/// `metadata`: docker/build-push-action's build result keys this run knows, for an image it
/// built; empty otherwise.
fn metadata(a: &AppReport) -> String {
    if a.image_built != Some(true) {
        return String::new();
    }
    let mut m = serde_json::Map::new();
    for (k, v) in [
        ("containerimage.config.digest", &a.image_id),
        ("containerimage.digest", &a.image_digest),
        ("image.name", &a.image),
    ] {
        if let Some(v) = v {
            m.insert(k.to_string(), serde_json::Value::String(v.clone()));
        }
    }
    serde_json::to_string_pretty(&m).unwrap_or_default()
}

fn app_object(a: &AppReport) -> serde_json::Value {
    serde_json::json!({
        "app": a.app,
        "version": opt(&a.version),
        "image": opt(&a.image),
        "image-digest": opt(&a.image_digest),
        "image-built": a.image_built.map(|b| b.to_string()).unwrap_or_default(),
        "digest": opt(&a.image_digest),
        "imageid": opt(&a.image_id),
        "metadata": metadata(a),
        "registry": opt(&a.registry),
        "task-definition-arn": opt(&a.task_definition_arn),
        "previous-task-definition-arn": opt(&a.previous_task_definition_arn),
        "previous-image": opt(&a.previous_image),
        "task-definition": opt(&a.task_definition_file),
        "deployment-id": opt(&a.deployment_id),
        "codedeploy-deployment-id": codedeploy_deployment_id(a),
        "run-task-arn": run_task_arn(a),
        "changes": changes(a),
        "deployment-kind": kind(a),
        "status": a.status().as_str(),
        "verification": a.verdict().as_str(),
        "duration-seconds": a.duration.as_secs().to_string(),
        "error": opt(&a.error),
    })
}

/// The outputs of a report, in a stable order. With several apps the single-app outputs hold
/// the values shared by all apps (or are empty) and `results` holds one object per app.
pub fn outputs(report: &Report, slack_message_ts: Option<&str>) -> Vec<(&'static str, String)> {
    let status = report.status();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    out.push(("skipped", report.skip_reason.is_some().to_string()));
    out.push(("skip-reason", opt(&report.skip_reason)));
    let joined = |f: &dyn Fn(&AppReport) -> String| -> String {
        let vals: Vec<String> = report.apps.iter().map(f).collect();
        match vals.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            many => {
                if many.iter().all(|v| v == &many[0]) {
                    many[0].clone()
                } else {
                    String::new()
                }
            }
        }
    };
    out.push((
        "app",
        report
            .apps
            .iter()
            .map(|a| a.app.clone())
            .collect::<Vec<_>>()
            .join(","),
    ));
    out.push(("version", joined(&|a| opt(&a.version))));
    out.push(("image", joined(&|a| opt(&a.image))));
    out.push(("image-digest", joined(&|a| opt(&a.image_digest))));
    out.push((
        "image-built",
        joined(&|a| a.image_built.map(|b| b.to_string()).unwrap_or_default()),
    ));
    out.push(("digest", joined(&|a| opt(&a.image_digest))));
    out.push(("imageid", joined(&|a| opt(&a.image_id))));
    out.push(("metadata", joined(&metadata)));
    out.push(("registry", joined(&|a| opt(&a.registry))));
    out.push((
        "task-definition-arn",
        joined(&|a| opt(&a.task_definition_arn)),
    ));
    out.push((
        "previous-task-definition-arn",
        joined(&|a| opt(&a.previous_task_definition_arn)),
    ));
    out.push(("previous-image", joined(&|a| opt(&a.previous_image))));
    out.push(("task-definition", joined(&|a| opt(&a.task_definition_file))));
    out.push((
        "codedeploy-deployment-id",
        joined(&codedeploy_deployment_id),
    ));
    out.push(("run-task-arn", joined(&run_task_arn)));
    out.push(("changes", joined(&changes)));
    out.push(("deployment-id", joined(&|a| opt(&a.deployment_id))));
    out.push(("deployment-kind", joined(&kind)));
    out.push(("status", status.as_str().to_string()));
    out.push(("verification", verification(report)));
    out.push(("duration-seconds", report.duration.as_secs().to_string()));
    out.push((
        "slack-message-ts",
        slack_message_ts.unwrap_or_default().to_string(),
    ));
    // slackapi/slack-github-action's outputs, under its names.
    let slack = report.slack.as_ref();
    out.push(("ok", slack.map(|s| s.ok.to_string()).unwrap_or_default()));
    out.push((
        "response",
        slack.map(|s| s.response.clone()).unwrap_or_default(),
    ));
    out.push((
        "time",
        slack.map(|s| s.time.to_string()).unwrap_or_default(),
    ));
    out.push((
        "channel_id",
        slack.and_then(|s| s.channel_id.clone()).unwrap_or_default(),
    ));
    out.push((
        "thread_ts",
        slack.and_then(|s| s.thread_ts.clone()).unwrap_or_default(),
    ));
    out.push(("ts", slack_message_ts.unwrap_or_default().to_string()));
    let results: Vec<serde_json::Value> = report.apps.iter().map(app_object).collect();
    out.push((
        "results",
        serde_json::to_string(&results).unwrap_or_else(|_| "[]".into()),
    ));
    out.push(("matrix", matrix(report)));
    out
}

/// `verification`: `failed` when any app's gate failed, else `passed` when any passed, else
/// `skipped` (no gate ran).
fn verification(report: &Report) -> String {
    use crate::outcome::Verdict;
    let verdicts: Vec<Verdict> = report.apps.iter().map(AppReport::verdict).collect();
    let v = if verdicts.contains(&Verdict::Failed) {
        Verdict::Failed
    } else if verdicts.contains(&Verdict::Passed) {
        Verdict::Passed
    } else {
        Verdict::Skipped
    };
    v.as_str().to_string()
}

/// The `matrix` output: `{"include":[{"app":…,"version":…,"cluster":…,"service":…}]}`, one
/// entry per app of the plan; `{"include":[]}` when nothing deploys (a job over an empty
/// matrix fails, so guard it with `if: needs.<job>.outputs.app != ''`).
pub(crate) fn matrix(report: &Report) -> String {
    serde_json::to_string(&serde_json::json!({ "include": report.matrix }))
        .unwrap_or_else(|_| r#"{"include":[]}"#.into())
}

/// Appends the outputs to the `GITHUB_OUTPUT` file; without one (a CLI run) it writes nothing:
/// the plan and the outcome are already on the console.
pub fn write(path: Option<&Path>, outputs: &[(&'static str, String)]) -> Result<()> {
    let mut text = String::new();
    let n = nonce();
    for (name, value) in outputs {
        text.push_str(&format_output(name, value, &delimiter_for(value, n)));
    }
    match path {
        None => Ok(()),
        Some(p) => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| Error::WriteFile {
                    what: "the outputs".into(),
                    path: p.to_path_buf(),
                    source,
                })?;
            f.write_all(text.as_bytes())
                .map_err(|source| Error::WriteFile {
                    what: "the outputs".into(),
                    path: p.to_path_buf(),
                    source,
                })
        }
    }
}

/// Parses a `GITHUB_OUTPUT` file back (heredoc and `name=value` forms): used by tests and by
/// anyone checking what a run wrote.
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_string(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    #[test]
    fn heredoc_survives_multiline_values_and_delimiter_lookalikes() {
        let tricky = "line1\nghadelimiter_00000000000000000000000000000001\nline3";
        let d = delimiter_for(tricky, 1);
        assert!(!tricky.contains(&d));
        let text = format_output("results", tricky, &d)
            + &format_output("status", "ok", &delimiter_for("ok", 1));
        assert_eq!(
            parse(&text),
            vec![
                ("results".to_string(), tricky.to_string()),
                ("status".to_string(), "ok".to_string())
            ]
        );
    }

    #[test]
    fn writes_to_the_output_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        std::fs::write(&p, "earlier=1\n").unwrap();
        write(
            Some(&p),
            &[("status", "succeeded".into()), ("results", "[\n]".into())],
        )
        .unwrap();
        let parsed = parse(&std::fs::read_to_string(&p).unwrap());
        assert_eq!(parsed[0], ("earlier".into(), "1".into()));
        assert_eq!(parsed[1], ("status".into(), "succeeded".into()));
        assert_eq!(parsed[2], ("results".into(), "[\n]".into()));
    }

    #[test]
    fn the_drop_in_outputs_follow_the_official_actions_formats() {
        let a = AppReport {
            app: "web1".into(),
            deployment_kind: Some(DeployPath::Rolling),
            deployment_id: Some("ecs-svc/1".into()),
            run_task_arns: vec!["arn:aws:ecs:us-east-1:1:task/prod/a".into()],
            image_built: Some(false),
            status: Some(Status::Succeeded),
            ..Default::default()
        };
        let o: std::collections::BTreeMap<_, _> = outputs(
            &Report {
                apps: vec![a.clone()],
                ..Default::default()
            },
            None,
        )
        .into_iter()
        .collect();
        assert_eq!(o["codedeploy-deployment-id"], "", "only for CodeDeploy");
        assert_eq!(
            o["run-task-arn"],
            r#"["arn:aws:ecs:us-east-1:1:task/prod/a"]"#
        );
        assert_eq!(o["metadata"], "", "nothing built");
        let cd = AppReport {
            deployment_kind: Some(DeployPath::CodeDeploy),
            deployment_id: Some("d-ABC".into()),
            run_task_arns: Vec::new(),
            ..a
        };
        assert_eq!(codedeploy_deployment_id(&cd), "d-ABC");
        assert_eq!(run_task_arn(&cd), "");
    }

    #[test]
    fn the_verification_output_is_the_worst_verdict_and_each_app_has_its_own() {
        use crate::outcome::{Verdict, Verification};
        let verdict = |v: Option<Verdict>| AppReport {
            app: "web".into(),
            verification: v.map(|verdict| Verification {
                verdict,
                ..Verification::default()
            }),
            ..Default::default()
        };
        let run = |apps: Vec<AppReport>| {
            let o: std::collections::BTreeMap<_, _> = outputs(
                &Report {
                    apps,
                    ..Default::default()
                },
                None,
            )
            .into_iter()
            .collect();
            o
        };
        assert_eq!(run(vec![])["verification"], "skipped");
        assert_eq!(run(vec![verdict(None)])["verification"], "skipped");
        let o = run(vec![verdict(Some(Verdict::Passed)), verdict(None)]);
        assert_eq!(o["verification"], "passed");
        let results: serde_json::Value = serde_json::from_str(&o["results"]).unwrap();
        assert_eq!(results[0]["verification"], "passed");
        assert_eq!(results[1]["verification"], "skipped");
        let o = run(vec![
            verdict(Some(Verdict::Passed)),
            verdict(Some(Verdict::Failed)),
        ]);
        assert_eq!(o["verification"], "failed");
    }

    #[test]
    fn several_apps_fill_results_and_blank_differing_values() {
        let r = Report {
            apps: vec![
                AppReport {
                    app: "web1".into(),
                    version: Some("1.0.0".into()),
                    status: Some(Status::Succeeded),
                    ..Default::default()
                },
                AppReport {
                    app: "web2".into(),
                    version: Some("2.0.0".into()),
                    status: Some(Status::RolledBack),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let o: std::collections::BTreeMap<_, _> = outputs(&r, None).into_iter().collect();
        assert_eq!(o["app"], "web1,web2");
        assert_eq!(o["version"], "");
        assert_eq!(o["status"], "rolled-back");
        let results: serde_json::Value = serde_json::from_str(&o["results"]).unwrap();
        assert_eq!(results[1]["status"], "rolled-back");
        assert_eq!(results[0]["version"], "1.0.0");
    }
}
