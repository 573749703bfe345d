//! Which names a request may call this server by: the defence against DNS rebinding.
//!
//! A page on `attacker.example` whose DNS name is then pointed at 127.0.0.1 makes the browser
//! send its requests to a server on the viewer's own machine, and treats the answers as the
//! attacker's. Those requests say `Host: attacker.example`. So a server bound to loopback
//! answers only requests that name it by a loopback name or address (`localhost`,
//! `*.localhost`, 127.0.0.0/8, `[::1]`, any port), or by a name given with `--allow-host`.
//! Bound to another address, anything goes unless `--allow-host` is given; then IP addresses
//! (a LAN viewer typing the server's address) and the names given are accepted.

use std::net::IpAddr;

pub struct HostCheck {
    /// None: every Host is accepted.
    rules: Option<Rules>,
}

struct Rules {
    /// Names from `--allow-host`, normalised; `.example.com` also covers its subdomains.
    names: Vec<String>,
    /// Whether any IP address is accepted, or only loopback ones.
    any_address: bool,
}

impl HostCheck {
    /// `loopback`: the socket is on a loopback address (on another address or a Unix socket,
    /// which no web page can reach, names are checked only when given).
    pub fn new(loopback: bool, allowed: &[String]) -> HostCheck {
        HostCheck {
            rules: (loopback || !allowed.is_empty()).then(|| Rules {
                names: allowed.iter().map(|name| normalise(name)).collect(),
                any_address: !loopback,
            }),
        }
    }

    /// Whether a request naming `host` (None: an HTTP/1.0 request without Host, which no
    /// browser sends) is answered.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let (Some(rules), Some(host)) = (&self.rules, host) else {
            return true;
        };
        let host = normalise(host);
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return rules.any_address || ip.is_loopback();
        }
        host == "localhost"
            || host.ends_with(".localhost")
            || rules.names.iter().any(|name| {
                host == *name
                    || (name.starts_with('.')
                        && (host.ends_with(name.as_str()) || host == name[1..]))
            })
    }
}

/// `Cam.Example.:8080` → `cam.example`; `[::1]:8080` → `[::1]`.
fn normalise(host: &str) -> String {
    let host = host.trim();
    let without_port = match host.rfind(':') {
        // A colon inside brackets belongs to an IPv6 address.
        Some(at)
            if !host[at..].contains(']') && host[at + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &host[..at]
        }
        _ => host,
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(allowed: &[&str]) -> HostCheck {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        HostCheck::new(true, &allowed)
    }

    #[test]
    fn bound_to_loopback_only_loopback_names_and_allowed_ones_pass() {
        let check = loopback(&[]);
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "cam.localhost:1",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(check.allows(Some(ok)), "{ok}");
        }
        for refused in [
            "attacker.example",
            "attacker.example:8080",
            "10.0.0.1",
            "localhost.attacker.example",
            "",
            "[::2]",
        ] {
            assert!(!check.allows(Some(refused)), "{refused}");
        }
        assert!(check.allows(None), "HTTP/1.0 without Host");
        let check = loopback(&["cam.example", ".lan"]);
        assert!(check.allows(Some("Cam.Example:8080")));
        assert!(check.allows(Some("pi.lan")) && check.allows(Some("lan")));
        assert!(!check.allows(Some("cam.example.attacker")));
    }

    #[test]
    fn bound_elsewhere_anything_passes_unless_names_are_given() {
        let any: HostCheck = HostCheck::new(false, &[]);
        assert!(any.allows(Some("attacker.example")));
        let named = HostCheck::new(false, &["cam.example".to_string()]);
        assert!(named.allows(Some("cam.example")));
        assert!(named.allows(Some("192.168.1.5:8080")));
        assert!(named.allows(Some("localhost")));
        assert!(!named.allows(Some("attacker.example")));
    }
}
