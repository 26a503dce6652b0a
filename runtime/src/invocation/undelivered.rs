//! Invocations whose event never reached the handler: `lambda_runtime` answers an event that
//! does not deserialize into the handler's type itself, without calling the handler, so
//! `#[xray_handler]` never sees it. This layer does, and records it as a fault.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;

use super::{Invocation, HANDLER_REACHED};
use crate::exception::Exception;

/// A `lambda_runtime` layer that records, as a fault, each invocation whose event did not reach
/// the handler (its payload did not deserialize into the handler's event type).
///
/// ```no_run
/// use lambda_runtime::{service_fn, Error, LambdaEvent, Runtime};
/// # #[xray_lambda::xray_handler]
/// # async fn handler(event: LambdaEvent<serde_json::Value>) -> Result<(), Error> { Ok(()) }
/// # async fn run() -> Result<(), Error> {
/// let _tracing = xray_lambda::init()?;
/// Runtime::new(service_fn(handler))
///     .layer(xray_lambda::TraceUndeliveredLayer)
///     .run_concurrent()
///     .await
/// # }
/// ```
///
/// The subsegment is named after the function; its cause says the event did not deserialize
/// (the payload itself is not recorded).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceUndeliveredLayer;

impl<S> Layer<S> for TraceUndeliveredLayer {
    type Service = TraceUndelivered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceUndelivered { inner }
    }
}

/// The service [`TraceUndeliveredLayer`] wraps around the runtime's.
#[derive(Debug, Clone)]
pub struct TraceUndelivered<S> {
    inner: S,
}

impl<S> Service<LambdaInvocation> for TraceUndelivered<S>
where
    S: Service<LambdaInvocation, Response = ()>,
    S::Future: Send + 'static,
    // Held while the undelivered invocation's spans are flushed.
    S::Error: Send,
{
    type Response = ();
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<(), S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: LambdaInvocation) -> Self::Future {
        let context = request.context.clone();
        let inner = self.inner.call(request);
        Box::pin(HANDLER_REACHED.scope(Cell::new(false), async move {
            let result = inner.await;
            if !HANDLER_REACHED.with(Cell::get) {
                record_undelivered(&context).await;
            }
            result
        }))
    }
}

async fn record_undelivered(context: &lambda_runtime::Context) {
    // Leaked once per process, not per invocation: a span name is `&'static`.
    static NAME: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    let name = *NAME.get_or_init(|| {
        let function = &context.env_config.function_name;
        if function.is_empty() {
            "handler"
        } else {
            Box::leak(function.clone().into_boxed_str())
        }
    });
    let mut invocation = Invocation::start(name, context);
    invocation.record_error(Exception::new(
        "DeserializeError",
        "the event did not deserialize into the handler's event type, so the handler was not called",
    ));
    invocation.finish().await;
}
