//! What travels from the buffer to the renderers: a finished span with its typed extras
//! ([`Record`]), the handler's `in_progress` document ([`InProgress`]), X-Ray's `http` object
//! ([`Http`]); and, in `facts`, the one place that decides what a record is (its name, kind,
//! flags, annotations), which the X-Ray writer, the OTLP mappings and the waterfall render.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, SpanId, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use serde_json::Value as Json;

use crate::vocabulary::{
    json_of, ANNOTATION_PREFIX, EXCEPTION_EVENT, EXCEPTION_MESSAGE, EXCEPTION_TYPE, HTTP_STATUS,
    METADATA_PREFIX, UNFINISHED,
};

mod aws;
pub(crate) mod facts;
mod http;
pub(crate) mod limits;
#[cfg(feature = "events")]
mod links;

#[cfg(feature = "aws-sdk")]
pub(crate) use aws::Params;
pub(crate) use aws::{AwsMembers, MemberValue, NamedResource};
pub(crate) use facts::{Kind, ServedFact};
#[cfg(any(feature = "lambda-http", feature = "tower", feature = "reqwest"))]
pub(crate) use http::method_value;
pub(crate) use http::Http;

/// The string attribute `key` of `span`.
pub(crate) fn string_attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a str> {
    span.attributes.iter().find_map(|kv| match &kv.value {
        Value::String(s) if kv.key.as_str() == key => Some(s.as_str()),
        _ => None,
    })
}

/// The HTTP status the span records, if any.
pub(crate) fn http_status(span: &SpanData) -> Option<i64> {
    span.attributes.iter().find_map(|kv| match kv.value {
        Value::I64(code) if kv.key.as_str() == HTTP_STATUS => Some(code),
        _ => None,
    })
}

/// One entry of a span's `cause`, read from an `exception` event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExceptionView<'a> {
    pub(crate) kind: Option<&'a Value>,
    pub(crate) message: Option<&'a Value>,
}

/// The span's exceptions, outermost first.
pub(crate) fn exceptions(span: &SpanData) -> impl Iterator<Item = ExceptionView<'_>> {
    span.events
        .iter()
        .filter(|e| e.name == EXCEPTION_EVENT)
        .map(|event| {
            let get = |key: &str| {
                event
                    .attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == key)
                    .map(|kv| &kv.value)
            };
            ExceptionView {
                kind: get(EXCEPTION_TYPE),
                message: get(EXCEPTION_MESSAGE),
            }
        })
}

/// A span that is still running: what its `in_progress` document says. The handler's is sent
/// before any of its children is streamed ahead of it, so that no child is ever without its
/// parent at X-Ray, even if the handler's complete document were lost; at an invocation's
/// deadline, every open span's is sent, so that X-Ray shows what was running.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InProgress {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    /// Its parent: for the handler, the segment Lambda wrote for the invocation.
    pub(crate) parent_id: SpanId,
    pub(crate) parent_is_remote: bool,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) start_time: SystemTime,
}

impl InProgress {
    /// The span's state as it started (the tracer's view when it opens).
    pub(crate) fn of(span: &SpanData) -> Self {
        InProgress {
            trace_id: span.span_context.trace_id(),
            span_id: span.span_context.span_id(),
            parent_id: span.parent_span_id,
            parent_is_remote: span.parent_span_is_remote,
            name: span.name.clone(),
            kind: span.span_kind.clone(),
            start_time: span.start_time,
        }
    }

    /// The span ended at `at` because its invocation reached its deadline, for the paths that
    /// have no spans in progress (OpenTelemetry's, and the waterfall): it says so, in
    /// [`UNFINISHED`].
    pub(crate) fn cut_at(&self, at: SystemTime) -> Record {
        Record::plain(SpanData {
            span_context: SpanContext::new(
                self.trace_id,
                self.span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: self.parent_id,
            parent_span_is_remote: self.parent_is_remote,
            span_kind: self.kind.clone(),
            name: self.name.clone(),
            start_time: self.start_time,
            end_time: at.max(self.start_time),
            attributes: vec![KeyValue::new(UNFINISHED, true)],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("xray-lambda").build(),
        })
    }
}

/// What a span carries beyond plain attributes, typed: the recording side (the `aws` module,
/// `metadata!`) hands it to the buffer under the span's id, and the writer, the OTLP mapping
/// and the stderr tree read it as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Extra {
    /// Members of the `aws` object beyond operation, region, request id and table.
    pub(crate) aws: AwsMembers,
    /// A throttling error code that came with a status other than 429.
    pub(crate) throttle: bool,
    /// Metadata in the `default` namespace, in the order first recorded, each key once
    /// ([`Extra::merge`] keeps the later value).
    pub(crate) metadata: Vec<(String, Json)>,
    /// X-Ray's `http` object: of a call made with an HTTP client, or of the request an HTTP
    /// function serves (the status is the span's `http.response.status_code` attribute).
    pub(crate) http: Option<Http>,
    /// The handler's invocation, for the OpenTelemetry paths (only they record it).
    pub(crate) handler: Option<HandlerFacts>,
    /// An AWS call's response length (an HTTP exchange's is in its `http`).
    pub(crate) content_length: Option<u64>,
    /// The served request's annotations did not fit the trace's limit: they are metadata
    /// (`record::limits`).
    pub(crate) served_not_indexed: bool,
}

