//! Traced `lambda_http` handlers whose behaviour the request's `x-test-action` header chooses,
//! shared by the HTTP test binaries and the benchmark.

use lambda_http::http::{Response, StatusCode};
use lambda_http::{Body, Error, IntoResponse, Request, RequestExt as _};
use serde_json::json;

/// What the handler does: `ok` (the default: a nested span, then 200 with the trace header
/// the handler saw), `status:NNN` (that status), `err` (an `Err`), `panic`, `call:URL` (a GET
/// of `URL` through `XrayMiddleware`, then 200).
fn action(request: &Request) -> String {
    request
        .headers()
        .get("x-test-action")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("ok")
        .to_owned()
}

/// The trace header the handler sees on its request.
fn seen_header(request: &Request) -> Option<String> {
    seen(request, "x-amzn-trace-id")
}

/// Header `name` as the handler sees it on its request.
fn seen(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A handler answering `impl IntoResponse`: the attribute converts the response (as
/// `lambda_http` would) and sees its status and length.
#[xray_lambda::xray_handler]
pub async fn http_handler(request: Request) -> Result<impl IntoResponse, Error> {
    let header = seen_header(&request);
    let action = action(&request);
    let status = match action.as_str() {
        "ok" => {
            nested().await;
            StatusCode::OK
        }
        call if call.starts_with("call:") => {
            let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(xray_lambda::http_client::XrayMiddleware::new())
                .build();
            client.get(&call["call:".len()..]).send().await?;
            StatusCode::OK
        }
        "err" => return Err("the orders table is missing".into()),
        "panic" => panic!("the HTTP handler panicked on purpose"),
        other => other
            .strip_prefix("status:")
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| format!("unknown action {other}"))?,
    };
    Ok((
        status,
        json!({
            "header": header,
            "traceparent": seen(&request, "traceparent"),
            // An entry of the request's W3C baggage, as the handler's own code reads it.
            "baggage_user": baggage_entry("userId"),
            "path": request.raw_http_path(),
        }),
    ))
}

/// A handler that names its response type: read where it is, not converted.
#[xray_lambda::xray_handler(name = "typed_handler")]
pub async fn typed_http_handler(request: Request) -> Result<Response<Body>, Error> {
    let code = action(&request)
        .strip_prefix("status:")
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or(200);
    Ok(Response::builder()
        .status(code)
        .header("content-type", "text/plain")
        .body(Body::from("typed"))?)
}

/// Entry `key` of the W3C baggage in the handler span's context.
fn baggage_entry(key: &str) -> Option<String> {
    use opentelemetry::baggage::BaggageExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    tracing::Span::current()
        .context()
        .baggage()
        .get(key)
        .map(|v| v.as_str().to_owned())
}

#[tracing::instrument]
async fn nested() {
    tokio::task::yield_now().await;
}

/// Either handler, by the request's `x-test-handler` header (`typed` or not): one runtime
/// serves both.
///
/// # Errors
/// The handler's.
pub async fn either_handler(
    request: Request,
) -> Result<Either<impl IntoResponse, Response<Body>>, Error> {
    let typed = request
        .headers()
        .get("x-test-handler")
        .is_some_and(|v| v == "typed");
    if typed {
        typed_http_handler(request).await.map(Either::Typed)
    } else {
        http_handler(request).await.map(Either::Converted)
    }
}

/// The response of [`either_handler`].
#[derive(Debug)]
pub enum Either<A, B> {
    /// From [`http_handler`].
    Converted(A),
    /// From [`typed_http_handler`].
    Typed(B),
}

impl<A: IntoResponse, B: IntoResponse> IntoResponse for Either<A, B> {
    fn into_response(
        self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>> {
        match self {
            Either::Converted(a) => a.into_response(),
            Either::Typed(b) => b.into_response(),
        }
    }
}
