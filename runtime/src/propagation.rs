//! The trace header that goes out with a call, as the X-Ray Go SDK writes it
//! (`DownstreamHeader`): `Root` is the invocation's, `Parent` the id of the subsegment that
//! makes the call, `Sampled=1`, and the keys of the invocation's header this crate does not
//! interpret (`Lineage` above all: Lambda's recursive-loop detection reads it) as received,
//! but `Self`. An invocation that records nothing (`Sampled=0`, or `Root` alone: Lambda's `PassThrough`)
//! forwards its header as it came, so that downstream services decide as Lambda did.

use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::header::{write_header, Sampling};
use crate::propagators::propagators;
use crate::vocabulary::INIT_TRACE;

/// The header name, as HTTP/2 and the AWS SDK write it.
#[cfg_attr(
    not(any(
        feature = "aws-sdk",
        feature = "lambda-http",
        feature = "tower",
        feature = "reqwest"
    )),
    allow(dead_code)
)]
pub(crate) const TRACE_HEADER: &str = "x-amzn-trace-id";

/// [`TRACE_HEADER`] as an `http` header name, built at compile time: inserting it by its text
/// would parse it, and allocate for it (it is not a standard header), on every request.
#[cfg(any(feature = "lambda-http", feature = "tower", feature = "reqwest"))]
pub(crate) const TRACE_HEADER_NAME: http::HeaderName = http::HeaderName::from_static(TRACE_HEADER);

/// Whether W3C's `traceparent` is written and read.
#[cfg_attr(
    not(any(feature = "lambda-http", feature = "events")),
    allow(dead_code)
)]
pub(crate) fn reads_tracecontext() -> bool {
    propagators().tracecontext
}

/// Whether calls carry `X-Amzn-Trace-Id`.
#[cfg_attr(
    not(any(feature = "aws-sdk", feature = "tower", feature = "reqwest")),
    allow(dead_code)
)]
pub(crate) fn sends_xray() -> bool {
    propagators().xray
}

/// The `traceparent` for a call made from the span whose context is `cx`, where
/// `tracecontext` is chosen: the same span [`downstream`] names, so that an OpenTelemetry
/// service downstream joins the trace under the call's subsegment.
#[cfg_attr(
    not(any(
        feature = "aws-sdk",
        feature = "tower",
        feature = "reqwest",
        feature = "lambda-http"
    )),
    allow(dead_code)
)]
pub(crate) fn traceparent(cx: &Context) -> Option<String> {
    if !propagators().tracecontext {
        return None;
    }
    named_span(cx, |span| {
        crate::w3c::write_traceparent(span.trace_id(), span.span_id(), span.is_sampled())
    })
}

/// In an invocation that records nothing, the `traceparent` naming what its header as it came
/// names (Lambda's segment), not sampled, so that a W3C service downstream decides as Lambda
/// did; `None` where that header names no parent (`PassThrough`).
#[cfg_attr(
    not(any(feature = "aws-sdk", feature = "tower", feature = "reqwest")),
    allow(dead_code)
)]
pub(crate) fn traceparent_as_received() -> Option<String> {
    if !propagators().tracecontext {
        return None;
    }
    let header = crate::header::TraceHeader::try_parse(&as_received()?).ok()?;
    (header.parent_id() != opentelemetry::SpanId::INVALID)
        .then(|| crate::w3c::write_traceparent(header.trace_id(), header.parent_id(), false))
}

/// The W3C span a request's `traceparent` header names, where `tracecontext` is chosen.
#[cfg(feature = "lambda-http")]
pub(crate) fn incoming_traceparent(traceparent: &http::HeaderValue) -> Option<SpanContext> {
    if !reads_tracecontext() {
        return None;
    }
    crate::w3c::parse_traceparent(traceparent.to_str().ok()?)
}

