//! The image: log in to the registry, reuse an existing version tag or build and push every tag,
//! and report the registry's digest. Everything that can be checked (tags, repository, login)
//! is checked before the build starts, and every failure stops the app before any deploy step.

pub mod build;
pub mod ecr;
pub mod reference;
pub mod registry;

use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::inputs::{AppSettings, CacheMode, GithubContext};
use crate::plan::{AppPlan, ImageSource};
use crate::runner::shutdown::unless_cancelled;
use registry::{Credentials, Registry};

/// The tag that holds the registry build cache (`cache: registry`).
pub const CACHE_TAG: &str = "buildcache";

/// What the image step produced.
#[derive(Debug, Clone)]
pub struct ImageOutcome {
    /// The reference the task definition gets (registry/repo:tag, or the `image` input).
    pub reference: String,
    /// The registry's manifest digest, when known.
    pub digest: Option<String>,
    /// True when this run built the image.
    pub built: bool,
    /// The built image's id (its config digest, as `docker images --no-trunc` shows it), when
    /// this run built it.
    pub image_id: Option<String>,
    /// `latest`, to be moved to this image once the deploy succeeded ([`move_latest`]): it never
    /// points at an image that failed to deploy.
    pub latest: Option<PendingTag>,
}

/// A tag to put on a manifest later (after the deploy succeeded).
#[derive(Debug, Clone)]
pub struct PendingTag {
    registry: Registry,
    repository: String,
    tag: String,
    manifest: registry::Manifest,
}

/// Moves the image's pending `latest` (if any) to its manifest, and reads it back to verify.
/// Called once the deploy succeeded, or right after the push for a build-only run.
pub(crate) async fn move_latest(image: &ImageOutcome) -> Result<()> {
    let Some(p) = &image.latest else {
        return Ok(());
    };
    p.registry
        .put_tag(&p.repository, &p.tag, &p.manifest)
        .await?;
    verify_tag(&p.registry, &p.repository, &p.tag, &p.manifest.digest).await?;
    println!(
        "moved {}/{}:{} to {}",
        p.registry.host(),
        p.repository,
        p.tag,
        p.manifest.digest
    );
    Ok(())
}

/// Reads `repository:tag` back and checks that it names `digest`: a pushed tag is verified, not
/// assumed.
async fn verify_tag(reg: &Registry, repository: &str, tag: &str, digest: &str) -> Result<()> {
    let seen = reg.tag_digest(repository, tag).await?;
    if seen.as_deref() == Some(digest) {
        return Ok(());
    }
    Err(Error::Image {
        image: format!("{}/{repository}:{tag}", reg.host()),
        problem: format!(
            "after the push the registry says this tag is {}, not {digest}; another push may have raced this one: check the registry and run again",
            seen.as_deref().unwrap_or("absent")
        ),
    })
}

/// How this run logs in to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKind {
    /// ECR's authorization token: the account's registry, an ECR host, or a host the user
    /// declared to be in front of ECR (`registry-is-ecr: true`).
    Ecr,
    /// `registry-username` / `registry-password`.
    Basic(Credentials),
    /// An open registry.
    Anonymous,
}

/// Chooses the login from the inputs. ECR's token opens the AWS account's registry, so it goes
/// only to ECR hosts (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]`) or to a host the user
/// says is in front of ECR (`registry-is-ecr: true`: an alias or a VPC endpoint). Another host
/// takes `registry-username`/`-password`, or no login. A non-ECR host with `ecr-repository`
/// and neither credentials nor `registry-is-ecr` is ambiguous and refused (it once got the
/// token); so are credentials together with `registry-is-ecr: true`.
pub(crate) fn auth_kind(s: &AppSettings) -> Result<AuthKind> {
    let Some(host) = &s.image.registry else {
        return Ok(AuthKind::Ecr);
    };
    let ecr_host = ecr::is_ecr_host(host);
    match (
        &s.image.registry_username,
        &s.image.registry_password,
        s.image.registry_is_ecr,
    ) {
        (Some(_), Some(_), Some(true)) => Err(Error::InputConflict {
            message: format!(
                "registry-is-ecr: true logs in to {host} with ECR's token, and registry-username/registry-password are the login of a registry that is not ECR: give one or the other"
            ),
        }),
        _ if ecr_host => Ok(AuthKind::Ecr),
        (Some(user), Some(password), _) => Ok(AuthKind::Basic(Credentials {
            username: user.clone(),
            password: password.clone(),
        })),
        (_, _, Some(true)) => Ok(AuthKind::Ecr),
        (_, _, Some(false)) => Ok(AuthKind::Anonymous),
        (_, _, None) if s.image.ecr_repository.is_some() => Err(Error::InputConflict {
            message: format!(
                "registry {host} is not an ECR host (<account>.dkr.ecr.<region>.amazonaws.com), so ECR's token is not sent to it although ecr-repository is set; if {host} is an alias or a VPC endpoint in front of ECR, set `registry-is-ecr: true`; to push there without a login, set `registry-is-ecr: false`; for another registry's login give registry-username and registry-password"
            ),
        }),
        _ => Ok(AuthKind::Anonymous),
    }
}

