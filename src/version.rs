//! The version from package.json (or a tag, or a dispatch input), checked, and the image tags
//! named from it. A version string only ever becomes a Docker tag after passing these checks.

use std::path::Path;

use crate::error::{Error, Result};

/// A checked version and the Docker tag it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// As written (without the tag prefix): `1.2.3`, `1.2.3-rc.1`, `v2024.05.01` (loose).
    pub value: String,
    /// The version tag: `v1.2.3`; build metadata `+b.5` becomes `_b.5` (see `note`).
    pub tag: String,
    /// True for semver prereleases: `latest` is not moved for them.
    pub prerelease: bool,
    /// A remark to show the person (e.g. how build metadata was mapped).
    pub note: Option<String>,
}

/// Longest tag the Docker/OCI reference grammar allows.
const MAX_TAG_LEN: usize = 128;

/// True when `tag` matches the OCI tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    tag.len() <= MAX_TAG_LEN
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks a version string and names its tag. `source_name` says where it came from, for errors.
pub(crate) fn parse_version(
    raw: &str,
    format: VersionFormat,
    tag_prefix: &str,
    source_name: &str,
) -> Result<Version> {
    let invalid = |reason: String| Error::InvalidVersion {
        value: raw.to_string(),
        source_name: source_name.to_string(),
        reason,
    };
    if raw.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if raw.trim() != raw {
        return Err(invalid("it has leading or trailing white space".into()));
    }
    match format {
        VersionFormat::Semver => {
            let v = semver::Version::parse(raw).map_err(|e| {
                let hint = if raw.starts_with('v') {
                    "; write it without the leading v (the tag prefix adds it), or set version-format: loose"
                } else {
                    "; use MAJOR.MINOR.PATCH, e.g. 1.2.3 or 1.2.3-rc.1"
                };
                invalid(format!("not semver ({e}){hint}"))
            })?;
            let mut tag = format!("{tag_prefix}{}.{}.{}", v.major, v.minor, v.patch);
            if !v.pre.is_empty() {
                tag.push('-');
                tag.push_str(v.pre.as_str());
            }
            let mut note = None;
            if !v.build.is_empty() {
                tag.push('_');
                tag.push_str(v.build.as_str());
                note = Some(format!(
                    "build metadata +{} cannot be part of a Docker tag ('+' is not allowed): tagged as {tag}",
                    v.build
                ));
            }
            if !is_valid_tag(&tag) {
                return Err(invalid(format!(
                    "the image tag {tag:?} would be longer than {MAX_TAG_LEN} characters or not a valid Docker tag"
                )));
            }
            Ok(Version {
                value: raw.to_string(),
                tag,
                prerelease: !v.pre.is_empty(),
                note,
            })
        }
        VersionFormat::Loose => {
            let rest = raw.strip_prefix('v').unwrap_or("");
            let ok = !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(invalid(
                    "version-format loose needs ^v[0-9a-zA-Z._-]+$ (e.g. v1.2.3 or v2024.05.01)"
                        .into(),
                ));
            }
            // A loose version already carries its `v`; the prefix is not doubled.
            let tag = raw.to_string();
            if !is_valid_tag(&tag) {
                return Err(invalid(format!(
                    "the image tag would be longer than {MAX_TAG_LEN} characters"
                )));
            }
            Ok(Version {
                value: raw.to_string(),
                tag,
                prerelease: false,
                note: None,
            })
        }
    }
}

/// Takes the version text out of a package.json, with errors that name the file and the fix.
pub(crate) fn version_from_package_json(path: &Path, text: &str) -> Result<String> {
    let problem = |p: String| Error::PackageJson {
        path: path.to_path_buf(),
        problem: p,
    };
    // npm tolerates a UTF-8 byte order mark; so do we.
    let text = crate::file_text::without_bom(text);
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        problem(format!(
            "is not valid JSON ({e}); fix the file so that `npm pkg get version` can read it"
        ))
        .in_file(path, Some((e.line(), e.column())))
    })?;
    // npm keeps the last of two keys; which one a person meant is not known, so say so.
    if let Some(d) = crate::file_text::json_duplicate_key(text) {
        return Err(problem(format!(
            "has the key {:?} twice in one object (the second at line {}); which one is meant? keep one",
            d.key, d.at.0
        ))
        .in_file(path, Some(d.at)));
    }
    let obj = json.as_object().ok_or_else(|| {
        problem(
            "is not a JSON object; a package.json is { \"name\": ..., \"version\": ... }".into(),
        )
    })?;
    match obj.get("version") {
        None => Err(problem(
            "has no \"version\" field; add one, e.g. \"version\": \"1.0.0\"".into(),
        )),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(problem(format!(
            "has a \"version\" that is not a string ({other}); write it as a string, e.g. \"version\": \"1.0.0\""
        ))
        .in_file(path, crate::location::json_key_at(text, "version"))),
    }
}

