//! The input contract as data: every input, output and runner context variable with its scope,
//! default and help; action.yml, the CLI flags and the README tables are checked against it.

/// Which part of the run an input belongs to; per-app inputs may also come from the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read once for the whole run (trigger, reporting, dry run).
    Run,
    /// May differ per app (version, image, deploy): allowed in the config file too.
    App,
}

/// Whether this action honours an input or declares it only to refuse it (an input of the
/// aws-actions, docker or slackapi steps whose meaning this action does not have).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read and acted on.
    Honoured,
    /// Given, it is refused before anything runs; the help says what to use instead.
    Refused,
}

/// One input of the action's contract: its name is the interface (action.yml, `INPUT_*`, flag).
#[derive(Debug, Clone, Copy)]
pub struct InputSpec {
    pub name: &'static str,
    pub scope: Scope,
    /// The default the binary applies when the input is empty (action.yml declares none, so that a
    /// config file's value is not hidden by an action.yml default).
    pub default: Option<&'static str>,
    /// Masked with `::add-mask::` before anything is printed.
    pub secret: bool,
    /// What the input does; for a refused input, what to use instead.
    pub help: &'static str,
    pub kind: Kind,
}

impl InputSpec {
    /// An input of another action whose meaning this action does not have: given, it is refused
    /// before anything runs, with `help` saying what to use instead (never silently ignored).
    pub(crate) fn is_refused(&self) -> bool {
        self.kind == Kind::Refused
    }
}

const fn spec(
    name: &'static str,
    scope: Scope,
    default: Option<&'static str>,
    secret: bool,
    help: &'static str,
) -> InputSpec {
    InputSpec {
        name,
        scope,
        default,
        secret,
        help,
        kind: Kind::Honoured,
    }
}

/// An input another action has and this one refuses; `instead` says what to use instead.
const fn refused(name: &'static str, instead: &'static str) -> InputSpec {
    InputSpec {
        name,
        scope: App,
        default: None,
        secret: false,
        help: instead,
        kind: Kind::Refused,
    }
}

/// A refused input whose value is a secret: masked, and never echoed in the refusal.
const fn refused_secret(name: &'static str, instead: &'static str) -> InputSpec {
    InputSpec {
        secret: true,
        ..refused(name, instead)
    }
}

use Scope::{App, Run};

