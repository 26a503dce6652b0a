#!/usr/bin/env python3
"""Reference datagrams from AWS's OpenTelemetry distro (ADOT Python) for the
Lambda span endpoint (`AWS_XRAY_DAEMON_ADDRESS`, UDP).

Reads a JSON document that describes spans on stdin. Builds real
opentelemetry-sdk spans with exactly the given ids, times, attributes and so on.
Runs them through the span processors and exporters that ADOT sets up inside
Lambda, sends them to a UDP socket that this script binds on 127.0.0.1, and
prints what arrived. Needs the PyPI package `aws-opentelemetry-distro` (tested
with 0.21.0, opentelemetry-sdk 1.44.0):

    python3 -m venv target/adot-venv
    target/adot-venv/bin/pip install aws-opentelemetry-distro
    target/adot-venv/bin/python tests/adot/reference_datagram.py < tests/adot/example_input.json

Options: `--text` also writes each decoded payload (protobuf text format,
trace/span ids shown as hex text) to stderr. `--decode` adds "decoded" (the payload as OTLP JSON, proto field names)
to each output entry.

Output (stdout): a JSON array with one entry per datagram, in the order received:
    {"header": "<text before the first newline>",
     "prefix": "T1S" | "T1U",
     "size": <datagram size in bytes>,
     "payload_base64": "<the base64 text after the prefix>"}

Input schema (every key is optional unless marked *):
{
  "sdk": "full" | "lite",       default "full".
      "full": the ADOT SDK path that the Lambda layer uses by default
        (opentelemetry-instrument + aws_opentelemetry_configurator). The script
        calls ADOT's own _customize_span_exporter / _customize_span_processors
        and _span_export_batch_size, as _init_tracing does: sampled spans go
        through BatchSpanProcessor(max_export_batch_size=10) to
        OTLPUdpSpanExporter(sampled=True) -> "T1S". Unsampled spans are exported
        only when app_signals is on (BatchUnsampledSpanProcessor ->
        OTLPUdpSpanExporter(sampled=False) -> "T1U"); otherwise ADOT drops them.
      "lite": opentelemetry_lite_sdk (layer with OTEL_AWS_LAMBDA_FAST_START=true):
        BatchingSpanProcessor + UdpSpanExporter. All spans go in ONE datagram
        (no 10-span cap), prefix from the first span's sampled flag, the
        lite SDK's own protobuf encoder, links are dropped.
  "app_signals": bool,          default false. Sets
      OTEL_AWS_APPLICATION_SIGNALS_ENABLED=true (the Lambda layer's default) so
      ADOT adds its Application Signals attributes: "full" ->
      AttributePropagatingSpanProcessor (on span start) +
      AwsMetricAttributesSpanExporter with _AwsMetricAttributeGenerator (on
      export); "lite" -> UdpSpanExporter._inject_app_signals_attributes.
  "lambda_env": {"NAME": "value", ...}
      Environment variables to set first (all OTEL_* and AWS_* variables
      inherited by this script are removed beforehand). AWS_LAMBDA_FUNCTION_NAME
      defaults to the resource's faas.name or "function". ADOT reads it to detect
      Lambda and for aws.local.operation = "<name>/FunctionHandler".
      AWS_XRAY_DAEMON_ADDRESS is always set by the script to its own socket.
  "resource_from_env": bool,    default false. Build the resource the way ADOT
      does in Lambda, from lambda_env as the layer's `otel-instrument` script
      sets it: OTEL_SERVICE_NAME defaults to AWS_LAMBDA_FUNCTION_NAME;
      OTEL_RESOURCE_ATTRIBUTES = "cloud.region=$AWS_REGION,
      cloud.platform=aws_lambda,cloud.provider=aws,faas.name=...,
      faas.version=$AWS_LAMBDA_FUNCTION_VERSION,
      faas.instance=$AWS_LAMBDA_LOG_STREAM_NAME,
      aws.log.group.names=$AWS_LAMBDA_LOG_GROUP_NAME" (+ any given
      OTEL_RESOURCE_ATTRIBUTES). "full" then calls
      aws_opentelemetry_configurator._customize_resource(...) exactly as
      _initialize_components does (adds telemetry.sdk.*, service.instance.id =
      random UUID per process, telemetry.auto.version, aws.local.service);
      "lite" calls opentelemetry_lite_sdk._build_lambda_resource().
  "resource": {"key": value, ...}
      Resource attributes; merged over the env-built resource when
      resource_from_env is true (e.g. to pin service.instance.id), otherwise the
      whole resource.
  "resource_schema_url": "...",   default "" ("full" only).
  "spans"*: [
    {
      "trace_id"*: "32 hex digits",
      "span_id"*: "16 hex digits",
      "parent_span_id": "16 hex digits" | null,  default null (root)
      "parent_is_remote": bool,   default: true when the parent is not one of
          the given spans (e.g. the Lambda invocation's X-Ray parent), else false
      "name"*: "...",
      "kind": "INTERNAL" | "SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER",
          default "INTERNAL"
      "start_time_unix_nano"*: int,
      "end_time_unix_nano"*: int,
      "sampled": bool,            default true
      "trace_state": "k1=v1,k2=v2",  default none
      "attributes": {"key": value}, value: string | bool | int | float |
          array of one of those (JSON 1 is an int, 1.0 a float)
      "status": {"code": "UNSET" | "OK" | "ERROR", "description": "..."},
          default UNSET (the SDK keeps a description only with ERROR)
      "events": [{"name"*: "...", "time_unix_nano"*: int, "attributes": {}}],
      "links": [{"trace_id"*: "...", "span_id"*: "...", "sampled": true,
                 "is_remote": true, "trace_state": "...", "attributes": {}}],
      "scope": {"name": "...", "version": "...", "schema_url": "...",
                "attributes": {}},   default {"name": ""}
    }, ...
  ]
}

Spans start in start_time order (parents before children on ties) and end in
end_time order (children before parents on ties), as a real program would
start and end them; ADOT's processors see them in that order.
"""

