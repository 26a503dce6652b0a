//! A loopback HTTP proxy in front of moto that answers with an injected failure first (moto
//! cannot produce 5xx, 429 or throttling), then forwards; with no fault, a tap in front of any
//! HTTP server (a Runtime API: it keeps the trace headers handed to the function).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What the proxy injects.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    /// HTTP status of the injected answer.
    pub status: u16,
    /// DynamoDB error code in the injected body (`__type`).
    pub code: &'static str,
    /// How many requests get the injected answer before the proxy forwards (`u32::MAX`: all).
    pub times: u32,
}

impl Fault {
    /// No fault: the proxy forwards everything (a tap).
    pub const NONE: Fault = Fault {
        status: 200,
        code: "",
        times: 0,
    };
}

/// A request the proxy received: its operation (`x-amz-target`, else the path) and its
/// `x-amzn-trace-id` header.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `DynamoDB_20120810.ListTables`, `AmazonSQS.SendMessage`, or the path.
    pub operation: String,
    /// The trace header as it arrived, if any.
    pub trace_header: Option<String>,
    /// W3C's `traceparent` as it arrived, if any.
    pub traceparent: Option<String>,
}

/// An answer the proxy forwarded that carried a Lambda Runtime API trace header: what a
/// Runtime API handed the function behind the proxy.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The request's path.
    pub path: String,
    /// Its `Lambda-Runtime-Trace-Id`.
    pub runtime_trace_id: String,
}

/// Every request the proxy received, in order, and the answers with a runtime trace header.
#[derive(Debug, Clone, Default)]
pub struct Requests(
    Arc<std::sync::Mutex<Vec<Seen>>>,
    Arc<std::sync::Mutex<Vec<Answered>>>,
);

impl Requests {
    /// What arrived so far.
    #[must_use]
    pub fn all(&self) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The answers that carried a `Lambda-Runtime-Trace-Id`, so far.
    #[must_use]
    pub fn runtime_trace_ids(&self) -> Vec<Answered> {
        self.1
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Starts the proxy on a loopback port in front of `upstream` (`http://host:port`); returns
/// its endpoint.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn start(upstream: String, fault: Fault) -> String {
    start_recording(upstream, fault).await.0
}

/// [`start`], also keeping every request's operation and trace header.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn start_recording(upstream: String, fault: Fault) -> (String, Requests) {
    start_adding(upstream, fault, &[]).await
}

/// [`start_recording`], adding `headers` to every answer (what moto leaves out: S3's
/// `x-amz-id-2`, a Lambda function's `x-amz-function-error`).
///
/// # Panics
/// If no loopback port can be bound.
pub async fn start_adding(
    upstream: String,
    fault: Fault,
    headers: &'static [(&'static str, &'static str)],
) -> (String, Requests) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address: SocketAddr = listener.local_addr().expect("local address");
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let injected = Arc::new(AtomicU32::new(0));
    let upstream = Arc::new(upstream);
    let requests = Requests::default();
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (client, injected, upstream) = (client.clone(), injected.clone(), upstream.clone());
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let record = Seen {
                        operation: header("x-amz-target")
                            .unwrap_or_else(|| req.uri().path().to_owned()),
                        trace_header: header("x-amzn-trace-id"),
                        traceparent: header("traceparent"),
                    };
                    seen.0
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(record);
                    let answer = forward(
                        req,
                        fault,
                        client.clone(),
                        injected.clone(),
                        upstream.clone(),
                        seen.clone(),
                    );
                    async move {
                        let mut response = answer.await?;
                        for (name, value) in headers {
                            response
                                .headers_mut()
                                .insert(*name, value.parse().expect("header value"));
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{address}"), requests)
}

async fn forward(
    req: Request<Incoming>,
    fault: Fault,
    client: Client<HttpConnector, Full<Bytes>>,
    injected: Arc<AtomicU32>,
    upstream: Arc<String>,
    seen: Requests,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = crate::collect_body(body).await;
    let n = injected.fetch_add(1, Ordering::Relaxed);
    if n < fault.times {
        let payload = format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{}","message":"injected by the test proxy"}}"#,
            fault.code
        );
        let mut response = Response::new(Full::new(Bytes::from(payload)));
        *response.status_mut() =
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            "content-type",
            "application/x-amz-json-1.0".parse().expect("header"),
        );
        headers.insert(
            "x-amzn-requestid",
            format!("INJECTED{n}").parse().expect("header"),
        );
        return Ok(response);
    }
    let path = parts.uri.path().to_owned();
    let uri = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forwarded = Request::new(Full::new(body));
    *forwarded.method_mut() = parts.method;
    *forwarded.uri_mut() = uri.parse().expect("uri");
    *forwarded.headers_mut() = parts.headers;
    match client.request(forwarded).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            if let Some(id) = parts
                .headers
                .get("lambda-runtime-trace-id")
                .and_then(|v| v.to_str().ok())
            {
                seen.1
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(Answered {
                        path: path.clone(),
                        runtime_trace_id: id.to_owned(),
                    });
            }
            let body = crate::collect_body(body).await;
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(err) => {
            let mut response = Response::new(Full::new(Bytes::from(err.to_string())));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}
