//! The direct writer: a group of records written straight into one X-Ray document, without
//! building opentelemetry-aws's `SegmentDocument` first.
//!
//! It covers what this crate's own spans carry (handler, `#[xray_aws]`, SDK calls, `tracing`
//! spans with annotations, and every typed extra) and writes for them what `SegmentTranslator`
//! (with nesting) writes plus the extras the translator has no field for. In `Exact` mode any
//! span it does not cover — another attribute, kind, event or link — refuses the whole group;
//! a differential test holds the two to the same documents. In `Lossy` mode (no `translator`
//! feature) it writes what it knows and leaves the rest out.

use std::time::UNIX_EPOCH;

use opentelemetry::trace::{Link, SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;

use crate::datagram::DAEMON_HEADER;
use crate::header::{hex, write_trace_id as trace_id};
use crate::json::{write_str as json_str, write_value as json, Members};
use crate::record::{
    exceptions, string_attribute, AwsMembers, Http, InProgress, MemberValue, Record, ServedFact,
};
use crate::span_tree::SpanTree;
use crate::vocabulary::{
    annotation_key, annotation_value_is_valid, name_is_plain, plain_name, ANNOTATION_PREFIX,
    AWS_REGION, AWS_REQUEST_ID, AWS_TABLE_NAME, EXCEPTION_EVENT, HTTP_STATUS, MAX_ANNOTATION_VALUE,
    RPC_METHOD, RPC_SERVICE, RPC_SYSTEM, SDK_NAME,
};

/// What the writer does with a span it does not cover exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Refuses the group (the translator writes it).
    Exact,
    /// Writes what it knows and leaves the rest out: without the `translator` feature.
    #[cfg_attr(feature = "translator", allow(dead_code))]
    Lossy,
}

/// Writes the daemon header and `group` as one document into `buf`, the handler subsegment
/// linked to `log_group`; `false` (and `buf` in an unspecified state) when the group has not
/// exactly one root, or, in `Exact` mode, when a span needs the translator.
pub(crate) fn write_group(
    group: &[Record],
    buf: &mut Vec<u8>,
    mode: Mode,
    log_group: Option<&str>,
) -> bool {
    if mode == Mode::Exact && !group.iter().all(|r| covered(&r.span)) {
        return false;
    }
    let tree = SpanTree::new(group);
    let mut roots = tree.roots();
    let (Some(root), None) = (roots.next(), roots.next()) else {
        return false;
    };
    buf.clear();
    buf.extend_from_slice(DAEMON_HEADER);
    write_record(group, &tree, root, true, log_group, buf);
    true
}

