//! The per-kiosk limits on guessing: one sliding window of recent attempts, used for wrong
//! operator passwords and for the public self-check. Kept in memory: a restart forgets them,
//! which costs an attacker a reboot of a kiosk in a public office.

use std::{
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// At most `max` events in any `window`.
pub(super) struct SlidingWindow {
    max: usize,
    window: Duration,
    events: Mutex<Vec<Instant>>,
}

impl SlidingWindow {
    pub(super) const fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            events: Mutex::new(Vec::new()),
        }
    }

    /// Whether the window already holds `max` events.
    pub(super) fn is_full(&self) -> bool {
        self.recent().len() >= self.max
    }

    /// Count one event.
    pub(super) fn record(&self) {
        self.recent().push(Instant::now());
    }

    /// Count one event unless the window is full: whether it was counted.
    pub(super) fn try_record(&self) -> bool {
        let mut events = self.recent();
        if events.len() >= self.max {
            return false;
        }
        events.push(Instant::now());
        true
    }

    /// The events still inside the window (older ones are forgotten).
    fn recent(&self) -> MutexGuard<'_, Vec<Instant>> {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.retain(|t| t.elapsed() < self.window);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_refuses_until_its_events_age_out() {
        let limit = SlidingWindow::new(2, Duration::from_millis(50));
        assert!(limit.try_record());
        limit.record();
        assert!(limit.is_full());
        assert!(!limit.try_record());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!limit.is_full());
        assert!(limit.try_record());
    }
}
