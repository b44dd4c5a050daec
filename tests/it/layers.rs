//! The module layout keeps its rules: no import circle between top-level modules, `report/`
//! never imports `deploy/` or `image/` (and they never import `report/`), `runner/` imports
//! nothing above it, the deploy strategies never import each other, and each reads only its
//! part of the settings. Read from the sources' `crate::` paths and `settings.` fields, so a
//! change that breaks a rule fails here, in CI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module paths a file names with `crate::` (also inside `use crate::{a, b::c}` groups), as
/// lists of segments. Comments are skipped.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let preceded = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        rest = &rest[i + "crate::".len()..];
        if preceded {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c}`: each top-level item of the group.
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let segs = segments(item.trim());
                if !segs.is_empty() {
                    out.push(segs);
                }
            }
        } else {
            out.push(segments(rest));
        }
    }
    out
}

/// `a::b::c...` at the start of `s`, up to the first character that is not part of a path.
fn segments(s: &str) -> Vec<String> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    s[..end]
        .split("::")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// The module a source file belongs to, as segments below `src/` (`deploy/rolling/mod.rs` →
/// `deploy`, `rolling`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("below src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every (from, to) pair of modules at `depth` segments, with the file that makes it.
fn edges(depth: usize) -> BTreeMap<(String, String), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for file in sources(&src) {
        let module = module_of(&src, &file);
        if module.len() < depth || ["lib", "main"].contains(&module[0].as_str()) {
            continue;
        }
        let from = module[..depth].join("::");
        let text = std::fs::read_to_string(&file).expect("read source");
        for path in crate_paths(&text) {
            if path.len() < depth {
                continue;
            }
            let to = path[..depth].join("::");
            if to != from {
                out.entry((from.clone(), to))
                    .or_insert_with(|| file.display().to_string());
            }
        }
    }
    out
}

/// A circle among `edges`, if there is one, as the modules along it.
fn find_circle(edges: &BTreeMap<(String, String), String>) -> Option<Vec<String>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        graph.entry(from).or_default().insert(to);
    }
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| *n == node) {
            let mut circle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, &graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_circle_finder_finds_a_circle_and_passes_a_tree() {
    let e = |pairs: &[(&str, &str)]| -> BTreeMap<(String, String), String> {
        pairs
            .iter()
            .map(|(a, b)| ((a.to_string(), b.to_string()), String::new()))
            .collect()
    };
    assert_eq!(
        find_circle(&e(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(find_circle(&e(&[("a", "b"), ("a", "c"), ("b", "c")])), None);
    assert_eq!(
        crate_paths("use crate::{error::Error, plan::AppPlan};\n// crate::deploy\nx::crate::y"),
        vec![vec!["error", "Error"], vec!["plan", "AppPlan"]]
    );
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let edges = edges(1);
    assert!(
        edges.len() > 20,
        "the import reader found too few edges: {edges:?}"
    );
    if let Some(circle) = find_circle(&edges) {
        let why: Vec<String> = circle
            .windows(2)
            .map(|w| {
                let file = &edges[&(w[0].clone(), w[1].clone())];
                format!("{} -> {} ({file})", w[0], w[1])
            })
            .collect();
        panic!("import circle: {}", why.join(", "));
    }
}

#[test]
fn report_and_the_pipeline_point_one_way_and_runner_is_the_floor() {
    let edges = edges(1);
    let forbidden = [
        ("report", "deploy"),
        ("report", "image"),
        ("deploy", "report"),
        ("image", "report"),
        ("outcome", "deploy"),
        ("outcome", "report"),
    ];
    for (from, to) in forbidden {
        let key = (from.to_string(), to.to_string());
        assert!(
            !edges.contains_key(&key),
            "{from} imports {to} ({})",
            edges[&key]
        );
    }
    let above_runner = [
        "deploy",
        "image",
        "report",
        "plan",
        "preflight",
        "changes",
        "outcome",
    ];
    for to in above_runner {
        let key = ("runner".to_string(), to.to_string());
        assert!(
            !edges.contains_key(&key),
            "runner imports {to} ({})",
            edges[&key]
        );
    }
}

#[test]
fn deploy_strategies_never_import_each_other() {
    let edges = edges(2);
    let strategies = [
        "deploy::rolling",
        "deploy::codedeploy",
        "deploy::bluegreen",
        "deploy::kubernetes",
    ];
    for from in strategies {
        for to in strategies.iter().filter(|t| **t != from) {
            let key = (from.to_string(), to.to_string());
            assert!(
                !edges.contains_key(&key),
                "{from} imports {to} ({})",
                edges[&key]
            );
        }
    }
}

/// The settings parts a strategy's sources read (`settings.ecs`, `s.rollout`, …), with the
/// first line that reads each.
fn settings_parts_read(dir: &Path) -> BTreeMap<String, String> {
    const PARTS: [&str; 9] = [
        "image",
        "rollout",
        "ecs",
        "codedeploy",
        "kubernetes",
        "verify",
        "deployment",
        "paths",
        "notices",
    ];
    let mut read = BTreeMap::new();
    for file in sources(dir) {
        let text = std::fs::read_to_string(&file).expect("read source");
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for holder in ["settings.", "s."] {
                let mut rest = line;
                while let Some(at) = rest.find(holder) {
                    let before = rest[..at].chars().next_back();
                    let after = &rest[at + holder.len()..];
                    rest = after;
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let name: String = after
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if PARTS.contains(&name.as_str()) {
                        read.entry(name)
                            .or_insert_with(|| format!("{}: {}", file.display(), line.trim()));
                    }
                }
            }
        }
    }
    read
}

/// Each strategy reads only its part of an app's settings: the rollout part every path shares,
/// the verify gate, and its own target's part (ECS, CodeDeploy, Kubernetes). A strategy that
/// reaches into the image build's settings or another target's fails here.
#[test]
fn each_strategy_reads_only_its_part_of_the_settings() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/deploy");
    let allowed: [(&str, &[&str]); 4] = [
        ("rolling", &["rollout", "verify", "ecs"]),
        ("codedeploy", &["rollout", "verify", "ecs", "codedeploy"]),
        ("bluegreen", &["rollout", "verify", "ecs"]),
        ("kubernetes", &["rollout", "verify", "kubernetes"]),
    ];
    for (strategy, parts) in allowed {
        let read = settings_parts_read(&src.join(strategy));
        assert!(
            read.contains_key("rollout"),
            "{strategy}: the settings reader found no `settings.rollout` at all: is it still reading?"
        );
        for (part, at) in &read {
            assert!(
                parts.contains(&part.as_str()),
                "deploy/{strategy} reads the `{part}` settings, which are not its part ({at})"
            );
        }
    }
}

/// What every path shares (the poll loop and its batchers, the timing, the strategy shape) sits
/// below the strategies: it imports none of them, so a path's own policy never leaks into it.
#[test]
fn the_shared_deploy_modules_import_no_strategy() {
    let edges = edges(2);
    let shared = ["deploy::poll", "deploy::timing", "deploy::strategy"];
    let strategies = [
        "deploy::rolling",
        "deploy::codedeploy",
        "deploy::bluegreen",
        "deploy::kubernetes",
    ];
    for from in shared {
        for to in strategies {
            let key = (from.to_string(), to.to_string());
            assert!(
                !edges.contains_key(&key),
                "{from} imports {to} ({})",
                edges[&key]
            );
        }
    }
}

/// Every strategy folder has the same three parts, so a reader finds each phase in the same
/// place: `mod.rs` (the strategy), `progress.rs` (the pure reading of what the target says),
/// `rollback.rs` (taking it back).
#[test]
fn every_strategy_folder_holds_the_strategy_its_progress_and_its_rollback() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/deploy");
    for strategy in ["rolling", "codedeploy", "bluegreen", "kubernetes"] {
        for part in ["mod.rs", "progress.rs", "rollback.rs"] {
            let file = deploy.join(strategy).join(part);
            assert!(file.is_file(), "{} is missing", file.display());
        }
        let strategy_file =
            std::fs::read_to_string(deploy.join(strategy).join("mod.rs")).expect("read mod.rs");
        assert!(
            strategy_file.contains("impl Strategy for "),
            "deploy/{strategy}/mod.rs holds no `impl Strategy for`"
        );
    }
}
