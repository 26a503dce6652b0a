//! Lambda's OpenTelemetry endpoint: each invocation's spans as OTLP over UDP to the address
//! the X-Ray daemon listens on (`AWS_XRAY_DAEMON_ADDRESS`), in the format AWS's OpenTelemetry
//! distribution sends: the daemon's header line, `T1S` (sampled spans) or `T1U` (unsampled
//! spans, for Application Signals), then the base64 of an OTLP `ExportTraceServiceRequest`.
//!
//! Every datagram stays within `MAX_DATAGRAM` bytes after base64: spans are packed into as
//! few requests as fit, and a span too large for one datagram alone has its largest values
//! cut, with the same marker the daemon path writes. Datagrams go through the same pacer as
//! the daemon path's documents: the same socket, the same reader.

use std::net::SocketAddr;

use crate::datagram::pacer::{Pacer, Pacing, Ticket};
use crate::datagram::udp::DaemonSender;
use crate::datagram::{
    cap_rendered, cap_values, otlp_datagram, smaller_caps, MAX_REQUEST, SAMPLED, UNSAMPLED,
};
use crate::environment::LambdaEnvironment;
use crate::otel::mapping::{render, resource_attributes, Rendering};
use crate::otel::protobuf;
use crate::record::Record;
use crate::vocabulary::MAX_VALUE;

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
        self.send_packed(SAMPLED, &sampled);
        self.send_packed(UNSAMPLED, &unsampled);
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

    /// The socket is opened anew (after a SnapStart restore).
    pub(crate) fn renew(&self) {
        self.pacer.renew();
    }

    /// Sends `records`, blocking until their datagrams are sent.
    pub(crate) fn send_blocking(&self, records: Vec<Record>) {
        self.send_within(records, BLOCKING_WAIT);
    }

    /// Sends `records`, blocking until their datagrams are sent, at most `wait`.
    pub(crate) fn send_within(&self, records: Vec<Record>, wait: std::time::Duration) {
        let ticket = self.submit(records);
        self.pacer.sent_blocking(ticket, wait);
    }

    /// One record as an encoded span that fits a datagram alone: its values cut shorter
    /// until it does; `None` (with a warning) when it does not fit even without them.
    fn encode(&self, mut record: Record) -> Option<Vec<u8>> {
        cap_values(&mut record, MAX_VALUE);
        let mut span = render(record, &self.rendering);
        let encoded = protobuf::span(&span);
        if self.request_size(&[encoded.len()]) <= MAX_REQUEST {
            return Some(encoded);
        }
        // Rare: the rendered span's own values are cut shorter until it fits.
        for cap in smaller_caps() {
            cap_rendered(&mut span, cap);
            let encoded = protobuf::span(&span);
            if self.request_size(&[encoded.len()]) <= MAX_REQUEST {
                return Some(encoded);
            }
        }
        tracing::warn!(target: "xray_lambda", span = %span.name, "X-Ray: a span is too large to send even without its values");
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
        self.pacer.submit(&otlp_datagram(prefix, &request));
    }
}
