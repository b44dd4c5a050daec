//! Decides from the GitHub event whether this run deploys, which app, and which version source:
//! a pure function of the event name, the payload and the trigger settings.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::inputs::{AppSelector, TriggerSettings};

/// Why this run deploys; carried into the plan and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A pull request from a release branch was merged into the base branch.
    PullRequestMerged {
        number: u64,
        head: String,
        base: String,
        /// The app named by the release branch (`release/web1` → `web1`), if any.
        app: Option<String>,
    },
    /// Started by hand (`workflow_dispatch`).
    Dispatch {
        /// `latest` or an explicit version, from the event's inputs or the `version` input.
        version: String,
        app: Option<String>,
    },
    /// A `v*` tag was pushed: the version comes from the tag.
    TagPush { tag: String },
    /// A branch was pushed (`base-branch` by default, any branch with `deploy-on: push`).
    Push { branch: String },
}

impl Trigger {
    /// One line for logs, summaries and messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Trigger::PullRequestMerged {
                number, head, base, ..
            } => format!("PR #{number} merged: {head} → {base}"),
            Trigger::Dispatch { version, .. } => {
                format!("workflow_dispatch (version: {version})")
            }
            Trigger::TagPush { tag } => format!("tag {tag} pushed"),
            Trigger::Push { branch } => format!("push to {branch}"),
        }
    }

    /// The app the trigger itself names (release branch or dispatch input).
    pub(crate) fn app(&self) -> Option<&str> {
        match self {
            Trigger::PullRequestMerged { app, .. } | Trigger::Dispatch { app, .. } => {
                app.as_deref()
            }
            _ => None,
        }
    }
}

/// The decision: deploy with this trigger, or skip with a reason a person understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Deploy(Trigger),
    Skip { reason: String },
}

#[derive(Debug, Deserialize)]
struct BranchRef {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    repo: Option<RepoRef>,
}

#[derive(Debug, Deserialize)]
struct RepoRef {
    #[serde(default)]
    full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    #[serde(default)]
    merged: Option<bool>,
    head: BranchRef,
    base: BranchRef,
}

#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    number: u64,
    pull_request: PullRequest,
}

#[derive(Debug, Deserialize)]
struct DispatchEvent {
    #[serde(default)]
    inputs: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    deleted: bool,
}

fn parse<T: serde::de::DeserializeOwned>(event_name: &str, payload: &str) -> Result<T, String> {
    serde_json::from_str(crate::file_text::without_bom(payload))
        .map_err(|e| format!("{e} (event {event_name})"))
}

/// Reads a string input from the dispatch event's `inputs`, refusing non-string values.
fn dispatch_input(
    inputs: &Option<serde_json::Map<String, serde_json::Value>>,
    key: &str,
) -> Result<Option<String>, String> {
    match inputs.as_ref().and_then(|m| m.get(key)) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => Err(format!("inputs.{key} must be a string, found {other}")),
    }
}

