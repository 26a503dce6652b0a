//! The span vocabulary: every attribute key and prefix the crate writes or reads, X-Ray's rules
//! for names, annotation keys and values, and the typed extras a span carries beyond plain
//! attributes. The bottom of the dependency order: it imports nothing of the crate.

use std::borrow::Cow;

use std::time::SystemTime;

use opentelemetry::trace::{Status, TraceId};
use opentelemetry::{KeyValue, SpanId, Value};
use opentelemetry_sdk::trace::SpanData;
use serde_json::{Map, Value as Json};

use crate::notices::warn_once;

// ---- attribute keys ----

/// Attributes with this prefix are annotations (indexed by X-Ray). Users write it too:
/// `#[instrument(fields(annotation.user = id))]`; `Invocation::start` spells it out in its
/// `info_span!` fields, which take no constants.
pub(crate) const ANNOTATION_PREFIX: &str = "annotation.";
/// Span fields with this prefix are metadata (not indexed), in the `default` namespace:
/// `#[instrument(fields(metadata.order_id = id))]`. The buffer moves them into [`Extra`].
pub(crate) const METADATA_PREFIX: &str = "metadata.";
/// Marks a span whose [`Extra`] waits in the buffer under its span id; removed before export.
pub(crate) const EXTRA_MARKER: &str = "xray_lambda.extra";
/// A link's attribute that says what the linked span is to this one (`parent`: the producer
/// of a batch record); the collector's X-Ray exporter reads it too.
pub(crate) const REFERENCE_TYPE: &str = "aws.xray.reserved.reference_type";
/// The span attribute that carries a record's producer trace header to the buffer, which
/// turns it into a link (`Record::link_producer`, feature `events`).
#[cfg(feature = "events")]
pub(crate) const PRODUCER: &str = "xray_lambda.producer";
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

/// The longest (sub)segment name X-Ray accepts.
pub(crate) const MAX_NAME: usize = 200;
/// The longest annotation key X-Ray indexes.
pub(crate) const MAX_ANNOTATION_KEY: usize = 500;
/// The longest annotation string value X-Ray accepts, in characters.
pub(crate) const MAX_ANNOTATION_VALUE: usize = 1000;
/// The X-Ray service's limit for one document (after the daemon's header line), in bytes.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 64_000;
/// A string attribute, event attribute or metadata value longer than this is cut, with a
/// marker ([`truncated`]), before it is written into a document.
pub(crate) const MAX_VALUE: usize = 16 * 1024;

/// A name byte X-Ray accepts, in ASCII (X-Ray also takes any Unicode letter or digit).
pub(crate) fn name_byte_is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" _.:/%&#=+\\-@".contains(&b)
}

/// A name of 1–200 ASCII characters X-Ray accepts.
pub(crate) fn name_is_plain(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.bytes().all(name_byte_is_plain)
}

/// The name as X-Ray accepts it: itself when plain, else with every other character replaced
/// by `_` and cut to 200 bytes.
pub(crate) fn plain_name(name: &str) -> Cow<'_, str> {
    if name_is_plain(name) {
        return Cow::Borrowed(name);
    }
    let mut plain: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || (c.is_ascii() && name_byte_is_plain(c as u8)) {
                c
            } else {
                '_'
            }
        })
        .collect();
    while plain.len() > MAX_NAME {
        plain.pop();
    }
    if plain.is_empty() {
        plain.push_str("unnamed");
    }
    Cow::Owned(plain)
}

/// `Ok` for a key X-Ray indexes (1–500 of `A-Z a-z 0-9 _`), else the key it would index
/// instead: other characters become `_`, cut to 500. (The macros check literal keys at compile
/// time with the same rule; a proc-macro crate cannot share code with this one.)
pub(crate) fn annotation_key(key: &str) -> Result<&str, String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // Bytes, not chars, on the common path: every valid character is ASCII.
    if !key.is_empty()
        && key.len() <= MAX_ANNOTATION_KEY
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Ok(key);
    }
    let mut fixed: String = key
        .chars()
        .take(MAX_ANNOTATION_KEY)
        .map(|c| if valid(c) { c } else { '_' })
        .collect();
    if fixed.is_empty() {
        fixed.push('_');
    }
    Err(fixed)
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

// ---- reading spans ----

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

/// How a failed span failed, as the document's flags say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A 4xx status: `error`, the caller's fault.
    Error,
    /// 429: `throttle` and `error`.
    Throttle,
    /// Anything else: `fault`.
    Fault,
}

