//! The parameters the X-Ray SDKs whitelist for SQS, Lambda and S3 calls, read from the
//! serialized request and the response without the services' crates (aws-xray-sdk-python's
//! `aws_para_whitelist.json`, aws-xray-sdk-go's `AWSWhitelist.json`). Counts stand in for
//! lists, and names for maps: message attributes' names, never their values; no message
//! body, receipt handle, object key or key prefix, or payload. `GetQueueAttributes` records
//! the queue's attributes as the SDKs do (queue configuration, not message data), each value
//! cut at [`QUEUE_ATTRIBUTE_CAP`] bytes with the crate's marker.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::record::{AwsMembers, NamedResource};

/// The request's fields (`snake_case`, as the `aws` object writes them) into `out`.
pub(super) fn from_request(
    service: &str,
    operation: &str,
    uri: &str,
    header: impl Fn(&str) -> Option<String>,
    body: Option<&[u8]>,
    out: &mut AwsMembers,
) {
    match service {
        "SQS" => {
            if let Some(request) = body.and_then(|b| serde_json::from_slice(b).ok()) {
                sqs_request(operation, request, out);
            }
        }
        "Lambda" if operation == "Invoke" => {
            for (field, name) in [
                ("invocation_type", "x-amz-invocation-type"),
                ("log_type", "x-amz-log-type"),
            ] {
                if let Some(value) = header(name) {
                    out.params.put(field, Json::String(value));
                }
            }
            let query = uri.split_once('?').map(|(_, query)| query.as_bytes());
            if let Some(qualifier) =
                query.and_then(|q| super::resources::form_value(q, "Qualifier"))
            {
                out.params.put("qualifier", Json::String(qualifier));
            }
        }
        _ => {}
    }
}

/// The response's fields into `out`: `status` is the final response's, `body` its bytes
/// where the SDK holds them in memory.
pub(super) fn from_response(
    service: &str,
    operation: &str,
    status: u16,
    header: impl Fn(&str) -> Option<String>,
    body: Option<&[u8]>,
    out: &mut AwsMembers,
) {
    let ok = (200..300).contains(&status);
    match service {
        "SQS" if ok => {
            if let Some(response) = body.and_then(|b| serde_json::from_slice(b).ok()) {
                sqs_response(operation, response, out);
            }
        }
        "Lambda" if ok && operation == "Invoke" => {
            out.params.put("status_code", Json::from(status));
            if let Some(error) = header("x-amz-function-error") {
                out.params.put("function_error", Json::String(error));
            }
        }
        "S3" => {
            // Every S3 response: the host that served it, which AWS support asks for.
            if let Some(id_2) = header("x-amz-id-2") {
                out.params.put("id_2", Json::String(id_2));
            }
            if !ok {
                return;
            }
            if header("x-amz-delete-marker").as_deref() == Some("true") {
                out.params.put("delete_marker", Json::Bool(true));
            }
            if let Some(version) = header("x-amz-version-id") {
                out.params.put("version_id", Json::String(version));
            }
            let count = |element: &str| body.map(|b| count_elements(b, element));
            let counted = match operation {
                "DeleteObjects" => count("Deleted").map(|n| ("deleted_object_count", n)),
                "ListObjects" | "ListObjectsV2" => count("Contents").map(|n| ("object_count", n)),
                _ => None,
            };
            if let Some((field, n)) = counted {
                out.params.put(field, Json::from(n));
            }
        }
        _ => {}
    }
}

/// The SQS JSON protocol's request members the SDKs whitelist (values as sent: numbers
/// stay numbers). Maps give their keys, lists their length.
// A map of `IgnoredAny`: only its keys are read (the values are skipped, not parsed).
#[allow(clippy::zero_sized_map_values)]
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SqsRequest {
    /// Every operation on a queue names it (the JSON protocol; the query protocol's form is
    /// read in `resources`).
    queue_url: Option<String>,
    queue_name: Option<String>,
    queue_name_prefix: Option<String>,
    delay_seconds: Option<i64>,
    max_number_of_messages: Option<i64>,
    visibility_timeout: Option<i64>,
    wait_time_seconds: Option<i64>,
    attribute_names: Option<Vec<String>>,
    message_system_attribute_names: Option<Vec<String>>,
    message_attribute_names: Option<Vec<String>>,
    /// `SendMessage`'s attributes: their names only.
    message_attributes: Option<BTreeMap<String, IgnoredAny>>,
    /// `SetQueueAttributes`' attributes: their names only.
    attributes: Option<BTreeMap<String, IgnoredAny>>,
    entries: Option<Vec<IgnoredAny>>,
}

