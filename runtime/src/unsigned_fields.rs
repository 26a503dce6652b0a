//! Unsigned integer span fields as numbers (and, `OpenSpans`, spans filed as open).
//!
//! Unsigned integer span fields as numbers. tracing-opentelemetry 0.34 records `u8`..`u64`
//! fields as text (its visitor has no `record_u64`), so `fields(annotation.n = n)` with
//! `n: u32` would be the string `"8"` while `annotate!("n", n)` is the number 8. This layer
//! runs after it and adds the number under the same key; readers keep the later value.

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{KeyValue, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::record::InProgress;
use crate::vocabulary::{ANNOTATION_PREFIX, METADATA_PREFIX};

/// The layer; add it after tracing-opentelemetry's.
pub(crate) struct UnsignedFields;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for UnsignedFields {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut found = Found(Vec::new());
        attrs.record(&mut found);
        found.add_to(id);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut found = Found(Vec::new());
        values.record(&mut found);
        found.add_to(id);
    }
}

/// The unsigned `annotation.*` and `metadata.*` fields of one call, as numbers.
struct Found(Vec<KeyValue>);

impl Visit for Found {
    fn record_u64(&mut self, field: &Field, value: u64) {
        let name = field.name();
        if name.starts_with(ANNOTATION_PREFIX) || name.starts_with(METADATA_PREFIX) {
            // X-Ray numbers are JSON numbers: beyond i64, a float keeps the magnitude.
            #[allow(clippy::cast_precision_loss)]
            let number = i64::try_from(value).map_or(Value::F64(value as f64), Value::I64);
            self.0.push(KeyValue::new(name, number));
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl Found {
    fn add_to(self, id: &Id) {
        if self.0.is_empty() {
            return;
        }
        let mut numbers = Some(self.0);
        tracing::dispatcher::get_default(|dispatch| {
            if let (Some(cx), Some(numbers)) = (
                tracing_opentelemetry::get_otel_context(id, dispatch),
                numbers.take(),
            ) {
                // A span that is not sampled ignores them.
                cx.span().set_attributes(numbers);
            }
        });
    }
}

/// Files each `tracing` span as open as it opens, where invocations are sent at their
/// deadline: under the id tracing-opentelemetry's builder drew for it (`tracer`), in the trace
/// of its parent, so that a span still running at the deadline is shown by the id it will end
/// with, without being built early. Add it after tracing-opentelemetry's layer, with the same
/// filter (so that every span it sees had its builder made just before).
pub(crate) struct OpenSpans;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for OpenSpans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span_id) = crate::tracer::take_opening_id() else {
            return;
        };
        // A root has no invocation to file it with (the handler files itself).
        let Some(parent) = ctx.span(id).and_then(|span| span.parent()) else {
            return;
        };
        let Some(pipeline) = crate::state::pipeline() else {
            return;
        };
        // The parent has started: tracing-opentelemetry started it to open this span.
        tracing::dispatcher::get_default(|dispatch| {
            let Some(cx) = tracing_opentelemetry::get_otel_context(&parent.id(), dispatch) else {
                return;
            };
            let parent = cx.span();
            let parent = parent.span_context();
            if !parent.is_sampled() {
                return;
            }
            pipeline.buffer.opened_span(InProgress {
                trace_id: parent.trace_id(),
                span_id,
                parent_id: parent.span_id(),
                parent_is_remote: false,
                name: attrs.metadata().name().into(),
                kind: opentelemetry::trace::SpanKind::Internal,
                start_time: std::time::SystemTime::now(),
            });
        });
    }
}
