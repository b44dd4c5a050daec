//! Runs the real `ecs-deploy` binary the way the Actions runner does: clean env, a
//! `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` file, and parses what it wrote back.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default limit for one run; a hung binary fails the test instead of hanging CI.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What one run of the binary produced.
#[derive(Debug, Clone)]
pub struct BinOutput {
    /// Exit code; `None` when killed by a signal (a panic=abort or the timeout).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Parsed `GITHUB_OUTPUT` (`name=value` and `name<<DELIM` heredocs; later wins).
    pub outputs: BTreeMap<String, String>,
    /// The raw `GITHUB_OUTPUT` file text.
    pub outputs_raw: String,
    /// The `GITHUB_STEP_SUMMARY` file text (markdown).
    pub summary: String,
    /// True when the run was killed for exceeding its timeout.
    pub timed_out: bool,
}

impl BinOutput {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// One output by name.
    pub fn output(&self, name: &str) -> Option<&str> {
        self.outputs.get(name).map(String::as_str)
    }

    /// Panics with the whole run shown unless it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.success(),
            "ecs-deploy was expected to succeed:\n{self}"
        );
        self
    }

    /// Panics with the whole run shown unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code:\n{self}");
        self
    }
}

impl std::fmt::Display for BinOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "exit code: {:?}{}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" }
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        writeln!(f, "--- stderr ---\n{}", self.stderr)?;
        writeln!(f, "--- outputs ---\n{:#?}", self.outputs)?;
        write!(f, "--- summary ---\n{}", self.summary)
    }
}

/// Runs `ecs-deploy` with `args`, a cleared env holding only PATH, HOME (a temp dir),
/// `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY` and `env`, in `cwd`. For more control use [`BinRun`].
pub fn run_bin<A, S, E, K, V>(args: A, env: E, cwd: impl AsRef<Path>) -> BinOutput
where
    A: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
    E: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    BinRun::new().args(args).envs(env).cwd(cwd).run()
}

/// The binary as the runner starts it for a workflow_dispatch (version `latest`) of the monorepo
/// fixture, every AWS service at `endpoint` (moto or the scripted ECS), no AWS profile read.
pub fn dispatch_run(endpoint: &str) -> BinRun {
    BinRun::new()
        .cwd(super::repo_root())
        .envs(super::aws_env(endpoint))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("GITHUB_WORKSPACE", super::fixture("monorepo"))
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env(
            "GITHUB_EVENT_PATH",
            super::fixture("events/workflow-dispatch-latest.json"),
        )
}

/// [`dispatch_run`] deploying `image` (built elsewhere) to service web1 of cluster prod.
pub fn web1_deploy(endpoint: &str, image: &str) -> BinRun {
    dispatch_run(endpoint)
        .env("INPUT_CLUSTER", "prod")
        .env("INPUT_SERVICE", "web1")
        .env("INPUT_CONTAINER-NAME", "web1")
        .env("INPUT_PACKAGE-JSON", "apps/web1/package.json")
        .env("INPUT_IMAGE", image)
}

/// Builder for one run of the binary (stdin, timeout, removing the default GitHub files).
#[derive(Debug, Clone)]
pub struct BinRun {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdin: Vec<u8>,
    timeout: Duration,
}

impl Default for BinRun {
    fn default() -> Self {
        Self::new()
    }
}

