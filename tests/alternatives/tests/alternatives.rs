//! The same function wired three ways, side by side, and what each sends to the X-Ray daemon
//! for the same invocations: this crate; `lambda_runtime`'s own `OpenTelemetryLayer` with
//! opentelemetry-aws 0.21's `XrayExporter` and `XrayDaemonClient`; `awssdk-instrumentation`
//! 0.3 as its README wires it ("Manual Setup", the expansion of `make_lambda_runtime!`). Each
//! runs as a function process of its own against one Runtime API and one daemon stand-in,
//! under `run_concurrent` with 8 invocations at once, each making one DynamoDB `GetItem`
//! (moto).
//!
//! The test prints the table (`--nocapture`), checks this crate's column, and checks the
//! alternatives' columns against what the docs say of them (docs/migrating.md,
//! BENCHMARKS.md): should a new version of one change, the test says so.

use std::collections::BTreeSet;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::frozen::{say_ready, setup, FunctionProcess, Setup, TABLE};
use xray_lambda_tests::harness::serve;
use xray_lambda_tests::{child_mode, new_trace_header, TraceIds};

/// The function's work: one `GetItem` on [`TABLE`].
async fn get_item(client: &aws_sdk_dynamodb::Client) -> Result<bool, Error> {
    let key = aws_sdk_dynamodb::types::AttributeValue::S("order-1".to_owned());
    let output = client
        .get_item()
        .table_name(TABLE)
        .key("id", key)
        .send()
        .await?;
    Ok(output.item.is_some())
}

/// The SDK's configuration from the function's environment (moto's endpoint).
async fn sdk() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

mod ours {
    use super::*;

    #[xray_lambda::xray_handler]
    pub async fn handler(
        client: aws_sdk_dynamodb::Client,
        _event: LambdaEvent<Value>,
    ) -> Result<Value, Error> {
        Ok(json!({ "found": get_item(&client).await? }))
    }

    pub(crate) fn run() {
        std::mem::forget(xray_lambda::init().expect("init"));
        serve(|| async {
            let sdk = sdk().await;
            let client = aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .interceptor(xray_lambda::aws::XrayInterceptor::new())
                    .build(),
            );
            lambda_runtime::Runtime::new(service_fn(move |event| handler(client.clone(), event)))
                .run_concurrent()
                .await
        });
    }
}

mod otel_layer {
    use super::*;
    use lambda_runtime::layers::{OpenTelemetryFaasTrigger, OpenTelemetryLayer};
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_aws::trace::XrayIdGenerator;
    use opentelemetry_aws::xray_exporter::{daemon_client::XrayDaemonClient, XrayExporter};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    #[tracing::instrument(skip_all)]
    async fn handler(
        client: aws_sdk_dynamodb::Client,
        _event: LambdaEvent<Value>,
    ) -> Result<Value, Error> {
        Ok(json!({ "found": get_item(&client).await? }))
    }

    pub(crate) fn run() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_id_generator(XrayIdGenerator::default())
            .with_batch_exporter(XrayExporter::new(XrayDaemonClient::default()))
            .build();
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("hello")))
            .init();
        serve(move || async move {
            let client = aws_sdk_dynamodb::Client::new(&sdk().await);
            let flush = provider.clone();
            lambda_runtime::Runtime::new(service_fn(move |event| handler(client.clone(), event)))
                .layer(
                    OpenTelemetryLayer::new(move || {
                        let _ = flush.force_flush();
                    })
                    .with_trigger(OpenTelemetryFaasTrigger::Datasource),
                )
                // Its service is not `Clone`: `run_concurrent` does not build.
                .run()
                .await
        });
    }
}

// awssdk-instrumentation's providers, at the crate root as its macros expect.
awssdk_instrumentation::aws_sdk_config_provider!();
awssdk_instrumentation::aws_sdk_client_provider!(
    dynamodb_client() -> aws_sdk_dynamodb::Client,
    interceptor = awssdk_instrumentation::interceptor::DefaultInterceptor::new()
);

