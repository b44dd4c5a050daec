//! AWS settings that point at a local moto server with dummy credentials, for the binary
//! (as env) and for in-process SDK clients (as `SdkConfig`), never touching real AWS.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::{Credentials, SharedCredentialsProvider};

/// Dummy access key / secret that moto accepts.
pub const TEST_KEY: &str = "testing";
/// Region used throughout the tests.
pub const TEST_REGION: &str = "us-east-1";
/// moto's fixed account id.
pub const TEST_ACCOUNT: &str = "123456789012";

/// Env for the `ecs-deploy` binary: dummy credentials, region, no IMDS, all services at `endpoint`.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ACCESS_KEY_ID", TEST_KEY),
        ("AWS_SECRET_ACCESS_KEY", TEST_KEY),
        ("AWS_REGION", TEST_REGION),
        ("AWS_ENDPOINT_URL", endpoint),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// SDK config for in-process clients: static test credentials, region, `endpoint`, latest
/// behaviour version. Built explicitly (no env or profile lookup) so tests are deterministic.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(TEST_REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            TEST_KEY,
            TEST_KEY,
            None,
            None,
            "ecs-deploy-tests",
        )))
        .endpoint_url(endpoint)
        .build()
}

/// A listener that counts every connection made to it: the stand-in AWS endpoint.
pub struct AwsTrap {
    port: u16,
    listener: Arc<TcpListener>,
    hits: Arc<AtomicUsize>,
}

impl AwsTrap {
    /// Starts the trap on a free port of 127.0.0.1.
    pub fn start() -> AwsTrap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the AWS trap");
        let port = listener.local_addr().expect("trap address").port();
        // Non-blocking, so `hits` can also drain connections still queued in the kernel when
        // the binary has already exited (the accept thread may not have seen them yet).
        listener
            .set_nonblocking(true)
            .expect("non-blocking trap listener");
        let listener = Arc::new(listener);
        let hits = Arc::new(AtomicUsize::new(0));
        let (l, counter) = (listener.clone(), hits.clone());
        std::thread::spawn(move || {
            loop {
                match l.accept() {
                    // Dropped at once: the client sees a reset instead of waiting for an answer.
                    Ok(_) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
                // The test dropped its trap: stop.
                if Arc::strong_count(&counter) == 1 {
                    return;
                }
            }
        });
        AwsTrap {
            port,
            listener,
            hits,
        }
    }

    /// Connections made so far (queued ones included).
    pub fn hits(&self) -> usize {
        while self.listener.accept().is_ok() {
            self.hits.fetch_add(1, Ordering::SeqCst);
        }
        self.hits.load(Ordering::SeqCst)
    }

    /// Env for the binary: dummy credentials, one attempt, every AWS service at the trap.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_MAX_ATTEMPTS", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// An HTTP client for an `aws-smithy-mocks` client whose `operation` calls (matched on the
/// `x-amz-target` header of the JSON protocols) are sent and never answered, as a stuck AWS
/// endpoint; every other call gets the mocks' answer. `mock_client!`'s rules cannot wait: this
/// plays a call that hangs, so a test sees the code under test give up on it in time.
pub fn hanging_http(
    operation: &'static str,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_runtime_api::client::http::SharedHttpClient::new(Hanging {
        operation,
        inner: aws_smithy_mocks::create_mock_http_client(),
    })
}

#[derive(Debug)]
struct Hanging {
    operation: &'static str,
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
}

impl aws_smithy_runtime_api::client::http::HttpClient for Hanging {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(HangingConnector {
            operation: self.operation,
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct HangingConnector {
    operation: &'static str,
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for HangingConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        if target.rsplit('.').next() == Some(self.operation) {
            return aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(
                std::future::pending(),
            );
        }
        self.inner.call(request)
    }
}

/// Tasks of a new revision that stop on a schedule, as ECS ListTasks (STOPPED) and
/// DescribeTasks show them: scripted, because moto runs no container, so none of its tasks
/// ever fails to pull, fails a health check or crashes.
#[derive(Default)]
pub struct StoppingTasks {
    /// Each task stops this long after `since`.
    pub stopping: Vec<(std::time::Duration, aws_sdk_ecs::types::Task)>,
    /// When the deploy's first write was received (the schedule starts there).
    pub since: Option<tokio::time::Instant>,
    /// The `family` of each ListTasks call.
    pub listed_families: Vec<Option<String>>,
}

impl StoppingTasks {
    /// Starts the schedule (the first call wins).
    pub fn start(&mut self) {
        self.since.get_or_insert_with(tokio::time::Instant::now);
    }

    /// The tasks stopped so far, newest first as ECS lists them.
    fn stopped(&self) -> Vec<aws_sdk_ecs::types::Task> {
        let Some(t0) = self.since else {
            return vec![];
        };
        let at = t0.elapsed();
        self.stopping
            .iter()
            .filter(|(due, _)| *due <= at)
            .map(|(_, t)| t.clone())
            .rev()
            .collect()
    }
}

/// The ListTasks and DescribeTasks rules answering from `state`.
pub fn stopping_task_rules(
    state: &Arc<std::sync::Mutex<StoppingTasks>>,
) -> [aws_smithy_mocks::Rule; 2] {
    use aws_sdk_ecs::operation::{
        describe_tasks::DescribeTasksOutput, list_tasks::ListTasksOutput,
    };
    let s = state.clone();
    let list =
        aws_smithy_mocks::mock!(aws_sdk_ecs::Client::list_tasks).then_compute_output(move |req| {
            let mut st = s.lock().unwrap();
            st.listed_families.push(req.family().map(str::to_string));
            let arns = st
                .stopped()
                .iter()
                .filter_map(|t| t.task_arn().map(str::to_string))
                .collect();
            ListTasksOutput::builder().set_task_arns(Some(arns)).build()
        });
    let s = state.clone();
    let describe = aws_smithy_mocks::mock!(aws_sdk_ecs::Client::describe_tasks)
        .then_compute_output(move |req| {
            let found = s
                .lock()
                .unwrap()
                .stopped()
                .into_iter()
                .filter(|t| req.tasks().iter().any(|a| Some(a.as_str()) == t.task_arn()))
                .collect();
            DescribeTasksOutput::builder()
                .set_tasks(Some(found))
                .build()
        });
    [list, describe]
}

/// Task `n` of revision `task_definition` of service web1, created now, stopped by ECS with
/// `code` and `reason`; its container web1 ran `image` and exited `exit`.
pub fn stopped_service_task(
    n: u32,
    task_definition: &str,
    code: aws_sdk_ecs::types::TaskStopCode,
    reason: &str,
    image: &str,
    exit: Option<i32>,
) -> aws_sdk_ecs::types::Task {
    let created = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
    aws_sdk_ecs::types::Task::builder()
        .task_arn(format!(
            "arn:aws:ecs:us-east-1:123456789012:task/prod/{n:032x}"
        ))
        .task_definition_arn(task_definition)
        .group("service:web1")
        .created_at(aws_sdk_ecs::primitives::DateTime::from(created))
        .stop_code(code)
        .stopped_reason(reason)
        .containers(
            aws_sdk_ecs::types::Container::builder()
                .name("web1")
                .image(image)
                .set_exit_code(exit)
                .build(),
        )
        .build()
}
