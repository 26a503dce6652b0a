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

/// A batch record's identity: what its subsegment's annotation shows, and what a handler's
/// `batch_item_failures` names a failed record by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordIdentity<'a> {
    /// An SQS or SNS message's id: the annotation `MessageId`.
    MessageId(&'a str),
    /// A Kinesis or DynamoDB Streams record's sequence number: `SequenceNumber`.
    SequenceNumber(&'a str),
    /// An event's id (EventBridge; a DynamoDB Streams record without a sequence number):
    /// `EventId`.
    EventId(&'a str),
    /// An S3 object's sequencer: `Sequencer`.
    Sequencer(&'a str),
}

impl<'a> RecordIdentity<'a> {
    /// The annotation's key.
    #[must_use]
    pub fn annotation_key(&self) -> &'static str {
        match self {
            RecordIdentity::MessageId(_) => "MessageId",
            RecordIdentity::SequenceNumber(_) => "SequenceNumber",
            RecordIdentity::EventId(_) => "EventId",
            RecordIdentity::Sequencer(_) => "Sequencer",
        }
    }

    /// The identifier.
    #[must_use]
    pub fn value(&self) -> &'a str {
        match *self {
            RecordIdentity::MessageId(id)
            | RecordIdentity::SequenceNumber(id)
            | RecordIdentity::EventId(id)
            | RecordIdentity::Sequencer(id) => id,
        }
    }
}

/// A record of a batch event, as its subsegment shows it.
///
/// Implemented for the batch types of `aws_lambda_events`; implement it for a record type
/// of your own:
///
/// ```
/// use xray_lambda::records::{RecordIdentity, TracedRecord};
///
/// struct Job {
///     queue: String,
///     id: String,
/// }
///
/// impl TracedRecord for Job {
///     fn xray_source(&self) -> Option<&str> {
///         Some(&self.queue)
///     }
///
///     fn xray_identity(&self) -> Option<RecordIdentity<'_>> {
///         Some(RecordIdentity::MessageId(&self.id))
///     }
/// }
///
/// # async fn handle(job: &Job) -> Result<(), std::io::Error> { Ok(()) }
/// async fn each(jobs: &[Job]) -> Result<(), std::io::Error> {
///     for job in jobs {
///         xray_lambda::records::process(job, handle(job)).await?;
///     }
///     Ok(())
/// }
/// ```
pub trait TracedRecord {
    /// The subsegment's name: the queue, topic, stream, table or bucket.
    fn xray_source(&self) -> Option<&str>;
    /// The record's identity, recorded as an annotation.
    fn xray_identity(&self) -> Option<RecordIdentity<'_>>;
    /// The producer's trace header, when the record carries one.
    fn xray_upstream(&self) -> Option<&str> {
        None
    }
    /// The producer's W3C `traceparent`, when the record carries one (an
    /// OpenTelemetry-instrumented producer puts it in the message's attributes): linked when
    /// there is no X-Ray header and `OTEL_PROPAGATORS` chooses `tracecontext`.
    fn xray_upstream_traceparent(&self) -> Option<&str> {
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
    let producer = upstream.map(|(header, _)| header).or_else(|| {
        record
            .xray_upstream_traceparent()
            .filter(|_| propagation::reads_tracecontext())
    });
    if let Some(header) = producer {
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
fn record_span(name: &str, identity: Option<RecordIdentity<'_>>) -> tracing::Span {
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
        Some(RecordIdentity::MessageId(id)) => span!(annotation.MessageId = id),
        Some(RecordIdentity::SequenceNumber(id)) => span!(annotation.SequenceNumber = id),
        Some(RecordIdentity::EventId(id)) => span!(annotation.EventId = id),
        Some(RecordIdentity::Sequencer(id)) => span!(annotation.Sequencer = id),
        None => span!(),
    }
}

#[cfg(test)]
mod tests {
    use super::RecordIdentity;

    /// The annotation each identity is recorded as (the span's field, which `tracing` takes
    /// only as a literal) is the key it names, and one the buffer matches failures against.
    #[test]
    fn identities_are_recorded_under_their_own_key() {
        for identity in [
            RecordIdentity::MessageId("m"),
            RecordIdentity::SequenceNumber("s"),
            RecordIdentity::EventId("e"),
            RecordIdentity::Sequencer("q"),
        ] {
            let key = format!("annotation.{}", identity.annotation_key());
            assert!(
                crate::vocabulary::RECORD_IDENTITIES.contains(&key.as_str()),
                "{key}"
            );
            let fields = tracing::subscriber::with_default(tracing_subscriber::registry(), || {
                let span = super::record_span("orders", Some(identity));
                let metadata = span.metadata().expect("an enabled span");
                metadata
                    .fields()
                    .iter()
                    .map(|f| f.name().to_owned())
                    .collect::<Vec<_>>()
            });
            assert!(fields.contains(&key), "{fields:?}");
        }
    }
}
