//! JSON Schema validators compiled once from the files in `schemas/`, the source of truth for the shapes
//! of each function's input and output. Every problem is reported with its JSON path.

use std::sync::LazyLock;

use jsonschema::Validator;
use serde_json::Value;

/// `schemas/produce.in.json`.
pub const PRODUCE_IN: &str = include_str!("../schemas/produce.in.json");
/// `schemas/produce.out.json`.
pub const PRODUCE_OUT: &str = include_str!("../schemas/produce.out.json");
/// `schemas/consume.out.json`.
pub const CONSUME_OUT: &str = include_str!("../schemas/consume.out.json");
/// `schemas/credentials.json`.
pub const CREDENTIALS: &str = include_str!("../schemas/credentials.json");

fn compile(text: &str) -> Option<Validator> {
    let schema: Value = serde_json::from_str(text).ok()?;
    jsonschema::validator_for(&schema).ok()
}

/// Compiled at the first input the typed reading does not accept (`actions::produce::input`), not at startup
/// nor per message: the compiler is the largest crate (1.2 MB of text) and valid input never needs it. That
/// the schema compiles is checked by the `every_schema_compiles` test.
static PRODUCE_IN_VALIDATOR: LazyLock<Option<Validator>> = LazyLock::new(|| compile(PRODUCE_IN));

/// One schema violation: where (JSON pointer into the input) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer, `""` for the root.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// Every violation of the produce input schema by `body` (empty when valid).
pub fn validate_produce_input(body: &Value) -> Vec<Violation> {
    let Some(validator) = PRODUCE_IN_VALIDATOR.as_ref() else {
        return vec![Violation {
            path: String::new(),
            message: "internal error: schemas/produce.in.json does not compile".into(),
        }];
    };
    // Valid input is the common case, and `is_valid` stops at the first problem without building error reports.
    if validator.is_valid(body) {
        return Vec::new();
    }
    validator
        .iter_errors(body)
        .map(|e| Violation {
            path: e.instance_path().as_str().to_owned(),
            message: e.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_compiles() {
        for (name, text) in [
            ("produce.in", PRODUCE_IN),
            ("produce.out", PRODUCE_OUT),
            ("consume.out", CONSUME_OUT),
            ("credentials", CREDENTIALS),
        ] {
            assert!(compile(text).is_some(), "{name} does not compile");
        }
    }

    #[test]
    fn produce_input_reports_every_problem_with_its_path() {
        assert!(validate_produce_input(&json!({"messages": [{"value": "a"}, {"key": {"x": 1}, "value": {"b": 2}, "headers": {"h": "v"}, "partition": 1, "timestamp": 5}]})).is_empty());
        let v = validate_produce_input(
            &json!({"messages": [{"key": "k"}, {"value": "x", "partition": "one", "headers": {"h": 5}}]}),
        );
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert!(paths.contains(&"/messages/0"), "{v:?}");
        assert!(paths.contains(&"/messages/1/partition"), "{v:?}");
        assert!(paths.contains(&"/messages/1/headers/h"), "{v:?}");
        assert_eq!(validate_produce_input(&json!({}))[0].path, "");
    }

    #[test]
    fn component_json_points_at_existing_schemas() {
        let doc: Value = serde_json::from_str(crate::platform::component::COMPONENT_JSON).unwrap();
        assert_eq!(
            doc["actions"]["produce"]["metadata"]["in"],
            "./schemas/produce.in.json"
        );
        assert_eq!(
            doc["actions"]["produce"]["metadata"]["out"],
            "./schemas/produce.out.json"
        );
        assert_eq!(
            doc["triggers"]["consume"]["metadata"]["out"],
            "./schemas/consume.out.json"
        );
        let cred_fields = doc["credentials"]["fields"].as_object().unwrap();
        let schema: Value = serde_json::from_str(CREDENTIALS).unwrap();
        for field in cred_fields.keys() {
            assert!(
                schema["properties"].get(field).is_some(),
                "credentials.json lacks {field}"
            );
        }
    }
}
