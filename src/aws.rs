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
    /// CloudWatch Logs: the last lines of a stopped task's container (`deploy::diagnosis`).
    pub logs: aws_sdk_cloudwatchlogs::Client,
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
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            region: config.region().map(|r| r.to_string()),
        }
    }
}

/// The AWS console's base URL for `region`, in the region's partition: `*.amazonaws.cn` for
/// China, `console.amazonaws-us-gov.com` for GovCloud, `console.aws.amazon.com` elsewhere.
pub fn console_base(region: &str) -> String {
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
pub fn ecs_service_url(region: &str, cluster: &str, service: &str) -> String {
    format!(
        "{}/ecs/v2/clusters/{cluster}/services/{service}/deployments?region={region}",
        console_base(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
