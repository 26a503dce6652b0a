//! An error as X-Ray's `cause` shows it, and the one walk of an error's `source()` chain.

use std::any::Any;
use std::borrow::Cow;

use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::KeyValue;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::vocabulary::{exception_attributes, EXCEPTION_EVENT};

/// The most `source()` entries read from one error: a cyclic chain must not hang the function.
const MAX_SOURCES: usize = 16;

/// The errors under `error`, outermost first, at most [`MAX_SOURCES`] of them.
pub(crate) fn sources<E: std::error::Error + ?Sized>(
    error: &E,
) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(error.source(), |e| e.source()).take(MAX_SOURCES)
}

/// An error as X-Ray's `cause` shows it: type, message, and the messages of its `source()`
/// chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    kind: Cow<'static, str>,
    message: String,
    sources: Vec<String>,
    /// The type of each entry of `sources`, as far as a `dyn Error` tells it.
    source_kinds: Vec<Cow<'static, str>>,
}

impl Exception {
    /// An exception with this type name and message.
    #[must_use]
    pub fn new(kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Exception {
            kind: kind.into(),
            message: message.into(),
            sources: Vec::new(),
            source_kinds: Vec::new(),
        }
    }

    /// From an error and its `source()` chain; the type is `E`'s name.
    #[must_use]
    pub fn from_error<E: std::error::Error + ?Sized>(error: &E) -> Self {
        let (sources, source_kinds) = sources(error)
            .map(|source| (source.to_string(), dyn_type_name(source)))
            .unzip();
        Exception {
            kind: Cow::Borrowed(short_type_name(std::any::type_name::<E>())),
            message: error.to_string(),
            sources,
            source_kinds,
        }
    }

    /// From a value that is only `Debug`.
    #[must_use]
    pub fn from_debug<E: std::fmt::Debug + ?Sized>(error: &E) -> Self {
        Exception::new(
            short_type_name(std::any::type_name::<E>()),
            format!("{error:?}"),
        )
    }

    /// From a panic's payload.
    #[must_use]
    pub fn from_panic(payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a payload that is not a string".to_owned());
        Exception::new("panic", message)
    }

    /// The type name.
    #[must_use]
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The messages of the `source()` chain, outermost first.
    #[must_use]
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The type names of the `source()` chain, outermost first: what a `dyn Error` tells
    /// (well-known types by downcasting, others by the name their `Debug` output starts with),
    /// else `"Error"`.
    #[cfg(test)]
    fn source_kinds(&self) -> &[Cow<'static, str>] {
        &self.source_kinds
    }

    /// What an HTTP status of 400 or more says, as the cause of the flags that the status
    /// sets (4xx `error`, 429 `throttle` too, 5xx `fault`): type `HTTP 404`, message
    /// `Not Found`. `None` below 400.
    #[cfg(any(feature = "tower", feature = "reqwest", feature = "lambda-http"))]
    pub(crate) fn from_http_status(code: u16) -> Option<Self> {
        (code >= 400).then(|| {
            let reason = http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error");
            Exception::new(format!("HTTP {code}"), reason)
        })
    }

    /// Marks `span` as failed with this exception as its cause: the one place that pairs an
    /// error status with its exception events (an unpaired status would show a fault with no
    /// cause, an unpaired event a cause with no fault).
    pub(crate) fn record_on(self, mut span: impl FailingSpan) {
        span.fail(Status::error(self.message.clone()));
        span.add_exception(exception_attributes(self.kind, self.message));
        let mut kinds = self.source_kinds.into_iter();
        for source in self.sources {
            let kind = kinds.next().unwrap_or(Cow::Borrowed("Error"));
            span.add_exception(exception_attributes(kind, source));
        }
    }
}

/// A span an exception can be recorded on, only through [`Exception::record_on`]: a `tracing`
/// span, the context of a call's span (`state::call_span`), an OpenTelemetry span being
/// built ([`OtelSpan`]), or a finished span still held by the buffer.
pub(crate) trait FailingSpan {
    fn fail(&mut self, status: Status);
    fn add_exception(&mut self, attributes: Vec<KeyValue>);
}

