//! The waterfall, rendered for fixed span trees at 100 columns and compared line by line.

use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, SpanId};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::{render, Layout};
use crate::record::Record;
use crate::vocabulary::{ANNOTATION_PREFIX, HTTP_STATUS};

const PLAIN: Layout = Layout {
    width: 100,
    colour: false,
};

/// One span of a fixed tree: times in microseconds from the trace's start.
struct Shape {
    name: &'static str,
    parent: Option<usize>,
    start: u64,
    took: u64,
    attributes: Vec<KeyValue>,
    failed: bool,
}

fn shape(name: &'static str, parent: Option<usize>, start: u64, took: u64) -> Shape {
    Shape {
        name,
        parent,
        start,
        took,
        attributes: Vec::new(),
        failed: false,
    }
}

fn records(shapes: Vec<Shape>) -> Vec<Record> {
    let id = |i: usize| SpanId::from(u64::try_from(i).expect("small") + 1);
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let start = UNIX_EPOCH + Duration::from_hours(498_804) + Duration::from_micros(s.start);
            Record {
                span: SpanData {
                    span_context: SpanContext::new(
                        TraceId::from(0x6921_0000_5759_e988_bd86_2e3f_e1be_46a9u128),
                        id(i),
                        TraceFlags::SAMPLED,
                        false,
                        TraceState::NONE,
                    ),
                    parent_span_id: s.parent.map_or(SpanId::from(0xabcd), id),
                    parent_span_is_remote: s.parent.is_none(),
                    span_kind: SpanKind::Internal,
                    name: s.name.into(),
                    start_time: start,
                    end_time: start + Duration::from_micros(s.took),
                    attributes: s.attributes,
                    dropped_attributes_count: 0,
                    events: SpanEvents::default(),
                    links: SpanLinks::default(),
                    status: if s.failed {
                        Status::error("boom")
                    } else {
                        Status::Unset
                    },
                    instrumentation_scope: InstrumentationScope::builder("xray-lambda").build(),
                },
                extra: None,
            }
        })
        .collect()
}

/// Compares line by line, so that a failure shows the whole drawing.
fn assert_drawn(records: &[Record], layout: Layout, expected: &str) {
    let drawn = render(records, layout);
    assert_eq!(
        drawn.lines().collect::<Vec<_>>(),
        expected.lines().collect::<Vec<_>>(),
        "drawn:\n{drawn}"
    );
}

#[test]
fn nesting_draws_each_level_on_the_handlers_time_axis() {
    let mut handler = shape("handler", None, 0, 2000);
    handler.attributes = vec![
        KeyValue::new(format!("{ANNOTATION_PREFIX}ColdStart"), true),
        KeyValue::new(format!("{ANNOTATION_PREFIX}Service"), "hello"),
    ];
    let mut query = shape("query", Some(1), 500, 1000);
    query.attributes = vec![KeyValue::new("aws.table.name", "orders")];
    assert_drawn(
        &records(vec![handler, shape("hello", Some(0), 250, 1750), query]),
        PLAIN,
        "\
X-Ray trace 1-69210000-5759e988bd862e3fe1be46a9 (under segment 000000000000abcd)
                        0 ms ├──────────────────────────────────────────────────────┤ 2.000 ms
└─ handler          2.000 ms ████████████████████████████████████████████████████████
   │ ColdStart=true, Service=hello
   └─ hello         1.750 ms        █████████████████████████████████████████████████
      └─ query      1.000 ms               ████████████████████████████
           table.name=orders
",
    );
}

#[test]
fn concurrent_children_overlap_on_the_axis() {
    assert_drawn(
        &records(vec![
            shape("handler", None, 0, 1000),
            shape("first", Some(0), 0, 600),
            shape("second", Some(0), 200, 700),
            shape("third", Some(0), 250, 100),
        ]),
        PLAIN,
        "\
X-Ray trace 1-69210000-5759e988bd862e3fe1be46a9 (under segment 000000000000abcd)
                        0 ms ├──────────────────────────────────────────────────────┤ 1.000 ms
└─ handler          1.000 ms ████████████████████████████████████████████████████████
   ├─ first         0.600 ms █████████████████████████████████▋
   ├─ second        0.700 ms            ▐██████████████████████████████████████▍
   └─ third         0.100 ms               █████▋
",
    );
}

