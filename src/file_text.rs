//! Every JSON and YAML file the action reads (package.json, the task definition, the AppSpec,
//! the config file, the event payload) is read here, one way: its size checked before it is read
//! whole (so a huge file costs no memory), UTF-8 required, and a leading byte order mark dropped
//! (editors on Windows write one; npm, the AWS CLI and YAML tools accept it), so a file reads the
//! same with or without one. Also here: the duplicate keys of a JSON text, which every JSON
//! parser of the action would otherwise settle silently by keeping the last.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};

/// The largest file of the repository the action reads (package.json, a task definition, an
/// AppSpec, the config file): far beyond any real one (a task definition registers at 64 KiB at
/// most), small enough that parsing it keeps the process well within its memory budget.
pub const FILE_LIMIT: u64 = 1024 * 1024;

/// The largest event payload read: GitHub caps a webhook payload at 25 MB.
pub const EVENT_LIMIT: u64 = 25 * 1024 * 1024;

/// The UTF-8 byte order mark.
const BOM: char = '\u{feff}';

/// Reads `path` (named `what` in messages: "the config file") as text: refused before reading
/// when it is larger than `limit` bytes, refused when it is not UTF-8, and without a leading
/// byte order mark.
pub(crate) fn read(path: &Path, what: &str, limit: u64) -> Result<String> {
    let read_error = |source| Error::ReadFile {
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    let too_large = |size: String| Error::UnusableFile {
        what: what.to_string(),
        path: path.to_path_buf(),
        problem: format!(
            "is {size} bytes, more than the {limit} this action reads; is this the right file?"
        ),
    };
    if size > limit {
        return Err(too_large(size.to_string()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Bounded even when the size said nothing (a pipe, a device, a file still growing).
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(format!("more than {limit}")));
    }
    let text = String::from_utf8(bytes).map_err(|e| Error::UnusableFile {
        what: what.to_string(),
        path: path.to_path_buf(),
        problem: format!(
            "is not UTF-8 text (the byte at offset {} is not); save it as UTF-8",
            e.utf8_error().valid_up_to()
        ),
    })?;
    // YAML's reader takes a NUL for the end of the text: what follows would be silently
    // dropped (`service: web1\0…`), so no file the action reads may hold one.
    if let Some(at) = text.find('\0') {
        return Err(Error::UnusableFile {
            what: what.to_string(),
            path: path.to_path_buf(),
            problem: format!(
                "has a NUL byte (at offset {at}), which no JSON or YAML text holds; save it as plain UTF-8 text"
            ),
        });
    }
    Ok(match text.strip_prefix(BOM) {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// `text` without a leading byte order mark (for text that did not come through [`read`]).
pub(crate) fn without_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// A key written twice in one JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub key: String,
    /// Where the second one is (line, column).
    pub at: (usize, usize),
}

/// The first key written twice in one object of the JSON `text`, at any depth; `None` when
/// there is none or the text is not JSON (its parser says so in its own words).
pub(crate) fn json_duplicate_key(text: &str) -> Option<DuplicateKey> {
    let e = serde_json::from_str::<NoDuplicates>(without_bom(text)).err()?;
    let message = e.to_string();
    let key = message
        .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
        .unwrap_or(&message)
        .strip_prefix(DUPLICATE)?;
    Some(DuplicateKey {
        key: key.to_string(),
        at: (e.line(), e.column()),
    })
}

/// The start of the message [`NoDuplicates`] fails with; the key follows.
const DUPLICATE: &str = "duplicate key: ";

/// Any JSON value, refused when one of its objects has a key twice.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<NoDuplicates, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key}")));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_key_is_found_at_any_depth_with_its_place() {
        let text = "{\n  \"version\": \"1.0.0\",\n  \"name\": \"x\",\n  \"version\": \"2.0.0\"\n}";
        let d = json_duplicate_key(text).unwrap();
        assert_eq!(d.key, "version");
        assert_eq!(d.at.0, 4);
        let nested = r#"{"a": [{"b": 1, "b": 2}]}"#;
        assert_eq!(json_duplicate_key(nested).unwrap().key, "b");
        assert_eq!(json_duplicate_key(r#"{"a": {"b": 1}, "b": 2}"#), None);
        assert_eq!(json_duplicate_key("\u{feff}{\"a\": 1}"), None);
        assert_eq!(json_duplicate_key("{not json"), None);
    }

    #[test]
    fn files_are_bounded_utf8_and_read_without_a_bom() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        std::fs::write(&p, "\u{feff}{\"a\": 1}").unwrap();
        assert_eq!(read(&p, "the file", 100).unwrap(), "{\"a\": 1}");
        let e = read(&p, "the file", 4).unwrap_err().to_string();
        assert!(
            e.contains("the file") && e.contains("more than the 4"),
            "{e}"
        );
        std::fs::write(&p, b"{\"a\": \"\xff\"}").unwrap();
        let e = read(&p, "the file", 100).unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && e.contains("offset 7"), "{e}");
        std::fs::write(&p, b"a: 1\0b: 2").unwrap();
        let e = read(&p, "the file", 100).unwrap_err().to_string();
        assert!(e.contains("NUL byte (at offset 4)"), "{e}");
        let e = read(&dir.path().join("none"), "the file", 100).unwrap_err();
        assert!(matches!(e, Error::ReadFile { .. }), "{e}");
    }
}
