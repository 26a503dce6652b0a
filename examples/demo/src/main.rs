//! The local demo: runs the `hello` function's handler for a few invocations on this machine
//! with no AWS account and no server, and prints each invocation's trace tree.
//!
//! The real `lambda_runtime` polls a Lambda Runtime API served on loopback; each invocation
//! carries a trace header as Lambda's would. With `AWS_ENDPOINT_URL_DYNAMODB` set, `GetItem`
//! goes to that endpoint (moto, DynamoDB Local); without it, the AWS SDK's own replay test
//! client answers.

use std::time::{Duration, Instant};

use tracing::Instrument as _;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use lambda_runtime::service_fn;
use lambda_runtime::LambdaEvent;
use serde_json::json;
use serde_json::Value;
use xray_lambda_examples::{
    client_from, dynamodb_client, handler, hello, hello_http, orders_consumer,
};
use xray_lambda_tests::runtime_api::RuntimeApi;
use xray_lambda_tests::{new_trace_header, set_lambda_env};

const INVOCATIONS: [&str; 3] = ["Ada", "Grace", "Barbara"];

fn replay_client() -> aws_sdk_dynamodb::Client {
    replay_dynamodb(INVOCATIONS.len())
}

/// The endpoint in `AWS_ENDPOINT_URL_DYNAMODB` where one is set, else the SDK's replay client
/// for `n` calls.
async fn demo_dynamodb(n: usize) -> aws_sdk_dynamodb::Client {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        dynamodb_client().await
    } else {
        replay_dynamodb(n)
    }
}

/// A DynamoDB client answered by the SDK's replay client, for `n` calls.
fn replay_dynamodb(n: usize) -> aws_sdk_dynamodb::Client {
    let events = (0..n)
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

/// What `main` does before the runtime starts: the DynamoDB client, and settings read.
async fn load_settings() -> aws_sdk_dynamodb::Client {
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
    // Reading a settings file, say.
    tokio::time::sleep(Duration::from_millis(8)).await;
    client
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let api = RuntimeApi::start().await;
    set_lambda_env(&api.endpoint(), "hello");
    std::env::remove_var("AWS_XRAY_DAEMON_ADDRESS");
    let _tracing = xray_lambda::init()?;
    // The cold start's init, before the runtime starts: it shows in the first invocation's
    // trace, under `Init`.
    let client = load_settings()
        .instrument(tracing::info_span!("load_settings"))
        .await;
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
    connected().await?;
    // Kept until the end: the HTTP function's runtime polls it until the process exits.
    let _http_api = http_function().await?;
    orders().await?;
    // Kept until the end, as the HTTP function's.
    let _slow_api = timeout().await;
    Ok(())
}

/// A report that takes longer than its invocation's 400 ms.
#[xray_lambda::xray_handler(name = "handler")]
async fn slow_report(
    client: aws_sdk_dynamodb::Client,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let name = event.payload["firstName"].as_str().unwrap_or("world");
    let message = hello(&client, name).await?;
    render_report().await;
    Ok(json!({ "message": message }))
}

#[tracing::instrument]
async fn render_report() {
    tokio::time::sleep(Duration::from_secs(5)).await;
}

/// An invocation that times out: 100 ms before its deadline, what it has is printed, the step
/// still running marked; then the demo ends, as Lambda freezes the environment.
async fn timeout() -> RuntimeApi {
    let api = RuntimeApi::start().await;
    std::env::set_var("AWS_LAMBDA_RUNTIME_API", api.endpoint());
    let client = demo_dynamodb(1).await;
    tokio::spawn(lambda_runtime::run_concurrent(service_fn(move |event| {
        slow_report(client.clone(), event)
    })));
    let ids = new_trace_header(Some("1"));
    println!(
        "\n> a report with a 400 ms deadline that takes 5 s, with {}",
        ids.header
    );
    let outcome = api
        .invoke_until_deadline(
            &json!({ "firstName": "Ada" }),
            Some(&ids.header),
            Duration::from_millis(400),
        )
        .await;
    println!(
        "< {}",
        outcome.map_or_else(|| "timed out".to_owned(), |o| format!("{o:?}"))
    );
    // The deadline's tree reaches stderr before the demo ends.
    tokio::time::sleep(Duration::from_millis(50)).await;
    api
}

/// The queue the connected demo sends to.
const QUEUE_URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/greetings";

/// `hello`, then its greeting sent to an SQS queue: a connected trace.
#[xray_lambda::xray_handler(name = "handler")]
async fn hello_then_queue(
    clients: (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client),
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let (dynamodb, sqs) = clients;
    let name = event.payload["firstName"].as_str().unwrap_or("world");
    let message = hello(&dynamodb, name).await?;
    sqs.send_message()
        .queue_url(QUEUE_URL)
        .message_body(&message)
        .send()
        .await?;
    Ok(json!({ "message": message }))
}

/// A fourth invocation, run by hand: `hello` sends its greeting to an SQS queue (the SDK's
/// replay client stands in for SQS and keeps the request), and the queue receives the trace
/// header of the `SendMessage` subsegment, so in X-Ray the consumer's trace hangs under it.
async fn connected() -> Result<(), lambda_runtime::Error> {
    let request = http::Request::builder()
        .uri("https://sqs.us-east-1.amazonaws.com/")
        .body(SdkBody::empty())
        .expect("request");
    let response = http::Response::builder()
        .status(200)
        .header("x-amzn-requestid", "DEMOQUEUEREPLAYED")
        .body(SdkBody::from(
            r#"{"MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"}"#,
        ))
        .expect("response");
    let queue = StaticReplayClient::new(vec![ReplayEvent::new(request, response)]);
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::new()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "demo", "demo", None, None, "demo",
            ))
            .http_client(queue.clone())
            .interceptor(xray_lambda::aws::XrayInterceptor::new())
            .build(),
    );
    let ids = new_trace_header(Some("1"));
    println!(
        "\n> hello, then its greeting to an SQS queue, with {}",
        ids.header
    );
    let mut context = lambda_runtime::Context::default();
    "demo-queue".clone_into(&mut context.request_id);
    context.xray_trace_id = Some(ids.header);
    let event = LambdaEvent::new(json!({ "firstName": "Ada" }), context);
    let outcome = hello_then_queue((replay_dynamodb(1), sqs), event).await;
    println!("< {outcome:?}");
    let header = queue
        .actual_requests()
        .next()
        .and_then(|r| r.headers().get("x-amzn-trace-id"))
        .unwrap_or("none")
        .to_owned();
    // Let the tree reach stderr first.
    tokio::task::yield_now().await;
    println!("  the queue received X-Amzn-Trace-Id: {header}");
    println!("  (its Parent is the id of the SQS SendMessage subsegment in the tree)");
    Ok(())
}

