//! DynamoDB: the request and response parameters the official X-Ray SDKs record for each
//! operation (shared/reference/dynamodb-parameters.md), plus the gaps they leave: the
//! transactions, PartiQL, and Query's counts.
//!
//! Only names, counts, capacities, limits and flags are read. Keys, items, attribute values,
//! expressions, statements and `ItemCollectionKey` (which holds a partition key value) are
//! never read.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation as op;
use aws_sdk_dynamodb::types::{
    Capacity, ConsumedCapacity, ItemCollectionMetrics, KeySchemaElement, Projection,
    ProvisionedThroughput,
};
use aws_smithy_runtime_api::client::interceptors::context::{Error, Input, Output};
use serde_json::{json, Map, Value as Json};

use super::{table_of_statement, Recorded};
use crate::record::Params;

fn put(params: &mut Params, key: &'static str, value: Option<Json>) {
    if let Some(value) = value {
        params.put(key, value);
    }
}

/// A member of a nested object (an index's, a capacity's), when there is a value.
fn put_in(object: &mut Map<String, Json>, key: &str, value: Option<Json>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

fn strings(list: &[String]) -> Option<Json> {
    (!list.is_empty()).then(|| json!(list))
}

/// A list worth recording: `None` when empty (the official SDKs leave empty lists out).
fn non_empty(list: Vec<Json>) -> Option<Json> {
    (!list.is_empty()).then_some(Json::Array(list))
}

/// Runs `record` on the input when it is a `T`, the operation's input type.
fn with_input<T: std::fmt::Debug + Send + Sync + 'static>(
    input: &Input,
    r: &mut Recorded,
    record: fn(&T, &mut Recorded),
) {
    if let Some(i) = input.downcast_ref::<T>() {
        record(i, r);
    }
}

// One arm per operation, each to the helper that records it: a table, read as one.
pub(super) fn request_params(operation: &str, input: &Input) -> Recorded {
    let mut r = Recorded::default();
    match operation {
        "GetItem" => with_input(input, &mut r, get_item),
        // Operations that record only their table.
        "PutItem" | "UpdateItem" | "DeleteItem" | "DeleteTable" | "DescribeTable" => {
            r.table_name = table_only(operation, input);
        }
        "CreateTable" => with_input(input, &mut r, create_table),
        "UpdateTable" => with_input(input, &mut r, update_table),
        "Query" => with_input(input, &mut r, query),
        "Scan" => with_input(input, &mut r, scan),
        "ListTables" => with_input(input, &mut r, list_tables),
        "BatchGetItem" => with_input(input, &mut r, batch_get_item),
        "BatchWriteItem" => with_input(input, &mut r, batch_write_item),
        "TransactGetItems" => with_input(input, &mut r, transact_get_items),
        "TransactWriteItems" => with_input(input, &mut r, transact_write_items),
        "ExecuteStatement" => with_input(input, &mut r, execute_statement),
        "BatchExecuteStatement" => with_input(input, &mut r, batch_execute_statement),
        _ => {}
    }
    r
}

fn get_item(i: &op::get_item::GetItemInput, r: &mut Recorded) {
    r.table_name = i.table_name().map(str::to_owned);
    let p = &mut r.params;
    put(p, "consistent_read", i.consistent_read().map(Json::from));
    put(
        p,
        "projection_expression",
        i.projection_expression().map(Json::from),
    );
}

/// The table of an operation that records nothing else.
fn table_only(operation: &str, input: &Input) -> Option<String> {
    macro_rules! table_of {
        ($($op:literal => $ty:ty),* $(,)?) => {
            match operation {
                $($op => input.downcast_ref::<$ty>().and_then(|i| i.table_name()),)*
                _ => None,
            }
        };
    }
    table_of! {
        "PutItem" => op::put_item::PutItemInput,
        "UpdateItem" => op::update_item::UpdateItemInput,
        "DeleteItem" => op::delete_item::DeleteItemInput,
        "DeleteTable" => op::delete_table::DeleteTableInput,
        "DescribeTable" => op::describe_table::DescribeTableInput,
    }
    .map(str::to_owned)
}

fn create_table(i: &op::create_table::CreateTableInput, r: &mut Recorded) {
    r.table_name = i.table_name().map(str::to_owned);
    let gsis: Vec<Json> = i
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            let mut o = index_json(g.index_name(), g.key_schema(), g.projection());
            put_in(
                &mut o,
                "ProvisionedThroughput",
                g.provisioned_throughput().map(throughput),
            );
            Json::Object(o)
        })
        .collect();
    let lsis: Vec<Json> = i
        .local_secondary_indexes()
        .iter()
        .map(|l| Json::Object(index_json(l.index_name(), l.key_schema(), l.projection())))
        .collect();
    let p = &mut r.params;
    put(p, "global_secondary_indexes", non_empty(gsis));
    put(p, "local_secondary_indexes", non_empty(lsis));
    put(
        p,
        "provisioned_throughput",
        i.provisioned_throughput().map(throughput),
    );
}

