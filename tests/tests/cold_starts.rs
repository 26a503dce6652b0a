//! A cold start's init: spans recorded in `main` before the runtime starts appear in the
//! first invocation's trace, under an `Init` subsegment beside the handler, and in no later
//! one. The function runs in a process of its own under the real `lambda_runtime`, its `main`
//! loading settings (a DynamoDB `GetItem` through the interceptor, and 30 ms of work) first.

use std::time::Duration;

use serde_json::{json, Value};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::frozen::{say_ready, setup, FunctionProcess, Setup, TABLE};
use xray_lambda_tests::harness::serve;
use xray_lambda_tests::runtime_api::Outcome;
use xray_lambda_tests::{child_mode, new_trace_header, TraceIds};

/// The function: `init`, then (in the runtime's own tokio runtime, as `#[tokio::main]` would)
/// `load_settings`, then the runtime. `XRAY_TEST_INIT_SPANS` more spans in the init;
/// `XRAY_TEST_SNAPSTART_HOOK` registers `SnapStartTracing`.
#[test]
#[ignore = "a child process of the cold start tests"]
fn function_process() {
    let _mode = child_mode("the cold start tests");
    let extra: usize = std::env::var("XRAY_TEST_INIT_SPANS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let hook = std::env::var_os("XRAY_TEST_SNAPSTART_HOOK").is_some();
    std::mem::forget(xray_lambda::init().expect("init"));
    serve(move || async move {
        xray_lambda_tests::handlers::load_settings(TABLE, extra).await;
        let mut runtime = lambda_runtime::Runtime::new(lambda_runtime::service_fn(
            xray_lambda_tests::handlers::handler,
        ));
        if hook {
            runtime = runtime
                .register_snapstart_resource(std::sync::Arc::new(xray_lambda::SnapStartTracing));
        }
        runtime
            .layer(xray_lambda::XrayRuntimeLayer)
            .run_concurrent()
            .await
    });
    say_ready();
    loop {
        std::thread::park();
    }
}

/// X-Ray's precision: documents' times are compared to it.
const MICROSECOND: f64 = 1e-6;

/// Two invocations, one after the other; their headers.
fn invoke_twice(setup: &Setup) -> (TraceIds, TraceIds) {
    let ids = (new_trace_header(Some("1")), new_trace_header(Some("1")));
    for header in [&ids.0, &ids.1] {
        let outcome = setup.runtime.block_on(setup.api.invoke_until_deadline(
            &json!({"action": "ok", "tag": header.root}),
            Some(&header.header),
            Duration::from_secs(10),
        ));
        assert!(matches!(outcome, Some(Outcome::Response(_))), "{outcome:?}");
    }
    ids
}

fn named<'a>(docs: &'a [Value], name: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["name"] == name)
}

