use lambda_http::{Error, IntoResponse, Request};

#[xray_lambda::xray_handler]
async fn handler(request: Request) -> Result<impl IntoResponse, Error> {
    Ok(format!("{} {}", request.method(), request.uri()))
}

fn main() {
    let _ = handler;
}
