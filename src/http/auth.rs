//! HTTP Basic authentication (RFC 7617): the accounts `--auth` gives, the check of a request's
//! `Authorization` header against them, and the `401` that asks for them.
//!
//! It does not decide which requests must pass (`routes.rs` does: all of them, a CORS preflight
//! aside), and it never keeps a password anywhere it could be printed: an account's `Debug`
//! shows its user name only, and a refusal carries the user name tried, for the access log.
//! The credentials are compared in constant time, so how long a refusal takes does not tell
//! how close a guess was.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::{Choice, ConstantTimeEq};

use crate::http::head::HeaderValue;
use crate::http::response::Response;

/// What a `401` asks for: the realm browsers show, and that credentials are sent as UTF-8.
const CHALLENGE: &str = "Basic realm=\"pushserve\", charset=\"UTF-8\"";

/// One `--auth USER:PASS`.
pub struct Account {
    user: String,
    /// `USER:PASS`, the bytes a client sends once its header is decoded.
    credentials: Vec<u8>,
}

impl Account {
    /// `USER:PASS`, split at the first colon: a user name cannot hold one (RFC 7617), a
    /// password can.
    pub fn parse(text: &str) -> Result<Account, AccountError> {
        let (user, _password) = text.split_once(':').ok_or(AccountError::NoColon)?;
        if user.is_empty() {
            return Err(AccountError::NoUser);
        }
        Ok(Account {
            user: user.to_string(),
            credentials: text.as_bytes().to_vec(),
        })
    }
}

/// The user name only: an account may end up in a debug print, its password must not.
impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why a `--auth` value is not an account. The messages do not quote the value: it may be a
/// password typed without its user name.
#[derive(Debug, PartialEq, Eq)]
pub enum AccountError {
    NoColon,
    NoUser,
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            AccountError::NoColon => {
                "--auth takes USER:PASS, a user name and a password with a colon between them; \
                 the value given has no colon"
            }
            AccountError::NoUser => {
                "--auth takes USER:PASS; the user name before the colon is empty"
            }
        })
    }
}

/// The accounts of the run: a request passes with the credentials of any one of them.
#[derive(Debug)]
pub struct Accounts(Vec<Account>);

impl Accounts {
    /// None without any account: then nothing is asked.
    pub fn new(accounts: Vec<Account>) -> Option<Accounts> {
        (!accounts.is_empty()).then_some(Accounts(accounts))
    }

    /// Whether the value of a request's `Authorization` header (None: it sent none) names
    /// one of the accounts.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Refusal> {
        let given =
            credentials(authorization.ok_or(Refusal::Missing)?).ok_or(Refusal::Malformed)?;
        let Some(colon) = given.iter().position(|&b| b == b':') else {
            return Err(Refusal::Malformed);
        };
        // Every account is compared, whatever matched before: the time taken depends on the
        // lengths and the number of accounts, never on which bytes differ (like Go's
        // subtle.ConstantTimeCompare and Python's hmac.compare_digest, a length that differs
        // ends one comparison early, which tells a guess's length at most).
        let matched = self.0.iter().fold(Choice::from(0), |any, account| {
            any | given.ct_eq(&account.credentials)
        });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(Refusal::Wrong {
                user: String::from_utf8_lossy(&given[..colon]).into_owned(),
            })
        }
    }
}

/// Why a request was refused, as the access log says it.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// Not `Basic`, not strict base64, or no colon in what it decodes to.
    Malformed,
    /// Well formed, but no account's: `user` is the name tried, from outside.
    Wrong { user: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Refusal::Missing => f.write_str("no credentials"),
            Refusal::Malformed => f.write_str("malformed credentials"),
            // Quoted and escaped ({:?}): a name tried cannot pass for another field of the
            // line, and report.rs escapes what control characters are left.
            Refusal::Wrong { user } => write!(f, "wrong credentials for user {user:?}"),
        }
    }
}

/// The `401` every refused request gets, whatever its path, so that it tells nothing of what
/// exists.
pub fn challenge() -> Response<'static> {
    Response::error(401).header("WWW-Authenticate", HeaderValue::from_static(CHALLENGE))
}

