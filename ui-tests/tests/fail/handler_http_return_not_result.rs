use lambda_http::{Body, Request, Response};

#[xray_lambda::xray_handler]
async fn handler(request: Request) -> Response<Body> {
    Response::new(Body::from(request.uri().to_string()))
}

fn main() {}
