//! The daemon's receive queue, read where it is visible (see [`QueueProbe`]).

use std::net::{IpAddr, SocketAddr};

/// Reads the receive queue of the daemon's socket over netlink, else from `/proc/net/udp` (or
/// `udp6`): the same accounting as the window's. Visible where the daemon shares this
/// process's network namespace (loopback, and where Lambda's daemon runs beside the function);
/// elsewhere a reading finds nothing and the model alone paces.
///
/// Made without touching the system: a `stat` of `/proc/net/udp` at init cost tens of
/// microseconds of start-up (the kernel builds the process's `/proc/self/net` entries), and
/// most functions never take a reading.
#[derive(Debug)]
pub(crate) struct QueueProbe {
    /// The kernel asked directly, where it answers (Linux with `udp_diag`): set up at the
    /// first reading.
    #[cfg(target_os = "linux")]
    netlink: std::sync::OnceLock<Option<netlink::Diag>>,
    address: SocketAddr,
}

impl QueueProbe {
    /// A probe of the daemon at `address` where the kernel shows its queue (Linux: netlink,
    /// else `/proc`); `None` elsewhere, where the model alone paces.
    pub(crate) fn new(address: SocketAddr) -> Option<Self> {
        cfg!(target_os = "linux").then_some(QueueProbe {
            #[cfg(target_os = "linux")]
            netlink: std::sync::OnceLock::new(),
            address,
        })
    }

    /// The bytes waiting in the daemon's receive queue; `None` when its socket is not seen.
    pub(crate) fn rx_queue(&self) -> Option<usize> {
        // Where the kernel answers over netlink, its answer stands: "no such socket" (a daemon
        // that is down) is not asked of `/proc` again.
        #[cfg(target_os = "linux")]
        if let Some(netlink) = self.netlink() {
            return netlink.rx_queue();
        }
        self.rx_queue_from_proc()
    }

    /// The netlink reader, set up on first use.
    #[cfg(target_os = "linux")]
    fn netlink(&self) -> Option<&netlink::Diag> {
        self.netlink
            .get_or_init(|| netlink::Diag::new(self.address))
            .as_ref()
    }

    /// The same, from `/proc/net/udp`: the kernel prints every socket's line, walking each
    /// slot of its UDP table (tens of microseconds, however few sockets there are).
    fn rx_queue_from_proc(&self) -> Option<usize> {
        // Each 32-bit word of the address as the kernel prints it: in host byte order.
        fn words(octets: &[u8]) -> String {
            use std::fmt::Write as _;
            octets.chunks(4).fold(String::new(), |mut out, w| {
                let _ = write!(out, "{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
                out
            })
        }
        let port = self.address.port();
        let (path, exact, wildcard) = match self.address.ip() {
            IpAddr::V4(ip) => ("/proc/net/udp", words(&ip.octets()), words(&[0; 4])),
            IpAddr::V6(ip) => ("/proc/net/udp6", words(&ip.octets()), words(&[0; 16])),
        };
        // `local_address` as the file writes it, for the daemon's address and for the
        // wildcard address on its port.
        let (exact, wildcard) = (
            format!("{exact}:{port:04X}"),
            format!("{wildcard}:{port:04X}"),
        );
        let table = std::fs::read_to_string(path).ok()?;
        table.lines().skip(1).find_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            if local != exact && local != wildcard {
                return None;
            }
            let queues = fields.nth(2)?;
            usize::from_str_radix(queues.split(':').nth(1)?, 16).ok()
        })
    }
}

/// The kernel's socket diagnostics over netlink (`NETLINK_SOCK_DIAG`): one request for the
/// daemon's socket, looked up by its address, answered with its receive queue. Safe code
/// only: the messages are written and read as bytes.
#[cfg(target_os = "linux")]
mod netlink {
    use std::io::Read as _;
    use std::net::{IpAddr, SocketAddr};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use socket2::{Domain, Protocol, Socket, Type};

    const AF_NETLINK: i32 = 16;
    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;
    const IPPROTO_UDP: u8 = 17;
    /// `nlmsghdr` (16 bytes), then `inet_diag_req_v2` (56).
    const REQUEST_LEN: usize = 72;
    /// In a reply: `nlmsghdr`, then `inet_diag_msg`, whose `idiag_rqueue` follows its family,
    /// state, timer and retransmits (4), its `inet_diag_sockid` (48) and `idiag_expires` (4).
    const RQUEUE_AT: usize = 16 + 4 + 48 + 4;

    #[derive(Debug)]
    pub(super) struct Diag {
        socket: Socket,
        request: [u8; REQUEST_LEN],
        seq: AtomicU32,
    }

