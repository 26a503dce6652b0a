//! Sizing: records grouped into connected subtrees that each fit one
//! document.

use opentelemetry::{KeyValue, Value};
use serde_json::Value as Json;

use crate::record::{Extra, MemberValue, Record};
use crate::span_tree::SpanTree;

/// What a span costs in a document besides its strings (ids, times, keys, punctuation).
const SPAN_OVERHEAD: usize = 256;

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
        + record.extra.as_deref().map_or(0, extra_size)
        // A link in the `links` metadata: two ids and the reference type.
        + span.links.len() * 160
}

/// A rough size of what a record's extras add to a document, without writing them.
fn extra_size(extra: &Extra) -> usize {
    let aws: usize = extra
        .aws
        .iter()
        .map(|(name, value)| name.len() + member_size(value) + 4)
        .sum();
    let metadata: usize = extra
        .metadata
        .iter()
        .map(|(k, v)| k.len() + json_size(v) + 4)
        .sum();
    let http = extra.http.as_ref().map_or(0, |h| {
        // A served request's annotations (method, route, status) too.
        let annotations = if h.outgoing {
            0
        } else {
            64 + h.method.as_str().len() + h.route.as_ref().map_or(0, |r| r.as_str().len())
        };
        96 + h.method.as_str().len()
            + h.url.len()
            + h.user_agent.as_ref().map_or(0, String::len)
            + h.client_ip.as_ref().map_or(0, String::len)
            + annotations
    });
    aws + metadata + http + usize::from(extra.throttle) * 16
}

fn member_size(value: MemberValue<'_>) -> usize {
    match value {
        MemberValue::Text(s) => s.len() + 2,
        MemberValue::Count(_) => 10,
        MemberValue::Names(names) => 2 + names.iter().map(|n| n.len() + 3).sum::<usize>(),
        MemberValue::Json(value) => json_size(value),
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
