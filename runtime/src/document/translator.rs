//! Feature `translator`: spans the direct writer does not cover go through opentelemetry-aws's
//! `SegmentTranslator`, which knows every semantic convention; the typed extras it has no
//! field for are added to its output.

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry_aws::xray_exporter::{SegmentDocument, SegmentTranslator};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;

use serde_json::{Map, Value as Json};

use super::writer::working_directory;
use crate::datagram::DAEMON_HEADER;
use crate::record::facts::Failure;
use crate::record::limits::link_json;
use crate::record::{AwsMembers, Record};

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
    pub(crate) fn write_nested(
        &self,
        group: &[Record],
        buf: &mut Vec<u8>,
        log_group: Option<&str>,
    ) -> bool {
        let spans: Vec<SpanData> = group.iter().map(|r| r.span.clone()).collect();
        let docs = self
            .nested
            .get_or_init(|| translator(true))
            .translate_spans(&spans);
        let [doc] = docs.as_slice() else {
            return false;
        };
        serialize(doc, group, log_group, buf);
        true
    }

    /// One span as a document of its own.
    pub(crate) fn write_flat(
        &self,
        record: &Record,
        buf: &mut Vec<u8>,
        log_group: Option<&str>,
    ) -> bool {
        let docs = self
            .flat
            .get_or_init(|| translator(false))
            .translate_spans(std::slice::from_ref(&record.span));
        let Some(doc) = docs.first() else {
            return false;
        };
        serialize(doc, std::slice::from_ref(record), log_group, buf);
        true
    }
}

/// Writes the daemon header and `doc` into `buf`, with each record's typed extras added to
/// its span's object: the `aws` members, `throttle`, the `default` metadata namespace (beside
/// whatever metadata the translator wrote itself: one `metadata` member, never two) and the
/// links, which the translator drops. The document is edited as JSON values: only spans the
/// direct writer does not cover come here.
pub(crate) fn serialize(
    doc: &SegmentDocument<'_>,
    records: &[Record],
    log_group: Option<&str>,
    buf: &mut Vec<u8>,
) {
    buf.clear();
    buf.extend_from_slice(DAEMON_HEADER);
    let Ok(mut document) = serde_json::to_value(doc) else {
        doc.to_writer(&mut *buf);
        return;
    };
    strip_precursor_ids(&mut document);
    for record in records {
        let id = record.span.span_context.span_id().to_string();
        match span_object(&mut document, &id) {
            Some(span) => add_extras(span, record, log_group),
            None => {
                tracing::debug!(target: "xray_lambda", span = %record.span.name, "X-Ray: no document object to extend");
            }
        }
    }
    // (Writing a `Value` to a `Vec` cannot fail.)
    let _ = serde_json::to_writer(&mut *buf, &document);
}

/// What the translator has no field for, added to one span's object.
fn add_extras(span: &mut Map<String, Json>, record: &Record, log_group: Option<&str>) {
    if let Some(Json::Object(aws)) = span.get_mut("aws") {
        for (name, value) in record.aws_members().into_iter().flat_map(AwsMembers::iter) {
            aws.insert(name.to_owned(), value.to_json());
        }
        if let Some(group) = log_group.filter(|_| record.is_handler()) {
            // As the direct writer writes it (`writer::write_aws`).
            aws.insert(
                "cloudwatch_logs".to_owned(),
                serde_json::json!([{ "log_group": group }]),
            );
        }
    }
    // The translator writes `throttle` for a 429 itself.
    if record.flags().throttle && record.failure() != Some(Failure::Throttle) {
        span.insert("throttle".into(), Json::Bool(true));
    }
    if !record.metadata().is_empty() {
        let metadata = span
            .entry("metadata")
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(namespaces) = metadata {
            let ours = record.metadata().iter().cloned();
            // Beside what the translator wrote under `default` itself (an attribute of that
            // name), ours winning on the same key.
            match namespaces.get_mut("default") {
                Some(Json::Object(default)) => default.extend(ours),
                _ => {
                    namespaces.insert("default".into(), Json::Object(ours.collect()));
                }
            }
        }
    }
    // A value X-Ray refuses (the translator writes a NaN as `null`) is left out, as the
    // direct writer leaves it out.
    if let Some(Json::Object(annotations)) = span.get_mut("annotations") {
        annotations.retain(|_, v| v.is_string() || v.is_number() || v.is_boolean());
        if annotations.is_empty() {
            span.remove("annotations");
        }
    }
    if let Some(Json::Object(cause)) = span.get_mut("cause") {
        link_causes(cause);
    }
    let links = &record.span.links.links;
    if !links.is_empty() {
        span.insert("links".into(), links.iter().map(link_json).collect());
    }
}

/// The translator's `cause` as the direct writer writes it: the working directory, and each
/// exception caused by the next (one error and its `source()` chain, outermost first).
fn link_causes(cause: &mut Map<String, Json>) {
    if let Some(directory) = working_directory() {
        cause.insert("working_directory".into(), Json::from(directory));
    }
    let Some(Json::Array(exceptions)) = cause.get_mut("exceptions") else {
        return;
    };
    let ids: Vec<Option<Json>> = exceptions.iter().map(|e| e.get("id").cloned()).collect();
    for (exception, next) in exceptions.iter_mut().zip(ids.into_iter().skip(1)) {
        if let (Json::Object(exception), Some(next)) = (exception, next) {
            exception.insert("cause".into(), next);
        }
    }
}

/// The object of the span whose `id` is `id`, anywhere in the nesting.
fn span_object<'a>(value: &'a mut Json, id: &str) -> Option<&'a mut Map<String, Json>> {
    let object = value.as_object_mut()?;
    if object.get("id").and_then(Json::as_str) == Some(id) {
        return Some(object);
    }
    object
        .get_mut("subsegments")?
        .as_array_mut()?
        .iter_mut()
        .find_map(|child| span_object(child, id))
}

/// Removes every `precursor_ids` member. opentelemetry-aws's nesting gives the k-th sibling
/// the ids of the k-1 before it: quadratic in fan-out, and optional in X-Ray, which orders
/// siblings by time (the official SDKs do not send it).
fn strip_precursor_ids(value: &mut Json) {
    if let Some(object) = value.as_object_mut() {
        object.remove("precursor_ids");
        if let Some(Json::Array(children)) = object.get_mut("subsegments") {
            children.iter_mut().for_each(strip_precursor_ids);
        }
    }
}