mod awssdk {
    use super::*;
    use awssdk_instrumentation::init::default_telemetry_init;
    use awssdk_instrumentation::lambda::layer::{
        DefaultInstrumentor, OTelFaasTrigger, TracingLayer,
    };
    use awssdk_instrumentation::lambda::macros::default_flush_tracer;

    async fn handler(_event: LambdaEvent<Value>) -> Result<Value, Error> {
        Ok(json!({ "found": get_item(&crate::dynamodb_client()).await? }))
    }

    pub(crate) fn run() {
        serve(|| async {
            let tracer_provider = default_telemetry_init();
            crate::sdk_config_init().await;
            lambda_runtime::Runtime::new(service_fn(handler))
                .layer(
                    <TracingLayer<_, DefaultInstrumentor>>::new(move || {
                        default_flush_tracer(&tracer_provider);
                    })
                    .with_trigger(OTelFaasTrigger::default()),
                )
                // As its README runs it; its service is not `Clone`: `run_concurrent` does not
                // build.
                .run()
                .await
        });
    }
}

/// The function process: one of the three wirings, by mode.
#[test]
#[ignore = "a child process of the side-by-side test"]
fn function_process() {
    match child_mode("alternatives_side_by_side").as_str() {
        "ours" => ours::run(),
        "otel_layer" => otel_layer::run(),
        "awssdk" => awssdk::run(),
        other => panic!("no wiring {other}"),
    }
    say_ready();
    loop {
        std::thread::park();
    }
}

/// What one wiring sent for 8 invocations at once.
#[derive(Debug, PartialEq, Eq)]
struct Facts {
    /// Invocations with a document hung under Lambda's segment (its `Parent`, in its `Root`).
    linked: usize,
    /// Invocations whose trace holds exactly one document for their DynamoDB call.
    call_in_own_trace: usize,
    /// The `aws` keys of a DynamoDB call's document (an X-Ray `aws` subsegment).
    call_aws_keys: BTreeSet<String>,
    /// Documents whose trace id is none of the invocations' (roots of their own).
    stray_documents: usize,
    /// Documents with a key twice (X-Ray's reading of one is not defined).
    duplicate_keys: usize,
}

fn is_dynamodb_call(doc: &Value) -> bool {
    doc["name"].as_str().is_some_and(|n| n.contains("DynamoDB"))
        || doc["aws"]["operation"] == "GetItem"
        || doc["metadata"].to_string().contains("GetItem")
        || doc["annotations"].to_string().contains("GetItem")
}

fn facts(setup: &Setup, invocations: &[TraceIds]) -> Facts {
    let _ = setup
        .daemon
        .wait_until_quiet(Duration::from_millis(700), Duration::from_secs(15));
    // Read as X-Ray would at best (a key given twice: the last), and counted.
    let mut duplicate_keys = 0;
    let mut documents = Vec::new();
    for datagram in setup.daemon.datagrams() {
        let Some(newline) = datagram.iter().position(|&b| b == b'\n') else {
            continue;
        };
        let body = &datagram[newline + 1..];
        if xray_lambda_tests::daemon::strict_json(body).is_err() {
            duplicate_keys += 1;
        }
        if let Ok(document) = serde_json::from_slice::<Value>(body) {
            documents.push(document);
        }
    }
    let docs = flatten(&documents);
    let mut facts = Facts {
        linked: 0,
        call_in_own_trace: 0,
        call_aws_keys: BTreeSet::new(),
        stray_documents: 0,
        duplicate_keys,
    };
    for ids in invocations {
        let of_trace: Vec<&Value> = docs.iter().filter(|d| d["trace_id"] == ids.root).collect();
        if of_trace.iter().any(|d| d["parent_id"] == ids.parent) {
            facts.linked += 1;
        }
        let calls: Vec<&&Value> = of_trace.iter().filter(|d| is_dynamodb_call(d)).collect();
        if calls.len() == 1 {
            facts.call_in_own_trace += 1;
            if let Some(aws) = calls[0]["aws"].as_object() {
                facts.call_aws_keys = aws.keys().cloned().collect();
            }
        }
    }
    facts.stray_documents = docs
        .iter()
        .filter(|d| !invocations.iter().any(|ids| d["trace_id"] == ids.root))
        .count();
    facts
}

