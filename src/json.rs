//! Just enough JSON writing for /events, /poll and /status: string escaping. (Values are
//! assembled with `format!`; nothing here parses.)

/// `s` as a JSON string literal, quotes included.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Also escape < so that a frame's text can never close a <script> it is embedded in.
            c if (c as u32) < 0x20 || c == '<' || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_quotes_controls_and_angle_brackets() {
        assert_eq!(
            super::string("a\"b\\c\nd\u{1}</"),
            r#""a\"b\\c\nd\u0001\u003c/""#
        );
    }
}
