//! `xray_lambda::records::process` on batch events, under the real
//! `lambda_runtime::run_concurrent` against a loopback Runtime API and a UDP daemon, with
//! `aws_lambda_events`' own fixtures (`tests/data/events/`): SQS, SNS, S3, Kinesis, DynamoDB
//! Streams and EventBridge.

use std::sync::OnceLock;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use xray_lambda::records::{process, TracedRecord};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::{serve, Lambda};
use xray_lambda_tests::{new_trace_header, TraceIds};

/// In bodies, object keys and images: no emitted byte may carry it.
const SECRET: &str = "r3cord-s3cret";

/// Processes every record of whatever batch the event is, each in `process`. An SQS message
/// whose body starts with `FAIL` fails; one starting with `REPORT` succeeds but is reported
/// failed; one starting with `SKIP` is not processed through `process` and reported failed.
/// Answers how many failed, and SQS's `batchItemFailures`.
#[xray_lambda::xray_handler]
async fn records_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    let source = payload["Records"][0]["eventSource"]
        .as_str()
        .or_else(|| payload["Records"][0]["EventSource"].as_str())
        .unwrap_or("eventbridge")
        .to_owned();
    let mut failed = 0;
    let mut reported = Vec::new();
    match source.as_str() {
        "aws:sqs" => {
            let batch: SqsEvent = serde_json::from_value(payload)?;
            for message in &batch.records {
                let body = message.body.clone().unwrap_or_default();
                let id = message.message_id.clone().unwrap_or_default();
                if body.starts_with("SKIP") {
                    reported.push(json!({ "itemIdentifier": id }));
                    continue;
                }
                let report = body.starts_with("REPORT");
                let result = process(message, async move {
                    tokio::task::yield_now().await;
                    if body.starts_with("FAIL") {
                        Err("the order could not be stored".to_owned())
                    } else {
                        Ok(())
                    }
                })
                .await;
                if result.is_err() || report {
                    reported.push(json!({ "itemIdentifier": id }));
                }
                failed += usize::from(result.is_err());
            }
        }
        "aws:sns" => succeed(&serde_json::from_value::<SnsEvent>(payload)?.records).await,
        "aws:s3" => succeed(&serde_json::from_value::<S3Event>(payload)?.records).await,
        "aws:kinesis" => succeed(&serde_json::from_value::<KinesisEvent>(payload)?.records).await,
        "aws:dynamodb" => {
            succeed(&serde_json::from_value::<DynamoDbEvent>(payload)?.records).await;
        }
        _ => succeed(&[serde_json::from_value::<EventBridgeEvent>(payload)?]).await,
    }
    Ok(json!({ "failed": failed, "batchItemFailures": reported }))
}

/// Each record in `process`, its work succeeding.
async fn succeed<R: TracedRecord>(records: &[R]) {
    for record in records {
        let _ = process(record, async { Ok::<(), ()>(()) }).await;
    }
}

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<Lambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let lambda = Lambda::start("records-fn", 16);
        serve(|| lambda_runtime::run_concurrent(service_fn(records_handler)));
        lambda
    })
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/data/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// Invokes with a fresh sampled header; the response, the trace's subsegments (at least
/// `expected`), the ids. No document may carry the secret.
fn invoke(event: &Value, expected: usize) -> (Value, Vec<Value>, TraceIds) {
    let ids = new_trace_header(Some("1"));
    let response = harness().invoke(event, Some(&ids.header)).unwrap_response();
    let docs = harness()
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(10), |docs| {
            flatten(docs).len() >= expected
        });
    let raw = serde_json::to_string(&docs).expect("JSON");
    assert!(!raw.contains(SECRET), "a record's content leaked: {raw}");
    (response, flatten(&docs), ids)
}

fn handler_id(subsegments: &[Value]) -> String {
    let handler = subsegments
        .iter()
        .find(|s| s["name"] == "records_handler")
        .expect("the handler subsegment");
    handler["id"].as_str().expect("id").to_owned()
}

