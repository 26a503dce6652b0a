//! The stderr sink: a readable tree of an invocation's trace, for a developer's machine (no
//! daemon address).

use std::fmt::Write as _;
use std::io::Write as _;

use opentelemetry::{trace::Status, SpanId, Value};

use crate::header::format_trace_id;
use crate::span_tree::SpanTree;
use crate::vocabulary::{
    annotations, string_attribute, Record, CLOUDWATCH_LOGS, RPC_METHOD, RPC_SERVICE,
};

/// Writes the tree of `records` to stderr in one write.
pub(crate) fn print(records: &[Record]) {
    let text = render(records);
    // One locked write, so concurrent invocations do not interleave their trees.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Renders `records` (one or more traces) as an indented tree.
pub(crate) fn render(records: &[Record]) -> String {
    let tree = SpanTree::new(records);
    let by_start = |mut list: Vec<usize>| {
        list.sort_by_key(|&i| records[i].span.start_time);
        list
    };
    let mut out = String::new();
    for root in by_start(tree.roots().collect()) {
        let span = &records[root].span;
        out.push_str("X-Ray trace ");
        let _ = format_trace_id(span.span_context.trace_id(), &mut out);
        if span.parent_span_id != SpanId::INVALID {
            let _ = write!(out, " (under segment {})", span.parent_span_id);
        }
        out.push('\n');
        // (index, prefix of this line, prefix of its children)
        let mut stack = vec![(root, "└─ ".to_owned(), "   ".to_owned())];
        while let Some((i, line_prefix, child_prefix)) = stack.pop() {
            out.push_str(&line_prefix);
            describe(&records[i], &mut out);
            out.push('\n');
            let kids = by_start(tree.children(i).collect());
            for (n, &c) in kids.iter().enumerate().rev() {
                let last = n + 1 == kids.len();
                stack.push((
                    c,
                    format!("{child_prefix}{}", if last { "└─ " } else { "├─ " }),
                    format!("{child_prefix}{}", if last { "   " } else { "│  " }),
                ));
            }
        }
    }
    out
}

fn describe(record: &Record, out: &mut String) {
    let span = &record.span;
    let name = match (
        string_attribute(span, "aws.service").or_else(|| string_attribute(span, RPC_SERVICE)),
        string_attribute(span, RPC_METHOD),
    ) {
        (Some(service), Some(method)) => format!("{service} {method}"),
        (Some(service), None) => service.to_owned(),
        _ => span.name.to_string(),
    };
    let micros = span
        .end_time
        .duration_since(span.start_time)
        .map_or(0, |d| d.as_micros());
    #[allow(clippy::cast_precision_loss)]
    let _ = write!(out, "{name}  {:.3} ms", micros as f64 / 1000.0);
    let mut notes: Vec<String> = annotations(span)
        .map(|(k, v)| format!("{k}={}", short(v)))
        .collect();
    for kv in &span.attributes {
        if let Some(k) = kv.key.as_str().strip_prefix("aws.") {
            if k != "service" {
                notes.push(format!("{k}={}", short(&kv.value)));
            }
        }
    }
    // The fields the translator has no room for (retries, parameters, throttle).
    for (k, v) in record.aws_members().into_iter().flatten() {
        // The log group is the function's own, on every handler: noise in a tree.
        if k != CLOUDWATCH_LOGS {
            notes.push(format!("{k}={v}"));
        }
    }
    if record.throttle() {
        notes.push("throttle=true".to_owned());
    }
    if let Some(http) = record.http() {
        notes.push(format!("{} {}", http.method, http.url));
        if let Some(client_ip) = &http.client_ip {
            notes.push(format!("client_ip={client_ip}"));
        }
        if let Some(length) = http.content_length {
            notes.push(format!("content_length={length}"));
        }
    }
    if let Some(http) = record.http() {
        for (name, value) in http.annotations(|key| record.has_annotation(key)) {
            notes.push(format!("{name}={}", short(&value)));
        }
    }
    if let Some(status) = record.status() {
        notes.push(format!("status={status}"));
    }
    if span.span_kind == opentelemetry::trace::SpanKind::Client {
        // A call's id is the `Parent` its request carried downstream.
        notes.push(format!("id={}", span.span_context.span_id()));
    }
    if let Status::Error { description } = &span.status {
        notes.push(format!("FAULT: {description}"));
    }
    if !notes.is_empty() {
        let _ = write!(out, "  [{}]", notes.join(", "));
    }
}

fn short(value: &Value) -> String {
    let s = value.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}
