//! The README's demo command, run as a user runs it: the trace trees it prints are the product.

use std::process::Command;

#[test]
fn the_demo_prints_one_trace_tree_per_invocation() {
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_XRAY_DAEMON_ADDRESS")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for name in ["Ada", "Grace", "Barbara"] {
        assert!(stdout.contains(&format!("Hello, {name}!")), "{stdout}");
    }
    assert!(
        stdout.contains("replay test client"),
        "says where DynamoDB answers come from"
    );
    // Three invocations of hello, hello sending to an SQS queue, hello-http, orders-consumer.
    assert_eq!(stderr.matches("X-Ray trace 1-").count(), 6, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // handler → hello → ddb_get → the DynamoDB call, with what the call recorded.
    let lines: Vec<&str> = stderr.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("X-Ray trace"))
        .expect("a tree");
    assert!(
        lines[first + 1].starts_with("└─ handler") && lines[first + 1].contains("ColdStart=true"),
        "{stderr}"
    );
    assert!(lines[first + 2].starts_with("   └─ hello"), "{stderr}");
    assert!(lines[first + 3].starts_with("      └─ ddb_get"), "{stderr}");
    assert!(
        lines[first + 4].starts_with("         └─ DynamoDB"),
        "{stderr}"
    );
    assert!(
        lines[first + 4].starts_with("         └─ DynamoDB GetItem"),
        "{stderr}"
    );
    for field in [
        "table.name=lambda-tracing-xray",
        "status=200",
        "request_id=DEMO0REPLAYED",
        "retries=0",
    ] {
        assert!(lines[first + 4].contains(field), "{field}: {stderr}");
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
        .find(|l| l.contains("SQS SendMessage"))
        .expect("the SendMessage subsegment");
    assert!(
        send.contains(&format!("id={parent}")),
        "{send} / {received}"
    );
    assert!(send.contains("queue_url="), "{send}");
    // hello-http under the real lambda_http: the http object and annotations, no query string.
    let http = lines
        .iter()
        .find(|l| l.starts_with("└─ hello_http"))
        .expect("the hello-http tree");
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
        lines[consumer].contains("FailedRecords=1"),
        "{}",
        lines[consumer]
    );
    let messages: Vec<&&str> = lines[consumer + 1..]
        .iter()
        .take_while(|l| l.starts_with("   "))
        .filter(|l| l.contains("─ orders "))
        .collect();
    assert_eq!(messages.len(), 3, "{stderr}");
    assert!(messages[1].contains("MessageId=order-message-2") && messages[1].contains("FAULT"));
    assert!(
        stdout.contains("item_identifier: \"order-message-2\""),
        "{stdout}"
    );
}
