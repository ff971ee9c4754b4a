//! The figures `/metrics` reads from the database at each scrape: totals that survive restarts
//! (verdicts by outcome, notices), and the kiosks silent for longer than the settings allow.

use jiff::Timestamp;
use rusqlite::Connection;

use super::{StoreError, instant_text, settings};

/// What the database says of the service now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Kiosks' requests decided since the database was made, by outcome (`confirmed`,
    /// `relocated`, `rejected`, `cancelled`).
    pub verdicts: Vec<(String, i64)>,
    /// Kiosks enrolled and not revoked.
    pub kiosks_enrolled: i64,
    /// Of those, the ones not heard from for longer than the settings' `kiosk_silent_minutes`.
    pub kiosks_silent: i64,
    pub silent_after_minutes: i64,
    /// Notices waiting to be sent (not sent, not given up).
    pub notices_queued: i64,
    /// Notices given up after their last attempt.
    pub notices_failed: i64,
}

pub fn figures(conn: &Connection, now: Timestamp) -> Result<Figures, StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT outcome, count(*) FROM sync_verdicts GROUP BY outcome")?;
    let verdicts = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let silent_after_minutes = settings::settings(conn)?.map_or(30, |s| s.kiosk_silent_minutes);
    let cutoff = instant_text(now - jiff::SignedDuration::from_mins(silent_after_minutes));
    let (kiosks_enrolled, kiosks_silent) = conn
        .prepare_cached(
            "SELECT count(*), count(*) FILTER (WHERE last_seen_at IS NULL OR last_seen_at < ?1)
           FROM kiosks WHERE revoked_at IS NULL",
        )?
        .query_row([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (notices_queued, notices_failed) = conn
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL),
                count(*) FILTER (WHERE failed_at IS NOT NULL)
           FROM notices",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Figures {
        verdicts,
        kiosks_enrolled,
        kiosks_silent,
        silent_after_minutes,
        notices_queued,
        notices_failed,
    })
}

/// Bytes of the database file in use (pages × page size).
pub fn database_bytes(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )?
        .query_row([], |r| r.get(0))?)
}
