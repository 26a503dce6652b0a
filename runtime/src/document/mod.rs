//! From an invocation's records to daemon datagrams: values capped, spans grouped into
//! connected subtrees that fit one document (`size`), each group written as one document by
//! the direct writer (`writer`) or, for spans it does not cover, by opentelemetry-aws's
//! translator (`translator`, feature `translator`) or the writer's lossy mode.

use std::cell::Cell;

mod size;
#[cfg(feature = "translator")]
mod translator;
mod writer;

use crate::datagram::{cap_values, document_fits as fits, smaller_caps, MAX_DOCUMENT};
use crate::record::{InProgress, Record};
use crate::vocabulary::MAX_VALUE;
use writer::Mode;

thread_local! {
    static WRITE_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The largest write buffer a thread keeps between invocations.
const KEPT_BUFFER: usize = 16 * 1024;

/// Writes documents; holds the translator when the `translator` feature is on, and the
/// function's log group, a fact of the resource that every handler subsegment links to.
#[derive(Debug, Default)]
pub(crate) struct Documents {
    #[cfg(feature = "translator")]
    translator: translator::Fallback,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`: the handler subsegment's `aws.cloudwatch_logs`.
    log_group: Option<Box<str>>,
}

impl Documents {
    /// Documents whose handler subsegments link to `log_group`.
    pub(crate) fn new(log_group: Option<&str>) -> Self {
        Documents {
            #[cfg(feature = "translator")]
            translator: translator::Fallback::default(),
            log_group: log_group.map(Box::from),
        }
    }

    /// Writes `records` as documents, calling `send` with each datagram (header included).
    pub(crate) fn write_all(&self, mut records: Vec<Record>, mut send: impl FnMut(&[u8])) {
        if records.is_empty() {
            return;
        }
        for record in &mut records {
            cap_values(record, MAX_VALUE);
        }
        // The thread's buffer, kept from one invocation to the next: a fresh 1 kB buffer
        // cost an allocation and, freed next to the heap's top, a consolidation of glibc's
        // free lists, every invocation. (A call within `send` finds it taken and starts its own.)
        let mut buf = WRITE_BUFFER.try_with(Cell::take).unwrap_or_default();
        buf.reserve(1024);
        for group in size::groups(records, MAX_DOCUMENT * 3 / 4) {
            self.write_group(&group, &mut buf, &mut send);
        }
        // One large document does not keep a large buffer alive.
        if buf.capacity() <= KEPT_BUFFER {
            buf.clear();
            // Not kept while the thread's locals are being destroyed.
            let _ = WRITE_BUFFER.try_with(|kept| kept.set(buf));
        }
    }

    /// The `in_progress` document of a handler that is still running, as one datagram.
    #[allow(clippy::unused_self)]
    pub(crate) fn write_in_progress(&self, handler: &InProgress, mut send: impl FnMut(&[u8])) {
        let mut buf = Vec::with_capacity(512);
        writer::write_in_progress(handler, &mut buf);
        send(&buf);
    }

    /// One group (a connected subtree expected to fit one document) as one datagram, or, when
    /// the estimate was wrong, as one datagram per span.
    fn write_group(&self, group: &[Record], buf: &mut Vec<u8>, send: &mut impl FnMut(&[u8])) {
        // Our own spans, written directly: the common case, and the cheap one.
        if writer::write_group(group, buf, Mode::Exact, self.log_group.as_deref()) && fits(buf) {
            send(buf);
            return;
        }
        // A group is a connected subtree, so nesting makes it one document.
        #[cfg(feature = "translator")]
        if group.len() > 1
            && self
                .translator
                .write_nested(group, buf, self.log_group.as_deref())
            && fits(buf)
        {
            send(buf);
            return;
        }
        #[cfg(not(feature = "translator"))]
        if writer::write_group(group, buf, Mode::Lossy, self.log_group.as_deref()) && fits(buf) {
            send(buf);
            return;
        }
        for record in group {
            self.write_alone(record, buf, send);
        }
    }

    /// One span as a document of its own, its values cut shorter until it fits.
    fn write_alone(&self, record: &Record, buf: &mut Vec<u8>, send: &mut impl FnMut(&[u8])) {
        let mut caps = smaller_caps();
        let mut record = record.clone();
        loop {
            if !self.write_one(&record, buf) {
                // The translator refused the span (it logs nothing with internal-logs off).
                tracing::debug!(target: "xray_lambda", span = %record.span.name, "X-Ray: a span could not be translated");
                return;
            }
            if fits(buf) {
                send(buf);
                return;
            }
            let Some(cap) = caps.next() else {
                tracing::warn!(target: "xray_lambda", span = %record.span.name, "X-Ray: a subsegment is too large to send even without its values");
                return;
            };
            cap_values(&mut record, cap);
        }
    }

    #[cfg_attr(not(feature = "translator"), allow(clippy::unused_self))]
    fn write_one(&self, record: &Record, buf: &mut Vec<u8>) -> bool {
        let one = std::slice::from_ref(record);
        if writer::write_group(one, buf, Mode::Exact, self.log_group.as_deref()) {
            return true;
        }
        #[cfg(feature = "translator")]
        return self
            .translator
            .write_flat(record, buf, self.log_group.as_deref());
        #[cfg(not(feature = "translator"))]
        writer::write_group(one, buf, Mode::Lossy, self.log_group.as_deref())
    }
}
