//! The one JSON writer for documents and log lines: strings (copied as they are unless they
//! need escaping, which is checked eight bytes at a time), values, and the members of an object
//! ([`Members`], the one place that puts commas between them).

/// Writes `s` as a JSON string.
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    if needs_escaping(s.as_bytes()) {
        // Escaping as serde_json does; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
    } else {
        // Most strings (names, ids, regions) need no escaping: copy them as they are.
        buf.reserve(s.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    }
}

/// Writes `s` as a JSON string into a `String` (a log line).
pub(crate) fn push_str(out: &mut String, s: &str) {
    if needs_escaping(s.as_bytes()) {
        if let Ok(escaped) = serde_json::to_string(s) {
            out.push_str(&escaped);
        }
    } else {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Writes any serializable value (writing into a Vec cannot fail).
pub(crate) fn write_value(buf: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    let _ = serde_json::to_writer(&mut *buf, value);
}

/// Whether `bytes` hold one JSON must escape (`"`, `\` or a control character), looked for
/// eight bytes at a time: every string of every document passes here.
fn needs_escaping(bytes: &[u8]) -> bool {
    let Some(tail) = bytes.len().checked_sub(8) else {
        // Shorter than a word: padded with spaces, which need no escaping.
        let mut eight = [b' '; 8];
        eight[..bytes.len()].copy_from_slice(bytes);
        return word_needs_escaping(u64::from_le_bytes(eight));
    };
    let mut chunks = bytes.chunks_exact(8);
    if chunks.any(|chunk| word_needs_escaping(word(chunk))) {
        return true;
    }
    // The last eight bytes, overlapping what was read (read again when the length is a
    // multiple of eight): no byte-by-byte tail.
    word_needs_escaping(word(&bytes[tail..]))
}

/// Eight bytes as a word. Every caller passes exactly eight (`chunks_exact(8)`, or the last
/// eight of a slice at least that long), so the copy cannot fail on its length.
fn word(chunk: &[u8]) -> u64 {
    let mut eight = [0; 8];
    eight.copy_from_slice(chunk);
    u64::from_le_bytes(eight)
}

/// Whether a byte of `word` is `"`, `\` or below 0x20, with no branch per test.
fn word_needs_escaping(word: u64) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const TOPS: u64 = u64::from_le_bytes([0x80; 8]);
    // The top bit of each byte of `word` below `n` (n <= 0x80): subtracting borrows into
    // the top bit of such a byte only. Exact as a yes/no (a borrow runs on only past a byte
    // that hit), so the three tests are or-ed before the one look.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & TOPS;
    below(word, 0x20)
        | below(word ^ (ONES * u64::from(b'"')), 1)
        | below(word ^ (ONES * u64::from(b'\\')), 1)
        != 0
}

/// The members of one JSON object, written as they come: the object is opened by its first
/// member (with `opening`, e.g. `,"annotations":{`), so an object with no members can be left
/// out entirely, and each later member is preceded by a comma.
#[derive(Debug)]
pub(crate) struct Members {
    opening: &'static [u8],
    open: bool,
}

impl Members {
    /// An object that `opening` opens (it ends with `{`).
    pub(crate) fn new(opening: &'static [u8]) -> Self {
        Members {
            opening,
            open: false,
        }
    }

    /// Writes what goes before the next member: the opening or a comma.
    pub(crate) fn next(&mut self, buf: &mut Vec<u8>) {
        if self.open {
            buf.push(b',');
        } else {
            buf.extend_from_slice(self.opening);
            self.open = true;
        }
    }

    /// Writes `"key":`, opening the object or adding a comma first.
    pub(crate) fn key(&mut self, buf: &mut Vec<u8>, key: &str) {
        self.next(buf);
        write_str(buf, key);
        buf.push(b':');
    }

    /// [`Members::key`] for a key that needs no escaping (a name this crate chose, or an
    /// annotation key, which holds only letters, digits and `_`): copied as it is.
    pub(crate) fn plain_key(&mut self, buf: &mut Vec<u8>, key: &str) {
        debug_assert!(!needs_escaping(key.as_bytes()), "{key:?} needs escaping");
        self.next(buf);
        buf.reserve(key.len() + 3);
        buf.push(b'"');
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(b"\":");
    }

    /// Closes the object if any member opened it; `closing` is `}` (or `}}` for an object
    /// inside an object opened together with it).
    pub(crate) fn close(self, buf: &mut Vec<u8>, closing: &[u8]) {
        if self.open {
            buf.extend_from_slice(closing);
        }
    }

    /// Whether any member was written.
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_only_when_needed() {
        let mut buf = Vec::new();
        write_str(&mut buf, "plain text, long enough for a word");
        assert_eq!(buf, br#""plain text, long enough for a word""#);
        for s in [
            "a\"b",
            "tab\there",
            "back\\slash at the end of a word",
            "\u{1}",
        ] {
            let mut buf = Vec::new();
            write_str(&mut buf, s);
            let parsed: String = serde_json::from_slice(&buf).expect("valid JSON");
            assert_eq!(parsed, s);
            let mut out = String::new();
            push_str(&mut out, s);
            assert_eq!(out.as_bytes(), buf.as_slice());
        }
    }

    #[test]
    fn members_put_commas_between_members_only() {
        let mut buf = b"{\"a\":1".to_vec();
        let empty = Members::new(br#","o":{"#);
        assert!(!empty.is_open());
        empty.close(&mut buf, b"}");
        let mut members = Members::new(br#","o":{"#);
        members.key(&mut buf, "x");
        buf.push(b'1');
        members.key(&mut buf, "y");
        buf.push(b'2');
        members.close(&mut buf, b"}");
        buf.push(b'}');
        assert_eq!(buf, br#"{"a":1,"o":{"x":1,"y":2}}"#);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// The word-at-a-time test says what a byte-by-byte one says, wherever the byte sits.
        #[test]
        fn needs_escaping_agrees_with_the_bytes(
            bytes in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Just(b'"'), proptest::strategy::Just(b'\\'), 0_u8..0x20,
                0x20_u8..=0x7f, 0x80_u8..=0xff, proptest::strategy::Just(b'a'),
            ], 0..40)
        ) {
            let by_byte = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_escaping(&bytes), by_byte);
        }
    }
}