#[test]
fn a_zero_length_subsegment_is_a_mark_where_it_happened() {
    assert_drawn(
        &records(vec![
            shape("handler", None, 0, 800),
            shape("instant", Some(0), 400, 0),
            shape("at the end", Some(0), 800, 0),
        ]),
        PLAIN,
        "\
X-Ray trace 1-69210000-5759e988bd862e3fe1be46a9 (under segment 000000000000abcd)
                        0 ms ├──────────────────────────────────────────────────────┤ 0.800 ms
└─ handler          0.800 ms ████████████████████████████████████████████████████████
   ├─ instant       0.000 ms                             ▏
   └─ at the end    0.000 ms                                                        ▕
",
    );
}

#[test]
fn a_fault_an_error_and_a_throttle_are_flagged_in_words_and_causes_follow() {
    let mut fault = shape("fault", Some(0), 100, 300);
    fault.failed = true;
    let mut missing = shape("missing", Some(0), 400, 200);
    missing.failed = true;
    missing.attributes = vec![KeyValue::new(HTTP_STATUS, 404_i64)];
    let mut slow_down = shape("slow down", Some(0), 600, 400);
    slow_down.failed = true;
    slow_down.attributes = vec![KeyValue::new(HTTP_STATUS, 429_i64)];
    assert_drawn(
        &records(vec![
            shape("handler", None, 0, 1000),
            fault,
            missing,
            slow_down,
        ]),
        PLAIN,
        "\
X-Ray trace 1-69210000-5759e988bd862e3fe1be46a9 (under segment 000000000000abcd)
                        0 ms ├──────────────────────────────────────────────────────┤ 1.000 ms
└─ handler          1.000 ms ████████████████████████████████████████████████████████
   ├─ fault         0.300 ms      ▕████████████████▍ FAULT
   │    cause: boom
   ├─ missing       0.200 ms                       ▐██████████▋ ERROR
   │    status=404, cause: boom
   └─ slow down     0.400 ms                                  ▕██████████████████████ ERROR THROTTLE
        status=429, cause: boom
",
    );
}

#[test]
fn on_a_terminal_a_flagged_bar_and_its_flags_are_coloured() {
    let mut fault = shape("fault", Some(0), 0, 1000);
    fault.failed = true;
    let drawn = render(
        &records(vec![shape("handler", None, 0, 1000), fault]),
        Layout {
            width: 100,
            colour: true,
        },
    );
    let line = drawn
        .lines()
        .find(|l| l.starts_with("   └─ fault"))
        .expect("the fault's line");
    assert!(
        line.ends_with(&format!("\x1b[31m{} FAULT\x1b[0m", "█".repeat(56))),
        "{line:?}"
    );
    // Unflagged lines stay plain.
    assert!(!drawn
        .lines()
        .filter(|l| !l.contains("fault"))
        .any(|l| l.contains('\x1b')));
}

