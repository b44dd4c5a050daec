//! Slack: the Block Kit messages (pure, snapshot-tested) and the two ways of sending them —
//! an incoming webhook (one message at the end) or a bot token (`chat.postMessage` at the
//! start, `chat.update` of the same message at the end, a threaded reply with the failure).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::Error;
use crate::inputs::ReportSettings;
use crate::plan::Plan;
use crate::release_notes::commit_text;
use crate::report::facts::{
    Fact, IN_PROGRESS_COLOUR, app_facts, display_version, headline, rollback_lines, run_facts,
    short_sha, status_colour, status_emoji, truncate, verification_texts,
};
use crate::report::{AppReport, Report, RunInfo, Status};
use crate::runner::http::{Http, Post};

/// Slack's limits: header text 150, section text 3000, 10 fields per section, 25 elements per
/// actions block, 75 characters per button label.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 2900;
const FIELD_MAX: usize = 1900;
const FIELDS_MAX: usize = 10;
const BUTTONS_MAX: usize = 5;
const BUTTON_LABEL_MAX: usize = 75;
/// Apps shown with all their facts; with the header, run facts, skip, error, rollback, more
/// apps and actions blocks a message stays under Slack's 50 blocks.
const APP_SECTIONS_MAX: usize = 40;

/// Slack refuses a message of more blocks.
const BLOCKS_MAX: usize = 50;
/// Commits listed in the message; the rest are counted ("and N more") and one link away.
const CHANGES_MAX: usize = 10;

/// An app's release notes as a section: what changed (or what the rollback took back out), at
/// most [`CHANGES_MAX`] commits, "and N more", and the compare page.
fn changes_section(a: &AppReport) -> Option<Value> {
    let notes = a.changes.as_ref()?;
    let heading = notes.heading(a.status == Some(Status::RolledBack));
    let mut lines = vec![format!("*{}: {}*", escape(&a.app), escape(&heading))];
    let (shown, more) = notes.shown(CHANGES_MAX);
    for c in shown {
        let sha = short_sha(&c.sha);
        let sha = match &c.url {
            Some(url) => format!("<{}|`{sha}`>", escape(url)),
            None => format!("`{sha}`"),
        };
        lines.push(format!("• {sha} {}", escape(&commit_text(c))));
    }
    let compare = notes
        .compare_url
        .as_ref()
        .map(|url| format!("<{}|compare on GitHub>", escape(url)));
    match (more, compare) {
        (0, Some(link)) => lines.push(link),
        (0, None) => {}
        (n, Some(link)) => lines.push(format!("and {n} more · {link}")),
        (n, None) => lines.push(format!("and {n} more")),
    }
    Some(section_text(&lines.join("\n")))
}

/// The bot's message, as Slack identified it: the channel id and the message's `ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// Escapes text for Slack mrkdwn (`&`, `<`, `>` are control characters there).
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `#2eb886` from `0x2EB886`.
fn hex(colour: u32) -> String {
    format!("#{colour:06x}")
}

/// A fact as a section field: `*Label*` over the value (code, link or plain).
fn field(f: &Fact) -> Value {
    let value = match (&f.url, f.code) {
        (Some(url), _) => format!("<{}|{}>", escape(url), escape(&f.text)),
        (None, true) => format!("`{}`", escape(&f.text).replace('`', "'")),
        (None, false) => escape(&f.text),
    };
    json!({
        "type": "mrkdwn",
        "text": truncate(&format!("*{}*\n{value}", f.label), FIELD_MAX),
    })
}

fn section_fields(facts: &[Fact]) -> Value {
    let fields: Vec<Value> = facts.iter().take(FIELDS_MAX).map(field).collect();
    json!({ "type": "section", "fields": fields })
}

fn section_text(text: &str) -> Value {
    json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": truncate(text, SECTION_MAX) },
    })
}

/// Text inside a ``` block: a stray ``` would end the block early.
fn code_block(text: &str) -> String {
    format!("```{}```", escape(text).replace("```", "'''"))
}

fn button(label: &str, url: &str, action_id: &str) -> Value {
    json!({
        "type": "button",
        "text": { "type": "plain_text", "text": truncate(label, BUTTON_LABEL_MAX), "emoji": true },
        "url": url,
        "action_id": action_id,
    })
}

