//! The OCI Distribution API of a registry (ECR or any other): does a tag exist, what is its
//! manifest digest, and point another tag at an existing manifest without pulling a layer.
//! This is what makes "no rebuild of a released version" cheap: two small HTTP requests.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

use crate::error::{Error, Result};
use crate::inputs::Secret;

/// Every manifest kind a registry may hold for an image (single or multi-platform).
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How long one registry request may take before the run says the registry does not answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// User name and password for a registry (ECR's token, or `registry-username`/`-password`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// A registry reached over its HTTP API, with the credentials of this run.
#[derive(Clone, Debug)]
pub struct Registry {
    host: String,
    base: String,
    credentials: Option<Credentials>,
    /// The credentials go to no token service but one on the registry's own host (ECR's token).
    own_host_realm_only: bool,
    http: reqwest::Client,
}

/// A manifest read from the registry: its bytes, media type and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub body: Vec<u8>,
}

/// The URL scheme for a registry host: plain HTTP only for loopback (as the Docker engine does
/// for 127.0.0.0/8 by default), HTTPS for everything else.
pub(crate) fn scheme(host: &str) -> &'static str {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if is_loopback(name) { "http" } else { "https" }
}

/// `localhost`, `127.x.y.z` or `[::1]`: a name that never leaves the machine.
fn is_loopback(name: &str) -> bool {
    name == "localhost" || name.starts_with("127.") || name == "[::1]" || name == "::1"
}

/// Why a Bearer challenge's token service may not have this run's credentials, or `None` when
/// it may. It must speak HTTPS (plain HTTP only on loopback, like the registry itself), so that
/// no password crosses the network in the clear; with `own_host_only` (ECR's token, which opens
/// the AWS account's registry) it must also be the registry's own host and port. Credentials the
/// user gave for a registry may go to the token service it names on another host (Docker Hub's
/// is auth.docker.io): that registry was sent them already with the first request.
pub(crate) fn realm_refusal(
    registry_host: &str,
    realm: &reqwest::Url,
    own_host_only: bool,
) -> Option<String> {
    let realm_host = realm.host_str().unwrap_or_default();
    let secure = realm.scheme() == "https" || (realm.scheme() == "http" && is_loopback(realm_host));
    if !secure {
        return Some(format!(
            "its token service {realm} is not HTTPS, and credentials are never sent in the clear"
        ));
    }
    if !own_host_only {
        return None;
    }
    let same = reqwest::Url::parse(&format!("{}://{registry_host}/", scheme(registry_host)))
        .is_ok_and(|own| {
            own.host_str() == realm.host_str()
                && own.port_or_known_default() == realm.port_or_known_default()
        });
    (!same).then(|| {
        format!(
            "its token service {realm} is not on {registry_host} itself, and ECR's token goes only to the registry's own host"
        )
    })
}

/// Checks a tag against the Distribution spec's rule (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub(crate) fn validate_tag(tag: &str) -> Result<()> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "tag",
            tag,
            "an image tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`; fix tag-prefix or the version",
        ))
    }
}

/// Reads the `key="value"` pairs of a `WWW-Authenticate: Bearer ...` challenge.
pub(crate) fn bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.strip_prefix("Bearer ")?;
    let mut out = Vec::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        out.push((key.trim().to_string(), value.to_string()));
        s = tail.trim_start_matches([',', ' ']);
    }
    Some(out)
}

