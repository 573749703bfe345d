//! Image formats: how each starts (one table of signatures, [`SIGNATURES`]) and where each ends
//! (one walker per format). Everything that tells an image's type from its bytes, checks that
//! it is whole or splits it from a stream goes through here.
//!
//! An image's end is found by walking its structure, never by searching for an end marker:
//! JPEG marker segments by their lengths (so a thumbnail's `FF D9` inside an EXIF segment is
//! skipped), its entropy-coded data up to the first marker that is neither stuffing nor a
//! restart; PNG chunks by their lengths up to `IEND`; GIF blocks up to the trailer; WebP and
//! BMP by the length their header states. JPEG and PNG are walked as they arrive ([`Walk`]),
//! keeping the position between calls, so a large image arriving in many reads is walked once.
//! Pure functions over a buffer: no I/O, no allocation.

/// The image formats told by their first bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
}

/// A signature: how images of a format start, with these bytes at these offsets, in a buffer
/// of at least `shortest` bytes.
struct Magic {
    marks: &'static [(usize, &'static [u8])],
    /// Fewer bytes cannot be an image of the format (a BMP's file and smallest info header).
    shortest: usize,
}

/// Every format's signatures, in the order they are tried.
const SIGNATURES: &[(ImageFormat, &[Magic])] = &[
    (
        ImageFormat::Jpeg,
        &[Magic {
            marks: &[(0, &[0xFF, 0xD8, 0xFF])],
            shortest: 3,
        }],
    ),
    (
        ImageFormat::Png,
        &[Magic {
            marks: &[(0, b"\x89PNG\r\n\x1A\n")],
            shortest: 8,
        }],
    ),
    (
        ImageFormat::Gif,
        &[
            Magic {
                marks: &[(0, b"GIF87a")],
                shortest: 6,
            },
            Magic {
                marks: &[(0, b"GIF89a")],
                shortest: 6,
            },
        ],
    ),
    (
        ImageFormat::Webp,
        &[Magic {
            marks: &[(0, b"RIFF"), (8, b"WEBP")],
            shortest: 12,
        }],
    ),
    (
        ImageFormat::Bmp,
        &[Magic {
            marks: &[(0, b"BM")],
            shortest: 26,
        }],
    ),
];

/// Whether a buffer starts with a signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Match {
    Yes,
    /// The buffer is the beginning of one (or empty): too short to tell.
    TooShort,
    No,
}

impl Magic {
    #[inline]
    fn starts(&self, buf: &[u8]) -> Match {
        // Most bytes start no image: their first byte tells at once.
        if let (Some(&first), Some(&(0, mark))) = (buf.first(), self.marks.first())
            && first != mark[0]
        {
            return Match::No;
        }
        // Each mark as far as the buffer goes.
        // (Byte by byte: a call to memcmp for three bytes was most of the cost of a stream of
        // false starts.)
        let agrees = self.marks.iter().all(|&(at, mark)| {
            let seen = buf.get(at..).unwrap_or_default();
            seen.iter().zip(mark).all(|(a, b)| a == b)
        });
        match (agrees, buf.len() >= self.shortest) {
            (false, _) => Match::No,
            (true, true) => Match::Yes,
            (true, false) => Match::TooShort,
        }
    }
}

impl ImageFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Bmp => "image/bmp",
        }
    }

    fn signatures(self) -> &'static [Magic] {
        // The table lists the formats in the order of the enum (a test checks it).
        SIGNATURES[self as usize].1
    }

    /// Whether `buf` starts with one of this format's signatures.
    fn starts(self, buf: &[u8]) -> Match {
        let mut found = Match::No;
        for signature in self.signatures() {
            match signature.starts(buf) {
                Match::Yes => return Match::Yes,
                Match::TooShort => found = Match::TooShort,
                Match::No => {}
            }
        }
        found
    }

    /// Whether an image of this format can start with `byte`: a cheap test before
    /// [`signature_at`].
    fn may_start_with(self, byte: u8) -> bool {
        self.signatures().iter().any(|s| {
            s.marks
                .first()
                .is_some_and(|&(at, m)| at == 0 && m[0] == byte)
        })
    }
}

