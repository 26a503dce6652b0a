//! The stderr sink, for a developer's machine (no daemon address): each trace as a waterfall.
//! The tree of subsegments on the left, each one's duration, and a bar on one time axis from
//! the trace's first start, flagged `ERROR`, `THROTTLE` or `FAULT` (in colour when stderr is a
//! terminal and `NO_COLOR` is unset). What a subsegment recorded follows on lines of its own
//! under it. Every line fits the width: 100 columns, or `COLUMNS` (80 to 240) when the shell
//! exports it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::{trace::Status, SpanId, Value};

use crate::environment::Vars;
use crate::header::format_trace_id;
use crate::record::{AwsMembers, Record};
use crate::span_tree::SpanTree;
use crate::vocabulary::UNFINISHED;

/// Writes the waterfall of `records` to stderr in one write.
pub(crate) fn print(records: &[Record]) {
    if records.is_empty() {
        return;
    }
    let text = render(records, Layout::for_stderr());
    // One locked write, so concurrent invocations do not interleave their trees.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// What an invocation had when its deadline came: the same waterfall, under a line that says
/// so; spans still running then end at the deadline and say so.
pub(crate) fn print_at_deadline(records: &[Record]) {
    if records.is_empty() {
        return;
    }
    let mut text = String::from(
        "X-Ray: the invocation reached its deadline; what it had (spans still running end here):\n",
    );
    text.push_str(&render(records, Layout::for_stderr()));
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The width to fit and whether to colour the flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub(crate) width: usize,
    pub(crate) colour: bool,
}

/// A terminal's width where none is known.
const DEFAULT_WIDTH: usize = 100;
/// The trace's own line (`X-Ray trace <id> (under segment <id>)`) is 80 columns.
const MIN_WIDTH: usize = 80;
/// Wider than this, the bars are too fine to compare by eye.
const MAX_WIDTH: usize = 240;
/// The duration column: `9999.999 ms`.
const DURATION: usize = 11;
/// Room after a bar for its flags: ` FAULT THROTTLE`.
const FLAGS: usize = 15;
/// The least of a name that a deep line keeps.
const MIN_NAME: usize = 12;
/// The narrowest name column: a root's `└─ ` and the least of a name.
const MIN_NAME_COLUMN: usize = MIN_NAME + 4;

impl Layout {
    /// Read once per process: the sink runs per invocation.
    fn for_stderr() -> Layout {
        static LAYOUT: OnceLock<Layout> = OnceLock::new();
        *LAYOUT.get_or_init(|| Layout {
            width: Vars::process()
                .get("COLUMNS")
                .and_then(|c| c.parse::<usize>().ok())
                .map_or(DEFAULT_WIDTH, |w| w.clamp(MIN_WIDTH, MAX_WIDTH)),
            colour: std::io::stderr().is_terminal() && Vars::process().get("NO_COLOR").is_none(),
        })
    }
}

/// One subsegment's place in the drawing.
struct Row<'a> {
    record: &'a Record,
    /// Its name on one line (an AWS call's service and operation).
    name: String,
    /// Tree glyphs before the name.
    line_prefix: String,
    /// Tree glyphs that continue below it, for its details and its children.
    child_prefix: String,
    has_children: bool,
}

