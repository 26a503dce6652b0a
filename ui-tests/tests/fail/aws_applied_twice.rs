#[xray_lambda::xray_aws]
#[xray_lambda::xray_aws]
async fn ddb_get(id: &str) -> usize {
    id.len()
}

fn main() {}
