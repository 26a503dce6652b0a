//! CloudWatch Application Signals: the attributes it computes a service's metrics from, as
//! AWS's OpenTelemetry distribution (ADOT) writes them for Lambda. Every span names the local
//! service and operation; a call (CLIENT or PRODUCER) names the remote service, its operation
//! and, where the record knows it, the resource.

use std::sync::Arc;

use opentelemetry::{KeyValue, StringValue, Value};

use crate::record::{Kind, Record};

/// The local side, the same for every span of the process.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AppSignals {
    /// `aws.local.service`: the resource's `service.name` (shared: a clone per span is a
    /// reference count).
    service: Value,
    /// `aws.local.operation`: `<function>/FunctionHandler`.
    operation: Value,
}

/// `aws.local.environment` (and a Lambda target's `aws.remote.environment`).
const ENVIRONMENT: &str = "lambda:default";

impl AppSignals {
    pub(crate) fn new(service: &str, function_name: &str) -> Self {
        let shared = |text: String| Value::String(StringValue::from(Arc::<str>::from(text)));
        AppSignals {
            service: shared(service.to_owned()),
            operation: shared(format!("{function_name}/FunctionHandler")),
        }
    }

    /// Appends the span's Application Signals attributes to `out`.
    pub(crate) fn attributes(&self, record: &Record, kind: Kind, out: &mut Vec<KeyValue>) {
        out.push(KeyValue::new("aws.local.service", self.service.clone()));
        out.push(KeyValue::new("aws.local.operation", self.operation.clone()));
        out.push(KeyValue::new("aws.local.environment", ENVIRONMENT));
        out.push(KeyValue::new(
            "aws.trace.flag.sampled",
            record.span.span_context.is_sampled(),
        ));
        // The kinds Application Signals computes metrics for: the invocation (a local root:
        // its parent is Lambda's segment) and the calls it makes.
        let span_kind = match kind {
            Kind::Server => Some("LOCAL_ROOT"),
            Kind::Client => Some("CLIENT"),
            Kind::Producer => Some("PRODUCER"),
            Kind::Consumer | Kind::Internal => None,
        };
        if let Some(span_kind) = span_kind {
            out.push(KeyValue::new("aws.span.kind", span_kind));
        }
        if matches!(kind, Kind::Client | Kind::Producer) {
            remote(record, out);
        }
    }
}

/// The remote side of a call: an AWS service as `AWS::<service>` with its operation and
/// resource; an HTTP call as its host and `METHOD /first-segment` (ADOT's rule: the first
/// path segment keeps the operation's cardinality low).
fn remote(record: &Record, out: &mut Vec<KeyValue>) {
    if let Some(service) = record.aws_service() {
        out.push(KeyValue::new(
            "aws.remote.service",
            format!("AWS::{}", cloudformation_service(service)),
        ));
        if let Some(operation) = record.aws_operation() {
            out.push(KeyValue::new("aws.remote.operation", operation.to_owned()));
        }
        if let Some(resource) = record.aws_resource() {
            out.push(KeyValue::new("aws.remote.resource.type", resource.kind));
            out.push(KeyValue::new(
                "aws.remote.resource.identifier",
                escaped(resource.name),
            ));
            out.push(KeyValue::new(
                "aws.remote.resource.cfn.primary.identifier",
                escaped(resource.primary_identifier),
            ));
        }
        if service == "Lambda" && record.aws_operation() == Some("Invoke") {
            out.push(KeyValue::new("aws.remote.environment", ENVIRONMENT));
        }
        return;
    }
    if let Some(http) = record.http().filter(|http| http.outgoing) {
        let (host, path) = host_and_path(&http.url);
        out.push(KeyValue::new("aws.remote.service", host.to_owned()));
        let first = path.split('/').find(|s| !s.is_empty()).unwrap_or_default();
        out.push(KeyValue::new(
            "aws.remote.operation",
            format!("{} /{first}", http.method),
        ));
    }
}

/// The service as CloudFormation's resource types name it (`AWS::<this>::...`).
fn cloudformation_service(service: &str) -> &str {
    match service {
        "SFN" => "StepFunctions",
        "Secrets Manager" => "SecretsManager",
        other => other,
    }
}

/// `scheme://host[:port]/path` → (`host`, `/path`).
fn host_and_path(url: &str) -> (&str, &str) {
    let (authority, path) = crate::url::split(url);
    (crate::url::host(authority), path)
}

/// An identifier with `|` and `^` escaped as `^|` and `^^`, as Application Signals reads it.
fn escaped(identifier: &str) -> String {
    identifier.replace('^', "^^").replace('|', "^|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::record;
    use crate::vocabulary::{AWS_API, AWS_TABLE_NAME, RPC_METHOD, RPC_SERVICE, RPC_SYSTEM};

    fn get(attributes: &[KeyValue], key: &str) -> Option<String> {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    }

    #[test]
    fn a_get_item_names_dynamodb_and_its_table() {
        let call = record(vec![
            KeyValue::new(RPC_SYSTEM, AWS_API),
            KeyValue::new(RPC_SERVICE, "DynamoDB"),
            KeyValue::new(RPC_METHOD, "GetItem"),
            KeyValue::new(AWS_TABLE_NAME, "greet|ings"),
        ]);
        let mut out = Vec::new();
        AppSignals::new("hello", "hello-fn").attributes(&call, Kind::Client, &mut out);
        assert_eq!(get(&out, "aws.local.service").as_deref(), Some("hello"));
        assert_eq!(
            get(&out, "aws.local.operation").as_deref(),
            Some("hello-fn/FunctionHandler")
        );
        assert_eq!(
            get(&out, "aws.local.environment").as_deref(),
            Some("lambda:default")
        );
        assert_eq!(
            get(&out, "aws.remote.service").as_deref(),
            Some("AWS::DynamoDB")
        );
        assert_eq!(
            get(&out, "aws.remote.operation").as_deref(),
            Some("GetItem")
        );
        assert_eq!(
            get(&out, "aws.remote.resource.type").as_deref(),
            Some("AWS::DynamoDB::Table")
        );
        assert_eq!(
            get(&out, "aws.remote.resource.identifier").as_deref(),
            Some("greet^|ings")
        );
        let mut internal = Vec::new();
        AppSignals::new("hello", "hello-fn").attributes(&call, Kind::Internal, &mut internal);
        assert_eq!(get(&internal, "aws.remote.service"), None);
    }

    #[test]
    fn hosts_and_paths() {
        assert_eq!(
            host_and_path("https://user@api.example.com:8443/v1/users/7"),
            ("api.example.com", "/v1/users/7")
        );
        assert_eq!(host_and_path("http://[::1]:80"), ("[::1]", "/"));
    }
}
