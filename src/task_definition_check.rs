//! The task definition checked against the ECS API's own model before anything is written: every
//! field the AWS SDK's model of RegisterTaskDefinition knows gets the JSON type the API takes
//! (`"memory": "256"` in a container, or `"portMappings": "3000"`, is refused in the plan and the
//! dry run, pointing at its line, not by RegisterTaskDefinition); a field the model does not
//! know is kept (the raw register sends it as written: a newer ECS field works) and named in a
//! warning, in case it is a typo; and the registered JSON is bounded by ECS's own limit.
//!
//! The SDK's types have no serde, but each carries its Smithy schema (member names as sent, and
//! their shape types); only the link from a structure member to the structure's own schema is
//! not in them, so [`LINKS`] holds it (a test checks it covers every structure the model
//! reaches, so a newer SDK cannot leave one unchecked unnoticed).

use std::path::Path;

use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::types as t;
use aws_smithy_schema::{Schema, ShapeType};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::location::{Step, json_path_at, json_path_text};

type S = &'static Schema<'static>;

/// ECS refuses a task definition larger than this (RegisterTaskDefinition: 64 KiB).
pub const MAX_BYTES: usize = 64 * 1024;

/// The wrong fields named in one message at most (the rest are counted).
const SHOWN: usize = 10;

const INPUT: S = RegisterTaskDefinitionInput::SCHEMA;

/// Which structure a structure member (or the elements of a list member) holds: (parent,
/// member name, the member's structure). Generated from the SDK's source (its fields' Rust types).
// `inferenceAccelerators` is deprecated in the model, which still takes it.
#[allow(deprecated)]
static LINKS: &[(S, &str, S)] = &[
    (
        INPUT,
        "containerDefinitions",
        t::ContainerDefinition::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "repositoryCredentials",
        t::RepositoryCredentials::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "portMappings",
        t::PortMapping::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "restartPolicy",
        t::ContainerRestartPolicy::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "environment",
        t::KeyValuePair::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "environmentFiles",
        t::EnvironmentFile::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "mountPoints",
        t::MountPoint::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "volumesFrom",
        t::VolumeFrom::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "linuxParameters",
        t::LinuxParameters::SCHEMA,
    ),
    (
        t::LinuxParameters::SCHEMA,
        "capabilities",
        t::KernelCapabilities::SCHEMA,
    ),
    (t::LinuxParameters::SCHEMA, "devices", t::Device::SCHEMA),
    (t::LinuxParameters::SCHEMA, "tmpfs", t::Tmpfs::SCHEMA),
    (t::ContainerDefinition::SCHEMA, "secrets", t::Secret::SCHEMA),
    (
        t::ContainerDefinition::SCHEMA,
        "dependsOn",
        t::ContainerDependency::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "extraHosts",
        t::HostEntry::SCHEMA,
    ),
    (t::ContainerDefinition::SCHEMA, "ulimits", t::Ulimit::SCHEMA),
    (
        t::ContainerDefinition::SCHEMA,
        "logConfiguration",
        t::LogConfiguration::SCHEMA,
    ),
    (
        t::LogConfiguration::SCHEMA,
        "secretOptions",
        t::Secret::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "healthCheck",
        t::HealthCheck::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "systemControls",
        t::SystemControl::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "resourceRequirements",
        t::ResourceRequirement::SCHEMA,
    ),
    (
        t::ResourceRequirement::SCHEMA,
        "sharingStrategy",
        t::SharingStrategy::SCHEMA,
    ),
    (
        t::ContainerDefinition::SCHEMA,
        "firelensConfiguration",
        t::FirelensConfiguration::SCHEMA,
    ),
    (INPUT, "volumes", t::Volume::SCHEMA),
    (t::Volume::SCHEMA, "host", t::HostVolumeProperties::SCHEMA),
    (
        t::Volume::SCHEMA,
        "dockerVolumeConfiguration",
        t::DockerVolumeConfiguration::SCHEMA,
    ),
    (
        t::Volume::SCHEMA,
        "efsVolumeConfiguration",
        t::EfsVolumeConfiguration::SCHEMA,
    ),
    (
        t::EfsVolumeConfiguration::SCHEMA,
        "authorizationConfig",
        t::EfsAuthorizationConfig::SCHEMA,
    ),
    (
        t::Volume::SCHEMA,
        "s3filesVolumeConfiguration",
        t::S3FilesVolumeConfiguration::SCHEMA,
    ),
    (
        t::Volume::SCHEMA,
        "fsxWindowsFileServerVolumeConfiguration",
        t::FSxWindowsFileServerVolumeConfiguration::SCHEMA,
    ),
    (
        t::FSxWindowsFileServerVolumeConfiguration::SCHEMA,
        "authorizationConfig",
        t::FSxWindowsFileServerAuthorizationConfig::SCHEMA,
    ),
    (
        INPUT,
        "placementConstraints",
        t::TaskDefinitionPlacementConstraint::SCHEMA,
    ),
    (INPUT, "tags", t::Tag::SCHEMA),
    (INPUT, "proxyConfiguration", t::ProxyConfiguration::SCHEMA),
    (
        t::ProxyConfiguration::SCHEMA,
        "properties",
        t::KeyValuePair::SCHEMA,
    ),
    (
        INPUT,
        "inferenceAccelerators",
        t::InferenceAccelerator::SCHEMA,
    ),
    (INPUT, "ephemeralStorage", t::EphemeralStorage::SCHEMA),
    (INPUT, "runtimePlatform", t::RuntimePlatform::SCHEMA),
    (
        t::SharingStrategy::SCHEMA,
        "nvidiaMps",
        t::NvidiaMpsAllocation::SCHEMA,
    ),
];

