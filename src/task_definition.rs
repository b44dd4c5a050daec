//! Task definition rendering, kept pure: load a task definition JSON (as registered, or as
//! `describe-task-definition` prints it), swap one container's image, merge environment
//! variables, and leave every other field untouched. JSON in, JSON out: no field is lost.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Fields ECS adds when it describes a task definition; RegisterTaskDefinition refuses them.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequested",
];

fn problem(source_name: &str, p: impl Into<String>) -> Error {
    Error::TaskDefinition {
        source_name: source_name.to_string(),
        problem: p.into(),
    }
}

/// Parses task definition text into a registrable JSON object: unwraps `{"taskDefinition": …}`
/// (keeping the `tags` next to it as the revision's own), drops read-only fields, and checks the
/// shape ECS requires.
pub(crate) fn parse(source_name: &str, text: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(crate::file_text::without_bom(text)).map_err(|e| {
        problem(
            source_name,
            format!("is not valid JSON ({e}); use the output of `aws ecs describe-task-definition` or a registrable task definition"),
        )
    })?;
    normalize(source_name, value)
}

/// Same as [`parse`] for an already parsed value (e.g. a live task definition read from ECS).
pub(crate) fn normalize(source_name: &str, value: Value) -> Result<Value> {
    let mut obj = match value {
        Value::Object(mut o) => match o.remove("taskDefinition") {
            // `describe-task-definition --include TAGS`: the revision's tags sit next to it;
            // they go with the new revision (RegisterTaskDefinition's `tags`).
            Some(Value::Object(mut inner)) => {
                if let Some(tags) = o.remove("tags").filter(|t| !is_empty_list(t))
                    && !inner.contains_key("tags")
                {
                    inner.insert("tags".into(), tags);
                }
                inner
            }
            _ => o,
        },
        _ => return Err(problem(source_name, "is not a JSON object")),
    };
    for f in READ_ONLY_FIELDS {
        obj.remove(*f);
    }
    validate(source_name, &obj)?;
    Ok(Value::Object(obj))
}

fn is_empty_list(v: &Value) -> bool {
    v.as_array().is_some_and(Vec::is_empty)
}

fn validate(source_name: &str, obj: &Map<String, Value>) -> Result<()> {
    match obj.get("family") {
        Some(Value::String(f)) if !f.is_empty() => {}
        _ => {
            return Err(problem(
                source_name,
                "has no \"family\" (string); every task definition needs one",
            ));
        }
    }
    let containers = obj
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            problem(
                source_name,
                "has no \"containerDefinitions\" array; is this a task definition?",
            )
        })?;
    if containers.is_empty() {
        return Err(problem(
            source_name,
            "has an empty \"containerDefinitions\"",
        ));
    }
    for (i, c) in containers.iter().enumerate() {
        let name = c.get("name").and_then(Value::as_str);
        if name.is_none_or(str::is_empty) {
            return Err(problem(
                source_name,
                format!("containerDefinitions[{i}] has no \"name\""),
            ));
        }
        if let Some(env) = c.get("environment")
            && !env.is_array()
        {
            return Err(problem(
                source_name,
                format!("containerDefinitions[{i}].environment is not an array"),
            ));
        }
    }
    Ok(())
}

/// Names of the containers, in order.
pub(crate) fn container_names(td: &Value) -> Vec<String> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Picks the container whose image is replaced: the named one, or the only one.
pub(crate) fn pick_container(
    source_name: &str,
    td: &Value,
    container: Option<&str>,
) -> Result<String> {
    let names = container_names(td);
    match container {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(problem(
            source_name,
            format!(
                "has no container named {c:?} (containers: {}); fix container-name",
                names.join(", ")
            ),
        )),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(Error::MissingInput {
            name: "container-name".into(),
            why: format!(
                "because the task definition has several containers ({}): say which one gets the new image",
                names.join(", ")
            ),
        }),
    }
}

