//! The README's demo command, run as a user runs it: the trace trees it prints are the product.

use std::process::Command;

/// The demo as a user runs it, without DynamoDB or a daemon: its stdout and stderr.
fn run_demo() -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_XRAY_DAEMON_ADDRESS")
        // The waterfall's width: the default 100 columns, whatever the shell running the tests.
        .env_remove("COLUMNS")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn the_demo_prints_one_trace_tree_per_invocation() {
    let (stdout, stderr) = run_demo();
    for name in ["Ada", "Grace", "Barbara"] {
        assert!(stdout.contains(&format!("Hello, {name}!")), "{stdout}");
    }
    assert!(
        stdout.contains("replay test client"),
        "says where DynamoDB answers come from"
    );
    // Three invocations of hello, hello sending to an SQS queue, hello-http, orders-consumer,
    // and the report that times out.
    assert_eq!(stderr.matches("X-Ray trace 1-").count(), 7, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // handler → hello → ddb_get → the DynamoDB call, on a time axis, with what the call
    // recorded on the lines under it.
    let lines: Vec<&str> = stderr.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("X-Ray trace"))
        .expect("a tree");
    assert!(lines[first + 1].contains("0 ms ├─"), "{stderr}");
    // The cold start: what `main` did before the runtime started, beside the handler.
    assert!(lines[first + 2].starts_with("├─ Init"), "{stderr}");
    assert!(
        lines[first + 3].starts_with("│  └─ load_settings"),
        "{stderr}"
    );
    assert!(lines[first + 4].starts_with("└─ handler"), "{stderr}");
    assert!(lines[first + 5].contains("ColdStart=true"), "{stderr}");
    assert!(lines[first + 6].starts_with("   └─ hello"), "{stderr}");
    assert!(lines[first + 7].starts_with("      └─ ddb_get"), "{stderr}");
    assert!(
        lines[first + 8].starts_with("         └─ DynamoDB GetItem"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("├─ Init").count(),
        1,
        "the first invocation only"
    );
    let call = details(&lines, first + 8);
    for field in [
        "table.name=lambda-tracing-xray",
        "status=200",
        "request_id=DEMO0REPLAYED",
        "retries=0",
    ] {
        assert!(call.contains(field), "{field}: {stderr}");
    }
    // Every line fits 100 columns.
    for line in &lines {
        assert!(line.chars().count() <= 100, "{line}");
    }
    // Connected: the header the queue received names the SendMessage subsegment.
    let received = stdout
        .lines()
        .find_map(|l| l.split("the queue received X-Amzn-Trace-Id: ").nth(1))
        .expect("the header the queue received");
    let parent = received
        .split(';')
        .find_map(|kv| kv.strip_prefix("Parent="))
        .expect("a Parent");
    let send = lines
        .iter()
        .position(|l| l.contains("SQS SendMessage"))
        .expect("the SendMessage subsegment");
    let send = details(&lines, send);
    assert!(
        send.contains(&format!("id={parent}")),
        "{send} / {received}"
    );
    assert!(send.contains("queue_url="), "{send}");
    // hello-http under the real lambda_http: the http object and annotations, no query string.
    let http = lines
        .iter()
        .position(|l| l.starts_with("└─ hello_http"))
        .expect("the hello-http tree");
    let http = details(&lines, http);
    for field in [
        "HttpMethod=GET",
        "HttpRoute=GET /hello/{name}",
        "HttpStatus=200",
        "GET https://abc123.execute-api.us-east-1.amazonaws.com/hello/Grace,",
        "client_ip=203.0.113.7",
    ] {
        assert!(http.contains(field), "{field}: {http}");
    }
    assert!(!stderr.contains("demo-secret"), "{stderr}");
    assert!(stdout.contains("Hello, Grace!"), "{stdout}");
    // orders-consumer: a subsegment per message, the malformed one a fault, reported.
    let consumer = lines
        .iter()
        .position(|l| l.starts_with("└─ orders_consumer"))
        .expect("the orders-consumer tree");
    assert!(
        details(&lines, consumer).contains("FailedRecords=1"),
        "{stderr}"
    );
    let messages: Vec<usize> = (consumer + 1..lines.len())
        .take_while(|&i| lines[i].starts_with("   "))
        .filter(|&i| lines[i].contains("─ orders "))
        .collect();
    assert_eq!(messages.len(), 3, "{stderr}");
    assert!(lines[messages[1]].ends_with(" FAULT"), "{stderr}");
    assert!(details(&lines, messages[1]).contains("MessageId=order-message-2"));
    assert!(
        stdout.contains("item_identifier: \"order-message-2\""),
        "{stdout}"
    );
}

/// A subsegment's line and the lines under it that say what it recorded (up to the next
/// subsegment or trace), as one string.
fn details(lines: &[&str], at: usize) -> String {
    let mut text = lines[at].to_owned();
    for line in &lines[at + 1..] {
        if line.contains("─ ") || line.starts_with("X-Ray trace") {
            break;
        }
        text.push(' ');
        text.push_str(line.trim_start_matches([' ', '│']));
    }
    text
}

#[test]
fn the_demo_shows_what_a_timed_out_invocation_had_at_its_deadline() {
    let (stdout, stderr) = run_demo();
    assert!(stdout.contains("< timed out"), "{stdout}");
    let at = stderr
        .find("reached its deadline")
        .unwrap_or_else(|| panic!("no deadline tree: {stderr}"));
    let tree: Vec<&str> = stderr[at..].lines().collect();
    assert!(
        tree[3].starts_with("└─ handler") && tree[3].contains("FAULT"),
        "{stderr}"
    );
    assert!(
        tree.iter().any(|l| l.contains("└─ render_report")),
        "{stderr}"
    );
    assert!(
        tree.iter().any(|l| l.contains("DynamoDB GetItem")),
        "{stderr}"
    );
    assert_eq!(
        stderr[at..]
            .matches("still running at the deadline")
            .count(),
        2,
        "the handler and the report, not the finished call: {stderr}"
    );
}
