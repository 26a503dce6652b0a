//! The span vocabulary: every attribute key and prefix the crate writes or reads, and X-Ray's
//! rules for names, annotation keys and values. It imports nothing of the crate: the types
//! built from these keys are in `record`.

use std::borrow::Cow;

use opentelemetry::{KeyValue, Value};
use serde_json::Value as Json;

// ---- attribute keys ----

/// Attributes with this prefix are annotations (indexed by X-Ray). Users write it too:
/// `#[instrument(fields(annotation.user = id))]`; `Invocation::start` spells it out in its
/// `info_span!` fields, which take no constants.
pub(crate) const ANNOTATION_PREFIX: &str = "annotation.";
/// Span fields with this prefix are metadata (not indexed), in the `default` namespace:
/// `#[instrument(fields(metadata.order_id = id))]`. The buffer moves them into [`Extra`].
pub(crate) const METADATA_PREFIX: &str = "metadata.";
/// A link's attribute that says what the linked span is to this one (`parent`: the producer
/// of a batch record); the collector's X-Ray exporter reads it too.
pub(crate) const REFERENCE_TYPE: &str = "aws.xray.reserved.reference_type";
/// The span attribute that carries a record's producer trace header to the buffer, which
/// turns it into a link (`Record::link_producer`, feature `events`).
#[cfg(feature = "events")]
pub(crate) const PRODUCER: &str = "xray_lambda.producer";
/// The trace the spans recorded before the first invocation (a cold start's init) belong to
/// until that invocation takes them into its own (`buffer::init`): never sent as it is.
pub(crate) const INIT_TRACE: opentelemetry::trace::TraceId =
    opentelemetry::trace::TraceId::from_bytes(*b"xray-lambda-init");
/// On the subsegments of the environment's lifecycle beside the first invocation's handler:
/// `init` (the `Init` that holds a cold start's spans), `restore` (after a SnapStart restore).
pub(crate) const LIFECYCLE: &str = "xray_lambda.lifecycle";
/// On a span the OpenTelemetry paths (and the waterfall) ended at its invocation's deadline:
/// it was still running there, and its end time is the deadline's, not its own.
pub(crate) const UNFINISHED: &str = "xray_lambda.unfinished";
/// The span's RPC system; `"aws-api"` makes it an `aws` subsegment.
pub(crate) const RPC_SYSTEM: &str = "rpc.system";
/// The value of [`RPC_SYSTEM`] for AWS SDK calls.
pub(crate) const AWS_API: &str = "aws-api";
/// The AWS service (`DynamoDB`): the subsegment's name.
pub(crate) const RPC_SERVICE: &str = "rpc.service";
/// The operation (`GetItem`): `aws.operation`.
pub(crate) const RPC_METHOD: &str = "rpc.method";
/// `aws.region`.
pub(crate) const AWS_REGION: &str = "aws.region";
/// `aws.table_name`.
pub(crate) const AWS_TABLE_NAME: &str = "aws.table.name";
/// `aws.request_id`.
pub(crate) const AWS_REQUEST_ID: &str = "aws.request_id";
/// `http.response.status`.
pub(crate) const HTTP_STATUS: &str = "http.response.status_code";
/// The name of the events that make a subsegment's `cause`.
pub(crate) const EXCEPTION_EVENT: &str = "exception";
/// An exception event's type.
pub(crate) const EXCEPTION_TYPE: &str = "exception.type";
/// An exception event's message.
pub(crate) const EXCEPTION_MESSAGE: &str = "exception.message";
/// What every document's `aws.xray.sdk` says.
pub(crate) const SDK_NAME: &str = "xray-lambda for rust";

// ---- X-Ray's rules ----

// Names and annotation keys: X-Ray's rules as the macros apply them at compile time, from
// the one crate both use.
pub(crate) use xray_lambda_rules::{annotation_key, valid_name as plain_name};
/// The longest annotation string value X-Ray accepts, in characters.
pub(crate) const MAX_ANNOTATION_VALUE: usize = 1000;
/// The X-Ray service's limit for one document (after the daemon's header line), in bytes.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 64_000;
/// A string attribute, event attribute or metadata value longer than this is cut, with a
/// marker ([`truncated`]), before it is written into a document.
pub(crate) const MAX_VALUE: usize = 16 * 1024;

/// A name of ASCII characters X-Ray accepts as it is (the translator writes such names as
/// they are too).
pub(crate) fn name_is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= xray_lambda_rules::MAX_NAME
        && name.bytes().all(xray_lambda_rules::is_name_byte)
}

