//! The log layer: one line per event, text or flat JSON, with the invocation's fields.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt as _;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::format::{rfc3339, Fields};
use super::{LogContext, LogFormat, SharedLogContext, LOG_SPAN_TARGET};
use crate::header::format_trace_id;
use crate::json::push_str;

/// Writes each event as one line on stdout (or `W`), with the current invocation's request
/// id, X-Ray trace id and innermost subsegment id; `xray_lambda::init` installs it, and
/// `Builder::log_layer` gives it for a subscriber of your own.
pub(crate) struct LogLayer<W = fn() -> std::io::Stdout> {
    format: LogFormat,
    writer: W,
    function_name: Option<Arc<str>>,
    service: Option<Arc<str>>,
    /// The most verbose level the `log` crate's records are bridged at.
    log_crate_level: LevelFilter,
    /// The dispatcher this layer is part of, to ask the OpenTelemetry layer for a span's ids
    /// (`get_default` inside an event is the no-op dispatcher under a scoped subscriber).
    dispatch: OnceLock<WeakDispatch>,
}

impl<W> std::fmt::Debug for LogLayer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLayer")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl LogLayer {
    /// The layer; it turns itself on (and bridges the `log` crate, up to `log_crate_level`)
    /// only when a subscriber with it is installed.
    pub(crate) fn new(
        format: LogFormat,
        function_name: Option<&str>,
        service: Option<&str>,
        log_crate_level: LevelFilter,
    ) -> Self {
        LogLayer {
            format,
            // `Stdout::write_all` holds the lock for the whole line: lines of concurrent
            // invocations never interleave.
            writer: std::io::stdout,
            function_name: function_name.map(Arc::from),
            service: service.map(Arc::from),
            log_crate_level,
            dispatch: OnceLock::new(),
        }
    }
}

impl<W> LogLayer<W> {
    /// Put into a subscriber: invocations carry their log context from now on, and the `log`
    /// crate's records come through (both idempotent).
    fn turn_on(&self) {
        super::enable();
        super::bridge_log_crate(self.log_crate_level);
    }

    /// The same layer writing to `writer` (anything `tracing_subscriber::fmt` writes to).
    pub(crate) fn with_writer<W2>(self, writer: W2) -> LogLayer<W2>
    where
        W2: for<'w> MakeWriter<'w> + 'static,
    {
        LogLayer {
            format: self.format,
            writer,
            function_name: self.function_name,
            service: self.service,
            log_crate_level: self.log_crate_level,
            dispatch: self.dispatch,
        }
    }
}

thread_local! {
    /// The line being written and its fields, reused: their buffers grow once per thread.
    static LINE: RefCell<(String, String)> = const { RefCell::new((String::new(), String::new())) };
}

/// What a line says about where it was logged.
struct Place {
    invocation: Option<Arc<LogContext>>,
    /// The innermost recorded subsegment's id, when it is not the handler's.
    span_id: Option<opentelemetry::trace::SpanId>,
}

impl<S, W> Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
        self.turn_on();
    }

    // Also here: `Option<L>` and `Vec<L>` pass this on to the layers they hold, but not
    // `on_register_dispatch`.
    fn on_layer(&mut self, _subscriber: &mut S) {
        self.turn_on();
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let place = place(event, &ctx, self.dispatch.get());
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                return;
            };
            let (out, rest) = &mut *line;
            out.clear();
            rest.clear();
            let mut fields = Fields {
                json: self.format == LogFormat::Json,
                message: String::new(),
                rest,
            };
            event.record(&mut fields);
            let message = std::mem::take(&mut fields.message);
            match self.format {
                LogFormat::Json => self.json_line(out, metadata, &message, rest, &place),
                LogFormat::Text => text_line(out, metadata, &message, rest, &place),
            }
            out.push('\n');
            let mut writer = self.writer.make_writer_for(metadata);
            let _ = writer.write_all(out.as_bytes());
        });
    }
}

