//! The chain order: form keys, environment, web identity.

use super::*;

const STS_CREDS_XML: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>IQoJb3JpZ2luX2VjEXAMPLE&amp;tok</SessionToken>
      <SecretAccessKey>wiSecret/Key+Example</SecretAccessKey>
      <Expiration>2024-01-02T04:04:05Z</Expiration>
      <AccessKeyId>ASIAWEBIDENTITY</AccessKeyId>
    </Credentials>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/kc/s</Arn></AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;

#[tokio::test]
async fn form_keys_win_over_environment() {
    let form = Credentials::new("AKIAFORM", "formsecret", None);
    let e = env(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ],
        &[],
    );
    let (c, src) = resolve_credentials(Some(&form), &e, &http()).await.unwrap();
    assert_eq!(src, CredentialSource::Form);
    assert_eq!(c.access_key_id, "AKIAFORM");
    assert_eq!(secret(&c), "formsecret");
}

#[tokio::test]
async fn environment_wins_over_web_identity() {
    let sts = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(STS_CREDS_XML))
        .expect(0)
        .mount(&sts)
        .await;
    let e = env(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/kc"),
            ("AWS_ENDPOINT_URL_STS", &sts.uri()),
        ],
        &[("/var/run/token", "jwt")],
    );
    let (c, src) = resolve_credentials(None, &e, &http()).await.unwrap();
    assert_eq!(src, CredentialSource::Environment);
    assert_eq!(c.access_key_id, "AKIAENV");
    assert_eq!(secret(&c), "envsecret");
    assert_eq!(token(&c), Some("envtoken"));
    assert_eq!(c.expires_at, None);
}

#[tokio::test]
async fn half_environment_keys_are_an_error() {
    let e = env(&[("AWS_ACCESS_KEY_ID", "AKIAENV")], &[]);
    let err = resolve_credentials(None, &e, &http()).await.unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::NoCredentials);
    assert!(err.detail.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
}

#[tokio::test]
async fn web_identity_assumes_the_role() {
    let sts = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ))
        .and(body_string_contains("Action=AssumeRoleWithWebIdentity"))
        .and(body_string_contains("Version=2011-06-15"))
        .and(body_string_contains(
            "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fkc",
        ))
        .and(body_string_contains("RoleSessionName=my-session"))
        .and(body_string_contains(
            "WebIdentityToken=eyJhbGciOi.eyJzdWIi.sig",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(STS_CREDS_XML))
        .expect(1)
        .mount(&sts)
        .await;
    let e = env(
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/kc"),
            ("AWS_ROLE_SESSION_NAME", "my-session"),
            ("AWS_ENDPOINT_URL_STS", &format!("{}/", sts.uri())),
            // A container endpoint too: web identity comes first.
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds"),
        ],
        &[("/var/run/token", "eyJhbGciOi.eyJzdWIi.sig\n")],
    );
    let (c, src) = resolve_credentials(None, &e, &http()).await.unwrap();
    assert_eq!(src, CredentialSource::WebIdentity);
    assert_eq!(c.access_key_id, "ASIAWEBIDENTITY");
    assert_eq!(secret(&c), "wiSecret/Key+Example");
    assert_eq!(token(&c), Some("IQoJb3JpZ2luX2VjEXAMPLE&tok"));
    assert_eq!(c.expires_at, Some(at() + Duration::from_secs(3600)));
}

#[tokio::test]
async fn web_identity_failures_name_the_cause() {
    let sts = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>\
             <Message>Incorrect token audience</Message></Error></ErrorResponse>",
        ))
        .mount(&sts)
        .await;
    let uri = sts.uri();
    let vars = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/kc"),
        ("AWS_ENDPOINT_URL", uri.as_str()),
    ];
    let err = resolve_credentials(None, &env(&vars, &[("/var/run/token", "jwt")]), &http())
        .await
        .unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::WebIdentity);
    assert!(err.detail.contains("InvalidIdentityToken"), "{err}");
    assert!(err.detail.contains("Incorrect token audience"), "{err}");

    let err = resolve_credentials(None, &env(&vars, &[]), &http())
        .await
        .unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::WebIdentity);
    assert!(err.detail.contains("/var/run/token"), "{err}");
}
