use lambda_http::{Error, IntoResponse, Request};

#[xray_lambda::xray_handler(capture_response = true)]
async fn handler(request: Request) -> Result<impl IntoResponse, Error> {
    Ok(request.uri().to_string())
}

fn main() {}
