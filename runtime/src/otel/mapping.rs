//! How a record is put as an OpenTelemetry span, the way X-Ray reads one (the collector's
//! X-Ray exporter, and X-Ray's own OpenTelemetry endpoint): annotations listed in
//! `aws.xray.annotations`, metadata in `aws.xray.metadata.default`, the `aws` object's members
//! as `aws.*` attributes; the span kinds, Application Signals' attributes and the invocation's
//! conventions where the path asks for them; and the resource that names us and the function.

use opentelemetry::trace::SpanKind;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use serde_json::{Map, Value as Json};

use super::app_signals::AppSignals;
use super::conventions::RpcConventions;
use crate::environment::LambdaEnvironment;
use crate::record::{AwsMembers, Extra, HandlerFacts, Http, Kind, NamedResource, Record};
use crate::vocabulary::{ANNOTATION_PREFIX, AWS_TABLE_NAME, HTTP_STATUS};

/// The resource: `telemetry.sdk.*` (the collector's X-Ray exporter writes `aws.xray.sdk` from
/// it), the service, and the function as Lambda's OpenTelemetry conventions name it
/// (`cloud.*`, `faas.*`, `aws.log.group.names`).
pub(crate) fn resource_attributes(
    service: Option<&str>,
    environment: &LambdaEnvironment,
) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("telemetry.sdk.name", "xray-lambda"),
        KeyValue::new("telemetry.sdk.language", "rust"),
        KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("cloud.provider", "aws"),
        KeyValue::new("cloud.platform", "aws_lambda"),
    ];
    if let Some(service) = service {
        attributes.push(KeyValue::new("service.name", service.to_owned()));
    }
    if let Some(group) = &environment.log_group {
        // What the collector's X-Ray exporter writes as the segments' `cloudwatch_logs`.
        attributes.push(KeyValue::new(
            "aws.log.group.names",
            Value::Array(Array::String(vec![group.clone().into()])),
        ));
    }
    for (key, value) in [
        ("cloud.region", &environment.region),
        ("faas.name", &environment.function_name),
        ("faas.version", &environment.function_version),
        ("faas.instance", &environment.log_stream),
    ] {
        if let Some(value) = value {
            attributes.push(KeyValue::new(key, value.clone()));
        }
    }
    attributes
}

/// What a path renders beyond the collector's conventions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rendering {
    /// The kinds the record's facts give (a handler is a SERVER span, an SQS `SendMessage` a
    /// PRODUCER, a batch record a CONSUMER); else the span keeps the kind it was opened with
    /// (the collector's X-Ray exporter makes a SERVER span a segment of its own, where the
    /// handler is a subsegment of Lambda's).
    pub(crate) span_kinds: bool,
    /// Application Signals' attributes.
    pub(crate) app_signals: Option<AppSignals>,
    /// The RPC names of an AWS call (`OTEL_SEMCONV_STABILITY_OPT_IN`).
    pub(crate) rpc: RpcConventions,
}

/// A record as a span for `rendering`.
pub(crate) fn render(record: Record, rendering: &Rendering) -> SpanData {
    let kind = record.kind();
    let mut added = Vec::new();
    if let Some(app_signals) = &rendering.app_signals {
        app_signals.attributes(&record, kind, &mut added);
    }
    if let Some(handler) = record.extra.as_ref().and_then(|e| e.handler.as_ref()) {
        handler_attributes(handler, &mut added);
    }
    // The messaging conventions' names (1.44) of an SQS or SNS call, beside the `rpc.*` ones.
    if let Some(call) = record.messaging_call() {
        added.extend([
            KeyValue::new("messaging.system", call.system),
            KeyValue::new("messaging.operation.name", call.operation),
            KeyValue::new("messaging.operation.type", call.operation_type),
        ]);
        if let Some(destination) = call.destination {
            added.push(KeyValue::new(
                "messaging.destination.name",
                destination.to_owned(),
            ));
        }
    }
    let mut span = to_otlp(record);
    span.attributes.extend(added);
    rendering.rpc.apply(&mut span.attributes);
    if rendering.span_kinds {
        span.span_kind = match kind {
            Kind::Server => SpanKind::Server,
            Kind::Client => SpanKind::Client,
            Kind::Producer => SpanKind::Producer,
            Kind::Consumer => SpanKind::Consumer,
            Kind::Internal => SpanKind::Internal,
        };
    }
    span
}

