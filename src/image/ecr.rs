//! Amazon ECR's control plane: the login token, the repository (exists? create it?) and the
//! "does this tag exist" question answered by DescribeImages.

use aws_sdk_ecr::error::ProvideErrorMetadata as _;
use aws_sdk_ecr::types::{
    ImageIdentifier, ImageScanningConfiguration, ImageTagMutability,
    ImageTagMutabilityExclusionFilter, ImageTagMutabilityExclusionFilterType,
};
use base64::Engine as _;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::image::registry::Credentials;
use crate::inputs::{CreateRepository, Secret};
use crate::runner::console;

/// What `GetAuthorizationToken` gives: the registry host and the credentials that open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub host: String,
    pub credentials: Credentials,
}

/// True when `host` is an ECR registry: `<account>.dkr.ecr.<region>.amazonaws.com`, `.com.cn`
/// in China, `dkr.ecr-fips` for FIPS endpoints (any port). Only such a host gets ECR's token
/// unless the user says another one is in front of ECR (`registry-is-ecr`).
pub fn is_ecr_host(host: &str) -> bool {
    let name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let Some(rest) = name
        .strip_suffix(".amazonaws.com")
        .or_else(|| name.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    let labels: Vec<&str> = rest.split('.').collect();
    match labels.as_slice() {
        [account, "dkr", "ecr" | "ecr-fips", region] => {
            account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) && is_region(region)
        }
        _ => false,
    }
}

/// `us-east-1`, `cn-north-1`, `us-gov-west-1`, `ap-southeast-5`: letters and digits in
/// dash-separated parts, ending in a number.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Turns ECR's `authorizationToken` (base64 of `user:password`) and `proxyEndpoint` into a login.
pub(crate) fn decode_token(token: &str, proxy_endpoint: &str) -> Result<Login> {
    let bad = |why: &str| Error::Aws {
        service: "ECR",
        operation: "GetAuthorizationToken",
        message: format!("the authorization token {why}"),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad("is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8"))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| bad("is not user:password"))?;
    if user.is_empty() || password.is_empty() {
        return Err(bad("has an empty user or password"));
    }
    Ok(Login {
        host: host_of(proxy_endpoint),
        credentials: Credentials {
            username: user.to_string(),
            password: Secret::new(password),
        },
    })
}

/// `https://host/` → `host`.
pub(crate) fn host_of(endpoint: &str) -> String {
    endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Asks ECR for a login token, masks the password at once, and decodes it.
pub async fn login(aws: &Aws) -> Result<Login> {
    let out = aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| Error::aws("ECR", "GetAuthorizationToken", e))?;
    let data = out.authorization_data().first().ok_or_else(|| Error::Aws {
        service: "ECR",
        operation: "GetAuthorizationToken",
        message: "the answer holds no authorization data".into(),
    })?;
    let token = data.authorization_token().ok_or_else(|| Error::Aws {
        service: "ECR",
        operation: "GetAuthorizationToken",
        message: "the answer has no authorizationToken".into(),
    })?;
    // Mask both forms before anything else runs: a debug print must never show them.
    console::mask(&[token.to_string()]);
    let endpoint = data.proxy_endpoint().ok_or_else(|| Error::Aws {
        service: "ECR",
        operation: "GetAuthorizationToken",
        message: "the answer has no proxyEndpoint".into(),
    })?;
    let login = decode_token(token, endpoint)?;
    console::mask(&[login.credentials.password.expose().to_string()]);
    Ok(login)
}

/// Logins to the ECR registries of these AWS accounts (`registries`, as amazon-ecr-login takes
/// them), for the build's base images. ECR's token opens every registry the role may read (the
/// reason AWS deprecated GetAuthorizationToken's registryIds), so one token serves them all:
/// each account gets the host `<account>.dkr.ecr.<region>.amazonaws.com` of the token's region.
pub(crate) fn logins_for(own: &Login, accounts: &[String]) -> Result<Vec<Login>> {
    let suffix = own
        .host
        .split_once('.')
        .map(|(_, rest)| rest)
        .filter(|_| is_ecr_host(&own.host))
        .ok_or_else(|| Error::Aws {
            service: "ECR",
            operation: "GetAuthorizationToken",
            message: format!(
                "the token names the registry {}, which is not an ECR host, so the registries of other accounts cannot be named from it",
                own.host
            ),
        })?;
    Ok(accounts
        .iter()
        .map(|id| Login {
            host: format!("{id}.{suffix}"),
            credentials: own.credentials.clone(),
        })
        .collect())
}

/// True when the ECR repository exists; a missing one is `false`, any other failure an error.
pub async fn repository_exists(aws: &Aws, repository: &str) -> Result<bool> {
    match aws
        .ecr
        .describe_repositories()
        .repository_names(repository)
        .send()
        .await
    {
        Ok(out) => Ok(!out.repositories().is_empty()),
        Err(e) if e.code() == Some("RepositoryNotFoundException") => Ok(false),
        Err(e) => Err(Error::aws("ECR", "DescribeRepositories", e)),
    }
}

/// Tags the action moves on every release: they stay mutable in an immutable repository.
pub const MOVING_TAGS: &[&str] = &["latest", "buildcache"];

