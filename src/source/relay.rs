//! The relay source: another server's stream or image, fetched over HTTP or HTTPS and published
//! as this server's frames.
//!
//! This is the only code that talks to the upstream. A `multipart/*` response is read part by
//! part (`decode/multipart.rs`), each part published as soon as its bytes are in; any other response is
//! one frame, fetched again every `--poll` with its validators. Everything the upstream sends is
//! hostile: the response head is bounded (8 KiB) and so is every part (`--max-frame`), a type
//! from upstream reaches our heads only as a checked `HeaderValue`, and an image that is not
//! whole is never published. An upstream that fails, ends or goes silent for three keep-alive
//! periods keeps its last frame on show while the relay reconnects with back-off, saying so on
//! stderr once per cause, not once per retry. Credentials, from the URL or a netrc file, go
//! upstream as Basic auth to the URL's own origin (scheme, host and port) and nowhere else:
//! redirects are followed here, not by ureq, so that one to another port or host gets none;
//! every message and `/status` shows the URL without them.
//!
//! Waits between attempts end as the channel closes ([`Channel::pause`]), and so do waits for a
//! silent upstream: a body is read on a thread of its own ([`Detached`]), which hands each read
//! over, so the relay returns at shutdown without waiting for the upstream's next byte. A
//! connection or response head still being waited for holds it up to shutdown's bound.

use std::io::{self, BufReader, Read};
use std::mem;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ureq::http::{HeaderMap, Response, StatusCode};
use ureq::{Agent, Body, Timeout};

use crate::channel::{Channel, Lost, OtherBoundary, SourceState, Waited, seconds};
use crate::decode::complete::is_complete;
use crate::decode::image::sniff_image;
use crate::decode::media::{frame_type, media_type};
use crate::decode::multipart::{self, Parts, boundary_from_content_type};
use crate::frame::NewFrame;
use crate::report::describe_io_error;
use crate::source::Producer;
use crate::source::blocks::{Block, Blocks};
use crate::source::netrc::Netrc;

const USER_AGENT: &str = concat!("pushserve/", env!("CARGO_PKG_VERSION"), " (relay)");
/// Name lookup, then TCP and TLS set-up, each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The response head, from the status line to the blank line.
const MAX_HEAD: usize = 8 * 1024;
/// A single image must be whole by then, however it trickles in.
const SINGLE_FETCH_LIMIT: Duration = Duration::from_secs(300);
/// The idle timeout with `--keepalive` so long that it means none (beyond it, clocks overflow).
const MAX_IDLE: Duration = Duration::from_secs(24 * 3600);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The most one read of a body takes from the upstream.
const READ_SIZE: usize = 64 * 1024;
/// Reads queued between a body's reading thread and the relay: bounds what is held in between.
const QUEUED_READS: usize = 2;
/// Redirects followed in a row, as ureq's default.
const MAX_REDIRECTS: usize = 10;

pub struct RelaySource {
    target: Target,
    /// `Basic …` from the URL's `user:password@`, else from the netrc file; for the URL's own
    /// origin only.
    authorization: Option<String>,
    /// The frame name: the URL's last path segment, else its host.
    name: String,
    poll: Duration,
    /// An upstream silent this long is reconnected: 3 × `--keepalive` (see `Args::keepalive`).
    idle: Duration,
    max_frame: u64,
    once: bool,
    /// The first wait after a failure, doubled after each one up to [`MAX_BACKOFF`].
    first_backoff: Duration,
}

/// The checked URL, split so that its credentials are kept apart from everything shown.
struct Target {
    https: bool,
    /// `host[:port]`, without credentials.
    authority: String,
    /// Without port or IPv6 brackets.
    host: String,
    /// The one given, else the scheme's.
    port: u16,
    /// Path and query, from `/` on; the fragment is dropped (it never goes to a server).
    path: String,
    /// From the URL's `user:password@`, percent-decoded.
    user: Option<Vec<u8>>,
    password: Option<Vec<u8>>,
}

impl RelaySource {
    /// Checks the URL (http or https, a host); Err is a one-line reason for exit 2. A URL
    /// without a password takes its credentials from `netrc`, if it has some for the host.
    pub fn new(
        url: &str,
        poll: Duration,
        keepalive: Duration,
        max_frame: u64,
        once: bool,
        netrc: Option<&Netrc>,
    ) -> Result<RelaySource, String> {
        let target = Target::parse(url)?;
        let authorization = match (&target.user, &target.password) {
            (Some(user), Some(password)) => Some(basic(user, password)),
            (user, None) => netrc
                .and_then(|netrc| netrc.credentials(&target.host, user.as_deref()))
                .map(|(login, password)| basic(login.as_bytes(), password.as_bytes()))
                .or_else(|| user.as_deref().map(|user| basic(user, b""))),
            (None, Some(_)) => None,
        };
        let name = target
            .path
            .split('?')
            .next()
            .and_then(|path| path.rsplit('/').next())
            .filter(|segment| !segment.is_empty())
            .map(|segment| String::from_utf8_lossy(&percent_decode(segment)).into_owned())
            .unwrap_or_else(|| target.host.clone());
        Ok(RelaySource {
            target,
            authorization,
            name,
            poll,
            idle: keepalive
                .saturating_mul(3)
                .clamp(Duration::from_millis(100), MAX_IDLE),
            max_frame,
            once,
            first_backoff: FIRST_BACKOFF,
        })
    }

    /// The URL without credentials, for /status and messages: nor the values of query
    /// parameters that look like secrets (`?user=admin&pwd=…`, as many cameras take them).
    pub fn display_url(&self) -> String {
        let url = self.target.url();
        let Some((path, query)) = url.split_once('?') else {
            return url;
        };
        let shown: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_secret(key) => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        format!("{path}?{}", shown.join("&"))
    }

    /// The host, for the source's default name.
    pub fn host(&self) -> String {
        self.target.host.clone()
    }

