//! SigV4 query presigning (HMAC-SHA256 over `sha2`), shared by the MSK token and the STS check.

use std::time::SystemTime;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::credentials::Credentials;
use super::time::{amz_date, unix_secs};

/// Lifetime of an MSK token and of the STS check's presigned URL (`X-Amz-Expires`), in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 900;

/// RFC 3986 encoding as SigV4 wants it: everything but `A-Z a-z 0-9 - _ . ~`.
pub(super) const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(super) fn enc(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

pub(super) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 (RFC 2104) over `sha2`; checked against RFC 4231 and OpenSSL in the tests.
pub(super) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// One SigV4 query presign.
pub(super) struct Presign<'a> {
    /// Lowercase `host[:port]` (the only signed header).
    pub(super) host: &'a str,
    /// Absolute path, already URI-encoded.
    pub(super) path: &'a str,
    pub(super) service: &'a str,
    pub(super) region: &'a str,
    /// Operation parameters, kept in this order in the URL (before the auth parameters).
    pub(super) params: &'a [(&'a str, &'a str)],
}

/// The presigned query string of a `GET`, in botocore's order: operation params, `X-Amz-Algorithm`,
/// `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Security-Token` (with a session token),
/// then `X-Amz-Signature` last. The canonical query is sorted; the URL order does not change the signature.
pub(super) fn presign_query(creds: &Credentials, req: &Presign<'_>, at: SystemTime) -> String {
    let (date, stamp) = amz_date(unix_secs(at));
    let scope = format!("{date}/{}/{}/aws4_request", req.region, req.service);
    let credential = format!("{}/{scope}", creds.access_key_id);
    let expires = TOKEN_LIFETIME_SECS.to_string();
    let mut pairs: Vec<(String, String)> =
        req.params.iter().map(|(k, v)| (enc(k), enc(v))).collect();
    pairs.push(("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()));
    pairs.push(("X-Amz-Credential".into(), enc(&credential)));
    pairs.push(("X-Amz-Date".into(), stamp.clone()));
    pairs.push(("X-Amz-Expires".into(), expires));
    pairs.push(("X-Amz-SignedHeaders".into(), "host".into()));
    if let Some(token) = &creds.session_token {
        pairs.push(("X-Amz-Security-Token".into(), enc(token.expose_secret())));
    }

    let mut sorted = pairs.clone();
    sorted.sort();
    let canonical_query = join_pairs(&sorted);
    let canonical_request = format!(
        "GET\n{}\n{canonical_query}\nhost:{}\n\nhost\n{}",
        req.path,
        req.host,
        sha256_hex(b"")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = format!("AWS4{}", creds.secret_access_key.expose_secret()).into_bytes();
    for part in [date.as_str(), req.region, req.service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes()).to_vec();
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));

    format!("{}&X-Amz-Signature={signature}", join_pairs(&pairs))
}

pub(super) fn join_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}
