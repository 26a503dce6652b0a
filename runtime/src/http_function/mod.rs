//! Functions that serve HTTP through `lambda_http` (API Gateway REST and HTTP APIs, Function
//! URLs, ALB, WebSocket, VPC Lattice): what the request and the response say, as X-Ray's
//! `http` object shows them. [`crate::Invocation::start_http`] puts it on the handler
//! subsegment; `#[xray_handler]` on a handler taking `lambda_http::Request` calls it.

pub(crate) mod response;

pub use response::{KnownLength, Responded};

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt as _};

use opentelemetry::StringValue;

use crate::record::{method_value, Http};

/// The `http` object's request side and the route, from the request and the context that
/// `lambda_http` parsed from the event. The URL loses its query string, which can hold tokens.
pub(crate) fn describe(request: &Request) -> Http {
    let context = request.request_context_ref();
    let (source_ip, context_user_agent, route) = match context {
        Some(RequestContext::ApiGatewayV1(c)) => (
            c.identity.source_ip.as_deref(),
            c.identity.user_agent.as_deref(),
            c.resource_path.as_deref(),
        ),
        // HTTP APIs and Function URLs (whose route key is `$default`).
        Some(RequestContext::ApiGatewayV2(c)) => (
            c.http.source_ip.as_deref(),
            c.http.user_agent.as_deref(),
            c.route_key.as_deref(),
        ),
        Some(RequestContext::WebSocket(c)) => (
            c.identity.source_ip.as_deref(),
            c.identity.user_agent.as_deref(),
            c.route_key.as_deref(),
        ),
        // ALB and VPC Lattice: the headers carry the client; there is no route.
        _ => (None, None, None),
    };
    let headers = request.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    let (client_ip, x_forwarded_for) = match source_ip.filter(|ip| !ip.is_empty()) {
        Some(ip) => (Some(ip.to_owned()), false),
        None => match header("x-forwarded-for").and_then(first_forwarded) {
            Some(ip) => (Some(ip.to_owned()), true),
            None => (None, false),
        },
    };
    Http {
        method: method_value(request.method().as_str()),
        url: url_without_query(request.uri()),
        user_agent: context_user_agent
            .filter(|ua| !ua.is_empty())
            .or_else(|| header("user-agent"))
            .map(str::to_owned),
        client_ip,
        x_forwarded_for,
        // Shared, so that the `HttpRoute` annotation is this value, not a copy.
        route: route
            .filter(|r| !r.is_empty())
            .map(|r| StringValue::from(std::sync::Arc::<str>::from(r))),
        outgoing: false,
        traced: false,
        status: None,
        content_length: None,
    }
}

/// The client's address in `X-Forwarded-For: client, proxy1, proxy2`.
fn first_forwarded(header: &str) -> Option<&str> {
    header
        .split(',')
        .next()
        .map(str::trim)
        .filter(|ip| !ip.is_empty())
}

/// `scheme://host/path` of the URL `lambda_http` built from the event (API Gateway's stage
/// included, as the client called it); just the path when the event named no host.
fn url_without_query(uri: &http::Uri) -> String {
    crate::url::sanitized(
        uri.scheme_str(),
        uri.authority().map(http::uri::Authority::as_str),
        uri.path(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_names_the_client_first() {
        assert_eq!(
            first_forwarded("203.0.113.7, 10.0.0.1"),
            Some("203.0.113.7")
        );
        assert_eq!(first_forwarded(" 198.51.100.2 "), Some("198.51.100.2"));
        assert_eq!(first_forwarded(", 10.0.0.1"), None);
    }

    #[test]
    fn urls_keep_scheme_host_and_path_only() {
        for (uri, expected) in [
            (
                "https://abc.execute-api.us-east-1.amazonaws.com/prod/hello/ann?token=SECRET",
                "https://abc.execute-api.us-east-1.amazonaws.com/prod/hello/ann",
            ),
            ("/health?probe=1", "/health"),
            ("http://127.0.0.1:3000/hello", "http://127.0.0.1:3000/hello"),
        ] {
            let uri: http::Uri = uri.parse().expect("uri");
            assert_eq!(url_without_query(&uri), expected);
        }
    }
}
