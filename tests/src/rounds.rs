//! Many invocations finishing at once, again and again, at a reader slower than the pacer's
//! model of it: the load under which whole datagrams were lost at the reader's receive buffer.
//! Shared by the daemon path's and Lambda's OpenTelemetry endpoint's tests.

use std::time::Duration;

use crate::daemon::{udp_receive_buffer_drops, Daemon};
use crate::harness::Lambda;
use crate::TraceIds;

/// What the reader takes per datagram here: twice what `Pacing::LAMBDA` assumes (60 µs), as
/// a daemon given less of the CPU than the pacer's model gives it.
pub const SLOW_READ: Duration = Duration::from_micros(120);

/// How often the load is repeated.
pub const ROUNDS: usize = 20;

/// `ROUNDS` times, `invocations` invocations of `payload` at once; after each round, every
/// invocation must be `complete` at the reader (it is given up to 20 s). Fails, naming the
/// rounds and traces, on any incomplete invocation and on any rise of the kernel's count of
/// datagrams dropped at full receive buffers (`RcvbufErrors`).
///
/// # Panics
/// On any loss, as above.
pub fn repeat_without_loss(
    lambda: &Lambda,
    payload: &serde_json::Value,
    invocations: usize,
    complete: impl Fn(&Daemon, &TraceIds, Duration) -> bool,
) {
    lambda.daemon.set_read_cost(SLOW_READ);
    let drops_before = udp_receive_buffer_drops();
    let mut incomplete = Vec::new();
    for round in 0..ROUNDS {
        for ids in lambda.invoke_at_once(payload, invocations) {
            if !complete(&lambda.daemon, &ids, Duration::from_secs(20)) {
                incomplete.push(format!("round {round}: {}", ids.root));
            }
        }
    }
    let drops_after = udp_receive_buffer_drops();
    assert!(
        incomplete.is_empty(),
        "{} of {} invocations incomplete at the reader: {incomplete:?}; RcvbufErrors {drops_before:?} -> {drops_after:?}",
        incomplete.len(),
        ROUNDS * invocations,
    );
    assert_eq!(
        drops_before, drops_after,
        "datagrams were dropped at a full receive buffer (RcvbufErrors)"
    );
}