/// Renders `records` (one or more traces) as waterfalls: one per trace and parent segment,
/// the subsegments under one segment (a first invocation's `Init` and its handler) together.
pub(crate) fn render(records: &[Record], layout: Layout) -> String {
    let tree = SpanTree::new(records);
    let mut out = String::new();
    let roots = by_start(records, tree.roots().collect());
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for root in roots {
        let key = |i: usize| {
            let span = &records[i].span;
            (span.span_context.trace_id(), span.parent_span_id)
        };
        match groups
            .iter_mut()
            .find(|g| key(g[0]) == key(root) && key(root).1 != SpanId::INVALID)
        {
            Some(group) => group.push(root),
            None => groups.push(vec![root]),
        }
    }
    for group in groups {
        let span = &records[group[0]].span;
        out.push_str("X-Ray trace ");
        let _ = format_trace_id(span.span_context.trace_id(), &mut out);
        if span.parent_span_id != SpanId::INVALID {
            let _ = write!(out, " (under segment {})", span.parent_span_id);
        }
        out.push('\n');
        let mut rows = Vec::new();
        for (n, &root) in group.iter().enumerate() {
            let last = n + 1 == group.len();
            let (line, child) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            rows.extend(subtree(records, &tree, root, line, child));
        }
        let origin = span.start_time;
        let end = rows
            .iter()
            .map(|r| r.record.span.end_time)
            .max()
            .unwrap_or(origin);
        let axis = Axis {
            origin,
            total: end.duration_since(origin).unwrap_or_default(),
        };
        draw(&rows, axis, layout, &mut out);
    }
    out
}

fn by_start(records: &[Record], mut list: Vec<usize>) -> Vec<usize> {
    list.sort_by_key(|&i| records[i].span.start_time);
    list
}

/// The subtree under `root`, depth first, children by start time; `root` drawn with `line`,
/// what hangs under it with `child` before.
fn subtree<'a>(
    records: &'a [Record],
    tree: &SpanTree<'_, Record>,
    root: usize,
    line: &str,
    child: &str,
) -> Vec<Row<'a>> {
    let mut rows = Vec::new();
    let mut stack = vec![(root, line.to_owned(), child.to_owned())];
    while let Some((i, line_prefix, child_prefix)) = stack.pop() {
        let kids = by_start(records, tree.children(i).collect());
        for (n, &c) in kids.iter().enumerate().rev() {
            let last = n + 1 == kids.len();
            stack.push((
                c,
                format!("{child_prefix}{}", if last { "└─ " } else { "├─ " }),
                format!("{child_prefix}{}", if last { "   " } else { "│  " }),
            ));
        }
        rows.push(Row {
            record: &records[i],
            name: one_line(&records[i].label()).into_owned(),
            line_prefix,
            child_prefix,
            has_children: !kids.is_empty(),
        });
    }
    rows
}

/// The time axis of one trace: from its root's start to the last end under it.
#[derive(Clone, Copy)]
struct Axis {
    origin: SystemTime,
    total: Duration,
}

impl Axis {
    /// `at` in eighths of a cell, of `cells` cells.
    fn eighths(self, at: SystemTime, cells: usize) -> usize {
        let all = cells * 8;
        if self.total.is_zero() {
            return 0;
        }
        let offset = at.duration_since(self.origin).unwrap_or_default();
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let eighths =
            (offset.as_secs_f64() / self.total.as_secs_f64() * all as f64).round() as usize;
        eighths.min(all)
    }
}

