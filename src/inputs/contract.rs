//! action.yml's inputs and outputs and the book's inputs reference, written from the spec table:
//! the contract has one source, and `ecs-deploy contract …` (hidden) prints both documents.

use std::fmt::Write as _;

use super::spec::{GROUPS, INPUTS, InputSpec, OUTPUTS};

/// What action.yml says before its inputs: name, description, branding.
const ACTION_HEAD: &str = r#"name: ECS Deploy (build, push, deploy, notify)
description: >-
  From "a release was merged" to "the new version is live on Amazon ECS, and the team was told":
  decides from the event, reads the version from package.json, builds and pushes the image to
  ECR, deploys (rolling, CodeDeploy blue/green or ECS blue/green), waits, rolls back, and reports
  to Slack, Discord and GitHub.
author: ecs-deploy-action
branding:
  icon: upload-cloud
  color: orange
"#;

/// The inputs of the table in groups: (title, inputs), in the table's order.
pub(crate) fn grouped() -> Vec<(&'static str, Vec<&'static InputSpec>)> {
    let mut groups: Vec<(&'static str, Vec<&'static InputSpec>)> = Vec::new();
    for spec in INPUTS {
        match GROUPS.iter().find(|(first, _)| *first == spec.name) {
            Some((_, title)) => groups.push((title, vec![spec])),
            None => match groups.last_mut() {
                Some((_, members)) => members.push(spec),
                None => groups.push(("Inputs", vec![spec])),
            },
        }
    }
    groups
}

/// An input's description in action.yml: its help, its default, and whether it is masked.
pub(crate) fn description(spec: &InputSpec) -> String {
    let mut text = if spec.is_refused() {
        format!("Refused: {}", spec.help)
    } else {
        spec.help.to_string()
    };
    if let Some(default) = spec.default {
        let _ = write!(text, ". Default: {default}");
    }
    if spec.secret {
        text.push_str(" (secret: masked in every log)");
    }
    text
}

/// A YAML scalar for any text: double-quoted with JSON's escapes (YAML reads JSON strings), or
/// single-quoted when the text has double quotes and no single ones (easier to read).
fn yaml_string(text: &str) -> String {
    if text.contains('"') && !text.contains('\'') && !text.contains('\\') {
        format!("'{text}'")
    } else {
        serde_json::Value::String(text.to_string()).to_string()
    }
}

/// action.yml, whole: `image` is what `runs.image` names (a digest-pinned `docker://` reference
/// on a release commit, `Dockerfile` between releases).
pub fn action_yml(image: &str) -> String {
    let mut out = String::from(
        "# GENERATED from src/inputs/spec.rs by `ecs-deploy contract action-yml` (scripts/contract.sh):\n\
         # edit the table, not this file; tests/it/action_contract.rs fails when they differ.\n\
         #\n\
         # No input declares `default:` on purpose: the runner sets INPUT_<NAME> for every input that\n\
         # has a default, and a value set that way would hide the same key in the `config` file. The\n\
         # binary applies the defaults itself; each description says what the default is.\n",
    );
    out.push_str(ACTION_HEAD);
    out.push_str("\ninputs:\n");
    for (i, (title, members)) in grouped().iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "  # {title}");
        for spec in members {
            let _ = writeln!(out, "  {}:", spec.name);
            let _ = writeln!(out, "    description: {}", yaml_string(&description(spec)));
            out.push_str("    required: false\n");
        }
    }
    out.push_str("\noutputs:\n");
    for (name, help) in OUTPUTS {
        let _ = writeln!(out, "  {name}:");
        let _ = writeln!(out, "    description: {}", yaml_string(help));
    }
    out.push_str(
        "\nruns:\n  using: docker\n\
         \x20 # Between releases: built from this commit's Dockerfile. A release commit names the\n\
         \x20 # published multi-arch image by digest (.github/workflows/release.yml writes it), so\n\
         \x20 # `@v1.2.3` always runs the bytes that were released.\n",
    );
    let _ = writeln!(out, "  image: {}", yaml_string_plain(image));
    out
}

/// The image reference as a plain YAML scalar when that is safe, else quoted.
fn yaml_string_plain(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/:@._-".contains(c))
    {
        text.to_string()
    } else {
        yaml_string(text)
    }
}

/// A table cell: no line breaks, and `|` escaped so the row keeps its columns.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The book's inputs and outputs reference (docs/src/inputs.md): one table per concern, the
/// refused inputs in their own table, then the outputs.
pub fn inputs_md() -> String {
    let mut out = String::from(
        "<!-- GENERATED from src/inputs/spec.rs by `ecs-deploy contract inputs-md` \
         (scripts/contract.sh): edit the table, not this file. -->\n\n\
         # Inputs\n\n\
         Every input may also be given per app in the `config` file (except the ones marked *run*).\n\
         No input is required by the runner; an empty value is the same as none. A secret input \
         is masked in every log before anything is printed.\n",
    );
    for (title, members) in grouped() {
        let honoured: Vec<_> = members.iter().filter(|s| !s.is_refused()).collect();
        if honoured.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n## {title}\n\n| Input | Default | What it does |\n|---|---|---|\n"
        );
        for spec in honoured {
            let mut notes = Vec::new();
            if spec.scope == super::Scope::Run {
                notes.push("run");
            }
            if spec.secret {
                notes.push("secret");
            }
            let name = if notes.is_empty() {
                format!("`{}`", spec.name)
            } else {
                format!("`{}` *{}*", spec.name, notes.join(", "))
            };
            let default = spec.default.map(|d| format!("`{d}`")).unwrap_or_default();
            let _ = writeln!(out, "| {name} | {} | {} |", cell(&default), cell(spec.help));
        }
    }
    out.push_str(
        "\n## Refused inputs\n\n\
         Inputs of the steps this action replaces whose meaning it does not have. Given, the run \
         stops before anything is built or written, saying what to use instead; none is silently \
         ignored.\n\n| Input | Use instead |\n|---|---|\n",
    );
    for spec in INPUTS.iter().filter(|s| s.is_refused()) {
        let _ = writeln!(out, "| `{}` | {} |", spec.name, cell(spec.help));
    }
    out.push_str("\n## Outputs\n\n| Output | What it holds |\n|---|---|\n");
    for (name, help) in OUTPUTS {
        let _ = writeln!(out, "| `{name}` | {} |", cell(help));
    }
    out
}