/// The registry of this run, logged in, and whether ECR's API answers for its tags.
#[derive(Debug, Clone)]
pub struct Access {
    registry: Registry,
    /// True when the repository lives in ECR (checked or created through ECR's API).
    ecr_repository: bool,
    /// True when the host is the one ECR's token names, so DescribeImages answers for its tags.
    ecr_describes: bool,
}

async fn open(aws: &Aws, plan: &AppPlan) -> Result<Access> {
    let s = &plan.settings;
    match auth_kind(s)? {
        AuthKind::Ecr => {
            let login = ecr::login(aws).await?;
            let host = plan
                .image
                .registry
                .clone()
                .unwrap_or_else(|| login.host.clone());
            Ok(Access {
                ecr_describes: host == login.host,
                registry: Registry::new(&host, Some(login.credentials))?.own_host_realm_only(),
                ecr_repository: true,
            })
        }
        AuthKind::Basic(c) => Ok(Access {
            registry: Registry::new(plan.image.registry.as_deref().unwrap_or_default(), Some(c))?,
            ecr_repository: false,
            ecr_describes: false,
        }),
        AuthKind::Anonymous => Ok(Access {
            registry: Registry::new(plan.image.registry.as_deref().unwrap_or_default(), None)?,
            ecr_repository: false,
            ecr_describes: false,
        }),
    }
}

/// The OCI labels every build gets (`org.opencontainers.image.*`).
pub(crate) fn oci_labels(
    plan: &AppPlan,
    github: &GithubContext,
    created: &str,
) -> Vec<(String, String)> {
    let mut labels = vec![
        (
            "org.opencontainers.image.version".to_string(),
            plan.version.value.clone(),
        ),
        (
            "org.opencontainers.image.created".to_string(),
            created.to_string(),
        ),
    ];
    if let Some(repo) = &github.repository {
        labels.push((
            "org.opencontainers.image.source".to_string(),
            format!("{}/{repo}", github.server_url.trim_end_matches('/')),
        ));
    }
    if let Some(sha) = &github.sha {
        labels.push((REVISION_LABEL.to_string(), sha.clone()));
    }
    labels
}

/// What the preflight learnt about an app's image, read-only: the reference to deploy, the
/// registry logged in, whether the repository must be created and the version tag's digest.
/// [`ensure`] consumes it and reads none of that again.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The reference the task definition gets (registry/repo:tag, or the `image` input).
    pub reference: String,
    /// The registry, logged in (`None` for an image built elsewhere, or a dry run, which does
    /// not contact the registry).
    pub access: Option<Access>,
    /// The ECR repository does not exist yet and `create-repository` will create it.
    pub create_repository: bool,
    /// The version tag's manifest digest, when the tag already exists.
    pub existing: Option<String>,
    /// Logins to the ECR registries of `registries` (base images of the build).
    pub base_logins: Vec<ecr::Login>,
}