impl FailingSpan for &tracing::Span {
    fn fail(&mut self, status: Status) {
        self.set_status(status);
    }

    fn add_exception(&mut self, attributes: Vec<KeyValue>) {
        self.add_event(EXCEPTION_EVENT, attributes);
    }
}

impl FailingSpan for &opentelemetry::Context {
    fn fail(&mut self, status: Status) {
        self.span().set_status(status);
    }

    fn add_exception(&mut self, attributes: Vec<KeyValue>) {
        self.span().add_event(EXCEPTION_EVENT, attributes);
    }
}

/// An OpenTelemetry span of this process, before it ends (an AWS call's phases).
#[cfg(feature = "aws-sdk")]
pub(crate) struct OtelSpan<'a, S>(pub(crate) &'a mut S);

#[cfg(feature = "aws-sdk")]
impl<S: opentelemetry::trace::Span> FailingSpan for OtelSpan<'_, S> {
    fn fail(&mut self, status: Status) {
        self.0.set_status(status);
    }

    fn add_exception(&mut self, attributes: Vec<KeyValue>) {
        self.0.add_event(EXCEPTION_EVENT, attributes);
    }
}

/// A finished span, failed after the fact (a batch record the handler reports as failed):
/// its events are stamped with its end.
impl FailingSpan for &mut opentelemetry_sdk::trace::SpanData {
    fn fail(&mut self, status: Status) {
        self.status = status;
    }

    fn add_exception(&mut self, attributes: Vec<KeyValue>) {
        let event = opentelemetry::trace::Event::new(EXCEPTION_EVENT, self.end_time, attributes, 0);
        self.events.events.push(event);
    }
}

/// `alloc::boxed::Box<dyn core::error::Error + Send + Sync>` → `Box<dyn Error + Send + Sync>`,
/// `my_crate::errors::MyError` → `MyError`.
fn short_type_name(full: &'static str) -> &'static str {
    if full.contains('<') {
        return full;
    }
    full.rsplit("::").next().unwrap_or(full)
}

/// The type of an error known only as `dyn Error`: the standard library's and `serde_json`'s
/// errors by downcasting; others by their `Debug` output's leading name (`DbError { .. }` →
/// `DbError`, an enum's variant for enums); else `"Error"`.
fn dyn_type_name(error: &(dyn std::error::Error + 'static)) -> Cow<'static, str> {
    macro_rules! known {
        ($($t:ty => $name:literal),* $(,)?) => {
            $(if error.is::<$t>() {
                return Cow::Borrowed($name);
            })*
        };
    }
    known!(
        std::io::Error => "std::io::Error",
        std::fmt::Error => "std::fmt::Error",
        std::num::ParseIntError => "ParseIntError",
        std::num::ParseFloatError => "ParseFloatError",
        std::str::Utf8Error => "Utf8Error",
        std::string::FromUtf8Error => "FromUtf8Error",
        serde_json::Error => "serde_json::Error",
    );
    let debug = format!("{error:?}");
    debug_type_name(&debug).map_or(Cow::Borrowed("Error"), |name| Cow::Owned(name.to_owned()))
}

/// `TableMissing(Custom { .. })` → `TableMissing`; `"text"` → `None`.
fn debug_type_name(debug: &str) -> Option<&str> {
    let end = debug
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    let name = &debug[..end];
    name.starts_with(|c: char| c.is_uppercase()).then_some(name)
}

/// Autoref specialisation for the expansion of `#[xray_handler]`: the best description of an
/// error of any type. Not public API.
#[doc(hidden)]
pub(crate) mod describe {
    use super::Exception;
    use std::borrow::Cow;
    use std::fmt::Debug;
    use std::ops::Deref;

    /// Wraps the error so that the three impls below sit at three autoref depths.
    #[derive(Debug)]
    pub struct Probe<'a, E: ?Sized>(pub &'a E);

    /// `E: Error`: type, message and source chain.
    pub trait ViaError {
        fn xray_exception(&self) -> Exception;
    }
    impl<E: std::error::Error + ?Sized> ViaError for &&Probe<'_, E> {
        fn xray_exception(&self) -> Exception {
            Exception::from_error(self.0)
        }
    }

    /// `E: Deref<Target: Error>` (`Box<dyn Error + Send + Sync>`, `anyhow::Error`).
    pub trait ViaDeref {
        fn xray_exception(&self) -> Exception;
    }
    impl<E> ViaDeref for &Probe<'_, E>
    where
        E: Deref + ?Sized,
        E::Target: std::error::Error + Debug,
    {
        fn xray_exception(&self) -> Exception {
            let inner: &E::Target = self.0;
            let mut exception = Exception::from_error(inner);
            // The static type is the box; the concrete type's name usually leads its `Debug`.
            exception.kind = super::debug_type_name(&format!("{inner:?}"))
                .map_or(Cow::Borrowed("Error"), |name| Cow::Owned(name.to_owned()));
            exception
        }
    }

    /// Anything `Debug` (what `lambda_runtime` requires of a handler's error).
    pub trait ViaDebug {
        fn xray_exception(&self) -> Exception;
    }
    impl<E: Debug + ?Sized> ViaDebug for Probe<'_, E> {
        fn xray_exception(&self) -> Exception {
            Exception::from_debug(self.0)
        }
    }
}

