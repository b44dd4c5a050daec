//! Inputs as strings: the CLI flags and `INPUT_*`/`GITHUB_*` variables read into one map, and
//! the small parsers (booleans, choices, KEY=VALUE lines, paths, commands) the typed settings use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::spec::{CONTEXT, INPUTS, Scope, input_env_name, input_spec};
use crate::error::{Error, Result};

/// Inputs as given: name → non-empty string, before any validation or default.
#[derive(Clone, Default, PartialEq)]
pub struct RawInputs {
    pub values: BTreeMap<String, String>,
}

impl std::fmt::Debug for RawInputs {
    // Secret inputs are shown as *** so a debug print can never leak them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.values {
            if input_spec(k).is_some_and(|s| s.secret) {
                m.entry(k, &"***");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

impl RawInputs {
    /// The given value, trimmed; empty counts as not given (the runner sets empty for unset).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The given value, or the contract's default.
    pub(crate) fn get_or_default(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| input_spec(name).and_then(|s| s.default))
    }

    /// The given value, else the contract's default, else empty: the one place a default is read.
    pub(crate) fn value(&self, name: &str) -> &str {
        self.get_or_default(name).unwrap_or("")
    }

    /// Layers `over` on top of `self`: a value given in `over` wins.
    pub(crate) fn overlay(&self, over: &RawInputs) -> RawInputs {
        let mut values = self.values.clone();
        for (k, v) in &over.values {
            if !v.trim().is_empty() {
                values.insert(k.clone(), v.clone());
            }
        }
        RawInputs { values }
    }

    /// Only the inputs of one scope (per-app inputs carried into each app's settings).
    pub(crate) fn scoped(&self, scope: Scope) -> RawInputs {
        RawInputs {
            values: self
                .values
                .iter()
                .filter(|(k, _)| input_spec(k).is_some_and(|s| s.scope == scope))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Every non-empty secret value, to be masked before anything is printed.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in INPUTS.iter().filter(|s| s.secret) {
            if let Some(v) = self.get(s.name) {
                out.push(v.to_string());
                // `id=VALUE` lines: the value alone must be hidden too, wherever it shows up.
                if s.name == "build-secrets" {
                    out.extend(
                        v.lines()
                            .filter_map(|l| l.split_once('=').map(|(_, value)| value))
                            .filter(|value| !value.trim().is_empty())
                            .map(str::to_string),
                    );
                }
            }
        }
        // A `secrets` line that is not an ARN is a value copied from docker/build-push-action's
        // `secrets` (a BuildKit secret): refused, and hidden before the refusal is printed.
        if let Some(v) = self.get("secrets") {
            out.extend(
                v.lines()
                    .filter_map(|l| l.split_once('=').map(|(_, value)| value.trim()))
                    .filter(|value| !value.is_empty() && !is_secret_reference(value))
                    .map(str::to_string),
            );
        }
        out
    }
}

/// True for what ECS takes as a container secret's `valueFrom`: the ARN of a Secrets Manager
/// secret or of an SSM parameter. Anything else in `secrets` is a value, not a reference.
pub(crate) fn is_secret_reference(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && ((parts[2] == "secretsmanager" && parts[5].starts_with("secret:"))
            || (parts[2] == "ssm" && parts[5].starts_with("parameter/")))
}

/// The runner's context (`GITHUB_*`), or the CLI flags standing in for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GithubContext {
    pub event_name: Option<String>,
    pub event_path: Option<PathBuf>,
    pub repository: Option<String>,
    pub sha: Option<String>,
    pub git_ref: Option<String>,
    pub run_id: Option<String>,
    pub run_attempt: Option<String>,
    pub server_url: String,
    pub actor: Option<String>,
    pub workflow: Option<String>,
    pub job: Option<String>,
    pub output_file: Option<PathBuf>,
    pub summary_file: Option<PathBuf>,
    pub workspace: PathBuf,
    /// The runner's temp directory (`RUNNER_TEMP`), when set.
    pub runner_temp: Option<PathBuf>,
}

impl GithubContext {
    /// Link to the workflow run, when the runner told us which one.
    pub(crate) fn run_url(&self) -> Option<String> {
        match (&self.repository, &self.run_id) {
            (Some(repo), Some(id)) => Some(format!("{}/{repo}/actions/runs/{id}", self.server_url)),
            _ => None,
        }
    }

    /// Link to the commit being deployed.
    pub(crate) fn commit_url(&self) -> Option<String> {
        match (&self.repository, &self.sha) {
            (Some(repo), Some(sha)) => Some(format!("{}/{repo}/commit/{sha}", self.server_url)),
            _ => None,
        }
    }

    /// Resolves a path from an input against the workspace.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.workspace.join(path)
        }
    }
}