/// What the OpenTelemetry conventions record on the span of a function's invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HandlerFacts {
    /// `faas.invocation_id`.
    pub(crate) request_id: String,
    /// The ARN the function was invoked by (with an alias or version, if it had one).
    pub(crate) invoked_arn: String,
    /// `faas.trigger`: `http`, `pubsub` (SQS, SNS), `datasource` (DynamoDB, S3, Kinesis).
    pub(crate) trigger: Option<&'static str>,
    /// `faas.coldstart`: the first invocation of a cold start (as the `ColdStart` annotation).
    pub(crate) cold_start: bool,
}

impl Extra {
    /// Adds what `other` carries (a span can be given extras more than once); a metadata key
    /// given again keeps its place and takes the later value.
    pub(crate) fn merge(&mut self, other: Extra) {
        self.aws.merge(other.aws);
        self.throttle |= other.throttle;
        for (key, value) in other.metadata {
            self.put_metadata(key, value);
        }
        if other.http.is_some() {
            self.http = other.http;
        }
        if other.handler.is_some() {
            self.handler = other.handler;
        }
        if other.content_length.is_some() {
            self.content_length = other.content_length;
        }
        self.served_not_indexed |= other.served_not_indexed;
    }

    /// One metadata entry; a key given again keeps its place and takes the later value.
    fn put_metadata(&mut self, key: String, value: Json) {
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(held) => held.1 = value,
            None => self.metadata.push((key, value)),
        }
    }
}

/// A finished span and its typed extras: what travels from the buffer to the sinks.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) span: SpanData,
    /// Boxed: most records have none, and a record moves (filed, sent, its list regrown)
    /// at half the size without it inline.
    pub(crate) extra: Option<Box<Extra>>,
}

impl Record {
    /// A span without extras.
    pub(crate) fn plain(span: SpanData) -> Self {
        Record { span, extra: None }
    }

    /// The `aws` members, if there are any.
    pub(crate) fn aws_members(&self) -> Option<&AwsMembers> {
        self.extra
            .as_ref()
            .map(|e| &e.aws)
            .filter(|m| !m.is_empty())
    }

    /// Whether a throttling error code was recorded on the span (see [`Record::flags`] for
    /// its `throttle` flag).
    pub(crate) fn throttle(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.throttle)
    }

    /// Moves the span's `metadata.*` fields into the extras' metadata, ahead of what
    /// `metadata!` recorded (which wins on the same key).
    pub(crate) fn take_metadata_fields(&mut self) {
        if !self
            .span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str().starts_with(METADATA_PREFIX))
        {
            return;
        }
        let mut fields = Extra::default();
        self.span.attributes.retain(|kv| {
            let Some(name) = kv.key.as_str().strip_prefix(METADATA_PREFIX) else {
                return true;
            };
            fields.put_metadata(name.to_owned(), json_of(&kv.value));
            false
        });
        // The metadata fields first, then what was handed over for the span.
        let mut extra = self.extra.take().unwrap_or_default();
        let recorded = std::mem::replace(&mut *extra, fields);
        extra.merge(recorded);
        self.extra = Some(extra);
    }

    /// The `http` object, but for a call's status (a span attribute: see [`Record::status`]).
    pub(crate) fn http(&self) -> Option<&Http> {
        self.extra.as_ref().and_then(|e| e.http.as_ref())
    }

    /// The response's length: an HTTP exchange's, else an AWS call's.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.http()
            .and_then(|h| h.content_length)
            .or_else(|| self.extra.as_ref().and_then(|e| e.content_length))
    }

    /// The HTTP status: a served request's, else the span's `http.response.status_code`.
    pub(crate) fn status(&self) -> Option<i64> {
        self.http()
            .and_then(|h| h.status)
            .map(i64::from)
            .or_else(|| http_status(&self.span))
    }

    /// Whether the span has an annotation named `name` of its own.
    pub(crate) fn has_annotation(&self, name: &str) -> bool {
        self.span.attributes.iter().any(|kv| {
            kv.key
                .as_str()
                .strip_prefix(ANNOTATION_PREFIX)
                .is_some_and(|key| key == name)
        })
    }

    /// The metadata (each key once: see [`Extra::merge`]).
    pub(crate) fn metadata(&self) -> &[(String, Json)] {
        self.extra.as_ref().map_or(&[], |e| &e.metadata)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
    use opentelemetry::KeyValue;

    use super::Record;

    /// An internal span under a local parent, with these attributes.
    pub(crate) fn record(attributes: Vec<KeyValue>) -> Record {
        Record::plain(opentelemetry_sdk::trace::SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                false,
                opentelemetry::trace::TraceState::NONE,
            ),
            parent_span_id: SpanId::from(3),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "work".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes,
            dropped_attributes_count: 0,
            events: opentelemetry_sdk::trace::SpanEvents::default(),
            links: opentelemetry_sdk::trace::SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: opentelemetry::InstrumentationScope::builder("t").build(),
        })
    }
}
