//! Complete, correct AWS X-Ray traces for Rust Lambda functions, from one attribute.
//!
//! ```no_run
//! use lambda_runtime::{service_fn, Error, LambdaEvent};
//! use serde_json::{json, Value};
//!
//! #[xray_lambda::xray_handler]
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
//!     let name = event.payload["firstName"].as_str().unwrap_or("world");
//!     Ok(json!({ "message": greet(name).await }))
//! }
//!
//! // Plain `tracing` spans inside the handler become nested subsegments.
//! #[tracing::instrument(skip_all)]
//! async fn greet(name: &str) -> String {
//!     format!("Hello, {name}!")
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     let _tracing = xray_lambda::init()?;
//!     lambda_runtime::run_concurrent(service_fn(handler)).await
//! }
//! ```
//!
//! In Lambda with Active tracing on, each sampled invocation sends one document to the X-Ray
//! daemon: the `handler` subsegment, under the segment Lambda wrote for the invocation, with
//! the `greet` subsegment nested in it, annotated `ColdStart` and `Service`. On a developer's
//! machine (no `AWS_XRAY_DAEMON_ADDRESS`) the same trace prints on stderr as a waterfall: the
//! subsegment tree, each one's duration and a bar on one time axis, flagged `ERROR`, `THROTTLE`
//! or `FAULT` (coloured on a terminal), what it recorded on the lines under it, 100 columns wide.
//!
//! An invocation with more subsegments than one document holds streams its finished subtrees
//! while it runs (after an `in_progress` document of its handler) and paces its datagrams so
//! that the daemon, which reads one at a time from a socket with the kernel's default buffer,
//! loses none; see [`Pacing`].
//!
//! # The same by hand
//!
//! [`Invocation`] is what `#[xray_handler]` builds on, public for handlers that cannot take
//! the attribute. This handler does by hand what the attribute does for the one above (the
//! attribute's own expansion, with what it adds for batch responses and HTTP functions, is
//! shown in its documentation):
//!
//! ```no_run
//! # use lambda_runtime::{Error, LambdaEvent};
//! # use serde_json::Value;
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
//!     // Reads `event.context.xray_trace_id` (not the process-wide `_X_AMZN_TRACE_ID`, which
//!     // concurrent invocations share), opens the subsegment under its `Parent`.
//!     let mut invocation = xray_lambda::Invocation::start("handler", &event.context);
//!     // Runs the body inside the subsegment's span (the future is instrumented: no guard is
//!     // held across `.await`); a panic is recorded as a fault, sent, and carried on.
//!     let output = invocation
//!         .run(async move {
//!             let event = event;
//!             Ok::<Value, Error>(event.payload)
//!         })
//!         .await;
//!     // An `Err` becomes a fault with a `cause`: type, message and `source()` chain.
//!     if let Err(error) = &output {
//!         invocation.record_error(xray_lambda::Exception::from_error(&**error));
//!     }
//!     // Closes the subsegment and sends the invocation's documents before the result goes
//!     // back to the runtime.
//!     invocation.finish().await;
//!     output
//! }
//! ```
//!
//! # Calls to AWS
//!
//! Register [`aws::XrayInterceptor`] once on each SDK client; every call it makes inside a
//! traced invocation becomes an `aws` subsegment (operation, region, request id, HTTP status,
//! retries, table and the operation's whitelisted parameters; errors as `error`, `throttle` or
//! `fault` with a remote cause). `#[xray_aws]` puts the calls of a helper under a subsegment of
//! its own:
//!
//! ```no_run
//! use aws_sdk_dynamodb::{types::AttributeValue, Client};
//! use lambda_runtime::Error;
//!
//! #[xray_lambda::xray_aws]
//! async fn ddb_get(client: &Client, id: &str) -> Result<bool, Error> {
//!     let output = client
//!         .get_item()
//!         .table_name("orders")
//!         .key("id", AttributeValue::S(id.to_owned()))
//!         .send()
//!         .await?;
//!     Ok(output.item.is_some())
//! }
//!
//! # async fn client() -> Client {
//! let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! Client::from_conf(
//!     aws_sdk_dynamodb::config::Builder::from(&sdk)
//!         .interceptor(xray_lambda::aws::XrayInterceptor::new())
//!         .build(),
//! )
//! # }
//! ```
//!
//! DynamoDB's table names and parameters need the `dynamodb` feature.
//!
//! # Connected traces
//!
//! Every AWS SDK call (with the interceptor) carries `X-Amzn-Trace-Id` naming its own `aws`
//! subsegment as `Parent`, with the invocation's `Root` and the keys of its header this crate
//! does not interpret (`Lineage`) as they came; each attempt of a retried call is a child
//! subsegment ([`Builder::aws_call_phases`] shows `marshal`, every `attempt` and `unmarshal`
//! on every call). An invocation that records nothing forwards its header as it came. With the
//! `tower` feature, `http_client::XrayLayer` does the same for any `tower` HTTP client, and
//! with `reqwest`, `http_client::XrayMiddleware` for `reqwest-middleware`, with X-Ray's `http`
//! object; [`current_trace_header`] gives the header for anything else.
//!
//! # HTTP functions
//!
//! With the `lambda-http` feature, the attribute goes on a `lambda_http` handler too; the
//! handler subsegment gets X-Ray's `http` object (method, URL without its query string, user
//! agent, client IP, status, length), the annotations `HttpMethod`, `HttpRoute` and
//! `HttpStatus`, and the flags the status sets; the request's `x-amzn-trace-id` names the
//! handler subsegment. Module `http_function`. On a developer's machine, `GET
//! /hello/Grace?token=…` through an HTTP API prints (the query string is in no byte):
//!
//! ```text
//! └─ hello_http                   1.944 ms ████████████████████████████████████████████
//!    │ ColdStart=false, Service=hello,
//!    │ GET https://abc123.execute-api.us-east-1.amazonaws.com/hello/Grace, client_ip=203.0.113.7,
//!    │ content_length=27, HttpMethod=GET, HttpRoute=GET /hello/{name}, HttpStatus=200, status=200
//!    └─ hello                     1.797 ms  ▕████████████████████████████████████████▌
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "lambda-http")]
//! # mod m {
//! use lambda_http::{http::StatusCode, Error, IntoResponse, Request, RequestExt as _};
//!
//! #[xray_lambda::xray_handler]
//! async fn hello(request: Request) -> Result<impl IntoResponse, Error> {
//!     let name = request.path_parameters_ref().and_then(|p| p.first("name")).unwrap_or("world");
//!     Ok((StatusCode::OK, format!("Hello, {name}!")))
//! }
//!
//! // Without the attribute (names simplified):
//! async fn hello_by_hand(mut request: Request) -> Result<impl IntoResponse, Error> {
//!     // The Lambda context from the request; the request's header set to the handler's.
//!     let mut invocation = xray_lambda::Invocation::start_http("hello", &mut request);
//!     let output: Result<_, Error> = invocation
//!         .run(async move { Ok((StatusCode::OK, format!("Hello, {}!", request.uri().path()))) })
//!         .await;
//!     if let Err(error) = &output {
//!         invocation.record_error(xray_lambda::Exception::from_error(&**error));
//!     }
//!     // Converts the response as lambda_http would; records its status and length.
//!     let output = invocation.respond(output).await;
//!     invocation.finish().await;
//!     output
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     let _tracing = xray_lambda::init()?;
//!     lambda_http::run_concurrent(lambda_http::service_fn(hello)).await
//! }
//! # }
//! ```
//!
//! # Annotations and metadata
//!
//! ```no_run
//! # fn f(user_id: &str, items: usize, order: &serde_json::Value) {
//! xray_lambda::annotate!("user_id", user_id); // indexed; the key is checked at compile time
//! xray_lambda::annotate!("items", items);
//! xray_lambda::metadata!("order", order); // any serde::Serialize value, not indexed
//! # }
//! ```
//!
//! Both land on the innermost traced subsegment of the invocation that runs them, also from a
//! helper the handler calls, however deep:
//!
//! ```no_run
//! #[tracing::instrument(skip_all)] // a subsegment of its own, `price`
//! async fn price(items: &[u32]) -> u32 {
//!     let total = items.iter().sum();
//!     xray_lambda::annotate!("total", total); // on `price`, searchable in X-Ray
//!     total
//! }
//! ```
//!
//! # Logs
//!
//! [`init`] installs the log output too (on stdout): every line logged inside an
//! invocation ends with its `requestId` and X-Ray trace id (text), or, with
//! `AWS_LAMBDA_LOG_FORMAT=JSON` ([`LogFormat::Json`]), is one flat JSON object with Lambda's
//! `timestamp`, `level`, `message` and `requestId`, Powertools' `xray_trace_id`, `cold_start`,
//! `function_name` and `service`, the innermost subsegment's `trace_id` and `span_id`, and the
//! event's own fields. The fields come from the invocation's span, never the environment;
//! unsampled invocations log them too. `AWS_LAMBDA_LOG_LEVEL` caps the level, `RUST_LOG`
//! chooses by target; the `log` crate's records are included. With a subscriber of your own:
//! [`Builder::log_layer`]. The handler subsegment links back to the log group
//! (`aws.cloudwatch_logs`).
//!
//! # The runtime layer: the response first, events that never reach the handler
//!
//! `Runtime::new(service_fn(handler)).layer(xray_lambda::XrayRuntimeLayer)` sees each
//! invocation around the runtime's own service. Its datagrams are queued as the handler
//! returns, sent while the response goes out, and waited for after the response is posted,
//! before the runtime asks for the next invocation: the caller's latency does not grow with the
//! trace, and nothing is in flight when Lambda freezes the process. Without the layer, an
//! invocation waits for its own datagrams before its handler returns. (An OTLP export to a
//! collector is acknowledged before the response either way.) `lambda_runtime` also answers an
//! event that does not deserialize into the handler's type without calling it; the layer
//! records those invocations as faults.
//!
//! # Where traces go
//!
//! [`init`] reads the environment (see [`Builder`]): the X-Ray daemon over UDP when
//! `AWS_XRAY_DAEMON_ADDRESS` is set; when it is not, nothing in Lambda (Active tracing is off;
//! one info line says so) and a waterfall on stderr elsewhere; nothing when
//! `AWS_XRAY_SDK_DISABLED=true` or `POWERTOOLS_TRACE_DISABLED=true`.
//!
//! In Lambda, `OTEL_TRACES_EXPORTER=otlp` with no OTLP endpoint set sends OpenTelemetry spans
//! over UDP to Lambda's own endpoint at the daemon's address instead ([`Export::OtlpUdp`]), in
//! the format AWS's OpenTelemetry distribution sends (`T1S`/`T1U` datagrams), for CloudWatch
//! Application Signals and Transaction Search, with no collector;
//! `OTEL_AWS_APPLICATION_SIGNALS_ENABLED=true` ([`Builder::application_signals`]) adds the
//! attributes Application Signals reads and sends unsampled invocations as `T1U`.
//!
//! With the `otlp` feature, an `OTEL_EXPORTER_OTLP_ENDPOINT` (or, outside Lambda,
//! `OTEL_TRACES_EXPORTER=otlp`)
//! sends the same spans over OTLP (gRPC or HTTP/protobuf) to an OpenTelemetry collector
//! instead, put the way its `awsxray` exporter reads them (module `otlp`); each invocation waits for
//! the collector's acknowledgement, at most a bounded time, and `shutdown_on_sigterm`
//! flushes what outlived its invocation when Lambda shuts the function down.
//!
//! # Sampling
//!
//! `Sampled=0` in the invocation's trace header: nothing is recorded and no span is built.
//! `Sampled=1`: recorded. `Sampled=?` or no `Sampled` key: recorded (Lambda itself always
//! decides; a header without a decision comes from a caller that traces). `Root` without `Parent` (Lambda's `PassThrough` mode): not
//! recorded. No usable header: not recorded in Lambda (there is no segment to hang it under),
//! a trace of its own on a developer's machine (a malformed one is logged as a warning).

