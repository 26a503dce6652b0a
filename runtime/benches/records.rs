//! The per-record cost of `records::process`: traced invocations of a batch of 10 SQS
//! messages (empty work), each message with and without its own subsegment, side by side in
//! one run; with producer headers (their links) too. Per record: the difference / 10.
//!
//! `cargo bench -p xray-lambda --features events --bench records`.

use std::net::UdpSocket;

use aws_lambda_events::event::sqs::SqsMessage;
use criterion::Criterion;
use lambda_runtime::Context;
use tracing_subscriber::layer::SubscriberExt as _;

/// Added to each iteration of the pair, so that no sample sums to zero or less; bench/run
/// subtracts it (as in the invocation benchmark, whose pairs carry it too).
const PAIR_OFFSET_NS: i128 = 10_000;

fn message(producer: bool) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some("059f36b4-87a3-44ab-83d2-661975830a7d".to_owned());
    message.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:orders".to_owned());
    message.body = Some("{\"order\":42}".to_owned());
    if producer {
        message.attributes.insert(
            "AWSTraceHeader".to_owned(),
            "Root=1-6b084299-bd59238160bcca975aeac791;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
        );
    }
    message
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    // `bench/run --quick`: each case a few times only.
    if std::env::var_os("XRAY_BENCH_QUICK").is_some() {
        criterion = criterion
            .warm_up_time(std::time::Duration::from_millis(50))
            .measurement_time(std::time::Duration::from_millis(100))
            .sample_size(10);
    }
    // A daemon stand-in that reads as fast as it can, on a thread of its own.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let reader = socket.try_clone().expect("clone");
    std::thread::spawn(move || {
        let mut buf = vec![0_u8; 65_536];
        while reader.recv(&mut buf).is_ok() {}
    });
    let (xray, _guard) = xray_lambda::builder()
        .export(xray_lambda::Export::Daemon(
            socket.local_addr().expect("addr"),
        ))
        .layer()
        .expect("layer");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(xray), || {
        let mut context = Context::default();
        context.deadline = deadline_ms();
        context.xray_trace_id = Some(
            "Root=1-6b084299-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
        );
        let (plain, linked) = (message(false), message(true));
        // One invocation of a batch of 10, as Lambda hands them over; its records nest in the
        // handler's document (one datagram). Per record: the difference / 10.
        let batch = |message: Option<&SqsMessage>| {
            let mut invocation = xray_lambda::Invocation::start("handler", &context);
            runtime.block_on(invocation.run(async {
                for _ in 0..10 {
                    match message {
                        Some(message) => {
                            xray_lambda::records::process(message, async { Ok::<(), ()>(()) }).await
                        }
                        None => async { Ok::<(), ()>(()) }.await,
                    }
                    .expect("ok");
                }
            }));
            runtime.block_on(invocation.finish());
        };
        let mut group = criterion.benchmark_group("record");
        group.bench_function("batch_of_10_bare", |b| b.iter(|| batch(None)));
        group.bench_function("batch_of_10_process", |b| b.iter(|| batch(Some(&plain))));
        group.bench_function("batch_of_10_process_with_producer_links", |b| {
            b.iter(|| batch(Some(&linked)));
        });
        // What one record adds, measured in pairs: each iteration times a bare batch and a
        // processed one, in one order and then in the reverse, and adds a tenth of their
        // difference. Each batch's datagram wakes the reader, and what that costs depends on
        // how long it has been idle: measured apart, the two medians each carried a different
        // share of it, and a record's cost swung between runs.
        // Each iteration reports a tenth of its difference plus `PAIR_OFFSET_NS`, as the
        // invocation benchmark's pairs do: criterion refuses a sample that sums to zero or
        // less, and such a sample (clamped, or refused) could leave the case without an
        // estimate.
        group.bench_function("record_paired_plus_10us", |b| {
            b.iter_custom(|iterations| {
                let mut added: i128 = 0;
                for iteration in 0..iterations {
                    let time = |message: Option<&SqsMessage>| {
                        let started = std::time::Instant::now();
                        batch(message);
                        i128::try_from(started.elapsed().as_nanos()).unwrap_or(0)
                    };
                    let (bare, processed) = if iteration % 2 == 0 {
                        let bare = time(None);
                        (bare, time(Some(&plain)))
                    } else {
                        let processed = time(Some(&plain));
                        (time(None), processed)
                    };
                    added += processed - bare;
                }
                let reported = added / 10 + PAIR_OFFSET_NS * i128::from(iterations);
                std::time::Duration::from_nanos(u64::try_from(reported.max(1)).unwrap_or(u64::MAX))
            });
        });
        group.finish();
    });
    criterion.final_summary();
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
