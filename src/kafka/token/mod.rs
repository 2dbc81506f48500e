//! SASL/OAUTHBEARER access tokens for librdkafka: fetched from an OAuth 2.0 token endpoint (client credentials
//! grant) or signed for AWS MSK IAM, cached, and kept fresh by a background task.
//!
//! librdkafka asks for a token through the client context's `generate_oauth_token` callback, on its own thread
//! or inside a consumer poll on a runtime thread. That callback only reads the cache ([`TokenSource::oauth_token`]);
//! the first token is fetched before the client is created ([`TokenSource::start`]) and later ones by the
//! refresher at 75 % of each token's lifetime, ahead of librdkafka's own refresh at 80 %. A failed refresh keeps
//! the current token while it is valid and retries with a growing delay.
//!
//! Neither the client secret, the AWS keys nor a token is ever logged or put in an error text.

mod error;
mod msk;
mod oauth;
mod refresher;
mod refusal;
mod source;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use error::{TokenError, TokenErrorKind};
pub use source::FETCH_TIMEOUT;
pub use source::TokenSource;