/// The "deploying web1 v1.2.3…" message the bot posts before anything is built.
pub fn start_message(plan: &Plan, run: &RunInfo) -> Value {
    let apps: Vec<String> = plan
        .apps
        .iter()
        .map(|a| format!("{} {}", a.app, display_version(&a.version.value)))
        .collect();
    let text = format!("🚀 Deploying {}…", apps.join(", "));
    let mut lines = vec![format!("🚀 *Deploying {}…*", escape(&apps.join(", ")))];
    for a in &plan.apps {
        let target = match &a.deploy {
            Some(d) => {
                let kind = match d.deployment.as_str() {
                    "auto" => String::new(),
                    k => format!(" ({k})"),
                };
                format!("→ `{}/{}`{kind}", escape(&d.cluster), escape(&d.service))
            }
            None => "(image only, no service)".into(),
        };
        lines.push(format!(
            "• *{}* {} {target}",
            escape(&a.app),
            escape(&display_version(&a.version.value))
        ));
    }
    let mut context = vec![escape(&plan.trigger.describe())];
    if let Some(actor) = &run.actor {
        context.push(format!("by {}", escape(actor)));
    }
    if let Some(url) = &run.run_url {
        context.push(format!("<{}|workflow run>", escape(url)));
    }
    json!({
        "text": text,
        "attachments": [{
            "color": hex(IN_PROGRESS_COLOUR),
            "blocks": [
                section_text(&lines.join("\n")),
                {
                    "type": "context",
                    "elements": [{ "type": "mrkdwn", "text": context.join(" · ") }],
                },
            ],
        }],
    })
}

/// The outcome message: a coloured attachment with the headline, each app's facts, the run's
/// facts, the error and rollback on failure, and buttons to the run, the commit and consoles.
pub fn outcome_message(report: &Report) -> Value {
    let status = report.status();
    let title = headline(report);
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&title, HEADER_MAX), "emoji": true },
    })];
    // Slack refuses a message of more than 50 blocks; a big monorepo run lists the first apps
    // with their facts and the rest by name and status.
    let (shown, rest) = report
        .apps
        .split_at(report.apps.len().min(APP_SECTIONS_MAX));
    // The release notes take the blocks the apps leave: header, apps, more apps, run facts,
    // skip, error, rollback and actions stay within Slack's 50.
    let mut notes_room = (BLOCKS_MAX - 7).saturating_sub(shown.len());
    for a in shown {
        blocks.push(section_fields(&app_facts(a)));
        if notes_room > 0
            && let Some(section) = changes_section(a)
        {
            blocks.push(section);
            notes_room -= 1;
        }
    }
    if !rest.is_empty() {
        let names: Vec<String> = rest
            .iter()
            .map(|a| format!("{} {}", status_emoji(a.status()), escape(&a.app)))
            .collect();
        blocks.push(section_text(&format!(
            "*{} more apps*\n{}",
            rest.len(),
            names.join(", ")
        )));
    }
    blocks.push(section_fields(&run_facts(report)));
    if let Some(reason) = &report.skip_reason {
        blocks.push(section_text(&format!("*Skipped*\n{}", escape(reason))));
    }
    let errors = report.errors();
    if !errors.is_empty() {
        blocks.push(section_text(&format!(
            "*Error*\n{}",
            code_block(&truncate(&errors.join("\n"), SECTION_MAX - 20))
        )));
    }
    let verifications = verification_texts(report);
    if !verifications.is_empty() {
        blocks.push(section_text(&format!(
            "*Verification*\n{}",
            escape(&truncate(&verifications.join("\n"), SECTION_MAX - 20))
        )));
    }
    let rollbacks = rollback_lines(report);
    if !rollbacks.is_empty() {
        blocks.push(section_text(&format!(
            "*Rollback*\n{}",
            escape(&rollbacks.join("\n"))
        )));
    }
    let mut buttons = Vec::new();
    if let Some(url) = &report.run.run_url {
        buttons.push(button("View run", url, "run"));
    }
    if let Some(url) = &report.run.commit_url {
        buttons.push(button("View commit", url, "commit"));
    }
    for (i, l) in report.apps.iter().flat_map(|a| &a.links).enumerate() {
        buttons.push(button(&l.label, &l.url, &format!("link-{i}")));
    }
    buttons.truncate(BUTTONS_MAX);
    if !buttons.is_empty() {
        blocks.push(json!({ "type": "actions", "elements": buttons }));
    }
    json!({
        "text": title,
        "attachments": [{ "color": hex(status_colour(status)), "blocks": blocks }],
    })
}

