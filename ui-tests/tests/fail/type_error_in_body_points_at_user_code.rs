use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let count: u32 = event.payload;
    Ok(Value::from(count))
}

fn main() {}
