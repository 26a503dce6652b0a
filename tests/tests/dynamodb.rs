//! `#[xray_aws]` and `XrayInterceptor` against a real DynamoDB-compatible endpoint (moto's
//! server on loopback), under the real `lambda_runtime::run_concurrent`, sending to a UDP
//! daemon on loopback. Failures moto cannot produce (5xx, 429, throttling) come from a
//! loopback proxy in front of it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
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

/// A table entry's call: the request `$call` (up to its `send()`) sent, its output dropped.
macro_rules! sends {
    (|$client:ident| $call:expr) => {
        |$client| {
            Box::pin(async move {
                $call.await?;
                Ok(())
            })
        }
    };
}

/// A call on its way.
type Sending<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// A field expected in a `DynamoDB` subsegment's `aws` object.
#[derive(Debug)]
enum Field {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    /// Table names, in this order.
    Strs(&'static [&'static str]),
    /// JSON, as written here.
    Json(&'static str),
    /// A count: any unsigned number.
    Count,
    /// A count of at least this.
    AtLeast(u64),
    /// Not recorded.
    Absent,
}

impl Field {
    fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Field::Absent, value) => value.is_none(),
            (_, None) => false,
            (Field::Str(s), Some(v)) => *v == *s,
            (Field::Int(n), Some(v)) => *v == *n,
            (Field::Bool(b), Some(v)) => *v == *b,
            (Field::Strs(names), Some(v)) => *v == json!(names),
            (Field::Json(text), Some(v)) => {
                *v == serde_json::from_str::<Value>(text).expect("JSON in the table")
            }
            (Field::Count, Some(v)) => v.is_u64(),
            (Field::AtLeast(n), Some(v)) => v.as_u64().is_some_and(|c| c >= *n),
        }
    }
}

/// One covered operation: the call the handler makes for it (in the `#[xray_aws]` helper
/// `call`, with the secret in every key, item and value) and what its `DynamoDB` subsegment
/// records.
struct Operation {
    /// The event's `op`.
    name: &'static str,
    /// The call.
    call: for<'a> fn(&'a Client) -> Sending<'a>,
    /// What moto answers it with: a call answered 200 is `ok` in the handler's response.
    status: u16,
    /// Fields of the subsegment's `aws` object (its request id and the exporter's mark are
    /// checked on every call).
    aws: &'static [(&'static str, Field)],
    /// Whether `aws` lists all the fields there are (`Absent` ones aside).
    exact: bool,
    /// Whether it creates, changes or deletes the `scratch` table: run in that order, by
    /// `table_lifecycle_operations` only.
    scratch: bool,
}

