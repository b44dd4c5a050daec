//! The one shape of every deployment path. A path (rolling, CodeDeploy, ECS blue/green,
//! Kubernetes) is a [`Strategy`]: a first write ([`Strategy::start`]), following what it began
//! through `poll::until` ([`Strategy::follow`]), and taking it back when following stopped short
//! ([`Strategy::roll_back`]). [`drive`] tells that story once, in the same order for every path,
//! and decides the status once: a fifth path is one folder with one `impl Strategy` and one
//! match arm in `deploy::deploy`.

use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::outcome::{DeployPath, Outcome, Status, Verdict};
use crate::verify::{self, Gate};

/// The verification gate a path runs once its follow succeeded (rolling, Kubernetes), with the
/// run's cancellation and the words that name the target in the error.
pub(crate) struct AfterFollow<'a> {
    pub(crate) gate: &'a Gate,
    pub(crate) cancel: &'a CancellationToken,
    /// `app web1 (ECS service web1 in cluster prod)`.
    pub(crate) target: String,
}

/// How following a started deployment ended.
#[derive(Debug)]
pub(crate) enum Followed<S> {
    /// The deployment reached its goal: the new version serves.
    Succeeded,
    /// It stopped short (failed, timed out, the job was cancelled, the new tasks kept stopping):
    /// what [`Strategy::roll_back`] needs to take it back.
    Stopped(S),
    /// Another deployment (a person's, another run's) replaced ours: never rolled back over.
    /// The path has said so in the outcome; the deploy fails.
    Superseded(Error),
}

/// How a deploy ended when following it did not simply succeed: the status the app ends with
/// and the error that says why (none when it ended well after all: it finished before a stop
/// took effect).
#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) status: Status,
    pub(crate) error: Option<Error>,
}

impl Ended {
    /// Ended with `status`, `error` saying why.
    pub(crate) fn with(status: Status, error: Error) -> Ended {
        Ended {
            status,
            error: Some(error),
        }
    }

    /// Rolled back: traffic is on the previous version again; `error` is why it was needed.
    pub(crate) fn rolled_back(error: Error) -> Ended {
        Ended::with(Status::RolledBack, error)
    }

    /// Failed, with nothing (more) taken back.
    pub(crate) fn failed(error: Error) -> Ended {
        Ended::with(Status::Failed, error)
    }

    /// The job was cancelled before the deployment ended.
    pub(crate) fn cancelled(error: Error) -> Ended {
        Ended::with(Status::Cancelled, error)
    }

    /// `failed`, or `cancelled` when the error is the job's cancellation.
    pub fn of(error: Error) -> Ended {
        Ended::with(Ended::of_kind(&error), error)
    }

    /// The status an error alone ends a deploy with: `cancelled` for the job's cancellation,
    /// else `failed`.
    pub(crate) fn of_kind(error: &Error) -> Status {
        if matches!(error, Error::Cancelled { .. }) {
            Status::Cancelled
        } else {
            Status::Failed
        }
    }
}

impl From<Error> for Ended {
    fn from(error: Error) -> Ended {
        Ended::of(error)
    }
}

/// The phases every deployment path has. The strategy holds what it was given (its settings,
/// clients, the prepared revision, the cancellation token); each phase records its steps,
/// ids and links in the [`Outcome`], and the status comes back typed, never through the outcome.
pub(crate) trait Strategy {
    /// What the first write hands on: the deployment to follow and to roll back.
    type Started;
    /// Why following stopped short: what the rollback needs to know.
    type Stopped;

    /// The path this strategy deploys by (the `deployment-kind` output).
    fn path(&self) -> DeployPath;

    /// Whether to follow the deployment once started (`wait-for-service-stability`).
    fn follows(&self) -> bool;

    /// Why nothing needs starting, when nothing does (the revision is live already and no new
    /// deployment was asked for): the step the outcome records, and the deploy succeeds.
    fn unchanged(&self) -> Option<String> {
        None
    }

    /// The first write: UpdateService, CreateDeployment, the Deployment's patch. An error
    /// converts into `failed` (or `cancelled`, for the job's cancellation).
    async fn start(&self, outcome: &mut Outcome) -> Result<Self::Started, Ended>;

    /// Follows what `start` began to its end, through the one poll loop.
    async fn follow(
        &self,
        started: &mut Self::Started,
        outcome: &mut Outcome,
    ) -> Result<Followed<Self::Stopped>, Error>;