/// Where the raw strings came from: the command line plus the environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub raw: RawInputs,
    pub context: BTreeMap<String, String>,
}

/// Builds the clap command from the contract tables: `--<input>` for each input, `--event` etc.
/// for the runner's context. Flags mirror inputs one to one.
pub fn command() -> clap::Command {
    let mut cmd = clap::Command::new("ecs-deploy")
        .version(env!("CARGO_PKG_VERSION"))
        // `--version` is the action's `version` input (which version to deploy), so clap's own
        // version flag is off; `--help` shows the tool's version in its first line.
        .disable_version_flag(true)
        .about(
            "Build, push and deploy a web app to Amazon ECS from a GitHub event, and tell the team",
        )
        .after_help(
            "Every flag can also come from the environment as the GitHub runner sets it: \
             INPUT_<NAME> (upper-cased, hyphens kept, e.g. INPUT_TASK-DEFINITION) for inputs, \
             GITHUB_* for the context flags. Flags win over the environment.",
        );
    for s in INPUTS {
        let mut arg = clap::Arg::new(s.name)
            .long(s.name)
            .value_name("VALUE")
            .help(s.help)
            .action(clap::ArgAction::Set);
        if matches!(s.default, Some("true") | Some("false")) {
            // Boolean inputs: `--dry-run` alone means true, `--dry-run=false` works too.
            arg = arg
                .num_args(0..=1)
                .default_missing_value("true")
                .require_equals(true);
        }
        cmd = cmd.arg(arg);
    }
    for (flag, env) in CONTEXT {
        cmd = cmd.arg(
            clap::Arg::new(*flag)
                .long(*flag)
                .value_name("VALUE")
                .help(format!("Stands in for {env}"))
                .help_heading("GitHub context")
                .action(clap::ArgAction::Set),
        );
    }
    cmd
}

/// Reads flags first, then `INPUT_*` / `GITHUB_*` from `env` for what the flags did not give.
/// `env` is a lookup so tests can pass a map instead of the process environment.
pub fn read_sources<I, T>(args: I, env: &dyn Fn(&str) -> Option<String>) -> Result<Sources>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command()
        .try_get_matches_from(args)
        .map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                // Help and version are printed by clap itself; the caller exits 0.
                let _ = e.print();
                Error::InputConflict {
                    message: String::from("help shown"),
                }
            }
            _ => Error::InputConflict {
                message: e.render().to_string().trim().to_string(),
            },
        })?;
    let mut sources = Sources::default();
    for s in INPUTS {
        let value = matches
            .get_one::<String>(s.name)
            .cloned()
            .or_else(|| env(&input_env_name(s.name)));
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            sources.raw.values.insert(s.name.to_string(), v);
        }
    }
    for (flag, var) in CONTEXT {
        let value = matches
            .get_one::<String>(flag)
            .cloned()
            .or_else(|| env(var));
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            sources.context.insert((*flag).to_string(), v);
        }
    }
    Ok(sources)
}

/// True when the error is clap having printed help or the version (exit 0, not a failure).
pub fn is_help(err: &Error) -> bool {
    matches!(err, Error::InputConflict { message } if message == "help shown")
}

/// Parses a boolean input the way GitHub's YAML 1.2 core schema does.
pub fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim() {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        other => Err(Error::invalid_input(
            name,
            other,
            "accepted values: true, false",
        )),
    }
}

/// Parses one of a fixed set of names, listing the accepted ones on error.
pub(crate) fn parse_choice<T: Copy>(name: &str, value: &str, choices: &[(&str, T)]) -> Result<T> {
    let v = value.trim();
    choices
        .iter()
        .find(|(k, _)| *k == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
            Error::invalid_input(name, v, format!("accepted values: {}", names.join(", ")))
        })
}

/// Parses `KEY=VALUE` lines (build args, env vars, secrets). Blank lines and `#` comments are
/// skipped; a line without `=` or with an invalid key is an error naming the line.
pub fn parse_pairs(name: &str, value: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in value.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::invalid_input(
                name,
                format!("line {}", i + 1),
                "every line must be KEY=VALUE",
            ));
        };
        let k = k.trim();
        let valid_key = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            && !k.starts_with(|c: char| c.is_ascii_digit());
        if !valid_key {
            return Err(Error::invalid_input(
                name,
                format!("line {} key {k:?}", i + 1),
                "keys use letters, digits, _, - and . and do not start with a digit",
            ));
        }
        out.retain(|(existing, _)| existing != k);
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Parses `paths`: one workspace-relative path per line (or comma), normalised to `a/b` with
/// no `./` and no trailing `/`; absolute paths and `..` are refused (changes are listed
/// relative to the repository root).
pub fn parse_paths(value: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in value
        .lines()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let parts: Vec<&str> = p
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        if p.starts_with('/') || parts.contains(&"..") {
            return Err(Error::invalid_input(
                "paths",
                p,
                "use a path relative to the repository root without .., e.g. libs/shared",
            ));
        }
        let norm = if parts.is_empty() {
            ".".to_string()
        } else {
            parts.join("/")
        };
        if !out.contains(&norm) {
            out.push(norm);
        }
    }
    Ok(out)
}

