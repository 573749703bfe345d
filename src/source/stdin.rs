//! The stdin source (`pushserve -`): frames read from a pipe.
//!
//! What stdin holds is told by its first bytes, unless `--type` says (`decode/format.rs`): a
//! multipart stream (`ffmpeg -f mpjpeg -`) gives a frame per part; concatenated JPEG or PNG
//! images (`ffmpeg -f image2pipe -`) are split by walking each image's structure
//! (`decode/split.rs`); anything else is text, served as a live tail of its last lines
//! (`tail -f app.log | pushserve -`, `decode/tail.rs`). This module reads, waits and publishes;
//! the decoding is in `decode/`. A thread of its own reads stdin in large blocks and hands
//! them over a short queue, so this one can tell when the pipe has nothing more ready (to
//! publish the tail once per burst, not once per line); it waits for them in `Channel::wait`,
//! which each block and the server's close wake, so shutdown ends it at once however silent
//! stdin is. Everything is bounded: no frame past `--max-frame`, the tail's lines in number and
//! length. A truncated image is never published. At the end of stdin the last frame stays
//! served.

use std::io::{self, BufRead, Read};
use std::time::{Duration, Instant, SystemTime};

use crate::channel::{Channel, OtherBoundary, SourceState, Waited};
use crate::decode::complete::is_complete;
use crate::decode::format::{Format, format_for, is_first_boundary_line, sniff_format, text_plain};
use crate::decode::image::Kind;
use crate::decode::media::frame_type;
use crate::decode::multipart::{self, Parts};
use crate::decode::split::{Cut, Images};
use crate::decode::tail::Tail;
use crate::frame::{FrameBytes, NewFrame};
use crate::http::head::HeaderValue;
use crate::source::Producer;
use crate::source::blocks::{Block, Blocks};

/// One read from stdin: a pipe gives at most 64 KiB at a time, a file or a fast pipe more.
const READ_SIZE: usize = 256 * 1024;
/// Reads queued between the reading thread and the source: bounds what is held in between.
const QUEUED_READS: usize = 4;
/// How long the first bytes may wait for the rest of what tells their format.
const DETECT_WAIT: Duration = Duration::from_millis(500);
/// The tail is published at most this often while lines keep coming.
const TAIL_INTERVAL: Duration = Duration::from_millis(50);

const NAME: &str = "stdin";

pub struct StdinSource {
    /// How many lines the text tail shows.
    pub lines: usize,
    /// `--type`: skips detection (see [`format_for`]).
    pub content_type: Option<HeaderValue>,
    pub max_frame: u64,
}

impl Producer for StdinSource {
    fn run(self: Box<Self>, channel: &Channel) {
        serve(io::stdin(), &self, channel);
    }
}

/// Reads frames from `reader` until its end (or until the server closes) and publishes them.
fn serve(reader: impl Read + Send + 'static, source: &StdinSource, channel: &Channel) {
    let mut input = Input::spawn(reader, channel);
    let format = match &source.content_type {
        Some(forced) => format_for(forced),
        None => detect(&mut input),
    };
    let mut out = Out {
        channel,
        published: 0,
        max_frame: source.max_frame,
    };
    match format {
        Format::Multipart { boundary } => parts(&mut input, &boundary, &mut out),
        Format::Images {
            kinds,
            content_type,
        } => images(&mut input, kinds, content_type, &mut out),
        Format::Text(content_type) => tail(&mut input, source.lines, content_type, &mut out),
        Format::Whole(content_type) => whole(&mut input, content_type, &mut out),
    }
    if channel.is_closed() {
        return;
    }
    channel.note(if out.published > 0 {
        "stdin ended; keeping the last frame"
    } else {
        "stdin ended without a frame to show"
    });
}

/// Reads the first bytes until they tell the format (or stop coming for a while: then it is
/// text), and leaves them to be read again.
fn detect(input: &mut Input) -> Format {
    let mut head = Vec::new();
    let format = loop {
        if let Some(format) = sniff_format(&head) {
            break format;
        }
        // Nothing yet: wait as long as it takes (a tail of a quiet log, a terminal). ffmpeg
        // writes its first boundary line on its own, before its first frame is encoded: that
        // line alone waits as long too.
        let patient = head.is_empty() || is_first_boundary_line(&head);
        let deadline = (!patient).then(|| Instant::now() + DETECT_WAIT);
        match input.next(deadline) {
            Next::Bytes(bytes) => head.extend_from_slice(&bytes),
            Next::Idle | Next::End => break Format::Text(text_plain()),
        }
    };
    input.unread(head);
    format
}

/// What [`Input::next`] got.
enum Next {
    Bytes(Vec<u8>),
    /// The deadline passed with nothing read.
    Idle,
    /// Stdin ended (or failed, or the server is closing).
    End,
}

