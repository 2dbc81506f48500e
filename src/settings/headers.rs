//! Extra variables copied into outgoing message headers (`ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS`).

use super::env::Env;

/// `ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS=ELASTICIO_EXTRA_ONE,FOO` → `[("extraOne", …), ("foo", …)]`.
pub(super) fn additional_headers(env: &Env) -> Vec<(String, String)> {
    let Some(list) = env.string("ADDITIONAL_VARS_FOR_HEADERS") else {
        return Vec::new();
    };
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .filter_map(|name| {
            let value = env.get_full(name)?;
            Some((header_name(name), value.to_owned()))
        })
        .collect()
}

/// `ELASTICIO_EXTRA_ONE` → `extraOne`: drop the prefix, lower-case, camel-case at `_`.
fn header_name(var: &str) -> String {
    let bare = var.strip_prefix("ELASTICIO_").unwrap_or(var);
    let mut out = String::with_capacity(bare.len());
    let mut upper_next = false;
    for ch in bare.chars() {
        if ch == '_' {
            upper_next = !out.is_empty();
        } else if upper_next {
            out.extend(ch.to_uppercase());
            upper_next = false;
        } else {
            out.extend(ch.to_lowercase());
        }
    }
    out
}
