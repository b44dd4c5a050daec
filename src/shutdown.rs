//! A cancelled job's last seconds. GitHub sends SIGINT, then SIGTERM 7.5 s later and SIGKILL
//! 2.5 s after that; a runner killed early loses every output. On the first signal the run is
//! cancelled (each step stops and rolls back what it started) and what is known is written to
//! the outputs and the job summary at once; the rollback, the final outputs and the reporters
//! then share what remains of [`EXIT_WITHIN`]. A second signal, or the end of that budget,
//! writes what is known and ends the process, whatever is still running.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::report::redact::Redactor;
use crate::report::{Report, Status, outputs, summary};

/// The process is gone this long after the first signal, whatever the services it talks to do.
pub const EXIT_WITHIN: Duration = Duration::from_secs(8);

/// After the first signal, reporters still talking are given up this long after it.
pub const REPORT_WITHIN: Duration = Duration::from_secs(7);

/// After the first signal, what is known is written and the process ends this long after it:
/// half a second before [`EXIT_WITHIN`] for the last write and the exit itself.
pub const STOP_AT: Duration = Duration::from_millis(7500);

/// The signals of a run: the cancellation every step watches, when it came, and the second
/// signal that ends the process. Cheap to clone; every clone sees the same signals.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Signals>,
}

#[derive(Debug, Default)]
struct Signals {
    cancel: CancellationToken,
    now: CancellationToken,
    first: OnceLock<Instant>,
}

impl Shutdown {
    /// A shutdown no signal reached yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// The token every step of the run watches: cancelled by the first signal.
    pub fn token(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Takes one signal: the first cancels the run, the second asks to end the process now.
    pub fn signal(&self) {
        if self.inner.first.set(Instant::now()).is_ok() {
            self.inner.cancel.cancel();
        } else {
            self.inner.now.cancel();
        }
    }

    /// When the first signal came.
    pub fn signalled_at(&self) -> Option<Instant> {
        self.inner.first.get().copied()
    }

    /// Resolves `after` the first signal (never without one).
    pub async fn after(&self, after: Duration) {
        self.inner.cancel.cancelled().await;
        let at = self.signalled_at().unwrap_or_else(Instant::now);
        tokio::time::sleep_until(at + after).await;
    }

    /// Resolves when the process must end: a second signal, or [`STOP_AT`] after the first.
    pub async fn stop(&self) {
        tokio::select! {
            () = self.inner.now.cancelled() => {}
            () = self.after(STOP_AT) => {}
        }
    }

    /// Turns SIGTERM and SIGINT (what GitHub sends when a job is cancelled) into [`signal`]
    /// calls, with a line in the log for each.
    ///
    /// [`signal`]: Shutdown::signal
    pub fn listen(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    me.announce_and_signal();
                }
            }
            #[cfg(not(unix))]
            loop {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                me.announce_and_signal();
            }
        });
    }

    fn announce_and_signal(&self) {
        if self.signalled_at().is_none() {
            println!(
                "cancellation requested: the outputs and the job summary are written now; stopping and rolling back what was started, then reporting, within {}s",
                EXIT_WITHIN.as_secs()
            );
        } else {
            println!("second signal: writing what is known and exiting now");
        }
        self.signal();
    }
}

/// Fails with [`Error::Cancelled`] (`what` says where the run stopped) once the run was
/// cancelled: every write (register, RunTask, UpdateService, CreateDeployment, the image push)
/// is preceded by this check, so nothing new starts after a signal.
pub fn unless_cancelled(
    cancel: &CancellationToken,
    what: impl FnOnce() -> String,
) -> crate::error::Result<()> {
    if cancel.is_cancelled() {
        return Err(crate::error::Error::Cancelled { what: what() });
    }
    Ok(())
}

/// What the run knows so far, and the runner's files it is written to. The run publishes its
/// report as it goes; [`Known::write`] puts the latest of it in the outputs and the job summary,
/// replacing what this run wrote there before (so a second write is not a second summary).
#[derive(Debug)]
pub struct Known {
    started: Instant,
    output_file: Option<PathBuf>,
    summary_file: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    report: Report,
    /// The run ended: the report is final, not a snapshot.
    last: bool,
    slack_ts: Option<String>,
    /// Where this run's text starts in each file: it is replaced at each write.
    offsets: Option<(u64, u64)>,
}

impl Known {
    /// Nothing known yet; writes go to these files (the runner's `GITHUB_OUTPUT` and
    /// `GITHUB_STEP_SUMMARY`; none for a CLI run).
    pub fn new(output_file: Option<&Path>, summary_file: Option<&Path>) -> Known {
        Known {
            started: Instant::now(),
            output_file: output_file.map(Path::to_path_buf),
            summary_file: summary_file.map(Path::to_path_buf),
            state: Mutex::new(State::default()),
        }
    }

    /// Replaces the whole report so far (run facts, trigger, apps as planned).
    pub fn publish(&self, report: &Report) {
        self.with(|s| {
            if !s.last {
                s.report = report.clone();
            }
        });
    }

    /// Replaces one app's report (matched by name; added when new).
    pub fn app(&self, app: &crate::report::AppReport) {
        self.with(|s| {
            if s.last {
                return;
            }
            match s.report.apps.iter_mut().find(|a| a.app == app.app) {
                Some(slot) => *slot = app.clone(),
                None => s.report.apps.push(app.clone()),
            }
        });
    }

