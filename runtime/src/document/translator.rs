//! Feature `translator`: spans the direct writer does not cover go through opentelemetry-aws's
//! `SegmentTranslator`, which knows every semantic convention; the typed extras it has no
//! field for are spliced into its output.

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry_aws::xray_exporter::{SegmentDocument, SegmentTranslator};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;

use super::writer::{write_aws_members, write_metadata};
use super::DAEMON_HEADER;
use crate::record::facts::Failure;
use crate::record::Record;
use crate::vocabulary::SDK_NAME;

/// The translators, built when first needed (start-up is billed, and most functions never
/// need them).
#[derive(Debug, Default)]
pub(crate) struct Fallback {
    nested: OnceLock<SegmentTranslator>,
    flat: OnceLock<SegmentTranslator>,
}

/// The translator re-reads its resource's attributes for every span: only the one that names
/// us in each document's `aws.xray.sdk` ("xray-lambda for rust").
fn resource() -> Resource {
    Resource::builder_empty()
        .with_attribute(KeyValue::new("telemetry.sdk.name", "xray-lambda"))
        .build()
}

/// The ids come from the invocation's header or from `XrayIdGenerator`, so the translator's
/// check that a trace id starts with a recent epoch is not needed.
fn translator(nested: bool) -> SegmentTranslator {
    let mut translator = SegmentTranslator::new().skip_timestamp_validation();
    if nested {
        translator = translator.always_nest_subsegments();
    }
    translator.set_resource(&resource());
    translator
}

impl Fallback {
    /// A connected group as one nested document; `false` when the translator does not make
    /// exactly one.
    pub(crate) fn write_nested(&self, group: &[Record], buf: &mut Vec<u8>) -> bool {
        let spans: Vec<SpanData> = group.iter().map(|r| r.span.clone()).collect();
        let docs = self
            .nested
            .get_or_init(|| translator(true))
            .translate_spans(&spans);
        let [doc] = docs.as_slice() else {
            return false;
        };
        serialize(doc, group, buf);
        true
    }

    /// One span as a document of its own.
    pub(crate) fn write_flat(&self, record: &Record, buf: &mut Vec<u8>) -> bool {
        let docs = self
            .flat
            .get_or_init(|| translator(false))
            .translate_spans(std::slice::from_ref(&record.span));
        let Some(doc) = docs.first() else {
            return false;
        };
        serialize(doc, std::slice::from_ref(record), buf);
        true
    }
}

/// Writes the daemon header and `doc` into `buf`, splicing in each record's typed extras.
///
/// Splicing works on the serialized bytes: a span's `aws` object is the first anchor after its
/// `"id":"<hex>"` (a span's own fields come before its nested children), and the anchor cannot
/// occur inside a JSON string, whose quotes are escaped.
pub(crate) fn serialize(doc: &SegmentDocument<'_>, records: &[Record], buf: &mut Vec<u8>) {
    let anchor = format!(r#""aws":{{"xray":{{"sdk":"{SDK_NAME}"}}"#);
    buf.clear();
    buf.extend_from_slice(DAEMON_HEADER);
    doc.to_writer(&mut *buf);
    strip_precursor_ids(buf);
    for record in records {
        let (aws, top) = spliced(record);
        if aws.is_empty() && top.is_empty() {
            continue;
        }
        let id = format!(r#""id":"{}""#, record.span.span_context.span_id());
        let Some(at) = find(buf, id.as_bytes())
            .and_then(|at| find(&buf[at..], anchor.as_bytes()).map(|offset| at + offset))
        else {
            tracing::debug!(target: "xray_lambda", span = %record.span.name, "X-Ray: no aws object to extend");
            continue;
        };
        let after = at + anchor.len();
        buf.splice(after..after, aws);
        buf.splice(at..at, top);
    }
}

/// The bytes spliced into one span's document: after the `aws` anchor (`,"k":v` members),
/// and before it (`"throttle":true,"metadata":{..},`): what the translator has no field for,
/// written by the direct writer's own functions.
fn spliced(record: &Record) -> (Vec<u8>, Vec<u8>) {
    let mut aws = Vec::new();
    write_aws_members(record.aws_members(), &mut aws);
    // `,"metadata":{..}` (or nothing), turned into `"metadata":{..},`.
    let mut top = Vec::new();
    // The translator writes `throttle` for a 429 itself.
    if record.flags().throttle && record.failure() != Some(Failure::Throttle) {
        top.extend_from_slice(br#","throttle":true"#);
    }
    write_metadata(record, &mut top);
    if !top.is_empty() {
        top.remove(0);
        top.push(b',');
    }
    (aws, top)
}

/// Removes every `,"precursor_ids":[...]` member. opentelemetry-aws's nesting gives the k-th
/// sibling the ids of the k-1 before it: quadratic in fan-out, and optional in X-Ray, which
/// orders siblings by time (the official SDKs do not send it).
fn strip_precursor_ids(buf: &mut Vec<u8>) {
    const MEMBER: &[u8] = br#","precursor_ids":["#;
    let mut from = 0;
    while let Some(at) = find(&buf[from..], MEMBER).map(|i| from + i) {
        // The array holds only 16-hex-digit strings: its end is the next `]`.
        let Some(end) = buf[at..]
            .iter()
            .position(|&b| b == b']')
            .map(|i| at + i + 1)
        else {
            return;
        };
        buf.drain(at..end);
        from = at;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}
