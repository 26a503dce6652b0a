//! An OTLP trace receiver on loopback, what an OpenTelemetry collector's `otlp` receiver is:
//! gRPC (tonic, the protocol's own service types) or HTTP/protobuf (hyper, `POST /v1/traces`).
//! It keeps every span with its resource, and can be told to answer late (a slow collector).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// One received span with the attributes of its resource.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The span as sent.
    pub span: Span,
    /// Its resource's attributes.
    pub resource: Vec<KeyValue>,
    /// Over UDP to Lambda's endpoint: its datagram's prefix (`T1S` or `T1U`).
    pub prefix: Option<String>,
}

impl ReceivedSpan {
    /// The trace id in X-Ray's form, `1-<8 hex>-<24 hex>`.
    #[must_use]
    pub fn xray_trace_id(&self) -> String {
        let hex = hex(&self.span.trace_id);
        format!("1-{}-{}", &hex[..8], &hex[8..])
    }

    /// A span attribute.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&any_value::Value> {
        find(&self.span.attributes, key)
    }

    /// A resource attribute.
    #[must_use]
    pub fn resource_attribute(&self, key: &str) -> Option<&any_value::Value> {
        find(&self.resource, key)
    }
}

/// The spans of an export request, each with its resource's attributes.
#[must_use]
pub fn spans_of(request: ExportTraceServiceRequest, prefix: Option<&str>) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(ReceivedSpan {
                    span,
                    resource: resource.clone(),
                    prefix: prefix.map(str::to_owned),
                });
            }
        }
    }
    out
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[derive(Debug, Default)]
struct Store {
    spans: Mutex<Vec<ReceivedSpan>>,
    arrived: Condvar,
    requests: AtomicU64,
    /// Milliseconds to wait before answering each request.
    delay_ms: AtomicU64,
    /// Count spans only, without keeping them (for benchmarks).
    discard: std::sync::atomic::AtomicBool,
}

impl Store {
    fn take(&self, request: ExportTraceServiceRequest) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.discard.load(Ordering::Relaxed) {
            return;
        }
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(spans_of(request, None));
        self.arrived.notify_all();
    }

    async fn pause(&self) {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}

/// The receiver: serves on a loopback port from tasks of the tokio runtime it starts on.
#[derive(Debug, Clone)]
pub struct Receiver {
    address: SocketAddr,
    store: Arc<Store>,
}

#[derive(Debug)]
struct Grpc(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.pause().await;
        self.0.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// gRPC on a loopback port.
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn grpc() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let store = Arc::new(Store::default());
        let service = TraceServiceServer::new(Grpc(store.clone()));
        tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            if let Err(err) = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
            {
                eprintln!("OTLP gRPC receiver stopped: {err}");
            }
        });
        Receiver { address, store }
    }

    /// HTTP/protobuf on a loopback port (`POST /v1/traces`).
    ///
    /// # Panics
    /// If no port can be bound.
    pub async fn http() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let store = Arc::new(Store::default());
        let serving = store.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let store = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let store = store.clone();
                        async move { Ok::<_, std::convert::Infallible>(http_export(req, &store).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { address, store }
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request waits this long before it is answered (and its spans kept).
    pub fn answer_after(&self, delay: Duration) {
        self.store.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// From now on, count requests without keeping their spans (a benchmark's millions).
    pub fn discard_spans(&self) {
        self.store.discard.store(true, Ordering::Relaxed);
    }

    /// Export requests taken so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.store.requests.load(Ordering::Relaxed)
    }

    /// Every span so far.
    #[must_use]
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The spans of the X-Ray trace `root`, waiting until there are `at_least` or `timeout`
    /// passes (then what arrived).
    #[must_use]
    pub fn wait_for_trace(
        &self,
        root: &str,
        at_least: usize,
        timeout: Duration,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        let mut spans = self
            .store
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            let of_trace: Vec<ReceivedSpan> = spans
                .iter()
                .filter(|s| s.xray_trace_id() == root)
                .cloned()
                .collect();
            let now = Instant::now();
            if of_trace.len() >= at_least || now >= deadline {
                return of_trace;
            }
            spans = self
                .store
                .arrived
                .wait_timeout(spans, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

async fn http_export(req: Request<hyper::body::Incoming>, store: &Store) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response
    };
    if req.uri().path() != "/v1/traces" {
        return reply(StatusCode::NOT_FOUND, Bytes::new());
    }
    let is_protobuf = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    if !is_protobuf {
        return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, Bytes::new());
    }
    let body = crate::collect_body(req.into_body()).await;
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return reply(StatusCode::BAD_REQUEST, Bytes::new());
    };
    store.pause().await;
    store.take(request);
    let answer = ExportTraceServiceResponse {
        partial_success: None,
    };
    let mut response = reply(StatusCode::OK, Bytes::from(answer.encode_to_vec()));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    response
}
