#![deny(warnings, clippy::pedantic, unused_qualifications, unused_results)]
//! Every handler shape expands without a warning in a crate that denies them: one-expression
//! bodies, destructured, mutable, unused and ignored events, associated functions, borrowed
//! state and `impl Trait` errors.

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn one_expression(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[xray_lambda::xray_handler]
async fn destructured(LambdaEvent { payload, context }: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(serde_json::json!({ "payload": payload, "id": context.request_id }))
}

#[xray_lambda::xray_handler]
async fn mutable(mut event: LambdaEvent<Value>) -> Result<Value, Error> {
    event.payload = Value::from(event.context.request_id.len());
    Ok(event.payload)
}

#[xray_lambda::xray_handler]
async fn unused(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(Value::Null)
}

#[xray_lambda::xray_handler]
async fn ignored(_: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(Value::Null)
}

struct Function;

impl Function {
    #[xray_lambda::xray_handler]
    async fn associated(event: LambdaEvent<Value>) -> Result<Value, Error> {
        Ok(event.payload)
    }
}

struct State {
    greeting: String,
}

#[xray_lambda::xray_handler]
async fn borrowed(state: &State, event: LambdaEvent<Value>) -> Result<String, Error> {
    Ok(format!("{} {}", state.greeting, event.payload))
}

#[xray_lambda::xray_handler]
async fn opaque_error(
    event: LambdaEvent<Value>,
) -> Result<Value, impl std::fmt::Debug + Into<lambda_runtime::Diagnostic>> {
    event.payload.as_str().map(Value::from).ok_or_else(|| Error::from("not a string"))
}

#[xray_lambda::xray_aws]
async fn one_expression_aws(n: u64) -> Result<u64, Error> {
    Ok(n + 1)
}

fn main() {
    let _ = lambda_runtime::service_fn(one_expression);
    let _ = lambda_runtime::service_fn(destructured);
    let _ = lambda_runtime::service_fn(mutable);
    let _ = lambda_runtime::service_fn(unused);
    let _ = lambda_runtime::service_fn(ignored);
    let _ = lambda_runtime::service_fn(Function::associated);
    let state = State { greeting: "hi".to_owned() };
    let _ = lambda_runtime::service_fn(move |event| {
        let state = State { greeting: state.greeting.clone() };
        async move { borrowed(&state, event).await }
    });
    let _ = lambda_runtime::service_fn(opaque_error);
    let _ = one_expression_aws(1);
}
