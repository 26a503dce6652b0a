//! The Lambda Runtime API (`/2018-06-01/runtime/...`) served on loopback, so the real
//! `lambda_runtime` client polls it exactly as it polls Lambda.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

/// How an invocation ended, as the runtime reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST .../response` with this body.
    Response(serde_json::Value),
    /// `POST .../error` with this body (`errorType`, `errorMessage`).
    Error(serde_json::Value),
}

impl Outcome {
    /// The response body, or a panic naming the error.
    ///
    /// # Panics
    /// When the invocation failed.
    #[must_use]
    pub fn unwrap_response(self) -> serde_json::Value {
        match self {
            Outcome::Response(v) => v,
            Outcome::Error(e) => panic!("the invocation failed: {e}"),
        }
    }
}

struct Queued {
    request_id: String,
    payload: Bytes,
    trace_header: Option<String>,
    deadline_ms: u64,
    /// Lambda's tenant isolation (`Invoke`'s `TenantId`): here, a payload's top-level
    /// `tenant_id`, sent as `Lambda-Runtime-Aws-Tenant-Id`.
    tenant_id: Option<String>,
}

#[derive(Default)]
struct Shared {
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Names of the extensions registered through the Extensions API.
    extensions: Mutex<Vec<String>>,
    /// When each `invocation/next` request arrived.
    next_requests: Mutex<Vec<std::time::Instant>>,
    /// When the latest response or error arrived.
    last_outcome: Mutex<Option<std::time::Instant>>,
    /// When the runtime asked for `restore/next` (SnapStart).
    restores: Mutex<Vec<std::time::Instant>>,
}

/// A Runtime API server on `127.0.0.1`.
#[derive(Clone)]
pub struct RuntimeApi {
    address: SocketAddr,
    queue: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// Binds a loopback port and serves on the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let (queue, receiver) = mpsc::unbounded_channel::<Queued>();
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let shared = Arc::new(Shared::default());
        let serving = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let receiver = receiver.clone();
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(req, receiver.clone(), shared.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            address,
            queue,
            shared,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        self.address.to_string()
    }

    /// Names of the extensions registered so far.
    ///
    /// # Panics
    /// If a server task panicked holding the list.
    #[must_use]
    pub fn extensions(&self) -> Vec<String> {
        self.shared.extensions.lock().expect("lock").clone()
    }

    /// When each `invocation/next` request arrived, in order: the moments the runtime was done
    /// with an invocation and asked for another (Lambda may freeze the process from then on).
    ///
    /// # Panics
    /// If a thread panicked holding the list.
    #[must_use]
    pub fn next_requests(&self) -> Vec<std::time::Instant> {
        self.shared.next_requests.lock().expect("lock").clone()
    }

    /// When the latest response or error arrived.
    ///
    /// # Panics
    /// If a thread panicked holding it.
    #[must_use]
    pub fn last_outcome_time(&self) -> Option<std::time::Instant> {
        *self.shared.last_outcome.lock().expect("lock")
    }

    /// Queues an invocation with a raw payload; resolves when the runtime reports its end.
    ///
    /// How many times the runtime asked to be restored (`restore/next`, under SnapStart).
    ///
    /// # Panics
    /// If a lock is poisoned.
    #[must_use]
    pub fn restores(&self) -> usize {
        self.shared.restores.lock().expect("lock").len()
    }

