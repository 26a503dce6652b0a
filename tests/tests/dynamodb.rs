//! `#[xray_aws]` and `XrayInterceptor` against a real DynamoDB-compatible endpoint (moto's
//! server on loopback), under the real `lambda_runtime::run_concurrent`, sending to a UDP
//! daemon on loopback. Failures moto cannot produce (5xx, 429, throttling) come from a
//! loopback proxy in front of it.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BatchStatementRequest, Get, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType,
    ProvisionedThroughput, Put, PutRequest, ScalarAttributeType, TransactGetItem,
    TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::{use_moto, Lambda};
use xray_lambda_tests::moto::{create_table, Moto};
use xray_lambda_tests::new_trace_header;
use xray_lambda_tests::proxy::{self, Fault};

/// Looks like a credential; must never leave the function.
const SECRET: &str = "SECRET-7d3f9a1c-do-not-trace";
const TABLE: &str = "orders";
const OTHER: &str = "customers";

#[derive(Deserialize)]
struct Call {
    op: String,
    #[serde(default = "default_client")]
    client: String,
}

fn default_client() -> String {
    "moto".into()
}

struct Clients(HashMap<String, Client>);

static CLIENTS: OnceLock<Clients> = OnceLock::new();

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("id".to_owned(), s(id))])
}

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Call>) -> Result<Value, Error> {
    let client = &CLIENTS.get().expect("clients").0[&event.payload.client];
    if event.payload.op == "DirectGetItem" {
        // No #[xray_aws] helper: the interceptor alone makes the subsegment.
        client
            .get_item()
            .table_name(TABLE)
            .set_key(Some(key(SECRET)))
            .send()
            .await?;
        return Ok(json!({ "ok": true }));
    }
    let outcome = call(client, &event.payload.op).await;
    Ok(json!({ "ok": outcome.is_ok(), "error": outcome.err().map(|e| format!("{e:?}")) }))
}

