//! X-Ray's `http` object, typed: of an outgoing call or of the request an HTTP function
//! serves.

/// An HTTP exchange, as X-Ray's `http` object shows it: an outgoing call (`outgoing`) or the
/// request a `lambda_http` function serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Http {
    pub(crate) method: String,
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
    pub(crate) route: Option<String>,
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
