//! Recognises a complete image, so a file caught mid-write is never published.
//!
//! Every image type of the default `--ext` is checked: JPEG, PNG, GIF, WebP and BMP by their
//! walkers in `image.rs`, which must reach the image's end; SVG by the closing tag of its root
//! element. For other types (HTML, text) the re-stat in `file.rs` is the only guard. Pure
//! functions, no I/O.

use crate::decode::image::image_end;
use crate::decode::media::media_type;

/// Whether `bytes` can be published as a frame of type `content_type` (parameters and case
/// aside): any other type is accepted as is; a JPEG, PNG, GIF, WebP or BMP type needs a whole
/// image of one of those formats (what follows its end is not looked at), an SVG type a whole
/// SVG document.
pub fn is_complete(content_type: &str, bytes: &[u8]) -> bool {
    match media_type(content_type).as_str() {
        "image/jpeg" | "image/png" | "image/gif" | "image/webp" | "image/bmp" => {
            image_end(bytes).is_some()
        }
        "image/svg+xml" => svg_complete(bytes),
        _ => true,
    }
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
    fn an_image_whose_structure_breaks_is_not_complete() {
        // A PNG chunk type that is not letters; a PNG or GIF signature wrong past its first
        // four bytes. Each used to pass as long as the end marker could be reached.
        let mut bad_chunk = PNG.to_vec();
        bad_chunk[12] = b'1';
        let mut bad_png_signature = PNG.to_vec();
        bad_png_signature[6] = b'x';
        let mut bad_gif_signature = GIF.to_vec();
        bad_gif_signature[4] = b'x';
        for (ty, img) in [
            ("image/png", &bad_chunk),
            ("image/png", &bad_png_signature),
            ("image/gif", &bad_gif_signature),
        ] {
            assert!(!is_complete(ty, img), "{ty} {:?}", &img[..16]);
        }
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
