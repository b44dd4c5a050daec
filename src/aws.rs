//! AWS clients, built once from the standard SDK chain (AWS_REGION, credentials,
//! AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>) so the action behaves like every AWS tool.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

/// The clients a run uses; cheap to clone.
#[derive(Clone, Debug)]
pub struct Aws {
    pub ecs: aws_sdk_ecs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    /// The region the SDK chain found, if any (console links need it).
    pub region: Option<String>,
}

impl Aws {
    /// Loads the SDK config from the environment. With `own_retry`, throttling and transient
    /// errors are retried by the SDK in adaptive mode, up to 8 attempts, so a busy account slows
    /// a deploy instead of failing it; without it the SDK chain's own retry settings apply
    /// (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`, the profile's), as in every AWS tool.
    pub async fn from_env(own_retry: bool) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if own_retry {
            loader = loader.retry_config(RetryConfig::adaptive().with_max_attempts(8));
        }
        Aws::from_config(&loader.load().await)
    }

    /// Clients that were never configured (no region, no credentials, no look-up): for a
    /// plan-only run, which must not call AWS at all.
    pub fn offline() -> Aws {
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
            region: config.region().map(|r| r.to_string()),
        }
    }
}
