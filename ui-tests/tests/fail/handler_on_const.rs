#[xray_lambda::xray_handler]
const HANDLER: u8 = 1;

fn main() {}
