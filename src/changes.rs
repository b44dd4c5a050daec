//! `changed-only`: which apps a push or a pull request touched, so a monorepo deploys (or puts
//! in its `matrix`) only those. The changed files come from the GitHub API through octocrab:
//! the compare of a push's `before...after`, the files of a pull request.
//!
//! Why the API and not `git diff --name-only`: actions/checkout fetches one commit by default
//! (the push's `before` is not there), the action image holds no git, and the API answers the
//! same for a fork, a squash or a force push. The price is a token with `contents: read` (and
//! `pull-requests: read` for pull requests), which the runner's `github.token` has.

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::github::Api;
use crate::inputs::Settings;
use crate::plan::{AppPlan, Plan};
use crate::trigger::Trigger;

/// GitHub lists at most this many files in a compare; a longer list is cut.
const COMPARE_MAX_FILES: usize = 300;
/// The pull request files endpoint pages by at most 100 and stops at 3000 files.
const PR_PAGE: usize = 100;
const PR_MAX_FILES: usize = 3000;
/// The most all the listing requests together may take.
const BUDGET: Duration = Duration::from_secs(60);

/// What changed, as far as the event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Range {
    /// A branch push: the commits between `base` and `head`.
    Push { base: String, head: String },
    /// A pull request: its files.
    PullRequest { number: u64 },
    /// No change set to compare (a dispatch, a tag, a new branch): every app counts.
    Unknown { why: String },
}

