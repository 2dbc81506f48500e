//! AWS MSK IAM authentication: the SASL/OAUTHBEARER token that MSK accepts, the credential chain that finds
//! keys to sign it with, and an STS check that tells expired or wrong keys apart before the broker does.
//!
//! - [`msk_token`]: a SigV4 query presign of `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`
//!   (service `kafka-cluster`, 900 s), in the exact parameter order of AWS's Python signer
//!   (`aws-msk-iam-sasl-signer-python` via botocore `SigV4QueryAuth`), with `User-Agent` appended after signing,
//!   base64url without padding. A differential test (`tests/it/msk_iam.rs`) compares it byte for byte.
//! - [`resolve_credentials`]: form keys → environment → web identity (STS `AssumeRoleWithWebIdentity`) →
//!   container credentials endpoint → EC2 instance metadata (IMDSv2), every remote step time-bounded.
//! - [`check_credentials`]: a presigned STS `GetCallerIdentity`; signing is local, so this is the only way to
//!   learn that keys are expired or unknown before SASL fails with a generic error.
//!
//! Secrets are [`SecretString`]s; `Debug` impls and error texts never contain them. Error details coming from
//! HTTP errors are stripped of the URL (a presigned URL carries the session token).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The user agent appended (unsigned) to our MSK tokens; MSK logs it.
pub const USER_AGENT: &str = concat!("kafka-component/", env!("CARGO_PKG_VERSION"));

/// Lifetime of an MSK token and of the STS check's presigned URL (`X-Amz-Expires`), in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 900;

/// Default base URL of the ECS/EKS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
pub const DEFAULT_CONTAINER_BASE: &str = "http://169.254.170.2";

/// Default base URL of the EC2 instance metadata service.
pub const DEFAULT_IMDS_BASE: &str = "http://169.254.169.254";

/// Bound of each instance metadata request (connect included): IMDS that is absent must fail fast.
const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound of each container credentials request.
const CONTAINER_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound of each STS request.
const STS_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest detail taken from a remote answer.
const DETAIL_MAX: usize = 300;

/// The environment variables [`AwsEnv::from_process`] reads.
const ENV_NAMES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
];

/// RFC 3986 encoding as SigV4 wants it: everything but `A-Z a-z 0-9 - _ . ~`.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

// ---------------------------------------------------------------------------------------------------------
// Credentials, token, errors

