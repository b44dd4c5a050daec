//! Where in a file an error points: the `file=`, `line=` and `col=` of its `::error`
//! annotation, so GitHub shows it on the line of package.json, the task definition, the AppSpec
//! or the config file. Pure: positions are found in the text already read.

use std::path::{Component, Path, PathBuf};

/// A place in a file: the file (as read; [`FileLocation::in_workspace`] makes it relative),
/// and the 1-based line and column when known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileLocation {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub col: Option<usize>,
}

impl FileLocation {
    /// A location in `file` at `at` (line, column; a column of 0, as serde_json gives at a line
    /// end, counts as unknown).
    pub fn new(file: impl Into<PathBuf>, at: Option<(usize, usize)>) -> FileLocation {
        FileLocation {
            file: file.into(),
            line: at.map(|(l, _)| l).filter(|l| *l > 0),
            col: at.map(|(_, c)| c).filter(|c| *c > 0),
        }
    }

    /// The location with its file relative to `workspace` (`apps/web1/package.json`), as
    /// annotations name files; `None` for a file outside the workspace, which GitHub cannot
    /// show in the repository (the message still names its path).
    pub(crate) fn in_workspace(&self, workspace: &Path) -> Option<FileLocation> {
        let rel = relative(&self.file, workspace)?;
        Some(FileLocation {
            file: rel,
            ..self.clone()
        })
    }
}

/// `file` relative to `workspace`, without `.` parts; `None` when it is not inside.
fn relative(file: &Path, workspace: &Path) -> Option<PathBuf> {
    let clean = |p: &Path| -> PathBuf {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    };
    if file.is_relative() && !file.starts_with("..") {
        return Some(clean(file)).filter(|p| !p.as_os_str().is_empty());
    }
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| clean(p));
    let (file, ws) = (clean(file), clean(workspace));
    file.strip_prefix(&ws)
        .map(Path::to_path_buf)
        .ok()
        .or_else(|| {
            let real_ws = canonical(&ws);
            file.strip_prefix(&real_ws)
                .ok()
                .map(Path::to_path_buf)
                .or_else(|| {
                    // The file itself may be reached through a link (a temp dir on macOS).
                    let real = match (file.parent(), file.file_name()) {
                        (Some(dir), Some(name)) => canonical(dir).join(name),
                        _ => canonical(&file),
                    };
                    real.strip_prefix(&real_ws).ok().map(Path::to_path_buf)
                })
        })
        .filter(|p| !p.as_os_str().is_empty())
}

/// Where JSON text stops parsing (line, column), `None` when it parses. A UTF-8 byte order mark
/// is skipped, as the readers of package.json do.
pub(crate) fn json_error_at(text: &str) -> Option<(usize, usize)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str::<serde_json::Value>(text)
        .err()
        .map(|e| (e.line(), e.column()))
}

/// Where YAML text stops parsing (line, column), `None` when it parses.
pub(crate) fn yaml_error_at(text: &str) -> Option<(usize, usize)> {
    serde_yaml::from_str::<serde_yaml::Value>(text.strip_prefix('\u{feff}').unwrap_or(text))
        .err()
        .and_then(|e| e.location())
        .map(|l| (l.line(), l.column()))
}

