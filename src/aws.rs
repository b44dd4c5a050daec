//! AWS clients, built once from the standard SDK chain (AWS_REGION, credentials,
//! AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>) so the action behaves like every AWS tool,
//! with time limits on every call and a retry policy that rides out throttling in seconds.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Connecting to an AWS endpoint. A TCP and TLS handshake to a regional endpoint takes tens of
/// milliseconds; 3 s (the SDK's own default is 3.1 s) only fails an endpoint that is not there.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// One attempt of a call, connect to last byte. ECS, ECR and CodeDeploy control-plane calls
/// answer in well under a second (a RegisterTaskDefinition of a large definition in one or
/// two); an attempt still silent after 20 s is stuck, not slow, and a new attempt on a new
/// connection is its best chance.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// One call with all its attempts and backoffs. Three stuck attempts fit in it; past it the run
/// fails with an error naming the call, a minute in, far from any job timeout (and within the
/// smallest `wait-for-minutes`), where a call that never answers used to hold the job to its own
/// timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Attempts per call (the first and seven retries) in the action's own policy.
pub const MAX_ATTEMPTS: u32 = 8;

/// The first retry waits up to this long (full jitter: a random share of it); each further
/// retry doubles it, up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two attempts: a throttling burst passes in seconds, so waiting the
/// SDK's default 20 s only makes a run slower.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The time limits every AWS call of a run has, whatever the retry policy.
pub(crate) fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The action's retry policy: the SDK's standard mode (exponential backoff with full jitter
/// and a retry quota), [`MAX_ATTEMPTS`] attempts, backoff bounded by [`MAX_BACKOFF`]. Not the
/// adaptive mode: its client-side rate limiter, shared by every client of the process, drops
/// to half a request a second after one throttle and makes each throttled retry wait for 10
/// tokens, so four throttled calls stalled a ten-service run for 20 s and more (see
/// `benches/throttle.rs`).
pub(crate) fn retry() -> RetryConfig {
    retry_with(MAX_ATTEMPTS)
}

/// The action's retry policy with another number of attempts per call (`max-retries`, which
/// amazon-ecs-deploy-task-definition hands to its SDK as max attempts).
pub(crate) fn retry_with(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// The clients a run uses; cheap to clone.
#[derive(Clone, Debug)]
pub struct Aws {
    pub ecs: aws_sdk_ecs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    /// CloudWatch Logs: the last lines of a stopped task's container (`deploy::diagnosis`).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// EKS: DescribeCluster gives a Kubernetes app's endpoint and certificate authority.
    pub eks: aws_sdk_eks::Client,
    /// CloudWatch: the verification gate's alarms (`verify-alarms`, DescribeAlarms).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// The credentials the clients sign with: the EKS bearer token is signed with them too.
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// The region the SDK chain found, if any (console links need it).
    pub region: Option<String>,
}

impl Aws {
    /// Loads the SDK config from the environment, with [`timeouts`] on every call. With
    /// `own_retry`, calls follow the action's [`retry`] policy; without it the SDK chain's own
    /// retry settings apply (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`, the profile's), as in every
    /// AWS tool.
    pub(crate) async fn from_env(own_retry: bool) -> Aws {
        Aws::from_env_with(own_retry.then(retry)).await
    }

    /// [`Aws::from_env`] with a retry policy of its own (`None`: the SDK chain's settings).
    pub(crate) async fn from_env_with(retry: Option<RetryConfig>) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts());
        if let Some(retry) = retry {
            loader = loader.retry_config(retry);
        }
        Aws::from_config(&loader.load().await)
    }

    /// Clients that were never configured (no region, no credentials, no look-up): for a
    /// plan-only run, which must not call AWS at all.
    pub(crate) fn offline() -> Aws {
        Aws::from_config(
            &aws_config::SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .build(),
        )
    }

    /// Builds the clients from an already loaded config (tests pass one pointing at moto).
    pub fn from_config(config: &aws_config::SdkConfig) -> Aws {
        Aws {
            ecs: aws_sdk_ecs::Client::new(config),
            ecr: aws_sdk_ecr::Client::new(config),
            codedeploy: aws_sdk_codedeploy::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            credentials: config.credentials_provider(),
            region: config.region().map(|r| r.to_string()),
        }
    }

    /// The same clients with ECS replaced (tests pass a scripted client; the rest stay on the
    /// config they were built from).
    pub fn with_ecs(mut self, ecs: aws_sdk_ecs::Client) -> Aws {
        self.ecs = ecs;
        self
    }

    /// The same clients with CodeDeploy replaced (tests pass a scripted client).
    pub fn with_codedeploy(mut self, codedeploy: aws_sdk_codedeploy::Client) -> Aws {
        self.codedeploy = codedeploy;
        self
    }

    /// The same clients with CloudWatch Logs replaced (tests pass a scripted client).
    pub fn with_logs(mut self, logs: aws_sdk_cloudwatchlogs::Client) -> Aws {
        self.logs = logs;
        self
    }

    /// The same clients with CloudWatch replaced (tests pass a scripted client).
    pub fn with_cloudwatch(mut self, cloudwatch: aws_sdk_cloudwatch::Client) -> Aws {
        self.cloudwatch = cloudwatch;
        self
    }

    /// The same clients without a region (console links and the EKS token cannot be made).
    pub fn without_region(mut self) -> Aws {
        self.region = None;
        self
    }
}

