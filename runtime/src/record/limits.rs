//! X-Ray's per-trace limits, decided once for every path: at most [`ANNOTATIONS_PER_TRACE`]
//! annotations are indexed in a trace, and a segment takes at most [`LINKS_PER_SEGMENT`] links
//! and a trace [`LINKS_PER_TRACE`] ("Tracing event-driven applications"). A batch of hundreds of
//! records would pass all three. What does not fit stays in the record as metadata
//! ([`NOT_INDEXED`], `links`), so nothing is lost and search still finds what was indexed.

use std::collections::HashSet;

use opentelemetry::trace::Link;
use opentelemetry::Value;
use serde_json::{Map, Value as Json};

use super::{Extra, Record};
use crate::vocabulary::{annotation_key, json_of, ANNOTATION_PREFIX};

/// The most annotations X-Ray indexes in one trace.
pub(crate) const ANNOTATIONS_PER_TRACE: usize = 50;
/// The most links one segment or subsegment may carry.
pub(crate) const LINKS_PER_SEGMENT: usize = 20;
/// The most links one trace may carry.
pub(crate) const LINKS_PER_TRACE: usize = 100;
/// The metadata key of the annotations over the trace's limit.
pub(crate) const NOT_INDEXED: &str = "annotations_not_indexed";
/// The metadata key of the links over a limit (where the daemon path put every link before).
pub(crate) const LINKS_METADATA: &str = "links";

/// What a trace may still show: annotations and links not yet given to its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceAllowance {
    annotations: usize,
    links: usize,
}

impl Default for TraceAllowance {
    fn default() -> Self {
        TraceAllowance {
            annotations: ANNOTATIONS_PER_TRACE,
            links: LINKS_PER_TRACE,
        }
    }
}

impl TraceAllowance {
    /// Gives `records` (leaving the buffer together) what is left, keeping `reserve`
    /// annotations back for records still to come (the handler's, when part of a batch is sent
    /// early). A failed record first (its identity is what a search for failures needs), then
    /// the group's roots (the handler's own annotations), then the rest in the order they
    /// finished.
    pub(crate) fn apply(&mut self, records: &mut [Record], reserve: usize) {
        // The common invocation is far inside every limit: count (at most: an annotation
        // recorded twice counts twice, a served request as its three), change nothing.
        let (mut annotations, mut links, mut crowded) = (0, 0, false);
        for record in records.iter() {
            let own = record.span.attributes.iter();
            annotations += own
                .filter(|kv| kv.key.as_str().starts_with(ANNOTATION_PREFIX))
                .count();
            annotations += 3 * usize::from(record.http().is_some_and(|h| !h.outgoing));
            let own_links = record.span.links.links.len();
            links += own_links;
            crowded |= own_links > LINKS_PER_SEGMENT;
        }
        if !crowded && annotations + reserve <= self.annotations && links <= self.links {
            self.annotations -= annotations;
            self.links -= links;
            return;
        }
        let ids: HashSet<_> = records
            .iter()
            .map(|r| r.span.span_context.span_id())
            .collect();
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&at| {
            let record = &records[at];
            if record.failure().is_some() {
                0
            } else if !ids.contains(&record.span.parent_span_id) {
                1
            } else {
                2
            }
        });
        for at in order {
            let record = &mut records[at];
            let annotations = self.annotations.saturating_sub(reserve);
            // (Each keeps at most what it is allowed: neither can go below zero.)
            self.annotations -= record.keep_annotations(annotations);
            self.links -= record.keep_links(self.links.min(LINKS_PER_SEGMENT));
        }
    }
}

impl Record {
    /// Keeps at most `allowed` annotations shown (the rest become metadata: its own past
    /// what fits beside a served request's, then those too if they do not fit); how many it
    /// shows.
    fn keep_annotations(&mut self, allowed: usize) -> usize {
        let shown = self.annotations().count();
        if shown <= allowed {
            return shown;
        }
        let keep = allowed.saturating_sub(self.served_request_annotations().count());
        let mut over: Map<String, Json> = self
            .own_annotations()
            .skip(keep)
            .map(|(key, value)| (key.into_owned(), json_of(&value)))
            .collect();
        self.span.attributes.retain(|kv| {
            let Some(name) = kv.key.as_str().strip_prefix(ANNOTATION_PREFIX) else {
                return true;
            };
            match annotation_key(name) {
                Ok(key) => !over.contains_key(key),
                Err(fixed) => !over.contains_key(&fixed),
            }
        });
        // A served request's that do not fit, or that a demoted own one of the same key no
        // longer hides.
        let served_not_indexed = self.annotations().count() > allowed;
        if served_not_indexed {
            over.extend(
                self.served_request_annotations()
                    .map(|(key, value)| (key.into_owned(), json_of(&value))),
            );
        }
        let extra = self.extra.get_or_insert_with(Box::default);
        extra.served_not_indexed |= served_not_indexed;
        extra.put_over_limit(NOT_INDEXED, Json::Object(over));
        self.annotations().count()
    }

