//! Which trace headers calls carry and read (`OTEL_PROPAGATORS`), chosen once by `init`.

use std::sync::OnceLock;

/// Which trace headers a call carries, as `OTEL_PROPAGATORS` names them: `xray` and
/// `xray-lambda` write `X-Amzn-Trace-Id`, `tracecontext` writes W3C's `traceparent`
/// (`baggage` is accepted, and carries nothing yet). Unset: `tracecontext,baggage,xray-lambda`,
/// what OpenTelemetry's conventions name for functions reporting to X-Ray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Propagators {
    pub(crate) xray: bool,
    pub(crate) tracecontext: bool,
}

impl Propagators {
    pub(crate) const DEFAULT: Propagators = Propagators {
        xray: true,
        tracecontext: true,
    };

    /// `OTEL_PROPAGATORS`' value (comma-separated names, in any case); the names it does not
    /// know, to be logged. `none` alone carries nothing.
    pub(crate) fn parse(value: &str) -> (Propagators, Vec<String>) {
        let mut chosen = Propagators {
            xray: false,
            tracecontext: false,
        };
        let mut unknown = Vec::new();
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "xray" | "xray-lambda" => chosen.xray = true,
                "tracecontext" => chosen.tracecontext = true,
                "baggage" | "none" => {}
                _ => unknown.push(name.to_owned()),
            }
        }
        (chosen, unknown)
    }
}

static CHOSEN: OnceLock<Propagators> = OnceLock::new();

/// Chooses the propagators for the process (`init`, once; a later choice is ignored, as a
/// second pipeline is).
pub(crate) fn choose(propagators: Propagators) {
    let _ = CHOSEN.set(propagators);
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
        let both = Propagators {
            xray: true,
            tracecontext: true,
        };
        for (value, chosen, unknown) in [
            // ADOT's default in Lambda, and the conventions' choice for X-Ray.
            ("baggage,xray,tracecontext", both, vec![]),
            ("tracecontext,baggage,xray-lambda", both, vec![]),
            (" TraceContext , XRAY ", both, vec![]),
            (
                "xray",
                Propagators {
                    xray: true,
                    tracecontext: false,
                },
                vec![],
            ),
            (
                "tracecontext,b3",
                Propagators {
                    xray: false,
                    tracecontext: true,
                },
                vec!["b3".to_owned()],
            ),
            (
                "none",
                Propagators {
                    xray: false,
                    tracecontext: false,
                },
                vec![],
            ),
        ] {
            assert_eq!(Propagators::parse(value), (chosen, unknown), "{value}");
        }
    }
}
