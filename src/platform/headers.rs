//! AMQP header tables: reading incoming values leniently and building the outgoing header set of
//! PROTOCOL.md 3.2 for one execution.
//!
//! Owns header names and value encodings (strings as long strings, integers in the smallest signed type
//! that fits, booleans as booleans). Does not own routing or publishing.

use std::sync::Arc;

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use uuid::Uuid;

use crate::settings::Settings;

/// A string header value, whatever string-like type it was sent as.
pub fn get_str(table: &FieldTable, key: &str) -> Option<String> {
    match table.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::ByteArray(b) => Some(String::from_utf8_lossy(b.as_slice()).into_owned()),
        other => number_of(other).map(|n| n.to_string()),
    }
}

/// A numeric header value: any integer or float type, or a numeric string (readers of the reference
/// runtime use `Number(x)`).
pub fn get_num(table: &FieldTable, key: &str) -> Option<i64> {
    let value = table.inner().get(key)?;
    number_of(value).or_else(|| match value {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.trim().parse().ok(),
        AMQPValue::ShortString(s) => s.as_str().trim().parse().ok(),
        _ => None,
    })
}

fn number_of(value: &AMQPValue) -> Option<i64> {
    Some(match value {
        AMQPValue::ShortShortInt(v) => i64::from(*v),
        AMQPValue::ShortShortUInt(v) => i64::from(*v),
        AMQPValue::ShortInt(v) => i64::from(*v),
        AMQPValue::ShortUInt(v) => i64::from(*v),
        AMQPValue::LongInt(v) => i64::from(*v),
        AMQPValue::LongUInt(v) => i64::from(*v),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok()?,
        #[allow(clippy::cast_possible_truncation)]
        AMQPValue::Double(v) if v.fract() == 0.0 => *v as i64,
        #[allow(clippy::cast_possible_truncation)]
        AMQPValue::Float(v) if v.fract() == 0.0 => *v as i64,
        _ => return None,
    })
}

/// A string as an AMQP long string (`S`).
pub fn string(value: impl Into<String>) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.into()))
}

/// An integer in the smallest signed type that holds it (`b`, `s`, `I`, `l`), as amqplib writes it.
pub fn int(value: i64) -> AMQPValue {
    if let Ok(v) = i8::try_from(value) {
        AMQPValue::ShortShortInt(v)
    } else if let Ok(v) = i16::try_from(value) {
        AMQPValue::ShortInt(v)
    } else if let Ok(v) = i32::try_from(value) {
        AMQPValue::LongInt(v)
    } else {
        AMQPValue::LongLongInt(value)
    }
}

