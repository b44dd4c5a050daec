//! The Deployment's manifest in git (`kubernetes-manifest`): after a successful rollout, the
//! container's `image:` is changed in the YAML file, every other byte kept (comments, order,
//! quoting, the other documents), and committed to the branch through the GitHub contents API
//! with the blob sha of the file this run checked out, so a concurrent change is refused
//! instead of overwritten.

use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::inputs::GitTarget;

/// A line's indentation (spaces) and its text after it.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// True for lines that carry no YAML content (blank, comment).
fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The documents of a multi-document YAML text as line ranges (`---` separates them).
fn documents(lines: &[&str]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_end();
        if t == "---" || t.starts_with("--- ") || t == "..." {
            out.push((start, i));
            start = i + 1;
        }
    }
    out.push((start, lines.len()));
    out
}

/// The scalar value of `key:` on a line (`key: value # comment` or `- key: value`), unquoted.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").map(str::trim_start).unwrap_or(t);
    let rest = t.strip_prefix(key)?.strip_prefix(':')?;
    let v = strip_comment(rest).trim();
    Some(v.trim_matches(|c| c == '"' || c == '\''))
}

/// A value without its trailing ` # comment`.
fn strip_comment(v: &str) -> &str {
    let body = v.trim_start();
    let skip = v.len() - body.len();
    // A quoted value ends at its closing quote; a `#` inside it is not a comment.
    let from = match body.chars().next() {
        Some(q @ ('"' | '\'')) => body[1..].find(q).map(|i| skip + i + 2).unwrap_or(v.len()),
        _ => 0,
    };
    match v[from..].find(" #") {
        Some(i) => &v[..from + i],
        None => v,
    }
}

/// Whether document `doc` (parsed) is the Deployment `deployment` with container `container`;
/// its image if so.
fn deployment_image(doc: &serde_yaml::Value, deployment: &str, container: &str) -> Option<String> {
    if doc.get("kind")?.as_str()? != "Deployment"
        || doc.get("metadata")?.get("name")?.as_str()? != deployment
    {
        return None;
    }
    doc.get("spec")?
        .get("template")?
        .get("spec")?
        .get("containers")?
        .as_sequence()?
        .iter()
        .find(|c| c.get("name").and_then(|n| n.as_str()) == Some(container))?
        .get("image")
        .and_then(|i| i.as_str())
        .map(str::to_string)
}