/// The image's read-only checks, for the preflight: tag grammar, the reference's grammar, the
/// registry login (ECR's token and the registry's own answer), the repository, and whether the
/// version tag exists. An explicit older version that does not exist fails here. With
/// `registry_host` given (a dry run), the registry is not contacted: only the names are checked.
pub(crate) async fn check(
    aws: &Aws,
    plan: &AppPlan,
    registry_host: Option<&str>,
) -> Result<Checked> {
    let img = &plan.image;
    if let ImageSource::External { reference } = &img.source {
        reference::check_image_reference(reference)?;
        return Ok(Checked {
            reference: reference.clone(),
            access: None,
            create_repository: false,
            existing: None,
            base_logins: Vec::new(),
        });
    }
    for tag in &img.tags {
        registry::validate_tag(tag)?;
    }
    let base_logins = base_logins(aws, plan).await?;
    if let Some(host) = registry_host {
        let reference = img.reference(host);
        if !host.starts_with('<') {
            reference::check_image_reference(&reference)?;
        }
        return Ok(Checked {
            reference,
            access: None,
            create_repository: false,
            existing: None,
            base_logins,
        });
    }
    let s = &plan.settings;
    let access = open(aws, plan).await?;
    let reg = &access.registry;
    let host = reg.host().to_string();
    let repo = img.repository.as_str();
    let version_tag = img.version_tag();
    let reference = img.reference(&host);
    reference::check_image_reference(&reference)?;
    let exists = !access.ecr_repository || ecr::repository_exists(aws, repo).await?;
    if !exists && s.image.create_repository == crate::inputs::CreateRepository::No {
        return Err(ecr::missing_repository(&host, repo));
    }
    // A refused login is found here, before any build or push.
    reg.check_login().await?;
    let existing = if !exists {
        None
    } else if access.ecr_describes {
        ecr::tag_digest(aws, repo, version_tag).await?
    } else {
        reg.tag_digest(repo, version_tag).await?
    };
    if img.source == ImageSource::Existing && existing.is_none() {
        return Err(Error::Image {
            image: reference,
            problem: format!(
                "the repository {repo} in {host} has no tag {version_tag}; a requested version is deployed from an existing image, so release it first or ask for a version that exists"
            ),
        });
    }
    Ok(Checked {
        reference,
        access: Some(access),
        create_repository: !exists,
        existing,
        base_logins,
    })
}

/// The ECR logins of `registries`, read-only (a dry run reads them too, so an account whose
/// token is refused fails before anything is written); none when nothing is built.
async fn base_logins(aws: &Aws, plan: &AppPlan) -> Result<Vec<ecr::Login>> {
    let accounts = &plan.settings.image.base_registries;
    if accounts.is_empty() || !matches!(plan.image.source, ImageSource::Build { .. }) {
        return Ok(Vec::new());
    }
    let logins = ecr::logins_for(&ecr::login(aws).await?, accounts)?;
    let hosts: Vec<&str> = logins.iter().map(|l| l.host.as_str()).collect();
    println!(
        "{}: the build logs in to {} for its base images (registries)",
        plan.app,
        hosts.join(", ")
    );
    Ok(logins)
}

/// The build's labels: the OCI ones, then `labels` (a key given there wins).
pub(crate) fn build_labels(
    plan: &AppPlan,
    github: &GithubContext,
    created: &str,
) -> Vec<(String, String)> {
    let own = &plan.settings.image.labels;
    let mut labels: Vec<(String, String)> = oci_labels(plan, github, created)
        .into_iter()
        .filter(|(k, _)| !own.iter().any(|(o, _)| o == k))
        .collect();
    labels.extend(own.iter().cloned());
    labels
}