/// The invocation's conventions on the handler's span (semantic conventions 1.44): `cloud.resource_id` (the invoked ARN
/// without an alias or version), `aws.lambda.invoked_arn` (with them), `cloud.account.id`,
/// `faas.invocation_id`, `faas.trigger`, `faas.coldstart`.
fn handler_attributes(handler: &HandlerFacts, out: &mut Vec<KeyValue>) {
    let parts: Vec<&str> = handler.invoked_arn.split(':').collect();
    if parts.len() >= 7 {
        out.push(KeyValue::new("cloud.resource_id", parts[..7].join(":")));
        out.push(KeyValue::new("cloud.account.id", parts[4].to_owned()));
        out.push(KeyValue::new(
            "aws.lambda.invoked_arn",
            handler.invoked_arn.clone(),
        ));
    }
    out.push(KeyValue::new("faas.coldstart", handler.cold_start));
    if !handler.request_id.is_empty() {
        out.push(KeyValue::new(
            "faas.invocation_id",
            handler.request_id.clone(),
        ));
    }
    if let Some(trigger) = handler.trigger {
        out.push(KeyValue::new("faas.trigger", trigger));
    }
}

/// Puts a record's X-Ray extras the way the collector's X-Ray exporter reads them.
pub(crate) fn to_otlp(record: Record) -> SpanData {
    let metadata: Map<String, Json> = record
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The annotations the record shows, as on the daemon path.
    let kept: Vec<KeyValue> = record
        .annotations()
        .map(|(name, value)| KeyValue::new(name.into_owned(), value.into_owned()))
        .collect();
    let service = record.aws_service().map(str::to_owned);
    let Record { mut span, extra } = record;
    let mut attributes = Vec::with_capacity(span.attributes.len() + 4);
    let annotations: Vec<StringValue> = kept
        .iter()
        .map(|kv| kv.key.as_str().to_owned().into())
        .collect();
    attributes.extend(kept);
    for kv in std::mem::take(&mut span.attributes) {
        let key = kv.key.as_str();
        if key.starts_with(ANNOTATION_PREFIX) {
            continue;
        }
        if key == AWS_TABLE_NAME && service.as_deref() == Some("DynamoDB") {
            // The semantic convention's name too, for backends other than X-Ray.
            attributes.push(KeyValue::new(
                "aws.dynamodb.table_names",
                Value::Array(Array::String(vec![kv.value.as_str().into_owned().into()])),
            ));
        }
        attributes.push(kv);
    }
    if let Some(extra) = extra {
        extra_attributes(*extra, service.as_deref(), &mut attributes);
    }
    if !annotations.is_empty() {
        attributes.push(KeyValue::new(
            "aws.xray.annotations",
            Value::Array(Array::String(annotations)),
        ));
    }
    if !metadata.is_empty() {
        attributes.push(KeyValue::new(
            "aws.xray.metadata.default",
            Json::Object(metadata).to_string(),
        ));
    }
    span.attributes = attributes;
    span
}

/// The typed extras but metadata as attributes: the `aws` members, the `http` object and a
/// throttling error code.
fn extra_attributes(extra: Extra, service: Option<&str>, attributes: &mut Vec<KeyValue>) {
    let AwsMembers {
        retries,
        resource,
        table_names,
        params,
    } = extra.aws;
    if let Some(resource) = resource {
        attributes.push(resource_attribute(resource));
    }
    if !table_names.is_empty() {
        attributes.push(KeyValue::new(
            "aws.dynamodb.table_names",
            Value::Array(Array::String(
                table_names.into_iter().map(StringValue::from).collect(),
            )),
        ));
    }
    for (name, value) in params {
        attributes.push(param_attribute(service, name, value));
    }
    if let Some(retries) = retries {
        attributes.push(KeyValue::new("aws.retries", i64::from(retries)));
    }
    if let Some(http) = extra.http {
        http_attributes(http, attributes);
    }
    if let Some(length) = extra.content_length {
        attributes.push(KeyValue::new(
            "http.response.header.content-length",
            i64::try_from(length).unwrap_or(i64::MAX),
        ));
    }
    if extra.throttle {
        // A throttling error code on a 400: the collector derives `throttle` from the status
        // code 429 alone; keep the fact as an attribute.
        attributes.push(KeyValue::new("aws.throttled", true));
    }
}

