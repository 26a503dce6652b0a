//! The `hello` function: handler → `hello(first_name)` → `ddb_get(id)`, a DynamoDB `GetItem`
//! on the table named by `TABLE_NAME` (default `lambda-tracing-xray`) with key
//! `id = "12345"`, answering `{"message": "Hello, <firstName>!"}`.
//!
//! Its trace in X-Ray: `handler` (annotated `ColdStart`, `Service`) → `hello` → `ddb_get` →
//! `DynamoDB` (`aws` namespace: operation `GetItem`, table, region, request id, status,
//! retries).
//!
//! The `hello-http` function: `GET /hello/{name}` behind an API Gateway HTTP API (or a
//! Function URL) → the same `hello` → `{"message": "Hello, <name>!"}`; its handler subsegment
//! has X-Ray's `http` object and the `HttpMethod`, `HttpRoute` and `HttpStatus` annotations.
//!
//! The `orders-consumer` function: an SQS batch, each order stored in DynamoDB in a subsegment
//! of its own (`records::process`), the orders that could not be stored reported as partial
//! batch failures (`FailedRecords` on the handler, the failed messages' subsegments faults).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use lambda_http::{http::StatusCode, RequestExt as _};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

/// The event: `{"firstName": "Ada"}`; `firstName` defaults to `world`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Who to greet.
    #[serde(default)]
    pub first_name: Option<String>,
}

/// The DynamoDB client for the function, with X-Ray's interceptor: built once, at init.
pub async fn dynamodb_client() -> Client {
    let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    client_from(aws_sdk_dynamodb::config::Builder::from(&sdk_config))
}

/// Adds the X-Ray interceptor to a client configuration: the one line tracing needs.
#[must_use]
pub fn client_from(config: aws_sdk_dynamodb::config::Builder) -> Client {
    Client::from_conf(
        config
            .interceptor(xray_lambda::aws::XrayInterceptor::new())
            .build(),
    )
}

/// The Lambda handler.
#[xray_lambda::xray_handler]
pub async fn handler(client: Client, event: LambdaEvent<Request>) -> Result<Value, Error> {
    let first_name = event
        .payload
        .first_name
        .unwrap_or_else(|| "world".to_owned());
    let message = hello(&client, &first_name).await?;
    Ok(json!({ "message": message }))
}

/// Builds the greeting; a plain `tracing` span, so a nested subsegment.
#[tracing::instrument(skip_all)]
pub async fn hello(client: &Client, first_name: &str) -> Result<String, Error> {
    ddb_get(client, "12345").await?;
    Ok(format!("Hello, {first_name}!"))
}

/// Reads the greeting's item. The `GetItem` call inside becomes an `aws` subsegment.
#[xray_lambda::xray_aws]
pub async fn ddb_get(client: &Client, id: &str) -> Result<Option<String>, Error> {
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "lambda-tracing-xray".to_owned());
    let output = client
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_owned()))
        .send()
        .await?;
    Ok(output
        .item
        .and_then(|item| item.get("id").and_then(|v| v.as_s().ok()).cloned()))
}

/// The `hello-http` handler: `GET /hello/{name}` answers the greeting, anything else 404.
/// It routes on the request's path, so it answers alike behind an API Gateway HTTP or REST
/// API, a Function URL, an ALB and `cargo lambda watch` (only API Gateway fills in path
/// parameters).
#[xray_lambda::xray_handler]
pub async fn hello_http(
    client: Client,
    request: lambda_http::Request,
) -> Result<impl lambda_http::IntoResponse, Error> {
    let path = request.raw_http_path();
    let name = name_in_path(path).map(str::to_owned);
    let Some(name) = name else {
        let message = "say GET /hello/{name}";
        return Ok((StatusCode::NOT_FOUND, json!({ "message": message })));
    };
    let message = hello(&client, &name).await?;
    Ok((StatusCode::OK, json!({ "message": message })))
}

/// `name` in `…/hello/{name}` (a REST API's stage, if any, before it), as sent; `None` for
/// any other path.
#[must_use]
pub fn name_in_path(path: &str) -> Option<&str> {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let name = segments.next().filter(|name| !name.is_empty())?;
    (segments.next() == Some("hello")).then_some(name)
}

/// The `orders-consumer` handler: each SQS message (an order as JSON, `{"orderId": "…"}`) is
/// stored in DynamoDB (`PutItem` on `ORDERS_TABLE`, default `orders`) in a subsegment of its
/// own; messages that cannot be stored are reported as partial batch failures, so only they
/// return to the queue.
#[xray_lambda::xray_handler]
pub async fn orders_consumer(
    client: Client,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for message in &event.payload.records {
        let stored = xray_lambda::records::process(message, store_order(&client, message)).await;
        if stored.is_err() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

/// Stores one order; the `PutItem` inside becomes an `aws` subsegment of the message's.
async fn store_order(client: &Client, message: &SqsMessage) -> Result<(), Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Order {
        order_id: String,
    }
    let order: Order = serde_json::from_str(message.body.as_deref().unwrap_or_default())?;
    let table = std::env::var("ORDERS_TABLE").unwrap_or_else(|_| "orders".to_owned());
    client
        .put_item()
        .table_name(table)
        .item("id", AttributeValue::S(order.order_id))
        .send()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::name_in_path;

    #[test]
    fn the_name_is_read_from_the_path_wherever_the_request_came_from() {
        for (path, name) in [
            ("/hello/Ada", Some("Ada")),
            ("/prod/hello/Grace/", Some("Grace")),
            ("/hello/", None),
            ("/hello", None),
            ("/goodbye/Ada", None),
            ("/", None),
        ] {
            assert_eq!(name_in_path(path), name, "{path}");
        }
    }
}