/// The format of the image that starts `bytes`, if one does.
pub fn image_format(bytes: &[u8]) -> Option<ImageFormat> {
    SIGNATURES
        .iter()
        .map(|&(format, _)| format)
        .find(|format| format.starts(bytes) == Match::Yes)
}

/// The content type of a frame by its first bytes, for sources that have no file name: JPEG,
/// PNG, GIF, WebP, BMP; None for anything else.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    image_format(bytes).map(ImageFormat::content_type)
}

/// Where the image that starts `bytes` ends, if all of it is there (bytes after its end are
/// not looked at); None when `bytes` starts no image or one that is cut short or broken.
pub fn image_end(bytes: &[u8]) -> Option<usize> {
    match image_format(bytes)? {
        ImageFormat::Jpeg => walk_to_end(Kind::Jpeg, bytes),
        ImageFormat::Png => walk_to_end(Kind::Png, bytes),
        ImageFormat::Gif => gif_end(bytes),
        ImageFormat::Webp => webp_end(bytes),
        ImageFormat::Bmp => bmp_end(bytes),
    }
}

fn walk_to_end(kind: Kind, bytes: &[u8]) -> Option<usize> {
    match Walk::start(kind).step(bytes) {
        Step::End(len) => Some(len),
        Step::More | Step::Broken(_) => None,
    }
}

/// The formats whose images are walked as they arrive, and so can be split from a stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Jpeg,
    Png,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[Kind::Jpeg, Kind::Png];

    pub const fn format(self) -> ImageFormat {
        match self {
            Kind::Jpeg => ImageFormat::Jpeg,
            Kind::Png => ImageFormat::Png,
        }
    }

    /// The bytes every image of this kind starts with: its format's one signature, taken from
    /// the table when compiled (a test checks that it is one mark at the start). The splitter
    /// tries it at every place a stream of false starts may resume, so it must be cheap.
    const fn prefix(self) -> &'static [u8] {
        SIGNATURES[self.format() as usize].1[0].marks[0].1
    }

    pub fn content_type(self) -> &'static str {
        self.format().content_type()
    }

    /// Whether an image of this kind can start with `byte`.
    pub fn may_start_with(self, byte: u8) -> bool {
        self.format().may_start_with(byte)
    }
}

/// Which signature of the kinds asked for starts a buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Starts {
    Of(Kind),
    /// The buffer is the beginning of a signature (or empty): too short to tell.
    TooShort,
    None,
}

/// Which signature of `kinds` starts `buf`.
pub fn signature_at(buf: &[u8], kinds: &[Kind]) -> Starts {
    let mut too_short = false;
    for &kind in kinds {
        let prefix = kind.prefix();
        if buf.starts_with(prefix) {
            return Starts::Of(kind);
        }
        too_short |= prefix.starts_with(buf);
    }
    if too_short {
        Starts::TooShort
    } else {
        Starts::None
    }
}

/// How far a walk has got.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    /// The image ends after this many bytes.
    End(usize),
    /// Its end has not arrived yet.
    More,
    /// The structure is broken at this offset.
    Broken(usize),
}

/// Where the walk through an image that may still be arriving has got to, as an offset in the
/// caller's buffer, which starts with the image.
#[derive(Clone, Copy, Debug)]
pub enum Walk {
    /// `scan`: inside entropy-coded data (after a start-of-scan segment).
    Jpeg {
        pos: usize,
        scan: bool,
    },
    Png {
        pos: usize,
    },
}

