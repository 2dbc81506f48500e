//! [`KafkaConnection`] → librdkafka settings, the one place auth maps onto `security.protocol`, and the client
//! cache key.

use rdkafka::ClientConfig;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::{Auth, KafkaConnection, Tls};

impl KafkaConnection {
    /// The librdkafka settings for this connection; the only place auth maps onto `security.protocol`.
    pub fn to_client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","));
        c.set("client.id", &self.client_id);
        let protocol = match (&self.auth, &self.tls) {
            (None, None) => "plaintext",
            (None, Some(_)) => "ssl",
            (Some(_), None) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(auth) = &self.auth {
            c.set("sasl.mechanism", auth.sasl_mechanism());
            // OAUTHBEARER tokens come from the client context's callback (see `kafka::token`).
            if let Auth::Password(sasl) = auth {
                c.set("sasl.username", &sasl.username);
                c.set("sasl.password", sasl.password.expose_secret());
            }
        }
        if let Some(tls) = &self.tls {
            if let Some(ca) = &tls.ca_pem {
                c.set("ssl.ca.pem", ca);
            }
            if let (Some(cert), Some(key)) = (&tls.client_cert_pem, &tls.client_key_pem) {
                c.set("ssl.certificate.pem", cert);
                c.set("ssl.key.pem", key.expose_secret());
            }
            c.set(
                "ssl.endpoint.identification.algorithm",
                if tls.verify_hostname && !tls.insecure_skip_verify {
                    "https"
                } else {
                    "none"
                },
            );
            if tls.insecure_skip_verify {
                tracing::warn!(
                    "TLS certificate verification is DISABLED (tlsInsecureSkipVerify); the connection is not protected against impersonation."
                );
                c.set("enable.ssl.certificate.verification", "false");
            }
        }
        c
    }

    /// A stable key for caching clients per distinct connection (the password enters only as a hash).
    pub fn cache_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.brokers.join(",").as_bytes());
        h.update([0]);
        h.update(self.client_id.as_bytes());
        if let Some(auth) = &self.auth {
            hash_auth(&mut h, auth);
        }
        if let Some(tls) = &self.tls {
            hash_tls(&mut h, tls);
        }
        hex::encode(h.finalize())
    }
}

/// Each part followed by a 0 separator.
fn hash_parts(h: &mut Sha256, parts: &[&str]) {
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
}

fn hash_auth(h: &mut Sha256, auth: &Auth) {
    match auth {
        Auth::Password(s) => {
            h.update([1]);
            h.update(s.username.as_bytes());
            h.update([0]);
            h.update(s.password.expose_secret().as_bytes());
            h.update(s.mechanism.as_librdkafka().as_bytes());
        }
        Auth::OAuth(o) => {
            h.update([3]);
            hash_parts(
                h,
                &[
                    o.token_url.as_str(),
                    &o.client_id,
                    o.client_secret.expose_secret(),
                    o.scope.as_deref().unwrap_or(""),
                    o.audience.as_deref().unwrap_or(""),
                ],
            );
        }
        Auth::MskIam(m) => {
            h.update([4]);
            h.update(m.region.as_bytes());
            h.update([0]);
            if let Some(k) = &m.keys {
                hash_parts(
                    h,
                    &[
                        k.access_key_id.as_str(),
                        k.secret_access_key.expose_secret(),
                        k.session_token.as_ref().map_or("", |t| t.expose_secret()),
                    ],
                );
            }
        }
    }
}

fn hash_tls(h: &mut Sha256, t: &Tls) {
    h.update([2]);
    hash_parts(
        h,
        &[
            t.ca_pem.as_deref().unwrap_or(""),
            t.client_cert_pem.as_deref().unwrap_or(""),
        ],
    );
    h.update(
        t.client_key_pem
            .as_ref()
            .map_or("", |k| k.expose_secret())
            .as_bytes(),
    );
    h.update([
        u8::from(t.verify_hostname),
        u8::from(t.insecure_skip_verify),
    ]);
}
