//! The config file for several apps (`config: .github/ecs-deploy.yml`): shared `defaults` and
//! per-app values, with the same keys as the per-app inputs. An input given to the step wins.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

use crate::error::{Error, Result};
use crate::inputs::{INPUTS, RawInputs, Scope, input_spec};

/// A parsed config file: defaults and each app's own values, still raw strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigFile {
    pub defaults: RawInputs,
    pub apps: BTreeMap<String, RawInputs>,
    /// The file's text, to point a later error at its line.
    pub text: String,
}

impl ConfigFile {
    /// The raw per-app inputs of one app: defaults, then the app's values, then the step's inputs.
    pub(crate) fn layered(&self, app: &str, step: &RawInputs) -> Option<RawInputs> {
        self.apps
            .get(app)
            .map(|own| self.defaults.overlay(own).overlay(step))
    }
}

fn problem(path: &Path, p: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        problem: p.into(),
    }
}

/// Turns a YAML value into the string an input would hold: scalars as written, maps and lists of
/// pairs as `KEY=VALUE` lines (handy for build-args and environment-variables).
fn scalar(path: &Path, key: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        Value::Mapping(m) => {
            let mut lines = Vec::new();
            for (k, val) in m {
                let k = k
                    .as_str()
                    .ok_or_else(|| problem(path, format!("{key}: keys must be strings")))?;
                lines.push(format!("{k}={}", scalar(path, key, val)?));
            }
            Ok(lines.join("\n"))
        }
        Value::Sequence(items) => {
            let mut lines = Vec::new();
            for item in items {
                lines.push(scalar(path, key, item)?);
            }
            Ok(lines.join("\n"))
        }
        Value::Tagged(t) => scalar(path, key, &t.value),
    }
}

/// [`section`] with its errors pointing at the key's line in `text` (or the section's).
fn located_section(path: &Path, text: &str, where_: &str, v: &Value) -> Result<RawInputs> {
    let parents: Vec<&str> = where_.split('.').collect();
    section(path, where_, v).map_err(|(e, key)| {
        let at = key
            .and_then(|k| {
                let mut keys = parents.clone();
                keys.push(k.as_str());
                crate::location::yaml_key_at(text, &keys)
            })
            .or_else(|| crate::location::yaml_key_at(text, &parents));
        e.in_file(path, at)
    })
}

/// One mapping of per-app keys (`defaults`, `apps.<name>`); an error comes with the key it is
/// about, when it is about one.
fn section(
    path: &Path,
    where_: &str,
    v: &Value,
) -> std::result::Result<RawInputs, (Error, Option<String>)> {
    let m = v.as_mapping().ok_or_else(|| {
        (
            problem(
                path,
                format!("{where_} must be a mapping of input names to values"),
            ),
            None,
        )
    })?;
    let mut raw = RawInputs::default();
    for (k, val) in m {
        let key = k.as_str().ok_or_else(|| {
            (
                problem(path, format!("{where_}: keys must be strings")),
                None,
            )
        })?;
        let at_key = |e: Error| (e, Some(key.to_string()));
        match input_spec(key) {
            // A secret committed to the repository would be in every clone and never masked.
            Some(s) if s.scope == Scope::App && s.secret => {
                return Err(at_key(problem(
                    path,
                    format!(
                        "{where_}.{key} is a secret and must not be written in a file of the repository; give it to the step's `with:` from `secrets` (e.g. {key}: ${{{{ secrets.NAME }}}})"
                    ),
                )));
            }
            Some(s) if s.scope == Scope::App => {}
            Some(_) => {
                return Err(at_key(problem(
                    path,
                    format!(
                        "{where_}.{key} is an input of the whole run; give it to the step's `with:` instead"
                    ),
                )));
            }
            None => {
                let known: Vec<&str> = INPUTS
                    .iter()
                    .filter(|s| s.scope == Scope::App)
                    .map(|s| s.name)
                    .collect();
                return Err(at_key(problem(
                    path,
                    format!(
                        "{where_}.{key} is not a known key; per-app keys are: {}",
                        known.join(", ")
                    ),
                )));
            }
        }
        raw.values
            .insert(key.to_string(), scalar(path, key, val).map_err(at_key)?);
    }
    Ok(raw)
}

