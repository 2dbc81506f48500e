//! The STS check.

use super::*;

fn sts_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
         <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  \
         <RequestId>a1b2c3</RequestId>\n</ErrorResponse>"
    )
}

async fn check_against(status: u16, body: String) -> (Result<(), AwsError>, Vec<Request>) {
    let sts = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&sts)
        .await;
    let e = env(&[("AWS_ENDPOINT_URL_STS", &sts.uri())], &[]);
    let creds = Credentials::new(AKID, SECRET, Some(SESSION.to_owned()));
    let r = check_credentials(&creds, "eu-west-1", &e, &http()).await;
    (r, sts.received_requests().await.unwrap())
}

/// `YYYYMMDD'T'HHMMSS'Z'` as a time.
fn parse_amz_date(date: &str) -> SystemTime {
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &date[0..4],
        &date[4..6],
        &date[6..8],
        &date[9..11],
        &date[11..13],
        &date[13..15]
    );
    parse_iso8601(&iso).unwrap()
}

#[tokio::test]
async fn sts_check_accepts_and_presigns_a_get() {
    let sts = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .and(query_param("Action", "GetCallerIdentity"))
        .and(query_param("Version", "2011-06-15"))
        .and(query_param("X-Amz-Algorithm", "AWS4-HMAC-SHA256"))
        .and(query_param("X-Amz-SignedHeaders", "host"))
        .and(query_param("X-Amz-Expires", "900"))
        .and(query_param("X-Amz-Security-Token", SESSION))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/kc</Arn>\
             <UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult>\
             </GetCallerIdentityResponse>",
        ))
        .expect(1)
        .mount(&sts)
        .await;
    let e = env(&[("AWS_ENDPOINT_URL_STS", &sts.uri())], &[]);
    let creds = Credentials::new(AKID, SECRET, Some(SESSION.to_owned()));
    check_credentials(&creds, "eu-west-1", &e, &http())
        .await
        .unwrap();

    let req = &sts.received_requests().await.unwrap()[0];
    let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
    let credential = &q["X-Amz-Credential"];
    assert!(credential.starts_with("AKIDEXAMPLE/"), "{credential}");
    assert!(
        credential.ends_with("/eu-west-1/sts/aws4_request"),
        "{credential}"
    );
    let sig = &q["X-Amz-Signature"];
    assert_eq!(sig.len(), 64);
    assert!(sig.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(req.body.len(), 0);

    // The same signature as our presign for the request's host and date.
    let date = &q["X-Amz-Date"];
    let epoch = parse_amz_date(date);
    // The signed host is the Host header reqwest sent.
    let host = req.headers["host"].to_str().unwrap().to_owned();
    assert_eq!(host, sts.uri().trim_start_matches("http://"));
    let want = presign_query(
        &creds,
        &Presign {
            host: &host,
            path: "/",
            service: "sts",
            region: "eu-west-1",
            params: &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
        },
        epoch,
    );
    assert_eq!(req.url.query(), Some(want.as_str()));
}

#[tokio::test]
async fn sts_error_codes_map_to_kinds() {
    let cases = [
        (
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
            AwsErrorKind::ExpiredToken,
        ),
        (
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
            AwsErrorKind::UnknownAccessKey,
        ),
        (
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS \
             Secret Access Key and signing method. Consult the service documentation for details.",
            AwsErrorKind::WrongSecretKey,
        ),
        (
            403,
            "SignatureDoesNotMatch",
            "Signature expired: 20240102T030405Z is now earlier than 20240102T031905Z",
            AwsErrorKind::ClockSkew,
        ),
        (
            403,
            "AccessDenied",
            "User is not authorized",
            AwsErrorKind::AccessDenied,
        ),
        (400, "Throttling", "Rate exceeded", AwsErrorKind::Other),
        (
            503,
            "ServiceUnavailable",
            "try later",
            AwsErrorKind::StsUnreachable,
        ),
    ];
    for (status, code, message, kind) in cases {
        let (r, reqs) = check_against(status, sts_error(code, message)).await;
        let err = r.unwrap_err();
        assert_eq!(err.kind, kind, "{code}: {err}");
        assert!(err.detail.contains(code), "{err}");
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method.as_str(), "GET");
        let text = err.to_string();
        assert!(!text.contains(SECRET) && !text.contains(SESSION), "{text}");
    }
}

#[tokio::test]
async fn sts_error_texts_and_answers_without_an_aws_error() {
    let (r, _) = check_against(403, sts_error("ExpiredToken", "expired")).await;
    assert!(
        r.unwrap_err()
            .to_string()
            .starts_with("the AWS session token has expired (STS ExpiredToken: expired). Renew")
    );
    let (r, _) = check_against(502, "<html>bad gateway</html>".into()).await;
    assert_eq!(r.unwrap_err().kind, AwsErrorKind::StsUnreachable);
    let (r, _) = check_against(404, "<html>not here</html>".into()).await;
    assert_eq!(r.unwrap_err().kind, AwsErrorKind::Other);
}

#[tokio::test]
async fn sts_errors_never_echo_secrets() {
    let (r, _) = check_against(
        403,
        sts_error(
            "SignatureDoesNotMatch",
            &format!("canonical request had {SECRET} and {}", enc(SESSION)),
        ),
    )
    .await;
    let text = r.unwrap_err().to_string();
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains(&enc(SESSION)), "{text}");
}

#[tokio::test]
async fn sts_unreachable_is_bounded_and_hides_the_url() {
    let e = env(&[("AWS_ENDPOINT_URL_STS", &closed_port_url())], &[]);
    let creds = Credentials::new(AKID, SECRET, Some(SESSION.to_owned()));
    let started = Instant::now();
    let err = check_credentials(&creds, "eu-west-1", &e, &http())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(err.kind, AwsErrorKind::StsUnreachable);
    let text = err.to_string();
    assert!(!text.contains("X-Amz-"), "{text}");
    assert!(!text.contains(&enc(SESSION)), "{text}");
}

#[test]
fn sts_endpoints() {
    let e = AwsEnv::from_vars(Vec::<(String, String)>::new());
    assert_eq!(
        e.sts_endpoint(Some("eu-west-1")),
        "https://sts.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        e.sts_endpoint(Some("cn-north-1")),
        "https://sts.cn-north-1.amazonaws.com.cn"
    );
    assert_eq!(e.sts_endpoint(None), "https://sts.amazonaws.com");
    let e = AwsEnv::from_vars([
        ("AWS_ENDPOINT_URL", "http://a"),
        ("AWS_ENDPOINT_URL_STS", "http://b"),
    ]);
    assert_eq!(e.sts_endpoint(Some("eu-west-1")), "http://b");
    let e = AwsEnv::from_vars([("AWS_ENDPOINT_URL", "http://a")]);
    assert_eq!(e.sts_endpoint(Some("eu-west-1")), "http://a");
}
