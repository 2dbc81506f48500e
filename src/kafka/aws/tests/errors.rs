//! What logs and users see: redacted `Debug`, error messages.

use super::*;

#[test]
fn debug_redacts() {
    let creds = Credentials::new(AKID, SECRET, Some(SESSION.to_owned()));
    let text = format!("{creds:?}");
    assert!(text.contains(AKID));
    assert!(!text.contains(SECRET) && !text.contains(SESSION), "{text}");
    let t = msk_token(&creds, "us-east-1", at(), USER_AGENT);
    assert!(!format!("{t:?}").contains(&t.token));
    let env = AwsEnv::from_vars([
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", SESSION),
    ]);
    let text = format!("{env:?}");
    assert!(text.contains("AWS_SECRET_ACCESS_KEY"));
    assert!(!text.contains(SECRET) && !text.contains(SESSION), "{text}");
    let _ = AwsEnv::from_process();
}

#[test]
fn error_messages() {
    let e = AwsError::new(AwsErrorKind::ExpiredToken, "STS ExpiredToken: expired");
    assert_eq!(
        e.to_string(),
        "the AWS session token has expired (STS ExpiredToken: expired). Renew the access keys / session \
         token (`AWS session token`) or let the container's role supply them"
    );
    assert_eq!(
        AwsError::new(AwsErrorKind::WrongSecretKey, "").to_string(),
        "the AWS secret access key does not match the access key ID. Check `AWS secret access key`"
    );
}
