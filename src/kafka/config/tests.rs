//! Connection parsing and translation.

use super::*;
use serde_json::json;

#[test]
fn brokers_split_on_commas_and_spaces() {
    assert_eq!(
        parse_brokers("a:1, b:2  c:3").unwrap(),
        vec!["a:1", "b:2", "c:3"]
    );
    assert_eq!(parse_brokers("  ").unwrap_err().field, "brokers");
    assert!(
        parse_brokers("host")
            .unwrap_err()
            .reason
            .contains("no port")
    );
    assert!(
        parse_brokers("host:99999")
            .unwrap_err()
            .reason
            .contains("invalid port")
    );
    assert!(parse_brokers("host:x").is_err());
}

#[test]
fn sasl_defaults_to_scram_sha_512_and_maps_to_security_protocol() {
    let c =
        KafkaConnection::from_cfg(&json!({"brokers": "k:9092", "username": "u", "password": "p"}))
            .unwrap();
    let cc = c.to_client_config();
    assert_eq!(cc.get("security.protocol"), Some("sasl_plaintext"));
    assert_eq!(cc.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
    let c = KafkaConnection::from_cfg(
        &json!({"brokers": "k:9092", "username": "u", "mechanism": "scram-sha-256", "tls": true}),
    )
    .unwrap();
    let cc = c.to_client_config();
    assert_eq!(cc.get("security.protocol"), Some("sasl_ssl"));
    assert_eq!(cc.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
    assert_eq!(
        cc.get("ssl.endpoint.identification.algorithm"),
        Some("https")
    );
    let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092"})).unwrap();
    assert_eq!(
        c.to_client_config().get("security.protocol"),
        Some("plaintext")
    );
    let err = KafkaConnection::from_cfg(
        &json!({"brokers": "k:9092", "username": "u", "mechanism": "gssapi"}),
    )
    .unwrap_err();
    assert_eq!(err.field, "mechanism");
}

#[test]
fn oauthbearer_takes_its_fields_or_the_username_and_password() {
    let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092", "mechanism": "OAUTHBEARER",
        "tokenUrl": "https://idp.example.com/oauth2/token", "oauthClientId": "app",
        "oauthClientSecret": "s3cret", "scope": "kafka", "audience": ""}))
    .unwrap();
    let Some(Auth::OAuth(o)) = &c.auth else {
        panic!("{c:?}")
    };
    assert_eq!(
        (
            o.client_id.as_str(),
            o.scope.as_deref(),
            o.audience.as_deref()
        ),
        ("app", Some("kafka"), None)
    );
    let cc = c.to_client_config();
    assert_eq!(cc.get("security.protocol"), Some("sasl_plaintext"));
    assert_eq!(cc.get("sasl.mechanism"), Some("OAUTHBEARER"));
    assert_eq!(cc.get("sasl.password"), None);
    assert!(!format!("{c:?}").contains("s3cret"));
    // The Node.js component's way: client id as username, secret as password.
    let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092", "mechanism": "oauthbearer",
        "tokenUrl": "http://127.0.0.1:1/token", "username": "app2", "password": "p", "tls": true}))
    .unwrap();
    assert!(matches!(&c.auth, Some(Auth::OAuth(o)) if o.client_id == "app2"));
    assert_eq!(
        c.to_client_config().get("security.protocol"),
        Some("sasl_ssl")
    );
    for (cfg, field) in [
        (
            json!({"brokers": "k:9092", "mechanism": "oauthbearer", "oauthClientId": "a", "oauthClientSecret": "s"}),
            "tokenUrl",
        ),
        (
            json!({"brokers": "k:9092", "mechanism": "oauthbearer", "tokenUrl": "ftp://x/t", "oauthClientId": "a", "oauthClientSecret": "s"}),
            "tokenUrl",
        ),
        (
            json!({"brokers": "k:9092", "mechanism": "oauthbearer", "tokenUrl": "https://x/t", "oauthClientSecret": "s"}),
            "oauthClientId",
        ),
        (
            json!({"brokers": "k:9092", "mechanism": "oauthbearer", "tokenUrl": "https://x/t", "oauthClientId": "a"}),
            "oauthClientSecret",
        ),
    ] {
        assert_eq!(
            KafkaConnection::from_cfg(&cfg).unwrap_err().field,
            field,
            "{cfg}"
        );
    }
}

#[test]
fn aws_msk_iam_always_uses_tls_and_wants_keys_in_pairs() {
    let c = KafkaConnection::from_cfg(
        &json!({"brokers": "b-1.c.kafka.eu-west-1.amazonaws.com:9098",
        "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "tls": false,
        "awsAccessKeyId": "AKIDEXAMPLE", "awsSecretAccessKey": "secret/key+x"}),
    )
    .unwrap();
    let cc = c.to_client_config();
    assert_eq!(cc.get("security.protocol"), Some("sasl_ssl"));
    assert_eq!(cc.get("sasl.mechanism"), Some("OAUTHBEARER"));
    assert!(
        matches!(&c.auth, Some(Auth::MskIam(m)) if m.region == "eu-west-1" && m.keys.is_some())
    );
    assert!(!format!("{c:?}").contains("secret/key+x"));
    // The region from an MSK host name.
    let c = KafkaConnection::from_cfg(
        &json!({"brokers": "b-2.prod.abc123.c3.kafka.ap-southeast-2.amazonaws.com:9098",
        "mechanism": "aws-msk-iam"}),
    )
    .unwrap();
    assert!(matches!(&c.auth, Some(Auth::MskIam(m)) if m.region == "ap-southeast-2"));
    // No keys: the container's credential chain.
    let c = KafkaConnection::from_cfg(
        &json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "us-east-1"}),
    )
    .unwrap();
    assert!(matches!(&c.auth, Some(Auth::MskIam(m)) if m.keys.is_none()));
    for (cfg, field) in [
        (
            json!({"brokers": "k:9098", "mechanism": "aws-msk-iam"}),
            "awsRegion",
        ),
        (
            json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "EU West"}),
            "awsRegion",
        ),
        (
            json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "awsAccessKeyId": "A"}),
            "awsSecretAccessKey",
        ),
        (
            json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "awsSecretAccessKey": "S"}),
            "awsAccessKeyId",
        ),
        (
            json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "awsSessionToken": "T"}),
            "awsSessionToken",
        ),
    ] {
        assert_eq!(
            KafkaConnection::from_cfg(&cfg).unwrap_err().field,
            field,
            "{cfg}"
        );
    }
}

#[test]
fn debug_never_shows_the_password() {
    let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092", "username": "u", "password": "hunter2-secret", "clientKey": "KEYDATA", "clientCert": "CERT"})).unwrap();
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("hunter2-secret") && !dbg.contains("KEYDATA"),
        "{dbg}"
    );
    assert!(!c.cache_key().contains("hunter2"));
}

#[test]
fn the_credentials_struct_reads_exactly_the_component_json_fields() {
    let (read, declared) = crate::kafka::config::testing::struct_and_component_fields::<
        super::parse::Fields,
    >("/credentials/fields");
    assert_eq!(read, declared);
}
