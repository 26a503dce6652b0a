use lambda_runtime::Error;
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn handler(payload: Value) -> Result<Value, Error> {
    Ok(payload)
}

fn main() {}