/// Runs `mode` as the function and sends it 8 invocations at once.
fn measure(mode: &str) -> Facts {
    let Some(setup) = setup() else {
        panic!("moto is needed");
    };
    let mut envs = setup.envs.clone();
    envs.push(("AWS_LAMBDA_MAX_CONCURRENCY", "8".to_owned()));
    let function = FunctionProcess::start("function_process", mode, &envs);
    let invocations: Vec<TraceIds> = (0..8).map(|_| new_trace_header(Some("1"))).collect();
    setup.runtime.block_on(async {
        let mut running = tokio::task::JoinSet::new();
        for ids in &invocations {
            let (api, header) = (setup.api.clone(), ids.header.clone());
            running.spawn(async move {
                api.invoke_until_deadline(&json!({}), Some(&header), Duration::from_secs(20))
                    .await
            });
        }
        while let Some(outcome) = running.join_next().await {
            assert!(
                matches!(
                    outcome,
                    Ok(Some(xray_lambda_tests::runtime_api::Outcome::Response(_)))
                ),
                "{mode}: {outcome:?}"
            );
        }
    });
    let facts = facts(&setup, &invocations);
    drop(function);
    facts
}

#[test]
fn alternatives_side_by_side() {
    if std::env::var_os("XRAY_TEST_CHILD").is_some() {
        return;
    }
    let ours = measure("ours");
    let otel_layer = measure("otel_layer");
    let awssdk = measure("awssdk");
    let keys = |f: &Facts| {
        f.call_aws_keys
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("| 8 invocations at once | xray-lambda | OpenTelemetryLayer + XrayExporter | awssdk-instrumentation |");
    println!("|---|---|---|---|");
    println!(
        "| hung under Lambda's segment (its `Parent`) | {} of 8 | {} of 8 | {} of 8 |",
        ours.linked, otel_layer.linked, awssdk.linked
    );
    println!(
        "| the DynamoDB call in its own invocation's trace, once | {} of 8 | {} of 8 | {} of 8 |",
        ours.call_in_own_trace, otel_layer.call_in_own_trace, awssdk.call_in_own_trace
    );
    println!(
        "| the call's `aws` members | {} | {} | {} |",
        keys(&ours),
        keys(&otel_layer),
        keys(&awssdk)
    );
    println!(
        "| documents in no invocation's trace | {} | {} | {} |",
        ours.stray_documents, otel_layer.stray_documents, awssdk.stray_documents
    );
    println!(
        "| documents with a key twice | {} | {} | {} |",
        ours.duplicate_keys, otel_layer.duplicate_keys, awssdk.duplicate_keys
    );
    // This crate: every invocation linked, its call in its own trace with X-Ray's fields.
    assert_eq!(ours.linked, 8, "{ours:?}");
    assert_eq!(ours.call_in_own_trace, 8, "{ours:?}");
    for key in ["operation", "region", "request_id", "retries", "table_name"] {
        assert!(ours.call_aws_keys.contains(key), "{key}: {ours:?}");
    }
    assert_eq!(ours.stray_documents, 0, "{ours:?}");
    assert_eq!(ours.duplicate_keys, 0, "{ours:?}");
    // What the docs say of the alternatives (docs/migrating.md, BENCHMARKS.md).
    // `OpenTelemetryLayer` links its span to no parent, and the SDK's own spans (hyper's,
    // smithy's) become traces of their own.
    assert_eq!(otel_layer.linked, 0, "{otel_layer:?}");
    assert!(otel_layer.stray_documents > 0, "{otel_layer:?}");
    // awssdk-instrumentation links under Lambda's segment and records the call, without a
    // retry count, in documents that name `service.name` twice.
    assert_eq!(awssdk.linked, 8, "{awssdk:?}");
    assert_eq!(awssdk.call_in_own_trace, 8, "{awssdk:?}");
    assert!(!awssdk.call_aws_keys.contains("retries"), "{awssdk:?}");
    assert!(awssdk.duplicate_keys > 0, "{awssdk:?}");
}