import base64
import json
import os
import socket
import sys
import time

PROTOCOL_HEADER = '{"format":"json","version":1}'

_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")


def _fail(msg):
    sys.stderr.write("reference_datagram: " + msg + "\n")
    sys.exit(2)


def _hex_id(value, digits, what):
    if not isinstance(value, str) or len(value) != digits:
        _fail("%s must be %d hex digits, got %r" % (what, digits, value))
    try:
        return int(value, 16)
    except ValueError:
        _fail("%s must be hex, got %r" % (what, value))
    return None


def _attr_value(key, value):
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, (str, bool, int, float)):
                _fail("attribute %r: array items must be scalars" % key)
        return list(value)
    _fail("attribute %r: unsupported value %r" % (key, value))
    return None


def _attrs(mapping):
    return {k: _attr_value(k, v) for k, v in (mapping or {}).items()}


def _prepare_env(doc, endpoint):
    for name in list(os.environ):
        if name.startswith("OTEL_") or name.startswith("AWS_") or name in (
            "LAMBDA_APPLICATION_SIGNALS_REMOTE_ENVIRONMENT",
            "ORIG_HANDLER",
            "_HANDLER",
        ):
            del os.environ[name]
    env = dict(doc.get("lambda_env") or {})
    if "AWS_LAMBDA_FUNCTION_NAME" not in env:
        env["AWS_LAMBDA_FUNCTION_NAME"] = str((doc.get("resource") or {}).get("faas.name", "function"))
    for name, value in env.items():
        os.environ[name] = str(value)
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = endpoint
    if doc.get("app_signals"):
        os.environ["OTEL_AWS_APPLICATION_SIGNALS_ENABLED"] = "true"
    else:
        os.environ["OTEL_AWS_APPLICATION_SIGNALS_ENABLED"] = "false"
    if doc.get("resource_from_env"):
        # What lambda-layer/src/otel-instrument exports before Python starts.
        fn = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        if not os.environ.get("OTEL_SERVICE_NAME"):
            os.environ["OTEL_SERVICE_NAME"] = fn
        lambda_attrs = (
            "cloud.region=%s,cloud.platform=aws_lambda,cloud.provider=aws,faas.name=%s,"
            "faas.version=%s,faas.instance=%s,aws.log.group.names=%s"
            % (
                os.environ.get("AWS_REGION", ""),
                fn,
                os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", ""),
                os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
                os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            )
        )
        user = os.environ.get("OTEL_RESOURCE_ATTRIBUTES")
        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = lambda_attrs + ("," + user if user else "")


