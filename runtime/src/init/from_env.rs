//! Where traces go, as the environment says.

use super::Export;
use crate::environment::LambdaEnvironment;
use crate::notices::Notice;
use crate::sink::daemon::parse_daemon_address;

/// Where traces go, from the environment; what is wrong with it goes into `notices`.
pub(super) fn export_from_env(
    environment: &LambdaEnvironment,
    var: &dyn Fn(&str) -> Option<String>,
    notices: &mut Vec<Notice>,
) -> Export {
    let is_true = |name: &str| {
        var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
    };
    if is_true("AWS_XRAY_SDK_DISABLED") || is_true("POWERTOOLS_TRACE_DISABLED") {
        return Export::Disabled;
    }
    if let Some(export) = otel_export(environment, var, notices) {
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
    var: &dyn Fn(&str) -> Option<String>,
    notices: &mut Vec<Notice>,
) -> Option<Export> {
    let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let otlp = |notices: &mut Vec<Notice>| {
        if environment.in_lambda && !endpoint {
            return Some(
                match environment
                    .daemon_address
                    .as_deref()
                    .map(parse_daemon_address)
                {
                    // Lambda serves the endpoint only with Active tracing on.
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
                },
            );
        }
        #[cfg(feature = "otlp")]
        {
            Some(Export::Otlp(crate::sink::otlp::Otlp::from_vars(
                var, notices,
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
    match var("OTEL_TRACES_EXPORTER").map(|v| v.trim().to_ascii_lowercase()) {
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

#[cfg(test)]
mod tests {
    #[test]
    fn otel_variables_choose_the_export() {
        use super::otel_export;
        use crate::init::Export;
        let with = |vars: &'static [(&'static str, &'static str)]| {
            otel_export(
                &crate::environment::LambdaEnvironment::default(),
                &move |name| {
                    vars.iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| (*v).to_owned())
                },
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
                &|name| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_owned()),
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
