//! What a record is, decided once: its name, its kind, whether it is remote, its flags and the
//! annotations it shows. The X-Ray writer, the translator's additions, the OTLP mappings and the
//! waterfall render these answers; none of them decides any of it again.

use std::borrow::Cow;

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{StringValue, Value};

use super::{string_attribute, NamedResource, Record};
use crate::notices::warn_once;
use crate::vocabulary::{
    annotation_key, annotation_value_is_valid, cap_annotation_value, plain_name, ANNOTATION_PREFIX,
    AWS_API, AWS_TABLE_NAME, HTTP_METHOD_ANNOTATION, HTTP_ROUTE_ANNOTATION, HTTP_STATUS_ANNOTATION,
    LIFECYCLE, MAX_ANNOTATION_VALUE, RECORD_IDENTITIES, REFERENCE_TYPE, RPC_METHOD, RPC_SERVICE,
    RPC_SYSTEM,
};

/// How a failed span failed, as its status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A 4xx status: `error`, the caller's fault.
    Error,
    /// 429: `throttle` and `error`.
    Throttle,
    /// Anything else: `fault`.
    Fault,
}

/// The flags a (sub)segment carries, each decided once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) error: bool,
    pub(crate) throttle: bool,
    pub(crate) fault: bool,
}

/// What a span is to the trace: OpenTelemetry's span kinds, decided from what the crate
/// recorded (the handler is the server span under Lambda's segment, an SQS `SendMessage` is a
/// producer, a batch record a consumer), whatever kind the span was opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Server,
    Client,
    Producer,
    Consumer,
    Internal,
}

/// The AWS resource a call names, as CloudFormation types it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AwsResource<'a> {
    /// `AWS::DynamoDB::Table`, `AWS::SQS::Queue`, `AWS::S3::Bucket`, `AWS::SNS::Topic`,
    /// `AWS::Lambda::Function`.
    pub(crate) kind: &'static str,
    /// Its name: the table, queue, bucket, topic or function.
    pub(crate) name: &'a str,
    /// What CloudFormation calls it by, where that is not the name (a queue's URL, a topic's
    /// ARN).
    pub(crate) primary_identifier: &'a str,
}

/// An SQS or SNS call as the messaging conventions name it (semantic conventions 1.44: SQS's
/// send and receive spans, SNS's send span).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessagingCall<'a> {
    /// `messaging.system`: `aws_sqs`, `aws.sns`.
    pub(crate) system: &'static str,
    /// `messaging.operation.name`.
    pub(crate) operation: &'static str,
    /// `messaging.operation.type`: `send` (a PRODUCER span) or `receive`.
    pub(crate) operation_type: &'static str,
    /// `messaging.destination.name`: the queue's or the topic's name.
    pub(crate) destination: Option<&'a str>,
}