fn draw(rows: &[Row<'_>], axis: Axis, layout: Layout, out: &mut String) {
    // The name column: as wide as the widest line needs, but never more than half of what the
    // name and the bar share.
    let shared = layout.width.saturating_sub(1 + DURATION + 1 + FLAGS);
    let names = rows
        .iter()
        .map(|r| r.line_prefix.chars().count() + r.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(MIN_NAME_COLUMN, (shared / 2).max(MIN_NAME_COLUMN));
    let cells = shared.saturating_sub(names).max(8);
    // The ruler: `0 ms ├────┤ 2.288 ms`, over the duration column and the bars.
    let _ = writeln!(
        out,
        "{:names$} {:>DURATION$} ├{}┤ {}",
        "",
        "0 ms",
        "─".repeat(cells.saturating_sub(2)),
        duration(axis.total),
    );
    for row in rows {
        draw_row(row, axis, layout, names, cells, out);
    }
}

/// One subsegment's line (name, duration, bar, flags) and its details under it.
fn draw_row(
    row: &Row<'_>,
    axis: Axis,
    layout: Layout,
    names: usize,
    cells: usize,
    out: &mut String,
) {
    let span = &row.record.span;
    let full_name = &row.name;
    // A deep line gives up its outer levels before its name gives up its first letters.
    let prefix = elide(
        &row.line_prefix,
        names - full_name.chars().count().min(MIN_NAME),
    );
    let room = names - prefix.chars().count();
    let shown = fit(full_name, room);
    let took = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    let (flags, colour) = flags(row.record);
    let mut line = format!("{prefix}{shown:room$} {:>DURATION$} ", duration(took));
    let bar = bar(
        axis.eighths(span.start_time, cells),
        axis.eighths(span.end_time, cells),
        cells,
    );
    let marked = if flags.is_empty() {
        bar
    } else {
        format!("{bar} {flags}")
    };
    match colour.filter(|_| layout.colour) {
        Some(colour) => {
            let _ = write!(line, "\x1b[{colour}m{marked}\x1b[0m");
        }
        None => line.push_str(&marked),
    }
    out.push_str(line.trim_end());
    out.push('\n');
    let mut details = describe(row.record);
    if shown.as_ref() != full_name.as_str() {
        details.insert(0, full_name.clone());
    }
    let indent = format!(
        "{}{}",
        row.child_prefix,
        if row.has_children { "│ " } else { "  " }
    );
    wrap(
        &details,
        &elide(&indent, layout.width / 2),
        layout.width,
        out,
    );
}

/// `prefix`, its outer levels replaced by `…` when it is longer than `max`.
fn elide(prefix: &str, max: usize) -> Cow<'_, str> {
    let len = prefix.chars().count();
    if len <= max {
        return Cow::Borrowed(prefix);
    }
    let kept: String = prefix.chars().skip(len - max + 1).collect();
    Cow::Owned(format!("…{kept}"))
}

/// `text` on one line: a line break as `\n` (as the log lines write it), any other control
/// character (a tab, whose width a terminal chooses) as a space.
fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut line = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => line.push(' '),
            c => line.push(c),
        }
    }
    Cow::Owned(line)
}

/// `text` cut to `room` characters, the cut marked by `…`.
fn fit(text: &str, room: usize) -> Cow<'_, str> {
    if text.chars().count() <= room {
        return Cow::Borrowed(text);
    }
    let mut cut: String = text.chars().take(room.saturating_sub(1)).collect();
    cut.push('…');
    Cow::Owned(cut)
}