fn start_with(setup: &Setup, mode: &str, added: &[(&'static str, String)]) -> FunctionProcess {
    let mut envs = setup.envs.clone();
    envs.extend(added.iter().cloned());
    FunctionProcess::start("function_process", mode, &envs)
}

#[test]
fn the_init_shows_in_the_first_invocation_only() {
    let Some(setup) = setup() else { return };
    let _function = start_with(&setup, "daemon", &[]);
    let (cold, warm) = invoke_twice(&setup);
    let docs = setup
        .daemon
        .wait_for_trace(&cold.root, Duration::from_secs(10), |d| {
            let all = flatten(d);
            named(&all, "handler").is_some() && named(&all, "Init").is_some()
        });
    let all = flatten(&docs);
    let init = named(&all, "Init").unwrap_or_else(|| panic!("Init: {all:#?}"));
    let handler = named(&all, "handler").expect("the handler");
    // Beside the handler, under Lambda's segment.
    assert_eq!(init["parent_id"], cold.parent.as_str());
    assert_eq!(handler["parent_id"], cold.parent.as_str());
    assert_eq!(handler["annotations"]["ColdStart"], true);
    assert!(
        init["aws"].get("cloudwatch_logs").is_none(),
        "not the handler: {init:#}"
    );
    let settings = named(&all, "load_settings").expect("load_settings");
    assert_eq!(settings["parent_id"], init["id"]);
    let call = named(&all, "DynamoDB").expect("the GetItem of the init");
    assert_eq!(call["parent_id"], settings["id"]);
    assert_eq!(call["aws"]["operation"], "GetItem");
    // Their real times: the init ran before the handler, and lasted its 30 ms of work. (To
    // X-Ray's microsecond: a document the writer writes keeps microseconds, the translator's
    // a float of nanoseconds.)
    let number = |doc: &Value, key: &str| doc[key].as_f64().expect("a time");
    assert!(number(init, "end_time") <= number(handler, "start_time") + MICROSECOND);
    assert!(number(settings, "end_time") - number(settings, "start_time") >= 0.030);
    assert!(number(init, "start_time") <= number(settings, "start_time") + MICROSECOND);
    // The next invocation carries none of it.
    let later = flatten(
        &setup
            .daemon
            .wait_for_trace(&warm.root, Duration::from_secs(10), |d| {
                named(&flatten(d), "handler").is_some()
            }),
    );
    for name in ["Init", "load_settings", "DynamoDB"] {
        assert!(named(&later, name).is_none(), "{name} again: {later:#?}");
    }
    assert_eq!(
        named(&later, "handler").expect("handler")["annotations"]["ColdStart"],
        false
    );
}

#[test]
fn a_large_init_keeps_within_xrays_limits() {
    let Some(setup) = setup() else { return };
    let _function = start_with(
        &setup,
        "large",
        &[("XRAY_TEST_INIT_SPANS", "600".to_owned())],
    );
    let (cold, _) = invoke_twice(&setup);
    let docs = setup
        .daemon
        .wait_for_trace(&cold.root, Duration::from_secs(10), |d| {
            flatten(d).iter().filter(|s| s["name"] == "setting").count() == 600
        });
    let all = flatten(&docs);
    assert_eq!(
        all.iter().filter(|s| s["name"] == "setting").count(),
        600,
        "every span of the init arrived"
    );
    // Every datagram within X-Ray's 64 kB, each document well formed (the stand-in parsed it).
    assert!(setup
        .daemon
        .datagrams()
        .iter()
        .all(|d| d.len() <= 64 * 1024));
    let init = named(&all, "Init").expect("Init");
    let settings = named(&all, "load_settings").expect("load_settings");
    assert_eq!(settings["parent_id"], init["id"]);
    assert!(
        setup.daemon.malformed().is_empty(),
        "{:?}",
        setup.daemon.malformed()
    );
}

#[test]
fn under_provisioned_concurrency_the_init_says_so_and_is_no_cold_start() {
    let Some(setup) = setup() else { return };
    let _function = start_with(
        &setup,
        "provisioned",
        &[(
            "AWS_LAMBDA_INITIALIZATION_TYPE",
            "provisioned-concurrency".to_owned(),
        )],
    );
    let (first, _) = invoke_twice(&setup);
    let all = flatten(
        &setup
            .daemon
            .wait_for_trace(&first.root, Duration::from_secs(10), |d| {
                let all = flatten(d);
                named(&all, "handler").is_some() && named(&all, "Init").is_some()
            }),
    );
    let init = named(&all, "Init").unwrap_or_else(|| panic!("Init: {all:#?}"));
    assert_eq!(
        init["annotations"]["InitializationType"],
        "provisioned-concurrency"
    );
    assert_eq!(
        named(&all, "handler").expect("handler")["annotations"]["ColdStart"],
        false,
        "Powertools' meaning: no request waited for this init"
    );
}

#[test]
fn on_lambdas_opentelemetry_endpoint_the_init_is_spans_under_the_same_parent() {
    let Some(setup) = setup() else { return };
    let _function = start_with(
        &setup,
        "otel",
        &[
            ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
            ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ],
    );
    let (cold, warm) = invoke_twice(&setup);
    let spans = setup
        .daemon
        .wait_for_spans(&cold.root, Duration::from_secs(10), |s| s.len() >= 4);
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.span.name == name)
            .unwrap_or_else(|| panic!("{name}: {spans:#?}"))
    };
    let hex = xray_lambda_tests::otlp::hex;
    let (init, handler) = (find("Init"), find("handler"));
    assert_eq!(hex(&init.span.parent_span_id), cold.parent);
    assert_eq!(hex(&handler.span.parent_span_id), cold.parent);
    assert_eq!(init.span.kind, 1, "Init is an internal span");
    let settings = find("load_settings");
    assert_eq!(settings.span.parent_span_id, init.span.span_id);
    assert!(spans
        .iter()
        .any(|s| s.span.parent_span_id == settings.span.span_id));
    let later = setup
        .daemon
        .wait_for_spans(&warm.root, Duration::from_secs(10), |s| !s.is_empty());
    assert!(later.iter().all(|s| s.span.name != "Init"), "{later:#?}");
}

