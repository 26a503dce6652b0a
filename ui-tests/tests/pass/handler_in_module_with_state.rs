mod function {
    use lambda_runtime::{Error, LambdaEvent};
    use serde_json::Value;

    #[derive(Clone)]
    pub struct State {
        pub greeting: String,
    }

    /// Documented handlers keep their docs.
    #[xray_lambda::xray_handler]
    pub async fn handler(state: State, LambdaEvent { payload, context }: LambdaEvent<Value>) -> Result<Value, Error> {
        Ok(serde_json::json!({ "greeting": state.greeting, "payload": payload, "id": context.request_id }))
    }
}

fn main() {
    let state = function::State { greeting: "hi".into() };
    let _ = lambda_runtime::service_fn(move |event| function::handler(state.clone(), event));
}