impl Registry {
    /// A client for `host` (e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`, `127.0.0.1:5000`).
    pub fn new(host: &str, credentials: Option<Credentials>) -> Result<Registry> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Image {
                image: host.to_string(),
                problem: format!("cannot set up an HTTP client: {e}"),
            })?;
        Ok(Registry {
            host: host.to_string(),
            base: format!("{}://{host}", scheme(host)),
            credentials,
            own_host_realm_only: false,
            http,
        })
    }

    /// Sends the credentials to no token service but one on the registry's own host (ECR's
    /// token, see [`realm_refusal`]).
    pub(crate) fn own_host_realm_only(mut self) -> Registry {
        self.own_host_realm_only = true;
        self
    }

    /// The host this client talks to.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The credentials of this run, if the registry needs any.
    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    fn image(&self, repository: &str, tag: &str) -> String {
        format!("{}/{repository}:{tag}", self.host)
    }

    fn basic(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some(c) => req.basic_auth(&c.username, Some(c.password.expose())),
            None => req,
        }
    }

    /// Sends a request with basic auth; on a Bearer challenge, fetches a token (with the same
    /// credentials) and sends it once more. Docker Hub, GHCR and others work this way.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        image: &str,
    ) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let build = |auth: Option<&str>| {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .headers(headers.clone());
            req = match auth {
                Some(token) => req.bearer_auth(token),
                None => self.basic(req),
            };
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            req
        };
        let unreachable = |e: reqwest::Error| Error::Image {
            image: image.to_string(),
            problem: format!(
                "the registry {} does not answer ({e}); check the registry input and the network",
                self.host
            ),
        };
        let resp = build(None).send().await.map_err(unreachable)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_challenge);
        let Some(params) = challenge else {
            return Err(self.refused(image));
        };
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(realm) = get("realm") else {
            return Err(self.refused(image));
        };
        let mut query = Vec::new();
        if let Some(s) = get("service") {
            query.push(("service", s));
        }
        if let Some(s) = get("scope") {
            query.push(("scope", s));
        }
        let token_url =
            reqwest::Url::parse_with_params(&realm, &query).map_err(|_| self.refused(image))?;
        let token_request = self.http.get(token_url.clone());
        let token_request = match &self.credentials {
            None => token_request,
            Some(_) => {
                if let Some(why) = realm_refusal(&self.host, &token_url, self.own_host_realm_only) {
                    return Err(Error::Image {
                        image: image.to_string(),
                        problem: format!(
                            "the registry {} asks for a token, but {why}: no credentials were sent to it; check the registry input (and registry-is-ecr)",
                            self.host
                        ),
                    });
                }
                self.basic(token_request)
            }
        };
        let token: serde_json::Value = token_request
            .send()
            .await
            .map_err(unreachable)?
            .error_for_status()
            .map_err(|_| self.refused(image))?
            .json()
            .await
            .map_err(|_| self.refused(image))?;
        let token = token
            .get("token")
            .or_else(|| token.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| self.refused(image))?
            .to_string();
        let resp = build(Some(&token)).send().await.map_err(unreachable)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(self.refused(image));
        }
        Ok(resp)
    }

    fn refused(&self, image: &str) -> Error {
        Error::Image {
            image: image.to_string(),
            problem: format!(
                "the registry {} refused the credentials{}; check registry-username/registry-password (or the AWS role's ECR permissions)",
                self.host,
                match &self.credentials {
                    Some(c) => format!(" of user {:?}", c.username),
                    None => " (none were given)".to_string(),
                }
            ),
        }
    }

    /// Checks that the registry accepts this run's credentials (`GET /v2/`), before any build.
    pub(crate) async fn check_login(&self) -> Result<()> {
        let resp = self
            .send(Method::GET, "/v2/", HeaderMap::new(), None, &self.host)
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Error::Image {
                image: self.host.clone(),
                problem: format!(
                    "the registry answered GET /v2/ with HTTP {}; is {} an OCI registry?",
                    resp.status(),
                    self.host
                ),
            })
        }
    }

    /// The manifest digest of `repository:tag`, or `None` when the tag does not exist.
    pub(crate) async fn tag_digest(&self, repository: &str, tag: &str) -> Result<Option<String>> {
        Ok(self
            .manifest(repository, tag)
            .await?
            .map(|manifest| manifest.digest))
    }

    /// Reads the manifest of `repository:reference` (a tag or a digest); `None` when absent.
    pub(crate) async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Manifest>> {
        let image = self.image(repository, reference);
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            MANIFEST_TYPES.parse().map_err(|_| self.refused(&image))?,
        );
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{repository}/manifests/{reference}"),
                headers,
                None,
                &image,
            )
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Error::Image {
                image,
                problem: format!("the registry answered the manifest request with HTTP {status}"),
            });
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_string();
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.map_err(|e| Error::Image {
            image: image.clone(),
            problem: format!("cannot read the manifest: {e}"),
        })?;
        let digest = match header_digest {
            Some(d) => d,
            None => sha256_digest(&body),
        };
        Ok(Some(Manifest {
            digest,
            media_type,
            body: body.to_vec(),
        }))
    }

    /// The labels of the image `repository:reference` (its config blob's `config.Labels`);
    /// `None` when the image is not there. A multi-platform index is read through its first
    /// image manifest for a real platform (attestations are `unknown/unknown`).
    pub(crate) async fn labels(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        let image = self.image(repository, reference);
        let unreadable = |what: &str| Error::Image {
            image: image.clone(),
            problem: format!("the registry's {what} could not be read as JSON"),
        };
        let Some(manifest) = self.manifest(repository, reference).await? else {
            return Ok(None);
        };
        let mut doc: serde_json::Value =
            serde_json::from_slice(&manifest.body).map_err(|_| unreadable("manifest"))?;
        if let Some(digest) = platform_manifest(&doc) {
            let Some(inner) = self.manifest(repository, &digest).await? else {
                return Ok(None);
            };
            doc = serde_json::from_slice(&inner.body).map_err(|_| unreadable("manifest"))?;
        }
        let Some(config) = doc
            .pointer("/config/digest")
            .and_then(serde_json::Value::as_str)
        else {
            return Err(unreadable("manifest (no config digest)"));
        };
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{repository}/blobs/{config}"),
                HeaderMap::new(),
                None,
                &image,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => {
                return Err(Error::Image {
                    image,
                    problem: format!("the registry answered the config blob request with HTTP {s}"),
                });
            }
            _ => {}
        }
        let body = resp.bytes().await.map_err(|e| Error::Image {
            image: image.clone(),
            problem: format!("cannot read the config blob: {e}"),
        })?;
        let config: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| unreadable("config blob"))?;
        Ok(Some(config_labels(&config)))
    }

    /// Points `repository:tag` at an existing manifest: one PUT of the same bytes, no layer moves.
    pub(crate) async fn put_tag(
        &self,
        repository: &str,
        tag: &str,
        manifest: &Manifest,
    ) -> Result<()> {
        validate_tag(tag)?;
        let image = self.image(repository, tag);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            manifest
                .media_type
                .parse()
                .map_err(|_| self.refused(&image))?,
        );
        let resp = self
            .send(
                Method::PUT,
                &format!("/v2/{repository}/manifests/{tag}"),
                headers,
                Some(manifest.body.clone()),
                &image,
            )
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            Err(Error::Image {
                image,
                problem: format!(
                    "the registry refused the tag (HTTP {status}: {}); an ECR repository with immutable tags cannot move `{tag}`",
                    text.trim()
                ),
            })
        }
    }
}

