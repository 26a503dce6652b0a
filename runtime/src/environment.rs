//! The Lambda environment, read once: whether this process runs in Lambda, the function's
//! name, version, region, log group and stream, memory, the daemon's address and how the
//! environment was initialized. Every part that needs one of these asks [`current`] (or is
//! handed the value by `init`); nothing else reads these variables.

use std::sync::OnceLock;

/// What Lambda tells a function about itself through its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LambdaEnvironment {
    /// `AWS_LAMBDA_RUNTIME_API`: where the Runtime API (and the Extensions API) is served;
    /// `cargo lambda watch` serves one too.
    pub(crate) runtime_api: Option<String>,
    /// In Lambda itself: a Runtime API and `LAMBDA_TASK_ROOT`, which `cargo lambda watch` does
    /// not set.
    pub(crate) in_lambda: bool,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub(crate) function_name: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub(crate) function_version: Option<String>,
    /// `AWS_REGION`.
    pub(crate) region: Option<String>,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`.
    pub(crate) log_group: Option<String>,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`: one per execution environment (`faas.instance`).
    pub(crate) log_stream: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub(crate) memory_mb: Option<u32>,
    /// `AWS_XRAY_DAEMON_ADDRESS`, as written (parsed by the daemon sink).
    pub(crate) daemon_address: Option<String>,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`: `on-demand`, `provisioned-concurrency`, `snap-start`.
    pub(crate) initialization_type: Option<String>,
}

/// The one reading of environment variables, for every variable the crate reads: a value is
/// trimmed, and one that is empty or blank is unset; a boolean is on for `true` (in any case)
/// or `1`, and off for anything else.
#[derive(Clone, Copy)]
pub(crate) struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
impl<'a> Vars<'a> {
    /// Variables looked up through `read` (tests hand a table).
    pub(crate) fn new(read: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars(read)
    }
}

impl Vars<'_> {
    /// The process's environment.
    pub(crate) fn process() -> Vars<'static> {
        Vars(&process_var)
    }

    /// `name`'s value, trimmed; `None` when unset, empty or blank.
    pub(crate) fn get(self, name: &str) -> Option<String> {
        let value = (self.0)(name)?;
        let trimmed = value.trim();
        if trimmed.is_empty() {
            None
        } else if trimmed.len() == value.len() {
            Some(value)
        } else {
            Some(trimmed.to_owned())
        }
    }

    /// The first of `names` that is set.
    pub(crate) fn first(self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| self.get(name))
    }

    /// Whether the boolean `name` is on: `true` (in any case) or `1`.
    pub(crate) fn flag(self, name: &str) -> bool {
        self.flag_or(name, false)
    }

    /// [`Vars::flag`], with `default` where `name` is unset (or blank).
    pub(crate) fn flag_or(self, name: &str, default: bool) -> bool {
        self.get(name)
            .map_or(default, |v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

impl LambdaEnvironment {
    /// Reads the variables through `vars`.
    pub(crate) fn read(vars: Vars<'_>) -> Self {
        let var = |name: &str| vars.get(name);
        let runtime_api = var("AWS_LAMBDA_RUNTIME_API");
        LambdaEnvironment {
            in_lambda: runtime_api.is_some() && var("LAMBDA_TASK_ROOT").is_some(),
            runtime_api,
            function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
            function_version: var("AWS_LAMBDA_FUNCTION_VERSION"),
            region: var("AWS_REGION"),
            log_group: var("AWS_LAMBDA_LOG_GROUP_NAME"),
            log_stream: var("AWS_LAMBDA_LOG_STREAM_NAME"),
            memory_mb: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.parse().ok()),
            daemon_address: var("AWS_XRAY_DAEMON_ADDRESS"),
            initialization_type: var("AWS_LAMBDA_INITIALIZATION_TYPE"),
        }
    }

    /// Whether the first invocation is a cold start that `ColdStart` reports: not under
    /// provisioned concurrency, whose init ran ahead of any request. (Under SnapStart the
    /// first invocation of an environment follows its restore, which the request waited for.)
    pub(crate) fn cold_start_reported(&self) -> bool {
        self.initialization_type.as_deref() != Some("provisioned-concurrency")
    }

    /// Whether this process resumes from a SnapStart snapshot: its init ran once, for the
    /// snapshot, and its first invocation follows a restore.
    pub(crate) fn restored_from_snapshot(&self) -> bool {
        self.initialization_type.as_deref() == Some("snap-start")
    }
}

/// This process's environment, read the first time it is asked for.
pub(crate) fn current() -> &'static LambdaEnvironment {
    static CURRENT: OnceLock<LambdaEnvironment> = OnceLock::new();
    CURRENT.get_or_init(|| LambdaEnvironment::read(Vars::process()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> LambdaEnvironment {
        LambdaEnvironment::read(Vars::new(&|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }))
    }

    /// Every variable the crate reads goes through [`Vars`]: blank is unset, values are
    /// trimmed, and every boolean has the same spellings.
    #[test]
    fn blank_is_unset_and_one_truthiness_rule() {
        let table = [
            ("A", " "),
            ("B", " x "),
            ("C", "y"),
            ("T1", "true"),
            ("T2", " TRUE "),
            ("T3", "1"),
            ("F1", "false"),
            ("F2", "yes"),
            ("F3", "0"),
        ];
        let read = |name: &str| {
            table
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let vars = Vars::new(&read);
        assert_eq!(vars.get("A"), None);
        assert_eq!(vars.get("B").as_deref(), Some("x"));
        assert_eq!(vars.get("missing"), None);
        assert_eq!(
            vars.first(&["A", "missing", "C", "B"]).as_deref(),
            Some("y")
        );
        for on in ["T1", "T2", "T3"] {
            assert!(vars.flag(on), "{on}");
        }
        for off in ["F1", "F2", "F3", "A", "missing"] {
            assert!(!vars.flag(off), "{off}");
        }
    }

    #[test]
    fn lambda_needs_a_runtime_api_and_a_task_root() {
        assert!(!with(&[]).in_lambda);
        // `cargo lambda watch`: a Runtime API, no task root.
        let watch = with(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9000")]);
        assert!(!watch.in_lambda);
        assert!(watch.runtime_api.is_some());
        let lambda = with(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("LAMBDA_TASK_ROOT", "/var/task"),
            ("AWS_LAMBDA_FUNCTION_NAME", "hello"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_REGION", " "),
        ]);
        assert!(lambda.in_lambda);
        assert_eq!(lambda.function_name.as_deref(), Some("hello"));
        assert_eq!(lambda.memory_mb, Some(256));
        assert_eq!(lambda.region, None, "blank is unset");
        assert!(lambda.cold_start_reported());
        let snap_start = with(&[("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")]);
        assert!(snap_start.cold_start_reported() && snap_start.restored_from_snapshot());
        let provisioned = with(&[("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")]);
        assert!(!provisioned.cold_start_reported() && !provisioned.restored_from_snapshot());
    }
}