/// The threaded reply under a failed deploy: the full error, the rollback, the last steps.
pub fn failure_thread(report: &Report) -> Option<String> {
    let errors = report.errors();
    let rollbacks = rollback_lines(report);
    if errors.is_empty() && rollbacks.is_empty() {
        return None;
    }
    let mut out = vec![format!("*Why {}*", escape(&headline(report)))];
    if !errors.is_empty() {
        out.push(code_block(&truncate(&errors.join("\n\n"), 3500)));
    }
    for r in rollbacks {
        out.push(format!("*Rollback:* {}", escape(&r)));
    }
    for a in &report.apps {
        if let Some(log) = a.log_tail.as_ref().filter(|l| !l.lines.is_empty()) {
            out.push(format!(
                "*{}: last log lines of the stopped task ({}):*",
                escape(&a.app),
                escape(&log.stream)
            ));
            out.push(code_block(&truncate(&log.lines.join("\n"), 3000)));
        }
    }
    for a in &report.apps {
        if a.steps.is_empty() {
            continue;
        }
        out.push(format!("*{} steps:*", escape(&a.app)));
        let skip = a.steps.len().saturating_sub(15);
        out.extend(
            a.steps
                .iter()
                .skip(skip)
                .map(|s| format!("• {}", escape(s))),
        );
    }
    Some(out.join("\n"))
}

/// Fills `{name}` placeholders of a JSON template with JSON-escaped values. A value is also
/// mrkdwn-escaped (`&`, `<`, `>`), so a branch named `<!channel>` pings nobody; `{raw.name}`
/// leaves that out, for a field that is not mrkdwn (a button's `url`) or Slack markup the team
/// means. Unknown names and braces of the JSON itself are left alone; the result must parse as
/// JSON.
pub(crate) fn fill_template(
    template: &str,
    vars: &BTreeMap<&'static str, String>,
) -> Result<Value, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let (raw, name_start) = match after.strip_prefix("raw.") {
            Some(a) => (true, a),
            None => (false, after),
        };
        let name_len = name_start
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(name_start.len());
        let name = &name_start[..name_len];
        match vars.get(name) {
            Some(value) if name_start[name_len..].starts_with('}') => {
                let value = if raw { value.clone() } else { escape(value) };
                let quoted = serde_json::to_string(&value).unwrap_or_default();
                // Inside a JSON string: the escaped value without its quotes.
                out.push_str(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or(""));
                rest = &name_start[name_len + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    serde_json::from_str(&out).map_err(|e| {
        format!(
            "slack-payload is not valid JSON once its placeholders are filled (line {}, column {}: {e}); put placeholders inside JSON strings, e.g. \"text\": \"{{app}} {{status}}\"",
            e.line(),
            e.column()
        )
    })
}

/// The message to send: the team's `slack-payload` filled in, or the built-in one. A template
/// that does not make a JSON object falls back to the built-in message, with a warning.
pub fn outcome_or_template(
    report: &Report,
    settings: &ReportSettings,
    vars: &BTreeMap<&'static str, String>,
) -> (Value, Option<Error>) {
    let Some(template) = &settings.slack_payload else {
        return (outcome_message(report), None);
    };
    let problem = match fill_template(template, vars) {
        Ok(v) if v.is_object() => return (v, None),
        Ok(_) => {
            "slack-payload must be a JSON object (e.g. {\"text\": \"{headline}\"})".to_string()
        }
        Err(e) => e,
    };
    (
        outcome_message(report),
        Some(Error::Notify {
            target: "Slack".into(),
            problem: format!("{problem}; sent the built-in message instead"),
        }),
    )
}

/// Posts a message to an incoming webhook (answers `ok` as text; errors as 4xx text).
pub(crate) async fn post_webhook(http: &Http, url: &str, message: &Value) -> Result<(), Error> {
    http.post(Post {
        target: "Slack webhook",
        url,
        bearer: None,
        headers: &[],
        body: message,
    })
    .await
    .map(|_| ())
}

/// A Web API call that did not work: Slack's own error code when it gave one.
struct ApiFailure {
    code: Option<String>,
    error: Error,
}

/// What to do about a Slack error code, for the warning.
fn hint(code: &str) -> &'static str {
    match code {
        "channel_not_found" => {
            " (check slack-channel: use the channel id, e.g. C0123456789, and invite the bot)"
        }
        "not_in_channel" => " (invite the bot to the channel: /invite @your-bot)",
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            " (check slack-bot-token: a bot token xoxb-… of an installed app)"
        }
        "missing_scope" => " (give the app the chat:write scope and reinstall it)",
        "ratelimited" => " (Slack is rate limiting this app)",
        _ => "",
    }
}

