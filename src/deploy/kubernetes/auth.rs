//! Reaching the Kubernetes API: for EKS, the cluster's endpoint and CA from DescribeCluster and
//! the bearer token `aws eks get-token` makes (a presigned STS GetCallerIdentity URL with the
//! cluster name in the signed `x-k8s-aws-id` header), signed with the SDK's credentials and
//! renewed before EKS stops accepting it; or a kubeconfig file. No kubectl, no shell.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::Mutex;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::inputs::ClusterSource;

/// The prefix EKS (aws-iam-authenticator) expects on a bearer token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// The header that binds a token to one cluster (signed, so it cannot be replayed elsewhere).
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";

/// The presigned URL's `X-Amz-Expires`, as `aws eks get-token` sets it.
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);

/// EKS accepts a token for 15 minutes from its signing time; a new one is made well before
/// (`aws eks get-token` says a token expires after 14), leaving room for a request in flight and
/// a clock a little off.
pub const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(10 * 60);

/// The bearer token for EKS cluster `cluster` in `region`, signed at `now`: `k8s-aws-v1.` and
/// the base64url (no padding) of a presigned STS GetCallerIdentity URL. Pure, so it is tested
/// by decoding it.
pub(crate) fn eks_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String> {
    let bad = |e: &dyn std::fmt::Display| Error::Kubernetes {
        target: format!("EKS cluster {cluster}"),
        problem: format!("cannot sign the bearer token: {e}"),
    };
    let url =
        format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| bad(&e))?
        .into();
    let headers = [(CLUSTER_ID_HEADER, cluster)];
    let signable = SignableRequest::new(
        "GET",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| bad(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| bad(&e))?.into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|e| bad(&e))?;
    instructions.apply_to_request_http1x(&mut request);
    let signed = request.uri().to_string();
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed)
    ))
}

/// The DER certificates of a PEM bundle (DescribeCluster's CA is base64 of PEM). Pure.
pub(crate) fn pem_certificates(pem: &str) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (&mut body, line) {
            (None, "-----BEGIN CERTIFICATE-----") => body = Some(String::new()),
            (Some(b), "-----END CERTIFICATE-----") => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|e| format!("a certificate is not valid base64: {e}"))?;
                out.push(der);
                body = None;
            }
            (Some(b), l) => b.push_str(l),
            (None, _) => {}
        }
    }
    if out.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(out)
}

/// True when a token signed at `made` is to be signed again at `now` (it is
/// [`TOKEN_RENEW_AFTER`] old: EKS would refuse it a few minutes later). A clock set back keeps
/// the token. Pure.
pub(crate) fn token_stale(made: SystemTime, now: SystemTime) -> bool {
    now.duration_since(made)
        .is_ok_and(|age| age >= TOKEN_RENEW_AFTER)
}

/// Where a connection reads the time (the token's signing time and its age): the system clock,
/// or one a test moves.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    /// The system clock: what EKS judges a token's age by.
    pub(crate) fn system() -> Clock {
        Clock(Arc::new(SystemTime::now))
    }

    /// A clock that reads `now` (tests).
    pub fn new(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    /// The time now.
    pub(crate) fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Clock").field(&self.now()).finish()
    }
}

/// How to reach one cluster; the client it makes is renewed before its EKS token expires.
pub struct Connection {
    how: How,
    namespace: String,
    clock: Clock,
    /// The client and when its token was signed.
    current: Mutex<Option<(Client, SystemTime)>>,
}

impl std::fmt::Debug for Connection {
    // The client holds no secret worth showing and has no Debug of its own.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("cluster", &self.describe())
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
enum How {
    Eks {
        cluster: String,
        region: String,
        endpoint: String,
        /// DER certificates the endpoint's certificate must chain to (none for http).
        ca: Vec<Vec<u8>>,
        credentials: aws_credential_types::provider::SharedCredentialsProvider,
    },
    Kubeconfig(Kubeconfig),
}

impl Connection {
    /// Reads what is needed to reach the cluster (DescribeCluster, or the kubeconfig file) and
    /// makes a first client. `api_url` replaces the EKS endpoint (tests, proxies).
    pub async fn open(
        aws: &Aws,
        source: &ClusterSource,
        namespace: &str,
        api_url: Option<&str>,
    ) -> Result<Connection> {
        Connection::open_with_clock(aws, source, namespace, api_url, Clock::system()).await
    }