/// Makes sure the planned image exists in the registry and returns its reference and digest:
/// an external image as given, an existing version tag reused, or a new build pushed. Starts
/// from what the preflight checked ([`check`]): the first write is here.
pub(crate) async fn ensure(
    aws: &Aws,
    plan: &AppPlan,
    checked: &Checked,
    github: &GithubContext,
    cancel: &CancellationToken,
) -> Result<ImageOutcome> {
    let img = &plan.image;
    let (dockerfile, context) = match &img.source {
        ImageSource::External { reference } => {
            println!("image {reference} was built elsewhere: nothing to build");
            return Ok(ImageOutcome {
                reference: reference.clone(),
                digest: None,
                built: false,
                image_id: None,
                latest: None,
            });
        }
        ImageSource::Existing => (None, None),
        ImageSource::Build {
            dockerfile,
            context,
        } => (Some(dockerfile), Some(context)),
    };
    let s = &plan.settings;
    // The runner masks whole inputs; a secret's value alone must be hidden too.
    let values: Vec<String> = s
        .image
        .build_secrets
        .iter()
        .map(|(_, v)| v.expose().to_string())
        .collect();
    crate::runner::console::mask(&values);
    let access = checked.access.as_ref().ok_or_else(|| Error::Image {
        image: checked.reference.clone(),
        problem: "the registry was not checked before the image step (a dry run does not push); run without dry-run".into(),
    })?;
    let reg = &access.registry;
    let host = reg.host().to_string();
    let repo = img.repository.as_str();
    let version_tag = img.version_tag();
    let reference = checked.reference.clone();
    if checked.create_repository {
        unless_cancelled(cancel, || {
            format!("before creating the repository {repo} in {host}")
        })?;
        ecr::ensure_repository(aws, &host, repo, s.image.create_repository).await?;
    }
    let existing = checked.existing.clone();

    let (Some(dockerfile), Some(context)) = (dockerfile, context) else {
        // An explicit older version: deploy what is there, never build.
        return match existing {
            Some(digest) => {
                println!("deploying the existing image {reference} ({digest}); nothing is built");
                Ok(ImageOutcome {
                    reference,
                    digest: Some(digest),
                    built: false,
                    image_id: None,
                    latest: None,
                })
            }
            None => Err(Error::Image {
                image: reference,
                problem: format!(
                    "the repository {repo} in {host} has no tag {version_tag}; a requested version is deployed from an existing image, so release it first or ask for a version that exists"
                ),
            }),
        };
    };

    if let Some(digest) = existing.filter(|_| !s.image.rebuild) {
        println!(
            "{reference} already exists ({digest}): reusing it, no build (set `rebuild: true` to build it again)"
        );
        // `tags` asked for by the step go on the reused image too (now); `latest` waits.
        let extra: Vec<&String> = img
            .tags
            .iter()
            .filter(|t| s.image.extra_tags.contains(t) && *t != version_tag && *t != "latest")
            .collect();
        let wants_latest = img.tags.iter().any(|t| t == "latest");
        let latest = if wants_latest || !extra.is_empty() {
            let manifest = reg
                .manifest(repo, &digest)
                .await?
                .ok_or_else(|| Error::Image {
                    image: reference.clone(),
                    problem: format!("the registry lost the manifest {digest} while it was read"),
                })?;
            for tag in &extra {
                unless_cancelled(cancel, || format!("before tagging {repo}:{tag}"))?;
                reg.put_tag(repo, tag, &manifest).await?;
                verify_tag(reg, repo, tag, &digest).await?;
                println!("tagged {host}/{repo}:{tag} ({digest})");
            }
            wants_latest.then(|| pending_latest(reg, repo, manifest))
        } else {
            None
        };
        return Ok(ImageOutcome {
            reference,
            digest: Some(digest),
            built: false,
            image_id: None,
            latest,
        });
    }

    unless_cancelled(cancel, || format!("before building {reference}"))?;
    let engine = build::connect().await?;
    let repository_ref = format!("{host}/{repo}");
    let cache_ref =
        (s.image.cache == CacheMode::Registry).then(|| format!("{repository_ref}:{CACHE_TAG}"));
    let request = build::BuildRequest {
        name: reference.clone(),
        dockerfile: dockerfile.clone(),
        context: context.clone(),
        build_args: s.image.build_args.clone(),
        secrets: s.image.build_secrets.clone(),
        target: s.image.target.clone(),
        platform: s.image.platform.clone(),
        labels: build_labels(plan, github, &build::now_rfc3339()),
        cache_ref: cache_ref.clone(),
        credentials: reg
            .credentials()
            .map(|c| (host.clone(), c.clone()))
            .into_iter()
            .chain(
                checked
                    .base_logins
                    .iter()
                    .map(|l| (l.host.clone(), l.credentials.clone())),
            )
            .collect(),
        no_cache: s.image.no_cache,
        pull: s.image.pull,
    };
    build::build(&engine, &request, cancel).await?;
    // The `imageid` output; an engine that cannot say only leaves it empty.
    let image_id = engine
        .docker
        .inspect_image(&request.name)
        .await
        .ok()
        .and_then(|i| i.id);
    // `latest` waits for the deploy: it is put on the manifest once the deploy succeeded.
    let now: Vec<String> = img
        .tags
        .iter()
        .filter(|t| *t != "latest")
        .cloned()
        .collect();
    unless_cancelled(cancel, || {
        format!("after the build, before pushing {reference}: nothing was pushed")
    })?;
    build::push(
        &engine.docker,
        &repository_ref,
        &now,
        reg.credentials(),
        &host,
        cancel,
    )
    .await?;
    let manifest = reg
        .manifest(repo, version_tag)
        .await?
        .ok_or_else(|| Error::Image {
            image: reference.clone(),
            problem: "the push ended but the registry has no such tag; check the registry's logs"
                .into(),
        })?;
    if cache_ref.is_some() {
        unless_cancelled(cancel, || {
            format!("after pushing {reference}, before tagging the build cache")
        })?;
        reg.put_tag(repo, CACHE_TAG, &manifest).await?;
        println!("registry cache: {repository_ref}:{CACHE_TAG} now holds this build's cache");
    }
    for tag in &now {
        verify_tag(reg, repo, tag, &manifest.digest).await?;
    }
    println!(
        "pushed {} (each read back: {})",
        now.join(", "),
        manifest.digest
    );
    let digest = manifest.digest.clone();
    let latest = (now.len() < img.tags.len()).then(|| pending_latest(reg, repo, manifest));
    Ok(ImageOutcome {
        reference,
        digest: Some(digest),
        built: true,
        image_id,
        latest,
    })
}