impl Walk {
    /// A walk from just after the signature of an image of `kind`.
    pub fn start(kind: Kind) -> Walk {
        match kind {
            // The signature's third byte is the first segment's FF.
            Kind::Jpeg => Walk::Jpeg {
                pos: 2,
                scan: false,
            },
            Kind::Png => Walk::Png { pos: 8 },
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Walk::Jpeg { .. } => Kind::Jpeg,
            Walk::Png { .. } => Kind::Png,
        }
    }

    /// Goes on through `buf`, which must be the buffer given last time with bytes added at its
    /// end (or with its first bytes dropped, said through [`Walk::discard`]).
    pub fn step(&mut self, buf: &[u8]) -> Step {
        match self {
            Walk::Jpeg { pos, scan } => walk_jpeg(buf, pos, scan),
            Walk::Png { pos } => walk_png(buf, pos),
        }
    }

    /// How many bytes at the start of the buffer the walk is done with.
    pub fn walked(&self) -> usize {
        match *self {
            Walk::Jpeg { pos, .. } | Walk::Png { pos } => pos,
        }
    }

    /// The caller has dropped the first `n` bytes of the buffer, `n` <= [`Walk::walked`].
    pub fn discard(&mut self, n: usize) {
        let (Walk::Jpeg { pos, .. } | Walk::Png { pos }) = self;
        *pos -= n.min(*pos);
    }
}

/// Walks JPEG marker segments from `pos` (an `FF`), and entropy-coded data when `scan`, up to
/// the end-of-image marker.
fn walk_jpeg(b: &[u8], pos: &mut usize, scan: &mut bool) -> Step {
    loop {
        if *scan {
            // Entropy-coded data: FF is followed by 00 (stuffing), a restart marker, or FF
            // (fill before a marker); anything else is the marker that ends the scan.
            let Some(rest) = b.get(*pos..) else {
                return Step::More;
            };
            let Some(at) = rest.iter().position(|&x| x == 0xFF) else {
                *pos = b.len();
                return Step::More;
            };
            let i = *pos + at;
            match b.get(i + 1) {
                None => {
                    *pos = i;
                    return Step::More;
                }
                Some(0x00 | 0xD0..=0xD7) => *pos = i + 2,
                Some(0xFF) => *pos = i + 1,
                Some(_) => {
                    *pos = i;
                    *scan = false;
                }
            }
            continue;
        }
        match b.get(*pos) {
            None => return Step::More,
            Some(0xFF) => {}
            Some(_) => return Step::Broken(*pos),
        }
        let Some(&marker) = b.get(*pos + 1) else {
            return Step::More;
        };
        match marker {
            0xD9 => return Step::End(*pos + 2),
            0xFF => *pos += 1, // fill byte
            0x01 | 0xD0..=0xD7 => *pos += 2,
            // Not a marker, or a new image starting inside this one: this one is cut short.
            0x00 | 0xD8 => return Step::Broken(*pos),
            _ => {
                let Some(len) = b.get(*pos + 2..*pos + 4) else {
                    return Step::More;
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if len < 2 {
                    return Step::Broken(*pos);
                }
                *pos += 2 + len;
                *scan = marker == 0xDA;
            }
        }
    }
}

/// Walks PNG chunks (length, type, data, CRC) from `pos` up to the end of `IEND`.
fn walk_png(b: &[u8], pos: &mut usize) -> Step {
    loop {
        let Some(head) = b.get(*pos..*pos + 8) else {
            return Step::More;
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = &head[4..8];
        if len > 0x7FFF_FFFF || !kind.iter().all(u8::is_ascii_alphabetic) {
            return Step::Broken(*pos);
        }
        let end = *pos + 12 + len as usize;
        if kind == b"IEND" {
            return if end <= b.len() {
                Step::End(end)
            } else {
                Step::More
            };
        }
        *pos = end;
    }
}

/// Walks GIF blocks (extensions and images, each ending in a zero-length sub-block) to the
/// trailer byte `3B`.
fn gif_end(b: &[u8]) -> Option<usize> {
    let flags = *b.get(10)?;
    let mut i = 13 + color_table_len(flags);
    // Skips a run of sub-blocks starting at `i`; None when it runs past the end.
    let skip_sub_blocks = |mut i: usize| -> Option<usize> {
        loop {
            let len = usize::from(*b.get(i)?);
            i += 1 + len;
            if len == 0 {
                return Some(i);
            }
        }
    };
    loop {
        match b.get(i)? {
            0x3B => return Some(i + 1),
            0x21 => i = skip_sub_blocks(i + 2)?,
            0x2C => {
                let flags = *b.get(i + 9)?;
                // Descriptor (10 bytes), local colour table, LZW minimum code size, data.
                i = skip_sub_blocks(i + 10 + color_table_len(flags) + 1)?;
            }
            _ => return None,
        }
    }
}

fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 0x07) + 1)
    }
}

