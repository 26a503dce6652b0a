//! Pacing datagrams to the daemon, so that a daemon reading one datagram at a time from a
//! socket with the kernel's default receive buffer keeps up.
//!
//! UDP has no back-pressure: a datagram that arrives at a full receive buffer is dropped,
//! silently on both sides. The X-Ray daemon never raises its buffer (212,992 bytes by
//! default on Linux), and in Lambda it shares the function's CPU, so while an invocation sends
//! it may not be reading at all. Each queued datagram is charged at about twice its size for
//! small ones (the kernel's per-datagram overhead), so the buffer holds ~166 documents of
//! 300 bytes, or 3 of 60 KB.
//!
//! The pacer keeps a model of that queue: every datagram sent is charged its estimated cost,
//! and the daemon is assumed to read one datagram per [`Pacing::read_interval`]. A datagram
//! goes out at once while the modelled queue holds less than [`Pacing::window`]; the rest wait,
//! in order, and a sender thread (started the first time anything has to wait) sends them as
//! the model drains. An invocation waits for its own datagrams before it returns, so nothing is
//! left when Lambda freezes the process. An invocation whose documents fit the window (any
//! invocation of up to a few hundred subsegments, when no other is sending) never waits.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::queue_probe::QueueProbe;
use super::udp::DaemonSender;

/// How fast the reader of the UDP datagrams (the X-Ray daemon, or Lambda's OpenTelemetry
/// endpoint) is assumed to read, and how much of its receive buffer may be in use.
///
/// ```
/// use std::time::Duration;
/// use xray_lambda::Pacing;
///
/// // A daemon on a core of its own that reads a datagram every 10 µs.
/// let pacing = Pacing::LAMBDA.with_read_interval(Duration::from_micros(10));
/// assert_eq!(pacing.window(), Pacing::LAMBDA.window());
/// assert_eq!(pacing.read_interval(), Duration::from_micros(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pacing {
    /// The most the modelled receive queue may hold, in the kernel's accounting.
    window: usize,
    /// The time the reader is assumed to take per datagram. Zero switches pacing off.
    read_interval: Duration,
}

impl Pacing {
    /// This pacing with the reader assumed to take `interval` per datagram; zero switches
    /// pacing off.
    #[must_use]
    pub const fn with_read_interval(mut self, interval: Duration) -> Self {
        self.read_interval = interval;
        self
    }

    /// This pacing with at most `bytes` of the reader's receive buffer in use, in the
    /// kernel's accounting (a datagram of 1,000 bytes takes 2,304).
    #[must_use]
    pub const fn with_window(mut self, bytes: usize) -> Self {
        self.window = bytes;
        self
    }

    /// The time the reader is assumed to take per datagram.
    #[must_use]
    pub const fn read_interval(&self) -> Duration {
        self.read_interval
    }

    /// The most of the reader's receive buffer in use, in the kernel's accounting.
    #[must_use]
    pub const fn window(&self) -> usize {
        self.window
    }

    /// For the X-Ray daemon in Lambda: three eighths of the default receive buffer (the rest
    /// absorbs error in the model and a daemon that stalls between two reads of its queue),
    /// and one datagram per 60 µs (16,700 a second). The daemon's own
    /// work per datagram is a few microseconds (a `recvfrom`, the header line parsed as JSON,
    /// a hand-off to its batcher); on the eighth of a vCPU of a 256 MB function, shared with
    /// the function, that is tens of microseconds.
    pub const LAMBDA: Pacing = Pacing {
        window: 212_992 * 3 / 8,
        read_interval: Duration::from_micros(60),
    };

    /// No pacing: every datagram is sent at once (a daemon with a large buffer and its own
    /// CPU, or a benchmark of the sending itself).
    pub const OFF: Pacing = Pacing {
        window: usize::MAX,
        read_interval: Duration::ZERO,
    };
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::LAMBDA
    }
}

/// What a queued datagram of `len` bytes costs in a receive buffer on Linux (measured on
/// loopback: 300 bytes cost 1,280; 1,000 cost 2,304; 8,000 cost 16,640; above 16 KB, the
/// size plus 832).
pub(crate) fn buffer_cost(len: usize) -> usize {
    if len + 512 <= 16_384 {
        (len + 512).next_power_of_two() + 256
    } else {
        len + 832
    }
}

