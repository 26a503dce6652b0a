//! AWS SDK calls as remote `aws` subsegments, from an SDK interceptor.
//!
//! Register [`XrayInterceptor`] once per client; every call the client makes inside a traced
//! invocation becomes a subsegment named after the service (`DynamoDB`), in the `aws`
//! namespace, with what the official X-Ray SDKs record: operation, region, request id, HTTP
//! status, retries, the table, and the operation's whitelisted parameters — never keys, items,
//! attribute values, expressions or bodies. For SQS, SNS, S3 and Lambda it adds the queue URL,
//! topic ARN, bucket name or function name, and the parameters the X-Ray SDKs whitelist for
//! those services (see `fields`).
//!
//! ```no_run
//! # async fn example() {
//! let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config)
//!     .interceptor(xray_lambda::aws::XrayInterceptor::new())
//!     .build();
//! let client = aws_sdk_dynamodb::Client::from_conf(config);
//! # }
//! ```

pub(crate) mod call;
#[cfg(feature = "dynamodb")]
mod dynamodb;
mod fields;
#[cfg(feature = "dynamodb")]
mod partiql;
mod phases;
mod resources;

use aws_smithy_runtime_api::box_error::BoxError;
use std::time::SystemTime;

use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[cfg(feature = "dynamodb")]
use partiql::table_of_statement;

use crate::exception::sources;
use crate::propagation::{self, TRACE_HEADER};
use call::{Call, CallEnd, Recorded};
use phases::Phase;

/// Whether a failed call or attempt is throttled beyond what its HTTP status says: the one
/// throttle rule. Record facts mark a 429 `throttle` (and `error`) from the status; a
/// throttling error code comes with a 400 (or no response), and only the code tells.
pub(crate) fn throttled_by_code(code: &str, status: Option<u16>) -> bool {
    status != Some(429) && THROTTLING_CODES.contains(&code)
}

/// Error codes that mean "slow down", whatever the HTTP status.
const THROTTLING_CODES: [&str; 6] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
];

/// The SDK interceptor that turns each call into an `aws` subsegment. Cheap to clone; one
/// per client.
#[derive(Debug, Clone, Default)]
pub struct XrayInterceptor {
    _private: (),
}

impl XrayInterceptor {
    /// A new interceptor.
    #[must_use]
    pub fn new() -> Self {
        XrayInterceptor::default()
    }
}

