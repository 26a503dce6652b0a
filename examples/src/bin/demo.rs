//! The local demo: runs the `hello` function's handler for a few invocations on this machine
//! with no AWS account and no server, and prints each invocation's trace tree.
//!
//! The real `lambda_runtime` polls a Lambda Runtime API served on loopback; each invocation
//! carries a trace header as Lambda's would. With `AWS_ENDPOINT_URL_DYNAMODB` set, `GetItem`
//! goes to that endpoint (moto, DynamoDB Local); without it, the AWS SDK's own replay test
//! client answers.

use std::time::Instant;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use lambda_runtime::service_fn;
use serde_json::json;
use xray_lambda_examples::{client_from, dynamodb_client, handler};
use xray_lambda_tests::runtime_api::RuntimeApi;
use xray_lambda_tests::{new_trace_header, set_lambda_env};

const INVOCATIONS: [&str; 3] = ["Ada", "Grace", "Barbara"];

fn replay_client() -> aws_sdk_dynamodb::Client {
    let events = (0..INVOCATIONS.len())
        .map(|n| {
            let request = http::Request::builder()
                .uri("https://dynamodb.us-east-1.amazonaws.com/")
                .body(SdkBody::empty())
                .expect("request");
            let response = http::Response::builder()
                .status(200)
                .header("x-amzn-requestid", format!("DEMO{n}REPLAYED"))
                .body(SdkBody::from(r#"{"Item":{"id":{"S":"12345"}}}"#))
                .expect("response");
            ReplayEvent::new(request, response)
        })
        .collect();
    client_from(
        aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("demo", "demo", None, None, "demo"))
            .http_client(StaticReplayClient::new(events)),
    )
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let api = RuntimeApi::start().await;
    set_lambda_env(&api.endpoint(), "hello");
    std::env::remove_var("AWS_XRAY_DAEMON_ADDRESS");
    let _tracing = xray_lambda::init()?;
    let client = if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        println!("DynamoDB: the endpoint in AWS_ENDPOINT_URL_DYNAMODB");
        dynamodb_client().await
    } else {
        println!(
            "DynamoDB: no AWS_ENDPOINT_URL_DYNAMODB set, so GetItem is answered by the AWS SDK's \
             replay test client (aws-smithy-http-client's StaticReplayClient)"
        );
        replay_client()
    };
    tokio::spawn(lambda_runtime::run_concurrent(service_fn(move |event| {
        handler(client.clone(), event)
    })));
    let started = Instant::now();
    for name in INVOCATIONS {
        let ids = new_trace_header(Some("1"));
        println!(
            "\n> invoke {{\"firstName\": \"{name}\"}} with {}",
            ids.header
        );
        let outcome = api
            .invoke(&json!({ "firstName": name }), Some(&ids.header))
            .await;
        println!("< {outcome:?}");
        // Let the tree reach stderr before the next invocation's lines.
        tokio::task::yield_now().await;
    }
    let elapsed = started.elapsed();
    println!(
        "\n{} invocations in {:.1} ms. In Lambda (AWS_XRAY_DAEMON_ADDRESS set) each tree above is \
         one UDP datagram to the X-Ray daemon.",
        INVOCATIONS.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(())
}
