//! AWS settings that point at a local moto server with dummy credentials, for the binary
//! (as env) and for in-process SDK clients (as `SdkConfig`), never touching real AWS.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::{Credentials, SharedCredentialsProvider};

/// Dummy access key / secret that moto accepts.
pub const TEST_KEY: &str = "testing";
/// Region used throughout the tests.
pub const TEST_REGION: &str = "us-east-1";
/// moto's fixed account id.
pub const TEST_ACCOUNT: &str = "123456789012";

/// Env for the `ecs-deploy` binary: dummy credentials, region, no IMDS, all services at `endpoint`.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ACCESS_KEY_ID", TEST_KEY),
        ("AWS_SECRET_ACCESS_KEY", TEST_KEY),
        ("AWS_REGION", TEST_REGION),
        ("AWS_ENDPOINT_URL", endpoint),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// SDK config for in-process clients: static test credentials, region, `endpoint`, latest
/// behaviour version. Built explicitly (no env or profile lookup) so tests are deterministic.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(TEST_REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            TEST_KEY,
            TEST_KEY,
            None,
            None,
            "ecs-deploy-tests",
        )))
        .endpoint_url(endpoint)
        .build()
}
