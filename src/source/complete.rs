//! Recognises a complete image, so a file caught mid-write is never published.
//!
//! Every image type of the default `--ext` is checked: JPEG, PNG and GIF by walking their
//! structure to the end marker, WebP and BMP by the length their header states, SVG by the
//! closing tag of its root element. For other types (HTML, text) the re-stat in `file.rs` is
//! the only guard. Pure functions, no I/O.

use crate::source::media_type;

/// Whether `bytes` can be published as a frame of type `content_type` (parameters and case
/// aside): any other type is
/// accepted as is; a JPEG, PNG, GIF, WebP or BMP type needs a whole image of one of those
/// formats, an SVG type a whole SVG document.
pub fn is_complete(content_type: &str, bytes: &[u8]) -> bool {
    match media_type(content_type).as_str() {
        "image/jpeg" | "image/png" | "image/gif" | "image/webp" | "image/bmp" => {}
        "image/svg+xml" => return svg_complete(bytes),
        _ => return true,
    }
    match bytes {
        [b'B', b'M', ..] => bmp_complete(bytes),
        [0xFF, 0xD8, ..] => jpeg_complete(bytes),
        [0x89, b'P', b'N', b'G', ..] => png_complete(bytes),
        [b'G', b'I', b'F', b'8', ..] => gif_complete(bytes),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => webp_complete(bytes),
        _ => false,
    }
}

/// Walks the marker segments to the end-of-image marker, skipping entropy-coded data
/// (where `FF` is always followed by `00` or a restart marker) after each start-of-scan.
fn jpeg_complete(b: &[u8]) -> bool {
    let mut i = 2;
    while i + 1 < b.len() {
        if b[i] != 0xFF {
            return false;
        }
        let marker = b[i + 1];
        match marker {
            0xD9 => return true,
            0xFF => i += 1, // fill byte
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let Some(len) = b.get(i + 2..i + 4) else {
                    return false;
                };
                i += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
                if marker == 0xDA {
                    // Entropy-coded data runs to the next marker that is not stuffing or a restart.
                    loop {
                        let Some(at) = b.get(i..).and_then(|r| r.iter().position(|&x| x == 0xFF))
                        else {
                            return false;
                        };
                        i += at;
                        match b.get(i + 1) {
                            None => return false,
                            Some(0x00 | 0xD0..=0xD7) => i += 2,
                            Some(_) => break,
                        }
                    }
                }
            }
        }
    }
    false
}

/// Walks the chunks (length, type, data, CRC) to `IEND`.
fn png_complete(b: &[u8]) -> bool {
    let mut i = 8;
    while let Some(head) = b.get(i..i + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = i + 12 + len;
        if end > b.len() {
            return false;
        }
        if &head[4..8] == b"IEND" {
            return true;
        }
        i = end;
    }
    false
}

