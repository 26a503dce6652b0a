//! AWS SDK calls as remote `aws` subsegments, from an SDK interceptor.
//!
//! Register [`XrayInterceptor`] once per client; every call the client makes inside a traced
//! invocation becomes a subsegment named after the service (`DynamoDB`), in the `aws`
//! namespace, with what the official X-Ray SDKs record: operation, region, request id, HTTP
//! status, retries, the table, and the operation's whitelisted parameters — never keys, items,
//! attribute values, expressions or bodies.
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

#[cfg(feature = "dynamodb")]
mod dynamodb;
#[cfg(feature = "dynamodb")]
mod partiql;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use opentelemetry::trace::Status;
use opentelemetry::KeyValue;
use serde_json::{Map, Value as Json};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

#[cfg(feature = "dynamodb")]
use partiql::table_of_statement;

use crate::export::PATCH_ATTRIBUTE;

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

/// The call's span and what was learned at its start, kept in the call's config bag.
#[derive(Debug, Clone)]
struct Call {
    span: tracing::Span,
    service: String,
    operation: String,
    /// The `aws` fields beyond operation, region, request id and table (`snake_case`).
    aws: Map<String, Json>,
}

impl Storable for Call {
    type Storer = StoreReplace<Self>;
}

/// What an operation's table records: `table_name`, `table_names`, other parameters.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    pub(crate) table_name: Option<String>,
    pub(crate) table_names: Vec<String>,
    pub(crate) params: Map<String, Json>,
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
        // Outside a traced invocation (or in an unsampled one) there is nothing to hang the
        // call under: no work at all.
        let current = tracing::Span::current();
        if current.is_none() || current.is_disabled() {
            return Ok(());
        }
        let (service, operation) = cfg.load::<Metadata>().map_or_else(
            || ("AWS".to_owned(), "Unknown".to_owned()),
            |m| (m.service().to_owned(), m.name().to_owned()),
        );
        let span = tracing::info_span!(
            target: "xray_lambda::aws",
            "aws_call",
            otel.name = %service,
            otel.kind = "client",
        );
        if span.is_disabled() {
            return Ok(());
        }
        span.set_attribute("rpc.system", "aws-api");
        span.set_attribute("rpc.service", service.clone());
        span.set_attribute("rpc.method", operation.clone());
        if let Some(region) = cfg.load::<aws_types::region::Region>() {
            span.set_attribute("aws.region", region.to_string());
        }
        let recorded = request_params(&service, &operation, context);
        if let Some(table) = recorded.table_name {
            span.set_attribute("aws.table.name", table);
        }
        let mut aws = recorded.params;
        if !recorded.table_names.is_empty() {
            // Not through `aws.dynamodb.table_names`: the translator would also copy the first
            // name into `table_name`, which misleads for a call on several tables.
            aws.insert("table_names".into(), Json::from(recorded.table_names));
        }
        cfg.interceptor_state().store_put(Call {
            span,
            service,
            operation,
            aws,
        });
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(call) = cfg.load::<Call>().cloned() else {
            return Ok(());
        };
        let Call {
            span,
            service,
            operation,
            mut aws,
        } = call;
        let mut patch = Map::new();
        let status = context.response().map(|r| r.status().as_u16());
        if let Some(response) = context.response() {
            span.set_attribute(
                "http.response.status_code",
                i64::from(response.status().as_u16()),
            );
            let headers = response.headers();
            if let Some(id) = headers
                .get("x-amzn-requestid")
                .or_else(|| headers.get("x-amz-request-id"))
            {
                span.set_attribute("aws.request_id", id.to_owned());
            }
        }
        let attempts = cfg
            .load::<RequestAttempts>()
            .map_or(1, RequestAttempts::attempts);
        aws.insert("retries".into(), Json::from(attempts.saturating_sub(1)));
        match context.output_or_error() {
            Some(Ok(output)) => {
                #[cfg(feature = "dynamodb")]
                if service == "DynamoDB" {
                    dynamodb::response_params(&operation, output, &mut aws);
                }
                let _ = output;
            }
            Some(Err(error)) => {
                let (code, message) = error
                    .as_operation_error()
                    .and_then(|e| error_metadata(&service, &operation, e))
                    .unwrap_or_else(|| {
                        let kind = if error.is_timeout_error() {
                            "Timeout"
                        } else if error.is_connector_error() {
                            "ConnectorError"
                        } else {
                            "SdkError"
                        };
                        (kind.to_owned(), error_chain(error))
                    });
                if THROTTLING_CODES.contains(&code.as_str()) || status == Some(429) {
                    patch.insert("throttle".into(), Json::Bool(true));
                    patch.insert("error".into(), Json::Bool(true));
                }
                if status.is_none() {
                    // No response at all (timeout, connection refused): the call failed on
                    // our side of the wire.
                    patch.insert("fault".into(), Json::Bool(true));
                }
                span.set_status(Status::error(message.clone()));
                span.add_event(
                    "exception",
                    vec![
                        KeyValue::new("exception.type", code),
                        KeyValue::new("exception.message", message),
                    ],
                );
            }
            None => {}
        }
        patch.insert("aws".into(), Json::Object(aws));
        span.set_attribute(PATCH_ATTRIBUTE, Json::Object(patch).to_string());
        // The span closes when this last handle goes with the config bag; drop it now so the
        // call's end time is the end of the call.
        cfg.interceptor_state().unset::<Call>();
        drop(span);
        Ok(())
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut next = error.source();
    let mut depth = 0;
    while let Some(source) = next.filter(|_| depth < 8) {
        message.push_str(": ");
        message.push_str(&source.to_string());
        next = source.source();
        depth += 1;
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
    let _ = (service, operation, context);
    Recorded::default()
}

fn error_metadata(
    service: &str,
    operation: &str,
    error: &aws_smithy_runtime_api::client::interceptors::context::Error,
) -> Option<(String, String)> {
    #[cfg(feature = "dynamodb")]
    if service == "DynamoDB" {
        return dynamodb::error_metadata(operation, error);
    }
    let _ = (service, operation);
    Some(("SdkError".to_owned(), error.to_string()))
}
