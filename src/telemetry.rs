//! Logging: structured JSON lines on stdout through `tracing`, fields first. Level from `LOG_LEVEL`
//! (default `info`) or `RUST_LOG`. The writer is injectable so tests can capture output.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields, MakeWriter};

use crate::contract::json;

/// The JSON subscriber writing to `writer`.
fn subscriber<W>(level: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},lapin=warn,amq_protocol=warn")));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .fmt_fields(SpanFields)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// Installs the global JSON subscriber writing to `writer`.
pub fn init<W>(level: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let _ignored = tracing::subscriber::set_global_default(subscriber(level, writer));
}

/// A span's fields as the JSON object the `json()` event formatter reads back, written directly: its own
/// `JsonFields` builds a map of `serde_json::Value`s for every new span, which cost each Produce message
/// ~12 k instructions (8 %) for the span of its execution, logged or not.
struct SpanFields;

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut object = Object::default();
        fields.record(&mut object);
        writer.write_str(&object.finish())
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut object = Object::default();
        fields.record(&mut object);
        if object.0.is_empty() {
            return Ok(());
        }
        let added = object.finish();
        if current.fields.len() < 2 {
            current.fields = added;
        } else {
            // `{a}` + `{b}` → `{a,b}` (a repeated name: the event formatter keeps the later value).
            current.fields.pop();
            current.fields.push(',');
            current.fields.push_str(&added[1..]);
        }
        Ok(())
    }
}

/// The `"name":value` pairs of a field set, comma-separated.
#[derive(Default)]
struct Object(Vec<u8>);

impl Object {
    fn key(&mut self, field: &Field) {
        if !self.0.is_empty() {
            self.0.push(b',');
        }
        self.string(field.name());
        self.0.push(b':');
    }

    /// A JSON string (writing to a `Vec` cannot fail; `null` if it ever did, never a broken object).
    fn string(&mut self, s: &str) {
        if json::str(&mut self.0, s).is_err() {
            self.0.extend_from_slice(b"null");
        }
    }

    fn finish(self) -> String {
        let mut out = String::with_capacity(self.0.len() + 2);
        out.push('{');
        out.push_str(&String::from_utf8_lossy(&self.0));
        out.push('}');
        out
    }
}

impl Visit for Object {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.string(value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        json::int(&mut self.0, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        json::int(&mut self.0, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.0
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if json::value(&mut self.0, &value).is_err() {
            self.0.extend_from_slice(b"null");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.string(&format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};

    /// Log lines written to a shared buffer.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn events_carry_their_spans_fields_as_json() {
        let lines = Lines::default();
        let subscriber = super::subscriber("info", lines.clone());
        tracing::subscriber::with_default(subscriber, || {
            let id = "m-1 \"quoted\" \\ \n";
            let span = tracing::info_span!(
                "execution",
                message_id = %id,
                parent = "",
                n = 7_u64,
                neg = -3_i64,
                ok = true,
                later = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("later", "set");
            tracing::warn!(size = 3, "Something to say.");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["message"], "Something to say.");
        assert_eq!(line["size"], 3);
        assert_eq!(
            line["span"],
            json!({"name": "execution", "message_id": "m-1 \"quoted\" \\ \n", "parent": "",
                   "n": 7, "neg": -3, "ok": true, "later": "set"})
        );
    }
}
