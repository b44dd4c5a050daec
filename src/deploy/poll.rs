//! The one wait loop of every deployment path (rolling, CodeDeploy, ECS blue/green, the one-off
//! task, Kubernetes): deadline, cancellation, backoff while the API throttles, a bounded run of
//! transient read errors, and progress lines printed when they change. A path brings two things:
//! its look (one read of what it waits for) and a pure interval policy (how soon to look again,
//! given what the last look showed). [`toward`] is the policy's common shape: look rarely while
//! the next change is far off and often from just before it is due, so a deployment that ends
//! when its group or strategy says it will is seen ending within a second.
//!
//! [`Batcher`] is the other shared part: it answers the looks of several waiters with one call
//! per cluster, so ten services cost what one does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use aws_sdk_codedeploy::types::DeploymentInfo;
use aws_sdk_ecs::types::{Service, ServiceDeployment};

use crate::error::{Error, Result, error_chain};

/// Consecutive transient read errors a wait tolerates before it gives up.
pub const MAX_TRANSIENT: u32 = 4;

/// The longest interval that throttling backs off to.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The interval after a failed first look, before any policy has spoken.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// What kind of failure a read is, for the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The API (AWS, Kubernetes) said "slow down": back off and keep waiting.
    Throttled,
    /// The read failed on the way (timeout, connection, a 5xx): try again, a bounded number of
    /// times in a row.
    Transient,
    /// The answer says the wait cannot go on (access denied, a deployment that does not exist,
    /// a rollout that failed): the loop ends with the error.
    Fatal,
}

/// Classifies an SDK error by its kind and, for service errors, by the error code the SDK
/// parsed ([`ProvideErrorMetadata::code`], matched against the SDK's own throttling and
/// transient code lists) and the HTTP status.
pub(crate) fn kind_of<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Kind {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Kind::Transient,
        SdkError::DispatchFailure(d) if !d.is_user() => Kind::Transient,
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code();
            if code.is_some_and(|c| THROTTLING_ERRORS.contains(&c)) {
                Kind::Throttled
            } else if code.is_some_and(|c| TRANSIENT_ERRORS.contains(&c))
                || ctx.raw().status().is_server_error()
            {
                Kind::Transient
            } else {
                Kind::Fatal
            }
        }
        _ => Kind::Fatal,
    }
}

/// A failed look: its kind and the error that names it.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub error: Error,
}

impl Failure {
    /// A failure the wait cannot go on after.
    pub(crate) fn fatal(error: Error) -> Failure {
        Failure {
            kind: Kind::Fatal,
            error,
        }
    }

    /// A failed AWS call, classified by [`kind_of`].
    pub(crate) fn aws<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E>,
    ) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Failure {
            kind: kind_of(&err),
            error: Error::aws(service, operation, err),
        }
    }
}

/// A failed look that several waiters share (the answer of one batched call).
#[derive(Debug, Clone)]
pub struct LookError {
    pub service: &'static str,
    pub operation: &'static str,
    pub message: String,
    pub kind: Kind,
}

impl LookError {
    /// The shared failure of a batched AWS call.
    pub(crate) fn aws<E>(
        service: &'static str,
        operation: &'static str,
        err: &SdkError<E>,
    ) -> LookError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        LookError {
            service,
            operation,
            message: error_chain(err),
            kind: kind_of(err),
        }
    }

    /// This waiter's copy, as a [`Failure`].
    pub(crate) fn failure(&self) -> Failure {
        Failure {
            kind: self.kind,
            error: Error::Aws {
                service: self.service,
                operation: self.operation,
                message: self.message.clone(),
            },
        }
    }
}

/// The interval after `throttled` throttling answers in a row: each doubles it, up to
/// [`MAX_BACKOFF`] (never below the interval itself).
pub(crate) fn backoff(interval: Duration, throttled: u32) -> Duration {
    if throttled == 0 {
        return interval;
    }
    let factor = 1u32 << throttled.min(8);
    interval
        .saturating_mul(factor)
        .min(MAX_BACKOFF)
        .max(interval)
}

