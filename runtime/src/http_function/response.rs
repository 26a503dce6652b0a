//! What a handler's response says — its status and length — whatever type it has.
//!
//! A handler declared `-> Result<impl IntoResponse, E>` has its response converted here
//! ([`respond`]), as `lambda_http` would convert it, so every fact is seen; the converted
//! response goes back to `lambda_http` as a [`Responded`], which hands it on untouched. A
//! handler that names its type is read through autoref specialisation (`Probe`), best first:
//! a `Response` whose body's length is known, any `Response`, `lambda_http`'s plain bodies and
//! `(StatusCode, body)` pairs, and finally anything else (nothing known).

use lambda_http::http::{header::CONTENT_LENGTH, Response, StatusCode};
use lambda_http::{Body, IntoResponse};

/// A response's status and length, as far as they are known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFacts {
    pub(crate) status: Option<u16>,
    pub(crate) content_length: Option<u64>,
}

impl ResponseFacts {
    fn of<B: KnownLength + ?Sized>(status: StatusCode, body: &B) -> Self {
        ResponseFacts {
            status: Some(status.as_u16()),
            content_length: body.known_length(),
        }
    }

    /// A `Response<B>`: the `Content-Length` header, else the body's own length.
    fn of_response<B>(response: &Response<B>, body_length: Option<u64>) -> Self {
        let header = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        ResponseFacts {
            status: Some(response.status().as_u16()),
            content_length: header.or(body_length),
        }
    }
}

/// A response that `lambda_http` has already converted: handed back as it is.
#[derive(Debug)]
pub struct Responded(pub(crate) Response<Body>);

impl IntoResponse for Responded {
    fn into_response(
        self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>> {
        Box::pin(std::future::ready(self.0))
    }
}

/// Converts the handler's response as `lambda_http` would, and says what it holds.
pub(crate) async fn respond<R: IntoResponse>(response: R) -> (Responded, ResponseFacts) {
    let response = response.into_response().await;
    let facts = ResponseFacts::of_response(&response, response.body().known_length());
    (Responded(response), facts)
}

/// Bodies whose length is known without reading a stream.
pub trait KnownLength {
    /// The length in bytes.
    fn known_length(&self) -> Option<u64>;
}

fn length(n: usize) -> Option<u64> {
    u64::try_from(n).ok()
}

impl KnownLength for Body {
    fn known_length(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Text(text) => length(text.len()),
            Body::Binary(bytes) => length(bytes.len()),
            // A variant added later: not known.
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

macro_rules! known_by_len {
    ($($t:ty),*) => {$(
        impl KnownLength for $t {
            fn known_length(&self) -> Option<u64> {
                length(self.len())
            }
        }
    )*};
}
known_by_len!(String, str, Vec<u8>, [u8]);

impl<T: KnownLength + ?Sized> KnownLength for &T {
    fn known_length(&self) -> Option<u64> {
        (**self).known_length()
    }
}

impl KnownLength for () {
    fn known_length(&self) -> Option<u64> {
        Some(0)
    }
}

/// The autoref probes the expansion of `#[xray_handler]` calls on a named response type.
/// Not public API.
pub(crate) mod probe {
    use super::{KnownLength, Response, ResponseFacts, StatusCode};

    /// Wraps the response so that the impls below sit at three autoref depths.
    #[derive(Debug)]
    pub struct ResponseProbe<'a, R: ?Sized>(pub &'a R);

    /// A response whose status and length can be read exactly.
    pub trait ViaExact {
        fn xray_response(&self) -> ResponseFacts;
    }
    impl<B: KnownLength> ViaExact for &&ResponseProbe<'_, Response<B>> {
        fn xray_response(&self) -> ResponseFacts {
            ResponseFacts::of_response(self.0, self.0.body().known_length())
        }
    }
    macro_rules! plain {
        ($($t:ty),*) => {$(
            // `lambda_http` answers these with 200.
            impl ViaExact for &&ResponseProbe<'_, $t> {
                fn xray_response(&self) -> ResponseFacts {
                    ResponseFacts::of(StatusCode::OK, self.0)
                }
            }
            impl ViaExact for &&ResponseProbe<'_, (StatusCode, $t)> {
                fn xray_response(&self) -> ResponseFacts {
                    ResponseFacts::of(self.0 .0, &self.0 .1)
                }
            }
        )*};
    }
    plain!(String, &str, Vec<u8>, &[u8]);
    impl ViaExact for &&ResponseProbe<'_, serde_json::Value> {
        fn xray_response(&self) -> ResponseFacts {
            ResponseFacts {
                status: Some(200),
                content_length: None,
            }
        }
    }
    impl ViaExact for &&ResponseProbe<'_, (StatusCode, serde_json::Value)> {
        fn xray_response(&self) -> ResponseFacts {
            ResponseFacts {
                status: Some(self.0 .0.as_u16()),
                content_length: None,
            }
        }
    }

    /// Any `Response<B>`, a streamed one included: the status, and `Content-Length` if set.
    pub trait ViaResponse {
        fn xray_response(&self) -> ResponseFacts;
    }
    impl<B> ViaResponse for &ResponseProbe<'_, Response<B>> {
        fn xray_response(&self) -> ResponseFacts {
            ResponseFacts::of_response(self.0, None)
        }
    }

    /// A type of the user's own that implements `IntoResponse`: nothing is known without
    /// converting it, which would change the handler's declared type.
    pub trait ViaAnything {
        fn xray_response(&self) -> ResponseFacts;
    }
    impl<R: ?Sized> ViaAnything for ResponseProbe<'_, R> {
        fn xray_response(&self) -> ResponseFacts {
            ResponseFacts::default()
        }
    }
}

