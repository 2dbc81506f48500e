//! AWS MSK IAM authentication: the SASL/OAUTHBEARER token that MSK accepts, the credential chain that finds
//! keys to sign it with, and an STS check that tells expired or wrong keys apart before the broker does.
//!
//! - [`msk_token`]: a SigV4 query presign of `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`
//!   (service `kafka-cluster`, 900 s), in the exact parameter order of AWS's Python signer
//!   (`aws-msk-iam-sasl-signer-python` via botocore `SigV4QueryAuth`), with `User-Agent` appended after signing,
//!   base64url without padding. A differential test (`tests/it/msk_iam.rs`) compares it byte for byte.
//! - [`resolve_credentials`]: form keys → environment → web identity (STS `AssumeRoleWithWebIdentity`) →
//!   container credentials endpoint → EC2 instance metadata (IMDSv2), every remote step time-bounded.
//! - [`check_credentials`]: a presigned STS `GetCallerIdentity`; signing is local, so this is the only way to
//!   learn that keys are expired or unknown before SASL fails with a generic error.
//!
//! Secrets are [`SecretString`]s; `Debug` impls and error texts never contain them. Error details coming from
//! HTTP errors are stripped of the URL (a presigned URL carries the session token).

mod chain;
mod container;
mod credentials;
mod env;
mod error;
mod http;
mod imds;
mod msk;
mod region;
mod sigv4;
mod sts;
mod time;
mod web_identity;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use chain::resolve_credentials;
pub use credentials::{CredentialSource, Credentials};
pub use env::{AwsEnv, DEFAULT_CONTAINER_BASE, DEFAULT_IMDS_BASE, FileReader};
pub use error::{AwsError, AwsErrorKind};
pub use http::http_client;
pub use msk::{MskToken, USER_AGENT, msk_token};
pub use region::region_from_brokers;
pub use sigv4::TOKEN_LIFETIME_SECS;
pub use sts::check_credentials;