    fn agent(&self) -> Agent {
        Agent::config_builder()
            // A 404 is an answer to report, not an opaque error.
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_send_request(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(self.idle))
            // The idle timeout: restarts with every read, so an endless body is never cut short.
            .timeout_per_read(Some(self.idle))
            .max_response_header_size(MAX_HEAD)
            // Followed in `Relay::request`, which knows whose credentials are whose.
            .max_redirects(0)
            // Connect directly: proxy variables meant for other tools do not reroute a camera.
            .proxy(None)
            .build()
            .into()
    }
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let Some(scheme) = url_scheme(url) else {
            return Err("a relay URL starts with http:// or https://".into());
        };
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => {
                return Err(format!(
                    "cannot relay {scheme}:// URLs, only http:// and https://"
                ));
            }
        };
        let rest = &url[scheme.len() + "://".len()..];
        let rest = rest.split('#').next().unwrap_or("");
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let (userinfo, authority) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').unwrap_or((v6, "")),
            None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
        };
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        // The user name ends at the first colon (RFC 7617); the password may hold more.
        let (user, password) = match userinfo.map(|u| u.split_once(':').ok_or(u)) {
            None => (None, None),
            Some(Ok((user, password))) => (Some(user), Some(password)),
            Some(Err(user)) => (Some(user), None),
        };
        let mut target = Target {
            https,
            authority: authority.to_string(),
            host: host.to_string(),
            port: if https { 443 } else { 80 },
            path,
            user: user.map(percent_decode),
            password: password.map(percent_decode),
        };
        if target.host.is_empty() {
            return Err(format!("'{}' names no host", target.url()));
        }
        if let Some(port) = port.strip_prefix(':') {
            match port.parse() {
                Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => target.port = n,
                _ => return Err(format!("'{}' has no valid port", target.url())),
            }
        } else if !port.is_empty() {
            return Err(format!("'{}' is not a valid URL", target.url()));
        }
        ureq::http::Uri::try_from(target.url())
            .map_err(|e| format!("'{}' is not a valid URL: {e}", target.url()))?;
        Ok(target)
    }

    /// The URL as requested and shown: without credentials or fragment.
    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path)
    }

    /// Whether `other` is on the same origin (scheme, host and port): where credentials may go.
    fn same_origin(&self, other: &Target) -> bool {
        self.https == other.https
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }

    /// Where a redirect's `Location` leads from here: an absolute URL, or one relative to this
    /// one (dot segments are left to the server).
    fn resolve(&self, location: &str) -> String {
        let location = location.trim();
        let scheme = if self.https { "https" } else { "http" };
        let path = self.path.split('?').next().unwrap_or("/");
        if url_scheme(location).is_some() {
            location.to_string()
        } else if let Some(rest) = location.strip_prefix("//") {
            format!("{scheme}://{rest}")
        } else if location.starts_with('/') {
            format!("{scheme}://{}{location}", self.authority)
        } else if location.starts_with('?') {
            format!("{scheme}://{}{path}{location}", self.authority)
        } else {
            let folder = &path[..path.rfind('/').map_or(0, |at| at + 1)];
            format!("{scheme}://{}{folder}{location}", self.authority)
        }
    }
}

/// The scheme of `text` if it starts like a URL, `scheme://` (RFC 3986's letters for a scheme).
pub fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    (chars.next()?.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    .then_some(scheme)
}

/// Whether a query parameter's name says its value is a secret.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "key", "auth", "sig"]
        .iter()
        .any(|word| key.contains(word))
}

/// Shows the URL without credentials, like everything else.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

impl Producer for RelaySource {
    fn run(self: Box<Self>, channel: &Channel) {
        Relay::new(*self, channel).run();
    }
}

/// What one request to the upstream came to.
enum Outcome {
    /// Return: the channel closed, or `once` has what it needs.
    Done,
    /// A single image was looked at: look again after `--poll`.
    Poll,
    /// The upstream failed or ended, or sent what cannot be shown.
    Lost(Trouble),
}

/// Why the upstream was lost, for stderr and `/status`, and the cause that is said once. The
/// cause is the words themselves, but for TLS errors, whose words may hold the time of the
/// attempt (an expired certificate's do): there it is the kind of error.
#[derive(Clone)]
struct Trouble {
    why: Lost,
    cause: String,
}

impl Trouble {
    /// The upstream ended its answer.
    fn ended() -> Trouble {
        Trouble {
            cause: Lost::Ended.to_string(),
            why: Lost::Ended,
        }
    }
}

impl From<String> for Trouble {
    fn from(why: String) -> Trouble {
        Trouble {
            cause: why.clone(),
            why: Lost::Failed(why),
        }
    }
}

impl From<&str> for Trouble {
    fn from(why: &str) -> Trouble {
        Trouble::from(why.to_string())
    }
}

/// What the last single image said to ask with next time, so an unchanged one costs a 304.
#[derive(Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
    /// Why the version they name was not shown (over `--max-frame`): a 304 says it still is.
    refused: Option<Trouble>,
}

impl Validators {
    fn of(headers: &HeaderMap) -> Validators {
        let get = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Validators {
            etag: get("etag"),
            last_modified: get("last-modified"),
            refused: None,
        }
    }

