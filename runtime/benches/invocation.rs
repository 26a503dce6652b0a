//! Per-invocation cost, side by side in one run, on one loopback UDP sink in another process
//! (this binary re-run with `XRAY_BENCH_SINK`). Each traced variant produces, per invocation, a
//! handler subsegment and one DynamoDB subsegment (unless its name says otherwise).
//!
//! Run through `bench/run`, which prints the table; or `cargo bench -p xray-lambda --bench
//! invocation` alone. `XRAY_BENCH_QUICK=1` runs each case a few times only (the CI smoke run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use lambda_runtime::{Context, Error, LambdaEvent};
use opentelemetry::trace::{
    SpanContext, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::SpanId;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Counts allocations, for the allocations-per-invocation figures.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The UDP sink: drains datagrams until killed.
fn sink(address: &str) -> ! {
    let socket = UdpSocket::bind(address).expect("bind the sink");
    let mut buf = vec![0u8; 70_000];
    loop {
        let _ = socket.recv(&mut buf);
    }
}

fn start_sink() -> (Child, SocketAddr) {
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("port")
        .port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let child = Command::new(std::env::current_exe().expect("bench binary"))
        .env("XRAY_BENCH_SINK", address.to_string())
        .spawn()
        .expect("start the sink process");
    std::thread::sleep(Duration::from_millis(200));
    (child, address)
}

fn header(sampled: &str) -> String {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = ALLOCATIONS.load(Ordering::Relaxed);
    format!("Root=1-{epoch:08x}-{n:024x};Parent=53995c3f42cd8ad8;Sampled={sampled}")
}

// Not inlined: `bench/breakdown` counts its calls.
#[inline(never)]
fn event(sampled: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.deadline = deadline_ms();
    context.xray_trace_id = Some(header(sampled));
    LambdaEvent::new(Value::Null, context)
}

// ---- the bare handler: the same body, no tracing ----

// async like every Lambda handler, so the comparison is like for like.
#[allow(clippy::unused_async)]
async fn bare(event: LambdaEvent<Value>) -> Result<Value, Error> {
    black_box(&event);
    Ok(Value::Null)
}

// ---- ours ----

#[xray_lambda::xray_handler]
async fn ours(event: LambdaEvent<Value>) -> Result<Value, Error> {
    black_box(&event);
    dynamodb_call();
    Ok(Value::Null)
}

#[xray_lambda::xray_handler(name = "handler")]
async fn ours_100(event: LambdaEvent<Value>) -> Result<Value, Error> {
    black_box(&event);
    for _ in 0..99 {
        let _s = tracing::info_span!("step").entered();
    }
    dynamodb_call();
    Ok(Value::Null)
}

/// What `XrayInterceptor` records for a `GetItem`, without the SDK's own plumbing.
fn dynamodb_call() {
    use xray_lambda::__private::{AwsCall, AwsCallEnd, AwsRecorded};
    // As `XrayInterceptor` does: nothing is read from the request outside a recorded span.
    if !AwsCall::wanted() {
        return;
    }
    let recorded = AwsRecorded {
        table_name: Some("lambda-tracing-xray".into()),
        ..AwsRecorded::default()
    };
    if let Some(call) = AwsCall::begin("DynamoDB", "GetItem", Some("us-east-1"), recorded) {
        call.end(
            Some(200),
            Some("Q6TVN3N5R7E7NT8SQ4S20PBPOVVV4KQNSO5AEMVJF66Q9ASUAAJG"),
            1,
            AwsCallEnd::Output,
        );
    }
}

/// The trace header on an outgoing request.
fn propagation(criterion: &mut Criterion, dispatch: &tracing::Dispatch) {
    // A request's usual headers, with and without the trace header.
    tracing::dispatcher::with_default(dispatch, || {
        let mut context = Context::default();
        context.deadline = deadline_ms();
        context.xray_trace_id = Some(format!("{};Lineage=a87bd80c:1", header("1")));
        let invocation = xray_lambda::Invocation::start("handler", &context);
        let mut headers_group = criterion.benchmark_group("propagation");
        invocation.span().in_scope(|| {
            headers_group.bench_function("request_without_header", |b| {
                b.iter(|| black_box(request_headers()));
            });
            // What the SDK interceptor adds to a call: the header from the call span's context
            // (composed once per call), put on the request (once per attempt).
            let cx = invocation.span().context();
            headers_group.bench_function("request_with_call_header", |b| {
                b.iter(|| {
                    let mut headers = request_headers();
                    if let Some(header) = xray_lambda::__private::downstream_header(&cx) {
                        let _ = headers.try_insert("x-amzn-trace-id", header);
                    }
                    black_box(headers)
                });
            });
            // An HTTP client's request (tower, reqwest): the same header into `http` headers.
            headers_group.bench_function("http_request_without_header", |b| {
                b.iter(|| black_box(http_headers()));
            });
            headers_group.bench_function("http_request_with_call_header", |b| {
                b.iter(|| {
                    let mut headers = http_headers();
                    if let Some(header) = xray_lambda::__private::downstream_header(&cx) {
                        if let Ok(value) = http::HeaderValue::try_from(header) {
                            headers.insert("x-amzn-trace-id", value);
                        }
                    }
                    black_box(headers)
                });
            });
            // `current_trace_header()`, for other clients: the same, plus finding the current
            // span and its context.
            headers_group.bench_function("request_with_current_trace_header", |b| {
                b.iter(|| {
                    let mut headers = request_headers();
                    if let Some(header) = xray_lambda::current_trace_header() {
                        let _ = headers.try_insert("x-amzn-trace-id", header);
                    }
                    black_box(headers)
                });
            });
        });
        headers_group.finish();
        drop(invocation);
    });
}

// ---- HTTP functions: the same handler body behind lambda_http's `Request` ----

/// The request `lambda_http` hands an HTTP API handler for `GET /hello/{name}`, with the
/// Lambda context on it (what its adapter builds from the event; built outside the timing).
// Not inlined: `bench/breakdown` counts its calls.
#[inline(never)]
fn http_request(sampled: &str) -> lambda_http::Request {
    use lambda_http::RequestExt as _;
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "GET /hello/{name}",
        "rawPath": "/hello/ann",
        "rawQueryString": "token=secret",
        "headers": {
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-forwarded-proto": "https"
        },
        "pathParameters": { "name": "ann" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": "GET",
                "path": "/hello/ann",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0"
            },
            "requestId": "bench",
            "routeKey": "GET /hello/{name}",
            "stage": "$default"
        },
        "isBase64Encoded": false
    });
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_value(event).expect("an HTTP API event");
    let mut context = Context::default();
    context.deadline = deadline_ms();
    context.xray_trace_id = Some(header(sampled));
    let mut request = lambda_http::Request::from(request);
    // As `lambda_http`'s adapter hands a request to the handler: with the invocation's trace
    // header among the request's headers (`update_xray_trace_id_header`).
    if let Some(value) = context
        .xray_trace_id
        .as_deref()
        .and_then(|h| lambda_http::http::HeaderValue::from_str(h).ok())
    {
        request.headers_mut().insert("x-amzn-trace-id", value);
    }
    request.with_lambda_context(context)
}

