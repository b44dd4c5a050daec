//! Discord: one embed with the outcome (status colour, the same facts as Slack), sent to a
//! webhook at the end of the run.

use serde_json::{Value, json};

use crate::error::Error;
use crate::release_notes::commit_text;
use crate::report::facts::{
    Fact, app_facts, headline, rollback_lines, run_facts, short_sha, status_colour, truncate,
    verification_texts,
};
use crate::report::{AppReport, Report, Status};
use crate::runner::http::{Http, Post};

/// Discord's limits: title 256, description 4096, 25 fields, field value 1024, and 6000
/// characters for the whole embed; the description is kept well under its own limit so the
/// fields fit in the total.
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 2000;
const FIELDS_MAX: usize = 25;
const VALUE_MAX: usize = 1024;

/// Escapes Discord markdown in plain text (so `*`, `_` and backticks in names show as typed).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '_' | '`' | '~' | '|' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn field(f: &Fact) -> Value {
    let value = match (&f.url, f.code) {
        (Some(url), _) => format!("[{}]({url})", escape(&f.text)),
        (None, true) => format!("`{}`", f.text.replace('`', "'")),
        (None, false) => escape(&f.text),
    };
    json!({ "name": f.label, "value": truncate(&value, VALUE_MAX), "inline": true })
}

/// Commits listed in the embed; the rest are counted ("and N more") and one link away.
const CHANGES_MAX: usize = 10;

/// An app's release notes as a field: what changed (or what the rollback took back out), at
/// most [`CHANGES_MAX`] commits, "and N more", and the compare page.
fn changes_field(a: &AppReport) -> Option<Value> {
    let notes = a.changes.as_ref()?;
    let heading = notes.heading(a.status == Some(Status::RolledBack));
    let (shown, mut more) = notes.shown(CHANGES_MAX);
    let mut lines: Vec<String> = shown
        .iter()
        .map(|c| {
            let sha = short_sha(&c.sha);
            let sha = match &c.url {
                Some(url) => format!("[`{sha}`]({url})"),
                None => format!("`{sha}`"),
            };
            format!("• {sha} {}", escape(&commit_text(c)))
        })
        .collect();
    let compare = notes
        .compare_url
        .as_ref()
        .map(|url| format!("[compare on GitHub]({url})"));
    let tail = |more: usize| match (more, &compare) {
        (0, Some(link)) => Some(link.clone()),
        (0, None) => None,
        (n, Some(link)) => Some(format!("and {n} more · {link}")),
        (n, None) => Some(format!("and {n} more")),
    };
    // Whole lines only (a cut link would show as markup): the commits that do not fit in the
    // field are counted with the rest, and the compare link stays.
    let value = loop {
        let value = lines
            .iter()
            .cloned()
            .chain(tail(more))
            .collect::<Vec<_>>()
            .join("\n");
        if value.chars().count() <= VALUE_MAX || lines.is_empty() {
            break truncate(&value, VALUE_MAX);
        }
        lines.pop();
        more += 1;
    };
    let value = if value.is_empty() {
        "—".into()
    } else {
        value
    };
    Some(json!({
        "name": truncate(&format!("{}: {heading}", a.app), TITLE_MAX),
        "value": value,
        "inline": false,
    }))
}

/// A stopped task's last log lines as a code block within a field's limit: the last lines kept
/// (the end of a crash is where its cause is).
fn log_block(lines: &[String]) -> String {
    let text = lines.join("\n").replace("```", "'''");
    let room = VALUE_MAX - 8;
    let skip = text.chars().count().saturating_sub(room);
    format!("```\n{}\n```", text.chars().skip(skip).collect::<String>())
}

