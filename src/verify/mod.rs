//! verifyCredentials: a staged diagnosis that names the first thing that is wrong and what to do.
//!
//! Stages, each bounded: parse → DNS → TCP → TLS handshake (when TLS is on) → token (OAUTHBEARER, AWS MSK IAM;
//! fetched from t0 on, beside the network stages) → SASL + cluster metadata.
//! The verdict is `{"verified":true}` or `{"verified":false,"reason":"<stage>: <what failed>. <what to do>"}`.
//! Owns the stages and the wording; does not own how the verdict is delivered (see `service`).

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
