use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    xray_lambda::annotate!("ColdStart", false);
    Ok(event.payload)
}

fn main() {}