//!
//! # Features
//!
//! `aws-sdk` (default): [`aws::XrayInterceptor`]. `dynamodb`: DynamoDB's tables and
//! parameters. `otlp`: OTLP export and `shutdown_on_sigterm`. `tower`: `http_client::XrayLayer`
//! for outgoing HTTP calls; `reqwest`: `http_client::XrayMiddleware`. `lambda-http`:
//! `#[xray_handler]` on `lambda_http` handlers (`http_function`). `events`: a subsegment per
//! batch record (`records`). `translator`: spans the
//! crate's own document writer does not cover exactly (other instrumentation crates' `http.*`
//! and `db.*` attributes) go through opentelemetry-aws's translator, which maps those to
//! X-Ray's `http` and `sql` objects; without it (the default) such spans are sent with those
//! attributes left out, and the binary is smaller.
//!
//! # Other crates in this API
//!
//! Some signatures name another crate's types on purpose, because the crate plugs into them:
//! `tracing` 0.1 ([`Invocation::span`], the level in [`Builder::span_level`]),
//! `tracing-subscriber` 0.3 ([`Builder::layer`], [`Builder::log_layer`]), `tower-layer` and
//! `tower-service` 0.3's `Layer`/`Service` ([`XrayRuntimeLayer`], `http_client::XrayLayer`), `reqwest-middleware`
//! 0.4 (`http_client::XrayMiddleware`), and the 1.x `lambda_runtime`, `lambda_http`,
//! `aws_lambda_events` and the AWS SDK's interceptor trait. A new major version of one of them
//! is a new major version of this crate. OpenTelemetry, which the crate records with, appears in
//! no signature: its releases are not ours.