/// Where the top-level key `key` of a JSON object is written (line, column of its opening
/// quote): `"version"` of a package.json. Strings are skipped, so a `"version"` inside a value
/// or a nested object does not count.
pub(crate) fn json_key_at(text: &str, key: &str) -> Option<(usize, usize)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (mut line, mut col) = (1, 0);
    let mut depth = 0usize;
    let mut string: Option<(usize, (usize, usize))> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            line += 1;
            col = 0;
        } else {
            col += 1;
        }
        if let Some((start, at)) = string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                string = None;
                let is_key = text[i + 1..].trim_start().starts_with(':');
                if depth == 1 && is_key && &text[start + 1..i] == key {
                    return Some(at);
                }
            }
            continue;
        }
        match c {
            '"' => string = Some((i, (line, col))),
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// One step into a JSON value: a key of an object or an index of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Key(k) => write!(f, ".{k}"),
            Step::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// `containerDefinitions[0].memory`: a JSON path as a person reads it.
pub(crate) fn json_path_text(path: &[Step]) -> String {
    let text: String = path.iter().map(ToString::to_string).collect();
    text.strip_prefix('.').map(str::to_string).unwrap_or(text)
}

/// One open object or array while [`json_path_at`] scans.
struct Open {
    object: bool,
    /// The current key of an object (its text and where it is written).
    key: Option<(String, (usize, usize))>,
    /// The current index of an array.
    index: usize,
    expect_key: bool,
}

/// Where the value at `path` is written in JSON text (line, column): the key of an object
/// member, the first character of an array element; the deepest part of `path` found when the
/// whole is not (a field a file does not have points at its parent). Keys written with escapes
/// are not matched. Pure; `None` for an empty path or one whose first step is not there.
pub(crate) fn json_path_at(text: &str, path: &[Step]) -> Option<(usize, usize)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut stack: Vec<Open> = Vec::new();
    let (mut line, mut col) = (1usize, 0usize);
    let mut best: Option<(usize, (usize, usize))> = None;
    let mut chars = text.char_indices().peekable();
    let mut in_scalar = false;
    // How much of `path` the open containers match (and where the last match is written).
    let matched = |stack: &[Open], at: (usize, usize)| -> Option<(usize, (usize, usize))> {
        if stack.is_empty() || stack.len() > path.len() {
            return None;
        }
        for (open, step) in stack.iter().zip(path) {
            let same = match (open.object, step) {
                (true, Step::Key(k)) => open.key.as_ref().is_some_and(|(key, _)| key == k),
                (false, Step::Index(i)) => open.index == *i,
                _ => false,
            };
            if !same {
                return None;
            }
        }
        let last = stack.last()?;
        let pos = if last.object {
            last.key.as_ref().map_or(at, |(_, p)| *p)
        } else {
            at
        };
        Some((stack.len(), pos))
    };
    while let Some((i, c)) = chars.next() {
        if c == '\n' {
            line += 1;
            col = 0;
        } else {
            col += 1;
        }
        let at = (line, col);
        let scalar_char = c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.');
        if !scalar_char {
            in_scalar = false;
        }
        // A value starts here: see whether it is the one looked for.
        let value_starts = matches!(c, '{' | '[' | '"') || (scalar_char && !in_scalar);
        let is_key = c == '"' && stack.last().is_some_and(|o| o.object && o.expect_key);
        if value_starts
            && !is_key
            && let Some((depth, pos)) = matched(&stack, at)
        {
            if depth == path.len() {
                return Some(pos);
            }
            if best.is_none_or(|(d, _)| depth > d) {
                best = Some((depth, pos));
            }
        }
        match c {
            '"' => {
                let start = i + 1;
                let mut end = start;
                let mut escaped = false;
                for (j, d) in chars.by_ref() {
                    col += 1;
                    if d == '\n' {
                        line += 1;
                        col = 0;
                    }
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == '"' {
                        end = j;
                        break;
                    }
                }
                if let Some(open) = stack.last_mut().filter(|o| o.object && o.expect_key) {
                    open.key = Some((text.get(start..end).unwrap_or("").to_string(), at));
                    open.expect_key = false;
                }
            }
            '{' | '[' => stack.push(Open {
                object: c == '{',
                key: None,
                index: 0,
                expect_key: c == '{',
            }),
            '}' | ']' => {
                stack.pop();
            }
            ',' => {
                if let Some(open) = stack.last_mut() {
                    if open.object {
                        open.expect_key = true;
                        open.key = None;
                    } else {
                        open.index += 1;
                    }
                }
            }
            _ if scalar_char => in_scalar = true,
            _ => {}
        }
    }
    best.map(|(_, pos)| pos)
}

