//! The TLS of every HTTP client (platform API, object storage, token URLs, AWS): rustls with the ring provider,
//! server certificates checked against the system's roots (`rustls-platform-verifier`, which on Linux reads
//! `SSL_CERT_FILE`/`SSL_CERT_DIR` or the usual bundle).
//!
//! Not OpenSSL (reqwest's `native-tls`): initialising it at startup was 4.4 MB of an idle worker's RSS, whatever
//! the URL's scheme (README, Idle RSS). The system roots are read at the first TLS handshake, not when a client
//! is built, so a plaintext run touches none of this and a machine without roots fails at its first HTTPS call
//! with a clear error rather than at startup.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// A client builder with this module's TLS and nothing else set: callers add their timeouts and redirect
/// policy. Certificates are checked against the system's roots.
pub fn client_builder() -> reqwest::ClientBuilder {
    client_builder_with_roots(Vec::new())
}

/// [`client_builder`], also trusting `extra_roots` (e.g. the CA that signed a private identity provider).
pub fn client_builder_with_roots(
    extra_roots: Vec<CertificateDer<'static>>,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(tls_config(extra_roots))
}

/// The certificates of a PEM bundle that parse; anything else in it is skipped.
pub fn pem_certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

fn tls_config(extra_roots: Vec<CertificateDer<'static>>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = SystemRoots {
        algorithms: provider.signature_verification_algorithms,
        provider: Arc::clone(&provider),
        extra_roots,
        verifier: OnceLock::new(),
    };
    // ring supports both safe protocol versions, so this cannot fail; fall back to TLS 1.3 alone regardless.
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap_or_else(|_| unreachable!("ring supports TLS 1.3"))
        });
    builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth()
}

/// The platform verifier (system roots plus `extra_roots`), built at the first certificate to check.
#[derive(Debug)]
struct SystemRoots {
    provider: Arc<CryptoProvider>,
    algorithms: WebPkiSupportedAlgorithms,
    extra_roots: Vec<CertificateDer<'static>>,
    verifier: OnceLock<Result<Verifier, rustls::Error>>,
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verifier = self.verifier.get_or_init(|| {
            Verifier::new_with_extra_roots(
                self.extra_roots.iter().cloned(),
                Arc::clone(&self.provider),
            )
        });
        match verifier {
            Ok(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Err(e) => Err(e.clone()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server certificate rustls did not accept (untrusted issuer, wrong name, expired …) in `e`'s chain, if
/// any. An `io::Error` hides the error it wraps from `source()` (hyper-rustls wraps tokio-rustls's `io::Error`,
/// which wraps the rustls error, in another one), so each is looked into as well.
pub fn certificate_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = rustls_error(err) {
            return Some(tls).filter(|tls| {
                matches!(
                    tls,
                    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
                )
            });
        }
        next = err.source();
    }
    None
}

/// `e` as a rustls error, looking through `io::Error`s that wrap one.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = e;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        match current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => current = inner,
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_build_with_the_preconfigured_rustls_backend() {
        // A rustls version other than reqwest's would make the preconfigured backend "unknown" at build.
        assert!(client_builder().build().is_ok());
        assert!(client_builder_with_roots(Vec::new()).build().is_ok());
    }

    #[test]
    fn certificate_errors_are_found_through_nested_io_errors() {
        use rustls::CertificateError;
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            tls.clone(),
        ));
        assert_eq!(certificate_error(&nested), Some(&tls));
        let other = std::io::Error::other(rustls::Error::DecryptError);
        assert_eq!(certificate_error(&other), None);
        assert_eq!(certificate_error(&std::io::Error::other("plain")), None);
    }

    #[test]
    fn pem_certificates_skips_what_does_not_parse() {
        assert!(pem_certificates(b"not a certificate").is_empty());
    }
}
