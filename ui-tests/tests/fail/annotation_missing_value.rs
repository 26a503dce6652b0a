fn record() {
    xray_lambda::annotate!("user_id");
}

fn main() {}
