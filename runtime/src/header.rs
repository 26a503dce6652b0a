//! The X-Ray trace header: `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`.
//!
//! Lambda hands it to the function in the `Lambda-Runtime-Trace-Id` header of each invocation
//! (`lambda_runtime::Context::xray_trace_id`) and, for one-at-a-time runtimes only, in the
//! `_X_AMZN_TRACE_ID` environment variable.

use std::fmt;

use opentelemetry::{SpanId, TraceId};

/// The sampling decision carried by a trace header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Sampling {
    /// `Sampled=1`: the caller traces this request.
    Sampled,
    /// `Sampled=0`: the caller does not trace this request.
    NotSampled,
    /// `Sampled=?`: the caller left the decision to the receiver.
    Deferred,
    /// No `Sampled` key, or a value X-Ray does not define.
    Missing,
}

impl Sampling {
    /// Whether this crate records the invocation.
    ///
    /// Only an explicit `Sampled=0` switches recording off. A deferred or missing decision is
    /// taken as "record": in Lambda the service writes `0` or `1` itself, so a header without a
    /// decision comes from a caller that traces but did not decide, and losing its trace would be
    /// the surprise. (The `XrayPropagator` of opentelemetry-aws takes it as "not sampled".)
    #[must_use]
    pub(crate) fn is_recorded(self) -> bool {
        !matches!(self, Sampling::NotSampled)
    }

    /// `Sampled=1` or `Sampled=0`, as a span's sampled flag says.
    pub(crate) fn of(sampled: bool) -> Self {
        if sampled {
            Sampling::Sampled
        } else {
            Sampling::NotSampled
        }
    }
}

/// A parsed X-Ray trace header.
///
/// Parsing is total: [`TraceHeader::parse`] takes any string and returns `None` for anything
/// that is not a usable header. Keys other than `Root`, `Parent` and `Sampled` (`Self`,
/// `Lineage`, ...) are kept verbatim and written back by [`fmt::Display`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceHeader {
    trace_id: TraceId,
    parent_id: SpanId,
    sampling: Sampling,
    /// The other `key=value` pairs, `;`-separated, as they came.
    extra: String,
}

/// Why a header was not usable: named in the one warning a malformed header costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    MissingRoot,
    BadRoot,
    /// `Root` without `Parent`: Lambda's `PassThrough` mode, with the trace it names.
    MissingParent(TraceId),
    BadParent,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::MissingRoot => "no Root key",
            HeaderError::BadRoot => "Root is not of the form 1-<8 hex>-<24 hex>",
            HeaderError::MissingParent(_) => "no Parent key",
            HeaderError::BadParent => "Parent is not 16 hex digits",
        })
    }
}

