//! Which trace headers calls carry and read (`OTEL_PROPAGATORS`), chosen once by `init`.

use std::sync::OnceLock;

/// Which trace headers a call carries, as `OTEL_PROPAGATORS` names them: `xray` and
/// `xray-lambda` write `X-Amzn-Trace-Id`, `tracecontext` writes W3C's `traceparent`, `baggage`
/// W3C's `baggage` (an HTTP function's incoming entries, carried on by every call made under
/// the handler of a recorded invocation). Unset: `tracecontext,baggage,xray-lambda`,
/// what OpenTelemetry's conventions name for functions reporting to X-Ray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// One switch per name `OTEL_PROPAGATORS` lists, each on or off independently.
#[allow(clippy::struct_excessive_bools)]
pub(crate) struct Propagators {
    pub(crate) xray: bool,
    pub(crate) tracecontext: bool,
    pub(crate) baggage: bool,
    /// An incoming W3C `traceparent` is the handler's parent, Lambda's segment a link: the
    /// list has `tracecontext` but not `xray-lambda` (ADOT's `baggage,xray,tracecontext`,
    /// honoured so since aws-otel-python 0.18). Never on the daemon path (see [`choose`]).
    pub(crate) w3c_parent: bool,
}

impl Propagators {
    pub(crate) const DEFAULT: Propagators = Propagators {
        xray: true,
        tracecontext: true,
        baggage: true,
        w3c_parent: false,
    };

    /// `OTEL_PROPAGATORS`' value (comma-separated names, in any case); the names it does not
    /// know, to be logged. `none` alone carries nothing.
    pub(crate) fn parse(value: &str) -> (Propagators, Vec<String>) {
        let mut chosen = Propagators {
            xray: false,
            tracecontext: false,
            baggage: false,
            w3c_parent: false,
        };
        let mut unknown = Vec::new();
        let mut lambda_first = false;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "xray" => chosen.xray = true,
                "xray-lambda" => {
                    chosen.xray = true;
                    lambda_first = true;
                }
                "tracecontext" => chosen.tracecontext = true,
                "baggage" => chosen.baggage = true,
                "none" => {}
                _ => unknown.push(name.to_owned()),
            }
        }
        chosen.w3c_parent = chosen.tracecontext && !lambda_first;
        (chosen, unknown)
    }
}

static CHOSEN: OnceLock<Propagators> = OnceLock::new();

/// Chooses the propagators for the process (`init`, once; a later choice is ignored, as a
/// second pipeline is). To the X-Ray daemon (`segments`), Lambda's segment stays the parent
/// whatever the list says: a segment document hangs under the segment Lambda wrote, and X-Ray
/// rejects a trace id that is not X-Ray's own (a W3C id has no timestamp); `false` when that
/// overrides what the list asked.
pub(crate) fn choose(propagators: Propagators, segments: bool) -> bool {
    let (chosen, as_asked) = for_export(propagators, segments);
    let _ = CHOSEN.set(chosen);
    as_asked
}

/// What [`choose`] keeps of `propagators`, and whether that is what they asked.
fn for_export(mut propagators: Propagators, segments: bool) -> (Propagators, bool) {
    let as_asked = !(segments && propagators.w3c_parent);
    propagators.w3c_parent &= !segments;
    (propagators, as_asked)
}

/// The propagators `init` chose ([`Propagators::DEFAULT`] before).
pub(crate) fn propagators() -> Propagators {
    CHOSEN.get().copied().unwrap_or(Propagators::DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otel_propagators_choose_the_headers() {
        let chosen = |xray, tracecontext, w3c_parent| Propagators {
            xray,
            tracecontext,
            baggage: false,
            w3c_parent,
        };
        let with_baggage = |p: Propagators| Propagators { baggage: true, ..p };
        for (value, chosen, unknown) in [
            // ADOT's default in Lambda: an incoming traceparent is the parent.
            (
                "baggage,xray,tracecontext",
                with_baggage(chosen(true, true, true)),
                vec![],
            ),
            ("baggage", with_baggage(chosen(false, false, false)), vec![]),
            // The conventions' choice for X-Ray: Lambda's segment is.
            (
                "tracecontext,baggage,xray-lambda",
                Propagators::DEFAULT,
                vec![],
            ),
            (" TraceContext , XRAY ", chosen(true, true, true), vec![]),
            ("xray", chosen(true, false, false), vec![]),
            ("xray-lambda", chosen(true, false, false), vec![]),
            (
                "tracecontext,b3",
                chosen(false, true, true),
                vec!["b3".to_owned()],
            ),
            ("none", chosen(false, false, false), vec![]),
        ] {
            assert_eq!(Propagators::parse(value), (chosen, unknown), "{value}");
        }
    }

    #[test]
    fn segments_keep_lambdas_parent_and_say_so() {
        let (adot, _) = Propagators::parse("baggage,xray,tracecontext");
        let (kept, as_asked) = for_export(adot, true);
        assert!(!kept.w3c_parent && kept.tracecontext && kept.xray && !as_asked);
        assert_eq!(for_export(adot, false), (adot, true));
        assert_eq!(
            for_export(Propagators::DEFAULT, true),
            (Propagators::DEFAULT, true)
        );
    }
}