/// The line of `image:` of `container` in the `containers:` list of lines `lines[from..to]`.
fn image_line(lines: &[&str], from: usize, to: usize, container: &str) -> Option<usize> {
    let mut i = from;
    while i < to {
        let l = lines[i];
        if l.trim_start().starts_with("containers:") && !is_blank(l) {
            let key_indent = indent(l);
            let mut j = i + 1;
            // Items of the list: `- ` lines at the key's indentation or deeper.
            while j < to {
                let item = lines[j];
                if is_blank(item) {
                    j += 1;
                    continue;
                }
                let dash = indent(item);
                if dash < key_indent || !item.trim_start().starts_with('-') {
                    break;
                }
                // The item runs until the next line at or left of its dash.
                let mut end = j + 1;
                while end < to && (is_blank(lines[end]) || indent(lines[end]) > dash) {
                    end += 1;
                }
                let item_lines = j..end;
                let named = item_lines.clone().any(|k| {
                    value_of(lines[k], "name") == Some(container) && key_col(lines[k], dash)
                });
                if named {
                    return item_lines.into_iter().find(|&k| {
                        value_of(lines[k], "image").is_some() && key_col(lines[k], dash)
                    });
                }
                j = end;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    None
}

/// True when the key on `line` belongs to the list item whose dash is at column `dash` (not to
/// a nested map such as `env`).
fn key_col(line: &str, dash: usize) -> bool {
    let ind = indent(line);
    (ind == dash && line.trim_start().starts_with("- ")) || ind == dash + 2
}

/// Puts `image` into container `container` of Deployment `deployment` in a manifest text,
/// changing nothing else; returns the new text and the image it had. Checked by parsing both
/// texts: everything but that one value must be equal. Pure.
pub(crate) fn set_image(
    text: &str,
    deployment: &str,
    container: &str,
    image: &str,
) -> std::result::Result<(String, String), String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let plain: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_end_matches(['\n', '\r']))
        .collect();
    for (from, to) in documents(&plain) {
        let doc_text: String = lines[from..to].concat();
        let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&doc_text) else {
            continue;
        };
        let Some(old) = deployment_image(&doc, deployment, container) else {
            continue;
        };
        let Some(at) = image_line(&plain, from, to, container) else {
            return Err(format!(
                "has Deployment {deployment} with container {container}, but not in block style (`- name: {container}` then `image: ...` lines); write its containers as a block list"
            ));
        };
        let line = plain[at];
        let key = line.find("image:").unwrap_or(0) + "image:".len();
        let rest = &line[key..];
        let value = strip_comment(rest);
        let comment = &rest[value.len()..];
        let lead = &value[..value.len() - value.trim_start().len()];
        let trail = &value[value.trim_end().len()..];
        let v = value.trim();
        let quoted = match v.chars().next() {
            Some(q @ ('"' | '\'')) => format!("{q}{image}{q}"),
            _ => image.to_string(),
        };
        let sep = if lead.is_empty() { " " } else { lead };
        let eol = &lines[at][line.len()..];
        let new_line = format!("{}{sep}{quoted}{trail}{comment}{eol}", &line[..key]);
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out[at] = new_line;
        let new_text = out.concat();
        verify(text, &new_text, deployment, container, image)?;
        return Ok((new_text, old));
    }
    Err(format!(
        "has no Deployment {deployment} with a container {container}; check `kubernetes-manifest`, `kubernetes-deployment` and `container-name`"
    ))
}

/// The edited text parses to the same documents as the original but for the one image.
fn verify(
    old: &str,
    new: &str,
    deployment: &str,
    container: &str,
    image: &str,
) -> std::result::Result<(), String> {
    let parse = |t: &str| -> std::result::Result<Vec<serde_yaml::Value>, String> {
        use serde::Deserialize;
        serde_yaml::Deserializer::from_str(t)
            .map(serde_yaml::Value::deserialize)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("is not valid YAML after the edit: {e}"))
    };
    let mut before = parse(old)?;
    let after = parse(new)?;
    for doc in before.iter_mut() {
        if deployment_image(doc, deployment, container).is_none() {
            continue;
        }
        if let Some(c) = doc
            .get_mut("spec")
            .and_then(|s| s.get_mut("template"))
            .and_then(|t| t.get_mut("spec"))
            .and_then(|s| s.get_mut("containers"))
            .and_then(|c| c.as_sequence_mut())
            .and_then(|cs| {
                cs.iter_mut()
                    .find(|c| c.get("name").and_then(|n| n.as_str()) == Some(container))
            })
            && let Some(m) = c.as_mapping_mut()
        {
            m.insert("image".into(), image.into());
        }
    }
    if before == after {
        Ok(())
    } else {
        Err("could not be edited safely (the result differs in more than the image); update it by hand".into())
    }
}

/// The git blob sha of `content` (what the contents API calls the file's sha).
pub fn blob_sha(content: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a manifest commit needs.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub git: &'a GitTarget,
    /// The file's path in the repository.
    pub path: &'a str,
    /// The file as this run checked it out (its blob sha is the one the commit replaces).
    pub old: &'a str,
    pub new: &'a str,
    pub message: String,
}

