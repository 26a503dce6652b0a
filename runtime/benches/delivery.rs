//! The time pacing adds to big invocations: each case runs paced (`Pacing::LAMBDA`, the
//! default) in this process, and unpaced (`Pacing::OFF`, which loses most of a big invocation
//! at such a daemon) in a second run of this binary, against the same kind of daemon stand-in
//! in another process: the kernel's default receive buffer, one datagram at a time, 50 µs each
//! (as `tests/src/daemon.rs`).
//!
//! `cargo bench -p xray-lambda --bench delivery`; criterion prints `delivery/paced/...` and
//! `delivery/unpaced/...` medians. `XRAY_BENCH_QUICK=1` runs each case a few times only.
//!
//! `delivery/layer/...` runs the paced cases under `XrayRuntimeLayer`, driven as
//! `lambda_runtime` drives it: `response/` is the time until the runtime's own service is done
//! (when the response would be posted), `next/` until the layer is (when the runtime would ask
//! for the next invocation). Paced without the layer, the response comes at `paced/`.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use lambda_runtime::tower::{service_fn, Layer as _, Service as _};
use lambda_runtime::{Context, LambdaInvocation};
use xray_lambda::{Export, Invocation, Pacing, XrayRuntimeLayer};

/// The stand-in's time per datagram.
const READ_COST: Duration = Duration::from_micros(50);

/// The daemon stand-in: reads until killed, `READ_COST` a datagram on average.
fn daemon(address: &str) -> ! {
    let socket = UdpSocket::bind(address).expect("bind the daemon");
    let mut buf = vec![0u8; 70_000];
    let mut next = Instant::now();
    loop {
        let asked = Instant::now();
        let _ = socket.recv(&mut buf);
        let now = Instant::now();
        if now - asked > Duration::from_millis(1) {
            next = now;
        }
        next += READ_COST;
        if let Some(pause) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(pause);
        }
    }
}

fn start_daemon() -> (Child, SocketAddr) {
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("port")
        .port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let child = Command::new(std::env::current_exe().expect("bench binary"))
        .env("XRAY_BENCH_DAEMON", address.to_string())
        .spawn()
        .expect("start the daemon process");
    std::thread::sleep(Duration::from_millis(200));
    (child, address)
}

fn header() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("Root=1-{epoch:08x}-{n:024x};Parent=53995c3f42cd8ad8;Sampled=1")
}

/// One traced invocation with `n` subsegments under its handler, to the end of its send.
async fn invocation(n: usize) {
    let mut context = Context::default();
    context.xray_trace_id = Some(header());
    let mut invocation = Invocation::start("handler", &context);
    invocation
        .run(async {
            for _ in 0..n {
                let _leaf = tracing::info_span!("leaf").entered();
            }
        })
        .await;
    invocation.finish().await;
}

/// [`invocation`] under `XrayRuntimeLayer`: how long until the response (the runtime's own
/// service is done) and until the next invocation would be asked for (the layer is done).
async fn under_the_layer(n: usize) -> (Duration, Duration) {
    let start = Instant::now();
    let responded = std::sync::Arc::new(std::sync::Mutex::new(None));
    let at_response = responded.clone();
    let mut service = XrayRuntimeLayer.layer(service_fn(move |_: LambdaInvocation| {
        let at_response = at_response.clone();
        async move {
            invocation(n).await;
            *at_response.lock().expect("lock") = Some(Instant::now());
            Ok::<(), std::convert::Infallible>(())
        }
    }));
    let mut context = Context::default();
    context.xray_trace_id = Some(header());
    let request = LambdaInvocation {
        parts: http::Response::new(()).into_parts().0,
        body: bytes::Bytes::new(),
        context,
    };
    let _ = service.call(request).await;
    let response = responded.lock().expect("lock").expect("responded") - start;
    (response, start.elapsed())
}

/// `count` invocations of `n` subsegments at once.
async fn at_once(count: usize, n: usize) {
    let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(invocation(n))).collect();
    for task in tasks {
        let _ = task.await;
    }
}

fn main() {
    if let Ok(address) = std::env::var("XRAY_BENCH_DAEMON") {
        daemon(&address);
    }
    let unpaced = std::env::var_os("XRAY_BENCH_UNPACED").is_some();
    let (mut daemon, address) = start_daemon();
    let _tracing = xray_lambda::builder()
        .export(Export::Daemon(address))
        .udp_pacing(if unpaced { Pacing::OFF } else { Pacing::LAMBDA })
        .init()
        .expect("init");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let quick = std::env::var_os("XRAY_BENCH_QUICK").is_some();
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(if quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(15)
        })
        .configure_from_args();
    let mode = if unpaced { "unpaced" } else { "paced" };
    let mut group = criterion.benchmark_group(format!("delivery/{mode}"));
    for (count, n) in [(1, 100), (1, 10_000), (8, 2_000), (64, 100)] {
        group.bench_function(format!("{count}x{n}"), |b| {
            b.iter(|| runtime.block_on(at_once(count, n)));
        });
    }
    group.finish();
    if !unpaced {
        let mut group = criterion.benchmark_group("delivery/layer");
        for (count, n) in [(1, 10_000), (8, 2_000)] {
            for (what, pick) in [("response", 0), ("next", 1)] {
                group.bench_function(format!("{what}/{count}x{n}"), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let times = runtime.block_on(async {
                                let tasks: Vec<_> = (0..count)
                                    .map(|_| tokio::spawn(under_the_layer(n)))
                                    .collect();
                                let mut slowest = (Duration::ZERO, Duration::ZERO);
                                for task in tasks {
                                    let (response, next) = task.await.expect("task");
                                    slowest = (slowest.0.max(response), slowest.1.max(next));
                                }
                                slowest
                            });
                            total += if pick == 0 { times.0 } else { times.1 };
                        }
                        total
                    });
                });
            }
        }
        group.finish();
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    if !unpaced {
        // The same cases unpaced, in a process of their own (the pipeline is process-wide).
        let status = Command::new(std::env::current_exe().expect("bench binary"))
            .args(std::env::args().skip(1))
            .env("XRAY_BENCH_UNPACED", "1")
            .status();
        if !status.as_ref().is_ok_and(std::process::ExitStatus::success) {
            eprintln!("the unpaced run failed: {status:?}");
        }
    }
}
