//! The TLS configuration an HTTPS listener serves with: a certificate and private key loaded
//! from PEM files and checked at startup (that they read, parse, are not swapped, and belong
//! together, so a mistake stops pushserve with one line instead of failing every handshake;
//! a certificate out of its dates and a key file other users can read get a warning each),
//! or a self-signed certificate made in memory for a quick share on a LAN.
//!
//! It owns the rustls `ServerConfig` and every message about those files; it never touches a
//! connection (the handshake, reads and writes are `conn.rs` and `listener.rs`'s), and no
//! message it makes ever includes key material. rustls runs on the ring provider, the one
//! ureq already compiles for the relay.

use std::fmt::Write as _;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::crypto::ring::{default_provider, sign::any_supported_type};
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{Error as TlsError, InconsistentKeys};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::report::describe_io_error;

/// Larger files are refused: a chain with its key is a few KiB, and a path such as /dev/zero
/// must not be read forever.
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// How long a self-signed certificate lasts.
const SELF_SIGNED_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How far back a self-signed certificate's validity starts: a phone or a board without a
/// clock battery that is a few minutes behind must not see it as "not yet valid".
const SELF_SIGNED_BACKDATE: Duration = Duration::from_secs(60 * 60);

/// The application protocol offered: the server speaks HTTP/1.1 only.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// A checked server configuration (rustls), ALPN http/1.1, TLS 1.2 and 1.3.
///
/// `cert` holds the server's certificate first, then any intermediates; `key` its private key
/// (PKCS#8, PKCS#1 or SEC1, unencrypted). Both may be the same file. Err: one line naming the
/// file and the reason.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = read_certificates(cert)?;
    let private_key = read_private_key(key)?;
    let dates = validity(&chain[0]);
    let config = server_config(chain, private_key).map_err(|problem| match problem {
        Problem::UnsupportedKey => format!(
            "'{}' holds a private key of a kind pushserve cannot use, or a damaged one \
             (it takes RSA of 2048 to 8192 bits, ECDSA P-256 or P-384, and Ed25519)",
            key.display()
        ),
        Problem::BadCertificate => format!(
            "'{}': the first certificate is not valid X.509",
            cert.display()
        ),
        Problem::KeyMismatch => format!(
            "the private key in '{}' does not belong to the certificate in '{}'",
            key.display(),
            cert.display()
        ),
        Problem::LeafNotFirst => format!(
            "the private key in '{}' belongs to a certificate in '{}' that is not the first \
             (the server's own certificate must come before its issuers)",
            key.display(),
            cert.display()
        ),
        Problem::Other(e) => format!("'{}' and '{}': {e}", cert.display(), key.display()),
    })?;
    if let Some(problem) = dates.and_then(|dates| out_of_date(dates, OffsetDateTime::now_utc())) {
        warning!("the certificate in '{}' {problem}", cert.display());
    }
    // Windows has no mode bits; its access lists are left to the user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(key)
            && meta.permissions().mode() & 0o077 != 0
        {
            warning!(
                "'{}' holds the private key and is readable by other users (mode {:03o}); \
                 chmod 600 it",
                key.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
    Ok(config)
}

/// What is wrong with a certificate valid from `not_before` to `not_after` at `now`, if
/// anything: clients refuse it, and the server would otherwise say nothing.
fn out_of_date(
    (not_before, not_after): (OffsetDateTime, OffsetDateTime),
    now: OffsetDateTime,
) -> Option<String> {
    if now > not_after {
        Some(format!(
            "expired on {}; clients will refuse it (valid from {})",
            utc(not_after),
            utc(not_before)
        ))
    } else if now < not_before {
        Some(format!(
            "is not valid before {}; clients will refuse it until then (valid to {}; is this \
             machine's clock right?)",
            utc(not_before),
            utc(not_after)
        ))
    } else {
        None
    }
}

fn utc(time: OffsetDateTime) -> String {
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// The validity of an X.509 certificate (RFC 5280 4.1.2.5): notBefore and notAfter, found by
/// walking its DER: Certificate, tbsCertificate, then past the version, serial number,
/// signature algorithm and issuer. None if it is not shaped so.
fn validity(certificate: &CertificateDer<'_>) -> Option<(OffsetDateTime, OffsetDateTime)> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let (SEQUENCE, certificate, _) = der_element(certificate.as_ref())? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = der_element(certificate)? else {
        return None;
    };
    if tbs.first() == Some(&VERSION) {
        tbs = der_element(tbs)?.2;
    }
    for _serial_signature_issuer in 0..3 {
        tbs = der_element(tbs)?.2;
    }
    let (SEQUENCE, validity, _) = der_element(tbs)? else {
        return None;
    };
    let (tag, not_before, rest) = der_element(validity)?;
    let not_before = der_time(tag, not_before)?;
    let (tag, not_after, _) = der_element(rest)?;
    Some((not_before, der_time(tag, not_after)?))
}

/// The first DER element of `der`: its tag, its contents, and what follows it.
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (digits, after) = rest.split_at(count);
        rest = after;
        digits.iter().fold(0, |len, &d| len << 8 | usize::from(d))
    };
    (len <= rest.len()).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, 1950 to 2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), the two