def _order(specs):
    """Returns (start order, end order) as lists of indexes into specs."""
    by_id = {s["span_id"]: i for i, s in enumerate(specs)}

    def depth(i, seen=()):
        parent = specs[i].get("parent_span_id")
        if parent is None or parent not in by_id or i in seen:
            return 0
        return 1 + depth(by_id[parent], seen + (i,))

    depths = [depth(i) for i in range(len(specs))]
    starts = sorted(range(len(specs)), key=lambda i: (specs[i]["start_time_unix_nano"], depths[i], i))
    ends = sorted(range(len(specs)), key=lambda i: (specs[i]["end_time_unix_nano"], -depths[i], i))
    return starts, ends, by_id


def _check_spans(doc):
    specs = doc.get("spans")
    if not isinstance(specs, list) or not specs:
        _fail('"spans" must be a non-empty array')
    for s in specs:
        for key in ("trace_id", "span_id", "name", "start_time_unix_nano", "end_time_unix_nano"):
            if key not in s:
                _fail("span %r lacks %r" % (s.get("name"), key))
        _hex_id(s["trace_id"], 32, "trace_id")
        _hex_id(s["span_id"], 16, "span_id")
        if s.get("parent_span_id") is not None:
            _hex_id(s["parent_span_id"], 16, "parent_span_id")
        if s.get("kind", "INTERNAL") not in _KINDS:
            _fail("span %r: kind must be one of %s" % (s["name"], ", ".join(_KINDS)))
    return specs


