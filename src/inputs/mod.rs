//! Every input, read once: `INPUT_*` variables as the runner sets them, or CLI flags of the same
//! names, turned into typed, validated settings. No other module reads the environment.
//! `spec` holds the contract tables, `raw` the strings as given; this module the typed settings.

use std::path::PathBuf;

use crate::error::{Error, Result};

mod contract;
mod raw;
mod spec;

use crate::task_definition::ContainerEdits;
pub use contract::{BETWEEN_RELEASES, action_yml, cli as contract_cli, inputs_md, valid_image};
pub use raw::{
    GithubContext, RawInputs, Sources, command, is_help, parse_bool, parse_command, parse_pairs,
    parse_paths, read_sources,
};
use raw::{parse_choice, parse_command_of};
pub use spec::{
    CONTEXT, GROUPS, INPUTS, InputSpec, Kind, OUTPUTS, Scope, input_env_name, input_spec,
};

/// Which events deploy (`deploy-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeployOn {
    pub pull_request_merged: bool,
    pub workflow_dispatch: bool,
    pub tag: bool,
    /// `push`: a push to any branch deploys.
    pub push: bool,
    /// `push-to-base-branch` (in the default): a push to `base-branch` deploys, as a step
    /// copied from the aws-actions under `on: push` expects; other branches skip.
    pub push_to_base_branch: bool,
}

impl DeployOn {
    /// Parses the comma list of `deploy-on`.
    pub(crate) fn parse(value: &str) -> Result<Self> {
        let mut on = DeployOn::default();
        for item in value
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item {
                "pull-request-merged" => on.pull_request_merged = true,
                "workflow-dispatch" => on.workflow_dispatch = true,
                "tag" => on.tag = true,
                "push" => on.push = true,
                "push-to-base-branch" => on.push_to_base_branch = true,
                other => {
                    return Err(Error::invalid_input(
                        "deploy-on",
                        other,
                        "accepted values (comma list): pull-request-merged, workflow-dispatch, tag, push, push-to-base-branch",
                    ));
                }
            }
        }
        Ok(on)
    }
}

/// Which apps the `app` input selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSelector {
    /// Not given: the trigger (release branch) decides.
    FromTrigger,
    /// One or more names.
    Names(Vec<String>),
    /// Every app of the config file.
    All,
}

/// Settings that decide whether this event deploys.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerSettings {
    pub app: AppSelector,
    pub base_branch: String,
    pub release_branch_prefix: String,
    pub deploy_on: DeployOn,
    /// The `version` input: `latest` or an explicit version (validated later per app).
    pub version: Option<String>,
}

pub use crate::version::{VersionFormat, validate_app_name};

/// Whether a missing ECR repository is created, and with which tag mutability
/// (`create-repository` input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateRepository {
    /// A missing repository is an error.
    No,
    /// Created with mutable tags.
    Mutable,
    /// Created with immutable tags, except the ones this action moves (`latest`, `buildcache`).
    Immutable,
}

/// Registry build cache mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    None,
    Registry,
}

/// The deployment path (`deployment` input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentChoice {
    Auto,
    Rolling,
    CodeDeploy,
    EcsBlueGreen,
    /// A Kubernetes Deployment (`eks-cluster` or `kubeconfig`), not an ECS service.
    Kubernetes,
}

impl DeploymentChoice {
    /// The path asked for; `None` for `auto` (the service's controller decides).
    pub(crate) fn path(self) -> Option<crate::outcome::DeployPath> {
        use crate::outcome::DeployPath;
        match self {
            DeploymentChoice::Auto => None,
            DeploymentChoice::Rolling => Some(DeployPath::Rolling),
            DeploymentChoice::CodeDeploy => Some(DeployPath::CodeDeploy),
            DeploymentChoice::EcsBlueGreen => Some(DeployPath::EcsBlueGreen),
            DeploymentChoice::Kubernetes => Some(DeployPath::Kubernetes),
        }
    }

    /// The name as written in inputs and outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentChoice::Auto => "auto",
            DeploymentChoice::Rolling => "rolling",
            DeploymentChoice::CodeDeploy => "codedeploy",
            DeploymentChoice::EcsBlueGreen => "ecs-blue-green",
            DeploymentChoice::Kubernetes => "kubernetes",
        }
    }
}

/// A secret string: its Debug output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Per-app settings, one part per concern: each deploy path and the image build get only the
/// part they act on. From step inputs, or config defaults + app + inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSettings {
    /// How an input was taken when that differs from what was written (a value capped): shown
    /// as notes of the plan.
    pub notices: Vec<String>,
    /// `paths`: workspace-relative paths whose changes count as this app's (changed-only).
    pub paths: Vec<String>,
    /// `deployment`: which path deploys (auto: chosen from the service's controller).
    pub deployment: DeploymentChoice,
    /// The version, the image's name and tags, and its build.
    pub image: ImageSettings,
    /// How every path follows, times and takes back its deployment.
    pub rollout: RolloutSettings,
    /// The ECS service and its task definition (rolling, CodeDeploy, ECS blue/green).
    pub ecs: EcsSettings,
    /// The CodeDeploy application, group, AppSpec and config (the CodeDeploy path).
    pub codedeploy: CodeDeploySettings,
    /// The Kubernetes target (`eks-cluster` or `kubeconfig`), instead of an ECS service.
    pub kubernetes: Option<KubeSettings>,
    /// `verify-url`, `verify-test-url`, `verify-requests`, `verify-max-failures`,
    /// `verify-alarms`: the gate.
    pub verify: VerifySettings,
}

/// The image part: where the version is read, how the image is named and tagged, and how it is
/// built (or which prebuilt image is deployed instead).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSettings {
    pub package_json: Option<PathBuf>,
    pub version_format: VersionFormat,
    pub tag_prefix: String,
    pub tag_latest: bool,
    /// `image`: an image built elsewhere, deployed as it is (nothing is built).
    pub prebuilt: Option<String>,
    pub registry: Option<String>,
    pub registry_username: Option<String>,
    pub registry_password: Option<Secret>,
    pub ecr_repository: Option<String>,
    /// `registry-is-ecr`: `None` when not given (an ECR host needs none).
    pub registry_is_ecr: Option<bool>,
    pub create_repository: CreateRepository,
    pub dockerfile: Option<PathBuf>,
    pub context: PathBuf,
    pub build_args: Vec<(String, String)>,
    pub build_secrets: Vec<(String, Secret)>,
    /// `secret-files`: id → file; the plan reads each into `build_secrets`.
    pub build_secret_files: Vec<(String, PathBuf)>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub cache: CacheMode,
    pub rebuild: bool,
    /// `tags`: more tags for the build (the tag part of each entry; a reference's registry and
    /// repository went into `registry` / `ecr_repository`).
    pub extra_tags: Vec<String>,
    /// `labels`: image labels, over the OCI labels the build sets.
    pub labels: Vec<(String, String)>,
    /// `no-cache`: build without the layer cache or the registry cache.
    pub no_cache: bool,
    /// `pull`: always pull newer base images.
    pub pull: bool,
    /// `registries`: AWS account ids whose ECR registries the build logs in to (base images).
    pub base_registries: Vec<String>,
}

/// The rollout part every path shares: whether and how long to follow the deployment, how
/// often at most to look, whether to take it back, and which container gets the image.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSettings {
    pub wait_for_service_stability: bool,
    /// `wait-for-minutes`, capped; [`RolloutSettings::deploy_wait`] is its one `Duration`.
    pub wait_for_minutes: u64,
    /// `wait-max-delay-seconds`: the longest pause between two looks while waiting.
    pub wait_max_delay: Option<std::time::Duration>,
    pub rollback_on_failure: bool,
    pub force_new_deployment: bool,
    /// `container-name`: the container (ECS) or pod container (Kubernetes) that gets the image.
    pub container_name: Option<String>,
}

/// The ECS part: the cluster and service, the task definition and what is changed in it, and
/// what happens to task definitions after the deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct EcsSettings {
    pub cluster: String,
    pub service: Option<String>,
    pub task_definition: Option<PathBuf>,
    /// `task-definition-arn`, or `task-definition-family` (with `task-definition-revision`): a
    /// registered task definition to start from, as DescribeTaskDefinition takes it.
    pub task_definition_ref: Option<String>,
    /// `keep-null-value-keys`: which null and empty values of the task definition file survive.
    pub keep_null_value_keys: KeepNullValues,
    /// `environment-variables`, `docker-labels`, `command`, `log-configuration-*`, `secrets`,
    /// `env-files`, `task-role-arn`, `execution-role-arn`.
    pub container_edits: ContainerEdits,
    /// `desired-count`, `enable-ecs-managed-tags`, `propagate-tags`: sent with the UpdateService.
    pub service_update: ServiceUpdate,
    /// Stopped tasks of the new revision sharing one cause that fail the rolling wait at once
    /// (`fail-fast-after-stopped-tasks`; 0: never).
    pub fail_fast_after_stopped_tasks: usize,
    pub deregister_failed_task_definition: bool,
    /// `keep-task-definitions`: after a successful deploy, the family's ACTIVE revisions beyond
    /// the newest N that nothing uses are deregistered; `None`: none are.
    pub keep_task_definitions: Option<usize>,
    pub run_task_command: Option<Vec<String>>,
    /// `run-task: true` and the `run-task-*` inputs: the deploy action's task outside the service.
    pub run_task: Option<RunTask>,
}

/// The CodeDeploy part (`codedeploy-*` inputs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeDeploySettings {
    pub application: Option<String>,
    pub deployment_group: Option<String>,
    pub appspec: Option<PathBuf>,
    pub deployment_config: Option<String>,
    pub deployment_description: Option<String>,
}

/// The verification gate's inputs, checked: what to probe, how often, how many failures pass,
/// which alarms to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySettings {
    /// `verify-url`, parsed and without userinfo (a credential is never sent).
    pub url: Option<String>,
    /// `verify-test-url`: the test listener, probed instead of `url` while an ECS blue/green
    /// deployment is held at POST_TEST_TRAFFIC_SHIFT; parsed like `url`.
    pub test_url: Option<String>,
    pub requests: u32,
    pub max_failures: u32,
    /// `verify-alarms`: CloudWatch alarm names.
    pub alarms: Vec<String>,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            url: None,
            test_url: None,
            requests: 10,
            max_failures: 0,
            alarms: Vec::new(),
        }
    }
}

impl VerifySettings {
    /// True when there is something to verify (a URL or alarms); else the gate is skipped.
    pub fn is_set(&self) -> bool {
        self.url.is_some() || !self.alarms.is_empty()
    }
}

/// The most alarms one DescribeAlarms call names (the API's limit), so the gate reads them in
/// one call.
const MAX_VERIFY_ALARMS: usize = 100;

/// `verify-url`: an absolute http or https URL with a host. Userinfo (`user:pass@`) is dropped,
/// not sent: the gate never sends a credential. The fragment is dropped too (never sent).
pub(crate) fn verify_url(value: &str) -> Result<String> {
    gate_url("verify-url", value)
}

