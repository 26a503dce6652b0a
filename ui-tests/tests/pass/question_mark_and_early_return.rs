use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler(name = "checkout: step/1")]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let n: u64 = event.payload["n"].as_str().unwrap_or("0").parse()?;
    if n == 0 {
        return Ok(Value::Null);
    }
    let doubled = u64::checked_mul(n, 2).ok_or("overflow")?;
    Ok(Value::from(doubled))
}

fn main() {
    let _ = lambda_runtime::service_fn(handler);
}
