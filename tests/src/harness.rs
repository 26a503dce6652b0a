//! The setup every integration test binary shares: a tokio runtime, a Runtime API and a UDP
//! daemon on loopback, the Lambda environment pointing at them, and `xray_lambda::init()`.

use crate::daemon::Daemon;
use crate::moto::Moto;
use crate::runtime_api::{Outcome, RuntimeApi};
use crate::set_lambda_env;

/// One process-wide Lambda stand-in; the test binary spawns its handler on `runtime`.
#[derive(Debug)]
pub struct Lambda {
    /// Serves the Runtime API (and, usually, the function).
    pub runtime: tokio::runtime::Runtime,
    /// The Runtime API the function polls.
    pub api: RuntimeApi,
    /// The X-Ray daemon stand-in.
    pub daemon: Daemon,
}

/// A UDP socket on loopback drained by a thread of its own: a daemon or endpoint that keeps up
/// (the benchmarks' receiver); its address.
///
/// # Panics
/// If no loopback port can be bound.
#[must_use]
pub fn drained_udp() -> std::net::SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = socket.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 70_000];
        while socket.recv(&mut buf).is_ok() {}
    });
    address
}

/// A benchmark whose cases each install a process-wide pipeline: runs this binary again once
/// per case, with `var` naming it and the same arguments; `cargo test` (which passes no
/// `--bench`) gets a quick smoke run of each (`XRAY_BENCH_QUICK`).
///
/// # Panics
/// If a case's child cannot run or fails.
pub fn run_bench_cases(var: &str, cases: &[&str]) {
    let test_mode = !std::env::args().any(|a| a == "--bench");
    for case in cases {
        let mut child = std::process::Command::new(std::env::current_exe().expect("bench binary"));
        child.args(std::env::args().skip(1)).env(var, case);
        if test_mode {
            child.env("XRAY_BENCH_QUICK", "1");
        }
        let status = child.status().expect("run the case's child");
        assert!(status.success(), "{case}: {status}");
    }
}

/// A two-worker multi-thread tokio runtime, as Lambda's two-core environments use.
///
/// # Panics
/// If the runtime cannot be built.
#[must_use]
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

impl Lambda {
    /// Starts everything for a function named `function_name` serving `concurrency`
    /// invocations at once, and installs tracing (kept for the life of the process).
    ///
    /// # Panics
    /// If a part cannot start, or `init` was already called in this process.
    #[must_use]
    pub fn start(function_name: &str, concurrency: u32) -> Self {
        Self::start_with_env(function_name, concurrency, &[])
    }

    /// [`Lambda::start`] with more variables set before `init` reads the environment.
    ///
    /// # Panics
    /// As [`Lambda::start`].
    #[must_use]
    pub fn start_with_env(function_name: &str, concurrency: u32, env: &[(&str, String)]) -> Self {
        Self::start_with(function_name, concurrency, env, |builder| builder)
    }

    /// [`Lambda::start_with_env`], with the builder `init` would use changed by `configure`.
    ///
    /// # Panics
    /// As [`Lambda::start`].
    #[must_use]
    pub fn start_with(
        function_name: &str,
        concurrency: u32,
        env: &[(&str, String)],
        configure: impl FnOnce(xray_lambda::Builder) -> xray_lambda::Builder,
    ) -> Self {
        let daemon = Daemon::start();
        let runtime = tokio_runtime();
        let api = runtime.block_on(RuntimeApi::start());
        set_lambda_env(&api.endpoint(), function_name);
        std::env::set_var("AWS_XRAY_DAEMON_ADDRESS", daemon.address().to_string());
        for (key, value) in env {
            std::env::set_var(key, value);
        }
        std::env::set_var("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string());
        std::env::remove_var("_X_AMZN_TRACE_ID");
        // The pipeline lives as long as the test process.
        std::mem::forget(configure(xray_lambda::builder()).init().expect("init"));
        Lambda {
            runtime,
            api,
            daemon,
        }
    }

    /// One invocation, waiting for its outcome.
    pub fn invoke(&self, payload: &serde_json::Value, header: Option<&str>) -> Outcome {
        self.runtime.block_on(self.api.invoke(payload, header))
    }

    /// `count` invocations of `payload` at once, each with a fresh sampled header; their
    /// headers, once every one has been answered with a response.
    ///
    /// # Panics
    /// If an invocation fails.
    pub fn invoke_at_once(
        &self,
        payload: &serde_json::Value,
        count: usize,
    ) -> Vec<crate::TraceIds> {
        let ids: Vec<crate::TraceIds> = (0..count)
            .map(|_| crate::new_trace_header(Some("1")))
            .collect();
        let outcomes = self.runtime.block_on(async {
            let tasks: Vec<_> = ids
                .iter()
                .map(|id| {
                    let (api, header, payload) =
                        (self.api.clone(), id.header.clone(), payload.clone());
                    tokio::spawn(async move { api.invoke(&payload, Some(&header)).await })
                })
                .collect();
            let mut outcomes = Vec::with_capacity(count);
            for task in tasks {
                outcomes.push(task.await.expect("task"));
            }
            outcomes
        });
        for outcome in outcomes {
            assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
        }
        ids
    }
}

/// Awaits the runtime loop `run` makes on a thread and tokio runtime of its own, as a `main`
/// awaits it (spawning a layered runtime, or `lambda_http`'s with an `impl IntoResponse`
/// handler, as a task trips rustc's higher-ranked `Send` inference); logs why it stopped.
pub fn serve<F, E>(run: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    std::thread::spawn(move || {
        if let Err(err) = tokio_runtime().block_on(run()) {
            eprintln!("runtime stopped: {err}");
        }
    });
}

/// Runs the shared test handler under the real `lambda_runtime::run_concurrent` (see
/// [`serve`]).
pub fn serve_test_handler() {
    serve_test_handler_with(false);
}

/// [`serve_test_handler`], with `xray_lambda::shutdown_on_sigterm` first when `on_sigterm`.
pub fn serve_test_handler_with(on_sigterm: bool) {
    serve(move || async move {
        if on_sigterm {
            xray_lambda::shutdown_on_sigterm().await;
        }
        lambda_runtime::Runtime::new(lambda_runtime::service_fn(crate::handlers::handler))
            .layer(xray_lambda::XrayRuntimeLayer)
            .run_concurrent()
            .await
    });
}

/// Points the AWS SDK at `moto` with dummy credentials in `us-east-1`.
pub fn use_moto(moto: &Moto) {
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(key, value);
    }
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint());
    std::env::set_var("AWS_ENDPOINT_URL_SQS", moto.endpoint());
    std::env::set_var("AWS_ENDPOINT_URL_SNS", moto.endpoint());
}