/// One DynamoDB call per operation, each with the secret in every key, item and value.
#[xray_lambda::xray_aws]
async fn call(client: &Client, op: &str) -> Result<(), Error> {
    let secret_key = key(SECRET);
    match op {
        "GetItem" => drop(
            client
                .get_item()
                .table_name(TABLE)
                .set_key(Some(secret_key))
                .consistent_read(true)
                .projection_expression("#v")
                .expression_attribute_names("#v", "v")
                .send()
                .await?,
        ),
        "PutItem" => drop(
            client
                .put_item()
                .table_name(TABLE)
                .item("id", s(SECRET))
                .item("v", s(SECRET))
                .send()
                .await?,
        ),
        "UpdateItemFails" => drop(
            client
                .update_item()
                .table_name(TABLE)
                .set_key(Some(secret_key))
                .update_expression("SET v = :v")
                .condition_expression("v = :old")
                .expression_attribute_values(":v", s(SECRET))
                .expression_attribute_values(":old", s("SECRET-old-value"))
                .send()
                .await?,
        ),
        "DeleteItem" => drop(
            client
                .delete_item()
                .table_name(TABLE)
                .set_key(Some(key("gone-SECRET")))
                .send()
                .await?,
        ),
        "Query" => drop(
            client
                .query()
                .table_name(TABLE)
                .key_condition_expression("id = :id")
                .expression_attribute_values(":id", s(SECRET))
                .limit(10)
                .scan_index_forward(false)
                .send()
                .await?,
        ),
        "Scan" => drop(
            client
                .scan()
                .table_name(TABLE)
                .filter_expression("v = :v")
                .expression_attribute_values(":v", s(SECRET))
                .segment(0)
                .total_segments(1)
                .send()
                .await?,
        ),
        "BatchGetItem" => drop(
            client
                .batch_get_item()
                .request_items(
                    TABLE,
                    KeysAndAttributes::builder().keys(key(SECRET)).build()?,
                )
                .request_items(
                    OTHER,
                    KeysAndAttributes::builder()
                        .keys(key(&format!("{SECRET}-2")))
                        .build()?,
                )
                .send()
                .await?,
        ),
        "BatchWriteItem" => drop(
            client
                .batch_write_item()
                .request_items(
                    TABLE,
                    vec![WriteRequest::builder()
                        .put_request(PutRequest::builder().item("id", s(SECRET)).build()?)
                        .build()],
                )
                .request_items(
                    OTHER,
                    vec![WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .item("id", s(&format!("{SECRET}-2")))
                                .build()?,
                        )
                        .build()],
                )
                .send()
                .await?,
        ),
        "TransactWriteItems" => drop(
            client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(TABLE)
                                .item("id", s("tx-SECRET-1"))
                                .build()?,
                        )
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .table_name(OTHER)
                                .item("id", s("tx-SECRET-2"))
                                .build()?,
                        )
                        .build(),
                )
                .send()
                .await?,
        ),
        "TransactGetItems" => drop(
            client
                .transact_get_items()
                .transact_items(
                    TransactGetItem::builder()
                        .get(
                            Get::builder()
                                .table_name(TABLE)
                                .set_key(Some(key(SECRET)))
                                .build()?,
                        )
                        .build(),
                )
                .transact_items(
                    TransactGetItem::builder()
                        .get(
                            Get::builder()
                                .table_name(OTHER)
                                .set_key(Some(key(SECRET)))
                                .build()?,
                        )
                        .build(),
                )
                .send()
                .await?,
        ),
        "ExecuteStatement" => drop(
            client
                .execute_statement()
                .statement(format!("SELECT * FROM \"{TABLE}\" WHERE id = '{SECRET}'"))
                .send()
                .await?,
        ),
        "BatchExecuteStatement" => drop(
            client
                .batch_execute_statement()
                .statements(
                    BatchStatementRequest::builder()
                        .statement(format!("SELECT * FROM \"{TABLE}\" WHERE id = '{SECRET}'"))
                        .build()?,
                )
                .statements(
                    BatchStatementRequest::builder()
                        .statement(format!("SELECT * FROM \"{OTHER}\" WHERE id = '{SECRET}'"))
                        .build()?,
                )
                .send()
                .await?,
        ),
        "ListTables" => drop(client.list_tables().limit(50).send().await?),
        "DescribeTable" => drop(client.describe_table().table_name(TABLE).send().await?),
        "CreateTable" => drop(
            client
                .create_table()
                .table_name("scratch")
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("id")
                        .attribute_type(ScalarAttributeType::S)
                        .build()?,
                )
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("status")
                        .attribute_type(ScalarAttributeType::S)
                        .build()?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("id")
                        .key_type(KeyType::Hash)
                        .build()?,
                )
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name("by_status")
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name("status")
                                .key_type(KeyType::Hash)
                                .build()?,
                        )
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::KeysOnly)
                                .build(),
                        )
                        .provisioned_throughput(
                            ProvisionedThroughput::builder()
                                .read_capacity_units(1)
                                .write_capacity_units(1)
                                .build()?,
                        )
                        .build()?,
                )
                .provisioned_throughput(
                    ProvisionedThroughput::builder()
                        .read_capacity_units(5)
                        .write_capacity_units(5)
                        .build()?,
                )
                .send()
                .await?,
        ),
        "UpdateTable" => drop(
            client
                .update_table()
                .table_name("scratch")
                .provisioned_throughput(
                    ProvisionedThroughput::builder()
                        .read_capacity_units(7)
                        .write_capacity_units(7)
                        .build()?,
                )
                .send()
                .await?,
        ),
        "DeleteTable" => drop(client.delete_table().table_name("scratch").send().await?),
        "TwoCalls" => {
            client.describe_table().table_name(TABLE).send().await?;
            client
                .get_item()
                .table_name(OTHER)
                .set_key(Some(secret_key))
                .send()
                .await?;
        }
        other => return Err(format!("unknown op {other}").into()),
    }
    Ok(())
}

struct Harness {
    lambda: Lambda,
    _moto: Moto,
}

fn client_for(sdk: &aws_config::SdkConfig, endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .interceptor(xray_lambda::aws::XrayInterceptor::new())
        .build();
    Client::from_conf(config)
}

