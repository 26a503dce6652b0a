//! A traced handler whose behaviour the event chooses, shared by the test binaries.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the handler does: `ok` (nested spans `depth + 1` deep), `err`, `panic`,
/// `ddb_missing` (a DynamoDB `GetItem` on a table that does not exist, through the endpoint
/// in `AWS_ENDPOINT_URL_DYNAMODB`), `outlive` (a span on a plain thread that ends after the
/// handler returned: when [`end_outliving_work`] says, at most 10 s after it began),
/// `sqs_send` (an SQS `SendMessage`, a `ReceiveMessage` and an SNS `Publish` through the
/// endpoints in `AWS_ENDPOINT_URL_SQS` / `_SNS`, on a queue and topic named by `tag`),
/// `leaves` (`n` spans named `leaf` under the handler, each annotated with its index `i`),
/// `leaves_together` (the same, then the handler waits until `together` invocations have
/// made theirs, so that they all end, and send, at once),
/// `big_metadata` (metadata of `n` bytes on the handler), `uncovered` (a span only the
/// translator writes, with an annotation it cannot index), `sqs` (each SQS message of
/// `messages` in `xray_lambda::records::process`), `stuck` (a DynamoDB `GetItem` on the table
/// named by `tag`, which completes, then a `stuck_step` span that waits `n` ms: past the
/// deadline, for the timeout tests; then a `late_step` span, should it end after all).
#[derive(Debug, Deserialize)]
pub struct Command {
    /// `ok`, `err` or `panic`.
    pub action: String,
    /// How many `step` spans nest below the first.
    #[serde(default)]
    pub depth: u32,
    /// Copied into every `step` span as the annotation `tag`, and into the response.
    #[serde(default)]
    pub tag: String,
    /// How many `leaf` spans (`leaves`), or metadata bytes (`big_metadata`).
    #[serde(default)]
    pub n: usize,
    /// SQS messages (`sqs`).
    #[serde(default)]
    pub messages: Vec<aws_lambda_events::event::sqs::SqsMessage>,
    /// How many invocations end together (`leaves_together`); the same in every one.
    #[serde(default)]
    pub together: usize,
}

/// The barrier `leaves_together` invocations wait at, sized by the first of them.
fn together(count: usize) -> &'static tokio::sync::Barrier {
    static TOGETHER: std::sync::OnceLock<tokio::sync::Barrier> = std::sync::OnceLock::new();
    TOGETHER.get_or_init(|| tokio::sync::Barrier::new(count))
}

/// An error with a source, to check the cause chain.
#[derive(Debug)]
pub struct TableMissing(pub std::io::Error);

impl std::fmt::Display for TableMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the orders table is missing")
    }
}

