//! [`TracedRecord`] for the batch types of `aws_lambda_events`: names from ARNs, identities,
//! producers. Nothing here reads a body, an image or an object key.

use aws_lambda_events::event::dynamodb::EventRecord as DynamoDbRecord;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::kinesis::KinesisEventRecord;
use aws_lambda_events::event::s3::S3EventRecord;
use aws_lambda_events::event::sns::SnsRecord;
use aws_lambda_events::event::sqs::SqsMessage;

use super::{RecordIdentity, TracedRecord};

/// `arn:aws:sqs:us-east-1:123456789012:orders` → `orders` (the resource part of an ARN).
fn resource(arn: &str) -> Option<&str> {
    // After the fifth `:`; a byte scan, as `splitn` searches anew for each part.
    let (at, _) = arn.bytes().enumerate().filter(|&(_, b)| b == b':').nth(4)?;
    Some(&arn[at + 1..]).filter(|r| !r.is_empty())
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

impl TracedRecord for SqsMessage {
    fn xray_source(&self) -> Option<&str> {
        self.event_source_arn.as_deref().and_then(resource)
    }

    fn xray_identity(&self) -> Option<RecordIdentity<'_>> {
        non_empty(self.message_id.as_deref()).map(RecordIdentity::MessageId)
    }

    fn xray_upstream(&self) -> Option<&str> {
        non_empty(self.attributes.get("AWSTraceHeader").map(String::as_str))
    }

    fn xray_upstream_traceparent(&self) -> Option<&str> {
        non_empty(
            self.message_attributes
                .get(crate::w3c::TRACEPARENT)
                .and_then(|a| a.string_value.as_deref()),
        )
    }
}

impl TracedRecord for SnsRecord {
    fn xray_source(&self) -> Option<&str> {
        resource(&self.sns.topic_arn)
    }

    fn xray_identity(&self) -> Option<RecordIdentity<'_>> {
        non_empty(Some(self.sns.message_id.as_str())).map(RecordIdentity::MessageId)
    }

    fn xray_upstream_traceparent(&self) -> Option<&str> {
        non_empty(
            self.sns
                .message_attributes
                .get(crate::w3c::TRACEPARENT)
                .map(|a| a.value.as_str()),
        )
    }
}

impl TracedRecord for S3EventRecord {
    fn xray_source(&self) -> Option<&str> {
        non_empty(self.s3.bucket.name.as_deref())
    }

    /// The object's sequencer (never its key, which can hold personal data).
    fn xray_identity(&self) -> Option<RecordIdentity<'_>> {
        non_empty(self.s3.object.sequencer.as_deref()).map(RecordIdentity::Sequencer)
    }
}

impl TracedRecord for KinesisEventRecord {
    /// `arn:aws:kinesis:…:stream/clicks` → `clicks`.
    fn xray_source(&self) -> Option<&str> {
        let resource = self.event_source_arn.as_deref().and_then(resource)?;
        non_empty(Some(resource.strip_prefix("stream/").unwrap_or(resource)))
    }

    fn xray_identity(&self) -> Option<RecordIdentity<'_>> {
        non_empty(Some(self.kinesis.sequence_number.as_str())).map(RecordIdentity::SequenceNumber)
    }
}

impl TracedRecord for DynamoDbRecord {
    /// `arn:aws:dynamodb:…:table/Orders/stream/2026-…` → `Orders`.
    fn xray_source(&self) -> Option<&str> {
        let resource = self.event_source_arn.as_deref().and_then(resource)?;
        let table = resource.strip_prefix("table/").unwrap_or(resource);
        non_empty(Some(table.split('/').next().unwrap_or(table)))
    }

    /// The stream record's sequence number (what `batch_item_failures` names), else the
    /// event id.
    fn xray_identity(&self) -> Option<RecordIdentity<'_>> {
        non_empty(self.change.sequence_number.as_deref())
            .map(RecordIdentity::SequenceNumber)
            .or_else(|| non_empty(Some(self.event_id.as_str())).map(RecordIdentity::EventId))
    }
}

impl<T> TracedRecord for EventBridgeEvent<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    /// The event's `source` (`com.example.orders`).
    fn xray_source(&self) -> Option<&str> {
        non_empty(Some(self.source.as_str()))
    }

    fn xray_identity(&self) -> Option<RecordIdentity<'_>> {
        non_empty(self.id.as_deref()).map(RecordIdentity::EventId)
    }
}

#[cfg(test)]
mod tests {
    use super::resource;

    #[test]
    fn resources_of_arns() {
        assert_eq!(
            resource("arn:aws:sqs:us-east-1:123456789012:orders"),
            Some("orders")
        );
        assert_eq!(
            resource("arn:aws:dynamodb:us-east-1:1:table/Orders/stream/2026-01-01T00:00:00.000"),
            Some("table/Orders/stream/2026-01-01T00:00:00.000")
        );
        assert_eq!(resource("not-an-arn"), None);
        assert_eq!(resource("arn:aws:sqs:us-east-1:1:"), None);
    }
}
