//! X-Ray's `http` object, typed: of an outgoing call or of the request an HTTP function
//! serves, with the annotations a served request gets.

use opentelemetry::Value;

use super::MAX_ANNOTATION_VALUE;

/// An HTTP exchange, as X-Ray's `http` object shows it: an outgoing call (`traced`) or the
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
    /// An outgoing call that carried the trace header; else the request an HTTP function
    /// serves, whose method, route and status are also annotations.
    pub(crate) traced: bool,
    /// The response's status, for a request an HTTP function serves (a call's is the span's
    /// `http.response.status_code` attribute).
    pub(crate) status: Option<u16>,
    /// The response's length, when known.
    pub(crate) content_length: Option<u64>,
}

/// The annotations of a request an HTTP function serves: searchable, unlike the `http` object.
pub(crate) const HTTP_METHOD_ANNOTATION: &str = "HttpMethod";
/// See [`HTTP_METHOD_ANNOTATION`].
pub(crate) const HTTP_ROUTE_ANNOTATION: &str = "HttpRoute";
/// See [`HTTP_METHOD_ANNOTATION`].
pub(crate) const HTTP_STATUS_ANNOTATION: &str = "HttpStatus";

impl Http {
    /// The annotations of a served request (none for a call), each key once: a key the user
    /// annotated on the span keeps the user's value, which `taken` says.
    pub(crate) fn annotations<'a>(
        &'a self,
        taken: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = (&'static str, Value)> + 'a {
        let served = !self.traced;
        [
            (
                HTTP_METHOD_ANNOTATION,
                Some(Value::from(self.method.clone())),
            ),
            (
                HTTP_ROUTE_ANNOTATION,
                self.route
                    .as_ref()
                    .map(|r| Value::from(cap_annotation_value(r))),
            ),
            (
                HTTP_STATUS_ANNOTATION,
                self.status.map(|s| Value::I64(i64::from(s))),
            ),
        ]
        .into_iter()
        .filter(move |(key, _)| served && !taken(key))
        .filter_map(|(key, value)| Some((key, value?)))
    }
}

/// A route as an annotation value: at most [`MAX_ANNOTATION_VALUE`] characters.
fn cap_annotation_value(value: &str) -> String {
    match value.char_indices().nth(MAX_ANNOTATION_VALUE) {
        Some((end, _)) => value[..end].to_owned(),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_requests_annotations_yield_to_the_users() {
        let served = Http {
            method: "GET".to_owned(),
            route: Some("r".repeat(MAX_ANNOTATION_VALUE + 5)),
            status: Some(200),
            ..Http::default()
        };
        let all: Vec<_> = served.annotations(|_| false).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0], (HTTP_METHOD_ANNOTATION, Value::from("GET")));
        assert_eq!(
            all[1].1.as_str().chars().count(),
            MAX_ANNOTATION_VALUE,
            "the route is capped"
        );
        assert_eq!(all[2], (HTTP_STATUS_ANNOTATION, Value::I64(200)));
        let yielded: Vec<_> = served
            .annotations(|key| key == HTTP_ROUTE_ANNOTATION)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(yielded, [HTTP_METHOD_ANNOTATION, HTTP_STATUS_ANNOTATION]);
        let call = Http {
            traced: true,
            ..served
        };
        assert_eq!(call.annotations(|_| false).count(), 0);
    }
}
