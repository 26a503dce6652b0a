//! AWS X-Ray's rules for names and annotation keys, in one place for the two crates that
//! apply them: `xray-lambda-macros` checks literal names and keys at compile time with these
//! functions, and `xray-lambda` rewrites names and keys it is handed at run time with the same
//! ones. A name the macros accept is written as it is; one they reject does not compile. Use
//! the `xray-lambda` crate, which applies them.
//!
//! [`cases`] is the one table of names and keys that both crates' tests hold them to.

use std::borrow::Cow;

pub mod cases;

/// The longest (sub)segment name X-Ray accepts, counted in bytes (X-Ray counts characters;
/// bytes never exceed that).
pub const MAX_NAME: usize = 200;

/// The longest annotation key X-Ray indexes. Keys are ASCII, so bytes and characters agree.
pub const MAX_ANNOTATION_KEY: usize = 500;

/// The annotations xray-lambda writes on every handler subsegment; one of the user's own of
/// the same key would replace it.
pub const RESERVED_ANNOTATIONS: [&str; 2] = ["ColdStart", "Service"];

/// The ASCII punctuation X-Ray takes in a name, beside letters, digits and the space.
pub const NAME_PUNCTUATION: &str = "_.:/%&#=+\\-@";

/// An ASCII byte X-Ray accepts in a name: a letter, a digit, the space or
/// [`NAME_PUNCTUATION`]. (Not a tab or any other whitespace.)
#[must_use]
#[inline]
pub fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[usize::from(b)]
}

/// [`is_name_byte`] for each byte, built at compile time: every span's name is checked as it
/// is written, a byte at a time.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        // `b < 256`: the cast keeps it.
        #[allow(clippy::cast_possible_truncation)]
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || byte == b' ';
        b += 1;
    }
    let punctuation = NAME_PUNCTUATION.as_bytes();
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

/// A character X-Ray accepts in a name: any Unicode letter or digit, or an ASCII one of
/// [`is_name_byte`].
#[must_use]
pub fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || (c.is_ascii() && is_name_byte(c as u8))
}

/// A name X-Ray accepts as it is: 1 to [`MAX_NAME`] bytes of [`is_name_char`].
#[must_use]
#[inline]
pub fn name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        // Bytes first: names are ASCII almost always.
        && (name.bytes().all(is_name_byte) || name.chars().all(is_name_char))
}

/// The name as X-Ray accepts it: itself when valid, else with every other character replaced
/// by `_`, cut to [`MAX_NAME`] bytes on a character boundary; `unnamed` for an empty name.
#[must_use]
pub fn valid_name(name: &str) -> Cow<'_, str> {
    if name_is_valid(name) {
        return Cow::Borrowed(name);
    }
    let mut valid: String = name
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    while valid.len() > MAX_NAME {
        valid.pop();
    }
    if valid.is_empty() {
        valid.push_str("unnamed");
    }
    Cow::Owned(valid)
}

/// A character X-Ray indexes in an annotation key: `A-Z a-z 0-9 _`.
#[must_use]
#[inline]
pub fn is_annotation_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `Ok` for a key X-Ray indexes (1 to [`MAX_ANNOTATION_KEY`] of [`is_annotation_key_char`]),
/// else the key it would index instead: other characters become `_`, cut to
/// [`MAX_ANNOTATION_KEY`]; `_` for an empty key.
///
/// # Errors
/// The key to write instead, when `key` is not one X-Ray indexes.
#[inline]
pub fn annotation_key(key: &str) -> Result<&str, String> {
    // Bytes, not chars, on the common path: every valid character is ASCII.
    if !key.is_empty()
        && key.len() <= MAX_ANNOTATION_KEY
        && key.bytes().all(|b| is_annotation_key_char(char::from(b)))
    {
        return Ok(key);
    }
    let mut fixed: String = key
        .chars()
        .take(MAX_ANNOTATION_KEY)
        .map(|c| if is_annotation_key_char(c) { c } else { '_' })
        .collect();
    if fixed.is_empty() {
        fixed.push('_');
    }
    Err(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_for_the_rules_themselves() {
        for &(name, valid) in cases::NAMES {
            assert_eq!(name_is_valid(name), valid, "{name:?}");
            assert_eq!(valid_name(name) == name, valid, "{name:?}");
            assert!(name_is_valid(&valid_name(name)), "{name:?}");
        }
        for &(key, valid) in cases::ANNOTATION_KEYS {
            assert_eq!(annotation_key(key).is_ok(), valid, "{key:?}");
            if let Err(fixed) = annotation_key(key) {
                assert!(annotation_key(&fixed).is_ok(), "{key:?} -> {fixed:?}");
            }
        }
    }

    #[test]
    fn the_byte_table_is_the_rule() {
        for b in 0..=u8::MAX {
            let rule =
                b.is_ascii_alphanumeric() || b == b' ' || NAME_PUNCTUATION.as_bytes().contains(&b);
            assert_eq!(is_name_byte(b), rule, "{b}");
        }
    }

    #[test]
    fn rewrites() {
        assert_eq!(valid_name("handler"), "handler");
        assert_eq!(valid_name("a\"b"), "a_b");
        assert_eq!(valid_name("a\tb"), "a_b");
        assert_eq!(valid_name(""), "unnamed");
        assert_eq!(valid_name(&"x".repeat(300)).len(), 200);
        // 150 two-byte letters: 300 bytes, cut to 100 letters.
        assert_eq!(valid_name(&"é".repeat(150)), "é".repeat(100));
        assert_eq!(annotation_key("user_id"), Ok("user_id"));
        assert_eq!(annotation_key("user-id"), Err("user_id".to_owned()));
        assert_eq!(annotation_key(""), Err("_".to_owned()));
        assert_eq!(annotation_key(&"k".repeat(501)), Err("k".repeat(500)));
    }
}