/// The AWS console's base URL for `region`, in the region's partition: `*.amazonaws.cn` for
/// China, `console.amazonaws-us-gov.com` for GovCloud, `console.aws.amazon.com` elsewhere.
pub(crate) fn console_base(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://{region}.console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        "https://console.amazonaws-us-gov.com".to_string()
    } else {
        format!("https://{region}.console.aws.amazon.com")
    }
}

/// The console page of an ECS service's deployments: one URL for the log, the summary and the
/// messages.
pub(crate) fn ecs_service_url(region: &str, cluster: &str, service: &str) -> String {
    format!(
        "{}/ecs/v2/clusters/{cluster}/services/{service}/deployments?region={region}",
        console_base(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_is_bounded_and_an_attempt_is_shorter_than_the_call() {
        let t = timeouts();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert!(ATTEMPT_TIMEOUT * 2 < OPERATION_TIMEOUT);
    }

    #[test]
    fn max_retries_sets_the_attempts_and_keeps_the_rest_of_the_policy() {
        let r = retry_with(3);
        assert_eq!(r.max_attempts(), 3);
        assert_eq!(r.mode(), aws_config::retry::RetryMode::Standard);
        assert_eq!(r.max_backoff(), MAX_BACKOFF);
    }

    #[test]
    fn the_retry_policy_is_standard_with_a_bounded_backoff() {
        let r = retry();
        assert_eq!(r.mode(), aws_config::retry::RetryMode::Standard);
        assert_eq!(r.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(r.max_backoff(), MAX_BACKOFF);
        assert_eq!(r.initial_backoff(), INITIAL_BACKOFF);
    }

    #[tokio::test]
    async fn the_eks_client_has_the_time_limits_retry_and_credentials_of_every_client() {
        let aws = Aws::from_env(true).await;
        let eks = aws.eks.config();
        assert_eq!(eks.timeout_config(), Some(&timeouts()));
        assert_eq!(eks.timeout_config(), aws.ecs.config().timeout_config());
        assert_eq!(eks.retry_config(), Some(&retry()));
        assert_eq!(eks.retry_config(), aws.ecs.config().retry_config());
        assert_eq!(
            eks.region().map(|r| r.to_string()),
            aws.region,
            "the token is signed for the clients' region"
        );
        assert!(
            aws.credentials.is_some(),
            "the chain the token is signed with"
        );
        let offline = Aws::offline();
        assert!(offline.credentials.is_none() && offline.region.is_none());
    }

    #[test]
    fn console_links_point_at_the_regions_partition() {
        assert_eq!(
            ecs_service_url("us-east-1", "prod", "web1"),
            "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web1/deployments?region=us-east-1"
        );
        assert_eq!(
            ecs_service_url("cn-north-1", "prod", "web1"),
            "https://cn-north-1.console.amazonaws.cn/ecs/v2/clusters/prod/services/web1/deployments?region=cn-north-1"
        );
        assert_eq!(
            console_base("us-gov-west-1"),
            "https://console.amazonaws-us-gov.com"
        );
    }
}
