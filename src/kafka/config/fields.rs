//! Lenient field types for the step `cfg` (credentials + fields, as the platform's forms send them).
//!
//! Each type deserializes from *any* JSON value and never fails the enclosing struct: a value it cannot read is
//! kept as a problem and becomes a [`ConfigError`] only when the code asks for that field, naming it. So a
//! `#[derive(Deserialize)]` struct of these reads a whole `cfg` at once, unknown keys are ignored (`cfg` also holds
//! other steps' fields and platform bookkeeping), and the errors come in the order the checks ask for fields.
//!
//! Null and missing always mean "not given"; so does an empty (or all-blank) string, which is what a form sends
//! for an untouched input.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::{Map, Value};

/// A problem with the step configuration, named by its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration field `{field}`: {reason}")]
pub struct ConfigError {
    /// The cfg field (component.json id).
    pub field: &'static str,
    /// What is wrong and what to do.
    pub reason: String,
}

impl ConfigError {
    /// A problem with `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl From<ConfigError> for crate::contract::FunctionError {
    fn from(e: ConfigError) -> Self {
        Self::config(
            "ConfigurationError",
            format!("{e}. Fix the step or credentials configuration."),
        )
    }
}

/// Reads the lenient struct `T` from `cfg`; a `cfg` that is not a JSON object has no fields.
pub fn read<T: DeserializeOwned + Default>(cfg: &Value) -> T {
    match cfg {
        // The field types accept every value, so reading an object cannot fail; should it, every field is absent.
        Value::Object(_) => T::deserialize(cfg).unwrap_or_default(),
        _ => T::deserialize(&Value::Object(Map::new())).unwrap_or_default(),
    }
}

/// A string: trimmed; empty, or not a JSON string at all, counts as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(Option<String>);

impl Text {
    /// The trimmed text, if any.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(match Value::deserialize(d)? {
            Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            _ => None,
        }))
    }
}

/// Like [`Text`], but a JSON number also counts, as its JSON text (`1` → `"1"`, `-1` → `"-1"`, `1.0` → `"1.0"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextOrNumber(Option<String>);

impl TextOrNumber {
    /// The trimmed text or the number's text, if any.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de> Deserialize<'de> for TextOrNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(match Value::deserialize(d)? {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            _ => None,
        }))
    }
}

/// A secret string (password, key), kept as given and never printed; not a JSON string counts as absent.
#[derive(Clone, Default)]
pub struct Secret(Option<SecretString>);

impl Secret {
    /// The string exactly as given, even empty or blank (a password may be anything).
    pub fn as_given(&self) -> Option<SecretString> {
        self.0.clone()
    }

    /// The string as given unless it is empty.
    pub fn non_empty(&self) -> Option<SecretString> {
        self.0.clone().filter(|s| !s.expose_secret().is_empty())
    }

    /// The trimmed string unless that is empty (the same rule as [`Text`]).
    pub fn trimmed(&self) -> Option<SecretString> {
        let s = self.0.as_ref()?.expose_secret().trim();
        (!s.is_empty()).then(|| SecretString::from(s))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Secret([redacted])"
        } else {
            "Secret(None)"
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(match Value::deserialize(d)? {
            Value::String(s) => Some(SecretString::from(s)),
            _ => None,
        }))
    }
}

/// A switch: a JSON boolean, or one of `true/false/on/off/yes/no/1/0` as a string (any case, blanks around).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flag(Option<Result<bool, String>>);