/// An http(s) URL the gate GETs, read from input `name` (`verify-url`, `verify-test-url`): see
/// [`verify_url`].
fn gate_url(name: &str, value: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid_input(name, without_userinfo(value), why);
    let mut url = reqwest::Url::parse(value).map_err(|e| {
        bad(&format!(
            "not a URL ({e}); give an absolute http:// or https:// URL"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the gate GETs http:// or https:// URLs only"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL names no host"));
    }
    // Both setters fail only for URLs that cannot have userinfo (no host), refused above.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    Ok(url.to_string())
}

/// `value` with anything between `://` and `@` hidden, for an error message about a URL that
/// may carry a password.
fn without_userinfo(value: &str) -> String {
    let Some(start) = value.find("://").map(|s| s + 3) else {
        return value.to_string();
    };
    let rest = &value[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{}***{}", &value[..start], &rest[at..]),
        None => value.to_string(),
    }
}

/// Reads and checks the `verify-*` inputs: a bad URL, a count out of range, more allowed
/// failures than requests, or a probe count without a URL is refused before anything runs.
fn verify_settings(raw: &RawInputs) -> Result<VerifySettings> {
    let count = |name: &str, default: &str, range: std::ops::RangeInclusive<u32>| {
        let v = raw.get_or_default(name).unwrap_or(default);
        v.parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                Error::invalid_input(
                    name,
                    v,
                    format!(
                        "must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    };
    let url = raw.get("verify-url").map(verify_url).transpose()?;
    let test_url = raw
        .get("verify-test-url")
        .map(|v| gate_url("verify-test-url", v))
        .transpose()?;
    let requests = count("verify-requests", "10", 1..=100)?;
    let max_failures = count("verify-max-failures", "0", 0..=100)?;
    if max_failures > requests {
        return Err(Error::InputConflict {
            message: format!(
                "verify-max-failures ({max_failures}) is more than verify-requests ({requests}), so the verification could never fail; allow fewer failures or make more requests"
            ),
        });
    }
    for (name, what) in [
        ("verify-requests", "counts the GETs of verify-url"),
        ("verify-max-failures", "counts the GETs of verify-url"),
        (
            "verify-test-url",
            "stands in for verify-url at the test-traffic stage only (the other stages probe verify-url)",
        ),
    ] {
        if url.is_none() && raw.get(name).is_some() {
            return Err(Error::InputConflict {
                message: format!(
                    "{name} {what}, which is not set; set verify-url or leave {name} out"
                ),
            });
        }
    }
    let alarms = raw
        .get("verify-alarms")
        .map(raw::parse_list)
        .unwrap_or_default();
    if alarms.len() > MAX_VERIFY_ALARMS {
        return Err(Error::invalid_input(
            "verify-alarms",
            format!("{} names", alarms.len()),
            format!(
                "name at most {MAX_VERIFY_ALARMS} alarms (DescribeAlarms' limit); a composite alarm can stand for more"
            ),
        ));
    }
    if let Some(bad) = alarms
        .iter()
        .find(|a| a.chars().count() > 255 || a.chars().any(char::is_control))
    {
        return Err(Error::invalid_input(
            "verify-alarms",
            bad,
            "a CloudWatch alarm name has 1 to 255 printable characters",
        ));
    }
    Ok(VerifySettings {
        url,
        test_url,
        requests,
        max_failures,
        alarms,
    })
}

/// What the deploy's UpdateService sets besides the task definition (amazon-ecs-deploy-task-
/// definition's service inputs); `None`: left as the service has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceUpdate {
    pub desired_count: Option<i32>,
    pub enable_ecs_managed_tags: Option<bool>,
    /// `SERVICE`, `TASK_DEFINITION` or `NONE`.
    pub propagate_tags: Option<String>,
}

impl ServiceUpdate {
    /// True when nothing but the task definition is sent.
    pub(crate) fn is_empty(&self) -> bool {
        *self == ServiceUpdate::default()
    }

    /// The inputs that are set, with their values, for messages (`desired-count: 3`).
    pub(crate) fn names(&self) -> Vec<String> {
        [
            ("desired-count", self.desired_count.map(|n| n.to_string())),
            (
                "enable-ecs-managed-tags",
                self.enable_ecs_managed_tags.map(|b| b.to_string()),
            ),
            ("propagate-tags", self.propagate_tags.clone()),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n}: {v}")))
        .collect()
    }
}

/// amazon-ecs-deploy-task-definition's task outside the service (`run-task: true`): run once
/// with the new task definition before the service is updated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTask {
    /// `run-task-container-overrides`: (container, command, environment, cpu, memory,
    /// memoryReservation) of each override.
    pub container_overrides: Vec<aws_sdk_ecs::types::ContainerOverride>,
    pub security_groups: Vec<String>,
    pub subnets: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Vec<aws_sdk_ecs::types::CapacityProviderStrategyItem>,
    pub started_by: String,
    pub tags: Vec<(String, String)>,
    /// `wait-for-task-stopped`.
    pub wait: bool,
    /// `run-task-managed-ebs-volume-name` with `run-task-managed-ebs-volume`: the EBS volume of
    /// the task definition's `configuredAtLaunch` volume.
    pub volume: Option<aws_sdk_ecs::types::TaskVolumeConfiguration>,
}

/// Which Kubernetes cluster, and how the action reaches it.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterSource {
    /// An EKS cluster by name: endpoint and CA from DescribeCluster, an IAM bearer token.
    Eks(String),
    /// A kubeconfig file (its current context).
    Kubeconfig(PathBuf),
}

/// The Kubernetes side of an app's settings. The plan resolves the paths against the workspace
/// and adds what the manifest commit needs from the run (repository, branch, API, token).
#[derive(Debug, Clone, PartialEq)]
pub struct KubeSettings {
    pub source: ClusterSource,
    pub namespace: String,
    /// The Deployment; `None` means the app name.
    pub deployment: Option<String>,
    /// The manifest file to update and commit (as given; the plan makes it absolute).
    pub manifest: Option<PathBuf>,
    /// The manifest's path inside the repository (set by the plan), for the contents API.
    pub manifest_repo_path: Option<String>,
    /// Where the manifest commit goes (set by the plan from the run's context).
    pub git: Option<GitTarget>,
    /// The Kubernetes API at this URL instead of the cluster's endpoint (set by the plan from
    /// `ECS_DEPLOY_KUBERNETES_API_URL`: tests, proxies).
    pub api_url: Option<String>,
    /// The workflow run, named in the change cause (set by the plan).
    pub run_url: Option<String>,
}

/// The repository and branch a manifest commit goes to, and how to reach the GitHub API.
#[derive(Debug, Clone, PartialEq)]
pub struct GitTarget {
    /// owner/name.
    pub repository: Option<String>,
    pub branch: String,
    /// REST API base, e.g. `https://api.github.com`.
    pub api_url: String,
    pub token: Option<Secret>,
}

/// ECS-only inputs: given together with a Kubernetes target, they are refused.
const ECS_ONLY_INPUTS: &[&str] = &[
    "service",
    "keep-task-definitions",
    "task-definition",
    "task-definition-arn",
    "task-definition-family",
    "task-definition-revision",
    "keep-null-value-keys",
    "env-files",
    "task-role-arn",
    "execution-role-arn",
    "desired-count",
    "enable-ecs-managed-tags",
    "propagate-tags",
    "run-task-command",
    "run-task",
    "docker-labels",
    "command",
    "log-configuration-log-driver",
    "log-configuration-options",
    "secrets",
    "codedeploy-application",
    "codedeploy-deployment-group",
    "codedeploy-appspec",
    "codedeploy-deployment-config",
    "codedeploy-deployment-description",
];

/// Reads the Kubernetes inputs: `None` without `eks-cluster`/`kubeconfig`; refused together
/// with ECS-only inputs, or with a `deployment` other than `auto`/`kubernetes`, so nothing is
/// written to either before the mix-up is fixed.
fn kube_settings(raw: &RawInputs, deployment: DeploymentChoice) -> Result<Option<KubeSettings>> {
    let eks = plain_name(raw, "eks-cluster")?;
    let kubeconfig = opt_path(raw, "kubeconfig");
    let source = match (eks, kubeconfig) {
        (Some(_), Some(_)) => {
            return Err(Error::InputConflict {
                message:
                    "eks-cluster and kubeconfig both name a Kubernetes cluster: give one of them"
                        .into(),
            });
        }
        (Some(name), None) => ClusterSource::Eks(name),
        (None, Some(path)) => ClusterSource::Kubeconfig(path),
        (None, None) => {
            let stray = [
                "kubernetes-namespace",
                "kubernetes-deployment",
                "kubernetes-manifest",
            ]
            .into_iter()
            .find(|n| raw.get(n).is_some());
            if let Some(name) = stray {
                return Err(Error::MissingInput {
                    name: "eks-cluster".into(),
                    why: format!(
                        "(or `kubeconfig`) with `{name}`, to say which Kubernetes cluster to deploy to"
                    ),
                });
            }
            if deployment == DeploymentChoice::Kubernetes {
                return Err(Error::MissingInput {
                    name: "eks-cluster".into(),
                    why: "(or `kubeconfig`) with `deployment: kubernetes`".into(),
                });
            }
            return Ok(None);
        }
    };
    let ecs: Vec<&str> = ECS_ONLY_INPUTS
        .iter()
        .copied()
        .filter(|n| raw.get(n).is_some())
        .collect();
    if !ecs.is_empty() {
        return Err(Error::InputConflict {
            message: format!(
                "{} deploy(s) to a Kubernetes Deployment, but {} are ECS inputs: one app deploys to one target; drop the ECS inputs, or deploy the ECS service in another step (or app)",
                match &source {
                    ClusterSource::Eks(_) => "eks-cluster",
                    ClusterSource::Kubeconfig(_) => "kubeconfig",
                },
                ecs.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    if !matches!(
        deployment,
        DeploymentChoice::Auto | DeploymentChoice::Kubernetes
    ) {
        return Err(Error::InputConflict {
            message: format!(
                "`deployment: {}` is an ECS path, but eks-cluster/kubeconfig deploy to Kubernetes; set `deployment: kubernetes` or `auto`",
                deployment.as_str()
            ),
        });
    }
    let namespace = plain_name(raw, "kubernetes-namespace")?
        .unwrap_or_else(|| raw.value("kubernetes-namespace").to_string());
    let deployment_name = plain_name(raw, "kubernetes-deployment")?;
    for (name, value) in [
        ("kubernetes-namespace", Some(&namespace)),
        ("kubernetes-deployment", deployment_name.as_ref()),
    ] {
        if let Some(v) = value
            && !is_dns_label(v)
        {
            return Err(Error::invalid_input(
                name,
                v,
                "a Kubernetes name is lowercase letters, digits and -, starting and ending with a letter or digit (at most 253)",
            ));
        }
    }
    Ok(Some(KubeSettings {
        source,
        namespace,
        deployment: deployment_name,
        manifest: opt_path(raw, "kubernetes-manifest"),
        manifest_repo_path: None,
        git: None,
        api_url: None,
        run_url: None,
    }))
}

/// A Kubernetes object name (RFC 1123 subdomain: lowercase alphanumerics, `-` and `.`).
fn is_dns_label(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Reporting settings (Slack, Discord, GitHub Deployments).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportSettings {
    pub slack_webhook_url: Option<Secret>,
    pub slack_bot_token: Option<Secret>,
    pub slack_channel: Option<String>,
    pub slack_payload: Option<String>,
    pub discord_webhook_url: Option<Secret>,
    pub github_token: Option<Secret>,
    pub environment: Option<String>,
    /// GitHub REST API base (`GITHUB_API_URL`); `None` means `https://api.github.com`.
    pub github_api_url: Option<String>,
    /// Slack Web API base (`ECS_DEPLOY_SLACK_API_URL`); `None` means `https://slack.com/api`.
    pub slack_api_url: Option<String>,
}

/// Everything the run needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub trigger: TriggerSettings,
    pub report: ReportSettings,
    pub dry_run: bool,
    /// `plan-only`: stop after the plan, no AWS call; the `matrix` output is the point.
    pub plan_only: bool,
    /// `changed-only`: keep the apps whose files changed in the push or pull request.
    pub changed_only: bool,
    pub config: Option<PathBuf>,
    pub github: GithubContext,
    /// The step's own per-app inputs (layered over the config file's values when there is one).
    pub app_inputs: RawInputs,
    /// The step's per-app inputs, validated (used as is when there is no config file).
    pub app: AppSettings,
    /// Every secret value given, to mask.
    pub secrets: Vec<Secret>,
    /// `ECS_DEPLOY_KUBERNETES_API_URL`: the Kubernetes API to talk to instead of the EKS
    /// cluster's endpoint (tests, proxies); the plan gives it to each Kubernetes app.
    pub kubernetes_api_url: Option<String>,
    /// `max-retries`: attempts per AWS call, when the step sets them (else the action's policy).
    pub max_attempts: Option<u32>,
}

fn opt(raw: &RawInputs, name: &str) -> Option<String> {
    raw.get(name).map(str::to_string)
}

fn opt_path(raw: &RawInputs, name: &str) -> Option<PathBuf> {
    raw.get(name).map(PathBuf::from)
}

fn flag(raw: &RawInputs, name: &str) -> Result<bool> {
    // Not given and no default in the table: the switch is off.
    raw.get_or_default(name)
        .map_or(Ok(false), |v| parse_bool(name, v))
}

/// A boolean input that may be left unset (`None`: the setting stays as it is).
fn opt_flag(raw: &RawInputs, name: &str) -> Result<Option<bool>> {
    raw.get(name).map(|v| parse_bool(name, v)).transpose()
}

/// Checks a name that ends up in an AWS resource or image reference: printable, no spaces.
fn plain_name(raw: &RawInputs, name: &str) -> Result<Option<String>> {
    match raw.get(name) {
        None => Ok(None),
        Some(v) => {
            if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(Error::invalid_input(
                    name,
                    v,
                    "must be one word without spaces or control characters",
                ))
            } else {
                Ok(Some(v.to_string()))
            }
        }
    }
}

/// `image`: a reference that names its registry (a host with a dot or a port, or `localhost`,
/// before the first `/`). Docker would read `web1` as `docker.io/library/web1`, which a deploy
/// step almost never means: the task would run someone else's image, or none.
fn image_reference(raw: &RawInputs) -> Result<Option<String>> {
    let Some(image) = plain_name(raw, "image")? else {
        return Ok(None);
    };
    let host = image.split_once('/').map(|(host, _)| host);
    if host.is_some_and(|h| h.contains(['.', ':']) || h == "localhost") {
        return Ok(Some(image));
    }
    Err(Error::invalid_input(
        "image",
        image,
        "does not name a registry; write the whole reference, registry host first, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3, ghcr.io/acme/web1:v1.2.3 or docker.io/library/nginx:1.27",
    ))
}

/// `KEY=VALUE` lines of input `name`, or none.
fn pairs(raw: &RawInputs, name: &str) -> Result<Vec<(String, String)>> {
    match raw.get(name) {
        Some(v) => parse_pairs(name, v),
        None => Ok(Vec::new()),
    }
}

/// Reads the render action's container inputs, each in its documented format.
fn container_edits(raw: &RawInputs) -> Result<ContainerEdits> {
    let secrets = pairs(raw, "secrets")?;
    if let Some((k, _)) = secrets.iter().find(|(_, v)| v.trim().is_empty()) {
        return Err(Error::invalid_input(
            "secrets",
            k,
            "every line is NAME=valueFrom, with the ARN of a Secrets Manager secret or SSM parameter",
        ));
    }
    let log_driver = plain_name(raw, "log-configuration-log-driver")?;
    let env_files: Vec<String> = raw
        .get("env-files")
        .map(|v| {
            v.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = env_files
        .iter()
        .find(|f| !f.starts_with("arn:") || !f.contains(":s3:::"))
    {
        return Err(Error::invalid_input(
            "env-files",
            bad,
            "every line is the ARN of an S3 object, e.g. arn:aws:s3:::my-bucket/web1.env",
        ));
    }
    let role = |name: &str| -> Result<Option<String>> {
        let v = plain_name(raw, name)?;
        if let Some(r) = &v
            && !(r.starts_with("arn:") && r.contains(":iam::") && r.contains(":role/"))
        {
            return Err(Error::invalid_input(
                name,
                r,
                "must be an IAM role ARN: arn:aws:iam::<account>:role/<name>",
            ));
        }
        Ok(v)
    };
    Ok(ContainerEdits {
        env_files,
        task_role_arn: role("task-role-arn")?,
        execution_role_arn: role("execution-role-arn")?,
        environment: pairs(raw, "environment-variables")?,
        docker_labels: pairs(raw, "docker-labels")?,
        command: match raw.get("command") {
            Some(v) => Some(parse_command_of("command", v)?),
            None => None,
        },
        log_driver,
        log_options: pairs(raw, "log-configuration-options")?,
        secrets,
    })
}

/// `task-definition-arn`, or `task-definition-family` with `task-definition-revision`: the
/// registered task definition to start from, as DescribeTaskDefinition takes it (an ARN,
/// `family` or `family:revision`). Refused together with a `task-definition` file, or each
/// other, as amazon-ecs-render-task-definition takes one source.
fn task_definition_ref(raw: &RawInputs) -> Result<Option<String>> {
    let arn = plain_name(raw, "task-definition-arn")?;
    let family = plain_name(raw, "task-definition-family")?;
    let revision = plain_name(raw, "task-definition-revision")?;
    if let Some(a) = &arn
        && !(a.starts_with("arn:") && a.contains(":task-definition/"))
    {
        return Err(Error::invalid_input(
            "task-definition-arn",
            a,
            "must be a task definition ARN: arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>",
        ));
    }
    if let Some(f) = &family
        && (f.contains(':') || f.contains('/'))
    {
        return Err(Error::invalid_input(
            "task-definition-family",
            f,
            "must be a family name alone; give its revision in task-definition-revision",
        ));
    }
    if let Some(r) = &revision
        && !r.parse::<u32>().is_ok_and(|n| n > 0)
    {
        return Err(Error::invalid_input(
            "task-definition-revision",
            r,
            "must be a revision number (1, 2, ...)",
        ));
    }
    let conflict = |message: &str| {
        Err(Error::InputConflict {
            message: message.into(),
        })
    };
    match (&arn, &family, &revision) {
        (Some(_), Some(_), _) => {
            return conflict(
                "`task-definition-arn` and `task-definition-family` both name a task definition to start from; give one of them",
            );
        }
        (Some(_), None, Some(_)) | (None, None, Some(_)) => {
            return conflict(
                "`task-definition-revision` is a revision of `task-definition-family`; give the family too (an ARN names its revision itself)",
            );
        }
        _ => {}
    }
    if (arn.is_some() || family.is_some()) && raw.get("task-definition").is_some() {
        return conflict(
            "`task-definition` is a file and `task-definition-arn`/`task-definition-family` a registered task definition: give one source to start from",
        );
    }
    Ok(arn.or(family.map(|f| match revision {
        Some(r) => format!("{f}:{r}"),
        None => f,
    })))
}

/// `keep-task-definitions`: a whole number of revisions, at least 1 (the one just deployed).
fn keep_task_definitions(raw: &RawInputs) -> Result<Option<usize>> {
    let Some(v) = raw.get("keep-task-definitions") else {
        return Ok(None);
    };
    v.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .map(Some)
        .ok_or_else(|| {
            Error::invalid_input(
                "keep-task-definitions",
                v,
                "must be a whole number of revisions, 1 or more (the newest N of the family stay ACTIVE); leave it out to deregister none",
            )
        })
}

/// The UpdateService settings of amazon-ecs-deploy-task-definition: `desired-count`,
/// `enable-ecs-managed-tags`, `propagate-tags`.
fn service_update(raw: &RawInputs) -> Result<ServiceUpdate> {
    let desired_count = match raw.get("desired-count") {
        Some(v) => Some(
            v.trim()
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    Error::invalid_input(
                        "desired-count",
                        v,
                        "must be a whole number of tasks, 0 or more",
                    )
                })?,
        ),
        None => None,
    };
    let enable_ecs_managed_tags = opt_flag(raw, "enable-ecs-managed-tags")?;
    let propagate_tags = upper_choice(
        raw,
        "propagate-tags",
        &["SERVICE", "TASK_DEFINITION", "NONE"],
    )?;
    Ok(ServiceUpdate {
        desired_count,
        enable_ecs_managed_tags,
        propagate_tags,
    })
}

/// Input `name` as one of the upper-case `values` AWS takes, given in any case; or none.
fn upper_choice(raw: &RawInputs, name: &str, values: &[&'static str]) -> Result<Option<String>> {
    let Some(v) = raw.get(name) else {
        return Ok(None);
    };
    let choices: Vec<(&str, &str)> = values.iter().map(|v| (*v, *v)).collect();
    Ok(Some(
        parse_choice(name, &v.trim().to_ascii_uppercase(), &choices)?.to_string(),
    ))
}

/// The JSON array of input `name`, or none.
fn json_array(raw: &RawInputs, name: &str, shape: &str) -> Result<Vec<serde_json::Value>> {
    let Some(v) = raw.get(name) else {
        return Ok(Vec::new());
    };
    match serde_json::from_str::<serde_json::Value>(v) {
        Ok(serde_json::Value::Array(items)) if items.iter().all(serde_json::Value::is_object) => {
            Ok(items)
        }
        _ => Err(Error::invalid_input(
            name,
            v,
            format!("must be a JSON array of {shape} objects"),
        )),
    }
}

/// `run-task-managed-ebs-volume-name` and `run-task-managed-ebs-volume`: the RunTask volume
/// configuration, with the keys amazon-ecs-deploy-task-definition passes on (roleArn required;
/// another key is refused, naming it). One without the other is refused: the deploy action
/// only warns and starts the task without its volume.
fn managed_ebs_volume(
    raw: &RawInputs,
) -> Result<Option<aws_sdk_ecs::types::TaskVolumeConfiguration>> {
    use aws_sdk_ecs::types::{
        TaskFilesystemType, TaskManagedEbsVolumeConfiguration, TaskVolumeConfiguration,
    };
    use serde_json::Value;
    const NAME: &str = "run-task-managed-ebs-volume";
    let (volume_name, text) = match (raw.get("run-task-managed-ebs-volume-name"), raw.get(NAME)) {
        (None, None) => return Ok(None),
        (Some(n), Some(t)) => (n, t),
        _ => {
            return Err(Error::InputConflict {
                message: "`run-task-managed-ebs-volume-name` (the task definition's configuredAtLaunch volume) and `run-task-managed-ebs-volume` (its EBS settings) go together: give both, or neither".into(),
            });
        }
    };
    let bad = |why: String| Error::invalid_input(NAME, text, why);
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) else {
        return Err(bad("must be a JSON object, e.g. {\"roleArn\": \"arn:aws:iam::123456789012:role/ecsInfrastructureRole\", \"sizeInGiB\": 20}".into()));
    };
    let text_of = |k: &str| -> Result<Option<String>> {
        match o.get(k) {
            None => Ok(None),
            Some(Value::String(v)) => Ok(Some(v.clone())),
            Some(other) => Err(bad(format!("`{k}` must be a string, not {other}"))),
        }
    };
    let number = |k: &str| -> Result<Option<i32>> {
        match o.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| bad(format!("`{k}` must be a whole number, not {v}"))),
        }
    };
    const KEYS: &[&str] = &[
        "roleArn",
        "encrypted",
        "filesystemType",
        "iops",
        "kmsKeyId",
        "sizeInGiB",
        "snapshotId",
        "throughput",
        "volumeType",
    ];
    if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown key `{k}`: the keys are {}",
            KEYS.join(", ")
        )));
    }
    let Some(role_arn) = text_of("roleArn")? else {
        return Err(bad(
            "`roleArn` is required: the IAM role ECS uses to create the volume".into(),
        ));
    };
    let encrypted = match o.get("encrypted") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(bad(format!(
                "`encrypted` must be true or false, not {other}"
            )));
        }
    };
    let filesystem_type = match text_of("filesystemType")? {
        None => None,
        Some(t) => Some(TaskFilesystemType::from(parse_choice(
            NAME,
            &t,
            &[
                ("ext3", "ext3"),
                ("ext4", "ext4"),
                ("xfs", "xfs"),
                ("ntfs", "ntfs"),
            ],
        )?)),
    };
    let managed = TaskManagedEbsVolumeConfiguration::builder()
        .role_arn(role_arn)
        .set_encrypted(encrypted)
        .set_filesystem_type(filesystem_type)
        .set_iops(number("iops")?)
        .set_kms_key_id(text_of("kmsKeyId")?)
        .set_size_in_gib(number("sizeInGiB")?)
        .set_snapshot_id(text_of("snapshotId")?)
        .set_throughput(number("throughput")?)
        .set_volume_type(text_of("volumeType")?)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    Ok(Some(
        TaskVolumeConfiguration::builder()
            .name(volume_name)
            .managed_ebs_volume(managed)
            .build()
            .map_err(|e| bad(e.to_string()))?,
    ))
}

