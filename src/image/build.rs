//! Building and pushing through the Docker engine's own API (`/var/run/docker.sock`).
//!
//! The build runs on the engine's embedded BuildKit. Two Engine-API paths:
//! - without `build-secrets`: `/build?version=2` with a session (bollard), which also imports the
//!   registry cache;
//! - with `build-secrets`: a solve through the engine's `/grpc` endpoint (bollard's Moby driver),
//!   the one path on Docker 20.10 that serves BuildKit secrets from the client's session
//!   (bollard's `/build` session answers only auth and file-send requests, so
//!   `RUN --mount=type=secret` would see nothing there).
//!
//! Progress comes from the `/build` response stream, or from BuildKit's Control.Status for the
//! `/grpc` solve's ref, so each step, its log and whether it was cached go to the workflow log.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::grpc::BuildRef;
use bollard::grpc::build::{
    ImageBuildFrontendOptions, ImageBuildLoadInput, ImageBuildPlatform, SecretSource,
};
use bollard::grpc::driver::Build as _;
use bollard::grpc::driver::moby::Moby;
use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::buildkit::v1::{
    CacheOptionsEntry, StatusRequest, StatusResponse,
};
use futures_util::StreamExt as _;
use globset::{GlobBuilder, GlobMatcher};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::image::registry::Credentials;
use crate::inputs::Secret;
use crate::runner::console::StopCommands;
use crate::runner::redact::Redactor;

/// Where a container action finds the host's engine.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Name of the Dockerfile inside the uploaded context when the real one lies outside it.
const OUTSIDE_DOCKERFILE: &str = ".ecs-deploy.Dockerfile";

/// Everything one build needs, already resolved and validated by the plan.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The local name the image gets (`registry/repo:version-tag`).
    pub name: String,
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub build_args: Vec<(String, String)>,
    pub secrets: Vec<(String, Secret)>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub labels: Vec<(String, String)>,
    /// `registry/repo:buildcache`, when `cache: registry`.
    pub cache_ref: Option<String>,
    /// Registry host → credentials, for BuildKit's pulls (cache import, private bases): the
    /// push registry's and those of `registries`.
    pub credentials: Vec<(String, Credentials)>,
    /// `no-cache`: every step is built again.
    pub no_cache: bool,
    /// `pull`: base images are pulled again.
    pub pull: bool,
}

/// What a build reported: steps run, steps found in the cache, and the last log lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildStats {
    pub steps: usize,
    pub cached: usize,
    /// The last lines the build printed (kept for the error message when it fails).
    pub tail: Vec<String>,
}

/// How many of the build's last log lines a failure message quotes.
const TAIL_LINES: usize = 10;

/// `.dockerignore` rules, read the way the Docker CLI reads them: last match wins, `!`
/// re-includes, `*` and `?` never cross a `/` (`*.log` is the context root's logs only), `**`
/// spans any number of directories (`**/*.log` is every log).
#[derive(Debug, Default)]
pub struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    /// Parses the file's text; a bad pattern is an error naming it.
    pub(crate) fn parse(text: &str) -> Result<DockerIgnore> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
            let pattern = pattern.trim_end_matches('/');
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    Error::invalid_input(
                        ".dockerignore",
                        line,
                        format!("is not a valid pattern ({e})"),
                    )
                })?;
            rules.push((glob.compile_matcher(), negate));
        }
        Ok(DockerIgnore { rules })
    }

    /// True when `rel` (a `/`-separated path inside the context) is left out of the upload.
    /// A pattern that matches a directory leaves out everything below it.
    pub(crate) fn ignores(&self, rel: &str) -> bool {
        let mut ignored = false;
        for (glob, negate) in &self.rules {
            let hit = std::iter::successors(Some(rel), |p| p.rsplit_once('/').map(|(a, _)| a))
                .any(|p| glob.is_match(p));
            if hit {
                ignored = !negate;
            }
        }
        ignored
    }
}