impl Record {
    /// The messaging operation an AWS call is, if any: what makes it a PRODUCER span, and the
    /// OpenTelemetry paths' `messaging.*` attributes.
    pub(crate) fn messaging_call(&self) -> Option<MessagingCall<'_>> {
        let (system, operation, operation_type) = match (self.aws_service()?, self.aws_operation()?)
        {
            ("SQS", "SendMessage" | "SendMessageBatch") => ("aws_sqs", "send", "send"),
            ("SQS", "ReceiveMessage") => ("aws_sqs", "receive", "receive"),
            ("SNS", "Publish" | "PublishBatch") => ("aws.sns", "publish", "send"),
            _ => return None,
        };
        Some(MessagingCall {
            system,
            operation,
            operation_type,
            destination: self.aws_resource().map(|resource| resource.name),
        })
    }

    /// The resource an AWS call names (one table, a queue, a bucket, a topic, a function).
    pub(crate) fn aws_resource(&self) -> Option<AwsResource<'_>> {
        fn resource<'a>(
            kind: &'static str,
            name: &'a str,
            primary_identifier: &'a str,
        ) -> Option<AwsResource<'a>> {
            (!name.is_empty()).then_some(AwsResource {
                kind,
                name,
                primary_identifier,
            })
        }
        let named = self.aws_members().and_then(|m| m.resource.as_ref());
        match (self.aws_service()?, named) {
            ("DynamoDB", _) => {
                let table = string_attribute(&self.span, AWS_TABLE_NAME)?;
                resource("AWS::DynamoDB::Table", table, table)
            }
            ("SQS", Some(NamedResource::Queue(url))) => {
                let name = url.trim_end_matches('/').rsplit('/').next()?;
                resource("AWS::SQS::Queue", name, url)
            }
            ("SNS", Some(NamedResource::Topic(arn))) => {
                resource("AWS::SNS::Topic", arn.rsplit(':').next()?, arn)
            }
            ("S3", Some(NamedResource::Bucket(bucket))) => {
                resource("AWS::S3::Bucket", bucket, bucket)
            }
            ("Lambda", Some(NamedResource::Function(function))) => {
                resource("AWS::Lambda::Function", function, function)
            }
            _ => None,
        }
    }

    /// Whether the span is an AWS SDK call.
    pub(crate) fn is_aws_call(&self) -> bool {
        string_attribute(&self.span, RPC_SYSTEM) == Some(AWS_API)
    }

    /// An AWS call's service (`DynamoDB`).
    pub(crate) fn aws_service(&self) -> Option<&str> {
        string_attribute(&self.span, RPC_SERVICE).filter(|_| self.is_aws_call())
    }

    /// An AWS call's operation (`GetItem`).
    pub(crate) fn aws_operation(&self) -> Option<&str> {
        string_attribute(&self.span, RPC_METHOD)
    }

    /// The (sub)segment's name as X-Ray accepts it: an AWS call's service, else the span's
    /// name.
    pub(crate) fn name(&self) -> Cow<'_, str> {
        plain_name(self.aws_service().unwrap_or(&self.span.name))
    }

    /// How a reader is shown the span in a list of calls (the waterfall): an RPC's service
    /// and method (`DynamoDB GetItem`, a gRPC client's `orders.Orders Get`), as X-Ray's console
    /// shows an AWS call's subsegment with its operation; otherwise [`Record::name`].
    pub(crate) fn label(&self) -> Cow<'_, str> {
        let service = self
            .aws_service()
            .or_else(|| string_attribute(&self.span, RPC_SERVICE));
        match (service, self.aws_operation()) {
            (Some(service), Some(method)) => Cow::Owned(format!("{service} {method}")),
            _ => self.name(),
        }
    }

    /// X-Ray's `namespace`: `aws` for an AWS call, `remote` for another call.
    pub(crate) fn namespace(&self) -> Option<&'static str> {
        if self.is_aws_call() {
            Some("aws")
        } else if self.span.span_kind == SpanKind::Client {
            Some("remote")
        } else {
            None
        }
    }

    /// Whether the span is a call to another service (its cause is remote).
    pub(crate) fn is_remote(&self) -> bool {
        self.span.span_kind == SpanKind::Client
    }

    /// Whether the span is the invocation's own: under Lambda's segment, or the root of a local
    /// trace (a user's server span inside the handler is not).
    pub(crate) fn is_handler(&self) -> bool {
        (self.span.parent_span_is_remote
            || self.span.parent_span_id == opentelemetry::SpanId::INVALID)
            && !self.is_lifecycle()
    }

    /// Whether the span is one of the environment's lifecycle (`Init`, `Restore`): beside the
    /// handler, under Lambda's segment, but not the invocation's own.
    pub(crate) fn is_lifecycle(&self) -> bool {
        self.span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == LIFECYCLE)
    }

    /// The span's kind (see [`Kind`]).
    pub(crate) fn kind(&self) -> Kind {
        let span = &self.span;
        if self.aws_service().is_some() {
            return match self.messaging_call() {
                Some(call) if call.operation_type == "send" => Kind::Producer,
                _ => Kind::Client,
            };
        }
        match span.span_kind {
            SpanKind::Server => return Kind::Server,
            SpanKind::Client => return Kind::Client,
            SpanKind::Producer => return Kind::Producer,
            SpanKind::Consumer => return Kind::Consumer,
            SpanKind::Internal => {}
        }
        if self.is_handler() {
            return Kind::Server;
        }
        let consumer = span
            .attributes
            .iter()
            .any(|kv| RECORD_IDENTITIES.contains(&kv.key.as_str()))
            || span.links.iter().any(|link| {
                link.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == REFERENCE_TYPE)
            });
        if consumer {
            Kind::Consumer
        } else {
            Kind::Internal
        }
    }

    /// How the span failed, if it did: from its status and its HTTP status.
    pub(crate) fn failure(&self) -> Option<Failure> {
        matches!(self.span.status, Status::Error { .. }).then_some(match self.status() {
            Some(429) => Failure::Throttle,
            Some(400..=499) => Failure::Error,
            _ => Failure::Fault,
        })
    }

    /// The flags: from the failure, and a throttling error code that came with another status.
    pub(crate) fn flags(&self) -> Flags {
        let failure = self.failure();
        Flags {
            error: matches!(failure, Some(Failure::Error | Failure::Throttle)),
            throttle: failure == Some(Failure::Throttle) || self.throttle(),
            fault: failure == Some(Failure::Fault),
        }
    }

    /// The annotations the span shows, each key once: its own (`annotation.*` attributes,
    /// the later value winning, keys as X-Ray indexes them, values X-Ray refuses left out,
    /// strings cut to [`MAX_ANNOTATION_VALUE`] characters), then a served request's method,
    /// route and status, unless the span has its own of that key.
    pub(crate) fn annotations(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, Value>)> {
        self.own_annotations()
            .chain(self.served_request_annotations())
    }

    /// Whether [`Record::annotations`] can show any: most spans have no annotation attribute
    /// and serve no request, and a writer can skip them without building the iterator.
    pub(crate) fn may_have_annotations(&self) -> bool {
        self.http().is_some_and(|http| !http.outgoing)
            || self
                .span
                .attributes
                .iter()
                .any(|kv| kv.key.as_str().starts_with(ANNOTATION_PREFIX))
    }

    /// The span's own annotations, as [`Record::annotations`] shows them.
    pub(crate) fn own_annotations(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, Value>)> {
        let all = &self.span.attributes;
        all.iter().enumerate().filter_map(move |(at, kv)| {
            let name = kv.key.as_str().strip_prefix(ANNOTATION_PREFIX)?;
            if later_annotation(&all[at + 1..], name).is_some()
                || !annotation_value_is_valid(&kv.value)
            {
                return None;
            }
            let key = match annotation_key(name) {
                Ok(key) => Cow::Borrowed(key),
                Err(fixed) => Cow::Owned(fixed),
            };
            let value = match &kv.value {
                Value::String(s) if s.as_str().len() > MAX_ANNOTATION_VALUE => {
                    match cap_annotation_value(s.as_str()) {
                        Cow::Borrowed(cut) if cut.len() < s.as_str().len() => {
                            Cow::Owned(Value::from(cut.to_owned()))
                        }
                        _ => Cow::Borrowed(&kv.value),
                    }
                }
                value => Cow::Borrowed(value),
            };
            Some((key, value))
        })
    }

    /// A served request's annotations (none for a call, nor past the trace's limit), each
    /// unless the span has its own, as values.
    pub(crate) fn served_request_annotations(
        &self,
    ) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, Value>)> {
        self.served_request_facts().map(|(key, fact)| {
            let value = match fact {
                ServedFact::Method(method) => Value::String(method.clone()),
                // Not cut: the route's own value, shared.
                ServedFact::Route(route, cut) if cut.len() == route.as_str().len() => {
                    Value::String(route.clone())
                }
                ServedFact::Route(_, cut) => Value::from(cut.into_owned()),
                ServedFact::Status(status) => Value::I64(i64::from(status)),
            };
            (Cow::Borrowed(key), Cow::Owned(value))
        })
    }

    /// [`Record::served_request_annotations`], borrowed: what a writer writes as it is,
    /// without building values (the one place that decides which a span shows).
    pub(crate) fn served_request_facts(
        &self,
    ) -> impl Iterator<Item = (&'static str, ServedFact<'_>)> {
        let not_indexed = self.extra.as_ref().is_some_and(|e| e.served_not_indexed);
        let served = self.http().filter(|http| !http.outgoing && !not_indexed);
        let (method, route, status) = served.map_or((None, None, None), |http| {
            (
                Some(ServedFact::Method(&http.method)),
                http.route
                    .as_ref()
                    .map(|route| ServedFact::Route(route, cap_annotation_value(route.as_str()))),
                http.status.map(ServedFact::Status),
            )
        });
        [
            (HTTP_METHOD_ANNOTATION, method),
            (HTTP_ROUTE_ANNOTATION, route),
            (HTTP_STATUS_ANNOTATION, status),
        ]
        .into_iter()
        .filter_map(|(key, fact)| Some((key, fact?)))
        .filter(|(key, _)| !self.has_annotation(key))
    }

    /// Logs one warning per key for the process when an annotation is recorded more than once
    /// on the span (annotated twice, or a run-time key rewritten onto an existing one), where
    /// the later value is the one shown. The buffer calls it once per finished span.
    pub(crate) fn warn_duplicate_annotations(&self) {
        let all = &self.span.attributes;
        let annotations = all
            .iter()
            .filter(|kv| kv.key.as_str().starts_with(ANNOTATION_PREFIX))
            .take(2)
            .count();
        if annotations < 2 {
            return;
        }
        for (at, kv) in all.iter().enumerate() {
            let Some(name) = kv.key.as_str().strip_prefix(ANNOTATION_PREFIX) else {
                continue;
            };
            if let Some(later) = later_annotation(&all[at + 1..], name) {
                if !is_number_of(&kv.value, later) {
                    warn_once(&format!("duplicate annotation {name}"), || {
                        let shown: String = name.chars().take(80).collect();
                        format!("X-Ray: annotation {shown:?} is recorded more than once on a subsegment; the last value is kept")
                    });
                }
            }
        }
    }
}

