//! Splits a stream of concatenated JPEG or PNG images (`ffmpeg -f image2pipe`) into images.
//!
//! Each image's end is found by its format's walker (`image.rs`), which keeps its position
//! between calls, so a large image arriving in many reads is walked once, not once per read.
//! Bytes that are not an image are skipped up to the next place a signature starts.
//! [`Splitter`] works over the caller's buffer, without I/O or allocation; [`Images`] holds the
//! bytes read and not yet split for it, and drops what it is done with.

use crate::decode::image::{Kind, Starts, Step, Walk, signature_at};

/// What is at the start of the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Found {
    /// A whole image of `len` bytes.
    Image { kind: Kind, len: usize },
    /// The start of an image (or of its signature) whose end has not arrived yet.
    NeedMore,
    /// `skip` bytes that are not an image where one should start, or an image whose structure
    /// breaks `skip` bytes in: drop them and look again.
    NotImage { skip: usize },
}

/// Finds the images at the start of a buffer that the caller fills from its end and empties
/// from its start, remembering how far it has walked into the current image.
#[derive(Debug)]
pub struct Splitter {
    kinds: &'static [Kind],
    /// Whether an image of `kinds` may start with a byte: the cheap test of a resync.
    may_start: [bool; 256],
    walk: Option<Walk>,
}

impl Splitter {
    /// A splitter that recognises images of `kinds` only.
    pub fn new(kinds: &'static [Kind]) -> Splitter {
        let may_start = std::array::from_fn(|byte| {
            let byte = byte as u8;
            kinds.iter().any(|k| k.may_start_with(byte))
        });
        Splitter {
            kinds,
            may_start,
            walk: None,
        }
    }

    /// What is at the start of `buf`, which must be the buffer given last time with bytes
    /// added at its end (or with the first [`Splitter::walked`] bytes dropped, said through
    /// [`Splitter::discard`]). After `Image` or `NotImage` the caller drops those bytes.
    pub fn next(&mut self, buf: &[u8]) -> Found {
        let walk = match self.walk.as_mut() {
            Some(walk) => walk,
            None => match self.start(buf) {
                Ok(walk) => self.walk.insert(walk),
                Err(found) => return found,
            },
        };
        let kind = walk.kind();
        match walk.step(buf) {
            Step::End(len) => {
                self.walk = None;
                Found::Image { kind, len }
            }
            Step::More => Found::NeedMore,
            Step::Broken(at) => {
                self.walk = None;
                Found::NotImage { skip: at.max(1) }
            }
        }
    }

    /// How many bytes at the start of the buffer the walk is done with: while an image is
    /// skipped (over the size limit), they can be dropped before its end is found.
    pub fn walked(&self) -> usize {
        self.walk.as_ref().map_or(0, Walk::walked)
    }

    /// The caller has dropped the first `n` bytes of the buffer, `n` <= [`Splitter::walked`].
    pub fn discard(&mut self, n: usize) {
        if let Some(walk) = self.walk.as_mut() {
            walk.discard(n);
        }
    }

    /// Whether the current image has been started (its end is being looked for).
    pub fn in_image(&self) -> bool {
        self.walk.is_some()
    }

    /// The walk for the image at the start of `buf`, or what to do instead.
    fn start(&self, buf: &[u8]) -> Result<Walk, Found> {
        match signature_at(buf, self.kinds) {
            Starts::Of(kind) => Ok(Walk::start(kind)),
            Starts::TooShort => Err(Found::NeedMore),
            // Resynchronise: the next place a signature starts (or may start, at the very end).
            Starts::None => Err(Found::NotImage {
                skip: (1..buf.len())
                    // Only where a signature's first byte is may one start: a cheap test first.
                    .filter(|&i| self.may_start[usize::from(buf[i])])
                    .find(|&i| signature_at(&buf[i..], self.kinds) != Starts::None)
                    .unwrap_or(buf.len()),
            }),
        }
    }
}

