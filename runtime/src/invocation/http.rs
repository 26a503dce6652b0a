//! An invocation of a `lambda_http` handler: the handler subsegment gets X-Ray's `http`
//! object, the route, method and status as annotations (only annotations are searchable), and
//! the flags the status sets; the request's `x-amzn-trace-id` names the handler subsegment.

use lambda_http::{IntoResponse, Request, RequestExt as _};

use super::Invocation;
use crate::exception::Exception;
use crate::http_function::{self, response::Responded, response::ResponseFacts};
use crate::propagation::{self, TRACE_HEADER_NAME};
use crate::w3c::TRACEPARENT_NAME;

impl Invocation {
    /// [`Invocation::start`] for a `lambda_http` handler: the Lambda context comes from the
    /// request (never from the environment, which under `run_concurrent` belongs to no
    /// invocation in particular), and the request's `x-amzn-trace-id` is set to the handler
    /// subsegment's header, so that code forwarding it links its calls under the handler.
    #[must_use]
    pub fn start_http(name: &'static str, request: &mut Request) -> Self {
        let (mut invocation, link, caller_named) = Self::start_with_caller(name, request);
        let Some(active) = invocation.active_mut() else {
            // Not recorded: `lambda_http` already put the invocation's header, as received.
            return invocation;
        };
        if let Some(link) = link {
            use tracing_opentelemetry::OpenTelemetrySpanExt as _;
            active.span.add_link(link);
        }
        let http = http_function::describe(request);
        // The `http` object and its annotations reach the buffer as an extra, at `close`.
        let extra = active.extra();
        extra.http = Some(http);
        if let Some(handler) = &mut extra.handler {
            handler.trigger = Some("http");
        }
        if let Some(value) = propagation::downstream_value(&active.cx) {
            request.headers_mut().insert(TRACE_HEADER_NAME, value);
        }
        // The caller's `traceparent`, where it sent one, names the handler too. Not added
        // where there is none: a header the map has no room for regrows it (+5k instructions an
        // invocation), for code that forwards a request's headers, which is rare.
        if let Some(caller) = caller_named
            .then(|| request.headers_mut().get_mut(TRACEPARENT_NAME))
            .flatten()
        {
            if let Some(value) = propagation::traceparent(&active.cx)
                .and_then(|t| http::HeaderValue::try_from(t).ok())
            {
                *caller = value;
            }
        }
        invocation
    }

    /// Starts the invocation under Lambda's segment, or under a W3C caller's span where the
    /// chosen propagators make it the parent; the other one, to link; and whether the request
    /// has a `traceparent` (looked up once: each lookup hashes the name).
    fn start_with_caller(
        name: &'static str,
        request: &Request,
    ) -> (Self, Option<opentelemetry::trace::SpanContext>, bool) {
        let named = propagation::reads_tracecontext()
            .then(|| request.headers().get(TRACEPARENT_NAME))
            .flatten();
        let caller = named.and_then(propagation::incoming_traceparent);
        let baggage = propagation::incoming_baggage(request.headers());
        let baggage = baggage.as_deref();
        let default_context;
        let context = match request.lambda_context_ref() {
            Some(context) => context,
            // Called without `lambda_http` (a unit test): the environment's header, if any.
            // Made only then: a default context allocates.
            None => {
                default_context = lambda_runtime::Context::default();
                &default_context
            }
        };
        match caller {
            // ADOT's list (`tracecontext` without `xray-lambda`), on an OpenTelemetry path:
            // the caller is the parent, Lambda's segment the link.
            Some(caller) if crate::propagators::propagators().w3c_parent => {
                let sampling = crate::header::Sampling::of(caller.is_sampled());
                let header =
                    crate::header::write_header(caller.trace_id(), caller.span_id(), sampling, "");
                let lambda = context
                    .xray_trace_id
                    .as_deref()
                    .and_then(|h| crate::header::TraceHeader::try_parse(h).ok())
                    .map(|h| h.span_context(true));
                let caller = super::Caller {
                    header: Some(&header),
                    baggage,
                };
                (Self::start_traced(name, context, caller), lambda, true)
            }
            // Else Lambda's segment stays the parent, as `xray-lambda` says, and a W3C
            // caller's span (an OpenTelemetry-instrumented client) becomes a link.
            caller => {
                let invocation = if baggage.is_some() {
                    Self::start_traced(
                        name,
                        context,
                        super::Caller {
                            header: None,
                            baggage,
                        },
                    )
                } else {
                    Self::start(name, context)
                };
                (invocation, caller, named.is_some())
            }
        }
    }

    /// Converts a handler's `impl IntoResponse` as `lambda_http` would, and records the
    /// response's status and length; the response goes on to `lambda_http` unchanged.
    pub async fn respond<R: IntoResponse, E>(
        &mut self,
        output: Result<R, E>,
    ) -> Result<Responded, E> {
        let response = output?;
        let (responded, facts) = http_function::response::respond(response).await;
        self.record_response(facts);
        Ok(responded)
    }

    /// Records the response's status (an annotation too) and length. 4xx marks the handler
    /// subsegment an error, 429 a throttle too, 5xx a fault. What `#[xray_handler]` calls on a
    /// named response type; by hand, [`Invocation::respond`] converts and records in one step.
    pub(crate) fn record_response(&mut self, facts: ResponseFacts) {
        let Some(active) = self.active_mut() else {
            return;
        };
        if let Some(status) = facts.status {
            if let Some(exception) = Exception::from_http_status(status) {
                exception.record_on(&active.span);
            }
        }
        if let Some(http) = active.extra.as_mut().and_then(|extra| extra.http.as_mut()) {
            http.status = facts.status;
            http.content_length = facts.content_length;
        }
    }
}
