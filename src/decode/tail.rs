//! The live tail of a text (`tail -f app.log | pushserve -`): its last lines as one frame,
//! bounded in number and length, with a last line that has not got its newline shown once it
//! has waited [`PARTIAL_LINE_WAIT`]. It owns the lines and when what they show last changed;
//! whoever feeds it decides when to publish. No I/O: the time is given to it.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A last line without its newline is shown once it has waited this long.
pub const PARTIAL_LINE_WAIT: Duration = Duration::from_millis(100);
/// The longest line the tail keeps (less when `--max-frame` / `--lines` is less).
const LINE_MAX: u64 = 64 * 1024;

/// The last lines of a text, bounded in number and length.
pub struct Tail {
    lines: VecDeque<Vec<u8>>,
    max_lines: usize,
    /// The longest a line is kept; longer ones are cut.
    line_max: usize,
    max_frame: u64,
    /// The last line, while its newline has not come.
    partial: Vec<u8>,
    partial_since: Option<Instant>,
    /// The partial line has waited long enough to be shown.
    partial_shown: bool,
    /// The partial line is over the limit: the rest of it is dropped.
    partial_cut: bool,
    said_cut: bool,
    /// When what is shown first changed since it was last published.
    changed_since: Option<Instant>,
}

impl Tail {
    pub fn new(max_lines: usize, max_frame: u64) -> Tail {
        let max_lines = max_lines.max(1);
        let line_max = (max_frame / max_lines as u64).clamp(1, LINE_MAX) as usize;
        Tail {
            lines: VecDeque::with_capacity(max_lines.min(1024)),
            max_lines,
            line_max,
            max_frame,
            partial: Vec::new(),
            partial_since: None,
            partial_shown: false,
            partial_cut: false,
            said_cut: false,
            changed_since: None,
        }
    }

    /// Takes in the bytes read; Some(the line length limit) the first time a line is cut.
    pub fn push(&mut self, bytes: &[u8], now: Instant) -> Option<usize> {
        let mut cut = false;
        let Some(first) = bytes.iter().position(|&b| b == b'\n') else {
            self.extend_partial(bytes, now, &mut cut);
            return self.cut_said(cut);
        };
        self.extend_partial(&bytes[..first], now, &mut cut);
        let line = std::mem::take(&mut self.partial);
        self.end_line(&line, &mut cut, now);
        let rest = &bytes[first + 1..];
        let (whole_lines, partial) = match rest.iter().rposition(|&b| b == b'\n') {
            Some(last) => (Some(&rest[..last]), &rest[last + 1..]),
            None => (None, rest),
        };
        if let Some(whole_lines) = whole_lines {
            // Only the newest lines of a large read can be shown: the others are not copied.
            let newest: Vec<&[u8]> = whole_lines
                .rsplit(|&b| b == b'\n')
                .take(self.max_lines)
                .collect();
            for line in newest.into_iter().rev() {
                self.end_line(line, &mut cut, now);
            }
        }
        self.extend_partial(partial, now, &mut cut);
        self.cut_said(cut)
    }

    fn cut_said(&mut self, cut: bool) -> Option<usize> {
        (cut && !std::mem::replace(&mut self.said_cut, true)).then_some(self.line_max)
    }

