//! The status bar: online or not, requests the server has not decided, the last sync in the
//! Questura's time, the places this kiosk can still confirm by itself today, and the Questura.

use coper_shared::jiff::{Timestamp, tz::TimeZone};

use super::Controller;

/// The Questura's time zone (UTC until the directory arrives).
pub(super) fn zone(c: &Controller) -> TimeZone {
    c.core()
        .questura()
        .and_then(|q| TimeZone::get(&q.time_zone).ok())
        .unwrap_or(TimeZone::UTC)
}

/// Show the core's status now.
pub(super) fn show(c: &Controller) {
    let status = c.core().status();
    let last = status
        .last_sync_ms
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_zoned(zone(c)).strftime("%H:%M").to_string())
        .unwrap_or_else(|| c.tr("never"));
    let questura = c.core().questura();
    // Only refusals a person at the office must act on; others pass with the next session.
    let refusal = match status.refused.as_deref() {
        Some(crate::core::PROTOCOL_VERSION_REFUSAL) => {
            c.tr("Update this kiosk: it cannot talk to the Questura's server")
        }
        Some("revoked" | "unknown_kiosk") => c.tr("This kiosk is not enabled: call the Questura"),
        _ => String::new(),
    };
    c.with_api(|api| {
        api.set_refusal(refusal.into());
        api.set_online(status.online);
        api.set_pending(status.pending as i32);
        api.set_lease_places(status.lease_places_today as i32);
        api.set_last_sync(last.into());
        if let Some(q) = questura {
            api.set_questura_name(q.name.into());
        }
    });
}
