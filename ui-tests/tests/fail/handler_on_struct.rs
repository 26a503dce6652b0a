#[xray_lambda::xray_handler]
struct Handler {
    name: String,
}

fn main() {}
