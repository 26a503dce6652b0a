//! The pacer's tests: costs, the window, a slow reader, a stopped one, one that is down.
use super::*;
use std::net::UdpSocket;

#[test]
fn costs_follow_the_kernels_accounting() {
    for (len, cost) in [
        (300, 1280),
        (1000, 2304),
        (2000, 4352),
        (8000, 16_640),
        (60_000, 60_832),
    ] {
        assert!(
            buffer_cost(len) >= cost,
            "{len}: {} < {cost}",
            buffer_cost(len)
        );
        assert!(
            buffer_cost(len) <= cost + 1024,
            "{len}: {} too pessimistic",
            buffer_cost(len)
        );
    }
}

fn receiver() -> (UdpSocket, Pacer) {
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = receiver.local_addr().expect("address");
    (
        receiver,
        Pacer::new(DaemonSender::new(address), Pacing::LAMBDA),
    )
}

/// A pacer that cannot see the daemon's queue: the model alone paces.
fn blind(pacer: Pacer) -> Pacer {
    let inner = Arc::into_inner(pacer.inner).expect("not shared yet");
    Pacer {
        inner: Arc::new(Inner {
            probe: None,
            ..inner
        }),
    }
}

#[test]
fn what_fits_the_window_is_sent_at_once() {
    let (_receiver, pacer) = receiver();
    // An invocation of 100 subsegments is one document of ~28 KB.
    pacer.submit(&vec![b'x'; 28_000]);
    pacer.submit(&vec![b'x'; 28_000]);
    let ticket = pacer.ticket();
    let mut cx = std::task::Context::from_waker(Waker::noop());
    let mut wait = std::pin::pin!(pacer.sent(ticket));
    assert!(wait.as_mut().poll(&mut cx).is_ready(), "no wait");
    assert_eq!(pacer.counts().0, 2);
}

#[test]
fn a_burst_is_paced_by_the_model_alone_and_arrives_whole_at_a_slow_reader() {
    let (receiver, pacer) = receiver();
    let pacer = blind(pacer);
    // The reader of `tests/src/daemon.rs`: the default buffer, 50 µs a datagram (the
    // model assumes 60).
    let reader = std::thread::spawn(move || {
        receiver
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = vec![0u8; 70_000];
        let mut count = 0;
        let mut next = Instant::now();
        loop {
            let asked = Instant::now();
            if receiver.recv(&mut buf).is_err() {
                return count;
            }
            count += 1;
            let now = Instant::now();
            if now - asked > Duration::from_millis(1) {
                // It was idle: the time it read nothing is not owed to it.
                next = now;
            }
            next += Duration::from_micros(50);
            if let Some(pause) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(pause);
            }
        }
    });
    for _ in 0..2_000 {
        pacer.submit(&[b'x'; 300]);
    }
    pacer.sent_blocking(pacer.ticket(), Duration::from_secs(30));
    assert_eq!(pacer.counts(), (2_000, 0));
    assert_eq!(reader.join().expect("reader"), 2_000, "every datagram read");
}

#[test]
#[cfg(target_os = "linux")]
fn a_reader_that_stops_reading_stops_the_sender_where_its_queue_is_visible() {
    let (receiver, pacer) = receiver();
    for _ in 0..1_000 {
        pacer.submit(&[b'x'; 300]);
    }
    // Nothing is read: the probe sees the queue full and sending stops short of the
    // buffer, instead of the kernel dropping the rest.
    pacer.sent_blocking(pacer.ticket(), Duration::from_millis(500));
    let sent = pacer.counts().0;
    assert!((1..1_000).contains(&sent), "paused: {sent}");
    // What still sat in the kernel's backlog has reached the socket (or been dropped).
    std::thread::sleep(Duration::from_millis(100));
    // The kernel's own count of datagrams this socket dropped. (Reading the queue back
    // is no count of drops: on a busy machine loopback datagrams wait in the kernel's
    // backlog after `send` returned, and a reader that stops at the first empty read
    // misses them.)
    let port = receiver.local_addr().expect("address").port();
    assert_eq!(socket_drops(port), Some(0), "sent {sent}: none dropped");
}

/// A daemon that is there but reads nothing holds the sender back for a second, then the
/// model paces: no invocation waits for it without end.
#[test]
#[cfg(target_os = "linux")]
fn a_daemon_that_reads_nothing_is_given_up_on() {
    let (_receiver, pacer) = receiver();
    for _ in 0..1_000 {
        pacer.submit(&[b'x'; 300]);
    }
    let ticket = pacer.ticket();
    pacer.sent_blocking(ticket, Duration::from_secs(30));
    assert_all_handed_over(&pacer, ticket);
}

/// Where the queue can be read but the daemon's socket is not there (a daemon that is
/// down), the model paces: nothing waits for a reading that never comes.
#[test]
#[cfg(target_os = "linux")]
fn a_daemon_that_is_down_holds_nothing_back() {
    let (receiver, pacer) = receiver();
    drop(receiver);
    assert!(pacer.inner.probe.is_some(), "the queue can be read here");
    for _ in 0..100 {
        pacer.submit(&vec![b'x'; 20_000]);
    }
    let ticket = pacer.ticket();
    pacer.sent_blocking(ticket, Duration::from_secs(30));
    assert_all_handed_over(&pacer, ticket);
}

/// The `drops` column of the socket bound to `port` on 127.0.0.1, from `/proc/net/udp`.
#[cfg(target_os = "linux")]
fn socket_drops(port: u16) -> Option<u64> {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str())).then(|| fields.get(12)?.parse().ok())?
    })
}

/// Everything up to `ticket` has been handed to the socket: an async waiter is done at once.
fn assert_all_handed_over(pacer: &Pacer, ticket: Ticket) {
    let mut cx = std::task::Context::from_waker(Waker::noop());
    let mut wait = std::pin::pin!(pacer.sent(ticket));
    assert!(
        wait.as_mut().poll(&mut cx).is_ready(),
        "every datagram handed over"
    );
}