impl Range {
    /// For messages: "push abc1234...def5678", "pull request #7".
    pub(crate) fn describe(&self) -> String {
        match self {
            Range::Push { base, head } => format!("push {}...{}", short(base), short(head)),
            Range::PullRequest { number } => format!("pull request #{number}"),
            Range::Unknown { why } => why.clone(),
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// The change set of the event (pure): a pull request by its number, a branch push by the
/// `before`/`after` of its payload; a dispatch or a tag has none.
pub(crate) fn range(trigger: &Trigger, payload: Option<&str>) -> Range {
    match trigger {
        Trigger::PullRequestMerged { number, .. } => Range::PullRequest { number: *number },
        Trigger::Push { branch } => {
            let ev: Option<Value> = payload.and_then(|p| serde_json::from_str(p).ok());
            let sha = |k: &str| {
                ev.as_ref()
                    .and_then(|e| e.get(k))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
                    .map(str::to_string)
            };
            match (sha("before"), sha("after")) {
                (Some(b), _) if b.chars().all(|c| c == '0') => Range::Unknown {
                    why: format!(
                        "the push created {branch}: there is no earlier commit to compare"
                    ),
                },
                (Some(base), Some(head)) => Range::Push { base, head },
                _ => Range::Unknown {
                    why: format!("the push event of {branch} names no before/after commits"),
                },
            }
        }
        Trigger::TagPush { tag } => Range::Unknown {
            why: format!("a tag push ({tag}) has no change set"),
        },
        Trigger::Dispatch { .. } => Range::Unknown {
            why: "a workflow_dispatch has no change set".into(),
        },
    }
}

/// True when `file` (repository-relative) is `watched` or lies under it; `.` watches everything.
pub(crate) fn touches(watched: &str, file: &str) -> bool {
    watched == "."
        || file == watched
        || file
            .strip_prefix(watched)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// True when any changed file is one of the app's watched paths.
pub(crate) fn changed(app: &AppPlan, files: &[String]) -> bool {
    app.watch
        .iter()
        .any(|w| files.iter().any(|f| touches(w, f)))
}

/// The file names of a GitHub files list (`filename`, and `previous_filename` for a rename:
/// moving a file out of an app changes the app).
pub(crate) fn file_names(files: &Value) -> Vec<String> {
    files
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| ["filename", "previous_filename"].map(|k| f.get(k)))
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Lists the changed files of `range` in `repo`; `None` when GitHub's list is cut (too many
/// files to know): then every app counts as changed.
pub(crate) async fn list(api: &Api, repo: &str, range: &Range) -> Result<Option<Vec<String>>> {
    let what = range.describe();
    let fail = |e: Error| Error::ChangedFiles {
        what: what.clone(),
        problem: match e {
            Error::Notify { target, problem } => format!("{target}: {problem}"),
            other => other.to_string(),
        },
    };
    match range {
        Range::Unknown { .. } => Ok(None),
        Range::Push { base, head } => {
            // One commit per page: the files come whole on the first page.
            let answer = api
                .compare(repo, base, head, 1)
                .await
                .map_err(fail)?
                .ok_or_else(|| Error::ChangedFiles {
                    what: what.clone(),
                    problem: "GitHub compare: HTTP 404 (GitHub knows no such commits: a force push may have removed the push's base)".into(),
                })?;
            let files = answer.get("files").cloned().unwrap_or(Value::Null);
            let n = files.as_array().map_or(0, Vec::len);
            Ok((n < COMPARE_MAX_FILES).then(|| file_names(&files)))
        }
        Range::PullRequest { number } => {
            let mut names = Vec::new();
            let mut seen = 0;
            for page in 1..=PR_MAX_FILES / PR_PAGE {
                let answer = api
                    .get(
                        "GitHub pull request files",
                        &format!(
                            "/repos/{repo}/pulls/{number}/files?per_page={PR_PAGE}&page={page}"
                        ),
                    )
                    .await
                    .map_err(fail)?;
                let n = answer.as_array().map_or(0, Vec::len);
                seen += n;
                names.extend(file_names(&answer));
                if n < PR_PAGE {
                    return Ok(Some(names));
                }
            }
            Ok((seen < PR_MAX_FILES).then_some(names))
        }
    }
}

/// What `changed-only` kept, for the log and the skip reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The apps whose files did not change (dropped from the plan).
    pub unchanged: Vec<String>,
    /// One line for the log: how many files changed, or why every app counts.
    pub note: String,
}

/// Drops from `plan` the apps the event did not touch. A run without a change set (dispatch,
/// tag, new branch) or with more files than GitHub lists keeps every app, and says so.
pub(crate) async fn keep_changed(settings: &Settings, plan: &mut Plan) -> Result<Selection> {
    let payload = match &settings.github.event_path {
        Some(p) if matches!(plan.trigger, Trigger::Push { .. }) => {
            crate::file_text::read(p, "the GitHub event payload", crate::file_text::EVENT_LIMIT)
                .ok()
        }
        _ => None,
    };
    let range = range(&plan.trigger, payload.as_deref());
    if let Range::Unknown { why } = &range {
        return Ok(Selection {
            unchanged: Vec::new(),
            note: format!("changed-only: {why}; every selected app counts as changed"),
        });
    }
    let (Some(api), Some(repo)) = (
        Api::for_report(&settings.report, "GitHub API"),
        &settings.github.repository,
    ) else {
        return Err(Error::ChangedFiles {
            what: range.describe(),
            problem: "github-token and GITHUB_REPOSITORY are needed (the runner sets GITHUB_REPOSITORY; pass --repository on a terminal)".into(),
        });
    };
    let api = api.map_err(|e| Error::ChangedFiles {
        what: range.describe(),
        problem: e.to_string(),
    })?;
    let files = tokio::time::timeout(BUDGET, list(&api, repo, &range))
        .await
        .map_err(|_| Error::ChangedFiles {
            what: range.describe(),
            problem: format!("no full answer within {}s", BUDGET.as_secs()),
        })??;
    let Some(files) = files else {
        return Ok(Selection {
            unchanged: Vec::new(),
            note: format!(
                "changed-only: {} changes more files than GitHub lists; every selected app counts as changed",
                range.describe()
            ),
        });
    };
    let (kept, dropped): (Vec<AppPlan>, Vec<AppPlan>) = std::mem::take(&mut plan.apps)
        .into_iter()
        .partition(|a| changed(a, &files));
    plan.apps = kept;
    let unchanged: Vec<String> = dropped.into_iter().map(|a| a.app).collect();
    let note = format!(
        "changed-only: {} changed {} file{}; {}",
        range.describe(),
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        if unchanged.is_empty() {
            "every selected app changed".to_string()
        } else {
            format!("unchanged, not deployed: {}", unchanged.join(", "))
        }
    );
    Ok(Selection { unchanged, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_directory_covers_its_files_and_not_its_namesakes() {
        assert!(touches("apps/web1", "apps/web1/src/index.ts"));
        assert!(touches("apps/web1", "apps/web1"));
        assert!(!touches("apps/web1", "apps/web10/package.json"));
        assert!(!touches("apps/web1", "docs/apps/web1/x.md"));
        assert!(touches(".", "README.md"));
        assert!(touches("deploy/web1.json", "deploy/web1.json"));
    }

    #[test]
    fn the_range_follows_the_event() {
        let push = Trigger::Push {
            branch: "main".into(),
        };
        assert_eq!(
            range(&push, Some(r#"{"before":"aaaaaaa1","after":"bbbbbbb2"}"#)),
            Range::Push {
                base: "aaaaaaa1".into(),
                head: "bbbbbbb2".into()
            }
        );
        assert!(matches!(
            range(&push, Some(r#"{"before":"0000000000","after":"bbbbbbb2"}"#)),
            Range::Unknown { why } if why.contains("created main")
        ));
        assert!(matches!(range(&push, None), Range::Unknown { .. }));
        let pr = Trigger::PullRequestMerged {
            number: 7,
            head: "release/web1".into(),
            base: "main".into(),
            app: None,
        };
        assert_eq!(range(&pr, None), Range::PullRequest { number: 7 });
        assert!(matches!(
            range(&Trigger::TagPush { tag: "v1".into() }, None),
            Range::Unknown { .. }
        ));
    }

    #[test]
    fn a_rename_counts_for_both_names() {
        let files = serde_json::json!([
            { "filename": "apps/web2/a.ts", "previous_filename": "apps/web1/a.ts" },
            { "filename": "README.md" }
        ]);
        assert_eq!(
            file_names(&files),
            ["apps/web2/a.ts", "apps/web1/a.ts", "README.md"]
        );
    }
}
