//! The daemon's receive queue, read where it is visible (see [`QueueProbe`]).

use std::net::{IpAddr, SocketAddr};

/// Reads the receive queue of the daemon's socket from `/proc/net/udp` (or `udp6`): the same
/// accounting as the window's. Visible where the daemon shares this process's network
/// namespace (loopback, and where Lambda's daemon runs beside the function); elsewhere the
/// model alone paces.
#[derive(Debug)]
pub(crate) struct QueueProbe {
    path: &'static str,
    /// `local_address` as the file writes it, for the daemon's address and for the wildcard
    /// address on its port.
    exact: String,
    wildcard: String,
}

impl QueueProbe {
    pub(crate) fn new(address: SocketAddr) -> Option<Self> {
        // Each 32-bit word of the address as the kernel prints it: in host byte order.
        fn words(octets: &[u8]) -> String {
            use std::fmt::Write as _;
            octets.chunks(4).fold(String::new(), |mut out, w| {
                let _ = write!(out, "{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
                out
            })
        }
        let port = address.port();
        let (path, exact, wildcard) = match address.ip() {
            IpAddr::V4(ip) => ("/proc/net/udp", words(&ip.octets()), words(&[0; 4])),
            IpAddr::V6(ip) => ("/proc/net/udp6", words(&ip.octets()), words(&[0; 16])),
        };
        let probe = QueueProbe {
            path,
            exact: format!("{exact}:{port:04X}"),
            wildcard: format!("{wildcard}:{port:04X}"),
        };
        // Only Linux has the file; test it once.
        std::fs::metadata(path).ok().map(|_| probe)
    }

    /// The bytes waiting in the daemon's receive queue; `None` when its socket is not seen.
    pub(crate) fn rx_queue(&self) -> Option<usize> {
        let table = std::fs::read_to_string(self.path).ok()?;
        table.lines().skip(1).find_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            if local != self.exact && local != self.wildcard {
                return None;
            }
            let queues = fields.nth(2)?;
            usize::from_str_radix(queues.split(':').nth(1)?, 16).ok()
        })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod probe_tests {
    use super::QueueProbe;
    use std::net::UdpSocket;

    #[test]
    fn the_daemons_queue_is_read_where_it_is_visible() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(receiver) = UdpSocket::bind(bind) else {
                continue; // no IPv6 here
            };
            let address = receiver.local_addr().expect("address");
            let probe = QueueProbe::new(address).expect("/proc/net");
            assert_eq!(probe.rx_queue(), Some(0), "{bind}");
            let sender = UdpSocket::bind(if address.is_ipv4() {
                "127.0.0.1:0"
            } else {
                "[::1]:0"
            })
            .expect("sender");
            sender.send_to(&[7u8; 300], address).expect("send");
            std::thread::sleep(std::time::Duration::from_millis(20));
            let queued = probe.rx_queue().expect("seen");
            assert!((300..=2_048).contains(&queued), "{bind}: {queued}");
        }
    }
}
