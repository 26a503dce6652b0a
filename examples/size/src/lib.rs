//! A `lambda_runtime` hello twice, to measure what tracing adds: `plain` and `traced`.
//! With `XRAY_STARTUP_ONLY=1` each prints how long start-up took (process start to ready to
//! poll) and exits instead of polling the Runtime API.

use std::time::Duration;

/// Prints the start-up time and exits when `XRAY_STARTUP_ONLY` is set.
pub fn report_startup(since_main: Duration) {
    if std::env::var_os("XRAY_STARTUP_ONLY").is_some() {
        println!("startup_ns {}", since_main.as_nanos());
        std::process::exit(0);
    }
}
