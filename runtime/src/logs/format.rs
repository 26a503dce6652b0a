//! Writing one log line: the event's fields (text or flat JSON) and an RFC 3339 timestamp,
//! into a reused buffer, without `chrono`.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};

use crate::json::push_str;

/// Keys a JSON line writes itself: an event field of the same name is written `field.<name>`.
const RESERVED: [&str; 12] = [
    "timestamp",
    "level",
    "message",
    "requestId",
    "xray_trace_id",
    "trace_id",
    "span_id",
    "cold_start",
    "function_name",
    "service",
    "target",
    "fields",
];

/// Collects an event's message and its other fields.
pub(super) struct Fields<'a> {
    pub(super) json: bool,
    pub(super) message: String,
    /// `,"key":value` (JSON) or ` key=value` (text), for every field but the message.
    pub(super) rest: &'a mut String,
}

impl Fields<'_> {
    fn key(&mut self, name: &str) {
        if self.json {
            self.rest.push(',');
            if RESERVED.contains(&name) {
                push_str(self.rest, &format!("field.{name}"));
            } else {
                push_str(self.rest, name);
            }
            self.rest.push(':');
        } else {
            self.rest.push(' ');
            self.rest.push_str(name);
            self.rest.push('=');
        }
    }

    /// The `log` crate's own metadata, which `tracing-log` puts in fields.
    fn skipped(name: &str) -> bool {
        name.starts_with("log.")
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else if !Self::skipped(field.name()) {
            self.key(field.name());
            if self.json {
                push_str(self.rest, value);
            } else {
                self.rest.push_str(value);
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message.clear();
            let _ = write!(self.message, "{value:?}");
        } else if !Self::skipped(field.name()) {
            let text = format!("{value:?}");
            self.record_str(field, &text);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.number(field, value);
        } else {
            self.record_str(field, &value.to_string());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, value);
    }
}

impl Fields<'_> {
    fn number(&mut self, field: &Field, value: impl std::fmt::Display) {
        if Self::skipped(field.name()) {
            return;
        }
        self.key(field.name());
        let _ = write!(self.rest, "{value}");
    }
}

/// `2026-11-26T13:38:52.123Z`.
pub(super) fn rfc3339(out: &mut String, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    );
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut out = String::new();
        rfc3339(
            &mut out,
            UNIX_EPOCH + Duration::from_millis(1_795_700_332_123),
        );
        assert_eq!(out, "2026-11-26T13:38:52.123Z");
        out.clear();
        rfc3339(&mut out, UNIX_EPOCH + Duration::from_hours(264_384));
        assert_eq!(out, "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_str(&mut out, "a\"b\\c\nd\u{1}");
        assert_eq!(out, r#""a\"b\\c\nd\u0001""#);
        let parsed: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(parsed, "a\"b\\c\nd\u{1}");
    }
}
