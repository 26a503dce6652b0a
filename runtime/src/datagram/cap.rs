//! Values cut to fit a datagram, with a marker that says so in the value and one warning.

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use serde_json::Value as Json;

use crate::notices::warn_once;
use crate::record::Record;
use crate::vocabulary::{truncated, ANNOTATION_PREFIX, MAX_VALUE};

/// The metadata key that says why a subsegment lost its annotations and metadata.
const DROPPED_NOTE: &str = "xray_lambda.truncated";

/// Cuts every string attribute, event attribute and metadata value longer than `cap` bytes
/// (at least 64), with a marker; with `cap == 0`, also drops annotations and metadata, which
/// are not needed to place the span, and says so in metadata.
pub(crate) fn cap_values(record: &mut Record, cap: usize) {
    if cap == 0 {
        record
            .span
            .attributes
            .retain(|kv| !kv.key.as_str().starts_with(ANNOTATION_PREFIX));
        let extra = record.extra.get_or_insert_with(Box::default);
        extra.metadata = vec![(
            DROPPED_NOTE.to_owned(),
            Json::from("annotations and metadata dropped: the subsegment was over 64 kB"),
        )];
    }
    let cap = cap.max(64);
    let mut cut = cut_span(&mut record.span, cap);
    if let Some(extra) = &mut record.extra {
        for (key, value) in &mut extra.metadata {
            let len = json_len(value);
            if len > cap {
                cut = Some((key.clone(), len));
                // Cut as text: no longer JSON, so it goes as a string.
                *value = Json::String(truncated(&value.to_string(), cap));
            }
        }
    }
    warn_cut(&record.span.name, cut, cap);
}

/// Cuts every string attribute and event attribute of a span already rendered for its path
/// (its metadata is an attribute by then) longer than `cap` bytes (at least 64).
pub(crate) fn cap_rendered(span: &mut SpanData, cap: usize) {
    let cap = cap.max(64);
    let cut = cut_span(span, cap);
    warn_cut(&span.name, cut, cap);
}

/// The caps tried, in turn, on a span too large for a datagram at [`MAX_VALUE`]: each an
/// eighth of the one before, then 0 (see [`cap_values`]).
pub(crate) fn smaller_caps() -> impl Iterator<Item = usize> {
    std::iter::successors(Some(MAX_VALUE), |&cap| {
        (cap > 0).then_some(if cap > 64 { cap / 8 } else { 0 })
    })
    .skip(1)
}

/// Cuts the span's string attributes and event attributes; the last key cut and its length.
fn cut_span(span: &mut SpanData, cap: usize) -> Option<(String, usize)> {
    let mut cut = None;
    for kv in &mut span.attributes {
        cap_kv(kv, cap, &mut cut);
    }
    for event in &mut span.events.events {
        for kv in &mut event.attributes {
            cap_kv(kv, cap, &mut cut);
        }
    }
    cut
}

fn warn_cut(name: &str, cut: Option<(String, usize)>, cap: usize) {
    if let Some((key, len)) = cut {
        warn_once(&format!("value cut {name} {key}"), || {
            format!("X-Ray: {key:?} of subsegment {name:?} is {len} bytes; cut to {cap} so that the document fits X-Ray's 64 kB (the value ends in a marker saying so)")
        });
    }
}

fn cap_kv(kv: &mut KeyValue, cap: usize, cut: &mut Option<(String, usize)>) {
    if let Value::String(s) = &kv.value {
        if s.as_str().len() > cap {
            *cut = Some((kv.key.as_str().to_owned(), s.as_str().len()));
            kv.value = Value::from(truncated(s.as_str(), cap));
        }
    }
}

/// The serialized length of a JSON value, counted without allocating.
fn json_len(value: &Json) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use std::sync::PoisonError;

    use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceId, TraceState};
    use opentelemetry::{InstrumentationScope, SpanId};
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

    use super::*;
    use crate::notices::WARNED_LINES;

    fn record(name: &'static str, value: String) -> Record {
        Record {
            span: SpanData {
                span_context: SpanContext::new(
                    TraceId::from_bytes([1; 16]),
                    SpanId::from_bytes([2; 8]),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::NONE,
                ),
                parent_span_id: SpanId::from_bytes([3; 8]),
                parent_span_is_remote: false,
                span_kind: SpanKind::Internal,
                name: name.into(),
                start_time: std::time::SystemTime::UNIX_EPOCH,
                end_time: std::time::SystemTime::UNIX_EPOCH,
                attributes: vec![KeyValue::new("note", value)],
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status: Status::Unset,
                instrumentation_scope: InstrumentationScope::builder("test").build(),
            },
            extra: None,
        }
    }

    #[test]
    fn smaller_caps_down_to_nothing() {
        assert_eq!(smaller_caps().collect::<Vec<_>>(), [2048, 256, 32, 0]);
    }

    #[test]
    fn a_cut_value_says_so_in_the_value_and_in_one_warning() {
        let mut big = record("cut_here", "x".repeat(20_000));
        cap_values(&mut big, 16_384);
        let Value::String(cut) = &big.span.attributes[0].value else {
            panic!("a string");
        };
        assert!(cut
            .as_str()
            .ends_with("[truncated by xray-lambda: 20000 bytes in all]"));
        // The same key of the same span again: no second line.
        cap_values(&mut record("cut_here", "x".repeat(20_000)), 16_384);
        // Small values: nothing.
        cap_values(&mut record("cut_here", "small".to_owned()), 16_384);
        let lines: Vec<String> = WARNED_LINES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains("\"cut_here\""))
            .cloned()
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("\"note\" of subsegment \"cut_here\" is 20000 bytes"),
            "{lines:?}"
        );
    }
}