    /// The run's final report: later writes write it as it is.
    pub fn last(&self, report: &Report, slack_ts: Option<&str>) {
        self.with(|s| {
            s.report = report.clone();
            s.last = true;
            s.slack_ts = slack_ts.map(str::to_string);
        });
    }

    /// The Slack message `ts` once the reporters are done (the outcome may have posted one).
    pub fn slack_ts(&self, ts: Option<&str>) {
        self.with(|s| s.slack_ts = ts.map(str::to_string));
    }

    /// What is known now: the final report, or the snapshot with every unfinished app marked
    /// cancelled (see [`as_known`]). Secrets redacted.
    pub fn report(&self) -> Report {
        let (mut report, last) = self
            .state
            .lock()
            .map(|s| (s.report.clone(), s.last))
            .unwrap_or_default();
        if !last {
            report.duration = self.started.elapsed();
            report = as_known(report);
        }
        Redactor::known().report(&mut report);
        report
    }

    /// Writes what is known to the outputs and the job summary, in place of what this run
    /// wrote there before. A file that cannot be written is a warning.
    pub fn write(&self) {
        let report = self.report();
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        let offsets = *s.offsets.get_or_insert_with(|| {
            (
                length(self.output_file.as_deref()),
                length(self.summary_file.as_deref()),
            )
        });
        let outputs = outputs::outputs(&report, s.slack_ts.as_deref());
        if let Err(e) = truncate(self.output_file.as_deref(), offsets.0)
            .and_then(|()| outputs::write(self.output_file.as_deref(), &outputs))
        {
            crate::report::console::warning(&e.to_string());
        }
        if let Err(e) = truncate(self.summary_file.as_deref(), offsets.1)
            .and_then(|()| summary::write(self.summary_file.as_deref(), &report))
        {
            crate::report::console::warning(&e.to_string());
        }
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }
}

/// A snapshot as it is written when the run cannot finish: every app that has no outcome yet is
/// `cancelled`, with an error that says so; a run cancelled before any app started says that.
/// Pure.
pub fn as_known(mut report: Report) -> Report {
    for a in report.apps.iter_mut().filter(|a| a.status.is_none()) {
        a.status = Some(Status::Cancelled);
        a.error = Some(format!(
            "the job was cancelled before {} finished; this is what was known then: a rollback may have been requested, so check the service's deployments",
            a.app
        ));
    }
    if report.apps.is_empty() && report.error.is_none() && report.skip_reason.is_none() {
        report.error =
            Some("the job was cancelled before any app started: nothing was written".into());
    }
    report
}

fn length(path: Option<&Path>) -> u64 {
    path.and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Cuts `path` back to `len` bytes (what was there before this run wrote to it).
fn truncate(path: Option<&Path>, len: u64) -> crate::error::Result<()> {
    let Some(p) = path else { return Ok(()) };
    if length(Some(p)) <= len {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|f| f.set_len(len))
        .map_err(|source| crate::error::Error::WriteFile {
            what: "the outputs or the job summary".into(),
            path: p.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::AppReport;

    fn app(name: &str, status: Option<Status>) -> AppReport {
        AppReport {
            app: name.into(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn unfinished_apps_are_written_as_cancelled_and_finished_ones_as_they_ended() {
        let report = as_known(Report {
            apps: vec![app("web1", Some(Status::Succeeded)), app("web2", None)],
            ..Default::default()
        });
        assert_eq!(report.apps[0].status, Some(Status::Succeeded));
        assert_eq!(report.apps[0].error, None);
        assert_eq!(report.apps[1].status, Some(Status::Cancelled));
        assert!(
            report.apps[1]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("cancelled before web2 finished")),
            "{:?}",
            report.apps[1].error
        );
        assert_eq!(report.status(), Status::Cancelled);
        let early = as_known(Report::default());
        assert!(early.error.is_some_and(|e| e.contains("before any app")));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_signal_cancels_and_the_stop_comes_with_the_second_or_at_the_deadline() {
        let s = Shutdown::new();
        assert!(!s.token().is_cancelled());
        s.signal();
        assert!(s.token().is_cancelled());
        let start = Instant::now();
        s.stop().await;
        assert_eq!(start.elapsed(), STOP_AT);
        let s = Shutdown::new();
        s.signal();
        s.signal();
        let start = Instant::now();
        s.stop().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(STOP_AT < EXIT_WITHIN && REPORT_WITHIN < STOP_AT);
    }

    #[test]
    fn a_second_write_replaces_the_first_and_keeps_what_was_there_before() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sum = dir.path().join("sum");
        std::fs::write(&out, "before=1\n").unwrap();
        std::fs::write(&sum, "# before\n").unwrap();
        let known = Known::new(Some(&out), Some(&sum));
        known.publish(&Report {
            apps: vec![app("web1", None)],
            ..Default::default()
        });
        known.write();
        let first = std::fs::read_to_string(&out).unwrap();
        assert!(first.contains("cancelled"), "{first}");
        known.last(
            &Report {
                apps: vec![app("web1", Some(Status::RolledBack))],
                ..Default::default()
            },
            Some("1700000000.000100"),
        );
        known.write();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("before=1\n"), "{text}");
        assert_eq!(text.matches("status<<").count(), 1, "{text}");
        assert!(text.contains("rolled-back") && text.contains("1700000000.000100"));
        let summary = std::fs::read_to_string(&sum).unwrap();
        assert!(summary.starts_with("# before\n"), "{summary}");
        assert!(!summary.contains("cancelled before"), "{summary}");
    }
}