/// What the inputs change in one container besides its image, in the render action's formats:
/// `environment-variables`, `docker-labels`, `command`, `log-configuration-*` and `secrets`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerEdits {
    /// Merged into `environment` (`name`/`value`).
    pub environment: Vec<(String, String)>,
    /// Merged into `dockerLabels`.
    pub docker_labels: Vec<(String, String)>,
    /// Replaces `command`.
    pub command: Option<Vec<String>>,
    /// Sets `logConfiguration.logDriver`.
    pub log_driver: Option<String>,
    /// Merged into `logConfiguration.options`.
    pub log_options: Vec<(String, String)>,
    /// Merged into `secrets` (`name`/`valueFrom`).
    pub secrets: Vec<(String, String)>,
    /// S3 object ARNs: replace `environmentFiles` (type `s3`) when given.
    pub env_files: Vec<String>,
    /// Sets the task definition's `taskRoleArn`.
    pub task_role_arn: Option<String>,
    /// Sets the task definition's `executionRoleArn`.
    pub execution_role_arn: Option<String>,
}

impl ContainerEdits {
    /// Only environment variables (the common case, and the tests').
    #[cfg(test)]
    pub(crate) fn env(environment: Vec<(String, String)>) -> Self {
        ContainerEdits {
            environment,
            ..ContainerEdits::default()
        }
    }
}

/// Merges `pairs` into the `[{name, <value_key>}]` list at `key`: an existing name is replaced
/// in place, a new one appended.
fn merge_named(
    obj: &mut Map<String, Value>,
    key: &str,
    value_key: &str,
    pairs: &[(String, String)],
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let arr = obj
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| problem("rendered", format!("{key} is not an array")))?;
    for (k, v) in pairs {
        let mut entry = Map::new();
        entry.insert("name".into(), Value::String(k.clone()));
        entry.insert(value_key.into(), Value::String(v.clone()));
        match arr
            .iter_mut()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(k.as_str()))
        {
            Some(existing) => *existing = Value::Object(entry),
            None => arr.push(Value::Object(entry)),
        }
    }
    Ok(())
}

/// Merges `pairs` into the string map at `obj[key]` (labels, log options).
fn merge_map(obj: &mut Map<String, Value>, key: &str, pairs: &[(String, String)]) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let map = obj
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| problem("rendered", format!("{key} is not an object")))?;
    for (k, v) in pairs {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    Ok(())
}

/// Renders the task definition with `image` in `container` and `edits` applied to it
/// (environment and secrets merged by name, labels and log options merged by key, command and
/// log driver replaced). Everything else is kept.
pub(crate) fn render(
    td: &Value,
    container: &str,
    image: &str,
    edits: &ContainerEdits,
) -> Result<Value> {
    let mut out = td.clone();
    let cs = out
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| problem("rendered", "has no containerDefinitions"))?;
    let c = cs
        .iter_mut()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .ok_or_else(|| problem("rendered", format!("has no container named {container:?}")))?;
    let obj = c
        .as_object_mut()
        .ok_or_else(|| problem("rendered", "a container definition is not an object"))?;
    obj.insert("image".into(), Value::String(image.to_string()));
    if !edits.env_files.is_empty() {
        // As amazon-ecs-render-task-definition does: the given files replace the container's.
        let files = edits
            .env_files
            .iter()
            .map(|arn| serde_json::json!({"value": arn, "type": "s3"}))
            .collect();
        obj.insert("environmentFiles".into(), Value::Array(files));
    }
    merge_named(obj, "environment", "value", &edits.environment)?;
    merge_named(obj, "secrets", "valueFrom", &edits.secrets)?;
    merge_map(obj, "dockerLabels", &edits.docker_labels)?;
    if let Some(command) = &edits.command {
        obj.insert(
            "command".into(),
            Value::Array(command.iter().cloned().map(Value::String).collect()),
        );
    }
    if edits.log_driver.is_some() || !edits.log_options.is_empty() {
        let log = obj
            .entry("logConfiguration")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| problem("rendered", "logConfiguration is not an object"))?;
        if let Some(driver) = &edits.log_driver {
            log.insert("logDriver".into(), Value::String(driver.clone()));
        }
        merge_map(log, "options", &edits.log_options)?;
        if !log.contains_key("logDriver") {
            return Err(Error::invalid_input(
                "log-configuration-options",
                container,
                "the container has no logConfiguration.logDriver; give log-configuration-log-driver too (e.g. awslogs)",
            ));
        }
    }
    if let Some(top) = out.as_object_mut() {
        for (key, role) in [
            ("taskRoleArn", &edits.task_role_arn),
            ("executionRoleArn", &edits.execution_role_arn),
        ] {
            if let Some(arn) = role {
                top.insert(key.into(), Value::String(arn.clone()));
            }
        }
    }
    Ok(out)
}