    /// Keeps at most `allowed` links on the span (the rest become the `links` metadata); how
    /// many it keeps.
    fn keep_links(&mut self, allowed: usize) -> usize {
        let links = &mut self.span.links.links;
        if links.len() <= allowed {
            return links.len();
        }
        let over: Vec<Json> = links.split_off(allowed).iter().map(link_json).collect();
        self.extra
            .get_or_insert_with(Box::default)
            .put_over_limit(LINKS_METADATA, Json::Array(over));
        allowed
    }
}

impl Extra {
    /// What did not fit a limit, as metadata `key`: added to the user's own metadata of that
    /// name where it is a list or an object as well, else beside it as `xray_lambda_<key>`.
    fn put_over_limit(&mut self, key: &str, value: Json) {
        match (self.metadata.iter_mut().find(|(k, _)| k == key), value) {
            (None, value) => self.metadata.push((key.to_owned(), value)),
            (Some((_, Json::Object(held))), Json::Object(more)) => held.extend(more),
            (Some((_, Json::Array(held))), Json::Array(more)) => held.extend(more),
            (Some(_), value) => self.put_metadata(format!("xray_lambda_{key}"), value),
        }
    }
}

/// A link as X-Ray writes one: `{"trace_id":"1-…","id":"…","attributes":{…}}`.
pub(crate) fn link_json(link: &Link) -> Json {
    let trace = link.span_context.trace_id().to_string();
    let mut object = Map::new();
    object.insert(
        "trace_id".into(),
        Json::from(format!("1-{}-{}", &trace[..8], &trace[8..])),
    );
    object.insert(
        "id".into(),
        Json::from(link.span_context.span_id().to_string()),
    );
    let attributes: Map<String, Json> = link
        .attributes
        .iter()
        .filter(|kv| matches!(kv.value, Value::String(_)))
        .map(|kv| (kv.key.to_string(), json_of(&kv.value)))
        .collect();
    if !attributes.is_empty() {
        object.insert("attributes".into(), Json::Object(attributes));
    }
    Json::Object(object)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{
        Link, SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::KeyValue;

    use super::{TraceAllowance, LINKS_METADATA, NOT_INDEXED};
    use crate::record::tests::record;
    use crate::record::{Extra, Http, Record};

    /// A record under the handler (span 1), with `n` annotations and `links` links.
    fn child(id: u64, n: usize, links: usize, failed: bool) -> Record {
        let mut r = record(
            (0..n)
                .map(|i| {
                    KeyValue::new(
                        format!("annotation.a{id}_{i}"),
                        i64::try_from(i).unwrap_or(0),
                    )
                })
                .collect(),
        );
        r.span.span_context = SpanContext::new(
            TraceId::from(1),
            SpanId::from(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        r.span.parent_span_id = SpanId::from(1);
        for l in 0..links {
            let producer = SpanContext::new(
                TraceId::from(7),
                SpanId::from(l as u64 + 1),
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            );
            r.span.links.links.push(Link::with_context(producer));
        }
        if failed {
            r.span.status = Status::error("failed");
        }
        r
    }

    #[test]
    fn fifty_annotations_a_trace_failed_records_first() {
        // 60 records of one annotation each; the last two failed.
        let mut records: Vec<Record> = (2..62).map(|id| child(id, 1, 0, id >= 60)).collect();
        let mut allowance = TraceAllowance::default();
        allowance.apply(&mut records, 0);
        let shown: usize = records.iter().map(|r| r.annotations().count()).sum();
        assert_eq!(shown, 50);
        assert!(records[58].annotations().count() == 1 && records[59].annotations().count() == 1);
        let demoted = records
            .iter()
            .filter(|r| r.metadata().iter().any(|(k, _)| k == NOT_INDEXED))
            .count();
        assert_eq!(demoted, 10);
        // Nothing is left for the next group of the same trace.
        let mut later = vec![child(99, 3, 0, false)];
        allowance.apply(&mut later, 0);
        assert_eq!(later[0].annotations().count(), 0);
        assert_eq!(
            later[0].metadata()[0]
                .1
                .as_object()
                .map(serde_json::Map::len),
            Some(3)
        );
    }

    #[test]
    fn twenty_links_a_segment_and_a_hundred_a_trace() {
        let mut records = vec![child(2, 0, 30, false)];
        records.extend((3..10).map(|id| child(id, 0, 15, false)));
        let mut allowance = TraceAllowance::default();
        allowance.apply(&mut records, 0);
        assert_eq!(records[0].span.links.links.len(), 20);
        let kept: usize = records.iter().map(|r| r.span.links.links.len()).sum();
        assert_eq!(kept, 100);
        let over = |r: &Record| {
            r.metadata()
                .iter()
                .find(|(k, _)| k == LINKS_METADATA)
                .and_then(|(_, v)| v.as_array().map(Vec::len))
                .unwrap_or(0)
        };
        let moved: usize = records.iter().map(over).sum();
        assert_eq!(moved, 30 + 7 * 15 - 100, "every link kept somewhere");
        assert_eq!(over(&records[0]), 10);
    }

    #[test]
    fn exactly_fifty_fit_and_the_fifty_first_does_not() {
        let mut records: Vec<Record> = (2..52).map(|id| child(id, 1, 0, false)).collect();
        let mut allowance = TraceAllowance::default();
        allowance.apply(&mut records, 0);
        assert!(
            records.iter().all(|r| r.metadata().is_empty()),
            "all 50 fit"
        );
        let mut more = vec![child(60, 1, 0, false)];
        allowance.apply(&mut more, 0);
        assert_eq!(more[0].annotations().count(), 0);
        assert_eq!(more[0].metadata()[0].0, NOT_INDEXED);
    }

    #[test]
    fn a_served_requests_annotations_count_and_go_to_metadata_when_nothing_is_left() {
        let served = |id: u64, own: usize, failed: bool| {
            let mut r = child(id, own, 0, failed);
            r.extra = Some(Box::new(Extra {
                http: Some(Http {
                    method: "GET".into(),
                    route: Some("/orders".into()),
                    status: Some(500),
                    ..Http::default()
                }),
                ..Extra::default()
            }));
            r
        };
        // 49 failed records take 49; the failed handler (three served, one own) has one left.
        let mut records: Vec<Record> = (2..51).map(|id| child(id, 1, 0, true)).collect();
        records.push(served(99, 1, true));
        let mut allowance = TraceAllowance::default();
        allowance.apply(&mut records, 0);
        let shown: usize = records.iter().map(|r| r.annotations().count()).sum();
        assert_eq!(
            shown, 49,
            "the handler's three do not fit into one: all four are metadata"
        );
        let handler = &records[49];
        let over = &handler.metadata()[0].1;
        assert_eq!(over["HttpMethod"], "GET");
        assert_eq!(over["HttpStatus"], 500);
        assert_eq!(over.as_object().map(serde_json::Map::len), Some(4));
        // With room, they are kept first and the own ones fill what is left.
        let mut allowance = TraceAllowance::default();
        let mut handler = vec![served(1, 60, false)];
        allowance.apply(&mut handler, 0);
        assert_eq!(handler[0].annotations().count(), 50);
        assert_eq!(handler[0].served_request_annotations().count(), 3);
    }

    #[test]
    fn a_users_own_links_metadata_is_added_to_not_replaced() {
        let mut records = vec![child(2, 0, 25, false)];
        records[0].extra = Some(Box::new(Extra {
            metadata: vec![("links".into(), serde_json::json!(["mine"]))],
            ..Extra::default()
        }));
        TraceAllowance::default().apply(&mut records, 0);
        let links = &records[0].metadata()[0].1;
        assert_eq!(links.as_array().map(Vec::len), Some(6), "{links}");
        assert_eq!(links[0], "mine");
    }

    #[test]
    fn the_reserve_is_kept_for_what_comes_later() {
        let mut records: Vec<Record> = (2..60).map(|id| child(id, 1, 0, false)).collect();
        let mut allowance = TraceAllowance::default();
        allowance.apply(&mut records, 3);
        let shown: usize = records.iter().map(|r| r.annotations().count()).sum();
        assert_eq!(shown, 47);
        let mut handler = vec![child(1, 3, 0, false)];
        handler[0].span.parent_span_id = SpanId::from(0xdead);
        allowance.apply(&mut handler, 0);
        assert_eq!(handler[0].annotations().count(), 3);
    }
}
