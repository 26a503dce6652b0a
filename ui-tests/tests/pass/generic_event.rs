use lambda_runtime::{Error, LambdaEvent};
use serde::de::DeserializeOwned;

#[xray_lambda::xray_handler]
async fn handler<T: DeserializeOwned + std::fmt::Debug + Send>(event: LambdaEvent<T>) -> Result<String, Error> {
    Ok(format!("{:?}", event.payload))
}

fn main() {
    let _ = lambda_runtime::service_fn(handler::<serde_json::Value>);
}