impl std::error::Error for TableMissing {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The traced handler.
#[xray_lambda::xray_handler]
pub async fn handler(event: LambdaEvent<Command>) -> Result<Value, Error> {
    let Command {
        action,
        depth,
        tag,
        n,
        messages,
        together: together_count,
    } = event.payload;
    tracing::info!("handling {action}");
    match action.as_str() {
        "ok" => {
            xray_lambda::annotate!("invocation", &tag);
            xray_lambda::metadata!("command", &json!({ "depth": depth, "tag": &tag }));
            step(depth, &tag).await;
            Ok(json!({ "tag": tag }))
        }
        "ddb_throttled" => {
            // Throttled twice by the proxy, then answered: three attempts.
            throttled_dynamodb().await.describe_limits().send().await?;
            Ok(json!({}))
        }
        "header" => {
            // What a call made here would carry, from inside a nested span.
            let header = step_header(&tag).await;
            Ok(json!({ "tag": tag, "header": header }))
        }
        "err" => Err(Box::new(TableMissing(std::io::Error::other(
            "disk on fire",
        )))),
        "panic" => panic!("the handler panicked on purpose"),
        "outlive" => {
            let span = tracing::info_span!("outliving_work", annotation.tag = %tag);
            std::thread::spawn(move || {
                let entered = span.enter();
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut state = outliving();
                while !state.released {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    state = OUTLIVING_CHANGED
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                drop(state);
                drop(entered);
                // The span ends here (and, on this plain thread, waits with the pipeline for
                // the next export or flush).
                drop(span);
                outliving().ended += 1;
                OUTLIVING_CHANGED.notify_all();
            });
            Ok(json!({ "tag": tag }))
        }
        "ddb_missing" => {
            dynamodb()
                .await
                .get_item()
                .table_name("no-such-table")
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("k".to_owned()),
                )
                .send()
                .await?;
            Ok(json!({}))
        }
        "leaves" => {
            for i in 0..n {
                let _leaf = tracing::info_span!("leaf", annotation.i = i).entered();
            }
            Ok(json!({ "tag": tag, "spans": n }))
        }
        "leaves_together" => {
            for i in 0..n {
                let _leaf = tracing::info_span!("leaf", annotation.i = i).entered();
            }
            together(together_count).wait().await;
            Ok(json!({ "tag": tag, "spans": n }))
        }
        "sqs_send" => {
            messaging_calls(&tag).await;
            Ok(json!({ "tag": tag }))
        }
        "sqs" => {
            for message in &messages {
                let _ = xray_lambda::records::process(message, async { Ok::<(), ()>(()) }).await;
            }
            Ok(json!({ "tag": tag }))
        }
        "uncovered" => {
            // A span the direct writer does not cover (an `http.*` attribute of another
            // crate's convention) with an annotation X-Ray cannot index (NaN) and metadata:
            // the translator's document, with ours added.
            let span = tracing::info_span!(
                "uncovered",
                http.request.method = "GET",
                annotation.ratio = f64::NAN,
                annotation.tag = tag.as_str(),
                metadata.order = "o-1",
            );
            drop(span.entered());
            Ok(json!({ "tag": tag }))
        }
        "stuck" => {
            // Completes, whatever the table holds (an error would complete it too).
            let _ = dynamodb()
                .await
                .get_item()
                .table_name(&tag)
                .key(
                    "id",
                    aws_sdk_dynamodb::types::AttributeValue::S("k".to_owned()),
                )
                .send()
                .await;
            stuck_step(n).await;
            // Only reached when the step ends after all (a handler that outlives its
            // deadline, as under Managed Instances).
            drop(tracing::info_span!("late_step").entered());
            Ok(json!({ "tag": tag }))
        }
        "big_metadata" => {
            xray_lambda::metadata!("big", &"m".repeat(n));
            Ok(json!({ "tag": tag }))
        }
        other => Err(format!("unknown action {other}").into()),
    }
}

/// The spans of `outlive` invocations: released by [`end_outliving_work`], counted once ended.
#[derive(Debug)]
struct Outliving {
    released: bool,
    ended: usize,
}

static OUTLIVING: Mutex<Outliving> = Mutex::new(Outliving {
    released: false,
    ended: 0,
});
static OUTLIVING_CHANGED: Condvar = Condvar::new();

fn outliving() -> MutexGuard<'static, Outliving> {
    OUTLIVING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ends the spans of `outlive` invocations (call it once they returned: the spans then
/// outlive them) and waits until one has ended, at most `timeout`; whether one did.
pub fn end_outliving_work(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut state = outliving();
    state.released = true;
    OUTLIVING_CHANGED.notify_all();
    while state.ended == 0 {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        state = OUTLIVING_CHANGED
            .wait_timeout(state, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    state.ended > 0
}

/// A step that outlives the invocation's deadline: it waits `millis` ms.
#[tracing::instrument(skip_all)]
pub async fn stuck_step(millis: usize) {
    tokio::time::sleep(Duration::from_millis(millis as u64)).await;
}

/// Nested spans with awaits between them, each carrying the invocation's tag as an annotation.
#[tracing::instrument(skip_all, fields(annotation.tag = tag))]
pub async fn step(level: u32, tag: &str) {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if level > 0 {
        Box::pin(step(level - 1, tag)).await;
    }
    tokio::task::yield_now().await;
}

/// What a function's `main` does before the runtime starts, inside a `load_settings` span: a
/// DynamoDB `GetItem` on `table` through the shared client (with the interceptor), 30 ms of
/// work, and `extra` more spans (`setting`, one after another).
pub async fn load_settings(table: &str, extra: usize) {
    use tracing::Instrument as _;
    async {
        let _ = dynamodb()
            .await
            .get_item()
            .table_name(table)
            .key(
                "id",
                aws_sdk_dynamodb::types::AttributeValue::S("settings".to_owned()),
            )
            .send()
            .await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        for i in 0..extra {
            drop(tracing::info_span!("setting", annotation.i = i).entered());
        }
    }
    .instrument(tracing::info_span!("load_settings"))
    .await;
}

/// An SQS `SendMessage` and `ReceiveMessage` on the queue `name`, and an SNS `Publish` on the
/// topic `name`, each made first.
async fn messaging_calls(name: &str) {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(xray_lambda::aws::XrayInterceptor::new())
            .build(),
    );
    let sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&sdk)
            .interceptor(xray_lambda::aws::XrayInterceptor::new())
            .build(),
    );
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create the queue")
        .queue_url
        .expect("a queue URL");
    let _ = sqs
        .send_message()
        .queue_url(&queue)
        .message_body("an order")
        .send()
        .await;
    let _ = sqs.receive_message().queue_url(&queue).send().await;
    let topic = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("create the topic")
        .topic_arn
        .expect("a topic ARN");
    let _ = sns
        .publish()
        .topic_arn(topic)
        .message("an order")
        .send()
        .await;
}

/// One DynamoDB client for the process, with the X-Ray interceptor, made on first use.
async fn dynamodb() -> &'static aws_sdk_dynamodb::Client {
    static CLIENT: tokio::sync::OnceCell<aws_sdk_dynamodb::Client> =
        tokio::sync::OnceCell::const_new();
    CLIENT
        .get_or_init(|| async {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(xray_lambda::aws::XrayInterceptor::new())
                .build();
            aws_sdk_dynamodb::Client::from_conf(config)
        })
        .await
}

/// A client whose first two requests the test proxy throttles (in front of the endpoint in
/// `AWS_ENDPOINT_URL_DYNAMODB`).
async fn throttled_dynamodb() -> &'static aws_sdk_dynamodb::Client {
    static CLIENT: tokio::sync::OnceCell<aws_sdk_dynamodb::Client> =
        tokio::sync::OnceCell::const_new();
    CLIENT
        .get_or_init(|| async {
            let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
            let fault = crate::proxy::Fault {
                status: 400,
                code: "ThrottlingException",
                times: 2,
            };
            let endpoint = crate::proxy::start(upstream, fault).await;
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(endpoint)
                .retry_config(
                    aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_initial_backoff(std::time::Duration::from_millis(1)),
                )
                .interceptor(xray_lambda::aws::XrayInterceptor::new())
                .build();
            aws_sdk_dynamodb::Client::from_conf(config)
        })
        .await
}

/// The trace header a call made inside a `step` span would carry.
#[tracing::instrument(name = "step", skip_all, fields(annotation.tag = tag))]
async fn step_header(tag: &str) -> Option<String> {
    tokio::task::yield_now().await;
    xray_lambda::current_trace_header()
}
