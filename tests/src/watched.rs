//! Child processes that end with the test process, however it ends.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// Runs the command under a watcher shell that reads the test process's end of a pipe: when
/// the test process ends, however it ends (a harness held in a `static` is never dropped), the
/// pipe closes, the guard sends the command `SIGTERM` (and `SIGKILL` if it is still there five
/// seconds later), and nothing outlives the test run. (A background job's stdin is `/dev/null`
/// in `sh`: the pipe is read through fd 3.) The shell exits with the command, so a command that
/// cannot run shows as an exited child; its guard goes with it (a guard left behind could
/// signal a process that reused the pid).
const WATCHER: &str = r#"
exec 3<&0
"$@" </dev/null & child=$!
{
  cat <&3
  kill "$child"
  n=0
  while kill -0 "$child" && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  kill -9 "$child"
} </dev/null >/dev/null 2>&1 & guard=$!
wait "$child"; status=$?
kill "$guard" 2>/dev/null
exit "$status"
"#;

/// A running command, ended when dropped or when the test process ends.
#[derive(Debug)]
pub struct Watched {
    child: Child,
}

impl Watched {
    /// Starts `command` (its program, arguments, the variables set or removed on it, and its
    /// working directory; not `env_clear`) under the watcher. Its stdout and stderr go where
    /// `stdout` and `stderr` say.
    ///
    /// # Errors
    /// When `sh` cannot be started.
    pub fn spawn(command: &Command, stdout: Stdio, stderr: Stdio) -> std::io::Result<Self> {
        let mut watcher = Command::new("sh");
        watcher
            .args(["-c", WATCHER, "sh"])
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr);
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => watcher.env(key, value),
                None => watcher.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            watcher.current_dir(dir);
        }
        Ok(Watched {
            child: watcher.spawn()?,
        })
    }

    /// Starts `command` with its stdout discarded and its stderr written to the file `log`.
    ///
    /// # Errors
    /// When the file cannot be made or `sh` cannot be started.
    pub fn logging_to(command: &Command, log: &Path) -> std::io::Result<Self> {
        Self::spawn(
            command,
            Stdio::null(),
            Stdio::from(std::fs::File::create(log)?),
        )
    }

    /// Starts `program` with `args`, its output discarded.
    ///
    /// # Errors
    /// When `sh` cannot be started.
    pub fn quiet<S: AsRef<OsStr>>(program: &str, args: &[S]) -> std::io::Result<Self> {
        let mut command = Command::new(program);
        command.args(args);
        Self::spawn(&command, Stdio::null(), Stdio::null())
    }

    /// The exit status, if the command (and so its watcher) has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // Closing the pipe is the watcher's signal: it ends the command, then exits.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Watched;

    /// Starts `script` under the watcher; returns it and the pid the script wrote.
    fn started(script: &str) -> (Watched, String) {
        let file = std::env::temp_dir().join(format!(
            "xray-lambda-watched-{}-{}",
            std::process::id(),
            script.len()
        ));
        let line = format!("echo $$ > {}; {script}", file.display());
        let watched = Watched::quiet("sh", &["-c", &line]).expect("sh");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pid = std::fs::read_to_string(&file).unwrap_or_default();
            if pid.ends_with('\n') {
                let _ = std::fs::remove_file(&file);
                return (watched, pid.trim().to_owned());
            }
            assert!(Instant::now() < deadline, "the script did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn alive(pid: &str) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn a_command_that_ignores_sigterm_is_killed_when_dropped() {
        let (watched, pid) = started("trap '' TERM; while :; do sleep 0.1; done");
        assert!(alive(&pid));
        let dropped = Instant::now();
        drop(watched);
        assert!(!alive(&pid), "{pid} outlived its watcher");
        // SIGTERM first, SIGKILL after the grace period.
        let took = dropped.elapsed();
        assert!(took >= Duration::from_secs(4), "{took:?}");
    }

    #[test]
    fn a_command_is_ended_by_sigterm_when_dropped() {
        let (watched, pid) = started("while :; do sleep 0.1; done");
        drop(watched);
        assert!(!alive(&pid), "{pid} outlived its watcher");
    }
}
