//! The report: one value describing what happened, which every reporter (outputs, job summary,
//! Slack, Discord, GitHub Deployments) renders. Reporters never reach back into the pipeline.

pub mod discord;
pub mod facts;
pub mod github;
pub mod known;
pub mod notify;
pub mod outputs;
pub mod slack;
pub mod summary;

use std::time::Duration;

use serde::Serialize;

pub use crate::outcome::{Link, Status};
use crate::runner::redact::Redactor;

/// Facts about the workflow run, for links and messages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunInfo {
    pub repository: Option<String>,
    pub sha: Option<String>,
    pub git_ref: Option<String>,
    pub actor: Option<String>,
    pub workflow: Option<String>,
    pub event_name: Option<String>,
    pub run_url: Option<String>,
    pub commit_url: Option<String>,
}

/// What happened to one app.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppReport {
    pub app: String,
    pub version: Option<String>,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub image_built: Option<bool>,
    /// The registry host of the image (`registry` output, as amazon-ecr-login names it).
    pub registry: Option<String>,
    /// The built image's id (`imageid` output, as docker/build-push-action names it).
    pub image_id: Option<String>,
    pub task_definition_arn: Option<String>,
    /// Where the rendered task definition was written (`task-definition` output, as
    /// amazon-ecs-render-task-definition names it).
    pub task_definition_file: Option<String>,
    /// The task definition as rendered for the deploy (raw JSON), to write to that file.
    #[serde(skip)]
    pub rendered_task_definition: Option<serde_json::Value>,
    /// The ARNs of the one-off tasks started (`run-task-arn` output, a JSON array).
    pub run_task_arns: Vec<String>,
    pub previous_task_definition_arn: Option<String>,
    /// The image the Kubernetes Deployment's container ran before the deploy.
    pub previous_image: Option<String>,
    pub deployment_id: Option<String>,
    pub deployment_kind: Option<crate::outcome::DeployPath>,
    pub status: Option<Status>,
    /// The error that failed this app, with its fix.
    pub error: Option<String>,
    /// The file (and line) that error is about, for the annotation.
    #[serde(skip)]
    pub error_location: Option<crate::location::FileLocation>,
    /// What the rollback did (or why it failed).
    pub rollback: Option<String>,
    /// Deployment steps as they happened (lifecycle events, traffic shifts), for the summary.
    pub steps: Vec<String>,
    pub links: Vec<Link>,
    /// A dry run's preview: the deployment path and the task-definition diff, or why it could
    /// not be read.
    #[serde(skip)]
    pub preview: Option<String>,
    #[serde(skip)]
    pub duration: Duration,
    /// The commits the deploy shipped (or, rolled back, took back out), when they could be read.
    #[serde(skip)]
    pub changes: Option<crate::release_notes::ReleaseNotes>,
    /// The last log lines of the stopped task a failed deploy was diagnosed from.
    #[serde(skip)]
    pub log_tail: Option<crate::outcome::LogTail>,
    /// What the verification gate found, when it ran (the `verification` output says
    /// `skipped` without it).
    #[serde(skip)]
    pub verification: Option<crate::outcome::Verification>,
}

impl AppReport {
    /// Takes a deploy's outcome into the report: its path, ids, steps, links, rollback facts and
    /// status. The report is built from the outcome, never read back to decide.
    pub fn apply(&mut self, o: &crate::outcome::Outcome) {
        self.deployment_kind = o.kind;
        self.task_definition_arn.clone_from(&o.task_definition_arn);
        self.previous_task_definition_arn
            .clone_from(&o.previous_task_definition_arn);
        self.deployment_id.clone_from(&o.deployment_id);
        if o.previous_image.is_some() {
            self.previous_image.clone_from(&o.previous_image);
        }
        self.rendered_task_definition
            .clone_from(&o.rendered_task_definition);
        self.run_task_arns.extend(o.run_task_arns.iter().cloned());
        if o.status.is_some() {
            self.status = o.status;
        }
        self.rollback.clone_from(&o.rollback);
        if let Some(log) = o.diagnosis.as_ref().and_then(|d| d.log.as_ref()) {
            self.log_tail = Some(log.clone());
        }
        self.steps.extend(o.steps.iter().cloned());
        if o.verification.is_some() {
            self.verification.clone_from(&o.verification);
        }
        for l in &o.links {
            if !self.links.contains(l) {
                self.links.push(l.clone());
            }
        }
    }