/// A RIFF file states its own length.
fn webp_end(b: &[u8]) -> Option<usize> {
    let len = b.get(4..8)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    (b.len() >= len + 8).then_some(len + 8)
}

/// A BMP states its file size in its header (bytes 2 to 5).
fn bmp_end(b: &[u8]) -> Option<usize> {
    let size = b.get(2..6)?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
    (size >= 26 && b.len() >= size).then_some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = include_bytes!("../../tests/fixtures/red.jpg");
    const PNG: &[u8] = include_bytes!("../../tests/fixtures/red.png");
    const GIF: &[u8] = include_bytes!("../../tests/fixtures/red.gif");

    #[test]
    fn each_kind_that_is_split_has_one_signature_a_prefix() {
        for &kind in Kind::ALL {
            let signatures = kind.format().signatures();
            assert_eq!(signatures.len(), 1, "{kind:?}");
            assert_eq!(signatures[0].marks.len(), 1, "{kind:?}");
            assert_eq!(signatures[0].marks[0].0, 0, "{kind:?}");
            assert_eq!(signatures[0].shortest, kind.prefix().len(), "{kind:?}");
        }
    }

    #[test]
    fn the_table_lists_each_format_at_its_place() {
        for (at, &(format, _)) in SIGNATURES.iter().enumerate() {
            assert_eq!(format as usize, at, "{format:?}");
        }
    }

    #[test]
    fn each_format_is_told_by_its_signature_alone() {
        let mut bmp = b"BM".to_vec();
        bmp.resize(26, 0);
        let webp = b"RIFF\0\0\0\0WEBPVP8L";
        for (bytes, expected) in [
            (JPEG, Some("image/jpeg")),
            (PNG, Some("image/png")),
            (GIF, Some("image/gif")),
            (&webp[..], Some("image/webp")),
            (&bmp[..], Some("image/bmp")),
            (b"GIF87a", Some("image/gif")),
            (b"GIF8xa", None),
            (&bmp[..25], None),
            (b"RIFF\0\0\0\0WAVE", None),
            (b"\xFF\xD8", None),
            (&PNG[..7], None),
            (b"hello", None),
        ] {
            assert_eq!(sniff_image(bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn an_image_ends_where_its_walker_says_whatever_follows() {
        for image in [JPEG, PNG, GIF] {
            let mut followed = image.to_vec();
            followed.extend_from_slice(b"trailing bytes");
            assert_eq!(image_end(&followed), Some(image.len()));
        }
    }

    #[test]
    fn a_broken_structure_is_not_an_image_even_if_its_end_is_there() {
        // A PNG chunk type that is not letters, a JPEG segment length under 2, a new JPEG
        // starting inside one: each walk stops where the structure breaks.
        let mut png = PNG.to_vec();
        png[12] = b'1';
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 1];
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        let mut twice = JPEG[..20].to_vec();
        twice.extend_from_slice(JPEG);
        for broken in [&png[..], &jpeg, &twice] {
            assert_eq!(image_end(broken), None, "{:?}", &broken[..8]);
        }
    }
}
