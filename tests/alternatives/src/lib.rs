//! The Rust alternatives side by side with xray-lambda; the test is
//! `tests/alternatives.rs` (`cargo test -p xray-lambda-alternatives -- --nocapture` prints the
//! table).