    fn any(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

/// The running relay: the source, its HTTP client and what it has said.
struct Relay<'a> {
    source: RelaySource,
    agent: Agent,
    channel: &'a Channel,
    /// What is wrong with the upstream, as last said on stderr; None once frames flow.
    trouble: Option<Trouble>,
    /// The wait before the next attempt after a failure.
    backoff: Duration,
    /// Whether `/status` says "connected".
    connected: bool,
    validators: Validators,
    /// What was last said about a part or image that was skipped, until a frame is published.
    skipped: Option<String>,
    /// What was said about the upstream's multipart framing: each once.
    framing_said: Vec<String>,
}

impl Relay<'_> {
    fn new(source: RelaySource, channel: &Channel) -> Relay<'_> {
        Relay {
            agent: source.agent(),
            backoff: source.first_backoff,
            source,
            channel,
            trouble: None,
            connected: false,
            validators: Validators::default(),
            skipped: None,
            framing_said: Vec::new(),
        }
    }

    fn run(&mut self) {
        self.channel.set_state(Some(SourceState::Connecting));
        while !self.channel.is_closed() {
            match self.fetch() {
                Outcome::Done => return,
                Outcome::Poll => {
                    if !self.channel.pause(self.source.poll) {
                        return;
                    }
                }
                Outcome::Lost(trouble) => {
                    let wait = self.backoff;
                    self.lost(trouble, wait);
                    if !self.channel.pause(wait) {
                        return;
                    }
                    self.backoff = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One request, and the frames in its answer.
    fn fetch(&mut self) -> Outcome {
        let response = match self.request() {
            Ok(response) => response,
            Err(trouble) => return Outcome::Lost(trouble),
        };
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && self.validators.any() {
            if let Some(refused) = &self.validators.refused {
                return Outcome::Lost(refused.clone());
            }
            self.set_connected();
            self.alive();
            return self.after_single();
        }
        if !status.is_success() {
            return Outcome::Lost(
                format!(
                    "upstream answered {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .trim_end()
                .into(),
            );
        }
        if let Some(encoding) = unasked_encoding(response.headers()) {
            return Outcome::Lost(
                format!(
                    "upstream sent Content-Encoding: {encoding}, which pushserve does not decode"
                )
                .into(),
            );
        }
        self.set_connected();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let is_multipart = content_type
            .as_deref()
            .is_some_and(|t| media_type(t).starts_with("multipart/"));
        if is_multipart {
            self.validators = Validators::default();
            let Some(boundary) = content_type.as_deref().and_then(boundary_from_content_type)
            else {
                return Outcome::Lost("upstream sent a multipart type without a boundary".into());
            };
            return self.stream(response.into_body(), &boundary);
        }
        let validators = Validators::of(response.headers());
        self.single(response.into_body(), content_type.as_deref(), validators)
    }

    /// GETs the URL with the validators, and follows redirects itself: the credentials go along
    /// only to the URL's own origin, never to another port, host or scheme it redirects to.
    fn request(&self) -> Result<Response<Body>, Trouble> {
        let origin = &self.source.target;
        let mut target: Option<Target> = None;
        for _ in 0..=MAX_REDIRECTS {
            let here = target.as_ref().unwrap_or(origin);
            let mut request = self.agent.get(here.url());
            if let Some(authorization) = &self.source.authorization
                && here.same_origin(origin)
            {
                request = request.header("Authorization", authorization);
            }
            if let Some(etag) = &self.validators.etag {
                request = request.header("If-None-Match", etag);
            }
            if let Some(modified) = &self.validators.last_modified {
                request = request.header("If-Modified-Since", modified);
            }
            let response = request
                .call()
                .map_err(|e| describe_error(&e, self.source.idle))?;
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok());
            let redirected = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
            let Some(location) = location.filter(|_| redirected) else {
                return Ok(response);
            };
            // The Location is the upstream's: never shown, it may hold anything.
            let next = Target::parse(&here.resolve(location))
                .map_err(|_| "upstream redirected to a URL that cannot be relayed")?;
            target = Some(next);
        }
        Err("upstream redirected too many times".into())
    }

    /// Publishes each part of a multipart body as it comes, until it ends or fails.
    fn stream(&mut self, body: Body, boundary: &str) -> Outcome {
        let body = match Detached::spawn(body.into_reader(), self.channel) {
            Ok(body) => body,
            Err(e) => return Outcome::Lost(format!("cannot read upstream: {e}").into()),
        };
        let reader = BufReader::with_capacity(64 * 1024, body);
        let mut parts = Parts::new(reader, boundary, self.source.max_frame);
        loop {
            if self.channel.is_closed() {
                return Outcome::Done;
            }
            let next = parts.next_part();
            for notice in parts.take_notices() {
                self.say_framing(&notice);
            }
            match next {
                Ok(Some(part)) => {
                    self.alive();
                    if let Some(encoding) = part.header("content-encoding").and_then(unasked) {
                        self.skip(format!(
                            "upstream sent a part with Content-Encoding: {encoding}, which \
                             pushserve does not decode; skipped it"
                        ));
                        continue;
                    }
                    let declared = part.header("content-type").map(str::to_string);
                    self.offer(part.body, declared.as_deref());
                }
                Ok(None) => return self.ended(),
                Err(multipart::Error::TooLarge { limit }) => {
                    self.alive();
                    self.skip(format!(
                        "upstream sent a part over --max-frame {limit} bytes; skipped it"
                    ));
                }
                Err(multipart::Error::Malformed(why)) => {
                    return Outcome::Lost(
                        format!("upstream sent a malformed stream: {why}").into(),
                    );
                }
                Err(multipart::Error::Io(_)) if self.channel.is_closed() => return Outcome::Done,
                Err(multipart::Error::Io(e)) => match describe_read_error(e, self.source.idle) {
                    None => return self.ended(),
                    Some(why) => return Outcome::Lost(why),
                },
            }
        }
    }

    /// A single image: bounded, whole, and published if it differs from the last frame. One
    /// over `--max-frame` is refused as an error is, with back-off, so that a page that never
    /// says its length is not downloaded in full every `--poll`.
    fn single(&mut self, body: Body, declared: Option<&str>, validators: Validators) -> Outcome {
        let max = self.source.max_frame;
        if let Some(length) = body.content_length().filter(|&n| n > max) {
            let what = shown_type(declared, &[]);
            return self.refuse(
                format!("upstream sent {what} of {length} bytes, over --max-frame {max}"),
                validators,
            );
        }
        let mut bytes = Vec::new();
        let reader = Deadline {
            inner: match Detached::spawn(body.into_reader(), self.channel) {
                Ok(body) => body,
                Err(e) => return Outcome::Lost(format!("cannot read upstream: {e}").into()),
            },
            at: Instant::now() + SINGLE_FETCH_LIMIT,
        };
        // One byte more than allowed tells an image over --max-frame.
        if let Err(e) = reader.take(max.saturating_add(1)).read_to_end(&mut bytes) {
            if self.channel.is_closed() {
                return Outcome::Done;
            }
            return Outcome::Lost(
                describe_read_error(e, self.source.idle)
                    .unwrap_or_else(|| "upstream ended the image early".into()),
            );
        }
        if bytes.len() as u64 > max {
            let what = shown_type(declared, &bytes);
            return self.refuse(
                format!("upstream sent {what} over --max-frame {max} bytes"),
                validators,
            );
        }
        self.alive();
        if self.offer(bytes, declared) {
            self.validators = validators;
        }
        self.after_single()
    }

    /// Lost for `why`, which the validators of the version refused keep saying while it stays.
    fn refuse(&mut self, why: String, validators: Validators) -> Outcome {
        let trouble = Trouble::from(why);
        self.validators = Validators {
            refused: Some(trouble.clone()),
            ..validators
        };
        Outcome::Lost(trouble)
    }

    fn after_single(&self) -> Outcome {
        if self.source.once && self.channel.latest.current().is_some() {
            Outcome::Done
        } else {
            Outcome::Poll
        }
    }

    /// The upstream ended its answer: with `once`, that is the end; else, reconnect.
    fn ended(&self) -> Outcome {
        if self.source.once {
            Outcome::Done
        } else {
            Outcome::Lost(Trouble::ended())
        }
    }

    /// Publishes `bytes` unless they are not whole or are the frame already shown; whether they
    /// are now the current frame.
    fn offer(&mut self, bytes: Vec<u8>, declared: Option<&str>) -> bool {
        let content_type = frame_type(declared, &bytes);
        if !is_complete(content_type.as_str(), &bytes) {
            self.skip(format!(
                "upstream sent an incomplete {content_type}; skipped it"
            ));
            return false;
        }
        let last = self.channel.latest.current();
        if last.is_some_and(|last| last.content_type == content_type && last.bytes[..] == bytes[..])
        {
            // Our own origin repeats an unchanged frame for OpenCV; nothing new for our clients.
            return true;
        }
        self.channel.publish(NewFrame {
            bytes: bytes.into(),
            content_type,
            name: self.source.name.clone(),
            modified: SystemTime::now(),
        });
        self.skipped = None;
        true
    }

    /// Says once what the multipart parser got round; another boundary also goes to `/status`.
    fn say_framing(&mut self, notice: &multipart::Notice) {
        let (message, state) = match notice {
            multipart::Notice::LengthMismatch { part } => (
                format!(
                    "upstream's part {part} has a Content-Length that does not match its body; \
                     finding parts by boundary"
                ),
                None,
            ),
            multipart::Notice::OtherBoundary {
                given,
                found,
                at_start,
            } => {
                let framing = OtherBoundary {
                    found: found.clone(),
                    given: given.clone(),
                    named_by_header: *at_start,
                };
                (
                    format!(
                        "upstream's parts are delimited by --{found}, not by {}; following --{found}",
                        framing.named()
                    ),
                    Some(framing),
                )
            }
        };
        if let Some(framing) = state {
            self.channel.set_state(Some(SourceState::Connected {
                framing: Some(framing),
            }));
        }
        if !self.framing_said.contains(&message) {
            self.channel.warn(message.clone());
            self.framing_said.push(message);
        }
    }

    /// Warns once about a skipped part or image, until one is published.
    fn skip(&mut self, why: String) {
        if self.skipped.as_ref() != Some(&why) {
            self.channel.warn(why.clone());
            self.skipped = Some(why);
        }
    }

    fn set_connected(&mut self) {
        if !self.connected {
            self.channel
                .set_state(Some(SourceState::Connected { framing: None }));
            self.connected = true;
        }
    }

    /// The upstream delivered: back-off starts over, and a failure said is said to be over.
    fn alive(&mut self) {
        self.backoff = self.source.first_backoff;
        if self.trouble.take().is_some() {
            self.channel.note("upstream is back");
        }
    }

    /// Says why the upstream was lost (once per cause, not once per retry) and sets the state.
    fn lost(&mut self, trouble: Trouble, wait: Duration) {
        self.channel.set_state(Some(SourceState::Retrying {
            after: wait,
            why: trouble.why.clone(),
        }));
        self.connected = false;
        if self.trouble.as_ref().map(|t| &t.cause) != Some(&trouble.cause) {
            let message = format!(
                "{}; keeping the last frame, retrying in {}",
                trouble.why,
                seconds(wait)
            );
            match trouble.why {
                // A stream that ends is no failure.
                Lost::Ended => self.channel.note(message),
                Lost::Failed(_) => self.channel.warn(message),
            }
            self.trouble = Some(trouble);
        }
    }
}

/// A body read on a thread of its own (`blocks.rs`), so a read here fails as soon as the
/// channel closes, even while the upstream is silent.
struct Detached<'a> {
    blocks: Blocks,
    block: Vec<u8>,
    /// How much of `block` has been read.
    at: usize,
    channel: &'a Channel,
}

impl<'a> Detached<'a> {
    fn spawn(body: impl Read + Send + 'static, channel: &'a Channel) -> io::Result<Detached<'a>> {
        Ok(Detached {
            blocks: Blocks::spawn("relay body", body, READ_SIZE, QUEUED_READS)?,
            block: Vec::new(),
            at: 0,
            channel,
        })
    }
}

impl Read for Detached<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            match self.blocks.next(self.channel, None) {
                // No deadline: it can only be the close.
                Waited::Closed | Waited::Due => {
                    return Err(io::Error::other("the server is closing"));
                }
                Waited::Found(Block::Bytes(block)) => (self.block, self.at) = (block, 0),
                Waited::Found(Block::Failed(e)) => return Err(e),
                Waited::Found(Block::End) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A reader that fails once `at` has passed, so an image trickled in byte by byte ends.
struct Deadline<R> {
    inner: R,
    at: Instant,
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() >= self.at {
            return Err(io::Error::new(io::ErrorKind::TimedOut, TooSlow));
        }
        self.inner.read(buf)
    }
}

/// The error of a [`Deadline`] that has passed.
#[derive(Debug)]
struct TooSlow;

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upstream took over {} s to send one image",
            SINGLE_FETCH_LIMIT.as_secs()
        )
    }
}

