//! The behavioural tests both export paths pass (`xray_lambda_tests::behaviour_tests!`), on
//! the daemon path: UDP documents to a daemon on loopback.

use std::sync::OnceLock;

use xray_lambda_tests::paths::DaemonLambda;

fn harness() -> &'static DaemonLambda {
    static HARNESS: OnceLock<DaemonLambda> = OnceLock::new();
    HARNESS.get_or_init(DaemonLambda::start)
}

xray_lambda_tests::behaviour_tests!(harness());
