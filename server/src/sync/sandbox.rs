//! Kiosks' changes are read first in a child process with bounded memory and time, because
//! Automerge 0.12 can be made to panic, or to allocate without bound, by a few hundred crafted
//! bytes (found by fuzzing: docs/SECURITY.md). The child (`coper-server check-changes`, this very
//! binary) only parses the changes a sync message carries; if it answers that they parse, within
//! its limits, the server applies the message for real. A message it refuses ends the session as
//! a protocol error, and the server never spent more than the child's limits on it.
//!
//! The child is started once and kept: it reads one message after another (a little-endian
//! `u32` length, then the bytes) and answers each with one byte. Starting a process per message
//! cost 14 ms with one kiosk connected and 53 ms with 200 (a fork of a large process), the
//! largest stage of a booking (`coper-loadgen trace`, docs/BENCHMARKS.md). A child that dies or
//! overruns its time on a message is killed, that message refused, and a fresh child started
//! for the next.

use std::{
    io::{Read, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

/// The child's address space: what parsing a message of at most `sync_message_bytes` needs,
/// many times over, and far from what could hurt the server.
pub const MEMORY_BYTES: u64 = 1 << 30;
/// The child's time per message: a real message is parsed in milliseconds.
pub const TIME: Duration = Duration::from_secs(5);

/// How to run the check: the server binary to start as the child, and the child once started.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub executable: PathBuf,
    worker: Arc<Mutex<Option<Worker>>>,
}

/// A running child and its pipes.
#[derive(Debug)]
struct Worker {
    child: Child,
    input: ChildStdin,
    output: ChildStdout,
}

impl Sandbox {
    pub fn new(executable: PathBuf) -> Self {
        Self {
            executable,
            worker: Arc::default(),
        }
    }

    /// Whether `changes` (a sync message's change chunks, joined) parse within the limits.
    /// Blocking: call it on the blocking pool. One message at a time goes to the child.
    pub fn changes_parse(&self, changes: &[u8]) -> bool {
        let mut slot = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        // A child found dead before this message was handed over (it died on an earlier one,
        // or was killed) is no verdict on this one: start another and hand it over again.
        for _ in 0..2 {
            if slot.is_none() {
                *slot = self.start();
            }
            let Some(worker) = slot.as_mut() else {
                return false;
            };
            if !worker.hand_over(changes) {
                *slot = None;
                continue;
            }
            return match worker.answer() {
                Some(parses) => parses,
                None => {
                    // It died on this message or overran its time: refused, and dropped.
                    *slot = None;
                    false
                }
            };
        }
        false
    }

    fn start(&self) -> Option<Worker> {
        let mut command = Command::new(&self.executable);
        command
            .arg("check-changes")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        limit_memory(&mut command);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(executable = %self.executable.display(), error = %e, "cannot start the changes check");
                return None;
            }
        };
        let input = child.stdin.take()?;
        let output = child.stdout.take()?;
        Some(Worker {
            child,
            input,
            output,
        })
    }
}

impl Worker {
    /// Write one message to the child; false if the child is gone.
    fn hand_over(&mut self, changes: &[u8]) -> bool {
        let Ok(length) = u32::try_from(changes.len()) else {
            return false;
        };
        self.input
            .write_all(&length.to_le_bytes())
            .and_then(|()| self.input.write_all(changes))
            .and_then(|()| self.input.flush())
            .is_ok()
    }

    /// The child's answer within [`TIME`]: `None` if it died or overran.
    fn answer(&mut self) -> Option<bool> {
        if !readable_within(&self.output, TIME) {
            return None;
        }
        let mut answer = [0u8; 1];
        self.output.read_exact(&mut answer).ok()?;
        Some(answer[0] == 1)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the child's answer is there to read before `limit` passes (or its pipe closed).
#[cfg(unix)]
fn readable_within(output: &ChildStdout, limit: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: output.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut poll, 1, millis) };
    ready == 1
}

#[cfg(not(unix))]
fn readable_within(_output: &ChildStdout, _limit: Duration) -> bool {
    true
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

/// The child's side: read messages from standard input, one after another, and parse each
/// into an empty document; answer 1 when they parse, 0 when Automerge refuses them (a panic or an
/// allocation beyond the limit ends the process, which the parent reads as a refusal). Exits
/// when the parent closes the pipe.
pub fn check_changes_from_stdin() -> ! {
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    loop {
        let mut length = [0u8; 4];
        if input.read_exact(&mut length).is_err() {
            std::process::exit(0);
        }
        let mut bytes = vec![0u8; u32::from_le_bytes(length) as usize];
        if input.read_exact(&mut bytes).is_err() {
            std::process::exit(1);
        }
        let parses = automerge::AutoCommit::new()
            .load_incremental(&bytes)
            .is_ok();
        if output
            .write_all(&[u8::from(parses)])
            .and_then(|()| output.flush())
            .is_err()
        {
            std::process::exit(1);
        }
    }
}
