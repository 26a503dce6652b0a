//! Behaviour that depends on process-wide state — the first invocation of a process, the
//! environment read at init, the export chosen from it — each checked in a child process of
//! its own (`run_child`), with the real `lambda_runtime::run` polling a loopback Runtime API.

use std::time::Duration;

use lambda_runtime::service_fn;
use serde_json::{json, Value};
use xray_lambda_tests::daemon::{flatten, udp_datagrams_to_closed_ports, Daemon};
use xray_lambda_tests::handlers::handler;
use xray_lambda_tests::harness::tokio_runtime;
use xray_lambda_tests::runtime_api::{Outcome, RuntimeApi};
use xray_lambda_tests::{
    child_mode, new_trace_header, run_child, run_child_without_network, set_lambda_env, wait_until,
};

/// A child process's function: the real `lambda_runtime::run` polling a loopback Runtime
/// API, the pipeline from `init()`, and a daemon that always listens, so that "nothing sent"
/// is checked, not assumed.
struct ChildLambda {
    runtime: tokio::runtime::Runtime,
    api: RuntimeApi,
    daemon: Daemon,
    _tracing: xray_lambda::TracingGuard,
}

impl ChildLambda {
    /// Panics outside `run_child` (a child entry run on its own): `run_by` names the test
    /// that runs it.
    fn start(run_by: &str) -> Self {
        let _ = child_mode(run_by);
        // Not `Lambda::start`: each child sets the daemon address (or none) its own way.
        let runtime = tokio_runtime();
        let api = runtime.block_on(RuntimeApi::start());
        set_lambda_env(&api.endpoint(), "modes-fn");
        let daemon = Daemon::start();
        if std::env::var("AWS_XRAY_DAEMON_ADDRESS").as_deref() == Ok("DAEMON") {
            std::env::set_var("AWS_XRAY_DAEMON_ADDRESS", daemon.address().to_string());
        }
        let tracing = xray_lambda::init().expect("init");
        runtime.spawn(async {
            lambda_runtime::run(service_fn(handler))
                .await
                .expect("runtime");
        });
        ChildLambda {
            runtime,
            api,
            daemon,
            _tracing: tracing,
        }
    }

    fn invoke(&self, payload: &Value, header: Option<&str>) -> Value {
        self.runtime
            .block_on(self.api.invoke(payload, header))
            .unwrap_response()
    }

    /// The documents of trace `root`, flattened, once there are at least `n`.
    fn wait(&self, root: &str, n: usize) -> Vec<Value> {
        flatten(
            &self
                .daemon
                .wait_for_trace(root, Duration::from_secs(10), |d| flatten(d).len() >= n),
        )
    }
}

/// Child: three invocations, `ColdStart` on the first only (unless provisioned).
#[test]
#[ignore = "a child process of the tests below; run_child runs it"]
fn child_cold_start() {
    let lambda = ChildLambda::start(
        "cold_start_is_true_on_the_first_invocation_only (and the other test naming it)",
    );
    let expected_first =
        std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE").as_deref() != Ok("provisioned-concurrency");
    for n in 0..3 {
        let ids = new_trace_header(Some("1"));
        let response = lambda.invoke(
            &json!({"action": "ok", "tag": n.to_string()}),
            Some(&ids.header),
        );
        assert_eq!(response["tag"], n.to_string());
        let docs = lambda.wait(&ids.root, 2);
        let handler = docs
            .iter()
            .find(|d| d["name"] == "handler")
            .expect("handler");
        assert_eq!(handler["parent_id"], ids.parent.as_str());
        assert_eq!(
            handler["annotations"]["ColdStart"],
            n == 0 && expected_first,
            "invocation {n}"
        );
    }
    // No stray traces: lambda_runtime's own span and OpenTelemetry's spans send nothing.
    // Checked once a marker arrived: a fourth invocation, served after the third's spans all
    // ended (`run` serves one at a time), whose datagram the one socket sends after theirs.
    let marker = new_trace_header(Some("1"));
    let response = lambda.invoke(
        &json!({"action": "ok", "tag": "marker"}),
        Some(&marker.header),
    );
    assert_eq!(response["tag"], "marker");
    assert_eq!(
        lambda.wait(&marker.root, 2).len(),
        2,
        "the marker invocation"
    );
    assert_eq!(
        lambda.daemon.datagrams().len(),
        4,
        "one datagram per invocation (the marker's the fourth), nothing else"
    );
    println!("CHILD OK: 3 invocations, ColdStart checked");
}

