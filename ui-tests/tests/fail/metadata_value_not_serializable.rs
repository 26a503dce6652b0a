struct Secret;

fn record(secret: Secret) {
    xray_lambda::metadata!("secret", secret);
}

fn main() {}
