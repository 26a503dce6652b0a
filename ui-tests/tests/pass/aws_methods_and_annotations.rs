struct Repository {
    table: String,
}

impl Repository {
    #[xray_lambda::xray_aws]
    async fn count(&self, key: &str) -> Result<usize, String> {
        let dynamic_key = format!("{}_lookups", self.table);
        xray_lambda::annotate!(dynamic_key, 1u8);
        xray_lambda::annotate!("table", &self.table);
        xray_lambda::annotate!("ratio", 0.5);
        xray_lambda::annotate!("hit", true);
        xray_lambda::metadata!("request", &serde_json::json!({ "key_length": key.len() }));
        if key.is_empty() {
            return Err("empty".into());
        }
        Ok(key.len())
    }

    #[xray_lambda::xray_aws(name = "no result")]
    async fn ping(&self) {}
}

fn main() {
    let repository = Repository { table: "orders".into() };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(runtime.block_on(repository.count("abc")), Ok(3));
    runtime.block_on(repository.ping());
}
