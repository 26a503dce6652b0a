//! An invocation that is not recorded reads nothing of the handler's output: its error is not
//! described (no `Display`, `Debug` or `source()` of it runs). This process never calls
//! `xray_lambda::init`, so every invocation here is unrecorded.

use std::sync::atomic::{AtomicUsize, Ordering};

use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

/// How many times an [`Observed`] error was described.
static DESCRIBED: AtomicUsize = AtomicUsize::new(0);

/// An error that counts each time it is described.
struct Observed;

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        DESCRIBED.fetch_add(1, Ordering::SeqCst);
        f.write_str("observed")
    }
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        DESCRIBED.fetch_add(1, Ordering::SeqCst);
        f.write_str("Observed")
    }
}

impl std::error::Error for Observed {}

#[xray_lambda::xray_handler]
async fn failing(event: LambdaEvent<Value>) -> Result<Value, Observed> {
    drop(event);
    Err(Observed)
}

#[test]
fn an_unrecorded_invocation_does_not_describe_its_error() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut context = Context::default();
    context.xray_trace_id =
        Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
    let output = runtime.block_on(failing(LambdaEvent::new(Value::Null, context)));
    assert!(output.is_err(), "the handler's error is returned as it was");
    assert_eq!(
        DESCRIBED.load(Ordering::SeqCst),
        0,
        "the error of an invocation that is not recorded was described"
    );
}

/// A large payload, so that carrying the event twice shows beside what the attribute adds.
type Large = [u64; 128];

#[xray_lambda::xray_handler]
async fn holds_its_event(event: LambdaEvent<Large>) -> Result<Value, Observed> {
    tokio::task::yield_now().await;
    Ok(Value::from(event.payload[0]))
}

#[xray_lambda::xray_handler]
async fn takes_its_event_apart(
    LambdaEvent { payload, context }: LambdaEvent<Large>,
) -> Result<Value, Observed> {
    tokio::task::yield_now().await;
    Ok(Value::from(format!(
        "{} {}",
        payload[0], context.request_id
    )))
}

/// The handler's future holds the event once: the invocation borrows its context where
/// that borrow does not keep a second place for it across the handler's `.await`s.
#[test]
fn a_handlers_future_holds_its_event_once() {
    let event = || LambdaEvent::new([0; 128], Context::default());
    let once = std::mem::size_of::<LambdaEvent<Large>>();
    for (shape, size) in [
        (
            "a plain binding",
            std::mem::size_of_val(&holds_its_event(event())),
        ),
        (
            "a pattern",
            std::mem::size_of_val(&takes_its_event_apart(event())),
        ),
    ] {
        assert!(
            size < 2 * once,
            "with {shape}, the handler's future is {size} bytes, the event {once}"
        );
    }
}