/// The registry host of an image reference (`host[:port]`, the first part when it names a host:
/// it has a `.` or a `:`, or is `localhost`), for the `registry` output; Docker Hub images
/// (`nginx:1`, `library/nginx`) have none.
pub(crate) fn registry_of(reference: &str) -> Option<String> {
    let (first, rest) = reference.split_once('/')?;
    (!rest.is_empty() && (first.contains(['.', ':']) || first == "localhost"))
        .then(|| first.to_string())
}

/// The label the build puts the commit in, and the release notes read back from the live image.
pub(crate) const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// An image reference in the parts the registry API takes: host, repository, and the tag or
/// digest (`latest` when neither is given). Docker Hub's short names (`nginx:1`) go to
/// `registry-1.docker.io` under `library/`. Pure.
pub(crate) fn reference_parts(reference: &str) -> Option<(String, String, String)> {
    let (name, pointer) = match reference.split_once('@') {
        Some((n, digest)) => (n, digest.to_string()),
        None => {
            let slash = reference.rfind('/');
            match reference.rfind(':') {
                Some(i) if slash.is_none_or(|s| i > s) => {
                    (&reference[..i], reference[i + 1..].to_string())
                }
                _ => (reference, "latest".to_string()),
            }
        }
    };
    // A digest reference may carry a tag too (`repo:tag@sha256:…`): the digest wins.
    let name = match name.rfind(':') {
        Some(i) if name.rfind('/').is_none_or(|s| i > s) => &name[..i],
        _ => name,
    };
    let (host, repository) = match registry_of(name) {
        Some(host) => (host.clone(), name[host.len() + 1..].to_string()),
        None if name.contains('/') => ("registry-1.docker.io".into(), name.to_string()),
        None => ("registry-1.docker.io".into(), format!("library/{name}")),
    };
    (!repository.is_empty() && !pointer.is_empty()).then_some((host, repository, pointer))
}

/// The commit an image was built from: its [`REVISION_LABEL`], read from the registry (the
/// manifest, then the config blob). The run's own login is used when the image lives in the
/// registry the run logged in to; another registry is asked without credentials. `None` when
/// the image or the label is not there.
pub(crate) async fn revision_of(
    access: Option<&Access>,
    reference: &str,
) -> Result<Option<String>> {
    let Some((host, repository, pointer)) = reference_parts(reference) else {
        return Ok(None);
    };
    let registry = match access.map(|a| &a.registry) {
        Some(r) if r.host() == host => r.clone(),
        _ => Registry::new(&host, None)?,
    };
    Ok(registry
        .labels(&repository, &pointer)
        .await?
        .and_then(|mut labels| labels.remove(REVISION_LABEL)))
}

/// `latest` for `manifest`, to be moved after the deploy.
fn pending_latest(reg: &Registry, repository: &str, manifest: registry::Manifest) -> PendingTag {
    PendingTag {
        registry: reg.clone(),
        repository: repository.to_string(),
        tag: "latest".into(),
        manifest,
    }
}