/// Packs the build context into a tar, honouring `.dockerignore`, and adds the Dockerfile when it
/// lies outside the context. Returns the tar and the Dockerfile's name inside it.
pub(crate) fn context_tar(context: &Path, dockerfile: &Path) -> Result<(Vec<u8>, String)> {
    let read_err = |path: &Path, source: std::io::Error| Error::ReadFile {
        what: "the build context".into(),
        path: path.to_path_buf(),
        source,
    };
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(read_err(&context.join(".dockerignore"), e)),
    };
    let real_dockerfile = dockerfile
        .canonicalize()
        .map_err(|e| read_err(dockerfile, e))?;
    let inside = real_dockerfile
        .strip_prefix(context)
        .ok()
        .map(|p| p.to_string_lossy().replace('\\', "/"));
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let mut stack = vec![context.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| read_err(&dir, e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| read_err(&dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path
                .strip_prefix(context)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            // The Dockerfile and .dockerignore always go, as the Docker CLI sends them.
            let always = inside.as_deref() == Some(rel.as_str()) || rel == ".dockerignore";
            if !always && ignore.ignores(&rel) {
                continue;
            }
            let kind = entry.file_type().map_err(|e| read_err(&path, e))?;
            if kind.is_dir() {
                tar.append_dir(&rel, &path)
                    .map_err(|e| read_err(&path, e))?;
                stack.push(path);
            } else {
                tar.append_path_with_name(&path, &rel)
                    .map_err(|e| read_err(&path, e))?;
            }
        }
    }
    let name = match inside {
        Some(rel) => rel,
        None => {
            let text = std::fs::read(&real_dockerfile).map_err(|e| read_err(dockerfile, e))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, OUTSIDE_DOCKERFILE, text.as_slice())
                .map_err(|e| read_err(dockerfile, e))?;
            OUTSIDE_DOCKERFILE.to_string()
        }
    };
    let bytes = tar.into_inner().map_err(|e| read_err(context, e))?;
    Ok((bytes, name))
}

/// Reads `os/arch[/variant]` (the `platform` input).
pub(crate) fn parse_platform(value: &str) -> Result<ImageBuildPlatform> {
    let parts: Vec<&str> = value.split('/').collect();
    match parts.as_slice() {
        [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => {
            Ok(ImageBuildPlatform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
            })
        }
        _ => Err(Error::invalid_input(
            "platform",
            value,
            "write it as os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64",
        )),
    }
}

/// An RFC 3339 UTC timestamp (`org.opencontainers.image.created`), from seconds since 1970.
pub(crate) fn rfc3339(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Now, as RFC 3339.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// The Docker engine of this run and the socket it answers on.
#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Docker,
    pub socket: PathBuf,
}

/// Connects to the engine and checks that it answers, naming the socket when it does not.
pub(crate) async fn connect() -> Result<Engine> {
    connect_to(Path::new(DOCKER_SOCKET)).await
}

