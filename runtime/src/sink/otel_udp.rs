//! Lambda's OpenTelemetry endpoint: each invocation's spans as OTLP over UDP to the address
//! the X-Ray daemon listens on (`AWS_XRAY_DAEMON_ADDRESS`), in the format AWS's OpenTelemetry
//! distribution sends: the daemon's header line, `T1S` (sampled spans) or `T1U` (unsampled
//! spans, for Application Signals), then the base64 of an OTLP `ExportTraceServiceRequest`.
//!
//! Every datagram stays within [`MAX_DATAGRAM`] bytes after base64: spans are packed into as
//! few requests as fit, and a span too large for one datagram alone has its largest values
//! cut, with the same marker the daemon path writes. Datagrams go through the same pacer as
//! the daemon path's documents: the same socket, the same reader.

use std::net::SocketAddr;

use super::pacer::{Pacer, Pacing, Ticket};
use super::udp::DaemonSender;
use crate::document::{cap_values, DAEMON_HEADER, MAX_DATAGRAM};
use crate::environment::LambdaEnvironment;
use crate::otel::mapping::{render, resource_attributes, Rendering};
use crate::otel::protobuf;
use crate::record::Record;
use crate::vocabulary::MAX_VALUE;

/// The prefix of a datagram of sampled spans.
pub(crate) const SAMPLED: &[u8; 3] = b"T1S";
/// The prefix of a datagram of unsampled spans (Application Signals computes its metrics from
/// every span).
pub(crate) const UNSAMPLED: &[u8; 3] = b"T1U";

/// The most request bytes one datagram carries: base64 writes 4 bytes for every 3.
pub(crate) const MAX_REQUEST: usize = (MAX_DATAGRAM - DAEMON_HEADER.len() - SAMPLED.len()) / 4 * 3;

/// The sink: records rendered as OpenTelemetry spans, encoded, framed and paced.
#[derive(Debug)]
pub(crate) struct OtelUdpSink {
    pacer: Pacer,
    rendering: Rendering,
    /// The encoded `Resource` and `InstrumentationScope`, the same in every request.
    resource: Vec<u8>,
    scope: Vec<u8>,
}

/// How long a blocking send (at the end of `main`) waits for paced datagrams at most.
const BLOCKING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl OtelUdpSink {
    pub(crate) fn new(
        address: SocketAddr,
        pacing: Pacing,
        service: Option<&str>,
        environment: &LambdaEnvironment,
        rendering: Rendering,
    ) -> Self {
        OtelUdpSink {
            pacer: Pacer::new(DaemonSender::new(address), pacing),
            rendering,
            resource: protobuf::resource(&resource_attributes(service, environment)),
            scope: protobuf::scope("xray-lambda", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Encodes `records` and hands their datagrams to the pacer; returns without waiting.
    pub(crate) fn submit(&self, records: Vec<Record>) -> Ticket {
        let (mut sampled, mut unsampled) = (Vec::new(), Vec::new());
        for record in records {
            let is_sampled = record.span.span_context.is_sampled();
            if let Some(span) = self.encode(record) {
                if is_sampled {
                    sampled.push(span);
                } else {
                    unsampled.push(span);
                }
            }
        }
        self.send_packed(*SAMPLED, &sampled);
        self.send_packed(*UNSAMPLED, &unsampled);
        self.pacer.ticket()
    }

    /// Sends `records` and waits until their datagrams are sent.
    pub(crate) async fn send(&self, records: Vec<Record>) {
        let ticket = self.submit(records);
        self.pacer.sent(ticket).await;
    }

    /// Waits until everything up to `ticket` has been sent.
    pub(crate) fn sent(&self, ticket: Ticket) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.pacer.sent(ticket)
    }

    /// Sends `records`, blocking until their datagrams are sent.
    pub(crate) fn send_blocking(&self, records: Vec<Record>) {
        let ticket = self.submit(records);
        self.pacer.sent_blocking(ticket, BLOCKING_WAIT);
    }

    /// One record as an encoded span that fits a datagram alone: its values cut shorter
    /// until it does; `None` (with a warning) when it does not fit even without them.
    fn encode(&self, mut record: Record) -> Option<Vec<u8>> {
        cap_values(&mut record, MAX_VALUE);
        let span = render(record, &self.rendering);
        let encoded = protobuf::span(&span);
        if self.request_size(&[encoded.len()]) <= MAX_REQUEST {
            return Some(encoded);
        }
        // Rare: the rendered span's own values are cut shorter until it fits.
        let mut rendered = Record::plain(span);
        let mut cap = MAX_VALUE;
        while cap > 0 {
            cap = if cap > 64 { cap / 8 } else { 0 };
            cap_values(&mut rendered, cap);
            let encoded = protobuf::span(&rendered.span);
            if self.request_size(&[encoded.len()]) <= MAX_REQUEST {
                return Some(encoded);
            }
        }
        tracing::warn!(target: "xray_lambda", span = %rendered.span.name, "X-Ray: a span is too large to send even without its values");
        None
    }

    fn request_size(&self, spans: &[usize]) -> usize {
        protobuf::request_size(self.resource.len(), self.scope.len(), spans)
    }

    /// `spans` in as few datagrams as fit, each prefixed with `prefix`.
    fn send_packed(&self, prefix: [u8; 3], spans: &[Vec<u8>]) {
        // Each span's field in the request (its tag, length and bytes), summed as the spans
        // come; `request_size` of that sum as one field is a bound a few bytes above the exact
        // size, and never below it.
        let field =
            |len: usize| protobuf::request_size(0, 0, &[len]) - protobuf::request_size(0, 0, &[]);
        let mut start = 0;
        let mut fields = 0;
        for (at, span) in spans.iter().enumerate() {
            let added = field(span.len());
            if at > start && self.request_size(&[fields + added]) > MAX_REQUEST {
                self.send_request(prefix, &spans[start..at]);
                start = at;
                fields = 0;
            }
            fields += added;
        }
        if start < spans.len() {
            self.send_request(prefix, &spans[start..]);
        }
    }

    fn send_request(&self, prefix: [u8; 3], spans: &[Vec<u8>]) {
        let request =
            protobuf::request(&self.resource, &self.scope, spans.iter().map(Vec::as_slice));
        let mut datagram = Vec::with_capacity(DAEMON_HEADER.len() + 3 + request.len() / 3 * 4 + 4);
        datagram.extend_from_slice(DAEMON_HEADER);
        datagram.extend_from_slice(&prefix);
        base64(&request, &mut datagram);
        debug_assert!(datagram.len() <= MAX_DATAGRAM);
        self.pacer.submit(&datagram);
    }
}

/// Standard base64 with padding, as ADOT's `base64.b64encode` writes it.
fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| ALPHABET[((n >> shift) & 63) as usize];
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), b'=']);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_the_standard_writes_it() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff], "+/8="),
        ] {
            let mut out = Vec::new();
            base64(input, &mut out);
            assert_eq!(out, expected.as_bytes());
        }
    }

    #[test]
    fn the_largest_request_fits_a_datagram() {
        let framed = DAEMON_HEADER.len() + SAMPLED.len() + MAX_REQUEST.div_ceil(3) * 4;
        assert!(framed <= MAX_DATAGRAM, "{framed}");
        assert!(framed + 4 > MAX_DATAGRAM - 4, "no room wasted: {framed}");
    }
}
