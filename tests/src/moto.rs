//! moto's server on loopback: a real DynamoDB-compatible HTTP endpoint.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::watched::Watched;

/// moto's server, whichever way it is installed.
const MOTO: &str = r#"
if command -v moto_server >/dev/null 2>&1; then exec moto_server "$@"; else exec python3 -m moto.server "$@"; fi
"#;

/// A running `moto_server`, ended when dropped or when the test process ends.
#[derive(Debug)]
pub struct Moto {
    server: Watched,
    address: SocketAddr,
}

impl Moto {
    /// Starts `moto_server` (or `python3 -m moto.server`) on a free loopback port and waits
    /// until it accepts connections.
    ///
    /// # Errors
    /// When neither command runs or the server does not come up in 30 s; the message says how
    /// to install moto.
    pub fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let server = Watched::quiet(
            "sh",
            &["-c", MOTO, "sh", "-H", "127.0.0.1", "-p", &port.to_string()],
        )
        .map_err(|e| format!("cannot start moto ({e}); install it: pip install 'moto[server]'"))?;
        let mut moto = Moto { server, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err("moto_server did not come up within 30 s".into());
            }
            if let Some(status) = moto.server.exited() {
                return Err(format!(
                    "moto_server exited: {status}; install it: pip install 'moto[server]'"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    /// `http://127.0.0.1:PORT`
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Makes the table `name` (key `id`, a string; on demand), as the tests' functions read it.
///
/// # Errors
/// The SDK's, when the endpoint refuses.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), aws_sdk_dynamodb::Error> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    Ok(())
}
