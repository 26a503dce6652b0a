//! Where finished invocations go. Each sink owns its send, its wait and its detached send, so
//! each feature's `cfg` sits here once.

pub(crate) mod daemon;
pub(crate) mod otel_udp;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;
pub(crate) mod stderr;

use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "otlp")]
use std::sync::Arc;
use std::time::Duration;

use crate::record::{InProgress, Record};

/// What is left of a paced send once its datagrams are queued: the wait for them to go out.
pub(crate) type Sending = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A sink.
#[derive(Debug)]
// One per process, held in the buffer: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Sink {
    /// UDP datagrams to the X-Ray daemon.
    Daemon(daemon::DaemonSink),
    /// OpenTelemetry spans over UDP to Lambda's endpoint (the daemon's address).
    OtelUdp(otel_udp::OtelUdpSink),
    /// A waterfall on stderr, for a developer's machine.
    Stderr,
    /// OTLP to an OpenTelemetry collector.
    #[cfg(feature = "otlp")]
    Otlp(Arc<otlp::OtlpSink>),
}

impl Sink {
    /// Whether finished subtrees of a long invocation go out while it runs (the daemon,
    /// whose reader must not get the whole invocation at once).
    pub(crate) fn streams(&self) -> bool {
        matches!(self, Sink::Daemon(_) | Sink::OtelUdp(_))
    }

    /// Sends finished subtrees of a running invocation, after `in_progress` (its handler's
    /// document while it runs), without waiting.
    pub(crate) fn stream(&self, in_progress: Option<&InProgress>, records: Vec<Record>) {
        match self {
            Sink::Daemon(daemon) => {
                let _ = daemon.submit(in_progress, records);
            }
            // OpenTelemetry has no spans in progress: a parent may arrive after its children.
            Sink::OtelUdp(udp) => {
                let _ = udp.submit(records);
            }
            #[cfg(feature = "otlp")]
            Sink::Otlp(_) => self.send_detached(records),
            Sink::Stderr => self.send_detached(records),
        }
    }

    /// Sends; waits until the daemon's datagrams are sent (paced), or, with OTLP, for the
    /// collector's answer (at most the flush timeout).
    pub(crate) async fn send(&self, records: Vec<Record>) {
        match self {
            Sink::Daemon(daemon) => daemon.send(records).await,
            Sink::OtelUdp(udp) => udp.send(records).await,
            // Boxed: the export's future is kilobytes (the exporter's request and its
            // retries), and every handler's future, recorded or not, would carry it inline
            // and move it on each hand-over. One allocation beside an export is nothing.
            #[cfg(feature = "otlp")]
            Sink::Otlp(otlp) => Box::pin(otlp.export(records)).await,
            Sink::Stderr => stderr::print(&records),
        }
    }

    /// A paced sink queues the datagrams now and returns the wait for them, for after the
    /// invocation's response (`XrayRuntimeLayer`): the pacer sends meanwhile. The other sinks
    /// give the records back: an OTLP export is its own wait, and is not put off (a future
    /// nobody polled yet would hold the only copy of the spans).
    pub(crate) fn queue_paced(&'static self, records: Vec<Record>) -> Result<Sending, Vec<Record>> {
        match self {
            Sink::Daemon(daemon) => Ok(Box::pin(daemon.sent(daemon.submit(None, records)))),
            Sink::OtelUdp(udp) => Ok(Box::pin(udp.sent(udp.submit(records)))),
            #[cfg(feature = "otlp")]
            Sink::Otlp(_) => Err(records),
            Sink::Stderr => Err(records),
        }
    }

    /// Sends without waiting: paced datagrams go out from the pacer's thread, an OTLP export
    /// becomes a task of its own.
    pub(crate) fn send_detached(&self, records: Vec<Record>) {
        match self {
            Sink::Daemon(daemon) => {
                let _ = daemon.submit(None, records);
            }
            Sink::OtelUdp(udp) => {
                let _ = udp.submit(records);
            }
            #[cfg(feature = "otlp")]
            Sink::Otlp(otlp) => otlp::OtlpSink::export_detached(otlp, records),
            Sink::Stderr => stderr::print(&records),
        }
    }

    /// After a SnapStart restore: what was bound at init is bound anew (the UDP socket; an
    /// OTLP exporter's connections are remade by its client when they fail).
    pub(crate) fn renew_after_restore(&self) {
        match self {
            Sink::Daemon(daemon) => daemon.renew(),
            Sink::OtelUdp(udp) => udp.renew(),
            #[cfg(feature = "otlp")]
            Sink::Otlp(_) => {}
            Sink::Stderr => {}
        }
    }

    /// Whether the path shows a span in progress (X-Ray's documents; OpenTelemetry has none).
    pub(crate) fn shows_in_progress(&self) -> bool {
        matches!(self, Sink::Daemon(_))
    }

    /// What an invocation has at its deadline: `open` spans in progress (where
    /// [`Sink::shows_in_progress`]; elsewhere they come ended among `records`) and its finished
    /// `records`, blocking until they are sent, paced datagrams at most `wait`.
    pub(crate) fn send_at_deadline(
        &self,
        open: &[InProgress],
        records: Vec<Record>,
        wait: Duration,
    ) {
        match self {
            Sink::Daemon(daemon) => daemon.send_at_deadline(open, records, wait),
            Sink::OtelUdp(udp) => udp.send_within(records, wait),
            #[cfg(feature = "otlp")]
            Sink::Otlp(otlp) => otlp.block_on_export(records),
            Sink::Stderr => stderr::print_at_deadline(&records),
        }
    }

    /// Sends, blocking until done (OTLP: on a thread of its own, bounded by the flush timeout).
    pub(crate) fn send_blocking(&self, records: Vec<Record>) {
        match self {
            Sink::Daemon(daemon) => daemon.send_blocking(records),
            Sink::OtelUdp(udp) => udp.send_blocking(records),
            #[cfg(feature = "otlp")]
            Sink::Otlp(otlp) => otlp.block_on_export(records),
            Sink::Stderr => stderr::print(&records),
        }
    }

    /// Waits for detached exports still running (OTLP, at most the flush timeout).
    #[cfg(feature = "otlp")]
    pub(crate) async fn drain(&self) {
        if let Sink::Otlp(otlp) = self {
            otlp.drain().await;
        }
    }
}
