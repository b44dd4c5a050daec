//! Workflow commands on stdout: masks, log groups, warnings and the one error annotation.
//! Everything the runner reads from the log is written here, nowhere else.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::location::FileLocation;

/// Escapes a workflow command's message (`%`, CR, LF), as the runner's toolkit does.
pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (adds `:` and `,`).
pub(crate) fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The `::add-mask::` lines for a secret (one per line of a multi-line secret).
pub(crate) fn mask_lines(secret: &str) -> Vec<String> {
    secret
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("::add-mask::{}", escape_data(l)))
        .collect()
}

/// Masks every secret before anything else is printed, and hands it to the one redactor, so
/// no message, summary or output built later carries it either.
pub(crate) fn mask(secrets: &[String]) {
    crate::runner::redact::remember(secrets);
    let lines: Vec<String> = secrets.iter().flat_map(|s| mask_lines(s)).collect();
    commands(&lines);
}

/// A warning annotation: reporters use it so that their failures never fail the deploy.
pub(crate) fn warning(message: &str) {
    commands(&[format!("::warning::{}", escape_data(message))]);
}

/// A notice annotation.
pub(crate) fn notice(message: &str) {
    commands(&[format!("::notice::{}", escape_data(message))]);
}

/// The one error annotation of a failed run, on the file (and line, column) it is about.
pub(crate) fn error(title: &str, message: &str, at: Option<&FileLocation>) {
    commands(&[error_line(title, message, at)]);
}

/// The `::error file=…,line=…,col=…,title=…::message` command (properties in the order
/// GitHub documents them; the file's path with `/` separators).
pub(crate) fn error_line(title: &str, message: &str, at: Option<&FileLocation>) -> String {
    let mut props = Vec::new();
    if let Some(l) = at {
        let file: Vec<String> = l
            .file
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        props.push(format!("file={}", escape_property(&file.join("/"))));
        props.extend(l.line.map(|n| format!("line={n}")));
        props.extend(l.col.map(|n| format!("col={n}")));
    }
    props.push(format!("title={}", escape_property(title)));
    format!("::error {}::{}", props.join(","), escape_data(message))
}

/// The token of the open `::stop-commands::` window and how many holders keep it open.
static STOPPED: Mutex<Option<(String, usize)>> = Mutex::new(None);

/// The lines that issue `commands` to the runner: as they are, or, while a stop-commands
/// window is open, between a resume (`::<token>::`) and a new `::stop-commands::<token>`.
pub(crate) fn command_lines(stopped: Option<&str>, commands: &[String]) -> Vec<String> {
    match stopped {
        None => commands.to_vec(),
        Some(token) => std::iter::once(format!("::{token}::"))
            .chain(commands.iter().cloned())
            .chain(std::iter::once(format!("::stop-commands::{token}")))
            .collect(),
    }
}

/// Writes workflow commands. Inside a stop-commands window (a build is printing its own
/// output) they are wrapped so that the runner still reads them: a mask or a warning of
/// another app running at the same time must not be lost.
fn commands(lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let stopped = STOPPED.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = std::io::stdout().lock();
    for line in command_lines(stopped.as_ref().map(|(t, _)| t.as_str()), lines) {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// Keeps the runner from reading workflow commands while text from outside is printed (a
/// build's `RUN` output could print `::add-mask::`, `::error::` or `::stop-commands::`): opens
/// `::stop-commands::<token>` now and resumes with `::<token>::` when the last holder drops.
/// Concurrent builds share one window; the token must be unpredictable (a random id).
#[must_use = "commands resume when this guard is dropped"]
pub struct StopCommands(());

impl StopCommands {
    /// Opens the window with `token`, or joins the one already open.
    pub fn start(token: &str) -> StopCommands {
        let mut stopped = STOPPED.lock().unwrap_or_else(|e| e.into_inner());
        match stopped.as_mut() {
            Some((_, holders)) => *holders += 1,
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "::stop-commands::{token}");
                let _ = out.flush();
                *stopped = Some((token.to_string(), 1));
            }
        }
        StopCommands(())
    }
}

impl Drop for StopCommands {
    fn drop(&mut self) {
        let mut stopped = STOPPED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, holders)) = stopped.as_mut() {
            *holders -= 1;
            if *holders == 0 {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "::{token}::");
                let _ = out.flush();
                *stopped = None;
            }
        }
    }
}

/// Whether log groups are written: off while several apps run at once, because the runner's
/// groups cannot nest or overlap (one app's `::endgroup::` would close another's group).
static GROUPS_OFF: AtomicBool = AtomicBool::new(false);
/// Whether a group is open: a group opened inside another is not written (no nesting).
static OPEN: AtomicBool = AtomicBool::new(false);

/// Turns log groups off (several apps run concurrently: their lines, each prefixed with the
/// app's name, interleave) or on again.
pub(crate) fn set_groups(on: bool) {
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
            commands(&[format!("::group::{}", escape_data(title))]);
        }
        Group { written }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.written {
            commands(&["::endgroup::".to_string()]);
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
    fn commands_inside_a_stop_commands_window_are_wrapped_in_a_resume_and_a_new_stop() {
        let cmds = vec!["::add-mask::x".to_string(), "::warning::w".to_string()];
        assert_eq!(command_lines(None, &cmds), cmds);
        assert_eq!(
            command_lines(Some("tok123"), &cmds),
            vec![
                "::tok123::",
                "::add-mask::x",
                "::warning::w",
                "::stop-commands::tok123"
            ]
        );
    }

    #[test]
    fn an_error_about_a_file_names_it_and_its_line_before_the_title() {
        let at = FileLocation::new("apps/web1/package.json", Some((4, 3)));
        assert_eq!(
            error_line("ecs-deploy failed", "bad, really\nbad", Some(&at)),
            "::error file=apps/web1/package.json,line=4,col=3,title=ecs-deploy failed::bad, really%0Abad"
        );
        assert_eq!(error_line("t", "m", None), "::error title=t::m");
    }

    #[test]
    fn escapes_properties() {
        assert_eq!(escape_property("a:b,c\nd"), "a%3Ab%2Cc%0Ad");
    }
}