/// One override of `run-task-container-overrides`, in the keys the deploy action passes to
/// RunTask that a one-off task needs; another key is refused, naming it.
fn container_override(v: &serde_json::Value) -> Result<aws_sdk_ecs::types::ContainerOverride> {
    use serde_json::Value;
    let name = "run-task-container-overrides";
    let bad = |what: String| Error::invalid_input(name, v.to_string(), what);
    let obj = v
        .as_object()
        .ok_or_else(|| bad("an override is not an object".into()))?;
    let mut o = aws_sdk_ecs::types::ContainerOverride::builder();
    for (k, val) in obj {
        let int = || {
            val.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| bad(format!("`{k}` must be a number")))
        };
        o = match k.as_str() {
            "name" => o.name(
                val.as_str()
                    .ok_or_else(|| bad("`name` must be a string".into()))?,
            ),
            "command" => o.set_command(Some(
                val.as_array()
                    .and_then(|a| a.iter().map(|w| w.as_str().map(str::to_string)).collect())
                    .ok_or_else(|| bad("`command` must be an array of strings".into()))?,
            )),
            "environment" => {
                let list = val
                    .as_array()
                    .ok_or_else(|| bad("`environment` must be an array of {name, value}".into()))?;
                let mut pairs = Vec::new();
                for e in list {
                    let (Some(n), Some(v)) = (
                        e.get("name").and_then(Value::as_str),
                        e.get("value").and_then(Value::as_str),
                    ) else {
                        return Err(bad("`environment` must be an array of {name, value}".into()));
                    };
                    pairs.push(
                        aws_sdk_ecs::types::KeyValuePair::builder()
                            .name(n)
                            .value(v)
                            .build(),
                    );
                }
                o.set_environment(Some(pairs))
            }
            "cpu" => o.cpu(int()?),
            "memory" => o.memory(int()?),
            "memoryReservation" => o.memory_reservation(int()?),
            other => {
                return Err(bad(format!(
                    "`{other}` is not taken here: the keys are name, command, environment, cpu, memory, memoryReservation"
                )));
            }
        };
    }
    if !obj.contains_key("name") {
        return Err(bad("every override names its container (`name`)".into()));
    }
    Ok(o.build())
}