/// AWS credentials (secret parts redacted in Debug).
#[derive(Clone)]
pub struct Credentials {
    /// Access key id (`AKIA…`, `ASIA…` for temporary keys); not a secret, but not logged either.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: SecretString,
    /// Session token of temporary credentials.
    pub session_token: Option<SecretString>,
    /// When temporary credentials expire (from STS, the container endpoint or IMDS).
    pub expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Long-term or temporary keys without a known expiry.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: SecretString::from(secret_access_key.into()),
            session_token: session_token.map(SecretString::from),
            expires_at: None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// An MSK IAM SASL/OAUTHBEARER token.
#[derive(Clone, PartialEq, Eq)]
pub struct MskToken {
    /// The token: base64url (no padding) of the presigned URL. A bearer credential; never log it.
    pub token: String,
    /// When it expires: signing time + 900 s, in milliseconds since the Unix epoch (librdkafka's unit).
    pub expires_at_ms: i64,
}

impl fmt::Debug for MskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MskToken")
            .field("token", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// Where [`resolve_credentials`] found the credentials (for logs; never secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// The access keys entered in the step's credentials form.
    Form,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` [/ `AWS_SESSION_TOKEN`].
    Environment,
    /// STS `AssumeRoleWithWebIdentity` with `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` (EKS IRSA).
    WebIdentity,
    /// The container credentials endpoint (ECS task role, EKS Pod Identity).
    Container,
    /// The EC2 instance metadata service (instance profile), IMDSv2.
    InstanceMetadata,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Form => "access keys from the credentials form",
            Self::Environment => "environment variables AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            Self::WebIdentity => "web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE)",
            Self::Container => "container credentials endpoint",
            Self::InstanceMetadata => "EC2 instance metadata (instance profile)",
        })
    }
}

/// What went wrong with AWS credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsErrorKind {
    /// No source of the chain had credentials.
    NoCredentials,
    /// STS `ExpiredToken`: the session token has expired.
    ExpiredToken,
    /// STS `InvalidClientTokenId`: AWS does not know the access key id (or the session token).
    UnknownAccessKey,
    /// STS `SignatureDoesNotMatch`: the secret access key is wrong.
    WrongSecretKey,
    /// STS `AccessDenied`: the keys are valid but a policy (e.g. an SCP) denies the call.
    AccessDenied,
    /// STS `RequestExpired` / signature not yet current: this machine's clock is off.
    ClockSkew,
    /// STS did not answer (network, timeout, 5xx); nothing is known about the keys.
    StsUnreachable,
    /// Web identity was configured but STS `AssumeRoleWithWebIdentity` or the token file failed.
    WebIdentity,
    /// The container credentials endpoint was configured but failed.
    Container,
    /// The instance metadata service answered but gave no usable credentials.
    Imds,
    /// Anything else.
    Other,
}

impl AwsErrorKind {
    /// What happened (the first half of the message).
    fn what(self) -> &'static str {
        match self {
            Self::NoCredentials => "no AWS credentials found",
            Self::ExpiredToken => "the AWS session token has expired",
            Self::UnknownAccessKey => {
                "AWS does not recognise the access key ID (or its session token)"
            }
            Self::WrongSecretKey => "the AWS secret access key does not match the access key ID",
            Self::AccessDenied => "AWS denied the identity check for these keys",
            Self::ClockSkew => "AWS rejected the signature's time: this machine's clock is off",
            Self::StsUnreachable => "could not reach AWS STS to check the credentials",
            Self::WebIdentity => "getting AWS credentials by web identity failed",
            Self::Container => "the container credentials endpoint gave no AWS credentials",
            Self::Imds => "the EC2 instance metadata service gave no usable AWS credentials",
            Self::Other => "AWS credentials problem",
        }
    }

    /// What the user should do (the second half).
    fn todo(self) -> &'static str {
        match self {
            Self::NoCredentials => {
                "Enter `AWS access key ID` and `AWS secret access key`, or give the container an IAM role \
                 (web identity, ECS task role or EC2 instance profile)"
            }
            Self::ExpiredToken => {
                "Renew the access keys / session token (`AWS session token`) or let the container's role \
                 supply them"
            }
            Self::UnknownAccessKey => {
                "Check `AWS access key ID` and, for temporary keys, that `AWS session token` belongs to it"
            }
            Self::WrongSecretKey => "Check `AWS secret access key`",
            Self::AccessDenied => "Check the IAM and organization policies for this identity",
            Self::ClockSkew => "Synchronise the clock of the machine running the component (NTP)",
            Self::StsUnreachable => {
                "Check that this network reaches sts.<region>.amazonaws.com (or set AWS_ENDPOINT_URL_STS)"
            }
            Self::WebIdentity => {
                "Check AWS_ROLE_ARN, the token file AWS_WEB_IDENTITY_TOKEN_FILE and the role's trust policy"
            }
            Self::Container => {
                "Check AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI, the authorization token and the \
                 task role"
            }
            Self::Imds => {
                "Check the instance profile attached to this instance and the IMDS settings"
            }
            Self::Other => "Check the AWS settings of the step",
        }
    }
}

/// An AWS credentials problem. Display: `<what happened> (<detail>). <what the user should do>`; never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct AwsError {
    /// The category, for verdicts.
    pub kind: AwsErrorKind,
    /// Specifics (AWS error code and message, HTTP status, which variable); no secrets.
    pub detail: String,
}

impl AwsError {
    /// An error of `kind` with `detail`.
    pub fn new(kind: AwsErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    fn render(&self) -> String {
        if self.detail.is_empty() {
            format!("{}. {}", self.kind.what(), self.kind.todo())
        } else {
            format!(
                "{} ({}). {}",
                self.kind.what(),
                self.detail,
                self.kind.todo()
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Environment

/// Reads a token file (web identity, container authorization token).
pub type FileReader = Arc<dyn Fn(&Path) -> std::io::Result<String> + Send + Sync>;

/// Where the credential chain looks; [`AwsEnv::from_process`] reads the real environment; tests build one by
/// hand with [`AwsEnv::from_vars`] and the `with_*` methods.
#[derive(Clone)]
pub struct AwsEnv {
    vars: BTreeMap<String, String>,
    container_base: String,
    imds_base: String,
    read_file: FileReader,
}

impl fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets (AWS_SECRET_ACCESS_KEY, tokens): names only.
        f.debug_struct("AwsEnv")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("container_base", &self.container_base)
            .field("imds_base", &self.imds_base)
            .finish_non_exhaustive()
    }
}

impl AwsEnv {
    /// The process environment (only the `AWS_*` variables the chain uses), real files, default endpoints.
    pub fn from_process() -> Self {
        Self::from_vars(
            ENV_NAMES
                .iter()
                .filter_map(|&name| std::env::var(name).ok().map(|v| (name, v))),
        )
    }

    /// The given variables, real files; the IMDS base is `AWS_EC2_METADATA_SERVICE_ENDPOINT` or the default.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let mut env = Self {
            vars,
            container_base: DEFAULT_CONTAINER_BASE.to_owned(),
            imds_base: DEFAULT_IMDS_BASE.to_owned(),
            read_file: Arc::new(|p: &Path| std::fs::read_to_string(p)),
        };
        if let Some(endpoint) = env.var("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
            env.imds_base = endpoint.trim_end_matches('/').to_owned();
        }
        env
    }

    /// Replaces the container credentials base URL (default `http://169.254.170.2`).
    #[must_use]
    pub fn with_container_base(mut self, base: impl Into<String>) -> Self {
        self.container_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Replaces the instance metadata base URL (default `http://169.254.169.254`).
    #[must_use]
    pub fn with_imds_base(mut self, base: impl Into<String>) -> Self {
        self.imds_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Replaces how token files are read.
    #[must_use]
    pub fn with_file_reader(
        mut self,
        read: impl Fn(&Path) -> std::io::Result<String> + Send + Sync + 'static,
    ) -> Self {
        self.read_file = Arc::new(read);
        self
    }

    /// A variable, trimmed; empty counts as unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The container credentials base URL.
    pub fn container_base(&self) -> &str {
        &self.container_base
    }

    /// The instance metadata base URL.
    pub fn imds_base(&self) -> &str {
        &self.imds_base
    }

    /// Whether `AWS_EC2_METADATA_DISABLED=true`.
    pub fn imds_disabled(&self) -> bool {
        self.var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The STS endpoint: `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else `https://sts.<region>.amazonaws.com`
    /// (`https://sts.amazonaws.com` without a region).
    pub fn sts_endpoint(&self, region: Option<&str>) -> String {
        if let Some(url) = self
            .var("AWS_ENDPOINT_URL_STS")
            .or_else(|| self.var("AWS_ENDPOINT_URL"))
        {
            return url.to_owned();
        }
        match region.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) if r.starts_with("cn-") => format!("https://sts.{r}.amazonaws.com.cn"),
            Some(r) => format!("https://sts.{r}.amazonaws.com"),
            None => "https://sts.amazonaws.com".to_owned(),
        }
    }

    fn region(&self) -> Option<&str> {
        self.var("AWS_REGION")
            .or_else(|| self.var("AWS_DEFAULT_REGION"))
    }

    fn read(&self, path: &str) -> std::io::Result<String> {
        (self.read_file)(Path::new(path))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Time

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whole seconds since the epoch (0 before it).
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// (`YYYYMMDD`, `YYYYMMDD'T'HHMMSS'Z'`) in UTC.
fn amz_date(secs: u64) -> (String, String) {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let date = format!("{y:04}{m:02}{d:02}");
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    );
    (date, stamp)
}

/// `2024-01-02T03:04:05Z`, optionally with fractional seconds and a `+hh:mm`/`-hh:mm` offset.
fn parse_iso8601(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let sep = |i: usize, c: u8| s.as_bytes().get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && (sep(10, b'T') || sep(10, b't') || sep(10, b' '))) {
        return None;
    }
    if !(sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

// ---------------------------------------------------------------------------------------------------------
// SigV4

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 (RFC 2104) over `sha2`; checked against RFC 4231 and OpenSSL in the tests.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// One SigV4 query presign.
struct Presign<'a> {
    /// Lowercase `host[:port]` (the only signed header).
    host: &'a str,
    /// Absolute path, already URI-encoded.
    path: &'a str,
    service: &'a str,
    region: &'a str,
    /// Operation parameters, kept in this order in the URL (before the auth parameters).
    params: &'a [(&'a str, &'a str)],
}

/// The presigned query string of a `GET`, in botocore's order: operation params, `X-Amz-Algorithm`,
/// `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Security-Token` (with a session token),
/// then `X-Amz-Signature` last. The canonical query is sorted; the URL order does not change the signature.
fn presign_query(creds: &Credentials, req: &Presign<'_>, at: SystemTime) -> String {
    let (date, stamp) = amz_date(unix_secs(at));
    let scope = format!("{date}/{}/{}/aws4_request", req.region, req.service);
    let credential = format!("{}/{scope}", creds.access_key_id);
    let expires = TOKEN_LIFETIME_SECS.to_string();
    let mut pairs: Vec<(String, String)> =
        req.params.iter().map(|(k, v)| (enc(k), enc(v))).collect();
    pairs.push(("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()));
    pairs.push(("X-Amz-Credential".into(), enc(&credential)));
    pairs.push(("X-Amz-Date".into(), stamp.clone()));
    pairs.push(("X-Amz-Expires".into(), expires));
    pairs.push(("X-Amz-SignedHeaders".into(), "host".into()));
    if let Some(token) = &creds.session_token {
        pairs.push(("X-Amz-Security-Token".into(), enc(token.expose_secret())));
    }

    let mut sorted = pairs.clone();
    sorted.sort();
    let canonical_query = join_pairs(&sorted);
    let canonical_request = format!(
        "GET\n{}\n{canonical_query}\nhost:{}\n\nhost\n{}",
        req.path,
        req.host,
        sha256_hex(b"")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = format!("AWS4{}", creds.secret_access_key.expose_secret()).into_bytes();
    for part in [date.as_str(), req.region, req.service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes()).to_vec();
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));

    format!("{}&X-Amz-Signature={signature}", join_pairs(&pairs))
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The MSK IAM SASL/OAUTHBEARER token for `region`, signed at `at` (whole seconds), valid 900 s.
///
/// Byte for byte what `aws-msk-iam-sasl-signer-python` produces for the same inputs when `user_agent` is
/// `aws-msk-iam-sasl-signer-python/1.0.2`; pass [`USER_AGENT`] in production.
pub fn msk_token(creds: &Credentials, region: &str, at: SystemTime, user_agent: &str) -> MskToken {
    let host = format!("kafka.{region}.amazonaws.com");
    let query = presign_query(
        creds,
        &Presign {
            host: &host,
            path: "/",
            service: "kafka-cluster",
            region,
            params: &[("Action", "kafka-cluster:Connect")],
        },
        at,
    );
    let url = format!(
        "https://{host}/?{query}&User-Agent={}",
        utf8_percent_encode(user_agent, SIGV4_ENCODE)
    );
    let secs = unix_secs(at).saturating_add(TOKEN_LIFETIME_SECS);
    MskToken {
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_bytes()),
        expires_at_ms: i64::try_from(secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Region

/// The AWS region of an MSK bootstrap broker list, from the first host shaped
/// `….kafka.<region>.amazonaws.com[.cn]` or `….kafka-serverless.<region>.amazonaws.com[.cn]`.
pub fn region_from_brokers(brokers: &[String]) -> Option<String> {
    brokers.iter().find_map(|b| {
        let b = b.trim();
        let host = match b.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|c| c.is_ascii_digit()) => h,
            _ => b,
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        labels.windows(3).find_map(|w| {
            let region = w[1];
            let looks_like_region = region.contains('-')
                && region.ends_with(|c: char| c.is_ascii_digit())
                && region
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
            ((w[0] == "kafka" || w[0] == "kafka-serverless")
                && w[2] == "amazonaws"
                && looks_like_region)
                .then(|| region.to_owned())
        })
    })
}

// ---------------------------------------------------------------------------------------------------------
// HTTP helpers

/// An HTTP client suited to the chain and the STS check: 1 s connect timeout, 3 s per request, no redirects.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, AwsError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .timeout(STS_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AwsError::new(AwsErrorKind::Other, http_detail(e)))
}

/// A reqwest error without its URL (a presigned URL carries the session token), with its causes.
fn http_detail(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    if timeout {
        out.push_str(" (timed out)");
    }
    out
}

/// Cuts `s` to [`DETAIL_MAX`] characters.
fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(DETAIL_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Removes the secret parts of `creds` from a remote text, then clips it.
fn scrub(s: &str, creds: &Credentials) -> String {
    let mut s = s.to_owned();
    let secret = creds.secret_access_key.expose_secret();
    if !secret.is_empty() {
        s = s.replace(secret, "[redacted]");
    }
    if let Some(token) = &creds.session_token {
        let token = token.expose_secret();
        if !token.is_empty() {
            s = s
                .replace(token, "[redacted]")
                .replace(&enc(token), "[redacted]");
        }
    }
    clip(&s)
}

/// The text of the first `<tag>…</tag>`, XML entities decoded.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(
        body[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// `Code: Message` of an AWS XML error body.
fn xml_error(body: &str) -> Option<(String, String)> {
    let code = xml_text(body, "Code")?;
    let message = xml_text(body, "Message").unwrap_or_default();
    Some((code, message))
}

/// `host[:port]` and path of an endpoint URL, as SigV4 signs them.
fn host_and_path(url: &url::Url) -> Option<(String, String)> {
    let host = url.host_str()?.to_ascii_lowercase();
    let host = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let path = if url.path().is_empty() {
        "/".to_owned()
    } else {
        url.path().to_owned()
    };
    Some((host, path))
}

// ---------------------------------------------------------------------------------------------------------
// Credential chain

/// Finds credentials: `static_keys` (the form) → `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
/// (+ `AWS_SESSION_TOKEN`) → web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`
/// (+ `AWS_ROLE_SESSION_NAME`), STS `AssumeRoleWithWebIdentity`) → container credentials
/// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`, `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`) →
/// IMDSv2 (unless `AWS_EC2_METADATA_DISABLED=true`).
///
/// A configured source that fails is an error (like botocore); an absent or silent IMDS is not, it ends the
/// chain with [`AwsErrorKind::NoCredentials`] within about a second.
///
/// # Errors
/// [`AwsErrorKind::NoCredentials`] (nothing found, or half of the environment keys), [`AwsErrorKind::WebIdentity`],
/// [`AwsErrorKind::Container`], [`AwsErrorKind::Imds`].
pub async fn resolve_credentials(
    static_keys: Option<&Credentials>,
    env: &AwsEnv,
    http: &reqwest::Client,
) -> Result<(Credentials, CredentialSource), AwsError> {
    if let Some(keys) = static_keys {
        return Ok((keys.clone(), CredentialSource::Form));
    }
    match (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            let creds =
                Credentials::new(id, secret, env.var("AWS_SESSION_TOKEN").map(str::to_owned));
            return Ok((creds, CredentialSource::Environment));
        }
        (Some(_), None) => {
            return Err(AwsError::new(
                AwsErrorKind::NoCredentials,
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
            ));
        }
        (None, Some(_)) => {
            return Err(AwsError::new(
                AwsErrorKind::NoCredentials,
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
            ));
        }
        (None, None) => {}
    }
    if let (Some(token_file), Some(role_arn)) = (
        env.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.var("AWS_ROLE_ARN"),
    ) {
        let creds = web_identity(env, http, token_file, role_arn).await?;
        return Ok((creds, CredentialSource::WebIdentity));
    }
    if env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    {
        let creds = container(env, http).await?;
        return Ok((creds, CredentialSource::Container));
    }
    let imds_note = if env.imds_disabled() {
        "instance metadata disabled by AWS_EC2_METADATA_DISABLED".to_owned()
    } else {
        match imds(env, http).await? {
            Ok(creds) => return Ok((creds, CredentialSource::InstanceMetadata)),
            Err(why) => why,
        }
    };
    Err(AwsError::new(
        AwsErrorKind::NoCredentials,
        format!(
            "none in the form, the environment (AWS_ACCESS_KEY_ID), web identity (AWS_ROLE_ARN + \
             AWS_WEB_IDENTITY_TOKEN_FILE) or the container endpoint (AWS_CONTAINER_CREDENTIALS_*); {imds_note}"
        ),
    ))
}

/// STS `AssumeRoleWithWebIdentity` (unsigned POST, XML answer).
async fn web_identity(
    env: &AwsEnv,
    http: &reqwest::Client,
    token_file: &str,
    role_arn: &str,
) -> Result<Credentials, AwsError> {
    let fail = |detail: String| AwsError::new(AwsErrorKind::WebIdentity, detail);
    let token = env.read(token_file).map_err(|e| {
        fail(format!(
            "cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}"
        ))
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(fail(format!(
            "AWS_WEB_IDENTITY_TOKEN_FILE {token_file} is empty"
        )));
    }
    let session_name = env.var("AWS_ROLE_SESSION_NAME").map_or_else(
        || format!("kafka-component-{}", unix_secs(SystemTime::now())),
        str::to_owned,
    );
    let endpoint = env.sts_endpoint(env.region());
    let body = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name.as_str()),
        ("WebIdentityToken", token),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", enc(v)))
    .collect::<Vec<_>>()
    .join("&");
    let resp = http
        .post(&endpoint)
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("Accept", "text/xml")
        .timeout(STS_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| fail(format!("STS {endpoint}: {}", http_detail(e))))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| fail(format!("STS {endpoint}: {}", http_detail(e))))?;
    if !status.is_success() {
        return Err(fail(match xml_error(&text) {
            Some((code, message)) => format!("STS {code}: {}", clip(&message)),
            None => format!("STS {endpoint} answered HTTP {status}"),
        }));
    }
    let field = |tag: &str| {
        xml_text(&text, tag)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(format!("STS answer without <{tag}>")))
    };
    Ok(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: SecretString::from(field("SecretAccessKey")?),
        session_token: Some(SecretString::from(field("SessionToken")?)),
        expires_at: xml_text(&text, "Expiration").and_then(|e| parse_iso8601(&e)),
    })
}

/// The JSON of the container endpoint and IMDS.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonCredentials {
    code: Option<String>,
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

impl JsonCredentials {
    /// Credentials, or what is missing.
    fn into_credentials(self) -> Result<Credentials, String> {
        if let Some(code) = self.code.filter(|c| c != "Success") {
            return Err(format!(
                "Code {code}: {}",
                clip(self.message.as_deref().unwrap_or(""))
            ));
        }
        let (Some(id), Some(secret)) = (
            self.access_key_id.filter(|s| !s.is_empty()),
            self.secret_access_key.filter(|s| !s.is_empty()),
        ) else {
            return Err("answer without AccessKeyId/SecretAccessKey".to_owned());
        };
        Ok(Credentials {
            access_key_id: id,
            secret_access_key: SecretString::from(secret),
            session_token: self.token.filter(|t| !t.is_empty()).map(SecretString::from),
            expires_at: self.expiration.as_deref().and_then(parse_iso8601),
        })
    }
}

/// Whether botocore would let a full container URI through: https, loopback, or the ECS/EKS link-local hosts.
fn container_uri_allowed(url: &url::Url) -> bool {
    if url.scheme() == "https" {
        return true;
    }
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip == std::net::Ipv4Addr::new(169, 254, 170, 2)
                || ip == std::net::Ipv4Addr::new(169, 254, 170, 23)
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
        }
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The container credentials endpoint (ECS task role, EKS Pod Identity).
async fn container(env: &AwsEnv, http: &reqwest::Client) -> Result<Credentials, AwsError> {
    let fail = |detail: String| AwsError::new(AwsErrorKind::Container, detail);
    let url = if let Some(rel) = env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let rel = if rel.starts_with('/') {
            rel.to_owned()
        } else {
            format!("/{rel}")
        };
        format!("{}{rel}", env.container_base())
    } else if let Some(full) = env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        let parsed = url::Url::parse(full).map_err(|e| {
            fail(format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL: {e}"
            ))
        })?;
        if !container_uri_allowed(&parsed) {
            return Err(fail(format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI host {} is not allowed over http (only https, loopback or \
                 169.254.170.2/169.254.170.23)",
                parsed.host_str().unwrap_or("")
            )));
        }
        full.to_owned()
    } else {
        return Err(fail("no container credentials URI".to_owned()));
    };
    let auth = if let Some(file) = env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        let token = env.read(file).map_err(|e| {
            fail(format!(
                "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {file}: {e}"
            ))
        })?;
        Some(token.trim().to_owned())
    } else {
        env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .map(str::to_owned)
    };
    if auth.as_deref().is_some_and(|a| a.contains(['\r', '\n'])) {
        return Err(fail(
            "the container authorization token contains a line break".to_owned(),
        ));
    }
    let mut req = http
        .get(&url)
        .header("Accept", "application/json")
        .timeout(CONTAINER_TIMEOUT);
    if let Some(auth) = &auth {
        req = req.header("Authorization", auth);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("{url}: {}", http_detail(e))))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("{url} answered HTTP {status}")));
    }
    let body: JsonCredentials = resp
        .json()
        .await
        .map_err(|e| fail(format!("{url}: not a credentials JSON: {}", http_detail(e))))?;
    body.into_credentials()
        .map_err(|why| fail(format!("{url}: {why}")))
}