#![cfg_attr(docsrs, feature(doc_cfg))]

// The modules, their layers and the rule that imports run down the layers only: ARCHITECTURE.md
// (runtime/tests/layering.rs checks it).
mod annotate;
#[cfg(feature = "aws-sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-sdk")))]
pub mod aws;
mod buffer;
mod datagram;
mod document;
mod environment;
mod exception;
mod header;
#[cfg(any(feature = "tower", feature = "reqwest"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "reqwest"))))]
pub mod http_client;
mod ids;
/// Outgoing HTTP calls: with the `tower` or the `reqwest` feature.
#[cfg(not(any(feature = "tower", feature = "reqwest")))]
pub mod http_client {
    // Never compiled: so that a use of either names its own feature in rustc's error.
    #[cfg(feature = "tower")]
    pub struct XrayLayer;
    #[cfg(feature = "reqwest")]
    pub struct XrayMiddleware;
}
#[cfg(feature = "lambda-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda-http")))]
pub mod http_function;
mod init;
mod invocation;
mod json;
mod logs;
mod notices;
mod otel;
mod propagation;
mod propagators;
mod record;
#[cfg(feature = "events")]
#[cfg_attr(docsrs, doc(cfg(feature = "events")))]
pub mod records;
#[cfg(feature = "otlp")]
mod shutdown;
mod sink;
mod span_tree;
mod state;
mod tracer;
mod unsigned_fields;
mod url;
mod vocabulary;
mod w3c;

