#[xray_lambda::xray_aws]
struct Table;

fn main() {}
