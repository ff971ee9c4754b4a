//! Sending the notices queued in the outbox (`store::notices`): a task that takes what is due,
//! hands each to its channel, and records the outcome, trying again with a growing wait (1, 2, 4,
//! 8 minutes) and giving up after [`ATTEMPTS`], when the administration page lists it with the
//! reason. A channel that fails or hangs never holds a booking or a page: they only write rows.
//!
//! The one channel so far is [`LogChannel`]: nothing leaves the server, the notices are marked
//! sent and read on `/admin/notices` (the demo, and a Questura with no gateway yet). SMTP (lettre)
//! and an HTTP SMS gateway are the next to add, behind the same [`Channel`].

use std::{sync::Arc, time::Duration};

use coper_shared::jiff::SignedDuration;

use crate::{AppState, store::notices};

/// Attempts before a notice is given up.
pub const ATTEMPTS: i64 = 5;
/// How often the sender looks for notices due.
const EVERY: Duration = Duration::from_secs(5);
/// Notices sent per round at most: a burst (a closed day) goes out over a few rounds.
const PER_ROUND: usize = 50;

/// Where a notice goes: `channel` is `sms` or `email`.
pub trait Channel: Send + Sync {
    fn send(&self, channel: &str, recipient: &str, body: &str) -> Result<(), String>;
}

/// Nothing leaves the server: the notice is recorded as sent and shown to the administration.
pub struct LogChannel;

impl Channel for LogChannel {
    fn send(&self, channel: &str, _recipient: &str, _body: &str) -> Result<(), String> {
        // Identifiers only in the log: never the recipient or the text.
        tracing::debug!(channel, "notice kept for the administration page");
        Ok(())
    }
}

/// Send what is due, for ever.
pub async fn run_sender(state: AppState, channel: Arc<dyn Channel>) {
    let mut every = tokio::time::interval(EVERY);
    loop {
        every.tick().await;
        if let Err(e) = send_due(&state, channel.clone()).await {
            tracing::error!(error = %e, "notices not sent this round");
        }
    }
}

/// One round: every notice due now, each sent and recorded on its own.
pub async fn send_due(
    state: &AppState,
    channel: Arc<dyn Channel>,
) -> Result<usize, crate::store::StoreError> {
    let now = state.clock.now();
    let due = state
        .db
        .read(move |conn| notices::due(conn, now, PER_ROUND))
        .await?;
    let count = due.len();
    for notice in due {
        let channel = channel.clone();
        let body = notice.body.clone();
        let (kind, recipient) = (notice.channel.clone(), notice.recipient.clone());
        let outcome = tokio::task::spawn_blocking(move || channel.send(&kind, &recipient, &body))
            .await
            .unwrap_or_else(|_| Err("the channel stopped".into()));
        let now = state.clock.now();
        state
            .db
            .call(move |conn| match outcome {
                Ok(()) => notices::sent(conn, notice.id, now),
                Err(error) => {
                    let retry = (notice.attempts + 1 < ATTEMPTS)
                        .then(|| now + SignedDuration::from_mins(1 << notice.attempts.min(10)));
                    notices::not_sent(conn, notice.id, &error, retry, now)
                }
            })
            .await?;
    }
    Ok(count)
}