// docs/lifecycle.md's examples, compiled with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/lifecycle.md")]
struct LifecycleDocs;

// docs/migrating.md's "after" examples, compiled with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/migrating.md")]
struct MigratingDocs;

/// OTLP export (feature `otlp`): each invocation's spans go to an OpenTelemetry collector,
/// whose X-Ray exporter writes from them the documents the daemon path sends itself.
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub mod otlp {
    pub use crate::sink::otlp::{Otlp, Protocol, DEFAULT_FLUSH_TIMEOUT};
}

pub use annotate::AnnotationValue;
pub use datagram::pacer::Pacing;
pub use exception::Exception;
pub use init::{builder, init, Builder, Export, InitError, TracingGuard};
pub use invocation::runtime_layer::{XrayRuntime, XrayRuntimeLayer};
pub use invocation::snapstart::SnapStartTracing;
pub use invocation::Invocation;
pub use logs::LogFormat;
pub use propagation::{current_trace_header, current_trace_id};
#[cfg(feature = "otlp")]
pub use shutdown::shutdown_on_sigterm;
pub use xray_lambda_macros::{annotate, metadata, xray_aws, xray_handler};

/// `#[xray_handler]` on a `lambda_http` handler: its expansion (the `lambda-http` feature is
/// on). Not public API.
#[cfg(feature = "lambda-http")]
#[doc(hidden)]
#[macro_export]
macro_rules! __xray_http_handler {
    ({ $($expanded:tt)* } { $($handler:tt)* }) => { $($expanded)* };
}