#[cfg(test)]
// The borrows are the autoref specialisation under test.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::describe::{Probe, ViaDebug as _, ViaDeref as _, ViaError as _};
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("could not load the table")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[derive(Debug)]
    struct OnlyDebug(#[allow(dead_code)] u8);

    #[test]
    fn autoref_picks_the_richest_description() {
        let typed = Outer(std::io::Error::other("disk on fire"));
        let e = (&&&Probe(&typed)).xray_exception();
        assert_eq!(e.kind(), "Outer");
        assert_eq!(e.message(), "could not load the table");
        assert_eq!(e.sources(), ["disk on fire"]);

        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(typed);
        let e = (&&&Probe(&boxed)).xray_exception();
        assert_eq!(e.kind(), "Outer");
        assert_eq!(e.message(), "could not load the table");
        assert_eq!(e.sources(), ["disk on fire"]);

        let e = (&&&Probe(&OnlyDebug(7))).xray_exception();
        assert_eq!(e.kind(), "OnlyDebug");
        assert_eq!(e.message(), "OnlyDebug(7)");
    }

    #[derive(Debug)]
    enum Failure {
        Store(Outer),
    }
    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the order was not stored")
        }
    }
    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            let Failure::Store(outer) = self;
            Some(outer)
        }
    }

    #[test]
    fn every_entry_of_the_chain_has_its_type() {
        let e = Exception::from_error(&Failure::Store(Outer(std::io::Error::other(
            "disk on fire",
        ))));
        assert_eq!(e.kind(), "Failure");
        assert_eq!(e.sources(), ["could not load the table", "disk on fire"]);
        assert_eq!(e.source_kinds(), ["Outer", "std::io::Error"]);
        // Without a leading name in its `Debug`, a source is an "Error".
        let boxed: Box<dyn std::error::Error + Send + Sync> = "no such table".into();
        assert_eq!(super::dyn_type_name(&*boxed), "Error");
    }

    #[test]
    fn boxed_strings_are_plain_errors() {
        let boxed: Box<dyn std::error::Error + Send + Sync> = "no such table".into();
        let e = (&&&Probe(&boxed)).xray_exception();
        assert_eq!((e.kind(), e.message()), ("Error", "no such table"));
    }

    #[test]
    fn panic_payloads() {
        assert_eq!(Exception::from_panic(&"boom").message(), "boom");
        assert_eq!(
            Exception::from_panic(&String::from("boom")).message(),
            "boom"
        );
        assert_eq!(Exception::from_panic(&5u8).kind(), "panic");
    }
}
