struct Handler;

#[xray_lambda::xray_handler]
impl Handler {}

fn main() {}
