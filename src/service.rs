//! Service mode (PROTOCOL.md 1.9): run one helper — `verifyCredentials`, `getMetaModel` or `selectModel` —
//! POST `{"status":"success","data":…}` or `{"status":"error","data":{"message":…}}` to
//! `ELASTICIO_POST_RESULT_URL` (Basic auth from its userinfo), exit 0 after a 200 and non-zero otherwise.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, Producer};
use serde_json::{Value, json};

use crate::kafka::client::KafkaContext;
use crate::kafka::config::KafkaConnection;
use crate::kafka::token::TokenSource;
use crate::platform::api::http_client;
use crate::platform::component;
use crate::retry::{Attempt, Policy};
use crate::settings::Env;
use crate::verify;

/// Why no result could be delivered (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// `ELASTICIO_POST_RESULT_URL` is absent: nothing can be posted.
    #[error("ELASTICIO_POST_RESULT_URL is missing; no result can be delivered")]
    NoResultUrl,
    /// The result URL is not a URL.
    #[error("ELASTICIO_POST_RESULT_URL is not a valid URL")]
    BadResultUrl,
    /// The POST failed or did not answer 200.
    #[error("posting the result failed: {0}")]
    Post(String),
}

/// The methods service mode runs.
pub const METHODS: [&str; 3] = ["verifyCredentials", "getMetaModel", "selectModel"];

/// Runs `method` and posts its result.
///
/// # Errors
/// [`ServiceError`] when the result could not be delivered.
pub async fn run(method: &str, env: &Env) -> Result<(), ServiceError> {
    let raw_url = env
        .get_full("ELASTICIO_POST_RESULT_URL")
        .filter(|u| !u.is_empty())
        .ok_or(ServiceError::NoResultUrl)?;
    let (url, auth) = split_userinfo(raw_url)?;
    let outcome = compute(method, env).await;
    let body = match outcome {
        Ok(data) => json!({ "status": "success", "data": data }),
        Err(message) => {
            tracing::warn!(method, error = %message, "Service method failed.");
            json!({ "status": "error", "data": { "message": message } })
        }
    };
    post(&url, auth, &body, env).await
}

/// `https://user:p%40ss@host/path` → (`https://host/path`, Some(("user", "p@ss"))).
fn split_userinfo(raw: &str) -> Result<(String, Option<(String, String)>), ServiceError> {
    let mut url = url::Url::parse(raw).map_err(|_| ServiceError::BadResultUrl)?;
    let auth = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let user = percent_decode(url.username());
        let pass = percent_decode(url.password().unwrap_or(""));
        let _ignored = url.set_username("");
        let _ignored = url.set_password(None);
        Some((user, pass))
    };
    Ok((url.to_string(), auth))
}

/// Percent-decodes URL userinfo: only `%` followed by two hex digits is a byte; anything else (`%+1`, a lone
/// `%`) stays as written. Bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

async fn compute(method: &str, env: &Env) -> Result<Value, String> {
    let mut missing: Vec<&str> = [
        "ELASTICIO_API_URI",
        "ELASTICIO_API_USERNAME",
        "ELASTICIO_API_KEY",
    ]
    .into_iter()
    .filter(|n| env.get_full(n).is_none_or(str::is_empty))
    .collect();
    if !METHODS.contains(&method) {
        return Err(format!(
            "Unknown service method \"{method}\"; expected one of {}",
            METHODS.join(", ")
        ));
    }
    let cfg_text = env.get_full("ELASTICIO_CFG").unwrap_or("");
    if cfg_text.is_empty() {
        missing.push("ELASTICIO_CFG");
    }
    if !missing.is_empty() {
        return Err(format!(
            "missing required environment variables: {}",
            missing.join(", ")
        ));
    }
    let cfg: Value =
        serde_json::from_str(cfg_text).map_err(|_| "Unable to parse CFG".to_owned())?;
    match method {
        "verifyCredentials" => Ok(verify::verify_credentials(&cfg).await.to_json()),
        "getMetaModel" => {
            let name = env.get_full("ELASTICIO_ACTION_OR_TRIGGER").unwrap_or("");
            meta_model(env.get_full("ELASTICIO_COMPONENT_PATH").unwrap_or(""), name)
        }
        _ => {
            let name = env.get_full("ELASTICIO_ACTION_OR_TRIGGER").unwrap_or("");
            component::find_function_at(
                env.get_full("ELASTICIO_COMPONENT_PATH").unwrap_or(""),
                name,
            )?;
            match env.get_full("ELASTICIO_GET_MODEL_METHOD").unwrap_or("") {
                "getTopics" => list_topics(&cfg).await,
                other => Err(format!(
                    "Select model method \"{other}\" is not exported by \"{name}\"; use getTopics"
                )),
            }
        }
    }
}