/// The schema of the structure that `member` of `parent` holds.
fn link(parent: S, member: &str) -> Option<S> {
    LINKS
        .iter()
        .find(|(p, m, _)| std::ptr::eq(*p, parent) && *m == member)
        .map(|(_, _, s)| *s)
}

/// What the check found: fields of the wrong type, and fields the model does not know.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Findings {
    /// Each wrong field: its path and what is wrong.
    pub wrong: Vec<(Vec<Step>, String)>,
    /// Each field the SDK's model does not know.
    pub unknown: Vec<Vec<Step>>,
}

/// Checks a registrable task definition (read-only fields already dropped) against the SDK's
/// model of RegisterTaskDefinition. Pure.
pub(crate) fn check(td: &Value) -> Findings {
    let mut out = Findings::default();
    let mut path = Vec::new();
    structure(td, INPUT, &mut path, &mut out);
    out
}

/// What a JSON value is, in words.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(n) if n.is_i64() || n.is_u64() => "a whole number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The members of a structure (or a union: one member at most) at `path`.
fn structure(v: &Value, schema: S, path: &mut Vec<Step>, out: &mut Findings) {
    let Some(obj) = v.as_object() else {
        out.wrong.push((
            path.clone(),
            format!("is {}; the ECS API takes an object here", kind(v)),
        ));
        return;
    };
    if schema.shape_type() == ShapeType::Union && obj.values().filter(|v| !v.is_null()).count() > 1
    {
        out.wrong.push((
            path.clone(),
            "sets more than one member; the ECS API takes exactly one here".into(),
        ));
    }
    for (key, value) in obj {
        path.push(Step::Key(key.clone()));
        match schema
            .members()
            .iter()
            .find(|m| m.member_name() == Some(key.as_str()))
        {
            None => out.unknown.push(path.clone()),
            // JSON null is "not given" to the ECS API.
            Some(_) if value.is_null() => {}
            Some(member) => shaped(value, member, schema, key, path, out),
        }
        path.pop();
    }
}

