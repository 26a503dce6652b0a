use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    // The same names as the expansion's own locals: neither sees the other.
    let xray_invocation = 1;
    let xray_event = 2;
    let xray_output = 3;
    let xray_error = 4;
    let xray_fake_return = 5;
    Ok(Value::from(xray_invocation + xray_event + xray_output + xray_error + xray_fake_return + event.payload.as_i64().unwrap_or(0)))
}

fn main() {
    let _ = lambda_runtime::service_fn(handler);
}
