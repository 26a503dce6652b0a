//! The `reqwest` middleware (through `reqwest-middleware`): each request a remote subsegment,
//! with the trace header on it.

use http::Extensions;
use reqwest_middleware::{Middleware, Next, Result};

use super::{CallOptions, HttpCall};

/// A `reqwest-middleware` middleware: each request made inside a traced invocation is a
/// remote subsegment (`namespace: "remote"`, named after the host, with X-Ray's `http`
/// object) and carries the trace header naming it.
///
/// ```no_run
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(xray_lambda::http_client::XrayMiddleware::new())
///     .build();
/// ```
#[derive(Debug, Clone, Default)]
pub struct XrayMiddleware {
    options: CallOptions,
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
        self.options.traced = traced;
        self
    }

    /// Calls to this endpoint are not traced (Powertools' `ignore_endpoint`): no subsegment,
    /// and the request goes as the client made it, without a trace header. `host` matches
    /// the URL's host (`None`: any host); `paths`, if any, its path; `*` stands for any run of
    /// characters, case is ignored. Health checks, metrics endpoints and chatty internal
    /// services stay out of the trace. May be called more than once.
    ///
    /// ```no_run
    /// # {
    /// let middleware = xray_lambda::http_client::XrayMiddleware::new()
    ///     .ignore_endpoint(Some("*.internal.example.com"), &[])
    ///     .ignore_endpoint(None, &["/health", "/metrics/*"]);
    /// # }
    /// ```
    #[must_use]
    pub fn ignore_endpoint(mut self, host: Option<&str>, paths: &[&str]) -> Self {
        self.options.ignore(host, paths);
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
            HttpCall::begin(method.as_str(), uri, request.headers_mut(), &self.options)
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
