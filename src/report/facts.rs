//! The facts every message shows (headline, per-app and per-run fields, template variables),
//! computed once as plain values; Slack, Discord, GitHub and the summary only lay them out.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::report::{AppReport, Report, RunInfo, Status};

/// A status as an emoji, the same in every message.
pub(crate) fn status_emoji(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "✅",
        Status::Skipped => "⏭️",
        Status::RolledBack => "↩️",
        Status::Cancelled => "🛑",
        Status::Failed => "❌",
    }
}

/// A status as an RGB colour (Slack attachment bar, Discord embed).
pub(crate) fn status_colour(status: Status) -> u32 {
    match status {
        Status::Succeeded => 0x2EB886,
        Status::Failed => 0xE01E5A,
        Status::RolledBack => 0xDAA038,
        Status::Cancelled | Status::Skipped => 0x868686,
    }
}

/// The colour of a deploy in progress (the Slack start message).
pub const IN_PROGRESS_COLOUR: u32 = 0x439FE0;

/// What happened, as words after the app: "web1 v1.2.3 deployed".
pub(crate) fn status_words(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "deployed",
        Status::Failed => "deploy failed",
        Status::RolledBack => "deploy failed and was rolled back",
        Status::Cancelled => "deploy cancelled",
        Status::Skipped => "deploy skipped",
    }
}

/// A version as people read it in chat: `1.2.3` → `v1.2.3`; `v2024.05` and `main-5` as given.
pub(crate) fn display_version(version: &str) -> String {
    if version.starts_with(|c: char| c.is_ascii_digit()) {
        format!("v{version}")
    } else {
        version.to_string()
    }
}

