//! Real parts for tests and the local demo: a Lambda Runtime API served on loopback (what the
//! real `lambda_runtime` polls), a UDP socket standing in for the X-Ray daemon, and a
//! DynamoDB-compatible endpoint (moto) on loopback.

pub mod daemon;
pub mod frozen;
pub mod handlers;
pub mod harness;
pub mod http_handlers;
pub mod http_server;
pub mod moto;
pub mod otlp;
pub mod paths;
pub mod proxy;
pub mod rounds;
pub mod runtime_api;
pub mod watched;

/// The whole body of a request or response served here (empty when it cannot be read).
pub(crate) async fn collect_body(body: hyper::body::Incoming) -> bytes::Bytes {
    use http_body_util::BodyExt as _;
    body.collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default()
}

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether this is a CI run: the variable `CI` is exactly `true` (as GitHub Actions, GitLab CI
/// and most CI services set it, and as `.ci/run` reads it).
#[must_use]
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| value == "true")
}

/// Skips the calling test because `reason` (what is missing, and what installs it); the
/// caller returns right after (`return skip("...")`), or goes on without the skipped part.
///
/// Locally: one line, `skipped: <test>: <reason>`, and the test passes. Under `CI=true` the
/// run cannot pass by skipping: the test fails, naming itself and the reason.
///
/// # Panics
/// Under `CI=true`.
#[track_caller]
pub fn skip(reason: &str) {
    let caller = std::panic::Location::caller();
    // The test harness names each test's thread after the test.
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map_or_else(|| caller.to_string(), str::to_owned);
    assert!(
        !under_ci(),
        "skipped under CI=true: {test} ({caller}): {reason}"
    );
    eprintln!("skipped: {test}: {reason}");
}

/// Polls `condition` until it holds or `timeout` passes (every 20 ms, and once more at the
/// deadline): whether it held. For waiting on something that happens elsewhere (a datagram, a
/// server, a process) instead of sleeping a fixed time.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    const POLL: Duration = Duration::from_millis(20);
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// A fresh, valid X-Ray trace header: `Root` with the current epoch and random bits, a random
/// `Parent`, and `Sampled=<sampled>` (no `Sampled` key when `None`).
#[must_use]
pub fn new_trace_header(sampled: Option<&str>) -> TraceIds {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let random = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    let root = format!(
        "1-{epoch:08x}-{:08x}{:016x}",
        random(1) & 0xffff_ffff,
        random(2)
    );
    let parent = format!("{:016x}", random(3) | 1);
    let header = match sampled {
        Some(s) => format!("Root={root};Parent={parent};Sampled={s}"),
        None => format!("Root={root};Parent={parent}"),
    };
    TraceIds {
        root,
        parent,
        header,
    }
}

/// The parts of a generated trace header.
#[derive(Debug, Clone)]
pub struct TraceIds {
    /// `1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy`
    pub root: String,
    /// 16 hex digits.
    pub parent: String,
    /// The whole header.
    pub header: String,
}

/// Sets the variables `lambda_runtime` reads at start, pointing it at `runtime_api`.
///
/// Call before any thread that reads the environment starts (at the top of a test binary's
/// single harness, or of `main`).
pub fn set_lambda_env(runtime_api: &str, function_name: &str) {
    for (key, value) in [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/local"),
    ] {
        std::env::set_var(key, value);
    }
}

/// Runs the test `test_name` of the current test binary in a child process with `mode` in
/// `XRAY_TEST_CHILD` and `envs` set: for checks that need a process of their own (the
/// pipeline and the environment are process-wide).
///
/// # Panics
/// If the child cannot be started.
#[must_use]
pub fn run_child(test_name: &str, mode: &str, envs: &[(&str, &str)]) -> std::process::Output {
    let command = std::process::Command::new(std::env::current_exe().expect("test binary"));
    run_child_with(command, test_name, mode, envs)
}

/// The mode [`run_child`] started this child test with (`XRAY_TEST_CHILD`), for the child
/// entry of `run_by`, the test that runs it.
///
/// # Panics
/// When the variable is not set: the child was run on its own (`--ignored`), where it would
/// check nothing, and must not pass.
#[must_use]
pub fn child_mode(run_by: &str) -> String {
    std::env::var("XRAY_TEST_CHILD").unwrap_or_else(|_| {
        panic!(
            "a child process of `{run_by}`, which runs it with XRAY_TEST_CHILD set; run that test, not this one on its own"
        )
    })
}

/// [`run_child`], asserting that the child succeeded and printed `CHILD OK`; its stdout.
///
/// # Panics
/// If it did not (with both of its outputs).
#[must_use]
pub fn run_child_ok(test_name: &str, mode: &str, envs: &[(&str, &str)]) -> String {
    let output = run_child(test_name, mode, envs);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && stdout.contains("CHILD OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// [`run_child`] inside a network namespace of its own where only loopback is up
/// (`unshare --net`, as root): any other address is unreachable, and no packet can leave.
///
/// # Panics
/// If the child cannot be started (`unshare` needs root, which the test machines give).
#[must_use]
pub fn run_child_without_network(
    test_name: &str,
    mode: &str,
    envs: &[(&str, &str)],
) -> std::process::Output {
    let mut command = std::process::Command::new("unshare");
    command
        .args([
            "--net",
            "sh",
            "-c",
            r#"ip link set lo up && exec "$0" "$@""#,
        ])
        .arg(std::env::current_exe().expect("test binary"));
    run_child_with(command, test_name, mode, envs)
}

fn run_child_with(
    mut command: std::process::Command,
    test_name: &str,
    mode: &str,
    envs: &[(&str, &str)],
) -> std::process::Output {
    command
        .args([
            "--exact",
            test_name,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("XRAY_TEST_CHILD", mode);
    for var in [
        "AWS_XRAY_DAEMON_ADDRESS",
        "AWS_XRAY_SDK_DISABLED",
        "POWERTOOLS_TRACE_DISABLED",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_MAX_CONCURRENCY",
        "_X_AMZN_TRACE_ID",
        "RUST_LOG",
        "OTEL_PROPAGATORS",
    ] {
        command.env_remove(var);
    }
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("run the child test process")
}
