#[tokio::main]
async fn main() {
    xray_lambda::shutdown_on_sigterm().await;
}
