//! Recognises a complete image, so a file caught mid-write is never published.
//!
//! Only formats whose end can be found by walking their structure are checked (JPEG, PNG, GIF,
//! WebP); for every other type the re-stat in `file.rs` is the only guard. Pure functions, no I/O.

/// Whether `bytes` can be published as a frame of type `content_type`: any non-image type is
/// accepted as is; a JPEG, PNG, GIF or WebP type needs a whole image of one of those formats.
pub fn is_complete(content_type: &str, bytes: &[u8]) -> bool {
    let checked = matches!(
        content_type,
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    );
    if !checked {
        return true;
    }
    match bytes {
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
    fn other_types_are_taken_as_they_are() {
        assert!(is_complete("text/plain", b""));
        assert!(is_complete("application/octet-stream", &JPEG[..10]));
    }

    #[test]
    fn webp_is_complete_when_its_riff_length_is_there() {
        let mut webp = b"RIFF\x08\0\0\0WEBPVP8 ".to_vec();
        assert!(is_complete("image/webp", &webp));
        webp.truncate(11);
        assert!(!is_complete("image/webp", &webp));
    }
}
