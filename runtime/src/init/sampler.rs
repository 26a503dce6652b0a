//! The sampler: X-Ray's rules, and Application Signals' unsampled spans.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

use crate::vocabulary::is_muted;

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
            .map(|cx| cx.span().span_context().clone())
            .filter(opentelemetry::trace::SpanContext::is_valid);
        let decision = match &parent {
            Some(parent) if parent.is_sampled() => SamplingDecision::RecordAndSample,
            Some(parent) if self.unsampled && !is_muted(parent) => SamplingDecision::RecordOnly,
            None if self.roots => SamplingDecision::RecordAndSample,
            // An unsampled or muted parent; no parent where a trace cannot start.
            Some(_) | None => SamplingDecision::Drop,
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
        }
    }
}
