#![deny(warnings, clippy::pedantic, unused_qualifications, unused_results)]
//! HTTP handlers (lambda_http) of every shape expand without a warning in a crate that denies
//! them: `impl IntoResponse`, a named `Response<Body>`, plain bodies, state arguments, `?`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, IntoResponse, Request, RequestExt as _, Response};
use serde_json::json;

#[xray_lambda::xray_handler]
async fn converted(request: Request) -> Result<impl IntoResponse, Error> {
    let name = request
        .path_parameters_ref()
        .and_then(|p| p.first("name"))
        .unwrap_or("world")
        .to_owned();
    if name.is_empty() {
        return Err("empty name".into());
    }
    Ok((StatusCode::OK, json!({ "message": format!("Hello, {name}!") })))
}

#[xray_lambda::xray_handler]
async fn named(request: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(404)
        .body(Body::from(request.uri().path().to_owned()))?)
}

#[xray_lambda::xray_handler]
async fn plain(greeting: &str, _request: Request) -> Result<String, Error> {
    Ok(greeting.to_owned())
}

struct Custom;

impl IntoResponse for Custom {
    fn into_response(
        self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>> {
        Box::pin(std::future::ready(Response::new(Body::Empty)))
    }
}

#[xray_lambda::xray_handler(name = "custom")]
async fn custom(_request: Request) -> Result<Custom, Error> {
    Ok(Custom)
}

#[xray_lambda::xray_handler]
async fn mutable(mut request: Request) -> Result<String, Error> {
    let _ = request.headers_mut().remove("x-forwarded-for");
    Ok(request.uri().path().to_owned())
}

fn main() {
    let _ = lambda_http::service_fn(mutable);
    let _ = lambda_http::service_fn(converted);
    let _ = lambda_http::service_fn(named);
    let _ = lambda_http::service_fn(custom);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let response = runtime
        .block_on(named(Request::new(Body::Empty)))
        .expect("a response");
    assert_eq!(response.status(), 404);
    assert_eq!(runtime.block_on(plain("hi", Request::new(Body::Empty))).ok().as_deref(), Some("hi"));
    let converted = runtime
        .block_on(converted(Request::new(Body::Empty)))
        .expect("a response");
    let response = runtime.block_on(converted.into_response());
    assert_eq!(response.status(), 200);
    assert!(matches!(response.body(), Body::Text(t) if t.contains("Hello, world!")));
}