#[test]
fn over_otlp_to_a_collector_the_init_is_spans_under_the_same_parent() {
    let Some(setup) = setup() else { return };
    let receiver = setup
        .runtime
        .block_on(xray_lambda_tests::otlp::Receiver::http());
    let _function = start_with(
        &setup,
        "otlp",
        &[
            ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("{}/v1/traces", receiver.base_url()),
            ),
        ],
    );
    let (cold, warm) = invoke_twice(&setup);
    let spans = receiver.wait_for_trace(&cold.root, 4, Duration::from_secs(10));
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.span.name == name)
            .unwrap_or_else(|| panic!("{name}: {spans:#?}"))
    };
    let hex = xray_lambda_tests::otlp::hex;
    let init = find("Init");
    assert_eq!(hex(&init.span.parent_span_id), cold.parent);
    assert_eq!(hex(&find("handler").span.parent_span_id), cold.parent);
    let settings = find("load_settings");
    assert_eq!(settings.span.parent_span_id, init.span.span_id);
    let call = spans
        .iter()
        .find(|s| s.span.parent_span_id == settings.span.span_id)
        .expect("the GetItem under load_settings");
    assert!(call.attribute("rpc.method").is_some(), "{call:#?}");
    let later = receiver.wait_for_trace(&warm.root, 1, Duration::from_secs(10));
    assert!(!later.is_empty());
    assert!(later.iter().all(|s| s.span.name != "Init"), "{later:#?}");
}

/// SnapStart, through `lambda_runtime`'s own restore flow (`restore/next`, answered by the
/// Runtime API stand-in): the first invocation after the restore is a cold start, holds the
/// init that ran for the snapshot (saying so), and with the hook a `Restore` subsegment.
fn restored(hook: bool) -> (Vec<Value>, Vec<Value>, TraceIds) {
    let setup = setup().expect("moto");
    let mut more = vec![("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start".to_owned())];
    if hook {
        more.push(("XRAY_TEST_SNAPSTART_HOOK", "1".to_owned()));
    }
    let _function = start_with(
        &setup,
        if hook { "restored-hook" } else { "restored" },
        &more,
    );
    let (first, second) = invoke_twice(&setup);
    assert_eq!(
        setup.api.restores(),
        1,
        "the runtime went through the restore"
    );
    let wait = |ids: &TraceIds| {
        flatten(
            &setup
                .daemon
                .wait_for_trace(&ids.root, Duration::from_secs(10), |d| {
                    named(&flatten(d), "handler").is_some()
                        && (ids.root != first.root || named(&flatten(d), "Init").is_some())
                }),
        )
    };
    (wait(&first), wait(&second), first)
}

#[test]
fn the_first_invocation_after_a_snapstart_restore_shows_the_restore() {
    if setup().is_none() {
        return;
    }
    let (first, second, ids) = restored(true);
    let handler = named(&first, "handler").expect("handler");
    assert_eq!(
        handler["annotations"]["ColdStart"], true,
        "a restore is a cold start"
    );
    let init = named(&first, "Init").unwrap_or_else(|| panic!("Init: {first:#?}"));
    assert_eq!(init["annotations"]["InitializationType"], "snap-start");
    let restore = named(&first, "Restore").unwrap_or_else(|| panic!("Restore: {first:#?}"));
    assert_eq!(restore["parent_id"], ids.parent.as_str());
    let time = |doc: &Value, key: &str| doc[key].as_f64().expect("a time");
    assert!(time(restore, "end_time") <= time(handler, "start_time") + MICROSECOND);
    assert!(
        time(init, "end_time") <= time(restore, "start_time") + MICROSECOND,
        "the init ran before the snapshot"
    );
    for name in ["Init", "Restore"] {
        assert!(named(&second, name).is_none(), "{name} again: {second:#?}");
    }
    assert_eq!(
        named(&second, "handler").expect("handler")["annotations"]["ColdStart"],
        false
    );
}

#[test]
fn without_the_hook_a_restored_function_is_traced_all_the_same() {
    if setup().is_none() {
        return;
    }
    let (first, _, _) = restored(false);
    let handler = named(&first, "handler").expect("handler");
    assert_eq!(handler["annotations"]["ColdStart"], true);
    assert!(named(&first, "Init").is_some(), "{first:#?}");
    assert!(
        named(&first, "Restore").is_none(),
        "no hook, no restore time: {first:#?}"
    );
}
