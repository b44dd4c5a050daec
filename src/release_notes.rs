//! Release notes: the commits a deploy ships, for every message (Slack, Discord, the job
//! summary, the GitHub Deployment, the `changes` output), and on a rollback the commits it took
//! back out.
//!
//! The commit the service ran before comes from, in this order: the live image's
//! `org.opencontainers.image.revision` label (read from the registry: the build of this action
//! sets it), the live image's tag as a git tag, the last successful GitHub Deployment of the
//! environment. GitHub's compare (`crate::github::Api::compare`, the call `changed-only` uses
//! for its files) lists the commits from there to the deployed commit (`GITHUB_SHA`).
//!
//! The notes are a courtesy: a missing token or a GitHub or registry failure costs the list and
//! a warning saying why, never the deploy. The data types live here (not in `report/`) so the
//! reporters render them and the fetch fills them without either importing the other.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::github::Api;
use crate::image::Access;
use crate::inputs::Settings;
use crate::preflight::{AppChecked, DeployCheck};

/// GitHub's compare pages its commits; one page of this many is read (two for a long range:
/// the first for the total, the last for the newest commits).
const PAGE: usize = 100;
/// Deployments of the environment looked through for the last successful one.
const DEPLOYMENTS_LOOKED_AT: usize = 10;
/// The most the release notes of one app may take, every call together.
pub(crate) const BUDGET: Duration = Duration::from_secs(30);

/// One commit of the release, as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commit {
    pub sha: String,
    /// The first line of the message.
    pub subject: String,
    /// The GitHub login of the author, else the name in the commit.
    pub author: String,
    /// The pull request the subject names (`(#12)` of a squash merge, `Merge pull request #12`).
    pub pr: Option<u64>,
    /// The commit's page on GitHub.
    pub url: Option<String>,
}

/// Where the commit the service ran before was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The live image's revision label.
    Label { image: String },
    /// The live image's tag, which is a git tag of the repository too.
    Tag { tag: String },
    /// The last successful GitHub Deployment of the environment.
    Deployment { id: u64 },
}

impl Anchor {
    /// For the summary: "the revision label of the live image …".
    pub(crate) fn describe(&self) -> String {
        match self {
            Anchor::Label { image } => format!("the revision label of the live image {image}"),
            Anchor::Tag { tag } => format!("the live image's tag {tag} as a git tag"),
            Anchor::Deployment { id } => {
                format!("the last successful GitHub deployment ({id}) of the environment")
            }
        }
    }
}

/// Which way the deploy moved the service along the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// New commits go live (GitHub's `ahead`, or `diverged`: the commits the live one lacks).
    Forward,
    /// An older commit goes live: the commits listed are taken out.
    Backward,
    /// The same commit as before: nothing changes.
    Same,
}

/// The commits between what the service ran and what was deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseNotes {
    /// The commit (or tag) the service ran before.
    pub base: String,
    /// The commit deployed.
    pub head: String,
    pub anchor: Anchor,
    pub direction: Direction,
    /// Newest first; at most one page of them.
    pub commits: Vec<Commit>,
    /// How many commits there are in all (more than `commits` for a long range).
    pub total: usize,
    /// GitHub's compare page of the range.
    pub compare_url: Option<String>,
}

impl ReleaseNotes {
    /// The title every renderer shows over the list; `rolled_back` turns "what changed" into
    /// what the rollback took back out.
    pub(crate) fn heading(&self, rolled_back: bool) -> String {
        let n = self.total;
        let commits = if n == 1 { "commit" } else { "commits" };
        let base = short(&self.base);
        match (self.direction, rolled_back) {
            (Direction::Same, _) => format!("No new commits: the service ran {base} already"),
            (Direction::Forward, false) => format!("What changed: {n} {commits} since {base}"),
            (Direction::Forward, true) => {
                format!("Taken back out by the rollback: {n} {commits} since {base}")
            }
            (Direction::Backward, false) => {
                format!(
                    "Going back: {n} {commits} after {} taken out",
                    short(&self.head)
                )
            }
            (Direction::Backward, true) => {
                format!("Rolled back: the {n} {commits} this deploy would have taken out stay live")
            }
        }
    }

