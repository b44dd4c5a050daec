//! Property tests of the parsers that read what a user or GitHub hands the action (the event
//! payload, package.json and versions, the task definition, the AppSpec, the config file, the
//! inputs): on any input, hostile or random, none panics, and every refusal names the file or
//! the input it is about, so a person knows where to look.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;

use crate::inputs::{RawInputs, Settings, Sources};

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just("256"), Just("web1"), Just("1.2.3"), Just("")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("family".to_string()),
            Just("containerDefinitions".to_string()),
            Just("name".to_string()),
            Just("memory".to_string()),
            Just("portMappings".to_string()),
            Just("version".to_string()),
            Just("taskDefinition".to_string()),
            "[a-zA-Z]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text a file could hold: JSON, a valid file cut short or with a byte changed, a byte order
/// mark, NUL bytes, or anything.
fn text(valid: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        json().prop_map(|v| v.to_string()),
        (0..=valid.len()).prop_map(move |n| valid.get(..n).unwrap_or(valid).to_string()),
        (0..valid.len(), any::<char>()).prop_map(move |(i, c)| {
            let mut s: String = valid.chars().collect();
            let at = s.char_indices().nth(i).map_or(s.len(), |(j, _)| j);
            s.insert(at, c);
            s
        }),
        Just(format!("\u{feff}{valid}")),
        Just(format!("{valid}\u{0}")),
        ".{0,64}",
        "[\\[{\"]{0,300}",
    ]
}

const TASK_DEFINITION: &str = r#"{"family": "web1", "containerDefinitions": [{"name": "web1", "image": "r/web1:1", "memory": 256, "portMappings": [{"containerPort": 80}]}]}"#;
const PACKAGE_JSON: &str = r#"{"name": "web1", "version": "1.2.3"}"#;
const APPSPEC: &str = "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: x\n        LoadBalancerInfo:\n          ContainerName: web1\n          ContainerPort: 80\n";
const CONFIG: &str = "defaults:\n  cluster: prod\napps:\n  web1:\n    service: web1\n";
const EVENT: &str = r#"{"action": "closed", "pull_request": {"merged": true, "head": {"ref": "release/web1"}, "base": {"ref": "main"}}}"#;

/// Writes `text` to a file named `name` in a fresh directory (kept alive by the guard).
fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_task_definition_check_never_panics(v in json()) {
        let found = crate::task_definition_check::check(&v);
        for (path, problem) in &found.wrong {
            prop_assert!(!problem.is_empty() && !crate::location::json_path_text(path).is_empty() || path.is_empty());
        }
    }

    #[test]
    fn a_task_definition_file_is_loaded_or_refused_naming_it(t in text(TASK_DEFINITION)) {
        let (_dir, path) = file("td-under-test.json", &t);
        if let Err(e) = crate::task_definition_check::load_file("td-under-test.json", &path) {
            prop_assert!(e.to_string().contains("td-under-test.json"), "{e}");
            prop_assert!(e.file_location().is_some(), "{e}");
        }
    }

    #[test]
    fn json_positions_never_panic(t in text(TASK_DEFINITION), key in "[a-z]{0,6}", i in 0usize..4) {
        use crate::location::Step;
        let _ = crate::location::json_path_at(&t, &[Step::Key(key.clone()), Step::Index(i), Step::Key(key.clone())]);
        let _ = crate::location::json_key_at(&t, &key);
        let _ = crate::location::json_error_at(&t);
        let _ = crate::file_text::json_duplicate_key(&t);
    }

    #[test]
    fn a_package_json_gives_a_version_or_a_refusal_naming_it(t in text(PACKAGE_JSON)) {
        let path = Path::new("apps/web1/package.json");
        if let Err(e) = crate::version::version_from_package_json(path, &t) {
            prop_assert!(e.to_string().contains("apps/web1/package.json"), "{e}");
        }
    }

    #[test]
    fn a_version_is_parsed_or_refused_naming_its_source(v in ".{0,40}", loose in any::<bool>()) {
        let format = if loose { crate::inputs::VersionFormat::Loose } else { crate::inputs::VersionFormat::Semver };
        if let Err(e) = crate::version::parse_version(&v, format, "v", "apps/web1/package.json") {
            prop_assert!(e.to_string().contains("apps/web1/package.json"), "{e}");
        }
    }

    #[test]
    fn an_appspec_is_parsed_or_refused_naming_it(t in text(APPSPEC)) {
        if let Err(e) = crate::deploy::appspec::parse("deploy/appspec.yml", &t) {
            prop_assert!(e.to_string().contains("deploy/appspec.yml"), "{e}");
        }
    }

    #[test]
    fn a_config_file_is_parsed_or_refused_naming_it(t in text(CONFIG)) {
        let path = Path::new(".github/ecs-deploy.yml");
        if let Err(e) = crate::config::parse(path, &t) {
            prop_assert!(e.to_string().contains(".github/ecs-deploy.yml"), "{e}");
        }
    }

    #[test]
    fn an_event_payload_decides_or_is_refused_naming_its_file(
        t in text(EVENT),
        event in prop_oneof![Just("pull_request"), Just("push"), Just("workflow_dispatch"), Just("issues")],
    ) {
        let (_dir, path) = file("event-under-test.json", &t);
        let settings = crate::inputs::TriggerSettings {
            app: crate::inputs::AppSelector::FromTrigger,
            base_branch: "main".into(),
            release_branch_prefix: "release/".into(),
            deploy_on: crate::inputs::DeployOn::parse("pull-request-merged,workflow-dispatch,tag,push")
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
            version: None,
        };
        if let Err(e) = crate::trigger::decide_from_file(event, &path, &settings) {
            prop_assert!(e.to_string().contains("event-under-test.json"), "{e}");
        }
    }

    #[test]
    fn an_input_is_taken_or_refused_naming_it(
        spec in prop::sample::select(crate::inputs::INPUTS.iter().filter(|s| !s.secret).map(|s| s.name).collect::<Vec<_>>()),
        value in prop_oneof![".{0,24}", Just("true".to_string()), Just("web1\r".to_string()), Just("1.5".to_string()), Just("[\"a\"".to_string())],
    ) {
        let mut raw = RawInputs::default();
        raw.values.insert(spec.to_string(), value.clone());
        let sources = Sources { raw, context: Default::default() };
        if let Err(e) = Settings::from_sources(&sources) {
            let message = e.to_string();
            prop_assert!(message.contains(spec), "{spec} = {value:?}: {message}");
        }
    }
}