    /// The app's status, `failed` when unset (an app that ended without saying is not a success).
    pub(crate) fn status(&self) -> Status {
        self.status.unwrap_or(Status::Failed)
    }

    /// The gate's verdict: `skipped` when it did not run.
    pub(crate) fn verdict(&self) -> crate::outcome::Verdict {
        self.verification
            .as_ref()
            .map_or(crate::outcome::Verdict::Skipped, |v| v.verdict)
    }
}

/// One entry of the `matrix` output: an app the run deploys (or would, with plan-only), for a
/// later job's `strategy.matrix` (`app: ${{ matrix.app }}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixEntry {
    pub app: String,
    pub version: String,
    pub cluster: String,
    /// Empty for a build-only app.
    pub service: String,
}

/// The whole run's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub run: RunInfo,
    /// The trigger, described for people ("PR #2 merged: release/web1 → main").
    pub trigger: Option<String>,
    /// Set when the event did not call for a deploy.
    pub skip_reason: Option<String>,
    pub dry_run: bool,
    /// `plan-only`: the run stopped after the plan; nothing was read from AWS or sent.
    pub plan_only: bool,
    /// The apps of the plan (after changed-only), for the `matrix` output.
    pub matrix: Vec<MatrixEntry>,
    pub apps: Vec<AppReport>,
    /// A failure before any app started (bad input, bad event): the error with its fix.
    pub error: Option<String>,
    /// The file (and line) that error is about, for the annotation.
    #[serde(skip)]
    pub error_location: Option<crate::location::FileLocation>,
    #[serde(skip)]
    pub duration: Duration,
    /// The outcome message sent to Slack, for slack-github-action's outputs (`None`: no
    /// Slack message was sent or tried).
    #[serde(skip)]
    pub slack: Option<SlackSent>,
}

/// What sending the outcome to Slack gave: slack-github-action's `ok`, `response`, `time`,
/// `channel_id` and `thread_ts` outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackSent {
    /// Every Slack message of the outcome was accepted.
    pub ok: bool,
    /// Slack's answer as JSON: `{"ok":true}`, or `{"ok":false,"error":"…"}`.
    pub response: String,
    /// The Unix time the outcome was sent.
    pub time: u64,
    /// The bot token's channel.
    pub channel_id: Option<String>,
    /// The `ts` a failure's thread replied to.
    pub thread_ts: Option<String>,
}

impl Report {
    /// The run's status: skipped, an early error, or the worst app status.
    pub(crate) fn status(&self) -> Status {
        if self.error.is_some() {
            return Status::Failed;
        }
        if self.skip_reason.is_some() {
            return Status::Skipped;
        }
        if self.apps.is_empty() {
            return Status::Failed;
        }
        Status::worst(self.apps.iter().map(AppReport::status))
    }

    /// The file the run's error annotation points at: the early error's, else the first failed
    /// app's that has one.
    pub(crate) fn error_location(&self) -> Option<&crate::location::FileLocation> {
        self.error_location.as_ref().or_else(|| {
            self.apps
                .iter()
                .filter(|a| a.error.is_some())
                .find_map(|a| a.error_location.as_ref())
        })
    }

    /// The error lines to show, app-prefixed when several apps ran.
    pub(crate) fn errors(&self) -> Vec<String> {
        let mut out: Vec<String> = self.error.iter().cloned().collect();
        for a in &self.apps {
            if let Some(e) = &a.error {
                out.push(if self.apps.len() > 1 {
                    format!("{}: {e}", a.app)
                } else {
                    e.clone()
                });
            }
        }
        out
    }
}

