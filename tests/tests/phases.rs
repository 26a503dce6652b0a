//! `builder().aws_call_phases(true)`: every AWS call shows its phases as the X-Ray Go SDK
//! records them — `marshal`, each `attempt`, `unmarshal` — on both a call answered at once and
//! one throttled twice. (A process of its own: the setting is the pipeline's.)

use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use xray_lambda::aws::XrayInterceptor;
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::{use_moto, Lambda};
use xray_lambda_tests::moto::Moto;
use xray_lambda_tests::new_trace_header;
use xray_lambda_tests::proxy::{self, Fault};

struct Clients {
    plain: aws_sdk_dynamodb::Client,
    throttled: aws_sdk_dynamodb::Client,
}

static CLIENTS: OnceLock<Clients> = OnceLock::new();

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let c = CLIENTS.get().expect("clients");
    let client = if event.payload["throttled"] == true {
        &c.throttled
    } else {
        &c.plain
    };
    client.list_tables().limit(1).send().await?;
    Ok(json!({}))
}

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<(Lambda, Moto)> = OnceLock::new();
    &HARNESS
        .get_or_init(|| {
            let moto = Moto::start().expect("moto");
            use_moto(&moto);
            let lambda = Lambda::start_with("phases-fn", 4, &[], |b| b.aws_call_phases(true));
            lambda.runtime.block_on(async {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let throttle = Fault {
                    status: 400,
                    code: "ThrottlingException",
                    times: 2,
                };
                let throttling = proxy::start(moto.endpoint(), throttle).await;
                let client = |endpoint: Option<&str>| {
                    let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk)
                        .retry_config(
                            aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                                .with_max_attempts(3)
                                .with_initial_backoff(Duration::from_millis(1)),
                        )
                        .interceptor(XrayInterceptor::new());
                    if let Some(endpoint) = endpoint {
                        config = config.endpoint_url(endpoint);
                    }
                    aws_sdk_dynamodb::Client::from_conf(config.build())
                };
                assert!(CLIENTS
                    .set(Clients {
                        plain: client(None),
                        throttled: client(Some(&throttling)),
                    })
                    .is_ok());
            });
            lambda.runtime.spawn(async {
                if let Err(err) = lambda_runtime::run_concurrent(service_fn(handler)).await {
                    eprintln!("runtime stopped: {err}");
                }
            });
            (lambda, moto)
        })
        .0
}

/// The names of the call's children, in time order, once there are `n`.
fn phases(payload: &Value, n: usize) -> Vec<String> {
    let h = harness();
    let ids = new_trace_header(Some("1"));
    let outcome = h.runtime.block_on(h.api.invoke(payload, Some(&ids.header)));
    let _ = outcome.unwrap_response();
    let docs = h
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(20), |d| {
            flatten(d).len() >= n + 2
        });
    let all = flatten(&docs);
    let call = all
        .iter()
        .find(|s| s["namespace"] == "aws")
        .expect("the call");
    let mut children: Vec<&Value> = all
        .iter()
        .filter(|s| s["parent_id"] == call["id"])
        .collect();
    children.sort_by(|a, b| {
        a["start_time"]
            .as_f64()
            .partial_cmp(&b["start_time"].as_f64())
            .expect("times")
    });
    children
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_call_answered_at_once_shows_marshal_attempt_unmarshal() {
    assert_eq!(phases(&json!({}), 3), ["marshal", "attempt", "unmarshal"]);
}

#[test]
fn a_call_throttled_twice_shows_three_attempts_between_marshal_and_unmarshal() {
    assert_eq!(
        phases(&json!({ "throttled": true }), 5),
        ["marshal", "attempt", "attempt", "attempt", "unmarshal"]
    );
}