    /// Queues an invocation whose deadline is `timeout` from now; the receiver of its outcome.
    fn queue(
        &self,
        payload: Bytes,
        trace_header: Option<&str>,
        timeout: Duration,
    ) -> oneshot::Receiver<Outcome> {
        let request_id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .expect("lock")
            .insert(request_id.clone(), tx);
        let deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            u64::try_from((d + timeout).as_millis()).unwrap_or(u64::MAX)
        });
        let tenant_id = serde_json::from_slice::<serde_json::Value>(&payload)
            .ok()
            .and_then(|p| p["tenant_id"].as_str().map(str::to_owned));
        self.queue
            .send(Queued {
                request_id,
                payload,
                trace_header: trace_header.map(str::to_owned),
                deadline_ms,
                tenant_id,
            })
            .unwrap_or_else(|_| panic!("the Runtime API server has stopped"));
        rx
    }

    /// # Panics
    /// If the server has stopped, or the runtime does not answer within `timeout`.
    pub async fn invoke_raw(
        &self,
        payload: Bytes,
        trace_header: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        let rx = self.queue(payload, trace_header, timeout);
        tokio::time::timeout(timeout, rx)
            .await
            .expect("the runtime answers in time")
            .expect("outcome sent")
    }

    /// Queues an invocation whose deadline is `timeout` from now; its outcome, or `None` when
    /// none came by the deadline (the function timed out, as Lambda would report it).
    ///
    /// # Panics
    /// If the server has stopped.
    pub async fn invoke_until_deadline(
        &self,
        payload: &serde_json::Value,
        trace_header: Option<&str>,
        timeout: Duration,
    ) -> Option<Outcome> {
        let rx = self.queue(Bytes::from(payload.to_string()), trace_header, timeout);
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }

    /// Queues an invocation with a JSON payload.
    pub async fn invoke(&self, payload: &serde_json::Value, trace_header: Option<&str>) -> Outcome {
        self.invoke_raw(
            Bytes::from(payload.to_string()),
            trace_header,
            Duration::from_secs(30),
        )
        .await
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

async fn handle(
    req: Request<Incoming>,
    receiver: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    // The Extensions API, as far as an internal extension with no events uses it.
    if path == "/2020-01-01/extension/register" {
        let name = req
            .headers()
            .get("lambda-extension-name")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        shared.extensions.lock().expect("lock").push(name);
        let body = serde_json::json!({
            "functionName": "local",
            "functionVersion": "$LATEST",
            "handler": "bootstrap",
        });
        let mut response = reply(StatusCode::OK, Bytes::from(body.to_string()));
        response.headers_mut().insert(
            "lambda-extension-identifier",
            hyper::header::HeaderValue::from_static("local-extension-1"),
        );
        return Ok(response);
    }
    if path == "/2020-01-01/extension/event/next" {
        // No events were asked for: Lambda never answers (until SHUTDOWN, not modelled).
        std::future::pending::<()>().await;
    }
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return Ok(reply(StatusCode::NOT_FOUND, Bytes::new()));
    };
    if rest == "invocation/next" {
        shared
            .next_requests
            .lock()
            .expect("lock")
            .push(std::time::Instant::now());
        // Long poll, as Lambda does: wait until an invocation is queued.
        let next = receiver.lock().await.recv().await;
        let Some(next) = next else {
            // The `RuntimeApi` was dropped: no invocation will come. Lambda never answers a
            // `next` without one (it freezes or ends the process), and `lambda_runtime` panics
            // on an answer without a request id, so neither does this stand-in.
            let never: Infallible = std::future::pending().await;
            match never {}
        };
        let mut response = reply(StatusCode::OK, next.payload);
        let headers = response.headers_mut();
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        put("lambda-runtime-aws-request-id", &next.request_id);
        put("lambda-runtime-deadline-ms", &next.deadline_ms.to_string());
        put(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:local",
        );
        if let Some(trace) = &next.trace_header {
            put("lambda-runtime-trace-id", trace);
        }
        if let Some(tenant) = &next.tenant_id {
            put("lambda-runtime-aws-tenant-id", tenant);
        }
        return Ok(response);
    }
    if rest == "restore/next" {
        // SnapStart: answered once the "VM is restored", here after 50 ms.
        shared
            .restores
            .lock()
            .expect("lock")
            .push(std::time::Instant::now());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        return Ok(reply(StatusCode::OK, Bytes::new()));
    }
    if rest == "restore/error" || rest == "init/error" {
        let body = crate::collect_body(req.into_body()).await;
        eprintln!("runtime init error: {}", String::from_utf8_lossy(&body));
        return Ok(reply(StatusCode::ACCEPTED, Bytes::new()));
    }
    if let Some(rest) = rest.strip_prefix("invocation/") {
        if let Some((request_id, kind)) = rest.split_once('/') {
            let request_id = request_id.to_owned();
            let kind = kind.to_owned();
            let body = crate::collect_body(req.into_body()).await;
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
            });
            let outcome = match kind.as_str() {
                "response" => Outcome::Response(value),
                "error" => Outcome::Error(value),
                _ => return Ok(reply(StatusCode::NOT_FOUND, Bytes::new())),
            };
            *shared.last_outcome.lock().expect("lock") = Some(std::time::Instant::now());
            if let Some(tx) = shared.waiting.lock().expect("lock").remove(&request_id) {
                let _ = tx.send(outcome);
            }
            return Ok(reply(StatusCode::ACCEPTED, Bytes::new()));
        }
    }
    Ok(reply(StatusCode::NOT_FOUND, Bytes::new()))
}