/// The task definition without its null and empty values, as amazon-ecs-deploy-task-definition
/// cleans a file before it registers it: null, `""`, and lists and objects holding nothing else
/// are dropped unless their key is in `keep` (its `keep-null-value-keys`); then the empty values
/// that carry meaning come back (an environment entry's `value: ""`: an empty variable, not an
/// unset one; an App Mesh proxy property's empty `name` or `value`). Pure.
pub(crate) fn without_empty_values(td: &Value, keep: &[String]) -> Value {
    let mut cleaned = clean_empty(td, keep);
    keep_meaningful_empties(&mut cleaned);
    cleaned
}

/// The deploy action's `isEmptyValue`: a kept key is never empty; a list or object is empty
/// when all it holds is. Unlike there, an object holding a kept key's empty value is not empty
/// (there `options: {"tag": ""}` is dropped whole even with `tag` kept, which its own test
/// means to keep).
fn is_empty_value(v: &Value, key: Option<&str>, keep: &[String]) -> bool {
    if key.is_some_and(|k| keep.iter().any(|x| x == k)) {
        return false;
    }
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(|e| is_empty_value(e, None, keep)),
        Value::Object(o) => o.iter().all(|(k, e)| is_empty_value(e, Some(k), keep)),
        _ => false,
    }
}

/// The deploy action's JSON replacer, applied top-down: empty members dropped, empty list
/// items filtered out (a scalar here passed its parent's filter, or is a kept key's value).
fn clean_empty(v: &Value, keep: &[String]) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, e)| !is_empty_value(e, Some(k), keep))
                .map(|(k, e)| (k.clone(), clean_empty(e, keep)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| !is_empty_value(e, None, keep))
                .map(|e| clean_empty(e, keep))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The deploy action's `maintainValidObjects`: an environment entry without `value` gets
/// `value: ""`; an APPMESH proxy property without `name` or `value` gets `""`.
fn keep_meaningful_empties(td: &mut Value) {
    if let Some(proxy) = td.get_mut("proxyConfiguration")
        && proxy.get("type").and_then(Value::as_str) == Some("APPMESH")
    {
        let properties = proxy.get_mut("properties").and_then(Value::as_array_mut);
        for p in properties
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            for key in ["value", "name"] {
                p.entry(key).or_insert_with(|| Value::String(String::new()));
            }
        }
    }
    let containers = td
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut);
    for c in containers.into_iter().flatten() {
        let env = c.get_mut("environment").and_then(Value::as_array_mut);
        for e in env.into_iter().flatten().filter_map(Value::as_object_mut) {
            e.entry("value")
                .or_insert_with(|| Value::String(String::new()));
        }
    }
}

/// The image a container runs, if set.
pub(crate) fn container_image<'a>(td: &'a Value, container: &str) -> Option<&'a str> {
    td.get("containerDefinitions")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?
        .get("image")?
        .as_str()
}

/// True when two registrable task definitions are the same (ignoring key order and read-only fields).
#[cfg(test)]
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    strip(a) == strip(b)
}