/// Calls a Slack Web API method; `ok: false` answers become errors naming Slack's code.
async fn call(
    http: &Http,
    api: &str,
    token: &str,
    method: &str,
    body: &Value,
) -> Result<Value, ApiFailure> {
    let target = format!("Slack {method}");
    let url = format!("{api}/{method}");
    let answer = http
        .post(Post {
            target: &target,
            url: &url,
            bearer: Some(token),
            headers: &[],
            body,
        })
        .await
        .map_err(|error| ApiFailure { code: None, error })?;
    if answer.json.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(answer.json);
    }
    let code = answer
        .json
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string);
    let problem = match &code {
        Some(c) => format!("Slack answered {c}{}", hint(c)),
        None => "Slack's answer had no \"ok\": true".into(),
    };
    Err(ApiFailure {
        code,
        error: Error::Notify { target, problem },
    })
}

/// Why the start message did not go out, and whether trying again at the end is pointless.
#[derive(Debug)]
pub struct StartFailure {
    /// Slack refused the token, the channel or the scope: the end message would fail alike.
    pub permanent: bool,
    pub error: Error,
}

/// Slack error codes that no retry at the end of the run can fix.
pub(crate) fn is_permanent(code: &str) -> bool {
    matches!(
        code,
        "channel_not_found"
            | "not_in_channel"
            | "is_archived"
            | "invalid_auth"
            | "not_authed"
            | "token_revoked"
            | "token_expired"
            | "account_inactive"
            | "missing_scope"
    )
}

/// Where the bot's calls go: the HTTP client, Slack's Web API base and the bot token.
#[derive(Clone, Copy)]
pub struct Bot<'a> {
    pub http: &'a Http,
    pub api: &'a str,
    pub token: &'a str,
}

/// Posts the start message with the bot token; returns where it landed, for the update.
pub(crate) async fn post_start(
    bot: Bot<'_>,
    channel: &str,
    message: &Value,
) -> Result<Posted, StartFailure> {
    let Bot { http, api, token } = bot;
    let mut body = message.clone();
    body["channel"] = json!(channel);
    let answer = call(http, api, token, "chat.postMessage", &body)
        .await
        .map_err(|f| StartFailure {
            permanent: f.code.as_deref().is_some_and(is_permanent),
            error: f.error,
        })?;
    posted(&answer, channel).ok_or_else(|| StartFailure {
        permanent: false,
        error: Error::Notify {
            target: "Slack chat.postMessage".into(),
            problem: "Slack's answer had no ts (message id)".into(),
        },
    })
}

fn posted(answer: &Value, channel: &str) -> Option<Posted> {
    Some(Posted {
        // chat.update needs the channel id Slack answered with, not a #name.
        channel: answer
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or(channel)
            .to_string(),
        ts: answer.get("ts").and_then(Value::as_str)?.to_string(),
    })
}