/// Connects to the engine at `socket` (tests and other hosts).
pub async fn connect_to(socket: &Path) -> Result<Engine> {
    let unreachable = |e: String| Error::Docker {
        problem: format!(
            "cannot reach the engine at {} ({e}); mount the host's Docker socket into the job",
            socket.display()
        ),
    };
    let docker =
        Docker::connect_with_unix(&socket.to_string_lossy(), 600, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(Engine {
        docker,
        socket: socket.to_path_buf(),
    })
}

/// A private file for one secret, in memory-backed /dev/shm when there is one, removed on drop.
/// BuildKit reads secrets from the session by file or environment variable; a file in a
/// 0700 directory is the one of the two that a multi-threaded process can set up safely.
struct SecretFiles {
    dir: PathBuf,
}

impl SecretFiles {
    fn write(secrets: &[(String, Secret)]) -> Result<(SecretFiles, Vec<(String, PathBuf)>)> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "ecs-deploy-secrets-{}",
            BuildRef::random().as_ref()
        ));
        let fail = |source: std::io::Error| Error::WriteFile {
            what: "a build secret".into(),
            path: dir.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(fail)?;
        let files = SecretFiles { dir: dir.clone() };
        let mut out = Vec::new();
        for (i, (id, value)) in secrets.iter().enumerate() {
            let path = dir.join(i.to_string());
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(fail)?;
            f.write_all(value.expose().as_bytes()).map_err(fail)?;
            out.push((id.clone(), path));
        }
        Ok((files, out))
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Builds the image into the engine under `req.name`, printing progress as it goes.
///
/// Two Engine-API paths, both BuildKit: with build secrets, a BuildKit solve over `/grpc`
/// (bollard's Moby driver serves the secrets from this process); without, `/build?version=2`
/// with a session, where the engine itself turns `cachefrom` into a registry cache import.
/// On the solve path a registry cache import (the solve's cache options) took no step from the
/// cache on Docker 20.10's embedded BuildKit when tried, so a build with secrets exports its
/// cache but does not import one (said in the log).
pub(crate) async fn build(
    engine: &Engine,
    req: &BuildRequest,
    cancel: &CancellationToken,
) -> Result<BuildStats> {
    let (tar, dockerfile_name) = context_tar(&req.context, &req.dockerfile)?;
    println!(
        "build context {} ({} KiB), Dockerfile {}",
        req.context.display(),
        tar.len() / 1024,
        req.dockerfile.display()
    );
    let started = Instant::now();
    let result = {
        // The build's own output must not issue workflow commands.
        let _stop = StopCommands::start(BuildRef::random().as_ref());
        if req.secrets.is_empty() {
            build_with_session(engine, req, tar, &dockerfile_name, cancel).await
        } else {
            build_with_solve(engine, req, tar, &dockerfile_name, cancel).await
        }
    };
    match result {
        Ok(stats) => {
            println!(
                "built {} in {:.1}s: {} steps, {} from cache",
                req.name,
                started.elapsed().as_secs_f64(),
                stats.steps,
                stats.cached
            );
            Ok(stats)
        }
        Err(_) if cancel.is_cancelled() => Err(Error::Cancelled {
            what: format!("the build of {}", req.name),
        }),
        Err((message, stats)) => {
            let message = Redactor::known().text(&message);
            let mut problem = format!("the build failed: {message}");
            if !stats.tail.is_empty() {
                problem.push_str("; the build's last lines:\n");
                problem.push_str(&stats.tail.join("\n"));
            }
            Err(Error::Image {
                image: req.name.clone(),
                problem,
            })
        }
    }
}

/// A failed build: BuildKit's message and what the progress stream saw.
type Failed = (String, BuildStats);

fn docker_credentials(req: &BuildRequest) -> HashMap<String, DockerCredentials> {
    req.credentials
        .iter()
        .map(|(h, c)| {
            (
                h.clone(),
                DockerCredentials {
                    username: Some(c.username.clone()),
                    password: Some(c.password.expose().to_string()),
                    serveraddress: Some(h.clone()),
                    ..Default::default()
                },
            )
        })
        .collect()
}

/// The `/build` query of a build: its tag, Dockerfile, build args, labels, target, platform,
/// the registry cache import (none with `no-cache`), `nocache` and `pull`. Pure but for the log
/// line that says what the cache does.
fn session_options(
    req: &BuildRequest,
    dockerfile_name: &str,
) -> bollard::query_parameters::BuildImageOptions {
    let mut buildargs: HashMap<String, String> = req.build_args.iter().cloned().collect();
    let mut cachefrom = None;
    if let Some(cache) = &req.cache_ref {
        // The engine's embedded BuildKit exports cache only inline (in the image config): the
        // pushed `buildcache` tag carries it, and the next build imports it from the registry.
        buildargs.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
        if req.no_cache {
            println!("registry cache: not imported (no-cache), exported to {cache}");
        } else {
            cachefrom = Some(vec![cache.clone()]);
            println!("registry cache: importing from {cache}");
        }
    }
    bollard::query_parameters::BuildImageOptions {
        dockerfile: dockerfile_name.to_string(),
        t: Some(req.name.clone()),
        buildargs: Some(buildargs),
        labels: Some(req.labels.iter().cloned().collect()),
        target: req.target.clone().unwrap_or_default(),
        platform: req.platform.clone().unwrap_or_default(),
        cachefrom,
        nocache: req.no_cache,
        pull: req.pull.then(|| "1".to_string()),
        rm: true,
        version: bollard::query_parameters::BuilderVersion::BuilderBuildKit,
        session: Some(BuildRef::random().as_ref().to_string()),
        ..Default::default()
    }
}

/// `/build?version=2` with a BuildKit session: progress arrives in the response stream.
async fn build_with_session(
    engine: &Engine,
    req: &BuildRequest,
    tar: Vec<u8>,
    dockerfile_name: &str,
    cancel: &CancellationToken,
) -> std::result::Result<BuildStats, Failed> {
    let options = session_options(req, dockerfile_name);
    let creds = Some(docker_credentials(req)).filter(|c| !c.is_empty());
    let mut stream = engine.docker.build_image(
        options,
        creds,
        Some(bollard::body_full(bytes::Bytes::from(tar))),
    );
    let mut progress = Progress::new();
    loop {
        let item = tokio::select! {
            i = stream.next() => i,
            _ = cancel.cancelled() => {
                return Err(("cancelled".into(), progress.stats));
            }
        };
        let Some(item) = item else { break };
        match item {
            Ok(info) => {
                if let Some(bollard::models::BuildInfoAux::BuildKit(status)) = info.aux {
                    progress.on_status(status);
                }
                if let Some(message) = info.error_detail.and_then(|d| d.message) {
                    return Err((message, progress.stats));
                }
            }
            Err(e) => {
                let message = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                return Err((message, progress.stats));
            }
        }
    }
    Ok(progress.stats)
}

/// A BuildKit solve over `/grpc` (bollard's Moby driver), which serves build secrets from this
/// process; progress comes from a second `/grpc` connection on the same build ref.
async fn build_with_solve(
    engine: &Engine,
    req: &BuildRequest,
    tar: Vec<u8>,
    dockerfile_name: &str,
    cancel: &CancellationToken,
) -> std::result::Result<BuildStats, Failed> {
    let mut opts = ImageBuildFrontendOptions::builder().dockerfile(Path::new(dockerfile_name));
    for (k, v) in &req.build_args {
        opts = opts.buildarg(k, v);
    }
    for (k, v) in &req.labels {
        opts = opts.label(k, v);
    }
    if let Some(t) = &req.target {
        opts = opts.target(t);
    }
    opts = opts.nocache(req.no_cache).pull(req.pull);
    if let Some(p) = &req.platform {
        let platform = parse_platform(p).map_err(|e| (e.to_string(), BuildStats::default()))?;
        opts = opts.platforms(&platform);
    }
    if let Some(cache) = &req.cache_ref {
        opts = opts.cacheto(&CacheOptionsEntry {
            r#type: "inline".into(),
            attrs: HashMap::new(),
        });
        println!(
            "registry cache: this build exports its cache to {cache}, but does not import it: with build-secrets the build runs as a BuildKit solve over /grpc, where the engine's BuildKit takes no step from an imported registry cache"
        );
    }
    let (_secret_files, secret_paths) =
        SecretFiles::write(&req.secrets).map_err(|e| (e.to_string(), BuildStats::default()))?;
    for (id, path) in &secret_paths {
        opts = opts.set_secret(id, &SecretSource::File(path.clone()));
    }
    let creds_owned = docker_credentials(req);
    let creds: Option<HashMap<&str, DockerCredentials>> = Some(
        creds_owned
            .iter()
            .map(|(h, c)| (h.as_str(), c.clone()))
            .collect::<HashMap<_, _>>(),
    )
    .filter(|c| !c.is_empty());
    let build_ref = BuildRef::random();
    let solve = Moby::new(&engine.docker).docker_build(
        &req.name,
        opts.build(),
        ImageBuildLoadInput::Upload(tar.into()),
        creds,
        Some(build_ref.clone()),
    );
    let progress = follow_progress(engine.socket.clone(), build_ref.as_ref().to_string());
    tokio::pin!(progress);
    let mut stats = BuildStats::default();
    let mut progress_done = false;
    let mut solve = Box::pin(solve);
    let result = loop {
        tokio::select! {
            r = &mut solve => break r,
            s = &mut progress, if !progress_done => { stats = s; progress_done = true; }
            _ = cancel.cancelled() => return Err(("cancelled".into(), stats)),
        }
    };
    // Let the status stream drain the last lines (it ends with the build).
    if !progress_done
        && let Ok(s) = tokio::time::timeout(Duration::from_secs(2), &mut progress).await
    {
        stats = s;
    }
    match result {
        Ok(()) => Ok(stats),
        Err(e) => Err((build_error_message(&crate::error::error_chain(&e)), stats)),
    }
}

/// Cuts a gRPC status dump down to BuildKit's own message.
pub(crate) fn build_error_message(text: &str) -> String {
    if let Some(start) = text.find("message: \"") {
        let rest = &text[start + 10..];
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => break,
                c => out.push(c),
            }
        }
        return out;
    }
    text.to_string()
}

