use lambda_runtime::Error;
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn handler() -> Result<Value, Error> {
    Ok(Value::Null)
}

fn main() {}
