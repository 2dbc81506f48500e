//! SASL/OAUTHBEARER end to end (issue: OAUTHBEARER and AWS MSK IAM): the shared Apache Kafka broker's OAUTH
//! listener (`KC_KAFKA_OAUTH_BROKERS`, SASL_PLAINTEXT) validates RS256 JWTs against the JWKS of the identity
//! provider `scripts/kafka.sh start` runs beside it (`scripts/kafka/idp.py`: client credentials grant at
//! `KC_OAUTH_TOKEN_URL`), with `connections.max.reauth.ms` set so that a session ends when its token does.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::verify::service;

const T: Duration = Duration::from_secs(30);

/// The OAUTHBEARER credentials of the IdP's client `client_var` (`KC_OAUTH_*_CLIENT_ID`).
fn oauth(client_var: &str) -> Value {
    json!({
        "brokers": kafka_var("KC_KAFKA_OAUTH_BROKERS"),
        "mechanism": "oauthbearer",
        "tokenUrl": kafka_var("KC_OAUTH_TOKEN_URL"),
        "oauthClientId": kafka_var(client_var),
        "oauthClientSecret": kafka_var("KC_OAUTH_CLIENT_SECRET"),
    })
}

/// The signed tokens the IdP issues all start with their JWT header (the same for every token): asked once
/// from the IdP. No log line or message may contain it.
pub fn token_prefix() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let out = std::process::Command::new("curl")
                .args(["-sS", "--max-time", "5", "-u"])
                .arg(format!(
                    "{}:{}",
                    kafka_var("KC_OAUTH_CLIENT_ID"),
                    kafka_var("KC_OAUTH_CLIENT_SECRET")
                ))
                .args(["-d", "grant_type=client_credentials"])
                .arg(kafka_var("KC_OAUTH_TOKEN_URL"))
                .output()
                .expect("curl runs");
            let answer: Value = serde_json::from_slice(&out.stdout).expect("a JSON token answer");
            let token = answer["access_token"].as_str().expect("an access token");
            let header = token.split('.').next().unwrap();
            assert!(header.len() > 20, "{header}");
            format!("{header}.")
        })
        .clone()
}

fn assert_no_secret(label: &str, text: &str) {
    let secret = kafka_var("KC_OAUTH_CLIENT_SECRET");
    assert!(!text.contains(&secret), "{label}: client secret leaked");
    assert!(
        !text.contains(&token_prefix()),
        "{label}: an access token leaked"
    );
}

/// Produce and Consume through the OAUTH listener; getTopics lists the topic; the client secret and the
/// tokens appear in no log and no message.
#[tokio::test]
async fn oauthbearer_produce_consume_and_get_topics() {
    let t = Topic::new("oauth", 2);
    let group = Group::new();
    let creds = oauth("KC_OAUTH_CLIENT_ID");

    let rb = Rabbit::setup("oauth-p").await;
    let (producer, _api) = start_worker(
        &rb,
        "produce",
        merge(creds.clone(), json!({"topic": t.name})),
        &[("RUST_LOG", "debug")],
    )
    .await;
    let messages: Vec<Value> = (0..20)
        .map(|i| json!({"key": format!("k{i}"), "value": format!("oauth-{i}"), "partition": i % 2}))
        .collect();
    rb.publish_input(&json!({"body": {"messages": messages}}), &[])
        .await;
    let data = rb.take("data", 2, T).await;
    let written: usize = data
        .iter()
        .map(|m| m.decrypted()["body"]["records"].as_array().unwrap().len())
        .sum();
    assert_eq!(written, 20, "logs:\n{}", diagnostic_logs(&producer.logs()));
    assert_eq!(rb.count("error").await + rb.count("rebound").await, 0);
    assert!(
        producer
            .logs()
            .contains("SASL/OAUTHBEARER token refreshed."),
        "a token was fetched"
    );
    for m in &data {
        assert_no_secret("produce data", &m.decrypted().to_string());
    }
    let plog = producer.logs();
    assert_eq!(producer.stop().await, 0);
    assert_no_secret("produce logs", &plog);
    rb.teardown().await;

    let rb = Rabbit::setup("oauth-c").await;
    let (consumer, _api) = start_worker(
        &rb,
        "consume",
        merge(
            creds.clone(),
            json!({"topic": t.name, "groupId": &*group, "sessionTimeoutMs": "6000"}),
        ),
        &[("RUST_LOG", "debug")],
    )
    .await;
    let got = rb.take("data", 20, T).await;
    let mut values: Vec<String> = got
        .iter()
        .map(|m| m.decrypted()["body"]["value"].as_str().unwrap().to_owned())
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("oauth-{i}")).collect();
    want.sort();
    assert_eq!(values, want, "logs:\n{}", diagnostic_logs(&consumer.logs()));
    let clog = consumer.logs();
    assert_eq!(consumer.stop().await, 0);
    assert_no_secret("consume logs", &clog);
    assert_eq!(
        committed(&kafka(), &group, &t.name, 2)
            .values()
            .sum::<i64>(),
        20,
        "offsets committed through the OAUTH listener"
    );
    rb.teardown().await;

    let (code, body, _, logs) = service(
        "selectModel",
        Some(creds),
        &[
            ("ELASTICIO_ACTION_OR_TRIGGER", "produce".into()),
            ("ELASTICIO_GET_MODEL_METHOD", "getTopics".into()),
        ],
    )
    .await;
    assert_eq!(code, 0, "{logs}");
    let body = body.unwrap();
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["data"][&t.name], json!(t.name), "{body}");
    assert_no_secret("getTopics", &format!("{logs}{body}"));
}

