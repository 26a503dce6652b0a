//! Facts decided in one place stay there: each pattern below may appear, outside tests, only
//! in the file that decides it. A second writer of a header, a second way to mark a span
//! failed or a second reading of the environment fails this test with its file and line.

use std::path::{Path, PathBuf};

/// (what, the code that does it, the one file allowed to, relative to the workspace).
const SINGLE: &[(&str, &str, &str)] = &[
    (
        "marking a span failed (status and exception events together)",
        "Status::error(",
        "runtime/src/exception.rs",
    ),
    (
        "an exception event",
        "(EXCEPTION_EVENT,",
        "runtime/src/exception.rs",
    ),
    (
        "reading the process's environment",
        "env::var",
        "runtime/src/environment.rs",
    ),
    (
        "the throttle rule",
        "THROTTLING_CODES.contains",
        "runtime/src/aws/mod.rs",
    ),
    (
        "taking a URL apart (user information)",
        "rsplit_once('@')",
        "runtime/src/url.rs",
    ),
    (
        "taking a URL apart (scheme)",
        "split_once(\"://\")",
        "runtime/src/url.rs",
    ),
    (
        "writing a trace header",
        "b\"Root=\"",
        "runtime/src/header.rs",
    ),
    (
        "writing a trace id in X-Ray's form",
        "b\"1-\"",
        "runtime/src/header.rs",
    ),
    ("X-Ray's name rule", "fn is_name_char", "rules/src/lib.rs"),
    (
        "X-Ray's annotation key rule",
        "fn annotation_key(key: &str)",
        "rules/src/lib.rs",
    ),
    ("the longest name", "MAX_NAME: usize", "rules/src/lib.rs"),
    (
        "the longest annotation key",
        "MAX_ANNOTATION_KEY: usize",
        "rules/src/lib.rs",
    ),
    (
        "the daemon's header line",
        "\"format\\\":\\\"json",
        "runtime/src/datagram/mod.rs",
    ),
    (
        "the largest datagram",
        "MAX_DATAGRAM: usize",
        "runtime/src/datagram/mod.rs",
    ),
    (
        "base64 for Lambda's OpenTelemetry endpoint",
        "fn base64(",
        "runtime/src/datagram/mod.rs",
    ),
    (
        "the caps tried on a value too large for a datagram",
        "cap / 8",
        "runtime/src/datagram/cap.rs",
    ),
    (
        "reading an `aws` member back by its name",
        "\"queue_url\"",
        "runtime/src/record/aws.rs",
    ),
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's lines before its test module (`#[cfg(test)]` then `mod`), comments left out;
/// nothing for a file of tests.
fn code_lines(file: &Path) -> Vec<(usize, String)> {
    let name = file.to_string_lossy();
    if name.ends_with("_tests.rs") || name.ends_with("/tests.rs") {
        return Vec::new();
    }
    let text = std::fs::read_to_string(file).expect("read a source file");
    let lines: Vec<&str> = text.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines[i].trim_start().starts_with("#[cfg(test)]")
                && lines
                    .get(i + 1)
                    .is_some_and(|next| next.trim_start().contains("mod "))
        })
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .enumerate()
        .map(|(at, line)| (at + 1, without_comment(line).to_owned()))
        .collect()
}

/// `line` before a `//` comment (a URL's `://` is no comment).
fn without_comment(line: &str) -> &str {
    let mut from = 0;
    while let Some(at) = line[from..].find("//").map(|i| i + from) {
        if !line[..at].ends_with(':') {
            return &line[..at];
        }
        from = at + 2;
    }
    line
}

#[test]
fn each_fact_is_decided_in_one_place() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = Vec::new();
    for dir in ["runtime/src", "macros/src", "rules/src"] {
        files(&root.join(dir), &mut all);
    }
    let mut found = Vec::new();
    for file in &all {
        let relative = file
            .strip_prefix(&root)
            .expect("under the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        for (at, line) in code_lines(file) {
            for (what, code, only) in SINGLE {
                if line.contains(code) && relative != *only {
                    found.push(format!(
                        "{relative}:{at}: {what} belongs in {only}: {}",
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Each pattern is still where the table says: a renamed function would otherwise make its
/// line of the table guard nothing.
#[test]
fn each_fact_is_where_the_table_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (what, code, only) in SINGLE {
        let found = code_lines(&root.join(only))
            .iter()
            .any(|(_, line)| line.contains(code));
        assert!(found, "{what}: `{code}` is no longer in {only}");
    }
}