/// The whole input contract (see DESIGN.md); action.yml is checked against this table by a test.
pub const INPUTS: &[InputSpec] = &[
    // trigger
    spec(
        "app",
        Run,
        None,
        false,
        "App to deploy: a name, a comma list, or `all` (config file). Default: the part after release-branch-prefix of the PR head branch",
    ),
    spec(
        "base-branch",
        Run,
        Some("main"),
        false,
        "Branch a release PR must be merged into",
    ),
    spec(
        "release-branch-prefix",
        Run,
        Some("release/"),
        false,
        "Prefix of release branches; the rest of the branch name is the app",
    ),
    spec(
        "deploy-on",
        Run,
        Some("pull-request-merged,workflow-dispatch,tag,push-to-base-branch"),
        false,
        "Events that deploy: comma list of pull-request-merged, workflow-dispatch, tag (a v* tag push), push (a push to any branch), push-to-base-branch (a push to base-branch only)",
    ),
    spec(
        "version",
        Run,
        None,
        false,
        "Version to deploy: `latest` (the package.json version, built if needed) or an explicit version (that existing image is deployed, no build). Default on workflow_dispatch: the event's `version` input",
    ),
    // version
    spec(
        "package-json",
        App,
        None,
        false,
        "package.json holding the version. Default: apps/<app>/package.json when it exists, else package.json",
    ),
    spec(
        "version-format",
        App,
        Some("semver"),
        false,
        "`semver`, or `loose` for the ^v[0-9a-zA-Z._-]+$ rule",
    ),
    spec(
        "tag-prefix",
        App,
        Some("v"),
        false,
        "Prefix of the version image tag (v1.2.3)",
    ),
    spec(
        "tag-latest",
        App,
        Some("true"),
        false,
        "Also move the `latest` tag (never for prereleases)",
    ),
    // image
    spec(
        "image",
        App,
        None,
        false,
        "An image built elsewhere (repo:tag or repo@digest): no build, and no package.json needed (the version is the image tag)",
    ),
    spec(
        "registry",
        App,
        None,
        false,
        "Registry host. Default: the account's ECR registry",
    ),
    spec(
        "registry-username",
        App,
        None,
        false,
        "User name for a registry that is not ECR",
    ),
    spec(
        "registry-password",
        App,
        None,
        true,
        "Password or token for a registry that is not ECR",
    ),
    spec(
        "ecr-repository",
        App,
        None,
        false,
        "Repository name. Default: the app name",
    ),
    spec(
        "registry-is-ecr",
        App,
        None,
        false,
        "`true` when `registry` is an alias or VPC endpoint in front of ECR: only then does a host other than `<account>.dkr.ecr.<region>.amazonaws.com[.cn]` get ECR's token. `false`: push there without a login",
    ),
    spec(
        "create-repository",
        App,
        Some("false"),
        false,
        "Create the ECR repository when it does not exist (scan on push): `true`, `false`, or `immutable` (tags cannot be overwritten, except latest and buildcache)",
    ),
    spec(
        "dockerfile",
        App,
        None,
        false,
        "Dockerfile. Default: apps/<app>/Dockerfile when it exists, else Dockerfile",
    ),
    spec(
        "context",
        App,
        Some("."),
        false,
        "Build context, inside the workspace (monorepo builds need the root)",
    ),
    spec(
        "build-args",
        App,
        None,
        false,
        "Build arguments, one KEY=VALUE per line",
    ),
    spec(
        "build-secrets",
        App,
        None,
        true,
        "BuildKit secrets, one id=VALUE per line (never in layers or logs)",
    ),
    spec("target", App, None, false, "Build stage to stop at"),
    spec(
        "platform",
        App,
        None,
        false,
        "Target platform, e.g. linux/amd64",
    ),
    spec(
        "cache",
        App,
        Some("none"),
        false,
        "`none`, or `registry` (cache in <repo>:buildcache)",
    ),
    spec(
        "rebuild",
        App,
        Some("false"),
        false,
        "Rebuild even when the version tag already exists",
    ),
    // image: docker/build-push-action's names, same formats
    spec(
        "file",
        App,
        None,
        false,
        "Dockerfile, as docker/build-push-action names it (the same as `dockerfile`)",
    ),
    spec(
        "tags",
        App,
        None,
        false,
        "More tags for the build, as docker/build-push-action writes them (comma or newline list): a bare tag (e.g. the commit sha) or a reference <registry>/<repository>:<tag> (it sets registry and ecr-repository when they are not given; one repository per app). Each is pushed and read back; without a package.json the first one is the version",
    ),
    spec(
        "labels",
        App,
        None,
        false,
        "Image labels, one KEY=VALUE per line (they win over the org.opencontainers.image.* labels this action sets)",
    ),
    spec(
        "platforms",
        App,
        None,
        false,
        "Target platform, as docker/build-push-action names it: one platform (e.g. linux/arm64); several are refused, the engine's build makes single-platform images",
    ),
    spec(
        "push",
        App,
        Some("true"),
        false,
        "docker/build-push-action's: this action always pushes what it builds (the deploy needs it in the registry); `false` is refused",
    ),
    spec(
        "load",
        App,
        Some("true"),
        false,
        "docker/build-push-action's: the built image always stays in the runner's Docker engine as well; `false` is refused",
    ),
    spec(
        "no-cache",
        App,
        Some("false"),
        false,
        "Build every step again, without the engine's layer cache or the registry cache",
    ),
    spec(
        "pull",
        App,
        Some("false"),
        false,
        "Always pull newer versions of the base images",
    ),
    spec(
        "secret-files",
        App,
        None,
        false,
        "BuildKit secrets read from files inside the workspace, one id=path per line (as docker/build-push-action writes them; never in layers or logs)",
    ),
    refused(
        "cache-from",
        "use `cache: registry` (the engine's BuildKit keeps an inline cache in <repository>:buildcache and imports it on the next build); gha, local and s3 caches need buildx",
    ),
    refused(
        "cache-to",
        "use `cache: registry` (the engine's BuildKit keeps an inline cache in <repository>:buildcache and imports it on the next build); gha, local and s3 caches need buildx",
    ),
    refused(
        "provenance",
        "the build runs on the Docker engine, which pushes no attestations; remove it, or build with docker/build-push-action and pass the result as `image`",
    ),
    refused(
        "sbom",
        "the build runs on the Docker engine, which pushes no attestations; remove it, or build with docker/build-push-action and pass the result as `image`",
    ),
    refused(
        "attests",
        "the build runs on the Docker engine, which pushes no attestations; remove it, or build with docker/build-push-action and pass the result as `image`",
    ),
    refused(
        "outputs",
        "the image goes to the registry (and stays in the engine); for other exporters build with docker/build-push-action and pass the result as `image`",
    ),
    refused(
        "builder",
        "the build runs on the Docker engine's own BuildKit (/var/run/docker.sock); remove it (and docker/setup-buildx-action)",
    ),
    refused(
        "annotations",
        "the engine's build sets no manifest annotations; use `labels`",
    ),
    refused(
        "build-contexts",
        "one build context (`context`); copy the other directories into it",
    ),
    refused(
        "secret-envs",
        "pass the value as a build secret (build-secrets: one id=VALUE line, the value from the secrets context)",
    ),
    refused(
        "ssh",
        "no SSH agent reaches the build; pass a token as a build secret (build-secrets) instead",
    ),
    refused(
        "network",
        "RUN steps use the engine's default build network",
    ),
    refused(
        "add-hosts",
        "RUN steps use the engine's own name resolution",
    ),
    refused("shm-size", "RUN steps get the engine's default /dev/shm"),
    refused("ulimit", "RUN steps get the engine's default limits"),
    refused(
        "no-cache-filters",
        "use `no-cache: true` (the whole build without cache)",
    ),
    refused(
        "allow",
        "no extra BuildKit entitlements (network.host, security.insecure) are granted",
    ),
    refused(
        "call",
        "the build always builds (no check/outline/targets call)",
    ),
    refused("cgroup-parent", "RUN steps use the engine's default cgroup"),
    // image: aws-actions/amazon-ecr-login's names
    spec(
        "registries",
        App,
        None,
        false,
        "AWS account ids (comma list) whose ECR registries the build logs in to (ECR tokens read before the build), so FROM can name base images in other accounts; as amazon-ecr-login names it",
    ),
    spec(
        "registry-type",
        App,
        Some("private"),
        false,
        "`private` (ECR), as amazon-ecr-login names it; `public` (ECR Public) is refused: push to a private repository, or give registry: public.ecr.aws with registry-username/registry-password",
    ),
    spec(
        "mask-password",
        App,
        Some("true"),
        false,
        "amazon-ecr-login's: every registry password is always masked and never written to an output; `false` is refused",
    ),
    spec(
        "skip-logout",
        App,
        Some("false"),
        false,
        "amazon-ecr-login's: accepted, and nothing to do either way: the credentials go in each engine request, never into a Docker config, so no login is left to log out of",
    ),
    refused(
        "http-proxy",
        "the AWS calls do not go through a proxy; run where the AWS endpoints are reachable, or point AWS_ENDPOINT_URL_ECR at a VPC endpoint",
    ),
    // deploy
    spec("cluster", App, Some("default"), false, "ECS cluster"),
    spec(
        "service",
        App,
        None,
        false,
        "ECS service. Without it the action only builds and pushes",
    ),
    spec(
        "task-definition",
        App,
        None,
        false,
        "Task definition JSON file. Default: the service's live task definition",
    ),
    spec(
        "container-name",
        App,
        None,
        false,
        "Container whose image is replaced (required when there are several)",
    ),
    spec(
        "environment-variables",
        App,
        None,
        false,
        "Environment variables merged into the container, one KEY=VALUE per line",
    ),
    spec(
        "docker-labels",
        App,
        None,
        false,
        "Docker labels merged into the container's dockerLabels, one KEY=VALUE per line (as amazon-ecs-render-task-definition)",
    ),
    spec(
        "command",
        App,
        None,
        false,
        "The container's command: a JSON array, or words split as a shell would (quotes, backslashes; no shell runs)",
    ),
    spec(
        "log-configuration-log-driver",
        App,
        None,
        false,
        "Sets the container's logConfiguration.logDriver (e.g. awslogs)",
    ),
    spec(
        "log-configuration-options",
        App,
        None,
        false,
        "Options merged into the container's logConfiguration.options, one KEY=VALUE per line",
    ),
    spec(
        "secrets",
        App,
        None,
        false,
        "Secrets merged into the container's secrets, one NAME=valueFrom per line (a Secrets Manager or SSM parameter ARN)",
    ),
    spec(
        "deployment",
        App,
        Some("auto"),
        false,
        "`auto` (from the service's deployment controller; `kubernetes` with eks-cluster or kubeconfig), `rolling`, `codedeploy`, `ecs-blue-green` or `kubernetes`",
    ),
    spec(
        "wait-for-service-stability",
        App,
        Some("true"),
        false,
        "Wait until the new deployment serves",
    ),
    spec(
        "wait-for-minutes",
        App,
        Some("30"),
        false,
        "How long to wait before giving up (and rolling back)",
    ),
    spec(
        "fail-fast-after-stopped-tasks",
        App,
        Some("3"),
        false,
        "Fail the rolling deploy (and roll back) as soon as this many tasks of the new revision stopped for the same reason, or ECS failed to place a task this many times, instead of waiting out wait-for-minutes; 0 turns it off",
    ),
    spec(
        "verify-url",
        App,
        None,
        false,
        "A URL (http or https) the verification gate GETs once the new version serves (at an ECS blue/green pause hook, in a CodeDeploy bake, after a rolling or Kubernetes rollout); a failed verification rolls back. Redirects to another host are not followed; no credential is sent",
    ),
    spec(
        "verify-test-url",
        App,
        None,
        false,
        "The URL (http or https) of the test listener, which sends all its traffic to the new tasks: GET instead of verify-url while an ECS blue/green PAUSE lifecycle hook holds the deployment at POST_TEST_TRAFFIC_SHIFT (green serves all test traffic, none of production), and in a CodeDeploy deployment once production traffic is on the replacement task set (the group needs a test listener); needs verify-url, which is probed at ECS blue/green's other stages",
    ),
    spec(
        "verify-requests",
        App,
        Some("10"),
        false,
        "How many GETs of verify-url the gate makes, one a second (1 to 100)",
    ),
    spec(
        "verify-max-failures",
        App,
        Some("0"),
        false,
        "How many of those GETs may fail (an answer other than 2xx/3xx, a timeout, no connection) and the verification still pass; at most verify-requests",
    ),
    spec(
        "verify-alarms",
        App,
        None,
        false,
        "CloudWatch alarm names (comma or new-line list; metric or composite) the gate reads with DescribeAlarms: any in ALARM, or missing, fails the verification",
    ),
    spec(
        "rollback-on-failure",
        App,
        Some("true"),
        false,
        "Roll back on failure, timeout or cancellation",
    ),
    spec(
        "deregister-failed-task-definition",
        App,
        Some("false"),
        false,
        "Deregister the new revision after a failed deploy",
    ),
    spec(
        "keep-task-definitions",
        App,
        None,
        false,
        "After a successful deploy, deregister the task definition family's ACTIVE revisions beyond the newest N (a whole number, 1 or more); a revision a service of the cluster runs or an in-flight deployment uses is never deregistered. Default: none are",
    ),
    spec(
        "force-new-deployment",
        App,
        Some("false"),
        false,
        "Start a new deployment even when nothing changed",
    ),
    spec(
        "run-task-command",
        App,
        None,
        false,
        "One-off command run with the new task definition before the update (e.g. migrations)",
    ),
    spec(
        "codedeploy-application",
        App,
        None,
        false,
        "CodeDeploy application. Default: AppECS-<cluster>-<service>",
    ),
    spec(
        "codedeploy-deployment-group",
        App,
        None,
        false,
        "CodeDeploy deployment group. Default: DgpECS-<cluster>-<service>",
    ),
    spec(
        "codedeploy-appspec",
        App,
        None,
        false,
        "AppSpec file (YAML or JSON). Default: appspec.yaml, appspec.yml or appspec.json at the workspace root, else generated from the service",
    ),
    spec(
        "codedeploy-deployment-config",
        App,
        None,
        false,
        "Deployment config, e.g. CodeDeployDefault.ECSCanary10Percent5Minutes",
    ),
    spec(
        "codedeploy-deployment-description",
        App,
        None,
        false,
        "Description of the CodeDeploy deployment",
    ),
    // amazon-ecs-render-task-definition's and amazon-ecs-deploy-task-definition's inputs, under
    // their names and formats
    spec(
        "task-definition-arn",
        App,
        None,
        false,
        "A registered task definition to start from, by ARN (as amazon-ecs-render-task-definition reads it: DescribeTaskDefinition, then rendered as a file would be); instead of `task-definition`",
    ),
    spec(
        "task-definition-family",
        App,
        None,
        false,
        "A registered task definition to start from, by family: its latest ACTIVE revision, or `task-definition-revision`; instead of `task-definition`",
    ),
    spec(
        "task-definition-revision",
        App,
        None,
        false,
        "The revision of `task-definition-family` to start from (a number). Default: the latest ACTIVE one",
    ),
    spec(
        "env-files",
        App,
        None,
        false,
        "S3 object ARNs of environment files for the container (one per line, as amazon-ecs-render-task-definition takes them): they become its environmentFiles (type s3)",
    ),
    spec(
        "task-role-arn",
        App,
        None,
        false,
        "IAM role the task's containers assume: sets taskRoleArn of the rendered task definition",
    ),
    spec(
        "execution-role-arn",
        App,
        None,
        false,
        "IAM role ECS uses to pull the image and read secrets: sets executionRoleArn of the rendered task definition",
    ),
    spec(
        "keep-null-value-keys",
        App,
        None,
        false,
        "Keys whose empty values (\"\", [], {}, null) are kept in the task definition file, a comma list as amazon-ecs-deploy-task-definition takes it (a JSON array works too); `true` keeps every empty value. Default: the other empty values are dropped before the register, as that action does (an environment entry's empty `value` and App Mesh proxy properties always stay)",
    ),
    spec(
        "desired-count",
        App,
        None,
        false,
        "Desired task count the UpdateService sets (rolling and ECS blue/green; a CodeDeploy service keeps its count). Default: the service keeps its count",
    ),
    spec(
        "enable-ecs-managed-tags",
        App,
        None,
        false,
        "`true`/`false`: the UpdateService sets enableECSManagedTags (ECS tags the tasks with the cluster and service names). Default: unchanged",
    ),
    spec(
        "propagate-tags",
        App,
        None,
        false,
        "`SERVICE`, `TASK_DEFINITION` or `NONE`: the UpdateService sets propagateTags (whose tags the tasks get). Default: unchanged",
    ),
    spec(
        "run-task",
        App,
        None,
        false,
        "`true`: run the new task definition once as a task outside the service (RunTask), before the service is updated, as amazon-ecs-deploy-task-definition does; `wait-for-task-stopped` says whether to wait for it. Not with `run-task-command`. Default: false",
    ),
    spec(
        "run-task-container-overrides",
        App,
        None,
        false,
        "Container overrides of the run-task task: a JSON array of {name, command, environment, cpu, memory, memoryReservation} objects",
    ),
    spec(
        "run-task-security-groups",
        App,
        None,
        false,
        "Security groups of the run-task task (comma list). Default: the service's",
    ),
    spec(
        "run-task-subnets",
        App,
        None,
        false,
        "Subnets of the run-task task (comma list); with them, its own awsvpc network configuration. Default: the service's",
    ),
    spec(
        "run-task-assign-public-IP",
        App,
        None,
        false,
        "`ENABLED` or `DISABLED`: a public IP for the run-task task (with `run-task-subnets`). Default: DISABLED",
    ),
    spec(
        "run-task-launch-type",
        App,
        None,
        false,
        "Launch type of the run-task task (`FARGATE`, `EC2`, `EXTERNAL`). Default: the service's",
    ),
    spec(
        "run-task-capacity-provider-strategy",
        App,
        None,
        false,
        "Capacity provider strategy of the run-task task: a JSON array of {capacityProvider, weight, base}; not with `run-task-launch-type`. Default: the service's",
    ),
    spec(
        "run-task-started-by",
        App,
        Some("GitHub-Actions"),
        false,
        "`startedBy` of the run-task task",
    ),
    spec(
        "run-task-tags",
        App,
        None,
        false,
        "Tags of the run-task task: a JSON array of {key, value}",
    ),
    spec(
        "wait-for-task-stopped",
        App,
        None,
        false,
        "`true`: wait for the run-task task to stop (within wait-for-minutes) and fail the deploy, before the service is touched, unless its container exited 0. Default: false",
    ),
    spec(
        "run-task-managed-ebs-volume-name",
        App,
        None,
        false,
        "Name of the task definition's volume that is `configuredAtLaunch`: the run-task task gets an Amazon EBS volume for it (with `run-task-managed-ebs-volume`)",
    ),
    spec(
        "run-task-managed-ebs-volume",
        App,
        None,
        false,
        "The run-task task's EBS volume, a JSON object as RunTask's managedEBSVolume takes it: roleArn (required), encrypted, filesystemType, iops, kmsKeyId, sizeInGiB, snapshotId, throughput, volumeType",
    ),
    spec(
        "max-retries",
        Run,
        None,
        false,
        "Attempts per AWS call (the SDK's max attempts, standard retry mode), as amazon-ecs-deploy-task-definition takes it; 1 to 20. Default: the action's own policy (8 attempts, back-off up to 5 s), or AWS_MAX_ATTEMPTS when set",
    ),
    spec(
        "wait-max-delay-seconds",
        App,
        None,
        false,
        "The longest pause between two looks while waiting (service, deployment, run-task task), throttling back-off included; 1 to 300. Default: no cap beyond the action's own (at most 10 s between looks, 30 s when throttled)",
    ),
    // aws-actions inputs this action does not honour: declared so that they are refused
    refused(
        "service-managed-ebs-volume-name",
        "set the service's volumeConfigurations on the service (console, CLI or IaC)",
    ),
    refused(
        "service-managed-ebs-volume",
        "set the service's volumeConfigurations on the service (console, CLI or IaC)",
    ),
    spec(
        "eks-cluster",
        App,
        None,
        false,
        "EKS cluster name: deploy to a Kubernetes Deployment on it (endpoint and CA from eks:DescribeCluster, an IAM token from the AWS credentials)",
    ),
    spec(
        "kubeconfig",
        App,
        None,
        false,
        "A kubeconfig file (any Kubernetes cluster, its current context): deploy to a Kubernetes Deployment",
    ),
    spec(
        "kubernetes-namespace",
        App,
        Some("default"),
        false,
        "Namespace of the Kubernetes Deployment",
    ),
    spec(
        "kubernetes-deployment",
        App,
        None,
        false,
        "Kubernetes Deployment to update. Default: the app name",
    ),
    spec(
        "kubernetes-manifest",
        App,
        None,
        false,
        "Manifest file in the repository whose image for the container is updated and committed after a successful rollout (needs github-token with contents: write)",
    ),
    spec(
        "config",
        Run,
        None,
        false,
        "YAML file describing several apps (defaults + apps)",
    ),
    spec(
        "paths",
        App,
        None,
        false,
        "More paths whose changes count as changes of the app for changed-only (one per line; a YAML list in the config file), e.g. libs/shared",
    ),
    // scale-out
    spec(
        "plan-only",
        Run,
        Some("false"),
        false,
        "Stop after the plan (no AWS call, no build, no message) and write the `matrix` output for a later job's strategy.matrix",
    ),
    spec(
        "changed-only",
        Run,
        Some("false"),
        false,
        "Keep only the apps whose package.json or Dockerfile directory, build context, task definition, AppSpec or `paths` changed in the push or pull request (listed by the GitHub API: needs github-token with contents: read, pull-requests: read)",
    ),
    // report
    spec(
        "slack-webhook-url",
        Run,
        None,
        true,
        "Slack incoming webhook: one message with the outcome",
    ),
    spec(
        "slack-bot-token",
        Run,
        None,
        true,
        "Slack bot token (with slack-channel): a start message updated with the outcome",
    ),
    spec(
        "slack-channel",
        Run,
        None,
        false,
        "Slack channel id for the bot token",
    ),
    spec(
        "slack-payload",
        Run,
        None,
        false,
        "Own Slack JSON template with {placeholders}",
    ),
    spec(
        "discord-webhook-url",
        Run,
        None,
        true,
        "Discord webhook: an embed with the outcome",
    ),
    spec(
        "github-token",
        Run,
        None,
        true,
        "Token for GitHub Deployments (deployments: write) and changed-only's list of changed files (contents: read, pull-requests: read)",
    ),
    spec(
        "environment",
        Run,
        None,
        false,
        "GitHub deployment environment name",
    ),
    // slackapi/slack-github-action's webhook inputs
    spec(
        "webhook",
        Run,
        None,
        true,
        "Slack incoming webhook, as slack-github-action names it (the same as `slack-webhook-url`): the message is sent once, with the outcome",
    ),
    spec(
        "webhook-type",
        Run,
        None,
        false,
        "`incoming-webhook`, as slack-github-action takes it (`webhook-trigger`, a Workflow Builder trigger, is refused)",
    ),
    spec(
        "payload",
        Run,
        None,
        false,
        "The Slack message, JSON or YAML, as slack-github-action takes it (the same as `slack-payload`: {placeholders} are filled)",
    ),
    spec(
        "payload-file-path",
        Run,
        None,
        false,
        "A file in the workspace holding the Slack message (JSON or YAML), as slack-github-action takes it: read as `slack-payload`",
    ),
    spec(
        "payload-templated",
        Run,
        Some("false"),
        false,
        "slack-github-action's: the payload's {placeholders} are always filled here; `true` is refused (write {placeholders} instead of ${{ }} in the file)",
    ),
    spec(
        "errors",
        Run,
        Some("false"),
        false,
        "slack-github-action's: a message that cannot be sent is a warning, never a failed step; `true` is refused",
    ),
    refused(
        "method",
        "this action posts its own messages (chat.postMessage, then chat.update with the outcome): give slack-bot-token and slack-channel, or use slack-github-action for other Web API methods",
    ),
    refused_secret(
        "token",
        "give the bot token as `slack-bot-token` with `slack-channel`: the start message is posted, then updated with the outcome",
    ),
    refused(
        "api",
        "point the Slack Web API elsewhere with the ECS_DEPLOY_SLACK_API_URL environment variable",
    ),
    refused(
        "proxy",
        "Slack is reached directly; run where slack.com is reachable",
    ),
    refused(
        "retries",
        "messages are retried by the action itself (a few attempts within a bounded time); remove it",
    ),
    refused(
        "payload-delimiter",
        "it flattens payloads for Workflow Builder triggers, which are refused: use an incoming webhook and a plain JSON or YAML payload",
    ),
    spec(
        "dry-run",
        Run,
        Some("false"),
        false,
        "Compute and print the plan, write no AWS resource",
    ),
];

