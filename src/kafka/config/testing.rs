//! Test support: keeping the lenient `Fields` structs in sync with component.json.

use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

/// The keys a `#[derive(Deserialize)]` struct reads (serde hands them to `deserialize_struct`) and the field ids
/// component.json declares at `pointer` (e.g. `/actions/produce/fields`), both sorted: tests keep them equal.
pub(crate) fn struct_and_component_fields<T: DeserializeOwned>(
    pointer: &str,
) -> (Vec<String>, Vec<String>) {
    use serde::de::{Error as _, Visitor, value::Error};

    struct Probe<'a>(&'a mut Vec<String>);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Error> {
            self.0.extend(fields.iter().map(|f| (*f).to_owned()));
            Err(Error::custom("only the field names were wanted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut names = Vec::new();
    assert!(T::deserialize(Probe(&mut names)).is_err());
    let component: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/component.json"
    )))
    .unwrap();
    let mut ids: Vec<String> = component
        .pointer(pointer)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("component.json has no {pointer}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    ids.sort();
    (names, ids)
}
