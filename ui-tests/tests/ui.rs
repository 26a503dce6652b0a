//! Compile-time diagnostics of the attributes and macros: each `fail/` case must fail with
//! exactly its `.stderr`, each `pass/` case must build and run.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/pass/*.rs");
    cases.compile_fail("tests/fail/*.rs");
}