/// Whether X-Ray can index `value` as an annotation value.
pub(crate) fn annotation_value_is_valid(value: &Value) -> bool {
    match value {
        Value::Bool(_) | Value::I64(_) | Value::String(_) => true,
        Value::F64(f) => f.is_finite(),
        _ => false,
    }
}

/// `s` cut to at most `cap` bytes (on a character boundary), with a marker saying how long it
/// was.
pub(crate) fn truncated(s: &str, cap: usize) -> String {
    let mut end = cap.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}…[truncated by xray-lambda: {} bytes in all]",
        &s[..end],
        s.len()
    )
}

/// An attribute value as JSON.
pub(crate) fn json_of(value: &Value) -> Json {
    use opentelemetry::Array;
    fn list<T: Clone + Into<Json>>(items: &[T]) -> Json {
        Json::Array(items.iter().cloned().map(Into::into).collect())
    }
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I64(i) => Json::from(*i),
        Value::F64(f) => Json::from(*f),
        Value::String(s) => Json::String(s.as_str().to_owned()),
        Value::Array(Array::Bool(items)) => list(items),
        Value::Array(Array::I64(items)) => list(items),
        Value::Array(Array::F64(items)) => list(items),
        Value::Array(Array::String(items)) => Json::Array(
            items
                .iter()
                .map(|s| Json::String(s.as_str().to_owned()))
                .collect(),
        ),
        other => Json::String(other.to_string()),
    }
}

/// The two attributes of an exception event.
pub(crate) fn exception_attributes(kind: Cow<'static, str>, message: String) -> Vec<KeyValue> {
    vec![
        KeyValue::new(EXCEPTION_TYPE, kind),
        KeyValue::new(EXCEPTION_MESSAGE, message),
    ]
}

/// The annotations that name a batch record (`records::process`), what a handler's
/// `batch_item_failures` identifiers are matched against.
pub(crate) const RECORD_IDENTITIES: [&str; 4] = [
    "annotation.MessageId",
    "annotation.SequenceNumber",
    "annotation.EventId",
    "annotation.Sequencer",
];

/// The annotations of a request an HTTP function serves: searchable, unlike the `http` object.
pub(crate) const HTTP_METHOD_ANNOTATION: &str = "HttpMethod";
/// See [`HTTP_METHOD_ANNOTATION`].
pub(crate) const HTTP_ROUTE_ANNOTATION: &str = "HttpRoute";
/// See [`HTTP_METHOD_ANNOTATION`].
pub(crate) const HTTP_STATUS_ANNOTATION: &str = "HttpStatus";

/// The trace-state key that marks a muted span: one whose children are never recorded (an
/// unsampled invocation's span on a developer's machine; a batch record whose producer did not
/// sample it), even where unsampled spans are.
const MUTED: &str = "xray-lambda";

/// A trace state that mutes a span's children.
pub(crate) fn muted_state() -> opentelemetry::trace::TraceState {
    opentelemetry::trace::TraceState::from_key_value([(MUTED, "muted")]).unwrap_or_default()
}

/// Whether a span's children are never recorded (see [`muted_state`]).
pub(crate) fn is_muted(span_context: &opentelemetry::trace::SpanContext) -> bool {
    span_context.trace_state().get(MUTED).is_some()
}

/// A string as an annotation value: at most [`MAX_ANNOTATION_VALUE`] characters.
pub(crate) fn cap_annotation_value(value: &str) -> Cow<'_, str> {
    // No more bytes than the limit in characters: nothing to count.
    if value.len() <= MAX_ANNOTATION_VALUE {
        return Cow::Borrowed(value);
    }
    match value.char_indices().nth(MAX_ANNOTATION_VALUE) {
        Some((end, _)) => Cow::Borrowed(&value[..end]),
        None => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime writes exactly the names and keys the macros accept as they are.
    #[test]
    fn the_shared_table_holds_at_run_time() {
        for &(name, valid) in xray_lambda_rules::cases::NAMES {
            assert_eq!(plain_name(name) == name, valid, "{name:?}");
        }
        for &(key, valid) in xray_lambda_rules::cases::ANNOTATION_KEYS {
            assert_eq!(annotation_key(key).is_ok(), valid, "{key:?}");
        }
    }

    #[test]
    fn truncation_marks_the_length() {
        let cut = truncated("ééé", 3);
        assert_eq!(cut, "é…[truncated by xray-lambda: 6 bytes in all]");
    }
}