/// Parses config file text; `path` is only used in messages.
pub(crate) fn parse(path: &Path, text: &str) -> Result<ConfigFile> {
    let text = crate::file_text::without_bom(text);
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        problem(path, format!("is not valid YAML: {e}"))
            .in_file(path, e.location().map(|l| (l.line(), l.column())))
    })?;
    let top = doc
        .as_mapping()
        .ok_or_else(|| problem(path, "must be a mapping with `defaults` and `apps`"))?;
    let mut cfg = ConfigFile {
        text: text.to_string(),
        ..ConfigFile::default()
    };
    for (k, v) in top {
        match k.as_str() {
            Some("defaults") => cfg.defaults = located_section(path, text, "defaults", v)?,
            Some("apps") => {
                let apps = v
                    .as_mapping()
                    .ok_or_else(|| problem(path, "`apps` must map app names to their settings"))?;
                for (name, body) in apps {
                    let name = name
                        .as_str()
                        .ok_or_else(|| problem(path, "app names must be strings"))?;
                    crate::inputs::validate_app_name(name).map_err(|e| {
                        problem(path, format!("apps.{name}: {e}"))
                            .in_file(path, crate::location::yaml_key_at(text, &["apps", name]))
                    })?;
                    let raw = if body.is_null() {
                        RawInputs::default()
                    } else {
                        located_section(path, text, &format!("apps.{name}"), body)?
                    };
                    cfg.apps.insert(name.to_string(), raw);
                }
            }
            Some(other) => {
                return Err(problem(
                    path,
                    format!("unknown top-level key `{other}`; the file has `defaults` and `apps`"),
                ));
            }
            None => return Err(problem(path, "top-level keys must be strings")),
        }
    }
    if cfg.apps.is_empty() {
        return Err(problem(path, "has no apps under `apps`"));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_defaults_app_and_step() {
        let text = "defaults:\n  cluster: prod\n  wait-for-minutes: 20\napps:\n  web1:\n    service: web1\n    build-args:\n      A: 1\n  web2:\n    service: web2\n    cluster: other\n";
        let cfg = parse(Path::new("c.yml"), text).unwrap();
        let mut step = RawInputs::default();
        step.values.insert("wait-for-minutes".into(), "5".into());
        let w1 = cfg.layered("web1", &step).unwrap();
        assert_eq!(w1.get("cluster"), Some("prod"));
        assert_eq!(w1.get("wait-for-minutes"), Some("5"));
        assert_eq!(w1.get("build-args"), Some("A=1"));
        assert_eq!(
            cfg.layered("web2", &step).unwrap().get("cluster"),
            Some("other")
        );
        assert!(cfg.layered("web3", &step).is_none());
    }

    #[test]
    fn secrets_written_in_the_file_are_refused_without_echoing_them() {
        for key in ["registry-password", "build-secrets"] {
            let text = format!("apps:\n  web1:\n    {key}: hunter2-in-git\n");
            let e = parse(Path::new("c.yml"), &text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("secrets."), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn unknown_and_run_scoped_keys_are_refused() {
        let e = parse(Path::new("c.yml"), "apps:\n  web1:\n    servce: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("servce") && e.contains("per-app keys are"),
            "{e}"
        );
        let e = parse(
            Path::new("c.yml"),
            "apps:\n  web1:\n    slack-webhook-url: x\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("whole run"), "{e}");
        assert!(parse(Path::new("c.yml"), "defaults: {}\n").is_err());
        assert!(parse(Path::new("c.yml"), "apps: [").is_err());
    }
}
