//! A UDP socket on loopback standing in for the X-Ray daemon: it checks each datagram's header
//! line as the daemon does and keeps the documents.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::otlp::ReceivedSpan;

/// What the daemon received: every datagram, the documents and the OpenTelemetry spans
/// indexed by trace id, and what it could not read.
#[derive(Debug, Default)]
struct Received {
    datagrams: Vec<Vec<u8>>,
    /// When each datagram was read from the socket (parallel to `datagrams`).
    arrivals: Vec<Instant>,
    by_trace: std::collections::HashMap<String, Vec<Value>>,
    spans_by_trace: std::collections::HashMap<String, Vec<ReceivedSpan>>,
    span_datagrams: Vec<SpanDatagram>,
    malformed: Vec<String>,
}

/// A datagram of OpenTelemetry spans (Lambda's endpoint: `T1S` / `T1U`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanDatagram {
    /// `T1S` or `T1U`.
    pub prefix: String,
    /// The whole datagram's size.
    pub size: usize,
    /// The X-Ray trace ids of its spans, one per span.
    pub traces: Vec<String>,
}

/// What one datagram holds.
#[derive(Debug)]
pub enum Datagram {
    /// A segment document (the daemon's format).
    Document(Value),
    /// OpenTelemetry spans, with their prefix.
    Spans(String, Vec<ReceivedSpan>),
}

/// Reads one datagram as the endpoint does: the JSON header line, then a segment document, or
/// `T1S`/`T1U` and the base64 of an OTLP `ExportTraceServiceRequest` (decoded with the
/// protocol's own types); what is wrong with it, if anything.
///
/// # Errors
/// Whatever does not read.
pub fn decode_datagram(datagram: &[u8]) -> Result<Datagram, String> {
    use base64::Engine as _;
    use prost::Message as _;
    let newline = datagram
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header: Value =
        serde_json::from_slice(&datagram[..newline]).map_err(|e| format!("header: {e}"))?;
    if header != serde_json::json!({"format": "json", "version": 1}) {
        return Err(format!("header {header}"));
    }
    let body = &datagram[newline + 1..];
    let prefix = match body.get(..3) {
        Some(b"T1S") => "T1S",
        Some(b"T1U") => "T1U",
        _ => {
            return strict_json(body)
                .map(Datagram::Document)
                .map_err(|e| format!("document: {e}"))
        }
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&body[3..])
        .map_err(|e| format!("base64: {e}"))?;
    let request =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
            bytes.as_slice(),
        )
        .map_err(|e| format!("protobuf: {e}"))?;
    Ok(Datagram::Spans(
        prefix.to_owned(),
        crate::otlp::spans_of(request, Some(prefix)),
    ))
}

/// The time the stand-in takes per datagram: it models the real daemon in Lambda, which does
/// a few microseconds of work per datagram (a `recvfrom`, the header line parsed as JSON, a
/// hand-off to its batcher, its share of the upload) on the fraction of a vCPU it shares with
/// the function: 50 µs is ~6 µs of work on an eighth of a vCPU (a 256 MB function), or 20,000
/// datagrams a second. The product's pacing assumes 60 µs (`Pacing::LAMBDA`).
pub const READ_COST: Duration = Duration::from_micros(50);

/// A UDP "daemon" on loopback. One thread only drains the socket (so the kernel's buffer
/// never fills while a test inspects what arrived); another parses and indexes.
#[derive(Debug, Clone)]
pub struct Daemon {
    address: SocketAddr,
    received: Arc<Mutex<Received>>,
    /// Until when the reader reads nothing (a daemon starved of CPU).
    paused_until: Arc<Mutex<Option<Instant>>>,
    /// What each read costs the reader, in nanoseconds ([`READ_COST`] unless set).
    read_cost_nanos: Arc<std::sync::atomic::AtomicU64>,
}

