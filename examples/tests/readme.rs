//! The README's first example is the `hello` example: every line of its functions is a line of
//! `examples/src/lib.rs`, so the trace tree the README shows (the demo's, checked by
//! `demo.rs`) is the one its code makes.

#[test]
fn the_readmes_first_example_is_the_hello_example() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../src/lib.rs");
    let block = readme
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a rust block in the README");
    let functions = &block[block
        .find("#[xray_lambda::xray_handler]")
        .expect("the handler")
        ..block.find("#[tokio::main]").expect("main")];
    let lines: Vec<&str> = example.lines().map(str::trim).collect();
    let mut checked = 0;
    for line in functions.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(
            lines.contains(&line),
            "README line not in the example: {line}"
        );
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
    // Its `main` sets the runtime up as the `hello` binary does (the layer among it).
    let main = include_str!("../src/bin/hello.rs");
    let main_lines: Vec<&str> = main.lines().map(str::trim).collect();
    let readme_main = &block[block.find("#[tokio::main]").expect("main")..];
    for line in [
        "lambda_runtime::Runtime::new(service_fn(move |event| handler(client.clone(), event)))",
        ".register_snapstart_resource(Arc::new(xray_lambda::SnapStartTracing))",
        ".layer(xray_lambda::XrayRuntimeLayer)",
        ".run_concurrent()",
    ] {
        assert!(readme_main.contains(line), "README main lacks {line}");
        assert!(main_lines.contains(&line), "hello.rs lacks {line}");
    }
    // The table the tree shows is the example's default.
    assert!(readme.contains("table.name=lambda-tracing-xray"));
    assert!(example.contains("\"lambda-tracing-xray\""));
}
