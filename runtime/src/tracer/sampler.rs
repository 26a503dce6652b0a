//! The sampler: X-Ray's rules, and Application Signals' unsampled spans.

use opentelemetry::trace::{SpanContext, TraceState};

use crate::vocabulary::{is_muted, muted_state};

/// X-Ray's sampling, as the SDKs decide it: a span follows its parent (Lambda's decision, in
/// the invocation's header); one without a parent is recorded only where it can start a trace
/// of its own (a developer's machine: `roots`). An unsampled parent's children are recorded
/// without being sampled where Application Signals wants every span (`unsampled`), unless
/// the parent is muted (a batch record whose producer did not sample it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct XraySampler {
    pub(crate) roots: bool,
    pub(crate) unsampled: bool,
}

/// What becomes of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Recorded and sampled.
    RecordAndSample,
    /// Recorded, sent unsampled (Application Signals).
    RecordOnly,
    /// Not recorded.
    Drop,
}

impl XraySampler {
    /// The decision for a span under `parent` (a valid context, or none), and its trace
    /// state. `parent_recording` says whether the parent records (asked only of an unsampled
    /// local parent).
    pub(crate) fn decide(
        self,
        parent: Option<&SpanContext>,
        parent_recording: impl FnOnce() -> bool,
    ) -> (Decision, TraceState) {
        let decision = match parent {
            Some(parent) if parent.is_sampled() => Decision::RecordAndSample,
            // Under Lambda's unsampled segment, or under a span recorded without sampling.
            Some(parent)
                if self.unsampled
                    && !is_muted(parent)
                    && (parent.is_remote() || parent_recording()) =>
            {
                Decision::RecordOnly
            }
            None if self.roots => Decision::RecordAndSample,
            // An unsampled or muted parent; no parent where a trace cannot start.
            Some(_) | None => Decision::Drop,
        };
        // A span dropped for want of a parent mutes its children: they are never recorded,
        // and nothing is handed to the buffer for them (`state::reaches_buffer`).
        let trace_state = match parent {
            Some(parent) => parent.trace_state().clone(),
            None if self.roots => TraceState::default(),
            None => muted_state(),
        };
        (decision, trace_state)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceFlags, TraceId};
    use opentelemetry::SpanId;

    use super::*;

    fn decide(sampler: XraySampler, parent: Option<&SpanContext>) -> (Decision, TraceState) {
        // A local parent here has no span behind it, so it does not record.
        sampler.decide(parent, || false)
    }

    fn context(sampled: bool, remote: bool, state: TraceState) -> SpanContext {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(TraceId::from(7), SpanId::from(9), flags, remote, state)
    }

    #[test]
    fn unsampled_spans_are_recorded_only_under_lambdas_unsampled_segment() {
        let signals = XraySampler {
            roots: false,
            unsampled: true,
        };
        let remote = |sampled| context(sampled, true, TraceState::NONE);
        assert_eq!(
            decide(signals, Some(&remote(true))).0,
            Decision::RecordAndSample
        );
        assert_eq!(
            decide(signals, Some(&remote(false))).0,
            Decision::RecordOnly
        );
        // No parent in Lambda: dropped, and muted, so that nothing under it is recorded.
        let root = decide(signals, None);
        assert_eq!(root.0, Decision::Drop);
        let dropped = context(false, false, root.1);
        assert!(is_muted(&dropped));
        assert_eq!(decide(signals, Some(&dropped)).0, Decision::Drop);
        // A local parent that is not recording records nothing; one that is, records.
        let local = context(false, false, TraceState::NONE);
        assert_eq!(decide(signals, Some(&local)).0, Decision::Drop);
        assert_eq!(
            signals.decide(Some(&local), || true).0,
            Decision::RecordOnly
        );
        // Without Application Signals, an unsampled parent's children are dropped.
        let plain = XraySampler {
            roots: false,
            unsampled: false,
        };
        assert_eq!(decide(plain, Some(&remote(false))).0, Decision::Drop);
        // Locally, a span without a parent starts a trace.
        let local = XraySampler {
            roots: true,
            unsampled: false,
        };
        assert_eq!(decide(local, None).0, Decision::RecordAndSample);
    }
}
