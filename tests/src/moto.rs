//! moto's server on loopback: a real DynamoDB-compatible HTTP endpoint.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
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
        let port_arg = port.to_string();
        let spawn = |program: &str, pre: &[&str]| {
            Command::new(program)
                .args(pre)
                .args(["-H", "127.0.0.1", "-p", &port_arg])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        let child = spawn("moto_server", &[])
            .or_else(|_| spawn("python3", &["-m", "moto.server"]))
            .map_err(|e| {
                format!("cannot start moto ({e}); install it: pip install 'moto[server]'")
            })?;
        let mut moto = Moto { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err("moto_server did not come up within 30 s".into());
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
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

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