#[test]
fn every_source_gives_one_named_subsegment_per_record() {
    // The secret where each source keeps its content: body, message, object key, data, image.
    let mut sqs = fixture("sqs-event");
    sqs["Records"][0]["body"] = json!(SECRET);
    let mut sns = fixture("sns-event");
    sns["Records"][0]["Sns"]["Message"] = json!(SECRET);
    let mut s3 = fixture("s3-event");
    s3["Records"][0]["s3"]["object"]["key"] = json!(SECRET);
    let mut dynamodb = fixture("dynamodb-event");
    dynamodb["Records"][0]["dynamodb"]["NewImage"]["val"] = json!({ "S": SECRET });
    for (event, name, records, identity) in [
        (sqs, "SQSQueue", 1, ("MessageId", "MessageID_1")),
        (
            sns,
            "snsNetTest",
            1,
            ("MessageId", "82833b5c-8d5d-56d0-b0e1-7511f8253eb8"),
        ),
        (s3, "sourcebucket", 1, ("Sequencer", "Happy Sequencer")),
        (
            fixture("kinesis-event"),
            "simple-stream",
            2,
            (
                "SequenceNumber",
                "49568167373333333333333333333333333333333333333333333333",
            ),
        ),
        (
            dynamodb,
            "Example-Table",
            2,
            ("SequenceNumber", "1405400000000002063282832"),
        ),
        (
            fixture("eventbridge-event-obj"),
            "aws.ec2",
            1,
            ("EventId", "7bf73129-1428-4cd3-a780-95db273d1602"),
        ),
    ] {
        let (response, subsegments, _) = invoke(&event, 1 + records);
        assert_eq!(response["failed"], 0);
        let handler = handler_id(&subsegments);
        let mine: Vec<&Value> = subsegments.iter().filter(|s| s["name"] == name).collect();
        assert_eq!(mine.len(), records, "{name}: {subsegments:#?}");
        for record in &mine {
            assert_eq!(record["parent_id"], handler.as_str(), "{name}");
            assert!(record.get("fault").is_none(), "{name}");
        }
        assert_eq!(mine[0]["annotations"][identity.0], identity.1, "{name}");
    }
}

/// An SQS batch of `n` messages, each with a producer header of its own (`sampled` for the
/// message numbered in `unsampled`, `1` otherwise); messages in `failing` fail.
fn sqs_batch(n: usize, failing: &[usize], unsampled: &[usize]) -> (Value, Vec<TraceIds>) {
    sqs_batch_with(
        n,
        |i| {
            if failing.contains(&i) {
                "FAIL"
            } else {
                ""
            }
        },
        unsampled,
    )
}

/// [`sqs_batch`] with each body's prefix chosen by `prefix` (`FAIL`, `REPORT`, `SKIP`, or none).
fn sqs_batch_with(
    n: usize,
    prefix: impl Fn(usize) -> &'static str,
    unsampled: &[usize],
) -> (Value, Vec<TraceIds>) {
    let template = fixture("sqs-event")["Records"][0].clone();
    let producers: Vec<TraceIds> = (0..n)
        .map(|i| new_trace_header(Some(if unsampled.contains(&i) { "0" } else { "1" })))
        .collect();
    let records: Vec<Value> = producers
        .iter()
        .enumerate()
        .map(|(i, producer)| {
            let mut record = template.clone();
            record["messageId"] = json!(format!("message-{i}"));
            record["body"] = json!(format!("{}{SECRET}", prefix(i)));
            record["attributes"]["AWSTraceHeader"] = json!(producer.header);
            record
        })
        .collect();
    (json!({ "Records": records }), producers)
}

