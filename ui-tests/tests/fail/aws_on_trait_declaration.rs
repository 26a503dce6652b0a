use lambda_runtime::Error;

trait Store {
    #[xray_lambda::xray_aws]
    async fn load(&self, id: &str) -> Result<String, Error>;
}

fn main() {}