/// Writes the daemon header and the `in_progress` document of a handler that is still running.
pub(crate) fn write_in_progress(handler: &InProgress, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(DAEMON_HEADER);
    buf.extend_from_slice(br#"{"type":"subsegment","name":"#);
    json_str(buf, &plain_name(&handler.name));
    buf.extend_from_slice(br#","id":""#);
    hex(buf, &handler.span_id.to_bytes());
    buf.extend_from_slice(br#"","trace_id":""#);
    trace_id(buf, handler.trace_id);
    buf.extend_from_slice(br#"","start_time":"#);
    seconds(buf, handler.start_time);
    buf.extend_from_slice(br#","in_progress":true,"parent_id":""#);
    hex(buf, &handler.parent_id.to_bytes());
    buf.extend_from_slice(br#"","aws":{"xray":{"sdk":"#);
    json_str(buf, SDK_NAME);
    buf.extend_from_slice(b"}}}");
}

/// Whether the writer writes `span` exactly as the translator would.
fn covered(span: &SpanData) -> bool {
    // Links are the writer's to write, never the translator's (which drops them): they are
    // added to the translator's output.
    if !matches!(span.span_kind, SpanKind::Internal | SpanKind::Client)
        || span.events.iter().any(|e| e.name != EXCEPTION_EVENT)
        || !name_is_plain(&span.name)
    {
        return false;
    }
    let mut status_code = None;
    for kv in &span.attributes {
        let key = kv.key.as_str();
        let ok = match key {
            RPC_SYSTEM | RPC_SERVICE | RPC_METHOD | AWS_REGION | AWS_TABLE_NAME
            | AWS_REQUEST_ID => matches!(&kv.value, Value::String(s) if !s.as_str().is_empty()),
            HTTP_STATUS => {
                if let Value::I64(code) = kv.value {
                    status_code = Some(code);
                    true
                } else {
                    false
                }
            }
            // (A longer annotation string is cut in `Lossy` mode; the translator writes it.)
            _ => key.strip_prefix(ANNOTATION_PREFIX).is_some_and(|name| {
                annotation_key(name).is_ok()
                    && annotation_value_is_valid(&kv.value)
                    && !matches!(&kv.value, Value::String(s)
                        if s.as_str().len() > MAX_ANNOTATION_VALUE
                            && s.as_str().chars().count() > MAX_ANNOTATION_VALUE)
            }),
        };
        if !ok {
            return false;
        }
    }
    // An error status needs its cause from `exception` events; an HTTP error status without
    // an error status is the translator's to judge.
    match &span.status {
        Status::Error { .. } => span.events.iter().next().is_some(),
        _ => status_code.is_none_or(|c| c < 400),
    }
}

/// Epoch seconds with six decimals (X-Ray keeps microseconds), written as integers: a float's
/// shortest form cost ten times as many instructions, twice a span.
fn seconds(buf: &mut Vec<u8>, time: std::time::SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    // Rounded to the nearest microsecond, in 64-bit arithmetic (128-bit division is a call).
    let (mut whole, mut fraction) = (since.as_secs(), (since.subsec_nanos() + 500) / 1_000);
    if fraction == 1_000_000 {
        whole += 1;
        fraction = 0;
    }
    // Ten digits of seconds (2001 to 2286), two at a time into one array: a third of the
    // instructions of formatting each number on its own.
    if (1_000_000_000..10_000_000_000).contains(&whole) {
        let mut text = [b'.'; 17];
        write_pairs(&mut text[..10], whole);
        write_pairs(&mut text[11..], u64::from(fraction));
        buf.extend_from_slice(&text);
        return;
    }
    let mut text = itoa::Buffer::new();
    buf.extend_from_slice(text.format(whole).as_bytes());
    // Six digits with their leading zeros: 1_000_000 + fraction is "1" and those six.
    let fraction = text.format(1_000_000 + fraction).as_bytes();
    buf.push(b'.');
    buf.extend_from_slice(&fraction[1..]);
}

/// `n`'s last `out.len()` (even) decimal digits, leading zeros kept.
fn write_pairs(out: &mut [u8], mut n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    for pair in out.rchunks_exact_mut(2) {
        let at = usize::try_from(n % 100).unwrap_or(0) * 2;
        pair.copy_from_slice(&PAIRS[at..at + 2]);
        n /= 100;
    }
}

/// The span's own members, then its children, nested.
fn write_record(
    group: &[Record],
    tree: &SpanTree<'_, Record>,
    at: usize,
    top: bool,
    log_group: Option<&str>,
    buf: &mut Vec<u8>,
) {
    let record = &group[at];
    write_identity(record, top, buf);
    write_http(record.http(), record.status(), record.content_length(), buf);
    write_metadata(record, buf);
    write_links(record, buf);
    let logs = log_group.filter(|_| record.is_handler());
    write_aws(&record.span, record.aws_members(), logs, buf);
    let flags = record.flags();
    for (set, member) in [
        (flags.throttle, br#","throttle":true"#.as_slice()),
        (flags.error, br#","error":true"#),
        (flags.fault, br#","fault":true"#),
    ] {
        if set {
            buf.extend_from_slice(member);
        }
    }
    if record.failure().is_some() {
        write_cause(record, buf);
    }
    write_annotations(record, buf);
    let mut children = tree.children(at).peekable();
    if children.peek().is_some() {
        let mut members = Members::new(br#","subsegments":["#);
        for child in children {
            members.next(buf);
            write_record(group, tree, child, false, log_group, buf);
        }
        members.close(buf, b"]");
    }
    buf.push(b'}');
}

/// `{` and the members that place the span: type, name, ids, times, namespace.
fn write_identity(record: &Record, top: bool, buf: &mut Vec<u8>) {
    let span = &record.span;
    buf.push(b'{');
    if top {
        buf.extend_from_slice(br#""type":"subsegment","#);
    }
    buf.extend_from_slice(br#""name":"#);
    json_str(buf, &record.name());
    buf.extend_from_slice(br#","id":""#);
    hex(buf, &span.span_context.span_id().to_bytes());
    buf.push(b'"');
    if top {
        buf.extend_from_slice(br#","trace_id":""#);
        trace_id(buf, span.span_context.trace_id());
        buf.push(b'"');
    }
    buf.extend_from_slice(br#","start_time":"#);
    seconds(buf, span.start_time);
    buf.extend_from_slice(br#","end_time":"#);
    seconds(buf, span.end_time);
    if top {
        buf.extend_from_slice(br#","parent_id":""#);
        hex(buf, &span.parent_span_id.to_bytes());
        buf.push(b'"');
    }
    if let Some(namespace) = record.namespace() {
        buf.extend_from_slice(br#","namespace":"#);
        json_str(buf, namespace);
    }
}

/// `http`: the request (of a call made with an HTTP client, or the one an HTTP function
/// serves), and the response's status and length.
fn write_http(http: Option<&Http>, status: Option<i64>, length: Option<u64>, buf: &mut Vec<u8>) {
    let mut object = Members::new(br#","http":{"#);
    if let Some(request) = http {
        object.next(buf);
        buf.extend_from_slice(br#""request":{"method":"#);
        json_str(buf, request.method.as_str());
        buf.extend_from_slice(br#","url":"#);
        json_str(buf, &request.url);
        if let Some(user_agent) = &request.user_agent {
            buf.extend_from_slice(br#","user_agent":"#);
            json_str(buf, user_agent);
        }
        if let Some(client_ip) = &request.client_ip {
            buf.extend_from_slice(br#","client_ip":"#);
            json_str(buf, client_ip);
            if request.x_forwarded_for {
                buf.extend_from_slice(br#","x_forwarded_for":true"#);
            }
        }
        // Only where the downstream service traces: with `traced`, X-Ray holds the trace as
        // incomplete until the downstream's segment arrives (the segment guide; neither the
        // Go nor the Python SDK sets it for a plain HTTP client).
        if request.traced {
            buf.extend_from_slice(br#","traced":true"#);
        }
        buf.push(b'}');
    }
    if status.is_some() || length.is_some() {
        object.plain_key(buf, "response");
        let mut response = Members::new(b"{");
        if let Some(code) = status {
            response.plain_key(buf, "status");
            json(buf, &code);
        }
        if let Some(length) = length {
            response.plain_key(buf, "content_length");
            json(buf, &length);
        }
        response.close(buf, b"}");
    }
    object.close(buf, b"}");
}

/// `metadata`, in the `default` namespace.
fn write_metadata(record: &Record, buf: &mut Vec<u8>) {
    let mut members = Members::new(br#","metadata":{"default":{"#);
    for (key, value) in record.metadata() {
        members.key(buf, key);
        json(buf, value);
    }
    members.close(buf, b"}}");
}

/// `links`: the span's links as the collector's exporter writes them through `PutTraceSegments`
/// (a member of any segment or subsegment; the segment guide lists it for segments, and X-Ray
/// accepts it on subsegments today). Those over X-Ray's limits were moved to metadata before
/// (`record::limits`).
fn write_links(record: &Record, buf: &mut Vec<u8>) {
    let links = &record.span.links.links;
    if links.is_empty() {
        return;
    }
    buf.extend_from_slice(br#","links":"#);
    write_link_list(links, buf);
}

/// `[{"trace_id":"1-…","id":"…","attributes":{…}}]`, X-Ray's form of a list of links, from
/// the span's typed links (no JSON values built on the way); no `attributes` when it has none.
fn write_link_list(links: &[Link], buf: &mut Vec<u8>) {
    let mut list = Members::new(b"[");
    for link in links {
        list.next(buf);
        buf.extend_from_slice(br#"{"trace_id":""#);
        trace_id(buf, link.span_context.trace_id());
        buf.extend_from_slice(br#"","id":""#);
        hex(buf, &link.span_context.span_id().to_bytes());
        buf.push(b'"');
        let mut attributes = Members::new(br#","attributes":{"#);
        for kv in &link.attributes {
            if let Value::String(value) = &kv.value {
                attributes.key(buf, kv.key.as_str());
                json_str(buf, value.as_str());
            }
        }
        attributes.close(buf, b"}");
        buf.push(b'}');
    }
    list.close(buf, b"]");
}

/// The `aws` object: the typed members first, the handler's log group, then the members read
/// from attributes.
fn write_aws(
    span: &SpanData,
    members: Option<&AwsMembers>,
    log_group: Option<&str>,
    buf: &mut Vec<u8>,
) {
    buf.extend_from_slice(br#","aws":{"xray":{"sdk":"#);
    json_str(buf, SDK_NAME);
    buf.push(b'}');
    if let Some(group) = log_group {
        buf.extend_from_slice(br#","cloudwatch_logs":[{"log_group":"#);
        json_str(buf, group);
        buf.extend_from_slice(b"}]");
    }
    for (name, value) in members.into_iter().flat_map(AwsMembers::iter) {
        buf.push(b',');
        json_str(buf, name);
        buf.push(b':');
        match value {
            MemberValue::Text(s) => json_str(buf, s),
            MemberValue::Count(n) => json(buf, &n),
            MemberValue::Names(names) => {
                buf.push(b'[');
                for (n, name) in names.iter().enumerate() {
                    if n > 0 {
                        buf.push(b',');
                    }
                    json_str(buf, name);
                }
                buf.push(b']');
            }
            MemberValue::Json(value) => json(buf, value),
        }
    }
    for (member, key) in [
        (br#","operation":"#.as_slice(), RPC_METHOD),
        (br#","region":"#, AWS_REGION),
        (br#","request_id":"#, AWS_REQUEST_ID),
        (br#","table_name":"#, AWS_TABLE_NAME),
    ] {
        if let Some(value) = string_attribute(span, key) {
            buf.extend_from_slice(member);
            json_str(buf, value);
        }
    }
    buf.push(b'}');
}

/// `cause`, from the span's `exception` events.
fn write_cause(record: &Record, buf: &mut Vec<u8>) {
    let span = &record.span;
    buf.extend_from_slice(br#","cause":{"#);
    if let Some(directory) = working_directory() {
        buf.extend_from_slice(br#""working_directory":"#);
        json_str(buf, directory);
        buf.push(b',');
    }
    buf.extend_from_slice(br#""exceptions":["#);
    let span_id = u64::from_be_bytes(span.span_context.span_id().to_bytes());
    // Unique within the trace: the span's id, mixed with the exception's position.
    let id = |n: usize| span_id ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let count = exceptions(span).count();
    let mut list = Members::new(b"");
    for (n, exception) in exceptions(span).enumerate() {
        list.next(buf);
        buf.extend_from_slice(br#"{"id":""#);
        hex(buf, &id(n).to_be_bytes());
        buf.push(b'"');
        // A span's exceptions are one error and its `source()` chain, outermost first: each
        // is caused by the next, linked by id as X-Ray links them.
        if n + 1 < count {
            buf.extend_from_slice(br#","cause":""#);
            hex(buf, &id(n + 1).to_be_bytes());
            buf.push(b'"');
        }
        for (member, value) in [
            (br#","message":"#.as_slice(), exception.message),
            (br#","type":"#, exception.kind),
        ] {
            // The translator leaves empty strings out.
            let value = value.map(Value::as_str).filter(|v| !v.is_empty());
            if let Some(value) = value {
                buf.extend_from_slice(member);
                json_str(buf, &value);
            }
        }
        if record.is_remote() {
            buf.extend_from_slice(br#","remote":true"#);
        }
        buf.push(b'}');
    }
    if !list.is_open() {
        // An error status without an exception event (only in `Lossy` mode): its description.
        if let Status::Error { description } = &span.status {
            buf.extend_from_slice(br#"{"id":""#);
            hex(buf, &span_id.to_be_bytes());
            buf.extend_from_slice(br#"","message":"#);
            json_str(buf, description);
            buf.push(b'}');
        }
    }
    buf.extend_from_slice(b"]}");
}

/// The function's working directory (`/var/task` in Lambda), read once: X-Ray's `cause`
/// carries it, as the X-Ray SDKs write it.
pub(crate) fn working_directory() -> Option<&'static str> {
    static DIRECTORY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DIRECTORY
        .get_or_init(|| {
            std::env::current_dir()
                .ok()
                .and_then(|d| d.to_str().map(str::to_owned))
        })
        .as_deref()
}

/// `annotations`, as the record shows them (a value X-Ray would refuse is left out, a key it
/// would not index is written as `annotate!` writes a run-time key: only in `Lossy` mode can
/// either get here).
fn write_annotations(record: &Record, buf: &mut Vec<u8>) {
    if !record.may_have_annotations() {
        return;
    }
    let mut members = Members::new(br#","annotations":{"#);
    // `Record::annotations`, in its order: the span's own, then a served request's, written
    // from the request's facts without building values.
    for (name, value) in record.own_annotations() {
        // Annotation keys hold only letters, digits and `_` (`vocabulary::annotation_key`).
        members.plain_key(buf, &name);
        match &*value {
            Value::Bool(b) => json(buf, b),
            Value::I64(i) => json(buf, i),
            Value::F64(f) => json(buf, f),
            Value::String(s) => json_str(buf, s.as_str()),
            _ => buf.extend_from_slice(b"null"),
        }
    }
    for (name, fact) in record.served_request_facts() {
        members.plain_key(buf, name);
        match fact {
            ServedFact::Method(method) => json_str(buf, method.as_str()),
            ServedFact::Route(_, shown) => json_str(buf, &shown),
            ServedFact::Status(status) => json(buf, &status),
        }
    }
    members.close(buf, b"}");
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;

#[cfg(test)]
mod time_tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::seconds;

    #[test]
    fn times_are_epoch_seconds_to_the_microsecond() {
        let mut buf = Vec::new();
        for (nanos, written) in [
            (1_700_000_000_000_000_000_u64, "1700000000.000000"),
            (1_700_000_000_123_456_499, "1700000000.123456"),
            (1_700_000_000_123_456_500, "1700000000.123457"),
            (1_700_000_000_999_999_600, "1700000001.000000"),
            (0, "0.000000"),
        ] {
            buf.clear();
            seconds(&mut buf, UNIX_EPOCH + Duration::from_nanos(nanos));
            assert_eq!(std::str::from_utf8(&buf).expect("UTF-8"), written);
            let parsed: f64 = written.parse().expect("a JSON number");
            #[allow(clippy::cast_precision_loss)]
            let exact = nanos as f64 / 1e9;
            assert!((parsed - exact).abs() < 1e-6, "{parsed} {exact}");
        }
    }

    /// The pair-at-a-time path and the general one write the same text, at the edges of the
    /// ten-digit range and across it.
    #[test]
    fn every_time_is_written_as_the_general_formatter_writes_it() {
        let mut buf = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let edges = [999_999_999, 1_000_000_000, 9_999_999_999, 10_000_000_000];
        for at in 0..20_000_u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let secs = match usize::try_from(at).unwrap_or(0) {
                i if i < edges.len() => edges[i],
                _ => 1_000_000_000 + state % 9_000_000_000,
            };
            let time =
                UNIX_EPOCH + Duration::new(secs, u32::try_from(state % 1_000_000_000).unwrap_or(0));
            buf.clear();
            seconds(&mut buf, time);
            let since = time.duration_since(UNIX_EPOCH).expect("after 1970");
            let micros = (since.as_nanos() + 500) / 1_000;
            let expected = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
            assert_eq!(std::str::from_utf8(&buf).expect("UTF-8"), expected);
        }
    }
}
