//! Tests of the token source: fetching, refusals, transport failures, refreshing.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

const RETRY_MIN: std::time::Duration = std::time::Duration::from_secs(1);
use super::source::now_ms;
use super::*;
use crate::kafka::config::KafkaConnection;

use serde_json::json;
use wiremock::matchers::{body_string_contains, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn jwt(claims: &Value) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!("{}.{}.c2ln", b64(&json!({"alg":"RS256"})), b64(claims))
}

fn source(url: &str) -> Arc<TokenSource> {
    let conn = KafkaConnection::from_cfg(&json!({
        "brokers": "k:9092", "mechanism": "oauthbearer", "tokenUrl": url,
        "oauthClientId": "app", "oauthClientSecret": "s3cret-value", "scope": "kafka"
    }))
    .unwrap();
    TokenSource::for_connection(&conn).unwrap().unwrap()
}

#[tokio::test]
async fn a_token_is_fetched_with_basic_auth_and_its_lifetime_and_subject_are_used() {
    let idp = MockServer::start().await;
    let token = jwt(&json!({"sub": "svc-app", "exp": 4_102_444_800_i64}));
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header_exists("authorization"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("scope=kafka"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": token, "expires_in": 120})),
        )
        .expect(1)
        .mount(&idp)
        .await;
    let s = source(&format!("{}/token", idp.uri()));
    s.refresh().await.unwrap();
    let t = s.oauth_token().unwrap();
    assert_eq!(t.token, token);
    assert_eq!(t.principal_name, "svc-app");
    let left = t.lifetime_ms - now_ms();
    assert!((110_000..=120_000).contains(&left), "{left}");
    // The refresher would come back at 75 % of the lifetime.
    let next = s.next_refresh_in(RETRY_MIN);
    assert!(
        (Duration::from_secs(85)..=Duration::from_secs(90)).contains(&next),
        "{next:?}"
    );
}

#[tokio::test]
async fn a_refused_basic_login_is_retried_with_the_secret_in_the_form() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("client_secret=s3cret-value"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "opaque"})))
        .mount(&idp)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})))
        .mount(&idp)
        .await;
    let s = source(&format!("{}/token", idp.uri()));
    s.refresh().await.unwrap();
    let t = s.oauth_token().unwrap();
    // Opaque token: the client id is the principal, the default lifetime applies.
    assert_eq!(t.principal_name, "app");
    assert!(t.lifetime_ms - now_ms() > 290_000);
}

#[tokio::test]
async fn each_refusal_is_named_without_the_secret() {
    let cases = [
        (
            ResponseTemplate::new(401).set_body_json(
                json!({"error": "invalid_client", "error_description": "bad s3cret-value"}),
            ),
            TokenErrorKind::ClientRefused,
            "refused the client id or secret",
        ),
        (
            ResponseTemplate::new(400).set_body_json(json!({"error": "unauthorized_client"})),
            TokenErrorKind::GrantRefused,
            "client credentials grant",
        ),
        (
            ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_scope"})),
            TokenErrorKind::ScopeRefused,
            "scope or audience",
        ),
        (
            ResponseTemplate::new(404).set_body_string("<html>nope</html>"),
            TokenErrorKind::NotTokenEndpoint,
            "not an OAuth 2.0 token endpoint",
        ),
        (
            ResponseTemplate::new(503).set_body_string("down"),
            TokenErrorKind::ProviderFailed,
            "identity provider failed",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"token_type": "Bearer"})),
            TokenErrorKind::NoAccessToken,
            "without an `access_token`",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "x", "expires_in": -5})),
            TokenErrorKind::Expired,
            "already expired",
        ),
    ];
    for (response, kind, text) in cases {
        let idp = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&idp)
            .await;
        let s = source(&format!("{}/token", idp.uri()));
        let e = s.refresh().await.unwrap_err();
        assert_eq!(e.kind, kind, "{e}");
        let msg = e.to_string();
        assert!(msg.contains(text), "{msg}");
        assert!(!msg.contains("s3cret-value"), "{msg}");
        // The callback reports the failure instead of a token.
        assert!(s.oauth_token().err().unwrap().starts_with("token: "));
    }
}

#[tokio::test]
async fn an_unreachable_or_silent_token_url_is_named_within_the_timeout() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = source(&format!("http://127.0.0.1:{port}/token"))
        .refresh()
        .await
        .unwrap_err();
    assert_eq!(e.kind, TokenErrorKind::Unreachable, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.is_transient());

    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(8)))
        .mount(&idp)
        .await;
    let started = std::time::Instant::now();
    let e = source(&format!("{}/token", idp.uri()))
        .refresh()
        .await
        .unwrap_err();
    assert_eq!(e.kind, TokenErrorKind::Timeout, "{e}");
    assert!(started.elapsed() < Duration::from_secs(7));
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_valid_token_and_backs_off() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "first", "expires_in": 100})),
        )
        .up_to_n_times(1)
        .mount(&idp)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&idp)
        .await;
    let s = source(&format!("{}/token", idp.uri()));
    s.refresh().await.unwrap();
    assert!(s.refresh().await.is_err());
    assert_eq!(s.oauth_token().unwrap().token, "first");
    assert_eq!(
        s.next_refresh_in(Duration::from_secs(4)),
        Duration::from_secs(4)
    );
}

#[test]
fn no_token_source_for_password_or_no_sasl() {
    for cfg in [
        json!({"brokers": "k:9092"}),
        json!({"brokers": "k:9092", "username": "u", "password": "p"}),
    ] {
        let conn = KafkaConnection::from_cfg(&cfg).unwrap();
        assert!(TokenSource::for_connection(&conn).unwrap().is_none());
    }
}
