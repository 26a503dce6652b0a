#[tokio::main]
async fn main() {
    xray_lambda::otlp::shutdown_on_sigterm().await;
}
