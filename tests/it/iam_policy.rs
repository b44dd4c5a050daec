//! The book's IAM policies (docs/src/iam.md) stay true to the code: every AWS operation `src/`
//! calls through an SDK client is allowed by the policy of the path that calls it (or, for the shared
//! modules, by some policy), and every action a policy allows is called, or is one of the few
//! that IAM checks without a call of ours (`NOT_CALLED`, each with its reason).

use crate::readme::{book_page, rust_files};
use crate::support::repo_root;
use std::collections::{BTreeMap, BTreeSet};

/// Actions a policy must allow that are no SDK call in `src/`, and why.
const NOT_CALLED: &[(&str, &str)] = &[
    (
        "ecs:TagResource",
        "IAM checks it when RunTask carries tags (run-task-tags) and when RegisterTaskDefinition carries the source revision's tags",
    ),
    (
        "iam:PassRole",
        "IAM checks it when a task definition names a task or execution role",
    ),
    (
        "codedeploy:RegisterApplicationRevision",
        "IAM checks it for the revision CreateDeployment registers",
    ),
    (
        "ecr:BatchGetImage",
        "the registry API: a manifest read (does the tag exist, its digest)",
    ),
    (
        "ecr:BatchCheckLayerAvailability",
        "the registry API: the push's HEAD of a layer",
    ),
    (
        "ecr:InitiateLayerUpload",
        "the registry API: the push's upload start",
    ),
    (
        "ecr:UploadLayerPart",
        "the registry API: the push's layer upload",
    ),
    (
        "ecr:CompleteLayerUpload",
        "the registry API: the push's upload end",
    ),
    (
        "ecr:PutImage",
        "the registry API: the push's manifest, a new tag on a manifest",
    ),
];

/// Source directories (under `src/`) whose calls belong to one policy of the book.
const PATH_OF: &[(&str, &str)] = &[
    ("image/", "ECR push"),
    ("deploy/rolling/", "Rolling update"),
    ("deploy/diagnosis.rs", "Diagnosis of a failed deploy"),
    ("deploy/codedeploy/", "CodeDeploy blue/green"),
    ("deploy/bluegreen/", "ECS blue/green"),
    ("deploy/run_task.rs", "One-off task"),
    ("deploy/kubernetes/", "EKS"),
    ("verify/", "Verification"),
];

/// The book's policies (docs/src/iam.md): its `## <name>` headings, each with its JSON block's
/// allowed actions.
fn book_policies() -> BTreeMap<String, BTreeSet<String>> {
    let text = book_page("iam.md");
    assert!(
        text.starts_with("# IAM permissions"),
        "docs/src/iam.md is the IAM permissions page"
    );
    let mut policies = BTreeMap::new();
    for part in text.split("\n## ").skip(1) {
        let name = part.lines().next().unwrap_or_default().trim().to_string();
        let json = part
            .split("```json\n")
            .nth(1)
            .and_then(|b| b.split("\n```").next())
            .unwrap_or_else(|| panic!("policy `{name}` has no ```json block"));
        let doc: serde_json::Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("policy `{name}` is not JSON: {e}"));
        let mut actions = BTreeSet::new();
        for st in doc["Statement"].as_array().expect("a Statement array") {
            assert_eq!(
                st["Effect"], "Allow",
                "policy `{name}`: Allow statements only"
            );
            match &st["Action"] {
                serde_json::Value::String(a) => {
                    actions.insert(a.clone());
                }
                serde_json::Value::Array(list) => {
                    actions.extend(list.iter().filter_map(|a| a.as_str().map(str::to_string)));
                }
                other => panic!("policy `{name}`: Action {other}"),
            }
        }
        policies.insert(name, actions);
    }
    policies
}

/// `describe_service_deployments` → `DescribeServiceDeployments`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

const VERBS: &[&str] = &[
    "batch_",
    "continue_",
    "create_",
    "delete_",
    "deregister_",
    "describe_",
    "get_",
    "list_",
    "put_",
    "register_",
    "run_",
    "start_",
    "stop_",
    "tag_",
    "update_",
];