/// Walks the blocks (extensions and images, each ending in a zero-length sub-block) to the
/// trailer byte `3B`.
fn gif_complete(b: &[u8]) -> bool {
    let Some(&flags) = b.get(10) else {
        return false;
    };
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
        match b.get(i) {
            Some(0x3B) => return true,
            Some(0x21) => match skip_sub_blocks(i + 2) {
                Some(next) => i = next,
                None => return false,
            },
            Some(0x2C) => {
                let Some(&flags) = b.get(i + 9) else {
                    return false;
                };
                // Descriptor (10 bytes), local colour table, LZW minimum code size, data.
                match skip_sub_blocks(i + 10 + color_table_len(flags) + 1) {
                    Some(next) => i = next,
                    None => return false,
                }
            }
            _ => return false,
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
fn webp_complete(b: &[u8]) -> bool {
    let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    b.len() >= len + 8
}

/// A BMP states its file size in its header (bytes 2 to 5).
fn bmp_complete(b: &[u8]) -> bool {
    let Some(size) = b.get(2..6) else {
        return false;
    };
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
    size >= 26 && b.len() >= size
}

/// An SVG document ends with its root element: `</svg>` (or `</prefix:svg>`) closing the first
/// `<svg>` (nested ones are counted), or a root that closes itself (`<svg .../>`), followed by
/// nothing but white space and comments.
fn svg_complete(b: &[u8]) -> bool {
    let mut text = b.trim_ascii_end();
    while text.ends_with(b"-->") {
        match find_last(text, b"<!--") {
            Some(at) => text = text[..at].trim_ascii_end(),
            None => return false,
        }
    }
    let is_svg = |name: &[u8]| name == b"svg" || name.ends_with(b":svg");
    let mut depth = 0u32;
    let mut i = 0;
    while let Some(open) = text[i..].iter().position(|&c| c == b'<').map(|at| i + at) {
        let Some(close) = text[open..]
            .iter()
            .position(|&c| c == b'>')
            .map(|at| open + at)
        else {
            return false;
        };
        let tag = &text[open + 1..close];
        let (closing, rest) = match tag.strip_prefix(b"/") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let name_len = rest
            .iter()
            .position(|c| c.is_ascii_whitespace() || *c == b'/')
            .unwrap_or(rest.len());
        if is_svg(&rest[..name_len]) {
            match (closing, tag.ends_with(b"/")) {
                (true, _) => depth = depth.saturating_sub(1),
                (false, false) => depth += 1,
                (false, true) => {}
            }
            // The root is closed: the document is complete if nothing follows.
            if depth == 0 {
                return close == text.len() - 1;
            }
        }
        i = close + 1;
    }
    false
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real images as written by ffmpeg.
    const JPEG: &[u8] = include_bytes!("../../tests/fixtures/red.jpg");
    const PNG: &[u8] = include_bytes!("../../tests/fixtures/red.png");
    const GIF: &[u8] = include_bytes!("../../tests/fixtures/red.gif");

    #[test]
    fn whole_images_are_complete_and_every_prefix_is_not() {
        for (ty, img) in [("image/jpeg", JPEG), ("image/png", PNG), ("image/gif", GIF)] {
            assert!(is_complete(ty, img), "{ty} whole");
            for cut in 0..img.len() {
                assert!(
                    !is_complete(ty, &img[..cut]),
                    "{ty} cut at {cut} of {}",
                    img.len()
                );
            }
        }
    }

    #[test]
    fn a_type_with_parameters_or_in_capitals_is_checked_too() {
        assert!(is_complete("Image/JPEG; q=1", JPEG));
        assert!(!is_complete("Image/JPEG; q=1", &JPEG[..JPEG.len() - 1]));
    }

    #[test]
    fn other_types_are_taken_as_they_are() {
        assert!(is_complete("text/plain", b""));
        assert!(is_complete("application/octet-stream", &JPEG[..10]));
    }

    #[test]
    fn webp_is_complete_when_its_riff_length_is_there() {
        // A RIFF header stating 92 bytes after the first 8, then a VP8L chunk.
        let mut webp = b"RIFF\x5c\0\0\0WEBPVP8L\x50\0\0\0".to_vec();
        webp.resize(100, 0x2a);
        assert!(is_complete("image/webp", &webp));
        for cut in [99, 60, 20, 11] {
            assert!(!is_complete("image/webp", &webp[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn bmp_is_complete_when_the_size_in_its_header_is_there() {
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&12_342u32.to_le_bytes());
        bmp.resize(12_342, 0x7f);
        assert!(is_complete("image/bmp", &bmp));
        assert!(!is_complete("image/bmp", &bmp[..6000]));
        assert!(!is_complete("image/bmp", &bmp[..4]));
    }

    #[test]
    fn svg_is_complete_once_its_root_is_closed() {
        let svg = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\">\n<rect width=\"8\" height=\"8\" fill=\"red\"/>\n</svg>\n<!-- made by hand -->\n";
        assert!(is_complete("image/svg+xml", svg));
        let end = svg.len() - "</svg>\n<!-- made by hand -->\n".len();
        for cut in [end, end + 3, svg.len() / 2, 10] {
            assert!(!is_complete("image/svg+xml", &svg[..cut]), "cut at {cut}");
        }
        assert!(is_complete(
            "image/svg+xml",
            b"<s:svg xmlns:s=\"x\"></s:svg >"
        ));
        assert!(is_complete("image/svg+xml", b"<svg xmlns=\"x\"/>"));
        assert!(!is_complete("image/svg+xml", b"<svg xmlns=\"x\"><rect/>"));
        let nested = b"<svg><svg><rect/></svg><circle/></svg>";
        assert!(is_complete("image/svg+xml", nested));
        assert!(
            !is_complete("image/svg+xml", &nested[..24]),
            "inner svg closed only"
        );
    }
}