def _run_full(doc, specs):
    # pylint: disable=import-outside-toplevel
    from amazon.opentelemetry.distro import aws_opentelemetry_configurator as conf
    from amazon.opentelemetry.distro.attribute_redacting_span_processor import AttributeRedactingSpanProcessor
    from opentelemetry import trace as trace_api
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource, get_aggregated_resources
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider, _Span
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
    from opentelemetry.trace.status import Status, StatusCode

    if doc.get("resource_from_env"):
        # aws_opentelemetry_configurator._initialize_components, Lambda branch (no detectors).
        resource = conf._customize_resource(
            get_aggregated_resources([]).merge(Resource.create(conf._customize_versions({})))
        )
        if doc.get("resource"):
            resource = resource.merge(Resource(_attrs(doc["resource"]), doc.get("resource_schema_url")))
    else:
        resource = Resource(_attrs(doc.get("resource")), doc.get("resource_schema_url"))

    if not conf._is_lambda_environment():
        _fail("AWS_LAMBDA_FUNCTION_NAME is not set")

    # aws_opentelemetry_configurator._init_tracing, with the default sampler
    # (spans are built directly below, so the sampler never runs).
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(AttributeRedactingSpanProcessor())
    span_exporter = conf._customize_span_exporter(OTLPSpanExporter(), resource, None)
    provider.add_span_processor(
        BatchSpanProcessor(
            span_exporter=span_exporter,
            max_export_batch_size=conf._span_export_batch_size(),
            schedule_delay_millis=3_600_000,
        )
    )
    conf._customize_span_processors(provider, resource, None)
    processor = provider._active_span_processor  # pylint: disable=protected-access

    starts, ends, by_id = _order(specs)
    spans = [None] * len(specs)
    for i in starts:
        s = specs[i]
        trace_id = _hex_id(s["trace_id"], 32, "trace_id")
        flags = TraceFlags(TraceFlags.SAMPLED if s.get("sampled", True) else TraceFlags.DEFAULT)
        trace_state = TraceState.from_header([s["trace_state"]]) if s.get("trace_state") else None
        ctx = SpanContext(trace_id, _hex_id(s["span_id"], 16, "span_id"), False, flags, trace_state)
        parent = None
        parent_context = None
        pid = s.get("parent_span_id")
        if pid is not None:
            local = by_id.get(pid)
            if local is not None and spans[local] is not None and not s.get("parent_is_remote", False):
                parent = spans[local].get_span_context()
                parent_context = trace_api.set_span_in_context(spans[local])
            else:
                parent = SpanContext(
                    trace_id, _hex_id(pid, 16, "parent_span_id"), s.get("parent_is_remote", True), flags, trace_state
                )
                parent_context = trace_api.set_span_in_context(trace_api.NonRecordingSpan(parent))
        links = []
        for link in s.get("links") or []:
            lflags = TraceFlags(TraceFlags.SAMPLED if link.get("sampled", True) else TraceFlags.DEFAULT)
            lstate = TraceState.from_header([link["trace_state"]]) if link.get("trace_state") else None
            lctx = SpanContext(
                _hex_id(link["trace_id"], 32, "link trace_id"),
                _hex_id(link["span_id"], 16, "link span_id"),
                link.get("is_remote", True),
                lflags,
                lstate,
            )
            links.append(Link(lctx, _attrs(link.get("attributes"))))
        scope = s.get("scope") or {}
        # _Span is what Tracer.start_span instantiates (sdk.trace.Span refuses direct use).
        span = _Span(
            name=s["name"],
            context=ctx,
            parent=parent,
            resource=resource,
            limits=SpanLimits(),
            attributes=_attrs(s.get("attributes")),
            links=links,
            kind=SpanKind[s.get("kind", "INTERNAL")],
            span_processor=processor,
            instrumentation_scope=InstrumentationScope(
                scope.get("name", ""),
                scope.get("version") or None,
                scope.get("schema_url") or None,
                _attrs(scope.get("attributes")) or None,
            ),
        )
        span.start(start_time=s["start_time_unix_nano"], parent_context=parent_context)
        spans[i] = span

    for i in range(len(specs)):
        s = specs[i]
        for event in s.get("events") or []:
            spans[i].add_event(event["name"], _attrs(event.get("attributes")), event["time_unix_nano"])
        status = s.get("status") or {}
        code = StatusCode[status.get("code", "UNSET")]
        if code is not StatusCode.UNSET:
            spans[i].set_status(Status(code, status.get("description")))
    for i in ends:
        spans[i].end(end_time=specs[i]["end_time_unix_nano"])

    provider.force_flush()
    provider.shutdown()


