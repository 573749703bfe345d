//! The frames the servers publish: valid JPEGs of an exact size built from one real seed, each
//! carrying the id of its change in a COM segment, so that a client knows which change a part
//! is from its first bytes.

/// A real 40 KB JPEG; frames are this with COM padding inserted to the wanted size.
const SEED_JPEG: &[u8] = include_bytes!("../../tests/fixtures/noise1.jpg");
pub const FRAME_100K: usize = 100_000;
/// About what a 640×480 camera frame weighs as a JPEG (figure 9).
pub const FRAME_40K: usize = 40_960;
pub const FRAME_1M: usize = 1 << 20;
/// SOI and EOI: the smallest frame pushserve's completeness check takes as a JPEG (figure 8).
pub const TINY_JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xD9];

/// A valid JPEG of exactly `size` bytes: SOI, COM segments of padding (the first one starting
/// with `PSBENCH:` and `id`, so clients know which change a part is), then the seed after SOI.
pub fn jpeg(size: usize, id: u32) -> Vec<u8> {
    let rest = &SEED_JPEG[2..];
    assert!(size >= 2 + 4 + 12 + rest.len(), "frame too small");
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut pad = size - 2 - rest.len();
    let mut rng = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut first = true;
    while pad > 0 {
        let mut seg = pad.min(65_533 + 4);
        if (1..4).contains(&(pad - seg)) {
            seg -= 4;
        }
        let payload = seg - 4;
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&u16::try_from(payload + 2).unwrap().to_be_bytes());
        let end = out.len() + payload;
        if first {
            out.extend_from_slice(b"PSBENCH:");
            out.extend_from_slice(&id.to_le_bytes());
            first = false;
        }
        while out.len() < end {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            out.push(b'a' + (rng % 26) as u8);
        }
        pad -= seg;
    }
    out.extend_from_slice(rest);
    assert_eq!(out.len(), size);
    out
}

/// The change id a part's body carries (0 if none).
pub fn frame_id(body_start: &[u8]) -> u32 {
    match body_start.get(6..18) {
        Some(b) if &b[..8] == b"PSBENCH:" => u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        _ => 0,
    }
}