/// IMDSv2. `Ok(Err(why))`: no instance metadata here (absent, silent, no role): the chain just ends.
async fn imds(
    env: &AwsEnv,
    http: &reqwest::Client,
) -> Result<Result<Credentials, String>, AwsError> {
    let base = env.imds_base();
    let absent = |e: reqwest::Error| format!("no instance metadata at {base} ({})", http_detail(e));
    let fail = |detail: String| AwsError::new(AwsErrorKind::Imds, detail);

    let token = match http
        .put(format!("{base}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        .timeout(IMDS_TIMEOUT)
        .send()
        .await
    {
        Err(e) => return Ok(Err(absent(e))),
        Ok(resp) if resp.status().is_success() => match resp.text().await {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            Ok(_) => return Err(fail("empty IMDSv2 token".to_owned())),
            Err(e) => return Ok(Err(absent(e))),
        },
        // IMDSv1-only endpoints (or proxies in front of them); botocore falls back the same way.
        Ok(resp) if matches!(resp.status().as_u16(), 403..=405) => None,
        Ok(resp) => {
            return Ok(Err(format!(
                "instance metadata at {base} refused a session token (HTTP {})",
                resp.status()
            )));
        }
    };
    let get = |path: String| {
        let mut req = http.get(format!("{base}{path}")).timeout(IMDS_TIMEOUT);
        if let Some(t) = &token {
            req = req.header("X-aws-ec2-metadata-token", t);
        }
        req.send()
    };

    let roles_path = "/latest/meta-data/iam/security-credentials/".to_owned();
    let resp = match get(roles_path).await {
        Err(e) => return Ok(Err(absent(e))),
        Ok(r) => r,
    };
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(Err(
            "the instance has no IAM role (instance profile)".to_owned()
        ));
    }
    if !resp.status().is_success() {
        return Err(fail(format!(
            "listing the instance's role answered HTTP {}",
            resp.status()
        )));
    }
    let roles = resp
        .text()
        .await
        .map_err(|e| fail(format!("listing the instance's role: {}", http_detail(e))))?;
    let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Ok(Err(
            "the instance has no IAM role (instance profile)".to_owned()
        ));
    };
    let role_path = format!("/latest/meta-data/iam/security-credentials/{}", enc(role));
    let resp = get(role_path)
        .await
        .map_err(|e| fail(format!("role {role}: {}", http_detail(e))))?;
    if !resp.status().is_success() {
        return Err(fail(format!(
            "credentials of role {role} answered HTTP {}",
            resp.status()
        )));
    }
    let body: JsonCredentials = resp.json().await.map_err(|e| {
        fail(format!(
            "credentials of role {role}: not a credentials JSON: {}",
            http_detail(e)
        ))
    })?;
    body.into_credentials()
        .map(Ok)
        .map_err(|why| fail(format!("credentials of role {role}: {why}")))
}

