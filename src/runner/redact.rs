//! The one redactor: every secret value the run knows (secret inputs, each build secret's value,
//! ECR's token and password) is replaced by `***` in everything that leaves the process but the
//! masked log: Slack, Discord and GitHub bodies, the job summary, the outputs, and the build's
//! own lines as they are printed. The runner masks only the log it reads; a chat message or an
//! output file never passes through it.
//!
//! Every secret reaches the runner through [`console::mask`](crate::runner::console::mask),
//! which also hands it to [`remember`] here: the process-wide list is what the runner was told
//! to hide, so the redactor and the log's masking can never disagree. The ECR password, learnt
//! deep in the image step, is caught the same way as an input.

use std::sync::Mutex;

/// Every secret value masked so far in this process.
static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds secret values to the process-wide list (called by `console::mask`).
pub(crate) fn remember(secrets: &[String]) {
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    for s in secrets {
        if !known.contains(s) {
            known.push(s.clone());
        }
    }
}

/// Replaces known secret values with `***`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    /// The texts to replace, longest first (see [`secret_forms`]).
    forms: Vec<String>,
}

impl Redactor {
    /// A redactor for exactly these values.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        Redactor {
            forms: secret_forms(secrets),
        }
    }

    /// A redactor for every value masked so far in this process.
    pub(crate) fn known() -> Redactor {
        let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Redactor::new(known)
    }

    /// `text` with every secret replaced by `***`.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.forms {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    /// True when there is nothing to hide: callers skip their walk.
    pub(crate) fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    pub(crate) fn field(&self, value: &mut String) {
        if self.forms.iter().any(|s| value.contains(s.as_str())) {
            *value = self.text(value);
        }
    }

    pub(crate) fn opt(&self, value: &mut Option<String>) {
        if let Some(v) = value {
            self.field(v);
        }
    }
}

/// The texts to scrub for a set of secrets: each secret, each line of a multi-line one (a PEM
/// key shows up line by line in a build log), and for a URL also its path (a webhook URL's
/// token is in the path, and some errors print the path without the host). Longest first, so a
/// URL is replaced whole before its path is.
fn secret_forms(secrets: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in secrets.into_iter().filter(|s| !s.trim().is_empty()) {
        let path = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
            // A bare "/" or "/api" says nothing secret; a webhook path is long.
            .filter(|p| p.len() >= 12);
        out.extend(path);
        if s.contains('\n') {
            out.extend(
                s.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        out.push(s);
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_replaced_wherever_it_is() {
        let r = Redactor::new(["https://hooks.example/T0/B0/XYZ".to_string()]);
        assert_eq!(
            r.text("POST https://hooks.example/T0/B0/XYZ failed"),
            "POST *** failed"
        );
    }

    #[test]
    fn a_webhook_path_alone_and_each_line_of_a_multi_line_secret_are_redacted_too() {
        let r = Redactor::new([
            "https://discord.test/api/webhooks/123/TOKENabc".to_string(),
            "-----BEGIN KEY-----\nAAAAsecretline\n-----END KEY-----\n".to_string(),
        ]);
        assert_eq!(
            r.text("POST /api/webhooks/123/TOKENabc: 404"),
            "POST ***: 404"
        );
        assert_eq!(r.text("   AAAAsecretline"), "   ***");
    }

    #[test]
    fn empty_values_redact_nothing() {
        let r = Redactor::new([String::new(), "  ".to_string()]);
        assert_eq!(r.text("a b"), "a b");
    }

    #[test]
    fn remembered_secrets_are_known_to_every_later_redactor() {
        remember(&["remembered-0451".to_string()]);
        assert_eq!(Redactor::known().text("x remembered-0451 y"), "x *** y");
    }
}
