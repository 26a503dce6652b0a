//! The sampler: X-Ray's rules, and Application Signals' unsampled spans.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId, TraceState};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

use crate::vocabulary::{is_muted, muted_state};

/// X-Ray's sampling, as the SDKs decide it: a span follows its parent (Lambda's decision, in
/// the invocation's header); one without a parent is recorded only where it can start a trace
/// of its own (a developer's machine: `roots`). An unsampled parent's children are recorded
/// without being sampled where Application Signals wants every span (`unsampled`), unless
/// the parent is muted (a batch record whose producer did not sample it).
#[derive(Debug, Clone, Copy)]
pub(super) struct XraySampler {
    pub(super) roots: bool,
    pub(super) unsampled: bool,
}

impl ShouldSample for XraySampler {
    fn should_sample(
        &self,
        parent: Option<&opentelemetry::Context>,
        _trace_id: TraceId,
        _name: &str,
        _kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent
            .filter(|cx| cx.has_active_span())
            .map(|cx| (cx.span().span_context().clone(), cx.span().is_recording()))
            .filter(|(context, _)| context.is_valid());
        let decision = match &parent {
            Some((parent, _)) if parent.is_sampled() => SamplingDecision::RecordAndSample,
            // Under Lambda's unsampled segment, or under a span recorded without sampling.
            Some((parent, recording))
                if self.unsampled && !is_muted(parent) && (parent.is_remote() || *recording) =>
            {
                SamplingDecision::RecordOnly
            }
            None if self.roots => SamplingDecision::RecordAndSample,
            // An unsampled or muted parent; no parent where a trace cannot start.
            Some(_) | None => SamplingDecision::Drop,
        };
        // A span dropped for want of a parent mutes its children: they are never recorded,
        // and nothing is handed to the buffer for them (`state::reaches_buffer`).
        let trace_state = match &parent {
            Some((parent, _)) => parent.trace_state().clone(),
            None if self.roots => TraceState::default(),
            None => muted_state(),
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state,
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, TraceFlags};
    use opentelemetry::SpanId;

    use super::*;

    fn decide(sampler: XraySampler, parent: Option<SpanContext>) -> SamplingResult {
        let cx = parent.map(|p| opentelemetry::Context::new().with_remote_span_context(p));
        sampler.should_sample(
            cx.as_ref(),
            TraceId::from(7),
            "span",
            &SpanKind::Internal,
            &[],
            &[],
        )
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
        let remote = |sampled| Some(context(sampled, true, TraceState::NONE));
        assert_eq!(
            decide(signals, remote(true)).decision,
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(signals, remote(false)).decision,
            SamplingDecision::RecordOnly
        );
        // No parent in Lambda: dropped, and muted, so that nothing under it is recorded.
        let root = decide(signals, None);
        assert_eq!(root.decision, SamplingDecision::Drop);
        let dropped = context(false, false, root.trace_state);
        assert!(is_muted(&dropped));
        assert_eq!(
            decide(signals, Some(dropped)).decision,
            SamplingDecision::Drop
        );
        // A local parent that is not recording (no SDK span behind it) records nothing.
        assert_eq!(
            decide(signals, Some(context(false, false, TraceState::NONE))).decision,
            SamplingDecision::Drop
        );
        // Without Application Signals, an unsampled parent's children are dropped.
        let plain = XraySampler {
            roots: false,
            unsampled: false,
        };
        assert_eq!(
            decide(plain, remote(false)).decision,
            SamplingDecision::Drop
        );
        // Locally, a span without a parent starts a trace.
        let local = XraySampler {
            roots: true,
            unsampled: false,
        };
        assert_eq!(
            decide(local, None).decision,
            SamplingDecision::RecordAndSample
        );
    }
}