/// `#[xray_handler]` on a `lambda_http` handler without the `lambda-http` feature: one error
/// that names it, and the handler as written. Not public API.
#[cfg(not(feature = "lambda-http"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __xray_http_handler {
    ({ $($expanded:tt)* } { $($handler:tt)* }) => {
        ::core::compile_error!(
            "#[xray_handler] on a lambda_http handler needs xray-lambda's `lambda-http` feature: \
             xray-lambda = { version = \"...\", features = [\"lambda-http\"] }"
        );
        $($handler)*
    };
}

/// What the attributes' expansions call. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use crate::__xray_http_handler as http_handler;
    pub use crate::annotate::{annotate, annotate_dynamic, metadata};
    #[cfg(feature = "aws-sdk")]
    pub use crate::aws::call::{Call as AwsCall, CallEnd as AwsCallEnd, Recorded as AwsRecorded};
    pub use crate::exception::describe::{Probe, ViaDebug, ViaDeref, ViaError};
    pub use crate::exception::Exception;
    #[cfg(feature = "lambda-http")]
    pub use crate::http_function::response::probe::{
        ResponseProbe, ViaAnything, ViaExact, ViaResponse,
    };
    #[cfg(feature = "lambda-http")]
    pub use crate::http_function::response::ResponseFacts;
    pub use crate::invocation::batch::probe::{BatchProbe, ViaBatchResponse, ViaNotBatch};
    pub use crate::invocation::capture::{CaptureProbe, ViaNotSerialize, ViaSerialize};
    pub use crate::invocation::Invocation;
    /// The header a call made from the span whose context this is carries (what the SDK
    /// interceptor computes once per call); for the benchmarks.
    pub use crate::propagation::downstream as downstream_header;
    pub use tracing::Instrument;

    /// `#[xray_handler]`'s future, built in its box, run in the invocation.
    #[inline]
    pub fn run_boxed<'a, F: std::future::Future + 'a>(
        invocation: &'a mut Invocation,
        future: std::pin::Pin<Box<F>>,
    ) -> impl std::future::Future<Output = F::Output> + 'a {
        invocation.run_boxed(future)
    }

    /// The `batch_item_failures` of a handler's batch response.
    #[inline]
    pub fn record_batch_failures(invocation: &mut Invocation, failed: Option<Vec<&str>>) {
        invocation.record_batch_failures(failed);
    }

    /// The attribute's `capture_response` / `capture_error`, where it sets them.
    #[inline]
    pub fn capture(invocation: &mut Invocation, response: Option<bool>, error: Option<bool>) {
        invocation.capture(response, error);
    }

    /// Whether the invocation records its response.
    #[must_use]
    #[inline]
    pub fn captures_response(invocation: &Invocation) -> bool {
        invocation.captures_response()
    }

    /// The response as metadata (`None`: not serializable, said once).
    #[inline]
    pub fn capture_response(invocation: &Invocation, response: Option<serde_json::Value>) {
        invocation.capture_response(response);
    }

    /// An HTTP function's response, read where it is.
    #[cfg(feature = "lambda-http")]
    #[inline]
    pub fn record_response(invocation: &mut Invocation, facts: ResponseFacts) {
        invocation.record_response(facts);
    }

    /// The span of a `#[xray_aws]` function: a local subsegment named `name`.
    #[must_use]
    pub fn function_span(name: &'static str) -> tracing::Span {
        tracing::info_span!(target: "xray_lambda::function", "xray_function", otel.name = name)
    }
}