/// The value of a later annotation among `rest` that is `name` once X-Ray's rule is applied.
fn later_annotation<'a>(rest: &'a [opentelemetry::KeyValue], name: &str) -> Option<&'a Value> {
    rest.iter().rev().find_map(|later| {
        let other = later.key.as_str().strip_prefix(ANNOTATION_PREFIX)?;
        same_annotation_key(name, other).then_some(&later.value)
    })
}

/// Whether two annotation keys are one once X-Ray's rule is applied.
fn same_annotation_key(a: &str, b: &str) -> bool {
    a == b
        || match (annotation_key(a), annotation_key(b)) {
            (Ok(_), Ok(_)) => false,
            (a, b) => {
                let fixed =
                    |key: Result<&str, String>| key.map_or_else(|fixed| fixed, str::to_owned);
                fixed(a) == fixed(b)
            }
        }
}

/// Whether `later` is `earlier` as a number: tracing-opentelemetry records unsigned integer
/// fields as text, and the `unsigned_fields` layer adds the number after it.
fn is_number_of(earlier: &Value, later: &Value) -> bool {
    match (earlier, later) {
        (Value::String(text), Value::I64(n)) => text.as_str().parse::<i64>() == Ok(*n),
        (Value::String(text), Value::F64(n)) => text.as_str().parse::<f64>().ok() == Some(*n),
        _ => false,
    }
}

