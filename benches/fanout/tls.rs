//! The bench's TLS (figure 11): a certificate for the server under test, made with rcgen and
//! written as PEM files for `--tls-cert` and `--tls-key`; the client configuration its readers
//! share (rustls on the ring provider, as the server), which trusts exactly that certificate;
//! and how fast ring alone seals records on this CPU, to read the server's cost against.
//!
//! It owns no connection: `clients.rs` opens the sessions, one per reader thread.

use std::sync::Arc;
use std::time::Instant;

use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey};
use ring::aead::{Nonce, UnboundKey};
use rustls::ClientConfig;
use rustls::crypto::ring::cipher_suite::{
    TLS13_AES_128_GCM_SHA256, TLS13_CHACHA20_POLY1305_SHA256,
};
use rustls::crypto::ring::default_provider;

use crate::common::TempDir;
use crate::common::tls::{self, Verifier};

/// The largest TLS record's plaintext: what a stream of large parts is cut into.
const RECORD: usize = 16 * 1024;

/// A certificate for 127.0.0.1 and localhost, its key, both as PEM files in a temp dir that
/// lives as long as this.
pub struct Certificate {
    dir: TempDir,
    der: Vec<u8>,
}

impl Certificate {
    pub fn new() -> Certificate {
        let dir = TempDir::new("tls");
        let (_, _, der) = tls::certificate(&dir);
        Certificate { dir, der }
    }

    /// `--tls-cert CERT --tls-key KEY`.
    pub fn args(&self) -> Vec<String> {
        let path = |name: &str| self.dir.path(name).display().to_string();
        vec![
            "--tls-cert".into(),
            path("cert.pem"),
            "--tls-key".into(),
            path("key.pem"),
        ]
    }

    /// A client configuration that trusts this certificate and no other, offering `offer`.
    pub fn client_config(&self, offer: Offer) -> Arc<ClientConfig> {
        let mut provider = default_provider();
        match offer {
            Offer::Default => {}
            Offer::Aes128 => provider.cipher_suites = vec![TLS13_AES_128_GCM_SHA256],
            Offer::ChaCha20 => provider.cipher_suites = vec![TLS13_CHACHA20_POLY1305_SHA256],
        }
        tls::client_config(provider, Arc::new(Verifier::pinned(&self.der)))
    }
}

/// The cipher suites a reader offers. The server takes the first of the client's list it
/// supports, so the client chooses: rustls offers AES-256-GCM first, browsers on CPUs with AES
/// instructions AES-128-GCM, a phone without them ChaCha20-Poly1305.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Offer {
    /// rustls's default list.
    Default,
    /// TLS13_AES_128_GCM_SHA256 alone.
    Aes128,
    /// TLS13_CHACHA20_POLY1305_SHA256 alone.
    ChaCha20,
}

/// GB of plaintext ring seals in a second on one core, in full records of [`RECORD`] bytes,
/// for each AEAD of the TLS 1.3 suites (name, GB/s), measured for `secs` each. A machine
/// with AES-NI and carry-less multiply (and, with ring 0.17, VAES/AVX2) runs AES-GCM in its
/// fast assembly; without them ring falls back to a constant-time software AES, far slower
/// than its ChaCha20.
pub fn seal_rates(secs: f64) -> Vec<(&'static str, f64)> {
    [
        ("AES-256-GCM", &AES_256_GCM),
        ("AES-128-GCM", &AES_128_GCM),
        ("CHACHA20-POLY1305", &CHACHA20_POLY1305),
    ]
    .into_iter()
    .map(|(name, alg)| (name, seal_rate(alg, secs)))
    .collect()
}

fn seal_rate(alg: &'static Algorithm, secs: f64) -> f64 {
    let key = LessSafeKey::new(UnboundKey::new(alg, &vec![7; alg.key_len()]).expect("key"));
    let mut record = vec![0x5a_u8; RECORD];
    let (mut sealed, start) = (0u64, Instant::now());
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..64 {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&sealed.to_be_bytes());
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&[23, 3, 3, 64, 17][..]),
                    &mut record,
                )
                .expect("seal");
            // Keep the tag alive, so the work is not optimised away.
            record[0] ^= tag.as_ref()[0];
            sealed += 1;
        }
    }
    sealed as f64 * RECORD as f64 / 1e9 / start.elapsed().as_secs_f64()
}
