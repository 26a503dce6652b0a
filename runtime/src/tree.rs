//! A readable tree of an invocation's trace, for a developer's machine (no daemon address).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;

use opentelemetry::{trace::Status, SpanId, Value};
use opentelemetry_sdk::trace::SpanData;

use crate::export::{AWS_FIELDS, TOP_FIELDS};
use crate::header::format_trace_id;

/// Writes the tree of `spans` to stderr in one write.
pub(crate) fn print(spans: &[SpanData]) {
    let text = render(spans);
    // One locked write, so concurrent invocations do not interleave their trees.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Renders `spans` (one or more traces) as an indented tree.
pub(crate) fn render(spans: &[SpanData]) -> String {
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_context.span_id(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match index.get(&span.parent_span_id) {
            Some(&p) if p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    for list in children.iter_mut().chain(std::iter::once(&mut roots)) {
        list.sort_by_key(|&i| spans[i].start_time);
    }
    let mut out = String::new();
    for &root in &roots {
        let span = &spans[root];
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
            describe(&spans[i], &mut out);
            out.push('\n');
            let kids = &children[i];
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

fn describe(span: &SpanData, out: &mut String) {
    let attr = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    };
    let name = attr("aws.service")
        .or_else(|| attr("rpc.service"))
        .map_or_else(
            || span.name.to_string(),
            |service| match attr("rpc.method") {
                Some(method) => format!("{service} {method}"),
                None => service.to_string(),
            },
        );
    let micros = span
        .end_time
        .duration_since(span.start_time)
        .map_or(0, |d| d.as_micros());
    #[allow(clippy::cast_precision_loss)]
    let _ = write!(out, "{name}  {:.3} ms", micros as f64 / 1000.0);
    let mut notes = Vec::new();
    for kv in &span.attributes {
        let key = kv.key.as_str();
        if let Some(k) = key.strip_prefix("annotation.") {
            notes.push(format!("{k}={}", short(&kv.value)));
        } else if let Some(k) = key.strip_prefix("aws.") {
            if k != "service" {
                notes.push(format!("{k}={}", short(&kv.value)));
            }
        } else if key == AWS_FIELDS || key == TOP_FIELDS {
            // The fields the translator has no room for (retries, parameters, throttle).
            let members = format!("{{{}}}", kv.value.as_str());
            if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(&members) {
                notes.extend(fields.iter().map(|(k, v)| format!("{k}={v}")));
            }
        } else if key == "http.response.status_code" {
            notes.push(format!("status={}", short(&kv.value)));
        }
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