impl Intercept for XrayInterceptor {
    fn name(&self) -> &'static str {
        "XrayInterceptor"
    }

    // Not `read_before_execution`: the operation's config (its `Metadata`, the region) is
    // only in the bag from here on.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Outside a traced invocation (or in an unsampled one, or with tracing off) there is
        // nothing to hang the call under: no work at all.
        if !Call::wanted() {
            return Ok(());
        }
        let (service, operation) = cfg.load::<Metadata>().map_or_else(
            || ("AWS".to_owned(), "Unknown".to_owned()),
            |m| (m.service().to_owned(), m.name().to_owned()),
        );
        let region = cfg
            .load::<aws_types::region::Region>()
            .map(ToString::to_string);
        let recorded = request_params(&service, &operation, context);
        if let Some(call) = Call::begin(&service, &operation, region.as_deref(), recorded) {
            cfg.interceptor_state().store_put(call);
        }
        Ok(())
    }

    // SQS, SNS, S3 and Lambda name their resource in the request itself: read it from there
    // (before the first attempt is sent), so no service crate is needed.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(call) = cfg.load::<Call>() else {
            return Ok(());
        };
        if call.service.as_str() == "DynamoDB" || call.resource_read {
            return Ok(());
        }
        let request = context.request();
        let (uri, body) = (request.uri(), request.body().bytes());
        let resource = resources::from_request(call.service.as_str(), uri, body);
        let mut call = call.clone();
        call.resource_read = true;
        if resource.is_some() {
            call.aws.resource = resource;
        }
        let header = |name: &str| request.headers().get(name).map(str::to_owned);
        fields::from_request(
            call.service.as_str(),
            call.operation.as_str(),
            uri,
            header,
            body,
            &mut call.aws,
        );
        cfg.interceptor_state().store_put(call);
        Ok(())
    }

    fn read_after_serialization(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(call) = cfg.get_mut_from_interceptor_state::<Call>() {
            call.end_phase("marshal");
        }
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(call) = cfg.get_mut_from_interceptor_state::<Call>() {
            call.phases.push(Phase::begin("attempt"));
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(call) = cfg.get_mut_from_interceptor_state::<Call>() {
            if phases::all_phases() {
                // The last attempt's response is the one the caller gets.
                call.phases.retain(|p| p.name != "unmarshal");
                call.phases.push(Phase::begin("unmarshal"));
            }
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        _context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(call) = cfg.get_mut_from_interceptor_state::<Call>() {
            call.end_phase("unmarshal");
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(call) = cfg.get_mut_from_interceptor_state::<Call>() else {
            return Ok(());
        };
        let status = context.response().map(|r| r.status().as_u16());
        let error = match context.output_or_error() {
            Some(Err(error)) => Some(classify(
                call.service.as_str(),
                call.operation.as_str(),
                error,
            )),
            _ => None,
        };
        if let Some(attempt) = call
            .phases
            .iter_mut()
            .rev()
            .find(|p| p.name == "attempt" && p.end.is_none())
        {
            attempt.end = Some(SystemTime::now());
            attempt.status = status;
            attempt.throttle = error
                .as_ref()
                .is_some_and(|(code, _)| throttled_by_code(code, status));
            attempt.error = error;
        }
        Ok(())
    }

    // Every attempt, after signing (SigV4 leaves this header out of the signature) and after
    // the SDK's recursion-detection interceptor, which copies the process-wide
    // `_X_AMZN_TRACE_ID` in `modify_before_signing`: ours wins. Outside an invocation the
    // request is left as it is.
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A call in an invocation that records nothing may still have a span (not sampled):
        // then the invocation's header as it came.
        let call = cfg.load::<Call>();
        let header = call
            .and_then(|call| call.header.clone())
            .or_else(propagation::as_received)
            .filter(|_| propagation::sends_xray());
        let headers = context.request_mut().headers_mut();
        if let Some(header) = header {
            // A header that is not a valid HTTP header value (only from a malformed
            // `_X_AMZN_TRACE_ID`) is left out rather than fail the call.
            let _ = headers.try_insert(TRACE_HEADER, header);
        }
        let traceparent = call
            .and_then(|call| call.traceparent.clone())
            .or_else(propagation::traceparent_as_received);
        if let Some(traceparent) = traceparent {
            let _ = headers.try_insert(crate::w3c::TRACEPARENT, traceparent);
        }
        if let Some(baggage) = call.and_then(|call| call.baggage.clone()) {
            let _ = headers.try_insert(propagation::BAGGAGE, baggage);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(mut call) = cfg.load::<Call>().cloned() else {
            return Ok(());
        };
        // The span closes when its last handle drops: the bag's copy goes now, so the call's
        // end time is the end of the call.
        cfg.interceptor_state().unset::<Call>();
        let (mut status, mut request_id) = (None, None);
        if let Some(response) = context.response() {
            let headers = response.headers();
            let header = |name: &str| headers.get(name).map(str::to_owned);
            let code = response.status().as_u16();
            status = Some(code);
            request_id = header("x-amzn-requestid").or_else(|| header("x-amz-request-id"));
            call.content_length = headers
                .get("content-length")
                .and_then(|length| length.trim().parse().ok());
            let body = response.body().bytes();
            fields::from_response(
                call.service.as_str(),
                call.operation.as_str(),
                code,
                header,
                body,
                &mut call.aws,
            );
        }
        let attempts = cfg
            .load::<RequestAttempts>()
            .map_or(1, RequestAttempts::attempts);
        let end = match context.output_or_error() {
            Some(Ok(output)) => {
                #[cfg(feature = "dynamodb")]
                if call.service.as_str() == "DynamoDB" {
                    let operation = call.operation.clone();
                    dynamodb::response_params(operation.as_str(), output, call.aws_params());
                }
                let _ = output;
                CallEnd::Output
            }
            Some(Err(error)) => {
                let (code, message) =
                    classify(call.service.as_str(), call.operation.as_str(), error);
                CallEnd::Error(code, message)
            }
            None => CallEnd::Unknown,
        };
        call.end(status, request_id.as_deref(), attempts, end);
        Ok(())
    }
}

/// An orchestrator error's code and message: the service's, else the kind of failure.
fn classify(
    service: &str,
    operation: &str,
    error: &OrchestratorError<aws_smithy_runtime_api::client::interceptors::context::Error>,
) -> (String, String) {
    error
        .as_operation_error()
        .and_then(|e| error_metadata(service, operation, e))
        .or_else(|| unhandled_metadata(error))
        .unwrap_or_else(|| {
            let kind = if error.is_timeout_error() {
                "Timeout"
            } else if error.is_connector_error() {
                "ConnectorError"
            } else {
                "SdkError"
            };
            (kind.to_owned(), error_chain(error))
        })
}

/// The code and message of an error the service's model does not name (any service): the SDK
/// keeps them as an `ErrorMetadata` in the error's `source()` chain.
fn unhandled_metadata(error: &dyn std::error::Error) -> Option<(String, String)> {
    sources(error).find_map(|source| {
        let meta = source.downcast_ref::<aws_smithy_types::error::metadata::ErrorMetadata>()?;
        Some((
            meta.code()?.to_owned(),
            meta.message().unwrap_or_default().to_owned(),
        ))
    })
}

/// The error's message and those of its `source()` chain, joined by `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    for source in sources(error) {
        message.push_str(": ");
        message.push_str(&source.to_string());
    }
    message
}

