//! `cargo lambda` as a real client: the emulator that `cargo lambda watch` serves hands the
//! `hello` function trace headers of its own, and `cargo lambda invoke` invokes it. Each
//! invocation's trace must hang under the header cargo-lambda sent — seen on the wire by a tap
//! between the function and the emulator — in the printed waterfall and, with a daemon address,
//! in the UDP documents.
//!
//! The emulator runs with `--only-lambda-apis` and the `hello` binary this build made: plain
//! `watch` would `cargo run` the function itself, a second build of the workspace with other
//! features. What the function sees is the same: the emulator's Runtime API and the
//! environment `watch` sets (listed in `function`).

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use xray_lambda_tests::daemon::{flatten, Daemon};
use xray_lambda_tests::moto::{create_table, Moto};
use xray_lambda_tests::proxy::{self, Answered, Fault, Requests};
use xray_lambda_tests::wait_until;
use xray_lambda_tests::watched::Watched;

/// `cargo lambda --version`, when cargo-lambda is installed.
fn cargo_lambda() -> Option<String> {
    let out = Command::new("cargo")
        .args(["lambda", "--version"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A file of this test run's, for a child's stderr.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xray-lambda-cargo-lambda-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir.join(name)
}

/// What the function printed on `log`, once it has printed `trees` waterfalls (at most 10 s).
fn printed_trees(log: &Path, trees: usize) -> String {
    let mut printed = String::new();
    wait_until(Duration::from_secs(10), || {
        printed = read(log);
        printed.matches("X-Ray trace ").count() >= trees
    });
    printed
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// `cargo lambda watch --only-lambda-apis` on a free port, up and accepting.
fn emulator() -> (Watched, u16) {
    let port = free_port();
    let log = scratch("watch.log");
    let mut command = Command::new("cargo");
    command
        .args(["lambda", "watch", "--only-lambda-apis"])
        .args(["--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &port.to_string()])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let mut watch = Watched::logging_to(&command, &log).expect("start cargo lambda watch");
    let listening = wait_until(Duration::from_mins(1), || {
        assert!(
            watch.exited().is_none(),
            "cargo lambda watch ended: {}",
            read(&log)
        );
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(
        listening,
        "cargo lambda watch did not listen: {}",
        read(&log)
    );
    (watch, port)
}

/// An examples' binary as `watch` runs it (its environment, the Runtime API under `/.rt`, here
/// through the tap), answering DynamoDB from moto; stderr to `log`.
fn binary(
    path: &str,
    runtime_api: &str,
    name: &str,
    moto: &Moto,
    extra: &[(&str, String)],
    log: &Path,
) -> Watched {
    let mut command = Command::new(path);
    command
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint())
        .env_remove("AWS_XRAY_DAEMON_ADDRESS")
        .env_remove("LAMBDA_TASK_ROOT")
        .env_remove("_X_AMZN_TRACE_ID")
        .env_remove("AWS_LAMBDA_LOG_FORMAT")
        .envs(extra.iter().map(|(k, v)| (*k, v)));
    Watched::logging_to(&command, log).expect("start the function")
}

/// `cargo lambda invoke [function] --data-ascii {"firstName": name}`: the function's answer.
fn invoke(port: u16, function: Option<&str>, name: &str) -> Value {
    let out = Command::new("cargo")
        .args(["lambda", "invoke"])
        .args(function)
        .args(["--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &port.to_string()])
        .args(["--data-ascii", &format!(r#"{{"firstName": "{name}"}}"#)])
        .output()
        .expect("run cargo lambda invoke");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `Root` and `Parent` of a header.
fn root_and_parent(header: &str) -> (String, String) {
    let field = |key: &str| {
        header
            .split(';')
            .find_map(|kv| kv.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {header}"))
            .to_owned()
    };
    (field("Root="), field("Parent="))
}

/// The headers the emulator handed out on `next` polls under `prefix`, waiting for `count`.
fn handed_out(tap: &Requests, prefix: &str, count: usize) -> Vec<Answered> {
    let mut answers = Vec::new();
    wait_until(Duration::from_secs(10), || {
        answers = tap
            .runtime_trace_ids()
            .into_iter()
            .filter(|a| a.path.starts_with(prefix) && a.path.ends_with("/invocation/next"))
            .collect();
        answers.len() >= count
    });
    answers
}

/// The table `hello` reads, on moto.
async fn greeting_table(moto: &Moto) {
    let config = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(moto.endpoint())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    create_table(&client, "lambda-tracing-xray")
        .await
        .expect("create the table on moto");
}

#[test]
fn each_invocation_hangs_under_the_header_cargo_lambda_sent() {
    let Some(version) = cargo_lambda() else {
        return xray_lambda_tests::skip(
            "cargo-lambda is not installed and could not be (.ci/run installs it: pip install cargo-lambda)",
        );
    };
    eprintln!("{version}");
    let runtime = xray_lambda_tests::harness::tokio_runtime();
    let moto = Moto::start().expect("moto");
    runtime.block_on(greeting_table(&moto));
    let (_watch, port) = emulator();
    let (tap, seen) = runtime.block_on(proxy::start_recording(
        format!("http://127.0.0.1:{port}"),
        Fault::NONE,
    ));

    // On a developer's machine: the waterfall on stderr. `cargo lambda invoke` without a
    // name invokes `_`, served under `/.rt`.
    let local_log = scratch("local.stderr");
    let local = binary(
        env!("CARGO_BIN_EXE_hello"),
        &format!("{tap}/.rt"),
        "_",
        &moto,
        &[],
        &local_log,
    );
    for name in ["Ada", "Grace", "Barbara"] {
        let answer = invoke(port, None, name);
        assert_eq!(answer["message"], format!("Hello, {name}!"), "{answer}");
    }
    let headers = handed_out(&seen, "/.rt/2018", 3);
    assert_eq!(headers.len(), 3, "{headers:?}");
    let printed = printed_trees(&local_log, 3);
    drop(local);
    let lines: Vec<&str> = printed.lines().collect();
    for answer in &headers {
        assert!(
            answer.runtime_trace_id.ends_with(";Sampled=1"),
            "{answer:?}"
        );
        let (root, parent) = root_and_parent(&answer.runtime_trace_id);
        let at = lines
            .iter()
            .position(|l| *l == format!("X-Ray trace {root} (under segment {parent})"))
            .unwrap_or_else(|| panic!("no tree under {root} / {parent}:\n{printed}"));
        let tree = &lines[at + 1..(at + 8).min(lines.len())];
        for (depth, name) in ["handler", "hello", "ddb_get", "DynamoDB GetItem"]
            .iter()
            .enumerate()
        {
            let drawn = format!("{}└─ {name} ", "   ".repeat(depth));
            assert!(
                tree.iter().any(|l| l.starts_with(&drawn)),
                "{drawn}:\n{printed}"
            );
        }
    }
    // Three different traces: cargo-lambda hands out a header per invocation.
    assert_eq!(printed.matches("X-Ray trace ").count(), 3, "{printed}");

    // With a daemon address (as in Lambda): the documents. `cargo lambda invoke hello` is
    // served under `/.rt/hello`.
    let daemon = Daemon::start();
    let daemon_log = scratch("daemon.stderr");
    let sending = binary(
        env!("CARGO_BIN_EXE_hello"),
        &format!("{tap}/.rt/hello"),
        "hello",
        &moto,
        &[("AWS_XRAY_DAEMON_ADDRESS", daemon.address().to_string())],
        &daemon_log,
    );
    for name in ["Ada", "Grace", "Barbara"] {
        let answer = invoke(port, Some("hello"), name);
        assert_eq!(answer["message"], format!("Hello, {name}!"), "{answer}");
    }
    let headers = handed_out(&seen, "/.rt/hello/", 3);
    assert_eq!(headers.len(), 3, "{headers:?}");
    for answer in &headers {
        let (root, parent) = root_and_parent(&answer.runtime_trace_id);
        let docs = daemon.wait_for_trace(&root, Duration::from_secs(10), |docs| {
            flatten(docs).iter().any(|d| d["name"] == "DynamoDB")
        });
        let all = flatten(&docs);
        let handler = all
            .iter()
            .find(|d| d["name"] == "handler")
            .unwrap_or_else(|| panic!("no handler under {root}: {docs:?}\n{}", read(&daemon_log)));
        assert_eq!(handler["parent_id"], parent.as_str(), "{handler}");
        assert_eq!(handler["type"], "subsegment", "{handler}");
        let call = all
            .iter()
            .find(|d| d["name"] == "DynamoDB")
            .expect("the DynamoDB call");
        assert_eq!(call["aws"]["operation"], "GetItem", "{call}");
        assert_eq!(call["http"]["response"]["status"], 200, "{call}");
    }
    drop(sending);
    // Nothing printed when a daemon is there.
    assert!(!read(&daemon_log).contains("X-Ray trace"));
    let _ = std::fs::remove_dir_all(scratch("x").parent().expect("dir"));
}

/// `curl -s -w '\n%{http_code}' url`: the body and the status.
fn curl(url: &str) -> (Value, u16) {
    let out = Command::new("curl")
        .args(["-s", "-m", "30", "-w", "\n%{http_code}", url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, status) = text.rsplit_once('\n').unwrap_or_else(|| panic!("{text}"));
    let status = status
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    (body, status)
}

#[test]
fn hello_http_answers_curl_through_the_emulators_function_url() {
    if cargo_lambda().is_none() {
        return xray_lambda_tests::skip("cargo-lambda is not installed (.ci/run installs it)");
    }
    let runtime = xray_lambda_tests::harness::tokio_runtime();
    let moto = Moto::start().expect("moto");
    runtime.block_on(greeting_table(&moto));
    let (_watch, port) = emulator();
    let log = scratch("hello-http.stderr");
    let function = binary(
        env!("CARGO_BIN_EXE_hello-http"),
        &format!("http://127.0.0.1:{port}/.rt/hello-http"),
        "hello-http",
        &moto,
        &[],
        &log,
    );
    // Where a developer tries it first: a Function URL has no path parameters, only the path.
    let url = |path: &str| format!("http://127.0.0.1:{port}/lambda-url/hello-http{path}");
    let (body, status) = curl(&url("/hello/Ada"));
    assert_eq!(
        (status, &body["message"]),
        (200, &Value::from("Hello, Ada!")),
        "{}",
        read(&log)
    );
    let (body, status) = curl(&url("/goodbye"));
    assert_eq!(status, 404, "{body}");
    // Both traced, the 404 flagged as an error with its route.
    let printed = printed_trees(&log, 2);
    drop(function);
    assert!(printed.contains("GET https://127.0.0.1"), "{printed}");
    assert!(printed.contains("HttpStatus=404"), "{printed}");
    assert!(printed.contains("HttpStatus=200"), "{printed}");
}