impl std::error::Error for TooSlow {}

/// Why a request failed, in a few words for stderr and `/status`.
fn describe_error(e: &ureq::Error, idle: Duration) -> Trouble {
    let tls = match e {
        // What the TLS layer refused reaches us as invalid data.
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::InvalidData => e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        ureq::Error::Rustls(e) => Some(e),
        _ => None,
    };
    if let Some(tls) = tls {
        let kind = match tls {
            rustls::Error::InvalidCertificate(why) => format!("{:?}", mem::discriminant(why)),
            tls => format!("{:?}", mem::discriminant(tls)),
        };
        return Trouble {
            why: Lost::Failed(format!("cannot reach upstream: TLS: {tls}")),
            cause: format!("TLS {kind}"),
        };
    }
    Trouble::from(match e {
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
            format!("cannot reach upstream: TLS: {e}")
        }
        ureq::Error::Io(e) => format!(
            "cannot reach upstream: {}",
            lower_first(&describe_io_error(e))
        ),
        ureq::Error::HostNotFound => "cannot reach upstream: host not found".into(),
        ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => {
            "cannot reach upstream: timed out".into()
        }
        ureq::Error::Timeout(_) => format!("upstream sent nothing for {}", seconds(idle)),
        ureq::Error::Tls(why) => format!("cannot reach upstream: TLS: {why}"),
        ureq::Error::Protocol(why) => format!("upstream does not answer in HTTP/1.1: {why}"),
        ureq::Error::LargeResponseHeader(..) => {
            format!("upstream sent a response head over {} KiB", MAX_HEAD / 1024)
        }
        e => format!("upstream failed: {e}"),
    })
}

