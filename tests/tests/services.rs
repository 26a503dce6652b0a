//! Clients other than DynamoDB, against moto on loopback: each call an `aws` subsegment with
//! operation, region, request id, status and retries, plus the resource the call names (SQS
//! `queue_url`, SNS `topic_arn`, S3 `bucket_name`, Lambda `function_name`); never a message
//! body, object key or payload.

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

/// Looks like a credential; must never leave the function.
const SECRET: &str = "SECRET-9e2d-message-body";

struct Clients {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    s3: aws_sdk_s3::Client,
    lambda: aws_sdk_lambda::Client,
    /// Behind the proxy, which answers every call 200 with `x-amz-function-error`.
    lambda_failing: aws_sdk_lambda::Client,
    queue_url: String,
    topic_arn: String,
}

static CLIENTS: OnceLock<Clients> = OnceLock::new();

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let c = CLIENTS.get().expect("clients");
    let ok = match event.payload["service"].as_str().unwrap_or_default() {
        "sqs" => c
            .sqs
            .send_message()
            .queue_url(&c.queue_url)
            .message_body(SECRET)
            .delay_seconds(1)
            .message_attributes(
                "tenant",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(SECRET)
                    .build()
                    .expect("attribute"),
            )
            .send()
            .await
            .is_ok(),
        "sqs_batch" => {
            let entry = |id: &str| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(SECRET)
                    .build()
                    .expect("entry")
            };
            c.sqs
                .send_message_batch()
                .queue_url(&c.queue_url)
                .entries(entry("a"))
                .entries(entry("b"))
                .send()
                .await
                .is_ok()
        }
        "sqs_attributes" => c
            .sqs
            .get_queue_attributes()
            .queue_url(&c.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .is_ok(),
        "sqs_receive" => c
            .sqs
            .receive_message()
            .queue_url(&c.queue_url)
            .max_number_of_messages(7)
            .visibility_timeout(30)
            .wait_time_seconds(0)
            .message_attribute_names("tenant")
            .send()
            .await
            .is_ok(),
        "s3_list" => {
            c.s3.list_objects_v2()
                .bucket("photos")
                .prefix(SECRET)
                .send()
                .await
                .is_ok()
        }
        "lambda_invoke" => c
            .lambda_failing
            .invoke()
            .function_name("resize-images")
            .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
            .log_type(aws_sdk_lambda::types::LogType::Tail)
            .qualifier("live")
            .payload(aws_sdk_lambda::primitives::Blob::new(SECRET))
            .send()
            .await
            .is_ok(),
        "sns" => c
            .sns
            .publish()
            .topic_arn(&c.topic_arn)
            .message(SECRET)
            .send()
            .await
            .is_ok(),
        "s3" => {
            c.s3.put_object()
                .bucket("photos")
                .key(format!("{SECRET}/key.txt"))
                .body(SECRET.as_bytes().to_vec().into())
                .send()
                .await
                .is_ok()
        }
        // No such function in moto: a 404 the subsegment records as an error.
        "lambda" => c
            .lambda
            .get_function()
            .function_name("resize-images")
            .send()
            .await
            .is_ok(),
        other => return Err(format!("unknown service {other}").into()),
    };
    Ok(json!({ "ok": ok }))
}

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<(Lambda, Moto)> = OnceLock::new();
    &HARNESS
        .get_or_init(|| {
            let moto = Moto::start().expect("moto");
            use_moto(&moto);
            std::env::set_var("AWS_ENDPOINT_URL", moto.endpoint());
            let moto_endpoint = moto.endpoint();
            let lambda = Lambda::start("services-fn", 4);
            let clients = lambda.runtime.block_on(async {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let sqs = aws_sdk_sqs::Client::from_conf(
                    aws_sdk_sqs::config::Builder::from(&sdk)
                        .interceptor(XrayInterceptor::new())
                        .build(),
                );
                let sns = aws_sdk_sns::Client::from_conf(
                    aws_sdk_sns::config::Builder::from(&sdk)
                        .interceptor(XrayInterceptor::new())
                        .build(),
                );
                // S3 behind a tap that adds the `x-amz-id-2` moto leaves out.
                let (s3_endpoint, _) = proxy::start_adding(
                    moto_endpoint.clone(),
                    Fault::NONE,
                    &[("x-amz-id-2", "host-id-2/abc=")],
                )
                .await;
                let s3 = aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&sdk)
                        .endpoint_url(s3_endpoint)
                        .force_path_style(true)
                        .interceptor(XrayInterceptor::new())
                        .build(),
                );
                let lambda = aws_sdk_lambda::Client::from_conf(
                    aws_sdk_lambda::config::Builder::from(&sdk)
                        .interceptor(XrayInterceptor::new())
                        .build(),
                );
                // A function that fails in its own code: a 200 with `x-amz-function-error`.
                let failing = Fault {
                    status: 200,
                    code: "",
                    times: u32::MAX,
                };
                let (lambda_endpoint, _) = proxy::start_adding(
                    moto_endpoint.clone(),
                    failing,
                    &[("x-amz-function-error", "Unhandled")],
                )
                .await;
                let lambda_failing = aws_sdk_lambda::Client::from_conf(
                    aws_sdk_lambda::config::Builder::from(&sdk)
                        .endpoint_url(lambda_endpoint)
                        .interceptor(XrayInterceptor::new())
                        .build(),
                );
                let (queue_url, topic_arn) = seed(&sqs, &sns, &s3).await;
                Clients {
                    sqs,
                    sns,
                    s3,
                    lambda,
                    lambda_failing,
                    queue_url,
                    topic_arn,
                }
            });
            assert!(CLIENTS.set(clients).is_ok());
            lambda.runtime.spawn(async {
                if let Err(err) = lambda_runtime::run_concurrent(service_fn(handler)).await {
                    eprintln!("runtime stopped: {err}");
                }
            });
            (lambda, moto)
        })
        .0
}

