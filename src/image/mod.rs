//! The image: find the registry, reuse an existing version tag or build and push every tag, and
//! report the digest. (Build and push land with the image issue; this module's entry points are
//! what the pipeline calls.)

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::inputs::GithubContext;
use crate::plan::{AppPlan, ImageSource};

/// What the image step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutcome {
    /// The reference the task definition gets (registry/repo:tag, or the `image` input).
    pub reference: String,
    /// The registry's manifest digest, when known.
    pub digest: Option<String>,
    /// True when this run built the image.
    pub built: bool,
}

/// Makes sure the planned image exists in the registry and returns its reference.
pub async fn ensure(
    _aws: &Aws,
    plan: &AppPlan,
    _github: &GithubContext,
    _cancel: &CancellationToken,
) -> Result<ImageOutcome> {
    match &plan.image.source {
        ImageSource::External { reference } => Ok(ImageOutcome {
            reference: reference.clone(),
            digest: None,
            built: false,
        }),
        _ => Err(Error::Image {
            image: plan.image.display_reference(),
            problem: "building and pushing is not available in this build".into(),
        }),
    }
}

/// The registry host for the plan, read-only: the `registry` input, or the account's ECR
/// registry from ECR's authorization token (used by the dry run).
pub async fn registry_host(aws: &Aws, plan: &AppPlan) -> Result<String> {
    if let Some(r) = &plan.image.registry {
        return Ok(r.clone());
    }
    let out = aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| Error::aws("ECR", "GetAuthorizationToken", e))?;
    let endpoint = out
        .authorization_data()
        .first()
        .and_then(|d| d.proxy_endpoint())
        .ok_or_else(|| Error::Aws {
            service: "ECR",
            operation: "GetAuthorizationToken",
            message: "the answer has no proxyEndpoint".into(),
        })?;
    Ok(endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string())
}