/// What [`Images::split`] cuts from the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Cut<'a> {
    /// A whole image, within the size limit.
    Image { kind: Kind, bytes: &'a [u8] },
    /// An image over the size limit, dropped as it is walked (said each time some of it goes).
    TooLarge,
    /// Bytes that are not a whole image of the kinds asked for, dropped.
    NotImage,
}

/// Concatenated images being split: the splitter and what has been read and not yet split.
#[derive(Debug)]
pub struct Images {
    splitter: Splitter,
    unsplit: Unsplit,
    kinds: &'static [Kind],
    max_image: u64,
    /// The current image is over `max_image`: dropped as it is walked, not kept.
    skipping: bool,
}

impl Images {
    /// Images of `kinds`, each of at most `max_image` bytes.
    pub fn new(kinds: &'static [Kind], max_image: u64) -> Images {
        Images {
            splitter: Splitter::new(kinds),
            unsplit: Unsplit::default(),
            kinds,
            max_image,
            skipping: false,
        }
    }

    pub fn kinds(&self) -> &'static [Kind] {
        self.kinds
    }

    /// Takes in the bytes read next.
    pub fn append(&mut self, bytes: &[u8]) {
        self.unsplit.append(bytes);
    }

    /// Hands `found` every whole image read so far and says what is dropped, up to where more
    /// bytes are needed.
    pub fn split(&mut self, mut found: impl FnMut(Cut<'_>)) {
        loop {
            match self.splitter.next(self.unsplit.pending()) {
                Found::Image { kind, len } => {
                    if self.skipping || len as u64 > self.max_image {
                        found(Cut::TooLarge);
                    } else {
                        let bytes = &self.unsplit.pending()[..len];
                        found(Cut::Image { kind, bytes });
                    }
                    self.unsplit.drop_front(len);
                    self.skipping = false;
                }
                Found::NotImage { skip } => {
                    found(Cut::NotImage);
                    self.unsplit.drop_front(skip);
                    self.skipping = false;
                }
                Found::NeedMore => {
                    let held = self.unsplit.pending().len();
                    if self.splitter.in_image() && (self.skipping || held as u64 > self.max_image) {
                        found(Cut::TooLarge);
                        self.skipping = true;
                        let walked = self.splitter.walked().min(held);
                        self.unsplit.drop_front(walked);
                        self.splitter.discard(walked);
                    }
                    return;
                }
            }
        }
    }

    /// How many bytes of an image begun and not finished are held (one being skipped aside):
    /// what a stream that ends now leaves unpublished.
    pub fn unfinished(&self) -> Option<usize> {
        (self.splitter.in_image() && !self.skipping).then(|| self.unsplit.pending().len())
    }

    /// Bytes moved to the front of the buffer so far.
    #[cfg(test)]
    fn moved(&self) -> u64 {
        self.unsplit.moved
    }
}

/// Bytes read and not yet split. Dropping from the front moves nothing, as a false image start
/// drops a few bytes at a time (`FF D8 FF 00` over and over drops 2 at a time); the bytes left
/// are moved to the front once per read, when more are added, so each byte moves at most once.
#[derive(Debug, Default)]
struct Unsplit {
    bytes: Vec<u8>,
    /// Where the bytes not yet dropped begin.
    start: usize,
    /// Bytes moved to the front so far, to show that each moves at most once.
    #[cfg(test)]
    moved: u64,
}

impl Unsplit {
    fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    fn drop_front(&mut self, n: usize) {
        self.start = (self.start + n).min(self.bytes.len());
    }

