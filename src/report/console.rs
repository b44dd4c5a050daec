//! Workflow commands on stdout: masks, log groups, warnings and the one error annotation.
//! Everything the runner reads from the log is written here, nowhere else.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Escapes a workflow command's message (`%`, CR, LF), as the runner's toolkit does.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (adds `:` and `,`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The `::add-mask::` lines for a secret (one per line of a multi-line secret).
pub fn mask_lines(secret: &str) -> Vec<String> {
    secret
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("::add-mask::{}", escape_data(l)))
        .collect()
}

/// Masks every secret before anything else is printed.
pub fn mask(secrets: &[String]) {
    let mut out = std::io::stdout().lock();
    for s in secrets {
        for line in mask_lines(s) {
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = out.flush();
}

/// A warning annotation: reporters use it so that their failures never fail the deploy.
pub fn warning(message: &str) {
    println!("::warning::{}", escape_data(message));
}

/// A notice annotation.
pub fn notice(message: &str) {
    println!("::notice::{}", escape_data(message));
}

/// The one error annotation of a failed run.
pub fn error(title: &str, message: &str) {
    println!(
        "::error title={}::{}",
        escape_property(title),
        escape_data(message)
    );
}

/// Whether log groups are written: off while several apps run at once, because the runner's
/// groups cannot nest or overlap (one app's `::endgroup::` would close another's group).
static GROUPS_OFF: AtomicBool = AtomicBool::new(false);
/// Whether a group is open: a group opened inside another is not written (no nesting).
static OPEN: AtomicBool = AtomicBool::new(false);

/// Turns log groups off (several apps run concurrently: their lines, each prefixed with the
/// app's name, interleave) or on again.
pub fn set_groups(on: bool) {
    GROUPS_OFF.store(!on, Ordering::SeqCst);
}

/// A log group: `::group::` now, `::endgroup::` when dropped, so a phase that fails still closes.
/// A no-op when groups are off or another group is open.
#[must_use = "the group closes when this guard is dropped"]
pub struct Group {
    written: bool,
}

impl Group {
    /// Opens a group with a title.
    pub fn start(title: &str) -> Group {
        let written = !GROUPS_OFF.load(Ordering::SeqCst)
            && OPEN
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        if written {
            println!("::group::{}", escape_data(title));
        }
        Group { written }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.written {
            println!("::endgroup::");
            OPEN.store(false, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_each_line_and_escapes() {
        assert_eq!(
            mask_lines("abc\n  def \n\n"),
            vec!["::add-mask::abc", "::add-mask::def"]
        );
        assert_eq!(mask_lines("50%"), vec!["::add-mask::50%25"]);
    }

    #[test]
    fn a_group_inside_an_open_group_is_not_written() {
        let _outer = Group::start("outer");
        let inner = Group::start("inner");
        assert!(!inner.written);
    }

    #[test]
    fn escapes_properties() {
        assert_eq!(escape_property("a:b,c\nd"), "a%3Ab%2Cc%0Ad");
    }
}
