use serde_json::Value;

#[xray_lambda::xray_handler(nam = "x")]
fn handler(payload: Value) -> Value {
    payload
}

fn main() {}