/// Where the key at `path` is written in block-style YAML (line, column), each key looked for
/// below the one before: `["apps", "web1", "servce"]`. Best effort for messages: flow-style
/// mappings (`{a: 1}`) are not searched.
pub(crate) fn yaml_key_at(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut want = 0;
    // The indentation of the key matched last; deeper lines belong to it.
    let mut parent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(p) = parent
            && indent <= p
        {
            return None;
        }
        let seg = path.get(want)?;
        let key_of = |q: &str| trimmed.strip_prefix(&format!("{q}{seg}{q}:"));
        let hit = [key_of(""), key_of("\""), key_of("'")]
            .into_iter()
            .flatten()
            .next()
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
        if hit {
            if want + 1 == path.len() {
                return Some((i + 1, indent + 1));
            }
            want += 1;
            parent = Some(indent);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_positions_are_found_for_errors_and_top_level_keys() {
        assert_eq!(json_error_at("{\n  \"a\": 1,\n"), Some((3, 0)));
        assert_eq!(json_error_at("{}"), None);
        let pkg =
            "{\n  \"name\": \"version\",\n  \"deps\": {\"version\": 1},\n  \"version\": 1.2\n}";
        assert_eq!(json_key_at(pkg, "version"), Some((4, 3)));
        assert_eq!(
            json_key_at("\u{feff}{\"version\":\"1\"}", "version"),
            Some((1, 2))
        );
        assert_eq!(json_key_at("{\"name\":\"x\"}", "version"), None);
    }

    #[test]
    fn json_paths_point_at_their_key_or_element_or_the_deepest_part_found() {
        let td = "{\n  \"family\": \"web1\",\n  \"containerDefinitions\": [\n    {\"name\": \"a\", \"x\": {\"memory\": 1}},\n    {\n      \"name\": \"b\",\n      \"memory\": \"256\"\n    }\n  ]\n}";
        let k = |s: &str| Step::Key(s.into());
        let path = [k("containerDefinitions"), Step::Index(1), k("memory")];
        assert_eq!(json_path_at(td, &path), Some((7, 7)));
        assert_eq!(json_path_text(&path), "containerDefinitions[1].memory");
        let first = [k("containerDefinitions"), Step::Index(0)];
        assert_eq!(json_path_at(td, &first), Some((4, 5)));
        let missing = [k("containerDefinitions"), Step::Index(1), k("cpu")];
        assert_eq!(json_path_at(td, &missing), Some((5, 5)), "its container");
        assert_eq!(json_path_at(td, &[k("memory")]), None);
        assert_eq!(json_path_at(td, &[]), None);
        assert_eq!(
            json_path_at("{\"a\": [1, 22, 3]}", &[k("a"), Step::Index(2)]),
            Some((1, 15))
        );
    }

    #[test]
    fn yaml_keys_are_found_below_their_parents() {
        let cfg = "defaults:\n  servce: x\napps:\n  web1:\n    # a comment\n    servce: web1\n";
        assert_eq!(yaml_key_at(cfg, &["apps", "web1", "servce"]), Some((6, 5)));
        assert_eq!(yaml_key_at(cfg, &["defaults", "servce"]), Some((2, 3)));
        assert_eq!(yaml_key_at(cfg, &["apps", "web2", "servce"]), None);
        assert_eq!(yaml_error_at("a: [\n"), Some((2, 1)));
        assert_eq!(yaml_error_at("a: 1\n"), None);
    }

    #[test]
    fn files_are_named_relative_to_the_workspace_and_outside_ones_are_dropped() {
        let loc = FileLocation::new("/ws/apps/web1/package.json", Some((4, 0)));
        assert_eq!(loc.line, Some(4));
        assert_eq!(loc.col, None);
        let rel = loc.in_workspace(Path::new("/ws")).unwrap();
        assert_eq!(rel.file, PathBuf::from("apps/web1/package.json"));
        assert_eq!(
            FileLocation::new("./deploy/td.json", None)
                .in_workspace(Path::new("/ws"))
                .unwrap()
                .file,
            PathBuf::from("deploy/td.json")
        );
        assert_eq!(
            FileLocation::new("/elsewhere/x.json", None).in_workspace(Path::new("/ws")),
            None
        );
    }
}
