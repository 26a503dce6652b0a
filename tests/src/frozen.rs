//! A function in a process of its own, which the test can freeze as Lambda freezes an
//! execution environment at an invocation's deadline (`SIGSTOP`: the process gets no signal
//! it can handle, and sends nothing more).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::harness::tokio_runtime;
use crate::moto::{create_table, Moto};
use crate::runtime_api::RuntimeApi;
use crate::skip;
use crate::watched::Watched;

/// The table the function processes read.
pub const TABLE: &str = "frozen";

/// The variable that tells the child where to write its process id.
const PID_FILE: &str = "XRAY_TEST_PID_FILE";

/// The test binary's child test `test_name`, running the function with `mode` in
/// `XRAY_TEST_CHILD`; ended (killed) when dropped or when the test process ends.
#[derive(Debug)]
pub struct FunctionProcess {
    watched: Option<Watched>,
    pid: u32,
}

impl FunctionProcess {
    /// Starts the child with `envs` set and waits until it has written its process id
    /// (after `init`, before it polls the Runtime API).
    ///
    /// # Panics
    /// If it cannot be started or does not say its id within 30 s.
    #[must_use]
    pub fn start(test_name: &str, mode: &str, envs: &[(&str, String)]) -> Self {
        Self::start_with_stderr(test_name, mode, envs, None)
    }

    /// [`FunctionProcess::start`], its stderr written to `log` (else the test's stderr).
    ///
    /// # Panics
    /// As [`FunctionProcess::start`].
    #[must_use]
    pub fn start_with_stderr(
        test_name: &str,
        mode: &str,
        envs: &[(&str, String)],
        log: Option<&std::path::Path>,
    ) -> Self {
        let pid_file = std::env::temp_dir().join(format!(
            "xray-test-{}-{mode}-{}.pid",
            std::process::id(),
            crate::new_trace_header(None).parent
        ));
        let _ = std::fs::remove_file(&pid_file);
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        command
            .args([
                "--exact",
                test_name,
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("XRAY_TEST_CHILD", mode)
            .env(PID_FILE, &pid_file);
        // Only what the test gives: nothing of the test process's own Lambda variables.
        for var in [
            "AWS_XRAY_DAEMON_ADDRESS",
            "AWS_LAMBDA_MAX_CONCURRENCY",
            "AWS_LAMBDA_INITIALIZATION_TYPE",
            "LAMBDA_TASK_ROOT",
            "OTEL_TRACES_EXPORTER",
            "_X_AMZN_TRACE_ID",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        for (key, value) in envs {
            command.env(key, value);
        }
        let stderr = match log {
            Some(log) => Stdio::from(std::fs::File::create(log).expect("the log file")),
            None => Stdio::inherit(),
        };
        let watched = Watched::spawn(&command, Stdio::null(), stderr).expect("spawn");
        let pid = wait_for_pid(&pid_file);
        let _ = std::fs::remove_file(&pid_file);
        FunctionProcess {
            watched: Some(watched),
            pid,
        }
    }

    /// Freezes the process (`SIGSTOP`), as Lambda does at the deadline.
    ///
    /// # Panics
    /// If the signal cannot be sent.
    pub fn freeze(&self) {
        signal(self.pid, "-STOP");
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        // A stopped process ignores the watcher's SIGTERM until it is continued: kill it.
        signal(self.pid, "-KILL");
        drop(self.watched.take());
    }
}

fn signal(pid: u32, which: &str) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success() || which == "-KILL", "kill {which} {pid}");
}

fn wait_for_pid(file: &PathBuf) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the function process did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// In the child: says the process is ready (its id, where [`FunctionProcess::start`] waits
/// for it).
///
/// # Panics
/// If the variable is not set (the child was run on its own) or the file cannot be written.
pub fn say_ready() {
    let file = std::env::var(PID_FILE).expect("run by FunctionProcess::start");
    let partial = format!("{file}.partial");
    std::fs::write(&partial, std::process::id().to_string()).expect("write the pid");
    std::fs::rename(&partial, &file).expect("publish the pid");
}

/// The parts the function process talks to.
#[derive(Debug)]
pub struct Setup {
    /// Runs the Runtime API.
    pub runtime: tokio::runtime::Runtime,
    /// The Runtime API the function polls.
    pub api: RuntimeApi,
    /// The X-Ray daemon stand-in (and Lambda's OpenTelemetry endpoint's).
    pub daemon: Daemon,
    _moto: Moto,
    /// The function process's variables: the Lambda environment pointing at these parts.
    pub envs: Vec<(&'static str, String)>,
}

/// Starts the parts, with the table [`TABLE`] made; `None` (skipped, with one line) where moto
/// is missing.
///
/// # Panics
/// If a part cannot start.
#[must_use]
pub fn setup() -> Option<Setup> {
    let moto = match Moto::start() {
        Ok(moto) => moto,
        Err(err) => {
            skip(&err);
            return None;
        }
    };
    let runtime = tokio_runtime();
    let api = runtime.block_on(RuntimeApi::start());
    let daemon = Daemon::start();
    let envs = vec![
        ("AWS_LAMBDA_RUNTIME_API", api.endpoint()),
        ("AWS_LAMBDA_FUNCTION_NAME", "frozen".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/frozen".to_owned()),
        ("AWS_XRAY_DAEMON_ADDRESS", daemon.address().to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint()),
    ];
    runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(moto.endpoint())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
            .load()
            .await;
        create_table(&aws_sdk_dynamodb::Client::new(&config), TABLE)
            .await
            .expect("the table");
    });
    Some(Setup {
        runtime,
        api,
        daemon,
        _moto: moto,
        envs,
    })
}