#[allow(clippy::zero_sized_map_values)]
fn sqs_request(operation: &str, request: SqsRequest, out: &mut AwsMembers) {
    if let Some(url) = request.queue_url {
        out.resource = Some(NamedResource::Queue(url));
    }
    let mut put = |field: &'static str, value: Option<Json>| {
        if let Some(value) = value {
            out.params.put(field, value);
        }
    };
    let names = |map: Option<BTreeMap<String, IgnoredAny>>| {
        map.map(|m| Json::Array(m.into_keys().map(Json::from).collect()))
    };
    match operation {
        "CreateQueue" | "GetQueueUrl" => put("queue_name", request.queue_name.map(Json::from)),
        "ListQueues" => put(
            "queue_name_prefix",
            request.queue_name_prefix.map(Json::from),
        ),
        "SendMessage" => {
            put("delay_seconds", request.delay_seconds.map(Json::from));
            put("message_attribute_names", names(request.message_attributes));
        }
        "SendMessageBatch" => put(
            "message_count",
            request.entries.map(|entries| Json::from(entries.len())),
        ),
        "ReceiveMessage" => {
            let attributes = request
                .message_system_attribute_names
                .or(request.attribute_names);
            put("attribute_names", attributes.map(Json::from));
            put(
                "max_number_of_messages",
                request.max_number_of_messages.map(Json::from),
            );
            put(
                "message_attribute_names",
                request.message_attribute_names.map(Json::from),
            );
            put(
                "visibility_timeout",
                request.visibility_timeout.map(Json::from),
            );
            put(
                "wait_time_seconds",
                request.wait_time_seconds.map(Json::from),
            );
        }
        "ChangeMessageVisibility" => put(
            "visibility_timeout",
            request.visibility_timeout.map(Json::from),
        ),
        "GetQueueAttributes" => put("attribute_names", request.attribute_names.map(Json::from)),
        "SetQueueAttributes" => put("attribute_names", names(request.attributes)),
        _ => {}
    }
}

/// The longest queue attribute value recorded whole (a `Policy` can run to kilobytes).
const QUEUE_ATTRIBUTE_CAP: usize = 1024;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SqsResponse {
    message_id: Option<String>,
    /// `GetQueueAttributes`' answer.
    attributes: Option<BTreeMap<String, String>>,
    queue_url: Option<String>,
    messages: Option<Vec<IgnoredAny>>,
    successful: Option<Vec<IgnoredAny>>,
    failed: Option<Vec<IgnoredAny>>,
    queue_urls: Option<Vec<IgnoredAny>>,
}

