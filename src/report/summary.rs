//! The job summary (`GITHUB_STEP_SUMMARY`): a Markdown table of what was deployed, the
//! deployment steps, and on failure the error with its fix.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::report::{Report, Status};

fn emoji(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "✅",
        Status::Skipped => "⏭️",
        Status::RolledBack => "↩️",
        Status::Cancelled => "🛑",
        Status::Failed => "❌",
    }
}

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the summary Markdown for a report.
pub fn render(report: &Report) -> String {
    let status = report.status();
    let mut md = String::new();
    let title = if report.dry_run {
        "ECS deploy (dry run)"
    } else {
        "ECS deploy"
    };
    let _ = writeln!(md, "## {} {title}: {}\n", emoji(status), status.as_str());
    if let Some(t) = &report.trigger {
        let _ = writeln!(md, "Trigger: {}\n", cell(t));
    }
    if let Some(reason) = &report.skip_reason {
        let _ = writeln!(md, "Nothing deployed: {}\n", cell(reason));
    }
    if !report.apps.is_empty() {
        let _ = writeln!(
            md,
            "| App | Version | Image | Digest | Task definition | Deployment | Duration | Status |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for a in &report.apps {
            let revision = a
                .task_definition_arn
                .as_deref()
                .and_then(|arn| arn.rsplit('/').next())
                .unwrap_or("");
            let deployment = match (&a.deployment_kind, &a.deployment_id) {
                (Some(k), Some(id)) => format!("{k} `{id}`"),
                (Some(k), None) => k.clone(),
                _ => String::new(),
            };
            let digest = a
                .image_digest
                .as_deref()
                .map(|d| format!("`{}`", d.get(..19).unwrap_or(d)))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {}s | {} {} |",
                cell(&a.app),
                cell(a.version.as_deref().unwrap_or("")),
                a.image
                    .as_deref()
                    .map(|i| format!("`{}`", cell(i)))
                    .unwrap_or_default(),
                digest,
                cell(revision),
                cell(&deployment),
                a.duration.as_secs(),
                emoji(a.status()),
                a.status().as_str()
            );
        }
        md.push('\n');
    }
    for a in &report.apps {
        if !a.steps.is_empty() {
            let _ = writeln!(md, "<details><summary>{} steps</summary>\n", cell(&a.app));
            for s in &a.steps {
                let _ = writeln!(md, "- {}", cell(s));
            }
            let _ = writeln!(md, "\n</details>\n");
        }
        if let Some(r) = &a.rollback {
            let _ = writeln!(md, "**{} rollback:** {}\n", cell(&a.app), cell(r));
        }
        if !a.links.is_empty() {
            let links: Vec<String> = a
                .links
                .iter()
                .map(|l| format!("[{}]({})", l.label, l.url))
                .collect();
            let _ = writeln!(md, "{}: {}\n", cell(&a.app), links.join(" · "));
        }
    }
    let errors = report.errors();
    if !errors.is_empty() {
        let _ = writeln!(md, "### Error\n");
        for e in errors {
            let _ = writeln!(md, "```\n{e}\n```\n");
        }
    }
    md
}

/// Appends the summary to the `GITHUB_STEP_SUMMARY` file, when the runner gave one.
pub fn write(path: Option<&Path>, report: &Report) -> Result<()> {
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
