//! Powertools' `capture_response` and `capture_error`: the handler's response and its error
//! as metadata on the handler subsegment (`<name> response`, `<name> error`, as Powertools
//! keys them). The builder and `POWERTOOLS_TRACER_CAPTURE_RESPONSE` /
//! `POWERTOOLS_TRACER_CAPTURE_ERROR` set the default (response off, error on); the attribute's
//! `capture_response` / `capture_error` decide for its handler. Values longer than X-Ray's
//! value cap are cut with the crate's marker when written.

use serde_json::Value as Json;

use super::Invocation;
use crate::exception::Exception;
use crate::notices::warn_once;
use crate::record::Extra;
use crate::state;

impl Invocation {
    /// The attribute's `capture_response` / `capture_error`, where it sets them: they win over
    /// the builder and the environment.
    pub(crate) fn capture(&mut self, response: Option<bool>, error: Option<bool>) {
        if let Some(active) = self.active_mut() {
            if let Some(response) = response {
                active.capture.response = response;
            }
            if let Some(error) = error {
                active.capture.error = error;
            }
        }
    }

    /// Whether this invocation records its response (recorded, and capture on).
    #[must_use]
    #[inline]
    pub(crate) fn captures_response(&self) -> bool {
        self.active().is_some_and(|active| active.capture.response)
    }

    /// The response as metadata (`None`: it could not be serialized, said once).
    pub(crate) fn capture_response(&self, response: Option<Json>) {
        if let (Some(active), Some(value)) = (self.active(), response) {
            attach(active, "response", value);
        }
    }

    /// The error as metadata, where errors are captured: its type, message and `source()`
    /// chain.
    pub(super) fn capture_error(&self, exception: &Exception) {
        let Some(active) = self.active().filter(|active| active.capture.error) else {
            return;
        };
        let value = serde_json::json!({
            "type": exception.kind(),
            "message": exception.message(),
            "sources": exception.sources(),
        });
        attach(active, "error", value);
    }
}

/// `value` as the handler subsegment's metadata `<name> <what>`.
fn attach(active: &super::Active, what: &str, value: Json) {
    use opentelemetry::trace::TraceContextExt as _;
    let span_id = active.cx.span().span_context().span_id();
    state::attach(
        span_id,
        Extra {
            metadata: vec![(format!("{} {what}", active.name), value)],
            ..Extra::default()
        },
    );
}

/// The handler's `Ok` value, for `capture_response`, and how it is described: as JSON where
/// it is `Serialize` (every `LambdaEvent` handler's response is), else not at all (a
/// streaming response), said once. `#[xray_handler]` calls `(&CaptureProbe(ok)).xray_json()`
/// with both traits in scope: autoref picks the first that applies.
#[derive(Debug)]
pub struct CaptureProbe<'a, T: ?Sized>(pub &'a T);

/// [`CaptureProbe`] for a `Serialize` response.
pub trait ViaSerialize {
    /// The response as JSON; `None`, said once, when its `Serialize` fails.
    fn xray_json(&self) -> Option<Json>;
}

impl<T: serde::Serialize + ?Sized> ViaSerialize for CaptureProbe<'_, T> {
    fn xray_json(&self) -> Option<Json> {
        match serde_json::to_value(self.0) {
            Ok(value) => Some(value),
            Err(err) => {
                warn_once("capture_response serialize", || {
                    format!("X-Ray: capture_response: the handler's response could not be serialized ({err}); not recorded")
                });
                None
            }
        }
    }
}

/// [`CaptureProbe`] for a response that is not `Serialize`.
pub trait ViaNotSerialize {
    /// `None`, said once.
    fn xray_json(&self) -> Option<Json>;
}

impl<T: ?Sized> ViaNotSerialize for &CaptureProbe<'_, T> {
    fn xray_json(&self) -> Option<Json> {
        warn_once("capture_response not serialize", || {
            format!(
                "X-Ray: capture_response: the handler's response ({}) is not Serialize; not recorded",
                std::any::type_name::<T>()
            )
        });
        None
    }
}