/// Prints BuildKit status messages as they come: each step when it starts, its log lines,
/// `CACHED` or `DONE` when it ends, and errors; counts steps and cache hits. Every line goes
/// through the redactor first: a `RUN` that prints a build secret shows `***`, in the log and
/// in the last lines a failure quotes.
struct Progress {
    stats: BuildStats,
    started: HashSet<String>,
    done: HashSet<String>,
    failed: HashSet<String>,
    redactor: Redactor,
}

impl Progress {
    /// Progress of a build, redacting every secret value known when it starts.
    fn new() -> Progress {
        Progress {
            stats: BuildStats::default(),
            started: HashSet::new(),
            done: HashSet::new(),
            failed: HashSet::new(),
            redactor: Redactor::known(),
        }
    }

    fn on_status(&mut self, msg: StatusResponse) {
        for mut v in msg.vertexes {
            v.name = self.redactor.text(&v.name);
            if !v.error.is_empty() {
                if self.done.insert(v.digest.clone()) {
                    self.stats.steps += 1;
                }
                if self.failed.insert(v.digest.clone()) {
                    println!("ERROR {}: {}", v.name, self.redactor.text(&v.error));
                }
            } else if v.completed.is_some() {
                if self.done.insert(v.digest.clone()) {
                    self.stats.steps += 1;
                    if v.cached {
                        self.stats.cached += 1;
                        println!("CACHED {}", v.name);
                    } else {
                        println!("DONE {}", v.name);
                    }
                }
            } else if v.started.is_some() && self.started.insert(v.digest.clone()) {
                println!("#  {}", v.name);
            }
        }
        for l in msg.logs {
            let text = self.redactor.text(&String::from_utf8_lossy(&l.msg));
            for line in text.lines() {
                println!("   {line}");
                self.stats.tail.push(line.to_string());
            }
            let tail = &mut self.stats.tail;
            if tail.len() > TAIL_LINES {
                tail.drain(..tail.len() - TAIL_LINES);
            }
        }
    }
}

