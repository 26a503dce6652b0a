use lambda_http::{IntoResponse, Request};

#[xray_lambda::xray_handler]
async fn handler(first: Request, second: Request) -> Result<impl IntoResponse, lambda_http::Error> {
    Ok(format!("{} {}", first.uri(), second.uri()))
}

fn main() {}
