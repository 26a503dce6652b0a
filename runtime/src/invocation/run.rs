//! How the handler's future runs: as it is when there is nothing to record, enter or scope;
//! else inside the handler span, with its panic recorded.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

use super::{Invocation, Recording};
use crate::exception::Exception;
use crate::propagation::AS_RECEIVED;

impl Invocation {
    /// Runs the handler's future inside the handler span. A panic is recorded as a fault,
    /// the documents are sent, and the panic carries on to `lambda_runtime`.
    pub fn run<'a, F: Future + 'a>(
        &'a mut self,
        future: F,
    ) -> impl Future<Output = F::Output> + 'a {
        // Boxed here, before any state machine holds it: the handler's future sits under
        // lambda_runtime's and tokio's layers, and with the AWS SDK's futures inside it the
        // nesting passes rustc's layout depth limit (128) in ordinary functions. One
        // allocation per invocation cuts the chain.
        self.run_boxed(Box::pin(future))
    }

    /// [`Invocation::run`] with the future boxed already: `#[xray_handler]` builds the
    /// handler's future in its box, so that the event it holds is not moved on the way
    /// (through `__private::run_boxed`).
    pub(crate) fn run_boxed<'a, F: Future + 'a>(
        &'a mut self,
        future: Pin<Box<F>>,
    ) -> impl Future<Output = F::Output> + 'a {
        let (span, as_received) = match self.recording.as_deref_mut() {
            // Nothing to enter, scope or record (tracing off, no log lines to carry): the
            // handler's future runs as it is, as if there were no attribute.
            None => return Run::Direct { future },
            Some(Recording::Recorded(active)) => (Some(active.span.clone()), None),
            Some(Recording::NotRecorded { span, as_received }) => (span.take(), as_received.take()),
        };
        // One path for every other invocation: the span (the handler's, an unrecorded one's,
        // or none) entered on each poll and while the future is dropped, also when the
        // handler is cancelled; the header's task-local scope around both.
        let mut future =
            tracing::Instrument::instrument(future, span.unwrap_or_else(tracing::Span::none));
        let traced = async move {
            let polled = std::future::poll_fn(move |cx| {
                let future = Pin::new(&mut future);
                match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
                    Err(payload) => Poll::Ready(Err(payload)),
                }
            });
            let result = match as_received {
                Some(header) => AS_RECEIVED.scope(header, polled).await,
                None => polled.await,
            };
            match result {
                Ok(output) => output,
                Err(payload) => {
                    if self.is_recorded() {
                        self.record_error(Exception::from_panic(&*payload));
                        // Boxed: only a panic gets here, and inline the wait would make the
                        // future of every invocation larger, moved on every hand-over.
                        Box::pin(self.finish()).await;
                    }
                    std::panic::resume_unwind(payload)
                }
            }
        };
        Run::Traced { future: traced }
    }
}

pin_project_lite::pin_project! {
    /// What [`Invocation::run`] returns: the handler's future as it is, or inside the handler
    /// span's machinery.
    #[project = RunProjection]
    enum Run<F, T> {
        /// Nothing recorded and nothing to carry: the future, boxed (for the layout depth)
        /// and otherwise as it is, so that tracing that is off costs next to nothing.
        Direct { #[pin] future: Pin<Box<F>> },
        /// Boxed, entered in its span, its panic recorded.
        Traced { #[pin] future: T },
    }
}

impl<F: Future, T: Future<Output = F::Output>> Future for Run<F, T> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        match self.project() {
            RunProjection::Direct { future } => future.poll(cx),
            RunProjection::Traced { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod future_size {
    /// Every handler's future holds these inline, and `lambda_runtime` moves it on each
    /// hand-over: what only some invocations need (an OTLP export, a panic's wait) is boxed.
    /// With the `otlp` feature, an inline export made both over 4 KiB.
    #[test]
    fn an_invocations_futures_stay_small() {
        let context = lambda_runtime::Context::default();
        let mut invocation = super::Invocation::start("handler", &context);
        let run = std::mem::size_of_val(&invocation.run(async {}));
        let finish = std::mem::size_of_val(&invocation.finish());
        assert!(run <= 256, "Invocation::run's future is {run} bytes");
        assert!(
            finish <= 256,
            "Invocation::finish's future is {finish} bytes"
        );
    }

    /// The handler's future holds the invocation across its `.await`: with nothing to
    /// record, it is one null pointer to write, test and drop (it was 112 bytes).
    #[test]
    fn an_invocation_is_one_pointer() {
        let size = std::mem::size_of::<super::Invocation>();
        assert_eq!(
            size,
            std::mem::size_of::<usize>(),
            "an invocation is {size} bytes"
        );
    }
}
