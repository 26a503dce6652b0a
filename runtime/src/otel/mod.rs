//! Records as OpenTelemetry spans: what the OTLP paths send (to a collector, and to Lambda's
//! own OpenTelemetry endpoint). `mapping` renders a record's facts the way X-Ray reads a span,
//! `app_signals` adds what Application Signals reads, `conventions` the RPC names chosen, `protobuf` writes OTLP's wire format
//! for the endpoint (the collector's exporter has its own).

mod app_signals;
mod conventions;
pub(crate) mod mapping;
pub(crate) mod protobuf;

pub(crate) use app_signals::AppSignals;
pub(crate) use conventions::RpcConventions;
