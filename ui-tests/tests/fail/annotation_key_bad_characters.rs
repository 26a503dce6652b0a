fn record(id: &str) {
    xray_lambda::annotate!("user-id", id);
}

fn main() {}