fn request_params(
    service: &str,
    operation: &str,
    context: &BeforeSerializationInterceptorContextRef<'_>,
) -> Recorded {
    #[cfg(feature = "dynamodb")]
    if service == "DynamoDB" {
        return dynamodb::request_params(operation, context.input());
    }
    #[cfg(not(feature = "dynamodb"))]
    if let Some(hint) = missing_feature_hint(service) {
        tracing::info!(target: "xray_lambda", "{hint}");
    }
    let _ = (service, operation, context);
    Recorded::default()
}

/// The first DynamoDB call without the `dynamodb` feature (the one surface of that feature a
/// user touches): the line that names the feature; `None` after it, and for other services.
#[cfg(not(feature = "dynamodb"))]
fn missing_feature_hint(service: &str) -> Option<&'static str> {
    static HINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    (service == "DynamoDB" && !HINTED.swap(true, std::sync::atomic::Ordering::Relaxed)).then_some(
        "X-Ray: DynamoDB calls are recorded without their table and parameters; xray-lambda's `dynamodb` feature records them",
    )
}

#[cfg(all(test, not(feature = "dynamodb")))]
mod hint_tests {
    #[test]
    fn a_dynamodb_call_without_the_feature_names_it_once() {
        assert_eq!(super::missing_feature_hint("SQS"), None);
        let first = super::missing_feature_hint("DynamoDB").expect("the first call");
        assert!(first.contains("`dynamodb` feature"), "{first}");
        assert_eq!(super::missing_feature_hint("DynamoDB"), None, "once");
    }
}

/// The error code and message of a service error, where the operation's error type is known
/// (DynamoDB); `None` leaves it to the generic description of the SDK error.
fn error_metadata(
    service: &str,
    operation: &str,
    error: &aws_smithy_runtime_api::client::interceptors::context::Error,
) -> Option<(String, String)> {
    #[cfg(feature = "dynamodb")]
    if service == "DynamoDB" {
        return dynamodb::error_metadata(operation, error);
    }
    let _ = (service, operation, error);
    None
}