/// `run-task: true` with its `run-task-*` inputs and `wait-for-task-stopped`, as
/// amazon-ecs-deploy-task-definition reads them; the `run-task-*` inputs without `run-task:
/// true`, or `run-task` with `run-task-command`, are refused.
fn run_task(raw: &RawInputs) -> Result<Option<RunTask>> {
    const OPTIONS: &[&str] = &[
        "run-task-container-overrides",
        "run-task-security-groups",
        "run-task-subnets",
        "run-task-assign-public-IP",
        "run-task-launch-type",
        "run-task-capacity-provider-strategy",
        "run-task-started-by",
        "run-task-tags",
        "wait-for-task-stopped",
        "run-task-managed-ebs-volume-name",
        "run-task-managed-ebs-volume",
    ];
    if !flag(raw, "run-task")? {
        if let Some(name) = OPTIONS.iter().find(|n| raw.get(n).is_some()) {
            return Err(Error::InputConflict {
                message: format!(
                    "`{name}` is a setting of the task `run-task: true` runs; add `run-task: true`, or remove it"
                ),
            });
        }
        return Ok(None);
    }
    if raw.get("run-task-command").is_some() {
        return Err(Error::InputConflict {
            message: "`run-task` runs the task definition as it is (with `run-task-container-overrides`) and `run-task-command` runs it with a command: give one of them".into(),
        });
    }
    let list = |name: &str| raw.get(name).map(raw::parse_list).unwrap_or_default();
    let container_overrides =
        json_array(raw, "run-task-container-overrides", "{name, command, ...}")?
            .iter()
            .map(container_override)
            .collect::<Result<Vec<_>>>()?;
    let assign_public_ip =
        upper_choice(raw, "run-task-assign-public-IP", &["ENABLED", "DISABLED"])?;
    let launch_type = upper_choice(
        raw,
        "run-task-launch-type",
        &["FARGATE", "EC2", "EXTERNAL", "MANAGED_INSTANCES"],
    )?;
    let mut capacity_provider_strategy = Vec::new();
    for item in json_array(
        raw,
        "run-task-capacity-provider-strategy",
        "{capacityProvider, weight, base}",
    )? {
        let provider = item
            .get("capacityProvider")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                Error::invalid_input(
                    "run-task-capacity-provider-strategy",
                    item.to_string(),
                    "every item names its capacityProvider",
                )
            })?;
        let num = |k: &str| {
            item.get(k)
                .and_then(serde_json::Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
        };
        capacity_provider_strategy.push(
            aws_sdk_ecs::types::CapacityProviderStrategyItem::builder()
                .capacity_provider(provider)
                .set_weight(num("weight"))
                .set_base(num("base"))
                .build()
                .map_err(|e| {
                    Error::invalid_input(
                        "run-task-capacity-provider-strategy",
                        item.to_string(),
                        e.to_string(),
                    )
                })?,
        );
    }
    if launch_type.is_some() && !capacity_provider_strategy.is_empty() {
        return Err(Error::InputConflict {
            message: "a task runs with a launch type or a capacity provider strategy, not both: give one of `run-task-launch-type` and `run-task-capacity-provider-strategy`".into(),
        });
    }
    let mut tags = Vec::new();
    for t in json_array(raw, "run-task-tags", "{key, value}")? {
        match (
            t.get("key").and_then(serde_json::Value::as_str),
            t.get("value").and_then(serde_json::Value::as_str),
        ) {
            (Some(k), Some(v)) => tags.push((k.to_string(), v.to_string())),
            _ => {
                return Err(Error::invalid_input(
                    "run-task-tags",
                    t.to_string(),
                    "every tag is {\"key\": ..., \"value\": ...}",
                ));
            }
        }
    }
    Ok(Some(RunTask {
        container_overrides,
        security_groups: list("run-task-security-groups"),
        subnets: list("run-task-subnets"),
        assign_public_ip,
        launch_type,
        capacity_provider_strategy,
        started_by: raw.value("run-task-started-by").to_string(),
        tags,
        wait: flag(raw, "wait-for-task-stopped")?,
        volume: managed_ebs_volume(raw)?,
    }))
}

/// `wait-max-delay-seconds`: 1 to 300 seconds (as amazon-ecs-deploy-task-definition caps its
/// waiter's delay; its SDK's own default is 120).
fn wait_max_delay(raw: &RawInputs) -> Result<Option<std::time::Duration>> {
    raw.get("wait-max-delay-seconds")
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|n| (1..=300).contains(n))
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| {
                    Error::invalid_input(
                        "wait-max-delay-seconds",
                        v,
                        "must be a whole number of seconds from 1 to 300",
                    )
                })
        })
        .transpose()
}

/// The longest `wait-for-minutes` waited: a larger value is capped to it, with a notice.
pub const MAX_WAIT_MINUTES: u64 = 720;

/// `keep-null-value-keys`: which empty values of the task definition file are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepNullValues {
    /// `true` (this action's extension): the file is registered as written.
    All,
    /// The keys whose empty values survive, as amazon-ecs-deploy-task-definition takes them
    /// (none: `false`, or not given).
    Keys(Vec<String>),
}

/// Reads `keep-null-value-keys`: `true`, `false`, the deploy action's comma-separated keys, or
/// a JSON array of keys (as that action's own tests write it).
fn keep_null_values(raw: &RawInputs) -> Result<KeepNullValues> {
    const NAME: &str = "keep-null-value-keys";
    let value = raw.value(NAME);
    match value {
        "true" | "True" | "TRUE" => return Ok(KeepNullValues::All),
        "" | "false" | "False" | "FALSE" => return Ok(KeepNullValues::Keys(Vec::new())),
        _ => {}
    }
    let keys: Vec<String> = if value.starts_with('[') {
        serde_json::from_str(value).map_err(|e| {
            Error::invalid_input(
                NAME,
                value,
                format!("not a JSON array of key names ({e}); or give a comma list, e.g. environment,options"),
            )
        })?
    } else {
        raw::parse_list(value)
    };
    match keys.iter().find(|k| {
        k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/'))
    }) {
        Some(bad) => Err(Error::invalid_input(
            NAME,
            bad,
            "a key of the task definition (e.g. environment, value, options); give a comma list, or true to keep every empty value",
        )),
        None => Ok(KeepNullValues::Keys(keys)),
    }
}

/// `max-retries`: attempts per AWS call, 1 to 20 (the deploy action gives it to its SDK as
/// max attempts; past 20 a throttled run only takes longer to fail).
fn max_attempts(raw: &RawInputs) -> Result<Option<u32>> {
    raw.get("max-retries")
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=20).contains(n))
                .ok_or_else(|| {
                    Error::invalid_input(
                        "max-retries",
                        v,
                        "must be a whole number of attempts from 1 to 20",
                    )
                })
        })
        .transpose()
}

/// Refuses, before anything is read or written, every aws-actions/docker input this action
/// declares only to say what to use instead (`Kind::Refused`).
fn refuse_unhonoured(raw: &RawInputs) -> Result<()> {
    for spec in INPUTS.iter().filter(|s| s.is_refused()) {
        if let Some(v) = raw.get(spec.name) {
            // A secret (slack-github-action's `token`) is never echoed.
            let shown = if spec.secret { "***" } else { v };
            return Err(Error::invalid_input(
                spec.name,
                shown,
                format!("this action does not take `{}`: {}", spec.name, spec.help),
            ));
        }
    }
    Ok(())
}

/// The image inputs under docker/build-push-action's and amazon-ecr-login's names, read and
/// merged with this action's own (`file` with `dockerfile`, `platforms` with `platform`, the
/// references of `tags` with `registry`/`ecr-repository`).
struct ImageDropIns {
    dockerfile: Option<PathBuf>,
    platform: Option<String>,
    registry: Option<String>,
    ecr_repository: Option<String>,
    tags: Vec<String>,
    labels: Vec<(String, String)>,
    secret_files: Vec<(String, PathBuf)>,
    registries: Vec<String>,
}

/// A boolean input whose only meaning here is `expected` (what this action always does).
fn only(raw: &RawInputs, name: &str, expected: bool, why: &str) -> Result<()> {
    let value = raw.value(name);
    if parse_bool(name, value)? == expected {
        Ok(())
    } else {
        Err(Error::invalid_input(name, value, why))
    }
}

/// The value of `ours` or of the other action's `theirs`; both given and different is refused.
fn either(raw: &RawInputs, ours: &str, theirs: &str) -> Result<Option<String>> {
    one_setting(
        (ours, plain_name(raw, ours)?),
        (theirs, plain_name(raw, theirs)?),
    )
}

/// One setting given under two names: the value given, or a refusal when both disagree.
fn one_setting(
    (ours, a): (&str, Option<String>),
    (theirs, b): (&str, Option<String>),
) -> Result<Option<String>> {
    match (a, b) {
        (Some(a), Some(b)) if a != b => Err(Error::InputConflict {
            message: format!(
                "`{ours}` is {a} and `{theirs}` is {b}; they are one setting under two names: keep one"
            ),
        }),
        (a, b) => Ok(a.or(b)),
    }
}

/// Sets `slot` (the `name` input) from a `tags` reference, or checks that it agrees.
fn agree(slot: &mut Option<String>, name: &str, value: &str, entry: &str) -> Result<()> {
    match slot {
        Some(current) if current != value => Err(Error::InputConflict {
            message: format!(
                "the tags entry {entry} pushes to {value}, but {name} is {current}: one build pushes to one repository; give the bare tag, or push the other copy in another step"
            ),
        }),
        Some(_) => Ok(()),
        None => {
            *slot = Some(value.to_string());
            Ok(())
        }
    }
}

impl ImageDropIns {
    fn from_raw(raw: &RawInputs) -> Result<Self> {
        let dockerfile = either(raw, "dockerfile", "file")?.map(PathBuf::from);
        let platform = match raw.get("platforms") {
            None => plain_name(raw, "platform")?,
            Some(list) => {
                let items = raw::parse_list(list);
                if items.len() > 1 {
                    return Err(Error::invalid_input(
                        "platforms",
                        list,
                        "one platform only: the Docker engine's build makes a single-platform image (a multi-platform image needs buildx); deploy one platform, e.g. linux/amd64, or build with docker/build-push-action and pass `image`",
                    ));
                }
                one_setting(
                    ("platform", plain_name(raw, "platform")?),
                    ("platforms", items.into_iter().next()),
                )?
            }
        };
        let mut registry = plain_name(raw, "registry")?;
        let mut ecr_repository = plain_name(raw, "ecr-repository")?;
        let mut tags = Vec::new();
        if let Some(v) = raw.get("tags") {
            for t in raw::parse_tags(v)? {
                if let Some(host) = &t.host {
                    agree(&mut registry, "registry", host, &t.entry)?;
                }
                if let Some(repo) = &t.repository {
                    agree(&mut ecr_repository, "ecr-repository", repo, &t.entry)?;
                }
                if !tags.contains(&t.tag) {
                    tags.push(t.tag);
                }
            }
        }
        only(
            raw,
            "push",
            true,
            "this action always pushes what it builds (the deploy runs the image from the registry); to build without pushing, use docker/build-push-action",
        )?;
        only(
            raw,
            "load",
            true,
            "the image this action builds always stays in the runner's Docker engine as well",
        )?;
        only(
            raw,
            "mask-password",
            true,
            "registry passwords are always masked and never written to an output (no docker_password_* outputs): nothing to share with another job; log in there with its own amazon-ecr-login step",
        )?;
        // Nothing is stored to log out of; the value is still checked.
        flag(raw, "skip-logout")?;
        match raw.value("registry-type") {
            "private" => {}
            "public" => {
                return Err(Error::invalid_input(
                    "registry-type",
                    "public",
                    "ECR Public is not supported: push to a private ECR repository, or set registry: public.ecr.aws with registry-username and registry-password",
                ));
            }
            other => {
                return Err(Error::invalid_input(
                    "registry-type",
                    other,
                    "accepted values: private (public is refused)",
                ));
            }
        }
        let mut registries = Vec::new();
        for id in raw::parse_list(raw.value("registries")) {
            if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
                return Err(Error::invalid_input(
                    "registries",
                    id,
                    "an AWS account id is 12 digits; give a comma list, e.g. 123456789012,210987654321",
                ));
            }
            if !registries.contains(&id) {
                registries.push(id);
            }
        }
        Ok(ImageDropIns {
            dockerfile,
            platform,
            registry,
            ecr_repository,
            tags,
            labels: pairs(raw, "labels")?,
            secret_files: pairs(raw, "secret-files")?
                .into_iter()
                .map(|(k, p)| (k, PathBuf::from(p.trim())))
                .collect(),
            registries,
        })
    }
}

/// slackapi/slack-github-action's webhook inputs, read into this action's own Slack settings:
/// `webhook` is `slack-webhook-url`; `payload` / `payload-file-path` (JSON or YAML) is
/// `slack-payload`; the meanings this action does not have are refused, saying what to do.
struct SlackDropIns {
    webhook: Option<Secret>,
    payload: Option<String>,
}

