//! An AWS call's phases as child subsegments: each `attempt` of a retried call (its own status,
//! error and timing) and, when asked for, `marshal` and `unmarshal` too, as the X-Ray Go SDK
//! records them. Their times are known only as the call goes, so they become spans with
//! explicit start and end times when the call ends, under the call's subsegment: both export
//! paths then see the same tree.

use std::time::SystemTime;

use opentelemetry::trace::{Span as _, SpanContext, SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

use crate::exception::{Exception, OtelSpan};
use crate::record::Extra;
use crate::state;
use crate::vocabulary::HTTP_STATUS;

/// One phase of a call, as it went.
#[derive(Debug, Clone)]
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) start: SystemTime,
    pub(crate) end: Option<SystemTime>,
    pub(crate) status: Option<u16>,
    /// The error code and message, when the phase failed.
    pub(crate) error: Option<(String, String)>,
    /// A throttling error code (on a 400).
    pub(crate) throttle: bool,
}

impl Phase {
    pub(crate) fn begin(name: &'static str) -> Self {
        Phase {
            name,
            start: SystemTime::now(),
            end: None,
            status: None,
            error: None,
            throttle: false,
        }
    }
}

/// Whether every call shows its phases (`Builder::aws_call_phases`).
pub(crate) fn all_phases() -> bool {
    state::pipeline().is_some_and(|p| p.aws_call_phases)
}

/// The call's phases as spans under its subsegment: all of them when every call shows its
/// phases, else the attempts of a call that was retried; nothing for a single attempt.
pub(crate) fn emit(call: &SpanContext, phases: &[Phase]) {
    let attempts = phases.iter().filter(|p| p.name == "attempt").count();
    let all = all_phases();
    if !(all || attempts > 1) || !state::reaches_buffer(call) {
        return;
    }
    let Some(pipeline) = state::pipeline() else {
        return;
    };
    let tracer = &pipeline.tracer;
    // The call's span is local (not a remote parent), as the phases' spans are its children
    // in this process.
    let parent = Context::new().with_remote_span_context(SpanContext::new(
        call.trace_id(),
        call.span_id(),
        call.trace_flags(),
        false,
        call.trace_state().clone(),
    ));
    for phase in phases.iter().filter(|p| all || p.name == "attempt") {
        let mut attributes = Vec::with_capacity(2);
        if let Some(status) = phase.status {
            attributes.push(KeyValue::new(HTTP_STATUS, i64::from(status)));
        }
        // Not `span_builder`: that one is tracing-opentelemetry's (see `tracer`).
        let mut span = opentelemetry::trace::SpanBuilder::from_name(phase.name)
            .with_kind(SpanKind::Internal)
            .with_start_time(phase.start)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        if let Some((code, message)) = &phase.error {
            Exception::new(code.clone(), message.clone()).record_on(OtelSpan(&mut span));
        }
        if phase.throttle {
            state::attach(
                span.span_context().span_id(),
                Extra {
                    throttle: true,
                    ..Extra::default()
                },
            );
        }
        span.end_with_timestamp(phase.end.unwrap_or_else(SystemTime::now));
    }
}
