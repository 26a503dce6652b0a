use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

type Event = LambdaEvent<Value>;

#[xray_lambda::xray_handler]
async fn handler(event: Event) -> Result<Value, Error> {
    Ok(event.payload)
}

fn main() {}
