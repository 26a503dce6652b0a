//! The span vocabulary: every attribute key and prefix the crate writes or reads, X-Ray's rules
//! for names, annotation keys and values, and the typed extras a span carries beyond plain
//! attributes. The bottom of the dependency order: it imports nothing of the crate.

use std::borrow::Cow;

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use serde_json::{Map, Value as Json};

// ---- attribute keys ----

/// Attributes with this prefix are annotations (indexed by X-Ray). Users write it too:
/// `#[instrument(fields(annotation.user = id))]`; `Invocation::start` spells it out in its
/// `info_span!` fields, which take no constants.
pub(crate) const ANNOTATION_PREFIX: &str = "annotation.";
/// Marks a span whose [`Extra`] waits in the buffer under its span id; removed before export.
pub(crate) const EXTRA_MARKER: &str = "xray_lambda.extra";
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
    if !key.is_empty() && key.len() <= MAX_ANNOTATION_KEY && key.chars().all(valid) {
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

/// Whether the span is an AWS SDK call.
pub(crate) fn is_aws_call(span: &SpanData) -> bool {
    string_attribute(span, RPC_SYSTEM) == Some(AWS_API)
}

/// The span's annotations: (key without the prefix, value).
pub(crate) fn annotations(span: &SpanData) -> impl Iterator<Item = (&str, &Value)> {
    span.attributes.iter().filter_map(|kv| {
        kv.key
            .as_str()
            .strip_prefix(ANNOTATION_PREFIX)
            .map(|name| (name, &kv.value))
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

/// The two attributes of an exception event.
pub(crate) fn exception_attributes(kind: Cow<'static, str>, message: String) -> Vec<KeyValue> {
    vec![
        KeyValue::new(EXCEPTION_TYPE, kind),
        KeyValue::new(EXCEPTION_MESSAGE, message),
    ]
}

// ---- typed extras ----

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
}

impl Extra {
    /// Adds what `other` carries (a span can be given extras more than once); a metadata key
    /// given again keeps its place and takes the later value.
    pub(crate) fn merge(&mut self, other: Extra) {
        self.aws.extend(other.aws);
        self.throttle |= other.throttle;
        for (key, value) in other.metadata {
            match self.metadata.iter_mut().find(|(k, _)| *k == key) {
                Some(held) => held.1 = value,
                None => self.metadata.push((key, value)),
            }
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
        aws + metadata + usize::from(self.throttle) * 16
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
