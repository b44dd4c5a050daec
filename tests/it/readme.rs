//! The README is the front door: these tests keep it true as the code changes. Every input and
//! output of the binary is in its tables, every source file is in its layout, and the two
//! fresh-machine commands it gives exist and are executable.

use std::path::{Path, PathBuf};

use ecs_deploy::inputs::{INPUTS, OUTPUTS};

use crate::support::repo_root;

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md is readable")
}

/// The names in the first column of markdown table rows (lines starting with `` | ` ``): the
/// first `code` span of the cell (the inputs reference marks some with *run* or *secret*).
fn table_cells(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .filter_map(|c| c.trim().strip_prefix('`')?.split('`').next())
        .map(str::to_string)
        .collect()
}

/// Every input and output is documented: in the README's tables, or in the book's inputs
/// reference (docs/src/inputs.md, generated from the spec table; tests/it/action_contract.rs
/// checks it is the generated one).
#[test]
fn the_readme_tables_list_every_input_and_every_output() {
    let reference =
        std::fs::read_to_string(repo_root().join("docs/src/inputs.md")).unwrap_or_default();
    let cells = table_cells(&format!("{}\n{reference}", readme()));
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
    let text = readme();
    let layout = text
        .split("## Architecture")
        .nth(1)
        .expect("README has an Architecture section");
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
