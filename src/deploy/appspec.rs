//! The CodeDeploy AppSpec for an Amazon ECS service, as a pure file format: parse (YAML or JSON),
//! check its shape, fill in the task definition ARN, generate one from the service's load balancer
//! settings, and render the text sent as CreateDeployment's `appSpecContent`.
//!
//! Keys are looked up the way `aws-actions/amazon-ecs-deploy-task-definition` does (PascalCase as
//! AWS documents them, or the same word in camelCase), so AppSpec files written for that action
//! work unchanged. The document is kept as a YAML value, so properties this module does not model
//! (`PlatformVersion`, `NetworkConfiguration`, `CapacityProviderStrategy`) reach CodeDeploy as
//! written.

use serde_yaml::{Mapping, Value};

use crate::error::{Error, Result};

/// The lifecycle events an ECS AppSpec may hook a Lambda function to, in the order they run.
pub const HOOK_EVENTS: [&str; 5] = [
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// The resource type of the one target an ECS AppSpec deploys.
pub const ECS_SERVICE_TYPE: &str = "AWS::ECS::Service";

/// How the AppSpec text is written (CodeDeploy accepts both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// A parsed AppSpec whose shape was checked by [`parse`] (version, one ECS target, hooks).
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    /// Where it came from, for error messages: the file as the user wrote it, or `generated`.
    pub source_name: String,
    pub doc: Value,
    pub format: Format,
}

/// One container of the task definition and the container ports it maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPorts {
    pub name: String,
    pub ports: Vec<i32>,
}

/// What the AppSpec has to agree with before CodeDeploy is asked to deploy it.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The task definition being deployed: the AppSpec must name exactly this one.
    pub task_definition_arn: &'a str,
    /// The containers of that task definition.
    pub containers: &'a [ContainerPorts],
    /// The service's load balancer targets (container name, port); empty when unknown.
    pub service_targets: &'a [(String, i32)],
}

/// The facts of a valid AppSpec, for logs and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub task_definition_arn: String,
    pub container_name: String,
    pub container_port: i32,
    /// (lifecycle event, Lambda function) in file order.
    pub hooks: Vec<(String, String)>,
}

fn err(source_name: &str, problem: impl Into<String>) -> Error {
    Error::AppSpec {
        source_name: source_name.to_string(),
        problem: problem.into(),
    }
}

/// `TaskDefinition` → `taskDefinition`: the second spelling the AWS action accepts.
fn camel(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The key actually used in `map` for `key` (PascalCase or camelCase), if present.
fn key_in(map: &Mapping, key: &str) -> Option<String> {
    [key.to_string(), camel(key)]
        .into_iter()
        .find(|k| map.contains_key(k.as_str()))
}

fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    key_in(map, key).and_then(|k| map.get(k.as_str()))
}

fn get_mut<'a>(map: &'a mut Mapping, key: &str) -> Option<&'a mut Value> {
    key_in(map, key).and_then(move |k| map.get_mut(k.as_str()))
}

/// Tells YAML from JSON by the first non-blank character: a JSON AppSpec is an object.
pub(crate) fn detect_format(text: &str) -> Format {
    if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Yaml
    }
}

/// Parses an AppSpec file (YAML or JSON) and checks its shape: `version: 0.0`, an optional
/// `Resources` list holding exactly one `TargetService` of type `AWS::ECS::Service`, and hooks
/// naming ECS lifecycle events. A file without `Resources` is a hooks-only file: the resources
/// are then generated from the service (see [`generate`]).
pub(crate) fn parse(source_name: &str, text: &str) -> Result<AppSpec> {
    let doc: Value = serde_yaml::from_str(crate::file_text::without_bom(text))
        .map_err(|e| err(source_name, format!("is neither valid YAML nor JSON: {e}")))?;
    let spec = AppSpec {
        source_name: source_name.to_string(),
        doc,
        format: detect_format(text),
    };
    check_shape(&spec)?;
    Ok(spec)
}

fn root(spec: &AppSpec) -> Result<&Mapping> {
    spec.doc.as_mapping().ok_or_else(|| {
        err(
            &spec.source_name,
            "is not a mapping; an ECS AppSpec starts with `version: 0.0` and `Resources:`",
        )
    })
}