fn sqs_response(operation: &str, response: SqsResponse, out: &mut AwsMembers) {
    let count = |list: Option<Vec<IgnoredAny>>| Json::from(list.map_or(0, |l| l.len()));
    if operation == "GetQueueUrl" {
        if let Some(url) = response.queue_url {
            out.resource = Some(NamedResource::Queue(url));
        }
    }
    let fields: Vec<(&'static str, Json)> = match operation {
        "SendMessage" => response
            .message_id
            .map(|id| ("message_id", Json::from(id)))
            .into_iter()
            .collect(),
        // An empty receive sends no `Messages` member: zero messages.
        "ReceiveMessage" => vec![("message_count", count(response.messages))],
        "ListQueues" => vec![("queue_count", count(response.queue_urls))],
        "SendMessageBatch" => vec![
            ("successful_count", count(response.successful)),
            ("failed_count", count(response.failed)),
        ],
        "DeleteMessageBatch" | "ChangeMessageVisibilityBatch" => {
            vec![("failed_count", count(response.failed))]
        }
        "GetQueueAttributes" => response
            .attributes
            .map(|attributes| {
                let capped = attributes.into_iter().map(|(name, value)| {
                    let value = if value.len() > QUEUE_ATTRIBUTE_CAP {
                        crate::vocabulary::truncated(&value, QUEUE_ATTRIBUTE_CAP)
                    } else {
                        value
                    };
                    (name, Json::String(value))
                });
                ("attributes", Json::Object(capped.collect()))
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    for (field, value) in fields {
        out.params.put(field, value);
    }
}

/// How many `<element>` start tags an XML body holds (keys and other text are escaped, so a
/// key cannot fake one).
fn count_elements(body: &[u8], element: &str) -> usize {
    let open = format!("<{element}>");
    let open = open.as_bytes();
    body.windows(open.len()).filter(|w| *w == open).count()
}

#[cfg(test)]
mod tests {
    use super::{from_request, from_response};
    use serde_json::{json, Map, Value};

    use crate::record::AwsMembers;

    /// The members as the `aws` object holds them.
    fn object(members: &AwsMembers) -> Value {
        Value::Object(
            members
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_json()))
                .collect::<Map<String, Value>>(),
        )
    }

    fn request(service: &str, operation: &str, uri: &str, body: &str) -> Value {
        let mut out = AwsMembers::default();
        let header = |name: &str| match name {
            "x-amz-invocation-type" => Some("Event".to_owned()),
            _ => None,
        };
        from_request(
            service,
            operation,
            uri,
            header,
            Some(body.as_bytes()),
            &mut out,
        );
        object(&out)
    }

    fn response(service: &str, operation: &str, status: u16, body: &str) -> Value {
        let mut out = AwsMembers::default();
        let header = |name: &str| match name {
            "x-amz-id-2" => Some("host-id".to_owned()),
            "x-amz-function-error" => Some("Unhandled".to_owned()),
            "x-amz-delete-marker" => Some("true".to_owned()),
            _ => None,
        };
        from_response(
            service,
            operation,
            status,
            header,
            Some(body.as_bytes()),
            &mut out,
        );
        object(&out)
    }

    #[test]
    fn get_queue_attributes_records_the_queues_attributes_cut_to_size() {
        let policy = "p".repeat(5000);
        let answered = response(
            "SQS",
            "GetQueueAttributes",
            200,
            &format!(r#"{{"Attributes":{{"VisibilityTimeout":"30","Policy":"{policy}"}}}}"#),
        );
        assert_eq!(answered["attributes"]["VisibilityTimeout"], "30");
        let cut = answered["attributes"]["Policy"].as_str().expect("text");
        assert!(
            cut.starts_with(&"p".repeat(1024)) && cut.contains("5000 bytes in all"),
            "{cut}"
        );
        assert!(cut.len() < 1100);
        // The names asked for, from the request, as before.
        let sent = request(
            "SQS",
            "GetQueueAttributes",
            "/",
            r#"{"QueueUrl":"q","AttributeNames":["All"]}"#,
        );
        assert_eq!(sent["attribute_names"], json!(["All"]));
    }

    #[test]
    fn sqs_names_and_counts_never_values() {
        let sent = request(
            "SQS",
            "SendMessage",
            "/",
            r#"{"QueueUrl":"q","MessageBody":"SECRET","DelaySeconds":5,
                "MessageAttributes":{"tenant":{"DataType":"String","StringValue":"SECRET"}}}"#,
        );
        assert_eq!(
            sent,
            json!({"queue_url": "q", "delay_seconds": 5, "message_attribute_names": ["tenant"]})
        );
        let batch = request(
            "SQS",
            "SendMessageBatch",
            "/",
            r#"{"Entries":[{"Id":"1","MessageBody":"SECRET"},{"Id":"2","MessageBody":"x"}]}"#,
        );
        assert_eq!(batch, json!({"message_count": 2}));
        let received = response(
            "SQS",
            "ReceiveMessage",
            200,
            r#"{"Messages":[{"Body":"SECRET","ReceiptHandle":"SECRET"}]}"#,
        );
        assert_eq!(received, json!({"message_count": 1}));
        assert_eq!(
            response("SQS", "ReceiveMessage", 200, "{}"),
            json!({"message_count": 0})
        );
        assert_eq!(response("SQS", "SendMessage", 400, "{}"), json!({}));
    }

    #[test]
    fn lambda_and_s3() {
        assert_eq!(
            request(
                "Lambda",
                "Invoke",
                "https://lambda/2015-03-31/functions/f/invocations?Qualifier=live",
                "SECRET"
            ),
            json!({"invocation_type": "Event", "qualifier": "live"})
        );
        assert_eq!(
            response("Lambda", "Invoke", 200, "SECRET"),
            json!({"status_code": 200, "function_error": "Unhandled"})
        );
        assert_eq!(
            response(
                "S3",
                "DeleteObjects",
                200,
                "<DeleteResult><Deleted><Key>&lt;Deleted&gt;</Key></Deleted><Deleted><Key>b</Key></Deleted></DeleteResult>"
            ),
            json!({"id_2": "host-id", "delete_marker": true, "deleted_object_count": 2})
        );
        assert_eq!(
            response("S3", "GetObject", 404, ""),
            json!({"id_2": "host-id"})
        );
    }
}
