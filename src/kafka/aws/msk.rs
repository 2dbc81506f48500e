//! The MSK IAM SASL/OAUTHBEARER token: a presigned `kafka-cluster:Connect` URL, base64url-encoded.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use percent_encoding::utf8_percent_encode;

use super::credentials::Credentials;
use super::sigv4::{Presign, SIGV4_ENCODE, TOKEN_LIFETIME_SECS, presign_query};
use super::time::unix_secs;

/// The user agent appended (unsigned) to our MSK tokens; MSK logs it.
pub const USER_AGENT: &str = concat!("kafka-component/", env!("CARGO_PKG_VERSION"));

/// An MSK IAM SASL/OAUTHBEARER token.
#[derive(Clone, PartialEq, Eq)]
pub struct MskToken {
    /// The token: base64url (no padding) of the presigned URL. A bearer credential; never log it.
    pub token: String,
    /// When it expires: signing time + 900 s, in milliseconds since the Unix epoch (librdkafka's unit).
    pub expires_at_ms: i64,
}

impl fmt::Debug for MskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MskToken")
            .field("token", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// The MSK IAM SASL/OAUTHBEARER token for `region`, signed at `at` (whole seconds), valid 900 s.
///
/// Byte for byte what `aws-msk-iam-sasl-signer-python` produces for the same inputs when `user_agent` is
/// `aws-msk-iam-sasl-signer-python/1.0.2`; pass [`USER_AGENT`] in production.
pub fn msk_token(creds: &Credentials, region: &str, at: SystemTime, user_agent: &str) -> MskToken {
    let host = format!("kafka.{region}.amazonaws.com");
    let query = presign_query(
        creds,
        &Presign {
            host: &host,
            path: "/",
            service: "kafka-cluster",
            region,
            params: &[("Action", "kafka-cluster:Connect")],
        },
        at,
    );
    let url = format!(
        "https://{host}/?{query}&User-Agent={}",
        utf8_percent_encode(user_agent, SIGV4_ENCODE)
    );
    let secs = unix_secs(at).saturating_add(TOKEN_LIFETIME_SECS);
    MskToken {
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_bytes()),
        expires_at_ms: i64::try_from(secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
    }
}
