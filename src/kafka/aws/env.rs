//! The environment the credential chain reads (variables, endpoints, token files), injectable for tests.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Default base URL of the ECS/EKS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
pub const DEFAULT_CONTAINER_BASE: &str = "http://169.254.170.2";

/// Default base URL of the EC2 instance metadata service.
pub const DEFAULT_IMDS_BASE: &str = "http://169.254.169.254";

/// The environment variables [`AwsEnv::from_process`] reads.
pub(super) const ENV_NAMES: &[&str] = &[
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

    pub(super) fn region(&self) -> Option<&str> {
        self.var("AWS_REGION")
            .or_else(|| self.var("AWS_DEFAULT_REGION"))
    }

    pub(super) fn read(&self, path: &str) -> std::io::Result<String> {
        (self.read_file)(Path::new(path))
    }
}
