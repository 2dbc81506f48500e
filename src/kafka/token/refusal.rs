//! A refused token request, classified by HTTP status and OAuth `error` code into what the user should fix.

use serde_json::Value;

use super::error::{TokenError, TokenErrorKind};

/// Longest provider text (`error_description`) quoted in an error.
pub(super) const MAX_DETAIL: usize = 200;

/// A non-2xx answer of the token endpoint, classified by status and OAuth `error` code (RFC 6749 5.2).
pub(super) fn refusal(
    status: reqwest::StatusCode,
    json: Option<&Value>,
    secret: &str,
) -> TokenError {
    let field = |name: &str| {
        json.and_then(|j| j.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let code = field("error");
    let detail = quoted_detail(code, field("error_description"), secret);
    let what = |text: &str| {
        if detail.is_empty() {
            format!("{text} (HTTP {})", status.as_u16())
        } else {
            format!("{text} (HTTP {}, {detail})", status.as_u16())
        }
    };
    let s = status.as_u16();
    match code {
        "invalid_client" => TokenError::new(
            TokenErrorKind::ClientRefused,
            what("the identity provider refused the client id or secret"),
            "Check `OAuth client ID` and `OAuth client secret`.",
        ),
        "unauthorized_client" | "unsupported_grant_type" => TokenError::new(
            TokenErrorKind::GrantRefused,
            what("the client may not use the client credentials grant"),
            "Allow the client credentials grant (a service account) for this client at the identity provider.",
        ),
        "invalid_scope" | "invalid_target" => TokenError::new(
            TokenErrorKind::ScopeRefused,
            what("the identity provider refused the scope or audience"),
            "Check `Scope` and `Audience`.",
        ),
        _ if s == 401 => TokenError::new(
            TokenErrorKind::ClientRefused,
            what("the identity provider refused the client id or secret"),
            "Check `OAuth client ID` and `OAuth client secret`.",
        ),
        _ if s >= 500 => TokenError::new(
            TokenErrorKind::ProviderFailed,
            what("the identity provider failed"),
            "Try again later; if it persists, check the identity provider.",
        ),
        _ if json.is_none() || s == 404 || s == 405 => TokenError::new(
            TokenErrorKind::NotTokenEndpoint,
            what("`Token URL` is not an OAuth 2.0 token endpoint"),
            "Use the provider's token endpoint, e.g. https://<host>/oauth2/token or https://<host>/realms/<realm>/protocol/openid-connect/token.",
        ),
        _ => TokenError::new(
            TokenErrorKind::Refused,
            what("the identity provider refused the token request"),
            "Check `OAuth client ID`, `OAuth client secret`, `Scope` and `Audience`.",
        ),
    }
}

/// `code: description`, clipped to [`MAX_DETAIL`] characters, without the client secret.
fn quoted_detail(code: &str, description: &str, secret: &str) -> String {
    let mut detail: String = format!(
        "{code}{}{description}",
        if code.is_empty() || description.is_empty() {
            ""
        } else {
            ": "
        }
    )
    .chars()
    .take(MAX_DETAIL)
    .collect();
    if !secret.is_empty() && detail.contains(secret) {
        detail = detail.replace(secret, "[redacted]");
    }
    detail
}