/// The digest of the image manifest to read in a multi-platform index (`manifests[]`): the
/// first whose platform is a real one, not an attestation's `unknown`. `None` for an image
/// manifest (it has a `config` of its own). Pure.
pub(crate) fn platform_manifest(doc: &serde_json::Value) -> Option<String> {
    doc.get("manifests")?
        .as_array()?
        .iter()
        .find(|m| {
            m.pointer("/platform/os")
                .and_then(serde_json::Value::as_str)
                .is_none_or(|os| os != "unknown")
        })
        .and_then(|m| m.get("digest"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// The `config.Labels` of an image config blob (empty when it has none). Pure.
pub(crate) fn config_labels(config: &serde_json::Value) -> BTreeMap<String, String> {
    config
        .pointer("/config/Labels")
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

/// The `sha256:<hex>` digest of some bytes (used when a registry sends no digest header).
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_plain_http_and_others_https() {
        assert_eq!(scheme("127.0.0.1:5000"), "http");
        assert_eq!(scheme("localhost:5000"), "http");
        assert_eq!(
            scheme("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            "https"
        );
        assert_eq!(scheme("ghcr.io"), "https");
    }

    #[test]
    fn a_token_service_gets_credentials_only_over_https_and_ecrs_only_on_the_registrys_host() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let reg = "registry.example";
        // The registry's own host over https: always.
        assert_eq!(
            realm_refusal(reg, &url("https://registry.example/token"), true),
            None
        );
        assert_eq!(
            realm_refusal(reg, &url("https://registry.example:443/t"), true),
            None
        );
        // Another host: the user's credentials may go (Docker Hub), ECR's never.
        let other = url("https://auth.example/token");
        assert_eq!(realm_refusal(reg, &other, false), None);
        let why = realm_refusal(reg, &other, true).unwrap();
        assert!(why.contains("not on registry.example itself"), "{why}");
        // Another port of the same host is another service.
        assert!(realm_refusal(reg, &url("https://registry.example:8443/t"), true).is_some());
        // Plain HTTP: never, but on loopback (the local test registry).
        for own_host_only in [false, true] {
            let why = realm_refusal(reg, &url("http://registry.example/token"), own_host_only);
            assert!(why.is_some_and(|w| w.contains("not HTTPS")));
        }
        assert_eq!(
            realm_refusal("127.0.0.1:5000", &url("http://127.0.0.1:5000/token"), true),
            None
        );
        assert!(
            realm_refusal("127.0.0.1:5000", &url("http://127.0.0.1:5001/token"), true).is_some()
        );
        assert!(
            realm_refusal("127.0.0.1:5000", &url("http://localhost:5000/token"), true).is_some()
        );
    }

    #[test]
    fn tags_follow_the_distribution_spec() {
        for ok in ["v1.2.3", "latest", "sha-abc1234", "_x", "1.0.0-rc.1"] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".v1", "-v1", "v1+build", "v 1", "ä", &"a".repeat(129)] {
            let err = validate_tag(bad).unwrap_err().to_string();
            assert!(err.contains("image tag"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_bearer_challenge_is_read_into_its_parameters() {
        let p = bearer_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull""#,
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://ghcr.io/token".into()),
                ("service".into(), "ghcr.io".into()),
                ("scope".into(), "repository:o/r:pull".into()),
            ]
        );
        assert_eq!(bearer_challenge("Basic realm=\"x\""), None);
    }

    #[test]
    fn an_index_is_read_through_its_first_real_platform_and_labels_come_from_the_config() {
        let index = serde_json::json!({
            "manifests": [
                { "digest": "sha256:att", "platform": { "os": "unknown", "architecture": "unknown" } },
                { "digest": "sha256:amd", "platform": { "os": "linux", "architecture": "amd64" } },
            ]
        });
        assert_eq!(platform_manifest(&index).as_deref(), Some("sha256:amd"));
        assert_eq!(
            platform_manifest(&serde_json::json!({ "config": { "digest": "sha256:c" } })),
            None
        );
        let config = serde_json::json!({
            "config": { "Labels": { "org.opencontainers.image.revision": "abc", "n": 1 } }
        });
        assert_eq!(
            config_labels(&config),
            BTreeMap::from([("org.opencontainers.image.revision".into(), "abc".into())])
        );
        assert!(config_labels(&serde_json::json!({ "config": {} })).is_empty());
    }

    #[test]
    fn sha256_matches_known_vectors() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