fn update_table(i: &op::update_table::UpdateTableInput, r: &mut Recorded) {
    r.table_name = i.table_name().map(str::to_owned);
    let definitions: Vec<Json> = i
        .attribute_definitions()
        .iter()
        .map(|d| json!({"AttributeName": d.attribute_name(), "AttributeType": d.attribute_type().as_str()}))
        .collect();
    let updates: Vec<Json> = i
        .global_secondary_index_updates()
        .iter()
        .filter_map(|u| {
            if let Some(c) = u.create() {
                let mut o = index_json(c.index_name(), c.key_schema(), c.projection());
                put_in(
                    &mut o,
                    "ProvisionedThroughput",
                    c.provisioned_throughput().map(throughput),
                );
                Some(json!({ "Create": o }))
            } else if let Some(u) = u.update() {
                let mut o = Map::new();
                o.insert("IndexName".into(), json!(u.index_name()));
                put_in(
                    &mut o,
                    "ProvisionedThroughput",
                    u.provisioned_throughput().map(throughput),
                );
                Some(json!({ "Update": o }))
            } else {
                u.delete()
                    .map(|d| json!({"Delete": {"IndexName": d.index_name()}}))
            }
        })
        .collect();
    let p = &mut r.params;
    put(p, "attribute_definitions", non_empty(definitions));
    put(p, "global_secondary_index_updates", non_empty(updates));
    put(
        p,
        "provisioned_throughput",
        i.provisioned_throughput().map(throughput),
    );
}

fn query(i: &op::query::QueryInput, r: &mut Recorded) {
    r.table_name = i.table_name().map(str::to_owned);
    let p = &mut r.params;
    put(p, "attributes_to_get", strings(i.attributes_to_get()));
    put(p, "consistent_read", i.consistent_read().map(Json::from));
    put(p, "index_name", i.index_name().map(Json::from));
    put(p, "limit", i.limit().map(Json::from));
    put(
        p,
        "projection_expression",
        i.projection_expression().map(Json::from),
    );
    put(
        p,
        "scan_index_forward",
        i.scan_index_forward().map(Json::from),
    );
    put(p, "select", i.select().map(|s| json!(s.as_str())));
}

fn scan(i: &op::scan::ScanInput, r: &mut Recorded) {
    r.table_name = i.table_name().map(str::to_owned);
    let p = &mut r.params;
    put(p, "attributes_to_get", strings(i.attributes_to_get()));
    put(p, "consistent_read", i.consistent_read().map(Json::from));
    put(p, "index_name", i.index_name().map(Json::from));
    put(p, "limit", i.limit().map(Json::from));
    put(
        p,
        "projection_expression",
        i.projection_expression().map(Json::from),
    );
    put(p, "segment", i.segment().map(Json::from));
    put(p, "select", i.select().map(|s| json!(s.as_str())));
    put(p, "total_segments", i.total_segments().map(Json::from));
}

fn list_tables(i: &op::list_tables::ListTablesInput, r: &mut Recorded) {
    let p = &mut r.params;
    put(
        p,
        "exclusive_start_table_name",
        i.exclusive_start_table_name().map(Json::from),
    );
    put(p, "limit", i.limit().map(Json::from));
}

fn batch_get_item(i: &op::batch_get_item::BatchGetItemInput, r: &mut Recorded) {
    r.table_names = sorted(
        i.request_items()
            .into_iter()
            .flat_map(|m| m.keys().cloned()),
    );
}

fn batch_write_item(i: &op::batch_write_item::BatchWriteItemInput, r: &mut Recorded) {
    r.table_names = sorted(
        i.request_items()
            .into_iter()
            .flat_map(|m| m.keys().cloned()),
    );
}

fn transact_get_items(i: &op::transact_get_items::TransactGetItemsInput, r: &mut Recorded) {
    r.table_names = sorted(
        i.transact_items()
            .iter()
            .filter_map(|t| t.get().map(|g| g.table_name().to_owned())),
    );
}

fn transact_write_items(i: &op::transact_write_items::TransactWriteItemsInput, r: &mut Recorded) {
    r.table_names = sorted(i.transact_items().iter().filter_map(|t| {
        t.put()
            .map(aws_sdk_dynamodb::types::Put::table_name)
            .or_else(|| t.update().map(aws_sdk_dynamodb::types::Update::table_name))
            .or_else(|| t.delete().map(aws_sdk_dynamodb::types::Delete::table_name))
            .or_else(|| {
                t.condition_check()
                    .map(aws_sdk_dynamodb::types::ConditionCheck::table_name)
            })
            .map(str::to_owned)
    }));
}

