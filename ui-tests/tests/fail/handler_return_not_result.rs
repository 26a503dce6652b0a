use lambda_runtime::LambdaEvent;
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Value>) -> Value {
    event.payload
}

fn main() {}
