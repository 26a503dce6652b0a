fn record(ids: Vec<u8>) {
    xray_lambda::annotate!("ids", ids);
}

fn main() {}