/// The resource a request names, under the name the collector reads (`aws.queue_url`) or
/// the conventions' name.
fn resource_attribute(resource: NamedResource) -> KeyValue {
    let key = match &resource {
        NamedResource::Queue(_) => "aws.queue_url",
        NamedResource::Bucket(_) => "aws.s3.bucket",
        NamedResource::Topic(_) => "aws.sns.topic.arn",
        NamedResource::Function(_) => "faas.invoked_name",
    };
    let (NamedResource::Queue(value)
    | NamedResource::Bucket(value)
    | NamedResource::Topic(value)
    | NamedResource::Function(value)) = resource;
    KeyValue::new(key, value)
}

/// One of an operation's parameters as an attribute: the semantic conventions' name where
/// they have one (DynamoDB's, messaging's, S3's), `aws.<parameter>` otherwise. The collector
/// writes what it does not read as metadata: the same fact, under the name the conventions
/// give it.
fn param_attribute(service: Option<&str>, name: &str, value: Json) -> KeyValue {
    let key = match (service, name) {
        (Some("SQS"), "message_id") => "messaging.message.id".to_owned(),
        (Some("SQS"), "message_count") => "messaging.batch.message_count".to_owned(),
        (Some("S3"), "id_2") => "aws.extended_request_id".to_owned(),
        // The X-Ray SDKs' names (the `aws` object) → the conventions' names.
        (Some("DynamoDB"), "projection_expression") => "aws.dynamodb.projection".to_owned(),
        (Some("DynamoDB"), "scan_index_forward") => "aws.dynamodb.scan_forward".to_owned(),
        (Some("DynamoDB"), "exclusive_start_table_name") => {
            "aws.dynamodb.exclusive_start_table".to_owned()
        }
        (Some("DynamoDB"), name) => format!("aws.dynamodb.{name}"),
        (_, name) => format!("aws.{name}"),
    };
    let value = match value {
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::F64(n.as_f64().unwrap_or_default()), Value::I64),
        Json::String(s) => Value::String(s.into()),
        Json::Array(items) if items.iter().all(Json::is_string) => Value::Array(Array::String(
            items
                .into_iter()
                .filter_map(|i| match i {
                    Json::String(s) => Some(s.into()),
                    _ => None,
                })
                .collect(),
        )),
        other => Value::String(other.to_string().into()),
    };
    KeyValue::new(key, value)
}