/// Follows BuildKit's Control.Status for `build_ref` on its own `/grpc` connection (the solve
/// path has no progress stream of its own) and returns what it saw.
async fn follow_progress(socket: PathBuf, build_ref: String) -> BuildStats {
    let mut progress = Progress::new();
    let channel = match tonic::transport::Endpoint::from_static("http://[::]:50051")
        .connect_with_connector(GrpcConnector { socket })
        .await
    {
        Ok(c) => c,
        Err(e) => {
            println!(
                "(build progress unavailable: {})",
                crate::error::error_chain(&e)
            );
            return progress.stats;
        }
    };
    let mut client = ControlClient::new(channel);
    let mut stream = match client.status(StatusRequest { r#ref: build_ref }).await {
        Ok(s) => s.into_inner(),
        Err(e) => {
            println!("(build progress unavailable: {})", e.message());
            return progress.stats;
        }
    };
    while let Some(Ok(msg)) = stream.next().await {
        progress.on_status(msg);
    }
    progress.stats
}

/// Opens `/grpc` on the engine (an HTTP upgrade to h2c) for a gRPC channel of our own.
struct GrpcConnector {
    socket: PathBuf,
}

type Upgrade = Pin<
    Box<
        dyn std::future::Future<Output = std::result::Result<hyper::upgrade::Upgraded, BoxError>>
            + Send,
    >,
>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tonic::codegen::Service<tonic::transport::Uri> for GrpcConnector {
    type Response = hyper::upgrade::Upgraded;
    type Error = BoxError;
    type Future = Upgrade;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: tonic::transport::Uri) -> Self::Future {
        let socket = self.socket.clone();
        Box::pin(async move {
            let stream = tokio::net::UnixStream::connect(&socket).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
            });
            let req = hyper::Request::post("/grpc")
                .header("Host", "docker")
                .header("Connection", "Upgrade")
                .header("Upgrade", "h2c")
                .header("X-Docker-Expose-Session-Uuid", BuildRef::random().as_ref())
                .body(http_body_util::Empty::<bytes::Bytes>::new())?;
            let resp = sender.send_request(req).await?;
            if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
                return Err(format!("the engine answered /grpc with {}", resp.status()).into());
            }
            Ok(hyper::upgrade::on(resp).await?)
        })
    }
}

