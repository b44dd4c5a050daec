//! The Kubernetes target through the binary: a merged release rolled out to a Deployment, with
//! progress, rollback and the manifest commit. moto plays eks:DescribeCluster; the Kubernetes
//! API is the scripted one of `support/kube_api.rs` (no API server can be installed here), driven
//! by the real `kube` client over HTTP on 127.0.0.1; the GitHub contents API and Discord are
//! recording servers (wiremock). Images are given with `image` (built elsewhere): the image step
//! has its own tests, this module is about the deploy. Three waits are driven in-process instead
//! of through the binary, because the binary's own clock cannot be moved: a rollout in progress
//! that outlasts `wait-for-minutes` (at least a minute; the engine's timing is given 2 s), a cancel
//! during that wait, and the EKS token's renewal after ten minutes (the connection's clock is
//! injected and moved by the test).

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::kube_api::{KubeApi, Setup};
use crate::support::{
    BinOutput, BinRun, MotoServer, aws_env, fixture, recording_server, sdk_config,
};

pub(crate) const SHA: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678";
pub(crate) const OLD_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.2";
pub(crate) const NEW_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3";
pub(crate) const GITHUB_TOKEN: &str = "githubTOKENsecret42";

pub(crate) const MANIFEST: &str = "# deployed by CI: the image below is bumped on every release\n\
apiVersion: apps/v1\n\
kind: Deployment\n\
metadata:\n  name: web1\n  namespace: shop\n\
spec:\n  replicas: 3\n  template:\n    metadata:\n      labels: {app: web1}\n    spec:\n      containers:\n        - name: app\n          image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.2 # bumped\n          ports:\n            - containerPort: 8000\n\
---\n\
apiVersion: v1\n\
kind: Service\n\
metadata:\n  name: web1\n\
spec:\n  ports: [{port: 80, targetPort: 8000}]\n";

/// A workspace holding apps/web1/package.json (version 1.2.3) and deploy/k8s.yaml.
pub(crate) fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp workspace");
    let ws = dir.path().canonicalize().expect("canonical workspace");
    std::fs::create_dir_all(ws.join("apps/web1")).expect("apps/web1");
    std::fs::copy(
        fixture("monorepo/apps/web1/package.json"),
        ws.join("apps/web1/package.json"),
    )
    .expect("package.json");
    std::fs::create_dir_all(ws.join("deploy")).expect("deploy/");
    std::fs::write(ws.join("deploy/k8s.yaml"), MANIFEST).expect("manifest");
    (dir, ws)
}

/// A merged `release/web1` PR in `workspace`, AWS at `moto`, with `inputs` as `INPUT_*`.
fn run(workspace: &Path, moto: &str, inputs: &[(&str, &str)]) -> BinOutput {
    run_with(workspace, moto, inputs, &[])
}

/// [`run`] with extra environment variables.
fn run_with(
    workspace: &Path,
    moto: &str,
    inputs: &[(&str, &str)],
    env: &[(&str, &str)],
) -> BinOutput {
    bin_run(workspace, moto, inputs, env).run()
}

/// The binary set up as [`run_with`] runs it, not started yet.
fn bin_run(workspace: &Path, moto: &str, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> BinRun {
    let mut r = BinRun::new()
        .envs(aws_env(moto))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env(
            "GITHUB_EVENT_PATH",
            fixture("events/pr-merged-release-web1.json"),
        )
        .env("INPUT_IMAGE", NEW_IMAGE)
        .env("INPUT_KUBERNETES-NAMESPACE", "shop");
    for (k, v) in inputs {
        r = r.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    for (k, v) in env {
        r = r.env(k, v);
    }
    r
}

/// EKS cluster `name` in moto (DescribeCluster gives its endpoint and CA).
pub(crate) async fn eks_cluster(moto: &MotoServer, name: &str) {
    let eks = aws_sdk_eks::Client::new(&sdk_config(&moto.endpoint()));
    eks.create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .expect("moto creates the EKS cluster");
}

/// The GitHub contents API's answer to the manifest commit, shaped as GitHub documents it.
pub(crate) async fn mount_manifest_commit(github: &wiremock::MockServer) {
    Mock::given(method("PUT"))
        .and(path("/repos/acme/shop/contents/deploy/k8s.yaml"))
        // The contents API's answer, shaped as GitHub documents it.
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "content": {
                "name": "k8s.yaml", "path": "deploy/k8s.yaml",
                "sha": "95b966ae1c166bd92f8ae7d1c313e738c731dfc3", "size": 420, "type": "file",
                "url": "https://api.github.com/repos/acme/shop/contents/deploy/k8s.yaml",
                "html_url": "https://github.com/acme/shop/blob/main/deploy/k8s.yaml",
                "git_url": "https://api.github.com/repos/acme/shop/git/blobs/95b966ae1c166bd92f8ae7d1c313e738c731dfc3",
                "download_url": "https://raw.githubusercontent.com/acme/shop/main/deploy/k8s.yaml",
                "_links": {
                    "self": "https://api.github.com/repos/acme/shop/contents/deploy/k8s.yaml",
                    "git": "https://api.github.com/repos/acme/shop/git/blobs/95b966ae1c166bd92f8ae7d1c313e738c731dfc3",
                    "html": "https://github.com/acme/shop/blob/main/deploy/k8s.yaml"
                }
            },
            "commit": {
                "sha": "7638417db6d59f3c431d3e1f261cc637155684cd",
                "node_id": "MDY6Q29tbWl0NzYzODQxN2RiNmQ1OWYzYzQzMWQzZTFmMjYxY2M2MzcxNTU2ODRjZA==",
                "url": "https://api.github.com/repos/acme/shop/git/commits/7638417db6d59f3c431d3e1f261cc637155684cd",
                "html_url": "https://github.com/acme/shop/git/commit/7638417db6d59f3c431d3e1f261cc637155684cd",
                "author": {"date": "2014-11-07T22:01:45Z", "name": "ecs-deploy", "email": "ci@example.com"},
                "committer": {"date": "2014-11-07T22:01:45Z", "name": "ecs-deploy", "email": "ci@example.com"},
                "message": "deploy: web1 1.2.3 [skip ci]"
            }
        })))
        .mount(github)
        .await;
}