/// A position in the sending order: everything up to it has been sent once `sent >= ticket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// The pacer in front of a [`DaemonSender`].
#[derive(Debug)]
pub(crate) struct Pacer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sender: DaemonSender,
    pacing: Pacing,
    /// The daemon's real receive queue, where this process can see it.
    probe: Option<QueueProbe>,
    state: Mutex<State>,
    /// The sender thread waits here for datagrams to send.
    work: Condvar,
    /// Blocking waiters wait here for datagrams to be sent.
    progress: Condvar,
    thread: Once,
}

// Flags of one lock's state, each read on its own.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug)]
struct State {
    /// Datagrams not sent yet, in order.
    waiting: VecDeque<Vec<u8>>,
    waiting_bytes: usize,
    /// The costs of datagrams sent and, in the model, not read yet.
    modelled: VecDeque<usize>,
    modelled_bytes: usize,
    /// The cost of every datagram sent into the model so far: what was sent while the lock
    /// was dropped to read the real queue is added back to that reading.
    cost_sent: usize,
    /// When the daemon last read, in the model.
    last_read: Instant,
    /// When the daemon's real queue was last read.
    last_probe: Option<Instant>,
    /// What that reading showed, in the kernel's accounting.
    seen_queue: usize,
    /// `cost_sent` when it was taken: everything sent since may still be in the queue.
    cost_at_probe: usize,
    /// A reading is under way (outside the lock): others do not read too.
    probing: bool,
    /// The last reading did not find the daemon's socket (it is down, or in a namespace of its
    /// own): the model paces until a reading finds it again.
    unseen_socket: bool,
    /// Since when the readings of the real queue, taken while datagrams are held back, have
    /// shown the daemon reading nothing, without a break.
    stuck_since: Option<Instant>,
    /// Threads in [`Pacer::sent_blocking`], woken as datagrams go.
    blocking: usize,
    /// The sender thread could not start: everything is sent at once.
    unpaced: bool,
    /// Datagrams handed to the pacer, and datagrams sent (or given up), so far.
    submitted: u64,
    sent: u64,
    /// Async waiters: the ticket each waits for.
    wakers: Vec<(Ticket, Waker)>,
    warned_full: bool,
}

/// How often the sender thread reads the daemon's real queue while datagrams wait.
const PROBE_INTERVAL: Duration = Duration::from_micros(500);

/// How long the daemon may read nothing while datagrams are held back before the model alone
/// paces (a daemon gone or stuck: no invocation waits for it without end).
const GIVE_UP_ON_QUEUE: Duration = Duration::from_secs(1);

/// The most bytes held for sending (a runaway invocation must not exhaust memory).
const MAX_WAITING_BYTES: usize = 64 << 20;

impl State {
    /// Whether the daemon has read nothing, while datagrams were held back, for
    /// [`GIVE_UP_ON_QUEUE`]: the model paces from there, draining by the clock.
    fn given_up(&self, now: Instant) -> bool {
        self.stuck_since
            .is_some_and(|since| now.duration_since(since) >= GIVE_UP_ON_QUEUE)
    }
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pacer {
    pub(crate) fn new(sender: DaemonSender, pacing: Pacing) -> Self {
        Pacer {
            inner: Arc::new(Inner {
                probe: QueueProbe::new(sender.address()),
                sender,
                pacing,
                state: Mutex::new(State {
                    waiting: VecDeque::new(),
                    waiting_bytes: 0,
                    modelled: VecDeque::new(),
                    modelled_bytes: 0,
                    last_read: Instant::now(),
                    last_probe: None,
                    seen_queue: 0,
                    cost_at_probe: 0,
                    probing: false,
                    unseen_socket: false,
                    cost_sent: 0,
                    stuck_since: None,
                    blocking: 0,
                    unpaced: false,
                    submitted: 0,
                    sent: 0,
                    wakers: Vec::new(),
                    warned_full: false,
                }),
                work: Condvar::new(),
                progress: Condvar::new(),
                thread: Once::new(),
            }),
        }
    }

    /// Sends `datagram` now if it fits ([`Inner::fits`]) and nothing waits before it; else
    /// queues a copy for the sender thread. Never blocks on the network (a reading of the
    /// daemon's queue is a file read, taken only when what was sent since the last one could
    /// fill the window).
    pub(crate) fn submit(&self, datagram: &[u8]) {
        let inner = &*self.inner;
        let mut state = lock(&inner.state);
        state.submitted += 1;
        if inner.pacing.read_interval.is_zero() || state.unpaced {
            state.sent += 1;
            drop(state);
            inner.sender.send(datagram);
            return;
        }
        let now = Instant::now();
        inner.drain_model(&mut state, now);
        if state.waiting.is_empty() {
            // Read the queue when the datagram does not fit; where the last reading did not
            // find the socket, at most every PROBE_INTERVAL (a daemon that is down).
            if !inner.fits(&state, datagram.len(), now)
                && (!(state.unseen_socket || state.given_up(now)) || inner.probe_due(&state, now))
                && inner.probe.is_some()
                && !state.probing
            {
                state = inner.read_and_note(state, now);
            }
            if inner.fits(&state, datagram.len(), now) {
                inner.send_one(&mut state, datagram);
                // A reading outside the lock lets others' datagrams go first: whoever waits
                // for them is woken here, as the sender thread wakes them.
                if !state.wakers.is_empty() || state.blocking > 0 {
                    inner.wake(&mut state);
                }
                return;
            }
        }
        if state.waiting_bytes + datagram.len() > MAX_WAITING_BYTES {
            // Given up: counted as sent, so that no one waits for it.
            state.sent += 1;
            if !std::mem::replace(&mut state.warned_full, true) {
                tracing::warn!(
                    target: "xray_lambda",
                    "X-Ray: more than {} MB of documents wait for the daemon; further documents are dropped until it catches up",
                    MAX_WAITING_BYTES >> 20
                );
            }
            return;
        }
        state.waiting_bytes += datagram.len();
        state.waiting.push_back(datagram.to_vec());
        drop(state);
        self.start_thread();
        inner.work.notify_one();
    }

    /// The position after everything submitted so far.
    /// The socket is opened anew (after a SnapStart restore).
    pub(crate) fn renew(&self) {
        self.inner.sender.renew();
    }

    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(lock(&self.inner.state).submitted)
    }