/// Tags the built image under each extra tag and pushes every tag, streaming the engine's
/// progress. Credentials go in the request header only (the engine's own auth), never to disk.
pub(crate) async fn push(
    docker: &Docker,
    repository_ref: &str,
    tags: &[String],
    credentials: Option<&Credentials>,
    server: &str,
    cancel: &CancellationToken,
) -> Result<()> {
    let Some(first) = tags.first() else {
        return Ok(());
    };
    let source = format!("{repository_ref}:{first}");
    for tag in &tags[1..] {
        docker
            .tag_image(
                &source,
                Some(bollard::query_parameters::TagImageOptions {
                    repo: Some(repository_ref.to_string()),
                    tag: Some(tag.clone()),
                }),
            )
            .await
            .map_err(|e| Error::Docker {
                problem: format!("tagging {source} as {repository_ref}:{tag} failed: {e}"),
            })?;
    }
    let creds = credentials.map(|c| DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.expose().to_string()),
        serveraddress: Some(server.to_string()),
        ..Default::default()
    });
    for tag in tags {
        let image = format!("{repository_ref}:{tag}");
        let mut stream = docker.push_image(
            repository_ref,
            Some(bollard::query_parameters::PushImageOptions {
                tag: Some(tag.clone()),
                platform: None,
            }),
            creds.clone(),
        );
        let mut last = String::new();
        loop {
            let item = tokio::select! {
                i = stream.next() => i,
                _ = cancel.cancelled() => {
                    return Err(Error::Cancelled { what: format!("the push of {image}") });
                }
            };
            let Some(item) = item else { break };
            let info = item.map_err(|e| push_error(&image, &e.to_string()))?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(push_error(&image, &detail));
            }
            if let Some(status) = info.status
                && status != last
                && info.progress_detail.is_none_or(|p| p.current.is_none())
            {
                println!("push {tag}: {status}");
                last = status;
            }
        }
    }
    Ok(())
}

