//! The plan: everything a run will do, computed and validated before the first write to AWS
//! (apps, versions, tags, image source, task definitions, deployment kind). `--dry-run` prints it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::ConfigFile;
use crate::error::{Error, Result};
use crate::inputs::{
    AppSelector, AppSettings, ClusterSource, DeploymentChoice, GitTarget, KeepNullValues,
    KubeSettings, Settings,
};
use crate::task_definition;
use crate::trigger::Trigger;
use crate::version::{self, Version};

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Build it (unless the version tag already exists and `rebuild` is false).
    Build {
        dockerfile: PathBuf,
        context: PathBuf,
    },
    /// An explicit version was asked for: that existing tag is deployed, nothing is built.
    Existing,
    /// The `image` input: built elsewhere, deployed as given.
    External { reference: String },
}

/// The image side of an app's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePlan {
    /// Registry host; `None` means the account's ECR registry, learnt from ECR at run time.
    pub registry: Option<String>,
    pub repository: String,
    /// Tags to push, the version tag first.
    pub tags: Vec<String>,
    pub source: ImageSource,
}

impl ImagePlan {
    /// The version tag (first of the tags).
    pub(crate) fn version_tag(&self) -> &str {
        self.tags.first().map(String::as_str).unwrap_or("latest")
    }

    /// The image reference deployed, with `registry` filled in for the ECR default.
    pub(crate) fn reference(&self, registry: &str) -> String {
        match &self.source {
            ImageSource::External { reference } => reference.clone(),
            _ => format!("{registry}/{}:{}", self.repository, self.version_tag()),
        }
    }

    /// The reference for printing before the registry is known.
    pub(crate) fn display_reference(&self) -> String {
        self.reference(self.registry.as_deref().unwrap_or("<account ECR registry>"))
    }
}

/// The deploy side of an app's plan (absent for build-only runs).
#[derive(Debug, Clone, PartialEq)]
pub struct DeployPlan {
    pub cluster: String,
    pub service: String,
    /// The task definition file, loaded and checked, when `task-definition` was given.
    pub task_definition_file: Option<(PathBuf, Value)>,
    /// The container that gets the new image, when it could be decided from the file.
    pub container: Option<String>,
    pub deployment: DeploymentChoice,
    /// The AppSpec file's text, when `codedeploy-appspec` was given.
    pub appspec_file: Option<(PathBuf, String)>,
}

/// One app's plan.
/// Where an app's version came from: it decides whether the image is built or reused and
/// which tags it gets, and it is said to people in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSource {
    /// The `version` input or the dispatch's version: an existing image is deployed.
    Requested,
    /// The first of `tags` (no package.json): the build gets exactly the tags given.
    FirstTag,
    /// The tag of the `image` input (an image built elsewhere).
    ImageTag { reference: String },
    /// A package.json, as shown to people (workspace-relative).
    PackageJson { shown: String },
}

impl std::fmt::Display for VersionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSource::Requested => f.write_str("the requested version"),
            VersionSource::FirstTag => f.write_str("the first of `tags`"),
            VersionSource::ImageTag { reference } => write!(f, "the image tag of {reference}"),
            VersionSource::PackageJson { shown } => f.write_str(shown),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppPlan {
    pub app: String,
    pub settings: AppSettings,
    pub version: Version,
    /// Where the version came from (said to people as `apps/web1/package.json`, ...).
    pub version_source: VersionSource,
    pub image: ImagePlan,
    pub deploy: Option<DeployPlan>,
    pub notes: Vec<String>,
    /// Workspace-relative paths whose changes are this app's (`changed-only`): the package.json
    /// and Dockerfile directories, a build context that is not the root, the task definition and
    /// AppSpec files, and `paths`. `.` means every change counts.
    pub watch: Vec<String>,
}

/// The whole run's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub trigger: Trigger,
    pub apps: Vec<AppPlan>,
}

fn read(path: &Path, what: &str) -> Result<String> {
    crate::file_text::read(path, what, crate::file_text::FILE_LIMIT)
}

