//! The notices outbox (`notices`): messages to people about their bookings, written in the
//! transaction of the change that causes them (a verdict, a move, a cancellation, a no-show), and
//! marked sent or failed by the sender. Only bookings whose person consented get any.

use coper_shared::{
    jiff::Timestamp,
    notices::{Facts, NoticeKind, compose},
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, instant_text, parse_date, parse_time, settings};

/// Queue `kind` for appointment `id`, one notice per channel the person gave (SMS to the phone,
/// e-mail to the address), in their language; nothing when they did not consent. `reason`: why
/// the Questura moved or cancelled it. How many were queued.
pub fn enqueue(
    conn: &Connection,
    id: &str,
    kind: NoticeKind,
    reason: &str,
    now: Timestamp,
) -> Result<usize, StoreError> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT a.booking_code, a.slot_date, a.slot_time, a.phone, a.email, a.notice_lang,
                    p.name
             FROM appointments a LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
             WHERE a.id = ?1 AND a.consent_at IS NOT NULL",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()?;
    let Some((code, date, time, phone, email, lang, partner)) = row else {
        return Ok(0);
    };
    let questura = settings::questura(conn)?
        .map(|q| q.name)
        .unwrap_or_default();
    let facts = Facts {
        code,
        date: Some(parse_date(&date)?),
        time: Some(parse_time(&time)?),
        place: questura
            .strip_prefix("Questura di ")
            .unwrap_or(&questura)
            .to_owned(),
        reason: reason.to_owned(),
        office: partner.unwrap_or_else(|| "un ente convenzionato".into()),
    };
    let lang = lang.unwrap_or_else(|| "it".into());
    let body = compose(kind, &lang, &facts).text;
    let mut queued = 0;
    for (channel, recipient) in [("sms", phone), ("email", email)] {
        let Some(recipient) = recipient else { continue };
        conn.execute(
            "INSERT INTO notices (appointment_id, kind, channel, recipient, lang, body,
                 created_at, due_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![
                id,
                kind.key(),
                channel,
                recipient,
                lang,
                body,
                instant_text(now)
            ],
        )?;
        queued += 1;
    }
    Ok(queued)
}

/// Forget the recipients of the notices about bookings that ended (delivered, cancelled,
/// no-show) before `before`, as their phone and e-mail are forgotten; the rest of each notice
/// stays, as the record of what was said. How many.
pub fn forget_recipients(conn: &Connection, before: Timestamp) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE notices SET recipient = '' WHERE recipient <> '' AND appointment_id IN (
             SELECT id FROM appointments
             WHERE (status = 'delivered' AND delivered_at < ?1)
                OR (status = 'cancelled' AND cancelled_at < ?1)
                OR (status = 'no_show' AND no_show_at < ?1))",
        [instant_text(before)],
    )?)
}

/// A notice waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub id: i64,
    pub channel: String,
    pub recipient: String,
    pub body: String,
    pub attempts: i64,
}

/// Up to `limit` notices due at `now`, oldest first.
pub fn due(conn: &Connection, now: Timestamp, limit: usize) -> Result<Vec<Due>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, channel, recipient, body, attempts FROM notices
         WHERE sent_at IS NULL AND failed_at IS NULL AND due_at <= ?1
         ORDER BY due_at, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![instant_text(now), limit as i64], |r| {
        Ok(Due {
            id: r.get(0)?,
            channel: r.get(1)?,
            recipient: r.get(2)?,
            body: r.get(3)?,
            attempts: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Notice `id` was handed to its channel.
pub fn sent(conn: &Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE notices SET sent_at = ?2, attempts = attempts + 1 WHERE id = ?1",
        params![id, instant_text(now)],
    )?;
    Ok(())
}

/// Notice `id` was not sent: tried again at `retry_at`, or given up (`None`).
pub fn not_sent(
    conn: &Connection,
    id: i64,
    error: &str,
    retry_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), StoreError> {
    match retry_at {
        Some(at) => conn.execute(
            "UPDATE notices SET attempts = attempts + 1, last_error = ?2, due_at = ?3
             WHERE id = ?1",
            params![id, error, instant_text(at)],
        )?,
        None => conn.execute(
            "UPDATE notices SET attempts = attempts + 1, last_error = ?2, failed_at = ?3
             WHERE id = ?1",
            params![id, error, instant_text(now)],
        )?,
    };
    Ok(())
}

/// One notice as the administration lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub created_at: String,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub lang: String,
    pub body: String,
    pub sent_at: Option<String>,
    pub failed_at: Option<String>,
    pub last_error: Option<String>,
    pub booking_code: String,
}

/// The latest `limit` notices, newest first.
pub fn latest(conn: &Connection, limit: usize) -> Result<Vec<Listed>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.created_at, n.kind, n.channel, n.recipient, n.lang, n.body, n.sent_at,
                n.failed_at, n.last_error, a.booking_code
         FROM notices n JOIN appointments a ON a.id = n.appointment_id
         ORDER BY n.id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(Listed {
            created_at: r.get(0)?,
            kind: r.get(1)?,
            channel: r.get(2)?,
            recipient: r.get(3)?,
            lang: r.get(4)?,
            body: r.get(5)?,
            sent_at: r.get(6)?,
            failed_at: r.get(7)?,
            last_error: r.get(8)?,
            booking_code: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