/// The outcome with the bot token: updates the start message (or posts a new one when there
/// is none, or it is gone), then replies in its thread with `thread` (the failure detail).
/// Returns the message `ts` and the problems met on the way.
pub(crate) async fn post_outcome(
    bot: Bot<'_>,
    channel: &str,
    started: Option<&Posted>,
    message: &Value,
    thread: Option<&str>,
) -> (Option<String>, Vec<Error>) {
    let Bot { http, api, token } = bot;
    let mut problems = Vec::new();
    let mut current = None;
    if let Some(p) = started {
        let mut body = message.clone();
        body["channel"] = json!(p.channel);
        body["ts"] = json!(p.ts);
        // chat.update keeps attachments it is not given: clear the "deploying…" ones.
        if body.get("attachments").is_none() {
            body["attachments"] = json!([]);
        }
        match call(http, api, token, "chat.update", &body).await {
            Ok(_) => current = Some(p.clone()),
            Err(f) => {
                let gone = matches!(
                    f.code.as_deref(),
                    Some("message_not_found" | "cant_update_message" | "edit_window_closed")
                );
                problems.push(f.error);
                if !gone {
                    return (Some(p.ts.clone()), problems);
                }
            }
        }
    }
    if current.is_none() {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        match call(http, api, token, "chat.postMessage", &body).await {
            Ok(answer) => current = posted(&answer, channel),
            Err(f) => problems.push(f.error),
        }
    }
    if let (Some(p), Some(text)) = (&current, thread) {
        let body = json!({ "channel": p.channel, "thread_ts": p.ts, "text": text });
        if let Err(f) = call(http, api, token, "chat.postMessage", &body).await {
            problems.push(f.error);
        }
    }
    (current.map(|p| p.ts), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verification_is_a_section_with_its_headline_and_details() {
        let m = outcome_message(&crate::report::failed_verification());
        let blocks = m["attachments"][0]["blocks"].as_array().unwrap();
        let text = blocks
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .find(|t| t.starts_with("*Verification*"))
            .unwrap_or_else(|| panic!("{m}"));
        assert_eq!(
            text,
            "*Verification*\nverification failed: 1 of 3 probes of https://web1.example.com/health failed (0 allowed); alarms failing: web1-5xx\n• probes: HTTP 200 ×2\n• probes: HTTP 503 ×1\n• alarm web1-5xx: ALARM (Threshold Crossed)"
        );
    }

    fn vars() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("app", "web1".to_string()),
            ("error", "line 1\n\"quoted\"".to_string()),
        ])
    }

    #[test]
    fn placeholders_are_filled_json_escaped_and_json_braces_survive() {
        let v = fill_template(
            r#"{"text": "{app}: {error}", "blocks": [], "x": {"y": "{unknown}"}}"#,
            &vars(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"text": "web1: line 1\n\"quoted\"", "blocks": [], "x": {"y": "{unknown}"}})
        );
    }

    #[test]
    fn placeholders_are_mrkdwn_escaped_unless_asked_for_raw() {
        let vars = BTreeMap::from([
            ("ref", "release/<!channel>&co".to_string()),
            ("run_url", "https://ci.example/run?a=1&b=2".to_string()),
        ]);
        let v = fill_template(
            r#"{"text": "{ref} <{run_url}|run>", "raw": "{raw.ref}", "url": "{raw.run_url}", "x": "{raw.unknown} {raw.}"}"#,
            &vars,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "text": "release/&lt;!channel&gt;&amp;co <https://ci.example/run?a=1&amp;b=2|run>",
                "raw": "release/<!channel>&co",
                "url": "https://ci.example/run?a=1&b=2",
                "x": "{raw.unknown} {raw.}",
            })
        );
    }

    #[test]
    fn a_template_that_breaks_json_is_explained() {
        let e = fill_template(r#"{"text": {app}}"#, &vars()).unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn a_run_of_many_apps_stays_within_slacks_50_blocks() {
        use crate::report::{AppReport, Status};
        let report = Report {
            apps: (0..60)
                .map(|i| AppReport {
                    app: format!("app{i}"),
                    status: Some(Status::Failed),
                    error: Some("boom".into()),
                    rollback: Some("back".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let m = outcome_message(&report);
        let blocks = m["attachments"][0]["blocks"].as_array().map(Vec::len);
        assert!(blocks.is_some_and(|n| n <= 50), "{blocks:?}");
        assert!(m.to_string().contains("*20 more apps*"));
    }

    #[test]
    fn the_failure_thread_shows_the_stopped_tasks_last_log_lines() {
        let mut report = crate::report::rolled_back_with_log(vec![
            "Traceback:".into(),
            "KeyError: <DATABASE_URL>".into(),
        ]);
        report.apps[0].error = Some("essential container web1 exited 1".into());
        let t = failure_thread(&report).unwrap();
        assert!(
            t.contains("*web1: last log lines of the stopped task (ecs/web1/abc):*\n```Traceback:\nKeyError: &lt;DATABASE_URL&gt;```"),
            "{t}"
        );
    }

    #[test]
    fn mrkdwn_control_characters_are_escaped() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
