//! One view of a subsegment for both export paths, so the same behavioural tests run on each:
//! from a document the daemon received, or from an OTLP span read by the rules of the
//! collector's X-Ray exporter (`awsxrayexporter`'s translator: name, namespace, error /
//! throttle / fault from the status and the HTTP status, cause from `exception` events,
//! annotations from `aws.xray.annotations`, the `aws` fields from `rpc.*` / `aws.*`).

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use serde_json::{Map, Value};

use crate::otlp::{hex, ReceivedSpan};
use crate::runtime_api::Outcome;

/// A subsegment as X-Ray would store it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seg {
    /// `id`.
    pub id: String,
    /// `parent_id`.
    pub parent_id: Option<String>,
    /// `trace_id` (`1-...-...`).
    pub trace_id: String,
    /// `name`.
    pub name: String,
    /// `namespace` (`aws`, `remote`).
    pub namespace: Option<String>,
    /// `fault`.
    pub fault: bool,
    /// `error`.
    pub error: bool,
    /// `throttle`.
    pub throttle: bool,
    /// `cause.exceptions`: (type, message).
    pub exceptions: Vec<(String, String)>,
    /// `annotations`.
    pub annotations: Map<String, Value>,
    /// `aws.operation`.
    pub operation: Option<String>,
    /// `aws.table_name`.
    pub table_name: Option<String>,
    /// `aws.request_id`.
    pub request_id: Option<String>,
    /// `aws.region`.
    pub region: Option<String>,
    /// `http.response.status`.
    pub status: Option<i64>,
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