/// Decides from the event. `payload` is the event JSON text; errors only for a payload that does
/// not match its event name (or an app name that is not safe), never for "not a deploy".
pub(crate) fn decide(
    event_name: &str,
    payload: &str,
    settings: &TriggerSettings,
) -> Result<Decision, String> {
    let on = settings.deploy_on;
    match event_name {
        "pull_request" | "pull_request_target" => {
            let ev: PullRequestEvent = parse(event_name, payload)?;
            let pr = &ev.pull_request;
            let n = ev.number;
            if ev.action != "closed" {
                return Ok(skip(format!(
                    "PR #{n} was {}, not merged; only a merged release PR deploys",
                    ev.action
                )));
            }
            if pr.merged != Some(true) {
                return Ok(skip(format!("PR #{n} was closed without merging")));
            }
            if !on.pull_request_merged {
                return Ok(skip(format!(
                    "PR #{n} was merged, but deploy-on does not include pull-request-merged"
                )));
            }
            if pr.base.git_ref != settings.base_branch {
                return Ok(skip(format!(
                    "PR #{n} was merged into {}, not {}; only merges into base-branch deploy",
                    pr.base.git_ref, settings.base_branch
                )));
            }
            let head = &pr.head.git_ref;
            let prefix = &settings.release_branch_prefix;
            let Some(rest) = head.strip_prefix(prefix.as_str()) else {
                return Ok(skip(format!(
                    "PR #{n} came from {head}, which is not a release branch ({prefix}<app>)"
                )));
            };
            let head_repo = pr.head.repo.as_ref().and_then(|r| r.full_name.clone());
            let base_repo = pr.base.repo.as_ref().and_then(|r| r.full_name.clone());
            if let (Some(h), Some(b)) = (&head_repo, &base_repo)
                && h != b
            {
                return Ok(skip(format!(
                    "PR #{n} came from the fork {h}; only release branches of {b} deploy"
                )));
            }
            let branch_app = if rest.is_empty() {
                None
            } else {
                Some(rest.to_string())
            };
            if let (AppSelector::Names(names), Some(b)) = (&settings.app, &branch_app)
                && !names.iter().any(|n| n == b)
            {
                return Ok(skip(format!(
                    "PR #{n} releases {b} ({head}); this step deploys {}",
                    names.join(", ")
                )));
            }
            if let Some(b) = &branch_app
                && crate::inputs::validate_app_name(b).is_err()
            {
                return Err(format!(
                    "the release branch {head} names the app {b:?}, which is not a valid app name (letters, digits, -, _, .)"
                ));
            }
            Ok(Decision::Deploy(Trigger::PullRequestMerged {
                number: n,
                head: head.clone(),
                base: pr.base.git_ref.clone(),
                app: branch_app,
            }))
        }
        "workflow_dispatch" => {
            let ev: DispatchEvent = parse(event_name, payload)?;
            if !on.workflow_dispatch {
                return Ok(skip(
                    "started by hand, but deploy-on does not include workflow-dispatch".into(),
                ));
            }
            let version = settings
                .version
                .clone()
                .or(dispatch_input(&ev.inputs, "version")?)
                .unwrap_or_else(|| "latest".into());
            let app = dispatch_input(&ev.inputs, "app")?;
            if let Some(a) = &app {
                crate::inputs::validate_app_name(a).map_err(|e| format!("inputs.app: {e}"))?;
            }
            Ok(Decision::Deploy(Trigger::Dispatch { version, app }))
        }
        "push" => {
            let ev: PushEvent = parse(event_name, payload)?;
            if ev.deleted {
                return Ok(skip(format!(
                    "{} was deleted; nothing to deploy",
                    ev.git_ref
                )));
            }
            if let Some(tag) = ev.git_ref.strip_prefix("refs/tags/") {
                if !on.tag {
                    return Ok(skip(format!(
                        "tag {tag} pushed, but deploy-on does not include tag"
                    )));
                }
                if !tag.starts_with('v') {
                    return Ok(skip(format!(
                        "tag {tag} is not a release tag (release tags start with v, e.g. v1.2.3)"
                    )));
                }
                Ok(Decision::Deploy(Trigger::TagPush {
                    tag: tag.to_string(),
                }))
            } else if let Some(branch) = ev.git_ref.strip_prefix("refs/heads/") {
                let to_base = on.push_to_base_branch && branch == settings.base_branch;
                if !on.push && !to_base {
                    return Ok(skip(if on.push_to_base_branch {
                        format!(
                            "push to {branch}; by default only a push to base-branch ({}) deploys: set deploy-on to include push to deploy every branch push",
                            settings.base_branch
                        )
                    } else {
                        format!(
                            "push to {branch}, but deploy-on does not include push or push-to-base-branch"
                        )
                    }));
                }
                Ok(Decision::Deploy(Trigger::Push {
                    branch: branch.to_string(),
                }))
            } else {
                Ok(skip(format!(
                    "push of {} is neither a branch nor a tag",
                    ev.git_ref
                )))
            }
        }
        other => Ok(skip(format!(
            "event {other} does not deploy (deploying events: pull_request merged from a release branch, workflow_dispatch, push of a v* tag, push to base-branch, push to any branch with deploy-on: push)"
        ))),
    }
}

fn skip(reason: String) -> Decision {
    Decision::Skip { reason }
}