fn strip(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for f in READ_ONLY_FIELDS {
            o.remove(*f);
        }
        o.remove("tags");
    }
    v
}

/// The first container port of `container` (the load balancer target of blue/green paths).
pub(crate) fn container_port(td: &Value, container: &str) -> Option<i32> {
    td.get("containerDefinitions")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?
        .get("portMappings")?
        .as_array()?
        .iter()
        .find_map(|p| p.get("containerPort")?.as_i64())
        .and_then(|p| i32::try_from(p).ok())
}

/// True when registering `rendered` would give the task definition `live` already is: equal
/// after dropping what ECS fills in by itself when it registers (empty lists, `essential: true`,
/// container `cpu: 0`, port `protocol: "tcp"`, a `hostPort` of 0 or equal to the container port)
/// and ignoring the order of environment variables. A file deployed once is then "the same" as
/// the revision ECS made of it, so a re-run registers nothing.
pub(crate) fn equivalent(rendered: &Value, live: &Value) -> bool {
    canonical(&strip(rendered)) == canonical(&strip(live))
}

fn canonical(v: &Value) -> Value {
    let mut v = prune(v).unwrap_or(Value::Null);
    if let Some(cs) = v
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
    {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            if c.get("essential") == Some(&Value::Bool(true)) {
                c.remove("essential");
            }
            if c.get("cpu").and_then(Value::as_i64) == Some(0) {
                c.remove("cpu");
            }
            for key in ["environment", "secrets"] {
                if let Some(list) = c.get_mut(key).and_then(Value::as_array_mut) {
                    list.sort_by_key(|e| e.get("name").and_then(Value::as_str).map(str::to_string));
                }
            }
            if let Some(ports) = c.get_mut("portMappings").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    if p.get("protocol").and_then(Value::as_str) == Some("tcp") {
                        p.remove("protocol");
                    }
                    let host = p.get("hostPort").and_then(Value::as_i64);
                    if host == Some(0) || host == p.get("containerPort").and_then(Value::as_i64) {
                        p.remove("hostPort");
                    }
                }
            }
        }
    }
    v
}

/// Drops nulls, empty arrays and empty objects, recursively (ECS adds them when it registers).
fn prune(v: &Value) -> Option<Value> {
    prune_empty(v, false)
}