/// A request's W3C `baggage`, where `baggage` is chosen: its headers joined, as W3C reads
/// several (most requests have none: one lookup by a name built at compile time).
#[cfg(feature = "lambda-http")]
pub(crate) fn incoming_baggage(headers: &http::HeaderMap) -> Option<std::borrow::Cow<'_, str>> {
    if !propagators().baggage {
        return None;
    }
    let values: Vec<&str> = headers
        .get_all(BAGGAGE_NAME)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    match values.as_slice() {
        [] => None,
        [one] => Some(std::borrow::Cow::Borrowed(one)),
        all => Some(std::borrow::Cow::Owned(all.join(","))),
    }
}

/// `cx` with the entries of a W3C `baggage` header, read by OpenTelemetry's own propagator (its
/// percent-decoding and its limits: 8,192 bytes, 64 entries; a malformed entry is left out).
pub(crate) fn with_baggage_header(cx: &Context, header: &str) -> Context {
    use opentelemetry::propagation::TextMapPropagator as _;
    struct Header<'a>(&'a str);
    impl opentelemetry::propagation::Extractor for Header<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == BAGGAGE).then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec![BAGGAGE]
        }
    }
    opentelemetry_sdk::propagation::BaggagePropagator::new()
        .extract_with_context(cx, &Header(header))
}

/// The `baggage` header for a call made from `cx`: its context's W3C baggage (an HTTP
/// function's incoming entries, or the user's own), where `baggage` is chosen.
#[cfg_attr(
    not(any(feature = "aws-sdk", feature = "tower", feature = "reqwest")),
    allow(dead_code)
)]
pub(crate) fn baggage(cx: &Context) -> Option<String> {
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::propagation::TextMapPropagator as _;
    struct Header(Option<String>);
    impl opentelemetry::propagation::Injector for Header {
        fn set(&mut self, key: &str, value: String) {
            if key == BAGGAGE {
                self.0 = Some(value);
            }
        }
    }
    // Most contexts carry none: looked at before the propagator writes anything.
    if !propagators().baggage || cx.baggage().is_empty() {
        return None;
    }
    let mut header = Header(None);
    opentelemetry_sdk::propagation::BaggagePropagator::new().inject_context(cx, &mut header);
    header.0.filter(|h| !h.is_empty())
}

/// W3C's baggage header.
pub(crate) const BAGGAGE: &str = "baggage";

/// [`BAGGAGE`] as an `http` header name, built at compile time.
#[cfg(any(feature = "lambda-http", feature = "tower", feature = "reqwest"))]
pub(crate) const BAGGAGE_NAME: http::HeaderName = http::HeaderName::from_static(BAGGAGE);

/// The keys of the invocation's header this crate does not interpret, verbatim: a value of
/// the handler span's OpenTelemetry context, which every span under it inherits (in spawned
/// tasks too).
#[derive(Debug, Clone)]
pub(crate) struct ForwardedKeys(pub(crate) String);

tokio::task_local! {
    /// The invocation's header as it came, where nothing is recorded.
    pub(crate) static AS_RECEIVED: String;
}

/// The header for a call made from the span whose context is `cx`; `None` when that span is
/// not recorded.
#[must_use]
pub fn downstream(cx: &Context) -> Option<String> {
    named_span(cx, |span| compose(span, cx))
}

/// `header` of the span whose context is `cx`, where a call made from it names it: the span
/// is valid and recorded.
fn named_span<T>(cx: &Context, header: impl FnOnce(&SpanContext) -> T) -> Option<T> {
    let span = cx.span();
    let span_context = span.span_context();
    // A span recorded without being sampled (Application Signals' unsampled spans) names
    // itself too, with `Sampled=0`, so that downstream services do not sample either.
    if !span_context.is_valid() || !(span_context.is_sampled() || span.is_recording()) {
        return None;
    }
    // The init's trace is not the one its spans end up in: no header names it.
    if span_context.trace_id() == INIT_TRACE {
        return None;
    }
    Some(header(span_context))
}

