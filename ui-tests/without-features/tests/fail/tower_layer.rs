fn main() {
    let _layer = xray_lambda::http_client::XrayLayer::new();
}