/// A rolled-back app `web1` whose stopped task (stream `ecs/web1/abc`) wrote `lines`: the
/// reporters' tests of the log lines.
#[cfg(test)]
pub(crate) fn rolled_back_with_log(lines: Vec<String>) -> Report {
    Report {
        apps: vec![AppReport {
            app: "web1".into(),
            status: Some(Status::RolledBack),
            log_tail: Some(crate::outcome::LogTail {
                stream: "ecs/web1/abc".into(),
                lines,
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A rolled-back app `web1` whose verification failed: 1 of 3 probes of its URL answered 503,
/// alarm `web1-5xx` in ALARM. The reporters' tests of the verification lines.
#[cfg(test)]
pub(crate) fn failed_verification() -> Report {
    use crate::outcome::{AlarmReading, Probe, ProbeAnswer, Verdict, Verification};
    let probe = |answer| Probe {
        answer,
        elapsed: Duration::from_millis(12),
    };
    Report {
        apps: vec![AppReport {
            app: "web1".into(),
            status: Some(Status::RolledBack),
            verification: Some(Verification {
                verdict: Verdict::Failed,
                url: Some("https://web1.example.com/health".into()),
                probes: vec![
                    probe(ProbeAnswer::Status(200)),
                    probe(ProbeAnswer::Status(503)),
                    probe(ProbeAnswer::Status(200)),
                ],
                max_failures: 0,
                alarms: vec![AlarmReading {
                    name: "web1-5xx".into(),
                    state: Some(aws_sdk_cloudwatch::types::StateValue::Alarm),
                    reason: Some("Threshold Crossed".into()),
                }],
                problem: None,
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Redacts every text of a report in place, once, before any reporter renders it: each
/// reporter then lays out clean values (and JSON or Markdown built from them stays valid).
pub(crate) fn redact(redactor: &Redactor, report: &mut Report) {
    if redactor.is_empty() {
        return;
    }
    let run = &mut report.run;
    for v in [
        &mut run.repository,
        &mut run.sha,
        &mut run.git_ref,
        &mut run.actor,
        &mut run.workflow,
        &mut run.event_name,
        &mut run.run_url,
        &mut run.commit_url,
    ] {
        redactor.opt(v);
    }
    redactor.opt(&mut report.trigger);
    redactor.opt(&mut report.skip_reason);
    redactor.opt(&mut report.error);
    for a in &mut report.apps {
        redactor.field(&mut a.app);
        for v in [
            &mut a.version,
            &mut a.image,
            &mut a.image_digest,
            &mut a.task_definition_arn,
            &mut a.previous_task_definition_arn,
            &mut a.deployment_id,
            &mut a.error,
            &mut a.rollback,
            &mut a.preview,
        ] {
            redactor.opt(v);
        }
        for s in &mut a.steps {
            redactor.field(s);
        }
        for l in &mut a.links {
            redactor.field(&mut l.label);
            redactor.field(&mut l.url);
        }
        if let Some(notes) = &mut a.changes {
            for c in &mut notes.commits {
                redactor.field(&mut c.subject);
                redactor.field(&mut c.author);
            }
        }
        if let Some(v) = &mut a.verification {
            redactor.opt(&mut v.url);
            redactor.opt(&mut v.problem);
        }
        if let Some(log) = &mut a.log_tail {
            for l in &mut log.lines {
                redactor.field(l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_wins() {
        assert_eq!(
            Status::worst([Status::Succeeded, Status::RolledBack]),
            Status::RolledBack
        );
        assert_eq!(
            Status::worst([Status::Failed, Status::RolledBack]),
            Status::Failed
        );
        assert_eq!(Status::worst([]), Status::Skipped);
    }

    #[test]
    fn run_status_follows_skip_error_and_apps() {
        let mut r = Report {
            skip_reason: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(r.status(), Status::Skipped);
        r.skip_reason = None;
        r.apps.push(AppReport {
            status: Some(Status::Succeeded),
            ..Default::default()
        });
        assert_eq!(r.status(), Status::Succeeded);
        r.error = Some("boom".into());
        assert_eq!(r.status(), Status::Failed);
    }

    /// docker/build-push-action's `secrets: npm_token=…` copied into a step of this action:
    /// the value is masked as a secret input is, so whatever carries it (the plan's
    /// task-definition diff, a log line, the job summary, an output, a chat message) shows `***`.
    #[test]
    fn a_secret_looking_secrets_value_appears_in_no_diff_log_summary_output_or_message() {
        let token = "npm_AbC123sEcReTtOkEn456";
        let raw = crate::inputs::RawInputs {
            values: [
                ("secrets".to_string(), format!("npm_token={token}")),
                (
                    "build-secrets".to_string(),
                    "gh=ghp_0123456789abcdefABCDEF".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
        };
        let masked = raw.secrets();
        assert!(masked.contains(&token.to_string()), "{masked:?}");
        // An ARN is a reference, not a secret: nothing to hide.
        let arn = crate::inputs::RawInputs {
            values: [(
                "secrets".to_string(),
                "DB=arn:aws:secretsmanager:us-east-1:123456789012:secret:db".to_string(),
            )]
            .into_iter()
            .collect(),
        };
        assert!(arn.secrets().is_empty());
        let diff = format!(
            "+        \"secrets\": [{{\"name\": \"npm_token\", \"valueFrom\": \"{token}\"}}]"
        );
        let mut report = Report {
            error: Some(format!("the build printed {token}")),
            apps: vec![AppReport {
                app: "web1".into(),
                preview: Some(diff),
                steps: vec![format!("registered with {token}")],
                error: Some(format!("log: NPM_TOKEN={token}")),
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = Redactor::new(masked);
        redact(&r, &mut report);
        let summary = crate::report::summary::render(&report);
        let outputs = crate::report::outputs::outputs(&report, None);
        let message = crate::report::slack::outcome_message(&report).to_string();
        for (what, text) in [
            ("report", format!("{report:?}")),
            ("summary", summary),
            ("outputs", format!("{outputs:?}")),
            ("Slack message", message),
            ("log line", r.text(&format!("::group::npm_token={token}"))),
        ] {
            assert!(!text.contains(token), "{what} shows the value: {text}");
        }
        assert!(
            report.apps[0]
                .preview
                .as_deref()
                .unwrap_or("")
                .contains("***")
        );
    }

    #[test]
    fn every_text_of_a_report_is_redacted() {
        let s = "tok-0451";
        let with = |label: &str| format!("{label} {s} end");
        let mut report = Report {
            run: RunInfo {
                git_ref: Some(with("ref")),
                actor: Some(with("actor")),
                ..Default::default()
            },
            trigger: Some(with("trigger")),
            skip_reason: Some(with("skip")),
            error: Some(with("error")),
            apps: vec![AppReport {
                app: with("app"),
                image: Some(with("image")),
                error: Some(with("the build's last lines:\n")),
                rollback: Some(with("rollback")),
                steps: vec![with("step")],
                links: vec![Link {
                    label: with("label"),
                    url: with("url"),
                }],
                preview: Some(with("preview")),
                log_tail: Some(crate::outcome::LogTail {
                    lines: vec![with("DATABASE_URL=postgres://u:")],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        redact(&Redactor::new([s.to_string()]), &mut report);
        let text = format!("{report:?}");
        assert!(!text.contains(s), "{text}");
        assert_eq!(
            report.apps[0].error.as_deref(),
            Some("the build's last lines:\n *** end")
        );
        assert_eq!(report.error.as_deref(), Some("error *** end"));
        assert_eq!(
            report.apps[0].log_tail.as_ref().map(|l| l.lines.clone()),
            Some(vec!["DATABASE_URL=postgres://u: *** end".to_string()])
        );
    }
}
