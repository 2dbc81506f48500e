//! Tests of MSK IAM: shared fixtures here, one module per role.

mod chain;
mod container;
mod errors;
mod imds;
mod region;
mod signing;
mod sts;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use secrecy::ExposeSecret;

use super::env::*;
use super::http::*;
use super::sigv4::*;
use super::time::*;

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