/// forms RFC 5280 allows.
fn der_time(tag: u8, text: &[u8]) -> Option<OffsetDateTime> {
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = i32::from(der_digits(&text[..2])?);
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => (
            i32::from(der_digits(&text[..2])?) * 100 + i32::from(der_digits(&text[2..4])?),
            &text[4..],
        ),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let field = |at: usize| der_digits(&rest[at..at + 2]);
    let month = Month::try_from(field(0)?).ok()?;
    let date = Date::from_calendar_date(year, month, field(2)?).ok()?;
    let time = Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Two ASCII digits as a number.
fn der_digits(two: &[u8]) -> Option<u8> {
    match two {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

/// A certificate made by [`self_signed`], with the configuration that serves it.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the DER certificate, "AB:CD:…" upper-case hex: what a viewer compares with
    /// what the browser shows before trusting it.
    pub fingerprint: String,
    /// The certificate itself (DER), for a client that is told to trust it.
    #[cfg_attr(not(test), allow(dead_code))] // the unit tests trust it
    pub certificate: CertificateDer<'static>,
}

/// A certificate made in memory for `names` (DNS names and IP addresses, e.g. "localhost",
/// "127.0.0.1", the machine's host name), valid for a year from now (backdated an hour, for
/// clients whose clock is a little behind), with a new ECDSA P-256 key that never leaves the
/// process.
pub fn self_signed(names: &[String]) -> Result<SelfSigned, String> {
    let failed =
        |why: &dyn std::fmt::Display| format!("cannot make a self-signed certificate: {why}");
    if names.is_empty() {
        return Err(failed(&"it needs at least one host name or address"));
    }
    let mut params = CertificateParams::default();
    params.subject_alt_names = names
        .iter()
        .map(|name| {
            subject_alt_name(name)
                .ok_or_else(|| failed(&format!("{name:?} is not a host name or an IP address")))
        })
        .collect::<Result<_, _>>()?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, "pushserve self-signed");
    params.distinguished_name = subject;
    let now = SystemTime::now();
    params.not_before = (now - SELF_SIGNED_BACKDATE).into();
    params.not_after = (now + SELF_SIGNED_LIFETIME).into();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // No serial number set: rcgen derives one from the new public key, so each run's
    // certificate has its own, which Firefox requires of certificates with the same issuer.

    let key_pair = KeyPair::generate().map_err(|e| failed(&e))?;
    let certificate = params.self_signed(&key_pair).map_err(|e| failed(&e))?;
    let certificate = certificate.der().clone();
    let config = server_config(vec![certificate.clone()], PrivateKeyDer::from(key_pair))
        .map_err(|problem| failed(&problem))?;
    Ok(SelfSigned {
        config,
        fingerprint: fingerprint(&certificate),
        certificate,
    })
}

/// `name` as a subjectAltName, if a client could ask for it: an IP address, or a DNS name.
fn subject_alt_name(name: &str) -> Option<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(SanType::IpAddress(ip));
    }
    match ServerName::try_from(name) {
        Ok(ServerName::DnsName(_)) => Some(SanType::DnsName(name.try_into().ok()?)),
        _ => None,
    }
}

