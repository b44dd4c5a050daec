//! The README is the front door and the book under `docs/` the manual: these tests keep both
//! true as the code changes. Every input and output of the binary is in the book's tables, every
//! source file is in its architecture page, the README fits on a page and gives the two
//! fresh-machine commands, and every link to a local file or heading resolves (mdbook itself does
//! not check links).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ecs_deploy::inputs::{INPUTS, OUTPUTS};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::support::repo_root;

/// Where the repository's files are shown on GitHub: links of this form are checked as local
/// paths (the book cannot link out of `docs/src` by a relative path).
const REPO_BLOB: &str = "https://github.com/ecs-deploy-action/ecs-deploy-action/blob/main/";
const REPO_TREE: &str = "https://github.com/ecs-deploy-action/ecs-deploy-action/tree/main/";

/// The most lines the README may have: the front door fits on a page, the manual is the book.
const README_MAX_LINES: usize = 400;

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md is readable")
}

/// The text of one page of the book, `docs/src/{page}` (the tests that check copies of code
/// output, policies and workflows in the manual read them here).
pub(crate) fn book_page(page: &str) -> String {
    let path = repo_root().join("docs/src").join(page);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every markdown page of the book, as (path, text).
pub(crate) fn readme_and_book() -> Vec<(PathBuf, String)> {
    let mut files = vec![repo_root().join("README.md")];
    markdown_files(&repo_root().join("docs/src"), &mut files);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("{} is not readable: {e}", p.display()));
            (p, text)
        })
        .collect()
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The first cells of a markdown table's rows whose first cell is code (`| `name` | ...`):
/// the cell's first code span (the generated inputs reference marks some *run* or *secret*).
fn table_cells(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .filter_map(|c| c.trim().strip_prefix('`')?.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_book_tables_list_every_input_and_every_output() {
    let inputs = table_cells(&book_page("inputs.md"));
    let outputs = table_cells(&book_page("inputs-and-outputs.md"));
    let missing: Vec<String> = INPUTS
        .iter()
        .map(|i| i.name)
        .filter(|name| !inputs.iter().any(|c| c == name))
        .map(|name| format!("input {name} (docs/src/inputs.md)"))
        .chain(
            OUTPUTS
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| !outputs.iter().any(|c| c == name))
                .map(|name| format!("output {name} (docs/src/inputs-and-outputs.md)")),
        )
        .collect();
    assert!(missing.is_empty(), "the book's tables miss: {missing:?}");
}

/// Every `.rs` file under `dir`, recursively (the layout check and the IAM policy scan).
pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_architecture_page_names_every_source_file() {
    let layout = book_page("architecture.md");
    let mut files = Vec::new();
    rust_files(&repo_root().join("src"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(repo_root().join("src"))
                .expect("under src")
                .display()
                .to_string()
        })
        .filter(|rel| {
            let name = Path::new(rel)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !layout.contains(rel.as_str()) && !layout.contains(&name)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/src/architecture.md does not name: {missing:?}"
    );
}

#[test]
fn the_two_fresh_machine_commands_exist_and_are_executable() {
    use std::os::unix::fs::PermissionsExt;
    let text = readme();
    // Near the top: within the first 60 lines, before the quick start's workflow.
    let top: String = text.lines().take(60).collect::<Vec<_>>().join("\n");
    for command in ["scripts/demo.sh", "scripts/test.sh"] {
        assert!(
            top.contains(command),
            "the README's first 60 lines do not give {command}"
        );
        let meta = std::fs::metadata(repo_root().join(command)).expect("script exists");
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{command} is not executable"
        );
    }
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run must run the README's test command"
    );
    assert!(
        ci.contains("scripts/book.sh"),
        ".ci/run must build the book (scripts/book.sh)"
    );
}

#[test]
fn the_readme_fits_on_a_page_with_a_contents_a_quick_start_and_a_migration_table() {
    let text = readme();
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, at most {README_MAX_LINES}: move the rest into docs/src"
    );
    assert!(
        text.contains("## Contents"),
        "the README has a table of contents"
    );
    let quick = text
        .split("\n## Quick start")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README has a Quick start section");
    let workflow = quick
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the quick start has a yaml workflow");
    assert!(
        workflow.contains("\nconcurrency:"),
        "the quick start's workflow has the concurrency block every example has"
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(workflow).expect("the quick start is YAML");
    let step = doc["jobs"]["deploy"]["steps"]
        .as_sequence()
        .and_then(|steps| {
            steps.iter().find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("ecs-deploy-action/ecs-deploy-action@"))
            })
        })
        .expect("the quick start's deploy job uses this action");
    let with = step["with"].as_mapping().expect("the step has a with:");
    assert!(
        with.len() <= 3,
        "the quick start's step has {} inputs: three should do",
        with.len()
    );
    for anchor in [
        "aws-actions/amazon-ecs-deploy-task-definition",
        "aws-actions/amazon-ecs-render-task-definition",
        "aws-actions/amazon-ecr-login",
        "docker/build-push-action",
        "slackapi/slack-github-action",
    ] {
        assert!(
            table_cells(&text).iter().any(|c| c == anchor),
            "the README's migration table has no row for {anchor}"
        );
    }
}

