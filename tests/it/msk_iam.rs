//! Differential test of the MSK IAM token against AWS's own signer (`aws-msk-iam-sasl-signer-python` 1.0.2
//! via `tests/fixtures/msk_sign.py`, botocore's clock fixed). Needs python3 and that package, which
//! `scripts/setup.sh` installs; without them the test fails (it must never pass silently). No broker needed.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use kafka_component::kafka::aws::{Credentials, msk_token};
use serde_json::json;

/// The user agent the Python signer appends.
const PY_UA: &str = "aws-msk-iam-sasl-signer-python/1.0.2";

struct Vector {
    access_key_id: &'static str,
    secret_access_key: &'static str,
    session_token: Option<&'static str>,
    region: &'static str,
    epoch: u64,
}

const VECTORS: &[Vector] = &[
    // The design note's fixed vector, without and with a session token.
    Vector {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
        region: "us-east-1",
        epoch: 1_704_164_645, // 2024-01-02T03:04:05Z
    },
    Vector {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: Some("FwoGZXIvYXdzEXAMPLE+/=token"),
        region: "us-east-1",
        epoch: 1_704_164_645,
    },
    // Another region and time; a secret full of `/` and `+`.
    Vector {
        access_key_id: "AKIAIOSFODNN7EXAMPLE",
        secret_access_key: "a/b+c/d+e//++ZZ9/8+7EXAMPLEsecret+/",
        session_token: None,
        region: "eu-west-1",
        epoch: 1_709_208_000, // 2024-02-29T12:00:00Z
    },
    Vector {
        access_key_id: "ASIAIOSFODNN7EXAMPLE",
        secret_access_key: "a/b+c/d+e//++ZZ9/8+7EXAMPLEsecret+/",
        session_token: Some(
            "IQoJb3JpZ2luX2VjEHAaCWV1LXdlc3QtMSJHMEUCIQD/+EXAMPLE+token/with==padding+and/slashes",
        ),
        region: "eu-west-1",
        epoch: 1_735_689_599, // 2024-12-31T23:59:59Z
    },
    Vector {
        access_key_id: "ASIAEXAMPLE0000TEST",
        secret_access_key: "0123456789abcdefghijABCDEFGHIJ/+klmnop",
        session_token: Some("short+/="),
        region: "ap-southeast-2",
        epoch: 1_700_000_000, // 2023-11-14T22:13:20Z
    },
    Vector {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
        region: "eu-west-1",
        epoch: 1_735_689_600, // 2025-01-01T00:00:00Z
    },
];

/// `(token, expiry_ms)` from the Python signer, or a panic telling how to install it.
fn python_token(v: &Vector) -> (String, i64) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/msk_sign.py");
    let input = json!({
        "access_key_id": v.access_key_id,
        "secret_access_key": v.secret_access_key,
        "session_token": v.session_token,
        "region": v.region,
        "epoch": v.epoch,
    });
    let mut child = match Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run python3 ({e}): the MSK IAM differential test needs python3 with \
             aws-msk-iam-sasl-signer-python==1.0.2; run scripts/setup.sh"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(3),
        "aws-msk-iam-sasl-signer-python is not installed for python3 ({}); run scripts/setup.sh \
         (pip install aws-msk-iam-sasl-signer-python==1.0.2)",
        stderr.trim()
    );
    assert!(
        out.status.success(),
        "tests/fixtures/msk_sign.py failed ({}): {}; run scripts/setup.sh",
        out.status,
        stderr.trim()
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (token, expiry) = stdout
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("unexpected output of msk_sign.py: {stdout:?}"));
    (token.to_owned(), expiry.parse().unwrap())
}

#[test]
fn msk_iam_token_matches_aws_python_signer() {
    for (i, v) in VECTORS.iter().enumerate() {
        let (want_token, want_expiry) = python_token(v);
        let creds = Credentials::new(
            v.access_key_id,
            v.secret_access_key,
            v.session_token.map(str::to_owned),
        );
        let at = UNIX_EPOCH + Duration::from_secs(v.epoch);
        let ours = msk_token(&creds, v.region, at, PY_UA);
        assert_eq!(
            ours.token,
            want_token,
            "vector {i} ({} at {}, session token: {}): token differs from the Python signer",
            v.region,
            v.epoch,
            v.session_token.is_some()
        );
        assert_eq!(
            ours.expires_at_ms, want_expiry,
            "vector {i}: expiry differs"
        );
    }
}