/// What [`Input::receive`] got.
enum Received {
    Block,
    Idle,
    End,
}

/// Stdin as read by its own thread, block by block.
struct Input<'a> {
    /// None: the reading thread could not be started.
    blocks: Option<Blocks>,
    /// Read but not yet taken: what `BufRead` hands out, or put back by [`Input::unread`].
    buf: Vec<u8>,
    at: usize,
    /// Taken in all, so that a parser that gives up can be seen to have made progress.
    taken: u64,
    ended: bool,
    channel: &'a Channel,
}

impl<'a> Input<'a> {
    /// Starts the thread that reads `reader`; it ends at the end of `reader`, or when this
    /// side is gone and the next read is done (a blocking read of a silent stdin ends with
    /// the process). Called on the source's thread, the one that waits for the blocks.
    fn spawn(reader: impl Read + Send + 'static, channel: &'a Channel) -> Input<'a> {
        let blocks = Blocks::spawn("stdin", reader, READ_SIZE, QUEUED_READS)
            .inspect_err(|e| channel.warn(format!("cannot start reading stdin: {e}")))
            .ok();
        Input {
            ended: blocks.is_none(),
            blocks,
            buf: Vec::new(),
            at: 0,
            taken: 0,
            channel,
        }
    }

    /// The next bytes read, waiting until `deadline` (None: as long as it takes).
    fn next(&mut self, deadline: Option<Instant>) -> Next {
        if self.at == self.buf.len() {
            match self.receive(deadline) {
                Received::Block => {}
                Received::Idle => return Next::Idle,
                Received::End => return Next::End,
            }
        }
        let bytes = if self.at == 0 {
            std::mem::take(&mut self.buf)
        } else {
            self.buf.split_off(self.at)
        };
        (self.buf, self.at) = (Vec::new(), 0);
        self.taken += bytes.len() as u64;
        Next::Bytes(bytes)
    }

    /// Waits until `deadline` for the next block into `buf`, all of which has been taken.
    fn receive(&mut self, deadline: Option<Instant>) -> Received {
        while !self.ended {
            let Some(blocks) = &self.blocks else { break };
            match blocks.next(self.channel, deadline) {
                Waited::Found(Block::Bytes(bytes)) => {
                    (self.buf, self.at) = (bytes, 0);
                    return Received::Block;
                }
                Waited::Found(Block::Failed(e)) => self.failed(&e),
                Waited::Found(Block::End) | Waited::Closed => self.ended = true,
                Waited::Due => return Received::Idle,
            }
        }
        Received::End
    }

    /// Whether bytes are ready to be taken without waiting.
    fn ready(&mut self) -> bool {
        self.at < self.buf.len() || matches!(self.receive(Some(Instant::now())), Received::Block)
    }

    /// Puts `bytes` back, to be read before anything else.
    fn unread(&mut self, mut bytes: Vec<u8>) {
        self.taken -= (bytes.len() as u64).min(self.taken);
        bytes.extend_from_slice(&self.buf[self.at..]);
        (self.buf, self.at) = (bytes, 0);
    }

    fn failed(&mut self, e: &io::Error) {
        self.channel.warn(format!("cannot read stdin: {e}"));
        self.ended = true;
    }
}

/// For the multipart parser: stdin as a buffered reader, whose end is stdin's end (a read
/// error has been said already).
impl Read for Input<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        multipart::read_buffered(self, out)
    }
}

impl BufRead for Input<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at == self.buf.len() {
            self.receive(None);
        }
        Ok(&self.buf[self.at..])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.at);
        self.at += n;
        self.taken += n as u64;
    }
}

/// Publishes frames, counting them, and says each kind of trouble once.
struct Out<'a> {
    channel: &'a Channel,
    published: u64,
    max_frame: u64,
}

impl Out<'_> {
    fn publish(&mut self, bytes: &[u8], content_type: HeaderValue, name: &str) {
        // Copied into storage of its own: a large frame gets a mapping (see frame.rs).
        match FrameBytes::read(bytes, bytes.len(), u64::MAX) {
            Ok(bytes) => {
                self.channel.publish(NewFrame {
                    bytes,
                    content_type,
                    name: name.into(),
                    modified: SystemTime::now(),
                });
                self.published += 1;
            }
            Err(e) => self
                .channel
                .warn(format!("cannot keep a frame from stdin: {e}")),
        }
    }

    /// Says `message` if `said` is not yet set, and sets it.
    fn warn_once(&self, said: &mut bool, message: impl FnOnce() -> String) {
        if !*said {
            self.channel.warn(message());
            *said = true;
        }
    }
}