impl SlackDropIns {
    fn from_raw(raw: &RawInputs, workspace: &std::path::Path) -> Result<Self> {
        let webhook = match (raw.get("slack-webhook-url"), raw.get("webhook")) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::InputConflict {
                    message: "`slack-webhook-url` and `webhook` (slack-github-action's name) both give the Slack webhook, and differ: keep one".into(),
                });
            }
            (a, b) => a.or(b).map(Secret::new),
        };
        match raw.get("webhook-type") {
            None | Some("incoming-webhook") => {}
            Some("webhook-trigger") => {
                return Err(Error::invalid_input(
                    "webhook-type",
                    "webhook-trigger",
                    "a Workflow Builder trigger takes the workflow's own variables, not a message: create an incoming webhook for the channel and give it with webhook-type: incoming-webhook",
                ));
            }
            Some(other) => {
                return Err(Error::invalid_input(
                    "webhook-type",
                    other,
                    "accepted values: incoming-webhook (webhook-trigger is refused)",
                ));
            }
        }
        only(
            raw,
            "payload-templated",
            false,
            "the payload's {placeholders} ({app}, {version}, {status}, {run_url}, …) are always filled here, and ${{ }} expressions in `payload` are filled by the runner: write {placeholders} instead of ${{ }} in the payload file, and remove payload-templated",
        )?;
        only(
            raw,
            "errors",
            false,
            "a Slack message that cannot be sent is a warning here: the deploy's own outcome decides the step (a failed message never hides a good deploy); remove errors, or check the warning in a later step",
        )?;
        let given = [
            (
                "slack-payload",
                raw.get("slack-payload").map(str::to_string),
            ),
            ("payload", raw.get("payload").map(str::to_string)),
            (
                "payload-file-path",
                match raw.get("payload-file-path") {
                    None => None,
                    Some(p) => Some(std::fs::read_to_string(workspace.join(p)).map_err(|e| {
                        Error::invalid_input(
                            "payload-file-path",
                            p,
                            format!(
                                "cannot be read ({e}); give a JSON or YAML file in the workspace"
                            ),
                        )
                    })?),
                },
            ),
        ];
        let mut named = given
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| (name, v)));
        let payload = match (named.next(), named.next()) {
            (Some((a, _)), Some((b, _))) => {
                return Err(Error::InputConflict {
                    message: format!("`{a}` and `{b}` both give the Slack message: keep one"),
                });
            }
            (Some((name, text)), None) => Some(slack_payload_json(name, &text)?),
            (None, _) => None,
        };
        Ok(SlackDropIns { webhook, payload })
    }
}

/// A Slack payload as slack-github-action takes it (JSON, or YAML), as the JSON template
/// `slack-payload` is.
fn slack_payload_json(name: &str, text: &str) -> Result<String> {
    if serde_json::from_str::<serde_json::Value>(text).is_ok() {
        return Ok(text.to_string());
    }
    match serde_yaml::from_str::<serde_json::Value>(text) {
        Ok(v) if v.is_object() => Ok(v.to_string()),
        _ => Err(Error::invalid_input(
            name,
            text.lines().next().unwrap_or(""),
            "must be a JSON or YAML object, e.g. {\"text\": \"{app} {version}: {status}\"}",
        )),
    }
}

impl RolloutSettings {
    /// The longest pause between two looks of a wait: `wait-max-delay-seconds`, else none
    /// beyond the waits' own (at most 10 s between looks, 30 s when throttled).
    pub(crate) fn poll_cap(&self) -> std::time::Duration {
        self.wait_max_delay.unwrap_or(std::time::Duration::MAX)
    }

    /// How long a deployment may take (`wait-for-minutes`, at least one minute): the one place
    /// the minutes become a [`std::time::Duration`], for every path.
    pub(crate) fn deploy_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.wait_for_minutes.max(1).saturating_mul(60))
    }
}

impl AppSettings {
    /// Validates per-app raw inputs into typed settings.
    pub fn from_raw(raw: &RawInputs) -> Result<Self> {
        refuse_unhonoured(raw)?;
        let image_inputs = ImageDropIns::from_raw(raw)?;
        let version_format = parse_choice(
            "version-format",
            raw.value("version-format"),
            &[
                ("semver", VersionFormat::Semver),
                ("loose", VersionFormat::Loose),
            ],
        )?;
        let cache = parse_choice(
            "cache",
            raw.value("cache"),
            &[("none", CacheMode::None), ("registry", CacheMode::Registry)],
        )?;
        let deployment = parse_choice(
            "deployment",
            raw.value("deployment"),
            &[
                ("auto", DeploymentChoice::Auto),
                ("rolling", DeploymentChoice::Rolling),
                ("codedeploy", DeploymentChoice::CodeDeploy),
                ("ecs-blue-green", DeploymentChoice::EcsBlueGreen),
                ("kubernetes", DeploymentChoice::Kubernetes),
            ],
        )?;
        let kubernetes = kube_settings(raw, deployment)?;
        let mut notices = Vec::new();
        let wait_raw = raw.value("wait-for-minutes");
        let asked: u64 = wait_raw.parse().ok().filter(|m| *m >= 1).ok_or_else(|| {
            Error::invalid_input(
                "wait-for-minutes",
                wait_raw,
                "must be a whole number of minutes, 1 or more (at most 720 are waited)",
            )
        })?;
        // As amazon-ecs-deploy-task-definition caps it (at 360 there): capped, said, not refused.
        let wait_for_minutes = asked.min(MAX_WAIT_MINUTES);
        if asked > MAX_WAIT_MINUTES {
            notices.push(format!(
                "wait-for-minutes {asked} is above the {MAX_WAIT_MINUTES} minutes this action waits at most: waiting {MAX_WAIT_MINUTES}"
            ));
        }
        let fail_fast_raw = raw.value("fail-fast-after-stopped-tasks");
        let fail_fast_after_stopped_tasks: usize = fail_fast_raw
            .parse()
            .ok()
            .filter(|n| *n <= 100)
            .ok_or_else(|| {
                Error::invalid_input(
                    "fail-fast-after-stopped-tasks",
                    fail_fast_raw,
                    "must be a whole number of tasks from 0 (never fail fast) to 100",
                )
            })?;
        let tag_prefix = raw.value("tag-prefix").to_string();
        if !tag_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            || tag_prefix.len() > 32
        {
            return Err(Error::invalid_input(
                "tag-prefix",
                tag_prefix,
                "a Docker tag prefix uses only letters, digits, _, . and - (at most 32)",
            ));
        }
        let build_secrets = match raw.get("build-secrets") {
            Some(v) => parse_pairs("build-secrets", v)?
                .into_iter()
                .map(|(k, v)| (k, Secret::new(v)))
                .collect(),
            None => Vec::new(),
        };
        let run_task_command = match raw.get("run-task-command") {
            None => None,
            Some(v) => Some(parse_command(v)?),
        };
        let platform = image_inputs.platform.clone();
        if let Some(p) = &platform {
            let parts: Vec<&str> = p.split('/').collect();
            if !(2..=3).contains(&parts.len()) || parts.iter().any(|s| s.is_empty()) {
                // Named as given: `platforms` (docker/build-push-action's name) or `platform`.
                let name = if raw.get("platform").is_none() {
                    "platforms"
                } else {
                    "platform"
                };
                return Err(Error::invalid_input(
                    name,
                    p,
                    "use os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64",
                ));
            }
        }
        let registry_username = opt(raw, "registry-username");
        let registry_password = raw.get("registry-password").map(Secret::new);
        if registry_password.is_some() != registry_username.is_some() {
            return Err(Error::InputConflict {
                message: "registry-username and registry-password go together: give both, or neither (ECR needs neither)".into(),
            });
        }
        let settings = AppSettings {
            notices,
            paths: match raw.get("paths") {
                Some(v) => parse_paths(v)?,
                None => Vec::new(),
            },
            deployment,
            image: ImageSettings {
                package_json: opt_path(raw, "package-json"),
                version_format,
                tag_prefix,
                tag_latest: flag(raw, "tag-latest")?,
                prebuilt: image_reference(raw)?,
                registry: image_inputs.registry,
                registry_username,
                registry_password,
                ecr_repository: image_inputs.ecr_repository,
                registry_is_ecr: opt_flag(raw, "registry-is-ecr")?,
                create_repository: parse_choice(
                    "create-repository",
                    raw.value("create-repository"),
                    &[
                        ("false", CreateRepository::No),
                        ("true", CreateRepository::Mutable),
                        ("immutable", CreateRepository::Immutable),
                    ],
                )?,
                dockerfile: image_inputs.dockerfile,
                context: PathBuf::from(raw.value("context")),
                build_args: pairs(raw, "build-args")?,
                build_secrets,
                build_secret_files: image_inputs.secret_files,
                target: plain_name(raw, "target")?,
                platform,
                cache,
                rebuild: flag(raw, "rebuild")?,
                extra_tags: image_inputs.tags,
                labels: image_inputs.labels,
                no_cache: flag(raw, "no-cache")?,
                pull: flag(raw, "pull")?,
                base_registries: image_inputs.registries,
            },
            rollout: RolloutSettings {
                wait_for_service_stability: flag(raw, "wait-for-service-stability")?,
                wait_for_minutes,
                wait_max_delay: wait_max_delay(raw)?,
                rollback_on_failure: flag(raw, "rollback-on-failure")?,
                force_new_deployment: flag(raw, "force-new-deployment")?,
                container_name: plain_name(raw, "container-name")?,
            },
            ecs: EcsSettings {
                cluster: plain_name(raw, "cluster")?
                    .unwrap_or_else(|| raw.value("cluster").to_string()),
                service: plain_name(raw, "service")?,
                task_definition: opt_path(raw, "task-definition"),
                task_definition_ref: task_definition_ref(raw)?,
                keep_null_value_keys: keep_null_values(raw)?,
                container_edits: container_edits(raw)?,
                service_update: service_update(raw)?,
                fail_fast_after_stopped_tasks,
                deregister_failed_task_definition: flag(raw, "deregister-failed-task-definition")?,
                keep_task_definitions: keep_task_definitions(raw)?,
                run_task_command,
                run_task: run_task(raw)?,
            },
            codedeploy: CodeDeploySettings {
                application: plain_name(raw, "codedeploy-application")?,
                deployment_group: plain_name(raw, "codedeploy-deployment-group")?,
                appspec: opt_path(raw, "codedeploy-appspec"),
                deployment_config: plain_name(raw, "codedeploy-deployment-config")?,
                deployment_description: opt(raw, "codedeploy-deployment-description"),
            },
            kubernetes,
            verify: verify_settings(raw)?,
        };
        if settings.image.prebuilt.is_none()
            && let Some((name, _)) = settings
                .ecs
                .container_edits
                .secrets
                .iter()
                .find(|(_, from)| !raw::is_secret_reference(from))
        {
            // The value itself is never shown: it is most likely a token.
            return Err(Error::InputConflict {
                message: format!(
                    "`secrets` line `{name}` is not the ARN of a Secrets Manager secret or SSM parameter (its value is not shown): in a step that builds, docker/build-push-action's `secrets` (BuildKit secrets for the build) is `build-secrets` here: move the line there. A container secret of the task definition is NAME=arn:aws:secretsmanager:… or NAME=arn:aws:ssm:…"
                ),
            });
        }
        if settings.image.prebuilt.is_some() && !settings.image.extra_tags.is_empty() {
            return Err(Error::InputConflict {
                message: "`image` names an image built elsewhere, so `tags` (the tags of this action's build) has nothing to tag; remove one of them".into(),
            });
        }
        if settings.verify.is_set() && !settings.rollout.wait_for_service_stability {
            return Err(Error::InputConflict {
                message: "verify-url / verify-alarms check the new version once the deploy is done, so they need wait-for-service-stability: true; remove one of them".into(),
            });
        }
        if settings.image.prebuilt.is_some() && settings.image.rebuild {
            return Err(Error::InputConflict {
                message: "`image` names an image built elsewhere, so `rebuild: true` has nothing to build; remove one of them".into(),
            });
        }
        Ok(settings)
    }
}