    /// The commits to show (at most `max`) and how many more there are ("and N more").
    pub(crate) fn shown(&self, max: usize) -> (&[Commit], usize) {
        let shown = &self.commits[..self.commits.len().min(max)];
        (shown, self.total.saturating_sub(shown.len()))
    }
}

/// A commit without its sha (a renderer links the sha): `Fix the login (#12) — octocat`; the
/// pull request is added when the subject does not name it already.
pub(crate) fn commit_text(c: &Commit) -> String {
    let pr = match c.pr {
        Some(n) if !c.subject.contains(&format!("#{n}")) => format!(" (#{n})"),
        _ => String::new(),
    };
    format!("{}{pr} — {}", c.subject, c.author)
}

/// The first 7 characters of a commit sha (a tag stays whole).
fn short(sha: &str) -> &str {
    if sha.len() > 7 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        &sha[..7]
    } else {
        sha
    }
}

/// The pull request a commit subject names: a squash merge's trailing `(#12)`, or a merge
/// commit's `Merge pull request #12 from …`. Pure.
pub(crate) fn pr_number(subject: &str) -> Option<u64> {
    let number = |s: &str| -> Option<u64> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    if let Some(rest) = subject.strip_prefix("Merge pull request #") {
        return number(rest);
    }
    let inner = subject.trim_end().strip_suffix(')')?;
    let open = inner.rfind("(#")?;
    let digits = &inner[open + 2..];
    (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// GitHub's `status` of a compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CompareStatus {
    Ahead,
    Behind,
    Diverged,
    Identical,
}

/// What one compare answer says: its status, its commits (newest first), their total and the
/// compare page. Pure.
fn read_compare(
    answer: &Value,
) -> Result<(CompareStatus, Vec<Commit>, usize, Option<String>), String> {
    let status: CompareStatus = answer
        .get("status")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .ok_or("GitHub's compare answer has no status GitHub documents")?;
    let commits = commits_of(answer);
    let total = answer
        .get("total_commits")
        .and_then(Value::as_u64)
        .map_or(commits.len(), |n| n as usize);
    let url = answer
        .get("html_url")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((status, commits, total, url))
}

/// The commits of a compare answer (GitHub lists them oldest first), newest first. Pure.
pub(crate) fn commits_of(answer: &Value) -> Vec<Commit> {
    let mut out: Vec<Commit> = answer
        .get("commits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let sha = c.get("sha")?.as_str()?.to_string();
            let message = c.pointer("/commit/message").and_then(Value::as_str)?;
            let subject = message
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let author = c
                .pointer("/author/login")
                .or_else(|| c.pointer("/commit/author/name"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            Some(Commit {
                pr: pr_number(&subject),
                url: c
                    .get("html_url")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                sha,
                subject,
                author,
            })
        })
        .collect();
    out.reverse();
    out
}

/// A GitHub Deployment's latest state, as its statuses list says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DeploymentState {
    Success,
    #[serde(other)]
    Other,
}

/// Where one app's notes are read: the GitHub client, the repository, the environment of its
/// deployments, the commit deployed.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    pub api: &'a Api,
    /// `owner/name`.
    pub repo: &'a str,
    pub environment: &'a str,
    /// The commit deployed (`GITHUB_SHA`).
    pub head: &'a str,
}

/// What the service ran before the deploy: its image, and the run's registry login when the
/// image lives there.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live<'a> {
    pub image: Option<&'a str>,
    pub access: Option<&'a Access>,
}

/// The image an app's service (or Kubernetes container) ran when the preflight read it.
pub(crate) fn live_image(checked: &AppChecked) -> Option<String> {
    match &checked.deploy {
        DeployCheck::Checked(c) => c
            .live_task_definition
            .as_ref()?
            .get("containerDefinitions")?
            .as_array()?
            .iter()
            .find(|d| d.get("name").and_then(Value::as_str) == Some(c.container.as_str()))?
            .get("image")?
            .as_str()
            .map(str::to_string),
        DeployCheck::Kubernetes(k) => Some(k.previous_image.clone()),
        DeployCheck::NoDeploy | DeployCheck::WithLead | DeployCheck::Unread(_) => None,
    }
}

