//! What the run knows so far, written to the outputs and the job summary at once when the job is
//! cancelled (see `runner::shutdown` for the signals), and replaced by the final report when the
//! run ends.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::time::Instant;

use crate::report::{Report, Status, outputs, summary};
use crate::runner::redact::Redactor;

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
    pub(crate) fn publish(&self, report: &Report) {
        self.with(|s| {
            if !s.last {
                s.report = report.clone();
            }
        });
    }

    /// Replaces one app's report (matched by name; added when new).
    pub(crate) fn app(&self, app: &crate::report::AppReport) {
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
    pub(crate) fn last(&self, report: &Report, slack_ts: Option<&str>) {
        self.with(|s| {
            s.report = report.clone();
            s.last = true;
            s.slack_ts = slack_ts.map(str::to_string);
        });
    }

    /// What is known now: the final report, or the snapshot with every unfinished app marked
    /// cancelled (see [`as_known`]). Secrets redacted.
    pub(crate) fn report(&self) -> Report {
        let (mut report, last) = self
            .state
            .lock()
            .map(|s| (s.report.clone(), s.last))
            .unwrap_or_default();
        if !last {
            report.duration = self.started.elapsed();
            report = as_known(report);
        }
        crate::report::redact(&Redactor::known(), &mut report);
        report
    }

    /// Writes what is known to the outputs and the job summary, in place of what this run
    /// wrote there before. A file that cannot be written is a warning.
    pub(crate) fn write(&self) {
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
            crate::runner::console::warning(&e.to_string());
        }
        if let Err(e) = truncate(self.summary_file.as_deref(), offsets.1)
            .and_then(|()| summary::write(self.summary_file.as_deref(), &report))
        {
            crate::runner::console::warning(&e.to_string());
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
pub(crate) fn as_known(mut report: Report) -> Report {
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
