//! The reminder before the day, and the quiet hours: both read the Questura's settings
//! (`reminder_days_before`, `reminder_at`, `quiet_from`, `quiet_until`) in its time zone.

use coper_shared::{jiff::Timestamp, notices::in_quiet_hours};

use crate::{
    AppState,
    store::{self, StoreError, settings},
};

/// Whether no message may leave now (the Questura's quiet hours, in its time zone).
pub async fn quiet_now(state: &AppState, now: Timestamp) -> Result<bool, StoreError> {
    state
        .db
        .read(move |conn| {
            let Some(questura) = settings::questura(conn)? else {
                return Ok(false);
            };
            let m = settings::messaging(conn)?;
            let local = now.to_zoned(questura.time_zone).time();
            Ok(in_quiet_hours(local, m.quiet_from, m.quiet_until))
        })
        .await
}

/// Queue the reminders whose moment has come. How many.
pub async fn queue_due(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now();
    state
        .db
        .call(move |conn| store::notices::queue_reminders(conn, now))
        .await
}
