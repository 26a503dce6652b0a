//! The `reqwest` middleware (through `reqwest-middleware`): each request a remote subsegment,
//! with the trace header on it.

use http::Extensions;
use reqwest_middleware::{Middleware, Next, Result};

use super::HttpCall;

/// A `reqwest-middleware` middleware: each request made inside a traced invocation is a
/// remote subsegment (`namespace: "remote"`, named after the host, with X-Ray's `http`
/// object) and carries the trace header naming it.
///
/// ```no_run
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(xray_lambda::http_client::XrayMiddleware::new())
///     .build();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct XrayMiddleware {
    traced: bool,
}

impl XrayMiddleware {
    /// The middleware.
    #[must_use]
    pub fn new() -> Self {
        XrayMiddleware::default()
    }

    /// The services this client calls trace their requests too: see
    /// [`XrayLayer::downstream_traces`](super::XrayLayer::downstream_traces) (feature `tower`).
    #[must_use]
    pub fn downstream_traces(mut self, traced: bool) -> Self {
        self.traced = traced;
        self
    }
}

#[async_trait::async_trait]
impl Middleware for XrayMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        let uri: Option<http::Uri> = request.url().as_str().parse().ok();
        // A standard method's clone copies nothing.
        let method = request.method().clone();
        let call = uri.as_ref().and_then(|uri| {
            HttpCall::begin(method.as_str(), uri, request.headers_mut(), self.traced)
        });
        let result = next.run(request, extensions).await;
        if let Some(call) = call {
            match &result {
                Ok(response) => call.end(
                    Some(response.status().as_u16()),
                    response.content_length(),
                    None,
                ),
                Err(error) => call.end(None, None, Some(without_url(error))),
            }
        }
        result
    }
}

/// The error's message without the URL reqwest puts in it.
fn without_url(error: &reqwest_middleware::Error) -> String {
    match error {
        reqwest_middleware::Error::Reqwest(error) => {
            // `without_url` takes the error by value; its message is all that is needed.
            let mut message = error.to_string();
            if let Some(url) = error.url() {
                message = message.replace(url.as_str(), "[url removed]");
            }
            message
        }
        reqwest_middleware::Error::Middleware(error) => error.to_string(),
    }
}
