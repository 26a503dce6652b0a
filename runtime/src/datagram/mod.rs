//! Datagrams to the daemon's address, for both UDP paths (X-Ray documents, and Lambda's
//! OpenTelemetry endpoint): their framing and limits (here), values cut to fit (`cap`), the
//! socket (`udp`), and the pacing that keeps a slow reader's receive buffer from overflowing
//! (`pacer`, which reads the reader's queue through `queue_probe`).

mod cap;
pub(crate) mod pacer;
mod queue_probe;
pub(crate) mod udp;

pub(crate) use cap::{cap_rendered, cap_values, smaller_caps};

use crate::vocabulary::MAX_DOCUMENT_BYTES;

/// The daemon's header line before every datagram; the daemon parses it as JSON.
pub(crate) const DAEMON_HEADER: &[u8] = b"{\"format\":\"json\",\"version\":1}\n";

/// The largest UDP payload IPv4 can carry (65,535 - 8 - 20). Documents are kept below the
/// 64 kB service limit, which is smaller.
pub(crate) const MAX_DATAGRAM: usize = 65_507;

/// The largest X-Ray document (after the header line) that is sent in one datagram.
pub(crate) const MAX_DOCUMENT: usize = MAX_DOCUMENT_BYTES - DAEMON_HEADER.len();

/// Whether a daemon datagram (header line, then a document) is within X-Ray's limit.
pub(crate) fn document_fits(datagram: &[u8]) -> bool {
    datagram.len() - DAEMON_HEADER.len() <= MAX_DOCUMENT
}

/// The prefix of an OpenTelemetry datagram of sampled spans.
pub(crate) const SAMPLED: [u8; 3] = *b"T1S";
/// The prefix of an OpenTelemetry datagram of unsampled spans (Application Signals computes
/// its metrics from every span).
pub(crate) const UNSAMPLED: [u8; 3] = *b"T1U";

/// The most OTLP request bytes one datagram carries: base64 writes 4 bytes for every 3.
pub(crate) const MAX_REQUEST: usize = (MAX_DATAGRAM - DAEMON_HEADER.len() - SAMPLED.len()) / 4 * 3;

/// An OTLP request framed as AWS's OpenTelemetry distribution frames it for Lambda's
/// endpoint: the daemon's header line, `prefix` (`T1S` or `T1U`), then the request's base64.
pub(crate) fn otlp_datagram(prefix: [u8; 3], request: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(DAEMON_HEADER.len() + 3 + request.len() / 3 * 4 + 4);
    datagram.extend_from_slice(DAEMON_HEADER);
    datagram.extend_from_slice(&prefix);
    base64(request, &mut datagram);
    debug_assert!(datagram.len() <= MAX_DATAGRAM);
    datagram
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
        let framed = otlp_datagram(SAMPLED, &vec![0xff; MAX_REQUEST]);
        assert!(framed.len() <= MAX_DATAGRAM, "{}", framed.len());
        assert!(
            framed.len() + 4 > MAX_DATAGRAM - 4,
            "no room wasted: {}",
            framed.len()
        );
    }
}