/// A multipart stream: each part is a frame of its own type.
fn parts(input: &mut Input, boundary: &str, out: &mut Out) {
    let mut said = PartsSaid::default();
    // Where the stream was when the parser last gave up, so that one that gives up without
    // reading anything cannot loop.
    let mut gave_up_at = None;
    while let Parsed::GaveUp = read_parts(input, boundary, out, &mut said) {
        if gave_up_at == Some(input.taken) {
            if input.fill_buf().map_or(true, <[u8]>::is_empty) {
                return;
            }
            input.consume(1);
        }
        gave_up_at = Some(input.taken);
    }
}

/// What has been said about the parts of a multipart stream.
#[derive(Default)]
struct PartsSaid {
    too_large: bool,
    incomplete: bool,
    malformed: bool,
    length_mismatch: bool,
    other_boundary: bool,
}

enum Parsed {
    /// The final boundary or the end of stdin (or of the server).
    Ended,
    /// The parser cannot go on: a new one is to look for the next boundary.
    GaveUp,
}

/// Publishes the parts a parser reads from `input`, until it ends or gives up.
fn read_parts(input: &mut Input, boundary: &str, out: &mut Out, said: &mut PartsSaid) -> Parsed {
    let mut parts = Parts::new(input, boundary, out.max_frame);
    while !out.channel.is_closed() {
        let next = parts.next_part();
        for notice in parts.take_notices() {
            say(&notice, out, said);
        }
        let part = match next {
            Ok(Some(part)) => part,
            Ok(None) => break,
            Err(multipart::Error::TooLarge { limit }) => {
                out.warn_once(&mut said.too_large, || {
                    format!("skipping parts on stdin over --max-frame ({limit} bytes)")
                });
                continue;
            }
            Err(multipart::Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                if !out.channel.is_closed() {
                    out.channel
                        .warn("stdin ended in the middle of a part; it was not published");
                }
                break;
            }
            // Not from stdin, whose errors end it (said already): from the parser itself.
            Err(multipart::Error::Io(e)) => {
                out.channel.warn(format!("cannot read stdin: {e}"));
                break;
            }
            Err(multipart::Error::Malformed(why)) => {
                out.warn_once(&mut said.malformed, || {
                    format!(
                        "stdin is not a well-formed multipart stream ({why}); skipping to the next part"
                    )
                });
                return Parsed::GaveUp;
            }
        };
        let content_type = frame_type(part.header("Content-Type"), &part.body);
        if !is_complete(content_type.as_str(), &part.body) {
            out.warn_once(&mut said.incomplete, || {
                format!(
                    "skipping parts on stdin that are not whole images (a {content_type} part of \
                     {} bytes)",
                    part.body.len()
                )
            });
            continue;
        }
        let name = part.file_name().unwrap_or_else(|| NAME.into());
        out.publish(&part.body, content_type, &name);
    }
    Parsed::Ended
}

/// Says what the parser got round, each kind once; another boundary also goes to `/status`.
fn say(notice: &multipart::Notice, out: &Out, said: &mut PartsSaid) {
    match notice {
        multipart::Notice::LengthMismatch { part } => {
            out.warn_once(&mut said.length_mismatch, || {
                format!(
                    "part {part} on stdin has a Content-Length that does not match its body; \
                     finding parts by boundary"
                )
            });
        }
        multipart::Notice::OtherBoundary { given, found, .. } => {
            let state = SourceState::Delimited(OtherBoundary {
                found: found.clone(),
                given: given.clone(),
                named_by_header: false,
            });
            out.warn_once(&mut said.other_boundary, || {
                format!("stdin's parts are delimited by --{found}, not by --{given}; following --{found}")
            });
            out.channel.set_state(Some(state));
        }
    }
}

/// Concatenated images: each whole one is a frame.
fn images(
    input: &mut Input,
    kinds: &'static [Kind],
    content_type: Option<HeaderValue>,
    out: &mut Out,
) {
    let mut images = Images::new(kinds, out.max_frame);
    let mut said = ImagesSaid::default();
    loop {
        publish_images(&mut images, content_type.as_ref(), out, &mut said);
        match input.next(None) {
            Next::Bytes(bytes) => images.append(&bytes),
            Next::Idle => {}
            Next::End => break,
        }
    }
    if let Some(held) = images.unfinished()
        && !out.channel.is_closed()
    {
        out.channel.warn(format!(
            "stdin ended in the middle of an image ({held} bytes of it); it was not published"
        ));
    }
}

/// What has been said about the images on stdin.
#[derive(Default)]
struct ImagesSaid {
    too_large: bool,
    not_image: bool,
}