fn execute_statement(i: &op::execute_statement::ExecuteStatementInput, r: &mut Recorded) {
    r.table_name = i.statement().and_then(table_of_statement);
    let p = &mut r.params;
    put(p, "consistent_read", i.consistent_read().map(Json::from));
    put(p, "limit", i.limit().map(Json::from));
}

fn batch_execute_statement(
    i: &op::batch_execute_statement::BatchExecuteStatementInput,
    r: &mut Recorded,
) {
    r.table_names = sorted(
        i.statements()
            .iter()
            .filter_map(|s| table_of_statement(s.statement())),
    );
}

// Single capacities first, then each operation's own fields: the keys' insertion order.
pub(super) fn response_params(operation: &str, output: &Output, p: &mut Params) {
    single_capacity(operation, output, p);
    match operation {
        "PutItem" | "UpdateItem" | "DeleteItem" => item_collection(operation, output, p),
        "Query" => {
            if let Some(o) = output.downcast_ref::<op::query::QueryOutput>() {
                counts(o.count(), o.scanned_count(), p);
            }
        }
        "Scan" => {
            if let Some(o) = output.downcast_ref::<op::scan::ScanOutput>() {
                counts(o.count(), o.scanned_count(), p);
            }
        }
        "ListTables" => {
            if let Some(o) = output.downcast_ref::<op::list_tables::ListTablesOutput>() {
                p.put("table_count", json!(o.table_names().len()));
            }
        }
        "BatchGetItem" | "TransactGetItems" | "TransactWriteItems" => {
            capacity_list(operation, output, p);
        }
        "BatchWriteItem" => {
            if let Some(o) = output.downcast_ref::<op::batch_write_item::BatchWriteItemOutput>() {
                batch_write_item_response(o, p);
            }
        }
        _ => {}
    }
}

/// The operations whose output holds one `ConsumedCapacity`.
fn single_capacity(operation: &str, output: &Output, p: &mut Params) {
    macro_rules! single_capacity {
        ($($op:literal => $ty:ty),* $(,)?) => {
            match operation {
                $($op => if let Some(o) = output.downcast_ref::<$ty>() {
                    put(p, "consumed_capacity", o.consumed_capacity().map(consumed));
                })*
                _ => {}
            }
        };
    }
    single_capacity! {
        "GetItem" => op::get_item::GetItemOutput,
        "PutItem" => op::put_item::PutItemOutput,
        "UpdateItem" => op::update_item::UpdateItemOutput,
        "DeleteItem" => op::delete_item::DeleteItemOutput,
        "Query" => op::query::QueryOutput,
        "Scan" => op::scan::ScanOutput,
        "ExecuteStatement" => op::execute_statement::ExecuteStatementOutput,
    }
}

/// `PutItem`, `UpdateItem` and `DeleteItem`: one item collection's metrics.
fn item_collection(operation: &str, output: &Output, p: &mut Params) {
    macro_rules! metrics_of {
        ($($op:literal => $ty:ty),* $(,)?) => {
            match operation {
                $($op => output.downcast_ref::<$ty>().and_then(|o| o.item_collection_metrics()),)*
                _ => None,
            }
        };
    }
    let metrics = metrics_of! {
        "PutItem" => op::put_item::PutItemOutput,
        "UpdateItem" => op::update_item::UpdateItemOutput,
        "DeleteItem" => op::delete_item::DeleteItemOutput,
    };
    put(
        p,
        "item_collection_metrics",
        metrics.map(collection_metrics),
    );
}

/// `Query` and `Scan`: their item counts.
fn counts(count: i32, scanned_count: i32, p: &mut Params) {
    p.put("count", json!(count));
    p.put("scanned_count", json!(scanned_count));
}

/// The operations whose output holds a list of `ConsumedCapacity`, and nothing else recorded.
fn capacity_list(operation: &str, output: &Output, p: &mut Params) {
    macro_rules! list_of {
        ($($op:literal => $ty:ty),* $(,)?) => {
            match operation {
                $($op => output.downcast_ref::<$ty>().map(|o| o.consumed_capacity()),)*
                _ => None,
            }
        };
    }
    let list = list_of! {
        "BatchGetItem" => op::batch_get_item::BatchGetItemOutput,
        "TransactGetItems" => op::transact_get_items::TransactGetItemsOutput,
        "TransactWriteItems" => op::transact_write_items::TransactWriteItemsOutput,
    };
    put(p, "consumed_capacity", list.and_then(capacities));
}

fn batch_write_item_response(o: &op::batch_write_item::BatchWriteItemOutput, p: &mut Params) {
    put(p, "consumed_capacity", capacities(o.consumed_capacity()));
    if let Some(metrics) = o.item_collection_metrics() {
        let by_table: Map<String, Json> = metrics
            .iter()
            .map(|(table, list)| (table.clone(), list.iter().map(collection_metrics).collect()))
            .collect();
        put(
            p,
            "item_collection_metrics",
            (!by_table.is_empty()).then_some(Json::Object(by_table)),
        );
    }
}