    /// Takes back what `start` began after `follow` stopped short (or says why it does not:
    /// `rollback-on-failure: false`, nothing to go back to).
    async fn roll_back(
        &self,
        started: Self::Started,
        stopped: Self::Stopped,
        outcome: &mut Outcome,
    ) -> Ended;

    /// The gate [`drive`] runs after a successful follow, when this path verifies there and
    /// `verify-*` is set. None by default: ECS blue/green and CodeDeploy verify inside their
    /// follow (at the pause hook, during the bake).
    fn gate_after_follow(&self) -> Option<AfterFollow<'_>> {
        None
    }

    /// What [`Strategy::roll_back`] gets when that verification failed (`error` says why), or
    /// the error back when the path does not roll back for it (the deploy fails).
    fn verification_stop(&self, error: Error) -> Result<Self::Stopped, Error> {
        Err(error)
    }

    /// Adds what the path can find out about a failure (the stopped tasks' cause and last log
    /// lines) to its error and the outcome. By default the error as it is.
    async fn explain(&self, error: Error, _outcome: &mut Outcome) -> Error {
        error
    }
}

/// A deploy's end as one value: the outcome with its status set, and the error when it did not
/// succeed.
pub(crate) type Driven = (Outcome, Option<Error>);

/// The story of every deploy, told once: start, follow unless told not to wait, roll back when
/// following stopped short, and the status decided here from what the phases returned.
pub(crate) async fn drive<S: Strategy>(strategy: &S, mut outcome: Outcome) -> Driven {
    outcome.kind = Some(strategy.path());
    let ended = run_phases(strategy, &mut outcome).await;
    match ended {
        Ok(()) => {
            outcome.status = Some(Status::Succeeded);
            (outcome, None)
        }
        Err(Ended { status, error }) => {
            let error = match error {
                Some(e) => Some(strategy.explain(e, &mut outcome).await),
                None => None,
            };
            outcome.status = Some(status);
            (outcome, error)
        }
    }
}

/// The phases in order; `Err` carries the status the deploy ends with.
async fn run_phases<S: Strategy>(strategy: &S, outcome: &mut Outcome) -> Result<(), Ended> {
    if let Some(step) = strategy.unchanged() {
        println!("{step}");
        outcome.steps.push(step);
        return Ok(());
    }
    let mut started = strategy.start(outcome).await?;
    if !strategy.follows() {
        return Ok(());
    }
    match strategy
        .follow(&mut started, outcome)
        .await
        .map_err(Ended::of)?
    {
        Followed::Succeeded => {}
        Followed::Superseded(error) => return Err(Ended::failed(error)),
        Followed::Stopped(stopped) => {
            return Err(strategy.roll_back(started, stopped, outcome).await);
        }
    }
    let Some(after) = strategy.gate_after_follow() else {
        return Ok(());
    };
    let Some(headline) = run_gate(after.gate, None, after.cancel, outcome).await else {
        return Ok(());
    };
    let error = Error::VerificationFailed {
        target: after.target,
        headline,
    };
    match strategy.verification_stop(error) {
        Ok(stopped) => Err(strategy.roll_back(started, stopped, outcome).await),
        Err(error) => Err(Ended::failed(error)),
    }
}

/// Runs `gate` once (`url_override` instead of `verify-url` when given), prints its headline
/// and details, and records it in the outcome (a step and `outcome.verification`): what every
/// path does with a verification, wherever it runs the gate. The headline when it failed.
pub(crate) async fn run_gate(
    gate: &Gate,
    url_override: Option<&str>,
    cancel: &CancellationToken,
    outcome: &mut Outcome,
) -> Option<String> {
    let verification = verify::verify(gate, url_override, cancel).await;
    let headline = verification.headline();
    println!("{headline}");
    for d in verification.details() {
        println!("  {d}");
    }
    outcome.steps.push(headline.clone());
    let failed = verification.verdict == Verdict::Failed;
    outcome.verification = Some(verification);
    failed.then_some(headline)
}

/// [`drive`] on an outcome the caller already holds (the skeleton's steps so far): the
/// outcome is replaced by the driven one, and the error comes back as the result.
pub(crate) async fn drive_into<S: Strategy>(
    strategy: &S,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let (driven, error) = drive(strategy, std::mem::take(outcome)).await;
    *outcome = driven;
    error.map_or(Ok(()), Err)
}