#[cfg(test)]
// The borrows are the autoref specialisation under test.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::probe::{ResponseProbe, ViaAnything as _, ViaExact as _, ViaResponse as _};
    use super::*;

    fn facts(status: u16, length: Option<u64>) -> ResponseFacts {
        ResponseFacts {
            status: Some(status),
            content_length: length,
        }
    }

    #[test]
    fn autoref_reads_each_kind_of_response() {
        struct Stream;
        struct Mine;
        let body = Response::builder()
            .status(404)
            .body(Body::from("missing"))
            .expect("response");
        assert_eq!(
            (&&&ResponseProbe(&body)).xray_response(),
            facts(404, Some(7))
        );
        let headed = Response::builder()
            .status(201)
            .header("content-length", "12")
            .body(Body::Empty)
            .expect("response");
        assert_eq!(
            (&&&ResponseProbe(&headed)).xray_response(),
            facts(201, Some(12))
        );
        let streamed = Response::builder()
            .status(503)
            .body(Stream)
            .expect("response");
        assert_eq!(
            (&&&ResponseProbe(&streamed)).xray_response(),
            facts(503, None)
        );
        assert_eq!(
            (&&&ResponseProbe(&"hello".to_owned())).xray_response(),
            facts(200, Some(5))
        );
        assert_eq!(
            (&&&ResponseProbe(&(StatusCode::TOO_MANY_REQUESTS, "slow down"))).xray_response(),
            facts(429, Some(9))
        );
        assert_eq!(
            (&&&ResponseProbe(&Mine)).xray_response(),
            ResponseFacts::default()
        );
    }

    #[tokio::test]
    async fn converted_responses_keep_their_bytes() {
        let bytes = vec![0xff_u8, 0x00, 0xfe];
        let (responded, seen) = respond(bytes.clone()).await;
        assert_eq!(seen, facts(200, Some(3)));
        // Handed on untouched: binary stays binary (converting twice would decode it as text).
        let again = responded.into_response().await;
        assert!(matches!(again.body(), Body::Binary(b) if *b == bytes));
    }
}