/// The concerns the inputs are grouped by in action.yml and the book: (the first input of the
/// group in `INPUTS`, its title). A row added inside a group belongs to it.
pub const GROUPS: &[(&str, &str)] = &[
    ("app", "Trigger: which events deploy, and which app"),
    (
        "package-json",
        "Version: where it is read and how images are tagged",
    ),
    ("image", "Image: build and push (or reuse)"),
    (
        "file",
        "Image, under docker/build-push-action's and aws-actions/amazon-ecr-login's names",
    ),
    ("cluster", "Deploy: Amazon ECS, rolling or blue/green"),
    (
        "task-definition-arn",
        "Deploy, under aws-actions/amazon-ecs-render-task-definition's and -deploy-task-definition's names",
    ),
    (
        "eks-cluster",
        "Kubernetes: a Deployment on EKS (or any cluster a kubeconfig reaches) instead of an ECS service",
    ),
    (
        "config",
        "Several apps: the config file, and what counts as an app's change",
    ),
    ("plan-only", "Scale-out: one job per app (strategy.matrix)"),
    ("slack-webhook-url", "Report: who is told, and how"),
    (
        "webhook",
        "Report, under slackapi/slack-github-action's names",
    ),
    ("dry-run", "Dry run"),
];

/// Every output of the action's contract; action.yml is checked against this table by a test.
pub const OUTPUTS: &[(&str, &str)] = &[
    ("skipped", "true when the event did not call for a deploy"),
    ("skip-reason", "Why nothing was deployed"),
    ("app", "App deployed"),
    ("version", "Version deployed"),
    ("image", "Image reference deployed (registry/repo:tag)"),
    ("image-digest", "Manifest digest of the image (sha256:...)"),
    ("image-built", "true when this run built the image"),
    (
        "digest",
        "Manifest digest of the image (sha256:...), as docker/build-push-action names it",
    ),
    (
        "imageid",
        "Image id of the image this run built (its config digest, sha256:...), as docker/build-push-action names it; empty when nothing was built",
    ),
    (
        "metadata",
        "Build result metadata (JSON: containerimage.digest, containerimage.config.digest, image.name), as docker/build-push-action names it; empty when nothing was built",
    ),
    (
        "registry",
        "Registry host of the image (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com), as amazon-ecr-login names it",
    ),
    (
        "task-definition-arn",
        "ARN of the registered task definition",
    ),
    ("previous-task-definition-arn", "ARN the service ran before"),
    (
        "previous-image",
        "Image the Kubernetes Deployment's container ran before",
    ),
    (
        "deployment-id",
        "ECS or CodeDeploy deployment id, or the Kubernetes Deployment's new revision",
    ),
    (
        "deployment-kind",
        "rolling, codedeploy, ecs-blue-green or kubernetes",
    ),
    (
        "task-definition",
        "Path of the rendered task definition file (under RUNNER_TEMP, else .ecs-deploy/ in the workspace), as amazon-ecs-render-task-definition names it",
    ),
    (
        "codedeploy-deployment-id",
        "CodeDeploy deployment id when the service deployed through CodeDeploy, as amazon-ecs-deploy-task-definition names it",
    ),
    (
        "run-task-arn",
        "ARNs of the one-off tasks started (run-task-command), a JSON array as amazon-ecs-deploy-task-definition writes it; empty when none ran",
    ),
    (
        "changes",
        "The commits the deploy shipped (on a rollback: took back out), newest first, a JSON array of {sha, subject, author, pr, url}; empty when they could not be read (needs github-token)",
    ),
    (
        "status",
        "succeeded, failed, rolled-back, cancelled or skipped",
    ),
    (
        "verification",
        "passed, failed or skipped: what the verification gate (verify-url, verify-alarms) decided",
    ),
    ("duration-seconds", "Wall time of the run"),
    (
        "slack-message-ts",
        "ts of the Slack message (bot token mode)",
    ),
    ("results", "JSON array, one object per app"),
    (
        "ok",
        "true when the outcome message reached Slack, false when Slack refused it or could not be reached; empty without Slack (slack-github-action's output)",
    ),
    (
        "response",
        "Slack's answer to the outcome message as JSON, {\"ok\":true} or {\"ok\":false,\"error\":...} (slack-github-action's output)",
    ),
    (
        "time",
        "Unix time the outcome message was sent to Slack (slack-github-action's output)",
    ),
    (
        "channel_id",
        "The Slack channel of the bot token's message (slack-github-action's output)",
    ),
    (
        "thread_ts",
        "ts of the bot's message a failure's thread replies to (slack-github-action's output)",
    ),
    (
        "ts",
        "ts of the Slack message (bot token), as slack-github-action names it; the same as slack-message-ts",
    ),
    (
        "matrix",
        "The apps this run deploys (or would, with plan-only) for strategy.matrix: JSON {\"include\":[{\"app\":...,\"version\":...,\"cluster\":...,\"service\":...}]}",
    ),
];