impl<W> LogLayer<W> {
    fn json_line(
        &self,
        out: &mut String,
        metadata: &tracing::Metadata<'_>,
        message: &str,
        rest: &str,
        place: &Place,
    ) {
        out.push_str(r#"{"timestamp":""#);
        rfc3339(out, SystemTime::now());
        out.push_str(r#"","level":""#);
        out.push_str(lambda_level(*metadata.level()));
        out.push_str(r#"","message":"#);
        push_str(out, message);
        if let Some(invocation) = &place.invocation {
            if !invocation.request_id.is_empty() {
                out.push_str(r#","requestId":"#);
                push_str(out, &invocation.request_id);
            }
            if let Some(root) = invocation.xray_trace_id {
                // X-Ray's form, then the 32 hex digits OpenTelemetry's log correlation writes.
                out.push_str(r#","xray_trace_id":""#);
                let _ = format_trace_id(root, out);
                let _ = write!(out, r#"","trace_id":"{root}""#);
            }
            if let Some(span_id) = place.span_id.or(invocation.span_id) {
                let _ = write!(out, r#","span_id":"{span_id}""#);
            }
            out.push_str(if invocation.cold_start {
                r#","cold_start":true"#
            } else {
                r#","cold_start":false"#
            });
        }
        if let Some(name) = &self.function_name {
            out.push_str(r#","function_name":"#);
            push_str(out, name);
        }
        if let Some(service) = &self.service {
            out.push_str(r#","service":"#);
            push_str(out, service);
        }
        out.push_str(r#","target":"#);
        push_str(out, metadata.target());
        out.push_str(rest);
        out.push('}');
    }
}

/// `INFO target: message key=value requestId=… xray_trace_id=…`.
fn text_line(
    out: &mut String,
    metadata: &tracing::Metadata<'_>,
    message: &str,
    rest: &str,
    place: &Place,
) {
    out.push_str(lambda_level(*metadata.level()));
    out.push(' ');
    out.push_str(metadata.target());
    out.push_str(": ");
    // One line, one CloudWatch event: a line break inside would split it, and only the last
    // part would carry the request id.
    push_one_line(out, message);
    push_one_line(out, rest);
    if let Some(invocation) = &place.invocation {
        if !invocation.request_id.is_empty() {
            out.push_str(" requestId=");
            out.push_str(&invocation.request_id);
        }
        if let Some(root) = invocation.xray_trace_id {
            out.push_str(" xray_trace_id=");
            let _ = format_trace_id(root, out);
        }
    }
}

/// `text` with line breaks written as `\\n` and `\\r`.
fn push_one_line(out: &mut String, text: &str) {
    if text.contains(['\n', '\r']) {
        out.push_str(&text.replace('\n', "\\n").replace('\r', "\\r"));
    } else {
        out.push_str(text);
    }
}

/// Lambda's level names.
fn lambda_level(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// The invocation an event belongs to (the nearest span up its scope with a [`LogContext`])
/// and the innermost recorded subsegment below the handler.
fn place<S>(event: &Event<'_>, ctx: &Context<'_, S>, dispatch: Option<&WeakDispatch>) -> Place
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let mut place = Place {
        invocation: None,
        span_id: None,
    };
    let Some(scope) = ctx.event_scope(event) else {
        return place;
    };
    // The spans between the event and its invocation, innermost first (usually none or few).
    let mut inner: Vec<tracing::span::Id> = Vec::new();
    for span in scope {
        if let Some(SharedLogContext(invocation)) = span.extensions().get::<SharedLogContext>() {
            place.invocation = Some(invocation.clone());
            break;
        }
        if !span.metadata().target().starts_with(LOG_SPAN_TARGET) {
            inner.push(span.id());
        }
    }
    // The innermost of them that is a recorded subsegment (asked only for lines of a traced
    // invocation, and without holding any span's extensions).
    let traced = place
        .invocation
        .as_ref()
        .is_some_and(|i| i.span_id.is_some());
    if traced && !inner.is_empty() {
        let ask = |dispatch: &Dispatch| {
            inner.iter().find_map(|id| {
                tracing_opentelemetry::get_otel_context(id, dispatch).and_then(|cx| {
                    let span = cx.span();
                    let context = span.span_context();
                    (context.is_valid() && context.is_sampled()).then(|| context.span_id())
                })
            })
        };
        place.span_id = match dispatch.and_then(WeakDispatch::upgrade) {
            Some(dispatch) => ask(&dispatch),
            None => tracing::dispatcher::get_default(ask),
        };
    }
    place
}
