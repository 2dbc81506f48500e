//! The container credentials endpoint.

use super::*;

#[tokio::test]
async fn container_credentials_with_authorization() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/credentials"))
        .and(header("authorization", "Bearer pod-identity-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "AccessKeyId": "ASIACONTAINER",
            "SecretAccessKey": "containerSecret",
            "Token": "containerToken",
            "Expiration": "2024-01-02T09:04:05Z",
            "RoleArn": "arn:aws:iam::123456789012:role/task"
        })))
        .expect(2)
        .mount(&server)
        .await;

    // Full URI, token from a file (wins over the variable).
    let e = env(
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                &format!("{}/v1/credentials", server.uri()),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/var/run/pod-token",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong"),
        ],
        &[("/var/run/pod-token", "Bearer pod-identity-token\n")],
    );
    let (c, src) = resolve_credentials(None, &e, &http()).await.unwrap();
    assert_eq!(src, CredentialSource::Container);
    assert_eq!(c.access_key_id, "ASIACONTAINER");
    assert_eq!(secret(&c), "containerSecret");
    assert_eq!(token(&c), Some("containerToken"));
    assert_eq!(c.expires_at, Some(at() + Duration::from_secs(6 * 3600)));

    // Relative URI on the (injected) container base, token from the variable.
    let e = env(
        &[
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v1/credentials"),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "Bearer pod-identity-token",
            ),
        ],
        &[],
    )
    .with_container_base(server.uri());
    let (c, src) = resolve_credentials(None, &e, &http()).await.unwrap();
    assert_eq!(src, CredentialSource::Container);
    assert_eq!(c.access_key_id, "ASIACONTAINER");
}

#[tokio::test]
async fn container_failures() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string("nope"))
        .mount(&server)
        .await;
    let e = env(
        &[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        )],
        &[],
    )
    .with_container_base(server.uri());
    let err = resolve_credentials(None, &e, &http()).await.unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::Container);
    assert!(err.detail.contains("401"), "{err}");

    // A plain-http full URI to an arbitrary host is refused without a request (botocore's rule).
    let e = env(
        &[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://198.51.100.7/creds",
        )],
        &[],
    );
    let err = resolve_credentials(None, &e, &http()).await.unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::Container);
    assert!(err.detail.contains("not allowed"), "{err}");
}