/// The `hello-http` function under the real `lambda_http::run_concurrent`, polling a Runtime
/// API of its own, invoked with the event an API Gateway HTTP API sends for
/// `GET /hello/Grace?token=...` (the query string stays out of the trace).
async fn http_function() -> Result<RuntimeApi, lambda_runtime::Error> {
    let api = RuntimeApi::start().await;
    // The first runtime read its endpoint when it started: this one polls the new API.
    std::env::set_var("AWS_LAMBDA_RUNTIME_API", api.endpoint());
    let client = demo_dynamodb(1).await;
    // On a thread of its own, as a `main` awaits it: spawning `lambda_http::run_concurrent`
    // of any `impl IntoResponse` handler as a task trips rustc's higher-ranked `Send`
    // inference (with or without the attribute).
    std::thread::spawn(move || {
        xray_lambda_tests::harness::tokio_runtime().block_on(lambda_http::run_concurrent(
            lambda_http::service_fn(move |request| hello_http(client.clone(), request)),
        ))
    });
    let ids = new_trace_header(Some("1"));
    println!(
        "\n> hello-http: GET /hello/Grace?token=demo-secret through an HTTP API, with {}",
        ids.header
    );
    let outcome = api
        .invoke(&http_api_event("Grace"), Some(&ids.header))
        .await;
    println!("< {outcome:?}");
    tokio::task::yield_now().await;
    Ok(api)
}

/// What an API Gateway HTTP API (payload 2.0) sends for `GET /hello/{name}`.
fn http_api_event(name: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "GET /hello/{name}",
        "rawPath": format!("/hello/{name}"),
        "rawQueryString": "token=demo-secret",
        "headers": {
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-proto": "https"
        },
        "queryStringParameters": { "token": "demo-secret" },
        "pathParameters": { "name": name },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": format!("/hello/{name}"),
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0"
            },
            "requestId": "demo-http",
            "routeKey": "GET /hello/{name}",
            "stage": "$default",
            "time": "26/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_795_694_400_000_u64
        },
        "isBase64Encoded": false
    })
}

/// The `orders-consumer` function on an SQS batch of three orders, the second not an order at
/// all: each message its own subsegment with its `PutItem`, the second a fault, reported as a
/// partial batch failure (`FailedRecords=1`). Each message carries its producer's header.
async fn orders() -> Result<(), lambda_runtime::Error> {
    let client = demo_dynamodb(2).await;
    let message = |n: usize, body: &str| {
        let producer = new_trace_header(Some("1"));
        json!({
            "messageId": format!("order-message-{n}"),
            "receiptHandle": "demo",
            "body": body,
            "attributes": { "AWSTraceHeader": producer.header },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
            "awsRegion": "us-east-1"
        })
    };
    let batch = json!({ "Records": [
        message(1, r#"{"orderId": "o-1001"}"#),
        message(2, "not an order"),
        message(3, r#"{"orderId": "o-1003"}"#),
    ]});
    let ids = new_trace_header(Some("1"));
    println!(
        "\n> orders-consumer: an SQS batch of 3 orders, the second malformed, with {}",
        ids.header
    );
    let mut context = lambda_runtime::Context::default();
    "demo-orders".clone_into(&mut context.request_id);
    context.xray_trace_id = Some(ids.header);
    let event = LambdaEvent::new(serde_json::from_value(batch)?, context);
    let outcome = orders_consumer(client, event).await;
    println!("< {outcome:?}");
    tokio::task::yield_now().await;
    Ok(())
}