/// Every covered operation, in the order `no_secret_...` runs them. `TwoCalls` (two calls in
/// one helper) is checked by a test of its own.
static OPERATIONS: &[Operation] = &[
    Operation {
        name: "GetItem",
        call: sends!(|client| client
            .get_item()
            .table_name(TABLE)
            .set_key(Some(key(SECRET)))
            .consistent_read(true)
            .projection_expression("#v")
            .expression_attribute_names("#v", "v")
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("GetItem")),
            ("region", Field::Str("us-east-1")),
            ("table_name", Field::Str(TABLE)),
            ("retries", Field::Int(0)),
            ("consistent_read", Field::Bool(true)),
            ("projection_expression", Field::Str("#v")),
        ],
        exact: true,
        scratch: false,
    },
    Operation {
        name: "PutItem",
        call: sends!(|client| client
            .put_item()
            .table_name(TABLE)
            .item("id", s(SECRET))
            .item("v", s(SECRET))
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("PutItem")),
            ("region", Field::Str("us-east-1")),
            ("table_name", Field::Str(TABLE)),
            ("retries", Field::Int(0)),
        ],
        exact: true,
        scratch: false,
    },
    Operation {
        name: "UpdateItemFails",
        call: sends!(|client| client
            .update_item()
            .table_name(TABLE)
            .set_key(Some(key(SECRET)))
            .update_expression("SET v = :v")
            .condition_expression("v = :old")
            .expression_attribute_values(":v", s(SECRET))
            .expression_attribute_values(":old", s("SECRET-old-value"))
            .send()),
        status: 400,
        aws: &[
            ("operation", Field::Str("UpdateItem")),
            ("region", Field::Str("us-east-1")),
            ("table_name", Field::Str(TABLE)),
            ("retries", Field::Int(0)),
        ],
        exact: true,
        scratch: false,
    },
    Operation {
        name: "DeleteItem",
        call: sends!(|client| client
            .delete_item()
            .table_name(TABLE)
            .set_key(Some(key("gone-SECRET")))
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("DeleteItem")),
            ("region", Field::Str("us-east-1")),
            ("table_name", Field::Str(TABLE)),
            ("retries", Field::Int(0)),
        ],
        exact: true,
        scratch: false,
    },
    Operation {
        name: "Query",
        call: sends!(|client| client
            .query()
            .table_name(TABLE)
            .key_condition_expression("id = :id")
            .expression_attribute_values(":id", s(SECRET))
            .limit(10)
            .scan_index_forward(false)
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("Query")),
            ("region", Field::Str("us-east-1")),
            ("table_name", Field::Str(TABLE)),
            ("retries", Field::Int(0)),
            ("limit", Field::Int(10)),
            ("scan_index_forward", Field::Bool(false)),
            ("count", Field::Count),
            ("scanned_count", Field::Count),
            ("key_condition_expression", Field::Absent),
        ],
        exact: true,
        scratch: false,
    },
    Operation {
        name: "Scan",
        call: sends!(|client| client
            .scan()
            .table_name(TABLE)
            .filter_expression("v = :v")
            .expression_attribute_values(":v", s(SECRET))
            .segment(0)
            .total_segments(1)
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("Scan")),
            ("table_name", Field::Str(TABLE)),
            ("segment", Field::Int(0)),
            ("total_segments", Field::Int(1)),
            ("count", Field::Count),
            ("scanned_count", Field::Count),
        ],
        exact: false,
        scratch: false,
    },
    Operation {
        name: "BatchGetItem",
        call: sends!(|client| client
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
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("BatchGetItem")),
            ("table_names", Field::Strs(&[OTHER, TABLE])),
            ("table_name", Field::Absent),
        ],
        exact: false,
        scratch: false,
    },
    Operation {
        name: "BatchWriteItem",
        call: sends!(|client| client
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
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("BatchWriteItem")),
            ("table_names", Field::Strs(&[OTHER, TABLE])),
            ("table_name", Field::Absent),
        ],
        exact: false,
        scratch: false,
    },
    Operation {
        name: "TransactWriteItems",
        call: sends!(|client| client
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
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("TransactWriteItems")),
            ("table_names", Field::Strs(&[OTHER, TABLE])),
            ("table_name", Field::Absent),
        ],
        exact: false,
        scratch: false,
    },
    Operation {
        name: "TransactGetItems",
        call: sends!(|client| client
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
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("TransactGetItems")),
            ("table_names", Field::Strs(&[OTHER, TABLE])),
            ("table_name", Field::Absent),
        ],
        exact: false,
        scratch: false,
    },
    Operation {
        name: "ExecuteStatement",
        call: sends!(|client| client
            .execute_statement()
            .statement(format!("SELECT * FROM \"{TABLE}\" WHERE id = '{SECRET}'"))
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("ExecuteStatement")),
            ("region", Field::Str("us-east-1")),
            ("table_name", Field::Str(TABLE)),
            ("retries", Field::Int(0)),
        ],
        exact: true,
        scratch: false,
    },
    Operation {
        name: "BatchExecuteStatement",
        call: sends!(|client| client
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
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("BatchExecuteStatement")),
            ("table_names", Field::Strs(&[OTHER, TABLE])),
        ],
        exact: false,
        scratch: false,
    },
    Operation {
        name: "ListTables",
        call: sends!(|client| client.list_tables().limit(50).send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("ListTables")),
            ("limit", Field::Int(50)),
            ("table_count", Field::AtLeast(2)),
            ("table_names", Field::Absent),
        ],
        exact: false,
        scratch: false,
    },
    Operation {
        name: "DescribeTable",
        call: sends!(|client| client.describe_table().table_name(TABLE).send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("DescribeTable")),
            ("region", Field::Str("us-east-1")),
            ("table_name", Field::Str(TABLE)),
            ("retries", Field::Int(0)),
        ],
        exact: true,
        scratch: false,
    },
    Operation {
        name: "CreateTable",
        call: sends!(|client| client
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
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("CreateTable")),
            ("table_name", Field::Str("scratch")),
            (
                "provisioned_throughput",
                Field::Json(r#"{"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}"#),
            ),
            (
                "global_secondary_indexes",
                Field::Json(
                    r#"[{"IndexName": "by_status", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                         "Projection": {"ProjectionType": "KEYS_ONLY"},
                         "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}]"#,
                ),
            ),
        ],
        exact: false,
        scratch: true,
    },
    Operation {
        name: "UpdateTable",
        call: sends!(|client| client
            .update_table()
            .table_name("scratch")
            .provisioned_throughput(
                ProvisionedThroughput::builder()
                    .read_capacity_units(7)
                    .write_capacity_units(7)
                    .build()?,
            )
            .send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("UpdateTable")),
            (
                "provisioned_throughput",
                Field::Json(r#"{"ReadCapacityUnits": 7, "WriteCapacityUnits": 7}"#),
            ),
        ],
        exact: false,
        scratch: true,
    },
    Operation {
        name: "DeleteTable",
        call: sends!(|client| client.delete_table().table_name("scratch").send()),
        status: 200,
        aws: &[
            ("operation", Field::Str("DeleteTable")),
            ("region", Field::Str("us-east-1")),
            ("table_name", Field::Str("scratch")),
            ("retries", Field::Int(0)),
        ],
        exact: true,
        scratch: true,
    },
    Operation {
        name: "TwoCalls",
        call: |client| {
            Box::pin(async move {
                client.describe_table().table_name(TABLE).send().await?;
                client
                    .get_item()
                    .table_name(OTHER)
                    .set_key(Some(key(SECRET)))
                    .send()
                    .await?;
                Ok(())
            })
        },
        status: 200,
        aws: &[],
        exact: false,
        scratch: false,
    },
];

