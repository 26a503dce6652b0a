//! A user who forgot a feature gets one error that names it, for every feature-gated surface
//! a user touches: each `fail/` case must fail with exactly its `.stderr`. (The `dynamodb`
//! feature has no such surface: a DynamoDB call without it logs one line naming it.)

#[test]
fn a_missing_feature_is_one_error_that_names_it() {
    trybuild::TestCases::new().compile_fail("tests/fail/*.rs");
}