#[test]
fn a_batch_of_ten_with_two_failures_marks_them_and_links_every_producer() {
    let (event, producers) = sqs_batch(10, &[3, 7], &[]);
    let (response, subsegments, _) = invoke(&event, 11);
    assert_eq!(response["failed"], 2);
    let handler = subsegments
        .iter()
        .find(|s| s["name"] == "records_handler")
        .expect("the handler");
    assert_eq!(handler["annotations"]["FailedRecords"], 2, "{handler:#}");
    let records: Vec<&Value> = subsegments
        .iter()
        .filter(|s| s["name"] == "SQSQueue")
        .collect();
    assert_eq!(records.len(), 10);
    for (i, producer) in producers.iter().enumerate() {
        let record = records
            .iter()
            .find(|r| r["annotations"]["MessageId"] == format!("message-{i}"))
            .expect("the message's subsegment");
        let failed = [3, 7].contains(&i);
        assert_eq!(
            record["fault"].as_bool().unwrap_or(false),
            failed,
            "{record:#}"
        );
        if failed {
            assert_eq!(
                record["cause"]["exceptions"][0]["message"],
                "\"the order could not be stored\""
            );
        }
        // A top-level `links` member, as the collector writes it.
        let link = &record["links"][0];
        assert_eq!(link["trace_id"], producer.root.as_str(), "{record:#}");
        assert_eq!(link["id"], producer.parent.as_str());
        assert_eq!(
            link["attributes"]["aws.xray.reserved.reference_type"],
            "parent"
        );
    }
}

/// A producer instrumented with OpenTelemetry (W3C only) puts `traceparent` in the message's
/// attributes, not `AWSTraceHeader`: each record links to it all the same.
#[test]
fn a_message_from_a_w3c_producer_links_to_its_span() {
    let (mut event, producers) = sqs_batch(3, &[], &[]);
    let w3c = |root: &str| root.trim_start_matches("1-").replace('-', "");
    for (record, producer) in event["Records"]
        .as_array_mut()
        .expect("records")
        .iter_mut()
        .zip(&producers)
    {
        record["attributes"]
            .as_object_mut()
            .expect("attributes")
            .remove("AWSTraceHeader");
        record["messageAttributes"]["traceparent"] = json!({
            "stringValue": format!("00-{}-{}-01", w3c(&producer.root), producer.parent),
            "dataType": "String",
        });
    }
    let (_, subsegments, _) = invoke(&event, 4);
    for (i, producer) in producers.iter().enumerate() {
        let record = subsegments
            .iter()
            .find(|r| r["annotations"]["MessageId"] == format!("message-{i}"))
            .expect("the message's subsegment");
        // The same link an X-Ray header gives: X-Ray's form of the W3C trace id.
        let link = &record["links"][0];
        assert_eq!(link["trace_id"], producer.root.as_str(), "{record:#}");
        assert_eq!(link["id"], producer.parent.as_str());
    }
}