/// A served request's annotation, as its `http` object holds it.
#[derive(Debug)]
pub(crate) enum ServedFact<'a> {
    /// `HttpMethod`.
    Method(&'a StringValue),
    /// `HttpRoute`: the route, and what is shown of it (cut to [`MAX_ANNOTATION_VALUE`]
    /// characters).
    Route(&'a StringValue, Cow<'a, str>),
    /// `HttpStatus`.
    Status(u16),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Http;

    fn served(route: String) -> Record {
        let mut record = crate::record::tests::record(Vec::new());
        record.extra = Some(Box::new(crate::record::Extra {
            http: Some(Http {
                method: "GET".into(),
                route: Some(route.into()),
                status: Some(200),
                ..Http::default()
            }),
            ..crate::record::Extra::default()
        }));
        record
    }

    #[test]
    fn sqs_and_sns_calls_are_messaging_operations() {
        let call = |service: &str, operation: &str| {
            let record = crate::record::tests::record(vec![
                opentelemetry::KeyValue::new(RPC_SYSTEM, AWS_API),
                opentelemetry::KeyValue::new(RPC_SERVICE, service.to_owned()),
                opentelemetry::KeyValue::new(RPC_METHOD, operation.to_owned()),
            ]);
            let call = record
                .messaging_call()
                .map(|c| (c.system, c.operation, c.operation_type));
            (call, record.kind())
        };
        let send = Some(("aws_sqs", "send", "send"));
        assert_eq!(call("SQS", "SendMessage"), (send, Kind::Producer));
        assert_eq!(call("SQS", "SendMessageBatch"), (send, Kind::Producer));
        assert_eq!(
            call("SQS", "ReceiveMessage"),
            (Some(("aws_sqs", "receive", "receive")), Kind::Client)
        );
        let publish = Some(("aws.sns", "publish", "send"));
        assert_eq!(call("SNS", "Publish"), (publish, Kind::Producer));
        assert_eq!(call("SNS", "PublishBatch"), (publish, Kind::Producer));
        for (service, operation) in [
            ("SQS", "DeleteMessage"),
            ("SNS", "CreateTopic"),
            ("DynamoDB", "GetItem"),
        ] {
            assert_eq!(
                call(service, operation),
                (None, Kind::Client),
                "{operation}"
            );
        }
    }

    #[test]
    fn a_served_requests_annotations_yield_to_the_users() {
        let record = served("r".repeat(MAX_ANNOTATION_VALUE + 5));
        let all: Vec<_> = record.annotations().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].0, HTTP_METHOD_ANNOTATION);
        assert_eq!(*all[0].1, Value::from("GET"));
        assert_eq!(
            all[1].1.as_str().chars().count(),
            MAX_ANNOTATION_VALUE,
            "the route is capped"
        );
        assert_eq!(*all[2].1, Value::I64(200));
        let mut record = served("GET /x".to_owned());
        record
            .span
            .attributes
            .push(opentelemetry::KeyValue::new("annotation.HttpRoute", "mine"));
        let shown: Vec<_> = record
            .annotations()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            shown,
            [
                ("HttpRoute".to_owned(), Value::from("mine")),
                ("HttpMethod".to_owned(), Value::from("GET")),
                ("HttpStatus".to_owned(), Value::I64(200)),
            ]
        );
        if let Some(http) = record.extra.as_mut().and_then(|e| e.http.as_mut()) {
            http.outgoing = true;
        }
        assert_eq!(
            record.annotations().count(),
            1,
            "a call has no such annotations"
        );
    }

    #[test]
    fn annotations_each_key_once_fixed_valid_and_capped() {
        let record = crate::record::tests::record(vec![
            opentelemetry::KeyValue::new("annotation.a-b", "first"),
            opentelemetry::KeyValue::new("annotation.a_b", "second"),
            opentelemetry::KeyValue::new("annotation.nan", f64::NAN),
            opentelemetry::KeyValue::new("annotation.long", "x".repeat(1500)),
        ]);
        let shown: Vec<_> = record
            .annotations()
            .map(|(k, v)| (k.into_owned(), v.as_str().chars().count()))
            .collect();
        assert_eq!(
            shown,
            [
                ("a_b".to_owned(), 6),
                ("long".to_owned(), MAX_ANNOTATION_VALUE)
            ]
        );
    }

    #[test]
    fn flags_are_decided_once() {
        let mut record = crate::record::tests::record(vec![opentelemetry::KeyValue::new(
            crate::vocabulary::HTTP_STATUS,
            429,
        )]);
        record.span.status = Status::error("slow down");
        record.extra = Some(Box::new(crate::record::Extra {
            throttle: true,
            ..crate::record::Extra::default()
        }));
        assert_eq!(
            record.flags(),
            Flags {
                error: true,
                throttle: true,
                fault: false
            }
        );
        record.span.attributes.clear();
        assert_eq!(
            record.flags(),
            Flags {
                error: false,
                throttle: true,
                fault: true
            }
        );
    }

    #[test]
    fn kinds() {
        let mut call = crate::record::tests::record(vec![
            opentelemetry::KeyValue::new(RPC_SYSTEM, AWS_API),
            opentelemetry::KeyValue::new(RPC_SERVICE, "SQS"),
            opentelemetry::KeyValue::new(RPC_METHOD, "SendMessage"),
        ]);
        call.span.span_kind = SpanKind::Client;
        assert_eq!(call.kind(), Kind::Producer);
        call.span.attributes[2] = opentelemetry::KeyValue::new(RPC_METHOD, "ReceiveMessage");
        assert_eq!(call.kind(), Kind::Client);
        assert_eq!(call.name(), "SQS");
        let mut handler = crate::record::tests::record(Vec::new());
        handler.span.parent_span_is_remote = true;
        assert_eq!(handler.kind(), Kind::Server);
        let record = crate::record::tests::record(vec![opentelemetry::KeyValue::new(
            "annotation.MessageId",
            "m-1",
        )]);
        assert_eq!(record.kind(), Kind::Consumer);
        assert_eq!(
            crate::record::tests::record(Vec::new()).kind(),
            Kind::Internal
        );
    }
}
