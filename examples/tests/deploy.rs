//! The deploy recipe for SAM (`deploy/template.yaml`), checked as far as this machine allows:
//! `cfn-lint` on the template, then aws-sam-translator's own transform (what CloudFormation runs
//! for `Transform: AWS::Serverless-2016-10-31`) into a template whose every function has Active
//! tracing and an X-Ray write policy on its role, and whose SQS mapping reports partial batch
//! failures (`deploy/check_template.py`). Each skips with one line when its tool is missing
//! (and fails under `CI=true`); `.ci/run` installs both.

use std::path::PathBuf;
use std::process::{Command, Output};

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Runs `program` with `args`, or `None` when it is not installed.
fn run(program: &str, args: &[&str]) -> Option<Output> {
    Command::new(program).args(args).output().ok()
}

fn has_sam_translator() -> bool {
    run("python3", &["-c", "import samtranslator"]).is_some_and(|o| o.status.success())
}

#[test]
fn cfn_lint_accepts_the_sam_template() {
    let template = deploy_dir().join("template.yaml");
    let Some(out) = run("cfn-lint", &[template.to_str().expect("path")]) else {
        return xray_lambda_tests::skip(
            "cfn-lint is not installed (.ci/run installs it: pip install cfn-lint)",
        );
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_transformed_template_traces_every_function() {
    if !has_sam_translator() {
        return xray_lambda_tests::skip(
            "aws-sam-translator is not installed (.ci/run installs it: pip install aws-sam-translator)",
        );
    }
    let dir = deploy_dir();
    let check = dir.join("check_template.py");
    let template = dir.join("template.yaml");
    let out = run(
        "python3",
        &[
            check.to_str().expect("path"),
            template.to_str().expect("path"),
        ],
    )
    .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for function in [
        "HelloFunction",
        "HelloHttpFunction",
        "OrdersConsumerFunction",
    ] {
        assert!(
            stdout.contains(&format!("ok  {function}: TracingConfig.Mode=Active")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("ReportBatchItemFailures"), "{stdout}");

    // The check checks: without `Tracing: Active` the same template fails it.
    let text = std::fs::read_to_string(&template).expect("the template");
    assert!(text.contains("    Tracing: Active\n"));
    let untraced =
        std::env::temp_dir().join(format!("xray-lambda-untraced-{}.yaml", std::process::id()));
    std::fs::write(&untraced, text.replace("    Tracing: Active\n", "")).expect("write");
    let out = run(
        "python3",
        &[
            check.to_str().expect("path"),
            untraced.to_str().expect("path"),
        ],
    )
    .expect("python3");
    let _ = std::fs::remove_file(&untraced);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FAIL HelloFunction: TracingConfig.Mode is None"),
        "{stderr}"
    );
}

#[test]
fn the_application_signals_variant_lints_and_sends_to_lambdas_endpoint() {
    let dir = deploy_dir();
    let template = dir.join("template-app-signals.yaml");
    match run("cfn-lint", &[template.to_str().expect("path")]) {
        Some(out) => assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        None => xray_lambda_tests::skip(
            "its cfn-lint part: cfn-lint is not installed (.ci/run installs it)",
        ),
    }
    if !has_sam_translator() {
        return xray_lambda_tests::skip(
            "aws-sam-translator is not installed (.ci/run installs it)",
        );
    }
    let check = dir.join("check_template.py");
    let out = run(
        "python3",
        &[
            check.to_str().expect("path"),
            "--app-signals",
            template.to_str().expect("path"),
        ],
    )
    .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches(", Application Signals on").count(),
        3,
        "{stdout}"
    );
    // The check checks: the plain template has neither the variables nor the policy.
    let plain = dir.join("template.yaml");
    let out = run(
        "python3",
        &[
            check.to_str().expect("path"),
            "--app-signals",
            plain.to_str().expect("path"),
        ],
    )
    .expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FAIL HelloFunction: OTEL_TRACES_EXPORTER is None"),
        "{stderr}"
    );
}