/// SHA-256 of `certificate`, as "AB:CD:…".
fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, certificate.as_ref());
    let mut out = String::with_capacity(digest.as_ref().len() * 3);
    for (i, byte) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

/// Why a certificate and key could not be made into a configuration.
#[derive(Debug)]
enum Problem {
    UnsupportedKey,
    BadCertificate,
    KeyMismatch,
    /// The key belongs to a certificate of the chain, not the first.
    LeafNotFirst,
    Other(TlsError),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::UnsupportedKey => f.write_str("unsupported private key"),
            Problem::BadCertificate => f.write_str("the certificate is not valid X.509"),
            Problem::KeyMismatch | Problem::LeafNotFirst => {
                f.write_str("the key does not belong to the certificate")
            }
            Problem::Other(e) => write!(f, "{e}"),
        }
    }
}

/// The server configuration for `chain` and `key`, once the key is known to belong to the
/// first certificate: rustls's own builder lets a key whose public half it cannot compute
/// through, and a mismatch would then only show at each handshake.
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, Problem> {
    let signing_key = any_supported_type(&key).map_err(|_| Problem::UnsupportedKey)?;
    let leaf_later = |chain: &[CertificateDer<'static>]| {
        chain.iter().skip(1).any(|cert| {
            CertifiedKey::new(vec![cert.clone()], signing_key.clone())
                .keys_match()
                .is_ok()
        })
    };
    let certified = CertifiedKey::new(chain, signing_key.clone());
    match certified.keys_match() {
        Ok(()) => {}
        Err(TlsError::InconsistentKeys(
            InconsistentKeys::KeyMismatch | InconsistentKeys::Unknown,
        )) => {
            return Err(match leaf_later(&certified.cert) {
                true => Problem::LeafNotFirst,
                false => Problem::KeyMismatch,
            });
        }
        Err(TlsError::InvalidCertificate(_) | TlsError::NoCertificatesPresented) => {
            return Err(Problem::BadCertificate);
        }
        Err(e) => return Err(Problem::Other(e)),
    }
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(Problem::Other)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

/// One PEM section of a file, by what it holds.
enum Section {
    Certificate(CertificateDer<'static>),
    /// Kept as a `PrivateKeyDer`, which wipes its bytes when dropped.
    PrivateKey(PrivateKeyDer<'static>),
    Other,
}

/// The certificates in the PEM file `path`, the server's own first.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = read_pem_file(path)?;
    let sections = pem_sections(path, &text)?;
    let holds_key = sections.iter().any(|s| matches!(s, Section::PrivateKey(_)));
    let chain: Vec<_> = sections
        .into_iter()
        .filter_map(|section| match section {
            Section::Certificate(cert) => Some(cert),
            _ => None,
        })
        .collect();
    if !chain.is_empty() {
        Ok(chain)
    } else if holds_key || encrypted_key(&text) {
        Err(format!(
            "'{}' holds a private key but no certificate (are the certificate and the key \
             swapped?)",
            path.display()
        ))
    } else {
        Err(format!(
            "'{}' holds no certificate{}",
            path.display(),
            not_pem_hint(&text, "CERTIFICATE")
        ))
    }
}

/// The one private key in the PEM file `path`.
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let text = read_pem_file(path)?;
    // An encrypted key in the old OpenSSL form has headers that read as damaged base64: say
    // what is really wrong.
    let sections = pem_sections(path, &text).map_err(|e| match encrypted_key(&text) {
        true => encrypted_key_message(path),
        false => e,
    })?;
    let holds_certificate = sections
        .iter()
        .any(|s| matches!(s, Section::Certificate(_)));
    let mut keys: Vec<_> = sections
        .into_iter()
        .filter_map(|section| match section {
            Section::PrivateKey(key) => Some(key),
            _ => None,
        })
        .collect();
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 if encrypted_key(&text) => Err(encrypted_key_message(path)),
        0 if holds_certificate => Err(format!(
            "'{}' holds a certificate but no private key (are the certificate and the key \
             swapped?)",
            path.display()
        )),
        0 => Err(format!(
            "'{}' holds no private key{}",
            path.display(),
            not_pem_hint(&text, "PRIVATE KEY")
        )),
        n => Err(format!(
            "'{}' holds {n} private keys; it must hold only the server's",
            path.display()
        )),
    }
}

