use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure")
    }
}

impl std::error::Error for Failure {}

#[xray_lambda::xray_handler]
async fn boxed(event: LambdaEvent<Value>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    if event.payload.is_null() {
        return Err(Box::new(Failure));
    }
    Ok(event.payload)
}

#[xray_lambda::xray_handler]
async fn opaque(event: LambdaEvent<Value>) -> Result<Value, impl std::fmt::Debug + Into<lambda_runtime::Diagnostic>> {
    if event.payload.is_null() {
        return Err(Error::from("null"));
    }
    Ok(event.payload)
}

#[xray_lambda::xray_handler]
async fn typed(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Err(Box::new(Failure))?;
    Ok(event.payload)
}

fn main() {
    let _ = lambda_runtime::service_fn(boxed);
    let _ = lambda_runtime::service_fn(opaque);
    let _ = lambda_runtime::service_fn(typed);
}
