//! The `tower` layer: any HTTP service (hyper's client, a `tower` stack) gets a remote
//! subsegment per request and the trace header on it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::{CallOptions, HttpCall};

/// Wraps an HTTP service so that each request made inside a traced invocation is a remote
/// subsegment (`namespace: "remote"`, named after the host, with X-Ray's `http` object) and
/// carries the trace header naming it.
///
/// ```no_run
/// use tower_layer::Layer as _;
/// # fn f<S>(client: S) {
/// let client = xray_lambda::http_client::XrayLayer::new().layer(client);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct XrayLayer {
    options: CallOptions,
}

impl XrayLayer {
    /// The layer.
    #[must_use]
    pub fn new() -> Self {
        XrayLayer::default()
    }

    /// The services this client calls trace their requests too (other functions or services
    /// with X-Ray): their subsegments say `traced`, and X-Ray waits for the downstream's
    /// segment under them. Off by default: a third-party API never sends one, and X-Ray would
    /// show every such trace as incomplete.
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
    /// # #[cfg(feature = "tower")] {
    /// let layer = xray_lambda::http_client::XrayLayer::new()
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

impl<S> Layer<S> for XrayLayer {
    type Service = XrayService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        XrayService {
            inner,
            options: self.options.clone(),
        }
    }
}

/// The service [`XrayLayer`] makes.
#[derive(Debug, Clone)]
pub struct XrayService<S> {
    inner: S,
    options: CallOptions,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for XrayService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
    ResponseBody: Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        // A standard method's clone copies nothing.
        let method = request.method().clone();
        let uri = request.uri().clone();
        let call = HttpCall::begin(method.as_str(), &uri, request.headers_mut(), &self.options);
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            if let Some(call) = call {
                match &result {
                    Ok(response) => {
                        let length = response
                            .headers()
                            .get(http::header::CONTENT_LENGTH)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse().ok())
                            .or_else(|| response.body().size_hint().exact());
                        call.end(Some(response.status().as_u16()), length, None);
                    }
                    // The client's error (its query string, if it names one, is removed).
                    Err(error) => call.end(None, None, Some(error.to_string())),
                }
            }
            result
        })
    }
}