/// The registry host for the plan, read-only: the `registry` input, or the account's ECR
/// registry from ECR's authorization token (used by the dry run).
pub(crate) async fn registry_host(aws: &Aws, plan: &AppPlan) -> Result<String> {
    if let Some(r) = &plan.image.registry {
        return Ok(r.clone());
    }
    Ok(ecr::login(aws).await?.host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::Secret;

    fn settings(raw: &[(&str, &str)]) -> AppSettings {
        let raw = crate::inputs::RawInputs {
            values: raw
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        AppSettings::from_raw(&raw).unwrap()
    }

    #[test]
    fn a_reference_splits_into_host_repository_and_tag_or_digest() {
        let parts = |r: &str| reference_parts(r);
        let own = |h: &str, r: &str, p: &str| Some((h.to_string(), r.to_string(), p.to_string()));
        assert_eq!(
            parts("123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3"),
            own(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "web1",
                "v1.2.3"
            )
        );
        assert_eq!(
            parts("127.0.0.1:5000/team/web1@sha256:abc"),
            own("127.0.0.1:5000", "team/web1", "sha256:abc")
        );
        assert_eq!(
            parts("127.0.0.1:5000/web1:v1@sha256:abc"),
            own("127.0.0.1:5000", "web1", "sha256:abc")
        );
        assert_eq!(
            parts("nginx"),
            own("registry-1.docker.io", "library/nginx", "latest")
        );
        assert_eq!(
            parts("acme/web:2"),
            own("registry-1.docker.io", "acme/web", "2")
        );
        assert_eq!(parts("127.0.0.1:5000/web1:"), None);
    }

    #[test]
    fn the_login_is_ecr_unless_the_registry_is_another_one() {
        let kind = |raw: &[(&str, &str)]| auth_kind(&settings(raw));
        assert_eq!(kind(&[]).unwrap(), AuthKind::Ecr);
        assert_eq!(
            kind(&[("registry", "123456789012.dkr.ecr.us-east-1.amazonaws.com")]).unwrap(),
            AuthKind::Ecr
        );
        assert_eq!(
            kind(&[(
                "registry",
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
            )])
            .unwrap(),
            AuthKind::Ecr
        );
        assert_eq!(
            kind(&[("registry", "ghcr.io")]).unwrap(),
            AuthKind::Anonymous
        );
        assert_eq!(
            kind(&[
                ("registry", "ghcr.io"),
                ("registry-username", "me"),
                ("registry-password", "pw"),
                ("ecr-repository", "web1"),
            ])
            .unwrap(),
            AuthKind::Basic(Credentials {
                username: "me".into(),
                password: Secret::new("pw"),
            })
        );
    }

    #[test]
    fn the_registry_of_a_reference_is_its_host_part() {
        assert_eq!(
            registry_of("123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3").as_deref(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")
        );
        assert_eq!(
            registry_of("127.0.0.1:5000/a/b@sha256:00").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(registry_of("localhost/web").as_deref(), Some("localhost"));
        assert_eq!(registry_of("library/nginx:1"), None);
        assert_eq!(registry_of("nginx"), None);
    }

    #[test]
    fn ecrs_token_goes_to_another_host_only_when_the_user_says_it_is_in_front_of_ecr() {
        let kind = |raw: &[(&str, &str)]| auth_kind(&settings(raw));
        assert_eq!(
            kind(&[
                ("registry", "registry.internal.example"),
                ("ecr-repository", "web1"),
                ("registry-is-ecr", "true"),
            ])
            .unwrap(),
            AuthKind::Ecr
        );
        assert_eq!(
            kind(&[
                ("registry", "127.0.0.1:5000"),
                ("ecr-repository", "web1"),
                ("registry-is-ecr", "false"),
            ])
            .unwrap(),
            AuthKind::Anonymous
        );
        // Before, `ecr-repository` alone sent the token to any host: now it is refused.
        let err = kind(&[
            ("registry", "registry.evil.example"),
            ("ecr-repository", "web1"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("registry registry.evil.example is not an ECR host")
                && err.contains("registry-is-ecr: true"),
            "{err}"
        );
        let err = kind(&[
            ("registry", "registry.internal.example"),
            ("registry-is-ecr", "true"),
            ("registry-username", "me"),
            ("registry-password", "pw"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("give one or the other"), "{err}");
    }
}
