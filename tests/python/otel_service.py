"""A downstream service instrumented with OpenTelemetry's Python SDK as its users set it up:
the default propagators (W3C `tracecontext,baggage`), a server span per request under the
context the request carries. Prints its port, serves until its stdin closes (the test binary
ends), and answers GET /spans with the spans it finished, as JSON.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("downstream")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/spans":
            body = json.dumps([
                {
                    "name": s.name,
                    "path": s.attributes.get("url.path"),
                    "trace_id": format(s.context.trace_id, "032x"),
                    "span_id": format(s.context.span_id, "016x"),
                    "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
                    "sampled": s.context.trace_flags.sampled,
                }
                for s in exporter.get_finished_spans()
            ]).encode()
        else:
            carrier = {k.lower(): v for k, v in self.headers.items()}
            with tracer.start_as_current_span(
                "downstream",
                context=propagate.extract(carrier),
                kind=trace.SpanKind.SERVER,
                attributes={"url.path": self.path},
            ):
                body = b"ok"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