#[allow(clippy::unused_async)]
async fn bare_http(request: lambda_http::Request) -> Result<impl lambda_http::IntoResponse, Error> {
    black_box(&request);
    Ok((lambda_http::http::StatusCode::OK, "hello"))
}

#[xray_lambda::xray_handler(name = "handler")]
async fn ours_http(request: lambda_http::Request) -> Result<impl lambda_http::IntoResponse, Error> {
    black_box(&request);
    dynamodb_call();
    Ok((lambda_http::http::StatusCode::OK, "hello"))
}

#[allow(clippy::unused_async)]
async fn bare_event(
    event: LambdaEvent<Value>,
) -> Result<(lambda_http::http::StatusCode, &'static str), Error> {
    black_box(&event);
    Ok((lambda_http::http::StatusCode::OK, "hello"))
}

/// Added to each iteration of a pair's difference, so that no sample sums to zero or less;
/// bench/run subtracts it (the name of each case that carries it says `plus_10us`).
const PAIR_OFFSET_NS: i128 = 10_000;

/// The HTTP handler against the `LambdaEvent` handler, each against its untraced twin, with
/// the input built outside the timing, right before each call (as `lambda_http` builds it
/// right before the handler runs, so it is in cache): what the HTTP handler adds is the
/// difference of the two differences. Each response is converted as `lambda_http` would.
fn http_functions(
    criterion: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    dispatch: &tracing::Dispatch,
) {
    use criterion::BatchSize;
    use lambda_http::IntoResponse as _;
    let mut group = criterion.benchmark_group("http");
    tracing::dispatcher::with_default(dispatch, || {
        // The event cases build a request too, kept to the end of the iteration and dropped
        // outside the timing: each case then runs after the same setup, in the same cache
        // state and on the same cadence. (With the event alone, its iterations ran back to
        // back while the sink was still awake; each HTTP iteration, after the request's
        // longer construction, woke a sink gone idle, and that wake-up, not the handler,
        // made most of the difference.)
        group.bench_function("event_bare", |b| {
            b.iter_batched(
                || (event("1"), http_request("1")),
                |(event, request)| {
                    let output = runtime.block_on(async { bare_event(event).await.map(|r| r.1) });
                    (output, request)
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_function("event_ours", |b| {
            b.iter_batched(
                || (event("1"), http_request("1")),
                |(event, request)| (runtime.block_on(ours(event)), request),
                BatchSize::PerIteration,
            );
        });
        group.bench_function("http_bare", |b| {
            b.iter_batched(
                || http_request("1"),
                |request| {
                    runtime.block_on(async {
                        let response = bare_http(request).await.expect("ok");
                        response.into_response().await
                    })
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_function("http_ours", |b| {
            b.iter_batched(
                || http_request("1"),
                |request| {
                    runtime.block_on(async {
                        let response = ours_http(request).await.expect("ok");
                        response.into_response().await
                    })
                },
                BatchSize::PerIteration,
            );
        });
        // What the HTTP handler adds, measured in pairs: each iteration times all four
        // handlers on inputs built beforehand, in one order and then in the reverse, and adds
        // (HTTP traced − HTTP bare) − (event traced − event bare). A traced handler's datagram
        // wakes the sink, and what that costs depends on how long the sink has been idle:
        // measured apart, the four medians each carried a different share of it, and their
        // difference swung by several microseconds between runs.
        //
        // Each iteration reports its difference plus `PAIR_OFFSET_NS`: criterion refuses a
        // sample that took no time, and a sample of one or two iterations can sum below zero
        // (a clamped sample left the case without an estimate). bench/run subtracts it.
        group.bench_function("http_over_event_plus_10us", |b| {
            b.iter_custom(|iterations| {
                let mut added: i128 = 0;
                for iteration in 0..iterations {
                    let (mut event_input, mut request_input) = (
                        [Some(event("1")), Some(event("1"))],
                        [Some(http_request("1")), Some(http_request("1"))],
                    );
                    let mut outputs = Vec::with_capacity(4);
                    let mut times = [0_i128; 4];
                    let order: [usize; 4] = if iteration % 2 == 0 {
                        [0, 1, 2, 3]
                    } else {
                        [3, 2, 1, 0]
                    };
                    for case in order {
                        let started = Instant::now();
                        let output = match case {
                            0 => runtime
                                .block_on(async {
                                    let event = event_input[0].take().expect("input");
                                    bare_event(event).await.map(|r| r.1)
                                })
                                .map(|_| None),
                            1 => runtime
                                .block_on(ours(event_input[1].take().expect("input")))
                                .map(|_| None),
                            2 => Ok(Some(runtime.block_on(async {
                                let request = request_input[0].take().expect("input");
                                let response = bare_http(request).await.expect("ok");
                                response.into_response().await
                            }))),
                            _ => Ok(Some(runtime.block_on(async {
                                let request = request_input[1].take().expect("input");
                                let response = ours_http(request).await.expect("ok");
                                response.into_response().await
                            }))),
                        };
                        times[case] = started.elapsed().as_nanos().try_into().unwrap_or(0);
                        // Dropped after the timing, as criterion drops a routine's output.
                        outputs.push(output);
                    }
                    added += (times[3] - times[2]) - (times[1] - times[0]);
                }
                let reported = added + PAIR_OFFSET_NS * i128::from(iterations);
                Duration::from_nanos(u64::try_from(reported.max(1)).unwrap_or(u64::MAX))
            });
        });
    });
    group.finish();
}

/// Allocations of the HTTP handler and its untraced twin, under the current dispatcher. The
/// requests are built first: their construction is `lambda_http`'s, not counted.
fn http_allocations(runtime: &tokio::runtime::Runtime) -> [(&'static str, u64); 2] {
    let mut requests: Vec<_> = (0..202).map(|_| http_request("1")).collect();
    let mut next = || requests.pop().expect("a request");
    [
        (
            "http_bare",
            allocations(|| drop(runtime.block_on(bare_http(next())))),
        ),
        (
            "http_ours",
            allocations(|| drop(runtime.block_on(ours_http(next())))),
        ),
    ]
}

/// The headers an HTTP client's request carries before the trace header.
fn http_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("content-length", "64"),
        ("user-agent", "reqwest/0.12"),
    ] {
        headers.insert(name, http::HeaderValue::from_static(value));
    }
    headers
}

/// The headers an SDK request carries before the trace header.
fn request_headers() -> aws_smithy_runtime_api::http::Headers {
    let mut headers = aws_smithy_runtime_api::http::Headers::new();
    for (name, value) in [
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "DynamoDB_20120810.GetItem"),
        ("content-length", "64"),
        ("user-agent", "aws-sdk-rust/1.0 os/linux lang/rust"),
    ] {
        headers.insert(name, value);
    }
    headers
}

// ---- the floor: two hand-built documents, two datagrams ----

#[derive(Serialize)]
struct Doc<'a> {
    name: &'a str,
    id: String,
    trace_id: &'a str,
    parent_id: &'a str,
    start_time: f64,
    end_time: f64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws: Option<Aws<'a>>,
}

#[derive(Serialize)]
struct Aws<'a> {
    operation: &'a str,
    region: &'a str,
    request_id: &'a str,
    table_name: &'a str,
    retries: u32,
}

// Not inlined: `bench/breakdown` counts its calls.
#[inline(never)]
fn floor(socket: &UdpSocket, buf: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let handler = Doc {
        name: "handler",
        id: format!("{:016x}", 0x1234_5678_9abc_def0_u64),
        trace_id: "1-6b026d9a-279e18486a18dc4a26474a06",
        parent_id: "53995c3f42cd8ad8",
        start_time: now,
        end_time: now + 0.001,
        kind: "subsegment",
        namespace: None,
        aws: None,
    };
    let call = Doc {
        name: "DynamoDB",
        id: format!("{:016x}", 0x0fed_cba9_8765_4321_u64),
        trace_id: "1-6b026d9a-279e18486a18dc4a26474a06",
        parent_id: "123456789abcdef0",
        start_time: now,
        end_time: now + 0.0005,
        kind: "subsegment",
        namespace: Some("aws"),
        aws: Some(Aws {
            operation: "GetItem",
            region: "us-east-1",
            request_id: "Q6TVN3N5R7E7NT8SQ4S20PBPOVVV4KQNSO5AEMVJF66Q9ASUAAJG",
            table_name: "lambda-tracing-xray",
            retries: 0,
        }),
    };
    for doc in [&handler, &call] {
        buf.clear();
        buf.extend_from_slice(b"{\"format\":\"json\",\"version\":1}\n");
        serde_json::to_writer(&mut *buf, doc).expect("serialize");
        let _ = socket.send(buf);
    }
}

// ---- the obvious hand-wired pipeline: tracing + tracing-opentelemetry + SimpleSpanProcessor +
// ---- opentelemetry-aws's XrayExporter and XrayDaemonClient

fn hand_wired_dispatch(sink: SocketAddr) -> tracing::Dispatch {
    use opentelemetry_aws::trace::XrayIdGenerator;
    use opentelemetry_aws::xray_exporter::{daemon_client::XrayDaemonClient, XrayExporter};
    let exporter = XrayExporter::new(XrayDaemonClient::new(sink).expect("client"));
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_id_generator(XrayIdGenerator::default())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("hand-wired"));
    tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
}

async fn hand_wired(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let header = event.context.xray_trace_id.as_deref().unwrap_or_default();
    let root = &header[5..40];
    let trace_id = TraceId::from_hex(&root[2..].replace('-', "")).unwrap_or(TraceId::INVALID);
    let parent = SpanContext::new(
        trace_id,
        SpanId::from_hex("53995c3f42cd8ad8").unwrap_or(SpanId::INVALID),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    let span = tracing::info_span!("handler");
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    async {
        let call = tracing::info_span!(
            "DynamoDB",
            otel.kind = "client",
            rpc.system = "aws-api",
            rpc.service = "DynamoDB",
            rpc.method = "GetItem",
            aws.region = "us-east-1",
            aws.table.name = "lambda-tracing-xray",
            aws.request_id = "Q6TVN3N5R7E7NT8SQ4S20PBPOVVV4KQNSO5AEMVJF66Q9ASUAAJG",
            http.response.status_code = 200,
        );
        async { black_box(&event) }.instrument(call).await;
    }
    .instrument(span)
    .await;
    Ok(Value::Null)
}

fn allocations<F: FnMut()>(mut f: F) -> u64 {
    f(); // warm
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..100 {
        f();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) / 100
}

/// Criterion as the command line says, or briefly (`XRAY_BENCH_QUICK`, the CI smoke run).
/// Runs `a` and `b` one after the other, `a` first on even iterations and `b` first on odd
/// ones, so that neither always runs right after the other: the paired measurements' order.
fn in_turn<A, B>(iteration: u64, a: impl FnOnce() -> A, b: impl FnOnce() -> B) -> (A, B) {
    if iteration.is_multiple_of(2) {
        let a = a();
        (a, b())
    } else {
        let b = b();
        (a(), b)
    }
}

/// Ours against the floor in pairs: each iteration times both, in one order and then in the
/// reverse; one function reports ours's times, the other the floor's. Each sends to the sink,
/// and the cost of waking it depends on how long it was idle: apart, the two medians each
/// carried a different share of it.
fn ours_against_the_floor(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    socket: &UdpSocket,
    buf: &mut Vec<u8>,
) {
    for (name, report_ours) in [("paired_ours", true), ("paired_floor", false)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut reported = Duration::ZERO;
                for iteration in 0..iterations {
                    let time_ours = || {
                        let input = event("1");
                        let started = Instant::now();
                        let output = runtime.block_on(ours(input));
                        let took = started.elapsed();
                        drop(output);
                        took
                    };
                    let time_floor = || {
                        let started = Instant::now();
                        runtime.block_on(async { floor(socket, buf) });
                        started.elapsed()
                    };
                    let (ours_took, floor_took) = in_turn(iteration, time_ours, time_floor);
                    reported += if report_ours { ours_took } else { floor_took };
                }
                reported
            });
        });
    }
}

