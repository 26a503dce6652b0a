//! A plain HTTP server on loopback for the HTTP-client tests: answers each path with a status
//! (`/status/404` → 404, anything else 200 with a small body) and keeps every request's path,
//! query and its trace headers (`x-amzn-trace-id`, `traceparent`, `baggage`).

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path and query.
    pub target: String,
    /// The trace header as it arrived, if any.
    pub trace_header: Option<String>,
    /// W3C's `traceparent` as it arrived, if any.
    pub traceparent: Option<String>,
    /// W3C's `baggage` as it arrived, if any.
    pub baggage: Option<String>,
}

/// Every request the server received, in order.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Received>>>);

impl Log {
    /// What arrived so far.
    #[must_use]
    pub fn all(&self) -> Vec<Received> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Starts the server on a loopback port; its base URL and its log.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn start() -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    let log = Log::default();
    let seen = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &seen)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{address}"), log)
}

fn answer(req: &Request<Incoming>, seen: &Log) -> Response<Full<Bytes>> {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    seen.0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            target,
            trace_header: req
                .headers()
                .get("x-amzn-trace-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            traceparent: req
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            baggage: req
                .headers()
                .get("baggage")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
    let status = req
        .uri()
        .path()
        .strip_prefix("/status/")
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
    *response.status_mut() = status;
    response
}