/// How `span` failed, if it did, given its HTTP `status`.
pub(crate) fn failure(span: &SpanData, status: Option<i64>) -> Option<Failure> {
    matches!(span.status, Status::Error { .. }).then_some(match status {
        Some(429) => Failure::Throttle,
        Some(400..=499) => Failure::Error,
        _ => Failure::Fault,
    })
}

/// Whether the span is an AWS SDK call.
pub(crate) fn is_aws_call(span: &SpanData) -> bool {
    string_attribute(span, RPC_SYSTEM) == Some(AWS_API)
}

/// The span's annotations: (key without the prefix, value), each key once. Where a key is
/// recorded twice (annotated twice, or a run-time key rewritten onto an existing one), the
/// later value wins, with one warning per key for the process.
pub(crate) fn annotations(span: &SpanData) -> impl Iterator<Item = (&str, &Value)> {
    let all = &span.attributes;
    all.iter().enumerate().filter_map(move |(at, kv)| {
        let name = kv.key.as_str().strip_prefix(ANNOTATION_PREFIX)?;
        let later = all[at + 1..].iter().rev().find(|later| {
            later
                .key
                .as_str()
                .strip_prefix(ANNOTATION_PREFIX)
                .is_some_and(|other| same_annotation_key(name, other))
        });
        match later {
            Some(later) => {
                if !is_number_of(&kv.value, &later.value) {
                    warn_duplicate_annotation(name);
                }
                None
            }
            None => Some((name, &kv.value)),
        }
    })
}

/// Whether two annotation keys are one once X-Ray's rule is applied.
fn same_annotation_key(a: &str, b: &str) -> bool {
    a == b
        || match (annotation_key(a), annotation_key(b)) {
            (Ok(_), Ok(_)) => false,
            (a, b) => {
                let fixed =
                    |key: Result<&str, String>| key.map_or_else(|fixed| fixed, str::to_owned);
                fixed(a) == fixed(b)
            }
        }
}

/// Whether `later` is `earlier` as a number: tracing-opentelemetry records unsigned integer
/// fields as text, and the numeric-fields layer adds the number after it.
fn is_number_of(earlier: &Value, later: &Value) -> bool {
    match (earlier, later) {
        (Value::String(text), Value::I64(n)) => text.as_str().parse::<i64>() == Ok(*n),
        (Value::String(text), Value::F64(n)) => text.as_str().parse::<f64>().ok() == Some(*n),
        _ => false,
    }
}

fn warn_duplicate_annotation(key: &str) {
    warn_once(&format!("duplicate annotation {key}"), || {
        let shown: String = key.chars().take(80).collect();
        format!("X-Ray: annotation {shown:?} is recorded more than once on a subsegment; the last value is kept")
    });
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

/// The two attributes of an exception event.
pub(crate) fn exception_attributes(kind: Cow<'static, str>, message: String) -> Vec<KeyValue> {
    vec![
        KeyValue::new(EXCEPTION_TYPE, kind),
        KeyValue::new(EXCEPTION_MESSAGE, message),
    ]
}

// ---- typed extras ----

mod http;
pub(crate) use http::Http;
#[cfg(feature = "events")]
mod links;

/// A handler subsegment that is still running: what its `in_progress` document says. Sent
/// before any of its children is streamed ahead of it, so that no child is ever without its
/// parent at X-Ray, even if the handler's complete document were lost.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InProgress {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    /// The segment Lambda wrote for the invocation.
    pub(crate) parent_id: SpanId,
    pub(crate) name: &'static str,
    pub(crate) start_time: SystemTime,
}

/// What a span carries beyond plain attributes, typed: the recording side (the `aws` module,
/// `metadata!`) hands it to the buffer under the span's id, and the writer, the OTLP mapping
/// and the stderr tree read it as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Extra {
    /// Members of the `aws` object beyond operation, region, request id and table
    /// (`retries`, `table_names`, the operation's parameters), `snake_case`, in key order.
    pub(crate) aws: Map<String, Json>,
    /// A throttling error code that came with a status other than 429.
    pub(crate) throttle: bool,
    /// Metadata in the `default` namespace, in the order first recorded, each key once
    /// ([`Extra::merge`] keeps the later value).
    pub(crate) metadata: Vec<(String, Json)>,
    /// X-Ray's `http` object: of a call made with an HTTP client, or of the request an HTTP
    /// function serves (the status is the span's `http.response.status_code` attribute).
    pub(crate) http: Option<Http>,
}