/// Why reading a body failed; None: the upstream closed it (an end, not a failure).
fn describe_read_error(e: io::Error, idle: Duration) -> Option<Trouble> {
    if e.get_ref().is_some_and(|inner| inner.is::<TooSlow>()) {
        return Some(TooSlow.to_string().into());
    }
    match ureq::Error::from(e) {
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
        ureq::Error::Io(e) if e.kind() != io::ErrorKind::InvalidData => Some(
            format!(
                "upstream connection failed: {}",
                lower_first(&describe_io_error(&e))
            )
            .into(),
        ),
        e => Some(describe_error(&e, idle)),
    }
}

/// A `Content-Encoding` of `headers` that was not asked for (none is: ureq is built without
/// decoders), as shown in a message.
fn unasked_encoding(headers: &HeaderMap) -> Option<String> {
    unasked(headers.get("content-encoding")?.to_str().unwrap_or("?"))
}

/// `encoding` as shown, unless it is none (`identity`).
fn unasked(encoding: &str) -> Option<String> {
    let encoding = encoding.trim();
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return None;
    }
    let token = encoding.len() <= 32
        && encoding
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,+ ".contains(&b));
    Some(if token { encoding } else { "?" }.to_string())
}

/// What a response not shown was, for a message: its declared media type if it is one, else
/// what its bytes are, else "a response".
fn shown_type(declared: Option<&str>, bytes: &[u8]) -> String {
    let declared = declared.map(media_type).filter(|t| {
        t.len() <= 64
            && t.split_once('/').is_some_and(|(kind, sub)| {
                [kind, sub].iter().all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
                })
            })
    });
    declared
        .or_else(|| sniff_image(bytes).map(str::to_string))
        .unwrap_or_else(|| "a response".into())
}

/// "Connection refused" → "connection refused", for the middle of a sentence.
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => first
            .to_lowercase()
            .chain(text[first.len_utf8()..].chars())
            .collect(),
        _ => text.to_string(),
    }
}

/// `%XX` decoded; a `%` not followed by two hex digits stays as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(text).collect()
}