/// One value of the shape `member` (of structure `owner`, named `name`; list elements and map
/// values are checked against their own member schema, their structures found through it).
fn shaped(
    v: &Value,
    member: &Schema<'_>,
    owner: S,
    name: &str,
    path: &mut Vec<Step>,
    out: &mut Findings,
) {
    let wants = |what: &str, hint: &str, out: &mut Findings| {
        // A short scalar is quoted as written; a list or object is only named.
        let shown = match v {
            Value::Array(_) | Value::Object(_) => String::new(),
            _ => Some(v.to_string())
                .filter(|s| s.len() <= 40)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default(),
        };
        out.wrong.push((
            path.clone(),
            format!("is {}{shown}; the ECS API takes {what} here{hint}", kind(v)),
        ));
    };
    if let Some((what, hint)) = scalar_misfit(member.shape_type(), v) {
        return wants(what, hint, out);
    }
    match member.shape_type() {
        ShapeType::List => {
            let Some(items) = v.as_array() else {
                let hint = if v.is_object() || v.is_string() || v.is_number() {
                    ": put it in [ ]"
                } else {
                    ""
                };
                return wants("a list", hint, out);
            };
            let Some(element) = member.member() else {
                return;
            };
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                if !item.is_null() {
                    shaped(item, element, owner, name, path, out);
                }
                path.pop();
            }
        }
        ShapeType::Map => {
            let Some(entries) = v.as_object() else {
                return wants("an object (a map of names to values)", "", out);
            };
            let Some(value) = member.member() else { return };
            for (k, item) in entries {
                path.push(Step::Key(k.clone()));
                if !item.is_null() {
                    shaped(item, value, owner, name, path, out);
                }
                path.pop();
            }
        }
        ShapeType::Structure | ShapeType::Union => match link(owner, name) {
            Some(s) => structure(v, s, path, out),
            None if !v.is_object() => wants("an object", "", out),
            None => {}
        },
        _ => {}
    }
}

/// What a scalar shape takes and a hint, when `v` is not of it (`None`: it fits, or the shape
/// is not a scalar). Pure.
fn scalar_misfit(shape: ShapeType, v: &Value) -> Option<(&'static str, &'static str)> {
    let quoted_number = v.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok());
    let unquote = if quoted_number {
        ": write the number without quotes"
    } else {
        ""
    };
    let fits = match shape {
        ShapeType::String | ShapeType::Blob => v.is_string(),
        ShapeType::Boolean => v.is_boolean(),
        ShapeType::Byte | ShapeType::Short | ShapeType::Integer => {
            v.as_i64().and_then(|n| i32::try_from(n).ok()).is_some()
        }
        ShapeType::Long => v.as_i64().is_some(),
        ShapeType::Float | ShapeType::Double | ShapeType::BigInteger | ShapeType::BigDecimal => {
            v.is_number()
        }
        ShapeType::Timestamp => v.is_number() || v.is_string(),
        _ => true,
    };
    if fits {
        return None;
    }
    Some(match shape {
        ShapeType::String | ShapeType::Blob if v.is_number() || v.is_boolean() => {
            ("a string", ": write it in quotes")
        }
        ShapeType::String | ShapeType::Blob => ("a string", ""),
        ShapeType::Boolean if v.is_string() => ("true or false", ", without quotes"),
        ShapeType::Boolean => ("true or false", ""),
        ShapeType::Byte | ShapeType::Short | ShapeType::Integer => {
            ("a whole number (32-bit)", unquote)
        }
        ShapeType::Long => ("a whole number", unquote),
        ShapeType::Timestamp => ("a time (seconds since 1970)", ""),
        _ => ("a number", unquote),
    })
}

/// Checks a task definition file: a field of the wrong type is an error located at its line
/// (every wrong field named in it); fields the model does not know are printed in one warning
/// and kept. `wrapped`: the file holds `{"taskDefinition": …}` (as describe-task-definition
/// prints it), so lines are looked for below that key.
pub(crate) fn check_file(
    source_name: &str,
    path: &Path,
    text: &str,
    td: &Value,
    wrapped: bool,
) -> Result<()> {
    let found = check(td);
    let located = |p: &[Step]| {
        let mut full = Vec::with_capacity(p.len() + 1);
        if wrapped {
            full.push(Step::Key("taskDefinition".into()));
        }
        full.extend_from_slice(p);
        json_path_at(text, &full)
    };
    if !found.unknown.is_empty() {
        let names: Vec<String> = found
            .unknown
            .iter()
            .take(SHOWN)
            .map(|p| json_path_text(p))
            .collect();
        let more = found.unknown.len().saturating_sub(SHOWN);
        let line = located(&found.unknown[0])
            .map(|(l, _)| format!(" (line {l})"))
            .unwrap_or_default();
        crate::runner::console::warning(&format!(
            "task definition {source_name}{line}: {}{} not in the ECS API's model this action knows; kept and sent as written (a field newer than the action's AWS SDK works), but check the spelling",
            names.join(", "),
            if more > 0 {
                format!(" and {more} more are")
            } else if names.len() == 1 {
                " is".into()
            } else {
                " are".into()
            }
        ));
    }
    let Some((first, _)) = found.wrong.first() else {
        return Ok(());
    };
    let mut lines: Vec<String> = found
        .wrong
        .iter()
        .take(SHOWN)
        .map(|(p, problem)| {
            let at = located(p)
                .map(|(l, _)| format!(" (line {l})"))
                .unwrap_or_default();
            format!("{}{at} {problem}", json_path_text(p))
        })
        .collect();
    let more = found.wrong.len().saturating_sub(SHOWN);
    if more > 0 {
        lines.push(format!("and {more} more"));
    }
    Err(Error::TaskDefinition {
        source_name: source_name.to_string(),
        problem: format!(
            "{}; fix the file (RegisterTaskDefinition would refuse it; nothing was written)",
            lines.join("; ")
        ),
    }
    .in_file(path, located(first)))
}

