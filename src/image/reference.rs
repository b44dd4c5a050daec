//! Image references (`[host[:port]/]path[:tag][@digest]`): checked before anything is written,
//! so a typo fails in the preflight and not as a task that cannot pull.

use crate::error::{Error, Result};

/// Checks that `image` is a valid image reference (`[host[:port]/]path[:tag][@digest]`) before
/// anything is written, so a typo fails here and not as a task that cannot pull.
pub(crate) fn check_image_reference(image: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid_input("image", image, reason.to_string()));
    if image.is_empty() {
        return bad("is empty");
    }
    if image.len() > 1024 || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad(
            "has spaces or control characters; an image reference is registry/repository:tag",
        );
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let ok = match d.split_once(':') {
            Some(("sha256", hex)) => {
                hex.len() == 64
                    && hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            }
            Some((algo, hex)) => {
                !algo.is_empty()
                    && algo
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c))
                    && hex.len() >= 32
                    && hex.chars().all(|c| c.is_ascii_hexdigit())
            }
            None => false,
        };
        if !ok {
            return bad("has an invalid digest after @ (expected sha256:<64 lowercase hex>)");
        }
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(i) if last_slash.is_none_or(|s| i > s) => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return bad(
                "has an invalid tag (letters, digits, _ . -; at most 128; not starting with . or -)",
            );
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains(['.', ':']) || first == "localhost" {
            let host_ok = first
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
            let port_ok = match first.rsplit_once(':') {
                Some((_, port)) if !first.ends_with(']') => {
                    !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())
                }
                _ => true,
            };
            if !host_ok || !port_ok || first.starts_with(['.', '-', ':']) {
                return bad("has an invalid registry host");
            }
            parts.remove(0);
        }
    }
    for p in parts {
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && !p.starts_with(['.', '_', '-'])
            && !p.ends_with(['.', '_', '-']);
        if !ok {
            return bad(
                "has an invalid repository name (lowercase letters, digits and . _ - between them, parts separated by /)",
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_are_checked() {
        for ok in [
            "nginx",
            "web1:v1.2.3",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3",
            "localhost:5000/team/web1:latest",
            "127.0.0.1:5000/web1",
            "ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "ghcr.io/org/app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_image_reference(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "web1:v1 2",
            "Web1:v1",
            "web1:",
            "web1:-x",
            "registry.example.com//web1",
            "web1@sha256:abc",
            "web1:v1/x",
        ] {
            assert!(check_image_reference(bad).is_err(), "{bad:?}");
        }
    }
}