    fn end_line(&mut self, line: &[u8], cut: &mut bool, now: Instant) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let keep = if line.len() > self.line_max {
            *cut = true;
            char_floor(line, self.line_max)
        } else {
            line.len()
        };
        if self.lines.len() == self.max_lines {
            self.lines.pop_front();
        }
        self.lines.push_back(line[..keep].to_vec());
        (self.partial_since, self.partial_shown, self.partial_cut) = (None, false, false);
        self.changed_since.get_or_insert(now);
    }

    fn extend_partial(&mut self, bytes: &[u8], now: Instant, cut: &mut bool) {
        if bytes.is_empty() || self.partial_cut {
            return;
        }
        self.partial_since.get_or_insert(now);
        let room = self.line_max - self.partial.len();
        let keep = if bytes.len() > room {
            // The rest of this line is dropped, up to its newline.
            (*cut, self.partial_cut) = (true, true);
            char_floor(bytes, room)
        } else {
            bytes.len()
        };
        self.partial.extend_from_slice(&bytes[..keep]);
        if self.partial_shown && keep > 0 {
            self.changed_since.get_or_insert(now);
        }
    }

    /// When the partial line is due to be shown, if it is waiting.
    pub fn partial_due(&self) -> Option<Instant> {
        self.partial_since
            .filter(|_| !self.partial_shown && !self.partial.is_empty())
            .map(|since| since + PARTIAL_LINE_WAIT)
    }

    /// Shows the partial line once it has waited long enough.
    pub fn tick(&mut self, now: Instant) {
        if self.partial_due().is_some_and(|due| now >= due) {
            self.partial_shown = true;
            self.changed_since.get_or_insert(now);
        }
    }

    /// The text has ended: the partial line is shown at once.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() && !self.partial_shown {
            self.partial_shown = true;
            self.changed_since.get_or_insert_with(Instant::now);
        }
    }

    /// When what is shown first changed since it was last taken, if it has.
    pub fn changed_since(&self) -> Option<Instant> {
        self.changed_since
    }

    /// The frame to publish now; what is shown is unchanged from here on.
    pub fn take_frame(&mut self) -> Vec<u8> {
        self.changed_since = None;
        self.render()
    }

    /// The frame: the newest lines that fit in `--max-frame`, invalid UTF-8 replaced.
    fn render(&self) -> Vec<u8> {
        let partial = (self.partial_shown && !self.partial.is_empty()).then_some(&self.partial);
        let newest_first = partial
            .into_iter()
            .map(|p| (String::from_utf8_lossy(p), ""))
            .chain(
                self.lines
                    .iter()
                    .rev()
                    .map(|l| (String::from_utf8_lossy(l), "\n")),
            )
            .take(self.max_lines);
        let mut shown: Vec<(Cow<str>, &str)> = Vec::new();
        let mut size = 0;
        for (line, end) in newest_first {
            size += line.len() + end.len();
            if size as u64 > self.max_frame {
                break;
            }
            shown.push((line, end));
        }
        let mut text = Vec::with_capacity(size);
        for (line, end) in shown.iter().rev() {
            text.extend_from_slice(line.as_bytes());
            text.extend_from_slice(end.as_bytes());
        }
        text
    }
}

/// Where to cut `bytes` to at most `max` bytes without splitting a UTF-8 character (a
/// character is at most 4 bytes: invalid text is cut at `max`).
fn char_floor(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let continuation = |i: usize| bytes[i] & 0xC0 == 0x80;
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| !continuation(i))
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_lines_are_shown_and_a_partial_one_after_its_wait() {
        let start = Instant::now();
        let mut tail = Tail::new(2, 1 << 20);
        assert_eq!(tail.push(b"one\ntwo\r\nthree\nfo", start), None);
        assert_eq!(tail.changed_since(), Some(start));
        assert_eq!(tail.take_frame(), b"two\nthree\n");
        assert_eq!(tail.changed_since(), None);
        assert_eq!(tail.partial_due(), Some(start + PARTIAL_LINE_WAIT));
        tail.tick(start + PARTIAL_LINE_WAIT);
        assert_eq!(tail.take_frame(), b"three\nfo");
        tail.push(b"ur", start + PARTIAL_LINE_WAIT);
        assert_eq!(tail.take_frame(), b"three\nfour");
    }

    #[test]
    fn a_long_line_is_cut_without_splitting_a_character() {
        let now = Instant::now();
        // 2 lines in 11 bytes: 5 bytes a line at most.
        let mut tail = Tail::new(2, 11);
        assert_eq!(tail.push("abcdéf\n".as_bytes(), now), Some(5));
        assert_eq!(tail.push(b"xyzwvut\n", now), None, "said once");
        assert_eq!(tail.take_frame(), b"abcd\nxyzwv\n");
        assert_eq!(char_floor("ééé".as_bytes(), 3), 2);
        assert_eq!(char_floor(b"abc", 5), 3);
    }
}