/// The webhook body: one embed titled with the headline, linking to the run.
pub fn outcome_message(report: &Report) -> Value {
    let status = report.status();
    let mut fields: Vec<Value> = Vec::new();
    for a in &report.apps {
        fields.extend(app_facts(a).iter().map(field));
        fields.extend(changes_field(a));
    }
    fields.extend(run_facts(report).iter().map(field));
    let verifications = verification_texts(report);
    if !verifications.is_empty() {
        fields.push(json!({
            "name": "Verification",
            "value": truncate(&escape(&verifications.join("\n")), VALUE_MAX),
            "inline": false,
        }));
    }
    let rollbacks = rollback_lines(report);
    if !rollbacks.is_empty() {
        fields.push(json!({
            "name": "Rollback",
            "value": truncate(&escape(&rollbacks.join("\n")), VALUE_MAX),
            "inline": false,
        }));
    }
    for a in &report.apps {
        if let Some(log) = a.log_tail.as_ref().filter(|l| !l.lines.is_empty()) {
            fields.push(json!({
                "name": truncate(&format!("{}: last log lines ({})", a.app, log.stream), TITLE_MAX),
                "value": log_block(&log.lines),
                "inline": false,
            }));
        }
    }
    let links: Vec<String> = report
        .apps
        .iter()
        .flat_map(|a| &a.links)
        .map(|l| format!("[{}]({})", escape(&l.label), l.url))
        .collect();
    if !links.is_empty() {
        fields.push(json!({
            "name": "Links",
            "value": truncate(&links.join(" · "), VALUE_MAX),
            "inline": false,
        }));
    }
    fields.truncate(FIELDS_MAX);
    let mut embed = json!({
        "title": truncate(&headline(report), TITLE_MAX),
        "color": status_colour(status),
        "fields": fields,
    });
    if let Some(url) = &report.run.run_url {
        embed["url"] = json!(url);
    }
    let errors = report.errors();
    if !errors.is_empty() {
        let text = truncate(&errors.join("\n"), DESCRIPTION_MAX - 8).replace("```", "'''");
        embed["description"] = json!(format!("```\n{text}\n```"));
    } else if let Some(reason) = &report.skip_reason {
        embed["description"] = json!(escape(reason));
    }
    if let Some(repo) = &report.run.repository {
        embed["footer"] = json!({ "text": repo });
    }
    // An error text quoting "@everyone" must not ping the server.
    json!({ "embeds": [embed], "allowed_mentions": { "parse": [] } })
}

/// Posts the message to the webhook (Discord answers 204 No Content).
pub(crate) async fn post(http: &Http, url: &str, message: &Value) -> Result<(), Error> {
    http.post(Post {
        target: "Discord webhook",
        url,
        bearer: None,
        headers: &[],
        body: message,
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{AppReport, Status};

    #[test]
    fn the_verification_is_a_field_with_its_headline_and_details() {
        let m = outcome_message(&crate::report::failed_verification());
        let fields = m["embeds"][0]["fields"].as_array().unwrap();
        let f = fields
            .iter()
            .find(|f| f["name"] == json!("Verification"))
            .unwrap_or_else(|| panic!("{m}"));
        assert_eq!(
            f["value"],
            json!(
                "verification failed: 1 of 3 probes of https://web1.example.com/health failed (0 allowed); alarms failing: web1-5xx\n• probes: HTTP 200 ×2\n• probes: HTTP 503 ×1\n• alarm web1-5xx: ALARM (Threshold Crossed)"
            )
        );
    }

    #[test]
    fn the_embed_is_coloured_by_status_and_says_the_error() {
        let report = Report {
            apps: vec![AppReport {
                app: "web_1".into(),
                status: Some(Status::Failed),
                error: Some("boom".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let m = outcome_message(&report);
        assert_eq!(m["embeds"][0]["color"], json!(0xE01E5A));
        assert_eq!(m["embeds"][0]["description"], json!("```\nboom\n```"));
        assert_eq!(m["embeds"][0]["fields"][0]["value"], json!("web\\_1"));
    }

    #[test]
    fn the_stopped_tasks_last_log_lines_are_a_field_ending_with_the_last_line() {
        let mut lines: Vec<String> = (0..30).map(|i| format!("{i} {}", "x".repeat(60))).collect();
        lines.push("KeyError: 'DATABASE_URL'".into());
        let report = crate::report::rolled_back_with_log(lines);
        let m = outcome_message(&report);
        let fields = m["embeds"][0]["fields"].as_array().unwrap();
        let f = fields
            .iter()
            .find(|f| f["name"] == json!("web1: last log lines (ecs/web1/abc)"))
            .unwrap_or_else(|| panic!("{m}"));
        let v = f["value"].as_str().unwrap();
        assert!(
            v.ends_with("KeyError: 'DATABASE_URL'\n```") && v.starts_with("```\n"),
            "{v}"
        );
        assert!(v.chars().count() <= VALUE_MAX, "{}", v.len());
    }
}