/// When the next change of what is waited for is expected, as far as a policy knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing tells when.
    Unknown,
    /// Due in this long.
    In(Duration),
    /// Due this long ago and not seen yet.
    Overdue(Duration),
}

impl Expect {
    /// The expectation of a change due at `at`, seen from `now`.
    pub(crate) fn at(at: Instant, now: Instant) -> Expect {
        if at >= now {
            Expect::In(at - now)
        } else {
            Expect::Overdue(now - at)
        }
    }
}

/// How a policy approaches an expected change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// The interval from `lead` before the change until `linger` after it.
    pub near: Duration,
    /// The longest interval while the change is far off.
    pub far: Duration,
    /// How long before the change the near interval starts.
    pub lead: Duration,
    /// How long after it is due the near interval goes on, when it is late.
    pub linger: Duration,
}

impl Pace {
    /// The same interval whatever is expected (tests, and the comparison in the benchmark).
    pub fn every(interval: Duration) -> Pace {
        Pace {
            near: interval,
            far: interval,
            lead: Duration::ZERO,
            linger: Duration::ZERO,
        }
    }
}

/// The interval toward an expected change: `far` at most while it is far off, ending `lead`
/// before it is due; `near` from then until `linger` after it; `otherwise` when nothing is
/// known or the change is later than that. Pure.
pub(crate) fn toward(pace: &Pace, expect: Expect, otherwise: Duration) -> Duration {
    match expect {
        Expect::In(d) if d > pace.lead => (d - pace.lead).clamp(pace.near, pace.far.max(pace.near)),
        Expect::In(_) => pace.near,
        Expect::Overdue(d) if d <= pace.linger => pace.near,
        Expect::Unknown | Expect::Overdue(_) => otherwise,
    }
}

/// What one look found.
#[derive(Debug, Clone, PartialEq)]
pub enum Look<T, P> {
    /// What was waited for happened (or ended): the loop returns this.
    Done(T),
    /// Not yet; the policy's input for the next interval.
    Running(P),
}

/// How a wait ended, when no error ended it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended<T> {
    Done(T),
    /// The deadline passed first.
    TimedOut,
    /// The cancellation token fired first.
    Cancelled,
}

/// The frame of one wait: what it is for messages, until when, what stops it.
pub struct Wait<'a> {
    /// Prefix of the loop's own lines (throttling, retries).
    pub label: &'a str,
    /// What is read, for those lines: `CodeDeploy deployment d-123`.
    pub what: String,
    /// Where a person can look when the wait gives up on reading: a console link or page.
    pub where_to_look: String,
    pub deadline: Instant,
    /// None: the wait does not listen to a cancellation (a rollback being followed).
    pub cancel: Option<&'a CancellationToken>,
    /// Every interval is at most this (a short follow after a cancellation).
    pub cap: Duration,
    /// Builds the error the wait ends with after too many transient errors.
    pub fail: &'a (dyn Fn(String) -> Error + Sync),
}

/// Sleeps until `at`: the first step of a look that does not wait on a [`Batcher`].
pub(crate) async fn at(at: Instant) {
    tokio::time::sleep_until(at).await;
}

