//! The UDP socket to the daemon: connected, non-blocking, never panicking; a send failure is
//! one warning when it starts and one line when sending works again.

use std::io::{self, ErrorKind};
#[cfg(not(target_os = "linux"))]
use std::net::{Ipv4Addr, Ipv6Addr};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use super::MAX_DATAGRAM;
use crate::notices::warn_when_logging;

/// A connected, non-blocking UDP socket to the daemon that never panics and never blocks.
///
/// Send failures are reported with one warning when they start and one line when sending
/// works again, not one line per document.
#[derive(Debug)]
pub(crate) struct DaemonSender {
    /// Renewed after a SnapStart restore (a socket made before the snapshot may not survive
    /// it); read for every datagram, written once a restore.
    socket: RwLock<Option<UdpSocket>>,
    address: SocketAddr,
    failing: AtomicBool,
    dropped: AtomicU64,
    sent: AtomicU64,
}

impl DaemonSender {
    pub(crate) fn new(address: SocketAddr) -> Self {
        let socket = match connect(address) {
            Ok(socket) => Some(socket),
            Err(err) => {
                warn_when_logging(format!(
                    "X-Ray: cannot open a UDP socket to the daemon at {address}: {err}; traces of this process are dropped"
                ));
                None
            }
        };
        DaemonSender {
            failing: AtomicBool::new(socket.is_none()),
            socket: RwLock::new(socket),
            address,
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// Sends one datagram (header line included). Never blocks.
    pub(crate) fn send(&self, datagram: &[u8]) {
        debug_assert!(datagram.len() <= MAX_DATAGRAM);
        let socket = self.socket.read().unwrap_or_else(PoisonError::into_inner);
        let Some(socket) = socket.as_ref() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut result = socket.send(datagram);
        let refused = matches!(&result, Err(e) if e.kind() == ErrorKind::ConnectionRefused);
        if refused {
            // A connected UDP socket reports an earlier datagram's ICMP "port unreachable" on
            // the next send, and that send did not go out. The error is consumed now: try once
            // more, so a daemon that comes back loses nothing.
            result = socket.send(datagram);
        }
        match result {
            Ok(_) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                if refused {
                    // Sent, but nothing listened to the one before: say so once.
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            target: "xray_lambda",
                            "X-Ray: nothing listens at the daemon address {} (connection refused); documents are lost until it does",
                            self.address
                        );
                    }
                } else if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        target: "xray_lambda",
                        "X-Ray: the daemon at {} accepts documents again",
                        self.address
                    );
                }
            }
            Err(err) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "xray_lambda",
                        "X-Ray: cannot send to the daemon at {}: {err}; documents are dropped until it answers again",
                        self.address
                    );
                }
            }
        }
    }

    /// Opens a new socket to the same address in place of the old one: after a SnapStart
    /// restore, where the process resumes with what the snapshot held. The old one stays if a
    /// new one cannot be opened.
    pub(crate) fn renew(&self) {
        match connect(self.address) {
            Ok(socket) => {
                *self.socket.write().unwrap_or_else(PoisonError::into_inner) = Some(socket);
            }
            Err(err) => tracing::warn!(
                target: "xray_lambda",
                "X-Ray: cannot open a new UDP socket to the daemon at {} after the restore ({err}); the old one is kept",
                self.address
            ),
        }
    }

    /// Where it sends.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Datagrams sent and dropped so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

/// A connected, non-blocking socket to `address`. On Linux in two system calls (the socket
/// made non-blocking, then connected, which binds it): start-up is the user's bill.
#[cfg(target_os = "linux")]
fn connect(address: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM.nonblocking(),
        None,
    )?;
    socket.connect(&address.into())?;
    Ok(socket.into())
}

#[cfg(not(target_os = "linux"))]
fn connect(address: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if address.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(address)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewed_socket_sends_from_a_new_port_to_the_same_daemon() {
        let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let sender = DaemonSender::new(receiver.local_addr().expect("addr"));
        let mut buf = [0u8; 16];
        sender.send(b"before");
        let (_, before) = receiver.recv_from(&mut buf).expect("the first datagram");
        sender.renew();
        sender.send(b"after");
        let (n, after) = receiver.recv_from(&mut buf).expect("the second datagram");
        assert_eq!(&buf[..n], b"after");
        assert_ne!(before.port(), after.port(), "a socket of its own");
    }

    #[test]
    fn closed_port_does_not_lose_the_next_datagram() {
        use std::time::Duration;
        // What is tested needs the ICMP "port unreachable" a datagram to a closed port brings
        // back to be on the socket when the next send is made: that send is refused, and sent
        // again. On loopback it is there when the first send returns; a round where it was not
        // (the next send went out unrefused, so `failing` is false) proves nothing and runs
        // again: the test cannot pass unless the retry ran.
        for _round in 0..20 {
            let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let address = receiver.local_addr().expect("addr");
            drop(receiver);
            let sender = DaemonSender::new(address);
            // Nobody listens: sent, and answered with the ICMP error.
            sender.send(b"lost");
            // The daemon comes back on that port.
            let receiver = UdpSocket::bind(address).expect("rebind");
            receiver
                .set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            sender.send(b"arrives");
            let mut buf = [0u8; 16];
            // ("lost" arrives first in a round where its ICMP error came after the rebind.)
            let arrived = std::iter::from_fn(|| {
                let n = receiver.recv(&mut buf).ok()?;
                Some(buf[..n].to_vec())
            })
            .any(|datagram| datagram == b"arrives");
            assert!(arrived, "the datagram after the refusal arrives");
            assert_eq!(sender.counts(), (2, 0), "both sent, none dropped");
            // Failing with nothing dropped: "arrives" was refused, and sent by the retry.
            if sender.failing.load(Ordering::Relaxed) {
                return;
            }
        }
        panic!("no send after a datagram to the closed port was refused in 20 rounds: the retry never ran");
    }
}
