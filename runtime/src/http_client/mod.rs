//! Calls made with HTTP clients other than the AWS SDK, as remote subsegments: the trace header
//! goes out on the request, and X-Ray's `http` object (method, URL without its query string,
//! status, content length) and the error flags from the status come back on the subsegment.
//!
//! For any `tower` HTTP service, hyper's client included: `XrayLayer` (feature `tower`). For
//! `reqwest`: `XrayMiddleware` through `reqwest-middleware` (feature `reqwest`). For anything
//! else: [`crate::current_trace_header`].
//!
//! ```no_run
//! # #[cfg(feature = "tower")]
//! # fn f<S>(client: S) {
//! use tower_layer::Layer as _;
//! let client = xray_lambda::http_client::XrayLayer::new().layer(client);
//! # }
//! ```

#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "tower")]
mod tower;

use http::{HeaderValue, Uri};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry::{KeyValue, StringValue};

use crate::exception::Exception;
use crate::propagation::{self, TRACE_HEADER_NAME};
use crate::record::{method_value, Extra, Http};
use crate::state;
use crate::vocabulary::HTTP_STATUS;
use crate::w3c::TRACEPARENT_NAME;

#[cfg(feature = "reqwest")]
pub use self::reqwest::XrayMiddleware;
#[cfg(feature = "tower")]
pub use self::tower::{XrayLayer, XrayService};

/// What a client layer knows of the services it calls: whether they trace too, and the
/// endpoints not to trace.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallOptions {
    /// The downstream services trace (X-Ray's `traced`).
    pub(crate) traced: bool,
    /// Shared by every clone of the layer (one per client, cloned per request by some).
    ignored: std::sync::Arc<[IgnoredEndpoint]>,
}

/// An endpoint whose calls are not traced: a host pattern (any host when `None`) and path
/// patterns (any path when empty), `*` for any run of characters.
#[derive(Debug, Clone)]
struct IgnoredEndpoint {
    host: Option<String>,
    paths: Vec<String>,
}

impl CallOptions {
    /// Adds an endpoint not to trace (`ignore_endpoint` on the layers).
    pub(crate) fn ignore(&mut self, host: Option<&str>, paths: &[&str]) {
        let mut ignored = self.ignored.to_vec();
        ignored.push(IgnoredEndpoint {
            host: host.map(str::to_owned),
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        });
        self.ignored = ignored.into();
    }

    /// Whether a call to `uri` is left untraced.
    fn ignores(&self, uri: &Uri) -> bool {
        self.ignored.iter().any(|endpoint| {
            endpoint
                .host
                .as_deref()
                .is_none_or(|host| crate::url::glob_matches(host, uri.host().unwrap_or_default()))
                && (endpoint.paths.is_empty()
                    || endpoint
                        .paths
                        .iter()
                        .any(|path| crate::url::glob_matches(path, uri.path())))
        })
    }
}

/// One outgoing HTTP call's subsegment, from the request to the response.
#[derive(Debug)]
pub(crate) struct HttpCall {
    /// The call's span (on the crate's tracer, not a `tracing` one: see `state::call_span`), in the
    /// context it was opened in.
    cx: opentelemetry::Context,
    span_context: SpanContext,
    method: StringValue,
    url: String,
    /// The request's query string, kept only to remove it from a client's error message.
    query: Option<String>,
    /// The downstream service traces (X-Ray's `traced`).
    traced: bool,
}

