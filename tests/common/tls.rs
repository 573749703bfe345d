//! TLS for the tests and the bench: a certificate for the server under test, and a client
//! configuration that trusts exactly that certificate (rustls on ring, as the server).

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::common::TempDir;

/// A certificate and key for 127.0.0.1 and localhost, written as PEM files in `dir` (the key
/// readable by its owner only, as a server's must be), valid from an hour ago for a year.
pub fn certificate(dir: &TempDir) -> (String, String, Vec<u8>) {
    let hour = Duration::from_secs(3600);
    let now = SystemTime::now();
    certificate_valid(dir, now - hour, now + 365 * 24 * hour)
}

/// [`certificate`], valid from `not_before` to `not_after`.
pub fn certificate_valid(
    dir: &TempDir,
    not_before: SystemTime,
    not_after: SystemTime,
) -> (String, String, Vec<u8>) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    dir.rewrite("cert.pem", cert.pem().as_bytes());
    dir.rewrite("key.pem", key.serialize_pem().as_bytes());
    std::fs::set_permissions(dir.path("key.pem"), Permissions::from_mode(0o600)).unwrap();
    let path = |name: &str| dir.path(name).display().to_string();
    (path("cert.pem"), path("key.pem"), cert.der().to_vec())
}

/// Accepts exactly one certificate, the test's own (`pinned`), or with None any certificate,
/// keeping the one it saw; the handshake's signatures are checked as any client checks them.
#[derive(Debug, Default)]
pub struct Verifier {
    pinned: Option<Vec<u8>>,
    seen: Mutex<Vec<u8>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = end_entity.to_vec();
        match &self.pinned {
            Some(pinned) if end_entity.as_ref() != pinned => {
                Err(rustls::Error::General("not the pinned certificate".into()))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

pub fn algorithms() -> rustls::crypto::WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

impl Verifier {
    /// Trusts `der` and no other certificate.
    pub fn pinned(der: &[u8]) -> Verifier {
        Verifier {
            pinned: Some(der.to_vec()),
            ..Verifier::default()
        }
    }

    /// The certificate the server last showed (DER).
    pub fn seen(&self) -> Vec<u8> {
        self.seen.lock().unwrap().clone()
    }
}

/// A client configuration on `provider` (its cipher suites are what the client offers) that
/// checks the server's certificate with `verifier`.
pub fn client_config(provider: CryptoProvider, verifier: Arc<Verifier>) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}
