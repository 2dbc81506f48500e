//! Headers the step adds to every record: `staticHeaders`, and with `traceHeaders` the execution's identifiers.
//!
//! Precedence, by header name: a header of the input record wins over a static one, which wins over a trace
//! one; a name is never written twice by this step (the input may repeat its own names).

use serde_json::{Map, Value};

use super::input::Record;
use crate::contract::ExecutionIds;
use crate::kafka::config::ConfigError;

/// The flow execution's id (`ELASTICIO_EXEC_ID`).
pub const EXEC_ID: &str = "x-eio-exec-id";
/// The incoming platform message's `messageId`.
pub const MESSAGE_ID: &str = "x-eio-message-id";
/// The step's id (`ELASTICIO_STEP_ID`).
pub const STEP_ID: &str = "x-eio-step-id";
/// The flow's id (`ELASTICIO_FLOW_ID`).
pub const FLOW_ID: &str = "x-eio-flow-id";
/// The thread of messages (`threadId`).
pub const THREAD_ID: &str = "x-eio-thread-id";

/// `staticHeaders`: a JSON object of string values, or the JSON text of one (what a text field of a form sends);
/// null or blank means none.
///
/// # Errors
/// [`ConfigError`] on `staticHeaders` saying what is wrong.
pub fn static_headers(v: &Value) -> Result<Vec<(String, String)>, ConfigError> {
    let bad = |reason: String| ConfigError::new("staticHeaders", reason);
    let parsed;
    let object: &Map<String, Value> = match v {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.trim().is_empty() => return Ok(Vec::new()),
        Value::Object(o) => o,
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|e| {
                bad(format!(
                    "not valid JSON ({e}); enter an object such as {{\"source\": \"crm\"}}"
                ))
            })?;
            parsed.as_object().ok_or_else(|| {
                bad("must be a JSON object of header name → string value, such as {\"source\": \"crm\"}".into())
            })?
        }
        _ => {
            return Err(bad(
                "must be a JSON object of header name → string value, such as {\"source\": \"crm\"}".into(),
            ));
        }
    };
    object
        .iter()
        .map(|(name, value)| {
            if name.is_empty() {
                return Err(bad("a header name is empty".into()));
            }
            match value {
                Value::String(s) => Ok((name.clone(), s.clone())),
                other => Err(bad(format!(
                    "the value of header `{name}` must be a string, got {other}"
                ))),
            }
        })
        .collect()
}

/// The trace headers of an execution: one per identifier the runtime knows.
pub fn trace_headers(ids: &ExecutionIds) -> Vec<(String, String)> {
    [
        (EXEC_ID, &ids.exec_id),
        (MESSAGE_ID, &ids.message_id),
        (STEP_ID, &ids.step_id),
        (FLOW_ID, &ids.flow_id),
        (THREAD_ID, &ids.thread_id),
    ]
    .into_iter()
    .filter_map(|(name, id)| Some((name.to_owned(), id.clone()?)))
    .collect()
}

/// The headers to add to every record: static ones, then trace ones whose name no static one uses.
pub fn step_headers(
    static_headers: &[(String, String)],
    trace: Vec<(String, String)>,
) -> Vec<(String, Vec<u8>)> {
    let trace = trace
        .into_iter()
        .filter(|(name, _)| static_headers.iter().all(|(n, _)| n != name));
    static_headers
        .iter()
        .cloned()
        .chain(trace)
        .map(|(name, value)| (name, value.into_bytes()))
        .collect()
}

/// The headers the step adds to every record (`step_headers`): borrowed by every record of a message instead
/// of copied into each (five trace headers on each of 100 records were a thousand allocations).
pub type Added = [(String, Vec<u8>)];

/// A record's headers as written: its own in order, then each added one whose name it does not have.
pub fn of<'a>(r: &'a Record, added: &'a Added) -> impl Iterator<Item = (&'a str, &'a [u8])> {
    let own = r.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
    let extra = added
        .iter()
        .filter(|(name, _)| r.headers.iter().all(|(n, _)| n != name))
        .map(|(n, v)| (n.as_str(), v.as_slice()));
    own.chain(extra)
}

/// Bytes of key, value and every header as written (what `messageMaxBytes` limits).
pub fn size_with(r: &Record, added: &Added) -> usize {
    r.key.as_ref().map_or(0, Vec::len)
        + r.value.as_ref().map_or(0, Vec::len)
        + of(r, added).map(|(n, v)| n.len() + v.len()).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn static_headers_from_an_object_or_its_json_text() {
        let want = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), String::new()),
        ];
        assert_eq!(static_headers(&json!({"a": "1", "b": ""})).unwrap(), want);
        assert_eq!(
            static_headers(&json!(r#"{"a": "1", "b": ""}"#)).unwrap(),
            want
        );
        for none in [json!(null), json!(""), json!("  "), json!({})] {
            assert!(static_headers(&none).unwrap().is_empty(), "{none}");
        }
        for (bad, says) in [
            (
                json!({"a": 1}),
                "the value of header `a` must be a string, got 1",
            ),
            (
                json!(r#"{"a": null}"#),
                "the value of header `a` must be a string, got null",
            ),
            (json!({"": "x"}), "a header name is empty"),
            (json!("{nope"), "not valid JSON"),
            (json!("[1]"), "must be a JSON object"),
            (json!(["a", "b"]), "must be a JSON object"),
            (json!(7), "must be a JSON object"),
        ] {
            let e = static_headers(&bad).unwrap_err();
            assert_eq!(e.field, "staticHeaders");
            assert!(e.reason.contains(says), "{bad}: {}", e.reason);
        }
    }

    #[test]
    fn trace_headers_name_the_known_identifiers() {
        assert!(trace_headers(&ExecutionIds::default()).is_empty());
        let ids = ExecutionIds {
            exec_id: Some("e".into()),
            message_id: Some("m".into()),
            step_id: Some("s".into()),
            flow_id: None,
            thread_id: Some("t".into()),
            container_id: Some("c".into()),
        };
        let names: Vec<_> = trace_headers(&ids)
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        assert_eq!(
            names,
            [
                "x-eio-exec-id=e",
                "x-eio-message-id=m",
                "x-eio-step-id=s",
                "x-eio-thread-id=t"
            ]
        );
    }

    #[test]
    fn input_wins_over_static_which_wins_over_trace() {
        let added = step_headers(
            &[
                ("source".into(), "crm".into()),
                (STEP_ID.into(), "mine".into()),
            ],
            vec![
                (STEP_ID.into(), "step-1".into()),
                (EXEC_ID.into(), "exec-1".into()),
            ],
        );
        let records = crate::actions::produce::input::parse_input(&json!({"messages": [
            {"value": "a", "headers": [["source", "input"], ["source", "again"]]},
            {"value": "b"}
        ]}))
        .unwrap();
        let show = |r: &Record| -> Vec<String> {
            of(r, &added)
                .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v)))
                .collect()
        };
        assert_eq!(
            show(&records[0]),
            [
                "source=input",
                "source=again",
                "x-eio-step-id=mine",
                "x-eio-exec-id=exec-1"
            ]
        );
        assert_eq!(
            show(&records[1]),
            ["source=crm", "x-eio-step-id=mine", "x-eio-exec-id=exec-1"]
        );
        // The added headers count toward the record's size (the `messageMaxBytes` pre-check).
        assert_eq!(
            size_with(&records[1], &added),
            1 + "sourcecrm".len() + "x-eio-step-idmine".len() + "x-eio-exec-idexec-1".len()
        );
    }
}