#[test]
fn a_batch_of_120_keeps_x_rays_limits_failed_records_first_and_loses_nothing() {
    // The last five fail: their identities are indexed even though they finish last.
    let failing: Vec<usize> = (115..120).collect();
    let (event, producers) = sqs_batch(120, &failing, &[]);
    let (response, subsegments, _) = invoke(&event, 121);
    assert_eq!(response["failed"], 5);
    let annotations: usize = subsegments
        .iter()
        .map(|s| s["annotations"].as_object().map_or(0, serde_json::Map::len))
        .sum();
    assert_eq!(annotations, 50, "X-Ray indexes 50 annotations a trace");
    let records: Vec<&Value> = subsegments
        .iter()
        .filter(|s| s["name"] == "SQSQueue")
        .collect();
    assert_eq!(records.len(), 120);
    let id_of = |r: &Value| {
        r["annotations"]["MessageId"]
            .as_str()
            .or_else(|| r["metadata"]["default"]["annotations_not_indexed"]["MessageId"].as_str())
            .map(str::to_owned)
    };
    for i in failing {
        let record = records
            .iter()
            .find(|r| id_of(r).as_deref() == Some(&format!("message-{i}")))
            .expect("the failed message");
        assert_eq!(record["annotations"]["MessageId"], format!("message-{i}"));
    }
    // Every message is still identified, and every producer still linked: 100 links in the
    // trace (20 at most on one subsegment), the rest as metadata.
    let mut linked = Vec::new();
    let mut top_level = 0;
    for record in &records {
        assert!(id_of(record).is_some(), "{record:#}");
        let links = record["links"].as_array().cloned().unwrap_or_default();
        assert!(links.len() <= 20);
        top_level += links.len();
        let over = record["metadata"]["default"]["links"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        linked.extend(links.into_iter().chain(over).map(|l| l["trace_id"].clone()));
    }
    assert_eq!(top_level, 100);
    let mut expected: Vec<Value> = producers.iter().map(|p| json!(p.root)).collect();
    expected.sort_by_key(ToString::to_string);
    linked.sort_by_key(ToString::to_string);
    assert_eq!(linked, expected);
}

#[test]
fn reported_failures_mark_their_records_with_or_without_process() {
    // 0: fails; 1: reported, its work succeeded; 2: reported, never processed; 3: fine.
    let (event, _) = sqs_batch_with(4, |i| ["FAIL", "REPORT", "SKIP", ""][i], &[]);
    let (response, subsegments, _) = invoke(&event, 4);
    assert_eq!(
        response["batchItemFailures"].as_array().map(Vec::len),
        Some(3)
    );
    let handler = subsegments
        .iter()
        .find(|s| s["name"] == "records_handler")
        .expect("the handler");
    assert_eq!(handler["annotations"]["FailedRecords"], 3, "{handler:#}");
    let record = |id: &str| {
        subsegments
            .iter()
            .find(|s| s["annotations"]["MessageId"] == id)
            .cloned()
    };
    let failed = record("message-0").expect("message-0");
    assert_eq!(
        failed["cause"]["exceptions"][0]["message"], "\"the order could not be stored\"",
        "its own error stays its cause"
    );
    let reported = record("message-1").expect("message-1");
    assert_eq!(reported["fault"], true, "{reported:#}");
    assert_eq!(
        reported["cause"]["exceptions"][0]["type"],
        "BatchItemFailure"
    );
    assert!(
        record("message-2").is_none(),
        "never processed: no subsegment"
    );
    assert!(record("message-3")
        .expect("message-3")
        .get("fault")
        .is_none());
}

#[test]
fn a_message_its_producer_did_not_sample_is_not_recorded() {
    let (event, _) = sqs_batch(4, &[], &[1]);
    let (_, subsegments, _) = invoke(&event, 4);
    let ids: Vec<&str> = subsegments
        .iter()
        .filter(|s| s["name"] == "SQSQueue")
        .filter_map(|s| s["annotations"]["MessageId"].as_str())
        .collect();
    assert_eq!(ids.len(), 3, "{subsegments:#?}");
    assert!(!ids.contains(&"message-1"), "{ids:?}");
}

#[test]
fn sixteen_concurrent_batches_keep_their_records_in_their_own_trace() {
    let runtime = &harness().runtime;
    let invocations: Vec<_> = (0..16)
        .map(|_| {
            let ids = new_trace_header(Some("1"));
            let (event, _) = sqs_batch(10, &[], &[]);
            let api = harness().api.clone();
            let header = ids.header.clone();
            let task = runtime.spawn(async move { api.invoke(&event, Some(&header)).await });
            (ids, task)
        })
        .collect();
    for (ids, task) in invocations {
        let _ = runtime.block_on(task).expect("joined").unwrap_response();
        let docs = harness()
            .daemon
            .wait_for_trace(&ids.root, Duration::from_secs(10), |docs| {
                flatten(docs).len() >= 11
            });
        let subsegments = flatten(&docs);
        assert_eq!(subsegments.len(), 11, "{subsegments:#?}");
        let handler = handler_id(&subsegments);
        let records: Vec<&Value> = subsegments
            .iter()
            .filter(|s| s["name"] == "SQSQueue")
            .collect();
        assert_eq!(records.len(), 10);
        assert!(records
            .iter()
            .all(|r| r["parent_id"] == handler.as_str() && r["trace_id"] == ids.root.as_str()));
    }
}