/// A successful run that rolled `NEW_IMAGE` out over `OLD_IMAGE` as revision 2: its outputs and
/// its last progress line.
pub(crate) fn assert_rolled_out(out: &BinOutput) {
    out.assert_success();
    assert_eq!(out.output("deployment-kind"), Some("kubernetes"), "{out}");
    assert_eq!(out.output("deployment-id"), Some("2"), "{out}");
    assert_eq!(out.output("previous-image"), Some(OLD_IMAGE), "{out}");
    assert_eq!(out.output("image"), Some(NEW_IMAGE), "{out}");
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    assert!(
        out.stdout
            .contains("3/3 updated, 3 ready, 3 available (done)"),
        "{out}"
    );
}

/// The presigned STS URL an `Authorization: Bearer k8s-aws-v1.…` header carries, checked: a
/// GetCallerIdentity of us-east-1 whose signed headers bind it to the cluster.
pub(crate) fn presigned_url(authorization: Option<&str>) -> String {
    let token = authorization
        .and_then(|a| a.strip_prefix("Bearer k8s-aws-v1."))
        .unwrap_or_else(|| panic!("EKS bearer token: {authorization:?}"));
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .expect("base64url"),
    )
    .expect("utf-8");
    assert!(
        url.starts_with("https://sts.us-east-1.amazonaws.com/?")
            && url.contains("Action=GetCallerIdentity")
            && url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id")
            && url.contains("X-Amz-Expires=60")
            && url.contains("X-Amz-Signature="),
        "{url}"
    );
    url
}

