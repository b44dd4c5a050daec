//! A cancelled job's last seconds. GitHub sends SIGINT, then SIGTERM 7.5 s later and SIGKILL
//! 2.5 s after that; a runner killed early loses every output. On the first signal the run is
//! cancelled (each step stops and rolls back what it started) and what is known is written to
//! the outputs and the job summary at once; the rollback, the final outputs and the reporters
//! then share what remains of [`EXIT_WITHIN`]. A second signal, or the end of that budget,
//! writes what is known and ends the process, whatever is still running.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Takes one signal: the first cancels the run, the second asks to end the process now.
    pub(crate) fn signal(&self) {
        if self.inner.first.set(Instant::now()).is_ok() {
            self.inner.cancel.cancel();
        } else {
            self.inner.now.cancel();
        }
    }

    /// When the first signal came.
    pub(crate) fn signalled_at(&self) -> Option<Instant> {
        self.inner.first.get().copied()
    }

    /// Resolves `after` the first signal (never without one).
    pub(crate) async fn after(&self, after: Duration) {
        self.inner.cancel.cancelled().await;
        let at = self.signalled_at().unwrap_or_else(Instant::now);
        tokio::time::sleep_until(at + after).await;
    }

    /// Resolves when the process must end: a second signal, or [`STOP_AT`] after the first.
    pub(crate) async fn stop(&self) {
        tokio::select! {
            () = self.inner.now.cancelled() => {}
            () = self.after(STOP_AT) => {}
        }
    }

    /// Turns SIGTERM and SIGINT (what GitHub sends when a job is cancelled) into [`signal`]
    /// calls, with a line in the log for each.
    ///
    /// [`signal`]: Shutdown::signal
    pub(crate) fn listen(&self) {
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
pub(crate) fn unless_cancelled(
    cancel: &CancellationToken,
    what: impl FnOnce() -> String,
) -> crate::error::Result<()> {
    if cancel.is_cancelled() {
        return Err(crate::error::Error::Cancelled { what: what() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
