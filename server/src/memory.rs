//! The heap a burst of work left free, handed back to the system once the server is quiet again
//! (glibc only: `malloc_trim`). Started by `serve`.

/// Hand the heap a burst left free back to the system once the server is quiet again. glibc's
/// malloc returns memory freed in the middle of its heaps only when asked: after hundreds of
/// kiosks started their sessions together, the server's resident memory stayed at the burst's
/// peak (100–280 MiB from one run to the next for the same 500 kiosks, of which about 90 MiB
/// live). Asked under load it costs dearly (every page given back is faulted in again: a third
/// of the bookings a second at 64 in flight), so only after a busy spell, once.
pub async fn give_back_freed_memory() {
    /// How often the server's processor time is looked at.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(2);
    /// Below this share of one core over `EVERY`, the server is quiet.
    const QUIET: f64 = 0.1;
    fn processor_seconds() -> f64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
        // SAFETY: getrusage fills the struct it is given and reads nothing else.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
            return 0.0;
        }
        // SAFETY: filled by the successful call above.
        let usage = unsafe { usage.assume_init() };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = processor_seconds();
    let mut bursts = AfterBursts::default();
    loop {
        every.tick().await;
        let now = processor_seconds();
        let quiet = now - last < QUIET * EVERY.as_secs_f64();
        last = now;
        if bursts.quiet_again(quiet) {
            // SAFETY: malloc_trim only releases pages malloc holds free; no memory of ours moves.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    }
}

/// Whether a quiet spell follows a busy one: true once per burst, at its first quiet look.
#[derive(Debug, Default)]
struct AfterBursts {
    busy_since_last: bool,
}

impl AfterBursts {
    fn quiet_again(&mut self, quiet: bool) -> bool {
        if !quiet {
            self.busy_since_last = true;
            return false;
        }
        std::mem::take(&mut self.busy_since_last)
    }
}

#[cfg(test)]
mod tests {
    use super::AfterBursts;

    /// The heap is given back once after each busy spell, never while busy, never twice in a row.
    #[test]
    fn freed_memory_is_given_back_once_after_each_burst() {
        let mut bursts = AfterBursts::default();
        let looks = [
            // (quiet, given back)
            (true, false), // started quiet: nothing to give back
            (false, false),
            (false, false), // busy: never
            (true, true),   // quiet again: once
            (true, false),
            (false, false),
            (true, true),
        ];
        for (i, (quiet, expected)) in looks.into_iter().enumerate() {
            assert_eq!(bursts.quiet_again(quiet), expected, "look {i}");
        }
    }
}
