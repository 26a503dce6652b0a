//! Compile-fail cases of xray-lambda built with its default features only (see `tests/`).
