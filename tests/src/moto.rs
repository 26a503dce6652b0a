//! moto's server on loopback: a real DynamoDB-compatible HTTP endpoint.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs moto under a watcher shell that reads the test process's end of a pipe: when the test
/// process ends, however it ends (a harness held in a `static` is never dropped), the pipe
/// closes, the watcher kills moto, and nothing outlives the test run. (A background job's
/// stdin is `/dev/null` in `sh`: the pipe is read through fd 3.) The shell also exits
/// when moto does, so a missing moto shows as an exited child.
const WATCHED: &str = r#"
if command -v moto_server >/dev/null 2>&1; then set -- moto_server "$@"; else set -- python3 -m moto.server "$@"; fi
exec 3<&0
"$@" </dev/null >/dev/null 2>&1 & moto=$!
{ cat <&3 >/dev/null; kill "$moto" 2>/dev/null; } &
wait "$moto"
"#;

/// A running `moto_server`, ended when dropped or when the test process ends.
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
        let child = Command::new("sh")
            .args([
                "-c",
                WATCHED,
                "sh",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
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
        // Closing the pipe is the watcher's signal: it kills moto, then exits.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
