//! Annotations and metadata on the innermost traced subsegment: what `annotate!` and
//! `metadata!` expand to.

use std::borrow::Cow;

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Value;
use serde_json::Value as Json;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::notices::warn_once;
use crate::record::Extra;
use crate::state;
use crate::vocabulary::{annotation_key, ANNOTATION_PREFIX, MAX_ANNOTATION_VALUE};

/// A value X-Ray can index as an annotation: a string, a number or a bool.
///
/// Implemented for `i8`–`i64`, `isize`, `u8`–`u64`, `usize`, `f32`, `f64`, `bool`, `&str`,
/// `String` and `Cow<str>` (and references to them); sealed, so that it can change with the crate's dependencies without a
/// breaking release.
#[diagnostic::on_unimplemented(
    message = "X-Ray cannot index `{Self}` as an annotation: annotation values are strings, numbers or booleans",
    label = "not a string, number or bool",
    note = "convert it (`value.to_string()`), or record it unindexed with `xray_lambda::metadata!(\"key\", value)`"
)]
pub trait AnnotationValue: sealed::IntoAnnotation {}

mod sealed {
    /// The value as OpenTelemetry carries it: not nameable outside the crate.
    #[diagnostic::on_unimplemented(
        message = "`AnnotationValue` is sealed: `{Self}` cannot implement it",
        label = "not a string, number or bool",
        note = "annotate a string, number or bool made from it: `xray_lambda::annotate!(\"key\", value.to_string())`"
    )]
    pub trait IntoAnnotation {
        fn into_annotation(self) -> super::Value;
    }
}
use sealed::IntoAnnotation;

macro_rules! annotation_values {
    ($($t:ty),*) => {$( impl AnnotationValue for $t {} )*};
}
annotation_values!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize, f32, f64, bool);
annotation_values!(&str, String, &String, Cow<'_, str>);
annotation_values!(&i8, &i16, &i32, &i64, &isize, &u8, &u16, &u32, &u64, &usize, &f32, &f64, &bool);

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl IntoAnnotation for $t {
            fn into_annotation(self) -> Value {
                Value::I64(i64::from(self))
            }
        }
    )*};
}
integers!(i8, i16, i32, i64, u8, u16, u32);

impl IntoAnnotation for u64 {
    fn into_annotation(self) -> Value {
        // X-Ray numbers are JSON numbers: beyond i64, a float keeps the magnitude.
        #[allow(clippy::cast_precision_loss)]
        i64::try_from(self).map_or(Value::F64(self as f64), Value::I64)
    }
}

impl IntoAnnotation for usize {
    fn into_annotation(self) -> Value {
        (self as u64).into_annotation()
    }
}

impl IntoAnnotation for isize {
    fn into_annotation(self) -> Value {
        Value::I64(self as i64)
    }
}

impl IntoAnnotation for f32 {
    fn into_annotation(self) -> Value {
        Value::F64(f64::from(self))
    }
}

impl IntoAnnotation for f64 {
    fn into_annotation(self) -> Value {
        Value::F64(self)
    }
}

impl IntoAnnotation for bool {
    fn into_annotation(self) -> Value {
        Value::Bool(self)
    }
}

impl IntoAnnotation for &str {
    fn into_annotation(self) -> Value {
        Value::from(cap_annotation(self.to_owned()))
    }
}

impl IntoAnnotation for String {
    fn into_annotation(self) -> Value {
        Value::from(cap_annotation(self))
    }
}

impl IntoAnnotation for &String {
    fn into_annotation(self) -> Value {
        self.as_str().into_annotation()
    }
}

impl IntoAnnotation for Cow<'_, str> {
    fn into_annotation(self) -> Value {
        Value::from(cap_annotation(self.into_owned()))
    }
}

macro_rules! by_reference {
    ($($t:ty),*) => {$(
        impl IntoAnnotation for &$t {
            fn into_annotation(self) -> Value {
                (*self).into_annotation()
            }
        }
    )*};
}
by_reference!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64, bool);

fn cap_annotation(mut s: String) -> String {
    if s.chars().count() > MAX_ANNOTATION_VALUE {
        warn_once("annotation value cut", || {
            format!("X-Ray: an annotation value of {} characters was cut to {MAX_ANNOTATION_VALUE} (X-Ray's limit), ending in …", s.chars().count())
        });
        let end = s
            .char_indices()
            .nth(MAX_ANNOTATION_VALUE - 1)
            .map_or(s.len(), |(i, _)| i);
        s.truncate(end);
        s.push('…');
    }
    s
}

/// `annotate!("literal_key", value)`: the key was checked at compile time.
pub fn annotate<V: AnnotationValue>(key: &'static str, value: V) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    span.set_attribute(format!("{ANNOTATION_PREFIX}{key}"), value.into_annotation());
}

/// `annotate!(key_expression, value)`: the key is checked now. A key X-Ray would not index is
/// rewritten (other characters become `_`, cut to 500) and recorded, with one warning per key.
pub fn annotate_dynamic<K: AsRef<str>, V: AnnotationValue>(key: K, value: V) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    let key = key.as_ref();
    let key = match annotation_key(key) {
        Ok(key) => Cow::Borrowed(key),
        Err(fixed) => {
            warn_rewritten(key, &fixed);
            Cow::Owned(fixed)
        }
    };
    span.set_attribute(format!("{ANNOTATION_PREFIX}{key}"), value.into_annotation());
}

fn warn_rewritten(key: &str, fixed: &str) {
    warn_once(&format!("annotation key {key}"), || {
        let shown: String = key.chars().take(80).collect();
        format!("X-Ray: annotation key {shown:?} has characters X-Ray does not index (only A-Z a-z 0-9 _, 1-500 of them); recorded as {fixed:?}")
    });
}

/// `metadata!(key, value)`: any serializable value, recorded unindexed under the `default`
/// namespace.
pub fn metadata<K: AsRef<str>, V: serde::Serialize + ?Sized>(key: K, value: &V) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    // Only a span that reaches the buffer takes its extras back from it.
    let cx = span.context();
    let span_context = cx.span().span_context().clone();
    if !state::reaches_buffer(&span_context) {
        return;
    }
    let value = serde_json::to_value(value).unwrap_or_else(|err| {
        tracing::warn!(target: "xray_lambda", "X-Ray: metadata {:?} could not be serialized: {err}", key.as_ref());
        Json::String(format!("<not serializable: {err}>"))
    });
    state::attach(
        span_context.span_id(),
        Extra {
            metadata: vec![(key.as_ref().to_owned(), value)],
            ..Extra::default()
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(7u8.into_annotation(), Value::I64(7));
        assert_eq!(
            u64::MAX.into_annotation(),
            Value::F64(18_446_744_073_709_551_615.0)
        );
        assert_eq!((&3i32).into_annotation(), Value::I64(3));
        let long = "é".repeat(1500).into_annotation().to_string();
        assert_eq!(long.chars().count(), 1000);
        assert!(long.ends_with('…'));
    }
}