    /// [`Connection::open`] with the token's time read from `clock` (tests move it past the
    /// renewal).
    pub async fn open_with_clock(
        aws: &Aws,
        source: &ClusterSource,
        namespace: &str,
        api_url: Option<&str>,
        clock: Clock,
    ) -> Result<Connection> {
        let how = match source {
            ClusterSource::Eks(cluster) => eks(aws, cluster, api_url).await?,
            ClusterSource::Kubeconfig(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| Error::Kubernetes {
                    target: format!("kubeconfig {}", path.display()),
                    problem: format!(
                        "cannot be read: {}; check the `kubeconfig` path (relative paths start at the workspace)",
                        crate::error::error_chain(&e)
                    ),
                })?;
                How::Kubeconfig(kc)
            }
        };
        let conn = Connection {
            how,
            namespace: namespace.to_string(),
            clock,
            current: Mutex::new(None),
        };
        conn.client().await?;
        Ok(conn)
    }

    /// A client with a fresh enough token (a new one after [`TOKEN_RENEW_AFTER`]; a kubeconfig's
    /// client renews its own credentials).
    pub(crate) async fn client(&self) -> Result<Client> {
        let mut current = self.current.lock().await;
        let now = self.clock.now();
        if let Some((client, made)) = current.as_ref()
            && (matches!(self.how, How::Kubeconfig(_)) || !token_stale(*made, now))
        {
            return Ok(client.clone());
        }
        let client = self.make(now).await?;
        *current = Some((client.clone(), now));
        Ok(client)
    }

    /// What the log calls the cluster.
    pub(crate) fn describe(&self) -> String {
        match &self.how {
            How::Eks {
                cluster, endpoint, ..
            } => format!("EKS cluster {cluster} ({endpoint})"),
            How::Kubeconfig(kc) => format!(
                "kubeconfig context {}",
                kc.current_context.as_deref().unwrap_or("(none)")
            ),
        }
    }

    /// A new client; an EKS one with a token signed at `now`.
    async fn make(&self, now: SystemTime) -> Result<Client> {
        let config = match &self.how {
            How::Eks {
                cluster,
                region,
                endpoint,
                ca,
                credentials,
            } => {
                let target = || format!("EKS cluster {cluster}");
                let creds =
                    credentials
                        .provide_credentials()
                        .await
                        .map_err(|e| Error::Kubernetes {
                            target: target(),
                            problem: format!(
                                "no AWS credentials to sign the bearer token: {}",
                                crate::error::error_chain(&e)
                            ),
                        })?;
                let token = eks_token(&creds, region, cluster, now)?;
                let uri: http::Uri = endpoint.parse().map_err(|e| Error::Kubernetes {
                    target: target(),
                    problem: format!("its endpoint {endpoint:?} is not a URL: {e}"),
                })?;
                let mut config = kube::Config::new(uri);
                if !ca.is_empty() {
                    config.root_cert = Some(ca.clone());
                }
                config.auth_info.token = Some(secrecy::SecretString::from(token));
                config.default_namespace = self.namespace.clone();
                config.read_timeout = Some(Duration::from_secs(30));
                config
            }
            How::Kubeconfig(kc) => {
                kube::Config::from_custom_kubeconfig(kc.clone(), &KubeConfigOptions::default())
                    .await
                    .map_err(|e| Error::Kubernetes {
                        target: "kubeconfig".into(),
                        problem: format!(
                            "cannot be used: {}; check its current context, cluster and user",
                            crate::error::error_chain(&e)
                        ),
                    })?
            }
        };
        Client::try_from(config).map_err(|e| Error::Kubernetes {
            target: self.describe(),
            problem: format!("cannot make a client: {}", crate::error::error_chain(&e)),
        })
    }
}

