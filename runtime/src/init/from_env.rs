//! Where traces go, as the environment says.

use super::Export;
use crate::environment::{LambdaEnvironment, Vars};
use crate::notices::Notice;
use crate::propagators::Propagators;
use crate::sink::daemon::parse_daemon_address;
use crate::state::Capture;

/// Where traces go, from the environment; what is wrong with it goes into `notices`.
pub(super) fn export_from_env(
    environment: &LambdaEnvironment,
    vars: Vars<'_>,
    notices: &mut Vec<Notice>,
) -> Export {
    if vars.flag("AWS_XRAY_SDK_DISABLED") || vars.flag("POWERTOOLS_TRACE_DISABLED") {
        return Export::Disabled;
    }
    if let Some(export) = otel_export(environment, vars, notices) {
        return export;
    }
    if let Some(address) = &environment.daemon_address {
        return match parse_daemon_address(address) {
            Ok(address) => Export::Daemon(address),
            Err(err) => {
                notices.push(Notice::warning(format!(
                    "X-Ray: {err}; traces are not sent"
                )));
                Export::Disabled
            }
        };
    }
    if environment.in_lambda {
        // In Lambda without Active tracing there is no daemon, and a tree per invocation in
        // the function's log would be paid for at CloudWatch's price. (`cargo lambda watch`
        // serves a Runtime API too, but sets no `LAMBDA_TASK_ROOT`: there the tree is printed.)
        notices.push(Notice::info(
            "X-Ray: AWS_XRAY_DAEMON_ADDRESS is not set (Active tracing is off for this function); traces are not recorded".to_owned(),
        ));
        return Export::Disabled;
    }
    Export::Stderr
}

/// The export the `OTEL_*` variables ask for, if they ask: as ADOT decides, in Lambda
/// `OTEL_TRACES_EXPORTER=otlp` without an endpoint sends to Lambda's OpenTelemetry endpoint
/// at the daemon's address; with one, to a collector.
fn otel_export(
    environment: &LambdaEnvironment,
    vars: Vars<'_>,
    notices: &mut Vec<Notice>,
) -> Option<Export> {
    let endpoint = vars
        .first(&[
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ])
        .is_some();
    let otlp = |notices: &mut Vec<Notice>| {
        if environment.in_lambda && !endpoint {
            return Some(lambda_endpoint(environment, notices));
        }
        #[cfg(feature = "otlp")]
        {
            Some(Export::Otlp(crate::sink::otlp::Otlp::from_vars(
                vars, notices,
            )))
        }
        #[cfg(not(feature = "otlp"))]
        {
            notices.push(Notice::warning(
                "X-Ray: OTLP export was asked for, but xray-lambda was built without its `otlp` feature; it is ignored".to_owned(),
            ));
            None
        }
    };
    match vars
        .get("OTEL_TRACES_EXPORTER")
        .map(|v| v.to_ascii_lowercase())
    {
        Some(v) if v == "otlp" => otlp(notices),
        Some(v) if v == "none" => Some(Export::Disabled),
        Some(v) if v == "console" => Some(Export::Stderr),
        Some(other) => {
            notices.push(Notice::warning(format!(
                "X-Ray: OTEL_TRACES_EXPORTER={other:?} is not one of otlp, none, console; it is ignored"
            )));
            None
        }
        None if endpoint => otlp(notices),
        None => None,
    }
}

/// Lambda's OpenTelemetry endpoint, at the daemon's address: Lambda serves it only with
/// Active tracing on.
fn lambda_endpoint(environment: &LambdaEnvironment, notices: &mut Vec<Notice>) -> Export {
    match environment
        .daemon_address
        .as_deref()
        .map(parse_daemon_address)
    {
        None => {
            notices.push(Notice::info(
                "X-Ray: AWS_XRAY_DAEMON_ADDRESS is not set (Active tracing is off for this function), so Lambda's OpenTelemetry endpoint is not there; traces are not recorded".to_owned(),
            ));
            Export::Disabled
        }
        Some(Ok(address)) => Export::OtlpUdp(address),
        Some(Err(err)) => {
            notices.push(Notice::warning(format!(
                "X-Ray: {err}; traces are not sent"
            )));
            Export::Disabled
        }
    }
}