/// The `Authorization` value of Basic credentials (RFC 7617).
fn basic(user: &[u8], password: &[u8]) -> String {
    format!("Basic {}", STANDARD.encode([user, b":", password].concat()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::SourceKind;
    use std::io::{BufRead, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread;

    const RED: &[u8] = include_bytes!("../../tests/fixtures/red.jpg");
    const BLUE: &[u8] = include_bytes!("../../tests/fixtures/blue.jpg");
    const PNG: &[u8] = include_bytes!("../../tests/fixtures/red.png");

    fn channel() -> Arc<Channel> {
        Channel::for_test(SourceKind::Relay)
    }

    /// A fake upstream on 127.0.0.1: each connection in turn is handed to `serve` with its
    /// request head (lower-cased) and the stream; it ends when `serve` returns false.
    fn upstream(
        mut serve: impl FnMut(usize, String, TcpStream) -> bool + Send + 'static,
    ) -> (u16, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let stream = stream.unwrap();
                let mut reader = io::BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                while reader.read_line(&mut head).unwrap() > 2 {}
                if !serve(n, head.to_ascii_lowercase(), stream) {
                    return;
                }
            }
        });
        (port, thread)
    }

    fn source(url: &str, keepalive_ms: u64, max_frame: u64, once: bool) -> RelaySource {
        let mut source = RelaySource::new(
            url,
            Duration::from_millis(30),
            Duration::from_millis(keepalive_ms),
            max_frame,
            once,
            None,
        )
        .unwrap();
        source.first_backoff = Duration::from_millis(20);
        source
    }

    /// Waits (5 s at most) until `done`.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn seq(channel: &Channel) -> u64 {
        channel.latest.current().map_or(0, |f| f.seq)
    }

    fn state(channel: &Channel) -> String {
        channel.state().map(|s| s.to_string()).unwrap_or_default()
    }

    const MULTIPART_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
        Content-Type: multipart/x-mixed-replace; boundary=B\r\nConnection: close\r\n\r\n";

    fn part(content_type: &str, body: &[u8]) -> Vec<u8> {
        let mut part = format!(
            "--B\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        part.extend_from_slice(body);
        part.extend_from_slice(b"\r\n");
        part
    }

    #[test]
    fn each_part_is_published_before_the_next_delimiter_arrives() {
        let channel = channel();
        let seen = Arc::clone(&channel);
        let (port, upstream) = upstream(move |_, _, mut s| {
            s.write_all(MULTIPART_HEAD).unwrap();
            // Part 1 and the start of the next delimiter only: the rest comes after frame 1.
            s.write_all(b"--B\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\none\r\n--B")
                .unwrap();
            wait_until("frame 1", || seq(&seen) == 1);
            s.write_all(b"\r\nX-Keepalive: 1\r\nContent-Type: image/jpeg\r\n")
                .unwrap();
            s.write_all(format!("Content-Length: {}\r\n\r\n", RED.len()).as_bytes())
                .unwrap();
            s.write_all(RED).unwrap();
            s.write_all(b"\r\n--B").unwrap();
            wait_until("frame 2", || seq(&seen) == 2);
            // A type with a control byte never reaches a head: the bytes say what it is.
            s.write_all(b"\r\nContent-Type: image/png\x01\r\n").unwrap();
            s.write_all(format!("Content-Length: {}\r\n\r\n", PNG.len()).as_bytes())
                .unwrap();
            s.write_all(PNG).unwrap();
            s.write_all(b"\r\n--B--\r\n").unwrap();
            false
        });
        let url = format!("http://127.0.0.1:{port}/live/stream.mjpg?fps=5");
        let mut relay = Relay::new(source(&url, 10_000, 1 << 20, true), &channel);
        let started = Instant::now();
        relay.run();
        assert!(started.elapsed() < Duration::from_secs(4));
        upstream.join().unwrap();
        let frame = channel.latest.current().unwrap();
        assert_eq!(frame.seq, 3);
        assert_eq!(frame.content_type.as_str(), "image/png");
        assert_eq!(&frame.bytes[..], PNG);
        assert_eq!(frame.name, "stream.mjpg");
        let jpeg = channel
            .latest
            .newest_where(|f| f.content_type.as_str() == "image/jpeg")
            .unwrap();
        assert_eq!((jpeg.seq, &jpeg.bytes[..]), (2, RED));
        let text = channel
            .latest
            .newest_where(|f| f.content_type.as_str() == "text/plain")
            .unwrap();
        assert_eq!((text.seq, &text.bytes[..]), (1, &b"one"[..]));
        assert_eq!(channel.recorded().lines(), Vec::<String>::new());
        assert_eq!(state(&channel), "connected");
    }

    #[test]
    fn a_plain_image_is_polled_with_its_validators() {
        let (requests, heads) = mpsc::channel();
        let (port, upstream) = upstream(move |n, head, mut s| {
            let answer: Vec<u8> = match n {
                0 => [
                    &b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nConnection: close\r\n"[..],
                    format!("Content-Length: {}\r\n\r\n", RED.len()).as_bytes(),
                    RED,
                ]
                .concat(),
                // Unchanged bytes under a new tag: not published again.
                1 | 2 => [
                    &b"HTTP/1.1 200 OK\r\nETag: \"v2\"\r\nConnection: close\r\n"[..],
                    format!("Content-Length: {}\r\n\r\n", RED.len()).as_bytes(),
                    RED,
                ]
                .concat(),
                3 => b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_vec(),
                _ => [
                    &b"HTTP/1.1 200 OK\r\nETag: \"v3\"\r\nContent-Type: image/jpeg\r\n"[..],
                    format!(
                        "Connection: close\r\nContent-Length: {}\r\n\r\n",
                        BLUE.len()
                    )
                    .as_bytes(),
                    BLUE,
                ]
                .concat(),
            };
            s.write_all(&answer).unwrap();
            requests.send(head).is_ok() && n < 4
        });
        let channel = channel();
        let url = format!("http://127.0.0.1:{port}");
        thread::scope(|scope| {
            let relay = scope.spawn(|| {
                let mut relay = Relay::new(source(&url, 10_000, 1 << 20, false), &channel);
                relay.run();
                channel.recorded().lines()
            });
            let first = heads.recv().unwrap();
            assert!(!first.contains("if-none-match"), "{first}");
            wait_until("frame 1", || seq(&channel) == 1);
            let sniffed = channel.latest.current().unwrap().content_type.clone();
            assert_eq!(
                sniffed.as_str(),
                "image/jpeg",
                "no Content-Type: the bytes say"
            );
            assert!(heads.recv().unwrap().contains("if-none-match: \"v1\"\r\n"));
            assert!(heads.recv().unwrap().contains("if-none-match: \"v2\"\r\n"));
            let fourth = heads.recv().unwrap();
            assert!(fourth.contains("if-none-match: \"v2\"\r\n"), "{fourth}");
            assert_eq!(
                seq(&channel),
                1,
                "a 304 and unchanged bytes publish nothing"
            );
            let fifth = heads.recv().unwrap();
            assert!(fifth.contains("if-none-match: \"v2\"\r\n"), "{fifth}");
            wait_until("frame 2", || seq(&channel) == 2);
            let frame = channel.latest.current().unwrap();
            assert_eq!(&frame.bytes[..], BLUE);
            assert_eq!(frame.content_type.as_str(), "image/jpeg");
            assert_eq!(frame.name, "127.0.0.1");
            channel.latest.close();
            relay.join().unwrap();
        });
        upstream.join().unwrap();
    }

    #[test]
    fn credentials_go_upstream_as_basic_auth_and_nowhere_else() {
        let (port, upstream) = upstream(move |_, head, mut s| {
            let answer = if head.contains("\r\nauthorization: basic dxnlcjpwyxnz\r\n") {
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
            };
            s.write_all(answer.as_bytes()).unwrap();
            assert!(head.starts_with("get /cam.jpg http/1.1\r\n"), "{head}");
            assert!(head.contains("\r\nuser-agent: pushserve/"), "{head}");
            assert!(head.contains(" (relay)\r\n"), "{head}");
            false
        });
        let url = format!("http://user:pass@127.0.0.1:{port}/cam.jpg");
        let source = source(&url, 10_000, 1 << 20, true);
        assert_eq!(
            source.display_url(),
            format!("http://127.0.0.1:{port}/cam.jpg")
        );
        assert_eq!(source.host(), "127.0.0.1");
        let channel = channel();
        let mut relay = Relay::new(source, &channel);
        relay.run();
        upstream.join().unwrap();
        let frame = channel.latest.current().unwrap();
        assert_eq!(
            (&frame.bytes[..], frame.name.as_str()),
            (&b"ok"[..], "cam.jpg")
        );
    }

    #[test]
    fn urls_are_checked_and_shown_without_credentials() {
        let target = Target::parse("HTTPS://us%40er:p%3Ass:w@[::1]:8443?x=1#frag").unwrap();
        assert_eq!(target.url(), "https://[::1]:8443/?x=1");
        assert_eq!((target.host.as_str(), target.port), ("::1", 8443));
        assert_eq!(target.user.as_deref(), Some(&b"us@er"[..]));
        assert_eq!(target.password.as_deref(), Some(&b"p:ss:w"[..]));
        assert_eq!(basic(b"user", b"pass"), "Basic dXNlcjpwYXNz");
        assert_eq!(basic(b"a", b"b"), "Basic YTpi");
        assert_eq!(basic(b"a", b""), "Basic YTo=");
        assert_eq!(basic(b"", b""), "Basic Og==");
        let cam = Target::parse("http://cam").unwrap();
        assert_eq!((cam.user, cam.password, cam.port), (None, None, 80));
        for bad in [
            "cam.local/x.jpg",
            "ftp://cam/x.jpg",
            "htp://user:secret@cam/x.jpg",
            "user:secret@cam://x",
            "http://user:secret@cam:+80/",
            "http://",
            "http://user:secret@/x",
            "http://user:secret@cam:port/",
            "http://user:secret@cam:99999/",
            "http://user:secret@[::1]x/",
            "http://user:secret@cam/a b",
        ] {
            let why = Target::parse(bad).unwrap_err();
            assert!(
                !why.contains("secret") && !why.contains('\n'),
                "{bad}: {why}"
            );
        }
        let source = RelaySource::new(
            "http://cam.local/",
            Duration::from_secs(1),
            Duration::from_secs(10),
            1,
            false,
            None,
        )
        .unwrap();
        assert_eq!(
            (source.name.as_str(), source.idle),
            ("cam.local", Duration::from_secs(30))
        );
        let camera = RelaySource::new(
            "http://cam/video.cgi?user=admin&pwd=secret&resolution=640&api_key=k",
            Duration::from_secs(1),
            Duration::from_secs(10),
            1,
            false,
            None,
        )
        .unwrap();
        assert_eq!(
            camera.display_url(),
            "http://cam/video.cgi?user=admin&pwd=***&resolution=640&api_key=***"
        );
    }

    /// `%XX` decodes to its byte, whatever it makes; a `%` without two hex digits after it
    /// stays, and so does `+` (not a space outside a form).
    #[test]
    fn credentials_and_names_are_percent_decoded() {
        let target = Target::parse("http://a%zz%4:%C3%a9+%25%00%:x%ff@cam/").unwrap();
        assert_eq!(target.user.as_deref(), Some(&b"a%zz%4"[..]));
        assert_eq!(
            target.password.as_deref(),
            Some(&b"\xc3\xa9+%\0%:x\xff"[..])
        );
        assert_eq!(basic(b"a%zz%4", b"\xff"), "Basic YSV6eiU0Ov8=");
        let name = |url: &str| {
            let relay =
                RelaySource::new(url, Duration::from_secs(1), Duration::ZERO, 1, false, None);
            relay.unwrap().name
        };
        assert_eq!(
            name("http://cam/snap%20shot%2Bone.jpg?x=%41"),
            "snap shot+one.jpg"
        );
        assert_eq!(name("http://cam/a%ff%2.jpg"), "a\u{fffd}%2.jpg");
        assert_eq!(name("http://cam/dir%2Fcam.jpg"), "dir/cam.jpg");
    }

    #[test]
    fn error_statuses_are_said_once_and_retried_until_frames_flow() {
        let channel = channel();
        let (go, gate) = mpsc::channel::<()>();
        let (port, upstream) = upstream(move |n, _, mut s| {
            gate.recv().unwrap();
            let answer = match n {
                0 | 1 => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
                2 => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                3 => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
                _ => "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nback",
            };
            s.write_all(answer.as_bytes()).unwrap();
            n < 4
        });
        let url = format!("http://127.0.0.1:{port}/");
        thread::scope(|scope| {
            let relay = scope.spawn(|| {
                let mut relay = Relay::new(source(&url, 10_000, 1 << 20, true), &channel);
                relay.run();
                channel.recorded().lines()
            });
            // Each state stays until the next answer, which waits for `go`.
            for state_then in [
                "retrying in 20 ms: upstream answered 401 Unauthorized",
                "retrying in 40 ms: upstream answered 401 Unauthorized",
                "retrying in 80 ms: upstream answered 404 Not Found",
                "retrying in 160 ms: upstream answered 500 Internal Server Error",
            ] {
                go.send(()).unwrap();
                wait_until(state_then, || state(&channel) == state_then);
                assert_eq!(seq(&channel), 0);
            }
            go.send(()).unwrap();
            let said = relay.join().unwrap();
            assert_eq!(
                said,
                [
                    "upstream answered 401 Unauthorized; keeping the last frame, retrying in 20 ms",
                    "upstream answered 404 Not Found; keeping the last frame, retrying in 80 ms",
                    "upstream answered 500 Internal Server Error; keeping the last frame, \
                     retrying in 160 ms",
                    "upstream is back",
                ]
            );
        });
        upstream.join().unwrap();
        assert_eq!(&channel.latest.current().unwrap().bytes[..], b"back");
        assert_eq!(state(&channel), "connected");
    }

    #[test]
    fn a_response_over_max_frame_is_refused_until_it_changes() {
        let (port, upstream) = upstream(move |n, head, mut s| {
            let answer = match n {
                0 => "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                      ETag: \"big\"\r\nContent-Length: 4096\r\n\r\n"
                    .to_string(),
                // Still the page refused: said no more, and waited for longer.
                1 => {
                    assert!(head.contains("if-none-match: \"big\"\r\n"), "{head}");
                    "HTTP/1.1 304 Not Modified\r\n\r\n".to_string()
                }
                _ => "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsmol".to_string(),
            };
            s.write_all(answer.as_bytes()).unwrap();
            n < 2
        });
        let channel = channel();
        let url = format!("http://127.0.0.1:{port}/");
        let mut relay = Relay::new(source(&url, 10_000, 1000, true), &channel);
        relay.run();
        upstream.join().unwrap();
        assert_eq!(
            channel.recorded().lines(),
            [
                "upstream sent text/html of 4096 bytes, over --max-frame 1000; keeping the last \
                 frame, retrying in 20 ms",
                "upstream is back",
            ]
        );
        assert_eq!(&channel.latest.current().unwrap().bytes[..], b"smol");
        assert_eq!(relay.backoff, Duration::from_millis(20));
    }

    #[test]
    fn a_silent_upstream_is_reconnected_after_three_keepalives() {
        let channel = channel();
        let (stop, stopped) = mpsc::channel::<()>();
        let mut held = Vec::new();
        let (port, upstream) = upstream(move |n, _, mut s| {
            s.write_all(MULTIPART_HEAD).unwrap();
            s.write_all(&part("image/jpeg", if n == 0 { RED } else { BLUE }))
                .unwrap();
            // Silent but open, until the test is over.
            held.push(s);
            if n == 0 {
                return true;
            }
            let _ = stopped.recv();
            false
        });
        let url = format!("http://127.0.0.1:{port}/");
        thread::scope(|scope| {
            let relay = scope.spawn(|| {
                let mut relay = Relay::new(source(&url, 200, 1 << 20, false), &channel);
                relay.run();
                channel.recorded().lines()
            });
            wait_until("frame 1", || seq(&channel) == 1);
            let first = Instant::now();
            wait_until("frame 2", || seq(&channel) == 2);
            let silence = first.elapsed();
            assert!(silence >= Duration::from_millis(500), "{silence:?}");
            assert!(silence < Duration::from_millis(2000), "{silence:?}");
            assert_eq!(state(&channel), "connected");
            channel.latest.close();
            stop.send(()).unwrap();
            let said = relay.join().unwrap();
            assert_eq!(
                said[..2],
                [
                    "upstream sent nothing for 600 ms; keeping the last frame, retrying in 20 ms",
                    "upstream is back",
                ]
            );
        });
        upstream.join().unwrap();
    }

    #[test]
    fn an_ended_upstream_keeps_its_last_frame() {
        let (port, upstream) = upstream(move |_, _, mut s| {
            s.write_all(MULTIPART_HEAD).unwrap();
            // Repeated as our own origin repeats a frame for OpenCV: published once.
            s.write_all(&part("text/plain", b"last")).unwrap();
            s.write_all(&part("text/plain", b"last")).unwrap();
            s.write_all(b"--B--\r\n").unwrap();
            false
        });
        let channel = channel();
        let url = format!("http://127.0.0.1:{port}/");
        thread::scope(|scope| {
            let relay = scope.spawn(|| {
                let mut relay = Relay::new(source(&url, 10_000, 1 << 20, false), &channel);
                relay.run();
                channel.recorded().lines()
            });
            wait_until("the refused reconnection", || {
                state(&channel).ends_with("cannot reach upstream: connection refused")
            });
            let frame = channel.latest.current().unwrap();
            assert_eq!((frame.seq, &frame.bytes[..]), (1, &b"last"[..]));
            channel.latest.close();
            let said = relay.join().unwrap();
            assert_eq!(
                said,
                [
                    "upstream ended; keeping the last frame, retrying in 20 ms",
                    "cannot reach upstream: connection refused; keeping the last frame, \
                     retrying in 40 ms",
                ]
            );
        });
        upstream.join().unwrap();
    }

    #[test]
    fn truncated_incomplete_encoded_and_oversized_parts_are_not_published() {
        let (port, upstream) = upstream(move |_, _, mut s| {
            s.write_all(MULTIPART_HEAD).unwrap();
            s.write_all(&part("text/plain", &[b'x'; 2000])).unwrap();
            s.write_all(&part("text/plain", b"small")).unwrap();
            s.write_all(
                b"--B\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n\x1f\x8b\x08\0\r\n",
            )
            .unwrap();
            // Whole as a part, but half an image.
            s.write_all(&part("image/jpeg", &BLUE[..BLUE.len() / 2]))
                .unwrap();
            // Declared whole, then the connection closes half-way.
            let head = format!(
                "--B\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                RED.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&RED[..RED.len() / 2]).unwrap();
            false
        });
        let channel = channel();
        let url = format!("http://127.0.0.1:{port}/");
        thread::scope(|scope| {
            let relay = scope.spawn(|| {
                let mut relay = Relay::new(source(&url, 10_000, 1000, false), &channel);
                relay.run();
                channel.recorded().lines()
            });
            // However the cut is reported, the upstream is gone, and then refuses.
            wait_until("the refused reconnection", || {
                state(&channel).ends_with("connection refused")
            });
            channel.latest.close();
            let said = relay.join().unwrap();
            assert_eq!(
                said[..3],
                [
                    "upstream sent a part over --max-frame 1000 bytes; skipped it",
                    "upstream sent a part with Content-Encoding: gzip, which pushserve does not \
                     decode; skipped it",
                    "upstream sent an incomplete image/jpeg; skipped it",
                ]
            );
        });
        upstream.join().unwrap();
        let frame = channel.latest.current().unwrap();
        assert_eq!((frame.seq, &frame.bytes[..]), (1, &b"small"[..]));
    }

    #[test]
    fn whatever_the_upstream_sends_the_relay_goes_on() {
        let answers: [&[u8]; 5] = [
            b"\x00\xff garbage \r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace\r\n\r\n--B\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
              --B\r\nContent-Type: \x1b[31m\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
              --B\r\nX: y\r\n\r\n\xff\xd8\xff\r\n--B\r\n\r\n\r\n--B--",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Long: ",
        ];
        let (port, upstream) = upstream(move |n, _, mut s| {
            let _ = s.write_all(answers[n]);
            if n == 4 {
                let _ = s.write_all(&[b'x'; 9000]);
            }
            n + 1 < answers.len()
        });
        let channel = channel();
        let url = format!("http://127.0.0.1:{port}/");
        thread::scope(|scope| {
            let relay = scope.spawn(|| {
                let mut relay = Relay::new(source(&url, 10_000, 1 << 20, false), &channel);
                relay.run();
                channel.recorded().lines()
            });
            wait_until("the refused reconnection", || {
                state(&channel).ends_with("connection refused")
            });
            channel.latest.close();
            let said = relay.join().unwrap();
            assert!(
                said.iter().any(|s| s.contains("without a boundary")),
                "{said:?}"
            );
            assert!(
                said.iter().any(|s| s.contains("head over 8 KiB")),
                "{said:?}"
            );
        });
        upstream.join().unwrap();
        // A part without a type is not an image unless its bytes say so: nothing whole came.
        if let Some(frame) = channel.latest.current() {
            assert_ne!(frame.content_type.as_str(), "image/jpeg");
            assert!(!frame.content_type.as_str().contains('\x1b'));
        }
    }
}