/// Waits by looking, until a look says done, the deadline passes or the token fires.
///
/// `look(at)` reads once, no earlier than it needs to be fresh at `at` (a plain look sleeps
/// until then, a batched one may be answered sooner by another waiter's call), and answers what
/// it saw and its progress. `show(before, now, elapsed)` prints or records progress whenever
/// it differs from the last (`last`, kept by the caller across waits of one deployment).
/// `policy(running, elapsed)` is the interval to the next look. Throttling backs off
/// ([`backoff`]); [`MAX_TRANSIENT`] transient errors in a row end the wait with `wait.fail`,
/// saying the deployment may still be running and where to look; a fatal one ends it at once.
pub(crate) async fn until<T, P, Pr>(
    wait: &Wait<'_>,
    last: &mut Option<Pr>,
    policy: impl Fn(&P, Duration) -> Duration,
    mut look: impl AsyncFnMut(Instant) -> std::result::Result<(Look<T, P>, Pr), Failure>,
    mut show: impl FnMut(Option<&Pr>, &Pr, Duration),
) -> Result<Ended<T>>
where
    Pr: PartialEq,
{
    let started = Instant::now();
    let mut due = started;
    let mut interval = FIRST_RETRY.min(wait.cap);
    let (mut throttled, mut transient) = (0u32, 0u32);
    loop {
        let cancelled = async {
            match wait.cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let answer = tokio::select! {
            biased;
            () = cancelled => return Ok(Ended::Cancelled),
            a = look(due.min(wait.deadline)) => a,
        };
        match answer {
            Ok((seen, progress)) => {
                throttled = 0;
                transient = 0;
                if last.as_ref() != Some(&progress) {
                    show(last.as_ref(), &progress, started.elapsed());
                    *last = Some(progress);
                }
                match seen {
                    Look::Done(t) => return Ok(Ended::Done(t)),
                    Look::Running(p) => interval = policy(&p, started.elapsed()),
                }
            }
            Err(f) => match f.kind {
                Kind::Throttled => {
                    throttled += 1;
                    println!(
                        "{}: reads of {} are throttled; backing off ({})",
                        wait.label, wait.what, f.error
                    );
                }
                Kind::Transient => {
                    transient += 1;
                    if transient >= MAX_TRANSIENT {
                        return Err((wait.fail)(format!(
                            "{} could not be read {transient} times in a row (last: {}); it may still be running: look at {}",
                            wait.what, f.error, wait.where_to_look
                        )));
                    }
                    println!(
                        "{}: could not read {}, trying again: {}",
                        wait.label, wait.what, f.error
                    );
                }
                Kind::Fatal => return Err(f.error),
            },
        }
        if Instant::now() >= wait.deadline {
            return Ok(Ended::TimedOut);
        }
        due = Instant::now() + backoff(interval.min(wait.cap), throttled).min(wait.cap);
    }
}

/// A batched read: the answers for `items` (at most `per_call` of them) of one key (a cluster),
/// by item; an item missing from the map is missing in AWS.
pub type Fetch<A> = Box<
    dyn Fn(
            String,
            Vec<String>,
        ) -> BoxFuture<'static, std::result::Result<HashMap<String, A>, LookError>>
        + Send
        + Sync,
>;

type Answer<A> = std::result::Result<Option<A>, LookError>;

/// How long the first ask of a call waits for other waiters' asks when it is due at once
/// (apps that start waiting together share their first call).
const GATHER: Duration = Duration::from_millis(40);

struct Ask<A> {
    item: String,
    /// When the asker wants the answer at the latest.
    wake: Instant,
    reply: oneshot::Sender<Answer<A>>,
}

struct BatchState<A> {
    pending: HashMap<String, Vec<Ask<A>>>,
    /// The earliest timer running for each key.
    timers: HashMap<String, Instant>,
    /// When each key was last called.
    last: HashMap<String, Instant>,
}

struct Shared<A> {
    fetch: Fetch<A>,
    per_call: usize,
    /// The least time between two calls of one key.
    min_gap: Duration,
    state: Mutex<BatchState<A>>,
    calls: AtomicU64,
}

/// Answers the looks of every waiter of a run, per key (a cluster): one call answers every
/// waiter of that key, those whose look is due and those who would look later, up to
/// `per_call` items a call. So a key is read as often as its most eager waiter asks, whatever
/// the number of waiters. Cheap to clone.
pub struct Batcher<A> {
    shared: Arc<Shared<A>>,
}

impl<A> Clone for Batcher<A> {
    fn clone(&self) -> Self {
        Batcher {
            shared: self.shared.clone(),
        }
    }
}

impl<A: Clone + Send + 'static> Batcher<A> {
    /// A batcher reading through `fetch`, `per_call` items a call.
    pub fn new(per_call: usize, fetch: Fetch<A>) -> Batcher<A> {
        Batcher::with_min_gap(per_call, fetch, Duration::ZERO)
    }

    /// A batcher that calls a key at most once every `min_gap`: an ask due sooner waits for
    /// the gap (the run's DescribeServices stay at one a second per cluster, the preflight's
    /// look and the waits' first looks included).
    pub(crate) fn with_min_gap(per_call: usize, fetch: Fetch<A>, min_gap: Duration) -> Batcher<A> {
        Batcher {
            shared: Arc::new(Shared {
                fetch,
                per_call: per_call.max(1),
                min_gap,
                state: Mutex::new(BatchState {
                    pending: HashMap::new(),
                    timers: HashMap::new(),
                    last: HashMap::new(),
                }),
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// How many calls this batcher has made.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// A fresh answer for `item` of `key`, from a call made no later than `due` (sooner when
    /// another waiter's call comes first); `None` when AWS says it is missing.
    pub(crate) async fn look(&self, key: &str, item: &str, due: Instant) -> Answer<A> {
        let (reply, answer) = oneshot::channel();
        let now = Instant::now();
        let wake = if due <= now { now + GATHER } else { due };
        let start_timer = {
            let mut st = lock(&self.shared.state);
            st.pending.entry(key.to_string()).or_default().push(Ask {
                item: item.to_string(),
                wake,
                reply,
            });
            let earlier = st.timers.get(key).is_none_or(|t| wake < *t);
            if earlier {
                st.timers.insert(key.to_string(), wake);
            }
            earlier
        };
        if start_timer {
            // The call runs in a task of its own: a waiter that is dropped (cancelled) must not
            // leave the others of its batch without an answer.
            let shared = self.shared.clone();
            let key = key.to_string();
            tokio::spawn(async move { timer(shared, key, wake).await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(LookError {
                service: "AWS",
                operation: "(batched read)",
                message: "the poller stopped before answering".into(),
                kind: Kind::Transient,
            })
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sleeps until `wake`, then calls for every pending ask of `key` if one is due (an earlier
/// call may have answered them already: then it sleeps on for the asks left, unless another
/// timer is due before them).
async fn timer<A: Clone + Send + 'static>(shared: Arc<Shared<A>>, key: String, wake: Instant) {
    let mut wake = wake;
    let asks = loop {
        tokio::time::sleep_until(wake).await;
        let mut st = lock(&shared.state);
        if st.timers.get(&key) == Some(&wake) {
            st.timers.remove(&key);
        }
        let pending = st.pending.entry(key.clone()).or_default();
        pending.retain(|a| !a.reply.is_closed());
        match pending.iter().map(|a| a.wake).min() {
            None => return,
            Some(e) if e > Instant::now() => {
                if st.timers.get(&key).is_some_and(|t| *t <= e) {
                    return;
                }
                st.timers.insert(key.clone(), e);
                wake = e;
            }
            Some(_) => {
                let now = Instant::now();
                let ready = st
                    .last
                    .get(&key)
                    .map(|l| *l + shared.min_gap)
                    .filter(|r| *r > now);
                let Some(ready) = ready else {
                    st.last.insert(key.clone(), now);
                    break std::mem::take(st.pending.entry(key.clone()).or_default());
                };
                // Called less than `min_gap` ago: the asks wait for the gap.
                if st.timers.get(&key).is_some_and(|t| *t <= ready) {
                    return;
                }
                st.timers.insert(key.clone(), ready);
                wake = ready;
            }
        }
    };
    let mut items: Vec<String> = asks.iter().map(|a| a.item.clone()).collect();
    items.sort();
    items.dedup();
    let mut answers: HashMap<String, Answer<A>> = HashMap::new();
    for chunk in items.chunks(shared.per_call) {
        shared.calls.fetch_add(1, Ordering::SeqCst);
        match (shared.fetch)(key.clone(), chunk.to_vec()).await {
            Ok(mut found) => {
                for item in chunk {
                    answers.insert(item.clone(), Ok(found.remove(item)));
                }
            }
            Err(e) => {
                for item in chunk {
                    answers.insert(item.clone(), Err(e.clone()));
                }
            }
        }
    }
    for ask in asks {
        let answer = answers.get(&ask.item).cloned().unwrap_or(Ok(None));
        // A waiter that went away (cancelled) no longer needs its answer.
        let _ = ask.reply.send(answer);
    }
}

// The run's shared poller: one look a waiter, one call a batch.

/// DescribeServices takes at most this many services per call.
const SERVICES_PER_CALL: usize = 10;

/// The shortest time between two DescribeServices calls of a cluster.
const SERVICES_MIN_GAP: Duration = Duration::from_secs(1);

/// DescribeServiceDeployments takes at most this many service deployments per call.
const SERVICE_DEPLOYMENTS_PER_CALL: usize = 20;

/// BatchGetDeployments takes at most this many CodeDeploy deployments per call.
const DEPLOYMENTS_PER_CALL: usize = 25;

/// A described service deployment, or why DescribeServiceDeployments did not return it.
pub type ServiceDeploymentAnswer = std::result::Result<ServiceDeployment, String>;

type ServiceAnswer = std::result::Result<Option<Service>, LookError>;

/// Looks at what every waiter of the run waits for, batching the looks of a cluster (or of
/// CodeDeploy) into as few calls as the APIs allow. Cheap to clone.
#[derive(Clone)]
pub struct Poller {
    services: Batcher<Service>,
    service_deployments: Batcher<ServiceDeploymentAnswer>,
    deployments: Option<Batcher<DeploymentInfo>>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("calls", &self.calls())
            .finish()
    }
}

impl Poller {
    /// A poller of ECS (CodeDeploy looks are then not shared between apps: see
    /// [`Poller::for_aws`]).
    pub fn new(ecs: aws_sdk_ecs::Client) -> Poller {
        Poller {
            // At most one DescribeServices a second per cluster: the preflight's look and the
            // waits' first looks come close together.
            services: Batcher::with_min_gap(
                SERVICES_PER_CALL,
                describe_services(ecs.clone()),
                SERVICES_MIN_GAP,
            ),
            service_deployments: Batcher::new(
                SERVICE_DEPLOYMENTS_PER_CALL,
                describe_service_deployments(ecs),
            ),
            deployments: None,
        }
    }

    /// The run's poller: ECS and CodeDeploy looks shared between its apps.
    pub fn for_aws(aws: &crate::aws::Aws) -> Poller {
        Poller::new(aws.ecs.clone()).with_codedeploy(aws.codedeploy.clone())
    }

    /// This poller with CodeDeploy looks shared too.
    pub fn with_codedeploy(self, codedeploy: aws_sdk_codedeploy::Client) -> Poller {
        Poller {
            deployments: Some(deployments_batcher(codedeploy)),
            ..self
        }
    }

    /// How many DescribeServices calls this poller has made.
    pub fn calls(&self) -> u64 {
        self.services.calls()
    }

    /// A fresh look at `service` (name or ARN) in `cluster` now; `None` when ECS says it is
    /// missing.
    pub(crate) async fn look(&self, cluster: &str, service: &str) -> ServiceAnswer {
        self.look_by(cluster, service, Instant::now()).await
    }

    /// A fresh look at `service` no later than `due`: sooner when another waiter of the
    /// cluster looks first (its call answers both).
    pub(crate) async fn look_by(
        &self,
        cluster: &str,
        service: &str,
        due: Instant,
    ) -> ServiceAnswer {
        self.services.look(cluster, service, due).await
    }

    /// The batcher of DescribeServiceDeployments (per cluster).
    pub(crate) fn service_deployments(&self) -> &Batcher<ServiceDeploymentAnswer> {
        &self.service_deployments
    }

    /// The batcher of CodeDeploy deployments, when this poller shares them.
    pub(crate) fn deployments(&self) -> Option<&Batcher<DeploymentInfo>> {
        self.deployments.as_ref()
    }
}

fn describe_services(ecs: aws_sdk_ecs::Client) -> Fetch<Service> {
    Box::new(move |cluster, names| {
        let ecs = ecs.clone();
        Box::pin(async move {
            let out = ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(names.clone()))
                .send()
                .await
                .map_err(|e| LookError::aws("ECS", "DescribeServices", &e))?;
            let mut found = HashMap::new();
            for name in names {
                let service = out.services().iter().find(|s| {
                    s.service_name() == Some(name.as_str())
                        || s.service_arn() == Some(name.as_str())
                });
                if let Some(service) = service {
                    found.insert(name, service.clone());
                }
            }
            Ok(found)
        })
    })
}

fn describe_service_deployments(ecs: aws_sdk_ecs::Client) -> Fetch<ServiceDeploymentAnswer> {
    Box::new(move |_cluster, arns| {
        let ecs = ecs.clone();
        Box::pin(async move {
            let out = ecs
                .describe_service_deployments()
                .set_service_deployment_arns(Some(arns.clone()))
                .send()
                .await
                .map_err(|e| LookError::aws("ECS", "DescribeServiceDeployments", &e))?;
            let mut found = HashMap::new();
            for arn in arns {
                let described = out
                    .service_deployments()
                    .iter()
                    .find(|d| d.service_deployment_arn() == Some(arn.as_str()));
                let answer = match described {
                    Some(d) => Ok(d.clone()),
                    None => Err(out
                        .failures()
                        .iter()
                        .filter(|f| f.arn().is_none_or(|a| a == arn))
                        .map(|f| {
                            format!(
                                "{} {}",
                                f.reason().unwrap_or("no reason"),
                                f.detail().unwrap_or("")
                            )
                            .trim()
                            .to_string()
                        })
                        .collect::<Vec<_>>()
                        .join("; ")),
                };
                found.insert(arn, answer);
            }
            Ok(found)
        })
    })
}

/// CodeDeploy deployments: GetDeployment for one, BatchGetDeployments for several.
pub(crate) fn deployments_batcher(
    codedeploy: aws_sdk_codedeploy::Client,
) -> Batcher<DeploymentInfo> {
    let fetch: Fetch<DeploymentInfo> = Box::new(move |_, ids| {
        let codedeploy = codedeploy.clone();
        Box::pin(async move {
            if let [id] = ids.as_slice() {
                let info = codedeploy
                    .get_deployment()
                    .deployment_id(id)
                    .send()
                    .await
                    .map_err(|e| LookError::aws("CodeDeploy", "GetDeployment", &e))?
                    .deployment_info;
                return Ok(info.map(|i| (id.clone(), i)).into_iter().collect());
            }
            let infos = codedeploy
                .batch_get_deployments()
                .set_deployment_ids(Some(ids))
                .send()
                .await
                .map_err(|e| LookError::aws("CodeDeploy", "BatchGetDeployments", &e))?
                .deployments_info
                .unwrap_or_default();
            Ok(infos
                .into_iter()
                .filter_map(|i| Some((i.deployment_id()?.to_string(), i)))
                .collect())
        })
    });
    Batcher::new(DEPLOYMENTS_PER_CALL, fetch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_called_at_most_once_per_min_gap() {
        let fetch: Fetch<u32> = Box::new(|_, items| {
            Box::pin(async move { Ok(items.into_iter().map(|i| (i, 1)).collect()) })
        });
        let batcher = Batcher::with_min_gap(10, fetch, s(1));
        let start = Instant::now();
        let first = batcher.look("prod", "web1", start).await;
        assert_eq!(first.ok().flatten(), Some(1));
        // Due at once, 0.1 s after the first call: answered by a call one second after it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = batcher.look("prod", "web2", Instant::now()).await;
        assert_eq!(second.ok().flatten(), Some(1));
        assert!(
            Instant::now() - start >= s(1),
            "{:?}",
            Instant::now() - start
        );
        assert_eq!(batcher.calls(), 2);
        // Another key is not held back.
        let other_start = Instant::now();
        batcher.look("staging", "web1", other_start).await.ok();
        assert!(Instant::now() - other_start < s(1));
    }

    #[test]
    fn throttling_doubles_the_interval_up_to_the_cap() {
        assert_eq!(backoff(s(1), 0), s(1));
        assert_eq!(backoff(s(1), 1), s(2));
        assert_eq!(backoff(s(3), 3), s(24));
        assert_eq!(backoff(s(3), 30), MAX_BACKOFF);
        assert_eq!(backoff(s(60), 2), s(60), "never below the interval itself");
    }

    #[test]
    fn the_pace_is_far_until_just_before_the_change_and_near_around_it() {
        let pace = Pace {
            near: s(1),
            far: s(30),
            lead: s(2),
            linger: s(20),
        };
        let otherwise = s(5);
        assert_eq!(toward(&pace, Expect::Unknown, otherwise), otherwise);
        assert_eq!(toward(&pace, Expect::In(s(300)), otherwise), s(30));
        assert_eq!(
            toward(&pace, Expect::In(s(12)), otherwise),
            s(10),
            "lands `lead` before it"
        );
        assert_eq!(toward(&pace, Expect::In(s(2)), otherwise), s(1));
        assert_eq!(
            toward(&pace, Expect::In(Duration::from_millis(2500)), otherwise),
            s(1),
            "never shorter than near"
        );
        assert_eq!(toward(&pace, Expect::Overdue(s(10)), otherwise), s(1));
        assert_eq!(toward(&pace, Expect::Overdue(s(21)), otherwise), otherwise);
        let every = Pace::every(Duration::from_millis(10));
        for e in [Expect::Unknown, Expect::In(s(60)), Expect::Overdue(s(60))] {
            assert_eq!(
                toward(&every, e, Duration::from_millis(10)),
                Duration::from_millis(10)
            );
        }
    }

    #[test]
    fn an_expected_time_reads_as_due_in_or_overdue_by() {
        let now = Instant::now();
        assert_eq!(Expect::at(now + s(3), now), Expect::In(s(3)));
        assert_eq!(Expect::at(now, now + s(3)), Expect::Overdue(s(3)));
    }

    use aws_sdk_ecs::error::ConnectorError;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> SdkError<DescribeServicesError> {
        SdkError::service_error(
            DescribeServicesError::generic(ErrorMetadata::builder().code(code).build()),
            Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()),
        )
    }

    #[test]
    fn errors_are_classified_by_the_sdk_error_kind_and_code() {
        assert_eq!(
            kind_of(&service_error("ThrottlingException", 400)),
            Kind::Throttled
        );
        assert_eq!(
            kind_of(&service_error("TooManyRequestsException", 400)),
            Kind::Throttled
        );
        assert_eq!(
            kind_of(&service_error("ServerException", 500)),
            Kind::Transient
        );
        assert_eq!(
            kind_of(&service_error("RequestTimeout", 400)),
            Kind::Transient
        );
        assert_eq!(
            kind_of(&service_error("AccessDeniedException", 400)),
            Kind::Fatal
        );
        let io = SdkError::<DescribeServicesError>::dispatch_failure(ConnectorError::io(
            "connection reset".into(),
        ));
        assert_eq!(kind_of(&io), Kind::Transient);
        let timeout = SdkError::<DescribeServicesError>::timeout_error("slow");
        assert_eq!(kind_of(&timeout), Kind::Transient);
    }

    fn aws_failure(kind: Kind) -> Failure {
        Failure {
            kind,
            error: Error::Aws {
                service: "ECS",
                operation: "DescribeServices",
                message: format!("{kind:?}"),
            },
        }
    }

    fn frame<'a>(
        cancel: Option<&'a CancellationToken>,
        fail: &'a (dyn Fn(String) -> Error + Sync),
        timeout: Duration,
    ) -> Wait<'a> {
        Wait {
            label: "test",
            what: "service web".into(),
            where_to_look: "the console".into(),
            deadline: Instant::now() + timeout,
            cancel,
            cap: Duration::MAX,
            fail,
        }
    }

    fn fail(problem: String) -> Error {
        Error::Deployment {
            target: "service web".into(),
            deployment_id: "d-1".into(),
            problem,
        }
    }

    /// Runs a wait whose looks answer `script` in turn (an error kind, or a step number; the
    /// last step is done), with a 1 s policy; returns the result and when each look ran.
    async fn scripted(
        script: Vec<Result<u32, Kind>>,
        timeout: Duration,
        cancel: Option<&CancellationToken>,
    ) -> (Result<Ended<u32>>, Vec<Duration>, Vec<u32>) {
        let start = Instant::now();
        let mut at = Vec::new();
        let mut shown = Vec::new();
        let mut script = script.into_iter();
        let last_step = u32::MAX;
        let result = until(
            &frame(cancel, &fail, timeout),
            &mut None,
            |_: &(), _| s(1),
            async |due: Instant| {
                super::at(due).await;
                at.push(start.elapsed());
                match script.next() {
                    Some(Ok(step)) if step == 9 => Ok((Look::Done(step), step)),
                    Some(Ok(step)) => Ok((Look::Running(()), step)),
                    Some(Err(kind)) => Err(aws_failure(kind)),
                    None => Ok((Look::Running(()), last_step)),
                }
            },
            |_, now: &u32, _| shown.push(*now),
        )
        .await;
        (result, at, shown)
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_and_transient_errors_are_retried_until_done() {
        use Kind::{Throttled, Transient};
        let (r, at, shown) = scripted(
            vec![
                Ok(1),
                Err(Throttled),
                Err(Throttled),
                Err(Transient),
                Ok(1),
                Ok(2),
                Ok(9),
            ],
            s(600),
            None,
        )
        .await;
        assert_eq!(r.unwrap(), Ended::Done(9));
        let gaps: Vec<u64> = at.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        assert_eq!(
            gaps,
            [1, 2, 4, 4, 1, 1],
            "doubling while throttled, then the policy again"
        );
        assert_eq!(shown, [1, 2, 9], "progress only when it changes");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_in_a_row_end_the_wait_saying_where_to_look() {
        use Kind::Transient;
        let (r, at, _) = scripted(
            vec![
                Ok(1),
                Err(Transient),
                Err(Transient),
                Err(Transient),
                Err(Transient),
            ],
            s(600),
            None,
        )
        .await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("could not be read 4 times in a row"), "{e}");
        assert!(
            e.contains("may still be running: look at the console"),
            "{e}"
        );
        assert_eq!(at.len(), 5);
        let (r, _, _) = scripted(vec![Ok(1), Err(Kind::Fatal)], s(600), None).await;
        assert!(r.unwrap_err().to_string().contains("Fatal"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_and_the_cancellation_end_the_wait() {
        let (r, at, _) = scripted(vec![], s(5), None).await;
        assert_eq!(r.unwrap(), Ended::TimedOut);
        assert_eq!(at.last(), Some(&s(5)), "one last look at the deadline");
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            c.cancel();
        });
        let (r, at, _) = scripted(vec![], s(600), Some(&cancel)).await;
        assert_eq!(r.unwrap(), Ended::Cancelled);
        assert_eq!(at.len(), 3, "cut short while waiting for the fourth look");
    }

    #[tokio::test(start_paused = true)]
    async fn one_batched_call_answers_every_waiter_of_a_key_due_or_not() {
        let seen = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let calls = seen.clone();
        let fetch: Fetch<String> = Box::new(move |key, items| {
            lock(&calls).push(items.clone());
            Box::pin(async move {
                Ok(items
                    .into_iter()
                    .filter(|i| i != "gone")
                    .map(|i| (i.clone(), format!("{key}/{i}")))
                    .collect())
            })
        });
        let batcher = Batcher::new(2, fetch);
        let now = Instant::now();
        let (a, b, c) = tokio::join!(
            batcher.look("prod", "web1", now + s(1)),
            batcher.look("prod", "web2", now + s(30)),
            batcher.look("prod", "gone", now + s(1)),
        );
        assert_eq!(a.unwrap().as_deref(), Some("prod/web1"));
        assert_eq!(b.unwrap().as_deref(), Some("prod/web2"), "answered early");
        assert_eq!(c.unwrap(), None, "missing in AWS");
        assert_eq!(now.elapsed(), s(1));
        assert_eq!(batcher.calls(), 2, "3 items, 2 a call");
        assert_eq!(lock(&seen).concat().len(), 3);
    }
}
