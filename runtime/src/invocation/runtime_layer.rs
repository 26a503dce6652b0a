//! The layer around `lambda_runtime`'s own service: it sees each invocation from the event to
//! the posted response, which the handler cannot. Two things need that:
//! - the wait for an invocation's paced datagrams comes after its response is posted and
//!   before the runtime asks for the next invocation, so the caller's latency does not grow
//!   with the trace while the freeze after `next` still finds everything sent;
//! - an event that does not deserialize into the handler's type is answered by
//!   `lambda_runtime` itself, without calling the handler, so `#[xray_handler]` never sees it:
//!   the layer records it as a fault.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;

use super::{Invocation, RuntimeScope, RUNTIME_SCOPE};
use crate::exception::Exception;

/// A `lambda_runtime` layer: each invocation's datagrams (to the X-Ray daemon or Lambda's
/// OpenTelemetry endpoint) are sent while the response goes out, and waited for after it,
/// before the next invocation is asked for; an invocation whose event did not reach the
/// handler (its payload did not deserialize into the handler's event type) is recorded as a
/// fault.
///
/// ```no_run
/// use lambda_runtime::{service_fn, Error, LambdaEvent, Runtime};
/// # #[xray_lambda::xray_handler]
/// # async fn handler(event: LambdaEvent<serde_json::Value>) -> Result<(), Error> { Ok(()) }
/// # async fn run() -> Result<(), Error> {
/// let _tracing = xray_lambda::init()?;
/// Runtime::new(service_fn(handler))
///     .layer(xray_lambda::XrayRuntimeLayer)
///     .run_concurrent()
///     .await
/// # }
/// ```
///
/// Without it (`lambda_runtime::run`, `run_concurrent`), each invocation waits for its own
/// datagrams before its handler returns: nothing is lost either, but a trace of thousands of
/// subsegments adds the time they take to go out (paced for the daemon) to the response. An
/// OTLP export to a collector is acknowledged before the response either way.
///
/// The layer knows a traced handler ran when its invocation starts while the layer's future
/// runs; a handler that starts its `Invocation` by hand before its future is first polled, or
/// on a task of its own, is taken for an event that never reached it.
///
/// The undelivered invocation's subsegment is named after the function; its cause says the
/// event did not deserialize (the payload itself is not recorded).
#[derive(Debug, Clone, Copy, Default)]
pub struct XrayRuntimeLayer;

impl<S> Layer<S> for XrayRuntimeLayer {
    type Service = XrayRuntime<S>;

    fn layer(&self, inner: S) -> Self::Service {
        XrayRuntime { inner }
    }
}

/// The service [`XrayRuntimeLayer`] wraps around the runtime's.
#[derive(Debug, Clone)]
pub struct XrayRuntime<S> {
    inner: S,
}

impl<S> Service<LambdaInvocation> for XrayRuntime<S>
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
        Box::pin(RUNTIME_SCOPE.scope(RuntimeScope::default(), async move {
            // The handler runs and the response is posted.
            let result = inner.await;
            if !RUNTIME_SCOPE.with(|scope| scope.handler_reached.get()) {
                record_undelivered(&context).await;
            }
            let waits = RUNTIME_SCOPE.with(|scope| scope.after_response.take());
            for wait in waits {
                wait.await;
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
    // Tracing off and no log lines: `start` does not tell the layer the handler was reached,
    // and there is nothing to record here either.
    if !invocation.is_recorded() {
        return;
    }
    invocation.record_error(Exception::new(
        "DeserializeError",
        "the event did not deserialize into the handler's event type, so the handler was not called",
    ));
    invocation.finish().await;
}