/// The operation `op` of [`OPERATIONS`].
fn operation(op: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.name == op)
}

/// The `#[xray_aws]` helper: the call of the operation `op`.
#[xray_lambda::xray_aws]
async fn call(client: &Client, op: &str) -> Result<(), Error> {
    let Some(operation) = operation(op) else {
        return Err(format!("unknown op {op}").into());
    };
    (operation.call)(client).await
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

/// Runs the operation `op` of [`OPERATIONS`] through moto and checks its `DynamoDB`
/// subsegment against its entry; returns the subsegment (its request id checked and removed).
fn check(op: &str) -> Value {
    let operation = operation(op).unwrap_or_else(|| panic!("{op} is not in OPERATIONS"));
    let (response, subsegments, _) = run(op, "moto", 3);
    assert_eq!(response["ok"], operation.status == 200, "{op}: {response}");
    let call = dynamodb_subsegment(&subsegments, operation.status);
    let aws = call["aws"].as_object().expect("an aws object");
    for (name, field) in operation.aws {
        assert!(
            field.matches(aws.get(*name)),
            "{op}: {name} should be {field:?}: {aws:#?}"
        );
    }
    if operation.exact {
        let mut expected: Vec<&str> = operation
            .aws
            .iter()
            .filter(|(_, field)| !matches!(field, Field::Absent))
            .map(|(name, _)| *name)
            .collect();
        let mut recorded: Vec<&str> = aws.keys().map(String::as_str).collect();
        expected.sort_unstable();
        recorded.sort_unstable();
        assert_eq!(recorded, expected, "{op}: {aws:#?}");
    }
    call
}

#[test]
fn get_item_records_what_the_python_sdk_records_and_more() {
    check("GetItem");
}

#[test]
fn put_item() {
    check("PutItem");
}

#[test]
fn update_item_with_a_failing_condition_is_an_error_with_a_remote_cause() {
    let call = check("UpdateItemFails");
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
    check("DeleteItem");
}

#[test]
fn query_records_its_parameters_and_counts() {
    check("Query");
}

#[test]
fn scan_records_segments_and_counts() {
    check("Scan");
}

#[test]
fn batch_operations_record_table_names() {
    for op in [
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    ] {
        check(op);
    }
}

#[test]
fn partiql_records_the_table_not_the_statement() {
    check("ExecuteStatement");
    check("BatchExecuteStatement");
}

#[test]
fn list_tables_records_only_the_count() {
    check("ListTables");
}

#[test]
fn table_lifecycle_operations() {
    for op in ["CreateTable", "DescribeTable", "UpdateTable", "DeleteTable"] {
        check(op);
    }
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
    // All but the `scratch` table's, which `table_lifecycle_operations` runs in order.
    let ops: Vec<&str> = OPERATIONS
        .iter()
        .filter(|o| !o.scratch)
        .map(|o| o.name)
        .collect();
    let mut roots = Vec::new();
    for op in ops.iter().copied() {
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