#[test]
fn every_page_of_the_book_is_in_its_summary() {
    let summary = book_page("SUMMARY.md");
    let linked: BTreeSet<String> = links(&summary).into_iter().collect();
    let mut pages = Vec::new();
    markdown_files(&repo_root().join("docs/src"), &mut pages);
    let orphans: Vec<String> = pages
        .iter()
        .map(|p| {
            p.strip_prefix(repo_root().join("docs/src"))
                .expect("under docs/src")
                .display()
                .to_string()
        })
        .filter(|rel| rel != "SUMMARY.md" && !linked.contains(rel))
        .collect();
    assert!(
        orphans.is_empty(),
        "pages that docs/src/SUMMARY.md does not list (mdbook leaves them out): {orphans:?}"
    );
}

fn markdown_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES
}

/// Every link and image destination of a markdown text, as written.
fn links(text: &str) -> Vec<String> {
    Parser::new_ext(text, markdown_options())
        .filter_map(|event| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.into_string())
            }
            _ => None,
        })
        .collect()
}

/// The anchor a heading gets, as mdbook (and GitHub, for ASCII) makes it: lower case, spaces to
/// `-`, every character but letters, digits, `_` and `-` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_lowercase().collect::<String>())
            } else if c.is_whitespace() {
                Some("-".to_string())
            } else {
                None
            }
        })
        .collect()
}

/// The anchors of a markdown text's headings; a repeated heading gets `-1`, `-2`, ... as on
/// GitHub and in mdbook.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(text, markdown_options()) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = heading.take() {
                    let base = slug(&h);
                    let n = seen.entry(base.clone()).or_insert(0);
                    out.insert(if *n == 0 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    });
                    *n += 1;
                }
            }
            _ => {}
        }
    }
    out
}

/// What is wrong with one link of `from` (None when it resolves): a missing file, a missing
/// heading, or a book page linking out of the book.
fn broken(from: &Path, link: &str) -> Option<String> {
    let root = repo_root();
    let book = root.join("docs/src");
    let (target, anchor) = if let Some(rel) = link
        .strip_prefix(REPO_BLOB)
        .or_else(|| link.strip_prefix(REPO_TREE))
    {
        let (path, anchor) = rel.split_once('#').unwrap_or((rel, ""));
        (root.join(path), anchor)
    } else if link.contains("://") || link.starts_with("mailto:") {
        return None;
    } else {
        let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
        let target = if path.is_empty() {
            from.to_path_buf()
        } else {
            from.parent().expect("a file has a folder").join(path)
        };
        if from.starts_with(&book) && !normalize(&target).starts_with(&book) {
            return Some(format!(
                "`{link}` leaves the book: link to {REPO_BLOB}<path> instead"
            ));
        }
        (target, anchor)
    };
    let target = normalize(&target);
    if !target.exists() {
        return Some(format!("`{link}`: {} does not exist", target.display()));
    }
    if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
        let text = std::fs::read_to_string(&target).expect("readable target");
        if !anchors(&text).contains(anchor) {
            return Some(format!(
                "`{link}`: {} has no heading #{anchor}",
                target.display()
            ));
        }
    }
    None
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_internal_link_of_the_readme_and_the_book_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (path, text) in readme_and_book() {
        for link in links(&text) {
            checked += 1;
            if let Some(problem) = broken(&path, &link) {
                let rel = path.strip_prefix(repo_root()).unwrap_or(&path);
                problems.push(format!("{}: {problem}", rel.display()));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the parser reading the files?"
    );
    assert!(
        problems.is_empty(),
        "broken links:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_link_check_finds_a_missing_page_a_missing_heading_and_a_way_out_of_the_book() {
    let page = repo_root().join("docs/src/faults.md");
    assert_eq!(broken(&page, "iam.md#ecr-push"), None);
    assert_eq!(broken(&page, "deploying.md#rollback"), None);
    assert_eq!(
        broken(
            &page,
            "#faults-a-call-that-never-answers-throttling-a-cancelled-job"
        ),
        None
    );
    assert!(broken(&page, "nope.md").is_some_and(|p| p.contains("does not exist")));
    assert!(broken(&page, "iam.md#nope").is_some_and(|p| p.contains("no heading #nope")));
    assert!(broken(&page, "../../Cargo.toml").is_some_and(|p| p.contains("leaves the book")));
    assert_eq!(broken(&page, &format!("{REPO_BLOB}Cargo.toml")), None);
    assert!(broken(&page, &format!("{REPO_BLOB}nope.toml")).is_some());
    assert_eq!(broken(&page, "https://docs.aws.amazon.com/x"), None);
    assert_eq!(
        slug("Faults: a call that never answers, throttling, a cancelled job"),
        "faults-a-call-that-never-answers-throttling-a-cancelled-job"
    );
    assert_eq!(
        slug("Many apps, one job each: `plan-only`"),
        "many-apps-one-job-each-plan-only"
    );
    assert_eq!(
        anchors("# A\n\n## A\n\n```\n# not a heading\n```\n"),
        BTreeSet::from(["a".to_string(), "a-1".to_string()])
    );
}