    /// Waits until everything up to `ticket` has been sent (at once, when it has).
    pub(crate) fn sent(&self, ticket: Ticket) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let mut state = lock(&self.inner.state);
            if Ticket(state.sent) >= ticket {
                return Poll::Ready(());
            }
            state.wakers.retain(|(_, w)| !w.will_wake(cx.waker()));
            state.wakers.push((ticket, cx.waker().clone()));
            Poll::Pending
        })
    }

    /// As [`Pacer::sent`], blocking the thread (at most `timeout`).
    pub(crate) fn sent_blocking(&self, ticket: Ticket, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.inner.state);
        state.blocking += 1;
        while Ticket(state.sent) < ticket {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .inner
                .progress
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.blocking -= 1;
    }

    fn start_thread(&self) {
        self.inner.thread.call_once(|| {
            let inner = Arc::clone(&self.inner);
            let started = std::thread::Builder::new()
                .name("xray-lambda-pacer".to_owned())
                .spawn(move || inner.run());
            if let Err(err) = started {
                tracing::warn!(target: "xray_lambda", "X-Ray: cannot start the sending thread ({err}); documents are sent without pacing");
                let mut state = lock(&self.inner.state);
                state.unpaced = true;
                self.inner.flush_unpaced(&mut state);
            }
        });
    }

    /// Datagrams sent and dropped by the socket so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.inner.sender.counts()
    }
}

impl Inner {
    /// Removes from the model what the daemon has read by `now`.
    fn drain_model(&self, state: &mut State, now: Instant) {
        let interval = self.pacing.read_interval;
        while !state.modelled.is_empty() && now.duration_since(state.last_read) >= interval {
            state.last_read += interval;
            if let Some(cost) = state.modelled.pop_front() {
                state.modelled_bytes -= cost;
            }
        }
        if state.modelled.is_empty() {
            state.last_read = now;
        }
    }

    /// Whether a datagram of `len` bytes fits the model now. One always fits an empty model,
    /// whatever its size.
    fn has_room(&self, state: &State, len: usize) -> bool {
        state.modelled.is_empty() || state.modelled_bytes + buffer_cost(len) <= self.pacing.window
    }

    fn send_one(&self, state: &mut State, datagram: &[u8]) {
        self.sender.send(datagram);
        let cost = buffer_cost(datagram.len());
        state.modelled.push_back(cost);
        state.modelled_bytes += cost;
        state.cost_sent = state.cost_sent.wrapping_add(cost);
        state.sent += 1;
    }