/// The `http` object as the OpenTelemetry HTTP conventions name it, which the collector's
/// `awsxray` exporter (`translator/http.go`) maps back: `http.request.method` → method,
/// `url.full` → url, `user_agent.original` → user agent, `client.address` → client IP, with
/// `x_forwarded_for: true` unless `network.peer.address` is set too (so it is, for a source
/// IP API Gateway saw), `http.response.status_code` → status. `http.route` has no place in
/// the `http` object (the `HttpRoute` annotation carries the route key as API Gateway wrote
/// it); as the convention wants, it is the template alone: `GET /hello/{name}` → `/hello/{name}`,
/// and no `$default`.
/// The length goes as `http.response.header.content-length`: the exporter reads a length only
/// from messaging attributes.
fn http_attributes(http: Http, attributes: &mut Vec<KeyValue>) {
    if let Some(status) = http.status {
        attributes.push(KeyValue::new(HTTP_STATUS, i64::from(status)));
    }
    attributes.push(KeyValue::new("http.request.method", http.method));
    attributes.push(KeyValue::new("url.full", http.url));
    if let Some(user_agent) = http.user_agent {
        attributes.push(KeyValue::new("user_agent.original", user_agent));
    }
    if let Some(client_ip) = http.client_ip {
        if !http.x_forwarded_for {
            attributes.push(KeyValue::new("network.peer.address", client_ip.clone()));
        }
        attributes.push(KeyValue::new("client.address", client_ip));
    }
    if let Some(route) = http.route {
        let template = route
            .as_str()
            .split_once(' ')
            .map_or(route.as_str(), |(_, path)| path);
        if template.starts_with('/') {
            attributes.push(KeyValue::new("http.route", template.to_owned()));
        }
    }
    if http.traced {
        // What opentelemetry-aws's translator reads for `traced`.
        attributes.push(KeyValue::new("aws.http.traced", true));
    }
    if let Some(length) = http.content_length {
        attributes.push(KeyValue::new(
            "http.response.header.content-length",
            i64::try_from(length).unwrap_or(i64::MAX),
        ));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client span with these attributes.
    /// A client span named `DynamoDB` with these attributes.
    pub(crate) fn span_with(attributes: Vec<KeyValue>) -> SpanData {
        let mut span = crate::record::tests::record(attributes).span;
        span.span_kind = opentelemetry::trace::SpanKind::Client;
        span.name = "DynamoDB".into();
        span
    }

    /// Members with these parameters (and the retries, when given).
    fn params(retries: Option<u32>, list: &[(&'static str, serde_json::Value)]) -> AwsMembers {
        let mut members = AwsMembers {
            retries,
            ..AwsMembers::default()
        };
        for (name, value) in list {
            members.params.put(name, value.clone());
        }
        members
    }

    fn record(attributes: Vec<KeyValue>, aws: AwsMembers, throttle: bool) -> Record {
        Record {
            span: span_with(attributes),
            extra: Some(Box::new(crate::record::Extra {
                aws,
                throttle,
                metadata: vec![("order".to_owned(), serde_json::json!({"lines": 3}))],
                ..crate::record::Extra::default()
            })),
        }
    }

    fn get<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn extras_become_the_attributes_the_collector_reads() {
        let span = to_otlp(record(
            vec![
                KeyValue::new("rpc.system", "aws-api"),
                KeyValue::new("rpc.service", "DynamoDB"),
                KeyValue::new("aws.table.name", "Orders"),
                KeyValue::new("annotation.ColdStart", true),
                KeyValue::new("annotation.customer", "c-1"),
            ],
            params(
                Some(1),
                &[
                    ("consistent_read", serde_json::json!(true)),
                    ("count", serde_json::json!(2)),
                ],
            ),
            true,
        ));
        assert_eq!(get(&span, "ColdStart"), Some(&Value::Bool(true)));
        assert_eq!(get(&span, "customer"), Some(&Value::from("c-1")));
        assert_eq!(
            get(&span, "aws.xray.annotations"),
            Some(&Value::Array(Array::String(vec![
                "ColdStart".into(),
                "customer".into()
            ])))
        );
        assert_eq!(
            get(&span, "aws.xray.metadata.default"),
            Some(&Value::from(r#"{"order":{"lines":3}}"#))
        );
        assert_eq!(get(&span, "aws.retries"), Some(&Value::I64(1)));
        assert_eq!(
            get(&span, "aws.dynamodb.consistent_read"),
            Some(&Value::Bool(true))
        );
        assert_eq!(get(&span, "aws.dynamodb.count"), Some(&Value::I64(2)));
        assert_eq!(
            get(&span, "aws.dynamodb.table_names"),
            Some(&Value::Array(Array::String(vec!["Orders".into()])))
        );
        assert_eq!(get(&span, "aws.throttled"), Some(&Value::Bool(true)));
        assert!(span
            .attributes
            .iter()
            .all(|kv| !kv.key.as_str().starts_with("xray_lambda.")
                && !kv.key.as_str().starts_with("annotation.")));
    }

    #[test]
    fn an_http_functions_request_becomes_the_http_conventions() {
        let with_http = |x_forwarded_for| {
            let mut record = record(vec![], AwsMembers::default(), false);
            if let Some(extra) = record.extra.as_mut() {
                extra.http = Some(Http {
                    method: "GET".into(),
                    url: "https://api.example.com/prod/hello/ann".to_owned(),
                    user_agent: Some("curl/8".to_owned()),
                    client_ip: Some("203.0.113.7".to_owned()),
                    x_forwarded_for,
                    route: Some("GET /hello/{name}".into()),
                    outgoing: false,
                    traced: false,
                    status: Some(404),
                    content_length: Some(42),
                });
            }
            to_otlp(record)
        };
        let span = with_http(false);
        assert_eq!(get(&span, "http.request.method"), Some(&Value::from("GET")));
        assert_eq!(
            get(&span, "url.full"),
            Some(&Value::from("https://api.example.com/prod/hello/ann"))
        );
        assert_eq!(
            get(&span, "user_agent.original"),
            Some(&Value::from("curl/8"))
        );
        assert_eq!(
            get(&span, "client.address"),
            Some(&Value::from("203.0.113.7"))
        );
        // The collector writes `x_forwarded_for: true` unless the peer address is set too.
        assert_eq!(
            get(&span, "network.peer.address"),
            Some(&Value::from("203.0.113.7"))
        );
        // The template alone, as the convention wants.
        assert_eq!(
            get(&span, "http.route"),
            Some(&Value::from("/hello/{name}"))
        );
        assert_eq!(
            get(&span, "http.response.header.content-length"),
            Some(&Value::I64(42))
        );
        assert!(get(&span, "aws.http.traced").is_none());
        assert_eq!(
            get(&span, "http.response.status_code"),
            Some(&Value::I64(404))
        );
        // Searchable: method, route and status as annotations.
        assert_eq!(
            get(&span, "HttpRoute"),
            Some(&Value::from("GET /hello/{name}"))
        );
        assert_eq!(get(&span, "HttpStatus"), Some(&Value::I64(404)));
        assert_eq!(
            get(&span, "aws.xray.annotations"),
            Some(&Value::Array(Array::String(vec![
                "HttpMethod".into(),
                "HttpRoute".into(),
                "HttpStatus".into()
            ])))
        );
        let forwarded = with_http(true);
        assert!(get(&forwarded, "network.peer.address").is_none());
        assert_eq!(
            get(&forwarded, "client.address"),
            Some(&Value::from("203.0.113.7"))
        );
    }

    #[test]
    fn several_tables_and_other_services() {
        let span = to_otlp(record(
            vec![
                KeyValue::new("rpc.system", "aws-api"),
                KeyValue::new("rpc.service", "DynamoDB"),
            ],
            AwsMembers {
                table_names: vec!["A".into(), "B".into()],
                ..AwsMembers::default()
            },
            false,
        ));
        assert_eq!(
            get(&span, "aws.dynamodb.table_names"),
            Some(&Value::Array(Array::String(vec!["A".into(), "B".into()])))
        );
        let span = to_otlp(record(
            vec![
                KeyValue::new("rpc.system", "aws-api"),
                KeyValue::new("rpc.service", "SQS"),
            ],
            AwsMembers {
                retries: Some(0),
                resource: Some(NamedResource::Queue("https://q".into())),
                ..AwsMembers::default()
            },
            false,
        ));
        assert_eq!(get(&span, "aws.queue_url"), Some(&Value::from("https://q")));
        assert_eq!(get(&span, "aws.retries"), Some(&Value::I64(0)));
    }

    #[test]
    fn the_conventions_names_where_they_have_one() {
        let names = |service: &str, list: &[(&'static str, serde_json::Value)]| {
            let aws = params(None, list);
            let span = to_otlp(record(
                vec![
                    KeyValue::new("rpc.system", "aws-api"),
                    KeyValue::new("rpc.service", service.to_owned()),
                ],
                aws,
                false,
            ));
            let mut keys: Vec<String> = span
                .attributes
                .iter()
                .map(|kv| kv.key.to_string())
                .filter(|k| {
                    (k.starts_with("aws.") && !k.starts_with("aws.xray."))
                        || k.starts_with("messaging.")
                })
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(
            names(
                "DynamoDB",
                &[
                    ("scan_index_forward", serde_json::json!(true)),
                    ("projection_expression", serde_json::json!("a")),
                    ("exclusive_start_table_name", serde_json::json!("T")),
                    ("limit", serde_json::json!(5)),
                ]
            ),
            [
                "aws.dynamodb.exclusive_start_table",
                "aws.dynamodb.limit",
                "aws.dynamodb.projection",
                "aws.dynamodb.scan_forward"
            ]
        );
        assert_eq!(
            names(
                "SQS",
                &[
                    ("message_id", serde_json::json!("m")),
                    ("message_count", serde_json::json!(2)),
                    ("delay_seconds", serde_json::json!(1)),
                ]
            ),
            [
                "aws.delay_seconds",
                "messaging.batch.message_count",
                "messaging.message.id"
            ]
        );
        assert_eq!(
            names("S3", &[("id_2", serde_json::json!("h"))]),
            ["aws.extended_request_id"]
        );
    }
}
