fn record(id: &str) {
    xray_lambda::annotate!("", id);
}

fn main() {}
