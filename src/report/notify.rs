//! Telling people: Slack, Discord and GitHub Deployments, at the start and at the end of a run.
//! A reporter's failure is a warning; it never changes the deploy's outcome.
//!
//! The facts every message shows (headline, per-app and per-run fields, template variables)
//! are computed here once, as plain values; `slack`, `discord` and `github` only lay them out.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Error;
use crate::inputs::ReportSettings;
use crate::plan::Plan;
use crate::report::console;
use crate::report::http::{Http, Policy};
use crate::report::{AppReport, Report, RunInfo, Status, discord, github, slack};

/// Where the reporters send. Defaults are the public services; `GITHUB_API_URL` (set by the
/// runner, GitHub Enterprise has its own) and `ECS_DEPLOY_SLACK_API_URL` override them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub slack_api: String,
    pub github_api: String,
}

impl Endpoints {
    /// The endpoints for these settings, defaults filled in, without a trailing `/`.
    pub fn from_settings(settings: &ReportSettings) -> Endpoints {
        let base = |v: &Option<String>, default: &str| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or(default)
                .trim_end_matches('/')
                .to_string()
        };
        Endpoints {
            slack_api: base(&settings.slack_api_url, "https://slack.com/api"),
            github_api: base(&settings.github_api_url, "https://api.github.com"),
        }
    }
}

/// The GitHub deployment environment when `environment` is not given.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// Holds what the start messages returned (the Slack `ts`, the GitHub deployment id) so the
/// final messages update the same objects.
#[derive(Debug)]
pub struct Notifier {
    settings: ReportSettings,
    run: RunInfo,
    endpoints: Endpoints,
    http: Http,
    started: bool,
    slack_message: Option<slack::Posted>,
    github_deployment: Option<u64>,
    /// Slack refused the bot's start message for good (bad token, unknown channel).
    slack_bot_refused: bool,
    /// Every warning given so far, as printed (secrets scrubbed).
    warnings: Vec<String>,
}

impl Notifier {
    /// A notifier for the configured channels, with the default time limits.
    pub fn new(settings: &ReportSettings, run: &RunInfo) -> Notifier {
        Notifier::with_policy(settings, run, Policy::default())
    }

    /// A notifier with its own time limits (tests use short ones).
    pub fn with_policy(settings: &ReportSettings, run: &RunInfo, policy: Policy) -> Notifier {
        let secrets = [
            &settings.slack_webhook_url,
            &settings.slack_bot_token,
            &settings.discord_webhook_url,
            &settings.github_token,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose().to_string())
        .collect();
        Notifier {
            settings: settings.clone(),
            run: run.clone(),
            endpoints: Endpoints::from_settings(settings),
            http: Http::new(policy, secrets),
            started: false,
            slack_message: None,
            github_deployment: None,
            slack_bot_refused: false,
            warnings: Vec::new(),
        }
    }

    /// The warnings given so far, exactly as printed: for callers and tests that need to know
    /// what went wrong without parsing the log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The `ts` of the bot's message once it was posted (the `slack-message-ts` output).
    pub fn slack_message_ts(&self) -> Option<&str> {
        self.slack_message.as_ref().map(|p| p.ts.as_str())
    }

    /// The GitHub environment deployments are recorded in.
    fn environment(&self) -> &str {
        self.settings
            .environment
            .as_deref()
            .unwrap_or(DEFAULT_ENVIRONMENT)
    }

    /// Announces the start of the deploy: the Slack bot's "deploying…" message and the GitHub
    /// deployment (`in_progress`). Slack and GitHub are told at the same time.
    pub async fn start(&mut self, plan: &Plan) {
        self.started = true;
        let s = &self.settings;
        let budget = self.http.policy().budget;
        let slack_start = async {
            match (&s.slack_bot_token, &s.slack_channel) {
                (Some(token), Some(channel)) => Some(
                    within(
                        budget,
                        "Slack chat.postMessage",
                        slack::post_start(
                            &self.http,
                            &self.endpoints.slack_api,
                            token.expose(),
                            channel,
                            &slack::start_message(plan, &self.run),
                        ),
                    )
                    .await
                    .unwrap_or_else(|error| {
                        Err(slack::StartFailure {
                            permanent: false,
                            error,
                        })
                    }),
                ),
                _ => None,
            }
        };
        let github_start = async {
            let Some(token) = &s.github_token else {
                console::notice(
                    "GitHub deployment not recorded: no github-token given (pass \
                     github-token: ${{ github.token }} with permissions deployments: write)",
                );
                return (None, Vec::new());
            };
            within(
                budget,
                "GitHub deployment",
                github::start(
                    &self.http,
                    &self.endpoints.github_api,
                    token.expose(),
                    &self.run,
                    self.environment(),
                    plan,
                ),
            )
            .await
            .unwrap_or_else(|e| (None, vec![e]))
        };
        let (slack_result, (github_id, github_problems)) = tokio::join!(slack_start, github_start);
        match slack_result {
            Some(Ok(posted)) => self.slack_message = Some(posted),
            Some(Err(f)) => {
                // A refused token or channel would only be refused again at the end: one
                // warning is enough.
                self.slack_bot_refused = f.permanent;
                self.warn(&f.error);
            }
            None => {}
        }
        self.github_deployment = github_id;
        for e in &github_problems {
            self.warn(e);
        }
    }

