use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_facade::xray_handler(crate = "xray_facade")]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    xray_facade::annotate!(crate = xray_facade; "user_id", "u-1");
    helper().await;
    Ok(event.payload)
}

#[xray_facade::xray_aws(crate = "xray_facade", name = "helper")]
async fn helper() {}

fn main() {
    let _ = lambda_runtime::service_fn(handler);
}
