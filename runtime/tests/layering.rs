//! The runtime's files follow the data flow, and their imports run one way: each module names
//! (`crate::x`) only modules of a lower layer, so there is no import loop and no import back up.
//! Also, for the runtime, the macros and the shared rules: no source file over 600 lines and no
//! function outside tests over 60.

use std::path::{Path, PathBuf};

/// Top-level modules by layer: a module may name only modules of a lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("notices", 0),
    ("header", 0),
    ("w3c", 1),
    ("propagators", 0),
    ("json", 0),
    ("url", 0),
    ("ids", 0),
    ("environment", 1),
    ("vocabulary", 1),
    ("record", 2),
    ("span_tree", 3),
    ("datagram", 3),
    ("exception", 3),
    ("document", 4),
    ("otel", 4),
    ("sink", 5),
    ("buffer", 6),
    ("tracer", 7),
    ("state", 8),
    ("propagation", 8),
    ("annotate", 9),
    ("aws", 9),
    ("unsigned_fields", 9),
    ("http_client", 9),
    ("http_function", 9),
    ("logs", 9),
    ("records", 9),
    ("invocation", 10),
    ("init", 11),
    ("shutdown", 11),
    ("lib", 12),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/sink/otlp/mod.rs` → `sink`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules a file names as `crate::x`, comments left out.
fn named(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
        // `use crate::{a, b}` is not used in this crate: keep it that way, or extend this.
        assert!(!code.contains("crate::{"), "grouped crate import: {line}");
    }
    out
}

#[test]
fn imports_run_down_the_layers_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut problems = Vec::new();
    for file in &all {
        let module = module_of(&src, file);
        let own =
            layer(&module).unwrap_or_else(|| panic!("{module} is in no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(file).expect("read");
        for target in named(&text) {
            // A `#[macro_export]` macro lives at the crate's root: the file's own when defined
            // there.
            let own_macro = text.contains(&format!("macro_rules! {target}"));
            if target == module || target == "__private" || own_macro {
                continue;
            }
            match layer(&target) {
                Some(other) if other < own => {}
                Some(other) => problems.push(format!(
                    "{} (layer {own}) names crate::{target} (layer {other})",
                    file.display()
                )),
                None => problems.push(format!(
                    "{}: crate::{target} is in no layer",
                    file.display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(all.len() > 20, "the walk found the files");
}

/// The source files the size guards hold: the runtime's, the macros' and the shared rules'.
fn guarded_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    for dir in ["src", "../macros/src", "../rules/src"] {
        files(&root.join(dir), &mut all);
    }
    all
}

#[test]
fn no_file_over_600_lines() {
    for file in guarded_files() {
        let lines = std::fs::read_to_string(&file)
            .expect("read")
            .lines()
            .count();
        assert!(lines <= 600, "{} has {lines} lines", file.display());
    }
}

/// Whether `line` opens a function: `fn`, after any of `pub(..)`, `const`, `async`.
fn opens_function(line: &str) -> bool {
    let mut rest = line.trim_start();
    for word in ["pub(crate) ", "pub(super) ", "pub ", "const ", "async "] {
        rest = rest.strip_prefix(word).unwrap_or(rest);
    }
    rest.starts_with("fn ")
}

#[test]
fn no_function_outside_tests_over_60_lines() {
    let all = guarded_files();
    let mut long = Vec::new();
    for file in all
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with("_tests.rs"))
    {
        let text = std::fs::read_to_string(file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        // A file's tests are its last module, after `#[cfg(test)]`.
        let end = (0..lines.len())
            .find(|&i| {
                lines[i].starts_with("#[cfg(test)]")
                    && lines.get(i + 1).is_some_and(|next| {
                        next.starts_with("mod ")
                            || next.starts_with("pub(crate) mod ")
                            || next.starts_with("pub(super) mod ")
                    })
            })
            .unwrap_or(lines.len());
        for (at, line) in lines[..end].iter().enumerate() {
            if !opens_function(line) || line.trim_end().ends_with(';') {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let close = format!("{}}}", " ".repeat(indent));
            let length = lines[at..end]
                .iter()
                .position(|l| l.trim_end() == close)
                .map_or(0, |n| n + 1);
            if length > 60 {
                long.push(format!("{}:{} {length} lines", file.display(), at + 1));
            }
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}