impl TraceHeader {
    /// Parses a header; `None` for anything that is not a usable header.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn parse(header: &str) -> Option<Self> {
        Self::try_parse(header).ok()
    }

    pub(crate) fn try_parse(header: &str) -> Result<Self, HeaderError> {
        match Self::canonical(header) {
            Some(canonical) => Ok(canonical),
            None => Self::parse_fields(header),
        }
    }

    /// Any form: fields in any order, keys in any case, whitespace around them, other keys
    /// kept.
    fn parse_fields(header: &str) -> Result<Self, HeaderError> {
        let mut root = None;
        let mut parent = None;
        let mut sampling = Sampling::Missing;
        let mut extra = String::new();
        // Byte-level: this runs on every invocation. Keys and values are ASCII; whitespace
        // around them is ASCII whitespace in every header seen in the wild.
        for field in header.as_bytes().split(|&b| b == b';') {
            // Split at ASCII bytes only, so each piece is whole UTF-8.
            let field = std::str::from_utf8(field).unwrap_or_default().trim_ascii();
            if field.is_empty() {
                continue;
            }
            let (key, value) = match field.bytes().position(|b| b == b'=') {
                Some(at) => (&field[..at], &field[at + 1..]),
                None => (field, ""),
            };
            let (key, value) = (key.trim_ascii(), value.trim_ascii());
            if key.eq_ignore_ascii_case("Root") {
                root = Some(parse_root(value).ok_or(HeaderError::BadRoot)?);
            } else if key.eq_ignore_ascii_case("Parent") {
                parent = Some(parse_parent(value).ok_or(HeaderError::BadParent)?);
            } else if key.eq_ignore_ascii_case("Sampled") {
                sampling = match value {
                    "1" => Sampling::Sampled,
                    "0" => Sampling::NotSampled,
                    "?" => Sampling::Deferred,
                    _ => Sampling::Missing,
                };
            } else {
                if !extra.is_empty() {
                    extra.push(';');
                }
                extra.push_str(field);
            }
        }
        let trace_id = root.ok_or(HeaderError::MissingRoot)?;
        Ok(TraceHeader {
            trace_id,
            parent_id: parent.ok_or(HeaderError::MissingParent(trace_id))?,
            sampling,
            extra,
        })
    }

    /// The form Lambda and the SDKs write, byte for byte (`Root=1-8hex-24hex;Parent=16hex`,
    /// then `;Sampled=1|0|?` or nothing), read at fixed offsets; `None` for any other form,
    /// which the general parser reads to the same result.
    fn canonical(header: &str) -> Option<Self> {
        const ROOT: usize = "Root=".len();
        const PARENT: usize = ROOT + 35 + ";Parent=".len();
        const SAMPLED: usize = PARENT + 16;
        let bytes = header.as_bytes();
        let sampling = match bytes.len() {
            SAMPLED => Sampling::Missing,
            len if len == SAMPLED + ";Sampled=1".len()
                && &bytes[SAMPLED..SAMPLED + 9] == b";Sampled=" =>
            {
                match bytes[SAMPLED + 9] {
                    b'1' => Sampling::Sampled,
                    b'0' => Sampling::NotSampled,
                    b'?' => Sampling::Deferred,
                    _ => return None,
                }
            }
            _ => return None,
        };
        if !bytes.starts_with(b"Root=") || &bytes[PARENT - 8..PARENT] != b";Parent=" {
            return None;
        }
        Some(TraceHeader {
            trace_id: parse_root(header.get(ROOT..ROOT + 35)?)?,
            parent_id: parse_parent(header.get(PARENT..SAMPLED)?)?,
            sampling,
            extra: String::new(),
        })
    }

    /// The trace id (`Root`).
    #[must_use]
    pub(crate) fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The id of the segment this invocation's subsegments hang under (`Parent`).
    #[must_use]
    pub(crate) fn parent_id(&self) -> SpanId {
        self.parent_id
    }

    /// The sampling decision (`Sampled`).
    #[must_use]
    pub(crate) fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// The keys this crate does not interpret, verbatim (`Self=...;Lineage=...`).
    #[must_use]
    pub(crate) fn extra(&self) -> &str {
        &self.extra
    }

    /// The remote span the header names (`Root`, `Parent`), as a parent or a link.
    pub(crate) fn span_context(&self, sampled: bool) -> opentelemetry::trace::SpanContext {
        use opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
        let flags = TraceFlags::default().with_sampled(sampled);
        SpanContext::new(self.trace_id, self.parent_id, flags, true, TraceState::NONE)
    }
}

/// Lower-case hex, without `fmt` (whose machinery was a fifth of an invocation's instructions).
pub(crate) fn hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Four bytes at a time, by arithmetic on a word (ids are 8 and 16 bytes; every document
    // writes several).
    let mut words = bytes.chunks_exact(4);
    for word in &mut words {
        buf.extend_from_slice(&hex_word(u32::from_be_bytes([
            word[0], word[1], word[2], word[3],
        ])));
    }
    for &b in words.remainder() {
        buf.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]);
    }
}

