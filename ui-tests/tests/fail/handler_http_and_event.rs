use lambda_http::Request;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn handler(request: Request, event: LambdaEvent<Value>) -> Result<Value, lambda_http::Error> {
    Ok(serde_json::json!({ "path": request.uri().path(), "event": event.payload }))
}

fn main() {}
