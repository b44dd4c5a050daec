//! action.yml and the workflow files against the binary's own contract tables
//! (`ecs_deploy::inputs::INPUTS` / `OUTPUTS`): the names users write in `with:` and read from
//! `steps.<id>.outputs` cannot drift from what the binary accepts and writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ecs_deploy::inputs::{INPUTS, OUTPUTS};
use serde::Deserialize;

use crate::support::repo_root;

/// The published form of this action in `uses:` (owner/name placeholder, see action.yml).
pub(crate) const ACTION_REPO: &str = "ecs-deploy-action/ecs-deploy-action";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionYml {
    name: String,
    description: String,
    author: Option<String>,
    branding: Branding,
    inputs: BTreeMap<String, ActionInput>,
    outputs: BTreeMap<String, ActionOutput>,
    runs: Runs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Branding {
    icon: String,
    color: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionInput {
    description: String,
    required: Option<bool>,
    /// Must stay absent: see `no_input_declares_a_default`.
    default: Option<serde_yaml::Value>,
    #[serde(rename = "deprecationMessage")]
    deprecation_message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionOutput {
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Runs {
    using: String,
    image: String,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
}

fn action_yml() -> ActionYml {
    let path = repo_root().join("action.yml");
    let text = std::fs::read_to_string(&path).expect("read action.yml");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid: {e}", path.display()))
}

#[test]
fn action_yml_declares_exactly_the_inputs_the_binary_accepts() {
    let action = action_yml();
    let declared: BTreeSet<&str> = action.inputs.keys().map(String::as_str).collect();
    let accepted: BTreeSet<&str> = INPUTS.iter().map(|s| s.name).collect();
    let unknown: Vec<_> = declared.difference(&accepted).collect();
    let missing: Vec<_> = accepted.difference(&declared).collect();
    assert!(
        unknown.is_empty() && missing.is_empty(),
        "action.yml and INPUTS differ.\n  in action.yml, unknown to the binary: {unknown:?}\n  \
         accepted by the binary, missing from action.yml: {missing:?}"
    );
}

#[test]
fn action_yml_declares_exactly_the_outputs_the_binary_writes() {
    let action = action_yml();
    let declared: BTreeSet<&str> = action.outputs.keys().map(String::as_str).collect();
    let written: BTreeSet<&str> = OUTPUTS.iter().map(|(name, _)| *name).collect();
    let unknown: Vec<_> = declared.difference(&written).collect();
    let missing: Vec<_> = written.difference(&declared).collect();
    assert!(
        unknown.is_empty() && missing.is_empty(),
        "action.yml and OUTPUTS differ.\n  in action.yml, never written: {unknown:?}\n  \
         written by the binary, missing from action.yml: {missing:?}"
    );
}

/// The runner sets `INPUT_<NAME>` for every input with a `default:`, which would hide the same
/// key in the `config` file; the binary applies the defaults itself.
#[test]
fn no_input_declares_a_default_or_is_required() {
    let action = action_yml();
    let with_default: Vec<&str> = action
        .inputs
        .iter()
        .filter(|(_, i)| i.default.is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        with_default.is_empty(),
        "these inputs declare `default:` in action.yml; write \"Default: X\" in the description \
         instead: {with_default:?}"
    );
    let required: Vec<&str> = action
        .inputs
        .iter()
        .filter(|(_, i)| i.required == Some(true))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        required.is_empty(),
        "the `config` file may give any input, so none is required by the runner: {required:?}"
    );
}

#[test]
fn every_input_description_names_the_binarys_default() {
    let action = action_yml();
    for spec in INPUTS {
        let input = &action.inputs[spec.name];
        assert!(
            !input.description.trim().is_empty(),
            "input {} has an empty description",
            spec.name
        );
        assert!(
            input.deprecation_message.is_none(),
            "input {} is deprecated in action.yml but not in INPUTS",
            spec.name
        );
        if let Some(default) = spec.default {
            let expected = format!("Default: {default}");
            assert!(
                input.description.contains(&expected),
                "the description of input {} must say {expected:?} (the binary's default), got {:?}",
                spec.name,
                input.description
            );
        }
    }
    for (name, _) in OUTPUTS {
        assert!(
            !action.outputs[*name].description.trim().is_empty(),
            "output {name} has an empty description"
        );
    }
}

/// Between releases action.yml builds this commit's Dockerfile; a release commit names the
/// published image by digest (release.yml writes it), never by a tag that can move.
#[test]
fn action_runs_the_dockerfile_or_a_digest_pinned_image() {
    let action = action_yml();
    assert_eq!(action.runs.using, "docker");
    let image = &action.runs.image;
    assert!(
        ecs_deploy::inputs::valid_image(image),
        "runs.image is {image:?}: `Dockerfile`, or docker://…@sha256:<digest> on a release commit"
    );
    if image != "Dockerfile" {
        assert!(
            image.starts_with(&format!(
                "docker://ghcr.io/{ACTION_REPO}:v{}@sha256:",
                env!("CARGO_PKG_VERSION")
            )),
            "a release commit runs its own version's image: {image}"
        );
    }
    assert!(
        action.runs.args.is_none() && action.runs.env.is_none(),
        "inputs reach the binary as INPUT_* only"
    );
    assert!(!action.name.is_empty() && !action.description.is_empty());
    assert!(action.author.is_some());
    assert!(!action.branding.icon.is_empty() && !action.branding.color.is_empty());
}

/// action.yml is generated from the spec table (`scripts/contract.sh`); any hand edit, or a
/// table row without its action.yml entry, fails here with the command that fixes it.
#[test]
fn action_yml_is_the_one_generated_from_the_spec_table() {
    let path = repo_root().join("action.yml");
    let text = std::fs::read_to_string(&path).expect("read action.yml");
    let expected = ecs_deploy::inputs::action_yml(&action_yml().runs.image);
    assert!(
        text == expected,
        "action.yml differs from the one generated from src/inputs/spec.rs: run \
         scripts/contract.sh (first difference at line {})",
        first_difference(&text, &expected)
    );
}

/// The book's inputs reference is generated from the same table.
#[test]
fn the_inputs_reference_is_the_one_generated_from_the_spec_table() {
    let path = repo_root().join("docs/src/inputs.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let expected = ecs_deploy::inputs::inputs_md();
    assert!(
        text == expected,
        "docs/src/inputs.md differs from the one generated from src/inputs/spec.rs: run \
         scripts/contract.sh (first difference at line {})",
        first_difference(&text, &expected)
    );
}

fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
        + 1
}

/// The action.yml files of the steps this action replaces, as published (fixtures/anchors/).
const ANCHORS: &[&str] = &[
    "amazon-ecs-deploy-task-definition",
    "amazon-ecs-render-task-definition",
    "amazon-ecr-login",
    "build-push-action",
    "slack-github-action",
];

/// A step copied from any of the anchors keeps every input and output name: each is declared
/// here (honoured, or refused saying what to use instead), so the runner never drops one with a
/// mere warning.
#[test]
fn every_input_and_output_of_the_anchor_actions_is_declared() {
    let action = action_yml();
    let mut missing = Vec::new();
    for anchor in ANCHORS {
        let path = repo_root().join(format!("fixtures/anchors/{anchor}.yml"));
        let text = std::fs::read_to_string(&path).expect("anchor action.yml");
        let theirs: serde_yaml::Value = serde_yaml::from_str(&text).expect("anchor YAML");
        for (section, ours) in [
            ("inputs", action.inputs.keys().collect::<BTreeSet<_>>()),
            ("outputs", action.outputs.keys().collect::<BTreeSet<_>>()),
        ] {
            let names = theirs[section].as_mapping().expect("a mapping");
            assert!(!names.is_empty(), "{anchor}: no {section}");
            for name in names.keys().filter_map(|k| k.as_str()) {
                if !ours.contains(&name.to_string()) {
                    missing.push(format!("{anchor} {section}: {name}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "declared by a replaced action, not here (add a row to src/inputs/spec.rs: honoured, or \
         refused with what to use instead): {missing:#?}"
    );
}

/// The release commits the published image's digest into action.yml: the line it rewrites is
/// the one the generator writes between releases, and the result is what the generator writes
/// for that digest.
#[test]
fn the_release_pins_the_image_digest_where_the_generator_puts_it() {
    let release = std::fs::read_to_string(repo_root().join(".github/workflows/release.yml"))
        .expect("release.yml");
    assert!(
        release.contains(r#"sed -i "s|^  image: Dockerfile\$|  image: $pinned|" action.yml"#)
            && release.contains(r#"pinned="docker://$IMAGE:v$VERSION@$DIGEST""#),
        "release.yml rewrites runs.image to the digest-pinned reference"
    );
    let between = ecs_deploy::inputs::action_yml("Dockerfile");
    let pinned_ref = format!(
        "docker://ghcr.io/{ACTION_REPO}:v{}@sha256:{}",
        env!("CARGO_PKG_VERSION"),
        "0f".repeat(32)
    );
    let by_sed = between.replace(
        "\n  image: Dockerfile\n",
        &format!("\n  image: {pinned_ref}\n"),
    );
    assert_eq!(by_sed, ecs_deploy::inputs::action_yml(&pinned_ref));
}

/// Every workflow file of the repository: the project's own and the examples users copy.
pub(crate) fn workflow_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [".github/workflows", "examples/workflows"] {
        let dir = repo_root().join(dir);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path());
        files.extend(entries.filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml")));
    }
    files.sort();
    files
}

/// True for a `uses:` naming this action (published form, or `./` in this repository).
pub(crate) fn is_this_action(uses: &str) -> bool {
    uses == "./" || uses.starts_with(&format!("{ACTION_REPO}@"))
}

/// The steps of every job that use this action: (job id, step `with:` map).
fn action_steps(path: &Path, workflow: &serde_yaml::Value) -> Vec<(String, serde_yaml::Mapping)> {
    let jobs = workflow
        .get("jobs")
        .and_then(|j| j.as_mapping())
        .unwrap_or_else(|| panic!("{}: no `jobs:` mapping", path.display()));
    let mut found = Vec::new();
    for (job_id, job) in jobs {
        let job_id = job_id.as_str().unwrap_or("?").to_string();
        let steps = job.get("steps").and_then(|s| s.as_sequence());
        for step in steps.into_iter().flatten() {
            let uses = step.get("uses").and_then(|u| u.as_str()).unwrap_or("");
            if is_this_action(uses) {
                let with = step
                    .get("with")
                    .and_then(|w| w.as_mapping())
                    .cloned()
                    .unwrap_or_default();
                found.push((job_id.clone(), with));
            }
        }
    }
    found
}

#[test]
fn every_workflow_file_is_valid_yaml_with_triggers_and_jobs() {
    let files = workflow_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["ci.yml", "release.yml"] {
        assert!(names.iter().any(|n| n == expected), "missing {expected}");
    }
    assert!(
        files.len() >= 6,
        "expected ci, release and four examples: {names:?}"
    );
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let wf: serde_yaml::Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
        assert!(wf.get("on").is_some(), "{}: no `on:`", path.display());
        let jobs = wf.get("jobs").and_then(|j| j.as_mapping());
        assert!(
            jobs.is_some_and(|j| !j.is_empty()),
            "{}: no jobs",
            path.display()
        );
        for (id, job) in jobs.unwrap() {
            assert!(
                job.get("runs-on").is_some() || job.get("uses").is_some(),
                "{}: job {id:?} has no runs-on",
                path.display()
            );
        }
    }
}

#[test]
fn every_use_of_this_action_passes_only_inputs_the_binary_accepts() {
    let accepted: BTreeSet<&str> = INPUTS.iter().map(|s| s.name).collect();
    let mut uses = 0;
    for path in workflow_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let wf: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        for (job, with) in action_steps(&path, &wf) {
            uses += 1;
            for key in with.keys() {
                let key = key.as_str().unwrap_or("<not a string>");
                assert!(
                    accepted.contains(key),
                    "{} job {job}: input {key:?} does not exist (known: see action.yml)",
                    path.display()
                );
            }
        }
    }
    assert!(uses >= 4, "the examples use the action only {uses} times");
}

#[test]
fn every_example_workflow_uses_the_published_action() {
    for path in workflow_files()
        .into_iter()
        .filter(|p| p.starts_with(repo_root().join("examples")))
    {
        let text = std::fs::read_to_string(&path).unwrap();
        let wf: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let steps = action_steps(&path, &wf);
        assert!(
            !steps.is_empty(),
            "{} never uses the action",
            path.display()
        );
        assert!(
            text.contains(&format!("{ACTION_REPO}@v1")),
            "{}: examples show the published form `{ACTION_REPO}@v1`",
            path.display()
        );
    }
}

/// Every `@vN` ref of this action in `text`: the N of `ecs-deploy-action/ecs-deploy-action@vN`.
fn major_refs(text: &str) -> Vec<String> {
    text.split(&format!("{ACTION_REPO}@v"))
        .skip(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect())
        .collect()
}

#[test]
fn the_major_tag_the_docs_show_is_the_one_the_release_of_this_version_moves() {
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let release = std::fs::read_to_string(repo_root().join(".github/workflows/release.yml"))
        .expect("release.yml");
    assert!(
        release.contains("type=semver,pattern=v{{major}}")
            && release.contains("major=v${version%%.*}")
            && release.contains("refs+=(\"refs/tags/$MAJOR\")")
            && release.contains("git push -f origin \"${refs[@]}\""),
        "release.yml pushes the image tag v<major> and moves the git tag v<major>"
    );
    let mut files = workflow_files();
    files.extend(
        crate::readme::readme_and_book()
            .into_iter()
            .map(|(path, _)| path),
    );
    let mut seen = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        for n in major_refs(&text) {
            seen += 1;
            assert_eq!(
                n,
                major,
                "{} shows `{ACTION_REPO}@v{n}`, but this version's release (Cargo.toml {}) \
                 moves v{major}",
                path.display(),
                env!("CARGO_PKG_VERSION")
            );
        }
    }
    assert!(
        seen > 0,
        "the README, the book and the examples show a `@v<major>` ref"
    );
}