/// Commits the new manifest through the contents API (octocrab); returns the new commit's sha.
/// A file that changed on the branch since the checkout makes GitHub refuse (409): said so.
pub(crate) async fn commit(c: &Commit<'_>) -> Result<String> {
    let target = || format!("manifest commit of {}", c.path);
    let fail = |problem: String| Error::Notify {
        target: target(),
        problem,
    };
    let repo = c
        .git
        .repository
        .as_deref()
        .ok_or_else(|| fail("no repository (GITHUB_REPOSITORY) to commit to".into()))?;
    let (owner, name) = repo
        .split_once('/')
        .ok_or_else(|| fail(format!("repository {repo:?} is not owner/name")))?;
    let token =
        c.git.token.as_ref().ok_or_else(|| {
            fail("no `github-token` (with contents: write) to commit with".into())
        })?;
    let octo = octocrab::Octocrab::builder()
        .base_uri(c.git.api_url.as_str())
        .map_err(|e| fail(format!("bad GitHub API URL: {e}")))?
        .personal_token(token.expose().to_string())
        .build()
        .map_err(|e| fail(format!("cannot make a GitHub client: {e}")))?;
    let sha = blob_sha(c.old.as_bytes());
    let out = octo
        .repos(owner, name)
        .update_file(c.path, &c.message, c.new.as_bytes(), &sha)
        .branch(&c.git.branch)
        .send()
        .await
        .map_err(|e| {
            let refused = matches!(&e, octocrab::Error::GitHub { source, .. }
                if source.status_code.as_u16() == 409 || source.status_code.as_u16() == 422);
            if refused {
                fail(format!(
                    "refused: {} on branch {} is not the file this run checked out (blob {sha}); a concurrent change was not overwritten, update it by hand",
                    c.path, c.git.branch
                ))
            } else {
                fail(format!("the contents API failed: {}", octocrab_message(&e)))
            }
        })?;
    Ok(out.commit.sha.unwrap_or_default())
}

/// An octocrab error as one line without the token.
fn octocrab_message(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            format!("{} {}", source.status_code.as_u16(), source.message)
        }
        other => crate::error::error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "# shop frontend and backend\n\
apiVersion: apps/v1\n\
kind: Deployment\n\
metadata:\n  name: frontend\n\
spec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: app\n          image: 123.dkr.ecr.us-east-1.amazonaws.com/frontend:v1.0.0\n\
---\n\
apiVersion: apps/v1\n\
kind: Deployment\n\
metadata:\n  name: backend  # the API\n\
spec:\n  template:\n    spec:\n      initContainers:\n      - name: app\n        image: busybox:1.36\n      containers:\n      - name: sidecar\n        image: envoy:v1\n      - image: \"123.dkr.ecr.us-east-1.amazonaws.com/backend:v1.0.0\" # bumped by CI\n        name: app\n        env:\n          - name: image\n            value: x\n";

    #[test]
    fn only_the_containers_image_changes_in_the_right_document() {
        let (new, old) = set_image(MANIFEST, "backend", "app", "r/backend:v1.2.3").unwrap();
        assert_eq!(old, "123.dkr.ecr.us-east-1.amazonaws.com/backend:v1.0.0");
        let expected = MANIFEST.replace(
            "\"123.dkr.ecr.us-east-1.amazonaws.com/backend:v1.0.0\" # bumped by CI",
            "\"r/backend:v1.2.3\" # bumped by CI",
        );
        assert_eq!(new, expected);
        let (new, _) = set_image(MANIFEST, "frontend", "app", "r/frontend:v2").unwrap();
        assert_eq!(
            new,
            MANIFEST.replace(
                "image: 123.dkr.ecr.us-east-1.amazonaws.com/frontend:v1.0.0\n",
                "image: r/frontend:v2\n"
            )
        );
    }

    #[test]
    fn a_manifest_without_that_container_or_deployment_is_refused() {
        let e = set_image(MANIFEST, "backend", "web", "x:1").unwrap_err();
        assert!(
            e.contains("no Deployment backend with a container web"),
            "{e}"
        );
        assert!(set_image(MANIFEST, "admin", "app", "x:1").is_err());
        let flow = "kind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: [{name: web, image: a:1}]}}}\n";
        let e = set_image(flow, "web", "web", "a:2").unwrap_err();
        assert!(e.contains("block style"), "{e}");
    }

    #[test]
    fn the_blob_sha_is_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            blob_sha(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
