//! One traced invocation: what `#[xray_handler]` expands to, callable by hand.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use lambda_runtime::Context;
use opentelemetry::trace::{
    SpanContext, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::KeyValue;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::export::Exporter;
use crate::header::TraceHeader;
use crate::init::{State, STATE};

/// Whether the next invocation is the first of this execution environment.
static FIRST_INVOCATION: AtomicBool = AtomicBool::new(true);
static WARNED_NO_INIT: AtomicBool = AtomicBool::new(false);

/// An invocation's handler subsegment, from the start of the handler to the hand-off of its
/// documents. Without the attribute:
///
/// ```no_run
/// use lambda_runtime::{Error, LambdaEvent};
/// use xray_lambda::Invocation;
///
/// async fn handler(event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
///     let mut invocation = Invocation::start("handler", &event.context);
///     let output: Result<serde_json::Value, Error> =
///         invocation.run(async move { Ok(event.payload) }).await;
///     if let Err(error) = &output {
///         invocation.record_error(xray_lambda::Exception::from_error(&**error));
///     }
///     invocation.finish().await;
///     output
/// }
/// ```
#[derive(Debug)]
pub struct Invocation {
    active: Option<Active>,
}

#[derive(Debug)]
struct Active {
    span: tracing::Span,
    trace_id: TraceId,
    exporter: &'static Arc<Exporter>,
}

impl Invocation {
    /// Opens the handler subsegment named `name` under the segment that Lambda wrote for this
    /// invocation (`context.xray_trace_id`, else `_X_AMZN_TRACE_ID`).
    ///
    /// Does nothing, cheaply, when tracing is off, the header says `Sampled=0`, or (in Lambda)
    /// there is no usable header.
    #[must_use]
    pub fn start(name: &'static str, context: &Context) -> Self {
        let state = STATE.get();
        crate::undelivered::mark_handler_reached();
        let first = FIRST_INVOCATION.swap(false, Ordering::Relaxed);
        if first {
            crate::init::log_pending_warnings();
        }
        let Some(State::On(pipeline)) = state else {
            if state.is_none() && !WARNED_NO_INIT.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "xray_lambda",
                    "X-Ray: xray_lambda::init() was not called; invocations are not traced"
                );
            }
            return Invocation { active: None };
        };
        let header = match context.xray_trace_id.as_deref() {
            Some(h) => parse_logged(h),
            // One-at-a-time runtimes also set the variable; read it only when the context has
            // nothing, since under `run_concurrent` it belongs to no invocation in particular.
            None => std::env::var("_X_AMZN_TRACE_ID")
                .ok()
                .and_then(|h| parse_logged(&h)),
        };
        let parent = match header {
            Some(header) if header.sampling().is_recorded() => Some(header),
            None if pipeline.trace_without_header => None,
            // `Sampled=0`, or no header where there is no segment to hang the invocation under.
            _ => return Invocation { active: None },
        };
        let span = tracing::info_span!(
            target: "xray_lambda::handler",
            "xray_handler",
            otel.name = name,
            annotation.ColdStart = first && pipeline.cold_start_reported,
            annotation.Service = pipeline.service.as_deref(),
        );
        if span.is_disabled() {
            return Invocation { active: None };
        }
        let trace_id = if let Some(header) = &parent {
            let remote = SpanContext::new(
                header.trace_id(),
                header.parent_id(),
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            );
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
            header.trace_id()
        } else {
            span.context().span().span_context().trace_id()
        };
        pipeline.exporter.begin(trace_id);
        Invocation {
            active: Some(Active {
                span,
                trace_id,
                exporter: &pipeline.exporter,
            }),
        }
    }

    /// Whether this invocation is recorded.
    #[must_use]
    pub fn is_recorded(&self) -> bool {
        self.active.is_some()
    }

    /// The handler span (disabled when the invocation is not recorded).
    #[must_use]
    pub fn span(&self) -> tracing::Span {
        self.active
            .as_ref()
            .map_or_else(tracing::Span::none, |a| a.span.clone())
    }

    /// Runs the handler's future inside the handler span. A panic is recorded as a fault,
    /// the documents are sent, and the panic carries on to `lambda_runtime`.
    pub fn run<'a, F: Future + 'a>(
        &'a mut self,
        future: F,
    ) -> impl Future<Output = F::Output> + 'a {
        // Boxed here, before any state machine holds it: the handler's future sits under
        // lambda_runtime's and tokio's layers, and with the AWS SDK's futures inside it the
        // nesting passes rustc's layout depth limit (128) in ordinary functions. One
        // allocation per invocation cuts the chain.
        let span = self.active.as_ref().map(|a| a.span.clone());
        let mut future = Box::pin(future);
        async move {
            let Some(span) = span else {
                return future.await;
            };
            let result = {
                std::future::poll_fn(|cx| {
                    let _guard = span.enter();
                    match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => Poll::Pending,
                        Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
                        Err(payload) => Poll::Ready(Err(payload)),
                    }
                })
                .await
            };
            drop(future);
            drop(span);
            match result {
                Ok(output) => output,
                Err(payload) => {
                    self.record_error(Exception::from_panic(&*payload));
                    self.finish().await;
                    std::panic::resume_unwind(payload)
                }
            }
        }
    }

    /// Marks the handler subsegment as a fault with `exception` as its cause.
    pub fn record_error(&self, exception: Exception) {
        if let Some(active) = &self.active {
            exception.record_on(&active.span);
        }
    }

    /// Closes the handler subsegment and sends the invocation's documents; with OTLP export,
    /// waits for the collector's answer (at most the flush timeout), so nothing is left
    /// in flight when Lambda freezes the process. Dropping an unfinished invocation sends
    /// too, so a cancelled handler still sends what it has.
    pub async fn finish(&mut self) {
        if let Some((trace_id, exporter)) = self.close() {
            exporter.finish(trace_id).await;
        }
    }

    /// [`Invocation::finish`] where nothing can wait: an OTLP export goes on as a task.
    pub(crate) fn finish_detached(&mut self) {
        if let Some((trace_id, exporter)) = self.close() {
            exporter.finish_detached(trace_id);
        }
    }

    /// Closes the handler span; what is left to send, once.
    fn close(&mut self) -> Option<(TraceId, &'static Arc<Exporter>)> {
        let Active {
            span,
            trace_id,
            exporter,
        } = self.active.take()?;
        // The span closes (and reaches the processor) when its last handle drops.
        drop(span);
        Some((trace_id, exporter))
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        self.finish_detached();
    }
}

