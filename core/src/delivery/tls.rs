//! TLS for outbound SMTP. Between mail servers TLS is opportunistic (RFC 3207 without
//! DANE or MTA-STS): a server's certificate is rarely one a sender can verify, and
//! refusing to deliver over an unverified session would only push the message to plain
//! text. So the session is encrypted whenever the server offers STARTTLS, and its
//! certificate is accepted as presented (its signatures are still checked).
//!
//! A smart host that Gannet logs in to is different: the password must reach only that
//! host, so its certificate is verified against the system's roots (or the CA named by
//! `delivery.relay_ca`), for the host name configured in `delivery.relay_host`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Debian's bundle of the system's trusted roots (package ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a verifying TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read CA certificates from {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("no usable CA certificate in {0}")]
    Empty(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Accepts any certificate chain; checks the handshake signatures.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration of opportunistic TLS: TLS 1.2 or 1.3, any certificate. (It
/// cannot fail: ring supports the default protocol versions.)
pub fn opportunistic_client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The client configuration for a smart host that gets credentials: the chain must verify
/// against the CA certificates in `ca_file` (PEM), or the system's roots when it is empty.
pub fn verified_client_config(ca_file: &str) -> Result<Arc<ClientConfig>, TrustError> {
    let path = if ca_file.is_empty() {
        SYSTEM_ROOTS
    } else {
        ca_file
    };
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| TrustError::Unreadable {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs.filter_map(Result::ok));
    if added == 0 {
        return Err(TrustError::Empty(path.to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opportunistic_config_builds() {
        assert!(opportunistic_client_config().is_ok());
    }

    #[test]
    fn verified_configs_need_certificates() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        assert!(matches!(
            verified_client_config(empty.to_str().expect("utf-8")),
            Err(TrustError::Empty(_))
        ));
        assert!(matches!(
            verified_client_config("/nonexistent/ca.pem"),
            Err(TrustError::Unreadable { .. })
        ));
        let ca = rcgen::generate_simple_self_signed(vec!["relay.test".into()]).expect("cert");
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, ca.cert.pem()).expect("write");
        assert!(verified_client_config(pem.to_str().expect("utf-8")).is_ok());
    }
}