/// `v` without nulls (and, with `strings`, empty strings), and without the lists and objects
/// left empty by that, recursively; `None` when nothing is left.
fn prune_empty(v: &Value, strings: bool) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::String(s) if strings && s.is_empty() => None,
        Value::Array(a) => {
            let items: Vec<Value> = a.iter().filter_map(|e| prune_empty(e, strings)).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(o) => {
            let m: Map<String, Value> = o
                .iter()
                .filter_map(|(k, e)| prune_empty(e, strings).map(|e| (k.clone(), e)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        other => Some(other.clone()),
    }
}

/// A unified diff of two task definitions as pretty JSON (keys sorted), for the dry run.
pub(crate) fn diff(before: &Value, after: &Value, before_name: &str, after_name: &str) -> String {
    let a = serde_json::to_string_pretty(&strip(before)).unwrap_or_default();
    let b = serde_json::to_string_pretty(&strip(after)).unwrap_or_default();
    if a == b {
        return String::from("(no change)\n");
    }
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(before_name, after_name)
        .to_string()
}

/// `family:revision` from a task definition ARN (or the input unchanged).
pub(crate) fn short_task_definition(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn td() -> Value {
        json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:7",
            "revision": 7, "status": "ACTIVE",
            "family": "web1",
            "networkMode": "bridge",
            "containerDefinitions": [
                {"name": "web1", "image": "old:1", "memoryReservation": 256,
                 "portMappings": [{"containerPort": 8000, "hostPort": 0}],
                 "environment": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "envoy:1"}
            ]
        })
    }

    #[test]
    fn describe_output_is_unwrapped_and_read_only_fields_dropped() {
        let text = json!({"taskDefinition": td()}).to_string();
        let v = parse("file.json", &text).unwrap();
        assert!(v.get("revision").is_none());
        assert!(v.get("taskDefinitionArn").is_none());
        assert_eq!(v["family"], "web1");
    }

    #[test]
    fn render_swaps_only_the_image_and_merges_env() {
        let v = normalize("t", td()).unwrap();
        let out = render(
            &v,
            "web1",
            "repo:v2",
            &ContainerEdits::env(vec![("A".into(), "9".into()), ("B".into(), "2".into())]),
        )
        .unwrap();
        assert_eq!(out["containerDefinitions"][0]["image"], "repo:v2");
        assert_eq!(
            out["containerDefinitions"][0]["environment"],
            json!([{"name":"A","value":"9"},{"name":"B","value":"2"}])
        );
        assert_eq!(out["containerDefinitions"][1], v["containerDefinitions"][1]);
        assert_eq!(
            out["containerDefinitions"][0]["portMappings"],
            v["containerDefinitions"][0]["portMappings"]
        );
    }

    #[test]
    fn empty_values_are_dropped_as_the_deploy_action_drops_them() {
        let v = json!({
            "family": "web1",
            "cpu": null,
            "taskRoleArn": "",
            "volumes": [],
            "placementConstraints": [{}],
            "containerDefinitions": [{
                "name": "web1", "essential": false, "memory": 0,
                "environment": [{"name": "A", "value": "1"}, {"name": null, "value": ""}],
                "healthCheck": {"command": [], "retries": null}
            }]
        });
        assert_eq!(
            without_empty_values(&v, &[]),
            json!({
                "family": "web1",
                "containerDefinitions": [{
                    "name": "web1", "essential": false, "memory": 0,
                    "environment": [{"name": "A", "value": "1"}]
                }]
            })
        );
    }

    /// amazon-ecs-deploy-task-definition's index.test.js, 'cleans empty strings and objects out
    /// of the task definition contents': the exact payload it expects RegisterTaskDefinition
    /// to get (read-only fields are dropped by `normalize`, as by its removeIgnoredAttributes).
    #[test]
    fn the_deploy_actions_cleaning_case_gives_the_payload_its_test_expects() {
        let file = json!({
            "memory": "",
            "containerDefinitions": [{
                "name": "sample-container",
                "logConfiguration": {},
                "repositoryCredentials": {"credentialsParameter": ""},
                "command": [""],
                "environment": [
                    {"name": "hello", "value": "world"},
                    {"name": "test", "value": ""},
                    {"name": "", "value": ""}
                ],
                "secretOptions": [{"name": "", "valueFrom": ""}],
                "cpu": 0,
                "essential": false
            }],
            "requiresCompatibilities": ["EC2"],
            "registeredAt": 1611690781,
            "family": "task-def-family"
        });
        let td = normalize("t", without_empty_values(&file, &[])).unwrap();
        assert_eq!(
            td,
            json!({
                "family": "task-def-family",
                "containerDefinitions": [{
                    "name": "sample-container",
                    "cpu": 0,
                    "essential": false,
                    "environment": [
                        {"name": "hello", "value": "world"},
                        {"name": "test", "value": ""}
                    ]
                }],
                "requiresCompatibilities": ["EC2"]
            })
        );
        // 'cleans null keys' and 'cleans empty arrays'.
        assert_eq!(
            without_empty_values(&json!({"ipcMode": null, "family": "f", "tags": []}), &[]),
            json!({"family": "f"})
        );
    }

    /// index.test.js 'maintains empty keys in proxyConfiguration.properties for APPMESH'.
    #[test]
    fn app_mesh_proxy_properties_keep_their_empty_names_and_values() {
        let file = json!({
            "family": "task-def-family",
            "containerDefinitions": [{"name": "c", "environment": [{"name": "", "value": ""}]}],
            "proxyConfiguration": {
                "type": "APPMESH",
                "containerName": "envoy",
                "properties": [
                    {"name": "ProxyIngressPort", "value": "15000"},
                    {"name": "IgnoredGID", "value": ""},
                    {"name": "EgressIgnoredPorts", "value": ""},
                    {"value": "some-value"}
                ]
            }
        });
        assert_eq!(
            without_empty_values(&file, &[]),
            json!({
                "family": "task-def-family",
                "containerDefinitions": [{"name": "c"}],
                "proxyConfiguration": {
                    "type": "APPMESH",
                    "containerName": "envoy",
                    "properties": [
                        {"name": "ProxyIngressPort", "value": "15000"},
                        {"name": "IgnoredGID", "value": ""},
                        {"name": "EgressIgnoredPorts", "value": ""},
                        {"name": "", "value": "some-value"}
                    ]
                }
            })
        );
    }

    /// index.test.js 'preserves empty string / array / object values for specified keys when
    /// using keep-null-value-keys'.
    #[test]
    fn keep_null_value_keys_keeps_the_empty_values_of_those_keys() {
        let keep = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let file = json!({
            "family": "f",
            "containerDefinitions": [{
                "name": "c",
                "environment": [{"name": "TEST_ENV", "value": ""}],
                "logConfiguration": {"logDriver": "splunk", "options": {"tag": ""}},
                "command": [],
                "essential": true
            }],
            "placementConstraints": {},
            "volumes": {}
        });
        let strings = without_empty_values(&file, &keep(&["environment", "tag"]));
        let c = &strings["containerDefinitions"][0];
        assert_eq!(c["environment"][0]["value"], "");
        assert_eq!(c["logConfiguration"]["options"]["tag"], "");
        assert!(c.get("command").is_none());
        let arrays = without_empty_values(&file, &keep(&["command", "environment"]));
        assert_eq!(arrays["containerDefinitions"][0]["command"], json!([]));
        let objects = without_empty_values(&file, &keep(&["placementConstraints", "volumes"]));
        assert_eq!(objects["placementConstraints"], json!({}));
        assert_eq!(objects["volumes"], json!({}));
        assert!(strings.get("volumes").is_none());
    }

    #[test]
    fn the_tags_next_to_a_described_revision_are_kept_as_its_own() {
        let described = json!({
            "taskDefinition": {"family": "web1", "revision": 7, "containerDefinitions": [{"name": "web1"}]},
            "tags": [{"key": "team", "value": "shop"}]
        });
        let td = normalize("t", described).unwrap();
        assert_eq!(td["tags"], json!([{"key": "team", "value": "shop"}]));
        assert!(td.get("revision").is_none());
        let no_tags = json!({"taskDefinition": {"family": "web1", "containerDefinitions": [{"name": "web1"}]}, "tags": []});
        assert!(normalize("t", no_tags).unwrap().get("tags").is_none());
    }

    #[test]
    fn render_applies_the_render_actions_container_inputs() {
        let mut v = normalize("t", td()).unwrap();
        v["containerDefinitions"][0]["secrets"] = json!([{"name": "DB", "valueFrom": "arn:old"}]);
        v["containerDefinitions"][0]["dockerLabels"] = json!({"team": "web"});
        let edits = ContainerEdits {
            environment: vec![],
            docker_labels: vec![("tier".into(), "front".into())],
            command: Some(vec!["node".into(), "server.js".into()]),
            log_driver: Some("awslogs".into()),
            log_options: vec![("awslogs-group".into(), "/ecs/web".into())],
            secrets: vec![
                ("DB".into(), "arn:new".into()),
                ("API".into(), "arn:api".into()),
            ],
            env_files: vec!["arn:aws:s3:::shop-config/web1.env".into()],
            task_role_arn: Some("arn:aws:iam::123456789012:role/web1-task".into()),
            execution_role_arn: Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole".into()),
        };
        let out = render(&v, "web1", "repo:v2", &edits).unwrap();
        assert_eq!(
            out["containerDefinitions"][0]["environmentFiles"],
            json!([{"value": "arn:aws:s3:::shop-config/web1.env", "type": "s3"}])
        );
        assert_eq!(
            out["taskRoleArn"],
            "arn:aws:iam::123456789012:role/web1-task"
        );
        assert_eq!(
            out["executionRoleArn"],
            "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
        );
        let c = &out["containerDefinitions"][0];
        assert_eq!(
            c["secrets"],
            json!([{"name": "DB", "valueFrom": "arn:new"}, {"name": "API", "valueFrom": "arn:api"}])
        );
        assert_eq!(c["dockerLabels"], json!({"team": "web", "tier": "front"}));
        assert_eq!(c["command"], json!(["node", "server.js"]));
        assert_eq!(
            c["logConfiguration"],
            json!({"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}})
        );
        assert_eq!(
            c["environment"],
            v["containerDefinitions"][0]["environment"]
        );
        assert_eq!(out["containerDefinitions"][1], v["containerDefinitions"][1]);
    }

    #[test]
    fn log_options_without_any_driver_are_refused() {
        let v = normalize("t", td()).unwrap();
        let edits = ContainerEdits {
            log_options: vec![("awslogs-group".into(), "/ecs/web".into())],
            ..ContainerEdits::default()
        };
        let err = render(&v, "web1", "repo:v2", &edits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("log-configuration-log-driver"), "{err}");
    }

    #[test]
    fn container_choice_is_required_with_several() {
        let v = normalize("t", td()).unwrap();
        assert!(
            pick_container("t", &v, None)
                .unwrap_err()
                .to_string()
                .contains("web1, sidecar")
        );
        assert!(pick_container("t", &v, Some("nope")).is_err());
        assert_eq!(pick_container("t", &v, Some("sidecar")).unwrap(), "sidecar");
    }

    #[test]
    fn not_a_task_definition_is_refused() {
        assert!(parse("x", "[]").is_err());
        assert!(parse("x", r#"{"family": "f"}"#).is_err());
        assert!(parse("x", r#"{"family": "f", "containerDefinitions": []}"#).is_err());
        assert!(parse("x", r#"{"containerDefinitions": [{"name":"a"}]}"#).is_err());
    }

    #[test]
    fn same_ignores_read_only_fields_and_diff_shows_image() {
        let v = normalize("t", td()).unwrap();
        assert!(same(&v, &td()));
        let out = render(&v, "web1", "repo:v2", &ContainerEdits::default()).unwrap();
        assert!(!same(&v, &out));
        let d = diff(&v, &out, "live", "new");
        assert!(
            d.contains("-      \"image\": \"old:1\"")
                && d.contains("+      \"image\": \"repo:v2\""),
            "{d}"
        );
    }

    #[test]
    fn equivalent_ignores_what_ecs_fills_in_on_register() {
        let file = json!({"family": "web1", "networkMode": "bridge", "containerDefinitions": [
            {"name": "web1", "image": "r:1", "memoryReservation": 256,
             "portMappings": [{"containerPort": 8000, "hostPort": 0}],
             "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]});
        let live = json!({"taskDefinitionArn": "arn:x", "revision": 3, "family": "web1",
            "networkMode": "bridge", "volumes": [], "placementConstraints": [],
            "containerDefinitions": [
            {"name": "web1", "image": "r:1", "memoryReservation": 256, "cpu": 0,
             "essential": true, "mountPoints": [], "volumesFrom": [],
             "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
             "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]});
        assert!(equivalent(&file, &live));
        let newer = render(&file, "web1", "r:2", &ContainerEdits::default()).unwrap();
        assert!(!equivalent(&newer, &live));
        assert_eq!(container_port(&live, "web1"), Some(8000));
        assert_eq!(container_port(&live, "nope"), None);
    }
}