    /// Whether a datagram of `len` bytes may go now. Where the daemon's queue is visible:
    /// when what the last reading showed, plus everything sent since, plus this datagram fits
    /// the window. A daemon starved of CPU reads nothing for milliseconds while the model,
    /// which drains by the clock, takes it as read: 64 invocations that ended at once
    /// overflowed the kernel's buffer on the model's word. Elsewhere, and once the queue has
    /// stayed over the window for [`GIVE_UP_ON_QUEUE`] (a daemon gone or stuck), the model
    /// decides. One datagram always goes into an empty queue, whatever its size.
    fn fits(&self, state: &State, len: usize, now: Instant) -> bool {
        if self.probe.is_none() || state.unseen_socket || state.given_up(now) {
            return self.has_room(state, len);
        }
        let unseen = state.cost_sent.wrapping_sub(state.cost_at_probe);
        let held = state.seen_queue + unseen;
        held == 0 || held + buffer_cost(len) <= self.pacing.window
    }

    /// Reads the daemon's real queue, outside the lock (other invocations go on submitting
    /// meanwhile; what they send counts as unseen), and notes it; the state, locked again.
    fn read_and_note<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        now: Instant,
    ) -> MutexGuard<'a, State> {
        state.probing = true;
        let cost_before = state.cost_sent;
        drop(state);
        let queued = self.read_queue();
        let mut state = lock(&self.state);
        state.probing = false;
        // Stamped after the reading: a slow one (the `/proc` fallback on a throttled CPU) is
        // not followed at once by the next.
        state.last_probe = Some(Instant::now());
        state.unseen_socket = queued.is_none();
        if let Some(queued) = queued {
            // Readings are taken only while datagrams are held back: one that shows less than
            // the last showed, plus what was sent in between, shows the daemon reading.
            let expected = state.seen_queue + cost_before.wrapping_sub(state.cost_at_probe);
            if queued == 0 || queued < expected {
                state.stuck_since = None;
            } else {
                state.stuck_since.get_or_insert(now);
            }
            state.seen_queue = queued;
            state.cost_at_probe = cost_before;
        }
        state
    }

    /// Sends what fits from the front of the queue.
    fn send_what_fits(&self, state: &mut State, now: Instant) {
        self.drain_model(state, now);
        while let Some(front) = state.waiting.front() {
            if !self.fits(state, front.len(), now) {
                return;
            }
            let datagram = state.waiting.pop_front().unwrap_or_default();
            state.waiting_bytes -= datagram.len();
            self.send_one(state, &datagram);
        }
    }

    /// How long the sender thread waits before it tries again: until the model's next read
    /// where it paces alone, else until the queue may be read again.
    fn retry_after(&self, state: &State, now: Instant) -> Duration {
        let next = if self.probe.is_none() || state.unseen_socket {
            state.last_read.checked_add(self.pacing.read_interval)
        } else {
            state
                .last_probe
                .and_then(|at| at.checked_add(PROBE_INTERVAL))
        };
        next.map_or(Duration::ZERO, |at| at.saturating_duration_since(now))
            .max(Duration::from_micros(20))
    }

    /// Whether the sender thread, held back, may read the daemon's real queue again (where it
    /// can be read, at most every [`PROBE_INTERVAL`], and not while another reading is under
    /// way).
    fn probe_due(&self, state: &State, now: Instant) -> bool {
        self.probe.is_some()
            && !state.probing
            && state
                .last_probe
                .is_none_or(|at| now.duration_since(at) >= PROBE_INTERVAL)
    }

    /// The daemon's real queue, in bytes (a file read: never under the lock).
    fn read_queue(&self) -> Option<usize> {
        self.probe.as_ref()?.rx_queue()
    }

    fn flush_unpaced(&self, state: &mut State) {
        while let Some(datagram) = state.waiting.pop_front() {
            self.sender.send(&datagram);
            state.sent += 1;
        }
        state.waiting_bytes = 0;
        self.wake(state);
    }

    fn wake(&self, state: &mut State) {
        let sent = Ticket(state.sent);
        state.wakers.retain(|(ticket, waker)| {
            let done = *ticket <= sent;
            if done {
                waker.wake_by_ref();
            }
            !done
        });
        self.progress.notify_all();
    }

    /// The sender thread: sends what fits, reads the daemon's queue again when nothing does,
    /// sleeps between tries, parks when idle.
    fn run(&self) {
        let mut state = lock(&self.state);
        loop {
            while state.waiting.is_empty() {
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let now = Instant::now();
            self.send_what_fits(&mut state, now);
            self.wake(&mut state);
            if state.waiting.is_empty() {
                continue;
            }
            if self.probe_due(&state, now) {
                state = self.read_and_note(state, now);
                continue;
            }
            let pause = self.retry_after(&state, now);
            drop(state);
            std::thread::sleep(pause);
            state = lock(&self.state);
        }
    }
}

#[cfg(test)]
#[path = "pacer_tests.rs"]
mod tests;
