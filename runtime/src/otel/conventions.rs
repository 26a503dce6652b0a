//! Which RPC names an AWS call's span carries on the OpenTelemetry paths
//! (`OTEL_SEMCONV_STABILITY_OPT_IN`, as OpenTelemetry's instrumentations read it).
//!
//! The semantic conventions' AWS SDK page (1.44) still names `rpc.system` = `aws-api`,
//! `rpc.service` and a bare `rpc.method`, and the collector's X-Ray exporter (which makes such a
//! span an `aws` subsegment) and Application Signals (`aws.remote.service`/`operation`) read
//! only those. The RPC conventions since 1.39 name `rpc.system.name` and a fully qualified
//! `rpc.method` (`DynamoDB/GetItem`, as OpenTelemetry Go's `otelaws` writes it).

use opentelemetry::{KeyValue, Value};

use crate::vocabulary::{AWS_API, RPC_METHOD, RPC_SERVICE, RPC_SYSTEM};

/// The RPC conventions' name for the RPC system (semantic conventions 1.39 and later).
const RPC_SYSTEM_NAME: &str = "rpc.system.name";

/// The RPC names the OpenTelemetry paths write for an AWS call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum RpcConventions {
    /// Unset: the AWS SDK page's names, which X-Ray and Application Signals read.
    #[default]
    Aws,
    /// `rpc/dup`: those, and `rpc.system.name` beside them (`rpc.method` stays the bare
    /// operation that X-Ray's `aws.operation` and Application Signals read).
    Both,
    /// `rpc`: the RPC conventions' names only: `rpc.system.name` and `rpc.method` =
    /// `Service/Operation`, no `rpc.system` or `rpc.service`. The collector's X-Ray exporter
    /// then no longer sees an AWS call.
    Rpc,
}

impl RpcConventions {
    /// From `OTEL_SEMCONV_STABILITY_OPT_IN`'s comma-separated values: `rpc/dup` wins over
    /// `rpc`, as the conventions say; other areas' values (`http`, `database`) are not ours.
    pub(crate) fn parse(value: &str) -> Self {
        let mut chosen = RpcConventions::Aws;
        for name in value.split(',').map(str::trim) {
            if name.eq_ignore_ascii_case("rpc/dup") {
                return RpcConventions::Both;
            }
            if name.eq_ignore_ascii_case("rpc") {
                chosen = RpcConventions::Rpc;
            }
        }
        chosen
    }

    /// Rewrites the attributes of an AWS call's span (`rpc.system` = `aws-api`); any other
    /// span's stay as they are.
    pub(crate) fn apply(self, attributes: &mut Vec<KeyValue>) {
        if self == RpcConventions::Aws
            || !attributes
                .iter()
                .any(|kv| kv.key.as_str() == RPC_SYSTEM && kv.value.as_str() == AWS_API)
        {
            return;
        }
        if self == RpcConventions::Rpc {
            let service = take(attributes, RPC_SERVICE);
            let method = take(attributes, RPC_METHOD);
            take(attributes, RPC_SYSTEM);
            if let Some(method) = method {
                let qualified = match service {
                    Some(service) => format!("{}/{}", service.as_str(), method.as_str()),
                    None => method.as_str().into_owned(),
                };
                attributes.push(KeyValue::new(RPC_METHOD, qualified));
            }
        }
        attributes.push(KeyValue::new(RPC_SYSTEM_NAME, AWS_API));
    }
}

/// Removes attribute `key`; its value.
fn take(attributes: &mut Vec<KeyValue>, key: &str) -> Option<Value> {
    let at = attributes.iter().position(|kv| kv.key.as_str() == key)?;
    Some(attributes.remove(at).value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_call() -> Vec<KeyValue> {
        vec![
            KeyValue::new(RPC_SYSTEM, AWS_API),
            KeyValue::new(RPC_SERVICE, "DynamoDB"),
            KeyValue::new(RPC_METHOD, "GetItem"),
            KeyValue::new("aws.region", "eu-west-1"),
        ]
    }

    fn get<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn the_opt_in_chooses_as_the_conventions_say() {
        for (value, chosen) in [
            ("", RpcConventions::Aws),
            ("http,database", RpcConventions::Aws),
            ("rpc", RpcConventions::Rpc),
            (" http , RPC ", RpcConventions::Rpc),
            ("rpc/dup", RpcConventions::Both),
            // `rpc/dup` has precedence over `rpc`.
            ("rpc,rpc/dup", RpcConventions::Both),
            ("rpc/dup,rpc", RpcConventions::Both),
            ("rpcx", RpcConventions::Aws),
        ] {
            assert_eq!(RpcConventions::parse(value), chosen, "{value:?}");
        }
    }

    #[test]
    fn each_choice_writes_its_names() {
        let mut unchanged = aws_call();
        RpcConventions::Aws.apply(&mut unchanged);
        assert_eq!(unchanged, aws_call());

        let mut both = aws_call();
        RpcConventions::Both.apply(&mut both);
        assert_eq!(get(&both, RPC_SYSTEM_NAME), Some(&Value::from(AWS_API)));
        assert_eq!(get(&both, RPC_SYSTEM), Some(&Value::from(AWS_API)));
        assert_eq!(get(&both, RPC_SERVICE), Some(&Value::from("DynamoDB")));
        assert_eq!(get(&both, RPC_METHOD), Some(&Value::from("GetItem")));

        let mut rpc = aws_call();
        RpcConventions::Rpc.apply(&mut rpc);
        assert_eq!(get(&rpc, RPC_SYSTEM_NAME), Some(&Value::from(AWS_API)));
        assert_eq!(
            get(&rpc, RPC_METHOD),
            Some(&Value::from("DynamoDB/GetItem"))
        );
        assert_eq!(get(&rpc, RPC_SYSTEM), None);
        assert_eq!(get(&rpc, RPC_SERVICE), None);
        assert_eq!(get(&rpc, "aws.region"), Some(&Value::from("eu-west-1")));
    }

    #[test]
    fn spans_that_are_no_aws_call_keep_their_names() {
        let grpc = vec![
            KeyValue::new(RPC_SYSTEM, "grpc"),
            KeyValue::new(RPC_METHOD, "Echo"),
        ];
        for choice in [RpcConventions::Both, RpcConventions::Rpc] {
            let mut attributes = grpc.clone();
            choice.apply(&mut attributes);
            assert_eq!(attributes, grpc);
        }
    }
}