/// Publishes every whole image read so far (as `content_type` if given), saying once what is
/// skipped.
fn publish_images(
    images: &mut Images,
    content_type: Option<&HeaderValue>,
    out: &mut Out,
    said: &mut ImagesSaid,
) {
    let max_frame = out.max_frame;
    let kinds = images.kinds();
    images.split(|cut| match cut {
        Cut::Image { kind, bytes } => {
            let content_type = content_type
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static(kind.content_type()));
            out.publish(bytes, content_type, NAME);
        }
        Cut::TooLarge => out.warn_once(&mut said.too_large, || {
            format!("skipping images on stdin over --max-frame ({max_frame} bytes)")
        }),
        Cut::NotImage => out.warn_once(&mut said.not_image, || {
            let what = kinds.iter().map(|k| k.content_type()).collect::<Vec<_>>();
            format!(
                "stdin has bytes that are not a whole {} image; skipping to the next image",
                what.join(" or ")
            )
        }),
    });
}

/// All of stdin as one frame of `content_type`, published at its end if it is whole.
fn whole(input: &mut Input, content_type: HeaderValue, out: &mut Out) {
    let mut bytes = Vec::new();
    let mut over = false;
    loop {
        match input.next(None) {
            Next::Bytes(block) if !over => {
                if (bytes.len() + block.len()) as u64 > out.max_frame {
                    out.channel.warn(format!(
                        "stdin is over --max-frame ({} bytes); nothing will be published",
                        out.max_frame
                    ));
                    (bytes, over) = (Vec::new(), true);
                } else {
                    bytes.extend_from_slice(&block);
                }
            }
            // Read to the end all the same, so that what writes to the pipe can finish.
            Next::Bytes(_) | Next::Idle => {}
            Next::End => break,
        }
    }
    if over || out.channel.is_closed() || bytes.is_empty() {
        return;
    }
    if is_complete(content_type.as_str(), &bytes) {
        out.publish(&bytes, content_type, NAME);
    } else {
        out.channel.warn(format!(
            "stdin ended with an incomplete {content_type} ({} bytes); it was not published",
            bytes.len()
        ));
    }
}