fn push_error(image: &str, detail: &str) -> Error {
    let hint = if detail.contains("unauthorized") || detail.contains("authentication required") {
        "; the registry refused the credentials: check registry-username/registry-password or the role's ECR push permissions"
    } else {
        ""
    };
    Error::Image {
        image: image.to_string(),
        problem: format!("the push failed: {detail}{hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_excludes_matches_and_everything_below_them() {
        let ig = DockerIgnore::parse("# comment\nnode_modules\n*.log\napps/*/dist\n!keep.log\n")
            .unwrap();
        assert!(ig.ignores("node_modules"));
        assert!(ig.ignores("node_modules/x/y.js"));
        assert!(ig.ignores("debug.log"));
        assert!(!ig.ignores("keep.log"));
        assert!(ig.ignores("apps/web1/dist/app.js"));
        assert!(!ig.ignores("apps/web1/index.html"));
    }

    #[test]
    fn a_star_stays_in_its_directory_and_a_double_star_crosses_any_number() {
        let ig = DockerIgnore::parse("*.log\nsrc/*.tmp\n**/cache\ndocs/**/draft.md\n").unwrap();
        // `*` does not cross `/`: the root's logs only, one level of src/ only.
        assert!(ig.ignores("debug.log"));
        assert!(!ig.ignores("app/debug.log"));
        assert!(!ig.ignores("app/logs/debug.log"));
        assert!(ig.ignores("src/a.tmp"));
        assert!(!ig.ignores("src/deep/a.tmp"));
        assert!(!ig.ignores("other/src/a.tmp"));
        // `**` spans zero or more directories, and everything below a match goes too.
        assert!(ig.ignores("cache"));
        assert!(ig.ignores("a/b/cache"));
        assert!(ig.ignores("a/b/cache/entry.bin"));
        assert!(!ig.ignores("a/b/cachex"));
        assert!(ig.ignores("docs/draft.md"));
        assert!(ig.ignores("docs/2024/05/draft.md"));
        assert!(!ig.ignores("docs/2024/final.md"));
        // `?` does not match a separator either.
        let ig = DockerIgnore::parse("a?b\n").unwrap();
        assert!(ig.ignores("axb"));
        assert!(!ig.ignores("a/b"));
    }

    #[test]
    fn every_log_at_any_depth_is_written_with_a_double_star_and_can_be_re_included() {
        let ig = DockerIgnore::parse("**/*.log\n!keep/**/important.log\n").unwrap();
        assert!(ig.ignores("root.log"));
        assert!(ig.ignores("a/b/c/deep.log"));
        assert!(!ig.ignores("keep/x/important.log"));
        assert!(ig.ignores("keep/x/other.log"));
        assert!(!ig.ignores("a/b/c/deep.txt"));
    }

    /// The paths in a tar, in order.
    fn tar_names(bytes: &[u8]) -> Vec<String> {
        tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn the_context_tar_honours_dockerignore_and_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("app/secret")).unwrap();
        std::fs::write(root.join(".dockerignore"), "app/secret\nDockerfile\n").unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join("app/index.html"), "hi").unwrap();
        std::fs::write(root.join("app/secret/key"), "k").unwrap();
        let (bytes, name) = context_tar(&root, &root.join("Dockerfile")).unwrap();
        assert_eq!(name, "Dockerfile");
        let names = tar_names(&bytes);
        assert!(names.contains(&"app/index.html".to_string()), "{names:?}");
        assert!(names.contains(&"Dockerfile".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("secret")), "{names:?}");
    }

    #[test]
    fn the_context_tar_keeps_nested_files_a_single_star_does_not_reach() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("app/logs")).unwrap();
        std::fs::create_dir_all(root.join("app/node_modules/x")).unwrap();
        std::fs::write(root.join(".dockerignore"), "*.log\n**/node_modules\n").unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        for f in ["top.log", "app/logs/nested.log", "app/node_modules/x/i.js"] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        let (bytes, _) = context_tar(&root, &root.join("Dockerfile")).unwrap();
        let names = tar_names(&bytes);
        assert!(!names.contains(&"top.log".to_string()), "{names:?}");
        assert!(
            names.contains(&"app/logs/nested.log".to_string()),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.contains("node_modules")),
            "{names:?}"
        );
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_added_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("ctx")).unwrap();
        std::fs::write(root.join("Dockerfile.web"), "FROM scratch\n").unwrap();
        let (bytes, name) = context_tar(&root.join("ctx"), &root.join("Dockerfile.web")).unwrap();
        assert_eq!(name, OUTSIDE_DOCKERFILE);
        assert!(tar_names(&bytes).contains(&OUTSIDE_DOCKERFILE.to_string()));
    }

    fn request() -> BuildRequest {
        let creds = |u: &str| Credentials {
            username: "AWS".into(),
            password: Secret::new(u),
        };
        BuildRequest {
            name: "r.example/web1:v1".into(),
            dockerfile: PathBuf::from("Dockerfile"),
            context: PathBuf::from("."),
            build_args: vec![("NODE_ENV".into(), "production".into())],
            secrets: Vec::new(),
            target: Some("app".into()),
            platform: Some("linux/arm64".into()),
            labels: vec![("team".into(), "shop".into())],
            cache_ref: Some("r.example/web1:buildcache".into()),
            credentials: vec![
                ("r.example".into(), creds("one")),
                (
                    "210987654321.dkr.ecr.us-east-1.amazonaws.com".into(),
                    creds("two"),
                ),
            ],
            no_cache: false,
            pull: false,
        }
    }

    #[test]
    fn the_build_query_carries_every_setting_and_no_cache_drops_the_cache_import() {
        let o = session_options(&request(), "Dockerfile");
        assert_eq!(o.t.as_deref(), Some("r.example/web1:v1"));
        assert_eq!(o.target, "app");
        assert_eq!(o.platform, "linux/arm64");
        assert_eq!(o.labels.unwrap()["team"], "shop");
        let args = o.buildargs.unwrap();
        assert_eq!(args["NODE_ENV"], "production");
        assert_eq!(args["BUILDKIT_INLINE_CACHE"], "1");
        assert_eq!(
            o.cachefrom,
            Some(vec!["r.example/web1:buildcache".to_string()])
        );
        assert!(!o.nocache);
        assert_eq!(o.pull, None);
        let o = session_options(
            &BuildRequest {
                no_cache: true,
                pull: true,
                ..request()
            },
            "Dockerfile",
        );
        assert!(o.nocache);
        assert_eq!(o.pull.as_deref(), Some("1"));
        assert_eq!(o.cachefrom, None, "no-cache imports no registry cache");
    }

    #[test]
    fn the_build_gets_the_login_of_every_registry_it_reads() {
        let creds = docker_credentials(&request());
        let mut hosts: Vec<&str> = creds.keys().map(String::as_str).collect();
        hosts.sort();
        assert_eq!(
            hosts,
            ["210987654321.dkr.ecr.us-east-1.amazonaws.com", "r.example"]
        );
        let other = &creds["210987654321.dkr.ecr.us-east-1.amazonaws.com"];
        assert_eq!(other.password.as_deref(), Some("two"));
        assert_eq!(
            other.serveraddress.as_deref(),
            Some("210987654321.dkr.ecr.us-east-1.amazonaws.com")
        );
    }

    #[test]
    fn platforms_are_os_slash_arch() {
        let p = parse_platform("linux/arm64/v8").unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm64", Some("v8"))
        );
        let err = parse_platform("arm64").unwrap_err().to_string();
        assert!(err.contains("os/arch"), "{err}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_grpc_status_dump_is_cut_to_buildkits_message() {
        let dump = r#"TonicStatus { err: Status { code: Unknown, message: "process \"/bin/sh -c false\" did not complete successfully: exit code: 1", metadata: x } }"#;
        assert_eq!(
            build_error_message(dump),
            "process \"/bin/sh -c false\" did not complete successfully: exit code: 1"
        );
    }
}
