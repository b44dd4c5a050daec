//! The job summary (`GITHUB_STEP_SUMMARY`): a Markdown table of what was deployed, the
//! deployment steps, and on failure the error with its fix.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::outcome::DeployPath;
use crate::release_notes::{ReleaseNotes, commit_text};
use crate::report::facts::{
    deployment_text, format_duration, rollback_lines, short_digest, short_sha, status_emoji,
    task_definition_revision, verification_lines,
};
use crate::report::{AppReport, Report, Status};

/// Escapes text from outside (branch names, actors, errors) for the summary's Markdown: HTML
/// (`&`, `<`, `>`, which GitHub would read as tags), and for a table cell `|` and newlines.
fn cell(s: &str) -> String {
    code_cell(
        &s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
    )
}

/// Escapes text for a code span in a table cell: no HTML is read inside one (an entity would
/// show as written), so only `|` and newlines.
fn code_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Text inside a fenced block: a stray fence would end it early.
fn fenced(text: &str) -> String {
    format!("```\n{}\n```", text.replace("```", "'''"))
}

/// The run's context in one line: trigger, actor, ref, commit and run links.
fn context_line(report: &Report) -> Option<String> {
    let run = &report.run;
    let mut parts = Vec::new();
    if let Some(t) = &report.trigger {
        parts.push(cell(t));
    }
    if let Some(a) = &run.actor {
        parts.push(format!("by {}", cell(a)));
    }
    if let Some(r) = &run.git_ref {
        parts.push(format!("`{}`", code_cell(r).replace('`', "'")));
    }
    match (&run.sha, &run.commit_url) {
        (Some(sha), Some(url)) => parts.push(format!("commit [`{}`]({url})", short_sha(sha))),
        (Some(sha), None) => parts.push(format!("commit `{}`", short_sha(sha))),
        _ => {}
    }
    if let Some(url) = &run.run_url {
        parts.push(format!("[workflow run]({url})"));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// True when every app whose deployment kind is known deploys to a Kubernetes Deployment (and
/// one does): the summary then speaks of Kubernetes, not ECS.
fn kubernetes_only(report: &Report) -> bool {
    let mut kinds = report
        .apps
        .iter()
        .filter_map(|a| a.deployment_kind)
        .peekable();
    kinds.peek().is_some() && kinds.all(|k| k == DeployPath::Kubernetes)
}

/// An app's release notes as a `<details>` block: every commit read (newest first), how many
/// more, the compare page and where the base commit came from.
fn changes_block(md: &mut String, a: &AppReport, notes: &ReleaseNotes) {
    let heading = notes.heading(a.status == Some(Status::RolledBack));
    let _ = writeln!(
        md,
        "<details><summary>{}: {}</summary>\n",
        cell(&a.app),
        cell(&heading)
    );
    let (shown, more) = notes.shown(notes.commits.len());
    for c in shown {
        let sha = short_sha(&c.sha);
        match &c.url {
            Some(url) => {
                let _ = writeln!(md, "- [`{sha}`]({url}) {}", cell(&commit_text(c)));
            }
            None => {
                let _ = writeln!(md, "- `{sha}` {}", cell(&commit_text(c)));
            }
        }
    }
    let mut tail = Vec::new();
    if more > 0 {
        tail.push(format!("and {more} more"));
    }
    if let Some(url) = &notes.compare_url {
        tail.push(format!("[compare on GitHub]({url})"));
    }
    tail.push(format!("base: {}", cell(&notes.anchor.describe())));
    let _ = writeln!(md, "\n{}\n\n</details>\n", tail.join(" · "));
}

/// Renders the summary Markdown for a report.
pub fn render(report: &Report) -> String {
    let status = report.status();
    let mut md = String::new();
    let kubernetes = kubernetes_only(report);
    let noun = if kubernetes {
        "Kubernetes deploy"
    } else {
        "ECS deploy"
    };
    let title = if report.dry_run {
        format!("{noun} (dry run)")
    } else if report.plan_only {
        format!("{noun} (plan only)")
    } else {
        noun.to_string()
    };
    let _ = writeln!(
        md,
        "## {} {title}: {}\n",
        status_emoji(status),
        status.as_str()
    );
    if let Some(line) = context_line(report) {
        let _ = writeln!(md, "{line}\n");
    }
    if let Some(reason) = &report.skip_reason {
        let _ = writeln!(md, "Nothing deployed: {}\n", cell(reason));
    }
    if !report.apps.is_empty() {
        // A Kubernetes Deployment has no task definition: no such column.
        let task_definition = !kubernetes;
        let mut header = vec!["App", "Version", "Image", "Digest"];
        if task_definition {
            header.push("Task definition");
        }
        header.extend(["Deployment", "Duration", "Status"]);
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
        for a in &report.apps {
            let code = |v: Option<&str>| {
                v.map(|v| format!("`{}`", code_cell(v).replace('`', "'")))
                    .unwrap_or_default()
            };
            let mut row = vec![
                cell(&a.app),
                cell(a.version.as_deref().unwrap_or_default()),
                code(a.image.as_deref()),
                code(a.image_digest.as_deref().map(short_digest)),
            ];
            if task_definition {
                row.push(cell(
                    a.task_definition_arn
                        .as_deref()
                        .map(task_definition_revision)
                        .unwrap_or(""),
                ));
            }
            row.extend([
                code(deployment_text(a).as_deref()),
                format_duration(a.duration),
                format!("{} {}", status_emoji(a.status()), a.status().as_str()),
            ]);
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md.push('\n');
    }
    for a in &report.apps {
        if let Some(preview) = &a.preview {
            // Open by default: on a dry run the plan is what the reader came for.
            let _ = writeln!(
                md,
                "<details open><summary>{}: what the deploy would do</summary>\n\n```diff\n{}\n```\n\n</details>\n",
                cell(&a.app),
                preview.trim_end().replace("```", "'''")
            );
        }
        if !a.steps.is_empty() {
            let _ = writeln!(md, "<details><summary>{} steps</summary>\n", cell(&a.app));
            for s in &a.steps {
                let _ = writeln!(md, "- {}", cell(s));
            }
            let _ = writeln!(md, "\n</details>\n");
        }
        if let Some(notes) = &a.changes {
            changes_block(&mut md, a, notes);
        }
        if let Some(log) = a.log_tail.as_ref().filter(|l| !l.lines.is_empty()) {
            let _ = writeln!(
                md,
                "<details><summary>{}: last {} log lines of the stopped task ({})</summary>\n\n{}\n\n</details>\n",
                cell(&a.app),
                log.lines.len(),
                cell(&log.stream),
                fenced(&log.lines.join("\n"))
            );
        }
        if !a.links.is_empty() {
            let links: Vec<String> = a
                .links
                .iter()
                .map(|l| format!("[{}]({})", cell(&l.label), l.url))
                .collect();
            let _ = writeln!(md, "{}: {}\n", cell(&a.app), links.join(" · "));
        }
    }
    let errors = report.errors();
    if !errors.is_empty() {
        let _ = writeln!(md, "### Error\n");
        for e in errors {
            let _ = writeln!(md, "{}\n", fenced(&e));
        }
    }
    let verifications = verification_lines(report);
    if !verifications.is_empty() {
        let _ = writeln!(md, "### Verification\n");
        for (headline, details) in verifications {
            let _ = writeln!(md, "- {}", cell(&headline));
            for d in details {
                let _ = writeln!(md, "  - {}", cell(&d));
            }
        }
        md.push('\n');
    }
    let rollbacks = rollback_lines(report);
    if !rollbacks.is_empty() {
        let _ = writeln!(md, "### Rollback\n");
        for r in rollbacks {
            let _ = writeln!(md, "- {}", cell(&r));
        }
        md.push('\n');
    }
    md
}

/// Appends the summary to the `GITHUB_STEP_SUMMARY` file, when the runner gave one.
pub(crate) fn write(path: Option<&Path>, report: &Report) -> Result<()> {
    let Some(p) = path else { return Ok(()) };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|source| Error::WriteFile {
            what: "the job summary".into(),
            path: p.to_path_buf(),
            source,
        })?;
    f.write_all(render(report).as_bytes())
        .map_err(|source| Error::WriteFile {
            what: "the job summary".into(),
            path: p.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{AppReport, RunInfo, Status};

    #[test]
    fn a_kubernetes_run_is_a_kubernetes_deploy_without_a_task_definition_column() {
        let app = |kind| AppReport {
            app: "web1".into(),
            version: Some("1.2.3".into()),
            deployment_kind: Some(kind),
            deployment_id: Some("2".into()),
            status: Some(Status::RolledBack),
            ..Default::default()
        };
        let report = Report {
            apps: vec![app(DeployPath::Kubernetes)],
            ..Default::default()
        };
        let md = render(&report);
        assert!(md.contains(" Kubernetes deploy: "), "{md}");
        assert!(
            !md.contains("ECS") && !md.contains("Task definition"),
            "{md}"
        );
        assert!(
            md.contains(
                "| App | Version | Image | Digest | Deployment | Duration | Status |\n|---|---|---|---|---|---|---|\n| web1 | 1.2.3 |  |  | `kubernetes 2` |"
            ),
            "{md}"
        );
        // With an ECS app beside it, the table keeps the ECS columns.
        let report = Report {
            apps: vec![app(DeployPath::Kubernetes), app(DeployPath::Rolling)],
            ..Default::default()
        };
        let md = render(&report);
        assert!(md.contains(" ECS deploy: "), "{md}");
        assert!(
            md.contains("| App | Version | Image | Digest | Task definition | Deployment | Duration | Status |\n|---|---|---|---|---|---|---|---|\n"),
            "{md}"
        );
    }

    #[test]
    fn the_verification_section_lists_the_probes_answers_and_the_alarms() {
        let md = render(&crate::report::failed_verification());
        assert!(
            md.contains("### Verification\n\n- verification failed: 1 of 3 probes of https://web1.example.com/health failed (0 allowed); alarms failing: web1-5xx\n  - probes: HTTP 200 ×2\n  - probes: HTTP 503 ×1\n  - alarm web1-5xx: ALARM (Threshold Crossed)\n"),
            "{md}"
        );
        let mut skipped = crate::report::failed_verification();
        skipped.apps[0].verification = Some(crate::outcome::Verification::skipped());
        assert!(!render(&skipped).contains("### Verification"));
    }

    #[test]
    fn a_failed_app_shows_its_stopped_tasks_log_lines_in_a_details_block() {
        let report =
            crate::report::rolled_back_with_log(vec!["boot".into(), "panic: ``` no db".into()]);
        let md = render(&report);
        assert!(
            md.contains("<details><summary>web1: last 2 log lines of the stopped task (ecs/web1/abc)</summary>\n\n```\nboot\npanic: \'\'\' no db\n```\n\n</details>"),
            "{md}"
        );
    }

    #[test]
    fn text_from_outside_is_html_escaped_and_code_spans_stay_literal() {
        let report = Report {
            run: RunInfo {
                actor: Some("<img src=x onerror=alert(1)>".into()),
                git_ref: Some("refs/heads/<b>x</b>|y".into()),
                ..Default::default()
            },
            trigger: Some("PR #1 merged: release/<details> → main & more".into()),
            apps: vec![AppReport {
                app: "web1".into(),
                version: Some("1.0.0<script>".into()),
                image: Some("reg/<x>:1".into()),
                status: Some(Status::Failed),
                steps: vec!["step </details><h1>big</h1>".into()],
                rollback: Some("rolled <back>".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let md = render(&report);
        assert!(md.contains("by &lt;img src=x onerror=alert(1)&gt;"), "{md}");
        assert!(
            md.contains("release/&lt;details&gt; → main &amp; more"),
            "{md}"
        );
        assert!(md.contains("| 1.0.0&lt;script&gt; |"), "{md}");
        assert!(
            md.contains("- step &lt;/details&gt;&lt;h1&gt;big&lt;/h1&gt;"),
            "{md}"
        );
        assert!(md.contains("- rolled &lt;back&gt;"), "{md}");
        // Inside code spans nothing is read as HTML: the text stays as it is, pipes escaped.
        assert!(md.contains("`refs/heads/<b>x</b>\\|y`"), "{md}");
        assert!(md.contains("`reg/<x>:1`"), "{md}");
        for tag in ["<img", "<script", "<h1>", "<b>x", "</details><h1>"] {
            let outside_code = md
                .lines()
                .filter(|l| !l.contains('`'))
                .any(|l| l.contains(tag));
            assert!(!outside_code, "{tag} left as HTML:\n{md}");
        }
    }
}