/// The bytes of `path`, at most [`MAX_PEM_FILE`] of them.
fn read_pem_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_PEM_FILE + 1).read_to_end(&mut text))
        .map_err(|e| {
            format!(
                "cannot read '{}': {}",
                path.display(),
                describe_io_error(&e)
            )
        })?;
    if text.len() as u64 > MAX_PEM_FILE {
        return Err(format!(
            "'{}' is too large for a certificate or key file (over 1 MiB)",
            path.display()
        ));
    }
    Ok(text)
}

/// The PEM sections in `text`, read from `path`; sections of other kinds are skipped.
fn pem_sections(path: &Path, text: &[u8]) -> Result<Vec<Section>, String> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(text)
        .map(|item| {
            item.map(|(kind, der)| match kind {
                SectionKind::Certificate => Section::Certificate(der.into()),
                _ => PrivateKeyDer::from_pem(kind, der).map_or(Section::Other, Section::PrivateKey),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("'{}' is not valid PEM: {}", path.display(), pem_problem(&e)))
}

/// What is wrong with a PEM file, in words that quote nothing from it (a damaged section may be
/// a key).
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a -----BEGIN----- line has no -----END----- line",
        pem::Error::IllegalSectionStart { .. } => "a -----BEGIN----- line is malformed",
        pem::Error::Base64Decode(_) => "a section's base64 is damaged",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "it cannot be decoded",
    }
}