/// Child: a context without a trace id links through `_X_AMZN_TRACE_ID`.
#[test]
#[ignore = "a child process of the tests below; run_child runs it"]
fn child_env_fallback() {
    let lambda = ChildLambda::start("without_a_context_trace_id_the_environment_variable_links");
    // A context without a trace id (as a hand-made Context or an old runtime gives):
    // the process-wide variable is used.
    let ids = new_trace_header(Some("1"));
    std::env::set_var("_X_AMZN_TRACE_ID", &ids.header);
    let invocation = xray_lambda::Invocation::start("by-hand", &lambda_runtime::Context::default());
    assert!(invocation.is_recorded());
    drop(invocation);
    let docs = lambda.wait(&ids.root, 1);
    assert_eq!(docs[0]["name"], "by-hand");
    assert_eq!(docs[0]["parent_id"], ids.parent.as_str());
    println!("CHILD OK: linked through _X_AMZN_TRACE_ID");
}

/// Child: invocations are answered and nothing reaches the daemon (stderr tree, or off).
#[test]
#[ignore = "a child process of the tests below; run_child runs it"]
fn child_answers_without_sending() {
    let lambda = ChildLambda::start(
        "without_a_daemon_address_the_trace_prints_as_a_tree (and the other tests naming it)",
    );
    let ids = new_trace_header(Some("1"));
    let response = lambda.invoke(
        &json!({"action": "ok", "depth": 1, "tag": "t"}),
        Some(&ids.header),
    );
    assert_eq!(response["tag"], "t");
    let response = lambda.invoke(&json!({"action": "ok", "tag": "no header"}), None);
    assert_eq!(response["tag"], "no header");
    // The pipeline sends nothing to make a marker of: the daemon gets one of its own.
    assert_eq!(
        lambda.daemon.datagrams_before_a_marker().len(),
        0,
        "nothing goes to the daemon"
    );
    println!("CHILD OK: answered; root {}", ids.root);
}

/// Child: with tracing off, a panic reaches the runtime as an error and the next invocation
/// is served (the handler's future then runs without the invocation's machinery around it).
#[test]
#[ignore = "a child process of the tests below; run_child runs it"]
fn child_panics_with_tracing_off() {
    let lambda = ChildLambda::start("disabled_by_either_switch_sends_nothing_and_answers");
    let ids = new_trace_header(Some("1"));
    let outcome = lambda.runtime.block_on(
        lambda
            .api
            .invoke(&json!({"action": "panic"}), Some(&ids.header)),
    );
    assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
    let response = lambda.invoke(&json!({"action": "ok", "depth": 2, "tag": "after"}), None);
    assert_eq!(response["tag"], "after");
    assert_eq!(
        lambda.daemon.datagrams_before_a_marker().len(),
        0,
        "nothing goes to the daemon"
    );
    println!("CHILD OK: answered after a panic");
}

/// Child: headers that record nothing, each with nested spans in the handler: `Sampled=0`,
/// `Root` alone (`PassThrough`), a malformed one.
#[test]
#[ignore = "a child process of the tests below; run_child runs it"]
fn child_unrecorded_headers() {
    let lambda = ChildLambda::start("locally_unsampled_and_passthrough_invocations_print_nothing");
    let unsampled = new_trace_header(Some("0"));
    let passthrough = new_trace_header(Some("1"));
    let root_only = format!("Root={};Lineage=a87bd80c:1", passthrough.root);
    for header in [
        unsampled.header.as_str(),
        root_only.as_str(),
        "Root=not-a-trace-id;Parent=53995c3f42cd8ad8;Sampled=1",
    ] {
        let response = lambda.invoke(
            &json!({"action": "ok", "depth": 2, "tag": "t"}),
            Some(header),
        );
        assert_eq!(response["tag"], "t");
    }
    // A marker: a sampled invocation, served after the spans of the ones above all ended
    // (`run` serves one at a time), whose tree is printed after anything of theirs.
    let marker = new_trace_header(Some("1"));
    let response = lambda.invoke(
        &json!({"action": "ok", "tag": "marker"}),
        Some(&marker.header),
    );
    assert_eq!(response["tag"], "marker");
    println!("MARKER={}", marker.root);
    println!(
        "CHILD OK: unsampled, PassThrough and malformed headers answered; roots {} {}",
        unsampled.root, passthrough.root
    );
}