/// The eight hex digits of `word`, most significant first.
fn hex_word(word: u32) -> [u8; 8] {
    // Each nibble spread into a byte of its own, in order.
    let mut x = u64::from(word);
    x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // 1 in each byte whose nibble is 10 or more (adding 6 carries it into bit 4).
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    // '0' + n, and 'a' - '0' - 10 = 39 more for the letters.
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

/// X-Ray's form of a trace id, `1-<8 hex: epoch seconds>-<24 hex>`: the one formatter, for
/// documents, headers, log lines and the waterfall.
pub(crate) fn write_trace_id(buf: &mut Vec<u8>, id: TraceId) {
    let bytes = id.to_bytes();
    buf.extend_from_slice(b"1-");
    hex(buf, &bytes[..4]);
    buf.push(b'-');
    hex(buf, &bytes[4..]);
}

/// [`write_trace_id`] for a `fmt::Write` (a log line, the waterfall).
pub(crate) fn format_trace_id(trace_id: TraceId, out: &mut impl fmt::Write) -> fmt::Result {
    let mut buf = Vec::with_capacity(TRACE_ID_LEN);
    write_trace_id(&mut buf, trace_id);
    // ASCII: always UTF-8.
    out.write_str(std::str::from_utf8(&buf).unwrap_or_default())
}

/// `1-` and 8 + 1 + 24 hex digits.
const TRACE_ID_LEN: usize = 35;

/// The one header writer: `Root=1-…;Parent=…[;Sampled=1|0|?][;extra]`, for the header a call
/// carries (`propagation`) and for [`TraceHeader`]'s `Display`.
///
/// The string is allocated to its exact length: a header value made from a `String` whose
/// capacity is its length takes the allocation as it is; with room to spare, `bytes`
/// allocates again to share it.
pub(crate) fn write_header(
    trace_id: TraceId,
    parent_id: SpanId,
    sampling: Sampling,
    extra: &str,
) -> String {
    let sampled: &[u8] = match sampling {
        Sampling::Sampled => b";Sampled=1",
        Sampling::NotSampled => b";Sampled=0",
        Sampling::Deferred => b";Sampled=?",
        Sampling::Missing => b"",
    };
    let extra_len = if extra.is_empty() { 0 } else { 1 + extra.len() };
    // Root= (5), the id, ;Parent= (8), 16 hex digits.
    let mut out = Vec::with_capacity(5 + TRACE_ID_LEN + 8 + 16 + sampled.len() + extra_len);
    out.extend_from_slice(b"Root=");
    write_trace_id(&mut out, trace_id);
    out.extend_from_slice(b";Parent=");
    hex(&mut out, &parent_id.to_bytes());
    out.extend_from_slice(sampled);
    if !extra.is_empty() {
        out.push(b';');
        out.extend_from_slice(extra.as_bytes());
    }
    // ASCII and a `str`: always UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

impl fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&write_header(
            self.trace_id,
            self.parent_id,
            self.sampling,
            &self.extra,
        ))
    }
}

fn parse_root(value: &str) -> Option<TraceId> {
    // 1-<8 hex: epoch seconds>-<24 hex>, read at fixed offsets.
    let bytes = value.as_bytes();
    if bytes.len() != 35 || !bytes.starts_with(b"1-") || bytes[10] != b'-' {
        return None;
    }
    let epoch = parse_hex8(&bytes[2..10])?;
    let random = [
        parse_hex8(&bytes[11..19])?,
        parse_hex8(&bytes[19..27])?,
        parse_hex8(&bytes[27..35])?,
    ];
    let id = u128::from(epoch) << 96
        | u128::from(random[0]) << 64
        | u128::from(random[1]) << 32
        | u128::from(random[2]);
    // An all-zero id is invalid in OpenTelemetry and in X-Ray.
    (id != 0).then(|| TraceId::from_bytes(id.to_be_bytes()))
}

fn parse_parent(value: &str) -> Option<SpanId> {
    let bytes = value.as_bytes();
    if bytes.len() != 16 {
        return None;
    }
    let id = u64::from(parse_hex8(&bytes[..8])?) << 32 | u64::from(parse_hex8(&bytes[8..])?);
    (id != 0).then(|| SpanId::from_bytes(id.to_be_bytes()))
}

/// Each byte's value as a hex digit; [`NOT_HEX`] for any other byte.
static HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut byte = 0u8;
    loop {
        table[byte as usize] = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            b'A'..=b'F' => byte - b'A' + 10,
            _ => NOT_HEX,
        };
        if byte == u8::MAX {
            break table;
        }
        byte += 1;
    }
};
const NOT_HEX: u8 = 0x80;