// Setup reads best in one piece: environment, tables, clients, proxies, runtime.
#[allow(clippy::too_many_lines)]
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let moto = Moto::start().expect("moto");
        use_moto(&moto);
        let lambda = Lambda::start("ddb-fn", 8);
        let runtime = &lambda.runtime;
        let clients = runtime.block_on(async {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            // Tables are made outside any invocation: not traced.
            let setup = Client::new(&sdk);
            for table in [TABLE, OTHER] {
                create_table(&setup, table).await.expect("create table");
            }
            let mut clients = HashMap::new();
            clients.insert("moto".to_owned(), client_for(&sdk, &moto.endpoint()));
            for (name, fault) in [
                (
                    "500-once",
                    Fault {
                        status: 500,
                        code: "InternalServerError",
                        times: 1,
                    },
                ),
                (
                    "500-always",
                    Fault {
                        status: 500,
                        code: "InternalServerError",
                        times: u32::MAX,
                    },
                ),
                (
                    "429-always",
                    Fault {
                        status: 429,
                        code: "ThrottlingException",
                        times: u32::MAX,
                    },
                ),
                (
                    "throughput-always",
                    Fault {
                        status: 400,
                        code: "ProvisionedThroughputExceededException",
                        times: u32::MAX,
                    },
                ),
            ] {
                let endpoint = proxy::start(moto.endpoint(), fault).await;
                clients.insert(name.to_owned(), client_for(&sdk, &endpoint));
            }
            // Nothing listens on port 9 of loopback: the connection is refused.
            clients.insert("refused".to_owned(), client_for(&sdk, "http://127.0.0.1:9"));
            Clients(clients)
        });
        assert!(CLIENTS.set(clients).is_ok());
        runtime.spawn(async {
            if let Err(err) = lambda_runtime::run_concurrent(service_fn(handler)).await {
                eprintln!("runtime stopped: {err}");
            }
        });
        Harness {
            lambda,
            _moto: moto,
        }
    })
}

/// Invokes `op` through `client`; returns the response and every subsegment of the trace.
fn run(op: &str, client: &str, expected_subsegments: usize) -> (Value, Vec<Value>, String) {
    let h = &harness().lambda;
    let ids = new_trace_header(Some("1"));
    let response = h
        .invoke(&json!({"op": op, "client": client}), Some(&ids.header))
        .unwrap_response();
    let docs = h
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(15), |d| {
            flatten(d).len() >= expected_subsegments
        });
    (response, flatten(&docs), ids.root)
}

/// The one `DynamoDB` subsegment of a run, checked for what every call carries; returns it
/// with `request_id` checked and removed from `aws`, so callers compare the rest exactly.
fn dynamodb_subsegment(subsegments: &[Value], status: u16) -> Value {
    let calls: Vec<&Value> = subsegments
        .iter()
        .filter(|s| s["name"] == "DynamoDB")
        .collect();
    assert_eq!(calls.len(), 1, "{subsegments:#?}");
    let mut call = calls[0].clone();
    assert_eq!(call["namespace"], "aws");
    assert_eq!(call["http"]["response"]["status"], status);
    let helper = subsegments
        .iter()
        .find(|s| s["name"] == "call")
        .expect("the #[xray_aws] helper");
    assert_eq!(
        call["parent_id"], helper["id"],
        "the call hangs under the helper"
    );
    let handler = subsegments
        .iter()
        .find(|s| s["name"] == "handler")
        .expect("handler");
    assert_eq!(helper["parent_id"], handler["id"]);
    let aws = call["aws"].as_object_mut().expect("an aws object");
    let request_id = aws.remove("request_id").expect("a request id");
    // The exporter's mark on every document.
    assert_eq!(
        aws.remove("xray"),
        Some(json!({"sdk": "xray-lambda for rust"}))
    );
    assert!(
        request_id.as_str().is_some_and(|r| !r.is_empty()),
        "{request_id}"
    );
    call
}

fn aws_of(op: &str, status: u16) -> (Value, Value) {
    let (response, subsegments, _) = run(op, "moto", 3);
    let call = dynamodb_subsegment(&subsegments, status);
    (response, call["aws"].clone())
}

#[test]
fn get_item_records_what_the_python_sdk_records_and_more() {
    let (response, aws) = aws_of("GetItem", 200);
    assert_eq!(response["ok"], true, "{response}");
    assert_eq!(
        aws,
        json!({"operation": "GetItem", "region": "us-east-1", "table_name": TABLE, "retries": 0,
               "consistent_read": true, "projection_expression": "#v"})
    );
}

#[test]
fn put_item() {
    let (response, aws) = aws_of("PutItem", 200);
    assert_eq!(response["ok"], true, "{response}");
    assert_eq!(
        aws,
        json!({"operation": "PutItem", "region": "us-east-1", "table_name": TABLE, "retries": 0})
    );
}