/// Splits `run-task-command` into words: a JSON array (`["python","manage.py","migrate"]`) is
/// taken as is; otherwise the string is split as a shell would (quotes, backslashes), with no
/// shell involved.
pub fn parse_command(value: &str) -> Result<Vec<String>> {
    parse_command_of("run-task-command", value)
}

/// Splits `v` into words as a POSIX shell would, without running one: white space separates
/// words, '…' is literal, "…" keeps spaces (with \" and \\ escaped), a backslash outside quotes
/// escapes the next character. `None` when a quote is never closed.
fn split_words(v: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => w.push(c),
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(c) = chars.next() {
                    word.get_or_insert_with(String::new).push(c);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// [`parse_command`] for input `name` (`run-task-command`, or the render action's `command`).
pub(crate) fn parse_command_of(name: &str, value: &str) -> Result<Vec<String>> {
    let v = value.trim();
    let words: Vec<String> = if v.starts_with('[') {
        serde_json::from_str(v).map_err(|e| {
            Error::invalid_input(
                name,
                v,
                format!("looks like a JSON array but is not one ({e}); use [\"cmd\", \"arg\"] or plain words"),
            )
        })?
    } else {
        split_words(v).ok_or_else(|| {
            Error::invalid_input(
                name,
                v,
                "has a quote that is never closed; close it, or give a JSON array",
            )
        })?
    };
    if words.is_empty() {
        return Err(Error::invalid_input(name, v, "no command given"));
    }
    Ok(words)
}

/// Splits a list the way docker/build-push-action and amazon-ecr-login read theirs: items
/// separated by commas or new lines, trimmed, empty ones and `#` comments dropped.
pub(crate) fn parse_list(value: &str) -> Vec<String> {
    value
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// One entry of `tags`: the tag, and the registry host and repository when it is a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntry {
    /// As written, for messages.
    pub entry: String,
    pub host: Option<String>,
    pub repository: Option<String>,
    pub tag: String,
}

/// Reads `tags` as docker/build-push-action writes it: a comma or newline list of bare tags
/// (`v1`, `${{ github.sha }}`) or references `<registry>/<repository>[:<tag>]` (`:latest` when
/// no tag is given, as docker does). A reference without a registry host would go to Docker
/// Hub, and one starting with `/` is what `${{ steps.<login>.outputs.registry }}/...` gives once
/// the amazon-ecr-login step is gone: both are refused with the fix.
pub(crate) fn parse_tags(value: &str) -> Result<Vec<TagEntry>> {
    let bad = |entry: &str, why: &str| Error::invalid_input("tags", entry, why.to_string());
    let mut out = Vec::new();
    for entry in parse_list(value) {
        if entry.starts_with('/') {
            return Err(bad(
                &entry,
                "starts with / (an empty registry: was it ${{ steps.<amazon-ecr-login step>.outputs.registry }}/...? that step is gone); write the bare tag, e.g. ${{ github.sha }}, or the registry host",
            ));
        }
        if entry.contains('@') {
            return Err(bad(
                &entry,
                "a digest is not a tag; write a tag, e.g. ${{ github.sha }}",
            ));
        }
        let (name, tag) = match entry.rfind(':') {
            Some(i) if !entry[i..].contains('/') => (&entry[..i], &entry[i + 1..]),
            _ => (entry.as_str(), "latest"),
        };
        let (host, repository) = if !entry.contains('/') && !entry.contains(':') {
            (None, None)
        } else {
            match name.split_once('/') {
                Some((first, rest))
                    if !rest.is_empty() && (first.contains(['.', ':']) || first == "localhost") =>
                {
                    (Some(first.to_string()), Some(rest.to_string()))
                }
                _ => {
                    return Err(bad(
                        &entry,
                        "names no registry host, so docker would push it to Docker Hub; write <registry>/<repository>:<tag> (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1) or the bare tag",
                    ));
                }
            }
        };
        let tag = if host.is_none() { entry.as_str() } else { tag };
        if !crate::version::is_valid_tag(tag) {
            return Err(bad(
                &entry,
                "an image tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`",
            ));
        }
        out.push(TagEntry {
            entry: entry.clone(),
            host,
            repository,
            tag: tag.to_string(),
        });
    }
    Ok(out)
}