    impl Diag {
        /// A socket that asks for the UDP socket at `address`; `None` where the kernel does not
        /// answer such questions (no `udp_diag`): checked on a socket of its own, bound here
        /// for the purpose, since the daemon's may not be up yet.
        pub(super) fn new(address: SocketAddr) -> Option<Self> {
            let socket = Socket::new(
                Domain::from(AF_NETLINK),
                Type::DGRAM,
                Some(Protocol::from(NETLINK_SOCK_DIAG)),
            )
            .ok()?;
            // A kernel that does not answer must not hold the pacer.
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .ok()?;
            let check = std::net::UdpSocket::bind(match address {
                SocketAddr::V4(_) => "127.0.0.1:0",
                SocketAddr::V6(_) => "[::1]:0",
            })
            .ok()?;
            let mut diag = Diag {
                socket,
                request: request(check.local_addr().ok()?),
                seq: AtomicU32::new(1),
            };
            diag.rx_queue()?;
            diag.request = request(address);
            Some(diag)
        }

        /// The bytes in the socket's receive queue, as the kernel accounts them (the
        /// `rx_queue` of `/proc/net/udp`).
        pub(super) fn rx_queue(&self) -> Option<usize> {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let mut request = self.request;
            request[8..12].copy_from_slice(&seq.to_ne_bytes());
            // One datagram out, whole.
            if self.socket.send(&request).ok()? != request.len() {
                return None;
            }
            let mut reply = [0u8; 512];
            // A reply to an earlier request that timed out is skipped.
            for _ in 0..4 {
                let len = (&self.socket).read(&mut reply).ok()?;
                let reply = &reply[..len];
                if reply.len() < 16 || reply[8..12] != seq.to_ne_bytes() {
                    continue;
                }
                if u16::from_ne_bytes([reply[4], reply[5]]) == NLMSG_ERROR {
                    return None;
                }
                let rqueue = reply.get(RQUEUE_AT..RQUEUE_AT + 4)?;
                let rqueue = u32::from_ne_bytes([rqueue[0], rqueue[1], rqueue[2], rqueue[3]]);
                return usize::try_from(rqueue).ok();
            }
            None
        }
    }

    /// `SOCK_DIAG_BY_FAMILY` for the UDP socket that receives at `address`. The kernel looks
    /// the socket up as for a datagram arriving at `idiag_dst` from `idiag_src` (its source
    /// and destination "swapped for historical reasons"): the destination is the daemon's
    /// address, and an unspecified source matches a socket that is not connected.
    fn request(address: SocketAddr) -> [u8; REQUEST_LEN] {
        let mut m = [0u8; REQUEST_LEN];
        m[0..4].copy_from_slice(&u32::try_from(REQUEST_LEN).unwrap_or(0).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        // 8..12 the sequence number, 12..16 the port id (0: the kernel fills it in).
        let req = &mut m[16..];
        req[0] = match address.ip() {
            IpAddr::V4(_) => AF_INET,
            IpAddr::V6(_) => AF_INET6,
        };
        req[1] = IPPROTO_UDP;
        // 2: no extensions; 3: padding; 4..8: every state.
        req[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
        // inet_diag_sockid at 8: sport, dport (network order), src (16), dst (16), if, cookie.
        req[10..12].copy_from_slice(&address.port().to_be_bytes());
        match address.ip() {
            IpAddr::V4(ip) => req[28..32].copy_from_slice(&ip.octets()),
            IpAddr::V6(ip) => req[28..44].copy_from_slice(&ip.octets()),
        }
        // No cookie: INET_DIAG_NOCOOKIE.
        req[48..56].copy_from_slice(&[0xff; 8]);
        m
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
            let probe = QueueProbe::new(address).expect("Linux");
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

    /// The kernel answers over netlink here, with what `/proc/net/udp` shows, in a fraction
    /// of its time.
    #[test]
    fn netlink_reads_what_proc_shows() {
        for bind in ["127.0.0.1:0", "[::1]:0", "0.0.0.0:0"] {
            let Ok(receiver) = UdpSocket::bind(bind) else {
                continue; // no IPv6 here
            };
            let mut address = receiver.local_addr().expect("address");
            if address.ip().is_unspecified() {
                address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let probe = QueueProbe::new(address).expect("Linux");
            let netlink = probe.netlink().expect("sock_diag answers here");
            assert_eq!(netlink.rx_queue(), Some(0), "{bind}");
            let sender = UdpSocket::bind(if address.is_ipv4() {
                "127.0.0.1:0"
            } else {
                "[::1]:0"
            })
            .expect("sender");
            for _ in 0..3 {
                sender.send_to(&vec![7u8; 20_000], address).expect("send");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            let from_proc = probe.rx_queue_from_proc().expect("seen");
            assert_eq!(netlink.rx_queue(), Some(from_proc), "{bind}");
            assert!(from_proc >= 60_000, "{bind}: {from_proc}");
        }
    }
}