/// Context variables the runner gives a container action, with the flag that stands in for each.
pub const CONTEXT: &[(&str, &str)] = &[
    ("event", "GITHUB_EVENT_PATH"),
    ("event-name", "GITHUB_EVENT_NAME"),
    ("repository", "GITHUB_REPOSITORY"),
    ("sha", "GITHUB_SHA"),
    ("ref", "GITHUB_REF"),
    ("run-id", "GITHUB_RUN_ID"),
    ("run-attempt", "GITHUB_RUN_ATTEMPT"),
    ("server-url", "GITHUB_SERVER_URL"),
    ("actor", "GITHUB_ACTOR"),
    ("workflow", "GITHUB_WORKFLOW"),
    ("job", "GITHUB_JOB"),
    ("output-file", "GITHUB_OUTPUT"),
    ("summary-file", "GITHUB_STEP_SUMMARY"),
    ("workspace", "GITHUB_WORKSPACE"),
    // Where the rendered task definition is written (the `task-definition` output).
    ("runner-temp", "RUNNER_TEMP"),
    // Where the reporters send: the runner sets GITHUB_API_URL (GitHub Enterprise has its own);
    // ECS_DEPLOY_SLACK_API_URL points Slack's Web API elsewhere (tests, proxies).
    ("api-url", "GITHUB_API_URL"),
    ("slack-api-url", "ECS_DEPLOY_SLACK_API_URL"),
    // The Kubernetes API at this URL instead of the EKS cluster's endpoint (tests, proxies).
    ("kubernetes-api-url", "ECS_DEPLOY_KUBERNETES_API_URL"),
];

/// The env variable the runner uses for an input: `INPUT_` + upper-cased name, hyphens kept.
pub fn input_env_name(name: &str) -> String {
    format!("INPUT_{}", name.to_uppercase().replace(' ', "_"))
}

/// Looks up an input's spec by name.
pub fn input_spec(name: &str) -> Option<&'static InputSpec> {
    INPUTS.iter().find(|s| s.name == name)
}