/// The resources the calls use, made outside any invocation (not traced); something to list
/// and to receive.
async fn seed(
    sqs: &aws_sdk_sqs::Client,
    sns: &aws_sdk_sns::Client,
    s3: &aws_sdk_s3::Client,
) -> (String, String) {
    let queue_url = sqs
        .create_queue()
        .queue_name("orders")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let topic_arn = sns
        .create_topic()
        .name("orders")
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("topic arn");
    s3.create_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("bucket");
    s3.put_object()
        .bucket("photos")
        .key(format!("{SECRET}/listed.txt"))
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect("object");
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body("to receive")
        .send()
        .await
        .expect("message");
    (queue_url, topic_arn)
}

/// The call's subsegment, checked for what every call carries.
fn call(service: &str, name: &str, operation: &str, status: u16) -> (Value, Value) {
    let h = harness();
    let ids = new_trace_header(Some("1"));
    let response = h
        .invoke(&json!({ "service": service }), Some(&ids.header))
        .unwrap_response();
    let docs = h
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(15), |d| {
            flatten(d).len() >= 2
        });
    let subsegments = flatten(&docs);
    let call = subsegments
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("a {name} subsegment: {subsegments:#?}"))
        .clone();
    assert_eq!(call["namespace"], "aws");
    assert_eq!(call["aws"]["operation"], operation);
    assert_eq!(call["aws"]["region"], "us-east-1");
    assert_eq!(call["aws"]["retries"], 0);
    assert!(
        call["aws"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{call}"
    );
    assert_eq!(call["http"]["response"]["status"], status);
    // The response's length, as the X-Ray SDKs record it (moto sends `Content-Length`).
    assert!(
        call["http"]["response"]["content_length"].is_u64(),
        "{call}"
    );
    let handler = subsegments
        .iter()
        .find(|s| s["name"] == "handler")
        .expect("handler");
    assert_eq!(call["parent_id"], handler["id"]);
    assert!(!call.to_string().contains("SECRET"), "{call}");
    (response, call)
}

