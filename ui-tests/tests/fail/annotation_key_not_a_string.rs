fn record(id: &str) {
    xray_lambda::annotate!(42, id);
}

fn main() {}