fn check_shape(spec: &AppSpec) -> Result<()> {
    let name = spec.source_name.as_str();
    let map = root(spec)?;
    let version_ok = match get(map, "version") {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0) && !n.is_i64() && !n.is_u64(),
        Some(Value::String(s)) => s.trim() == "0.0",
        _ => false,
    };
    if !version_ok {
        let seen = get(map, "version")
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "nothing".into());
        return Err(err(
            name,
            format!("`version` must be 0.0 (the only AppSpec version ECS accepts); found {seen}"),
        ));
    }
    if get(map, "Resources").is_some() {
        target_properties(spec)?;
    }
    hooks(spec)?;
    Ok(())
}

/// True when the file has its own `Resources` (otherwise only its hooks are used).
pub(crate) fn has_resources(spec: &AppSpec) -> bool {
    spec.doc
        .as_mapping()
        .is_some_and(|m| get(m, "Resources").is_some())
}

/// The `Properties` mapping of the single `TargetService`, checked on the way.
fn target_properties(spec: &AppSpec) -> Result<&Mapping> {
    let name = spec.source_name.as_str();
    let map = root(spec)?;
    let resources = get(map, "Resources")
        .ok_or_else(|| {
            err(
                name,
                "has no `Resources`: add one TargetService of type AWS::ECS::Service",
            )
        })?
        .as_sequence()
        .ok_or_else(|| {
            err(
                name,
                "`Resources` must be a list holding one `- TargetService:` entry",
            )
        })?;
    if resources.len() != 1 {
        return Err(err(
            name,
            format!(
                "`Resources` must hold exactly one TargetService (an ECS deployment updates one service); found {} entries",
                resources.len()
            ),
        ));
    }
    let entry = resources[0]
        .as_mapping()
        .filter(|m| m.len() == 1)
        .ok_or_else(|| {
            err(
                name,
                "the entry of `Resources` must be a mapping with the single key `TargetService`",
            )
        })?;
    let target = get(entry, "TargetService")
        .and_then(Value::as_mapping)
        .ok_or_else(|| {
            let found = entry
                .keys()
                .next()
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            err(
                name,
                format!("the entry of `Resources` must be `TargetService` (with Type and Properties); found `{found}`"),
            )
        })?;
    match get(target, "Type").and_then(Value::as_str) {
        Some(ECS_SERVICE_TYPE) => {}
        other => {
            return Err(err(
                name,
                format!(
                    "TargetService `Type` must be {ECS_SERVICE_TYPE}; found {}",
                    other
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_else(|| "nothing".into())
                ),
            ));
        }
    }
    get(target, "Properties")
        .and_then(Value::as_mapping)
        .ok_or_else(|| {
            err(
                name,
                "TargetService has no `Properties` mapping (TaskDefinition, LoadBalancerInfo)",
            )
        })
}

fn target_properties_mut(doc: &mut Value) -> Option<&mut Mapping> {
    let resources = get_mut(doc.as_mapping_mut()?, "Resources")?.as_sequence_mut()?;
    let target = get_mut(resources.first_mut()?.as_mapping_mut()?, "TargetService")?;
    get_mut(target.as_mapping_mut()?, "Properties")?.as_mapping_mut()
}

/// The hooks as (lifecycle event, Lambda function), checked: each entry names one ECS event.
pub(crate) fn hooks(spec: &AppSpec) -> Result<Vec<(String, String)>> {
    let name = spec.source_name.as_str();
    let map = root(spec)?;
    let Some(hooks) = get(map, "Hooks") else {
        return Ok(Vec::new());
    };
    if hooks.is_null() {
        return Ok(Vec::new());
    }
    let list = hooks.as_sequence().ok_or_else(|| {
        err(
            name,
            "`Hooks` must be a list of `- <LifecycleEvent>: <Lambda function>` entries",
        )
    })?;
    let mut out = Vec::new();
    for entry in list {
        let m = entry.as_mapping().filter(|m| m.len() == 1).ok_or_else(|| {
            err(
                name,
                "each `Hooks` entry must be one `<LifecycleEvent>: <Lambda function>` pair",
            )
        })?;
        for (k, v) in m {
            let event = k.as_str().unwrap_or_default();
            let canonical = HOOK_EVENTS
                .iter()
                .find(|e| **e == event || camel(e) == event)
                .ok_or_else(|| {
                    err(
                        name,
                        format!(
                            "hook `{event}` is not an ECS lifecycle event; use one of {}",
                            HOOK_EVENTS.join(", ")
                        ),
                    )
                })?;
            let function = v.as_str().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                err(
                    name,
                    format!("hook `{event}` must name a Lambda function (name or ARN)"),
                )
            })?;
            out.push((canonical.to_string(), function.to_string()));
        }
    }
    Ok(out)
}