// ---------------------------------------------------------------------------------------------------------
// STS check

/// Asks STS `GetCallerIdentity` (a presigned GET to `https://sts.<region>.amazonaws.com`, or the
/// `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL` override, within 3 s) whether AWS accepts `creds`.
///
/// # Errors
/// [`AwsErrorKind::ExpiredToken`], [`AwsErrorKind::UnknownAccessKey`], [`AwsErrorKind::WrongSecretKey`],
/// [`AwsErrorKind::AccessDenied`], [`AwsErrorKind::ClockSkew`] from the XML error `Code`;
/// [`AwsErrorKind::StsUnreachable`] when STS does not answer or answers 5xx (nothing is known then);
/// [`AwsErrorKind::Other`] for anything else.
pub async fn check_credentials(
    creds: &Credentials,
    region: &str,
    env: &AwsEnv,
    http: &reqwest::Client,
) -> Result<(), AwsError> {
    let region = region.trim();
    if region.is_empty() {
        return Err(AwsError::new(
            AwsErrorKind::Other,
            "no AWS region to check the credentials in",
        ));
    }
    let endpoint = env.sts_endpoint(Some(region));
    let url = url::Url::parse(&endpoint).map_err(|e| {
        AwsError::new(
            AwsErrorKind::Other,
            format!("STS endpoint {endpoint} is not a URL: {e}"),
        )
    })?;
    let (host, path) = host_and_path(&url).ok_or_else(|| {
        AwsError::new(
            AwsErrorKind::Other,
            format!("STS endpoint {endpoint} has no host"),
        )
    })?;
    let query = presign_query(
        creds,
        &Presign {
            host: &host,
            path: &path,
            service: "sts",
            region,
            params: &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
        },
        SystemTime::now(),
    );
    let origin = url.origin().ascii_serialization();
    let unreachable =
        |detail: String| AwsError::new(AwsErrorKind::StsUnreachable, format!("{origin}: {detail}"));
    let resp = http
        .get(format!("{origin}{path}?{query}"))
        .timeout(STS_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreachable(http_detail(e)))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| unreachable(http_detail(e)))?;
    if status.is_success() {
        if let Some(arn) = xml_text(&body, "Arn") {
            tracing::debug!(%arn, "STS GetCallerIdentity accepted the AWS credentials");
        }
        return Ok(());
    }
    let Some((code, message)) = xml_error(&body) else {
        return Err(if status.is_server_error() {
            unreachable(format!("HTTP {status}"))
        } else {
            AwsError::new(
                AwsErrorKind::Other,
                format!("STS {origin} answered HTTP {status} without an AWS error"),
            )
        });
    };
    let message = scrub(&message, creds);
    let detail = format!("STS {code}: {message}");
    let lower = message.to_ascii_lowercase();
    let kind = match code.as_str() {
        "ExpiredToken" | "ExpiredTokenException" => AwsErrorKind::ExpiredToken,
        "InvalidClientTokenId" | "UnrecognizedClientException" | "InvalidAccessKeyId" => {
            AwsErrorKind::UnknownAccessKey
        }
        "SignatureDoesNotMatch"
            if lower.contains("signature expired") || lower.contains("not yet current") =>
        {
            AwsErrorKind::ClockSkew
        }
        "SignatureDoesNotMatch" => AwsErrorKind::WrongSecretKey,
        "RequestExpired" | "RequestTimeTooSkewed" => AwsErrorKind::ClockSkew,
        "AccessDenied" | "AccessDeniedException" => AwsErrorKind::AccessDenied,
        _ if status.is_server_error() => AwsErrorKind::StsUnreachable,
        _ => AwsErrorKind::Other,
    };
    let detail = if kind == AwsErrorKind::UnknownAccessKey {
        format!("{detail}; access key ID {}", creds.access_key_id)
    } else {
        detail
    };
    Err(AwsError::new(kind, detail))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;
    use std::time::Instant;

    use wiremock::matchers::{body_string_contains, header, method, path, query_param};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SESSION: &str = "FwoGZXIvYXdzEXAMPLE+/=token";
    /// 2024-01-02T03:04:05Z.
    const AT: u64 = 1_704_164_645;

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(AT)
    }

    fn decode(token: &str) -> String {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn query_keys(url: &str) -> Vec<String> {
        let (_, q) = url.split_once('?').unwrap();
        q.split('&')
            .map(|kv| kv.split_once('=').unwrap().0.to_owned())
            .collect()
    }

    fn query_value(url: &str, key: &str) -> String {
        let (_, q) = url.split_once('?').unwrap();
        q.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_owned()
    }

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
    fn regions_from_brokers() {
        let r = |hosts: &[&str]| {
            region_from_brokers(&hosts.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            r(&["b-1.mycluster.abc123.c2.kafka.eu-west-1.amazonaws.com:9098"]).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            r(&["boot-abcd1234.c2.kafka-serverless.us-east-2.amazonaws.com:9098"]).as_deref(),
            Some("us-east-2")
        );
        assert_eq!(
            r(&["B-2.X.Y.C3.KAFKA.AP-SOUTHEAST-2.AMAZONAWS.COM"]).as_deref(),
            Some("ap-southeast-2")
        );
        assert_eq!(
            r(&["b-1.x.y.c1.kafka.cn-north-1.amazonaws.com.cn:9098"]).as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(
            r(&[
                "localhost:9092",
                "b-1.x.y.kafka.us-gov-west-1.amazonaws.com:9098"
            ])
            .as_deref(),
            Some("us-gov-west-1")
        );
        assert_eq!(r(&["localhost:9092", "kafka.example.com:9092"]), None);
        assert_eq!(r(&["kafka.amazonaws.com:9092"]), None);
        assert_eq!(r(&[]), None);
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

    // ----- credential chain -----

    /// A port on 127.0.0.1 where nothing listens.
    fn closed_port_url() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}")
    }

    /// `vars` with container and IMDS pointed at closed ports, files from `files`.
    fn env(vars: &[(&str, &str)], files: &[(&str, &str)]) -> AwsEnv {
        let files: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AwsEnv::from_vars(vars.iter().copied())
            .with_container_base(closed_port_url())
            .with_imds_base(closed_port_url())
            .with_file_reader(move |p: &Path| {
                files
                    .get(p.to_str().unwrap_or_default())
                    .cloned()
                    .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
            })
    }

    fn http() -> reqwest::Client {
        http_client().unwrap()
    }

    fn secret(c: &Credentials) -> &str {
        c.secret_access_key.expose_secret()
    }

    fn token(c: &Credentials) -> Option<&str> {
        c.session_token.as_ref().map(|t| t.expose_secret())
    }

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

    // ----- STS check -----

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
        let epoch = {
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
        };
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
        let (r, _) = check_against(403, sts_error("ExpiredToken", "expired")).await;
        assert!(
            r.unwrap_err().to_string().starts_with(
                "the AWS session token has expired (STS ExpiredToken: expired). Renew"
            )
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
}
