//! The environment snapshot and the reference runtime's parsing rules (`parseInt`, booleans, empty = unset).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Raw environment snapshot with the reference parsing helpers.
#[derive(Clone)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The environment holds secrets: list names only.
        let mut names: Vec<_> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// Snapshot of the real process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// Environment from explicit pairs (tests, local runner).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub(super) fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(&format!("ELASTICIO_{name}"))
            .map(String::as_str)
    }

    /// A variable by its full name (used for `ADDITIONAL_VARS_FOR_HEADERS`).
    pub fn get_full(&self, full_name: &str) -> Option<&str> {
        self.vars.get(full_name).map(String::as_str)
    }

    /// The value of a mandatory variable, or its name pushed onto `missing`.
    pub(super) fn required(&self, name: &str, missing: &mut Vec<String>) -> String {
        match self.raw(name) {
            Some(v) if !v.is_empty() => v.to_owned(),
            _ => {
                missing.push(format!("ELASTICIO_{name}"));
                String::new()
            }
        }
    }

    /// Optional integer with `parseInt` semantics: leading digits count, unparsable or 0 means default.
    pub fn number(&self, name: &str, default: u64) -> u64 {
        self.raw(name)
            .and_then(parse_int_prefix)
            .filter(|v| *v != 0)
            .map_or(default, |v| u64::try_from(v).unwrap_or(default))
    }

    /// Optional boolean: unset → default, `""`/`"false"` → false, anything else → true.
    pub fn boolean(&self, name: &str, default: bool) -> bool {
        match self.raw(name) {
            None => default,
            Some("") | Some("false") => false,
            Some(_) => true,
        }
    }

    /// Optional string; an empty value counts as unset.
    pub fn string(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|v| !v.is_empty()).map(str::to_owned)
    }
}

/// JavaScript `parseInt(value)` for base 10: optional whitespace and sign, then the leading digits.
pub(super) fn parse_int_prefix(value: &str) -> Option<i64> {
    let s = value.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let n: i64 = digits[..end].parse().ok()?;
    Some(if neg { -n } else { n })
}

pub(super) const fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

pub(super) fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