/// A container port written as a number or a numeric string.
fn as_port(v: &Value) -> Option<i32> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|p| i32::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|p| (1..=65535).contains(p))
}

impl AppSpec {
    /// The same AppSpec with `TaskDefinition` set to `arn` (whatever placeholder it held).
    pub(crate) fn with_task_definition(mut self, arn: &str) -> Result<AppSpec> {
        target_properties(&self)?;
        let props = target_properties_mut(&mut self.doc).ok_or_else(|| {
            err(
                &self.source_name,
                "TargetService has no `Properties` mapping",
            )
        })?;
        let key = key_in(props, "TaskDefinition").unwrap_or_else(|| "TaskDefinition".into());
        props.insert(Value::String(key), Value::String(arn.to_string()));
        Ok(self)
    }

    /// Checks everything CodeDeploy would otherwise reject only after the deployment started:
    /// the task definition is the one being deployed, and the load balancer container and port
    /// exist in it and match the service's load balancer.
    pub(crate) fn validate(&self, expected: &Expected<'_>) -> Result<Target> {
        let name = self.source_name.as_str();
        let props = target_properties(self)?;
        let task_definition_arn = get(props, "TaskDefinition")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if task_definition_arn != expected.task_definition_arn {
            return Err(err(
                name,
                format!(
                    "TaskDefinition is {task_definition_arn:?}, not the task definition being deployed ({})",
                    expected.task_definition_arn
                ),
            ));
        }
        let lb = get(props, "LoadBalancerInfo")
            .and_then(Value::as_mapping)
            .ok_or_else(|| {
                err(name, "TargetService Properties has no `LoadBalancerInfo` (ContainerName, ContainerPort): CodeDeploy moves traffic through it")
            })?;
        let container_name = get(lb, "ContainerName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(name, "LoadBalancerInfo has no `ContainerName`"))?
            .to_string();
        let container_port = get(lb, "ContainerPort").and_then(as_port).ok_or_else(|| {
            err(
                name,
                "LoadBalancerInfo has no valid `ContainerPort` (a port number 1-65535)",
            )
        })?;
        let container = expected
            .containers
            .iter()
            .find(|c| c.name == container_name)
            .ok_or_else(|| {
                let names: Vec<&str> = expected.containers.iter().map(|c| c.name.as_str()).collect();
                err(
                    name,
                    format!(
                        "LoadBalancerInfo ContainerName {container_name:?} is not a container of {} (its containers: {})",
                        expected.task_definition_arn,
                        names.join(", ")
                    ),
                )
            })?;
        if !container.ports.contains(&container_port) {
            return Err(err(
                name,
                format!(
                    "LoadBalancerInfo ContainerPort {container_port} is not a port mapping of container {container_name} (its ports: {}); fix the AppSpec or the task definition's portMappings",
                    join_ports(&container.ports)
                ),
            ));
        }
        if !expected.service_targets.is_empty()
            && !expected
                .service_targets
                .iter()
                .any(|(c, p)| *c == container_name && *p == container_port)
        {
            let targets: Vec<String> = expected
                .service_targets
                .iter()
                .map(|(c, p)| format!("{c}:{p}"))
                .collect();
            return Err(err(
                name,
                format!(
                    "LoadBalancerInfo {container_name}:{container_port} is not the service's load balancer target ({}); CodeDeploy can only move traffic for that container and port",
                    targets.join(", ")
                ),
            ));
        }
        Ok(Target {
            task_definition_arn,
            container_name,
            container_port,
            hooks: hooks(self)?,
        })
    }

    /// The text for CreateDeployment's `appSpecContent`, in the format the AppSpec came in.
    pub(crate) fn render(&self) -> Result<String> {
        match self.format {
            Format::Json => serde_json::to_string_pretty(&self.doc)
                .map_err(|e| err(&self.source_name, format!("cannot be written as JSON: {e}"))),
            Format::Yaml => serde_yaml::to_string(&self.doc)
                .map_err(|e| err(&self.source_name, format!("cannot be written as YAML: {e}"))),
        }
    }
}

fn join_ports(ports: &[i32]) -> String {
    if ports.is_empty() {
        "none".into()
    } else {
        ports
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An AppSpec for the service, made from its load balancer target (container and port) and the
/// task definition being deployed, with the given hooks (from a hooks-only file, or none).
pub(crate) fn generate(
    task_definition_arn: &str,
    container_name: &str,
    container_port: i32,
    hooks: &[(String, String)],
) -> AppSpec {
    let mut lb = Mapping::new();
    lb.insert("ContainerName".into(), container_name.into());
    lb.insert("ContainerPort".into(), container_port.into());
    let mut props = Mapping::new();
    props.insert("TaskDefinition".into(), task_definition_arn.into());
    props.insert("LoadBalancerInfo".into(), Value::Mapping(lb));
    let mut target = Mapping::new();
    target.insert("Type".into(), ECS_SERVICE_TYPE.into());
    target.insert("Properties".into(), Value::Mapping(props));
    let mut entry = Mapping::new();
    entry.insert("TargetService".into(), Value::Mapping(target));
    let mut doc = Mapping::new();
    doc.insert("version".into(), Value::Number(0.0.into()));
    doc.insert(
        "Resources".into(),
        Value::Sequence(vec![Value::Mapping(entry)]),
    );
    if !hooks.is_empty() {
        let list = hooks
            .iter()
            .map(|(event, function)| {
                let mut m = Mapping::new();
                m.insert(event.as_str().into(), function.as_str().into());
                Value::Mapping(m)
            })
            .collect();
        doc.insert("Hooks".into(), Value::Sequence(list));
    }
    AppSpec {
        source_name: "generated".into(),
        doc: Value::Mapping(doc),
        format: Format::Yaml,
    }
}

/// The hex SHA-256 of the AppSpec content, sent with it in CreateDeployment's
/// `revision.appSpecContent.sha256` (as amazon-ecs-deploy-task-definition sends it).
pub(crate) fn sha256_hex(content: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_appspec_hash_is_the_hex_sha256_of_the_content() {
        // `printf 'abc' | sha256sum`
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web1:8";

    fn containers() -> Vec<ContainerPorts> {
        vec![
            ContainerPorts {
                name: "web1".into(),
                ports: vec![3000],
            },
            ContainerPorts {
                name: "log-router".into(),
                ports: vec![],
            },
        ]
    }

    fn expected<'a>(c: &'a [ContainerPorts], t: &'a [(String, i32)]) -> Expected<'a> {
        Expected {
            task_definition_arn: ARN,
            containers: c,
            service_targets: t,
        }
    }

    const YAML: &str = "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: <TASK_DEFINITION>\n        LoadBalancerInfo:\n          ContainerName: web1\n          ContainerPort: 3000\n        PlatformVersion: LATEST\nHooks:\n  - AfterAllowTestTraffic: arn:aws:lambda:us-east-1:123456789012:function:smoke\n";

    #[test]
    fn a_generated_appspec_names_the_task_definition_container_and_port() {
        let spec = generate(ARN, "web1", 3000, &[]);
        insta::assert_snapshot!(spec.render().unwrap());
        let c = containers();
        let t = spec.validate(&expected(&c, &[])).unwrap();
        assert_eq!(
            (t.container_name.as_str(), t.container_port),
            ("web1", 3000)
        );
    }

    #[test]
    fn a_generated_appspec_keeps_the_hooks_of_a_hooks_only_file() {
        let file = parse(
            "appspec-hooks.yml",
            "version: 0.0\nHooks:\n  - BeforeInstall: pre\n  - afterAllowTraffic: post\n",
        )
        .unwrap();
        assert!(!has_resources(&file));
        let spec = generate(ARN, "web1", 3000, &hooks(&file).unwrap());
        insta::assert_snapshot!(spec.render().unwrap());
    }

    #[test]
    fn a_generated_appspec_renders_as_json_too() {
        let mut spec = generate(
            ARN,
            "web1",
            3000,
            &[("AfterInstall".into(), "check".into())],
        );
        spec.format = Format::Json;
        insta::assert_snapshot!(spec.render().unwrap());
    }

    #[test]
    fn a_yaml_file_gets_the_new_task_definition_and_keeps_other_properties() {
        let spec = parse("appspec.yml", YAML)
            .unwrap()
            .with_task_definition(ARN)
            .unwrap();
        let text = spec.render().unwrap();
        insta::assert_snapshot!(text);
        assert!(text.contains("PlatformVersion: LATEST"));
        let c = containers();
        let t = spec
            .validate(&expected(&c, &[("web1".into(), 3000)]))
            .unwrap();
        assert_eq!(t.hooks.len(), 1);
    }

    #[test]
    fn a_json_file_with_camel_case_keys_is_filled_and_stays_json() {
        let text = r#"{"version": 0.0, "resources": [{"targetService": {"type": "AWS::ECS::Service",
            "properties": {"taskDefinition": "x", "loadBalancerInfo": {"containerName": "web1", "containerPort": "3000"}}}}]}"#;
        let spec = parse("appspec.json", text)
            .unwrap()
            .with_task_definition(ARN)
            .unwrap();
        assert_eq!(spec.format, Format::Json);
        let out = spec.render().unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["resources"][0]["targetService"]["properties"]["taskDefinition"],
            ARN
        );
        let c = containers();
        assert!(spec.validate(&expected(&c, &[])).is_ok());
    }

    #[test]
    fn a_version_other_than_0_0_is_refused() {
        for text in ["version: 1.0\n", "version: 0\n", "Resources: []\n"] {
            let e = parse("a.yml", text).unwrap_err().to_string();
            assert!(e.contains("`version` must be 0.0"), "{e}");
        }
        assert!(parse("a.yml", "version: '0.0'\n").is_ok());
    }

    #[test]
    fn two_targets_or_a_wrong_type_are_refused_before_any_write() {
        let two = "version: 0.0\nResources:\n  - TargetService: {Type: AWS::ECS::Service, Properties: {}}\n  - TargetService: {Type: AWS::ECS::Service, Properties: {}}\n";
        let e = parse("a.yml", two).unwrap_err().to_string();
        assert!(e.contains("exactly one TargetService"), "{e}");
        let lambda = "version: 0.0\nResources:\n  - TargetService: {Type: AWS::Lambda::Function, Properties: {}}\n";
        let e = parse("a.yml", lambda).unwrap_err().to_string();
        assert!(e.contains("must be AWS::ECS::Service"), "{e}");
        let other = "version: 0.0\nResources:\n  - myFunction: {Type: AWS::ECS::Service}\n";
        let e = parse("a.yml", other).unwrap_err().to_string();
        assert!(e.contains("found `myFunction`"), "{e}");
    }

    #[test]
    fn an_unknown_hook_is_refused() {
        let e = parse("a.yml", "version: 0.0\nHooks:\n  - ApplicationStart: f\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an ECS lifecycle event"), "{e}");
    }

    #[test]
    fn a_container_or_port_that_the_task_definition_lacks_is_refused() {
        let c = containers();
        let spec = parse(
            "appspec.yml",
            &YAML.replace("ContainerName: web1", "ContainerName: api"),
        )
        .unwrap()
        .with_task_definition(ARN)
        .unwrap();
        let e = spec.validate(&expected(&c, &[])).unwrap_err().to_string();
        assert!(e.contains("\"api\" is not a container"), "{e}");
        let spec = parse("appspec.yml", &YAML.replace("3000", "8080"))
            .unwrap()
            .with_task_definition(ARN)
            .unwrap();
        let e = spec.validate(&expected(&c, &[])).unwrap_err().to_string();
        assert!(
            e.contains("ContainerPort 8080 is not a port mapping"),
            "{e}"
        );
    }

    #[test]
    fn a_target_other_than_the_services_load_balancer_is_refused() {
        let c = containers();
        let spec = parse("appspec.yml", YAML)
            .unwrap()
            .with_task_definition(ARN)
            .unwrap();
        let e = spec
            .validate(&expected(&c, &[("web1".into(), 80)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not the service's load balancer target (web1:80)"),
            "{e}"
        );
    }

    #[test]
    fn an_unfilled_task_definition_is_refused() {
        let c = containers();
        let spec = parse("appspec.yml", YAML).unwrap();
        let e = spec.validate(&expected(&c, &[])).unwrap_err().to_string();
        assert!(e.contains("not the task definition being deployed"), "{e}");
    }
}