fn parse_logged(header: &str) -> Option<TraceHeader> {
    match TraceHeader::try_parse(header) {
        Ok(header) => Some(header),
        Err(err) => {
            let shown: String = header.chars().take(200).collect();
            tracing::debug!(target: "xray_lambda", "X-Ray: ignoring trace header {shown:?}: {err}");
            None
        }
    }
}

/// An error as X-Ray's `cause` shows it: type, message, and the messages of its `source()`
/// chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    kind: Cow<'static, str>,
    message: String,
    sources: Vec<String>,
}

impl Exception {
    /// An exception with this type name and message.
    #[must_use]
    pub fn new(kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Exception {
            kind: kind.into(),
            message: message.into(),
            sources: Vec::new(),
        }
    }

    /// From an error and its `source()` chain; the type is `E`'s name.
    #[must_use]
    pub fn from_error<E: std::error::Error + ?Sized>(error: &E) -> Self {
        let mut sources = Vec::new();
        let mut next = error.source();
        // Bounded: a cyclic chain must not hang the function.
        while let Some(source) = next.filter(|_| sources.len() < 16) {
            sources.push(source.to_string());
            next = source.source();
        }
        Exception {
            kind: Cow::Borrowed(short_type_name(std::any::type_name::<E>())),
            message: error.to_string(),
            sources,
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

    pub(crate) fn record_on(self, span: &tracing::Span) {
        span.set_status(Status::error(self.message.clone()));
        span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", self.kind),
                KeyValue::new("exception.message", self.message),
            ],
        );
        for source in self.sources {
            span.add_event(
                "exception",
                vec![
                    KeyValue::new("exception.type", "caused by"),
                    KeyValue::new("exception.message", source),
                ],
            );
        }
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
