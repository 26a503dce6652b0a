//! One AWS call's subsegment, between its start and its end: what the interceptor records.
//! Public only through `__private` (the benchmarks drive it without the SDK).

use std::sync::Arc;
use std::time::SystemTime;

use aws_smithy_types::config_bag::{Storable, StoreReplace};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry::{KeyValue, StringValue};

use super::phases::{self, Phase};
use super::throttled_by_code;
use crate::exception::Exception;
use crate::propagation;
use crate::record::Extra;
use crate::record::{AwsMembers, Params};
use crate::state;
use crate::vocabulary::{AWS_REQUEST_ID, HTTP_STATUS};

/// One AWS call's subsegment, between its start and its end: what the interceptor records,
/// usable without the SDK (the benchmarks drive it directly). Not public API.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Call {
    /// The call's span (on the crate's tracer, not a `tracing` one: see `state::call_span`), in the
    /// context it was opened in.
    pub(super) cx: opentelemetry::Context,
    /// The span's ids (read once, when it opens).
    pub(super) span_context: SpanContext,
    /// The trace header every attempt of the call carries: this subsegment as `Parent`.
    pub(super) header: Option<String>,
    /// W3C's `traceparent` naming the same subsegment, where `tracecontext` is chosen.
    pub(super) traceparent: Option<String>,
    /// W3C's `baggage`, where the call's context has entries and `baggage` is chosen.
    pub(super) baggage: Option<String>,
    /// Shared with the span's `rpc.service` and `rpc.method` attributes, not copied.
    pub(super) service: StringValue,
    pub(super) operation: StringValue,
    /// The `aws` members beyond operation, region, request id and table.
    pub(super) aws: AwsMembers,
    /// Whether the request has been read for its resource (once per call, not per attempt).
    pub(super) resource_read: bool,
    /// Its phases so far: every attempt, and `marshal`/`unmarshal` when all are shown.
    pub(super) phases: Vec<Phase>,
    /// The final response's length (`http.response.content_length`, as the X-Ray SDKs record).
    pub(super) content_length: Option<u64>,
}

impl Storable for Call {
    type Storer = StoreReplace<Self>;
}

/// How an AWS call ended, as far as the subsegment cares.
#[doc(hidden)]
#[derive(Debug)]
pub enum CallEnd {
    /// The call returned its output.
    Output,
    /// The service, or the transport, reported an error: `code`, `message`.
    Error(String, String),
    /// The SDK reported neither (nothing to add).
    Unknown,
}

impl Call {
    /// Whether a call made now gets a subsegment: tracing is on, and the call is made in a
    /// recorded span. What the interceptor asks first, before it reads anything of the call.
    #[must_use]
    pub fn wanted() -> bool {
        // Tracing off: not even the current span is looked up.
        if state::pipeline().is_none() {
            return false;
        }
        let current = tracing::Span::current();
        !(current.is_none() || current.is_disabled())
    }

    /// Opens the call's subsegment under the current subsegment; `None` outside a traced
    /// invocation (`state::call_span` looks no further than the current span there).
    #[must_use]
    pub fn begin(
        service: &str,
        operation: &str,
        region: Option<&str>,
        recorded: Recorded,
    ) -> Option<Self> {
        let table_name = recorded.table_name;
        let mut shared = None;
        let cx = state::call_span(|| {
            let names = (
                StringValue::from(Arc::<str>::from(service)),
                StringValue::from(Arc::<str>::from(operation)),
            );
            // The call's extras reach the buffer at `Call::end`, which adds two attributes and
            // regrows this list: sized for eight up front, the HTTP function benchmark sent
            // glibc's allocator down its slow path (+8k instructions an invocation).
            let mut attributes = Vec::with_capacity(6);
            attributes.push(KeyValue::new("rpc.system", "aws-api"));
            attributes.push(KeyValue::new("rpc.service", names.0.clone()));
            attributes.push(KeyValue::new("rpc.method", names.1.clone()));
            if let Some(region) = region {
                attributes.push(KeyValue::new("aws.region", region.to_owned()));
            }
            if let Some(table) = table_name {
                attributes.push(KeyValue::new("aws.table.name", table));
            }
            shared = Some(names);
            (service.to_owned(), attributes)
        })?;
        let (service, operation) = shared?;
        let span_context = cx.span().span_context().clone();
        let header = propagation::downstream(&cx);
        let traceparent = propagation::traceparent(&cx);
        let baggage = propagation::baggage(&cx);
        // `table_names` not through `aws.dynamodb.table_names`: the translator would also copy
        // the first name into `table_name`, which misleads for a call on several tables.
        let aws = AwsMembers {
            table_names: recorded.table_names,
            params: recorded.params,
            ..AwsMembers::default()
        };
        Some(Call {
            cx,
            span_context,
            header,
            traceparent,
            baggage,
            service,
            operation,
            aws,
            resource_read: false,
            content_length: None,
            phases: if phases::all_phases() {
                vec![Phase::begin("marshal")]
            } else {
                Vec::new()
            },
        })
    }

    /// Ends the open phase named `name`, if any.
    pub(super) fn end_phase(&mut self, name: &str) {
        if let Some(phase) = self
            .phases
            .iter_mut()
            .rev()
            .find(|p| p.name == name && p.end.is_none())
        {
            phase.end = Some(SystemTime::now());
        }
    }

    /// The operation's response parameters go here before [`Call::end`].
    #[cfg(feature = "dynamodb")]
    pub(super) fn aws_params(&mut self) -> &mut Params {
        &mut self.aws.params
    }

    /// Closes the subsegment with the final status, request id, attempt count and outcome.
    pub fn end(self, status: Option<u16>, request_id: Option<&str>, attempts: u32, end: CallEnd) {
        let Call {
            cx,
            span_context,
            mut aws,
            phases,
            content_length,
            ..
        } = self;
        phases::emit(&span_context, &phases);
        let span = cx.span();
        // Together: each call locks the span.
        span.set_attributes(
            status
                .map(|status| KeyValue::new(HTTP_STATUS, i64::from(status)))
                .into_iter()
                .chain(request_id.map(|id| KeyValue::new(AWS_REQUEST_ID, id.to_owned()))),
        );
        aws.retries = Some(attempts.saturating_sub(1));
        let mut throttle = false;
        if let CallEnd::Error(code, message) = end {
            throttle = throttled_by_code(&code, status);
            Exception::new(code, message).record_on(&cx);
        }
        // Only a span that reaches the buffer takes its extras back from it.
        if state::reaches_buffer(&span_context) {
            state::attach(
                span_context.span_id(),
                Extra {
                    aws,
                    throttle,
                    content_length,
                    ..Extra::default()
                },
            );
        }
        // Ended here, whatever other copies of the call are still held: the end of the call.
        span.end();
    }
}

/// What an operation's table records: `table_name`, `table_names`, other parameters.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Recorded {
    /// `aws.table_name`.
    pub table_name: Option<String>,
    /// `aws.table_names`.
    pub table_names: Vec<String>,
    /// Other whitelisted parameters, `snake_case`.
    pub params: Params,
}
