//! Kiosks' changes are read first in a child process with bounded memory and time, because
//! Automerge 0.12 can be made to panic, or to allocate without bound, by a few hundred crafted
//! bytes (found by fuzzing: docs/SECURITY.md). The child (`coper-server check-changes`, this very
//! binary) only parses the changes a sync message carries; if it exits cleanly within its
//! limits, the server applies the message for real. A message it refuses ends the session as a
//! protocol error, and the server never spent more than the child's limits on it.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The child's address space: what parsing a message of at most `sync_message_bytes` needs,
/// many times over, and far from what could hurt the server.
pub const MEMORY_BYTES: u64 = 1 << 30;
/// The child's time: a real message is parsed in milliseconds.
pub const TIME: Duration = Duration::from_secs(5);

/// How to run the check: the server binary to start as the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub executable: PathBuf,
}

impl Sandbox {
    /// Whether `changes` (a sync message's change chunks, joined) parse within the limits.
    /// Blocking: call it on the blocking pool.
    pub fn changes_parse(&self, changes: &[u8]) -> bool {
        let mut command = Command::new(&self.executable);
        command
            .arg("check-changes")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        limit_memory(&mut command);
        let Ok(mut child) = command.spawn() else {
            tracing::error!(executable = %self.executable.display(), "cannot start the changes check");
            return false;
        };
        if let Some(mut stdin) = child.stdin.take()
            && stdin.write_all(changes).is_err()
        {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if started.elapsed() < TIME => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }
}

#[cfg(unix)]
fn limit_memory(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `setrlimit` is async-signal-safe and touches nothing of the parent's.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MEMORY_BYTES,
                rlim_max: MEMORY_BYTES,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(not(unix))]
fn limit_memory(_command: &mut Command) {}

/// The child's side: read the changes from standard input and parse them into an empty
/// document. Exits 0 when they parse, 1 when Automerge refuses them (a panic or an allocation
/// beyond the limit ends the process otherwise, which the parent reads as a refusal too).
pub fn check_changes_from_stdin() -> ! {
    let mut bytes = Vec::new();
    if std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).is_err() {
        std::process::exit(1);
    }
    let mut doc = automerge::AutoCommit::new();
    std::process::exit(if doc.load_incremental(&bytes).is_ok() {
        0
    } else {
        1
    });
}
