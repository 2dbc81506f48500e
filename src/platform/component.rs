//! `component.json`: the platform UI reads the file in the repository; the worker reads the same bytes
//! (embedded at build time) to find the function named by `ELASTICIO_FUNCTION` (triggers first, then actions).
//! When `ELASTICIO_COMPONENT_PATH` names a directory with a `component.json`, that file is used instead, as
//! the reference runtime does (`{cwd}/{COMPONENT_PATH}/component.json`).

use serde_json::Value;

/// The component descriptor shipped with this binary.
pub const COMPONENT_JSON: &str = include_str!("../../component.json");

/// Kind of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// Listed under `triggers`.
    Trigger,
    /// Listed under `actions`.
    Action,
}

/// A function found in component.json.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    /// Its id (`produce`, `consume`).
    pub name: String,
    /// Trigger or action.
    pub kind: FunctionKind,
    /// `main`: the handler this worker runs for it.
    pub main: String,
    /// `autoResolveObjectReferences` (default true).
    pub auto_resolve_object_references: bool,
}

/// Looks `name` up in the embedded component.json.
///
/// # Errors
/// The reference text `Trigger or action "NAME" is not found in component.json!`.
pub fn find_function(name: &str) -> Result<FunctionDef, String> {
    find_in(COMPONENT_JSON, name)
}

/// Looks `name` up in the component.json under `component_path` (relative to the working directory), or in
/// the embedded one when `component_path` is empty.
///
/// # Errors
/// `Failed to load component.json from …` or the not-found text.
pub fn find_function_at(component_path: &str, name: &str) -> Result<FunctionDef, String> {
    if component_path.is_empty() {
        return find_function(name);
    }
    let file = std::path::Path::new(component_path).join("component.json");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("Failed to load component.json from {}: {e}", file.display()))?;
    find_in(&text, name)
}

fn find_in(text: &str, name: &str) -> Result<FunctionDef, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("component.json is not valid JSON: {e}"))?;
    for (section, kind) in [
        ("triggers", FunctionKind::Trigger),
        ("actions", FunctionKind::Action),
    ] {
        if let Some(def) = doc.get(section).and_then(|s| s.get(name)) {
            return Ok(FunctionDef {
                name: name.to_owned(),
                kind,
                main: def
                    .get("main")
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .to_owned(),
                auto_resolve_object_references: def
                    .get("autoResolveObjectReferences")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            });
        }
    }
    Err(format!(
        "Trigger or action \"{name}\" is not found in component.json!"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_shipped_functions() {
        assert_eq!(
            find_function("consume").unwrap().kind,
            FunctionKind::Trigger
        );
        assert_eq!(find_function("produce").unwrap().kind, FunctionKind::Action);
        let err = find_function("nope").unwrap_err();
        assert_eq!(
            err,
            "Trigger or action \"nope\" is not found in component.json!"
        );
    }
}