/// Finds the commit the service ran and lists the commits to the deployed one. `Err` says why
/// there is no list (for the warning).
pub async fn find(lookup: &Lookup<'_>, live: Live<'_>) -> Result<ReleaseNotes, String> {
    let mut misses: Vec<String> = Vec::new();
    if let Some(image) = live.image {
        match crate::image::revision_of(live.access, image).await {
            Ok(Some(sha)) => {
                let anchor = Anchor::Label {
                    image: image.to_string(),
                };
                match compare(lookup, &sha, anchor).await? {
                    Some(notes) => return Ok(notes),
                    None => misses.push(format!(
                        "the live image's revision {} is no commit of {}",
                        short(&sha),
                        lookup.repo
                    )),
                }
            }
            Ok(None) => misses.push(format!(
                "the live image {image} has no {} label",
                crate::image::REVISION_LABEL
            )),
            Err(e) => misses.push(format!("the live image's labels could not be read ({e})")),
        }
        match crate::image::reference_parts(image).map(|(_, _, tag)| tag) {
            Some(tag) if !tag.contains(':') && tag != "latest" => {
                let anchor = Anchor::Tag { tag: tag.clone() };
                match compare(lookup, &tag, anchor).await? {
                    Some(notes) => return Ok(notes),
                    None => misses.push(format!("its tag {tag} is no git tag")),
                }
            }
            _ => misses.push("it has no version tag".into()),
        }
    } else {
        misses.push("the live image is not known".into());
    }
    match last_success(lookup).await? {
        Some((id, sha)) => match compare(lookup, &sha, Anchor::Deployment { id }).await? {
            Some(notes) => Ok(notes),
            None => {
                misses.push(format!(
                    "the last successful deployment's commit {} is gone",
                    short(&sha)
                ));
                Err(no_base(&misses))
            }
        },
        None => {
            misses.push(format!(
                "the environment {} has no successful GitHub deployment",
                lookup.environment
            ));
            Err(no_base(&misses))
        }
    }
}

fn no_base(misses: &[String]) -> String {
    format!("no commit to compare with: {}", misses.join("; "))
}

/// The notes from `base` to the lookup's head; `None` when GitHub knows no such base (404).
async fn compare(
    lookup: &Lookup<'_>,
    base: &str,
    anchor: Anchor,
) -> Result<Option<ReleaseNotes>, String> {
    let notes = |direction, commits, total, compare_url| ReleaseNotes {
        base: base.to_string(),
        head: lookup.head.to_string(),
        anchor: anchor.clone(),
        direction,
        commits,
        total,
        compare_url,
    };
    if base == lookup.head {
        return Ok(Some(notes(Direction::Same, Vec::new(), 0, None)));
    }
    let Some(answer) = page(lookup, base, lookup.head).await? else {
        return Ok(None);
    };
    let (status, commits, total, url) = read_compare(&answer)?;
    Ok(Some(match status {
        CompareStatus::Identical => notes(Direction::Same, Vec::new(), 0, url),
        CompareStatus::Ahead | CompareStatus::Diverged => {
            notes(Direction::Forward, commits, total, url)
        }
        CompareStatus::Behind => {
            // An older commit goes live: the commits it takes out are the other way round.
            let back = page(lookup, lookup.head, base).await?;
            let (commits, total) = match back.as_ref().map(read_compare) {
                Some(Ok((_, commits, total, _))) => (commits, total),
                _ => (Vec::new(), 0),
            };
            notes(Direction::Backward, commits, total, url)
        }
    }))
}