#[test]
fn long_names_deep_trees_and_long_details_fit_100_columns() {
    let long: &'static str =
        "a name much longer than any column could hold, such as a generated one \
                               with a uuid 0b9c4c1e-95b8-4e2f-8f5e-1b2c3d4e5f60 in it";
    let mut shapes = vec![shape("handler", None, 0, 10_000)];
    for depth in 1..=30 {
        let mut s = shape(
            if depth == 30 { long } else { "step" },
            Some(depth - 1),
            10,
            9_000,
        );
        if depth == 30 {
            s.attributes = (0..12)
                .map(|n| KeyValue::new(format!("{ANNOTATION_PREFIX}key{n}"), "x".repeat(30)))
                .collect();
        }
        shapes.push(s);
    }
    let records = records(shapes);
    // The narrowest a terminal may be (the trace's own line is 80 columns) fits too.
    let narrow = render(
        &records,
        Layout {
            width: 80,
            colour: false,
        },
    );
    for line in narrow.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }
    let drawn = render(&records, PLAIN);
    for line in drawn.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    let deepest = drawn
        .lines()
        .find(|l| l.contains("a name much"))
        .expect("the deepest line");
    // Its outer levels are elided, its name is cut but keeps a readable start, its bar is there.
    assert!(deepest.starts_with('…'), "{deepest}");
    assert!(deepest.contains("a name much…"), "{deepest}");
    assert!(
        deepest.contains("9.000 ms") && deepest.contains('█'),
        "{deepest}"
    );
    // The whole name and every annotation follow, wrapped under it.
    let details: String = drawn
        .lines()
        .skip_while(|l| !l.contains("a name much"))
        .skip(1)
        .map(|l| l.trim_start_matches(['…', '│', ' ']))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(details.contains("uuid 0b9c4c1e"), "{details}");
    for n in 0..12 {
        assert!(details.contains(&format!("key{n}=")), "key{n}: {details}");
    }
}

#[test]
fn each_trace_has_its_own_axis() {
    let mut second = records(vec![shape("handler", None, 0, 4000)]);
    second[0].span.span_context = SpanContext::new(
        TraceId::from(0x6921_0000_0000_0000_0000_0000_0000_0002u128),
        SpanId::from(99),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    let mut all = records(vec![shape("handler", None, 0, 1000)]);
    all.append(&mut second);
    let drawn = render(&all, PLAIN);
    assert_eq!(drawn.matches("X-Ray trace").count(), 2, "{drawn}");
    assert!(
        drawn.contains("┤ 1.000 ms") && drawn.contains("┤ 4.000 ms"),
        "{drawn}"
    );
    // Both handlers fill their own axis.
    assert_eq!(drawn.matches(&"█".repeat(56)).count(), 2, "{drawn}");
}

#[test]
fn a_long_cause_wraps_between_words() {
    let mut call = shape("call", Some(0), 0, 1000);
    call.failed = true;
    let mut records = records(vec![shape("handler", None, 0, 1000), call]);
    let cause = "connector error: io error: client error (Connect): tcp connect error: \
                 Connection refused (os error 111) after three attempts of ninety milliseconds";
    records[1].span.status = Status::error(cause);
    let drawn = render(&records, PLAIN);
    let under: Vec<&str> = drawn
        .lines()
        .skip_while(|l| !l.starts_with("   └─ call"))
        .skip(1)
        .collect();
    assert_eq!(under.len(), 2, "{drawn}");
    for line in &under {
        assert!(line.chars().count() <= 100, "{line}");
        assert!(!line.ends_with(' '), "{line:?}");
    }
    let words: Vec<&str> = under.iter().flat_map(|l| l.split_whitespace()).collect();
    assert_eq!(
        words.join(" "),
        format!("cause: {cause}"),
        "every word whole: {drawn}"
    );
}

#[test]
fn a_cause_of_several_lines_stays_under_its_subsegment() {
    let mut call = shape("call", Some(0), 0, 1000);
    call.failed = true;
    let mut records = records(vec![shape("handler", None, 0, 1000), call]);
    records[1].span.status = Status::error("could not store\n\nCaused by:\n\tconnection reset  ");
    let drawn = render(&records, PLAIN);
    let under: Vec<&str> = drawn
        .lines()
        .skip_while(|l| !l.starts_with("   └─ call"))
        .skip(1)
        .collect();
    assert_eq!(
        under,
        [r"        cause: could not store\n\nCaused by:\n connection reset"],
        "{drawn}"
    );
}

#[test]
fn a_duration_that_rounds_to_ten_seconds_is_written_in_seconds() {
    assert_eq!(
        super::duration(Duration::from_nanos(9_999_999_600)),
        "10.000 s"
    );
    assert_eq!(
        super::duration(Duration::from_nanos(9_999_999_400)),
        "9999.999 ms"
    );
}