/// [`downstream`] as an HTTP header's value.
#[cfg(feature = "lambda-http")]
pub(crate) fn downstream_value(cx: &Context) -> Option<http::HeaderValue> {
    named_span(cx, |span| {
        http::HeaderValue::try_from(compose(span, cx)).ok()
    })
    .flatten()
}

/// The header naming `span_context`, with the invocation's other keys carried.
fn compose(span_context: &SpanContext, cx: &Context) -> String {
    write_header(
        span_context.trace_id(),
        span_context.span_id(),
        Sampling::of(span_context.is_sampled()),
        carried(cx),
    )
}

/// The invocation's header keys this crate does not interpret, which every header carries on.
fn carried(cx: &Context) -> &str {
    cx.get::<ForwardedKeys>().map_or("", |c| c.0.as_str())
}

/// A span whose OpenTelemetry parent is not sampled: what it encloses is not recorded (an
/// unsampled invocation where spans would otherwise start traces of their own; a record
/// whose producer did not sample it).
pub(crate) fn unsampled_span() -> tracing::Span {
    use opentelemetry::trace::TraceFlags;
    let span = tracing::info_span!(target: "xray_lambda::handler", "xray_unsampled");
    let unsampled = SpanContext::new(
        // Any valid ids: nothing under an unsampled parent is recorded.
        opentelemetry::trace::TraceId::from_bytes([1; 16]),
        opentelemetry::SpanId::from_bytes([1; 8]),
        TraceFlags::default(),
        true,
        crate::vocabulary::muted_state(),
    );
    let _ = span.set_parent(Context::new().with_remote_span_context(unsampled));
    span
}

/// `keys` (`;`-separated `key=value` pairs) without `Self`, which an ALB adds for its own segment
/// and the X-Ray SDKs never forward.
pub(crate) fn without_self(keys: &str) -> std::borrow::Cow<'_, str> {
    let is_self = |kv: &str| {
        kv.trim_start()
            .get(..5)
            .is_some_and(|k| k.eq_ignore_ascii_case("self="))
    };
    if !keys.split(';').any(is_self) {
        return std::borrow::Cow::Borrowed(keys);
    }
    std::borrow::Cow::Owned(
        keys.split(';')
            .filter(|kv| !is_self(kv))
            .collect::<Vec<_>>()
            .join(";"),
    )
}

/// The invocation's header as it came, inside an invocation that records nothing.
pub(crate) fn as_received() -> Option<String> {
    AS_RECEIVED.try_with(Clone::clone).ok()
}

/// The X-Ray trace header to put on a request made here, for clients this crate does not
/// instrument (gRPC metadata, message attributes, a hand-made HTTP request): `Root` is the
/// invocation's, `Parent` the current span's subsegment, `Sampled=1`, and the keys of the
/// invocation's header it does not interpret (`Lineage`) as received. In an invocation that
/// records nothing (`Sampled=0`, or `PassThrough`), the invocation's header as it came. `None`
/// outside an invocation.
///
/// ```no_run
/// # fn send(_: &str, _: Option<String>) {}
/// send("payload", xray_lambda::current_trace_header());
/// ```
#[must_use]
pub fn current_trace_header() -> Option<String> {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        if let Some(header) = downstream(&span.context()) {
            return Some(header);
        }
    }
    as_received()
}

