//! The daemon sink: documents to the X-Ray daemon over UDP, and the daemon's address.
//!
//! Replaces opentelemetry-aws's `XrayDaemonClient`, which panics when its socket cannot be
//! made, reads only the `host:port` form of `AWS_XRAY_DAEMON_ADDRESS`, has no size handling
//! and lets one failed send abort the rest of a batch.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::datagram::pacer::{Pacer, Pacing, Ticket};
use crate::datagram::udp::DaemonSender;
use crate::document::Documents;
use crate::record::{InProgress, Record};

/// The default daemon address outside Lambda.
pub(crate) const DEFAULT_DAEMON: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 2000);

/// Why `AWS_XRAY_DAEMON_ADDRESS` could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DaemonAddressError {
    /// Neither `host:port` nor `tcp:host:port udp:host:port`.
    Malformed(String),
    /// The two-address form without its `udp:` part.
    NoUdpAddress(String),
    /// The host did not resolve.
    Unresolved(String),
}

impl fmt::Display for DaemonAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonAddressError::Malformed(s) => write!(
                f,
                "AWS_XRAY_DAEMON_ADDRESS={s:?} is neither `host:port` nor `tcp:host:port udp:host:port`"
            ),
            DaemonAddressError::NoUdpAddress(s) => write!(
                f,
                "AWS_XRAY_DAEMON_ADDRESS={s:?} names no `udp:` address, and documents go over UDP"
            ),
            DaemonAddressError::Unresolved(s) => {
                write!(f, "AWS_XRAY_DAEMON_ADDRESS={s:?} does not resolve to an address")
            }
        }
    }
}

impl std::error::Error for DaemonAddressError {}

/// Parses `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or `tcp:host:port udp:host:port` in either
/// order, with one space (more whitespace is tolerated). Only the UDP address is used.
pub(crate) fn parse_daemon_address(value: &str) -> Result<SocketAddr, DaemonAddressError> {
    let value = value.trim();
    let parts: Vec<&str> = value.split_whitespace().collect();
    let udp = match parts.as_slice() {
        [single] if !single.contains("tcp:") && !single.contains("udp:") => *single,
        [single] if single.starts_with("tcp:") => {
            return Err(DaemonAddressError::NoUdpAddress(value.to_owned()))
        }
        [single] => single
            .strip_prefix("udp:")
            .ok_or_else(|| DaemonAddressError::Malformed(value.to_owned()))?,
        [a, b] => {
            let (tcp, udp) = match (a.strip_prefix("tcp:"), b.strip_prefix("udp:")) {
                (Some(t), Some(u)) => (t, u),
                _ => match (b.strip_prefix("tcp:"), a.strip_prefix("udp:")) {
                    (Some(t), Some(u)) => (t, u),
                    _ => return Err(DaemonAddressError::Malformed(value.to_owned())),
                },
            };
            // The TCP address is for sampling rules, which this crate does not fetch; it must
            // still be well formed, as the official SDKs require.
            resolve(tcp).ok_or_else(|| DaemonAddressError::Malformed(value.to_owned()))?;
            udp
        }
        _ => return Err(DaemonAddressError::Malformed(value.to_owned())),
    };
    resolve(udp).ok_or_else(|| {
        if split_host_port(udp).is_some_and(|(host, _)| is_hostname(host)) {
            DaemonAddressError::Unresolved(value.to_owned())
        } else {
            DaemonAddressError::Malformed(value.to_owned())
        }
    })
}

fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, port.parse().ok()?))
}

fn resolve(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr);
    }
    let (host, port) = split_host_port(s)?;
    // Only names go to the resolver; this runs once, at init.
    if !is_hostname(host) {
        return None;
    }
    (host, port).to_socket_addrs().ok()?.next()
}