pub(super) fn error_metadata(operation: &str, error: &Error) -> Option<(String, String)> {
    macro_rules! errors {
        ($($op:literal => $ty:ty),* $(,)?) => {
            match operation {
                $($op => error.downcast_ref::<$ty>().map(|e| {
                    (
                        e.code().unwrap_or("DynamoDBError").to_owned(),
                        e.message().map_or_else(|| e.to_string(), str::to_owned),
                    )
                }),)*
                _ => None,
            }
        };
    }
    errors! {
        "GetItem" => op::get_item::GetItemError,
        "PutItem" => op::put_item::PutItemError,
        "UpdateItem" => op::update_item::UpdateItemError,
        "DeleteItem" => op::delete_item::DeleteItemError,
        "Query" => op::query::QueryError,
        "Scan" => op::scan::ScanError,
        "ListTables" => op::list_tables::ListTablesError,
        "BatchGetItem" => op::batch_get_item::BatchGetItemError,
        "BatchWriteItem" => op::batch_write_item::BatchWriteItemError,
        "TransactGetItems" => op::transact_get_items::TransactGetItemsError,
        "TransactWriteItems" => op::transact_write_items::TransactWriteItemsError,
        "ExecuteStatement" => op::execute_statement::ExecuteStatementError,
        "BatchExecuteStatement" => op::batch_execute_statement::BatchExecuteStatementError,
        "CreateTable" => op::create_table::CreateTableError,
        "DeleteTable" => op::delete_table::DeleteTableError,
        "DescribeTable" => op::describe_table::DescribeTableError,
        "UpdateTable" => op::update_table::UpdateTableError,
    }
}

fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.collect();
    names.sort();
    names.dedup();
    names
}

fn throughput(t: &ProvisionedThroughput) -> Json {
    json!({"ReadCapacityUnits": t.read_capacity_units(), "WriteCapacityUnits": t.write_capacity_units()})
}

fn index_json(
    name: &str,
    keys: &[KeySchemaElement],
    projection: Option<&Projection>,
) -> Map<String, Json> {
    let mut o = Map::new();
    o.insert("IndexName".into(), json!(name));
    o.insert(
        "KeySchema".into(),
        keys.iter()
            .map(|k| json!({"AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str()}))
            .collect(),
    );
    if let Some(projection) = projection {
        let mut pj = Map::new();
        put_in(
            &mut pj,
            "ProjectionType",
            projection.projection_type().map(|t| json!(t.as_str())),
        );
        put_in(
            &mut pj,
            "NonKeyAttributes",
            strings(projection.non_key_attributes()),
        );
        o.insert("Projection".into(), Json::Object(pj));
    }
    o
}

fn capacity(c: &Capacity) -> Json {
    let mut o = Map::new();
    put_in(&mut o, "CapacityUnits", c.capacity_units().map(Json::from));
    put_in(
        &mut o,
        "ReadCapacityUnits",
        c.read_capacity_units().map(Json::from),
    );
    put_in(
        &mut o,
        "WriteCapacityUnits",
        c.write_capacity_units().map(Json::from),
    );
    Json::Object(o)
}

fn consumed(c: &ConsumedCapacity) -> Json {
    let mut o = Map::new();
    put_in(&mut o, "TableName", c.table_name().map(Json::from));
    put_in(&mut o, "CapacityUnits", c.capacity_units().map(Json::from));
    put_in(
        &mut o,
        "ReadCapacityUnits",
        c.read_capacity_units().map(Json::from),
    );
    put_in(
        &mut o,
        "WriteCapacityUnits",
        c.write_capacity_units().map(Json::from),
    );
    put_in(&mut o, "Table", c.table().map(capacity));
    let by_index = |m: Option<&std::collections::HashMap<String, Capacity>>| {
        m.filter(|m| !m.is_empty())
            .map(|m| Json::Object(m.iter().map(|(k, v)| (k.clone(), capacity(v))).collect()))
    };
    put_in(
        &mut o,
        "LocalSecondaryIndexes",
        by_index(c.local_secondary_indexes()),
    );
    put_in(
        &mut o,
        "GlobalSecondaryIndexes",
        by_index(c.global_secondary_indexes()),
    );
    Json::Object(o)
}

fn capacities(list: &[ConsumedCapacity]) -> Option<Json> {
    (!list.is_empty()).then(|| list.iter().map(consumed).collect())
}

/// Only the size estimate: `ItemCollectionKey` holds a partition key value.
fn collection_metrics(m: &ItemCollectionMetrics) -> Json {
    json!({ "SizeEstimateRangeGB": m.size_estimate_range_gb() })
}