impl Daemon {
    /// Binds `127.0.0.1:0` and starts draining.
    ///
    /// # Panics
    /// If the socket cannot be bound (a broken test machine).
    #[must_use]
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
        Self::serve(socket)
    }

    /// Serves on an already bound socket (to come back on a known port).
    ///
    /// # Panics
    /// If the socket's address cannot be read.
    #[must_use]
    pub fn serve(socket: UdpSocket) -> Self {
        let address = socket.local_addr().expect("local address");
        // As the real daemon: the kernel's default receive buffer (212,992 bytes on Linux),
        // one datagram at a time, READ_COST each. A datagram that arrives at a full buffer is
        // dropped by the kernel, as in Lambda.
        let received = Arc::new(Mutex::new(Received::default()));
        let paused_until = Arc::new(Mutex::new(None::<Instant>));
        let pause = paused_until.clone();
        let read_cost_nanos = Arc::new(std::sync::atomic::AtomicU64::new(
            u64::try_from(READ_COST.as_nanos()).unwrap_or(u64::MAX),
        ));
        let read_cost = read_cost_nanos.clone();
        let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            let mut next = Instant::now();
            loop {
                // Paused (and the pause may be extended while it lasts).
                while let Some(left) = pause
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .and_then(|t| t.checked_duration_since(Instant::now()))
                {
                    // In slices: the pause may be shortened too.
                    std::thread::sleep(left.min(Duration::from_millis(2)));
                }
                let asked = Instant::now();
                let Ok(n) = socket.recv(&mut buf) else {
                    break;
                };
                let now = Instant::now();
                if now - asked > Duration::from_millis(1) {
                    // It was idle: the time it read nothing is not owed to it.
                    next = now;
                }
                if tx.send((now, buf[..n].to_vec())).is_err() {
                    break;
                }
                // The per-datagram cost, kept on average: a late wake-up is made up by
                // reading the next ones sooner, as a daemon given the CPU back would.
                next += Duration::from_nanos(read_cost.load(std::sync::atomic::Ordering::Relaxed));
                if let Some(pause) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(pause);
                }
            }
        });
        let sink = received.clone();
        std::thread::spawn(move || {
            while let Ok((arrival, datagram)) = rx.recv() {
                let decoded = decode_datagram(&datagram);
                let mut received = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match decoded {
                    Ok(Datagram::Document(doc)) => {
                        if let Some(trace) = doc["trace_id"].as_str() {
                            received
                                .by_trace
                                .entry(trace.to_owned())
                                .or_default()
                                .push(doc.clone());
                        }
                    }
                    Ok(Datagram::Spans(prefix, spans)) => {
                        received.span_datagrams.push(SpanDatagram {
                            prefix,
                            size: datagram.len(),
                            traces: spans.iter().map(ReceivedSpan::xray_trace_id).collect(),
                        });
                        for span in spans {
                            received
                                .spans_by_trace
                                .entry(span.xray_trace_id())
                                .or_default()
                                .push(span);
                        }
                    }
                    Err(problem) => received.malformed.push(problem),
                }
                received.datagrams.push(datagram);
                received.arrivals.push(arrival);
            }
        });
        Daemon {
            address,
            received,
            paused_until,
            read_cost_nanos,
        }
    }

    /// Reads nothing for `duration` from now (replacing a pause under way), as a daemon starved
    /// of CPU by the function it shares it with: datagrams wait in the socket's buffer (what
    /// does not fit is dropped by the kernel, as in Lambda). A read already waiting takes the
    /// next datagram first.
    pub fn pause_reading(&self, duration: Duration) {
        *self
            .paused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + duration);
    }

    /// Each read from now on costs the reader `cost` (a reader slower, or faster, than the
    /// pacer's model of it).
    pub fn set_read_cost(&self, cost: Duration) {
        self.read_cost_nanos.store(
            u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Where to send.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every datagram so far, raw, with the moment the stand-in read it from its socket.
    #[must_use]
    pub fn datagrams_with_arrivals(&self) -> Vec<(Instant, Vec<u8>)> {
        let received = self
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        received
            .arrivals
            .iter()
            .copied()
            .zip(received.datagrams.iter().cloned())
            .collect()
    }

    /// Every datagram so far, raw.
    #[must_use]
    pub fn datagrams(&self) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .datagrams
            .clone()
    }

    /// Every datagram of OpenTelemetry spans so far.
    #[must_use]
    pub fn span_datagrams(&self) -> Vec<SpanDatagram> {
        self.lock().span_datagrams.clone()
    }

    /// What could not be read so far (should be nothing).
    #[must_use]
    pub fn malformed(&self) -> Vec<String> {
        self.lock().malformed.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The OpenTelemetry spans of the X-Ray trace `trace_id`, waiting until `done` says they are
    /// complete or `timeout` passes (then what arrived).
    #[must_use]
    pub fn wait_for_spans(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        let mut checked = None;
        loop {
            let count = self.lock().spans_by_trace.get(trace_id).map_or(0, Vec::len);
            let now = Instant::now();
            if checked != Some(count) || now >= deadline {
                let spans = self
                    .lock()
                    .spans_by_trace
                    .get(trace_id)
                    .cloned()
                    .unwrap_or_default();
                if done(&spans) || now >= deadline {
                    return spans;
                }
                checked = Some(count);
            }
            std::thread::sleep(Duration::from_millis(20).min(deadline - now));
        }
    }

    /// Waits until no datagram has arrived for `quiet` (at most `timeout`): whether it went
    /// quiet. For when what is still on its way cannot be told from what was lost.
    #[must_use]
    pub fn wait_until_quiet(&self, quiet: Duration, timeout: Duration) -> bool {
        let mut last = (self.lock().datagrams.len(), Instant::now());
        crate::wait_until(timeout, || {
            let count = self.lock().datagrams.len();
            if count != last.0 {
                last = (count, Instant::now());
            }
            last.1.elapsed() >= quiet
        })
    }

    /// Every datagram received before a marker: one this sends from a socket of its own and
    /// waits for (at most 10 s), for tests that assert nothing was sent by a sender they cannot
    /// make send a marker of its own (one whose export is off or elsewhere). On loopback a
    /// datagram is queued at the receiving socket within its sender's `send`, so one sent
    /// before this call is ahead of the marker; the marker itself is left out.
    ///
    /// # Panics
    /// If the marker does not arrive.
    #[must_use]
    pub fn datagrams_before_a_marker(&self) -> Vec<Vec<u8>> {
        let marker = crate::new_trace_header(Some("1")).root;
        let document =
            serde_json::json!({"trace_id": marker, "id": "0000000000000001", "name": "marker"});
        let datagram = format!("{{\"format\":\"json\",\"version\":1}}\n{document}");
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
        socket
            .send_to(datagram.as_bytes(), self.address)
            .expect("send the marker");
        let arrived = self.wait_for_trace(&marker, Duration::from_secs(10), |d| !d.is_empty());
        assert_eq!(arrived.len(), 1, "the marker datagram did not arrive");
        let mut datagrams = self.datagrams();
        let at = datagrams
            .iter()
            .position(|d| d == datagram.as_bytes())
            .expect("the marker among the datagrams");
        datagrams.truncate(at);
        datagrams
    }

    /// Every document so far, parsed.
    #[must_use]
    pub fn documents(&self) -> Vec<Value> {
        self.datagrams().iter().map(|d| parse_datagram(d)).collect()
    }

    /// The subsegments of trace `root` in `namespace` (`aws`, `remote`), once there are `n`
    /// (or what arrived within `timeout`).
    ///
    /// # Panics
    /// As [`Daemon::wait_for_trace`].
    #[must_use]
    pub fn subsegments_in(
        &self,
        root: &str,
        namespace: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let of = |docs: &[Value]| -> Vec<Value> {
            flatten(docs)
                .into_iter()
                .filter(|s| s["namespace"] == namespace)
                .collect()
        };
        of(&self.wait_for_trace(root, timeout, |d| of(d).len() >= n))
    }

    /// Documents of `trace_id`, waiting until `done` says they are all there or `timeout`
    /// passes (then returns what arrived).
    ///
    /// # Panics
    /// If any document this stand-in read had a key twice.
    pub fn wait_for_trace(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let lock = &self.received;
        let mut checked = None;
        loop {
            // Copied and judged only when more arrived, at most every 50 ms, and outside the
            // lock: a flood of ten thousand documents must not make the waiter rescan (and the
            // indexing thread wait) on each one.
            let count = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .by_trace
                .get(trace_id)
                .map_or(0, Vec::len);
            let now = Instant::now();
            if checked != Some(count) || now >= deadline {
                let docs = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .by_trace
                    .get(trace_id)
                    .cloned()
                    .unwrap_or_default();
                if done(&docs) || now >= deadline {
                    // Every document this stand-in read has each key once.
                    let duplicates: Vec<String> = self
                        .malformed()
                        .into_iter()
                        .filter(|m| m.contains("duplicate key"))
                        .collect();
                    assert!(duplicates.is_empty(), "{duplicates:?}");
                    return docs;
                }
                checked = Some(count);
            }
            std::thread::sleep(Duration::from_millis(50).min(deadline - now));
        }
    }
}

/// Parses one datagram as the daemon does: a JSON header line `{"format":"json","version":1}`,
/// a newline, then the document.
///
/// # Panics
/// If the datagram would be rejected.
#[must_use]
pub fn parse_datagram(datagram: &[u8]) -> Value {
    let newline = datagram
        .iter()
        .position(|&b| b == b'\n')
        .expect("a header line");
    let header: Value = serde_json::from_slice(&datagram[..newline]).expect("header is JSON");
    assert!(
        header["format"]
            .as_str()
            .is_some_and(|f| f.eq_ignore_ascii_case("json")),
        "{header}"
    );
    assert_eq!(header["version"], 1, "{header}");
    strict_json(&datagram[newline + 1..]).expect("document is JSON, each key once")
}

/// Parses JSON, refusing an object that has a key twice (`serde_json` keeps the last and
/// says nothing; X-Ray's reading of such a document is not defined).
///
/// # Errors
/// Invalid JSON, or a duplicate key (named in the message).
pub fn strict_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    struct Strict;
    impl<'de> DeserializeSeed<'de> for Strict {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(Strict)
        }
    }
    impl<'de> Visitor<'de> for Strict {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(Strict)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut members = serde_json::Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(Strict)?;
                if members.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                members.insert(key, value);
            }
            Ok(Value::Object(members))
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Strict.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Every subsegment in `docs`, nested ones included, depth first.
#[must_use]
pub fn flatten(docs: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack: Vec<Value> = docs.iter().rev().cloned().collect();
    while let Some(mut doc) = stack.pop() {
        let children = doc
            .as_object_mut()
            .and_then(|o| o.remove("subsegments"))
            .and_then(|s| match s {
                Value::Array(a) => Some(a),
                _ => None,
            })
            .unwrap_or_default();
        let parent = doc["id"].clone();
        for mut child in children.into_iter().rev() {
            // A nested subsegment's parent is the document it sits in.
            child["parent_id"] = parent.clone();
            child["trace_id"] = doc["trace_id"].clone();
            stack.push(child);
        }
        out.push(doc);
    }
    out
}

/// The kernel's count of UDP datagrams dropped because a receiver's buffer was full
/// (`RcvbufErrors` in `/proc/net/snmp`, all sockets of this network namespace), for failure
/// messages: a loss the sender could not see is told apart from one it caused.
#[must_use]
pub fn udp_receive_buffer_drops() -> Option<u64> {
    udp_counter("RcvbufErrors")
}

/// The kernel's count of UDP datagrams that arrived at a port nothing listens on (`NoPorts` in
/// `/proc/net/snmp`, all sockets of this network namespace): each is answered with the ICMP
/// "port unreachable" that a connected sender's next `send` reports.
#[must_use]
pub fn udp_datagrams_to_closed_ports() -> Option<u64> {
    udp_counter("NoPorts")
}

/// A counter of the `Udp:` lines of `/proc/net/snmp` (Linux), by name.
fn udp_counter(name: &str) -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(at)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_given_twice_is_refused() {
        assert!(super::strict_json(br#"{"a":{"b":1,"c":[{"d":2}]}}"#).is_ok());
        let twice = super::strict_json(br#"{"a":{"metadata":{},"x":1,"metadata":{}}}"#);
        assert!(twice.is_err_and(|e| e.to_string().contains("duplicate key \"metadata\"")));
    }
}