/// The X-Ray trace id of the invocation running here (`1-5759e988-bd862e3fe1be46a994272793`),
/// to hand back to a caller, put on an error page or in a support ticket: what X-Ray's console
/// and `aws xray batch-get-traces` look it up by (W3C's form is the same digits without the
/// dashes: `5759e988bd862e3fe1be46a994272793`). Also in an invocation that records nothing (its
/// header's `Root`). `None` outside an invocation, and during the init.
///
/// ```no_run
/// # fn respond(_: &str) {}
/// if let Some(trace_id) = xray_lambda::current_trace_id() {
///     respond(&format!("Something went wrong; quote {trace_id} when you contact us."));
/// }
/// ```
#[must_use]
pub fn current_trace_id() -> Option<String> {
    let span = tracing::Span::current();
    let trace_id = match (!span.is_disabled()).then(|| span.context()) {
        Some(cx) if cx.span().span_context().is_valid() => cx.span().span_context().trace_id(),
        _ => crate::header::TraceHeader::try_parse(&as_received()?)
            .ok()?
            .trace_id(),
    };
    if trace_id == INIT_TRACE {
        return None;
    }
    let mut text = String::with_capacity(35);
    crate::header::format_trace_id(trace_id, &mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Several `baggage` headers are one list, as W3C reads them; the propagator then reads
    /// every entry, and writes them again for a call.
    #[cfg(feature = "lambda-http")]
    #[test]
    fn several_baggage_headers_are_read_as_one() {
        use opentelemetry::baggage::BaggageExt as _;
        let mut headers = http::HeaderMap::new();
        assert_eq!(super::incoming_baggage(&headers), None);
        headers.append(super::BAGGAGE_NAME, http::HeaderValue::from_static("a=1"));
        assert_eq!(super::incoming_baggage(&headers).as_deref(), Some("a=1"));
        headers.append(
            super::BAGGAGE_NAME,
            http::HeaderValue::from_static("b=2;p=q"),
        );
        let joined = super::incoming_baggage(&headers).expect("baggage");
        assert_eq!(joined, "a=1,b=2;p=q");
        let cx = super::with_baggage_header(&Context::new(), &joined);
        assert_eq!(cx.baggage().len(), 2);
        let mut written: Vec<String> = super::baggage(&cx)
            .expect("a header")
            .split(',')
            .map(str::to_owned)
            .collect();
        written.sort();
        assert_eq!(written, ["a=1", "b=2;p=q"]);
    }

    #[test]
    fn self_is_not_forwarded() {
        assert_eq!(without_self("Lineage=a87bd80c:1"), "Lineage=a87bd80c:1");
        assert_eq!(
            without_self("Self=1-67891234-12456789abcdef012345678;Lineage=a87bd80c:1"),
            "Lineage=a87bd80c:1"
        );
        assert_eq!(without_self(" self=x"), "");
    }
    use opentelemetry::trace::{TraceFlags, TraceId, TraceState};
    use opentelemetry::SpanId;

    fn context(sampled: bool) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex("5759e988bd862e3fe1be46a994272793").expect("id"),
            SpanId::from_hex("53995c3f42cd8ad8").expect("id"),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            false,
            TraceState::NONE,
        ))
    }

    #[test]
    fn the_header_names_the_span_and_carries_the_other_keys() {
        assert_eq!(
            downstream(&context(true)).as_deref(),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
        );
        let carried =
            context(true).with_value(ForwardedKeys("Lineage=a87bd80c:1|b31ac9b5:2".into()));
        assert_eq!(
            downstream(&carried).as_deref(),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|b31ac9b5:2")
        );
        assert_eq!(downstream(&context(false)), None);
        assert_eq!(downstream(&Context::new()), None);
    }

    /// A header value made from the `String` takes its allocation as it is only where the
    /// capacity is the length (else `bytes` allocates again, on every call).
    #[test]
    fn the_header_is_allocated_to_its_length() {
        let carried =
            context(true).with_value(ForwardedKeys("Lineage=a87bd80c:1|b31ac9b5:2".into()));
        for cx in [context(true), carried] {
            let header = downstream(&cx).expect("a header");
            assert_eq!(header.capacity(), header.len(), "{header}");
        }
    }

    #[test]
    fn outside_an_invocation_there_is_no_header() {
        assert_eq!(current_trace_id(), None);
        assert_eq!(current_trace_header(), None);
    }
}
