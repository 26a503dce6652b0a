//! Sizing: values capped, and records grouped into connected subtrees that each fit one
//! document.

use opentelemetry::{KeyValue, Value};
use serde_json::Value as Json;

use crate::notices::warn_once;
use crate::record::{Extra, Record};
use crate::span_tree::SpanTree;
use crate::vocabulary::{truncated, ANNOTATION_PREFIX};

/// What a span costs in a document besides its strings (ids, times, keys, punctuation).
const SPAN_OVERHEAD: usize = 256;

/// The metadata key that says why a subsegment lost its annotations and metadata.
const DROPPED_NOTE: &str = "xray_lambda.truncated";

/// Cuts every string attribute, event attribute and metadata value longer than `cap` bytes
/// (at least 64), with a marker; with `cap == 0`, also drops annotations and metadata, which
/// are not needed to place the span, and says so in metadata.
pub(crate) fn cap_values(record: &mut Record, cap: usize) {
    let span = &mut record.span;
    if cap == 0 {
        span.attributes
            .retain(|kv| !kv.key.as_str().starts_with(ANNOTATION_PREFIX));
        let extra = record.extra.get_or_insert_with(Box::default);
        extra.metadata = vec![(
            DROPPED_NOTE.to_owned(),
            Json::from("annotations and metadata dropped: the subsegment was over 64 kB"),
        )];
    }
    let cap = cap.max(64);
    let mut cut = None;
    for kv in &mut span.attributes {
        cap_kv(kv, cap, &mut cut);
    }
    for event in &mut span.events.events {
        for kv in &mut event.attributes {
            cap_kv(kv, cap, &mut cut);
        }
    }
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
    if let Some((key, len)) = cut {
        let name = &record.span.name;
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

fn estimated_size(record: &Record) -> usize {
    fn kv_size(kv: &KeyValue) -> usize {
        kv.key.as_str().len()
            + match &kv.value {
                Value::String(s) => s.as_str().len() + 8,
                Value::Array(_) => 256,
                _ => 24,
            }
    }
    let span = &record.span;
    SPAN_OVERHEAD
        + span.name.len()
        + span.attributes.iter().map(kv_size).sum::<usize>()
        + span
            .events
            .iter()
            .map(|e| 64 + e.attributes.iter().map(kv_size).sum::<usize>())
            .sum::<usize>()
        + record.extra.as_deref().map_or(0, Extra::estimated_size)
        // A link in the `links` metadata: two ids and the reference type.
        + span.links.len() * 160
}

/// Splits a batch into groups that each become one document: connected subtrees whose
/// estimated size stays under `budget`. A subtree too large for one document gives its root
/// (with as many whole child subtrees as fit) one group, and each remaining child subtree is
/// split the same way and sent as an independent subsegment under its parent.
pub(crate) fn groups(records: Vec<Record>, budget: usize) -> Vec<Vec<Record>> {
    let sizes: Vec<usize> = records.iter().map(estimated_size).collect();
    if records.len() == 1 || sizes.iter().sum::<usize>() <= budget {
        return vec![records];
    }
    let groups = index_groups(&SpanTree::new(&records), &sizes, budget);
    let mut records: Vec<Option<Record>> = records.into_iter().map(Some).collect();
    groups
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .filter_map(|i| records[i].take())
                .collect()
        })
        .collect()
}

/// The groups of [`groups`], as indices.
fn index_groups(tree: &SpanTree<'_, Record>, sizes: &[usize], budget: usize) -> Vec<Vec<usize>> {
    let roots: Vec<usize> = tree.roots().collect();
    // Subtree sizes, children before parents (iterative: traces can be deep).
    let order: Vec<usize> = roots.iter().flat_map(|&r| tree.subtree(r)).collect();
    let mut subtree = sizes.to_vec();
    for &i in order.iter().rev() {
        for c in tree.children(i) {
            subtree[i] += subtree[c];
        }
    }
    let mut groups = Vec::new();
    let mut work = roots;
    while let Some(root) = work.pop() {
        let mut group = vec![root];
        let mut used = sizes[root];
        // Whole child subtrees that fit go with their parent; the rest become roots.
        for c in tree.children(root) {
            if used + subtree[c] <= budget {
                used += subtree[c];
                group.extend(tree.subtree(c));
            } else {
                work.push(c);
            }
        }
        groups.push(group);
    }
    groups
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