/// Whether `text` holds a passphrase-protected key (PKCS#8 or the old OpenSSL form).
fn encrypted_key(text: &[u8]) -> bool {
    contains(text, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(text, b"Proc-Type: 4,ENCRYPTED")
}

fn encrypted_key_message(path: &Path) -> String {
    format!(
        "'{}' holds an encrypted private key; pushserve needs it unencrypted \
         (openssl pkey -in KEY -out PLAIN_KEY)",
        path.display()
    )
}

/// Why a file with no section of the kind wanted may hold none: it is not PEM at all.
fn not_pem_hint(text: &[u8], label: &str) -> String {
    if contains(text, b"-----BEGIN ") {
        String::new()
    } else if text.first() == Some(&0x30) {
        format!(
            " (it looks like binary DER; a PEM file with a -----BEGIN {label}----- line is needed)"
        )
    } else {
        format!(" (a PEM file with a -----BEGIN {label}----- line is needed)")
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    use rcgen::{BasicConstraints, CertifiedIssuer, IsCa};
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::UnixTime;
    use rustls::version::{TLS12, TLS13};
    use rustls::{
        ClientConfig, ClientConnection, Connection, ProtocolVersion, RootCertStore,
        ServerConnection, SupportedProtocolVersion,
    };

    /// A folder of test files, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("pushserve-tls-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A certificate for localhost and 127.0.0.1 with a new key of `alg`: (cert PEM, key PEM,
    /// cert DER).
    fn pair_for(
        alg: &'static rcgen::SignatureAlgorithm,
    ) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    fn pair() -> (String, String, CertificateDer<'static>) {
        pair_for(&rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// Base64 (standard alphabet, padded), for PEM files made by hand.
    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
            for i in 0..4 {
                out.push(match i <= chunk.len() {
                    true => ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char,
                    false => '=',
                });
            }
        }
        out
    }

    fn pem_section(label: &str, der: &[u8]) -> String {
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            base64(der)
        )
    }

    /// Checks an error is one line, names `files`, says `why`, and quotes nothing of `secrets`
    /// (PEM texts whose base64 lines must not appear).
    fn assert_error(
        result: Result<Arc<ServerConfig>, String>,
        files: &[&Path],
        why: &str,
        secrets: &[&str],
    ) {
        let message = result.expect_err("the pair was accepted");
        assert!(!message.contains('\n'), "more than one line: {message}");
        assert!(!message.contains("os error"), "{message}");
        for file in files {
            let quoted = format!("'{}'", file.display());
            assert!(
                message.contains(&quoted),
                "{quoted} not named in: {message}"
            );
        }
        assert!(message.contains(why), "{why:?} not in: {message}");
        for secret in secrets {
            for line in secret
                .lines()
                .filter(|line| !line.starts_with("-----") && line.len() >= 8)
            {
                assert!(!message.contains(&line[..8]), "key material in: {message}");
            }
        }
    }

    /// A full handshake in memory between `server` and a rustls client that trusts only
    /// `root`, offers h2 and http/1.1, and connects to `name` with `version`; then one request's
    /// bytes, client to server. The negotiated ALPN protocol and version.
    fn handshake(
        server: Arc<ServerConfig>,
        root: &CertificateDer<'static>,
        name: &str,
        version: &'static SupportedProtocolVersion,
    ) -> Result<(Option<Vec<u8>>, ProtocolVersion), TlsError> {
        let mut roots = RootCertStore::empty();
        roots.add(root.clone()).unwrap();
        let mut client_config = ClientConfig::builder_with_provider(Arc::new(default_provider()))
            .with_protocol_versions(&[version])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut client = Connection::from(ClientConnection::new(Arc::new(client_config), name)?);
        let mut server = Connection::from(ServerConnection::new(server)?);
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            transfer(&mut client, &mut server)?;
            transfer(&mut server, &mut client)?;
        }
        assert!(
            !client.is_handshaking() && !server.is_handshaking(),
            "handshake unfinished"
        );
        assert_eq!(client.alpn_protocol(), server.alpn_protocol());

        let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        client.writer().write_all(request).unwrap();
        transfer(&mut client, &mut server)?;
        let mut received = vec![0; request.len()];
        std::io::Read::read_exact(&mut server.reader(), &mut received).unwrap();
        assert_eq!(received, request);
        Ok((
            server.alpn_protocol().map(<[u8]>::to_vec),
            server.protocol_version().unwrap(),
        ))
    }

    /// Moves what `from` has to send into `to`, and has `to` process it.
    fn transfer(from: &mut Connection, to: &mut Connection) -> Result<(), TlsError> {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).unwrap();
        }
        let mut wire = &wire[..];
        while !wire.is_empty() {
            to.read_tls(&mut wire).unwrap();
            to.process_new_packets()?;
        }
        Ok(())
    }

    fn assert_serves(config: Arc<ServerConfig>, root: &CertificateDer<'static>, name: &str) {
        for (version, expected) in [
            (&TLS13, ProtocolVersion::TLSv1_3),
            (&TLS12, ProtocolVersion::TLSv1_2),
        ] {
            let (alpn, negotiated) = handshake(config.clone(), root, name, version).unwrap();
            assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
            assert_eq!(negotiated, expected);
        }
    }

    #[test]
    fn a_good_pair_loads_and_serves_tls_1_2_and_1_3() {
        let scratch = Scratch::new("good");
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ] {
            let (cert_pem, key_pem, der) = pair_for(alg);
            let cert = scratch.file("cert.pem", &cert_pem);
            let key = scratch.file("key.pem", &key_pem);
            let config = load(&cert, &key).unwrap();
            assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
            assert_serves(config.clone(), &der, "localhost");
            assert_serves(config, &der, "127.0.0.1");
        }
    }

    #[test]
    fn one_file_may_hold_both_the_certificate_and_the_key() {
        let scratch = Scratch::new("combined");
        let (cert_pem, key_pem, der) = pair();
        let both = scratch.file("both.pem", format!("{key_pem}\n{cert_pem}"));
        assert_serves(load(&both, &both).unwrap(), &der, "localhost");
    }

    #[test]
    fn a_chain_is_served_leaf_first_and_refused_otherwise() {
        let scratch = Scratch::new("chain");
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let key = scratch.file("key.pem", leaf_key.serialize_pem());

        let chain = scratch.file("chain.pem", format!("{}{}", leaf.pem(), ca.pem()));
        assert_serves(load(&chain, &key).unwrap(), ca.der(), "localhost");

        let reversed = scratch.file("reversed.pem", format!("{}{}", ca.pem(), leaf.pem()));
        assert_error(
            load(&reversed, &key),
            &[&reversed, &key],
            "belongs to a certificate in",
            &[&leaf_key.serialize_pem()],
        );
    }

    #[test]
    fn the_validity_dates_are_read_from_the_certificate_in_both_time_forms() {
        let at = |y, m, d, hh, mm, ss| {
            PrimitiveDateTime::new(
                Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap(),
                Time::from_hms(hh, mm, ss).unwrap(),
            )
            .assume_utc()
        };
        // Before 2050 a UTCTime, from 2050 on a GeneralizedTime (RFC 5280 4.1.2.5).
        let (from, to) = (at(1999, 12, 31, 23, 59, 58), at(2051, 2, 3, 4, 5, 6));
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = from;
        params.not_after = to;
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        assert_eq!(validity(cert.der()), Some((from, to)));
        assert_eq!(
            validity(&CertificateDer::from(&b"\x30\x03\x30\x01"[..])),
            None
        );
        assert_eq!(out_of_date((from, to), at(2020, 1, 1, 0, 0, 0)), None);
        assert_eq!(
            out_of_date((from, to), at(2052, 1, 1, 0, 0, 0)).unwrap(),
            "expired on 2051-02-03 04:05:06 UTC; clients will refuse it \
             (valid from 1999-12-31 23:59:58 UTC)"
        );
        assert!(
            out_of_date((from, to), at(1999, 1, 1, 0, 0, 0))
                .unwrap()
                .starts_with("is not valid before 1999-12-31 23:59:58 UTC;")
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_is_named_with_the_reason() {
        let scratch = Scratch::new("unreadable");
        let (cert_pem, key_pem, _) = pair();
        let cert = scratch.file("cert.pem", cert_pem);
        let key = scratch.file("key.pem", key_pem);
        let missing = scratch.0.join("missing.pem");
        assert_eq!(
            load(&missing, &key).unwrap_err(),
            format!(
                "cannot read '{}': No such file or directory",
                missing.display()
            )
        );
        assert_eq!(
            load(&cert, &missing).unwrap_err(),
            format!(
                "cannot read '{}': No such file or directory",
                missing.display()
            )
        );
        assert_error(load(&cert, &scratch.0), &[&scratch.0], "cannot read", &[]);
        let huge = scratch.file("huge.pem", vec![b'A'; MAX_PEM_FILE as usize + 1]);
        assert_error(load(&huge, &key), &[&huge], "too large", &[]);
    }

    #[test]
    fn a_certificate_file_without_a_certificate_is_refused() {
        let scratch = Scratch::new("no-cert");
        let (cert_pem, key_pem, der) = pair();
        let key = scratch.file("key.pem", &key_pem);
        let empty = scratch.file("empty.pem", "");
        assert_error(
            load(&empty, &key),
            &[&empty],
            "holds no certificate (a PEM file with a -----BEGIN CERTIFICATE----- line",
            &[],
        );
        let binary = scratch.file("cert.der", der.as_ref());
        assert_error(
            load(&binary, &key),
            &[&binary],
            "looks like binary DER",
            &[],
        );
        let other = scratch.file(
            "csr.pem",
            cert_pem.replace("CERTIFICATE", "CERTIFICATE REQUEST"),
        );
        assert_error(load(&other, &key), &[&other], "holds no certificate", &[]);
    }

    #[test]
    fn swapped_files_are_named_as_such() {
        let scratch = Scratch::new("swapped");
        let (cert_pem, key_pem, _) = pair();
        let cert = scratch.file("cert.pem", &cert_pem);
        let key = scratch.file("key.pem", &key_pem);
        assert_error(
            load(&key, &cert),
            &[&key],
            "holds a private key but no certificate (are the certificate and the key swapped?)",
            &[&key_pem],
        );
        assert_error(
            load(&cert, &cert),
            &[&cert],
            "holds a certificate but no private key (are the certificate and the key swapped?)",
            &[],
        );
    }

    #[test]
    fn a_key_file_must_hold_one_unencrypted_key() {
        let scratch = Scratch::new("no-key");
        let (cert_pem, key_pem, _) = pair();
        let (_, other_key_pem, _) = pair();
        let cert = scratch.file("cert.pem", &cert_pem);
        let text = scratch.file("notes.txt", "just some text\n");
        assert_error(
            load(&cert, &text),
            &[&text],
            "holds no private key (a PEM file with a -----BEGIN PRIVATE KEY----- line",
            &[],
        );
        let two = scratch.file("two.pem", format!("{key_pem}{other_key_pem}"));
        assert_error(
            load(&cert, &two),
            &[&two],
            "holds 2 private keys",
            &[&key_pem, &other_key_pem],
        );

        let pkcs8 = pem_section("ENCRYPTED PRIVATE KEY", &[0x30; 64]);
        let pkcs8 = scratch.file("pkcs8.pem", pkcs8);
        assert_error(
            load(&cert, &pkcs8),
            &[&pkcs8],
            "holds an encrypted private key",
            &[],
        );
        let old_form = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
            DEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\nMIIEowIBAAKCAQEA\n\
            -----END RSA PRIVATE KEY-----\n";
        let old_form = scratch.file("old.pem", old_form);
        assert_error(
            load(&cert, &old_form),
            &[&old_form],
            "holds an encrypted private key",
            &[],
        );
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused_at_load() {
        let scratch = Scratch::new("mismatch");
        let (cert_pem, _, _) = pair();
        let cert = scratch.file("cert.pem", &cert_pem);
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ] {
            let (_, other_key_pem, _) = pair_for(alg);
            let other_key = scratch.file("other.pem", &other_key_pem);
            assert!(!load(&cert, &other_key).unwrap_err().contains("first"));
            assert_error(
                load(&cert, &other_key),
                &[&cert, &other_key],
                "does not belong to the certificate",
                &[&other_key_pem],
            );
        }
    }

    #[test]
    fn a_key_of_a_kind_rustls_cannot_sign_with_is_refused() {
        let scratch = Scratch::new("unsupported");
        let (cert_pem, _, _) = pair();
        let cert = scratch.file("cert.pem", &cert_pem);
        // PKCS#8 of an Ed448 key (OID 1.3.101.113), which ring does not implement.
        let mut ed448 = vec![
            0x30, 0x47, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x04, 0x3b,
            0x04, 0x39,
        ];
        ed448.extend([0x5a; 57]);
        let ed448_pem = pem_section("PRIVATE KEY", &ed448);
        let key = scratch.file("ed448.pem", &ed448_pem);
        assert_error(
            load(&cert, &key),
            &[&key],
            "a private key of a kind pushserve cannot use",
            &[&ed448_pem],
        );
        let garbage_pem = pem_section("EC PRIVATE KEY", b"not a key at all, only words");
        let key = scratch.file("garbage.pem", &garbage_pem);
        assert_error(
            load(&cert, &key),
            &[&key],
            "a private key of a kind pushserve cannot use",
            &[&garbage_pem],
        );
    }

    #[test]
    fn damaged_pem_is_refused_without_quoting_it() {
        let scratch = Scratch::new("damaged");
        let (cert_pem, key_pem, _) = pair();
        let cert = scratch.file("cert.pem", &cert_pem);
        let key = scratch.file("key.pem", &key_pem);

        let unterminated = key_pem.replace("-----END PRIVATE KEY-----", "");
        let unterminated_file = scratch.file("unterminated.pem", &unterminated);
        assert_error(
            load(&cert, &unterminated_file),
            &[&unterminated_file],
            "is not valid PEM: a -----BEGIN----- line has no -----END----- line",
            &[&key_pem],
        );

        let body = key_pem.lines().nth(1).unwrap();
        let damaged = key_pem.replacen(body, &format!("{}!{}", &body[..20], &body[21..]), 1);
        let damaged_file = scratch.file("damaged.pem", &damaged);
        assert_error(
            load(&cert, &damaged_file),
            &[&damaged_file],
            "is not valid PEM: a section's base64 is damaged",
            &[&key_pem],
        );

        let not_x509 = scratch.file(
            "not-x509.pem",
            pem_section("CERTIFICATE", b"not a certificate"),
        );
        assert_error(
            load(&not_x509, &key),
            &[&not_x509],
            "the first certificate is not valid X.509",
            &[],
        );
    }

    #[test]
    fn a_self_signed_certificate_serves_its_names_and_has_its_fingerprint() {
        let names = ["localhost", "127.0.0.1", "::1", "my-laptop"].map(String::from);
        let made = self_signed(&names).unwrap();
        assert_eq!(made.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        for name in &names {
            assert_serves(made.config.clone(), &made.certificate, name);
        }
        assert!(
            handshake(
                made.config.clone(),
                &made.certificate,
                "elsewhere.example",
                &TLS13
            )
            .is_err(),
            "served a name it was not made for"
        );

        let digest = ring::digest::digest(&ring::digest::SHA256, made.certificate.as_ref());
        let expected: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(made.fingerprint, expected.join(":"));
        assert_eq!(made.fingerprint.len(), 32 * 3 - 1);

        let again = self_signed(&names).unwrap();
        assert_ne!(again.fingerprint, made.fingerprint, "a new key each time");
    }

    #[test]
    fn a_self_signed_certificate_is_valid_for_a_year_from_now() {
        let made = self_signed(&["localhost".to_string()]).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(made.certificate.clone()).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(default_provider()),
        )
        .build()
        .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let now = SystemTime::now();
        let at = |time: SystemTime| {
            verifier.verify_server_cert(
                &made.certificate,
                &[],
                &name,
                &[],
                UnixTime::since_unix_epoch(time.duration_since(SystemTime::UNIX_EPOCH).unwrap()),
            )
        };
        let day = Duration::from_secs(24 * 60 * 60);
        assert!(
            at(now - Duration::from_secs(30 * 60)).is_ok(),
            "a clock half an hour behind"
        );
        assert!(at(now + 364 * day).is_ok());
        assert!(
            at(now - 2 * SELF_SIGNED_BACKDATE).is_err(),
            "valid long before it was made"
        );
        assert!(at(now + 366 * day).is_err(), "valid for more than a year");
    }

    #[test]
    fn a_self_signed_certificate_needs_names_a_client_can_ask_for() {
        assert!(
            self_signed(&[])
                .unwrap_err()
                .contains("at least one host name or address")
        );
        for bad in [
            "",
            "two words",
            "*.example.com",
            "caf\u{e9}.local",
            "line\nbreak",
        ] {
            let message = self_signed(&["localhost".to_string(), bad.to_string()]).unwrap_err();
            assert!(
                message.starts_with("cannot make a self-signed certificate: "),
                "{message}"
            );
            assert!(
                message.contains("is not a host name or an IP address"),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
