//! The README is the front door: these tests keep it true as the code changes. Every input and
//! output of the binary is in its tables, every source file is in its layout, and the two
//! fresh-machine commands it gives exist and are executable.

use std::path::{Path, PathBuf};

use ecs_deploy::inputs::{INPUTS, OUTPUTS};

use crate::support::{FEATURE_PAGES, repo_root};

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md is readable")
}

/// The README followed by the feature pages, for the checks a feature page's own tables and
/// architecture section may answer.
fn readme_and_pages() -> String {
    let mut text = readme();
    for page in FEATURE_PAGES {
        text.push('\n');
        text.push_str(&std::fs::read_to_string(repo_root().join(page)).expect(page));
    }
    text
}

/// The README's markdown table rows: lines starting with `| `.
fn table_cells(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .map(|c| c.trim().trim_matches('`').to_string())
        .collect()
}

#[test]
fn the_readme_tables_list_every_input_and_every_output() {
    let cells = table_cells(&readme_and_pages());
    let missing: Vec<&str> = INPUTS
        .iter()
        .map(|i| i.name)
        .chain(OUTPUTS.iter().map(|(name, _)| *name))
        .filter(|name| !cells.iter().any(|c| c == name))
        .collect();
    assert!(missing.is_empty(), "README tables miss: {missing:?}");
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
fn the_readme_layout_names_every_source_file() {
    let readme = readme();
    let mut layout = readme
        .split("## Architecture")
        .nth(1)
        .expect("README has an Architecture section")
        .to_string();
    for page in FEATURE_PAGES {
        let text = std::fs::read_to_string(repo_root().join(page)).expect(page);
        if let Some(section) = text.split("## Architecture").nth(1) {
            layout.push_str(section.split("\n## ").next().unwrap_or_default());
        }
    }
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
        "README's architecture section does not name: {missing:?}"
    );
}

#[test]
fn the_two_fresh_machine_commands_exist_and_are_executable() {
    use std::os::unix::fs::PermissionsExt;
    let text = readme();
    for command in ["scripts/demo.sh", "scripts/test.sh"] {
        assert!(text.contains(command), "README does not give {command}");
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
}
