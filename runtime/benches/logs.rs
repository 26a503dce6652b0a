//! The cost of one JSON log line inside a traced invocation: this crate's log layer against
//! the subscriber `lambda_runtime::tracing::init_default_subscriber` installs in JSON mode
//! (`tracing_subscriber::fmt` JSON, target off, no time, `EnvFilter` at INFO), side by side in
//! one run, over one subscriber with the X-Ray layer: each case switches its log layer on and
//! the other off. Both write to a sink that counts bytes, so the formatting is measured, not
//! the terminal.
//!
//! `cargo bench -p xray-lambda --bench logs`.

use std::hint::black_box;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use criterion::Criterion;
use lambda_runtime::Context;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

/// Which log layer is on: 1 ours, 2 `lambda_runtime`'s default JSON subscriber.
static ON: AtomicU8 = AtomicU8::new(0);
/// Bytes written, to check that each case writes its lines (a sink that counts).
static WRITTEN: AtomicUsize = AtomicUsize::new(0);

struct Counted;

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        WRITTEN.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn counted() -> Counted {
    Counted
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    // A daemon address that nothing reads: only the invocation's end would send.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let builder = xray_lambda::builder()
        .export(xray_lambda::Export::Daemon(
            socket.local_addr().expect("addr"),
        ))
        .service_name("orders")
        .log_format(xray_lambda::LogFormat::Json);
    let ours = builder
        .log_layer_with_writer(counted as fn() -> Counted)
        .with_filter(FilterFn::new(|meta| {
            meta.is_span() || ON.load(Ordering::Relaxed) == 1
        }));
    let theirs = tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .without_time()
        .with_writer(counted as fn() -> Counted)
        .with_filter(EnvFilter::new("info"))
        .with_filter(FilterFn::new(|meta| {
            meta.is_span() || ON.load(Ordering::Relaxed) == 2
        }));
    let (xray, _guard) = builder.layer().expect("layer");
    let subscriber = tracing_subscriber::registry()
        .with(xray)
        .with(ours)
        .with(theirs);
    tracing::subscriber::with_default(subscriber, || {
        let mut context = Context::default();
        "8f5f2a43-0000-4a9e-9a1c-5d6e2b1c9f00".clone_into(&mut context.request_id);
        context.xray_trace_id = Some(
            "Root=1-6b084299-bd59238160bcca975aeac791;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
        );
        let invocation = xray_lambda::Invocation::start("handler", &context);
        assert!(invocation.is_recorded(), "a traced invocation");
        let mut group = criterion.benchmark_group("log_line");
        invocation.span().in_scope(|| {
            for (name, which) in [("ours_json", 1), ("lambda_runtime_default_json", 2)] {
                ON.store(which, Ordering::Relaxed);
                let before = WRITTEN.load(Ordering::Relaxed);
                tracing::info!(customer = "c-42", items = 3_u32, "order placed");
                let line = WRITTEN.load(Ordering::Relaxed) - before;
                assert!(line > 100, "{name} wrote {line} bytes for a line");
                println!("{name}: {line} bytes per line");
                group.bench_function(name, |b| {
                    b.iter(|| {
                        tracing::info!(customer = "c-42", items = black_box(3_u32), "order placed");
                    });
                });
            }
        });
        group.finish();
        drop(invocation);
    });
    criterion.final_summary();
}