impl Flag {
    /// The switch, `default` when not given.
    ///
    /// # Errors
    /// Any other value, as "expected true or false, got …".
    pub fn get(&self, field: &'static str, default: bool) -> Result<bool, ConfigError> {
        match &self.0 {
            None => Ok(default),
            Some(Ok(b)) => Ok(*b),
            Some(Err(reason)) => Err(ConfigError::new(field, reason.clone())),
        }
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(match Value::deserialize(d)? {
            Value::Null => None,
            Value::Bool(b) => Some(Ok(b)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "" => None,
                "true" | "on" | "yes" | "1" => Some(Ok(true)),
                "false" | "off" | "no" | "0" => Some(Ok(false)),
                other => Some(Err(format!("expected true or false, got `{other}`"))),
            },
            other => Some(Err(format!("expected true or false, got {other}"))),
        }))
    }
}

/// A non-negative integer: a JSON number, or its decimal digits in a string (blanks around allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Count(Option<Result<u64, String>>);

impl Count {
    /// The number, if given.
    ///
    /// # Errors
    /// Anything that is not a non-negative integer, as "expected a non-negative integer, got …".
    pub fn get(&self, field: &'static str) -> Result<Option<u64>, ConfigError> {
        match &self.0 {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some(*n)),
            Some(Err(reason)) => Err(ConfigError::new(field, reason.clone())),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let refuse = |got: String| format!("expected a non-negative integer, got {got}");
        Ok(Self(match Value::deserialize(d)? {
            Value::Null => None,
            Value::Number(n) => Some(n.as_u64().ok_or_else(|| refuse(n.to_string()))),
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => Some(s.trim().parse().map_err(|_| refuse(format!("`{s}`")))),
            other => Some(Err(refuse(other.to_string()))),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    struct Form {
        some_text: Text,
        some_flag: Flag,
        some_count: Count,
    }

    fn flag(v: Value) -> Result<bool, ConfigError> {
        serde_json::from_value::<Flag>(v)
            .unwrap()
            .get("someFlag", true)
    }

    fn count(v: Value) -> Result<Option<u64>, ConfigError> {
        serde_json::from_value::<Count>(v).unwrap().get("someCount")
    }

    fn text(v: Value) -> Option<String> {
        serde_json::from_value::<Text>(v)
            .unwrap()
            .get()
            .map(str::to_owned)
    }

    #[test]
    fn text_is_trimmed_and_empty_or_non_strings_are_absent() {
        assert_eq!(text(json!("  a b ")).as_deref(), Some("a b"));
        for absent in [
            json!(""),
            json!("  \t"),
            json!(null),
            json!(5),
            json!(true),
            json!(["a"]),
            json!({"a": "b"}),
        ] {
            assert_eq!(text(absent.clone()), None, "{absent}");
        }
        let n = |v| serde_json::from_value::<TextOrNumber>(v).unwrap().0;
        assert_eq!(n(json!(1)).as_deref(), Some("1"));
        assert_eq!(n(json!(-1)).as_deref(), Some("-1"));
        assert_eq!(n(json!(1.0)).as_deref(), Some("1.0"));
        assert_eq!(n(json!(" All ")).as_deref(), Some("All"));
        assert_eq!(n(json!(" ")), None);
        assert_eq!(n(json!(false)), None);
    }

    #[test]
    fn flag_accepts_booleans_and_the_usual_words() {
        for (v, want) in [
            (json!(true), true),
            (json!(false), false),
            (json!("true"), true),
            (json!(" TRUE "), true),
            (json!("on"), true),
            (json!("Yes"), true),
            (json!("1"), true),
            (json!("false"), false),
            (json!("OFF"), false),
            (json!("no"), false),
            (json!("0"), false),
        ] {
            assert_eq!(flag(v.clone()), Ok(want), "{v}");
        }
        // Not given: the default (true here).
        for v in [json!(null), json!(""), json!("  ")] {
            assert_eq!(flag(v.clone()), Ok(true), "{v}");
        }
    }

    #[test]
    fn flag_refusals_name_the_field_and_the_value() {
        for (v, reason) in [
            (json!("maybe"), "expected true or false, got `maybe`"),
            (json!(" Maybe "), "expected true or false, got `maybe`"),
            (json!("2"), "expected true or false, got `2`"),
            (json!(1), "expected true or false, got 1"),
            (json!(0.5), "expected true or false, got 0.5"),
            (json!([true]), "expected true or false, got [true]"),
            (json!({"a": 1}), r#"expected true or false, got {"a":1}"#),
        ] {
            assert_eq!(
                flag(v.clone()),
                Err(ConfigError::new("someFlag", reason)),
                "{v}"
            );
        }
    }

    #[test]
    fn count_accepts_numbers_and_digit_strings() {
        for (v, want) in [
            (json!(0), Some(0)),
            (json!(42), Some(42)),
            (json!(u64::MAX), Some(u64::MAX)),
            (json!("42"), Some(42)),
            (json!(" 42 "), Some(42)),
            (json!("+7"), Some(7)),
            (json!(null), None),
            (json!(""), None),
            (json!("   "), None),
        ] {
            assert_eq!(count(v.clone()), Ok(want), "{v}");
        }
    }

    #[test]
    fn count_refusals_name_the_field_and_the_value() {
        for (v, reason) in [
            (json!(-1), "expected a non-negative integer, got -1"),
            (json!(1.5), "expected a non-negative integer, got 1.5"),
            (json!(1.0), "expected a non-negative integer, got 1.0"),
            (json!("big"), "expected a non-negative integer, got `big`"),
            // The string is quoted as given, blanks included.
            (json!(" -1 "), "expected a non-negative integer, got ` -1 `"),
            (json!("1e3"), "expected a non-negative integer, got `1e3`"),
            (
                json!("18446744073709551616"),
                "expected a non-negative integer, got `18446744073709551616`",
            ),
            (json!(true), "expected a non-negative integer, got true"),
            (json!([1]), "expected a non-negative integer, got [1]"),
        ] {
            assert_eq!(
                count(v.clone()),
                Err(ConfigError::new("someCount", reason)),
                "{v}"
            );
        }
    }

    #[test]
    fn secrets_keep_the_value_as_given_and_never_print_it() {
        let s: Secret = serde_json::from_value(json!("  pw ")).unwrap();
        assert_eq!(s.as_given().unwrap().expose_secret(), "  pw ");
        assert_eq!(s.non_empty().unwrap().expose_secret(), "  pw ");
        assert_eq!(s.trimmed().unwrap().expose_secret(), "pw");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        let blank: Secret = serde_json::from_value(json!(" ")).unwrap();
        assert!(blank.non_empty().is_some() && blank.trimmed().is_none());
        let empty: Secret = serde_json::from_value(json!("")).unwrap();
        assert_eq!(empty.as_given().unwrap().expose_secret(), "");
        assert!(empty.non_empty().is_none());
        let number: Secret = serde_json::from_value(json!(123)).unwrap();
        assert!(number.as_given().is_none());
    }

    #[test]
    fn a_struct_of_fields_never_fails_and_ignores_unknown_keys() {
        let f: Form = read(
            &json!({"someText": " t ", "someFlag": "maybe", "someCount": "x",
            "otherStepField": {"deep": [1, 2]}, "brokers": "k:9092"}),
        );
        assert_eq!(f.some_text.get(), Some("t"));
        assert_eq!(
            f.some_flag.get("someFlag", false).unwrap_err().reason,
            "expected true or false, got `maybe`"
        );
        assert_eq!(
            f.some_count.get("someCount").unwrap_err().to_string(),
            "invalid configuration field `someCount`: expected a non-negative integer, got `x`"
        );
        // Not an object (or null): no fields at all.
        for cfg in [json!(null), json!(["someText"]), json!("x"), json!({})] {
            let f: Form = read(&cfg);
            assert_eq!(
                (
                    f.some_text.get(),
                    f.some_flag.get("someFlag", true),
                    f.some_count.get("someCount")
                ),
                (None, Ok(true), Ok(None)),
                "{cfg}"
            );
        }
    }
}
