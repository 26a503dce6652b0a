//! X-Ray's `http` object, typed: of an outgoing call or of the request an HTTP function
//! serves.

use opentelemetry::StringValue;

/// An HTTP exchange, as X-Ray's `http` object shows it: an outgoing call (`outgoing`) or the
/// request a `lambda_http` function serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Http {
    /// A string value as the `HttpMethod` annotation shows it: see [`method_value`].
    pub(crate) method: StringValue,
    /// `scheme://host/path`, without its query string, which can hold secrets.
    pub(crate) url: String,
    /// An incoming request's `User-Agent`.
    pub(crate) user_agent: Option<String>,
    /// An incoming request's client address: the source IP API Gateway saw, else the first
    /// address of `X-Forwarded-For`.
    pub(crate) client_ip: Option<String>,
    /// `client_ip` came from `X-Forwarded-For`, which the client can forge.
    pub(crate) x_forwarded_for: bool,
    /// The route that matched (API Gateway's resource or route key): not written into the
    /// `http` object, which has no member for it; the OTLP path's `http.route`.
    /// Shared, so that the `HttpRoute` annotation is this value, not a copy.
    pub(crate) route: Option<StringValue>,
    /// A call this function made with an HTTP client, which carried the trace header; else
    /// the request an HTTP function serves, whose method, route and status are also
    /// annotations.
    pub(crate) outgoing: bool,
    /// An outgoing call whose downstream service is known to trace (the user said so): X-Ray's
    /// `traced`, with which X-Ray waits for the downstream's segment under this subsegment.
    pub(crate) traced: bool,
    /// The response's status, for a request an HTTP function serves (a call's is the span's
    /// `http.response.status_code` attribute).
    pub(crate) status: Option<u16>,
    /// The response's length, when known.
    pub(crate) content_length: Option<u64>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            method: StringValue::from(""),
            url: String::new(),
            user_agent: None,
            client_ip: None,
            x_forwarded_for: false,
            route: None,
            outgoing: false,
            traced: false,
            status: None,
            content_length: None,
        }
    }
}

#[cfg(any(feature = "lambda-http", feature = "tower", feature = "reqwest"))]
/// A request's method as a string value: the standard methods are static strings, so that
/// neither the `http` object nor the `HttpMethod` annotation copies them.
pub(crate) fn method_value(method: &str) -> StringValue {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    match STANDARD.iter().find(|standard| **standard == method) {
        Some(standard) => StringValue::from(*standard),
        None => StringValue::from(method.to_owned()),
    }
}

#[cfg(all(
    test,
    any(feature = "lambda-http", feature = "tower", feature = "reqwest")
))]
mod tests {
    use super::*;

    #[test]
    fn methods_keep_their_text() {
        for method in ["GET", "POST", "DELETE", "PROPFIND", "get"] {
            assert_eq!(method_value(method).as_str(), method);
        }
    }
}