impl HttpCall {
    /// Opens the call's subsegment under the current span and puts the trace header on the
    /// request; in an invocation that records nothing, puts the invocation's header as it
    /// came; outside an invocation, does nothing.
    pub(crate) fn begin(
        method: &str,
        uri: &Uri,
        headers: &mut http::HeaderMap,
        options: &CallOptions,
    ) -> Option<Self> {
        // An endpoint not to trace: no subsegment, and the request as the client made it.
        if !options.ignored.is_empty() && options.ignores(uri) {
            return None;
        }
        let traced = options.traced;
        // Tracing off: nothing to record, and no header was received to forward.
        state::pipeline()?;
        let current = tracing::Span::current();
        if current.is_disabled() {
            forward_as_received(headers);
            return None;
        }
        let host = uri.host().unwrap_or("remote");
        // The extras reach the buffer at `HttpCall::end`.
        let cx = state::call_span(|| (host.to_owned(), Vec::new()));
        let Some(cx) = cx else {
            forward_as_received(headers);
            return None;
        };
        let span_context = cx.span().span_context().clone();
        match propagation::downstream(&cx) {
            Some(header) => put(
                headers,
                header,
                propagation::traceparent(&cx),
                propagation::baggage(&cx),
            ),
            None => forward_as_received(headers),
        }
        if !state::reaches_buffer(&span_context) {
            return None;
        }
        Some(HttpCall {
            cx,
            span_context,
            method: method_value(method),
            url: without_query(uri),
            query: uri.query().filter(|q| !q.is_empty()).map(str::to_owned),
            traced,
        })
    }

    /// Closes the subsegment: the status (`None`: no response, a fault with `error` as its
    /// cause) and the response's length. 4xx is an error, 429 a throttle too, 5xx a fault.
    pub(crate) fn end(
        self,
        status: Option<u16>,
        content_length: Option<u64>,
        error: Option<String>,
    ) {
        let HttpCall {
            cx,
            span_context,
            method,
            url,
            query,
            traced,
        } = self;
        // A client's error can name the URL, query string included (reqwest's does).
        let error = error.map(|e| match &query {
            Some(query) => e.replace(&format!("?{query}"), "?[query removed]"),
            None => e,
        });
        if let Some(status) = status {
            cx.span()
                .set_attribute(KeyValue::new(HTTP_STATUS, i64::from(status)));
        }
        let failure = match (status, error) {
            (Some(code), _) => Exception::from_http_status(code),
            (None, Some(error)) => Some(Exception::new("HttpClientError", error)),
            (None, None) => None,
        };
        if let Some(exception) = failure {
            exception.record_on(&cx);
        }
        state::attach(
            span_context.span_id(),
            Extra {
                http: Some(Http {
                    method,
                    url,
                    outgoing: true,
                    traced,
                    content_length,
                    ..Http::default()
                }),
                ..Extra::default()
            },
        );
        // Ended here, whatever other copies are still held: the end of the call.
        cx.span().end();
    }
}

/// The call's trace headers, as the chosen propagators say: X-Ray's, W3C's naming the same
/// subsegment, and W3C's baggage.
fn put(
    headers: &mut http::HeaderMap,
    header: String,
    traceparent: Option<String>,
    baggage: Option<String>,
) {
    if propagation::sends_xray() {
        if let Ok(value) = HeaderValue::try_from(header) {
            headers.insert(TRACE_HEADER_NAME, value);
        }
    }
    for (name, value) in [
        (TRACEPARENT_NAME, traceparent),
        (propagation::BAGGAGE_NAME, baggage),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
            headers.insert(name, value);
        }
    }
}

fn forward_as_received(headers: &mut http::HeaderMap) {
    if let Some(header) = propagation::as_received() {
        put(
            headers,
            header,
            propagation::traceparent_as_received(),
            None,
        );
    }
}

/// `scheme://authority/path`: the query string can hold secrets (tokens, signatures).
fn without_query(uri: &Uri) -> String {
    crate::url::sanitized(
        uri.scheme_str(),
        uri.authority().map(http::uri::Authority::as_str),
        uri.path(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_query_and_credentials() {
        for (uri, expected) in [
            (
                "http://127.0.0.1:8080/orders?token=SECRET",
                "http://127.0.0.1:8080/orders",
            ),
            (
                "https://user:pass@api.example.com/v1/x?sig=1#frag",
                "https://api.example.com/v1/x",
            ),
            ("/relative?q=1", "/relative"),
        ] {
            let uri: http::Uri = uri.parse().expect("uri");
            assert_eq!(super::without_query(&uri), expected);
        }
    }
}