/// The app name a package.json gives (`@acme/web1` → `web1`), used when nothing else names it.
pub(crate) fn name_from_package_json(text: &str) -> Option<String> {
    let text = crate::file_text::without_bom(text);
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let name = json.get("name")?.as_str()?;
    let short = name.rsplit('/').next().unwrap_or(name);
    validate_app_name(short).ok().map(|_| short.to_string())
}

/// The image tags for a version: the version tag, `latest` (unless turned off or a prerelease),
/// and `sha-<7>` for the commit.
pub(crate) fn image_tags(version: &Version, tag_latest: bool, sha: Option<&str>) -> Vec<String> {
    let mut tags = vec![version.tag.clone()];
    if tag_latest && !version.prerelease {
        tags.push("latest".to_string());
    }
    if let Some(sha) = sha
        && sha.len() >= 7
        && sha.chars().all(|c| c.is_ascii_hexdigit())
    {
        tags.push(format!("sha-{}", &sha[..7].to_ascii_lowercase()));
    }
    tags
}

/// The version a `v*` tag carries, with the tag prefix removed (for semver).
pub(crate) fn version_from_tag(tag: &str, format: VersionFormat, tag_prefix: &str) -> String {
    match format {
        VersionFormat::Semver => tag.strip_prefix(tag_prefix).unwrap_or(tag).to_string(),
        VersionFormat::Loose => tag.to_string(),
    }
}

/// How the version string is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionFormat {
    Semver,
    Loose,
}

/// App names end up in paths and resource names: keep them to a safe alphabet.
pub fn validate_app_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "app",
            name,
            "an app name uses letters, digits, -, _ and . (at most 64, not starting with .)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn semver(v: &str) -> Result<Version> {
        parse_version(v, VersionFormat::Semver, "v", "test")
    }

    #[test]
    fn semver_versions_get_prefixed_tags() {
        let v = semver("1.2.3").unwrap();
        assert_eq!(v.tag, "v1.2.3");
        assert!(!v.prerelease);
        assert_eq!(
            image_tags(&v, true, Some("ABCDEF1234567890")),
            vec!["v1.2.3", "latest", "sha-abcdef1"]
        );
    }

    #[test]
    fn prereleases_do_not_move_latest() {
        let v = semver("1.2.3-rc.1").unwrap();
        assert_eq!(v.tag, "v1.2.3-rc.1");
        assert_eq!(image_tags(&v, true, None), vec!["v1.2.3-rc.1"]);
    }

    #[test]
    fn build_metadata_is_mapped_and_said() {
        let v = semver("1.2.3+build.5").unwrap();
        assert_eq!(v.tag, "v1.2.3_build.5");
        assert!(v.note.unwrap().contains("'+' is not allowed"));
    }

    #[test]
    fn bad_versions_are_rejected_with_hints() {
        for bad in [
            "",
            "1.2",
            "v1.2.3",
            "1.2.3; rm -rf /",
            " 1.2.3",
            "01.2.3",
            "1.2.3\n",
        ] {
            let err = semver(bad).unwrap_err().to_string();
            assert!(err.contains("is not valid"), "{bad:?}: {err}");
        }
        assert!(
            semver("v1.2.3")
                .unwrap_err()
                .to_string()
                .contains("leading v")
        );
    }

    #[test]
    fn loose_versions_follow_the_rule() {
        let v = parse_version("v2024.05.01", VersionFormat::Loose, "v", "t").unwrap();
        assert_eq!(v.tag, "v2024.05.01");
        assert!(parse_version("2024.05.01", VersionFormat::Loose, "v", "t").is_err());
        assert!(parse_version("v1/2", VersionFormat::Loose, "v", "t").is_err());
        assert!(parse_version("v", VersionFormat::Loose, "v", "t").is_err());
    }

    #[test]
    fn tag_grammar() {
        assert!(is_valid_tag("v1.2.3_build.5"));
        assert!(!is_valid_tag("-v1"));
        assert!(!is_valid_tag("v1+2"));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn package_json_reading() {
        let p = PathBuf::from("apps/web1/package.json");
        assert_eq!(
            version_from_package_json(&p, "\u{feff}{\"version\":\"1.0.0\"}").unwrap(),
            "1.0.0"
        );
        let e = version_from_package_json(&p, "{\"name\":\"x\"}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("apps/web1/package.json") && e.contains("no \"version\""),
            "{e}"
        );
        let e = version_from_package_json(&p, "{\"version\":1}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a string"), "{e}");
        assert!(version_from_package_json(&p, "{").is_err());
        assert!(version_from_package_json(&p, "[]").is_err());
        assert_eq!(
            name_from_package_json("{\"name\":\"@acme/web1\"}").as_deref(),
            Some("web1")
        );
    }
}