def _run_lite(doc, specs):
    # pylint: disable=import-outside-toplevel
    from amazon.opentelemetry.distro import opentelemetry_lite_sdk as lite
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState
    from opentelemetry.trace.status import Status, StatusCode

    if doc.get("resource_from_env"):
        resource = lite._build_lambda_resource()  # pylint: disable=protected-access
        resource.update(_attrs(doc.get("resource")))
    else:
        resource = _attrs(doc.get("resource"))

    # opentelemetry_lite_sdk.configure_lite_mode, without instrumentations.
    provider = lite.TracerProvider(resource=resource)
    provider.add_span_processor(
        lite.BatchingSpanProcessor(lite.UdpSpanExporter(endpoint=os.environ["AWS_XRAY_DAEMON_ADDRESS"]))
    )

    starts, ends, by_id = _order(specs)
    spans = [None] * len(specs)
    for i in starts:
        s = specs[i]
        trace_id = _hex_id(s["trace_id"], 32, "trace_id")
        flags = TraceFlags(TraceFlags.SAMPLED if s.get("sampled", True) else TraceFlags.DEFAULT)
        trace_state = TraceState.from_header([s["trace_state"]]) if s.get("trace_state") else None
        ctx = SpanContext(trace_id, _hex_id(s["span_id"], 16, "span_id"), False, flags, trace_state)
        parent = None
        pid = s.get("parent_span_id")
        if pid is not None:
            local = by_id.get(pid)
            remote = s.get("parent_is_remote", local is None)
            parent = SpanContext(trace_id, _hex_id(pid, 16, "parent_span_id"), remote, flags, trace_state)
        scope = s.get("scope") or {}
        span = lite.Span(
            name=s["name"],
            context=ctx,
            parent=parent,
            resource=resource,
            attributes=_attrs(s.get("attributes")),
            kind=SpanKind[s.get("kind", "INTERNAL")],
            span_processor=provider,
            instrumentation_scope=lite.InstrumentationScope(
                scope.get("name", ""),
                scope.get("version") or "",
                scope.get("schema_url"),
                _attrs(scope.get("attributes")),
            ),
        )
        span.start(start_time=s["start_time_unix_nano"])
        spans[i] = span
    for i in range(len(specs)):
        s = specs[i]
        for event in s.get("events") or []:
            spans[i].add_event(event["name"], _attrs(event.get("attributes")), event["time_unix_nano"])
        status = s.get("status") or {}
        code = StatusCode[status.get("code", "UNSET")]
        if code is not StatusCode.UNSET:
            spans[i].set_status(Status(code, status.get("description")))
    for i in ends:
        spans[i].end(end_time=specs[i]["end_time_unix_nano"])
    provider.force_flush()
    provider.shutdown()


def _receive(sock):
    datagrams = []
    sock.settimeout(0.5)
    while True:
        try:
            data, _ = sock.recvfrom(1 << 17)
        except socket.timeout:
            return datagrams
        datagrams.append(data)


def main(argv):
    text = "--text" in argv
    decode = "--decode" in argv
    doc = json.load(sys.stdin)
    specs = _check_spans(doc)
    sdk = doc.get("sdk", "full")
    if sdk not in ("full", "lite"):
        _fail('"sdk" must be "full" or "lite"')

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    endpoint = "127.0.0.1:%d" % sock.getsockname()[1]
    _prepare_env(doc, endpoint)

    if sdk == "full":
        _run_full(doc, specs)
    else:
        _run_lite(doc, specs)
    time.sleep(0.05)
    datagrams = _receive(sock)
    sock.close()

    out = []
    for data in datagrams:
        message = data.decode("utf-8")
        header, _, body = message.partition("\n")
        prefix = body[:3]
        payload = body[3:]
        entry = {"header": header, "prefix": prefix, "size": len(data), "payload_base64": payload}
        if decode or text:
            # pylint: disable=import-outside-toplevel
            from google.protobuf import json_format, text_format
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

            request = ExportTraceServiceRequest()
            request.ParseFromString(base64.b64decode(payload, validate=True))
            if decode:
                entry["decoded"] = json_format.MessageToDict(request, preserving_proto_field_name=True)
            if text:
                # Ids shown as hex text for reading (the wire has raw bytes).
                readable = ExportTraceServiceRequest()
                readable.CopyFrom(request)
                for rs in readable.resource_spans:
                    for ss in rs.scope_spans:
                        for sp in ss.spans:
                            sp.trace_id = sp.trace_id.hex().encode()
                            sp.span_id = sp.span_id.hex().encode()
                            sp.parent_span_id = sp.parent_span_id.hex().encode()
                            for ln in sp.links:
                                ln.trace_id = ln.trace_id.hex().encode()
                                ln.span_id = ln.span_id.hex().encode()
                sys.stderr.write("# datagram %d: %s %s, %d bytes\n" % (len(out) + 1, header, prefix, len(data)))
                sys.stderr.write(text_format.MessageToString(readable))
        out.append(entry)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if not out:
        sys.stderr.write("reference_datagram: no datagram received (ADOT exported nothing)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