/// Exactly eight hex digits (no sign, no prefix, no whitespace), by table, unrolled and
/// without a branch per digit: every invocation reads 48 of them.
fn parse_hex8(digits: &[u8]) -> Option<u32> {
    let digits: &[u8; 8] = digits.try_into().ok()?;
    let mut value = 0u32;
    let mut seen = 0u8;
    for &b in digits {
        let nibble = HEX_VALUE[usize::from(b)];
        seen |= nibble;
        value = value << 4 | u32::from(nibble & 0x0f);
    }
    (seen & NOT_HEX == 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LAMBDA: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn parses_the_lambda_header() {
        assert!(
            TraceHeader::canonical(LAMBDA).is_some(),
            "Lambda's form takes the fast way"
        );
        let h = TraceHeader::parse(LAMBDA).expect("valid");
        assert_eq!(
            h.trace_id(),
            TraceId::from_hex("5759e988bd862e3fe1be46a994272793").expect("hex")
        );
        assert_eq!(
            h.parent_id(),
            SpanId::from_hex("53995c3f42cd8ad8").expect("hex")
        );
        assert_eq!(h.sampling(), Sampling::Sampled);
        assert_eq!(h.to_string(), LAMBDA);
    }

    #[test]
    fn sampling_values() {
        let base = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8";
        for (suffix, expected) in [
            (";Sampled=1", Sampling::Sampled),
            (";Sampled=0", Sampling::NotSampled),
            (";Sampled=?", Sampling::Deferred),
            ("", Sampling::Missing),
            (";Sampled=yes", Sampling::Missing),
        ] {
            let h = TraceHeader::parse(&format!("{base}{suffix}")).expect("valid");
            assert_eq!(h.sampling(), expected, "{suffix}");
        }
        assert!(!Sampling::NotSampled.is_recorded());
        assert!(Sampling::Deferred.is_recorded());
        assert!(Sampling::Missing.is_recorded());
    }

    #[test]
    fn keeps_other_keys_and_order_free() {
        let h = TraceHeader::parse(
            " Sampled=0 ; Self=1-67891234-12456789abcdef012345678;Parent=53995c3f42cd8ad8;Lineage=a87bd80c:1|68fd508a:5;Root=1-5759e988-bd862e3fe1be46a994272793;",
        )
        .expect("valid");
        assert_eq!(h.sampling(), Sampling::NotSampled);
        assert_eq!(
            h.extra(),
            "Self=1-67891234-12456789abcdef012345678;Lineage=a87bd80c:1|68fd508a:5"
        );
        assert_eq!(
            h.to_string(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Self=1-67891234-12456789abcdef012345678;Lineage=a87bd80c:1|68fd508a:5"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            ";;;",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Parent=53995c3f42cd8ad8",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e98-8bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279g;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=+3995c3f42cd8ad8",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8é",
        ] {
            assert_eq!(TraceHeader::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            TraceHeader::try_parse("Parent=53995c3f42cd8ad8"),
            Err(HeaderError::MissingRoot)
        );
    }

    fn valid_header() -> impl Strategy<Value = String> {
        (
            1u32..,
            any::<u128>().prop_map(|x| x & ((1u128 << 96) - 1)),
            1u64..,
            prop_oneof!["1", "0", "\\?", ""],
            // Other keys, but never one of ours in another case (the parser takes keys
            // case-insensitively, so `rOot=` would be a second, empty `Root`).
            "(;[A-Za-z]{1,8}=[A-Za-z0-9:|\\-]{0,20}){0,3}".prop_filter(
                "a key of our own in another case",
                |extra: &String| {
                    extra.split(';').all(|pair| {
                        let key = pair.split('=').next().unwrap_or_default();
                        !["root", "parent", "sampled"]
                            .iter()
                            .any(|own| key.eq_ignore_ascii_case(own))
                    })
                },
            ),
        )
            .prop_map(|(epoch, random, parent, sampled, extra)| {
                let sampled = if sampled.is_empty() {
                    String::new()
                } else {
                    format!(";Sampled={sampled}")
                };
                format!("Root=1-{epoch:08x}-{random:024x};Parent={parent:016x}{sampled}{extra}")
            })
    }

    // 400k + 100k + 300k generated headers; with the daemon-address parser's 300k, the
    // parsers see 1.1 million cases per test run.
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400_000))]

        #[test]
        fn any_string_parses_without_panic(s in any::<String>()) {
            let _ = TraceHeader::parse(&s);
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100_000))]

        /// The fixed-offset reading agrees with the general one wherever it reads at all.
        #[test]
        fn the_canonical_form_reads_as_the_general_parser_reads_it(
            h in valid_header(),
            cut in 0_usize..80,
            byte in 0_u8..0x80,
        ) {
            let general = TraceHeader::parse_fields(&h).ok();
            if let Some(canonical) = TraceHeader::canonical(&h) {
                prop_assert_eq!(Some(canonical), general);
            }
            // One byte changed anywhere: the same agreement.
            let mut changed = h.clone().into_bytes();
            if let Some(b) = changed.get_mut(cut) {
                *b = byte;
            }
            let changed = String::from_utf8(changed).expect("ASCII");
            if let Some(canonical) = TraceHeader::canonical(&changed) {
                prop_assert_eq!(Some(canonical), TraceHeader::parse_fields(&changed).ok());
            }
        }

        #[test]
        fn valid_headers_round_trip(h in valid_header()) {
            let parsed = TraceHeader::parse(&h).expect("generated headers are valid");
            // The writer a call's header ships with, allocated to its exact length.
            let written = write_header(parsed.trace_id, parsed.parent_id, parsed.sampling, &parsed.extra);
            prop_assert_eq!(written.capacity(), written.len());
            prop_assert_eq!(&written, &h);
            prop_assert_eq!(parsed.to_string(), h.clone());
            prop_assert_eq!(TraceHeader::parse(&parsed.to_string()), Some(parsed));
        }

    }

    proptest! {
        /// The table-driven id readers agree with the standard library's radix parser on any
        /// string of the right length, hex or not.
        #[test]
        fn ids_read_as_from_str_radix_reads_them(
            root in "(1-[0-9a-fA-Fg]{8}-[0-9a-fA-Fg]{24})|([0-9a-f -]{35})",
            parent in "[0-9a-fA-FxX+]{16}",
        ) {
            let reference = root
                .strip_prefix("1-")
                .filter(|rest| rest.as_bytes()[8] == b'-')
                .and_then(|rest| {
                    let (epoch, random) = (&rest[..8], &rest[9..]);
                    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit()).then(|| u128::from_str_radix(s, 16).ok()).flatten();
                    Some(hex(epoch)? << 96 | hex(random)?)
                })
                .filter(|id| *id != 0)
                .map(|id| TraceId::from_bytes(id.to_be_bytes()));
            prop_assert_eq!(parse_root(&root), reference);
            let reference = parent
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u64::from_str_radix(&parent, 16).ok())
                .flatten()
                .filter(|id| *id != 0)
                .map(|id| SpanId::from_bytes(id.to_be_bytes()));
            prop_assert_eq!(parse_parent(&parent), reference);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300_000))]

        #[test]
        fn mutated_headers_never_panic(
            h in valid_header(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..6),
        ) {
            let mut chars: Vec<char> = h.chars().collect();
            for (index, c, op) in edits {
                if chars.is_empty() { break; }
                let i = index.index(chars.len());
                match op {
                    0 => chars[i] = c,
                    1 => { chars.remove(i); }
                    _ => chars.insert(i, c),
                }
            }
            let mutated: String = chars.into_iter().collect();
            if let Some(parsed) = TraceHeader::parse(&mutated) {
                // Whatever is accepted formats back to something that parses to the same value.
                prop_assert_eq!(TraceHeader::parse(&parsed.to_string()), Some(parsed));
            }
        }
    }
    proptest! {
        /// Ids are written by word arithmetic: each byte as two lowercase hex digits, in order.
        #[test]
        fn hex_writes_each_byte_as_two_lowercase_digits(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let mut buf = Vec::new();
            hex(&mut buf, &bytes);
            let expected = bytes.iter().fold(String::new(), |mut out, b| {
                use std::fmt::Write as _;
                let _ = write!(out, "{b:02x}");
                out
            });
            prop_assert_eq!(String::from_utf8(buf).expect("ASCII"), expected);
        }
    }
}