/// Whether the credentials of `--auth` cross a network readable by anyone on the way: they
/// are only encoded, so they do unless the connection is encrypted or stays on this machine.
pub fn crosses_network_in_clear(bind: IpAddr, tls: bool) -> bool {
    !tls && !bind.is_loopback()
}

/// The decoded `user:pass` of an `Authorization: Basic TOKEN` value; None for another scheme
/// or a token that is not strict base64.
fn credentials(authorization: &str) -> Option<Vec<u8>> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    decode_base64(token.trim_start_matches(' ').as_bytes())
}

/// Base64 as RFC 4648 section 4 has it, strictly: padded to a multiple of four, `=` only at
/// the end, no bits left over under the padding (one text for one value), nothing else, as
/// the `STANDARD` engine decodes it. An empty token is no credentials.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok().filter(|bytes| !bytes.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(given: &[&str]) -> Accounts {
        Accounts::new(given.iter().map(|a| Account::parse(a).unwrap()).collect()).unwrap()
    }

    #[test]
    fn auth_base64_decodes_strictly() {
        let decode = |text: &str| decode_base64(text.as_bytes());
        // RFC 4648's test vectors.
        for (plain, encoded) in [
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                decode(encoded).as_deref(),
                Some(plain.as_bytes()),
                "{encoded}"
            );
        }
        assert_eq!(decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        for bad in [
            "", "Zg", "Zg=", "Zm9", "Zg===", "Z===", "Zg==Zg==", "Zm=v", "Zh==", "Zm9=", "Zm9v ",
            "Zm-v", "Zm_v", "Zm9\nv",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    /// Each of these would pass with a lenient decoder (padding left out or added, bits left
    /// over, the URL-safe alphabet, a space, padding in the middle): strictly, none is base64.
    #[test]
    fn auth_refuses_tokens_a_lenient_decoder_would_take() {
        let accounts = accounts(&["a:b", "a:ba", "\u{ff}:b"]);
        // a:b, a:ba, ÿ:b
        for token in ["YTpi", "YTpiYQ==", "w786Yg=="] {
            assert_eq!(accounts.check(Some(&format!("Basic {token}"))), Ok(()));
        }
        for token in [
            "YTpi=",
            "YTpi==",
            "YTpi====",
            "YTpiYQ",
            "YTpiYQ=",
            "YTpiYQ===",
            "YTpiYR==",
            "YTpiYd==",
            "YQ==OmI=",
            "YTp iYQ==",
            "YTpi\u{0}",
            "YTpiYQ==\u{e9}",
            "w786Yg",
            "_zpi",
            "YTpi.",
            "=YTpi",
        ] {
            assert_eq!(
                accounts.check(Some(&format!("Basic {token}"))),
                Err(Refusal::Malformed),
                "{token:?}"
            );
        }
    }

    /// What a token decodes to is compared as bytes with the account's UTF-8: credentials in
    /// another encoding, or not text at all, are wrong, whatever they would say as Latin-1.
    #[test]
    fn auth_refuses_credentials_that_are_not_the_accounts_utf8() {
        let accounts = accounts(&["a:\u{e9}", "\u{ff}:b"]);
        // a:é in UTF-8, then in Latin-1; ÿ:b in Latin-1; a:\x80 (not UTF-8 at all)
        assert_eq!(accounts.check(Some("Basic YTrDqQ==")), Ok(()));
        let wrong = |user: &str| Err(Refusal::Wrong { user: user.into() });
        assert_eq!(accounts.check(Some("Basic YTrp")), wrong("a"));
        assert_eq!(accounts.check(Some("Basic /zpi")), wrong("\u{fffd}"));
        assert_eq!(accounts.check(Some("Basic YTqA")), wrong("a"));
    }

    #[test]
    fn auth_accepts_any_account_and_refuses_the_rest() {
        let accounts = accounts(&["alice:secret", "bob:a:b:c"]);
        // alice:secret, bob:a:b:c
        assert_eq!(accounts.check(Some("Basic YWxpY2U6c2VjcmV0")), Ok(()));
        assert_eq!(accounts.check(Some("basic   YWxpY2U6c2VjcmV0 ")), Ok(()));
        assert_eq!(accounts.check(Some("Basic Ym9iOmE6Yjpj")), Ok(()));
        let wrong = |user: &str| Err(Refusal::Wrong { user: user.into() });
        // bob:a:b:C
        assert_eq!(accounts.check(Some("Basic Ym9iOmE6YjpD")), wrong("bob"));
        // alice:Secret, bob:a:b, carol:secret, alice:secret: (a prefix and an extension)
        assert_eq!(
            accounts.check(Some("Basic YWxpY2U6U2VjcmV0")),
            wrong("alice")
        );
        assert_eq!(accounts.check(Some("Basic Ym9iOmE6Yg==")), wrong("bob"));
        assert_eq!(
            accounts.check(Some("Basic Y2Fyb2w6c2VjcmV0")),
            wrong("carol")
        );
        assert_eq!(
            accounts.check(Some("Basic YWxpY2U6c2VjcmV0Og==")),
            wrong("alice")
        );
        // alice's password under bob's name: a user name and a password are one credential.
        assert_eq!(accounts.check(Some("Basic Ym9iOnNlY3JldA==")), wrong("bob"));
        assert_eq!(accounts.check(None), Err(Refusal::Missing));
        for malformed in [
            "YWxpY2U6c2VjcmV0",        // no scheme
            "Bearer YWxpY2U6c2VjcmV0", // another scheme
            "Basic",                   // no token
            "Basic YWxpY2U6c2VjcmV0=", // not base64
            "Basic YWxpY2VzZWNyZXQ=",  // alicesecret: no colon
            "Basic\tYWxpY2U6c2VjcmV0", // a tab is not a space
        ] {
            assert_eq!(
                accounts.check(Some(malformed)),
                Err(Refusal::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn auth_values_split_at_the_first_colon() {
        let account = Account::parse("u:p:a:ss").unwrap();
        assert_eq!(
            (account.user.as_str(), &account.credentials[..]),
            ("u", &b"u:p:a:ss"[..])
        );
        assert!(
            Account::parse("u:").is_ok(),
            "an empty password is a password"
        );
        assert_eq!(
            Account::parse("nocolon").unwrap_err(),
            AccountError::NoColon
        );
        assert_eq!(Account::parse(":pass").unwrap_err(), AccountError::NoUser);
        assert!(!AccountError::NoColon.to_string().contains("nocolon"));
    }

    #[test]
    fn auth_never_shows_a_password() {
        let accounts = accounts(&["alice:hunter2"]);
        assert!(!format!("{accounts:?}").contains("hunter2"));
        // alice:hunter3
        let refusal = accounts
            .check(Some("Basic YWxpY2U6aHVudGVyMw=="))
            .unwrap_err();
        assert_eq!(refusal.to_string(), "wrong credentials for user \"alice\"");
        // "a\u{1b}[31m b: 1", with a quote: the name stays one quoted field.
        let refusal = accounts.check(Some("Basic YSIbWzMxbSBiOjE=")).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "wrong credentials for user \"a\\\"\\u{1b}[31m b\""
        );
    }

    #[test]
    fn auth_in_clear_text_only_off_this_machine_without_tls() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(crosses_network_in_clear(ip("0.0.0.0"), false));
        assert!(crosses_network_in_clear(ip("192.168.1.2"), false));
        assert!(crosses_network_in_clear(ip("::"), false));
        assert!(!crosses_network_in_clear(ip("127.0.0.1"), false));
        assert!(!crosses_network_in_clear(ip("::1"), false));
        assert!(!crosses_network_in_clear(ip("0.0.0.0"), true));
    }

    #[test]
    fn auth_challenge_names_the_realm_and_charset() {
        let head = String::from_utf8(challenge().head.render()).unwrap();
        assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
        assert!(
            head.contains("\r\nWWW-Authenticate: Basic realm=\"pushserve\", charset=\"UTF-8\"\r\n")
        );
    }
}
