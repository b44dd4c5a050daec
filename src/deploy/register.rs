//! Task definitions as raw JSON through the SDK: RegisterTaskDefinition is sent with our JSON as
//! the request body, and DescribeTaskDefinition's answer is read as the JSON ECS sent. The SDK's
//! types have no serde, and mapping every field by hand would silently drop the fields it does
//! not know (a new ECS feature, a field added last month): raw JSON keeps every field.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_ecs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use serde_json::Value;

use crate::error::{Error, Result};

use crate::task_definition;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Keeps the raw body of the response it sees, for one call.
#[derive(Debug, Default, Clone)]
struct RawBody(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for RawBody {
    fn name(&self) -> &'static str {
        "ecs-deploy raw response body"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes()
            && let Ok(mut slot) = self.0.lock()
        {
            *slot = Some(bytes.to_vec());
        }
        Ok(())
    }
}

/// The live task definition `arn` as ECS describes it, with its tags: normalized (read-only
/// fields dropped), every other field kept as sent.
pub(crate) async fn describe_raw(ecs: &aws_sdk_ecs::Client, arn: &str) -> Result<Value> {
    let raw = RawBody::default();
    ecs.describe_task_definition()
        .task_definition(arn)
        // The revision's tags too: the new revision carries them (tag-enforcing accounts).
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .map_err(|e| Error::aws("ECS", "DescribeTaskDefinition", e))?;
    let bytes = raw
        .0
        .lock()
        .ok()
        .and_then(|mut b| b.take())
        .ok_or_else(|| Error::TaskDefinition {
            source_name: arn.to_string(),
            problem: "DescribeTaskDefinition answered without a body to read".into(),
        })?;
    let text = String::from_utf8_lossy(&bytes);
    task_definition::parse(arn, &text)
}

/// Registers `td` (a registrable task definition JSON) exactly as given and returns the new ARN.
pub(crate) async fn register_raw(ecs: &aws_sdk_ecs::Client, td: &Value) -> Result<String> {
    let body = serde_json::to_string(td).map_err(|e| Error::TaskDefinition {
        source_name: "rendered".into(),
        problem: format!("cannot be written as JSON: {e}"),
    })?;
    let family = td
        .get("family")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let out = ecs
        .register_task_definition()
        // The typed fields only satisfy the SDK's builder; the body below is what is sent.
        .family(&family)
        .customize()
        .mutate_request(move |req| {
            let len = body.len().to_string();
            *req.body_mut() = SdkBody::from(body.clone());
            req.headers_mut().insert("content-length", len);
        })
        .send()
        .await
        .map_err(|e| Error::aws("ECS", "RegisterTaskDefinition", e))?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| Error::TaskDefinition {
            source_name: family,
            problem: "RegisterTaskDefinition answered without a taskDefinitionArn".into(),
        })
}

/// A step without `service`, as amazon-ecs-deploy-task-definition takes it: the task
/// definition (`task-definition` file, or `task-definition-arn` / `-family`) is rendered with
/// the image and the container inputs, and registered; no service is touched. `None` when the
/// step names no task definition either (it only builds and pushes).
pub(crate) async fn register_without_service(
    ecs: &aws_sdk_ecs::Client,
    plan: &crate::plan::AppPlan,
    workspace: &std::path::Path,
    image: &str,
) -> Result<Option<String>> {
    let s = &plan.settings;
    let td = match (&s.ecs.task_definition, &s.ecs.task_definition_ref) {
        (Some(path), _) => {
            let path = workspace.join(path);
            let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadFile {
                what: "the task definition file".into(),
                path: path.clone(),
                source,
            })?;
            let td = task_definition::parse(&path.display().to_string(), &text)?;
            match &s.ecs.keep_null_value_keys {
                crate::inputs::KeepNullValues::All => td,
                crate::inputs::KeepNullValues::Keys(keep) => {
                    task_definition::without_empty_values(&td, keep)
                }
            }
        }
        (None, Some(reference)) => describe_raw(ecs, reference).await?,
        (None, None) => return Ok(None),
    };
    let family = td
        .get("family")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let container =
        task_definition::pick_container(&family, &td, s.rollout.container_name.as_deref())?;
    let rendered = task_definition::render(&td, &container, image, &s.ecs.container_edits)?;
    register_raw(ecs, &rendered).await.map(Some)
}

/// Deregisters a revision that failed (`deregister-failed-task-definition`).
pub(crate) async fn deregister(ecs: &aws_sdk_ecs::Client, arn: &str) -> Result<()> {
    ecs.deregister_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(|e| Error::aws("ECS", "DeregisterTaskDefinition", e))?;
    Ok(())
}