/// The one manifest commit sent: the file's blob sha as checked out, only the image changed,
/// with the token.
pub(crate) async fn assert_manifest_commit(github: &wiremock::MockServer) {
    let blob = ecs_deploy::deploy::kubernetes::manifest::blob_sha(MANIFEST.as_bytes());
    let puts: Vec<_> = github
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .collect();
    assert_eq!(puts.len(), 1, "one contents commit");
    let body: Value = serde_json::from_slice(&puts[0].body).expect("JSON body");
    assert_eq!(body["sha"], blob.as_str());
    assert_eq!(body["branch"], "main");
    assert_eq!(body["message"], "deploy: web1 1.2.3 [skip ci]");
    let content = base64::engine::general_purpose::STANDARD
        .decode(body["content"].as_str().unwrap_or_default())
        .expect("base64 content");
    assert_eq!(
        String::from_utf8(content).expect("utf-8"),
        MANIFEST.replace("web1:v1.2.2 # bumped", "web1:v1.2.3 # bumped")
    );
    assert_eq!(
        puts[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );
}

/// A merged `release/web1` PR deployed to `api` through a kubeconfig (token `kubeTOKEN`), no
/// AWS, with `inputs`.
fn run_kubeconfig(api: &KubeApi, inputs: &[(&str, &str)]) -> BinOutput {
    let (dir, ws) = workspace();
    let kubeconfig = api.kubeconfig(dir.path(), "kubeTOKEN");
    let mut all = vec![("kubeconfig", kubeconfig.to_str().expect("utf-8 path"))];
    all.extend_from_slice(inputs);
    run(&ws, "http://127.0.0.1:9", &all)
}

/// The image of container `app` in the Deployment as the scripted server holds it.
fn live_image(api: &KubeApi) -> String {
    api.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The one `::error::` line of a failed run.
fn the_error(out: &BinOutput) -> String {
    let errors: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 1, "one ::error:: line:\n{out}");
    errors[0].to_string()
}

/// The pod template a rollback's JSON patch puts back (its `replace` of `/spec/template`).
fn restored_template(patch: &Value) -> Value {
    patch
        .as_array()
        .and_then(|ops| {
            ops.iter()
                .find(|op| op["op"] == "replace" && op["path"] == "/spec/template")
        })
        .map(|op| op["value"].clone())
        .unwrap_or_else(|| panic!("a JSON patch replacing /spec/template: {patch}"))
}

/// The change cause a rollback's JSON patch records.
fn change_cause_of(patch: &Value) -> String {
    patch
        .as_array()
        .and_then(|ops| {
            ops.iter()
                .find(|op| op["path"] == "/metadata/annotations/kubernetes.io~1change-cause")
        })
        .and_then(|op| op["value"].as_str())
        .unwrap_or_else(|| panic!("a change cause in {patch}"))
        .to_string()
}

/// The first PATCH: the image of container `app` and the change cause naming version and run.
fn assert_image_patch(patch: &Value, image: &str) {
    assert_eq!(
        patch["spec"]["template"]["spec"]["containers"],
        serde_json::json!([{"name": "app", "image": image}]),
        "{patch}"
    );
    assert_eq!(
        patch["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "ecs-deploy: web1 1.2.3 (https://github.com/acme/shop/actions/runs/4242)",
        "{patch}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merged_release_rolls_out_to_an_eks_deployment_commits_the_manifest_and_tells_discord() {
    let moto = MotoServer::start();
    eks_cluster(&moto, "shop").await;
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let github = recording_server().await;
    let (_dir, ws) = workspace();
    mount_manifest_commit(&github).await;
    let discord = format!("{}/api/webhooks/1/discordHOOKsecret42", github.uri());
    let out = run_with(
        &ws,
        &moto.endpoint(),
        &[
            ("eks-cluster", "shop"),
            ("kubernetes-manifest", "deploy/k8s.yaml"),
            ("github-token", GITHUB_TOKEN),
            ("discord-webhook-url", &discord),
        ],
        &[
            ("ECS_DEPLOY_KUBERNETES_API_URL", &api.url()),
            ("GITHUB_API_URL", &github.uri()),
        ],
    );
    assert_rolled_out(&out);
    assert_eq!(live_image(&api), NEW_IMAGE);
    assert!(
        out.stdout
            .contains("manifest deploy/k8s.yaml committed to main (7638417db6d5)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("deploy/k8s.yaml")).expect("manifest"),
        MANIFEST.replace("web1:v1.2.2 # bumped", "web1:v1.2.3 # bumped"),
        "the workspace follows the commit"
    );
    let patches = api.patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_image_patch(&patches[0], NEW_IMAGE);
    // Every request carried the EKS token: a presigned GetCallerIdentity bound to the cluster.
    for r in api.requests() {
        presigned_url(r.authorization.as_deref());
    }
    assert_manifest_commit(&github).await;
    let discord =
        crate::support::received_json(&github, "/api/webhooks/1/discordHOOKsecret42").await;
    assert_eq!(discord.len(), 1, "one Discord message: {discord:?}");
    assert!(discord[0].to_string().contains("web1"), "{}", discord[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_looping_image_is_rolled_back_and_the_previous_template_is_available_again() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    // A canary Deployment with the same labels has its own revision 1 (listed last): not part
    // of web1's history, so not what web1 goes back to.
    api.add_foreign_replica_set(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:canary",
        1,
    );
    let crash = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3-crash";
    let out = run_kubeconfig(&api, &[("image", crash)]);
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    assert_eq!(out.output("deployment-kind"), Some("kubernetes"), "{out}");
    assert!(out.stdout.contains("CrashLoopBackOff, 3 restarts"), "{out}");
    assert!(
        out.stdout.contains("event BackOff on pod web1-"),
        "the pod's events are shown: {out}"
    );
    assert!(the_error(&out).contains("a new pod cannot start"), "{out}");
    let patches = api.patches();
    assert_eq!(
        patches.len(),
        2,
        "the image, then the rollback: {patches:?}"
    );
    assert_image_patch(&patches[0], crash);
    // The rollback PATCH is revision 1's ReplicaSet template, read at undo time, whole
    // (a JSON patch replacing /spec/template), without the controller's pod-template-hash label.
    assert_eq!(
        restored_template(&patches[1]),
        serde_json::json!({
            "metadata": {"labels": {"app": "web1"}},
            "spec": {"containers": [{"name": "app", "image": OLD_IMAGE,
                                     "ports": [{"containerPort": 8000, "protocol": "TCP"}]}]}
        }),
        "{}",
        patches[1]
    );
    // That ReplicaSet (revision 3 now that it runs again) holds the same template, hash aside.
    let mut rs = api.replica_set_template(3);
    assert!(
        rs["metadata"]["labels"]["pod-template-hash"].is_string(),
        "{rs}"
    );
    rs["metadata"]["labels"]
        .as_object_mut()
        .map(|l| l.remove("pod-template-hash"));
    assert_eq!(restored_template(&patches[1]), rs);
    assert!(
        change_cause_of(&patches[1]).contains("rollback of web1 1.2.3 to revision 1"),
        "{}",
        patches[1]
    );
    // The ReplicaSets were read after the failure, before the rollback PATCH.
    let requests = api.requests();
    let patch_at: Vec<usize> = (0..requests.len())
        .filter(|&i| requests[i].method == "PATCH")
        .collect();
    assert!(
        requests[patch_at[0]..patch_at[1]]
            .iter()
            .rev()
            .take(2)
            .any(|r| r
                .path
                .starts_with("/apis/apps/v1/namespaces/shop/replicasets")),
        "{requests:?}"
    );
    assert!(
        out.stdout
            .contains("rolling back to revision 1 (ReplicaSet web1-"),
        "{out}"
    );
    // Verified available again, on the ReplicaSet of revision 1 (now revision 3).
    let d = api.deployment();
    assert_eq!(live_image(&api), OLD_IMAGE);
    assert_eq!(d["status"]["availableReplicas"], 3, "{d}");
    assert_eq!(d["status"]["updatedReplicas"], 3, "{d}");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert!(
        out.stdout
            .contains("rolled back: Deployment shop/web1 back on"),
        "{out}"
    );
    assert!(
        api.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer kubeTOKEN")),
        "the kubeconfig's token is sent"
    );
}

/// Words of the ECS paths that a Kubernetes run must never print.
const ECS_WORDS: &[&str] = &["task definition", "console", "ECS service", "ecs-svc"];

/// The line of `out` that contains `needle`, and every line after it.
fn from_line<'a>(out: &'a BinOutput, needle: &str) -> &'a str {
    let at = out
        .stdout
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in:\n{out}"));
    &out.stdout[at..]
}

// The cluster's timing is what fooled the verdict (issue 23): after the undo PATCH a real
// controller observes the new generation only a moment later, and the failed ReplicaSet's
// crash-looping pod lives on for seconds after that. No API server can run on this machine, so
// the scripted one plays that timing (observe_after, terminate_after) over real HTTP.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_looping_release_is_rolled_back_while_its_pod_still_terminates_and_the_controller_lags()
 {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    api.observe_after(std::time::Duration::from_millis(1500));
    api.terminate_after(std::time::Duration::from_secs(4));
    // The failing revision also carries someone's new env var and sidecar.
    api.amend_on_patch(("FEATURE_FLAGS", "beta"), "metrics-agent");
    let out = run_kubeconfig(&api, &[("image", CRASH)]);
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    let e = the_error(&out);
    assert!(
        e.contains("a new pod cannot start") && e.contains("CrashLoopBackOff"),
        "{e}"
    );
    // The failed revision had the env var and the container; the one before had neither.
    let failed = api.replica_set_template(2);
    assert_eq!(
        failed["spec"]["containers"][0]["env"],
        serde_json::json!([{"name": "FEATURE_FLAGS", "value": "beta"}]),
        "{failed}"
    );
    assert_eq!(failed["spec"]["containers"][1]["name"], "metrics-agent");
    // The rollback is a JSON patch (as kubectl rollout undo sends) whose template is the
    // previous ReplicaSet's, pod-template-hash aside: no env var, no extra container.
    let patches = api.patch_requests();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert_eq!(
        patches[0].content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    assert_eq!(
        patches[1].content_type.as_deref(),
        Some("application/json-patch+json")
    );
    let mut previous = api.replica_set_template(3);
    previous["metadata"]["labels"]
        .as_object_mut()
        .map(|l| l.remove("pod-template-hash"));
    assert_eq!(
        patches[1].body,
        serde_json::json!([
            {"op": "replace", "path": "/spec/template", "value": previous},
            {"op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause",
             "value": "ecs-deploy: rollback of web1 1.2.3 to revision 1"}
        ]),
        "{}",
        patches[1].body
    );
    let template = &api.deployment()["spec"]["template"];
    assert_eq!(
        template, &previous,
        "the Deployment's template is revision 1's exactly"
    );
    assert!(
        template["spec"]["containers"][0].get("env").is_none(),
        "{template}"
    );
    assert_eq!(
        template["spec"]["containers"].as_array().map(Vec::len),
        Some(1),
        "{template}"
    );
    // The rollback was followed through the lag and the terminating pod, not judged by them.
    let rollback = from_line(&out, "rolling back to revision 1");
    assert!(
        rollback.contains("(waiting for the deployment spec update to be observed)"),
        "{out}"
    );
    assert!(
        rollback.contains("1 old replicas pending termination"),
        "{out}"
    );
    assert!(
        rollback.contains("rolled back: Deployment shop/web1 back on"),
        "{out}"
    );
    assert_eq!(api.deployment()["status"]["availableReplicas"], 3);
    for word in ECS_WORDS {
        assert!(
            !out.stdout.contains(word),
            "{word:?} in a Kubernetes run:\n{out}"
        );
    }
    assert!(
        out.summary.contains("Kubernetes deploy: rolled-back")
            && !out.summary.contains("ECS")
            && !out.summary.contains("Task definition"),
        "{}",
        out.summary
    );
}

// A restored revision that cannot start again (its Secret deleted since; the Recreate strategy
// left none of its pods running) is played by the scripted API: no cluster on this machine.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_whose_smoke_test_fails_is_undone_and_says_why() {
    // The rollout itself succeeds on the scripted API; the app then answers its smoke test
    // with 500 (a local server: no cluster ingress exists here), so the gate after the rollout
    // fails and the rollout is undone as a failed one would be.
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let smoke = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&smoke)
        .await;
    let url = format!("{}/health", smoke.uri());
    let out = run_kubeconfig(
        &api,
        &[
            ("image", NEW_IMAGE),
            ("verify-url", &url),
            ("verify-requests", "3"),
        ],
    );
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    assert_eq!(out.output("verification"), Some("failed"), "{out}");
    let probes = smoke.received_requests().await.unwrap_or_default();
    assert_eq!(probes.len(), 3, "each probe sent once: {probes:?}");
    let patches = api.patches();
    assert_eq!(patches.len(), 2, "the image, then the undo: {patches:?}");
    assert_image_patch(&patches[0], NEW_IMAGE);
    assert_eq!(
        restored_template(&patches[1])["spec"]["containers"][0]["image"],
        OLD_IMAGE,
        "{}",
        patches[1]
    );
    assert_eq!(live_image(&api), OLD_IMAGE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_whose_restored_replica_set_cannot_start_ends_failed_in_kubernetes_words() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    api.observe_after(std::time::Duration::from_millis(1500));
    api.undo_cannot_start();
    let out = run_kubeconfig(&api, &[("image", CRASH)]);
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("failed"), "{out}");
    let e = the_error(&out);
    for part in [
        "CrashLoopBackOff",
        "and the rollback failed too",
        "a pod of the restored ReplicaSet cannot start",
        "CreateContainerConfigError",
        "secret \"web1-env\" not found",
        "kubectl rollout history deployment/web1 -n shop",
        "kubectl rollout undo deployment/web1 -n shop --to-revision=N",
    ] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    assert_eq!(api.patches().len(), 2, "{:?}", api.patches());
    assert_eq!(live_image(&api), OLD_IMAGE, "the template was put back");
    for word in ECS_WORDS {
        assert!(
            !out.stdout.contains(word),
            "{word:?} in a Kubernetes run:\n{out}"
        );
    }
}

// An API server that answers 500 for a moment (etcd lagging) is played by the scripted one: no
// cluster on this machine.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_unavailable_for_a_moment_is_borne_and_the_rollout_still_counts() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    api.unavailable_after_patch(2);
    let out = run_kubeconfig(&api, &[]);
    out.assert_success();
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    assert_eq!(
        out.stdout
            .matches("web1: could not read Deployment shop/web1, trying again")
            .count(),
        2,
        "{out}"
    );
    assert!(
        out.stdout.contains("etcdserver: request timed out"),
        "{out}"
    );
    assert_eq!(api.patches().len(), 1);
    assert_eq!(live_image(&api), NEW_IMAGE);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_unavailable_four_reads_in_a_row_ends_the_wait_saying_where_to_look() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    api.unavailable_after_patch(4);
    let out = run_kubeconfig(&api, &[]);
    out.assert_code(1);
    let e = the_error(&out);
    assert!(
        e.contains("Deployment shop/web1 could not be read 4 times in a row")
            && e.contains(
                "it may still be running: look at kubectl rollout status deployment/web1 -n shop"
            ),
        "{e}"
    );
    // Unknown is not failed: nothing rolled back over a rollout that may be fine.
    assert_eq!(api.patches().len(), 1, "{:?}", api.patches());
    for word in ECS_WORDS {
        assert!(
            !out.stdout.contains(word),
            "{word:?} in a Kubernetes run:\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_past_its_progress_deadline_fails_and_is_rolled_back() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let slow = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3-slow";
    let out = run_kubeconfig(&api, &[("image", slow)]);
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    assert!(
        the_error(&out).contains("exceeded its progress deadline (600 s)"),
        "{out}"
    );
    assert_eq!(api.patches().len(), 2);
    assert_eq!(live_image(&api), OLD_IMAGE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_overtaken_by_another_change_fails_and_leaves_the_newer_change() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let other = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:hotfix";
    api.overtake_after(2, other);
    let out = run_kubeconfig(&api, &[]);
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("failed"), "{out}");
    let e = the_error(&out);
    assert!(
        e.contains("changed by someone else") && e.contains("hotfix"),
        "{e}"
    );
    assert_eq!(api.patches().len(), 1, "no rollback over the newer change");
    assert_eq!(live_image(&api), other);
}

/// A bad setup is refused with exit 1 before anything is written to the cluster.
async fn refused(setup: Setup, inputs: &[(&str, &str)], expect: &[&str]) {
    let api = KubeApi::start(setup).await;
    let out = run_kubeconfig(&api, inputs);
    out.assert_code(1);
    let e = the_error(&out);
    for part in expect {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    assert!(!api.wrote(), "nothing written: {:?}", api.requests());
    assert_eq!(out.output("status"), Some("failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_that_does_not_exist_is_refused_before_any_write() {
    let mut s = Setup::new("web1", OLD_IMAGE);
    s.exists = false;
    refused(
        s,
        &[],
        &["Deployment shop/web1", "not found", "kubernetes-deployment"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_is_not_there_is_refused_before_any_write() {
    refused(
        Setup::new("web1", OLD_IMAGE),
        &[("container-name", "web")],
        &["has no container web", "its containers: app"],
    )
    .await;
    let mut s = Setup::new("web1", OLD_IMAGE);
    s.extra_containers = vec!["envoy".into()];
    refused(
        s,
        &[],
        &["several containers (app, envoy)", "container-name"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_deployment_is_refused_before_any_write() {
    let mut s = Setup::new("web1", OLD_IMAGE);
    s.paused = true;
    refused(
        s,
        &[],
        &[
            "is paused",
            "kubectl rollout resume deployment/web1 -n shop",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_without_the_container_is_refused_before_any_write() {
    let mut s = Setup::new("web2", OLD_IMAGE);
    s.name = "web2".into();
    refused(
        s,
        &[
            ("kubernetes-deployment", "web2"),
            ("kubernetes-manifest", "deploy/k8s.yaml"),
        ],
        &[
            "manifest deploy/k8s.yaml",
            "no Deployment web2 with a container app",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_and_kubernetes_inputs_together_are_refused_before_any_request() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let (_dir, ws) = workspace();
    let out = run(
        &ws,
        "http://127.0.0.1:9",
        &[("eks-cluster", "shop"), ("service", "web1")],
    );
    out.assert_code(1);
    let e = the_error(&out);
    assert!(
        e.contains("eks-cluster deploy(s) to a Kubernetes Deployment") && e.contains("`service`"),
        "{e}"
    );
    assert!(api.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_pulled_fails_at_once_and_is_rolled_back() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let missing = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3-missing";
    let out = run_kubeconfig(&api, &[("image", missing)]);
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    let e = the_error(&out);
    assert!(
        e.contains("ImagePullBackOff") && e.contains("Back-off pulling image"),
        "{e}"
    );
    // Failed on the first look at the new pod, long before the progress deadline.
    assert!(!out.stdout.contains("progress deadline"), "{out}");
    assert_eq!(live_image(&api), OLD_IMAGE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_changed_on_the_branch_is_not_overwritten_and_the_deploy_still_counts() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let github = recording_server().await;
    Mock::given(method("PUT"))
        .and(path("/repos/acme/shop/contents/deploy/k8s.yaml"))
        .respond_with(ResponseTemplate::new(409).set_body_json(serde_json::json!({
            "message": "deploy/k8s.yaml does not match 5c3a1f0e2b7d9c8a6f4e3d2c1b0a9f8e7d6c5b4a",
            "documentation_url": "https://docs.github.com/rest/repos/contents#create-or-update-file-contents",
            "status": "409"
        })))
        .mount(&github)
        .await;
    let (dir, ws) = workspace();
    let kubeconfig = api.kubeconfig(dir.path(), "kubeTOKEN");
    let out = run_with(
        &ws,
        "http://127.0.0.1:9",
        &[
            ("kubeconfig", kubeconfig.to_str().expect("utf-8 path")),
            ("kubernetes-manifest", "deploy/k8s.yaml"),
            ("github-token", GITHUB_TOKEN),
        ],
        &[("GITHUB_API_URL", &github.uri())],
    );
    out.assert_success();
    assert_eq!(out.output("status"), Some("succeeded"), "{out}");
    let warning = out
        .stdout
        .lines()
        .find(|l| l.starts_with("::warning") && l.contains("not committed"))
        .unwrap_or_else(|| panic!("a warning about the manifest:\n{out}"));
    assert!(
        warning.contains("refused") && warning.contains("not overwritten"),
        "{warning}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("deploy/k8s.yaml")).expect("manifest"),
        MANIFEST,
        "the workspace keeps the checked-out file"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_shows_the_image_change_and_writes_nothing() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    let (dir, ws) = workspace();
    let kubeconfig = api.kubeconfig(dir.path(), "kubeTOKEN");
    let out = run(
        &ws,
        "http://127.0.0.1:9",
        &[
            ("kubeconfig", kubeconfig.to_str().expect("utf-8 path")),
            ("kubernetes-manifest", "deploy/k8s.yaml"),
            ("dry-run", "true"),
        ],
    );
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "Deployment shop/web1: container app would go from {OLD_IMAGE} to {NEW_IMAGE}, and deploy/k8s.yaml would be committed"
        )),
        "{out}"
    );
    assert_eq!(out.output("deployment-kind"), Some("kubernetes"), "{out}");
    assert!(!api.wrote(), "{:?}", api.requests());
}

const HOTFIX: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.2-hotfix";
const CRASH: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web1:v1.2.3-crash";

#[tokio::test(flavor = "multi_thread")]
async fn the_rollback_goes_to_the_previous_replica_set_even_when_the_deployment_changed_after_the_preflight()
 {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    // Between the preflight (which saw v1.2.2) and our patch, someone rolled out a hotfix:
    // revision 2. Ours (crash-looping) is revision 3; kubectl rollout undo would go back to 2.
    api.change_before_patch(HOTFIX);
    let out = run_kubeconfig(&api, &[("image", CRASH)]);
    out.assert_code(1);
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    let patches = api.patches();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert_image_patch(&patches[0], CRASH);
    assert_eq!(
        restored_template(&patches[1])["spec"]["containers"][0]["image"],
        HOTFIX,
        "the ReplicaSet of revision 2 wins over what the preflight read: {}",
        patches[1]
    );
    assert_eq!(live_image(&api), HOTFIX);
    let d = api.deployment();
    assert_eq!(d["status"]["availableReplicas"], 3, "{d}");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
    assert!(
        out.stdout
            .contains("rolling back to revision 2 (ReplicaSet web1-")
            && out
                .stdout
                .contains(&format!("the preflight saw {OLD_IMAGE}")),
        "{out}"
    );
    assert!(
        out.stdout
            .contains(&format!("back on {HOTFIX} (revision 2, now revision 4)")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_already_in_progress_at_start_is_waited_for_then_ours_is_patched() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    // Someone's rollout of the hotfix is under way (not even observed yet) when the run starts.
    api.set_image(HOTFIX);
    let out = run_kubeconfig(&api, &[]);
    out.assert_success();
    assert!(
        out.stdout
            .contains("a rollout of Deployment shop/web1 is already in progress")
            && out
                .stdout
                .contains("waiting for it to end (up to 30 min) before patching ours"),
        "{out}"
    );
    assert!(
        out.stdout.contains("web1: in progress: 1/3 updated"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("the rollout already in progress ended after"),
        "{out}"
    );
    // Ours went on top of the finished hotfix: revision 3, and the hotfix is what it replaced.
    assert_eq!(out.output("previous-image"), Some(HOTFIX), "{out}");
    assert_eq!(out.output("deployment-id"), Some("3"), "{out}");
    assert_eq!(live_image(&api), NEW_IMAGE);
    // The one PATCH came only after a look saw the hotfix complete.
    let requests = api.requests();
    let first_patch = requests
        .iter()
        .position(|r| r.method == "PATCH")
        .expect("a PATCH");
    assert!(
        requests[..first_patch]
            .iter()
            .filter(|r| r.path.ends_with("/deployments/web1"))
            .count()
            >= 4,
        "{requests:?}"
    );
    assert_eq!(api.patches().len(), 1);
}

/// An app plan for Deployment web1 in namespace shop, reached with `kubeconfig`.
fn kube_plan(kubeconfig: &Path) -> ecs_deploy::plan::AppPlan {
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    let inputs = [("kubeconfig", kubeconfig), ("kubernetes-namespace", "shop")];
    crate::support::app_plan_with("web1", &inputs, NEW_IMAGE)
}

/// A rollout of the hotfix in progress that never moves (the controller is held), and a
/// deploy of web1 preflighted against it: the API, the kubeconfig's dir, the plan, the check.
async fn stuck_rollout_in_progress() -> (
    KubeApi,
    tempfile::TempDir,
    ecs_deploy::plan::AppPlan,
    ecs_deploy::deploy::kubernetes::KubeChecked,
) {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    api.set_image(HOTFIX);
    api.hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = kube_plan(&api.kubeconfig(dir.path(), "kubeTOKEN"));
    // No AWS: a kubeconfig cluster needs none.
    let aws = ecs_deploy::aws::Aws::from_config(&sdk_config("http://127.0.0.1:9"));
    let checked = ecs_deploy::deploy::kubernetes::check(&aws, &plan)
        .await
        .expect("preflight");
    assert!(
        checked
            .notes
            .iter()
            .any(|n| n.contains("already in progress")),
        "{:?}",
        checked.notes
    );
    (api, dir, plan, checked)
}

/// wait-for-minutes is at least a minute; the engine's timing is shortened to 2 s here.
const SHORT: ecs_deploy::deploy::kubernetes::Timing = ecs_deploy::deploy::kubernetes::Timing {
    timeout: std::time::Duration::from_secs(2),
    rollback_timeout: std::time::Duration::from_secs(2),
    queue_limit: std::time::Duration::from_secs(2),
    max_delay: std::time::Duration::MAX,
    cadence: ecs_deploy::deploy::kubernetes::Cadence::Every(std::time::Duration::from_millis(200)),
    poller: None,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_in_progress_that_does_not_end_in_time_fails_with_nothing_patched() {
    let (api, _dir, plan, checked) = stuck_rollout_in_progress().await;
    let mut report = ecs_deploy::outcome::Outcome::default();
    let started = std::time::Instant::now();
    let err = ecs_deploy::deploy::kubernetes::deploy_with(
        &checked,
        &plan,
        NEW_IMAGE,
        &tokio_util::sync::CancellationToken::new(),
        &mut report,
        SHORT,
    )
    .await
    .expect_err("the rollout in progress never ends")
    .to_string();
    assert!(
        err.contains("Deployment shop/web1")
            && err.contains("a rollout already in progress (waiting for the deployment spec update to be observed) had not ended after 2 s")
            && err.contains("nothing was patched"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(!api.wrote(), "{:?}", api.requests());
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.contains("waiting for it to end (up to 2 s)")),
        "{:?}",
        report.steps
    );
    // It looked more than once while it waited.
    assert!(api.requests().len() >= 5, "{:?}", api.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_while_waiting_for_a_rollout_in_progress_patches_nothing() {
    let (api, _dir, plan, checked) = stuck_rollout_in_progress().await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        c.cancel();
    });
    let mut report = ecs_deploy::outcome::Outcome::default();
    let err = ecs_deploy::deploy::kubernetes::deploy_with(
        &checked,
        &plan,
        NEW_IMAGE,
        &cancel,
        &mut report,
        ecs_deploy::deploy::kubernetes::Timing {
            timeout: std::time::Duration::from_secs(60),
            ..SHORT
        },
    )
    .await
    .expect_err("cancelled");
    assert!(
        matches!(err, ecs_deploy::error::Error::Cancelled { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was patched"), "{err}");
    assert!(!api.wrote(), "{:?}", api.requests());
    assert_eq!(
        report.status,
        Some(ecs_deploy::outcome::Status::Cancelled),
        "the path says cancelled itself"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_eks_token_is_signed_again_after_ten_minutes_of_a_long_wait() {
    use ecs_deploy::deploy::kubernetes::auth::{Clock, Connection, TOKEN_RENEW_AFTER};
    use ecs_deploy::deploy::kubernetes::{Ended, Follow, Judged, KubeChecked, POLL};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, UNIX_EPOCH};
    let moto = MotoServer::start();
    eks_cluster(&moto, "shop").await;
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    api.hold();
    // The connection's clock: 2023-11-14T22:13:20Z, moved by the test.
    let start = 1_700_000_000u64;
    let now = std::sync::Arc::new(AtomicU64::new(start));
    let n = now.clone();
    let clock = Clock::new(move || UNIX_EPOCH + Duration::from_secs(n.load(Ordering::SeqCst)));
    let aws = ecs_deploy::aws::Aws::from_config(&sdk_config(&moto.endpoint()));
    let conn = Connection::open_with_clock(
        &aws,
        &ecs_deploy::inputs::ClusterSource::Eks("shop".into()),
        "shop",
        Some(&api.url()),
        clock,
    )
    .await
    .expect("EKS connection");
    let checked = KubeChecked {
        conn: std::sync::Arc::new(conn),
        namespace: "shop".into(),
        name: "web1".into(),
        container: "app".into(),
        previous_image: OLD_IMAGE.into(),
        previous_revision: Some(1),
        manifest: None,
        notes: Vec::new(),
    };
    api.set_image(NEW_IMAGE);
    let follow = Follow {
        label: "web1",
        target: "Deployment shop/web1",
        checked: &checked,
        image: NEW_IMAGE,
        generation: 2,
        timeout: Duration::from_secs(60),
        poll: POLL,
        judged: Judged::Current,
    };
    let tokens = || -> Vec<String> {
        api.requests()
            .into_iter()
            .filter_map(|r| r.authorization)
            .collect()
    };
    let driver = async {
        // A few looks with the first token, then eleven minutes pass.
        while tokens().len() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        now.fetch_add(TOKEN_RENEW_AFTER.as_secs() + 60, Ordering::SeqCst);
        let first = tokens()[0].clone();
        while tokens().last() == Some(&first) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A couple more looks with the new token, then the rollout completes.
        let seen = tokens().len();
        while tokens().len() < seen + 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        api.settle();
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let (ended, ()) = tokio::join!(follow.run(&cancel), driver);
    assert!(matches!(ended, Ok(Ended::Done { .. })), "{ended:?}");
    let tokens = tokens();
    let first = tokens[0].clone();
    let switched = tokens
        .iter()
        .position(|t| *t != first)
        .expect("a second token");
    let second = tokens[switched].clone();
    assert!(
        switched >= 3,
        "the first token served its ten minutes: {tokens:?}"
    );
    assert!(
        tokens[switched..].iter().all(|t| *t == second),
        "one renewal, kept from then on: {tokens:?}"
    );
    let date = |t: &str| {
        let url = presigned_url(Some(t));
        url.split("X-Amz-Date=")
            .nth(1)
            .and_then(|d| d.split('&').next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(date(&first), "20231114T221320Z");
    // Signed at the connection's new time, eleven minutes later: valid for EKS again.
    assert_eq!(date(&second), "20231114T222420Z");
    assert_ne!(
        presigned_url(Some(&first)).split("X-Amz-Signature=").nth(1),
        presigned_url(Some(&second))
            .split("X-Amz-Signature=")
            .nth(1)
    );
}

/// How a run cancelled mid-rollout ended: its output, how long after SIGTERM it exited, and its
/// `status` output a moment after the signal (what a runner killing it then would keep).
struct Cancelled {
    out: BinOutput,
    exit_after: std::time::Duration,
    early_status: Option<String>,
}

/// Rolls `NEW_IMAGE` out to `api` through a kubeconfig with `inputs` and sends SIGTERM once the
/// rollout is being followed, as the runner does when the job is cancelled.
async fn sigterm_mid_rollout(api: &KubeApi, inputs: &[(&str, &str)]) -> Cancelled {
    use std::time::{Duration, Instant};
    let (dir, ws) = workspace();
    let kubeconfig = api.kubeconfig(dir.path(), "kubeTOKEN");
    let mut all = vec![("kubeconfig", kubeconfig.to_str().expect("utf-8 path"))];
    all.extend_from_slice(inputs);
    let run = bin_run(&ws, "http://127.0.0.1:9", &all, &[]).timeout(Duration::from_secs(60));
    tokio::task::spawn_blocking(move || {
        let mut running = run.spawn();
        running.wait_for_stdout(
            "(waiting for the deployment spec update to be observed)",
            Duration::from_secs(30),
        );
        running.signal("TERM");
        let signalled = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let early_status = running.outputs().get("status").cloned();
        let out = running.wait();
        drop(dir);
        Cancelled {
            out,
            exit_after: signalled.elapsed(),
            early_status,
        }
    })
    .await
    .expect("the run")
}

/// GitHub kills a cancelled job about 10 s after its first signal; the action ends within 8 s.
fn assert_within_the_shutdown_budget(c: &Cancelled) {
    assert!(
        c.exit_after < std::time::Duration::from_millis(8500),
        "exited {:?} after SIGTERM\n{}",
        c.exit_after,
        c.out
    );
    c.out.assert_code(1);
    assert!(c.out.stdout.contains("cancellation requested"), "{}", c.out);
    assert_eq!(
        c.out.outputs_raw.matches("status<<").count(),
        1,
        "{}",
        c.out
    );
    assert!(the_error(&c.out).contains("cancelled"), "{}", c.out);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_rollout_rolls_back_to_the_previous_replica_set_and_reports_within_the_budget()
{
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    // Our rollout does not move; the controller acts again once the rollback's PATCH is in.
    api.hold_until(2);
    let c = sigterm_mid_rollout(&api, &[]).await;
    assert_within_the_shutdown_budget(&c);
    let out = &c.out;
    assert_eq!(out.output("status"), Some("rolled-back"), "{out}");
    let patches = api.patches();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert_image_patch(&patches[0], NEW_IMAGE);
    assert_eq!(
        restored_template(&patches[1])["spec"]["containers"][0]["image"],
        OLD_IMAGE,
        "{}",
        patches[1]
    );
    assert_eq!(live_image(&api), OLD_IMAGE);
    assert_eq!(api.deployment()["status"]["availableReplicas"], 3);
    assert!(out.summary.contains("rolled-back"), "{out}");
    assert!(
        out.stdout
            .contains(&format!("back on {OLD_IMAGE} (revision 1")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_rollout_with_a_rollback_not_available_in_time_reports_cancelled() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    // The controller never acts: the rollback is sent but cannot be seen available.
    api.hold();
    let c = sigterm_mid_rollout(&api, &[]).await;
    assert_within_the_shutdown_budget(&c);
    let out = &c.out;
    // rolled-back only once seen available: here the run had no time left to see it.
    assert_eq!(out.output("status"), Some("cancelled"), "{out}");
    // Written at once after the signal, before the rollback was followed.
    assert_eq!(c.early_status.as_deref(), Some("cancelled"), "{out}");
    let patches = api.patches();
    assert_eq!(patches.len(), 2, "the rollback was sent: {patches:?}");
    assert_eq!(live_image(&api), OLD_IMAGE, "the template is back");
    assert!(
        out.summary
            .contains("not seen available within the 5 s a cancelled run has"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_rollout_without_rollback_on_failure_leaves_it_and_reports_cancelled() {
    let api = KubeApi::start(Setup::new("web1", OLD_IMAGE)).await;
    api.hold();
    let c = sigterm_mid_rollout(&api, &[("rollback-on-failure", "false")]).await;
    assert_within_the_shutdown_budget(&c);
    let out = &c.out;
    assert_eq!(out.output("status"), Some("cancelled"), "{out}");
    assert!(
        out.stdout
            .contains("not rolling back (rollback-on-failure: false)"),
        "{out}"
    );
    assert_eq!(api.patches().len(), 1, "no rollback: {:?}", api.patches());
    assert_eq!(live_image(&api), NEW_IMAGE);
    assert!(
        c.exit_after < std::time::Duration::from_secs(3),
        "nothing to wait for: {:?}",
        c.exit_after
    );
}