/// Reads, parses and checks the task definition file at `path` (shown as `source_name`): its size
/// before it is read, a key written twice, the JSON, the shape ECS requires, every field's type
/// and the registered size, each refusal pointing at the file (and line). The registrable task
/// definition it holds.
pub(crate) fn load_file(source_name: &str, path: &Path) -> Result<Value> {
    let text = crate::file_text::read(
        path,
        "the task definition file",
        crate::file_text::FILE_LIMIT,
    )?;
    let raw: Value = serde_json::from_str(&text).map_err(|e| {
        Error::TaskDefinition {
            source_name: source_name.to_string(),
            problem: format!("is not valid JSON ({e}); use the output of `aws ecs describe-task-definition` or a registrable task definition"),
        }
        .in_file(path, Some((e.line(), e.column())))
    })?;
    if let Some(d) = crate::file_text::json_duplicate_key(&text) {
        return Err(Error::TaskDefinition {
            source_name: source_name.to_string(),
            problem: format!(
                "has the key {:?} twice in one object (line {}); which one is meant? keep one",
                d.key, d.at.0
            ),
        }
        .in_file(path, Some(d.at)));
    }
    let wrapped = raw.get("taskDefinition").is_some_and(Value::is_object);
    let td =
        crate::task_definition::normalize(source_name, raw).map_err(|e| e.in_file(path, None))?;
    check_file(source_name, path, &text, &td, wrapped)?;
    check_size(source_name, &td).map_err(|e| e.in_file(path, None))?;
    Ok(td)
}