    /// Reports the outcome everywhere configured; returns the Slack message `ts` when there is
    /// one. A skip posts nothing unless a start message went out; a failure before the start
    /// (bad event, bad package.json) is still told in Slack and Discord, but creates no GitHub
    /// deployment, since nothing reached the environment.
    pub async fn finish(&mut self, report: &Report) -> Option<String> {
        let status = report.status();
        if status == Status::Skipped && !self.started {
            return None;
        }
        let s = &self.settings;
        let budget = self.http.policy().budget;
        let vars = variables(report, self.environment());
        let (message, template_problem) = slack::outcome_or_template(report, s, &vars);
        let thread = if status.is_failure() {
            slack::failure_thread(report)
        } else {
            None
        };
        let webhook = async {
            match &s.slack_webhook_url {
                Some(url) => within(
                    budget,
                    "Slack webhook",
                    slack::post_webhook(&self.http, url.expose(), &message),
                )
                .await
                .and_then(|r| r),
                None => Ok(()),
            }
        };
        let bot = async {
            match (&s.slack_bot_token, &s.slack_channel) {
                (Some(token), Some(channel)) if !self.slack_bot_refused => within(
                    budget,
                    "Slack chat.update",
                    slack::post_outcome(
                        &self.http,
                        &self.endpoints.slack_api,
                        token.expose(),
                        channel,
                        self.slack_message.as_ref(),
                        &message,
                        thread.as_deref(),
                    ),
                )
                .await
                .unwrap_or_else(|e| (self.slack_message_ts().map(str::to_string), vec![e])),
                _ => (None, Vec::new()),
            }
        };
        let discord = async {
            match &s.discord_webhook_url {
                Some(url) => within(
                    budget,
                    "Discord webhook",
                    discord::post(&self.http, url.expose(), &discord::outcome_message(report)),
                )
                .await
                .and_then(|r| r),
                None => Ok(()),
            }
        };
        let deployment = async {
            match (&s.github_token, self.github_deployment) {
                (Some(token), Some(id)) => within(
                    budget,
                    "GitHub deployment status",
                    github::finish(
                        &self.http,
                        &self.endpoints.github_api,
                        token.expose(),
                        &self.run,
                        id,
                        report,
                    ),
                )
                .await
                .and_then(|r| r),
                _ => Ok(()),
            }
        };
        let (webhook_r, (ts, bot_problems), discord_r, github_r) =
            tokio::join!(webhook, bot, discord, deployment);
        let mut problems: Vec<Error> = template_problem.into_iter().collect();
        problems.extend(webhook_r.err());
        problems.extend(bot_problems);
        problems.extend(discord_r.err());
        problems.extend(github_r.err());
        for p in &problems {
            self.warn(p);
        }
        ts
    }

    /// A reporter problem as a `::warning::`, secrets scrubbed once more.
    fn warn(&mut self, e: &Error) {
        let text = self.http.redact(&e.to_string());
        console::warning(&text);
        self.warnings.push(text);
    }
}

/// Runs one reporter's calls within `budget`; past it, an error naming the reporter. Each
/// request has its own timeout too: this bounds the sum (a retry, an update then a reply).
async fn within<T>(
    budget: Duration,
    target: &str,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    tokio::time::timeout(budget, work)
        .await
        .map_err(|_| Error::Notify {
            target: target.to_string(),
            problem: format!("gave up after {}s", budget.as_secs_f32()),
        })
}

/// A status as an emoji, the same in every message.
pub fn status_emoji(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "✅",
        Status::Skipped => "⏭️",
        Status::RolledBack => "↩️",
        Status::Cancelled => "🛑",
        Status::Failed => "❌",
    }
}

/// A status as an RGB colour (Slack attachment bar, Discord embed).
pub fn status_colour(status: Status) -> u32 {
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
pub fn status_words(status: Status) -> &'static str {
    match status {
        Status::Succeeded => "deployed",
        Status::Failed => "deploy failed",
        Status::RolledBack => "deploy failed and was rolled back",
        Status::Cancelled => "deploy cancelled",
        Status::Skipped => "deploy skipped",
    }
}

/// A version as people read it in chat: `1.2.3` → `v1.2.3`; `v2024.05` and `main-5` as given.
pub fn display_version(version: &str) -> String {
    if version.starts_with(|c: char| c.is_ascii_digit()) {
        format!("v{version}")
    } else {
        version.to_string()
    }
}

/// `web1 v1.2.3, web2 v2.0.0`, or the repository (then "deploy") when no app got that far.
pub fn apps_line(report: &Report, run: &RunInfo) -> String {
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
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The first 7 characters of a commit sha.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// `sha256:0123456789ab`: a digest short enough for a chat field.
pub fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// `web1:42` from a task definition ARN.
pub fn task_definition_revision(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `rolling ecs-svc/123`, `codedeploy d-ABC`, or the kind alone.
pub fn deployment_text(app: &AppReport) -> Option<String> {
    match (&app.deployment_kind, &app.deployment_id) {
        (Some(k), Some(id)) => Some(format!("{k} {id}")),
        (Some(k), None) => Some(k.clone()),
        (None, Some(id)) => Some(id.clone()),
        (None, None) => None,
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
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
pub fn app_facts(app: &AppReport) -> Vec<Fact> {
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
pub fn run_facts(report: &Report) -> Vec<Fact> {
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
pub fn rollback_lines(report: &Report) -> Vec<String> {
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
    v.insert("deployment_kind", join(&|a| a.deployment_kind.clone()));
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
    fn endpoints_default_to_the_public_services_and_drop_trailing_slashes() {
        let e = Endpoints::from_settings(&ReportSettings::default());
        assert_eq!(e.slack_api, "https://slack.com/api");
        assert_eq!(e.github_api, "https://api.github.com");
        let e = Endpoints::from_settings(&ReportSettings {
            github_api_url: Some("https://ghe.example/api/v3/".into()),
            ..Default::default()
        });
        assert_eq!(e.github_api, "https://ghe.example/api/v3");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
