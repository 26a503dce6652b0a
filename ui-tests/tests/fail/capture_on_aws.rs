#[xray_lambda::xray_aws(capture_response = true)]
async fn get_order(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

fn main() {
    let _ = get_order(1);
}