/// `web1 v1.2.3, web2 v2.0.0`, or the repository (then "deploy") when no app got that far.
pub(crate) fn apps_line(report: &Report, run: &RunInfo) -> String {
    if report.apps.is_empty() {
        return run.repository.clone().unwrap_or_else(|| "deploy".into());
    }
    report
        .apps
        .iter()
        .map(|a| match &a.version {
            Some(v) => format!("{} {}", a.app, display_version(v)),
            None => a.app.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one line that says it all: `✅ web1 v1.2.3 deployed`.
pub fn headline(report: &Report) -> String {
    let status = report.status();
    format!(
        "{} {} {}",
        status_emoji(status),
        apps_line(report, &report.run),
        status_words(status)
    )
}

/// `45s`, `3m 05s`, `1h 02m`: durations for people.
pub(crate) fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The first 7 characters of a commit sha.
pub(crate) fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// `sha256:0123456789ab`: a digest short enough for a chat field.
pub(crate) fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// `web1:42` from a task definition ARN.
pub(crate) fn task_definition_revision(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `rolling ecs-svc/123`, `codedeploy d-ABC`, or the kind alone.
pub(crate) fn deployment_text(app: &AppReport) -> Option<String> {
    match (&app.deployment_kind, &app.deployment_id) {
        (Some(k), Some(id)) => Some(format!("{k} {id}")),
        (Some(k), None) => Some(k.to_string()),
        (None, Some(id)) => Some(id.clone()),
        (None, None) => None,
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One labelled fact of a message; each renderer lays it out in its own markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub label: &'static str,
    pub text: String,
    /// Shown as code (image references, digests, ids).
    pub code: bool,
    /// The text links here.
    pub url: Option<String>,
}

impl Fact {
    fn plain(label: &'static str, text: impl Into<String>) -> Fact {
        Fact {
            label,
            text: text.into(),
            code: false,
            url: None,
        }
    }

    fn code(label: &'static str, text: impl Into<String>) -> Fact {
        Fact {
            code: true,
            ..Fact::plain(label, text)
        }
    }
}

/// The facts of one app: name, version, image, digest, task definition, deployment, status.
pub(crate) fn app_facts(app: &AppReport) -> Vec<Fact> {
    let mut out = vec![Fact::plain("App", &app.app)];
    if let Some(v) = &app.version {
        out.push(Fact::plain("Version", display_version(v)));
    }
    if let Some(i) = &app.image {
        let built = match app.image_built {
            Some(true) => " (built)",
            _ => "",
        };
        out.push(Fact::code("Image", format!("{i}{built}")));
    }
    if let Some(d) = &app.image_digest {
        out.push(Fact::code("Digest", short_digest(d)));
    }
    if let Some(arn) = &app.task_definition_arn {
        out.push(Fact::code("Task definition", task_definition_revision(arn)));
    }
    if let Some(d) = deployment_text(app) {
        out.push(Fact::code("Deployment", d));
    }
    let status = app.status();
    out.push(Fact::plain(
        "Status",
        format!("{} {}", status_emoji(status), status.as_str()),
    ));
    out
}

/// The facts of the run: trigger, actor, ref, commit, run, duration.
pub(crate) fn run_facts(report: &Report) -> Vec<Fact> {
    let run = &report.run;
    let mut out = Vec::new();
    if let Some(t) = &report.trigger {
        out.push(Fact::plain("Trigger", t));
    }
    if let Some(a) = &run.actor {
        out.push(Fact::plain("Actor", a));
    }
    if let Some(r) = &run.git_ref {
        out.push(Fact::code("Ref", r));
    }
    if let Some(sha) = &run.sha {
        out.push(Fact {
            url: run.commit_url.clone(),
            ..Fact::code("Commit", short_sha(sha))
        });
    }
    if let Some(url) = &run.run_url {
        out.push(Fact {
            url: Some(url.clone()),
            ..Fact::plain("Run", run.workflow.as_deref().unwrap_or("workflow run"))
        });
    }
    out.push(Fact::plain("Duration", format_duration(report.duration)));
    out
}

/// What each app's rollback did, app-prefixed when several apps ran.
pub(crate) fn rollback_lines(report: &Report) -> Vec<String> {
    report
        .apps
        .iter()
        .filter_map(|a| {
            a.rollback.as_ref().map(|r| {
                if report.apps.len() > 1 {
                    format!("{}: {r}", a.app)
                } else {
                    r.clone()
                }
            })
        })
        .collect()
}

/// Each app's verification that ran as one text: its headline, then a `• ` line per detail (the
/// Slack section and the Discord field show the same).
pub(crate) fn verification_texts(report: &Report) -> Vec<String> {
    verification_lines(report)
        .into_iter()
        .map(|(headline, details)| {
            std::iter::once(headline)
                .chain(details.into_iter().map(|d| format!("• {d}")))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Each app's verification that ran (skipped ones left out): its headline, app-prefixed when
/// several apps ran, and its details (the probes' answers counted, each alarm's state).
pub(crate) fn verification_lines(report: &Report) -> Vec<(String, Vec<String>)> {
    report
        .apps
        .iter()
        .filter_map(|a| {
            let v = a
                .verification
                .as_ref()
                .filter(|v| v.verdict != crate::outcome::Verdict::Skipped)?;
            let headline = if report.apps.len() > 1 {
                format!("{}: {}", a.app, v.headline())
            } else {
                v.headline()
            };
            Some((headline, v.details()))
        })
        .collect()
}

/// The values `slack-payload` placeholders are filled with (`{app}`, `{version}`, …). With
/// several apps, per-app values are joined with `, `.
pub fn variables(report: &Report, environment: &str) -> BTreeMap<&'static str, String> {
    let run = &report.run;
    let status = report.status();
    let join = |f: &dyn Fn(&AppReport) -> Option<String>| {
        report
            .apps
            .iter()
            .filter_map(f)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut v = BTreeMap::new();
    v.insert("app", join(&|a| Some(a.app.clone())));
    v.insert("version", join(&|a| a.version.clone()));
    v.insert("image", join(&|a| a.image.clone()));
    v.insert("image_digest", join(&|a| a.image_digest.clone()));
    v.insert(
        "task_definition",
        join(&|a| {
            a.task_definition_arn
                .as_deref()
                .map(|arn| task_definition_revision(arn).to_string())
        }),
    );
    v.insert(
        "task_definition_arn",
        join(&|a| a.task_definition_arn.clone()),
    );
    v.insert(
        "deployment_kind",
        join(&|a| a.deployment_kind.map(|k| k.to_string())),
    );
    v.insert("deployment_id", join(&|a| a.deployment_id.clone()));
    v.insert("status", status.as_str().to_string());
    v.insert("status_emoji", status_emoji(status).to_string());
    v.insert("headline", headline(report));
    v.insert("trigger", opt(&report.trigger));
    v.insert("actor", opt(&run.actor));
    v.insert("ref", opt(&run.git_ref));
    v.insert("sha", opt(&run.sha));
    v.insert(
        "short_sha",
        run.sha.as_deref().map(short_sha).unwrap_or("").to_string(),
    );
    v.insert("commit_url", opt(&run.commit_url));
    v.insert("run_url", opt(&run.run_url));
    v.insert("repository", opt(&run.repository));
    v.insert("workflow", opt(&run.workflow));
    v.insert("event_name", opt(&run.event_name));
    v.insert("duration", format_duration(report.duration));
    v.insert("duration_seconds", report.duration.as_secs().to_string());
    v.insert("error", report.errors().join("\n"));
    v.insert("rollback", rollback_lines(report).join("\n"));
    v.insert("environment", environment.to_string());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h 02m");
    }

    #[test]
    fn numeric_versions_get_a_v_and_others_stay_as_given() {
        assert_eq!(display_version("1.2.3"), "v1.2.3");
        assert_eq!(display_version("v2024.05.01"), "v2024.05.01");
    }

    #[test]
    fn the_headline_names_apps_and_outcome() {
        let report = Report {
            apps: vec![AppReport {
                app: "web1".into(),
                version: Some("1.2.3".into()),
                status: Some(Status::RolledBack),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            headline(&report),
            "↩️ web1 v1.2.3 deploy failed and was rolled back"
        );
        let early = Report {
            run: RunInfo {
                repository: Some("acme/shop".into()),
                ..Default::default()
            },
            error: Some("bad".into()),
            ..Default::default()
        };
        assert_eq!(headline(&early), "❌ acme/shop deploy failed");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
