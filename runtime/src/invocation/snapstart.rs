//! SnapStart's after-restore hook, for the `Restore` subsegment. Everything else a restore
//! needs happens without it (see `ids` and the first invocation in `invocation`).

use std::sync::OnceLock;
use std::time::SystemTime;

use lambda_runtime::{BoxFuture, Error, SnapStartResource};

use crate::state;

/// When the runtime ran its after-restore hooks, if [`SnapStartTracing`] was registered.
static RESTORED_AT: OnceLock<SystemTime> = OnceLock::new();

/// When the process was restored from a SnapStart snapshot, as the hook saw it.
pub(crate) fn restored_at() -> Option<SystemTime> {
    RESTORED_AT.get().copied()
}

/// Registered with `lambda_runtime`'s SnapStart hooks, the first invocation after a restore
/// shows a `Restore` subsegment beside the handler, from the runtime's after-restore hooks to
/// the invocation, and the UDP socket to the daemon is opened anew at once.
///
/// Without it a SnapStart function is traced correctly too: ids are unique per restored
/// environment, and the socket is renewed at the first invocation. Register it first, so
/// that the subsegment covers the hooks registered after it:
///
/// ```no_run
/// use std::sync::Arc;
/// use lambda_runtime::{service_fn, Error, LambdaEvent, Runtime};
/// # #[xray_lambda::xray_handler]
/// # async fn handler(event: LambdaEvent<serde_json::Value>) -> Result<(), Error> { Ok(()) }
/// # async fn run() -> Result<(), Error> {
/// Runtime::new(service_fn(handler))
///     .register_snapstart_resource(Arc::new(xray_lambda::SnapStartTracing))
///     .layer(xray_lambda::XrayRuntimeLayer)
///     .run_concurrent()
///     .await
/// # }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct SnapStartTracing;

impl SnapStartResource for SnapStartTracing {
    fn after_restore(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async {
            let _ = RESTORED_AT.set(SystemTime::now());
            if let Some(pipeline) = state::pipeline() {
                pipeline.buffer.renew_after_restore();
            }
            Ok(())
        })
    }
}