/// The EKS side: DescribeCluster (the run's EKS client, with the timeouts and retry of every
/// AWS call) for the endpoint and CA, and the credentials and region the clients sign with.
async fn eks(aws: &Aws, cluster: &str, api_url: Option<&str>) -> Result<How> {
    let target = || format!("EKS cluster {cluster}");
    let out = aws
        .eks
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception())
            {
                Error::Kubernetes {
                    target: target(),
                    problem: "not found; check `eks-cluster` (the cluster's name) and the region"
                        .into(),
                }
            } else {
                Error::aws("EKS", "DescribeCluster", e)
            }
        })?;
    let c = out.cluster().ok_or_else(|| Error::Kubernetes {
        target: target(),
        problem: "DescribeCluster answered without the cluster".into(),
    })?;
    if let Some(status) = c.status()
        && status.as_str() != "ACTIVE"
        && status.as_str() != "UPDATING"
    {
        return Err(Error::Kubernetes {
            target: target(),
            problem: format!(
                "is {} and cannot take a deploy; wait until it is ACTIVE",
                status.as_str()
            ),
        });
    }
    let endpoint = match api_url {
        Some(u) => u.to_string(),
        None => c
            .endpoint()
            .map(str::to_string)
            .ok_or_else(|| Error::Kubernetes {
                target: target(),
                problem: "has no endpoint yet (is it still being created?)".into(),
            })?,
    };
    let ca = if endpoint.starts_with("https://") {
        let data = c
            .certificate_authority()
            .and_then(|a| a.data())
            .ok_or_else(|| Error::Kubernetes {
                target: target(),
                problem: "DescribeCluster gave no certificate authority to verify its endpoint"
                    .into(),
            })?;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        pem_certificates(&pem).map_err(|why| Error::Kubernetes {
            target: target(),
            problem: format!("its certificate authority {why}"),
        })?
    } else {
        Vec::new()
    };
    let credentials = aws
        .credentials
        .clone()
        .ok_or_else(|| Error::Kubernetes {
            target: target(),
            problem: "no AWS credentials to sign the bearer token; configure credentials (e.g. aws-actions/configure-aws-credentials)".into(),
        })?;
    let region = aws.region.clone().ok_or_else(|| Error::Kubernetes {
        target: target(),
        problem: "no AWS region to sign the bearer token for; set AWS_REGION".into(),
    })?;
    Ok(How::Eks {
        cluster: cluster.to_string(),
        region,
        endpoint,
        ca,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        let b64 = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .expect("base64url without padding"),
        )
        .expect("utf-8")
    }

    #[test]
    fn the_token_is_a_presigned_get_caller_identity_url_bound_to_the_cluster() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = eks_token(&creds, "eu-west-1", "shop", now).unwrap();
        assert!(!token.contains('='), "no padding: {token}");
        let url = decode(&token);
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
            "{url}"
        );
        for part in [
            "Action=GetCallerIdentity",
            "Version=2011-06-15",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20231114T221320Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        // Another cluster, another signature: the header is part of what is signed.
        let other = decode(&eks_token(&creds, "eu-west-1", "other", now).unwrap());
        let sig = |u: &str| u.split("X-Amz-Signature=").nth(1).unwrap_or("").to_string();
        assert_ne!(sig(&url), sig(&other));
    }

    #[test]
    fn a_token_is_signed_again_after_ten_minutes_well_before_the_fifteen_eks_allows() {
        let made = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(!token_stale(made, made));
        assert!(!token_stale(made, made + Duration::from_secs(599)));
        assert!(token_stale(made, made + TOKEN_RENEW_AFTER));
        assert!(
            !token_stale(made, made - Duration::from_secs(60)),
            "clock set back"
        );
        assert!(TOKEN_RENEW_AFTER + Duration::from_secs(4 * 60) <= Duration::from_secs(15 * 60));
    }

    #[test]
    fn a_pem_bundle_gives_its_der_certificates() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem).unwrap(), vec![vec![0, 1, 2, 3]]);
        assert!(pem_certificates("random").is_err());
    }
}