/// Inserts `key: value` into a table.
pub fn set(table: &mut FieldTable, key: &str, value: AMQPValue) {
    table.insert(ShortString::from(key), value);
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The header table of one outgoing message: a table shared by every message of an execution (not copied per
/// message) and this message's own entries, set over it in order. lapin takes the table of each publish, so
/// [`OutgoingHeaders::table`] builds it once per publish attempt: one copy of the shared table per message sent,
/// where building the message's table and copying it again for the publish made two.
#[derive(Debug, Clone, Default)]
pub struct OutgoingHeaders {
    base: Arc<FieldTable>,
    own: Vec<(&'static str, AMQPValue)>,
}

impl OutgoingHeaders {
    /// The shared table `base` with no entries of its own.
    pub fn new(base: Arc<FieldTable>) -> Self {
        Self {
            base,
            own: Vec::new(),
        }
    }

    /// Adds `key: value` (replacing the shared table's `key`, and an earlier own entry's).
    #[must_use]
    pub fn with(mut self, key: &'static str, value: AMQPValue) -> Self {
        self.own.push((key, value));
        self
    }

    /// The table to publish.
    pub fn table(&self) -> FieldTable {
        let mut table = FieldTable::clone(&self.base);
        for (key, value) in &self.own {
            set(&mut table, key, value.clone());
        }
        table
    }
}

impl From<FieldTable> for OutgoingHeaders {
    fn from(table: FieldTable) -> Self {
        Self::new(Arc::new(table))
    }
}

/// The headers shared by every emit of one execution (PROTOCOL.md 3.2), before per-event additions.
#[derive(Debug, Clone)]
pub struct ExecutionHeaders {
    base: Arc<FieldTable>,
    /// The shared `messageId` of the execution.
    pub message_id: String,
    /// Incoming `reply_to`, if any.
    pub reply_to: Option<String>,
    /// Incoming `messageId`, if any.
    pub parent_message_id: Option<String>,
    /// `threadId` of this execution.
    pub thread_id: String,
}

impl ExecutionHeaders {
    /// Builds the header set for a delivery with `incoming` headers whose processing began at `start_ms`.
    pub fn for_delivery(settings: &Settings, incoming: &FieldTable, start_ms: i64) -> Self {
        let mut base = FieldTable::default();
        let step = &settings.step;
        set(&mut base, "stepId", string(&step.step_id));
        // x-eio-meta-* in any case → lower-cased key.
        let mut trace_id = None;
        for (key, value) in incoming.inner() {
            let lower = key.as_str().to_ascii_lowercase();
            if lower.starts_with("x-eio-meta-") {
                if lower == "x-eio-meta-trace-id" {
                    trace_id = get_str(incoming, key.as_str());
                }
                set(&mut base, &lower, value.clone());
            }
        }
        let thread_id = get_str(incoming, "threadId")
            .or(trace_id)
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        set(&mut base, "threadId", string(&thread_id));
        let message_id = Uuid::new_v4().to_string();
        set(&mut base, "messageId", string(&message_id));
        let parent_message_id = get_str(incoming, "messageId");
        if let Some(parent) = &parent_message_id {
            set(&mut base, "parentMessageId", string(parent));
        }
        let reply_to = get_str(incoming, "reply_to");
        if let Some(reply_to) = &reply_to {
            set(&mut base, "reply_to", string(reply_to));
        }
        for (name, value) in &settings.additional_headers {
            set(&mut base, name, string(value));
        }
        Self::add_identity(&mut base, settings);
        set(&mut base, "start", int(start_ms));
        Self {
            base: Arc::new(base),
            message_id,
            reply_to,
            parent_message_id,
            thread_id,
        }
    }

    /// The header set of a startup failure (no incoming message): identity + additional vars + messageId.
    pub fn for_startup(settings: &Settings) -> FieldTable {
        let mut base = FieldTable::default();
        set(&mut base, "stepId", string(&settings.step.step_id));
        for (name, value) in &settings.additional_headers {
            set(&mut base, name, string(value));
        }
        Self::add_identity(&mut base, settings);
        set(&mut base, "messageId", string(Uuid::new_v4().to_string()));
        base
    }

    fn add_identity(base: &mut FieldTable, settings: &Settings) {
        let step = &settings.step;
        set(base, "execId", string(&step.exec_id));
        set(base, "taskId", string(&step.flow_id));
        set(base, "workspaceId", string(&step.workspace_id));
        set(base, "containerId", string(&step.container_id));
        set(base, "userId", string(&step.user_id));
        set(base, "compId", string(&step.comp_id));
        set(base, "function", string(&step.function));
    }

    /// Headers of a `data` message; `id` (the emitted message's own id) replaces `messageId`.
    pub fn data(&self, id: Option<&str>, protocol_version: u8) -> OutgoingHeaders {
        let t = self.shared();
        let t = match id {
            Some(id) => t.with("messageId", string(id)),
            None => t,
        };
        t.with("end", int(now_ms()))
            .with("protocolVersion", int(i64::from(protocol_version)))
    }

    /// Headers of an `error` message.
    pub fn error(&self) -> OutgoingHeaders {
        self.shared().with("end", int(now_ms()))
    }

    /// Headers of a `snapshot`/`updateSnapshot` message.
    pub fn snapshot(&self, event: &str) -> OutgoingHeaders {
        self.shared().with("snapshotEvent", string(event))
    }

    /// Headers of an `httpReply` message.
    pub fn http_reply(&self) -> OutgoingHeaders {
        self.shared().with("protocolVersion", int(1))
    }

    fn shared(&self) -> OutgoingHeaders {
        OutgoingHeaders::new(Arc::clone(&self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_the_smallest_signed_type() {
        assert!(matches!(int(1), AMQPValue::ShortShortInt(1)));
        assert!(matches!(int(300), AMQPValue::ShortInt(300)));
        assert!(matches!(int(70_000), AMQPValue::LongInt(70_000)));
        assert!(matches!(int(1_700_000_000_000), AMQPValue::LongLongInt(_)));
    }

    #[test]
    fn lenient_readers_accept_strings_and_any_number() {
        let mut t = FieldTable::default();
        set(&mut t, "a", string("2"));
        set(&mut t, "b", AMQPValue::LongUInt(3));
        set(&mut t, "c", AMQPValue::ShortString("x".into()));
        assert_eq!(get_num(&t, "a"), Some(2));
        assert_eq!(get_num(&t, "b"), Some(3));
        assert_eq!(get_str(&t, "c").as_deref(), Some("x"));
        assert_eq!(get_str(&t, "b").as_deref(), Some("3"));
        assert_eq!(get_num(&t, "missing"), None);
    }

    #[test]
    fn outgoing_headers_set_their_own_entries_over_the_shared_table() {
        let mut base = FieldTable::default();
        set(&mut base, "messageId", string("execution"));
        set(&mut base, "stepId", string("step_1"));
        let headers = OutgoingHeaders::new(Arc::new(base.clone()))
            .with("messageId", string("own"))
            .with("end", int(5))
            .with("end", int(6));
        let mut expected = base.clone();
        set(&mut expected, "messageId", string("own"));
        set(&mut expected, "end", int(6));
        assert_eq!(headers.table(), expected);
        assert_eq!(headers.table(), expected, "built again for a retry");
        assert_eq!(OutgoingHeaders::from(base.clone()).table(), base);
    }
}
