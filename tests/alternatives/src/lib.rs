//! The Rust alternatives side by side with xray-lambda: what each sends for the same
//! invocations (`tests/alternatives.rs`; `cargo test -p xray-lambda-alternatives --
//! --nocapture` prints the table), what each costs per invocation (`benches/alternatives.rs`),
//! and the start-up and size of the same hello (`examples/`), which `bench/alternatives` runs.

use std::time::Duration;

/// Prints the start-up time and exits when `XRAY_STARTUP_ONLY` is set (an example's hello,
/// measured from `main` to its tracing installed, where `examples/size` measures ours).
pub fn report_startup(since_main: Duration) {
    if std::env::var_os("XRAY_STARTUP_ONLY").is_some() {
        println!("startup_ns {}", since_main.as_nanos());
        std::process::exit(0);
    }
}