#[test]
fn sqs_records_the_queue_url() {
    let (response, call) = call("sqs", "SQS", "SendMessage", 200);
    assert_eq!(response["ok"], true);
    let queue_url = &CLIENTS.get().expect("clients").queue_url;
    assert_eq!(call["aws"]["queue_url"], queue_url.as_str());
    // The SDKs' whitelist: the delay, the attributes' names (not their values), the id.
    assert_eq!(call["aws"]["delay_seconds"], 1);
    assert_eq!(call["aws"]["message_attribute_names"], json!(["tenant"]));
    assert!(
        call["aws"]["message_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{call}"
    );
}

#[test]
fn sqs_batches_are_counted() {
    let (response, call) = call("sqs_batch", "SQS", "SendMessageBatch", 200);
    assert_eq!(response["ok"], true);
    assert_eq!(call["aws"]["message_count"], 2);
    assert_eq!(call["aws"]["successful_count"], 2);
    assert_eq!(call["aws"]["failed_count"], 0);
}

#[test]
fn sqs_receives_record_their_parameters_and_count() {
    let (response, call) = call("sqs_receive", "SQS", "ReceiveMessage", 200);
    assert_eq!(response["ok"], true);
    let aws = &call["aws"];
    assert_eq!(aws["max_number_of_messages"], 7);
    assert_eq!(aws["visibility_timeout"], 30);
    assert_eq!(aws["wait_time_seconds"], 0);
    assert_eq!(aws["message_attribute_names"], json!(["tenant"]));
    assert!(aws["message_count"].as_u64() >= Some(1), "{call}");
}

/// As the X-Ray SDKs record it: the names asked for, and the queue's attributes (its
/// configuration) in the answer.
#[test]
fn sqs_queue_attributes_are_recorded_as_the_sdks_record_them() {
    let (response, call) = call("sqs_attributes", "SQS", "GetQueueAttributes", 200);
    assert_eq!(response["ok"], true);
    let aws = &call["aws"];
    assert_eq!(aws["attribute_names"], json!(["All"]), "{call}");
    assert!(aws["attributes"]["VisibilityTimeout"].is_string(), "{call}");
    assert!(
        aws["attributes"]["QueueArn"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws:sqs:")),
        "{call}"
    );
}

#[test]
fn sns_records_the_topic_arn() {
    let (response, call) = call("sns", "SNS", "Publish", 200);
    assert_eq!(response["ok"], true);
    let topic_arn = &CLIENTS.get().expect("clients").topic_arn;
    assert_eq!(call["aws"]["topic_arn"], topic_arn.as_str());
}

#[test]
fn s3_records_the_bucket_not_the_key() {
    let (response, call) = call("s3", "S3", "PutObject", 200);
    assert_eq!(response["ok"], true);
    assert_eq!(call["aws"]["bucket_name"], "photos");
    assert_eq!(call["aws"]["id_2"], "host-id-2/abc=");
}

#[test]
fn s3_lists_record_the_count_not_the_prefix() {
    let (response, call) = call("s3_list", "S3", "ListObjectsV2", 200);
    assert_eq!(response["ok"], true);
    assert_eq!(call["aws"]["bucket_name"], "photos");
    assert!(call["aws"]["object_count"].as_u64() >= Some(1), "{call}");
    // The prefix (the secret) is not recorded: `call` checks no field carries it.
    assert!(call["aws"].get("prefix").is_none(), "{call}");
}

#[test]
fn lambda_invocations_record_type_qualifier_and_function_error() {
    let (response, call) = call("lambda_invoke", "Lambda", "Invoke", 200);
    assert_eq!(response["ok"], true);
    let aws = &call["aws"];
    assert_eq!(aws["function_name"], "resize-images");
    assert_eq!(aws["invocation_type"], "RequestResponse");
    assert_eq!(aws["log_type"], "Tail");
    assert_eq!(aws["qualifier"], "live");
    assert_eq!(aws["status_code"], 200);
    assert_eq!(aws["function_error"], "Unhandled");
}

#[test]
fn lambda_records_the_function_name_and_the_error() {
    let (response, call) = call("lambda", "Lambda", "GetFunction", 404);
    assert_eq!(response["ok"], false);
    assert_eq!(call["aws"]["function_name"], "resize-images");
    assert_eq!(call["error"], true);
    assert_eq!(call["cause"]["exceptions"][0]["remote"], true);
}

#[test]
fn no_message_body_object_or_key_is_sent() {
    let _ = call("sqs", "SQS", "SendMessage", 200);
    let _ = call("sns", "SNS", "Publish", 200);
    let _ = call("s3", "S3", "PutObject", 200);
    let datagrams = harness().daemon.datagrams();
    assert!(datagrams.len() >= 3);
    for datagram in datagrams {
        assert!(
            !String::from_utf8_lossy(&datagram).contains("SECRET"),
            "a secret was sent"
        );
    }
}