/// The hidden `ecs-deploy contract <action-yml [--image REF] | inputs-md>` subcommand: `None`
/// when the arguments are not that subcommand (the action's own flags), else the document or
/// the usage error.
pub fn cli(args: &[String]) -> Option<Result<String, String>> {
    if args.get(1).map(String::as_str) != Some("contract") {
        return None;
    }
    const USAGE: &str =
        "usage: ecs-deploy contract action-yml [--image REF] | ecs-deploy contract inputs-md";
    let rest: Vec<&str> = args[2..].iter().map(String::as_str).collect();
    Some(match rest.as_slice() {
        ["inputs-md"] => Ok(inputs_md()),
        ["action-yml"] => Ok(action_yml(BETWEEN_RELEASES)),
        ["action-yml", "--image", image] if valid_image(image) => Ok(action_yml(image)),
        ["action-yml", "--image", image] => Err(format!(
            "--image {image:?} is neither `{BETWEEN_RELEASES}` nor docker://<image>@sha256:<64 hex digits>: \
             a release names the published image by digest"
        )),
        _ => Err(USAGE.to_string()),
    })
}

/// What action.yml runs between releases: the Dockerfile of the same commit.
pub const BETWEEN_RELEASES: &str = "Dockerfile";

/// `Dockerfile`, or a `docker://` reference pinned by a sha256 digest.
pub fn valid_image(image: &str) -> bool {
    if image == BETWEEN_RELEASES {
        return true;
    }
    let Some(rest) = image.strip_prefix("docker://") else {
        return false;
    };
    match rest.rsplit_once("@sha256:") {
        Some((name, hex)) => {
            !name.is_empty()
                && hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subcommand_takes_only_a_digest_pinned_image() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(cli(&args(&["ecs-deploy", "--app", "web"])).is_none());
        let pinned = format!("docker://ghcr.io/o/a:v1.0.0@sha256:{}", "ab".repeat(32));
        let out = cli(&args(&[
            "ecs-deploy",
            "contract",
            "action-yml",
            "--image",
            &pinned,
        ]));
        assert!(
            out.unwrap()
                .unwrap()
                .contains(&format!("  image: {pinned}\n"))
        );
        let e = cli(&args(&[
            "x",
            "contract",
            "action-yml",
            "--image",
            "docker://a:v1",
        ]));
        assert!(e.unwrap().unwrap_err().contains("sha256"));
        assert!(cli(&args(&["x", "contract", "readme"])).unwrap().is_err());
        assert!(
            cli(&args(&["x", "contract", "inputs-md"]))
                .unwrap()
                .unwrap()
                .starts_with("<!--")
        );
    }

    #[test]
    fn every_group_starts_at_an_input_of_the_table() {
        for (first, title) in GROUPS {
            assert!(
                INPUTS.iter().any(|s| s.name == *first),
                "group {title:?} starts at {first:?}, which is not an input"
            );
        }
        let listed: usize = grouped().iter().map(|(_, m)| m.len()).sum();
        assert_eq!(listed, INPUTS.len());
    }

    #[test]
    fn descriptions_carry_the_default_the_refusal_and_the_mask() {
        let action = action_yml("Dockerfile");
        let parsed: serde_yaml::Value = serde_yaml::from_str(&action).unwrap();
        for spec in INPUTS {
            let d = parsed["inputs"][spec.name]["description"]
                .as_str()
                .unwrap_or_else(|| panic!("{} has no description", spec.name));
            assert_eq!(d, description(spec));
            if let Some(default) = spec.default {
                assert!(d.contains(&format!("Default: {default}")), "{d}");
            }
            assert_eq!(d.starts_with("Refused: "), spec.is_refused(), "{d}");
        }
        for (name, help) in OUTPUTS {
            assert_eq!(
                parsed["outputs"][*name]["description"].as_str(),
                Some(*help)
            );
        }
        assert_eq!(parsed["runs"]["image"].as_str(), Some("Dockerfile"));
    }

    #[test]
    fn the_reference_puts_refused_inputs_in_their_own_table() {
        let md = inputs_md();
        let (honoured, rest) = md.split_once("## Refused inputs").unwrap();
        let (refused, _) = rest.split_once("## Outputs").unwrap();
        for spec in INPUTS {
            let row = format!("| `{}`", spec.name);
            let (here, not_there) = if spec.is_refused() {
                (refused, honoured)
            } else {
                (honoured, refused)
            };
            assert!(here.contains(&row), "{} missing", spec.name);
            assert!(
                !not_there.contains(&format!("{row} ")),
                "{} twice",
                spec.name
            );
        }
    }
}
