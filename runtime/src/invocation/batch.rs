//! Partial batch failures: the identifiers a handler returns in `batch_item_failures` mark
//! those records' subsegments failed and give the handler the `FailedRecords` annotation,
//! whether or not the records were processed with `records::process`.

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::KeyValue;

use super::Invocation;

impl Invocation {
    /// Records the identifiers the handler reported as failed: `FailedRecords = n` on the
    /// handler subsegment, and each record subsegment still held whose identity is one of
    /// them marked a fault (records already streamed ahead, past the first hundred finished
    /// subsegments, keep what they were sent with).
    pub(crate) fn record_batch_failures(&mut self, failed: Option<Vec<&str>>) {
        let (Some(active), Some(failed)) = (self.active(), failed) else {
            return;
        };
        active.cx.span().set_attribute(KeyValue::new(
            "annotation.FailedRecords",
            i64::try_from(failed.len()).unwrap_or(i64::MAX),
        ));
        if !failed.is_empty() {
            active.buffer.mark_failed_records(active.trace_id, &failed);
        }
    }
}

/// Autoref specialisation for the expansion of `#[xray_handler]`: the `batch_item_failures`
/// identifiers of a handler's output, if it is a batch response. Not public API.
pub(crate) mod probe {
    /// Wraps the output so that the two impls sit at two autoref depths.
    #[derive(Debug)]
    pub struct BatchProbe<'a, T: ?Sized>(pub &'a T);

    /// A batch response: its failed items' identifiers.
    pub trait ViaBatchResponse<'a> {
        fn xray_batch_failures(&self) -> Option<Vec<&'a str>>;
    }

    /// Anything else: not a batch response.
    pub trait ViaNotBatch<'a> {
        fn xray_batch_failures(&self) -> Option<Vec<&'a str>> {
            None
        }
    }
    impl<'a, T: ?Sized> ViaNotBatch<'a> for BatchProbe<'a, T> {}

    /// `{"batchItemFailures": [{"itemIdentifier": "…"}, …]}`, for handlers answering JSON.
    impl<'a> ViaBatchResponse<'a> for &BatchProbe<'a, serde_json::Value> {
        fn xray_batch_failures(&self) -> Option<Vec<&'a str>> {
            let failures = self.0.get("batchItemFailures")?.as_array()?;
            Some(
                failures
                    .iter()
                    .filter_map(|f| f.get("itemIdentifier")?.as_str())
                    .collect(),
            )
        }
    }

    #[cfg(feature = "events")]
    mod events {
        use aws_lambda_events::event::sqs::SqsBatchResponse;
        use aws_lambda_events::event::streams::{
            DynamoDbEventResponse, KinesisEventResponse, SqsEventResponse,
        };

        use super::{BatchProbe, ViaBatchResponse};

        impl<'a> ViaBatchResponse<'a> for &BatchProbe<'a, SqsBatchResponse> {
            fn xray_batch_failures(&self) -> Option<Vec<&'a str>> {
                Some(
                    self.0
                        .batch_item_failures
                        .iter()
                        .map(|f| f.item_identifier.as_str())
                        .collect(),
                )
            }
        }

        macro_rules! optional_identifiers {
            ($($t:ty),*) => {$(
                impl<'a> ViaBatchResponse<'a> for &BatchProbe<'a, $t> {
                    fn xray_batch_failures(&self) -> Option<Vec<&'a str>> {
                        Some(
                            self.0
                                .batch_item_failures
                                .iter()
                                .filter_map(|f| f.item_identifier.as_deref())
                                .collect(),
                        )
                    }
                }
            )*};
        }
        optional_identifiers!(
            KinesisEventResponse,
            DynamoDbEventResponse,
            SqsEventResponse
        );
    }
}

#[cfg(test)]
// The borrows are the autoref specialisation under test.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::probe::{BatchProbe, ViaBatchResponse as _, ViaNotBatch as _};

    #[test]
    fn batch_responses_give_their_failed_identifiers() {
        let json = serde_json::json!({
            "batchItemFailures": [{ "itemIdentifier": "m-3" }, { "itemIdentifier": "m-7" }]
        });
        assert_eq!(
            (&&BatchProbe(&json)).xray_batch_failures(),
            Some(vec!["m-3", "m-7"])
        );
        let other = serde_json::json!({ "message": "hi" });
        assert_eq!((&&BatchProbe(&other)).xray_batch_failures(), None);
        assert_eq!((&&BatchProbe(&"text")).xray_batch_failures(), None);
        assert_eq!((&&BatchProbe(&())).xray_batch_failures(), None);
    }
}