    fn append(&mut self, more: &[u8]) {
        if self.start > 0 {
            #[cfg(test)]
            {
                self.moved += (self.bytes.len() - self.start) as u64;
            }
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED_JPEG: &[u8] = include_bytes!("../../tests/fixtures/red.jpg");
    const NOISE_JPEG: &[u8] = include_bytes!("../../tests/fixtures/noise1.jpg");
    const RED_PNG: &[u8] = include_bytes!("../../tests/fixtures/red.png");

    fn segment(marker: u8, data: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&u16::try_from(data.len() + 2).unwrap().to_be_bytes());
        s.extend_from_slice(data);
        s
    }

    /// A JPEG made by hand: SOI, an EXIF APP1 holding `thumbnail` (a whole JPEG with its own
    /// FF D9), DQT, SOF0, DHT, SOS, entropy-coded data with FF 00 stuffing, a restart marker
    /// and fill bytes, EOI.
    fn jpeg_with_thumbnail(thumbnail: &[u8]) -> Vec<u8> {
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(thumbnail);
        let mut j = vec![0xFF, 0xD8];
        j.extend(segment(0xE1, &exif));
        j.extend(segment(0xDB, &[0; 65]));
        j.extend(segment(0xC0, &[8, 0, 16, 0, 16, 1, 1, 0x11, 0]));
        j.extend(segment(0xC4, &[0; 17]));
        j.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
        j.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0x00, 0x78]);
        j.extend_from_slice(&[0xFF, 0xFF, 0xD9]);
        j
    }

    /// What a splitter that has seen nothing before finds at the start of `buf`.
    fn image_at(buf: &[u8], kinds: &'static [Kind]) -> Found {
        Splitter::new(kinds).next(buf)
    }

    fn whole(buf: &[u8]) -> Found {
        image_at(buf, Kind::ALL)
    }

    #[test]
    fn a_thumbnail_end_marker_inside_exif_does_not_end_the_image() {
        let jpeg = jpeg_with_thumbnail(RED_JPEG);
        assert!(crate::decode::complete::is_complete("image/jpeg", &jpeg));
        let thumbnail_end = 2 + 4 + 6 + RED_JPEG.len();
        assert_eq!(&jpeg[thumbnail_end - 2..thumbnail_end], &[0xFF, 0xD9]);
        let len = jpeg.len();
        let kind = Kind::Jpeg;
        assert_eq!(whole(&jpeg), Found::Image { kind, len });
        let mut two = jpeg.clone();
        two.extend_from_slice(NOISE_JPEG);
        assert_eq!(whole(&two), Found::Image { kind, len });
    }

    #[test]
    fn concatenated_jpegs_split_in_two() {
        let mut stream = NOISE_JPEG.to_vec();
        stream.extend_from_slice(RED_JPEG);
        let kind = Kind::Jpeg;
        let first = NOISE_JPEG.len();
        assert_eq!(whole(&stream), Found::Image { kind, len: first });
        let len = RED_JPEG.len();
        assert_eq!(whole(&stream[first..]), Found::Image { kind, len });
    }

    #[test]
    fn png_ends_with_iend() {
        let mut stream = RED_PNG.to_vec();
        stream.extend_from_slice(RED_JPEG);
        let (kind, len) = (Kind::Png, RED_PNG.len());
        assert_eq!(whole(&stream), Found::Image { kind, len });
        assert_eq!(whole(&RED_PNG[..len - 1]), Found::NeedMore);
        // A chunk type that is not letters: the structure is broken where it stands.
        let mut broken = RED_PNG.to_vec();
        broken[12] = b'1';
        assert_eq!(whole(&broken), Found::NotImage { skip: 8 });
    }

    #[test]
    fn every_prefix_of_an_image_needs_more() {
        for image in [&jpeg_with_thumbnail(RED_JPEG)[..], NOISE_JPEG, RED_PNG] {
            let last = image.len().saturating_sub(600);
            for cut in (0..last).step_by(7).chain(last..image.len()) {
                assert_eq!(whole(&image[..cut]), Found::NeedMore, "cut at {cut}");
            }
        }
    }

    #[test]
    fn the_walk_goes_on_where_it_stopped() {
        let mut stream = jpeg_with_thumbnail(NOISE_JPEG);
        stream.extend_from_slice(RED_PNG);
        let first = stream.len() - RED_PNG.len();
        let mut splitter = Splitter::new(Kind::ALL);
        let (mut found, mut buf, mut dropped) = (Vec::new(), Vec::new(), 0);
        for piece in stream.chunks(7) {
            buf.extend_from_slice(piece);
            loop {
                match splitter.next(&buf) {
                    Found::Image { kind, len } => {
                        found.push((kind, dropped + len));
                        buf.drain(..len);
                        dropped = 0;
                    }
                    Found::NeedMore => break,
                    Found::NotImage { skip } => panic!("skip {skip}"),
                }
            }
            // What has been walked may go, as when an image over the size limit is skipped.
            let walked = splitter.walked().min(buf.len());
            if walked > 100 {
                buf.drain(..walked);
                splitter.discard(walked);
                dropped += walked;
            }
        }
        assert_eq!(found, [(Kind::Jpeg, first), (Kind::Png, RED_PNG.len())]);
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_before_an_image_is_skipped_to_its_signature() {
        let mut stream = b"hello \xFF\xD8 world \x89PNG".to_vec();
        let at = stream.len();
        stream.extend_from_slice(RED_JPEG);
        assert_eq!(whole(&stream), Found::NotImage { skip: at });
        assert_eq!(
            whole(&stream[at..]),
            Found::Image {
                kind: Kind::Jpeg,
                len: RED_JPEG.len()
            }
        );
        // A possible signature at the very end is kept for the next read.
        assert_eq!(whole(b"abc\xFF\xD8"), Found::NotImage { skip: 3 });
        assert_eq!(whole(b"\x89PN"), Found::NeedMore);
        assert_eq!(whole(b"abc"), Found::NotImage { skip: 3 });
        // Only the kinds asked for are images.
        let jpeg_only = image_at(RED_PNG, &[Kind::Jpeg]);
        assert_eq!(
            jpeg_only,
            Found::NotImage {
                skip: RED_PNG.len()
            }
        );
    }

    #[test]
    fn an_image_cut_short_by_the_next_one_is_skipped_up_to_it() {
        let cut = NOISE_JPEG.len() / 2;
        let mut stream = NOISE_JPEG[..cut].to_vec();
        stream.extend_from_slice(RED_JPEG);
        assert_eq!(whole(&stream), Found::NotImage { skip: cut });
        let (kind, len) = (Kind::Jpeg, RED_JPEG.len());
        assert_eq!(whole(&stream[cut..]), Found::Image { kind, len });
    }

    #[test]
    fn hostile_lengths_do_not_panic() {
        let mut png = b"\x89PNG\r\n\x1A\n".to_vec();
        png.extend_from_slice(&[0xFF; 8]);
        assert_eq!(whole(&png), Found::NotImage { skip: 8 });
        let mut png = b"\x89PNG\r\n\x1A\n".to_vec();
        png.extend_from_slice(&[0x7F, 0xFF, 0xFF, 0xFF, b'I', b'E', b'N', b'D']);
        assert_eq!(whole(&png), Found::NeedMore);
        assert_eq!(
            whole(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]),
            Found::NotImage { skip: 2 }
        );
        assert_eq!(
            whole(&[0xFF, 0xD8, 0xFF, 0xD8]),
            Found::NotImage { skip: 2 }
        );
        assert_eq!(whole(&[0xFF, 0xD8, 0xFF, 0xFF, 0xFF]), Found::NeedMore);
    }

    #[test]
    fn false_image_starts_cost_work_linear_in_their_bytes() {
        // `FF D8 FF 00`: a JPEG start, then a byte no marker can be; 2 bytes dropped each time.
        let input = [0xFF, 0xD8, 0xFF, 0x00].repeat(1 << 18);
        let mut images = Images::new(Kind::ALL, 1 << 20);
        let (mut found, mut not_image) = (0, 0);
        for block in input.chunks(64 * 1024) {
            images.append(block);
            images.split(|cut| match cut {
                Cut::NotImage => not_image += 1,
                Cut::Image { .. } | Cut::TooLarge => found += 1,
            });
        }
        assert_eq!(found, 0);
        assert!(not_image > 0);
        // Dropped from the front one false start at a time, the bytes behind would move each
        // time: about 32 K times each here.
        let moved = images.moved();
        assert!(moved <= input.len() as u64, "{moved} bytes moved");
    }
}