#[test]
fn update_item_with_a_failing_condition_is_an_error_with_a_remote_cause() {
    let (response, subsegments, _) = run("UpdateItemFails", "moto", 3);
    assert_eq!(response["ok"], false, "{response}");
    let call = dynamodb_subsegment(&subsegments, 400);
    assert_eq!(
        call["aws"],
        json!({"operation": "UpdateItem", "region": "us-east-1", "table_name": TABLE, "retries": 0})
    );
    assert_eq!(call["error"], true);
    assert!(
        call.get("fault").is_none() && call.get("throttle").is_none(),
        "{call}"
    );
    let exception = &call["cause"]["exceptions"][0];
    assert_eq!(exception["type"], "ConditionalCheckFailedException");
    assert_eq!(exception["remote"], true);
    assert!(exception["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn delete_item() {
    let (_, aws) = aws_of("DeleteItem", 200);
    assert_eq!(
        aws,
        json!({"operation": "DeleteItem", "region": "us-east-1", "table_name": TABLE, "retries": 0})
    );
}

#[test]
fn query_records_its_parameters_and_counts() {
    let (response, aws) = aws_of("Query", 200);
    assert_eq!(response["ok"], true, "{response}");
    assert_eq!(aws["operation"], "Query");
    assert_eq!(aws["table_name"], TABLE);
    assert_eq!(aws["limit"], 10);
    assert_eq!(aws["scan_index_forward"], false);
    assert!(
        aws["count"].is_u64() && aws["scanned_count"].is_u64(),
        "{aws}"
    );
    assert_eq!(aws.as_object().map(serde_json::Map::len), Some(8), "{aws}");
    assert!(aws.get("key_condition_expression").is_none());
}

#[test]
fn scan_records_segments_and_counts() {
    let (_, aws) = aws_of("Scan", 200);
    assert_eq!(aws["operation"], "Scan");
    assert_eq!(aws["table_name"], TABLE);
    assert_eq!(
        (aws["segment"].clone(), aws["total_segments"].clone()),
        (json!(0), json!(1))
    );
    assert!(
        aws["count"].is_u64() && aws["scanned_count"].is_u64(),
        "{aws}"
    );
}

#[test]
fn batch_operations_record_table_names() {
    for op in [
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    ] {
        let (response, subsegments, _) = run(op, "moto", 3);
        assert_eq!(response["ok"], true, "{op}: {response}");
        let aws = dynamodb_subsegment(&subsegments, 200)["aws"].clone();
        assert_eq!(response["ok"], true, "{op}: {response}");
        assert_eq!(aws["operation"], op);
        assert_eq!(aws["table_names"], json!([OTHER, TABLE]), "{op}: {aws}");
        assert!(aws.get("table_name").is_none(), "{op}: {aws}");
    }
}

#[test]
fn partiql_records_the_table_not_the_statement() {
    let (response, aws) = aws_of("ExecuteStatement", 200);
    assert_eq!(response["ok"], true, "{response}");
    assert_eq!(
        aws,
        json!({"operation": "ExecuteStatement", "region": "us-east-1", "table_name": TABLE, "retries": 0})
    );
    let (_, aws) = aws_of("BatchExecuteStatement", 200);
    assert_eq!(aws["table_names"], json!([OTHER, TABLE]));
}

#[test]
fn list_tables_records_only_the_count() {
    let (_, aws) = aws_of("ListTables", 200);
    assert_eq!(aws["limit"], 50);
    assert!(aws["table_count"].as_u64().is_some_and(|n| n >= 2), "{aws}");
    assert!(aws.get("table_names").is_none());
}

#[test]
fn table_lifecycle_operations() {
    let (_, aws) = aws_of("CreateTable", 200);
    assert_eq!(aws["table_name"], "scratch");
    assert_eq!(
        aws["provisioned_throughput"],
        json!({"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    );
    assert_eq!(
        aws["global_secondary_indexes"],
        json!([{"IndexName": "by_status", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}])
    );
    let (_, aws) = aws_of("DescribeTable", 200);
    assert_eq!(
        aws,
        json!({"operation": "DescribeTable", "region": "us-east-1", "table_name": TABLE, "retries": 0})
    );
    let (_, aws) = aws_of("UpdateTable", 200);
    assert_eq!(
        aws["provisioned_throughput"],
        json!({"ReadCapacityUnits": 7, "WriteCapacityUnits": 7})
    );
    let (_, aws) = aws_of("DeleteTable", 200);
    assert_eq!(
        aws,
        json!({"operation": "DeleteTable", "region": "us-east-1", "table_name": "scratch", "retries": 0})
    );
}

#[test]
fn several_calls_in_one_function_are_several_subsegments() {
    let (_, subsegments, _) = run("TwoCalls", "moto", 4);
    let calls: Vec<&Value> = subsegments
        .iter()
        .filter(|s| s["name"] == "DynamoDB")
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["parent_id"], calls[1]["parent_id"]);
    let mut ops: Vec<&str> = calls
        .iter()
        .filter_map(|c| c["aws"]["operation"].as_str())
        .collect();
    ops.sort_unstable();
    assert_eq!(ops, ["DescribeTable", "GetItem"]);
}

#[test]
fn a_retried_500_records_retries() {
    let (response, subsegments, _) = run("GetItem", "500-once", 3);
    assert_eq!(response["ok"], true, "{response}");
    let call = dynamodb_subsegment(&subsegments, 200);
    assert_eq!(call["aws"]["retries"], 1);
    assert!(
        call.get("fault").is_none(),
        "the call succeeded in the end: {call}"
    );
}

#[test]
fn a_persistent_500_is_a_fault_after_the_retries() {
    let (response, subsegments, _) = run("GetItem", "500-always", 3);
    assert_eq!(response["ok"], false);
    let call = dynamodb_subsegment(&subsegments, 500);
    assert_eq!(call["aws"]["retries"], 2);
    assert_eq!(call["fault"], true);
    assert_eq!(
        call["cause"]["exceptions"][0]["type"],
        "InternalServerError"
    );
    assert_eq!(call["cause"]["exceptions"][0]["remote"], true);
}

#[test]
fn throttling_is_throttle_and_error() {
    for (client, status) in [("429-always", 429), ("throughput-always", 400)] {
        let (_, subsegments, _) = run("GetItem", client, 3);
        let call = dynamodb_subsegment(&subsegments, status);
        assert_eq!(call["throttle"], true, "{client}: {call}");
        assert_eq!(call["error"], true, "{client}: {call}");
        assert!(call.get("fault").is_none(), "{client}: {call}");
        assert_eq!(call["aws"]["retries"], 2);
    }
}

#[test]
fn a_refused_connection_is_a_fault() {
    let h = &harness().lambda;
    let ids = new_trace_header(Some("1"));
    let response = h
        .invoke(
            &json!({"op": "GetItem", "client": "refused"}),
            Some(&ids.header),
        )
        .unwrap_response();
    assert_eq!(response["ok"], false);
    let docs = h
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(15), |d| {
            flatten(d).len() >= 3
        });
    let subsegments = flatten(&docs);
    let call = subsegments
        .iter()
        .find(|s| s["name"] == "DynamoDB")
        .expect("call");
    assert_eq!(call["fault"], true, "{call}");
    assert!(call.get("http").is_none(), "no response, no status: {call}");
    assert_eq!(call["cause"]["exceptions"][0]["remote"], true);
}

#[test]
fn no_secret_leaves_the_function_through_any_covered_operation() {
    let ops = [
        "GetItem",
        "PutItem",
        "UpdateItemFails",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ListTables",
        "DescribeTable",
        "TwoCalls",
    ];
    let mut roots = Vec::new();
    for op in ops {
        let (_, subsegments, root) = run(op, "moto", 3);
        assert!(subsegments.iter().any(|s| s["name"] == "DynamoDB"), "{op}");
        roots.push(root);
    }
    let datagrams = harness().lambda.daemon.datagrams();
    assert!(datagrams.len() >= ops.len());
    for datagram in &datagrams {
        let text = String::from_utf8_lossy(datagram);
        assert!(!text.contains("SECRET"), "a secret was sent: {text}");
    }
}

#[test]
fn a_get_item_outside_any_xray_aws_function_hangs_under_the_handler() {
    // What the official Python SDK records for a GetItem in Lambda, and more.
    let (response, subsegments, root) = run("DirectGetItem", "moto", 2);
    assert_eq!(response["ok"], true);
    assert_eq!(subsegments.len(), 2, "{subsegments:#?}");
    let call = subsegments
        .iter()
        .find(|s| s["name"] == "DynamoDB")
        .expect("the call");
    let handler = subsegments
        .iter()
        .find(|s| s["name"] == "handler")
        .expect("handler");
    assert_eq!(
        call["parent_id"], handler["id"],
        "parent = the handler subsegment"
    );
    assert_eq!(call["trace_id"], root.as_str());
    assert_eq!(call["namespace"], "aws");
    assert_eq!(call["http"]["response"]["status"], 200);
    let aws = &call["aws"];
    assert_eq!(aws["operation"], "GetItem");
    assert_eq!(aws["region"], "us-east-1");
    assert_eq!(aws["table_name"], TABLE);
    assert_eq!(aws["retries"], 0);
    assert!(aws["request_id"].as_str().is_some_and(|r| !r.is_empty()));
}
