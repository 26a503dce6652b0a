//! Feature `events`: a record's producer (X-Ray's header, or W3C's `traceparent`), carried as a
//! span attribute ([`PRODUCER`]) and
//! turned into an OpenTelemetry link when the span reaches the buffer: the OTLP path exports it
//! as it is, the daemon writer writes it as the subsegment's `links` metadata.

use opentelemetry::trace::Link;
use opentelemetry::KeyValue;

use super::Record;
use crate::header::TraceHeader;
use crate::vocabulary::{PRODUCER, REFERENCE_TYPE};

impl Record {
    /// A record span's producer header (the [`PRODUCER`] attribute), turned into a link to the
    /// producer's trace. The buffer calls it for every finished span.
    pub(crate) fn link_producer(&mut self) {
        let attributes = &mut self.span.attributes;
        let Some(at) = attributes.iter().position(|kv| kv.key.as_str() == PRODUCER) else {
            return;
        };
        let field = attributes.remove(at);
        let value = field.value.as_str();
        // X-Ray's header (`AWSTraceHeader`), else W3C's `traceparent`.
        let producer = match TraceHeader::try_parse(value.as_ref()) {
            Ok(header) => header.span_context(true),
            Err(_) => match crate::w3c::parse_traceparent(value.as_ref()) {
                Some(producer) => producer,
                None => return,
            },
        };
        self.span.links.links.push(Link::new(
            producer,
            vec![KeyValue::new(REFERENCE_TYPE, "parent")],
            0,
        ));
    }
}
