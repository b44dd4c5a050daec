//! How long a deployment may take and how often it is looked at: one value for every path,
//! built once from the rollout settings (`Timing::of`); tests and benchmarks shorten it.

use std::time::Duration;

use super::poll::Poller;
use crate::inputs::RolloutSettings;

/// How long to wait behind another unfinished deployment of the same target before giving up.
const QUEUE_LIMIT: Duration = Duration::from_secs(600);

/// How soon a path looks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// The path's own phase-aware cadence (its `progress::Policy`): near when a change is due,
    /// far while nothing can move. A real run's.
    Phased,
    /// One fixed interval in every phase: tests, and benchmarks comparing with a fixed poll.
    Every(Duration),
}

impl Cadence {
    /// The fixed interval, or `phased` (the path's one interval in a real run).
    pub(crate) fn interval_or(self, phased: Duration) -> Duration {
        match self {
            Cadence::Phased => phased,
            Cadence::Every(d) => d,
        }
    }
}

/// The timing of one deploy, whatever its path.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long the deployment may take (`wait-for-minutes`) before it is rolled back.
    pub timeout: Duration,
    /// How long a rollback may take to bring the previous version back.
    pub rollback_timeout: Duration,
    /// How long to wait for another unfinished deployment of the target to end before ours.
    pub queue_limit: Duration,
    /// The longest pause between two looks (`wait-max-delay-seconds`; `Duration::MAX`: none).
    pub max_delay: Duration,
    /// How soon to look again.
    pub cadence: Cadence,
    /// The run's poller, so the looks of apps deploying together share calls; `None`: this
    /// deploy's looks are its own.
    pub poller: Option<Poller>,
}

impl Timing {
    /// A real run's timing: `wait-for-minutes` for the deployment and again for a rollback, at
    /// most 10 minutes behind another deployment, `wait-max-delay-seconds`, each path's own
    /// phase-aware cadence.
    pub fn of(rollout: &RolloutSettings) -> Timing {
        let wait = rollout.deploy_wait();
        Timing {
            timeout: wait,
            rollback_timeout: wait,
            queue_limit: QUEUE_LIMIT,
            max_delay: rollout.poll_cap(),
            cadence: Cadence::Phased,
            poller: None,
        }
    }

    /// This timing, looking through the run's `poller`.
    pub(crate) fn with_poller(self, poller: &Poller) -> Timing {
        Timing {
            poller: Some(poller.clone()),
            ..self
        }
    }
}
