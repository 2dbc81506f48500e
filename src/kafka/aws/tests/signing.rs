//! SigV4 and the MSK token: fixed vectors, dates, HMAC.

use super::*;

const PY_UA: &str = "aws-msk-iam-sasl-signer-python/1.0.2";

#[test]
fn fixed_vector_without_session_token() {
    let creds = Credentials::new(AKID, SECRET, None);
    let t = msk_token(&creds, "us-east-1", at(), PY_UA);
    assert_eq!(t.expires_at_ms, 1_704_165_545_000);
    assert!(!t.token.contains('='), "padding stripped");
    let url = decode(&t.token);
    assert_eq!(
        url,
        "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect\
         &X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIDEXAMPLE%2F20240102%2Fus-east-1%2Fkafka-cluster%2Faws4_request\
         &X-Amz-Date=20240102T030405Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
         &X-Amz-Signature=d976a63334b2f60e682ba65032cd9e985cc525f9be809dba495984f866910124\
         &User-Agent=aws-msk-iam-sasl-signer-python%2F1.0.2"
    );
}

#[test]
fn fixed_vector_with_session_token() {
    let creds = Credentials::new(AKID, SECRET, Some(SESSION.to_owned()));
    let t = msk_token(&creds, "us-east-1", at(), PY_UA);
    assert_eq!(t.expires_at_ms, 1_704_165_545_000);
    let url = decode(&t.token);
    assert_eq!(
        query_keys(&url),
        [
            "Action",
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Security-Token",
            "X-Amz-Signature",
            "User-Agent"
        ]
    );
    assert_eq!(
        query_value(&url, "X-Amz-Signature"),
        "ef2a4fcc2ecaf0415798182bfc15d7fd61608008d214c9c16dc87d9c825b1fcf"
    );
    assert_eq!(
        query_value(&url, "X-Amz-Security-Token"),
        "FwoGZXIvYXdzEXAMPLE%2B%2F%3Dtoken"
    );
    // The user agent is not signed: another one changes the token, not the signature.
    let other = decode(&msk_token(&creds, "us-east-1", at(), USER_AGENT).token);
    assert_eq!(
        query_value(&other, "X-Amz-Signature"),
        query_value(&url, "X-Amz-Signature")
    );
    assert!(other.ends_with(&format!("&User-Agent={}", enc(USER_AGENT))));
    // Sub-second parts of the time are dropped, as botocore's timestamp does.
    let later = msk_token(
        &creds,
        "us-east-1",
        at() + Duration::from_millis(999),
        PY_UA,
    );
    assert_eq!(later, t);
}

#[test]
fn dates() {
    assert_eq!(amz_date(0), ("19700101".into(), "19700101T000000Z".into()));
    assert_eq!(amz_date(AT).1, "20240102T030405Z");
    assert_eq!(amz_date(1_709_208_000).1, "20240229T120000Z");
    assert_eq!(amz_date(1_735_689_599).1, "20241231T235959Z");
    assert_eq!(amz_date(4_107_542_400).1, "21000301T000000Z");
    for days in [-1_000_000_i64, -1, 0, 1, 11_016, 19_723, 2_932_896] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(parse_iso8601("2024-01-02T03:04:05Z"), Some(at()));
    assert_eq!(parse_iso8601("2024-01-02T03:04:05.123Z"), Some(at()));
    assert_eq!(parse_iso8601("2024-01-02T05:04:05+02:00"), Some(at()));
    assert_eq!(parse_iso8601("2024-01-02"), None);
    assert_eq!(parse_iso8601("not a date at all!!"), None);
}

#[test]
fn hmac_matches_rfc4231_and_openssl() {
    // RFC 4231 test case 2.
    assert_eq!(
        hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // RFC 4231 test case 6: a key longer than the block.
    assert_eq!(
        hex::encode(hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
    // (OpenSSL's PKey::hmac refuses an empty key; SigV4 keys are never empty.)
    assert_eq!(
        hex::encode(hmac_sha256(b"", b"")),
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
    );
    for len in [1usize, 32, 63, 64, 65, 200] {
        let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let data: Vec<u8> = (0..len * 3).map(|i| (i * 13) as u8).collect();
        let pkey = openssl::pkey::PKey::hmac(&key).unwrap();
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
        let want = signer.sign_oneshot_to_vec(&data).unwrap();
        assert_eq!(hmac_sha256(&key, &data).to_vec(), want, "key length {len}");
    }
}