/// Shows a workspace path the way the user wrote it (relative to the workspace).
fn shown(settings: &Settings, p: &Path) -> String {
    let ws = &settings.github.workspace;
    let real_ws = ws.canonicalize().unwrap_or_else(|_| ws.clone());
    let rel = p
        .strip_prefix(ws)
        .or_else(|_| p.strip_prefix(&real_ws))
        .unwrap_or(p);
    if rel.as_os_str().is_empty() {
        ".".to_string()
    } else {
        rel.display().to_string()
    }
}

/// Which apps this run deploys, each with its per-app raw inputs layered.
fn select_apps(
    settings: &Settings,
    trigger: &Trigger,
    config: Option<(&Path, &ConfigFile)>,
) -> Result<Vec<(Option<String>, AppSettings)>> {
    let Some((path, cfg)) = config else {
        let name = match &settings.trigger.app {
            AppSelector::Names(n) if n.len() == 1 => Some(n[0].clone()),
            AppSelector::Names(n) => {
                return Err(Error::InputConflict {
                    message: format!(
                        "app lists several apps ({}) but there is no config file; several apps need `config`",
                        n.join(", ")
                    ),
                });
            }
            AppSelector::All => {
                return Err(Error::InputConflict {
                    message: "app: all needs a config file listing the apps (`config`)".into(),
                });
            }
            AppSelector::FromTrigger => trigger.app().map(str::to_string),
        };
        return Ok(vec![(name, settings.app.clone())]);
    };
    let names: Vec<String> = match &settings.trigger.app {
        AppSelector::All => cfg.apps.keys().cloned().collect(),
        AppSelector::Names(n) => n.clone(),
        AppSelector::FromTrigger => match trigger.app() {
            Some(a) => vec![a.to_string()],
            None if cfg.apps.len() == 1 => cfg.apps.keys().cloned().collect(),
            None => {
                return Err(Error::MissingInput {
                    name: "app".into(),
                    why: format!(
                        "because {} does not name an app and the config file has several ({}); give a name, a comma list, or all",
                        trigger.describe(),
                        cfg.apps.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        },
    };
    let mut out = Vec::new();
    for name in names {
        let raw = cfg
            .layered(&name, &settings.app_inputs)
            .ok_or_else(|| Error::Config {
                path: path.to_path_buf(),
                problem: format!(
                    "has no app {name:?} (apps: {}); add it under `apps` or fix the app name",
                    cfg.apps.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })?;
        let app_settings = AppSettings::from_raw(&raw).map_err(|e| {
            // The line of the refused key: the app's own, else the defaults' (a step input
            // has no line in the file).
            let at = match &e {
                Error::InvalidInput { name: key, .. } => {
                    crate::location::yaml_key_at(&cfg.text, &["apps", &name, key])
                        .or_else(|| crate::location::yaml_key_at(&cfg.text, &["defaults", key]))
                }
                _ => None,
            };
            Error::Config {
                path: path.to_path_buf(),
                problem: format!("apps.{name}: {e}"),
            }
            .in_file(path, at)
        })?;
        out.push((Some(name), app_settings));
    }
    Ok(out)
}

/// Loads the config file named by `config`, if any.
pub(crate) fn load_config(settings: &Settings) -> Result<Option<(PathBuf, ConfigFile)>> {
    match &settings.config {
        None => Ok(None),
        Some(p) => {
            let path = confined(settings, "config", settings.github.resolve(p))?;
            let text = read(&path, "the config file")?;
            Ok(Some((path.clone(), crate::config::parse(&path, &text)?)))
        }
    }
}

/// Checks the config file and the apps the step names in it before the trigger is decided, so a
/// misspelt app or a broken config fails every run instead of hiding behind a skip.
pub(crate) fn check_config(settings: &Settings) -> Result<()> {
    let Some((path, cfg)) = load_config(settings)? else {
        return Ok(());
    };
    if let AppSelector::Names(names) = &settings.trigger.app
        && let Some(missing) = names.iter().find(|n| !cfg.apps.contains_key(n.as_str()))
    {
        return Err(Error::Config {
            path,
            problem: format!(
                "has no app {missing:?} (apps: {}); add it under `apps` or fix the app name",
                cfg.apps.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok(())
}

/// Builds the whole plan. Reads local files (package.json, task definition, AppSpec, config) and
/// checks them; talks to no server.
pub fn build(settings: &Settings, trigger: &Trigger) -> Result<Plan> {
    let config = load_config(settings)?;
    let selected = select_apps(
        settings,
        trigger,
        config.as_ref().map(|(p, c)| (p.as_path(), c)),
    )?;
    let mut apps = Vec::new();
    for (name, app_settings) in selected {
        apps.push(plan_app(settings, trigger, name, app_settings)?);
    }
    Ok(Plan {
        trigger: trigger.clone(),
        apps,
    })
}

/// Makes sure `path` (resolved) stays inside the workspace, so a build cannot read the runner's disk.
/// A path an input names (or a default one), confined to the workspace: resolved with symlinks
/// followed, and refused when it ends up outside (`..`, an absolute path, a link to
/// `/proc/self/environ`), so no file of the runner's disk is read, built or sent. A path that
/// does not exist is returned as it is: reading it fails with "cannot read" and reads nothing.
fn confined(settings: &Settings, input: &str, path: PathBuf) -> Result<PathBuf> {
    if std::fs::symlink_metadata(&path).is_ok() {
        inside_workspace(settings, input, &path)?;
    }
    // The path as written (resolved against the workspace), so messages show it that way.
    Ok(path)
}

fn inside_workspace(settings: &Settings, input: &str, path: &Path) -> Result<PathBuf> {
    let ws = settings
        .github
        .workspace
        .canonicalize()
        .map_err(|source| Error::ReadFile {
            what: "the workspace (GITHUB_WORKSPACE)".into(),
            path: settings.github.workspace.clone(),
            source,
        })?;
    let real = path.canonicalize().map_err(|source| Error::ReadFile {
        what: format!("the {input}"),
        path: path.to_path_buf(),
        source,
    })?;
    if !real.starts_with(&ws) {
        return Err(Error::invalid_input(
            input,
            path.display().to_string(),
            format!(
                "must be inside the workspace {}{}; give a path inside the repository (no `..`, no absolute path, no symlink leading out)",
                ws.display(),
                if real.as_path() == path {
                    String::new()
                } else {
                    format!(" (it leads to {})", real.display())
                }
            ),
        ));
    }
    Ok(real)
}

fn plan_app(
    settings: &Settings,
    trigger: &Trigger,
    name: Option<String>,
    mut s: AppSettings,
) -> Result<AppPlan> {
    let ws = &settings.github;
    let mut notes = Vec::new();
    // package.json: explicit, else apps/<app>/package.json when it exists, else package.json.
    let package_json = match (&s.image.package_json, &name) {
        (Some(p), _) => ws.resolve(p),
        (None, Some(app)) => {
            let candidate = ws.workspace.join("apps").join(app).join("package.json");
            if candidate.is_file() {
                candidate
            } else {
                ws.workspace.join("package.json")
            }
        }
        (None, None) => ws.workspace.join("package.json"),
    };
    let package_json = confined(settings, "package-json", package_json)?;
    let requested = match trigger {
        Trigger::Dispatch { version, .. } => Some(version.clone()),
        Trigger::TagPush { .. } => None,
        _ => settings.trigger.version.clone(),
    }
    .filter(|v| v != "latest");

    // The version and where it came from.
    let (version, version_source, pkg_text) = if let Some(explicit) = requested {
        let value =
            version::version_from_tag(&explicit, s.image.version_format, &s.image.tag_prefix);
        let v = version::parse_version(
            &value,
            s.image.version_format,
            &s.image.tag_prefix,
            "the requested version",
        )?;
        let text = read(&package_json, "package.json").ok();
        (v, VersionSource::Requested, text)
    } else if let Some(first) = s.image.extra_tags.first().filter(|_| {
        s.image.prebuilt.is_none()
            && s.image.package_json.is_none()
            && !package_json.is_file()
            && !matches!(trigger, Trigger::TagPush { .. })
    }) {
        // A build tagged with `tags` needs no package.json (as with docker/build-push-action):
        // the first tag is the version, and the build gets exactly the tags given.
        (
            version_of_tags(first, &s.image.tag_prefix),
            VersionSource::FirstTag,
            None,
        )
    } else if let Some(reference) = s.image.prebuilt.as_ref().filter(|_| {
        s.image.package_json.is_none()
            && !package_json.is_file()
            && !matches!(trigger, Trigger::TagPush { .. })
    }) {
        // An image built elsewhere needs no package.json (as with the aws-actions steps): the
        // version is the image's tag, for the outputs and messages.
        (
            version_of_image(reference, &s.image.tag_prefix),
            VersionSource::ImageTag {
                reference: reference.clone(),
            },
            None,
        )
    } else {
        let text = read(&package_json, "package.json")?;
        let raw = version::version_from_package_json(&package_json, &text)?;
        let shown_pkg = shown(settings, &package_json);
        // A version that is refused points at its line of package.json.
        let at_version = |e: Error| {
            e.in_file(
                &package_json,
                crate::location::json_key_at(&text, "version"),
            )
        };
        let v = version::parse_version(
            &raw,
            s.image.version_format,
            &s.image.tag_prefix,
            &shown_pkg,
        )
        .map_err(at_version)?;
        if let Trigger::TagPush { tag } = trigger {
            let tag_version =
                version::version_from_tag(tag, s.image.version_format, &s.image.tag_prefix);
            if tag_version != v.value {
                return Err(at_version(Error::TagVersionMismatch {
                    tag: tag.clone(),
                    tag_version,
                    path: PathBuf::from(shown_pkg),
                    package_version: v.value,
                }));
            }
        }
        (
            v,
            VersionSource::PackageJson { shown: shown_pkg },
            Some(text),
        )
    };
    if let Some(n) = &version.note {
        notes.push(n.clone());
    }
    if version.prerelease && s.image.tag_latest {
        notes.push(format!(
            "{} is a prerelease: `latest` is not moved",
            version.value
        ));
    }
    let app = name
        .or_else(|| {
            pkg_text
                .as_deref()
                .and_then(version::name_from_package_json)
        })
        .or_else(|| {
            ws.repository
                .as_deref()
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "app".to_string());

    // The image (its login is checked right after planning, by the caller: `image::auth_kind`).
    let repository = s
        .image
        .ecr_repository
        .clone()
        .unwrap_or_else(|| app.clone());
    let explicit_version = version_source == VersionSource::Requested;
    let source = if let Some(reference) = &s.image.prebuilt {
        ImageSource::External {
            reference: reference.clone(),
        }
    } else if explicit_version {
        ImageSource::Existing
    } else {
        let dockerfile = match &s.image.dockerfile {
            Some(d) => ws.resolve(d),
            None => {
                let candidate = ws.workspace.join("apps").join(&app).join("Dockerfile");
                if candidate.is_file() {
                    candidate
                } else {
                    ws.workspace.join("Dockerfile")
                }
            }
        };
        let dockerfile = confined(settings, "dockerfile", dockerfile)?;
        if !dockerfile.is_file() {
            return Err(Error::ReadFile {
                what: "the Dockerfile".into(),
                path: dockerfile,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let context = inside_workspace(settings, "context", &ws.resolve(&s.image.context))?;
        ImageSource::Build {
            dockerfile,
            context,
        }
    };
    let tags = match source {
        ImageSource::External { .. } => Vec::new(),
        ImageSource::Existing => {
            if !s.image.extra_tags.is_empty() {
                notes.push(format!(
                    "tags ({}) are not applied: a requested version deploys the existing image {} as it is",
                    s.image.extra_tags.join(", "),
                    version.tag
                ));
            }
            vec![version.tag.clone()]
        }
        ImageSource::Build { .. } if version_source == VersionSource::FirstTag => {
            s.image.extra_tags.clone()
        }
        ImageSource::Build { .. } => {
            let mut tags = version::image_tags(&version, s.image.tag_latest, ws.sha.as_deref());
            for t in &s.image.extra_tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
            tags
        }
    };
    // `secret-files`: each file's content becomes a build secret (masked before the build).
    for (id, file) in std::mem::take(&mut s.image.build_secret_files) {
        if matches!(source, ImageSource::Build { .. }) {
            // Inside the workspace, as every path input (the action's container sees no other
            // directory of the runner).
            let path = confined(settings, "secret-files", ws.resolve(&file))?;
            let value = std::fs::read_to_string(&path).map_err(|source| Error::ReadFile {
                what: format!("the build secret file of {id} (secret-files)"),
                path: path.clone(),
                source,
            })?;
            s.image.build_secrets.retain(|(k, _)| k != &id);
            s.image
                .build_secrets
                .push((id, crate::inputs::Secret::new(value)));
        }
    }
    let image = ImagePlan {
        registry: s.image.registry.clone(),
        repository,
        tags,
        source,
    };

    // The deploy.
    let deploy = match &s.ecs.service {
        // amazon-ecs-deploy-task-definition can run a task with no service to update; here the
        // task runs with a deploy, so alone it is refused rather than silently skipped.
        None if s.ecs.run_task.is_some() || s.ecs.run_task_command.is_some() => {
            return Err(Error::InputConflict {
                message: "`run-task` / `run-task-command` run the new task definition before a service is updated, and no `service` is given; give the service (the task runs first, then the update)".into(),
            });
        }
        None => {
            // Registered without a service (as the deploy action does): the file is checked
            // here, before anything is built or written.
            if let Some(p) = &s.ecs.task_definition {
                let path = confined(settings, "task-definition", ws.resolve(p))?;
                let text = read(&path, "the task definition file")?;
                let td = task_definition::parse(&shown(settings, &path), &text)
                    .map_err(|e| e.in_file(&path, crate::location::json_error_at(&text)))?;
                task_definition::pick_container(
                    &shown(settings, &path),
                    &td,
                    s.rollout.container_name.as_deref(),
                )
                .map_err(|e| e.in_file(&path, None))?;
            }
            None
        }
        Some(service) => {
            let task_definition_file = match &s.ecs.task_definition {
                None => None,
                Some(p) => {
                    let path = confined(settings, "task-definition", ws.resolve(p))?;
                    let td =
                        crate::task_definition_check::load_file(&shown(settings, &path), &path)?;
                    // As amazon-ecs-deploy-task-definition registers a file.
                    let td = match &s.ecs.keep_null_value_keys {
                        KeepNullValues::All => td,
                        KeepNullValues::Keys(keep) => {
                            task_definition::without_empty_values(&td, keep)
                        }
                    };
                    Some((path, td))
                }
            };
            let container = match &task_definition_file {
                Some((path, td)) => Some(
                    task_definition::pick_container(
                        &shown(settings, path),
                        td,
                        s.rollout.container_name.as_deref(),
                    )
                    .map_err(|e| e.in_file(path, None))?,
                ),
                None => s.rollout.container_name.clone(),
            };
            let appspec_file = match &s.codedeploy.appspec {
                // As the official action does: an AppSpec at the workspace root is used when
                // none is named (checked by the CodeDeploy path only, in the preflight).
                None => match ["appspec.yaml", "appspec.yml", "appspec.json"]
                    .iter()
                    .map(|n| ws.workspace.join(n))
                    .find(|p| p.is_file())
                {
                    Some(p) => {
                        let p = confined(settings, "codedeploy-appspec", p)?;
                        read(&p, "the AppSpec file").ok().map(|t| (p, t))
                    }
                    None => None,
                },
                Some(p) => {
                    let path = confined(settings, "codedeploy-appspec", ws.resolve(p))?;
                    let text = read(&path, "the AppSpec file")?;
                    serde_yaml::from_str::<serde_yaml::Value>(&text).map_err(|e| {
                        Error::AppSpec {
                            source_name: shown(settings, &path),
                            problem: format!("is neither valid YAML nor JSON: {e}"),
                        }
                        .in_file(&path, e.location().map(|l| (l.line(), l.column())))
                    })?;
                    Some((path, text))
                }
            };
            Some(DeployPlan {
                cluster: s.ecs.cluster.clone(),
                service: service.clone(),
                task_definition_file,
                container,
                deployment: s.deployment,
                appspec_file,
            })
        }
    };
    let mut s = s;
    if let Some(k) = &mut s.kubernetes {
        kube_paths(settings, k)?;
    } else if deploy.is_none() {
        notes.push(
            if s.ecs.task_definition.is_some() || s.ecs.task_definition_ref.is_some() {
                "no `service` given: the task definition is registered with the image, no service is updated"
            } else {
                "no `service` given: build and push only, no deploy"
            }
            .into(),
        );
    }
    notes.extend(s.notices.iter().cloned());
    let watch = watched(
        settings,
        pkg_text.is_some().then_some(package_json.as_path()),
        &image.source,
        deploy.as_ref(),
        &s.paths,
    );
    Ok(AppPlan {
        app,
        settings: s,
        version,
        version_source,
        image,
        deploy,
        notes,
        watch,
    })
}

/// The version a build tagged with `tags` (and no package.json) stands for: its first tag,
/// without the tag prefix for people (`v1.2.3` → `1.2.3`). Pure.
pub(crate) fn version_of_tags(first: &str, tag_prefix: &str) -> Version {
    let value = first.strip_prefix(tag_prefix).unwrap_or(first).to_string();
    Version {
        tag: first.to_string(),
        prerelease: value.contains('-'),
        note: Some(format!(
            "no package.json: the version {value} is the first of `tags`, and the build gets exactly the tags given"
        )),
        value,
    }
}

/// The version an image built elsewhere stands for: its tag without the tag prefix
/// (`r/web1:v1.2.3` → `1.2.3`), or the digest's first 12 characters, or `latest`. Pure.
pub(crate) fn version_of_image(reference: &str, tag_prefix: &str) -> Version {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let last_slash = name.rfind('/').unwrap_or(0);
    let tag = name[last_slash..]
        .rsplit_once(':')
        .map(|(_, t)| t.to_string());
    let value = match (&tag, digest) {
        (Some(t), _) => t.strip_prefix(tag_prefix).unwrap_or(t).to_string(),
        (None, Some(d)) => d.trim_start_matches("sha256:").chars().take(12).collect(),
        (None, None) => "latest".to_string(),
    };
    Version {
        tag: tag.unwrap_or_else(|| value.clone()),
        prerelease: value.contains('-'),
        note: Some(format!(
            "no package.json: the version {value} is taken from the image {reference}"
        )),
        value,
    }
}

/// Resolves a Kubernetes target's files against the workspace (the manifest must be inside it,
/// so it can be committed) and gives it what the manifest commit needs from the run.
fn kube_paths(settings: &Settings, k: &mut KubeSettings) -> Result<()> {
    let ws = &settings.github;
    if let ClusterSource::Kubeconfig(p) = &mut k.source {
        *p = ws.resolve(p);
    }
    if let Some(m) = &k.manifest {
        let real = inside_workspace(settings, "kubernetes-manifest", &ws.resolve(m))?;
        let root = ws
            .workspace
            .canonicalize()
            .unwrap_or_else(|_| ws.workspace.clone());
        k.manifest_repo_path = real
            .strip_prefix(&root)
            .ok()
            .map(|r| r.to_string_lossy().replace('\\', "/"));
        k.manifest = Some(real);
    }
    let branch = ws
        .git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/heads/"))
        .unwrap_or(&settings.trigger.base_branch)
        .to_string();
    k.git = Some(GitTarget {
        repository: ws.repository.clone(),
        branch,
        api_url: settings
            .report
            .github_api_url
            .clone()
            .unwrap_or_else(|| "https://api.github.com".into()),
        token: settings.report.github_token.clone(),
    });
    k.api_url = settings.kubernetes_api_url.clone();
    k.run_url = ws.run_url();
    Ok(())
}

/// The paths whose changes are an app's (see [`AppPlan::watch`]), workspace-relative.
fn watched(
    settings: &Settings,
    package_json: Option<&Path>,
    source: &ImageSource,
    deploy: Option<&DeployPlan>,
    paths: &[String],
) -> Vec<String> {
    let dir = |p: &Path| shown(settings, p.parent().unwrap_or(p));
    let mut out: Vec<String> = Vec::new();
    out.extend(package_json.map(dir));
    if let ImageSource::Build {
        dockerfile,
        context,
    } = source
    {
        out.push(dir(dockerfile));
        let ctx = shown(settings, context);
        // A context at the root (a monorepo build) would make every change the app's.
        if ctx != "." {
            out.push(ctx);
        }
    }
    if let Some(d) = deploy {
        out.extend(
            d.task_definition_file
                .iter()
                .map(|(p, _)| shown(settings, p)),
        );
        out.extend(d.appspec_file.iter().map(|(p, _)| shown(settings, p)));
    }
    out.extend(paths.iter().cloned());
    let mut unique = Vec::new();
    for p in out {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    unique
}

impl AppPlan {}

/// The plan's build settings beyond the Dockerfile, one line each when given, so a dry run
/// shows what the build gets (names only for secrets).
fn build_lines(out: &mut String, s: &AppSettings) {
    let pairs = |p: &[(String, String)]| {
        p.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !s.image.build_args.is_empty() {
        let _ = writeln!(out, "  build args:  {}", pairs(&s.image.build_args));
    }
    if !s.image.build_secrets.is_empty() {
        let ids: Vec<&str> = s
            .image
            .build_secrets
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        let _ = writeln!(out, "  secrets:     {}", ids.join(", "));
    }
    if !s.image.labels.is_empty() {
        let _ = writeln!(out, "  labels:      {}", pairs(&s.image.labels));
    }
    if let Some(t) = &s.image.target {
        let _ = writeln!(out, "  target:      {t}");
    }
    if let Some(p) = &s.image.platform {
        let _ = writeln!(out, "  platform:    {p}");
    }
    if s.image.no_cache || s.image.pull {
        let _ = writeln!(
            out,
            "  cache:       {}{}",
            if s.image.no_cache {
                "none (no-cache)"
            } else {
                "kept"
            },
            if s.image.pull {
                ", base images pulled again"
            } else {
                ""
            }
        );
    }
    if !s.image.base_registries.is_empty() {
        let _ = writeln!(
            out,
            "  base logins: ECR registries of {}",
            s.image.base_registries.join(", ")
        );
    }
}

/// The plan's `wait:` line: how long the deploy is followed, and whether it is rolled back.
fn wait_line(s: &AppSettings) -> String {
    let wait = if s.rollout.wait_for_service_stability {
        format!("up to {} min", s.rollout.wait_for_minutes)
    } else {
        "no".into()
    };
    format!(
        "  wait:        {wait}, rollback on failure: {}\n",
        s.rollout.rollback_on_failure
    )
}

impl Plan {
    /// The plan as a person reads it in the log.
    pub(crate) fn render_text(&self, settings: &Settings) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Trigger: {}", self.trigger.describe());
        for a in &self.apps {
            let _ = writeln!(out, "\nApp {}", a.app);
            let _ = writeln!(
                out,
                "  version:     {} (from {})",
                a.version.value, a.version_source
            );
            let _ = writeln!(out, "  image:       {}", a.image.display_reference());
            match &a.image.source {
                ImageSource::Build {
                    dockerfile,
                    context,
                } => {
                    let _ = writeln!(out, "  tags:        {}", a.image.tags.join(", "));
                    let _ = writeln!(
                        out,
                        "  build:       {} (context {}){}",
                        shown(settings, dockerfile),
                        shown(settings, context),
                        if a.settings.image.rebuild {
                            ", rebuilt even if the tag exists"
                        } else {
                            ", skipped if the version tag already exists"
                        }
                    );
                    build_lines(&mut out, &a.settings);
                }
                ImageSource::Existing => {
                    let _ = writeln!(
                        out,
                        "  build:       none: the existing tag {} is deployed",
                        a.image.version_tag()
                    );
                }
                ImageSource::External { .. } => {
                    let _ = writeln!(out, "  build:       none: `image` was given");
                }
            }
            match (&a.deploy, &a.settings.kubernetes) {
                (None, Some(k)) => {
                    let _ = writeln!(
                        out,
                        "  deploy:      Kubernetes Deployment {}/{} on {}",
                        k.namespace,
                        k.deployment.as_deref().unwrap_or(&a.app),
                        match &k.source {
                            ClusterSource::Eks(name) => format!("EKS cluster {name}"),
                            ClusterSource::Kubeconfig(p) =>
                                format!("the cluster of kubeconfig {}", shown(settings, p)),
                        }
                    );
                    out.push_str(&wait_line(&a.settings));
                    if let Some(m) = &k.manifest {
                        let _ = writeln!(
                            out,
                            "  manifest:    {} (image updated and committed after the rollout)",
                            shown(settings, m)
                        );
                    }
                }
                (None, None) => {
                    let _ = writeln!(out, "  deploy:      none (no service given)");
                }
                (Some(d), _) => {
                    let _ = writeln!(
                        out,
                        "  deploy:      service {} in cluster {}",
                        d.service, d.cluster
                    );
                    let _ = writeln!(
                        out,
                        "  deployment:  {}",
                        match d.deployment {
                            DeploymentChoice::Auto =>
                                "auto (from the service's deployment controller)",
                            other => other.as_str(),
                        }
                    );
                    let _ = writeln!(
                        out,
                        "  task def:    {}",
                        match (&d.task_definition_file, &a.settings.ecs.task_definition_ref) {
                            (Some((p, _)), _) => shown(settings, p),
                            (None, Some(r)) => format!("{r} (registered)"),
                            (None, None) => "the service's live task definition".to_string(),
                        }
                    );
                    if let Some(c) = &d.container {
                        let _ = writeln!(out, "  container:   {c}");
                    }
                    let u = &a.settings.ecs.service_update;
                    if !u.is_empty() {
                        let mut set = Vec::new();
                        if let Some(n) = u.desired_count {
                            set.push(format!("desiredCount {n}"));
                        }
                        if let Some(t) = u.enable_ecs_managed_tags {
                            set.push(format!("enableECSManagedTags {t}"));
                        }
                        if let Some(p) = &u.propagate_tags {
                            set.push(format!("propagateTags {p}"));
                        }
                        let _ = writeln!(out, "  service:     {}", set.join(", "));
                    }
                    out.push_str(&wait_line(&a.settings));
                    if let Some(cmd) = &a.settings.ecs.run_task_command {
                        let _ = writeln!(out, "  before:      one-off task {:?}", cmd);
                    }
                    if let Some(t) = &a.settings.ecs.run_task {
                        let _ = writeln!(
                            out,
                            "  before:      run-task (started by {}{}), {}",
                            t.started_by,
                            if t.subnets.is_empty() {
                                ", the service's network"
                            } else {
                                ", its own subnets"
                            },
                            if t.wait {
                                "waited for (wait-for-task-stopped)"
                            } else {
                                "not waited for"
                            }
                        );
                    }
                }
            }
            for n in &a.notes {
                let _ = writeln!(out, "  note:        {n}");
            }
        }
        out
    }
}
