//! What users of Powertools' Tracer look for: `capture_response` and `capture_error` (the
//! handler's response and error as metadata, `<name> response` / `<name> error`), by the
//! attribute and by default; and Lambda's tenant id as an annotation. Real
//! `lambda_runtime::run_concurrent`, a daemon stand-in.

use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::Lambda;
use xray_lambda_tests::new_trace_header;

/// The response or the error the event asks for.
fn answer(event: &LambdaEvent<Value>) -> Result<Value, Error> {
    if event.payload["fail"] == true {
        return Err("the order could not be stored".into());
    }
    let big = "x".repeat(usize::try_from(
        event.payload["bytes"].as_u64().unwrap_or(0),
    )?);
    Ok(json!({ "order": 42, "big": big }))
}

#[xray_lambda::xray_handler(name = "captured", capture_response = true)]
async fn captured(event: LambdaEvent<Value>) -> Result<Value, Error> {
    answer(&event)
}

/// The defaults (the builder's, from the environment): the response not captured, the error
/// captured.
#[xray_lambda::xray_handler(name = "defaults")]
async fn defaults(event: LambdaEvent<Value>) -> Result<Value, Error> {
    answer(&event)
}

#[xray_lambda::xray_handler(name = "quiet", capture_error = false)]
async fn quiet(event: LambdaEvent<Value>) -> Result<Value, Error> {
    answer(&event)
}

async fn route(event: LambdaEvent<Value>) -> Result<Value, Error> {
    match event.payload["handler"].as_str() {
        Some("captured") => captured(event).await,
        Some("quiet") => quiet(event).await,
        _ => defaults(event).await,
    }
}

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<Lambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        for name in [
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
            "POWERTOOLS_TRACER_CAPTURE_ERROR",
        ] {
            std::env::remove_var(name);
        }
        let lambda = Lambda::start("powertools-fn", 4);
        lambda.runtime.spawn(async {
            if let Err(err) = lambda_runtime::run_concurrent(service_fn(route)).await {
                eprintln!("runtime stopped: {err}");
            }
        });
        lambda
    })
}

/// The handler subsegment of an invocation of `payload`, once sent.
fn handler_subsegment(payload: &Value, name: &str) -> Value {
    let ids = new_trace_header(Some("1"));
    let _ = harness().invoke(payload, Some(&ids.header));
    let docs = harness()
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(10), |docs| {
            flatten(docs).iter().any(|s| s["name"] == name)
        });
    flatten(&docs)
        .into_iter()
        .find(|s| s["name"] == name)
        .expect("the handler subsegment")
}

#[test]
fn capture_response_on_the_attribute_records_the_response_as_metadata() {
    let handler = handler_subsegment(&json!({ "handler": "captured" }), "captured");
    assert_eq!(
        handler["metadata"]["default"]["captured response"],
        json!({ "order": 42, "big": "" }),
        "{handler:#}"
    );
}

#[test]
fn by_default_the_response_is_not_recorded_and_the_error_is() {
    let ok = handler_subsegment(&json!({ "handler": "defaults" }), "defaults");
    assert!(
        ok["metadata"]["default"]["defaults response"].is_null(),
        "{ok:#}"
    );
    let failed = handler_subsegment(&json!({ "handler": "defaults", "fail": true }), "defaults");
    let error = &failed["metadata"]["default"]["defaults error"];
    assert_eq!(
        error["message"], "the order could not be stored",
        "{failed:#}"
    );
    assert!(error["type"].is_string(), "{failed:#}");
    // The cause is there as ever.
    assert_eq!(failed["fault"], true);
    assert_eq!(
        failed["cause"]["exceptions"][0]["message"],
        "the order could not be stored"
    );
}

#[test]
fn capture_error_false_keeps_the_cause_only() {
    let failed = handler_subsegment(&json!({ "handler": "quiet", "fail": true }), "quiet");
    assert!(
        failed["metadata"]["default"]["quiet error"].is_null(),
        "{failed:#}"
    );
    assert_eq!(
        failed["cause"]["exceptions"][0]["message"],
        "the order could not be stored"
    );
}

/// Lambda's tenant isolation: the invocation's tenant is a searchable annotation.
#[test]
fn a_tenants_invocation_is_annotated_with_its_tenant() {
    let handler = handler_subsegment(
        &json!({ "handler": "defaults", "tenant_id": "tenant-7" }),
        "defaults",
    );
    assert_eq!(
        handler["annotations"]["TenantId"], "tenant-7",
        "{handler:#}"
    );
    let without = handler_subsegment(&json!({ "handler": "defaults" }), "defaults");
    assert!(without["annotations"]["TenantId"].is_null(), "{without:#}");
}

#[test]
fn a_large_response_is_cut_with_the_marker_and_the_document_fits() {
    let handler = handler_subsegment(
        &json!({ "handler": "captured", "bytes": 200_000 }),
        "captured",
    );
    let captured = handler["metadata"]["default"]["captured response"]
        .as_str()
        .expect("cut, as text");
    assert!(
        captured.contains("truncated by xray-lambda"),
        "{}",
        &captured[captured.len().saturating_sub(120)..]
    );
    assert!(captured.len() < 64 * 1024);
}
