//! Telling people: Slack, Discord and GitHub Deployments, at the start and at the end of a run.
//! A reporter's failure is a warning; it never changes the deploy's outcome.
//!
//! The facts every message shows live in `facts` (no reporter imports this module back);
//! `slack`, `discord` and `github` only lay them out.

use std::time::Duration;

use crate::error::Error;
use crate::inputs::ReportSettings;
use crate::plan::Plan;
use crate::report::facts::variables;
use crate::report::{Report, RunInfo, Status, discord, github, slack};
use crate::runner::console;
use crate::runner::http::{Http, Policy};
use crate::runner::shutdown::{REPORT_WITHIN, Shutdown};

/// Where the reporters send. Defaults are the public services; `GITHUB_API_URL` (set by the
/// runner, GitHub Enterprise has its own) and `ECS_DEPLOY_SLACK_API_URL` override them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub slack_api: String,
    pub github_api: String,
}

impl Endpoints {
    /// The endpoints for these settings, defaults filled in, without a trailing `/`.
    pub(crate) fn from_settings(settings: &ReportSettings) -> Endpoints {
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
            github_api: crate::github::api_base(settings),
        }
    }
}

pub use crate::github::DEFAULT_ENVIRONMENT;

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
    /// The GitHub client, made at the start (octocrab needs the runtime) and kept for the end.
    github: Option<crate::github::Api>,
    /// Slack refused the bot's start message for good (bad token, unknown channel).
    slack_bot_refused: bool,
    /// Every warning given so far, as printed (secrets scrubbed).
    warnings: Vec<String>,
    /// The run's signals: after a cancellation every reporter ends by [`REPORT_WITHIN`].
    shutdown: Option<Shutdown>,
    /// What sending the outcome to Slack gave (slack-github-action's outputs).
    slack_sent: Option<crate::report::SlackSent>,
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
            github: None,
            slack_bot_refused: false,
            warnings: Vec::new(),
            shutdown: None,
            slack_sent: None,
        }
    }

    /// Bounds every reporter by the run's cancellation too: once a signal came, each gives up
    /// [`REPORT_WITHIN`] after it, so the process can end in time.
    pub(crate) fn until(mut self, shutdown: Shutdown) -> Notifier {
        self.shutdown = Some(shutdown);
        self
    }

    fn limit(&self) -> Limit {
        Limit {
            budget: self.http.policy().budget,
            cutoff: self.shutdown.clone(),
        }
    }

    /// The warnings given so far, exactly as printed: for callers and tests that need to know
    /// what went wrong without parsing the log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What sending the outcome to Slack gave, once [`Notifier::finish`] tried (`None`: no
    /// Slack is configured, or nothing was sent).
    pub(crate) fn slack_sent(&self) -> Option<&crate::report::SlackSent> {
        self.slack_sent.as_ref()
    }

    /// The `ts` of the bot's message once it was posted (the `slack-message-ts` output).
    pub(crate) fn slack_message_ts(&self) -> Option<&str> {
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
        let limit = self.limit();
        let slack_start = async {
            match (&s.slack_bot_token, &s.slack_channel) {
                (Some(token), Some(channel)) => Some(
                    within(
                        &limit,
                        "Slack chat.postMessage",
                        slack::post_start(
                            slack::Bot {
                                http: &self.http,
                                api: &self.endpoints.slack_api,
                                token: token.expose(),
                            },
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
        let (api, api_problem) = match &s.github_token {
            None => {
                console::notice(
                    "GitHub deployment not recorded: no github-token given (pass \
                     github-token: ${{ github.token }} with permissions deployments: write)",
                );
                (None, None)
            }
            Some(token) => match crate::github::Api::new(
                &self.http,
                "GitHub create deployment",
                &self.endpoints.github_api,
                token.expose(),
            ) {
                Ok(api) => (Some(api), None),
                Err(e) => (None, Some(e)),
            },
        };
        let github_start = async {
            match &api {
                None => (None, api_problem.into_iter().collect()),
                Some(api) => within(
                    &limit,
                    "GitHub deployment",
                    github::start(api, &self.run, self.environment(), plan),
                )
                .await
                .unwrap_or_else(|e| (None, vec![e])),
            }
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
        self.github = api;
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
        let limit = self.limit();
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
                    &limit,
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
                    &limit,
                    "Slack chat.update",
                    slack::post_outcome(
                        slack::Bot {
                            http: &self.http,
                            api: &self.endpoints.slack_api,
                            token: token.expose(),
                        },
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
                    &limit,
                    "Discord webhook",
                    discord::post(&self.http, url.expose(), &discord::outcome_message(report)),
                )
                .await
                .and_then(|r| r),
                None => Ok(()),
            }
        };
        let deployment = async {
            match (&self.github, self.github_deployment) {
                (Some(api), Some(id)) => within(
                    &limit,
                    "GitHub deployment status",
                    github::finish(api, &self.run, id, report),
                )
                .await
                .and_then(|r| r),
                _ => Ok(()),
            }
        };
        let (webhook_r, (ts, bot_problems), discord_r, github_r) =
            tokio::join!(webhook, bot, discord, deployment);
        let bot_used = s.slack_bot_token.is_some() && s.slack_channel.is_some();
        if s.slack_webhook_url.is_some() || bot_used {
            let slack_error = webhook_r
                .as_ref()
                .err()
                .or(bot_problems.first())
                .map(|e| crate::runner::redact::Redactor::known().text(&e.to_string()));
            self.slack_sent = Some(crate::report::SlackSent {
                ok: slack_error.is_none(),
                response: match &slack_error {
                    None => serde_json::json!({"ok": true}),
                    Some(e) => serde_json::json!({"ok": false, "error": e}),
                }
                .to_string(),
                time: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default(),
                channel_id: s.slack_channel.clone().filter(|_| bot_used),
                thread_ts: ts.clone().filter(|_| bot_used && thread.is_some()),
            });
        }
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

/// How long one reporter may take: its budget, and the cancellation's cutoff when there is one.
struct Limit {
    budget: Duration,
    cutoff: Option<Shutdown>,
}

/// Runs one reporter's calls within the limit; past it, an error naming the reporter. Each
/// request has its own timeout too: this bounds the sum (a retry, an update then a reply), and
/// after a cancellation ends it [`REPORT_WITHIN`] after the signal, sent or not.
async fn within<T>(
    limit: &Limit,
    target: &str,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    let gave_up = |problem: String| Error::Notify {
        target: target.to_string(),
        problem,
    };
    let cutoff = async {
        match &limit.cutoff {
            Some(s) => s.after(REPORT_WITHIN).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = cutoff => Err(gave_up(format!(
            "given up {}s after the cancellation: the job must end before GitHub kills it",
            REPORT_WITHIN.as_secs()
        ))),
        r = tokio::time::timeout(limit.budget, work) => r.map_err(|_| {
            gave_up(format!("gave up after {}s", limit.budget.as_secs_f32()))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
