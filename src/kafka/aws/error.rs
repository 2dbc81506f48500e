//! AWS credential errors: what happened, and what the user should do about it.

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

/// Longest detail taken from a remote answer.
pub(super) const DETAIL_MAX: usize = 300;

/// Cuts `s` to [`DETAIL_MAX`] characters.
pub(super) fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(DETAIL_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
