fn main() {
    let _ = xray_lambda::otlp::Otlp::from_env();
}