/// `{in, out}` JSON Schemas of a function.
fn meta_model(component_path: &str, name: &str) -> Result<Value, String> {
    let def = component::find_function_at(component_path, name)?;
    let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
    Ok(match def.main.as_str() {
        "produce" => {
            json!({ "in": parse(crate::schema::PRODUCE_IN), "out": parse(crate::schema::PRODUCE_OUT) })
        }
        _ => json!({ "in": {}, "out": parse(crate::schema::CONSUME_OUT) }),
    })
}

/// The cluster's topics as select options `{name: name}` (internal topics left out).
async fn list_topics(cfg: &Value) -> Result<Value, String> {
    let conn = KafkaConnection::from_cfg(cfg).map_err(|e| e.to_string())?;
    let token = TokenSource::start(&conn)
        .await
        .map_err(|e| format!("cannot list topics: token: {e}"))?;
    // A producer client: its own thread serves librdkafka's events, among them the OAUTHBEARER token refresh
    // that an unpolled client would never see.
    let client: FutureProducer<KafkaContext> = conn
        .to_client_config()
        .create_with_context(KafkaContext::with_token(token))
        .map_err(|e| format!("cannot create the Kafka client: {e}"))?;
    let names = tokio::task::spawn_blocking(move || {
        client
            .client()
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|md| {
                md.topics()
                    .iter()
                    .map(|t| t.name().to_owned())
                    .collect::<Vec<_>>()
            })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| {
        format!("cannot list topics: {e}. Check the credentials with verifyCredentials.")
    })?;
    let mut options = serde_json::Map::new();
    let mut names: Vec<String> = names.into_iter().filter(|n| !n.starts_with("__")).collect();
    names.sort();
    for n in names {
        options.insert(n.clone(), Value::String(n));
    }
    Ok(Value::Object(options))
}

async fn post(
    url: &str,
    auth: Option<(String, String)>,
    body: &Value,
    env: &Env,
) -> Result<(), ServiceError> {
    let client = http_client().map_err(|e| ServiceError::Post(e.to_string()))?;
    let attempts = env.number("API_REQUEST_RETRY_ATTEMPTS", 3).clamp(1, 10);
    let policy = Policy::SERVICE_RESULT
        .with_attempts(u32::try_from(attempts).unwrap_or(1))
        .with_initial(Duration::from_millis(
            env.number("API_REQUEST_RETRY_DELAY", 100),
        ));
    let attempt = |_attempt: u32| {
        let mut req = client.post(url).json(body);
        if let Some((user, pass)) = &auth {
            req = req.basic_auth(user, Some(pass));
        }
        async move {
            match req.send().await {
                Ok(resp) if resp.status() == reqwest::StatusCode::OK => Ok(()),
                Ok(resp) if resp.status().is_server_error() => {
                    Err(Attempt::Retry(format!("HTTP {}", resp.status())))
                }
                Ok(resp) => Err(Attempt::Stop(format!("HTTP {}", resp.status()))),
                Err(e) => Err(Attempt::Retry(e.without_url().to_string())),
            }
        }
    };
    let log = |error: &String, next: u32, _delay: Duration| {
        tracing::warn!(attempt = next, error = %error, "Posting the service result failed.");
    };
    match policy.retry(attempt, log).await {
        Ok(()) => {
            tracing::info!(status = %body["status"], "Service result delivered.");
            Ok(())
        }
        Err(gave_up) => {
            tracing::warn!(attempts = gave_up.attempts, error = %gave_up.error, "Posting the service result failed.");
            Err(ServiceError::Post(gave_up.error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_becomes_basic_auth_and_leaves_the_url() {
        let (url, auth) = split_userinfo("http://us%40er:p%3Ass@127.0.0.1:9/result?x=1").unwrap();
        assert_eq!(url, "http://127.0.0.1:9/result?x=1");
        assert_eq!(auth, Some(("us@er".to_owned(), "p:ss".to_owned())));
        assert_eq!(split_userinfo("http://h/r").unwrap().1, None);
    }

    #[test]
    fn percent_decoding_decodes_only_valid_escapes() {
        // Valid sequences are bytes, also multi-byte UTF-8 and upper/lower-case hex.
        assert_eq!(percent_decode("p%40ss%3a%3A"), "p@ss::");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        // `%+1`: `+1` is not hex (the old decoder parsed it as the number 1 and produced a 0x01 byte).
        assert_eq!(percent_decode("a%+1b"), "a%+1b");
        assert_eq!(percent_decode("%-f"), "%-f");
        // Incomplete or non-hex escapes stay as written.
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        // Not UTF-8 after decoding: replaced, never a panic.
        assert_eq!(percent_decode("%FF"), "\u{fffd}");
        let (_, auth) = split_userinfo("http://u%2B1:p%+1@h/r").unwrap();
        assert_eq!(auth, Some(("u+1".to_owned(), "p%+1".to_owned())));
    }

    #[test]
    fn meta_model_comes_from_the_schemas() {
        let m = meta_model("", "produce").unwrap();
        assert_eq!(m["in"]["required"][0], "messages");
        assert!(meta_model("", "nope").is_err());
    }
}
