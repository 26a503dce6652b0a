use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler(capture_response = "yes", capture_error = 1)]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

// The function is still emitted: using it adds no second error.
fn main() {
    let _ = lambda_runtime::service_fn(handler);
}