/// Tokens that live 15 s, a broker that ends every session when its token expires: for 40 s a producer and a
/// consumer keep working, each fetching new tokens as the old ones run out; every record is written once and
/// read, and no error or rebound is emitted.
#[tokio::test]
async fn short_lived_tokens_are_refreshed_mid_stream_and_nothing_is_lost() {
    let t = Topic::new("oauth-short", 1);
    let group = Group::new();
    let creds = oauth("KC_OAUTH_SHORT_CLIENT_ID");

    let rc = Rabbit::setup("oauth-short-c").await;
    let (consumer, _api) = start_worker(
        &rc,
        "consume",
        merge(
            creds.clone(),
            json!({"topic": t.name, "groupId": &*group, "sessionTimeoutMs": "6000", "startFrom": "earliest"}),
        ),
        &[],
    )
    .await;
    let rp = Rabbit::setup("oauth-short-p").await;
    let (producer, _api2) =
        start_worker(&rp, "produce", merge(creds, json!({"topic": t.name})), &[]).await;
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(40) {
        rp.publish_input(
            &json!({"body": {"messages": [{"value": format!("r{sent}")}]}}),
            &[],
        )
        .await;
        sent += 1;
        // The pace of the stream under test: one message every 200 ms across several token lifetimes.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let written = rp.take("data", sent, T).await;
    assert_eq!(
        written.len(),
        sent,
        "every message written; producer logs:\n{}",
        diagnostic_logs(&producer.logs())
    );
    let read = rc.take("data", sent, T).await;
    let mut values: Vec<String> = read
        .iter()
        .map(|m| m.decrypted()["body"]["value"].as_str().unwrap().to_owned())
        .collect();
    values.sort();
    values.dedup();
    assert_eq!(
        values.len(),
        sent,
        "every record read; consumer logs:\n{}",
        diagnostic_logs(&consumer.logs())
    );
    for (label, rb) in [("producer", &rp), ("consumer", &rc)] {
        assert_eq!(
            rb.count("error").await + rb.count("rebound").await + rb.count("dead").await,
            0,
            "{label}: no error, rebound or rejection"
        );
    }
    for (label, w) in [("producer", &producer), ("consumer", &consumer)] {
        let logs = w.logs();
        let refreshed = logs.matches("SASL/OAUTHBEARER token refreshed.").count();
        assert!(
            refreshed >= 3,
            "{label}: a 15 s token is replaced at least 3 times in 40 s (saw {refreshed})"
        );
        assert!(
            !logs.contains("Kafka authentication failed"),
            "{label}: no authentication failure:\n{}",
            diagnostic_logs(&logs)
        );
    }
    assert_eq!(producer.stop().await, 0);
    assert_eq!(consumer.stop().await, 0);
    assert_eq!(
        watermarks(&kafka(), &t.name, 0).1,
        sent as i64,
        "each written once"
    );
    rp.teardown().await;
    rc.teardown().await;
}

/// verifyCredentials names each OAUTHBEARER failure at its stage, within the 15 s budget.
#[tokio::test]
async fn verify_names_the_token_stage_and_the_broker_refusal() {
    let good = oauth("KC_OAUTH_CLIENT_ID");
    let token_url = kafka_var("KC_OAUTH_TOKEN_URL");
    let cases = [
        ("good", good.clone(), None),
        (
            "wrong secret",
            merge(good.clone(), json!({"oauthClientSecret": "not-the-secret"})),
            Some("token: the identity provider refused the client id or secret (HTTP 401"),
        ),
        (
            "not a token endpoint",
            merge(
                good.clone(),
                json!({"tokenUrl": token_url.replace("/token", "/nope")}),
            ),
            Some("token: `Token URL` is not an OAuth 2.0 token endpoint (HTTP 404"),
        ),
        (
            "answer without access_token",
            oauth("KC_OAUTH_NOACCESS_CLIENT_ID"),
            Some("token: the token URL answered HTTP 200 without an `access_token`"),
        ),
        (
            "unreachable token URL",
            merge(
                good.clone(),
                json!({"tokenUrl": "http://127.0.0.1:1/token"}),
            ),
            Some("token: cannot reach the token URL at `127.0.0.1:1`"),
        ),
        (
            "wrong audience",
            merge(good.clone(), json!({"audience": "not-this-cluster"})),
            Some("SASL: the broker refused the token of OAuth client `"),
        ),
    ];
    let runs = cases.into_iter().map(|(label, cfg, want)| async move {
        let started = Instant::now();
        let (code, body, _, logs) = service("verifyCredentials", Some(cfg), &[]).await;
        let took = started.elapsed();
        assert_eq!(code, 0, "{label}: {logs}");
        let data = body.unwrap()["data"].clone();
        match want {
            None => assert_eq!(data, json!({"verified": true}), "{label}: {logs}"),
            Some(prefix) => {
                assert_eq!(data["verified"], false, "{label}: {data}");
                let reason = data["reason"].as_str().unwrap();
                assert!(reason.starts_with(prefix), "{label}: {reason}");
                assert_no_secret(label, reason);
            }
        }
        assert!(took < Duration::from_secs(15), "{label}: {took:?}");
        assert_no_secret(label, &logs);
        data
    });
    for data in futures_util::future::join_all(runs).await {
        eprintln!("{data}");
    }
}

/// Produce: a wrong secret is the user's to fix (an `AuthenticationError`, the message rejected); an identity
/// provider that cannot be reached is transient (the message is rebounded, nothing is written).
#[tokio::test]
async fn produce_rejects_on_a_refused_client_and_rebounds_when_the_provider_is_down() {
    let t = Topic::new("oauth-bad", 1);
    let good = oauth("KC_OAUTH_CLIENT_ID");

    let rb = Rabbit::setup("oauth-badsecret").await;
    let cfg = merge(
        good.clone(),
        json!({"topic": t.name, "oauthClientSecret": "not-the-secret"}),
    );
    let (worker, _api) = start_worker(&rb, "produce", cfg, &[]).await;
    let content = rb
        .publish_input(&json!({"body": {"messages": [{"value": "never"}]}}), &[])
        .await;
    let err = rb.next("error", T).await.expect("an error");
    let e = error_of(&err);
    assert_eq!(e["name"], "AuthenticationError", "{e}");
    let text = e["message"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "Kafka authentication failed for OAuth client `{}` with OAUTHBEARER: token: the identity provider refused the client id or secret",
            kafka_var("KC_OAUTH_CLIENT_ID")
        )),
        "{text}"
    );
    assert!(
        text.contains("Check `OAuth client ID` and `OAuth client secret`."),
        "{text}"
    );
    let dead = rb.next("dead", T).await.expect("rejected");
    assert_eq!(dead.data, content);
    assert_eq!(rb.count("data").await + rb.count("rebound").await, 0);
    finish(rb, worker).await;

    let rb = Rabbit::setup("oauth-idpdown").await;
    let cfg = merge(
        good,
        json!({"topic": t.name, "tokenUrl": "http://127.0.0.1:1/token"}),
    );
    let (worker, _api) = start_worker(&rb, "produce", cfg, &[]).await;
    let content = rb
        .publish_input(&json!({"body": {"messages": [{"value": "later"}]}}), &[])
        .await;
    let rebound = rb.next("rebound", T).await.expect("a rebound");
    assert_eq!(rebound.data, content, "the original comes back later");
    assert!(
        worker
            .logs()
            .contains("cannot reach the token URL at `127.0.0.1:1`"),
        "{}",
        diagnostic_logs(&worker.logs())
    );
    assert_eq!(rb.count("error").await + rb.count("data").await, 0);
    assert_eq!(worker.stop().await, 0);
    assert_eq!(watermarks(&kafka(), &t.name, 0).1, 0, "nothing written");
    rb.teardown().await;
}
