//! The project's workflows, the examples users copy and the workflow snippets of the README and
//! the book stay hardened: third-party actions pinned by commit SHA with the version beside it,
//! no token left in the checkout, no `${{ }}` spliced into a `run:` script, and only the
//! permissions a job uses.
//! zizmor (`.ci/run`) says the same offline; this test also runs under a bare `cargo test`.

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::action_contract::{ACTION_REPO, is_this_action, workflow_files};
use crate::support::repo_root;

/// One `uses:` line: what it names and the comment after it, if any.
#[derive(Debug, PartialEq)]
struct UsesLine {
    target: String,
    comment: Option<String>,
}

/// Every `uses:` key in a workflow's text, with its trailing comment (YAML drops comments).
fn uses_lines(text: &str) -> Vec<UsesLine> {
    text.lines()
        .filter_map(|line| {
            let trimmed = line.trim_start().trim_start_matches("- ");
            let rest = trimmed.strip_prefix("uses:")?;
            let (value, comment) = match rest.split_once(" #") {
                Some((v, c)) => (v, Some(c.trim().to_string())),
                None => (rest, None),
            };
            Some(UsesLine {
                target: value.trim().trim_matches(['"', '\'']).to_string(),
                comment,
            })
        })
        .collect()
}

/// True for a full 40-hex commit SHA.
fn is_commit_sha(reference: &str) -> bool {
    reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The pinning problem of one `uses:` line, if any.
fn pin_problem(uses: &UsesLine) -> Option<String> {
    let target = &uses.target;
    // This action (ref-pinned by design, see .github/zizmor.yml) and local paths are not
    // third-party.
    if is_this_action(target) || target.starts_with("./") {
        return None;
    }
    let Some((_, reference)) = target.split_once('@') else {
        return Some(format!(
            "`uses: {target}` names no ref: pin it to a commit SHA"
        ));
    };
    if !is_commit_sha(reference) {
        return Some(format!(
            "`uses: {target}` is not pinned: use the tag's full commit SHA, `@<sha> # {reference}`"
        ));
    }
    match uses.comment.as_deref() {
        Some(version) if !version.is_empty() => None,
        _ => Some(format!(
            "`uses: {target}` has no `# vX.Y.Z` comment saying which version the SHA is"
        )),
    }
}

/// The jobs mapping of a parsed workflow (empty when it has none).
fn jobs(workflow: &Value) -> Vec<(String, &Value)> {
    workflow
        .get("jobs")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .map(|(id, job)| (id.as_str().unwrap_or("?").to_string(), job))
        .collect()
}

/// The steps of a job (empty for a reusable-workflow job).
fn steps(job: &Value) -> Vec<&Value> {
    job.get("steps")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .collect()
}

/// A step's `uses:` without its ref (`actions/checkout`), or "" for a `run:` step.
fn action_of(step: &Value) -> &str {
    let uses = step.get("uses").and_then(Value::as_str).unwrap_or("");
    uses.split('@').next().unwrap_or("")
}

/// The permissions in force for a job: its own block, else the workflow's.
fn permissions<'a>(workflow: &'a Value, job: &'a Value) -> Option<&'a Value> {
    job.get("permissions")
        .or_else(|| workflow.get("permissions"))
}

/// True when `scope: write` is granted (or every scope, as `write-all`).
fn grants_write(permissions: Option<&Value>, scope: &str) -> bool {
    match permissions {
        Some(Value::String(all)) => all == "write-all",
        Some(map) => map.get(scope).and_then(Value::as_str) == Some("write"),
        None => false,
    }
}

/// Every hardening problem of one workflow, each naming the file, the job and what to do.
fn workflow_problems(name: &str, text: &str) -> Vec<String> {
    let mut problems: Vec<String> = uses_lines(text)
        .iter()
        .filter_map(pin_problem)
        .map(|p| format!("{name}: {p}"))
        .collect();
    let workflow: Value = match serde_yaml::from_str(text) {
        Ok(wf) => wf,
        Err(e) => return vec![format!("{name}: not valid YAML: {e}")],
    };
    match workflow.get("permissions") {
        None => problems.push(format!(
            "{name}: no workflow-level `permissions:` (the repository default may grant write \
             to everything): set `permissions: {{}}` or `contents: read`"
        )),
        Some(Value::String(all)) => problems.push(format!(
            "{name}: `permissions: {all}`: name each scope the jobs need"
        )),
        Some(_) => {}
    }
    for (job_id, job) in jobs(&workflow) {
        let at = format!("{name} job {job_id}");
        let steps = steps(job);
        for step in &steps {
            if action_of(step) == "actions/checkout"
                && step.get("with").and_then(|w| w.get("persist-credentials"))
                    != Some(&Value::Bool(false))
            {
                problems.push(format!(
                    "{at}: actions/checkout without `persist-credentials: false` leaves the \
                     token in .git/config for every later step"
                ));
            }
            let run = step.get("run").and_then(Value::as_str).unwrap_or("");
            if run.contains("${{") {
                problems.push(format!(
                    "{at}: `${{{{ … }}}}` inside `run:` is spliced into the script: pass it \
                     through the step's `env:` and use \"$VAR\" ({:?})",
                    run.lines().find(|l| l.contains("${{")).unwrap_or("").trim()
                ));
            }
        }
        let granted = permissions(&workflow, job);
        let uses_oidc = steps
            .iter()
            .any(|s| action_of(s) == "aws-actions/configure-aws-credentials");
        if grants_write(granted, "id-token") && !uses_oidc {
            problems.push(format!(
                "{at}: `id-token: write` but no step assumes a role by OIDC: drop it"
            ));
        }
        let reports_deployments = steps.iter().any(|s| {
            s.get("uses")
                .and_then(Value::as_str)
                .is_some_and(is_this_action)
                && s.get("with").and_then(|w| w.get("github-token")).is_some()
        });
        if grants_write(granted, "deployments") && !reports_deployments {
            problems.push(format!(
                "{at}: `deployments: write` but no step reports GitHub Deployments \
                 (github-token): drop it"
            ));
        }
    }
    problems
}

/// The ```yaml blocks of the README and the book that are whole workflows (have `jobs:`), by
/// file and first line.
fn readme_workflows() -> Vec<(String, String)> {
    crate::readme::readme_and_book()
        .into_iter()
        .flat_map(|(path, text)| {
            let file = path
                .strip_prefix(repo_root())
                .unwrap_or(&path)
                .display()
                .to_string();
            text.split("```yaml\n")
                .skip(1)
                .filter_map(|rest| rest.split_once("```").map(|(block, _)| block.to_string()))
                .filter(|block| block.lines().any(|l| l.starts_with("jobs:")))
                .map(|block| {
                    let first = block.lines().next().unwrap_or("").to_string();
                    (format!("{file} block `{first}`"), block)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every workflow the repository ships or shows: (name for messages, text).
fn all_workflows() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = workflow_files()
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable workflow");
            let name = path
                .strip_prefix(repo_root())
                .unwrap_or(&path)
                .display()
                .to_string();
            (name, text)
        })
        .collect();
    all.extend(readme_workflows());
    all
}

#[test]
fn every_workflow_and_snippet_of_the_readme_and_the_book_is_hardened() {
    let all = all_workflows();
    assert!(
        all.len() >= 10,
        "expected 6 workflow files and the 4 workflows of the README and the book, found {}",
        all.len()
    );
    let problems: Vec<String> = all
        .iter()
        .flat_map(|(name, text)| workflow_problems(name, text))
        .collect();
    assert!(
        problems.is_empty(),
        "unhardened workflows:\n  {}",
        problems.join("\n  ")
    );
}

/// One action, one SHA, one version everywhere: a bump touches every file or none.
#[test]
fn each_third_party_action_is_pinned_to_one_sha_and_one_version_everywhere() {
    let mut pins: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (name, text) in all_workflows() {
        for uses in uses_lines(&text) {
            let Some((action, sha)) = uses.target.split_once('@') else {
                continue;
            };
            if action == ACTION_REPO || !is_commit_sha(sha) {
                continue;
            }
            let pin = format!("{sha} # {}", uses.comment.unwrap_or_default());
            pins.entry(action.to_string())
                .or_default()
                .entry(pin)
                .or_default()
                .push(name.clone());
        }
    }
    assert!(
        pins.contains_key("actions/checkout"),
        "no pinned actions/checkout found: {pins:?}"
    );
    let split: Vec<_> = pins.iter().filter(|(_, by_pin)| by_pin.len() > 1).collect();
    assert!(
        split.is_empty(),
        "actions pinned to different SHAs or versions across files: {split:#?}"
    );
}

/// The checker itself: each rule fires on a workflow that breaks it, and names the fix.
#[test]
fn the_hardening_check_reports_each_kind_of_problem() {
    let bad = r#"
on: push
permissions:
  contents: read
  id-token: write
  deployments: write
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: docker/login-action@c94ce9fb468520275223c153574b00df6fe4bcc9
      - uses: ecs-deploy-action/ecs-deploy-action@v1
        id: deploy
      - run: echo "${{ steps.deploy.outputs.image }}"
"#;
    let problems = workflow_problems("bad.yml", bad);
    let expect = [
        "`uses: actions/checkout@v4` is not pinned: use the tag's full commit SHA, `@<sha> # v4`",
        "has no `# vX.Y.Z` comment",
        "actions/checkout without `persist-credentials: false`",
        "inside `run:` is spliced into the script",
        "`id-token: write` but no step assumes a role by OIDC",
        "`deployments: write` but no step reports GitHub Deployments",
    ];
    for needle in expect {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "expected a problem containing {needle:?}, got {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");

    let no_permissions = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: true\n";
    let problems = workflow_problems("bare.yml", no_permissions);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("no workflow-level `permissions:`"));

    let good = r#"
on: push
permissions: {}
jobs:
  deploy:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0
        with:
          persist-credentials: false
      - uses: aws-actions/configure-aws-credentials@7474bc4690e29a8392af63c5b98e7449536d5c3a # v4.3.1
      - id: deploy
        uses: ecs-deploy-action/ecs-deploy-action@v1
      - env:
          IMAGE: ${{ steps.deploy.outputs.image }}
        run: echo "$IMAGE"
"#;
    assert_eq!(workflow_problems("good.yml", good), Vec::<String>::new());
}
