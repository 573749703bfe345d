//! A netrc file (`--netrc-file`): the user names and passwords of relayed hosts, kept where
//! `ps` does not show them, as curl and wget read them: `machine HOST login USER password PASS`,
//! a `default` entry for any other host, `account` ignored, `macdef` skipped to its blank line,
//! a value in double quotes with `\` escapes when it holds spaces. Nothing here says a password,
//! not even in an error about the file.

use std::io::Read;
use std::path::Path;

use crate::report::describe_io_error;
use crate::source::file::open_regular;

/// The largest netrc file read: a few hundred hosts fit in far less.
const MAX_SIZE: u64 = 1 << 20;

pub struct Netrc {
    entries: Vec<Entry>,
}

struct Entry {
    /// None for `default`.
    machine: Option<String>,
    login: Option<String>,
    password: Option<String>,
}

impl Netrc {
    /// Reads and parses `path`, a regular file of at most [`MAX_SIZE`] bytes (a FIFO or a
    /// device is refused, not waited on); Err is one line naming the file.
    pub fn read(path: &Path) -> Result<Netrc, String> {
        let cannot = |why: String| format!("cannot read netrc file '{}': {why}", path.display());
        let (file, _) = open_regular(path).map_err(|skip| cannot(skip.describe(MAX_SIZE)))?;
        let mut bytes = Vec::new();
        file.take(MAX_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| cannot(describe_io_error(&e)))?;
        if bytes.len() as u64 > MAX_SIZE {
            return Err(cannot(format!("it is over {MAX_SIZE} bytes")));
        }
        let text = String::from_utf8(bytes).map_err(|_| cannot("it is not UTF-8 text".into()))?;
        Netrc::parse(&text)
            .map_err(|why| format!("netrc file '{}' is not valid: {why}", path.display()))
    }

    fn parse(text: &str) -> Result<Netrc, String> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let mut tokens = Tokens(line);
            while let Some(keyword) = tokens.next()? {
                if keyword.starts_with('#') {
                    break;
                }
                let mut value = |what: &str| {
                    tokens
                        .next()?
                        .ok_or_else(|| format!("'{what}' without a value"))
                };
                match keyword.as_str() {
                    "machine" => entries.push(Entry {
                        machine: Some(value("machine")?),
                        login: None,
                        password: None,
                    }),
                    "default" => entries.push(Entry {
                        machine: None,
                        login: None,
                        password: None,
                    }),
                    "login" | "password" | "account" => {
                        let value = value(&keyword)?;
                        let Some(entry) = entries.last_mut() else {
                            return Err(format!("'{keyword}' before any 'machine'"));
                        };
                        match keyword.as_str() {
                            "login" => entry.login = Some(value),
                            "password" => entry.password = Some(value),
                            _ => {}
                        }
                    }
                    "macdef" => {
                        // A macro runs to the first empty line; its text is not tokens.
                        lines.by_ref().find(|line| line.trim().is_empty());
                        break;
                    }
                    // Never echoed: it may be a password that lost its keyword.
                    _ => return Err("a word that is not a netrc keyword".into()),
                }
            }
        }
        Ok(Netrc { entries })
    }

    /// The login and password for `host`: of the first entry for it (whose login is `user`,
    /// when the URL names one), else of `default`.
    pub fn credentials(&self, host: &str, user: Option<&[u8]>) -> Option<(&str, &str)> {
        let fits = |entry: &&Entry| {
            user.is_none_or(|user| entry.login.as_deref().map(str::as_bytes) == Some(user))
                && entry.password.is_some()
        };
        let for_host = self.entries.iter().filter(|entry| {
            entry
                .machine
                .as_deref()
                .is_some_and(|machine| machine.eq_ignore_ascii_case(host))
        });
        let default = self.entries.iter().filter(|entry| entry.machine.is_none());
        let entry = for_host.chain(default).find(fits)?;
        Some((
            entry.login.as_deref().unwrap_or(""),
            entry.password.as_deref().unwrap_or(""),
        ))
    }
}

/// The tokens of one line: words between blanks, or `"…"` with `\` escaping the next byte.
struct Tokens<'a>(&'a str);

impl Tokens<'_> {
    fn next(&mut self) -> Result<Option<String>, String> {
        let rest = self.0.trim_start();
        let Some(quoted) = rest.strip_prefix('"') else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            self.0 = &rest[end..];
            return Ok((end > 0).then(|| rest[..end].to_string()));
        };
        let mut token = String::new();
        let mut chars = quoted.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.0 = &quoted[at + 1..];
                    return Ok(Some(token));
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => token.push('\n'),
                    Some((_, 'r')) => token.push('\r'),
                    Some((_, 't')) => token.push('\t'),
                    Some((_, c)) => token.push(c),
                    None => break,
                },
                c => token.push(c),
            }
        }
        Err("a quoted value without its closing quote".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_host_then_login_then_default() {
        let netrc = Netrc::parse(
            "# cameras\n\
             machine cam.local login admin password \"se cr\\\"et\" # front door\n\
             machine Cam.Local\n  login viewer\n  password view\n\
             macdef init\nlogin nobody password none\n\n\
             machine other account x login o password p\n\
             default login anon password anon@\n",
        )
        .unwrap();
        assert_eq!(
            netrc.credentials("CAM.local", None),
            Some(("admin", "se cr\"et"))
        );
        assert_eq!(
            netrc.credentials("cam.local", Some(b"viewer")),
            Some(("viewer", "view"))
        );
        assert_eq!(netrc.credentials("other", None), Some(("o", "p")));
        assert_eq!(
            netrc.credentials("elsewhere", None),
            Some(("anon", "anon@"))
        );
        assert_eq!(netrc.credentials("elsewhere", Some(b"admin")), None);
        assert_eq!(Netrc::parse("").unwrap().credentials("cam", None), None);
    }

    #[test]
    fn a_bad_file_is_refused_without_its_words() {
        for bad in [
            "login u password SECRET",
            "machine cam login u password",
            "machine cam login u SECRET",
            "machine cam password \"SECRET",
        ] {
            let why = Netrc::parse(bad).err().expect(bad);
            assert!(!why.contains("SECRET"), "{bad}: {why}");
        }
    }
}