/// The trace headers calls carry, from `OTEL_PROPAGATORS`; a name it does not know goes into
/// `notices`.
pub(super) fn propagators_from_env(vars: Vars<'_>, notices: &mut Vec<Notice>) -> Propagators {
    let Some(value) = vars.get("OTEL_PROPAGATORS") else {
        return Propagators::DEFAULT;
    };
    let (propagators, unknown) = Propagators::parse(&value);
    if !unknown.is_empty() {
        notices.push(Notice::warning(format!(
            "X-Ray: OTEL_PROPAGATORS names {} unknown here (known: tracecontext, baggage, xray, xray-lambda, none); ignored",
            unknown.join(", ")
        )));
    }
    propagators
}

/// What handlers capture by default, from `POWERTOOLS_TRACER_CAPTURE_RESPONSE` and
/// `POWERTOOLS_TRACER_CAPTURE_ERROR` (the one truthiness rule; unset: the defaults).
pub(super) fn capture_from_env(vars: Vars<'_>) -> Capture {
    Capture {
        response: vars.flag_or(
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
            Capture::DEFAULT.response,
        ),
        error: vars.flag_or("POWERTOOLS_TRACER_CAPTURE_ERROR", Capture::DEFAULT.error),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn powertools_variables_choose_what_handlers_capture() {
        use crate::state::Capture;
        let with = |vars: &'static [(&'static str, &'static str)]| {
            super::capture_from_env(crate::environment::Vars::new(&move |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }))
        };
        assert_eq!(with(&[]), Capture::DEFAULT);
        const { assert!(!Capture::DEFAULT.response && Capture::DEFAULT.error) };
        let both = with(&[
            ("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "TRUE"),
            ("POWERTOOLS_TRACER_CAPTURE_ERROR", "false"),
        ]);
        assert!(both.response && !both.error);
        // Blank is unset: the default stands.
        assert_eq!(
            with(&[("POWERTOOLS_TRACER_CAPTURE_ERROR", "  ")]),
            Capture::DEFAULT
        );
        assert!(with(&[("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "1")]).response);
    }

    #[test]
    fn an_unknown_propagator_is_said_once_and_ignored() {
        let mut notices = Vec::new();
        let vars = |value: &'static str| {
            crate::environment::Vars::new(Box::leak(Box::new(move |name: &str| {
                (name == "OTEL_PROPAGATORS").then(|| value.to_owned())
            })))
        };
        let chosen = super::propagators_from_env(vars("xray,jaeger"), &mut notices);
        assert!(chosen.xray && !chosen.tracecontext);
        assert_eq!(notices.len(), 1);
        assert!(
            format!("{:?}", notices[0]).contains("jaeger"),
            "{notices:?}"
        );
        let unset =
            super::propagators_from_env(crate::environment::Vars::new(&|_| None), &mut notices);
        assert_eq!(unset, crate::propagators::Propagators::DEFAULT);
        assert_eq!(notices.len(), 1);
    }

    #[test]
    fn otel_variables_choose_the_export() {
        use super::otel_export;
        use crate::init::Export;
        let with = |vars: &'static [(&'static str, &'static str)]| {
            otel_export(
                &crate::environment::LambdaEnvironment::default(),
                crate::environment::Vars::new(&move |name| {
                    vars.iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| (*v).to_owned())
                }),
                &mut Vec::new(),
            )
        };
        assert_eq!(with(&[]), None);
        assert_eq!(
            with(&[("OTEL_TRACES_EXPORTER", "none")]),
            Some(Export::Disabled)
        );
        assert_eq!(
            with(&[("OTEL_TRACES_EXPORTER", "Console")]),
            Some(Export::Stderr)
        );
        assert_eq!(with(&[("OTEL_TRACES_EXPORTER", "zipkin")]), None);
        #[cfg(feature = "otlp")]
        {
            let grpc = crate::sink::otlp::Otlp::from_vars(
                crate::environment::Vars::new(&|name| {
                    (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_owned())
                }),
                &mut Vec::new(),
            );
            assert_eq!(
                with(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ]),
                Some(Export::Otlp(grpc))
            );
            assert!(matches!(
                with(&[("OTEL_TRACES_EXPORTER", "otlp")]),
                Some(Export::Otlp(_))
            ));
        }
        #[cfg(not(feature = "otlp"))]
        assert_eq!(with(&[("OTEL_TRACES_EXPORTER", "otlp")]), None);
    }
}