impl Settings {
    /// Validates all inputs and the context into settings; nothing is read from disk here.
    pub fn from_sources(sources: &Sources) -> Result<Self> {
        let raw = &sources.raw;
        let app = match raw.get("app") {
            None => AppSelector::FromTrigger,
            Some("all") => AppSelector::All,
            Some(list) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                for n in &names {
                    validate_app_name(n)?;
                }
                AppSelector::Names(names)
            }
        };
        let prefix = raw.value("release-branch-prefix").to_string();
        let trigger = TriggerSettings {
            app,
            base_branch: raw.value("base-branch").to_string(),
            release_branch_prefix: prefix,
            deploy_on: DeployOn::parse(raw.value("deploy-on"))?,
            version: opt(raw, "version"),
        };
        let workspace_dir = sources
            .context
            .get("workspace")
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        let slack = SlackDropIns::from_raw(raw, &workspace_dir)?;
        let report = ReportSettings {
            slack_webhook_url: slack.webhook,
            slack_bot_token: raw.get("slack-bot-token").map(Secret::new),
            slack_channel: opt(raw, "slack-channel"),
            slack_payload: slack.payload,
            discord_webhook_url: raw.get("discord-webhook-url").map(Secret::new),
            github_token: raw.get("github-token").map(Secret::new),
            environment: opt(raw, "environment"),
            github_api_url: sources.context.get("api-url").cloned(),
            slack_api_url: sources.context.get("slack-api-url").cloned(),
        };
        if report.slack_bot_token.is_some() && report.slack_channel.is_none() {
            return Err(Error::MissingInput {
                name: "slack-channel".into(),
                why: "with slack-bot-token (the channel id to post in, e.g. C0123456789)".into(),
            });
        }
        for (name, url) in [
            ("slack-webhook-url", &report.slack_webhook_url),
            ("discord-webhook-url", &report.discord_webhook_url),
        ] {
            if let Some(u) = url
                && !(u.expose().starts_with("https://") || u.expose().starts_with("http://"))
            {
                // The value is a secret: never echo it.
                return Err(Error::invalid_input(
                    name,
                    "***",
                    "must be an http(s) URL (the webhook URL the service gave you)",
                ));
            }
        }
        let ctx = &sources.context;
        let get = |k: &str| ctx.get(k).cloned();
        let workspace = get("workspace")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let sha = get("sha");
        if let Some(s) = &sha
            && (s.len() < 7 || !s.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(Error::invalid_input(
                "sha (GITHUB_SHA)",
                s,
                "must be a commit sha in hex (at least 7 characters)",
            ));
        }
        let github = GithubContext {
            event_name: get("event-name"),
            event_path: get("event").map(PathBuf::from),
            repository: get("repository"),
            sha,
            git_ref: get("ref"),
            run_id: get("run-id"),
            run_attempt: get("run-attempt"),
            server_url: get("server-url").unwrap_or_else(|| "https://github.com".into()),
            actor: get("actor"),
            workflow: get("workflow"),
            job: get("job"),
            output_file: get("output-file").map(PathBuf::from),
            summary_file: get("summary-file").map(PathBuf::from),
            workspace,
            runner_temp: get("runner-temp").map(PathBuf::from),
        };
        let app_inputs = raw.scoped(Scope::App);
        let dry_run = flag(raw, "dry-run")?;
        let plan_only = flag(raw, "plan-only")?;
        let changed_only = flag(raw, "changed-only")?;
        if plan_only && dry_run {
            return Err(Error::InputConflict {
                message: "plan-only and dry-run both stop before any write: plan-only also makes no AWS call (the matrix job), dry-run reads AWS and prints the diff; keep one".into(),
            });
        }
        if changed_only && report.github_token.is_none() {
            return Err(Error::MissingInput {
                name: "github-token".into(),
                why: "with changed-only: true (the changed files are listed by the GitHub API; pass github-token: ${{ github.token }} with permissions contents: read and pull-requests: read)".into(),
            });
        }
        Ok(Settings {
            trigger,
            report,
            dry_run,
            plan_only,
            changed_only,
            config: opt_path(raw, "config"),
            github,
            app: AppSettings::from_raw(&app_inputs)?,
            app_inputs,
            secrets: raw.secrets().into_iter().map(Secret::new).collect(),
            kubernetes_api_url: sources.context.get("kubernetes-api-url").cloned(),
            max_attempts: max_attempts(raw)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sources(args: &[&str], env: &[(&str, &str)]) -> Result<Sources> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut argv = vec!["ecs-deploy"];
        argv.extend_from_slice(args);
        read_sources(argv, &|k| env.get(k).cloned())
    }

    #[test]
    fn paths_are_normalised_and_must_stay_in_the_repository() {
        assert_eq!(
            parse_paths("./libs/shared/\n libs/ui , libs/shared\n# a comment\n.").unwrap(),
            ["libs/shared", "libs/ui", "."]
        );
        assert!(parse_paths("/etc").is_err());
        assert!(parse_paths("libs/../..").is_err());
    }

    /// Every input of aws-actions/amazon-ecs-render-task-definition (v1 action.yml).
    const RENDER_ACTION_INPUTS: &[&str] = &[
        "task-definition",
        "task-definition-arn",
        "task-definition-family",
        "task-definition-revision",
        "container-name",
        "image",
        "environment-variables",
        "log-configuration-log-driver",
        "log-configuration-options",
        "docker-labels",
        "command",
        "task-role-arn",
        "execution-role-arn",
        "env-files",
        "secrets",
    ];

    /// Every input of aws-actions/amazon-ecs-deploy-task-definition (v2 action.yml).
    const DEPLOY_ACTION_INPUTS: &[&str] = &[
        "task-definition",
        "desired-count",
        "service",
        "cluster",
        "wait-for-service-stability",
        "wait-for-minutes",
        "codedeploy-appspec",
        "codedeploy-application",
        "codedeploy-deployment-group",
        "codedeploy-deployment-description",
        "codedeploy-deployment-config",
        "force-new-deployment",
        "run-task",
        "run-task-container-overrides",
        "run-task-security-groups",
        "run-task-subnets",
        "run-task-launch-type",
        "run-task-started-by",
        "run-task-assign-public-IP",
        "run-task-capacity-provider-strategy",
        "wait-for-task-stopped",
        "enable-ecs-managed-tags",
        "propagate-tags",
        "keep-null-value-keys",
        "service-managed-ebs-volume-name",
        "service-managed-ebs-volume",
    ];

    #[test]
    fn every_aws_actions_input_is_honoured_or_refused_saying_what_to_use() {
        for name in RENDER_ACTION_INPUTS.iter().chain(DEPLOY_ACTION_INPUTS) {
            let spec = input_spec(name)
                .unwrap_or_else(|| panic!("{name} is neither an input here nor refused"));
            let raw = RawInputs {
                values: BTreeMap::from([(name.to_string(), "x".to_string())]),
            };
            if spec.is_refused() {
                let err = AppSettings::from_raw(&raw).unwrap_err().to_string();
                assert!(err.contains(name), "{name}: {err}");
                assert!(
                    err.contains("use") || err.contains("set") || err.contains("leave"),
                    "{name}: the refusal must say what to do instead: {err}"
                );
            } else {
                // Honoured: any error is about the value, never a refusal of the name.
                if let Err(e) = AppSettings::from_raw(&raw) {
                    assert!(!e.to_string().contains("Refused"), "{name}: {e}");
                }
            }
        }
    }

    #[test]
    fn the_render_actions_container_inputs_are_refused_with_a_kubernetes_target() {
        for name in [
            "docker-labels",
            "command",
            "log-configuration-log-driver",
            "secrets",
        ] {
            let raw = RawInputs {
                values: BTreeMap::from([
                    ("eks-cluster".to_string(), "shop".to_string()),
                    (name.to_string(), "A=b".to_string()),
                ]),
            };
            let err = AppSettings::from_raw(&raw).unwrap_err().to_string();
            assert!(
                err.contains(name) && err.contains("ECS inputs"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn the_render_actions_container_inputs_are_read_in_its_formats() {
        let raw = RawInputs {
            values: BTreeMap::from([
                (
                    "docker-labels".to_string(),
                    "team=web\ntier=front".to_string(),
                ),
                (
                    "command".to_string(),
                    "node server.js --port 80".to_string(),
                ),
                (
                    "log-configuration-log-driver".to_string(),
                    "awslogs".to_string(),
                ),
                (
                    "log-configuration-options".to_string(),
                    "awslogs-group=/ecs/web\nawslogs-region=us-east-1".to_string(),
                ),
                (
                    "secrets".to_string(),
                    "DB_URL=arn:aws:secretsmanager:us-east-1:123456789012:secret:db".to_string(),
                ),
            ]),
        };
        let e = AppSettings::from_raw(&raw).unwrap().ecs.container_edits;
        assert_eq!(
            e.docker_labels,
            [
                ("team".into(), "web".into()),
                ("tier".into(), "front".into())
            ]
        );
        assert_eq!(e.command.unwrap(), ["node", "server.js", "--port", "80"]);
        assert_eq!(e.log_driver.as_deref(), Some("awslogs"));
        assert_eq!(e.log_options.len(), 2);
        assert_eq!(e.secrets[0].0, "DB_URL");
        let bad = RawInputs {
            values: BTreeMap::from([("secrets".to_string(), "DB_URL=".to_string())]),
        };
        let err = AppSettings::from_raw(&bad).unwrap_err().to_string();
        assert!(
            err.contains("secrets") && err.contains("valueFrom"),
            "{err}"
        );
        let bad = RawInputs {
            values: BTreeMap::from([("command".to_string(), "[\"node\",".to_string())]),
        };
        let err = AppSettings::from_raw(&bad).unwrap_err().to_string();
        assert!(err.contains("command"), "{err}");
    }

    #[test]
    fn input_env_names_keep_hyphens() {
        assert_eq!(input_env_name("task-definition"), "INPUT_TASK-DEFINITION");
    }

    #[test]
    fn flags_win_over_env_and_empty_env_counts_as_unset() {
        let s = sources(
            &["--cluster", "flag-cluster"],
            &[
                ("INPUT_CLUSTER", "env-cluster"),
                ("INPUT_SERVICE", "  "),
                ("INPUT_APP", "web1"),
            ],
        )
        .unwrap();
        assert_eq!(s.raw.get("cluster"), Some("flag-cluster"));
        assert_eq!(s.raw.get("service"), None);
        assert_eq!(s.raw.get("app"), Some("web1"));
    }

    #[test]
    fn boolean_flag_alone_means_true() {
        let s = sources(&["--dry-run"], &[]).unwrap();
        let settings = Settings::from_sources(&s).unwrap();
        assert!(settings.dry_run);
        let s = sources(&["--dry-run=false"], &[]).unwrap();
        assert!(!Settings::from_sources(&s).unwrap().dry_run);
    }

    #[test]
    fn a_bad_fail_fast_count_is_refused_with_the_range() {
        let s = sources(&[], &[("INPUT_FAIL-FAST-AFTER-STOPPED-TASKS", "many")]).unwrap();
        let err = Settings::from_sources(&s).unwrap_err().to_string();
        assert!(
            err.contains("fail-fast-after-stopped-tasks")
                && err.contains("many")
                && err.contains("0 (never fail fast) to 100"),
            "{err}"
        );
        let s = sources(&[], &[("INPUT_FAIL-FAST-AFTER-STOPPED-TASKS", "0")]).unwrap();
        assert_eq!(
            Settings::from_sources(&s)
                .unwrap()
                .app
                .ecs
                .fail_fast_after_stopped_tasks,
            0
        );
    }

    #[test]
    fn unknown_deployment_lists_accepted_values() {
        let s = sources(&[], &[("INPUT_DEPLOYMENT", "bluegreen")]).unwrap();
        let err = Settings::from_sources(&s).unwrap_err().to_string();
        assert!(err.contains("bluegreen"), "{err}");
        assert!(
            err.contains("auto, rolling, codedeploy, ecs-blue-green, kubernetes"),
            "{err}"
        );
    }

    #[test]
    fn defaults_apply_when_inputs_are_empty() {
        let s = sources(&[], &[]).unwrap();
        let settings = Settings::from_sources(&s).unwrap();
        assert_eq!(settings.trigger.base_branch, "main");
        assert_eq!(settings.trigger.release_branch_prefix, "release/");
        assert!(settings.trigger.deploy_on.pull_request_merged);
        // A push to base-branch deploys by default (a step copied from the aws-actions under
        // `on: push`); a push to any other branch needs `deploy-on: push`.
        assert!(settings.trigger.deploy_on.push_to_base_branch);
        assert!(!settings.trigger.deploy_on.push);
        assert_eq!(settings.app.rollout.wait_for_minutes, 30);
        assert_eq!(settings.app.ecs.fail_fast_after_stopped_tasks, 3);
        assert_eq!(settings.app.deployment, DeploymentChoice::Auto);
        assert!(settings.app.image.tag_latest);
        assert!(settings.app.rollout.rollback_on_failure);
    }

    #[test]
    fn pairs_parse_and_reject_bad_lines() {
        let p = parse_pairs("build-args", "A=1\n# c\n\nB = two=2\nA=3").unwrap();
        assert_eq!(
            p,
            vec![("B".into(), " two=2".into()), ("A".into(), "3".into())]
        );
        assert!(parse_pairs("build-args", "novalue").is_err());
        assert!(parse_pairs("build-args", "1A=x").is_err());
    }

    #[test]
    fn commands_split_without_a_shell() {
        assert_eq!(
            parse_command("python manage.py migrate").unwrap(),
            vec!["python", "manage.py", "migrate"]
        );
        assert_eq!(
            parse_command(r#"["sh", "-c", "echo $HOME"]"#).unwrap(),
            vec!["sh", "-c", "echo $HOME"]
        );
        assert!(parse_command("[broken").is_err());
    }

    #[test]
    fn commands_split_as_a_shell_would_quotes_and_backslashes_included() {
        assert_eq!(
            parse_command(r#"sh -c "echo \"hi\" $HOME" 'a b'c  d\ e"#).unwrap(),
            vec!["sh", "-c", r#"echo "hi" $HOME"#, "a bc", "d e"]
        );
        assert_eq!(parse_command(r#"run '' x"#).unwrap(), vec!["run", "", "x"]);
        let err = parse_command_of("command", "sh -c 'echo")
            .unwrap_err()
            .to_string();
        assert!(err.contains("command") && err.contains("quote"), "{err}");
    }

    #[test]
    fn secrets_are_listed_and_never_debug_printed() {
        let s = sources(
            &[],
            &[("INPUT_SLACK-WEBHOOK-URL", "https://hooks.example/T/B/XYZ")],
        )
        .unwrap();
        let settings = Settings::from_sources(&s).unwrap();
        assert_eq!(
            settings.secrets,
            vec![Secret::new("https://hooks.example/T/B/XYZ")]
        );
        assert!(!format!("{settings:?}").contains("XYZ"));
    }

    fn app(env: &[(&str, &str)]) -> Result<AppSettings> {
        Settings::from_sources(&sources(&[], env)?).map(|s| s.app)
    }

    #[test]
    fn the_verify_inputs_are_read_with_their_defaults_and_the_url_loses_its_userinfo() {
        let v = app(&[
            (
                "INPUT_VERIFY-URL",
                "https://deploy:s3cret@web1.example.com/health#top",
            ),
            ("INPUT_VERIFY-ALARMS", "web1-5xx,\nweb1-p99\n# a comment"),
        ])
        .unwrap()
        .verify;
        assert_eq!(
            v,
            VerifySettings {
                url: Some("https://web1.example.com/health".into()),
                test_url: None,
                requests: 10,
                max_failures: 0,
                alarms: vec!["web1-5xx".into(), "web1-p99".into()],
            }
        );
        assert!(!app(&[]).unwrap().verify.is_set());
        let v = app(&[
            ("INPUT_VERIFY-URL", "http://10.0.0.1:8080/"),
            ("INPUT_VERIFY-REQUESTS", "3"),
            ("INPUT_VERIFY-MAX-FAILURES", "3"),
        ])
        .unwrap()
        .verify;
        assert_eq!((v.requests, v.max_failures), (3, 3));
    }

    #[test]
    fn bad_verify_inputs_are_refused_naming_the_input_and_the_fix() {
        let refused = |env: &[(&str, &str)]| app(env).unwrap_err().to_string();
        let e = refused(&[("INPUT_VERIFY-URL", "ftp://web1.example.com/")]);
        assert!(
            e.contains("`verify-url`") && e.contains("http:// or https://"),
            "{e}"
        );
        let e = refused(&[("INPUT_VERIFY-URL", "https://user:pw@/x y")]);
        assert!(
            e.contains("`verify-url`") && !e.contains("pw"),
            "no password echoed: {e}"
        );
        let e = refused(&[("INPUT_VERIFY-URL", "web1.example.com/health")]);
        assert!(e.contains("absolute"), "{e}");
        let e = refused(&[
            ("INPUT_VERIFY-URL", "https://web1.example.com/"),
            ("INPUT_VERIFY-REQUESTS", "0"),
        ]);
        assert!(
            e.contains("`verify-requests`") && e.contains("from 1 to 100"),
            "{e}"
        );
        let e = refused(&[
            ("INPUT_VERIFY-URL", "https://web1.example.com/"),
            ("INPUT_VERIFY-REQUESTS", "2"),
            ("INPUT_VERIFY-MAX-FAILURES", "3"),
        ]);
        assert!(
            e.contains("verify-max-failures (3) is more than verify-requests (2)"),
            "{e}"
        );
        let e = refused(&[("INPUT_VERIFY-REQUESTS", "5")]);
        assert!(
            e.contains("verify-requests counts the GETs of verify-url, which is not set"),
            "{e}"
        );
        let e = refused(&[
            ("INPUT_VERIFY-ALARMS", "web1-5xx"),
            ("INPUT_WAIT-FOR-SERVICE-STABILITY", "false"),
        ]);
        assert!(e.contains("need wait-for-service-stability: true"), "{e}");
        let many = (0..101)
            .map(|i| format!("a{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let e = refused(&[("INPUT_VERIFY-ALARMS", many.as_str())]);
        assert!(e.contains("at most 100 alarms"), "{e}");
    }

    #[test]
    fn the_test_listener_url_is_read_like_verify_url_and_needs_it() {
        let v = app(&[
            ("INPUT_VERIFY-URL", "https://web1.example.com/health"),
            (
                "INPUT_VERIFY-TEST-URL",
                "http://ops:pw@web1.example.com:8443/health#x",
            ),
        ])
        .unwrap()
        .verify;
        assert_eq!(
            v.test_url.as_deref(),
            Some("http://web1.example.com:8443/health")
        );
        let refused = |env: &[(&str, &str)]| app(env).unwrap_err().to_string();
        let e = refused(&[
            ("INPUT_VERIFY-URL", "https://web1.example.com/health"),
            ("INPUT_VERIFY-TEST-URL", "file:///etc/passwd"),
        ]);
        assert!(
            e.contains("`verify-test-url`") && e.contains("http:// or https://"),
            "{e}"
        );
        let e = refused(&[("INPUT_VERIFY-TEST-URL", "https://web1.example.com:8443/")]);
        assert!(
            e.contains("verify-test-url stands in for verify-url at the test-traffic stage")
                && e.contains("set verify-url"),
            "{e}"
        );
    }

    #[test]
    fn build_push_action_tags_are_bare_tags_or_references_into_one_repository() {
        let s = app(&[(
            "INPUT_TAGS",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:1a2b3c4,\n123456789012.dkr.ecr.us-east-1.amazonaws.com/web1\nstable",
        )])
        .unwrap();
        assert_eq!(s.image.extra_tags, ["1a2b3c4", "latest", "stable"]);
        assert_eq!(
            s.image.registry.as_deref(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")
        );
        assert_eq!(s.image.ecr_repository.as_deref(), Some("web1"));
        let s = app(&[("INPUT_TAGS", "localhost:5000/team/web1:v1")]).unwrap();
        assert_eq!(s.image.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(s.image.ecr_repository.as_deref(), Some("team/web1"));
        assert_eq!(s.image.extra_tags, ["v1"]);
        let err = |env: &[(&str, &str)]| app(env).unwrap_err().to_string();
        let e = err(&[("INPUT_TAGS", "/web1:abc")]);
        assert!(
            e.contains("outputs.registry") && e.contains("bare tag"),
            "{e}"
        );
        let e = err(&[("INPUT_TAGS", "acme/web1:abc")]);
        assert!(e.contains("Docker Hub"), "{e}");
        let e = err(&[
            ("INPUT_ECR-REPOSITORY", "web2"),
            ("INPUT_TAGS", "r.example.com/web1:abc"),
        ]);
        assert!(
            e.contains("pushes to web1, but ecr-repository is web2"),
            "{e}"
        );
        let e = err(&[("INPUT_TAGS", "a b")]);
        assert!(e.contains("image tag"), "{e}");
    }

    #[test]
    fn the_other_actions_names_merge_with_ours_and_disagreeing_pairs_are_refused() {
        let s = app(&[
            ("INPUT_FILE", "docker/Dockerfile.web"),
            ("INPUT_PLATFORMS", "linux/arm64"),
            (
                "INPUT_LABELS",
                "team=shop\norg.opencontainers.image.title=web1",
            ),
            ("INPUT_PUSH", "true"),
            ("INPUT_NO-CACHE", "true"),
            ("INPUT_REGISTRIES", "123456789012, 210987654321"),
            ("INPUT_MASK-PASSWORD", "true"),
            ("INPUT_SKIP-LOGOUT", "true"),
        ])
        .unwrap();
        assert_eq!(
            s.image.dockerfile,
            Some(PathBuf::from("docker/Dockerfile.web"))
        );
        assert_eq!(s.image.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(s.image.labels[0], ("team".into(), "shop".into()));
        assert!(s.image.no_cache && !s.image.pull);
        assert_eq!(s.image.base_registries, ["123456789012", "210987654321"]);
        let err = |env: &[(&str, &str)]| app(env).unwrap_err().to_string();
        let e = err(&[("INPUT_FILE", "a"), ("INPUT_DOCKERFILE", "b")]);
        assert!(e.contains("`dockerfile` is b and `file` is a"), "{e}");
        let e = err(&[("INPUT_PLATFORMS", "linux/amd64,linux/arm64")]);
        assert!(e.contains("one platform only"), "{e}");
        let e = err(&[("INPUT_PUSH", "false")]);
        assert!(e.contains("always pushes"), "{e}");
        let e = err(&[("INPUT_REGISTRY-TYPE", "public")]);
        assert!(e.contains("ECR Public is not supported"), "{e}");
        let e = err(&[("INPUT_MASK-PASSWORD", "false")]);
        assert!(e.contains("docker_password"), "{e}");
        let e = err(&[("INPUT_REGISTRIES", "12345")]);
        assert!(e.contains("12 digits"), "{e}");
    }

    #[test]
    fn the_render_actions_task_definition_sources_name_one_registered_revision() {
        let td = |env: &[(&str, &str)]| app(env).map(|s| s.ecs.task_definition_ref);
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:3";
        assert_eq!(
            td(&[("INPUT_TASK-DEFINITION-ARN", arn)])
                .unwrap()
                .as_deref(),
            Some(arn)
        );
        assert_eq!(
            td(&[("INPUT_TASK-DEFINITION-FAMILY", "web1")])
                .unwrap()
                .as_deref(),
            Some("web1")
        );
        assert_eq!(
            td(&[
                ("INPUT_TASK-DEFINITION-FAMILY", "web1"),
                ("INPUT_TASK-DEFINITION-REVISION", "7")
            ])
            .unwrap()
            .as_deref(),
            Some("web1:7")
        );
        let err = |env: &[(&str, &str)]| app(env).unwrap_err().to_string();
        let e = err(&[("INPUT_TASK-DEFINITION-ARN", "web1:3")]);
        assert!(e.contains("must be a task definition ARN"), "{e}");
        let e = err(&[("INPUT_TASK-DEFINITION-REVISION", "7")]);
        assert!(e.contains("give the family too"), "{e}");
        let e = err(&[
            ("INPUT_TASK-DEFINITION-FAMILY", "web1"),
            ("INPUT_TASK-DEFINITION-REVISION", "latest"),
        ]);
        assert!(e.contains("revision number"), "{e}");
        let e = err(&[
            ("INPUT_TASK-DEFINITION-ARN", arn),
            ("INPUT_TASK-DEFINITION-FAMILY", "web1"),
        ]);
        assert!(e.contains("give one of them"), "{e}");
        let e = err(&[
            ("INPUT_TASK-DEFINITION-ARN", arn),
            ("INPUT_TASK-DEFINITION", "task-definition.json"),
        ]);
        assert!(e.contains("give one source"), "{e}");
    }

    #[test]
    fn the_deploy_actions_service_inputs_go_with_the_update_service() {
        let s = app(&[
            ("INPUT_DESIRED-COUNT", "4"),
            ("INPUT_ENABLE-ECS-MANAGED-TAGS", "true"),
            ("INPUT_PROPAGATE-TAGS", "service"),
            ("INPUT_KEEP-NULL-VALUE-KEYS", "true"),
        ])
        .unwrap();
        assert_eq!(
            s.ecs.service_update,
            ServiceUpdate {
                desired_count: Some(4),
                enable_ecs_managed_tags: Some(true),
                propagate_tags: Some("SERVICE".into()),
            }
        );
        assert_eq!(s.ecs.keep_null_value_keys, KeepNullValues::All);
        assert!(app(&[]).unwrap().ecs.service_update.is_empty());
        let err = |env: &[(&str, &str)]| app(env).unwrap_err().to_string();
        assert!(err(&[("INPUT_DESIRED-COUNT", "-1")]).contains("0 or more"));
        assert!(err(&[("INPUT_PROPAGATE-TAGS", "ALL")]).contains("TASK_DEFINITION"));
        let e = err(&[("INPUT_TASK-ROLE-ARN", "web1-task")]);
        assert!(e.contains("IAM role ARN"), "{e}");
        let e = err(&[("INPUT_ENV-FILES", "s3://bucket/web1.env")]);
        assert!(e.contains("ARN of an S3 object"), "{e}");
    }

    #[test]
    fn the_deploy_actions_run_task_inputs_are_read_in_their_formats() {
        let t = app(&[
            ("INPUT_RUN-TASK", "true"),
            (
                "INPUT_RUN-TASK-CONTAINER-OVERRIDES",
                r#"[{"name": "web1", "command": ["python", "manage.py", "migrate"], "environment": [{"name": "A", "value": "1"}], "memory": 512}]"#,
            ),
            ("INPUT_RUN-TASK-SUBNETS", "subnet-1, subnet-2"),
            ("INPUT_RUN-TASK-SECURITY-GROUPS", "sg-1"),
            ("INPUT_RUN-TASK-ASSIGN-PUBLIC-IP", "enabled"),
            ("INPUT_RUN-TASK-LAUNCH-TYPE", "FARGATE"),
            ("INPUT_RUN-TASK-TAGS", r#"[{"key": "team", "value": "shop"}]"#),
            ("INPUT_WAIT-FOR-TASK-STOPPED", "true"),
        ])
        .unwrap()
        .ecs.run_task
        .expect("run-task: true");
        assert_eq!(t.subnets, ["subnet-1", "subnet-2"]);
        assert_eq!(t.security_groups, ["sg-1"]);
        assert_eq!(t.assign_public_ip.as_deref(), Some("ENABLED"));
        assert_eq!(t.launch_type.as_deref(), Some("FARGATE"));
        assert_eq!(t.started_by, "GitHub-Actions");
        assert_eq!(t.tags, [("team".to_string(), "shop".to_string())]);
        assert!(t.wait);
        let o = &t.container_overrides[0];
        assert_eq!(o.name(), Some("web1"));
        assert_eq!(o.command(), ["python", "manage.py", "migrate"]);
        assert_eq!(o.memory(), Some(512));
        assert_eq!(o.environment()[0].name(), Some("A"));
        let err = |env: &[(&str, &str)]| app(env).unwrap_err().to_string();
        let e = err(&[("INPUT_RUN-TASK-SUBNETS", "subnet-1")]);
        assert!(e.contains("add `run-task: true`"), "{e}");
        let e = err(&[("INPUT_RUN-TASK", "true"), ("INPUT_RUN-TASK-COMMAND", "x")]);
        assert!(e.contains("give one of them"), "{e}");
        let e = err(&[
            ("INPUT_RUN-TASK", "true"),
            (
                "INPUT_RUN-TASK-CONTAINER-OVERRIDES",
                r#"[{"name": "web1", "gpu": 1}]"#,
            ),
        ]);
        assert!(e.contains("`gpu` is not taken here"), "{e}");
        let e = err(&[
            ("INPUT_RUN-TASK", "true"),
            ("INPUT_RUN-TASK-LAUNCH-TYPE", "EC2"),
            (
                "INPUT_RUN-TASK-CAPACITY-PROVIDER-STRATEGY",
                r#"[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]"#,
            ),
        ]);
        assert!(e.contains("not both"), "{e}");
        let e = err(&[
            ("INPUT_RUN-TASK", "true"),
            ("INPUT_RUN-TASK-TAGS", "team=shop"),
        ]);
        assert!(e.contains("JSON array"), "{e}");
    }

    #[test]
    fn inputs_this_action_does_not_have_are_refused_with_what_to_use_instead() {
        let refused: Vec<&str> = INPUTS
            .iter()
            .filter(|s| s.is_refused())
            .map(|s| s.name)
            .collect();
        assert!(refused.len() >= 20, "{refused:?}");
        for name in refused {
            let env = [(input_env_name(name), "x".to_string())];
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let e = app(&env).unwrap_err().to_string();
            assert!(
                e.contains(&format!("this action does not take `{name}`"))
                    && !e.contains("Refused:"),
                "{e}"
            );
        }
        let e = app(&[("INPUT_CACHE-FROM", "type=gha")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cache: registry"), "{e}");
    }

    fn run_settings(env: &[(&str, &str)]) -> Result<Settings> {
        Settings::from_sources(&sources(&[], env)?)
    }

    #[test]
    fn keep_null_value_keys_is_true_false_or_the_deploy_actions_keys() {
        let keep =
            |v: &str| app(&[("INPUT_KEEP-NULL-VALUE-KEYS", v)]).map(|s| s.ecs.keep_null_value_keys);
        let keys = |k: &[&str]| KeepNullValues::Keys(k.iter().map(|s| s.to_string()).collect());
        assert_eq!(keep("true").unwrap(), KeepNullValues::All);
        assert_eq!(keep("false").unwrap(), keys(&[]));
        assert_eq!(app(&[]).unwrap().ecs.keep_null_value_keys, keys(&[]));
        assert_eq!(keep("environment").unwrap(), keys(&["environment"]));
        assert_eq!(
            keep("environment, tag").unwrap(),
            keys(&["environment", "tag"])
        );
        assert_eq!(
            keep(r#"["command", "environment"]"#).unwrap(),
            keys(&["command", "environment"])
        );
        let e = keep("env ironment").unwrap_err().to_string();
        assert!(
            e.contains("keep-null-value-keys") && e.contains("comma list"),
            "{e}"
        );
        assert!(
            keep("[1, 2]")
                .unwrap_err()
                .to_string()
                .contains("JSON array")
        );
    }

    #[test]
    fn a_wait_above_the_cap_is_capped_with_a_notice_and_below_one_refused() {
        let s = app(&[("INPUT_WAIT-FOR-MINUTES", "1000")]).unwrap();
        assert_eq!(s.rollout.wait_for_minutes, MAX_WAIT_MINUTES);
        assert_eq!(s.notices.len(), 1);
        assert!(
            s.notices[0].contains("1000") && s.notices[0].contains("waiting 720"),
            "{:?}",
            s.notices
        );
        let s = app(&[("INPUT_WAIT-FOR-MINUTES", "45")]).unwrap();
        assert_eq!((s.rollout.wait_for_minutes, s.notices.len()), (45, 0));
        assert!(app(&[("INPUT_WAIT-FOR-MINUTES", "0")]).is_err());
    }

    #[test]
    fn wait_max_delay_seconds_caps_every_pause_of_a_wait() {
        assert_eq!(
            app(&[]).unwrap().rollout.poll_cap(),
            std::time::Duration::MAX
        );
        let s = app(&[("INPUT_WAIT-MAX-DELAY-SECONDS", "2")]).unwrap();
        assert_eq!(s.rollout.poll_cap(), std::time::Duration::from_secs(2));
        let e = app(&[("INPUT_WAIT-MAX-DELAY-SECONDS", "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 300"), "{e}");
    }

    #[test]
    fn max_retries_is_the_attempts_per_call_from_1_to_20() {
        assert_eq!(run_settings(&[]).unwrap().max_attempts, None);
        let s = run_settings(&[("INPUT_MAX-RETRIES", "3")]).unwrap();
        assert_eq!(s.max_attempts, Some(3));
        for bad in ["0", "21", "three"] {
            let e = run_settings(&[("INPUT_MAX-RETRIES", bad)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("max-retries") && e.contains("1 to 20"), "{e}");
        }
    }

    #[test]
    fn the_run_tasks_managed_ebs_volume_is_built_as_the_deploy_action_sends_it() {
        let base = [
            ("INPUT_RUN-TASK", "true"),
            ("INPUT_RUN-TASK-MANAGED-EBS-VOLUME-NAME", "data"),
        ];
        let with = |volume: &str| {
            let mut env = base.to_vec();
            env.push(("INPUT_RUN-TASK-MANAGED-EBS-VOLUME", volume));
            app(&env)
        };
        let s = with(r#"{"roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRole", "sizeInGiB": 20, "volumeType": "gp3", "throughput": 125, "encrypted": true, "filesystemType": "xfs"}"#)
            .unwrap();
        let v = s.ecs.run_task.unwrap().volume.expect("a volume");
        assert_eq!(v.name(), "data");
        let m = v.managed_ebs_volume().expect("managed EBS");
        assert_eq!(
            m.role_arn(),
            "arn:aws:iam::123456789012:role/ecsInfrastructureRole"
        );
        assert_eq!(
            (m.size_in_gib(), m.throughput(), m.encrypted()),
            (Some(20), Some(125), Some(true))
        );
        assert_eq!(m.volume_type(), Some("gp3"));
        assert_eq!(
            m.filesystem_type(),
            Some(&aws_sdk_ecs::types::TaskFilesystemType::Xfs)
        );
        let e = with(r#"{"sizeInGiB": 20}"#).unwrap_err().to_string();
        assert!(e.contains("roleArn"), "{e}");
        let e = with(r#"{"roleArn": "r", "size": 20}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `size`"), "{e}");
        // One without the other: refused (the deploy action only warns and drops the volume).
        let e = app(&base).unwrap_err().to_string();
        assert!(e.contains("go together"), "{e}");
    }

    #[test]
    fn a_build_secret_copied_into_secrets_is_refused_without_its_value() {
        let token = "npm_Zx9s3cr3tT0k3nValue";
        let line = format!("npm_token={token}");
        let e = app(&[("INPUT_SECRETS", line.as_str())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("build-secrets") && e.contains("npm_token"),
            "{e}"
        );
        assert!(!e.contains(token), "the value is never shown: {e}");
        // And it is masked before anything prints: the runner and the redactor both hide it.
        let s = sources(&[], &[("INPUT_SECRETS", line.as_str())]).unwrap();
        assert!(s.raw.secrets().contains(&token.to_string()));
        // ARNs are container secrets, as the render action takes them, build or not.
        let arns = "DB=arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf\nAPI=arn:aws:ssm:us-east-1:123456789012:parameter/api-key";
        assert_eq!(
            app(&[("INPUT_SECRETS", arns)])
                .unwrap()
                .ecs
                .container_edits
                .secrets
                .len(),
            2
        );
        // With an image built elsewhere nothing is built: an SSM parameter name is ECS's to read.
        let s = app(&[
            (
                "INPUT_IMAGE",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1",
            ),
            ("INPUT_SECRETS", "API=api-key"),
        ]);
        assert!(s.is_ok(), "{s:?}");
    }

    #[test]
    fn slack_github_actions_webhook_inputs_are_this_actions_slack_settings() {
        let hook = "https://hooks.slack.com/services/T0/B0/abc";
        let s = run_settings(&[
            ("INPUT_WEBHOOK", hook),
            ("INPUT_WEBHOOK-TYPE", "incoming-webhook"),
            ("INPUT_PAYLOAD", "text: \"{app} {version}: {status}\"\n"),
        ])
        .unwrap();
        assert_eq!(
            s.report.slack_webhook_url.as_ref().map(Secret::expose),
            Some(hook)
        );
        let payload: serde_json::Value =
            serde_json::from_str(s.report.slack_payload.as_deref().unwrap()).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({"text": "{app} {version}: {status}"})
        );
        let json = r#"{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}"#;
        let s = run_settings(&[("INPUT_WEBHOOK", hook), ("INPUT_PAYLOAD", json)]).unwrap();
        assert_eq!(s.report.slack_payload.as_deref(), Some(json));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("slack.json"), r#"{"text": "{headline}"}"#).unwrap();
        let ws = dir.path().to_str().unwrap();
        let s = run_settings(&[
            ("GITHUB_WORKSPACE", ws),
            ("INPUT_WEBHOOK", hook),
            ("INPUT_PAYLOAD-FILE-PATH", "slack.json"),
        ])
        .unwrap();
        assert_eq!(
            s.report.slack_payload.as_deref(),
            Some(r#"{"text": "{headline}"}"#)
        );
        let err = |env: &[(&str, &str)]| run_settings(env).unwrap_err().to_string();
        assert!(err(&[("INPUT_WEBHOOK-TYPE", "webhook-trigger")]).contains("incoming webhook"));
        assert!(err(&[("INPUT_PAYLOAD-TEMPLATED", "true")]).contains("{placeholders}"));
        assert!(err(&[("INPUT_ERRORS", "true")]).contains("warning"));
        assert!(
            err(&[
                ("INPUT_WEBHOOK", hook),
                (
                    "INPUT_SLACK-WEBHOOK-URL",
                    "https://hooks.slack.com/services/T0/B0/other"
                )
            ])
            .contains("keep one")
        );
        assert!(
            err(&[("INPUT_PAYLOAD", "{}"), ("INPUT_SLACK-PAYLOAD", "{}")]).contains("keep one")
        );
        let e = err(&[("INPUT_PAYLOAD-FILE-PATH", "missing.json")]);
        assert!(
            e.contains("payload-file-path") && e.contains("cannot be read"),
            "{e}"
        );
        // The bot-token way is refused with what to use, and the token is never echoed.
        let e = app(&[("INPUT_TOKEN", "xoxb-s3cr3t")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("slack-bot-token") && !e.contains("xoxb-s3cr3t"),
            "{e}"
        );
    }

    #[test]
    fn each_build_secret_value_is_masked_on_its_own() {
        let s = sources(
            &[],
            &[(
                "INPUT_BUILD-SECRETS",
                "npm_token=s3cr3t-npm\n# note\ngh=ghp_abc",
            )],
        )
        .unwrap();
        let masked = s.raw.secrets();
        assert!(masked.contains(&"s3cr3t-npm".to_string()), "{masked:?}");
        assert!(masked.contains(&"ghp_abc".to_string()), "{masked:?}");
    }
}
