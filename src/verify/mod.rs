//! verifyCredentials: a staged diagnosis that names the first thing that is wrong and what to do.
//!
//! Stages, each bounded: parse → DNS → TCP → TLS handshake (when TLS is on) → token (OAUTHBEARER, AWS MSK IAM;
//! fetched from t0 on, beside the network stages) → SASL + cluster metadata.
//! The verdict is `{"verified":true}` or `{"verified":false,"reason":"<stage>: <what failed>. <what to do>"}`.
//! Owns the stages and the wording; does not own how the verdict is delivered (see `service`).

use std::time::Duration;

mod kafka;
mod network;
mod reasons;
mod stages;
mod tls;
mod verdict;

#[cfg(test)]
mod tests;

pub use stages::verify_credentials;
pub use verdict::Verdict;

const DNS_TIMEOUT: Duration = Duration::from_secs(3);
const TCP_TIMEOUT: Duration = Duration::from_secs(3);
const TLS_TIMEOUT: Duration = Duration::from_secs(4);
/// A TLS probe of a port that dropped a plaintext connection (is it a TLS port?).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
