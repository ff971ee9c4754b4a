//! Where the processor time of a scenario went: the server's, its writing thread's
//! (`coper-writer`, through which every decision passes in order), and the simulated kiosks' (this
//! process). Read from `/proc` before and after the measured part, so a scenario can print each
//! per booking and the ceiling it sets: the server and the simulated kiosks share the machine's
//! cores, and the writer is one thread.

use std::time::Instant;

/// Processor seconds used so far by a process, one of its threads by name, and this process;
/// and the bytes the process has had written to disk.
#[derive(Clone, Copy)]
struct Reading {
    at: Instant,
    server: f64,
    writer: f64,
    kiosks: f64,
    disk_written: f64,
}

/// Processor time of the server (`pid`) and of this process from [`CpuMeter::start`] on.
pub struct CpuMeter {
    pid: u32,
    start: Reading,
}

/// The processor time of a measured part, in seconds.
pub struct CpuUse {
    wall: f64,
    server: f64,
    writer: f64,
    kiosks: f64,
    disk_written: f64,
}

/// User and system time of a `/proc/…/stat` file, in seconds. The fields after the command's
/// closing parenthesis: utime and stime are the 12th and 13th, in `USER_HZ` (100 on Linux).
fn stat_seconds(path: &str) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((comm, ticks / 100.0))
}

/// Seconds used by the thread of `pid` named `name` (0 when there is none).
fn thread_seconds(pid: u32, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|task| stat_seconds(&format!("{}/stat", task.path().display())))
        .filter(|(comm, _)| comm == name)
        .map(|(_, seconds)| seconds)
        .sum()
}

/// Bytes the storage layer wrote for `pid` (`write_bytes` of `/proc/…/io`): its database's log,
/// checkpoints and files, whether or not the page cache has flushed them yet.
fn disk_written(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("write_bytes:"))
                .and_then(|n| n.trim().parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
}

fn read(pid: u32) -> Reading {
    let seconds = |path: &str| stat_seconds(path).map_or(f64::NAN, |(_, s)| s);
    Reading {
        at: Instant::now(),
        server: seconds(&format!("/proc/{pid}/stat")),
        writer: thread_seconds(pid, "coper-writer"),
        kiosks: seconds("/proc/self/stat"),
        disk_written: disk_written(pid),
    }
}

impl CpuMeter {
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            start: read(pid),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let end = read(self.pid);
        CpuUse {
            wall: (end.at - self.start.at).as_secs_f64(),
            server: end.server - self.start.server,
            writer: end.writer - self.start.writer,
            kiosks: end.kiosks - self.start.kiosks,
            disk_written: end.disk_written - self.start.disk_written,
        }
    }
}

impl CpuUse {
    /// One line: the time per booking of each, how busy the writer was, and the two ceilings
    /// they set on `cores` cores — all work shared by the cores, and the writer on one.
    pub fn per_booking(&self, bookings: usize) -> String {
        let n = bookings.max(1) as f64;
        let per = |seconds: f64| seconds * 1e3 / n;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        format!(
            "processor time per booking: server {:.2} ms (its writer {:.2} ms, busy {:.0} % of the \
             run), simulated kiosks {:.2} ms; ceilings on these {cores} cores: {:.0}/s for all of \
             it, {:.0}/s for the writer alone",
            per(self.server),
            per(self.writer),
            100.0 * self.writer / self.wall.max(f64::EPSILON),
            per(self.kiosks),
            cores * 1e3 / (per(self.server) + per(self.kiosks)),
            1e3 / per(self.writer),
        )
    }

    /// One line for a part where nothing happened but `kiosks` kiosks being connected: what the
    /// server spends on them anyway, a second and a second per kiosk, and what it writes to disk.
    pub fn idle(&self, kiosks: usize) -> String {
        let wall = self.wall.max(f64::EPSILON);
        format!(
            "idle with {kiosks} kiosks connected: server {:.1} ms of processor a second ({:.0} µs \
             a second per kiosk; its writer {:.1} ms), {:.0} KiB written to disk a second",
            self.server * 1e3 / wall,
            self.server * 1e6 / wall / kiosks.max(1) as f64,
            self.writer * 1e3 / wall,
            self.disk_written / 1024.0 / wall,
        )
    }
}
