use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

struct Function;

impl Function {
    #[xray_lambda::xray_handler]
    async fn handler(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        Ok(event.payload)
    }
}

fn main() {}