impl Seg {
    /// From one (flattened) daemon document.
    #[must_use]
    pub fn from_document(doc: &Value) -> Self {
        let flag = |key: &str| doc[key].as_bool().unwrap_or(false);
        Seg {
            id: text(&doc["id"]).unwrap_or_default(),
            parent_id: text(&doc["parent_id"]),
            trace_id: text(&doc["trace_id"]).unwrap_or_default(),
            name: text(&doc["name"]).unwrap_or_default(),
            namespace: text(&doc["namespace"]),
            fault: flag("fault"),
            error: flag("error"),
            throttle: flag("throttle"),
            exceptions: doc["cause"]["exceptions"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|e| {
                            (
                                text(&e["type"]).unwrap_or_default(),
                                text(&e["message"]).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            annotations: doc["annotations"].as_object().cloned().unwrap_or_default(),
            operation: text(&doc["aws"]["operation"]),
            table_name: text(&doc["aws"]["table_name"]),
            request_id: text(&doc["aws"]["request_id"]),
            region: text(&doc["aws"]["region"]),
            status: doc["http"]["response"]["status"].as_i64(),
        }
    }

    /// From one OTLP span, as the collector's X-Ray exporter would write it.
    #[must_use]
    pub fn from_otlp(received: &ReceivedSpan) -> Self {
        let span = &received.span;
        let string = |key: &str| match received.attribute(key) {
            Some(Any::StringValue(s)) => Some(s.clone()),
            _ => None,
        };
        let aws_api = string("rpc.system").as_deref() == Some("aws-api");
        let name = if aws_api {
            string("rpc.service").unwrap_or_else(|| span.name.clone())
        } else {
            span.name.clone()
        };
        // SpanKind::Client is 3 in the protocol.
        let namespace = if aws_api {
            Some("aws".to_owned())
        } else if span.kind == 3 {
            Some("remote".to_owned())
        } else {
            None
        };
        let status = match received.attribute("http.response.status_code") {
            Some(Any::IntValue(code)) => Some(*code),
            _ => None,
        };
        // Status code 2 is Error.
        let failed = span.status.as_ref().is_some_and(|s| s.code == 2);
        let (mut fault, mut error, mut throttle) = (false, false, false);
        if failed {
            match status {
                Some(429) => (error, throttle) = (true, true),
                Some(400..=499) => error = true,
                _ => fault = true,
            }
        }
        let exceptions = span
            .events
            .iter()
            .filter(|e| e.name == "exception")
            .map(|e| {
                let get = |key: &str| {
                    e.attributes
                        .iter()
                        .find(|kv| kv.key == key)
                        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                        .and_then(|v| match v {
                            Any::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default()
                };
                (get("exception.type"), get("exception.message"))
            })
            .collect();
        let mut annotations = Map::new();
        if let Some(Any::ArrayValue(keys)) = received.attribute("aws.xray.annotations") {
            for key in &keys.values {
                let Some(Any::StringValue(key)) = &key.value else {
                    continue;
                };
                let value = match received.attribute(key) {
                    Some(Any::StringValue(s)) => Value::from(s.clone()),
                    Some(Any::BoolValue(b)) => Value::from(*b),
                    Some(Any::IntValue(i)) => Value::from(*i),
                    Some(Any::DoubleValue(d)) => Value::from(*d),
                    _ => continue,
                };
                annotations.insert(key.clone(), value);
            }
        }
        let parent = hex(&span.parent_span_id);
        Seg {
            id: hex(&span.span_id),
            parent_id: (!parent.is_empty()).then_some(parent),
            trace_id: received.xray_trace_id(),
            name,
            namespace,
            fault,
            error,
            throttle,
            exceptions,
            annotations,
            operation: string("aws.operation").or_else(|| string("rpc.method")),
            table_name: string("aws.table_name").or_else(|| string("aws.table.name")),
            request_id: string("aws.request_id"),
            region: string("aws.region"),
            status,
        }
    }
}

/// What the behavioural tests need of an export path: one invocation of
/// `xray_lambda_tests::handlers::handler` through the real `lambda_runtime`, and what arrived
/// for a trace, read as X-Ray would store it.
pub trait ExportPath: Sync {
    /// One invocation, waiting for its outcome.
    fn invoke(&self, payload: &serde_json::Value, header: Option<&str>) -> Outcome;
    /// What arrived for the trace `root`, waiting for `at_least` subsegments.
    fn segs(&self, root: &str, at_least: usize) -> Vec<Seg>;
    /// What arrived for the trace `root` so far, without waiting.
    fn arrived(&self, root: &str) -> Vec<Seg>;

    /// Whether nothing arrived for the trace `root` of an invocation that has returned, judged
    /// once a marker did: a sampled invocation through the same pipeline after it, whose
    /// spans leave after any of `root`'s (the daemon's datagrams from one socket, in order;
    /// an OTLP export awaited before each response is posted).
    ///
    /// # Panics
    /// If the marker invocation's spans do not arrive.
    fn nothing_for(&self, root: &str) -> bool {
        let marker = crate::new_trace_header(Some("1"));
        let response = self
            .invoke(
                &serde_json::json!({"action": "ok", "tag": marker.root}),
                Some(&marker.header),
            )
            .unwrap_response();
        assert_eq!(response["tag"], marker.root.as_str());
        let segs = self.segs(&marker.root, 2);
        assert_eq!(segs.len(), 2, "the marker invocation's spans: {segs:#?}");
        self.arrived(root).is_empty()
    }
}

/// The behavioural tests both export paths must pass, for the `&'static` [`ExportPath`] that
/// `$path` gives.
#[macro_export]
macro_rules! behaviour_tests {
    ($path:expr) => {
        fn path() -> &'static dyn $crate::paths::ExportPath {
            $path
        }

        fn by_name<'a>(segs: &'a [$crate::paths::Seg], name: &str) -> Vec<&'a $crate::paths::Seg> {
            segs.iter().filter(|s| s.name == name).collect()
        }

        #[test]
        fn behaviour_handler_and_nested_spans_link_under_lambdas_segment() {
            let ids = $crate::new_trace_header(Some("1"));
            let response = path().invoke(
                &serde_json::json!({"action": "ok", "depth": 1, "tag": ids.root}),
                Some(&ids.header),
            )
            .unwrap_response();
            assert_eq!(response["tag"], ids.root.as_str());
            let segs = path().segs(&ids.root, 3);
            assert_eq!(segs.len(), 3, "{segs:#?}");
            let handler = by_name(&segs, "handler");
            assert_eq!(handler.len(), 1, "{segs:#?}");
            let handler = handler[0];
            assert_eq!(handler.trace_id, ids.root);
            assert_eq!(handler.parent_id.as_deref(), Some(ids.parent.as_str()));
            assert_eq!(handler.annotations["Service"], "behaviour-fn");
            assert!(handler.annotations["ColdStart"].is_boolean());
            assert_eq!(handler.annotations["invocation"], ids.root.as_str());
            assert!(!handler.fault && !handler.error, "{handler:#?}");
            let steps = by_name(&segs, "step");
            assert_eq!(steps.len(), 2);
            let first = steps
                .iter()
                .find(|s| s.parent_id.as_deref() == Some(handler.id.as_str()))
                .expect("a step under the handler");
            assert!(steps
                .iter()
                .any(|s| s.parent_id.as_deref() == Some(first.id.as_str())));
            for step in steps {
                assert_eq!(step.trace_id, ids.root);
                assert_eq!(step.annotations["tag"], ids.root.as_str());
            }
        }

        #[test]
        fn behaviour_the_header_a_call_carries_names_a_subsegment_this_path_exports() {
            let ids = $crate::new_trace_header(Some("1"));
            // `Self` (an ALB's segment) stays behind, as the X-Ray SDKs leave it.
            let header = format!(
                "{};Self=1-67891234-12456789abcdef012345678;Lineage=a87bd80c:1",
                ids.header
            );
            let response = path()
                .invoke(
                    &serde_json::json!({"action": "header", "tag": ids.root}),
                    Some(&header),
                )
                .unwrap_response();
            let sent = response["header"].as_str().expect("a header").to_owned();
            let keys: std::collections::HashMap<&str, &str> =
                sent.split(';').filter_map(|kv| kv.split_once('=')).collect();
            assert_eq!(keys["Root"], ids.root, "{sent}");
            assert_eq!(keys["Sampled"], "1", "{sent}");
            assert_eq!(keys["Lineage"], "a87bd80c:1", "{sent}");
            assert!(!keys.contains_key("Self"), "{sent}");
            let segs = path().segs(&ids.root, 2);
            let step = by_name(&segs, "step");
            assert_eq!(step.len(), 1, "{segs:#?}");
            assert_eq!(keys["Parent"], step[0].id, "Parent is the span the call was made in");
        }

        #[test]
        fn behaviour_a_retried_call_shows_its_attempts() {
            let ids = $crate::new_trace_header(Some("1"));
            let _ = path()
                .invoke(
                    &serde_json::json!({"action": "ddb_throttled", "tag": ids.root}),
                    Some(&ids.header),
                )
                .unwrap_response();
            let segs = path().segs(&ids.root, 5);
            let call = segs
                .iter()
                .find(|s| s.namespace.as_deref() == Some("aws"))
                .expect("the call");
            assert!(!call.fault && !call.error, "{call:#?}");
            let attempts: Vec<&$crate::paths::Seg> = segs
                .iter()
                .filter(|s| s.name == "attempt" && s.parent_id.as_deref() == Some(call.id.as_str()))
                .collect();
            assert_eq!(attempts.len(), 3, "{segs:#?}");
            // (The throttling code on a 400 is `throttle` on the daemon path only: the
            // collector derives `throttle` from 429 alone, as for the call itself.)
            assert_eq!(
                attempts.iter().filter(|a| a.error && a.status == Some(400)).count(),
                2,
                "{attempts:#?}"
            );
            assert_eq!(
                attempts.iter().filter(|a| a.status == Some(200) && !a.error).count(),
                1,
                "{attempts:#?}"
            );
        }

        #[test]
        fn behaviour_sampled_0_sends_nothing_and_undecided_is_recorded() {
            let unsampled = $crate::new_trace_header(Some("0"));
            let response = path().invoke(
                &serde_json::json!({"action": "ok", "tag": "x"}),
                Some(&unsampled.header),
            )
            .unwrap_response();
            assert_eq!(response["tag"], "x");
            for sampled in [Some("?"), None] {
                let ids = $crate::new_trace_header(sampled);
                let _ = path().invoke(
                    &serde_json::json!({"action": "ok", "tag": ids.root}),
                    Some(&ids.header),
                )
                .unwrap_response();
                assert_eq!(path().segs(&ids.root, 2).len(), 2, "{sampled:?}");
            }
            assert!(path().nothing_for(&unsampled.root), "Sampled=0 sent something");
        }

        #[test]
        fn behaviour_an_err_is_a_fault_with_its_cause_chain() {
            let ids = $crate::new_trace_header(Some("1"));
            let outcome = path().invoke(&serde_json::json!({"action": "err"}), Some(&ids.header));
            assert!(
                matches!(outcome, $crate::runtime_api::Outcome::Error(_)),
                "{outcome:?}"
            );
            let segs = path().segs(&ids.root, 1);
            let handler = by_name(&segs, "handler")[0];
            assert!(handler.fault && !handler.error, "{handler:#?}");
            assert_eq!(
                handler.exceptions,
                vec![
                    ("TableMissing".to_owned(), "the orders table is missing".to_owned()),
                    ("std::io::Error".to_owned(), "disk on fire".to_owned()),
                ]
            );
        }

        #[test]
        fn behaviour_a_panic_is_a_fault_and_the_next_invocation_is_served() {
            let ids = $crate::new_trace_header(Some("1"));
            let outcome = path().invoke(&serde_json::json!({"action": "panic"}), Some(&ids.header));
            assert!(
                matches!(outcome, $crate::runtime_api::Outcome::Error(_)),
                "{outcome:?}"
            );
            let segs = path().segs(&ids.root, 1);
            let handler = by_name(&segs, "handler")[0];
            assert!(handler.fault, "{handler:#?}");
            assert_eq!(
                handler.exceptions[0],
                ("panic".to_owned(), "the handler panicked on purpose".to_owned())
            );
            let next = $crate::new_trace_header(Some("1"));
            let response = path().invoke(
                &serde_json::json!({"action": "ok", "tag": next.root}),
                Some(&next.header),
            )
            .unwrap_response();
            assert_eq!(response["tag"], next.root.as_str());
        }

        #[test]
        fn behaviour_a_dynamodb_error_is_an_aws_subsegment_with_its_remote_cause() {
            let ids = $crate::new_trace_header(Some("1"));
            let outcome = path().invoke(
                &serde_json::json!({"action": "ddb_missing"}),
                Some(&ids.header),
            );
            assert!(
                matches!(outcome, $crate::runtime_api::Outcome::Error(_)),
                "{outcome:?}"
            );
            let segs = path().segs(&ids.root, 2);
            let handler = by_name(&segs, "handler")[0];
            let call = by_name(&segs, "DynamoDB");
            assert_eq!(call.len(), 1, "{segs:#?}");
            let call = call[0];
            assert_eq!(call.parent_id.as_deref(), Some(handler.id.as_str()));
            assert_eq!(call.namespace.as_deref(), Some("aws"));
            assert_eq!(call.operation.as_deref(), Some("GetItem"));
            assert_eq!(call.table_name.as_deref(), Some("no-such-table"));
            assert_eq!(call.region.as_deref(), Some("us-east-1"));
            assert_eq!(call.status, Some(400));
            assert!(call.request_id.as_deref().is_some_and(|id| !id.is_empty()));
            assert!(call.error && !call.fault && !call.throttle, "{call:#?}");
            assert_eq!(call.exceptions[0].0, "ResourceNotFoundException");
        }

        #[test]
        fn behaviour_concurrent_invocations_never_mix() {
            let ids: Vec<_> = (0..24).map(|_| $crate::new_trace_header(Some("1"))).collect();
            std::thread::scope(|scope| {
                for id in &ids {
                    scope.spawn(move || {
                        path().invoke(
                            &serde_json::json!({"action": "ok", "depth": 2, "tag": id.root}),
                            Some(&id.header),
                        )
                        .unwrap_response()
                    });
                }
            });
            for id in &ids {
                let segs = path().segs(&id.root, 4);
                assert_eq!(segs.len(), 4, "{}", id.root);
                for seg in &segs {
                    assert_eq!(seg.trace_id, id.root);
                    if let Some(tag) = seg.annotations.get("tag") {
                        assert_eq!(tag, id.root.as_str(), "a span of another invocation");
                    }
                }
            }
        }
    };
}

/// The OTLP side of the behavioural tests: the shared test handler under the real
/// `lambda_runtime`, exporting over OTLP to a receiver of its own on loopback, with moto for
/// its DynamoDB calls. The daemon address is set too (Lambda sets it with Active tracing).
#[derive(Debug)]
pub struct OtlpLambda {
    /// The function's Runtime API and daemon stand-in.
    pub lambda: crate::harness::Lambda,
    /// The collector stand-in.
    pub receiver: crate::otlp::Receiver,
    _moto: crate::moto::Moto,
}

impl OtlpLambda {
    /// Starts a gRPC (`grpc`) or HTTP receiver, then the function with the variables `env`
    /// gives for that receiver.
    ///
    /// # Panics
    /// If a part cannot start.
    #[must_use]
    pub fn start(
        grpc: bool,
        env: impl FnOnce(&crate::otlp::Receiver) -> Vec<(&'static str, String)>,
    ) -> Self {
        let moto = crate::moto::Moto::start().expect("moto");
        crate::harness::use_moto(&moto);
        let receiver_runtime = crate::harness::tokio_runtime();
        let receiver = receiver_runtime.block_on(async {
            if grpc {
                crate::otlp::Receiver::grpc().await
            } else {
                crate::otlp::Receiver::http().await
            }
        });
        // The receiver serves from this runtime's workers for the life of the process.
        std::mem::forget(receiver_runtime);
        let lambda = crate::harness::Lambda::start_with_env("behaviour-fn", 8, &env(&receiver));
        crate::harness::serve_test_handler();
        OtlpLambda {
            lambda,
            receiver,
            _moto: moto,
        }
    }
}

impl ExportPath for OtlpLambda {
    fn invoke(&self, payload: &serde_json::Value, header: Option<&str>) -> Outcome {
        self.lambda.invoke(payload, header)
    }

    fn segs(&self, root: &str, at_least: usize) -> Vec<Seg> {
        self.receiver
            .wait_for_trace(root, at_least, std::time::Duration::from_secs(10))
            .iter()
            .map(Seg::from_otlp)
            .collect()
    }

    fn arrived(&self, root: &str) -> Vec<Seg> {
        self.receiver
            .wait_for_trace(root, usize::MAX, std::time::Duration::ZERO)
            .iter()
            .map(Seg::from_otlp)
            .collect()
    }
}

/// The daemon side of the behavioural tests: the shared test handler under the real
/// `lambda_runtime`, sending UDP documents to the daemon stand-in, with moto for its DynamoDB
/// calls.
#[derive(Debug)]
pub struct DaemonLambda {
    /// The function's Runtime API and daemon stand-in.
    pub lambda: crate::harness::Lambda,
    _moto: crate::moto::Moto,
}

impl DaemonLambda {
    /// Starts moto and the function.
    ///
    /// # Panics
    /// If a part cannot start.
    #[must_use]
    pub fn start() -> Self {
        let moto = crate::moto::Moto::start().expect("moto");
        crate::harness::use_moto(&moto);
        let lambda = crate::harness::Lambda::start("behaviour-fn", 8);
        crate::harness::serve_test_handler();
        DaemonLambda {
            lambda,
            _moto: moto,
        }
    }
}

impl ExportPath for DaemonLambda {
    fn invoke(&self, payload: &serde_json::Value, header: Option<&str>) -> Outcome {
        self.lambda.invoke(payload, header)
    }

    fn segs(&self, root: &str, at_least: usize) -> Vec<Seg> {
        let docs =
            self.lambda
                .daemon
                .wait_for_trace(root, std::time::Duration::from_secs(10), |docs| {
                    crate::daemon::flatten(docs).len() >= at_least
                });
        crate::daemon::flatten(&docs)
            .iter()
            .map(Seg::from_document)
            .collect()
    }

    fn arrived(&self, root: &str) -> Vec<Seg> {
        let docs = self
            .lambda
            .daemon
            .wait_for_trace(root, std::time::Duration::ZERO, |_| true);
        crate::daemon::flatten(&docs)
            .iter()
            .map(Seg::from_document)
            .collect()
    }
}

/// Lambda's OpenTelemetry endpoint for the behavioural tests: the shared test handler under the
/// real `lambda_runtime`, in Lambda (`LAMBDA_TASK_ROOT` set) with `OTEL_TRACES_EXPORTER=otlp`
/// and no endpoint, so that spans go over UDP (`T1S`/`T1U`) to the daemon stand-in, which
/// reads them with the protocol's own types; moto for its DynamoDB calls.
#[derive(Debug)]
pub struct OtelUdpLambda {
    /// The function's Runtime API and the endpoint stand-in.
    pub lambda: crate::harness::Lambda,
    _moto: crate::moto::Moto,
}

impl OtelUdpLambda {
    /// Starts moto and the function, with `more` variables (Application Signals, say).
    ///
    /// # Panics
    /// If a part cannot start.
    #[must_use]
    pub fn start(more: &[(&'static str, String)]) -> Self {
        let moto = crate::moto::Moto::start().expect("moto");
        crate::harness::use_moto(&moto);
        let mut env = vec![
            ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
            ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ];
        env.extend(more.iter().cloned());
        let lambda = crate::harness::Lambda::start_with_env("behaviour-fn", 64, &env);
        crate::harness::serve_test_handler();
        OtelUdpLambda {
            lambda,
            _moto: moto,
        }
    }

    /// The spans of the trace `root`, waiting for `at_least` (at most 10 s).
    #[must_use]
    pub fn spans(&self, root: &str, at_least: usize) -> Vec<crate::otlp::ReceivedSpan> {
        self.lambda
            .daemon
            .wait_for_spans(root, std::time::Duration::from_secs(10), |spans| {
                spans.len() >= at_least
            })
    }
}

impl ExportPath for OtelUdpLambda {
    fn invoke(&self, payload: &serde_json::Value, header: Option<&str>) -> Outcome {
        self.lambda.invoke(payload, header)
    }

    fn segs(&self, root: &str, at_least: usize) -> Vec<Seg> {
        self.spans(root, at_least)
            .iter()
            .map(Seg::from_otlp)
            .collect()
    }

    fn arrived(&self, root: &str) -> Vec<Seg> {
        self.lambda
            .daemon
            .wait_for_spans(root, std::time::Duration::ZERO, |_| true)
            .iter()
            .map(Seg::from_otlp)
            .collect()
    }
}