/// One compare, with the newest commits when the range is longer than a page.
async fn page(lookup: &Lookup<'_>, base: &str, head: &str) -> Result<Option<Value>, String> {
    let api_error = |e: crate::error::Error| e.to_string();
    let Some(mut answer) = lookup
        .api
        .compare(lookup.repo, base, head, PAGE)
        .await
        .map_err(api_error)?
    else {
        return Ok(None);
    };
    let total = answer
        .get("total_commits")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    if total > PAGE {
        let last = total.div_ceil(PAGE);
        let route = format!(
            "/repos/{}/compare/{base}...{head}?per_page={PAGE}&page={last}",
            lookup.repo
        );
        if let Some(newest) = lookup
            .api
            .get_found("GitHub compare", &route)
            .await
            .map_err(api_error)?
            .and_then(|v| v.get("commits").cloned())
        {
            answer["commits"] = newest;
        }
    }
    Ok(Some(answer))
}

/// The last successful GitHub Deployment of the environment: its id and commit. The newest
/// deployments are looked at in turn; a deployment's latest status says its state (an older
/// success turns `inactive` once a newer one succeeds).
async fn last_success(lookup: &Lookup<'_>) -> Result<Option<(u64, String)>, String> {
    let api_error = |e: crate::error::Error| e.to_string();
    // A 404 (no such repository for this token, or no Deployments) is an empty list.
    let list = lookup
        .api
        .get_found(
            "GitHub deployments",
            &format!(
                "/repos/{}/deployments?environment={}&per_page={DEPLOYMENTS_LOOKED_AT}",
                lookup.repo,
                query_escape(lookup.environment)
            ),
        )
        .await
        .map_err(api_error)?
        .unwrap_or(Value::Null);
    for d in list.as_array().into_iter().flatten() {
        let (Some(id), Some(sha)) = (
            d.get("id").and_then(Value::as_u64),
            d.get("sha").and_then(Value::as_str),
        ) else {
            continue;
        };
        let statuses = lookup
            .api
            .get(
                "GitHub deployment statuses",
                &format!(
                    "/repos/{}/deployments/{id}/statuses?per_page=1",
                    lookup.repo
                ),
            )
            .await
            .map_err(api_error)?;
        let state = statuses
            .pointer("/0/state")
            .cloned()
            .and_then(|s| serde_json::from_value::<DeploymentState>(s).ok());
        if state == Some(DeploymentState::Success) {
            return Ok(Some((id, sha.to_string())));
        }
    }
    Ok(None)
}

/// Percent-encodes a query value (an environment name may hold spaces or `&`).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One app of the run, for [`fetch`]: its name, whether it deployed (succeeded or rolled
/// back: only then are there commits to tell), and what its service ran before.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deployed<'a> {
    pub app: &'a str,
    pub shipped: bool,
    pub live: Live<'a>,
}