/// Reads the event file and decides; wraps payload problems in [`Error::InvalidEvent`].
pub(crate) fn decide_from_file(
    event_name: &str,
    path: &std::path::Path,
    settings: &TriggerSettings,
) -> Result<Decision> {
    let text = crate::file_text::read(
        path,
        "the GitHub event payload",
        crate::file_text::EVENT_LIMIT,
    )?;
    decide(event_name, &text, settings).map_err(|reason| Error::InvalidEvent {
        event_name: event_name.to_string(),
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::DeployOn;

    fn settings() -> TriggerSettings {
        TriggerSettings {
            app: AppSelector::FromTrigger,
            base_branch: "main".into(),
            release_branch_prefix: "release/".into(),
            deploy_on: DeployOn::parse("pull-request-merged,workflow-dispatch,tag").unwrap(),
            version: None,
        }
    }

    fn pr(action: &str, merged: bool, head: &str, base: &str) -> String {
        serde_json::json!({
            "action": action, "number": 2,
            "pull_request": {"merged": merged,
                "head": {"ref": head, "repo": {"full_name": "acme/shop"}},
                "base": {"ref": base, "repo": {"full_name": "acme/shop"}}}
        })
        .to_string()
    }

    #[test]
    fn merged_release_pr_deploys_its_app() {
        let d = decide(
            "pull_request",
            &pr("closed", true, "release/web1", "main"),
            &settings(),
        )
        .unwrap();
        assert_eq!(
            d,
            Decision::Deploy(Trigger::PullRequestMerged {
                number: 2,
                head: "release/web1".into(),
                base: "main".into(),
                app: Some("web1".into())
            })
        );
    }

    #[test]
    fn closed_without_merge_skips_with_reason() {
        let d = decide(
            "pull_request",
            &pr("closed", false, "release/web1", "main"),
            &settings(),
        )
        .unwrap();
        assert_eq!(d, skip("PR #2 was closed without merging".into()));
    }

    #[test]
    fn other_app_skips_when_app_is_given() {
        let mut s = settings();
        s.app = AppSelector::Names(vec!["web1".into()]);
        let d = decide(
            "pull_request",
            &pr("closed", true, "release/web2", "main"),
            &s,
        )
        .unwrap();
        assert!(matches!(d, Decision::Skip { reason } if reason.contains("releases web2")));
    }

    #[test]
    fn dispatch_takes_version_from_event_unless_input_given() {
        let payload = r#"{"inputs": {"version": "1.2.0"}}"#;
        let d = decide("workflow_dispatch", payload, &settings()).unwrap();
        assert_eq!(
            d,
            Decision::Deploy(Trigger::Dispatch {
                version: "1.2.0".into(),
                app: None
            })
        );
        let mut s = settings();
        s.version = Some("latest".into());
        let d = decide("workflow_dispatch", payload, &s).unwrap();
        assert_eq!(
            d,
            Decision::Deploy(Trigger::Dispatch {
                version: "latest".into(),
                app: None
            })
        );
    }

    #[test]
    fn a_push_to_the_base_branch_deploys_by_default_and_other_branches_need_deploy_on_push() {
        let main = r#"{"ref": "refs/heads/main"}"#;
        let feature = r#"{"ref": "refs/heads/feature/login"}"#;
        let mut s = settings();
        s.deploy_on = DeployOn::parse(
            crate::inputs::input_spec("deploy-on")
                .and_then(|i| i.default)
                .unwrap_or_default(),
        )
        .unwrap();
        assert_eq!(
            decide("push", main, &s).unwrap(),
            Decision::Deploy(Trigger::Push {
                branch: "main".into()
            })
        );
        assert_eq!(
            decide("push", feature, &s).unwrap(),
            skip("push to feature/login; by default only a push to base-branch (main) deploys: set deploy-on to include push to deploy every branch push".into())
        );
        // Without either push value, no branch push deploys.
        assert_eq!(
            decide("push", main, &settings()).unwrap(),
            skip("push to main, but deploy-on does not include push or push-to-base-branch".into())
        );
        s.deploy_on.push = true;
        assert_eq!(
            decide("push", feature, &s).unwrap(),
            Decision::Deploy(Trigger::Push {
                branch: "feature/login".into()
            })
        );
    }

    #[test]
    fn payload_of_the_wrong_shape_is_an_error() {
        assert!(decide("pull_request", r#"{"action": "closed"}"#, &settings()).is_err());
        assert!(decide("push", "not json", &settings()).is_err());
    }
}