fn criterion(quick: bool) -> Criterion {
    let criterion = Criterion::default().configure_from_args();
    if quick {
        criterion
            .warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(100))
            .sample_size(10)
    } else {
        criterion
    }
}

/// The "tracing disabled" case needs a process whose pipeline is off (it is process-wide):
/// this binary again, with `XRAY_BENCH_DISABLED`.
fn disabled(quick: bool) {
    let _guard = xray_lambda::builder()
        .export(xray_lambda::Export::Disabled)
        .layer::<tracing_subscriber::Registry>()
        .expect("layer");
    let mut criterion = criterion(quick);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = criterion.benchmark_group("invocation");
    group.bench_function("disabled", |b| {
        b.iter(|| runtime.block_on(ours(event("1"))));
    });
    // What tracing that is off adds, measured in pairs in this one process: each iteration
    // times the bare handler and the traced one, in one order and then in the reverse, and
    // adds their difference (the two medians come from two processes, each with its own
    // layout and caches). Reported plus `PAIR_OFFSET_NS` per iteration, as the HTTP pair is.
    group.bench_function("disabled_over_bare_plus_10us", |b| {
        b.iter_custom(|iterations| {
            let mut added: i128 = 0;
            for iteration in 0..iterations {
                let (bare_event, ours_event) = (event("1"), event("1"));
                // Each output is dropped after the timing, as criterion drops a routine's.
                let time = |traced: bool, input| {
                    let started = Instant::now();
                    let output = if traced {
                        runtime.block_on(ours(input))
                    } else {
                        runtime.block_on(bare(input))
                    };
                    (started.elapsed(), output)
                };
                let ((untraced, _bare_output), (traced, _ours_output)) = in_turn(
                    iteration,
                    || time(false, bare_event),
                    || time(true, ours_event),
                );
                added += i128::try_from(traced.as_nanos()).unwrap_or(0)
                    - i128::try_from(untraced.as_nanos()).unwrap_or(0);
            }
            let reported = added + PAIR_OFFSET_NS * i128::from(iterations);
            Duration::from_nanos(u64::try_from(reported.max(1)).unwrap_or(u64::MAX))
        });
    });
    group.finish();
    let allocations = allocations(|| drop(runtime.block_on(ours(event("1")))));
    println!("ALLOCATIONS {{\"disabled\":{allocations}}}");
}