/// `0.042 ms`, `1234.567 ms`; from ten seconds on, `12.345 s`.
fn duration(d: Duration) -> String {
    // Decided after rounding: 9.9999996 s would print as `10000.000 ms`, one column too wide.
    if d < Duration::from_nanos(9_999_999_500) {
        format!("{:.3} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

/// Left-aligned eighths of a cell, from one to seven.
const LEFT_EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/// The bar from eighth `start` to eighth `end` of `cells` cells; at least one eighth wide, so
/// that a zero-length subsegment still shows where it happened.
fn bar(start: usize, end: usize, cells: usize) -> String {
    let all = cells * 8;
    let start = start.min(all - 1);
    let end = end.clamp(start + 1, all);
    let mut bar = String::with_capacity(cells * 3);
    for cell in 0..end.div_ceil(8) {
        let (from, to) = (cell * 8, cell * 8 + 8);
        let (lo, hi) = (start.max(from), end.min(to));
        bar.push(if hi <= lo {
            ' '
        } else if hi - lo == 8 {
            '█'
        } else if lo == from {
            LEFT_EIGHTHS[hi - lo]
        } else if hi == to {
            // Unicode has right-aligned blocks of one eighth and one half only.
            if hi - lo >= 4 {
                '▐'
            } else {
                '▕'
            }
        } else {
            '▏'
        });
    }
    bar
}

/// The document's flags, as words, and the ANSI colour of a flagged bar: red for a fault,
/// magenta for throttling, yellow for another error.
fn flags(record: &Record) -> (&'static str, Option<&'static str>) {
    let flags = record.flags();
    match (flags.fault, flags.error, flags.throttle) {
        (true, _, false) => ("FAULT", Some("31")),
        (true, _, true) => ("FAULT THROTTLE", Some("31")),
        (false, true, true) => ("ERROR THROTTLE", Some("35")),
        (false, true, false) => ("ERROR", Some("33")),
        (false, false, true) => ("THROTTLE", Some("35")),
        (false, false, false) => ("", None),
    }
}

/// `details` joined by `, `, in lines that begin with `indent` and fit `width`.
fn wrap(details: &[String], indent: &str, width: usize, out: &mut String) {
    let room = width.saturating_sub(indent.chars().count()).max(MIN_NAME);
    let mut line = String::new();
    let mut used = 0;
    for (n, item) in details.iter().enumerate() {
        let item = one_line(item.trim());
        let item = if n + 1 < details.len() {
            Cow::Owned(format!("{item},"))
        } else {
            item
        };
        let mut rest: &str = &item;
        loop {
            let len = rest.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + len <= room {
                if gap == 1 {
                    line.push(' ');
                }
                line.push_str(rest);
                used += gap + len;
                break;
            }
            if used > 0 {
                let _ = writeln!(out, "{indent}{}", line.trim_end());
                line.clear();
                used = 0;
                continue;
            }
            // Longer than a whole line: split it after its last space that fits, or anywhere.
            let end = rest.char_indices().nth(room).map_or(rest.len(), |(i, _)| i);
            let split = rest[..end]
                .rfind(' ')
                .filter(|&i| i > 0)
                .map_or(end, |i| i + 1);
            let _ = writeln!(out, "{indent}{}", rest[..split].trim_end());
            rest = &rest[split..];
        }
    }
    if used > 0 {
        let _ = writeln!(out, "{indent}{}", line.trim_end());
    }
}

/// What the subsegment recorded, as `key=value` items.
fn describe(record: &Record) -> Vec<String> {
    let span = &record.span;
    let mut notes: Vec<String> = record
        .own_annotations()
        .map(|(k, v)| format!("{k}={}", short(&v)))
        .collect();
    for kv in &span.attributes {
        if let Some(k) = kv.key.as_str().strip_prefix("aws.") {
            notes.push(format!("{k}={}", short(&kv.value)));
        } else if kv.key.as_str() == UNFINISHED {
            notes.push("still running at the deadline".to_owned());
        }
    }
    // The fields the translator has no room for (retries, parameters, throttle).
    for (k, v) in record.aws_members().into_iter().flat_map(AwsMembers::iter) {
        notes.push(format!("{k}={v}"));
    }
    if let Some(http) = record.http() {
        notes.push(format!("{} {}", http.method, http.url));
        if let Some(client_ip) = &http.client_ip {
            notes.push(format!("client_ip={client_ip}"));
        }
        if let Some(length) = http.content_length {
            notes.push(format!("content_length={length}"));
        }
        for (name, value) in record.served_request_annotations() {
            notes.push(format!("{name}={}", short(&value)));
        }
    }
    // An AWS call's length (an HTTP exchange's is with its `http` above).
    if let Some(length) = record.content_length().filter(|_| record.http().is_none()) {
        notes.push(format!("content_length={length}"));
    }
    if let Some(status) = record.status() {
        notes.push(format!("status={status}"));
    }
    if record.is_remote() {
        // A call's id is the `Parent` its request carried downstream.
        notes.push(format!("id={}", span.span_context.span_id()));
    }
    if let Status::Error { description } = &span.status {
        notes.push(format!("cause: {description}"));
    }
    notes
}

fn short(value: &Value) -> String {
    let s = value.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
#[path = "stderr_tests.rs"]
mod tests;