/// Creates an ECR repository with scan on push; `immutable` makes its tags immutable except
/// [`MOVING_TAGS`] (IMMUTABLE_WITH_EXCLUSION), so a released version can never be overwritten.
pub(crate) async fn create_repository(aws: &Aws, repository: &str, immutable: bool) -> Result<()> {
    let mut req = aws
        .ecr
        .create_repository()
        .repository_name(repository)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        );
    req = if immutable {
        let mut req = req.image_tag_mutability(ImageTagMutability::ImmutableWithExclusion);
        for tag in MOVING_TAGS {
            let filter = ImageTagMutabilityExclusionFilter::builder()
                .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
                .filter(*tag)
                .build()
                .map_err(|e| Error::Image {
                    image: repository.to_string(),
                    problem: format!("cannot describe the tag exclusion {tag:?}: {e}"),
                })?;
            req = req.image_tag_mutability_exclusion_filters(filter);
        }
        req
    } else {
        req.image_tag_mutability(ImageTagMutability::Mutable)
    };
    req.send()
        .await
        .map_err(|e| Error::aws("ECR", "CreateRepository", e))?;
    Ok(())
}

/// Makes sure the repository exists before any build: creates it when `create` is true,
/// otherwise fails with the repository's name and the fix.
pub async fn ensure_repository(
    aws: &Aws,
    host: &str,
    repository: &str,
    create: CreateRepository,
) -> Result<()> {
    if repository_exists(aws, repository).await? {
        return Ok(());
    }
    let immutable = match create {
        CreateRepository::No => None,
        CreateRepository::Mutable => Some(false),
        CreateRepository::Immutable => Some(true),
    };
    if let Some(immutable) = immutable {
        create_repository(aws, repository, immutable).await?;
        let tags = if immutable {
            format!(", immutable tags except {}", MOVING_TAGS.join(", "))
        } else {
            String::new()
        };
        println!("created ECR repository {repository} (scan on push{tags})");
        return Ok(());
    }
    Err(missing_repository(host, repository))
}

/// The error for an ECR repository that does not exist and is not to be created.
pub(crate) fn missing_repository(host: &str, repository: &str) -> Error {
    Error::Image {
        image: format!("{host}/{repository}"),
        problem: format!(
            "the ECR repository {repository:?} does not exist; create it, or set `create-repository: true`"
        ),
    }
}

/// The manifest digest of `repository:tag` as ECR knows it, or `None` when the tag is absent.
pub async fn tag_digest(aws: &Aws, repository: &str, tag: &str) -> Result<Option<String>> {
    match aws
        .ecr
        .describe_images()
        .repository_name(repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
    {
        Ok(out) => Ok(out
            .image_details()
            .first()
            .and_then(|d| d.image_digest())
            .map(str::to_string)),
        Err(e) if e.code() == Some("ImageNotFoundException") => Ok(None),
        Err(e) => Err(Error::aws("ECR", "DescribeImages", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registries_of_other_accounts_share_the_token_and_the_region() {
        let own = Login {
            host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into(),
            credentials: Credentials {
                username: "AWS".into(),
                password: Secret::new("tok"),
            },
        };
        let logins = logins_for(&own, &["210987654321".into()]).unwrap();
        assert_eq!(
            logins,
            vec![Login {
                host: "210987654321.dkr.ecr.eu-west-1.amazonaws.com".into(),
                credentials: own.credentials.clone(),
            }]
        );
        let local = Login {
            host: "127.0.0.1:5000".into(),
            ..own
        };
        let err = logins_for(&local, &["210987654321".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("127.0.0.1:5000") && err.contains("not an ECR host"),
            "{err}"
        );
    }

    #[test]
    fn an_ecr_token_decodes_into_user_password_and_host() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:secret-pass");
        let login = decode_token(
            &token,
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
        )
        .unwrap();
        assert_eq!(login.host, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(login.credentials.username, "AWS");
        assert_eq!(login.credentials.password.expose(), "secret-pass");
    }

    #[test]
    fn a_token_that_is_not_user_password_is_refused_without_showing_it() {
        let token = base64::engine::general_purpose::STANDARD.encode("no-colon-here");
        let err = decode_token(&token, "https://h").unwrap_err().to_string();
        assert!(err.contains("is not user:password"), "{err}");
        assert!(!err.contains("no-colon-here"), "{err}");
        let err = decode_token("%%%", "https://h").unwrap_err().to_string();
        assert!(err.contains("not base64"), "{err}");
    }

    #[test]
    fn ecr_hosts_are_recognised_by_their_name() {
        assert!(is_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com"));
        assert!(is_ecr_host(
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        ));
        assert!(is_ecr_host(
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com:443"
        ));
        assert!(!is_ecr_host("127.0.0.1:5000"));
        assert!(!is_ecr_host("ghcr.io"));
        // A name that only contains the ECR parts is not ECR.
        for host in [
            "evil.example/123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            "x.123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "bucket.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.amazonaws.com",
            "vpce-0abc.dkr.ecr.us-east-1.vpce.amazonaws.com",
        ] {
            assert!(!is_ecr_host(host), "{host}");
        }
    }
}