impl BinRun {
    /// A run of the `ecs-deploy` binary Cargo built for this test.
    pub fn new() -> Self {
        BinRun {
            program: PathBuf::from(env!("CARGO_BIN_EXE_ecs-deploy")),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Runs another program under the same harness (used to test the harness itself).
    pub fn program(mut self, program: impl AsRef<Path>) -> Self {
        self.program = program.as_ref().to_owned();
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets one env var (overrides the defaults, including `GITHUB_OUTPUT`/`HOME`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Sets env vars, e.g. `aws_env(&moto.endpoint())`.
    pub fn envs<K, V>(mut self, env: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in env {
            self = self.env(k, v);
        }
        self
    }

    /// Removes a var, e.g. `GITHUB_OUTPUT` to test the plain-CLI path.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Working directory of the run (default: the test's own).
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Bytes fed on stdin (default: empty, closed).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Kill the run after `timeout` (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the binary to completion (blocking; fine in async tests because moto, the
    /// registry and wiremock all serve from their own processes/threads).
    pub fn run(self) -> BinOutput {
        self.spawn().wait()
    }

    /// Starts the binary and returns at once, to watch its log and signal it while it runs.
    pub fn spawn(self) -> Running {
        let dir = tempfile::tempdir().expect("create a temp dir for GITHUB_OUTPUT");
        let mut output_path = Some(dir.path().join("github_output"));
        let mut summary_path = Some(dir.path().join("github_step_summary"));
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("create temp HOME");
        for path in [&output_path, &summary_path].into_iter().flatten() {
            std::fs::write(path, "").expect("create GITHUB_OUTPUT/GITHUB_STEP_SUMMARY file");
        }

        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home);
        if let Some(p) = &output_path {
            cmd.env("GITHUB_OUTPUT", p);
        }
        if let Some(p) = &summary_path {
            cmd.env("GITHUB_STEP_SUMMARY", p);
        }
        // The runner always sets RUNNER_TEMP: files the binary writes for later steps (the
        // rendered task definition) land here, never in a fixture workspace. A test that reads
        // them sets its own (a temp dir it keeps).
        let runner_temp = dir.path().join("runner_temp");
        std::fs::create_dir(&runner_temp).expect("create RUNNER_TEMP");
        cmd.env("RUNNER_TEMP", &runner_temp);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
            let slot = match key.to_str() {
                Some("GITHUB_OUTPUT") => Some(&mut output_path),
                Some("GITHUB_STEP_SUMMARY") => Some(&mut summary_path),
                _ => None,
            };
            if let Some(slot) = slot {
                *slot = value.as_ref().map(PathBuf::from);
            }
        }
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());

        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", self.program.display()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = self.stdin;
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            drain(child.stdout.take().expect("piped stdout"), stdout.clone()),
            drain(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Running {
            child,
            deadline: Instant::now() + self.timeout,
            feeder,
            readers,
            stdout,
            stderr,
            output_path,
            summary_path,
            _dir: dir,
        }
    }
}

/// The binary while it runs: its log so far, its outputs so far, a way to signal it.
pub struct Running {
    child: std::process::Child,
    deadline: Instant,
    feeder: std::thread::JoinHandle<()>,
    readers: [std::thread::JoinHandle<()>; 2],
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    output_path: Option<PathBuf>,
    summary_path: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("stdout buffer")).into_owned()
    }

    /// The `GITHUB_OUTPUT` file as it is now, parsed.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        parse_github_output(&read(&self.output_path))
    }

    /// The `GITHUB_STEP_SUMMARY` file as it is now.
    pub fn summary(&self) -> String {
        read(&self.summary_path)
    }

    /// Blocks until stdout has `text`; panics (the log shown) past `limit` or if the run ends.
    #[track_caller]
    pub fn wait_for_stdout(&mut self, text: &str, limit: Duration) {
        let start = Instant::now();
        while !self.stdout().contains(text) {
            if let Some(status) = self.child.try_wait().expect("wait for ecs-deploy") {
                panic!(
                    "ended ({status}) before printing {text:?}:\n{}",
                    self.stdout()
                );
            }
            assert!(
                start.elapsed() < limit,
                "no {text:?} within {limit:?}:\n{}",
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("wait for ecs-deploy")
            .is_none()
    }

    /// Sends `signal` (`TERM`, `INT`) to the process, as the runner does on a cancel.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits for the exit (killing the process past the timeout) and collects what it wrote.
    pub fn wait(mut self) -> BinOutput {
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for ecs-deploy") {
                break status;
            }
            if Instant::now() >= self.deadline {
                timed_out = true;
                let _ = self.child.kill();
                break self.child.wait().expect("wait for killed ecs-deploy");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = self.feeder.join();
        for r in self.readers {
            let _ = r.join();
        }
        let outputs_raw = read(&self.output_path);
        let text = |b: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&b.lock().expect("log buffer")).into_owned()
        };
        let out = BinOutput {
            code: status.code(),
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
            outputs: parse_github_output(&outputs_raw),
            outputs_raw,
            summary: read(&self.summary_path),
            timed_out,
        };
        // Every run of the suite, not only the reporters' tests: no test secret in any log.
        assert_no_secret_in(&out);
        out
    }
}

/// A file's text, empty when there is none.
fn read(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

/// The secret values tests give the binary (webhook URLs, tokens, passwords, build secrets):
/// every run of the suite, whatever it tests, is checked for them (see [`BinRun::run`]).
pub const SECRET_MARKS: &[&str] = &[
    "slackHOOKsecret42",
    "slackBOTsecret42",
    "discordHOOKsecret42",
    "githubTOKENsecret42",
    "SECRET123",
    "ghp_testtoken",
    "s3cr3t-value-0451",
];

/// Panics when the run's log (but for the `::add-mask::` lines, which must name a secret for
/// the runner to hide it), its outputs or its job summary carry a test secret.
#[track_caller]
pub fn assert_no_secret_in(out: &BinOutput) {
    let places = [
        ("stdout", out.stdout.as_str()),
        ("stderr", out.stderr.as_str()),
        ("GITHUB_OUTPUT", out.outputs_raw.as_str()),
        ("GITHUB_STEP_SUMMARY", out.summary.as_str()),
    ];
    for (place, text) in places {
        for line in text.lines().filter(|l| !l.starts_with("::add-mask::")) {
            if let Some(mark) = SECRET_MARKS.iter().find(|m| line.contains(**m)) {
                panic!("a test secret ({mark}) reached {place}: {line}");
            }
        }
    }
}

/// Reads a pipe to the end on a thread into `into` (so a chatty child never blocks on a full
/// pipe, and the log can be read while the child runs).
fn drain(
    mut pipe: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .expect("log buffer")
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// Parses a `GITHUB_OUTPUT` file: `name=value` lines and `name<<DELIM` … `DELIM` heredocs.
/// Panics on an unterminated heredoc (the runner would reject the file too).
pub fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let heredoc = line
            .find("<<")
            .filter(|&i| line.find('=').is_none_or(|eq| i < eq));
        if let Some(i) = heredoc {
            let (name, delim) = (&line[..i], &line[i + 2..]);
            let mut value: Vec<&str> = Vec::new();
            loop {
                match lines.next() {
                    Some(l) if l == delim => break,
                    Some(l) => value.push(l),
                    None => panic!(
                        "GITHUB_OUTPUT: heredoc for {name:?} never closed with {delim:?}:\n{text}"
                    ),
                }
            }
            map.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            map.insert(name.to_string(), value.to_string());
        } else {
            panic!("GITHUB_OUTPUT: line is neither name=value nor name<<DELIM: {line:?}");
        }
    }
    map
}
