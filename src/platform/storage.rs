//! Object storage ("maester") for lightweight messages (PROTOCOL.md 3.8): bodies above a threshold travel
//! as encrypted objects and the message carries only `x-ipaas-object-storage-id`.

use reqwest::header;
use secrecy::{ExposeSecret, SecretString};

/// A failed object-storage call.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `ELASTICIO_OBJECT_STORAGE_URI` is not set.
    #[error("object storage is not configured (ELASTICIO_OBJECT_STORAGE_URI)")]
    NotConfigured,
    /// Transport or status failure.
    #[error("object storage {op} failed: {detail}")]
    Call {
        /// `upload` or `download`.
        op: &'static str,
        /// What happened (no secrets).
        detail: String,
    },
}

/// Client of the object store.
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    http: reqwest::Client,
    uri: String,
    token: Option<SecretString>,
    request_id: String,
}

impl ObjectStorage {
    /// A client for `uri` with bearer `token`; `request_id` is sent as `x-request-id`.
    pub fn new(
        http: reqwest::Client,
        uri: String,
        token: Option<SecretString>,
        request_id: String,
    ) -> Self {
        Self {
            http,
            uri,
            token,
            request_id,
        }
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = req.header("x-request-id", &self.request_id);
        match &self.token {
            Some(t) => req.bearer_auth(t.expose_secret()),
            None => req,
        }
    }

    /// Stores encrypted bytes; returns the object id.
    ///
    /// # Errors
    /// [`StorageError::Call`].
    pub async fn upload(&self, encrypted: Vec<u8>) -> Result<String, StorageError> {
        let err = |detail: String| StorageError::Call {
            op: "upload",
            detail,
        };
        let resp = self
            .auth(self.http.post(format!("{}/objects", self.uri)))
            .header(header::CONTENT_TYPE, "application/json")
            .body(encrypted)
            .send()
            .await
            .map_err(|e| err(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(err(format!("HTTP {}", resp.status())));
        }
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| err(e.without_url().to_string()))?;
        v.get("objectId")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| err("response has no objectId".into()))
    }

    /// Fetches an object's encrypted bytes.
    ///
    /// # Errors
    /// [`StorageError::Call`].
    pub async fn download(&self, id: &str) -> Result<Vec<u8>, StorageError> {
        let err = |detail: String| StorageError::Call {
            op: "download",
            detail,
        };
        let resp = self
            .auth(self.http.get(format!("{}/objects/{id}", self.uri)))
            .send()
            .await
            .map_err(|e| err(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(err(format!("HTTP {} for object {id}", resp.status())));
        }
        Ok(resp
            .bytes()
            .await
            .map_err(|e| err(e.without_url().to_string()))?
            .to_vec())
    }
}
