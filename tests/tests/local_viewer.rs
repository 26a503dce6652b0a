//! A local OpenTelemetry viewer over OTLP, as docs/local.md tells users to run one:
//! the function exports with the standard `OTEL_EXPORTER_OTLP_*` variables to the viewer's
//! OTLP/HTTP endpoint, and the viewer's own API shows each invocation's spans under its trace,
//! nested as in X-Ray. The viewer is Arize Phoenix, the one that runs here (Jaeger, which
//! docs/local.md shows first, needs Docker); `.ci/run` installs it into `target/viewer-venv` and names
//! it in `XRAY_LAMBDA_PHOENIX`. The test skips with one line when there is no Phoenix (and
//! fails under `CI=true`).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use xray_lambda_tests::harness::{serve_test_handler, Lambda};
use xray_lambda_tests::watched::Watched;
use xray_lambda_tests::{new_trace_header, wait_until};

/// The `phoenix` command: `XRAY_LAMBDA_PHOENIX`, else `phoenix` on `PATH`.
fn phoenix() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("XRAY_LAMBDA_PHOENIX").map(PathBuf::from) {
        return path.exists().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("phoenix"))
        .find(|candidate| candidate.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `GET path` on loopback: the status and the body (HTTP/1.0, so the server closes).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Phoenix on loopback with its data in memory and nothing sent anywhere else, ready.
fn start_phoenix(program: &PathBuf, port: u16) -> Watched {
    let dir = std::env::temp_dir().join(format!("xray-lambda-phoenix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a working directory");
    let mut command = Command::new(program);
    command
        .arg("serve")
        .env("PHOENIX_HOST", "127.0.0.1")
        .env("PHOENIX_PORT", port.to_string())
        .env("PHOENIX_GRPC_PORT", free_port().to_string())
        .env("PHOENIX_WORKING_DIR", &dir)
        .env("PHOENIX_SQL_DATABASE_URL", "sqlite:///:memory:")
        .env("PHOENIX_TELEMETRY_ENABLED", "false")
        .env("PHOENIX_ALLOW_EXTERNAL_RESOURCES", "false");
    let log = dir.join("phoenix.log");
    let mut server = Watched::logging_to(&command, &log).expect("start phoenix");
    let printed = || std::fs::read_to_string(&log).unwrap_or_default();
    let up = wait_until(Duration::from_mins(2), || {
        assert!(server.exited().is_none(), "phoenix ended: {}", printed());
        get(port, "/healthz").map(|(status, _)| status) == Some(200)
    });
    assert!(up, "phoenix did not come up: {}", printed());
    server
}

/// The viewer's spans of the X-Ray trace `root`, waiting for `count`.
fn spans(port: u16, root: &str, count: usize) -> Vec<Value> {
    // The OTLP trace id is the X-Ray Root without its version and dashes.
    let trace_id: String = root.split('-').skip(1).collect();
    let mut found = Vec::new();
    wait_until(Duration::from_secs(10), || {
        found = get(
            port,
            &format!("/v1/projects/default/spans?trace_id={trace_id}"),
        )
        .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
        .and_then(|answer| answer["data"].as_array().cloned())
        .unwrap_or_default();
        found.len() >= count
    });
    found
}

#[test]
fn the_viewer_shows_each_invocation_nested_under_its_trace() {
    let Some(program) = phoenix() else {
        return xray_lambda_tests::skip(
            "no local OTLP viewer (Arize Phoenix) here; .ci/run installs it into target/viewer-venv",
        );
    };
    let port = free_port();
    let _viewer = start_phoenix(&program, port);
    let lambda = Lambda::start_with_env(
        "viewer-fn",
        2,
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ],
    );
    serve_test_handler();
    let mut cold = true;
    for _ in 0..3 {
        let ids = new_trace_header(Some("1"));
        let answer = lambda
            .invoke(
                &json!({"action": "ok", "depth": 1, "tag": ids.root}),
                Some(&ids.header),
            )
            .unwrap_response();
        assert_eq!(answer["tag"], ids.root.as_str());
        let found = spans(port, &ids.root, 3);
        let named =
            |name: &str| -> Vec<&Value> { found.iter().filter(|s| s["name"] == name).collect() };
        let (handler, steps) = (named("handler"), named("step"));
        assert_eq!((handler.len(), steps.len()), (1, 2), "{found:#?}");
        let handler = handler[0];
        // Under Lambda's segment (the header's Parent), then nested as in X-Ray.
        assert_eq!(handler["parent_id"], ids.parent.as_str(), "{handler:#}");
        let handler_id = &handler["context"]["span_id"];
        let outer = steps
            .iter()
            .find(|s| s["parent_id"] == *handler_id)
            .unwrap_or_else(|| panic!("no step under the handler: {found:#?}"));
        assert!(
            steps
                .iter()
                .any(|s| s["parent_id"] == outer["context"]["span_id"]),
            "{found:#?}"
        );
        // What the handler recorded is there to read: its annotations, as the collector's
        // X-Ray exporter would take them.
        let attributes = &handler["attributes"];
        assert_eq!(attributes["Service"], "viewer-fn", "{handler:#}");
        assert_eq!(attributes["ColdStart"], cold, "{handler:#}");
        assert!(
            attributes["aws.xray.annotations"]
                .as_array()
                .is_some_and(|keys| keys.contains(&json!("Service"))),
            "{handler:#}"
        );
        cold = false;
    }
    // The function's runtime polls its API until the process exits.
    std::mem::forget(lambda);
}
