//! Span and trace ids, in X-Ray's form (a trace id's first 32 bits are the epoch seconds).
//!
//! Each thread draws from a generator of its own, seeded from the operating system when the
//! thread first draws. That alone repeats across SnapStart environments: every environment
//! restored from one snapshot starts from the same memory, generator states included, and
//! would draw the same ids (AWS's "Handling uniqueness with Lambda SnapStart"). So every draw
//! is also mixed with the current invocation's request id, which Lambda never gives twice:
//! two environments restored from one snapshot part ways at their first invocation, whatever
//! thread draws, with nothing for the user to register.

use std::cell::Cell;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, TraceId};

/// The latest invocation's request id, hashed: mixed into every id drawn.
static SALT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// A seed from the operating system: std's first `RandomState` in a thread draws its keys
/// from it.
fn seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// wyrand: one multiply a draw, and every 64-bit state visited once.
fn next() -> u64 {
    let raw = STATE.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        #[allow(clippy::cast_possible_truncation)]
        let mixed = (t >> 64) as u64 ^ t as u64;
        mixed
    });
    raw ^ SALT.load(Ordering::Relaxed)
}

/// An invocation with `request_id` begins: ids drawn from now on are its environment's own.
pub(crate) fn salt_with(request_id: &str) {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in request_id.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    SALT.store(hash, Ordering::Relaxed);
}

/// A span id (never zero).
pub(crate) fn new_span_id() -> SpanId {
    loop {
        let n = next();
        if n != 0 {
            return SpanId::from(n);
        }
    }
}

/// A trace id: the epoch seconds, then 96 random bits.
pub(crate) fn new_trace_id() -> TraceId {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seconds = u128::from(u32::try_from(seconds).unwrap_or(u32::MAX));
    let random = u128::from(next()) << 32 | u128::from(next() >> 32);
    TraceId::from(seconds << 96 | random)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Write as _;

    use super::*;

    const DRAWS: usize = 10_000;

    /// Two children forked from this process after its generator was seeded, as two
    /// environments restored from one snapshot (the crate has no `unsafe`; this test forks):
    /// each draws `DRAWS` span ids, half on the thread that forked (the one the snapshot holds)
    /// and half on two worker threads, first salting with `request_ids[i]` if given.
    #[allow(unsafe_code)]
    fn restored_twice(request_ids: [Option<&str>; 2]) -> [Vec<u64>; 2] {
        // Seeded before the "snapshot".
        let _ = new_span_id();
        let dir = std::env::temp_dir();
        let files =
            [0, 1].map(|i| dir.join(format!("xray-ids-{}-{i}-{}", std::process::id(), seed())));
        let mut children = Vec::new();
        for (file, request_id) in files.iter().zip(request_ids) {
            // SAFETY: the child only draws ids, writes one file and exits without unwinding.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork");
            if pid == 0 {
                if let Some(id) = request_id {
                    salt_with(id);
                }
                // Half on the thread the snapshot holds, half on two worker threads started
                // after the restore.
                let draw = |n: usize| -> Vec<u64> {
                    (0..n)
                        .map(|_| u64::from_be_bytes(new_span_id().to_bytes()))
                        .collect()
                };
                let workers: Vec<_> = (0..2)
                    .map(|_| std::thread::spawn(move || draw(DRAWS / 4)))
                    .collect();
                let mut ids = draw(DRAWS / 2);
                for worker in workers {
                    ids.extend(worker.join().unwrap_or_default());
                }
                let out: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
                let written = std::fs::File::create(file).and_then(|mut f| f.write_all(&out));
                // SAFETY: ends the child at once, running nothing of the parent's.
                unsafe { libc::_exit(i32::from(written.is_err())) };
            }
            children.push(pid);
        }
        for pid in children {
            let mut status = 0;
            // SAFETY: waits for a child this test forked.
            unsafe { libc::waitpid(pid, &raw mut status, 0) };
            assert_eq!(status, 0, "a child failed");
        }
        files.map(|file| {
            let bytes = std::fs::read(&file).expect("the child's ids");
            let _ = std::fs::remove_file(&file);
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()
        })
    }

    fn collisions([a, b]: &[Vec<u64>; 2]) -> usize {
        let a: HashSet<&u64> = a.iter().collect();
        b.iter().filter(|id| a.contains(id)).count()
    }

    #[test]
    fn environments_restored_from_one_snapshot_draw_their_own_ids() {
        // The problem: without an invocation to part them, the thread the snapshot holds draws
        // the same ids in both (worker threads started after the restore seed themselves).
        let unsalted = restored_twice([None, None]);
        assert_eq!(unsalted[0].len(), DRAWS);
        assert_eq!(
            collisions(&unsalted),
            DRAWS / 2,
            "the same memory, the same ids"
        );
        // Each environment's first invocation salts its ids with its own request id.
        let salted = restored_twice([
            Some("8476a536-e9f4-11e8-9739-2dfe598c3fcd"),
            Some("c5c6d6d0-e9f4-11e8-9739-2dfe598c3fcd"),
        ]);
        assert_eq!(salted[1].len(), DRAWS);
        assert_eq!(collisions(&salted), 0);
    }

    #[test]
    fn a_trace_id_begins_with_the_epoch_seconds() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let id = u128::from_be_bytes(new_trace_id().to_bytes());
        let seconds = u64::try_from(id >> 96).expect("32 bits");
        assert!(seconds.abs_diff(now) <= 1, "{seconds} vs {now}");
        assert_ne!(new_trace_id(), new_trace_id());
    }
}