/// Child: no daemon at the address, then one comes back on that port.
#[test]
#[ignore = "a child process of the tests below; run_child runs it"]
fn child_closed_port() {
    let lambda =
        ChildLambda::start("a_closed_daemon_port_logs_once_and_export_resumes_when_it_comes_back");
    // Nothing listens at the daemon address yet: every invocation is answered.
    let address: std::net::SocketAddr = std::env::var("AWS_XRAY_DAEMON_ADDRESS")
        .expect("address")
        .parse()
        .expect("socket address");
    for n in 0..5 {
        let refused = udp_datagrams_to_closed_ports();
        let ids = new_trace_header(Some("1"));
        let response = lambda.invoke(
            &json!({"action": "ok", "tag": n.to_string()}),
            Some(&ids.header),
        );
        assert_eq!(response["tag"], n.to_string());
        // Its documents reach the closed port before the next invocation sends, so that each
        // send after the first finds the one before it refused (the kernel counts the
        // datagrams; on a system without that count, no wait).
        if let Some(before) = refused {
            assert!(
                wait_until(Duration::from_secs(10), || {
                    udp_datagrams_to_closed_ports() > Some(before)
                }),
                "no datagram of invocation {n} reached the closed daemon port"
            );
        }
    }
    // The daemon comes back on that port: export resumes, nothing of the next
    // invocation is lost.
    let daemon = Daemon::serve(std::net::UdpSocket::bind(address).expect("rebind the port"));
    for _ in 0..3 {
        let ids = new_trace_header(Some("1"));
        let _ = lambda.invoke(
            &json!({"action": "ok", "depth": 1, "tag": "back"}),
            Some(&ids.header),
        );
        let docs = daemon.wait_for_trace(&ids.root, Duration::from_secs(10), |d| {
            flatten(d).len() >= 3
        });
        assert_eq!(
            flatten(&docs).len(),
            3,
            "handler + 2 steps after the daemon came back"
        );
    }
    println!("CHILD OK: 5 invocations answered with no daemon, 3 traced after it came back");
}

fn check(output: &std::process::Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success() && stdout.contains("CHILD OK"),
        "child failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn cold_start_is_true_on_the_first_invocation_only() {
    check(&run_child(
        "child_cold_start",
        "1",
        &[("AWS_XRAY_DAEMON_ADDRESS", "DAEMON")],
    ));
}

#[test]
fn cold_start_is_false_under_provisioned_concurrency() {
    check(&run_child(
        "child_cold_start",
        "1",
        &[
            ("AWS_XRAY_DAEMON_ADDRESS", "DAEMON"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency"),
        ],
    ));
}

#[test]
fn without_a_context_trace_id_the_environment_variable_links() {
    check(&run_child(
        "child_env_fallback",
        "1",
        &[("AWS_XRAY_DAEMON_ADDRESS", "DAEMON")],
    ));
}

#[test]
fn without_a_daemon_address_the_trace_prints_as_a_tree() {
    let (stdout, stderr) = check(&run_child("child_answers_without_sending", "1", &[]));
    let root = stdout
        .lines()
        .find_map(|l| l.split("root ").nth(1))
        .expect("root printed");
    assert!(
        stderr.contains(&format!("X-Ray trace {root} (under segment ")),
        "{stderr}"
    );
    // handler > step > step, drawn as a waterfall (a time axis, then a line and a bar each),
    // what each recorded on the line under it.
    let tree: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains(root))
        .skip(1)
        .take(6)
        .collect();
    assert!(tree[0].trim_start().starts_with("0 ms ├─"), "{stderr}");
    assert!(
        tree[1].starts_with("└─ handler  ") && tree[1].contains(" ms █"),
        "{stderr}"
    );
    assert!(
        tree[2].contains("ColdStart=true") && tree[2].contains("Service=modes-fn"),
        "{stderr}"
    );
    assert!(tree[3].starts_with("   └─ step  "), "{stderr}");
    assert!(
        tree[4].trim_start_matches([' ', '│']) == "tag=t",
        "{stderr}"
    );
    assert!(tree[5].starts_with("      └─ step  "), "{stderr}");
    // Locally, an invocation without a header gets a trace of its own.
    assert_eq!(stderr.matches("X-Ray trace ").count(), 2, "{stderr}");
}