fn main() {
    if let Ok(address) = std::env::var("XRAY_BENCH_SINK") {
        sink(&address);
    }
    if std::env::var_os("XRAY_BENCH_DISABLED").is_some() {
        disabled(std::env::var_os("XRAY_BENCH_QUICK").is_some());
        return;
    }
    let (mut sink_process, sink) = start_sink();
    let quick = std::env::var_os("XRAY_BENCH_QUICK").is_some();
    let mut criterion = criterion(quick);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    // Ours: the pipeline `init` would install, as a layer on a dispatcher of this thread.
    // The sink reads as fast as it can: the pacer keeps its model (the per-datagram
    // bookkeeping is measured) of a daemon that fast, so it never holds a datagram back.
    let (layer, guard) = xray_lambda::builder()
        .export(xray_lambda::Export::Daemon(sink))
        .udp_pacing(xray_lambda::Pacing::LAMBDA.with_read_interval(Duration::from_micros(1)))
        .layer::<tracing_subscriber::Registry>()
        .expect("layer");
    let ours_dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let hand_wired_pipeline = hand_wired_dispatch(sink);

    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.connect(sink).expect("connect");
    socket.set_nonblocking(true).expect("nonblocking");
    let mut buf = Vec::with_capacity(2048);

    let mut group = criterion.benchmark_group("invocation");
    group.bench_function("bare", |b| b.iter(|| runtime.block_on(bare(event("1")))));
    group.bench_function("floor", |b| {
        b.iter(|| runtime.block_on(async { floor(&socket, &mut buf) }));
    });
    tracing::dispatcher::with_default(&hand_wired_pipeline, || {
        group.bench_function("hand_wired", |b| {
            b.iter(|| runtime.block_on(hand_wired(event("1"))));
        });
    });
    tracing::dispatcher::with_default(&ours_dispatch, || {
        group.bench_function("ours", |b| b.iter(|| runtime.block_on(ours(event("1")))));
        group.bench_function("ours_unsampled", |b| {
            b.iter(|| runtime.block_on(ours(event("0"))));
        });
        group.bench_function("ours_100_subsegments", |b| {
            b.iter(|| runtime.block_on(ours_100(event("1"))));
        });
        ours_against_the_floor(&mut group, &runtime, &socket, &mut buf);
    });

    group.finish();
    // The HTTP handlers while the sink still reads (a sink that is down makes every send an
    // error, and the difference of differences mostly noise).
    http_functions(&mut criterion, &runtime, &ours_dispatch);

    // The daemon goes down: the same invocation, sending to a port where nothing listens.
    let _ = sink_process.kill();
    let _ = sink_process.wait();
    let mut group = criterion.benchmark_group("invocation");
    tracing::dispatcher::with_default(&ours_dispatch, || {
        group.bench_function("ours_daemon_down", |b| {
            b.iter(|| runtime.block_on(ours(event("1"))));
        });
    });
    group.finish();
    propagation(&mut criterion, &ours_dispatch);

    let mut counts = Vec::new();
    counts.push((
        "bare",
        allocations(|| drop(runtime.block_on(bare(event("1"))))),
    ));
    counts.push((
        "floor",
        allocations(|| runtime.block_on(async { floor(&socket, &mut buf) })),
    ));
    tracing::dispatcher::with_default(&hand_wired_pipeline, || {
        counts.push((
            "hand_wired",
            allocations(|| drop(runtime.block_on(hand_wired(event("1"))))),
        ));
    });
    tracing::dispatcher::with_default(&ours_dispatch, || {
        counts.push((
            "ours",
            allocations(|| drop(runtime.block_on(ours(event("1"))))),
        ));
        counts.push((
            "ours_unsampled",
            allocations(|| drop(runtime.block_on(ours(event("0"))))),
        ));
        counts.extend(http_allocations(&runtime));
    });
    // One line bench/run reads.
    let json: Vec<String> = counts.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    println!("ALLOCATIONS {{{}}}", json.join(","));
    drop(guard);
    criterion.final_summary();
    // The disabled case, in a process of its own, right after (same arguments: bench or test).
    let status = Command::new(std::env::current_exe().expect("bench binary"))
        .args(std::env::args().skip(1))
        .env("XRAY_BENCH_DISABLED", "1")
        .status()
        .expect("run the disabled case");
    assert!(status.success(), "the disabled case failed");
}

/// A deadline a day ahead, as Lambda gives every invocation one (the deadline watcher files
/// it; an invocation that gets none costs less than a real one).
fn deadline_ms() -> u64 {
    static DEADLINE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *DEADLINE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from((now + std::time::Duration::from_hours(24)).as_millis()).unwrap_or(u64::MAX)
    })
}