/// The SDK operations a source text calls: `.op()` starting a line of a builder chain, or
/// `ecs.op()`/`ecr.op()`/… on a client; the operation names in PascalCase.
fn operations(text: &str) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (i, _) in code.match_indices('.') {
            let before = code[..i].trim_end();
            let on_client = ["ecs", "ecr", "codedeploy", "logs", "eks", "cloudwatch"]
                .iter()
                .any(|c| before.ends_with(c));
            if !(before.is_empty() || on_client) {
                continue;
            }
            let rest = &code[i + 1..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if rest[name.len()..].starts_with("()") && VERBS.iter().any(|v| name.starts_with(v)) {
                ops.insert(pascal(&name));
            }
        }
    }
    ops
}

/// Every operation of `src/`, with the files that call it (relative to `src/`).
fn source_operations() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let src = repo_root().join("src");
    rust_files(&src, &mut files);
    let mut ops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source");
        // Unit tests build requests of their own; only the code the binary runs counts.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let rel = f
            .strip_prefix(&src)
            .expect("under src")
            .display()
            .to_string();
        for op in operations(code) {
            ops.entry(op).or_default().insert(rel.clone());
        }
    }
    ops
}

/// The `service:Operation` actions of `actions` whose operation is `op`.
fn allows(actions: &BTreeSet<String>, op: &str) -> bool {
    actions.iter().any(|a| a.split(':').nth(1) == Some(op))
}

#[test]
fn the_scan_finds_the_calls_it_is_meant_to_find() {
    let ops = operations(
        "    aws.ecs\n        .describe_services()\n        .send()\n    ecs.describe_task_definition()\n    // .stop_task()\n    let x = foo.get_thing();\n",
    );
    assert_eq!(
        ops,
        BTreeSet::from([
            "DescribeServices".to_string(),
            "DescribeTaskDefinition".into()
        ])
    );
}

#[test]
fn every_aws_operation_the_code_calls_is_in_the_book_policy_of_its_path() {
    let policies = book_policies();
    for (_, name) in PATH_OF {
        assert!(
            policies.contains_key(*name),
            "docs/src/iam.md has no policy `{name}`"
        );
    }
    let all: BTreeSet<String> = policies.values().flatten().cloned().collect();
    let ops = source_operations();
    assert!(
        ops.len() >= 25,
        "the scan found only {} operations: {ops:?}",
        ops.len()
    );
    let mut missing = Vec::new();
    for (op, files) in &ops {
        for file in files {
            let owner = PATH_OF.iter().find(|(dir, _)| file.starts_with(dir));
            let ok = match owner {
                Some((_, name)) => allows(&policies[*name], op),
                None => allows(&all, op),
            };
            if !ok {
                let policy = owner.map_or("any policy", |(_, n)| n);
                missing.push(format!("{op} (called in src/{file}) is not in {policy}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the IAM policies of docs/src/iam.md miss: {missing:#?}"
    );
}

#[test]
fn every_action_a_book_policy_allows_is_called_or_checked_by_iam_on_its_own() {
    let policies = book_policies();
    let ops = source_operations();
    let not_called: BTreeMap<&str, &str> = NOT_CALLED.iter().copied().collect();
    let mut unused = Vec::new();
    for (name, actions) in &policies {
        for action in actions {
            let op = action.split(':').nth(1).unwrap_or_default();
            if !ops.contains_key(op) && !not_called.contains_key(action.as_str()) {
                unused.push(format!("{action} in `{name}`"));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "the policies of docs/src/iam.md allow what nothing calls: {unused:#?}"
    );
    let all: BTreeSet<&String> = policies.values().flatten().collect();
    for (action, why) in NOT_CALLED {
        assert!(
            all.contains(&action.to_string()),
            "{action} ({why}) is in no policy of docs/src/iam.md"
        );
    }
}
