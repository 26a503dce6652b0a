//! Invocations that reach their deadline. Lambda freezes the process at the deadline and never
//! thaws it for that invocation: what was not sent by then is never sent. One watcher thread
//! for the process (started with the first invocation that has a deadline) sends, a margin
//! before each invocation's deadline, what the invocation has so far: its finished spans, and
//! every span still open as an X-Ray `in_progress` document (on the paths that have no spans in
//! progress, ended there and marked [`UNFINISHED`](crate::vocabulary::UNFINISHED)).
//!
//! An invocation costs the watcher nothing on its way: its deadline is filed with its spans,
//! under the lock that files them, and the thread is woken only when it would otherwise sleep
//! past the new deadline (it sleeps until the earliest one it knows, so back-to-back
//! invocations wake it about once per timeout, not once each).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{lock, Buffer};

/// The margin before an invocation's deadline at which it is sent, unless set otherwise: room
/// for its datagrams to leave before Lambda freezes the process.
pub(crate) const DEFAULT_MARGIN: Duration = Duration::from_millis(100);

/// The watcher's state, held by the buffer.
#[derive(Debug)]
pub(crate) struct Watch {
    margin: Duration,
    /// When the watcher wakes next, in milliseconds since the epoch; `u64::MAX` while it
    /// waits for a deadline or scans (then every new deadline wakes it).
    next: AtomicU64,
    woken: Mutex<bool>,
    wake: Condvar,
    started: std::sync::Once,
}

impl Watch {
    pub(crate) fn new(margin: Duration) -> Self {
        Watch {
            margin,
            next: AtomicU64::new(u64::MAX),
            woken: Mutex::new(false),
            wake: Condvar::new(),
            started: std::sync::Once::new(),
        }
    }

    /// When an invocation with `deadline` (Lambda's, in milliseconds since the epoch) is sent
    /// early; `None` for no deadline (0: a context built by hand), and for one that has passed
    /// already when the invocation starts (an emulator's: Lambda's is at least a second ahead),
    /// which is said once.
    pub(crate) fn send_at(&self, deadline_ms: u64) -> Option<SystemTime> {
        if deadline_ms == 0 {
            return None;
        }
        let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
        let at = deadline.checked_sub(self.margin).unwrap_or(UNIX_EPOCH);
        if at <= SystemTime::now() {
            // `cargo lambda watch` sends 600000 (ten minutes, as a time: 1970).
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::info!(target: "xray_lambda", "X-Ray: an invocation's deadline ({deadline_ms} ms since the epoch) is less than the deadline margin ({} ms) ahead when it starts; an invocation like it is not sent before its deadline", self.margin.as_millis());
            });
            return None;
        }
        Some(at)
    }

    /// How long a send at the deadline may wait for paced datagrams: the margin.
    pub(crate) fn margin(&self) -> Duration {
        self.margin
    }

    /// An invocation to be sent at `at` was filed (under the buffer's lock): wakes the watcher
    /// if it would sleep past `at`, starting it first if this is the first.
    pub(crate) fn filed(&self, buffer: &Arc<Buffer>, at: SystemTime) {
        let at_ms = millis(at);
        if at_ms >= self.next.load(Ordering::Acquire) {
            return;
        }
        self.started.call_once(|| start(Arc::downgrade(buffer)));
        let mut woken = lock(&self.woken);
        *woken = true;
        self.wake.notify_one();
    }

    /// Waits until `next` (or a wake); `next` is what the scan that just ran found.
    fn sleep(&self, next: Option<SystemTime>) {
        let mut woken = lock(&self.woken);
        // A deadline filed during the scan saw `u64::MAX` and woke us: scan again.
        if !*woken {
            let next_ms = next.map_or(u64::MAX, millis);
            self.next.store(next_ms, Ordering::Release);
            woken = match next {
                Some(at) => {
                    let left = at
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                    self.wake
                        .wait_timeout(woken, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
                None => self
                    .wake
                    .wait(woken)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            };
        }
        *woken = false;
        // Scanning: a deadline filed from now on wakes the next sleep.
        self.next.store(u64::MAX, Ordering::Release);
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The watcher thread. It holds the buffer weakly between rounds, so that it ends once the
/// buffer is gone and it wakes (a process's pipeline is never gone: it runs for the process).
fn start(buffer: Weak<Buffer>) {
    let spawned = std::thread::Builder::new()
        .name("xray-lambda-deadlines".into())
        .spawn(move || {
            while let Some(buffer) = buffer.upgrade() {
                let next = buffer.send_due(SystemTime::now());
                let Some(watch) = buffer.watch.as_ref() else {
                    return;
                };
                watch.sleep(next);
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(target: "xray_lambda", "X-Ray: cannot start the deadline watcher ({err}); an invocation that times out sends nothing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_is_sent_a_margin_before_its_deadline() {
        let watch = Watch::new(Duration::from_millis(100));
        let in_a_minute = SystemTime::now() + Duration::from_mins(1);
        let at = watch.send_at(millis(in_a_minute)).expect("ahead");
        let before = in_a_minute.duration_since(at).expect("before the deadline");
        // (The deadline is whole milliseconds: up to one earlier than `in_a_minute`.)
        assert!(
            before >= Duration::from_millis(100) && before <= Duration::from_millis(101),
            "{before:?}"
        );
    }

    #[test]
    fn no_deadline_or_one_already_past_is_not_watched() {
        let watch = Watch::new(Duration::from_millis(100));
        assert_eq!(watch.send_at(0), None);
        // `cargo lambda watch`'s.
        assert_eq!(watch.send_at(600_000), None);
        let within_the_margin = SystemTime::now() + Duration::from_millis(50);
        assert_eq!(watch.send_at(millis(within_the_margin)), None);
    }
}
