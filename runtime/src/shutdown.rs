//! Feature `otlp`: the shutdown hook that flushes what outlived its invocation.

use crate::sink::otlp::unless_it_panics;
use crate::state;

/// Flushes the spans still held when Lambda shuts the function down.
///
/// Lambda sends `SIGTERM` before it ends an execution environment only to functions with an
/// extension: this registers a no-op internal one (in Lambda; elsewhere there is no
/// Extensions API and `SIGTERM`/`SIGINT` are simply handled), then waits for `SIGTERM` or
/// `SIGINT` in a task, flushes (at most the flush timeout) and exits the process with status 0.
///
/// Each invocation's spans are sent before it returns, so what is left at shutdown is only
/// what outlived its invocation: spans of tasks the handler spawned and did not wait for.
/// Call it once, before `lambda_runtime::run` (extensions register during init):
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let _tracing = xray_lambda::init()?;
/// xray_lambda::shutdown_on_sigterm().await;
/// # Ok(()) }
/// ```
///
/// Nothing here panics: a failed registration or signal setup logs one warning and the
/// function runs on without the hook.
pub async fn shutdown_on_sigterm() {
    if crate::environment::current().runtime_api.is_some() {
        register_extension().await;
    }
    let Some(shutdown) = shutdown_signal() else {
        return;
    };
    tokio::spawn(async move {
        shutdown.await;
        if let Some(pipeline) = state::pipeline() {
            pipeline.buffer.flush().await;
        }
        tracing::info!(target: "xray_lambda", "X-Ray: spans flushed at shutdown");
        std::process::exit(0);
    });
}

/// `SIGTERM` or `SIGINT`; `None` (with a warning) where they cannot be handled.
#[cfg(unix)]
fn shutdown_signal() -> Option<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    // `signal` panics on a runtime without the IO driver: that is a failure to report too.
    let signals = std::panic::catch_unwind(|| {
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    });
    let (mut term, mut int) = match signals {
        Ok((Ok(term), Ok(int))) => (term, int),
        Ok((Err(err), _) | (_, Err(err))) => {
            tracing::warn!(target: "xray_lambda", "X-Ray: cannot handle SIGTERM ({err}); no flush at shutdown");
            return None;
        }
        Err(_) => {
            tracing::warn!(target: "xray_lambda", "X-Ray: cannot handle SIGTERM on a tokio runtime without the IO driver; no flush at shutdown");
            return None;
        }
    };
    Some(std::future::poll_fn(move |cx| {
        if term.poll_recv(cx).is_ready() || int.poll_recv(cx).is_ready() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }))
}

/// Ctrl-C, where there is no `SIGTERM` (a developer's Windows machine; Lambda runs Linux).
/// (An `Option`, as the unix version's, for the one caller.)
#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)]
fn shutdown_signal() -> Option<impl std::future::Future<Output = ()>> {
    Some(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Registers an extension with no events: with one registered, Lambda sends `SIGTERM` before
/// it ends the execution environment.
async fn register_extension() {
    // lambda-extension's client panics on a malformed `AWS_LAMBDA_RUNTIME_API`.
    let registered = unless_it_panics(
        lambda_extension::Extension::new()
            .with_events(&[])
            .with_extension_name("xray-lambda-shutdown")
            .register(),
    )
    .await
    .unwrap_or_else(|| Err("the Extensions API client could not be made".into()));
    match registered {
        Ok(extension) => {
            // Waits on the Extensions API for events that never come: no wake-ups.
            tokio::spawn(async move {
                let _ = extension.run().await;
            });
        }
        Err(err) => {
            tracing::warn!(
                target: "xray_lambda",
                "X-Ray: cannot register the shutdown extension ({err}); Lambda will not send SIGTERM, so spans that outlive their invocation may be lost"
            );
        }
    }
}