fn is_hostname(host: &str) -> bool {
    host.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The daemon sink: the invocation's records written as documents and sent as datagrams,
/// paced so that the daemon keeps up.
#[derive(Debug)]
pub(crate) struct DaemonSink {
    pacer: Pacer,
    documents: Documents,
}

/// How long a blocking send (at the end of `main`) waits for paced datagrams at most.
const BLOCKING_WAIT: Duration = Duration::from_secs(10);

impl DaemonSink {
    /// A sink to the daemon at `address`, whose handler subsegments link to `log_group`.
    pub(crate) fn new(address: SocketAddr, pacing: Pacing, log_group: Option<&str>) -> Self {
        DaemonSink {
            pacer: Pacer::new(DaemonSender::new(address), pacing),
            documents: Documents::new(log_group),
        }
    }

    /// Writes `records` as documents and hands each datagram to the pacer, `in_progress`
    /// (the handler's document while it runs) first; returns without waiting.
    pub(crate) fn submit(&self, in_progress: Option<&InProgress>, records: Vec<Record>) -> Ticket {
        if let Some(in_progress) = in_progress {
            self.documents
                .write_in_progress(in_progress, |datagram| self.pacer.submit(datagram));
        }
        self.documents
            .write_all(records, |datagram| self.pacer.submit(datagram));
        self.pacer.ticket()
    }

    /// Sends `records` and waits until their datagrams are sent (at once, unless the daemon
    /// is modelled as busy).
    pub(crate) async fn send(&self, records: Vec<Record>) {
        let ticket = self.submit(None, records);
        self.pacer.sent(ticket).await;
    }

    /// Waits until everything up to `ticket` has been sent.
    pub(crate) fn sent(&self, ticket: Ticket) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.pacer.sent(ticket)
    }

    /// Sends `open` spans in progress, then `records`, blocking until their datagrams are sent
    /// (at most `wait`).
    pub(crate) fn send_at_deadline(
        &self,
        open: &[InProgress],
        records: Vec<Record>,
        wait: Duration,
    ) {
        for span in open {
            self.documents
                .write_in_progress(span, |datagram| self.pacer.submit(datagram));
        }
        let ticket = self.submit(None, records);
        self.pacer.sent_blocking(ticket, wait);
    }

    /// The socket is opened anew (after a SnapStart restore).
    pub(crate) fn renew(&self) {
        self.pacer.renew();
    }

    /// Sends `records`, blocking until their datagrams are sent.
    pub(crate) fn send_blocking(&self, records: Vec<Record>) {
        let ticket = self.submit(None, records);
        self.pacer.sent_blocking(ticket, BLOCKING_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn both_forms() {
        let udp: SocketAddr = "169.254.79.129:2000".parse().expect("addr");
        assert_eq!(parse_daemon_address("169.254.79.129:2000"), Ok(udp));
        assert_eq!(
            parse_daemon_address("tcp:127.0.0.1:2000 udp:169.254.79.129:2000"),
            Ok(udp)
        );
        assert_eq!(
            parse_daemon_address("udp:169.254.79.129:2000 tcp:127.0.0.1:2000"),
            Ok(udp)
        );
        assert_eq!(parse_daemon_address("udp:169.254.79.129:2000"), Ok(udp));
        assert_eq!(
            parse_daemon_address("[::1]:2000"),
            Ok("[::1]:2000".parse().expect("addr"))
        );
        assert_eq!(
            parse_daemon_address("localhost:2000").map(|a| a.port()),
            Ok(2000)
        );
    }

    #[test]
    fn bad_forms() {
        for bad in [
            "",
            "garbage",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "tcp:127.0.0.1:2000 tcp:127.0.0.1:2000",
            "udp:127.0.0.1:2000 udp:127.0.0.1:2000",
            "tcp:127.0.0.1:2000 udp:127.0.0.1:2000 x",
            "http://127.0.0.1:2000",
        ] {
            assert!(
                matches!(
                    parse_daemon_address(bad),
                    Err(DaemonAddressError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_daemon_address("tcp:127.0.0.1:2000"),
            Err(DaemonAddressError::NoUdpAddress(
                "tcp:127.0.0.1:2000".into()
            ))
        );
    }

    /// Whether parsing `s` would ask the resolver (a host name): the fuzz leaves those out,
    /// and only those, so that letters (`tcp:`, `udp:`, hex in IPv6) are fuzzed too.
    fn reaches_the_resolver(s: &str) -> bool {
        s.split_whitespace().any(|part| {
            let part = part
                .strip_prefix("tcp:")
                .or_else(|| part.strip_prefix("udp:"))
                .unwrap_or(part);
            part.parse::<SocketAddr>().is_err()
                && split_host_port(part).is_some_and(|(host, _)| is_hostname(host))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200_000))]
        #[test]
        fn any_string_parses_without_panic(s in any::<String>()) {
            if !reaches_the_resolver(&s) {
                let _ = parse_daemon_address(&s);
            }
        }

        /// Strings shaped like addresses, letters and the `tcp:`/`udp:` prefixes among them.
        #[test]
        fn address_like_strings_parse_without_panic(
            s in "((tcp|udp|TCP|tc|u):)?[a-zA-Z0-9.:\\[\\] ]{0,40}( ((tcp|udp):)?[a-zA-Z0-9.:\\[\\]]{0,40})?"
        ) {
            if !reaches_the_resolver(&s) {
                let result = parse_daemon_address(&s);
                if s.split_whitespace().count() == 1 && s.trim().starts_with("tcp:") {
                    prop_assert!(
                        matches!(result, Err(DaemonAddressError::NoUdpAddress(_))),
                        "{s:?}: {result:?}"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100_000))]
        /// IPv4 and IPv6, both forms in either order, any whitespace between them.
        #[test]
        fn both_addresses_in_either_order(
            v4 in any::<[u8; 4]>(),
            v6 in any::<[u16; 8]>(),
            six in any::<bool>(),
            p in any::<u16>(),
            q in any::<u16>(),
            swap in any::<bool>(),
            gap in "[ \\t\\n]{1,3}",
        ) {
            let ip: std::net::IpAddr = if six {
                std::net::Ipv6Addr::from(v6).into()
            } else {
                std::net::Ipv4Addr::from(v4).into()
            };
            let (udp, tcp) = (SocketAddr::new(ip, p), SocketAddr::new(ip, q));
            let s = if swap {
                format!("udp:{udp}{gap}tcp:{tcp}")
            } else {
                format!("tcp:{tcp}{gap}udp:{udp}")
            };
            prop_assert_eq!(parse_daemon_address(&s), Ok(udp));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100_000))]
        #[test]
        fn generated_addresses(a in any::<[u8; 4]>(), p in any::<u16>(), q in any::<u16>(), swap in any::<bool>(), form in 0u8..3) {
            let ip = std::net::Ipv4Addr::from(a);
            let udp = format!("{ip}:{p}");
            let s = match form {
                0 => udp.clone(),
                1 if swap => format!("udp:{udp} tcp:{ip}:{q}"),
                _ => format!("tcp:{ip}:{q} udp:{udp}"),
            };
            prop_assert_eq!(parse_daemon_address(&s), Ok(SocketAddr::from((ip, p))));
        }
    }
}