/// The annotations that name a batch record (`records::process`), what a handler's
/// `batch_item_failures` identifiers are matched against.
pub(crate) const RECORD_IDENTITIES: [&str; 4] = [
    "annotation.MessageId",
    "annotation.SequenceNumber",
    "annotation.EventId",
    "annotation.Sequencer",
];

/// The `aws` member that links a subsegment to its log group (X-Ray's console opens the logs
/// from it): `[{"log_group": "/aws/lambda/…"}]`. On the OTLP path the resource's
/// `aws.log.group.names` says it instead.
pub(crate) const CLOUDWATCH_LOGS: &str = "cloudwatch_logs";

impl Extra {
    /// Adds what `other` carries (a span can be given extras more than once); a metadata key
    /// given again keeps its place and takes the later value.
    pub(crate) fn merge(&mut self, other: Extra) {
        self.aws.extend(other.aws);
        self.throttle |= other.throttle;
        for (key, value) in other.metadata {
            self.put_metadata(key, value);
        }
        if other.http.is_some() {
            self.http = other.http;
        }
    }

    /// One metadata entry; a key given again keeps its place and takes the later value.
    fn put_metadata(&mut self, key: String, value: Json) {
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(held) => held.1 = value,
            None => self.metadata.push((key, value)),
        }
    }

    /// A rough size in a document, without writing it.
    pub(crate) fn estimated_size(&self) -> usize {
        let aws: usize = self
            .aws
            .iter()
            .map(|(k, v)| k.len() + json_size(v) + 4)
            .sum();
        let metadata: usize = self
            .metadata
            .iter()
            .map(|(k, v)| k.len() + json_size(v) + 4)
            .sum();
        let http = self.http.as_ref().map_or(0, |h| {
            // A served request's annotations (method, route, status) too.
            let annotations = if h.traced {
                0
            } else {
                64 + h.method.len() + h.route.as_ref().map_or(0, String::len)
            };
            96 + h.method.len()
                + h.url.len()
                + h.user_agent.as_ref().map_or(0, String::len)
                + h.client_ip.as_ref().map_or(0, String::len)
                + annotations
        });
        aws + metadata + http + usize::from(self.throttle) * 16
    }
}

/// A rough serialized size of a JSON value, without serializing it.
fn json_size(value: &Json) -> usize {
    match value {
        Json::Null | Json::Bool(_) => 5,
        Json::Number(_) => 20,
        Json::String(s) => s.len() + 2,
        Json::Array(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Json::Object(members) => {
            2 + members
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

/// A finished span and its typed extras: what travels from the buffer to the sinks.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) span: SpanData,
    pub(crate) extra: Option<Extra>,
}

impl Record {
    /// A span without extras.
    #[cfg(all(test, feature = "otlp"))]
    pub(crate) fn plain(span: SpanData) -> Self {
        Record { span, extra: None }
    }

    /// The `aws` members (empty when there are none).
    pub(crate) fn aws_members(&self) -> Option<&Map<String, Json>> {
        self.extra
            .as_ref()
            .map(|e| &e.aws)
            .filter(|m| !m.is_empty())
    }

    /// Whether a throttling code was recorded on the span.
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
        if let Some(recorded) = self.extra.take() {
            fields.merge(recorded);
        }
        self.extra = Some(fields);
    }

    /// The `http` object, but for a call's status (a span attribute: see [`Record::status`]).
    pub(crate) fn http(&self) -> Option<&Http> {
        self.extra.as_ref().and_then(|e| e.http.as_ref())
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
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(annotation_key("user_id"), Ok("user_id"));
        assert_eq!(annotation_key("user-id"), Err("user_id".to_owned()));
        assert_eq!(annotation_key(""), Err("_".to_owned()));
        assert_eq!(annotation_key(&"k".repeat(501)), Err("k".repeat(500)));
    }

    #[test]
    fn names() {
        assert_eq!(plain_name("handler"), "handler");
        assert_eq!(plain_name("a\"b"), "a_b");
        assert_eq!(plain_name(""), "unnamed");
        assert_eq!(plain_name(&"x".repeat(300)).len(), 200);
    }

    #[test]
    fn truncation_marks_the_length() {
        let cut = truncated("ééé", 3);
        assert_eq!(cut, "é…[truncated by xray-lambda: 6 bytes in all]");
    }
}