/// The release notes of every app that deployed (in order; `None` for the others), and the
/// warnings for those left without (no token, no repository, a GitHub or registry failure).
/// Never fails: the notes cost nothing but themselves.
pub(crate) async fn fetch(
    settings: &Settings,
    apps: &[Deployed<'_>],
) -> (Vec<Option<ReleaseNotes>>, Vec<String>) {
    let mut notes = vec![None; apps.len()];
    let mut warnings = Vec::new();
    if !apps.iter().any(|a| a.shipped) {
        return (notes, warnings);
    }
    let g = &settings.github;
    let (Some(repo), Some(head)) = (&g.repository, &g.sha) else {
        warnings.push(
            "release notes left out: GITHUB_REPOSITORY and GITHUB_SHA are needed (the runner sets them; pass --repository and --sha on a terminal)".into(),
        );
        return (notes, warnings);
    };
    let api = match crate::github::Api::for_report(&settings.report, "GitHub compare") {
        None => {
            warnings.push(
                "release notes left out: no github-token given (pass github-token: ${{ github.token }} with permissions contents: read and deployments: read)".into(),
            );
            return (notes, warnings);
        }
        Some(Err(e)) => {
            warnings.push(format!("release notes left out: {e}"));
            return (notes, warnings);
        }
        Some(Ok(api)) => api,
    };
    let environment = settings
        .report
        .environment
        .as_deref()
        .unwrap_or(crate::github::DEFAULT_ENVIRONMENT);
    let lookup = Lookup {
        api: &api,
        repo,
        environment,
        head,
    };
    for (slot, a) in notes.iter_mut().zip(apps).filter(|(_, a)| a.shipped) {
        match tokio::time::timeout(BUDGET, find(&lookup, a.live)).await {
            Ok(Ok(n)) => *slot = Some(n),
            Ok(Err(why)) => warnings.push(format!(
                "{}: release notes left out (the deploy is not affected): {why}",
                a.app
            )),
            Err(_) => warnings.push(format!(
                "{}: release notes left out (the deploy is not affected): no full answer within {}s",
                a.app,
                BUDGET.as_secs()
            )),
        }
    }
    (notes, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn commit(sha: &str, subject: &str) -> Commit {
        Commit {
            sha: sha.into(),
            subject: subject.into(),
            author: "octocat".into(),
            pr: pr_number(subject),
            url: None,
        }
    }

    #[test]
    fn the_pull_request_comes_from_a_squash_or_a_merge_subject() {
        assert_eq!(pr_number("Fix the login (#12)"), Some(12));
        assert_eq!(
            pr_number("Merge pull request #7 from acme/release/web1"),
            Some(7)
        );
        assert_eq!(pr_number("Fix (#12) then more"), None);
        assert_eq!(pr_number("Bump (#)"), None);
        assert_eq!(pr_number("Plain commit"), None);
    }

    #[test]
    fn a_compare_answer_lists_its_commits_newest_first_with_login_or_name() {
        let answer = json!({
            "status": "ahead",
            "total_commits": 2,
            "html_url": "https://github.com/acme/shop/compare/a...b",
            "commits": [
                { "sha": "1111111aaaa", "commit": { "message": "Old one (#3)\n\nbody", "author": { "name": "Ann" } }, "author": null },
                { "sha": "2222222bbbb", "commit": { "message": "New one", "author": { "name": "Bob" } }, "author": { "login": "bob" }, "html_url": "https://github.com/acme/shop/commit/2222222bbbb" },
            ]
        });
        let (status, commits, total, url) = read_compare(&answer).unwrap();
        assert_eq!(status, CompareStatus::Ahead);
        assert_eq!(total, 2);
        assert_eq!(
            url.as_deref(),
            Some("https://github.com/acme/shop/compare/a...b")
        );
        assert_eq!(commits[0].subject, "New one");
        assert_eq!(commits[0].author, "bob");
        assert_eq!(commits[1].author, "Ann");
        assert_eq!(commits[1].pr, Some(3));
        assert!(read_compare(&json!({ "status": "sideways" })).is_err());
    }

    #[test]
    fn the_heading_says_what_went_live_or_what_the_rollback_took_out() {
        let notes = ReleaseNotes {
            base: "0123456789abcdef0123456789abcdef01234567".into(),
            head: "fedcba9876543210fedcba9876543210fedcba98".into(),
            anchor: Anchor::Tag {
                tag: "v1.2.2".into(),
            },
            direction: Direction::Forward,
            commits: vec![commit("abcdef0123", "Fix the login (#12)")],
            total: 12,
            compare_url: None,
        };
        assert_eq!(
            notes.heading(false),
            "What changed: 12 commits since 0123456"
        );
        assert_eq!(
            notes.heading(true),
            "Taken back out by the rollback: 12 commits since 0123456"
        );
        let back = ReleaseNotes {
            direction: Direction::Backward,
            total: 1,
            ..notes.clone()
        };
        assert_eq!(
            back.heading(false),
            "Going back: 1 commit after fedcba9 taken out"
        );
        let (shown, more) = notes.shown(10);
        assert_eq!((shown.len(), more), (1, 11));
        assert_eq!(
            format!("{} {}", short(&shown[0].sha), commit_text(&shown[0])),
            "abcdef0 Fix the login (#12) — octocat"
        );
        let mut c = commit("abcdef0123", "Fix");
        c.pr = Some(4);
        assert_eq!(commit_text(&c), "Fix (#4) — octocat");
    }

    #[test]
    fn an_environment_name_is_escaped_in_the_query() {
        assert_eq!(query_escape("production"), "production");
        assert_eq!(query_escape("eu west&1"), "eu%20west%261");
    }
}
