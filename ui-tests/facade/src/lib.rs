//! Re-exports xray-lambda, as a framework would: users write `#[xray_facade::xray_handler(crate =
//! "xray_facade")]`.
pub use xray_lambda::*;
