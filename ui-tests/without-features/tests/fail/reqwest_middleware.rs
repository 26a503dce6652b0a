fn main() {
    let _middleware = xray_lambda::http_client::XrayMiddleware::new();
}