#[test]
fn locally_unsampled_and_passthrough_invocations_print_nothing() {
    let (stdout, stderr) = check(&run_child("child_unrecorded_headers", "1", &[]));
    let roots: Vec<&str> = stdout
        .lines()
        .find_map(|l| l.split("roots ").nth(1))
        .expect("roots printed")
        .split(' ')
        .collect();
    let marker = stdout
        .lines()
        .find_map(|l| l.split("MARKER=").nth(1))
        .expect("marker printed");
    // On a developer's machine (the stderr tree), neither the unsampled nor the PassThrough
    // invocation prints anything, under its Root or under a trace of its own; the malformed
    // header counts as none, and gets a trace of its own, as locally an invocation without
    // a header does. The marker invocation after them prints its own.
    for root in &roots {
        assert!(!stderr.contains(root), "{stderr}");
    }
    assert!(
        stderr.contains(&format!("X-Ray trace {marker} (under segment ")),
        "{stderr}"
    );
    assert_eq!(stderr.matches("X-Ray trace ").count(), 2, "{stderr}");
    // The malformed header costs one warning, naming it.
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("trace header"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stdout}");
    assert!(warnings[0].contains("not-a-trace-id"), "{stdout}");
}

#[test]
fn in_lambda_without_active_tracing_nothing_is_printed_and_one_line_says_why() {
    let (stdout, stderr) = check(&run_child(
        "child_answers_without_sending",
        "1",
        &[("LAMBDA_TASK_ROOT", "/var/task")],
    ));
    assert!(!stderr.contains("X-Ray trace"), "{stderr}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("AWS_XRAY_DAEMON_ADDRESS"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].contains("INFO") && lines[0].contains("Active tracing is off"),
        "{stdout}"
    );
}

#[test]
fn disabled_by_either_switch_sends_nothing_and_answers() {
    for switch in ["AWS_XRAY_SDK_DISABLED", "POWERTOOLS_TRACE_DISABLED"] {
        let (_, stderr) = check(&run_child(
            "child_answers_without_sending",
            "1",
            &[(switch, "true"), ("AWS_XRAY_DAEMON_ADDRESS", "DAEMON")],
        ));
        assert!(!stderr.contains("X-Ray trace"), "{stderr}");
        let (stdout, _) = check(&run_child(
            "child_panics_with_tracing_off",
            "1",
            &[(switch, "true"), ("AWS_XRAY_DAEMON_ADDRESS", "DAEMON")],
        ));
        assert!(stdout.contains("answered after a panic"), "{stdout}");
    }
}

#[test]
fn a_garbage_daemon_address_logs_one_line_and_answers() {
    for address in ["garbage", "tcp:127.0.0.1:2000"] {
        let (stdout, _) = check(&run_child(
            "child_answers_without_sending",
            "1",
            &[("AWS_XRAY_DAEMON_ADDRESS", address)],
        ));
        let warnings: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("AWS_XRAY_DAEMON_ADDRESS"))
            .collect();
        assert_eq!(warnings.len(), 1, "{stdout}");
        assert!(warnings[0].contains("WARN"), "{stdout}");
    }
}

#[test]
fn a_closed_daemon_port_logs_once_and_export_resumes_when_it_comes_back() {
    let free = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = free.local_addr().expect("address").to_string();
    drop(free);
    let (stdout, _) = check(&run_child(
        "child_closed_port",
        "1",
        &[("AWS_XRAY_DAEMON_ADDRESS", &address)],
    ));
    let lost: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("nothing listens at the daemon address"))
        .collect();
    assert_eq!(lost.len(), 1, "one line, not one per document: {stdout}");
    let back: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("accepts documents again"))
        .collect();
    assert_eq!(back.len(), 1, "{stdout}");
}

#[test]
fn a_socket_that_cannot_be_made_logs_once_and_answers() {
    // Connecting a UDP socket to the broadcast address without SO_BROADCAST fails (EACCES):
    // no datagram leaves the machine.
    let (stdout, _) = check(&run_child(
        "child_answers_without_sending",
        "1",
        &[("AWS_XRAY_DAEMON_ADDRESS", "255.255.255.255:2000")],
    ));
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("cannot open a UDP socket"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
}

#[test]
fn an_unreachable_daemon_address_logs_once_and_answers() {
    // In a network namespace with only loopback up, 10.255.255.1 has no route: the socket
    // cannot be connected (ENETUNREACH) and nothing can leave the namespace.
    let output = run_child_without_network(
        "child_answers_without_sending",
        "1",
        &[("AWS_XRAY_DAEMON_ADDRESS", "10.255.255.1:2000")],
    );
    let (stdout, _) = check(&output);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("cannot open a UDP socket"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].contains("unreachable"), "{stdout}");
}
