//! W3C Trace Context (`traceparent`), the header OpenTelemetry SDKs read by default: written
//! beside X-Ray's on every call, read from an HTTP function's request and an SQS message's
//! attributes. The ids are X-Ray's own bytes: `1-5759e988-bd862e3fe1be46a994272793` is the
//! W3C trace id `5759e988bd862e3fe1be46a994272793`, as opentelemetry-aws's propagator
//! converts them.

use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
use opentelemetry::SpanId;

use crate::header::hex;

/// The header's name (HTTP header names are case-insensitive; the spec writes it so).
#[cfg_attr(
    not(any(
        feature = "aws-sdk",
        feature = "tower",
        feature = "reqwest",
        feature = "lambda-http",
        feature = "events"
    )),
    allow(dead_code)
)]
pub(crate) const TRACEPARENT: &str = "traceparent";

/// `traceparent` as an `http` header name, built at compile time (see
/// `propagation::TRACE_HEADER_NAME`).
#[cfg(any(feature = "lambda-http", feature = "tower", feature = "reqwest"))]
pub(crate) const TRACEPARENT_NAME: http::HeaderName = http::HeaderName::from_static(TRACEPARENT);

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`: 55 bytes, allocated to its
/// length (a header value made from it takes the allocation as it is).
#[cfg_attr(
    not(any(
        feature = "aws-sdk",
        feature = "tower",
        feature = "reqwest",
        feature = "lambda-http"
    )),
    allow(dead_code)
)]
pub(crate) fn write_traceparent(trace_id: TraceId, span_id: SpanId, sampled: bool) -> String {
    let mut buf = Vec::with_capacity(55);
    buf.extend_from_slice(b"00-");
    hex(&mut buf, &trace_id.to_bytes());
    buf.push(b'-');
    hex(&mut buf, &span_id.to_bytes());
    buf.extend_from_slice(if sampled { b"-01" } else { b"-00" });
    // ASCII: always UTF-8.
    String::from_utf8(buf).unwrap_or_default()
}

/// The remote span a `traceparent` names, under the spec's rules: version `ff` and all-zero
/// ids are invalid; version `00` has exactly four fields; a later version may add fields
/// after a `-`, which are ignored. `None` for anything else (the header is then ignored, as
/// the spec says, never an error).
#[cfg_attr(
    not(any(feature = "lambda-http", feature = "events")),
    allow(dead_code)
)]
pub(crate) fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let value = value.trim();
    let bytes = value.as_bytes();
    if bytes.len() < 55 || (bytes.len() > 55 && bytes[55] != b'-') {
        return None;
    }
    let version = parse_hex::<1>(&bytes[0..2])?;
    if version[0] == 0xff || (version[0] == 0 && bytes.len() != 55) {
        return None;
    }
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_bytes(parse_hex::<16>(&bytes[3..35])?);
    let span_id = SpanId::from_bytes(parse_hex::<8>(&bytes[36..52])?);
    let flags = parse_hex::<1>(&bytes[53..55])?[0];
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
        true,
        TraceState::NONE,
    ))
}

/// `N` bytes from `2 × N` lower-case hex digits (the spec allows no upper case); bytes, not
/// text, so that no slice can fall inside a character.
#[cfg_attr(
    not(any(feature = "lambda-http", feature = "events")),
    allow(dead_code)
)]
fn parse_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_spec_example_reads_and_writes_back() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = parse_traceparent(header).expect("valid");
        assert_eq!(
            cx.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex")
        );
        assert_eq!(
            cx.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex")
        );
        assert!(cx.is_sampled() && cx.is_remote());
        assert_eq!(write_traceparent(cx.trace_id(), cx.span_id(), true), header);
    }

    #[test]
    fn an_xray_trace_id_is_the_same_bytes() {
        let xray = crate::header::TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .expect("header");
        assert_eq!(
            write_traceparent(xray.trace_id(), xray.parent_id(), true),
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
        );
    }

    #[test]
    fn what_the_spec_rejects_is_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            // Version ff, zero ids, upper case, a version 00 with more fields, bad separators.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "0é-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
        // A later version may add fields; only the sampled bit of the flags is kept.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-comes";
        let cx = parse_traceparent(later).expect("a later version");
        assert_eq!(cx.trace_flags(), TraceFlags::SAMPLED);
    }

    proptest! {
        #[test]
        fn every_written_header_reads_back(trace in 1..=u128::MAX, span in 1..=u64::MAX, sampled: bool) {
            let header = write_traceparent(TraceId::from(trace), SpanId::from(span), sampled);
            prop_assert_eq!(header.len(), 55);
            prop_assert_eq!(header.capacity(), header.len());
            let cx = parse_traceparent(&header).expect("valid");
            prop_assert_eq!(cx.trace_id(), TraceId::from(trace));
            prop_assert_eq!(cx.span_id(), SpanId::from(span));
            prop_assert_eq!(cx.is_sampled(), sampled);
        }

        #[test]
        fn any_text_is_read_without_panicking(text in "\\PC{0,80}") {
            let _ = parse_traceparent(&text);
        }
    }
}