/// Text: the last lines as one frame, published again as lines arrive, at most once per
/// burst of reads and once per [`TAIL_INTERVAL`].
fn tail(input: &mut Input, lines: usize, content_type: HeaderValue, out: &mut Out) {
    let mut tail = Tail::new(lines, out.max_frame);
    let mut last_published: Option<Instant> = None;
    loop {
        let now = Instant::now();
        tail.tick(now);
        if let Some(since) = tail.changed_since() {
            let interval_over = last_published.is_none_or(|t| now >= t + TAIL_INTERVAL);
            // Lines still coming: take them in first, unless they have waited long enough. At
            // the end of stdin, the last line is shown whole first.
            if interval_over && (now >= since + TAIL_INTERVAL || !input.ready() && !input.ended) {
                out.publish(&tail.take_frame(), content_type.clone(), NAME);
                last_published = Some(now);
            }
        }
        let publish_at = tail
            .changed_since()
            .map(|_| last_published.map_or(now, |t| t + TAIL_INTERVAL));
        let deadline = [publish_at, tail.partial_due()].into_iter().flatten().min();
        match input.next(deadline) {
            Next::Bytes(bytes) => {
                if let Some(cut) = tail.push(&bytes, Instant::now()) {
                    out.channel.warn(format!(
                        "stdin has lines over {cut} bytes; they are cut to their first {cut}"
                    ));
                }
            }
            Next::Idle => {}
            Next::End => break,
        }
    }
    tail.finish();
    if tail.changed_since().is_some() && !out.channel.is_closed() {
        out.publish(&tail.take_frame(), content_type, NAME);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Recorded, Said, SourceKind};
    use std::io::Cursor;
    use std::sync::mpsc::{self, Receiver, SyncSender};
    use std::thread;

    const RED_JPEG: &[u8] = include_bytes!("../../tests/fixtures/red.jpg");
    const BLUE_JPEG: &[u8] = include_bytes!("../../tests/fixtures/blue.jpg");
    const NOISE1: &[u8] = include_bytes!("../../tests/fixtures/noise1.jpg");
    const NOISE2: &[u8] = include_bytes!("../../tests/fixtures/noise2.jpg");
    const RED_PNG: &[u8] = include_bytes!("../../tests/fixtures/red.png");
    const RED_GIF: &[u8] = include_bytes!("../../tests/fixtures/red.gif");

    fn source(content_type: Option<&'static str>) -> StdinSource {
        StdinSource {
            lines: 50,
            content_type: content_type.map(HeaderValue::from_static),
            max_frame: 1 << 20,
        }
    }

    fn serve_all(input: Vec<u8>, source: &StdinSource) -> Recorded {
        serve_from(Cursor::new(input), source)
    }

    fn serve_from(input: impl Read + Send + 'static, source: &StdinSource) -> Recorded {
        let channel = Channel::for_test(SourceKind::Stdin);
        serve(input, source, &channel);
        channel.recorded()
    }

    /// The content types of the frames published.
    fn types(recorded: &Recorded) -> Vec<String> {
        let frames = recorded.frames.iter();
        frames.map(|f| f.content_type.to_string()).collect()
    }

    /// The notes said, without the warnings.
    fn notes(recorded: &Recorded) -> Vec<String> {
        let note = |said: &Said| match said {
            Said::Note(line) => Some(line.clone()),
            Said::Warning(_) => None,
        };
        recorded.said.iter().filter_map(note).collect()
    }

    /// Waits (5 s at most) until the newest frame is `bytes`.
    fn wait_for_last(channel: &Channel, bytes: &[u8]) {
        let what = format!("the last frame {:?}", String::from_utf8_lossy(bytes));
        channel.wait_recorded(&what, |r| {
            r.frames.last().is_some_and(|f| f.bytes[..] == *bytes)
        });
    }

    /// Waits (5 s at most) until the source has said that stdin ended: it returns next.
    fn wait_ended(channel: &Channel) -> Recorded {
        channel.wait_recorded("the end of stdin", |r| !notes(r).is_empty())
    }

    /// Reads at most `n` bytes at a time, as a pipe does.
    struct Trickle(Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.1);
            self.0.read(&mut out[..n])
        }
    }

    /// A pipe the test writes to: each send is one read; its end when the sender is dropped.
    struct Feed(Receiver<Vec<u8>>, Cursor<Vec<u8>>);

    fn feed() -> (SyncSender<Vec<u8>>, Feed) {
        let (tx, rx) = mpsc::sync_channel(1000);
        (tx, Feed(rx, Cursor::new(Vec::new())))
    }

    impl Read for Feed {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            while self.1.position() == self.1.get_ref().len() as u64 {
                match self.0.recv() {
                    Ok(bytes) => self.1 = Cursor::new(bytes),
                    Err(_) => return Ok(0),
                }
            }
            self.1.read(out)
        }
    }

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn stdin_multipart_parts_are_frames_of_their_own_types() {
        let mut input = Vec::new();
        let mut part = |headers: &str, body: &[u8]| {
            input.extend_from_slice(format!("--ffmpeg\r\n{headers}\r\n").as_bytes());
            input.extend_from_slice(body);
            input.extend_from_slice(b"\r\n");
        };
        let length = format!(
            "Content-type: image/jpeg\r\nContent-length: {}\r\n",
            NOISE1.len()
        );
        part(&length, NOISE1);
        part("Content-Type: image/png\r\n", RED_PNG);
        part(
            "Content-Type: text/plain\r\nContent-Disposition: inline; filename=\"logs/notes.txt\"\r\n",
            b"hello",
        );
        // No type, or one that cannot be a header: the body tells.
        part("", RED_GIF);
        part("Content-Type: image/\x01jpeg\r\n", BLUE_JPEG);
        part("X-Keepalive: 1\r\n", b"%PDF-1.4");
        // A JPEG cut short is never published.
        part("Content-Type: image/jpeg\r\n", &NOISE2[..1000]);
        part("Content-Type: image/jpeg\r\n", RED_JPEG);
        input.extend_from_slice(b"--ffmpeg--\r\n");
        let recording = serve_all(input, &source(None));
        assert_eq!(
            types(&recording),
            [
                "image/jpeg",
                "image/png",
                "text/plain",
                "image/gif",
                "image/jpeg",
                "application/octet-stream",
                "image/jpeg"
            ]
        );
        let frames = &recording.frames;
        assert_eq!(&frames[0].bytes[..], NOISE1);
        assert_eq!(&frames[2].bytes[..], b"hello");
        assert_eq!(frames[2].name, "notes.txt");
        assert_eq!(frames[0].name, "stdin");
        assert_eq!(&frames[4].bytes[..], BLUE_JPEG);
        assert_eq!(&frames[6].bytes[..], RED_JPEG);
        let warnings = recording.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("not whole images"), "{warnings:?}");
        assert_eq!(notes(&recording), ["stdin ended; keeping the last frame"]);
    }

    #[test]
    fn stdin_multipart_as_ffmpeg_ends_it_has_no_torn_part() {
        // ffmpeg -f mpjpeg: lower-case names, each part followed by its boundary, no final one.
        let mut input = Vec::new();
        for image in [RED_JPEG, BLUE_JPEG] {
            let head = format!(
                "--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: {}\r\n\r\n",
                image.len()
            );
            input.extend_from_slice(head.as_bytes());
            input.extend_from_slice(image);
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"--ffmpeg\r\n");
        let recording = serve_all(input.clone(), &source(None));
        assert_eq!(recording.bodies(), [RED_JPEG, BLUE_JPEG]);
        assert!(
            recording.warnings().is_empty(),
            "{:?}",
            recording.warnings()
        );
        // Torn inside a part's head, it is said.
        input.extend_from_slice(b"Content-type: ima");
        let recording = serve_all(input, &source(None));
        assert_eq!(recording.bodies(), [RED_JPEG, BLUE_JPEG]);
        assert_eq!(recording.warnings().len(), 1);
    }

    #[test]
    fn stdin_multipart_goes_on_past_parts_it_cannot_use() {
        let part = |headers: &str, body: &[u8]| {
            [
                format!("--ffmpeg\r\n{headers}\r\n").as_bytes(),
                body,
                b"\r\n",
            ]
            .concat()
        };
        let sized = |body: &[u8]| {
            let length = format!(
                "Content-Type: image/jpeg\r\nContent-Length: {}\r\n",
                body.len()
            );
            part(&length, body)
        };
        let huge_head = format!("X-Padding: {}\r\n", "x".repeat(8500));
        let torn = sized(NOISE2);
        let input = [
            sized(RED_JPEG),
            sized(NOISE1),
            sized(BLUE_JPEG),
            part(&huge_head, b"junk"),
            sized(RED_JPEG),
            torn[..500].to_vec(),
        ]
        .concat();
        let mut small = source(None);
        small.max_frame = 1000;
        for read_size in [READ_SIZE, 100] {
            let recording = serve_from(Trickle(Cursor::new(input.clone()), read_size), &small);
            assert_eq!(recording.bodies(), [RED_JPEG, BLUE_JPEG, RED_JPEG]);
            let warnings = recording.warnings();
            assert_eq!(warnings.len(), 3, "{warnings:?}");
            assert!(warnings[0].contains("over --max-frame (1000 bytes)"));
            assert!(warnings[1].contains("not a well-formed multipart stream"));
            assert!(warnings[2].contains("in the middle of a part"));
        }
    }

    #[test]
    fn stdin_concatenated_images_are_one_frame_each_in_order() {
        let images: [&[u8]; 5] = [NOISE1, RED_JPEG, RED_PNG, NOISE2, BLUE_JPEG];
        for read_size in [READ_SIZE, 1000, 3] {
            let input = Trickle(Cursor::new(concat(&images)), read_size);
            let recording = serve_from(input, &source(None));
            assert_eq!(recording.bodies(), images, "reads of {read_size} bytes");
            let types = types(&recording);
            assert_eq!(types[1..3], ["image/jpeg", "image/png"]);
            assert!(
                recording.warnings().is_empty(),
                "{:?}",
                recording.warnings()
            );
        }
    }

    #[test]
    fn stdin_images_over_max_frame_are_skipped_with_one_warning() {
        let input = concat(&[RED_JPEG, NOISE1, BLUE_JPEG, NOISE2, RED_JPEG]);
        let mut small = source(None);
        small.max_frame = 1000;
        for read_size in [READ_SIZE, 100] {
            let recording = serve_from(Trickle(Cursor::new(input.clone()), read_size), &small);
            assert_eq!(recording.bodies(), [RED_JPEG, BLUE_JPEG, RED_JPEG]);
            let warnings = recording.warnings();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains("over --max-frame (1000 bytes)"));
        }
    }

    #[test]
    fn stdin_bytes_between_images_are_skipped_with_one_warning() {
        let input = concat(&[RED_JPEG, b"junk", BLUE_JPEG, b"\0\0", RED_PNG]);
        let recording = serve_all(input, &source(None));
        assert_eq!(recording.bodies(), [RED_JPEG, BLUE_JPEG, RED_PNG]);
        assert_eq!(recording.warnings().len(), 1);
    }

    #[test]
    fn stdin_false_image_starts_are_skipped_with_one_warning() {
        // `FF D8 FF 00`: a JPEG start, then a byte no marker can be (see decode/split.rs for
        // what they cost).
        let input = [0xFF, 0xD8, 0xFF, 0x00].repeat(1 << 18);
        let recording = serve_from(Trickle(Cursor::new(input), 64 * 1024), &source(None));
        assert!(recording.frames.is_empty());
        assert_eq!(recording.warnings().len(), 1, "{:?}", recording.warnings());
    }

    #[test]
    fn stdin_a_truncated_image_at_the_end_is_not_published() {
        let input = concat(&[NOISE1, &NOISE2[..NOISE2.len() - 1]]);
        let recording = serve_all(input, &source(None));
        assert_eq!(recording.bodies(), [NOISE1]);
        let warnings = recording.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("middle of an image"), "{warnings:?}");
        assert_eq!(notes(&recording), ["stdin ended; keeping the last frame"]);
        // With --type too.
        let recording = serve_all(NOISE2[..500].to_vec(), &source(Some("image/jpeg")));
        assert!(recording.frames.is_empty());
        assert_eq!(notes(&recording), ["stdin ended without a frame to show"]);
    }

    #[test]
    fn stdin_a_forced_image_type_splits_that_type_only() {
        let input = concat(&[RED_JPEG, BLUE_JPEG]);
        let recording = serve_all(input, &source(Some("image/jpeg")));
        assert_eq!(recording.bodies(), [RED_JPEG, BLUE_JPEG]);
        let recording = serve_all(concat(&[RED_PNG, RED_PNG]), &source(Some("image/png")));
        assert_eq!(types(&recording), ["image/png", "image/png"]);
        let recording = serve_all(RED_PNG.to_vec(), &source(Some("image/jpeg")));
        assert!(recording.frames.is_empty());
        assert_eq!(recording.warnings().len(), 1);
    }

    #[test]
    fn stdin_text_shows_the_last_lines_and_follows_them() {
        let (tx, feed) = feed();
        let channel = Channel::for_test(SourceKind::Stdin);
        let mut three = source(None);
        three.lines = 3;
        let recording = thread::scope(|s| {
            let _closing = channel.closing();
            s.spawn(|| serve(feed, &three, &channel));
            tx.send(b"one\r\ntwo\n".to_vec()).unwrap();
            wait_for_last(&channel, b"one\ntwo\n");
            tx.send(b"three\nfour\nfi".to_vec()).unwrap();
            // A line without its newline yet is shown after a while.
            wait_for_last(&channel, b"three\nfour\nfi");
            tx.send(b"ve\nsix".to_vec()).unwrap();
            wait_for_last(&channel, b"four\nfive\nsix");
            drop(tx);
            wait_ended(&channel)
        });
        let frames = recording.bodies();
        let at = |text: &[u8]| frames.iter().position(|f| f == text);
        assert!(
            at(b"two\nthree\nfour\n") < at(b"three\nfour\nfi"),
            "{frames:?}"
        );
        let five = at(b"three\nfour\nfive\n");
        assert!(
            five.is_some() && five < at(b"four\nfive\nsix"),
            "{frames:?}"
        );
        assert_eq!(frames.last().unwrap(), b"four\nfive\nsix");
        assert_eq!(types(&recording)[0], "text/plain; charset=utf-8");
        assert_eq!(recording.frames[0].name, "stdin");
        assert_eq!(notes(&recording), ["stdin ended; keeping the last frame"]);
    }

    #[test]
    fn stdin_a_flood_of_lines_is_published_a_few_times_a_second() {
        let (tx, feed) = feed();
        let channel = Channel::for_test(SourceKind::Stdin);
        let started = Instant::now();
        let recording = thread::scope(|s| {
            let _closing = channel.closing();
            s.spawn(|| serve(feed, &source(None), &channel));
            for block in 0..1000 {
                let lines: String = (0..100)
                    .map(|i| format!("line {}\n", block * 100 + i))
                    .collect();
                tx.send(lines.into_bytes()).unwrap();
            }
            drop(tx);
            wait_ended(&channel)
        });
        let frames = recording.bodies();
        let expected: String = (99_950..100_000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(frames.last().unwrap(), expected.as_bytes());
        let most = 2 + started.elapsed().as_millis() / 40;
        assert!(frames.len() as u128 <= most, "{} frames", frames.len());
    }

    #[test]
    fn stdin_a_long_line_is_cut() {
        let mut large = source(None);
        large.max_frame = 64 << 20;
        let mut input = vec![b'x'; 1 << 20];
        input.extend_from_slice(b"\nend\n");
        let recording = serve_all(input, &large);
        let mut expected = vec![b'x'; 64 * 1024];
        expected.extend_from_slice(b"\nend\n");
        assert_eq!(recording.bodies(), [expected]);
        assert_eq!(
            recording.warnings(),
            ["stdin has lines over 65536 bytes; they are cut to their first 65536"]
        );
        // The limit is --max-frame shared between --lines, and no character is split; a cut line
        // read in pieces, unfinished at the end, is cut all the same.
        let mut small = source(None);
        (small.lines, small.max_frame) = (2, 23);
        let (tx, feed) = feed();
        let channel = Channel::for_test(SourceKind::Stdin);
        let recording = thread::scope(|s| {
            let _closing = channel.closing();
            s.spawn(|| serve(feed, &small, &channel));
            for piece in ["ééééé", "ééé\nab", "cdefghijklmno", "pqr"] {
                tx.send(piece.as_bytes().to_vec()).unwrap();
            }
            drop(tx);
            wait_ended(&channel)
        });
        assert_eq!(
            recording.bodies().last().unwrap(),
            "ééééé\nabcdefghijk".as_bytes()
        );
        assert_eq!(recording.warnings().len(), 1);
    }

    #[test]
    fn stdin_bytes_of_no_format_are_text() {
        let recording = serve_all(b"\x00bin\xFFary\nlast".to_vec(), &source(None));
        let last = recording.bodies().pop().unwrap();
        assert_eq!(last, "\0bin\u{FFFD}ary\nlast".as_bytes());
        assert_eq!(
            types(&recording).pop().unwrap(),
            "text/plain; charset=utf-8"
        );
        // A line of dashes heading a log is not a multipart boundary.
        let log = b"----------\n2025-01-01 12:00:00 started\n".to_vec();
        assert_eq!(
            serve_all(log.clone(), &source(None)).bodies().pop(),
            Some(log)
        );
        // Too short to be an image.
        assert_eq!(
            serve_all(b"\xFF\xD8".to_vec(), &source(None)).frames.len(),
            1
        );
        let recording = serve_all(Vec::new(), &source(None));
        assert!(recording.frames.is_empty());
        assert_eq!(notes(&recording), ["stdin ended without a frame to show"]);
    }

    #[test]
    fn stdin_a_multipart_stream_cut_after_its_first_line_is_text() {
        let recording = serve_all(b"--ffmpeg\r\n".to_vec(), &source(None));
        assert_eq!(recording.bodies(), [b"--ffmpeg\n"]);
    }

    #[test]
    fn stdin_a_first_boundary_line_may_wait_for_its_part() {
        // ffmpeg writes `--ffmpeg` CRLF at once, its first part once encoded.
        let (tx, input) = feed();
        let channel = Channel::for_test(SourceKind::Stdin);
        thread::scope(|s| {
            let _closing = channel.closing();
            s.spawn(|| serve(input, &source(None), &channel));
            tx.send(b"--ffmpeg\r\n".to_vec()).unwrap();
            thread::sleep(DETECT_WAIT + Duration::from_millis(200));
            let head = format!(
                "Content-type: image/jpeg\r\nContent-length: {}\r\n\r\n",
                RED_JPEG.len()
            );
            tx.send(concat(&[head.as_bytes(), RED_JPEG, b"\r\n--ffmpeg\r\n"]))
                .unwrap();
            wait_for_last(&channel, RED_JPEG);
            drop(tx);
        });
        // Text that starts with what looks like a first line, but with LF, is shown after a wait.
        let (tx, input) = feed();
        let channel = Channel::for_test(SourceKind::Stdin);
        thread::scope(|s| {
            let _closing = channel.closing();
            s.spawn(|| serve(input, &source(None), &channel));
            tx.send(b"--------\n".to_vec()).unwrap();
            wait_for_last(&channel, b"--------\n");
            drop(tx);
        });
    }

    #[test]
    fn stdin_a_forced_type_is_one_frame_at_the_end() {
        let pdf = b"%PDF-1.4\n...\n%%EOF\n".repeat(1000);
        for read_size in [READ_SIZE, 7] {
            let input = Trickle(Cursor::new(pdf.clone()), read_size);
            let recording = serve_from(input, &source(Some("application/pdf")));
            assert_eq!(recording.bodies(), [&pdf[..]]);
            assert_eq!(types(&recording), ["application/pdf"]);
        }
        let mut small = source(Some("application/pdf"));
        small.max_frame = 1000;
        let recording = serve_all(pdf, &small);
        assert!(recording.frames.is_empty());
        assert_eq!(recording.warnings().len(), 1);
        // A forced image type that cannot be split is checked whole.
        let gif = serve_all(RED_GIF[..100].to_vec(), &source(Some("image/gif")));
        assert!(gif.frames.is_empty());
        assert!(
            gif.warnings()[0].contains("incomplete"),
            "{:?}",
            gif.warnings()
        );
        let text = serve_all(b"<b>x</b>".to_vec(), &source(Some("text/html")));
        assert_eq!(types(&text), ["text/html; charset=utf-8"]);
    }

    #[test]
    fn stdin_a_silent_pipe_does_not_hold_up_shutdown() {
        let (tx, feed) = feed();
        let channel = Channel::for_test(SourceKind::Stdin);
        thread::scope(|s| {
            let _closing = channel.closing();
            let serving = s.spawn(|| serve(feed, &source(None), &channel));
            tx.send(b"--ffm".to_vec()).unwrap();
            thread::sleep(Duration::from_millis(50));
            channel.latest.close();
            let deadline = Instant::now() + Duration::from_secs(2);
            while !serving.is_finished() {
                assert!(Instant::now() < deadline, "still serving");
                thread::sleep(Duration::from_millis(5));
            }
        });
        assert!(notes(&channel.recorded()).is_empty());
        drop(tx);
    }

    #[test]
    fn stdin_frames_go_to_the_channel() {
        let channel = Channel::for_test(SourceKind::Stdin);
        serve(
            Cursor::new(concat(&[BLUE_JPEG, RED_JPEG])),
            &source(None),
            &channel,
        );
        let frame = channel.latest.current().unwrap();
        assert_eq!((frame.seq, &frame.bytes[..]), (2, RED_JPEG));
        assert_eq!(frame.content_type.as_str(), "image/jpeg");
        assert_eq!(frame.name, "stdin");
    }
}