/// Refuses a task definition that ECS would refuse for its size, before anything is written.
pub(crate) fn check_size(source_name: &str, td: &Value) -> Result<()> {
    let size = serde_json::to_string(td)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_BYTES {
        return Err(Error::TaskDefinition {
            source_name: source_name.to_string(),
            problem: format!(
                "is {size} bytes as sent, more than the {MAX_BYTES} ECS registers (its task definition size limit); move large values out (environment into environmentFiles or secrets, fewer containers)"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(f: &Findings) -> Vec<String> {
        f.wrong.iter().map(|(p, _)| json_path_text(p)).collect()
    }

    #[test]
    fn a_well_typed_task_definition_has_no_findings() {
        let td = json!({
            "family": "web1", "cpu": "256", "memory": "512", "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "tags": [{"key": "team", "value": "web"}],
            "ephemeralStorage": {"sizeInGiB": 30},
            "volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}],
            "containerDefinitions": [{
                "name": "web1", "image": "r/web1:1", "memory": 256, "cpu": 0, "essential": true,
                "portMappings": [{"containerPort": 3000, "protocol": "tcp"}],
                "environment": [{"name": "A", "value": "1"}],
                "dockerLabels": {"a": "b"},
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web1"}},
                "healthCheck": {"command": ["CMD", "true"], "interval": 30},
                "linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"]}, "initProcessEnabled": true},
                "resourceRequirements": [{"type": "GPU", "value": "1", "sharingStrategy": {"nvidiaMps": {"memory": 1}}}],
                "secrets": null
            }]
        });
        assert_eq!(check(&td), Findings::default());
    }

    #[test]
    fn wrongly_typed_fields_are_named_with_their_path() {
        let td = json!({
            "family": "web1", "cpu": 256,
            "containerDefinitions": [{
                "name": "web1", "memory": "256", "portMappings": "3000", "essential": "true",
                "healthCheck": {"command": "curl", "retries": 3.5},
                "dockerLabels": {"a": 1},
                "environment": [{"name": "A", "value": 1}]
            }]
        });
        let f = check(&td);
        assert_eq!(
            paths(&f),
            [
                "cpu",
                "containerDefinitions[0].memory",
                "containerDefinitions[0].portMappings",
                "containerDefinitions[0].essential",
                "containerDefinitions[0].healthCheck.command",
                "containerDefinitions[0].healthCheck.retries",
                "containerDefinitions[0].dockerLabels.a",
                "containerDefinitions[0].environment[0].value",
            ]
        );
        assert!(
            f.wrong[1].1.contains("whole number") && f.wrong[1].1.contains("without quotes"),
            "{:?}",
            f.wrong[1]
        );
        assert!(f.wrong[0].1.contains("in quotes"), "{:?}", f.wrong[0]);
        assert!(f.unknown.is_empty());
    }

    #[test]
    fn fields_the_model_does_not_know_are_kept_apart() {
        let td = json!({"family": "f", "someNewField": {"x": 1},
            "containerDefinitions": [{"name": "a", "imagee": "typo"}]});
        let f = check(&td);
        assert!(f.wrong.is_empty());
        let unknown: Vec<String> = f.unknown.iter().map(|p| json_path_text(p)).collect();
        assert_eq!(unknown, ["someNewField", "containerDefinitions[0].imagee"]);
    }

    #[test]
    fn a_wrong_field_in_a_file_points_at_its_line() {
        let text = "{\n  \"family\": \"web1\",\n  \"containerDefinitions\": [{\n    \"name\": \"web1\",\n    \"memory\": \"256\"\n  }]\n}";
        let td: Value = serde_json::from_str(text).unwrap();
        let e = check_file("td.json", Path::new("td.json"), text, &td, false).unwrap_err();
        let at = e.file_location().unwrap();
        assert_eq!((at.line, at.col), (Some(5), Some(5)));
        let msg = e.to_string();
        assert!(
            msg.contains("containerDefinitions[0].memory (line 5) is a string (\"256\")"),
            "{msg}"
        );
        let wrapped = format!("{{\"taskDefinition\": {text}}}");
        let e = check_file("td.json", Path::new("td.json"), &wrapped, &td, true).unwrap_err();
        assert_eq!(e.file_location().unwrap().line, Some(5));
    }

    #[test]
    fn a_task_definition_beyond_the_ecs_limit_is_refused() {
        let containers: Vec<Value> = (0..3000)
            .map(|i| json!({"name": format!("c{i}"), "image": "r/x:1"}))
            .collect();
        let td = json!({"family": "f", "containerDefinitions": containers});
        let e = check_size("big.json", &td).unwrap_err().to_string();
        assert!(e.contains("big.json") && e.contains("65536"), "{e}");
        assert!(check_size("ok", &json!({"family": "f"})).is_ok());
    }

    /// Every structure the model reaches from RegisterTaskDefinition is linked, so no field goes
    /// unchecked (this fails when a newer SDK adds a nested structure: add it to LINKS).
    #[test]
    fn every_structure_of_the_model_is_linked() {
        fn visit(s: S, seen: &mut Vec<S>, missing: &mut Vec<String>) {
            if seen.iter().any(|x| std::ptr::eq(*x, s)) {
                return;
            }
            seen.push(s);
            for m in s.members() {
                let name = m.member_name().unwrap_or_default();
                let mut inner: &Schema<'_> = m;
                while matches!(inner.shape_type(), ShapeType::List | ShapeType::Map) {
                    match inner.member() {
                        Some(e) => inner = e,
                        None => break,
                    }
                }
                if matches!(inner.shape_type(), ShapeType::Structure | ShapeType::Union) {
                    match link(s, name) {
                        Some(target) => visit(target, seen, missing),
                        None => missing.push(format!("{}.{name}", s.shape_id().as_str())),
                    }
                }
            }
        }
        let (mut seen, mut missing) = (Vec::new(), Vec::new());
        visit(INPUT, &mut seen, &mut missing);
        assert!(missing.is_empty(), "not linked: {missing:?}");
        assert!(seen.len() > 30, "{} structures", seen.len());
    }
}
