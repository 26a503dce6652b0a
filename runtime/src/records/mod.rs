//! Batches: one subsegment per record of an SQS, SNS, S3, Kinesis, DynamoDB Streams or
//! EventBridge event, so that the trace says which record failed, how long each took, and
//! which upstream trace produced it.
//!
//! ```no_run
//! use aws_lambda_events::event::sqs::SqsEvent;
//! use lambda_runtime::{Error, LambdaEvent};
//!
//! #[xray_lambda::xray_handler]
//! async fn handler(event: LambdaEvent<SqsEvent>) -> Result<(), Error> {
//!     for message in &event.payload.records {
//!         xray_lambda::records::process(message, async {
//!             // ... this message's work: its own subsegment, named after the queue ...
//!             Ok::<(), Error>(())
//!         })
//!         .await?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Concurrently, the same with `futures::future::join_all` over `process(..)` futures: each
//! record's subsegment is its own, under the handler.
//!
//! Each record's subsegment is named after its source, read from the record's ARN (queue,
//! topic, stream, table, bucket; EventBridge: the event's `source`), and annotated with the
//! record's identity — `MessageId`, `SequenceNumber` or `EventId` — never its body, never an S3
//! object key. An `Err` marks that record's subsegment a fault with its cause.
//!
//! **Producers.** An SQS message carries its producer's trace header (`AWSTraceHeader`). Its
//! subsegment gets an OpenTelemetry link to the producer's trace (what the OTLP path exports,
//! and the collector's X-Ray exporter writes as `links`) and, on the daemon path, the same link
//! as metadata `links` (X-Ray's own `links` field is not documented for subsegments sent
//! through the daemon). With Active tracing Lambda itself links the SQS → Lambda trace on its
//! own segment; this link is per message, on the message's subsegment.
//!
//! **Sampling.** A message whose producer's header says `Sampled=0` is processed without a
//! subsegment: the rule the X-Ray SDKs follow, so that consumers do not sample what producers
//! chose not to.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::exception::Exception;
use crate::header::TraceHeader;
use crate::propagation;
use crate::vocabulary::PRODUCER;

mod sources;

/// A record of a batch event, as its subsegment shows it.
pub trait TracedRecord {
    /// The subsegment's name: the queue, topic, stream, table or bucket.
    fn xray_source(&self) -> Option<&str>;
    /// The record's identity, as an annotation: key (`MessageId`, `SequenceNumber`,
    /// `EventId` or `Sequencer`; another key is not recorded) and value.
    fn xray_identity(&self) -> Option<(&'static str, &str)>;
    /// The producer's trace header, when the record carries one.
    fn xray_upstream(&self) -> Option<&str> {
        None
    }
}

/// Runs `work` for `record` inside the record's own subsegment; an `Err` marks that
/// subsegment a fault with its cause.
///
/// # Errors
/// `work`'s, unchanged.
pub async fn process<R, F, T, E>(record: &R, work: F) -> Result<T, E>
where
    R: TracedRecord + ?Sized,
    F: Future<Output = Result<T, E>>,
    E: Debug,
{
    // The producer's header, when it carries one that parses.
    let upstream = record
        .xray_upstream()
        .and_then(|h| Some((h, TraceHeader::try_parse(h).ok()?)));
    if upstream
        .as_ref()
        .is_some_and(|(_, header)| !header.sampling().is_recorded())
    {
        // The producer did not sample this message: neither does its consumer.
        return work.instrument(propagation::unsampled_span()).await;
    }
    let span = record_span(
        record.xray_source().unwrap_or("record"),
        record.xray_identity(),
    );
    if span.is_disabled() {
        return work.await;
    }
    if let Some((header, _)) = upstream {
        // One attribute (for OpenTelemetry only: no log line shows it), turned into the link
        // when the span reaches the buffer: cheaper than linking now, which looks the span up
        // three times.
        span.set_attribute(PRODUCER, header.to_owned());
    }
    let output = InSpan { span: &span, work }.await;
    if let Err(error) = &output {
        Exception::from_debug(error).record_on(&span);
    }
    output
}

pin_project_lite::pin_project! {
    /// `work` inside `span`, entered while `work` is polled. What `Instrument` does, without
    /// its clone of the span and without entering the span to drop the future: a record's
    /// subsegment is on the hot path of every batch. (Work cancelled before it finished is
    /// dropped outside the span: what its drop logs goes to the enclosing span.)
    struct InSpan<'a, F> {
        span: &'a tracing::Span,
        #[pin]
        work: F,
    }
}

impl<F: Future> Future for InSpan<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        this.work.poll(cx)
    }
}

/// The record's span, its identity a field from the start (cheaper than an attribute set
/// afterwards): one callsite per identity key, since field names are static.
fn record_span(name: &str, identity: Option<(&'static str, &str)>) -> tracing::Span {
    macro_rules! span {
        ($($field:tt)*) => {
            tracing::info_span!(
                target: "xray_lambda::record",
                "xray_record",
                otel.name = name,
                $($field)*
            )
        };
    }
    match identity {
        Some(("MessageId", id)) => span!(annotation.MessageId = id),
        Some(("SequenceNumber", id)) => span!(annotation.SequenceNumber = id),
        Some(("EventId", id)) => span!(annotation.EventId = id),
        Some(("Sequencer", id)) => span!(annotation.Sequencer = id),
        _ => span!(),
    }
}
