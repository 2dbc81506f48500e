//! Instance metadata (IMDSv2) and the bounded end of the chain.

use super::*;

async fn mount_imds(server: &MockServer) {
    Mock::given(method("PUT"))
        .and(path("/latest/api/token"))
        .and(header("x-aws-ec2-metadata-token-ttl-seconds", "21600"))
        .respond_with(ResponseTemplate::new(200).set_body_string("imds-session-token"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/latest/meta-data/iam/security-credentials/"))
        .and(header("x-aws-ec2-metadata-token", "imds-session-token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("kc-instance-role"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/latest/meta-data/iam/security-credentials/kc-instance-role",
        ))
        .and(header("x-aws-ec2-metadata-token", "imds-session-token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"Code":"Success","LastUpdated":"2024-01-02T02:00:00Z","Type":"AWS-HMAC",
                    "AccessKeyId":"ASIAIMDS","SecretAccessKey":"imdsSecret","Token":"imdsToken",
                    "Expiration":"2024-01-02T09:04:05Z"}"#,
        ))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn imds_v2_instance_profile() {
    let server = MockServer::start().await;
    mount_imds(&server).await;
    let e = env(&[], &[]).with_imds_base(server.uri());
    let (c, src) = resolve_credentials(None, &e, &http()).await.unwrap();
    assert_eq!(src, CredentialSource::InstanceMetadata);
    assert_eq!(c.access_key_id, "ASIAIMDS");
    assert_eq!(secret(&c), "imdsSecret");
    assert_eq!(token(&c), Some("imdsToken"));
    assert_eq!(c.expires_at, Some(at() + Duration::from_secs(6 * 3600)));
    let calls: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r: &Request| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        calls,
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/kc-instance-role"
        ]
    );
}

#[tokio::test]
async fn imds_endpoint_from_environment_and_disabled() {
    let server = MockServer::start().await;
    mount_imds(&server).await;
    let e = AwsEnv::from_vars([(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        format!("{}/", server.uri()),
    )]);
    assert_eq!(e.imds_base(), server.uri());
    let (_, src) = resolve_credentials(None, &e, &http()).await.unwrap();
    assert_eq!(src, CredentialSource::InstanceMetadata);

    let e = AwsEnv::from_vars([
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.uri()),
        ("AWS_EC2_METADATA_DISABLED", "TRUE".to_owned()),
    ]);
    let err = resolve_credentials(None, &e, &http()).await.unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::NoCredentials);
    assert!(err.detail.contains("AWS_EC2_METADATA_DISABLED"), "{err}");
}

#[tokio::test]
async fn instance_without_role_is_no_credentials() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_string("t"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let e = env(&[], &[]).with_imds_base(server.uri());
    let err = resolve_credentials(None, &e, &http()).await.unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::NoCredentials);
    assert!(err.detail.contains("no IAM role"), "{err}");
}

#[tokio::test]
async fn nothing_configured_fails_fast() {
    let e = env(&[], &[]);
    let started = Instant::now();
    let err = resolve_credentials(None, &e, &http()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, AwsErrorKind::NoCredentials);
    assert!(
        err.to_string().starts_with("no AWS credentials found ("),
        "{err}"
    );
    assert!(err.to_string().contains("instance metadata"), "{err}");
}

#[tokio::test]
async fn silent_imds_is_bounded() {
    // Accepts connections and never answers (like a firewalled 169.254.169.254 after the hop limit).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let e = env(&[], &[]).with_imds_base(format!("http://{addr}"));
    let started = Instant::now();
    let err = resolve_credentials(None, &e, &http()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, AwsErrorKind::NoCredentials);
    hold.abort();
}
