//! The notices outbox (`notices`): messages to people about their bookings, written in the
//! transaction of the change that causes them (a verdict, a move, a cancellation, a no-show, the
//! reminder's hour, an import that brings a watched permit), and marked handed, sent or failed
//! by the sender. Only people who consented get any, and nobody on the opt-out list
//! (`notice_opt_outs`, keyed hashes of the contacts that said STOP or followed the e-mail link).
//! The texts are the shipped ones unless the administration edited them (`notice_templates`).

use coper_shared::{
    jiff::Timestamp,
    notices::{Facts, NoticeKind, check_template, compose_with, reminder_moment, template},
};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{StoreError, audit_from, instant_text, parse_date, parse_time, settings};

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
    enqueue_with_link(conn, id, kind, reason, "", now)
}

/// [`enqueue`], with the person's pre-check page for `{link}`.
pub fn enqueue_with_link(
    conn: &Connection,
    id: &str,
    kind: NoticeKind,
    reason: &str,
    link: &str,
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
        .prepare_cached(
            "SELECT a.booking_code, a.slot_date, a.slot_time, a.phone, a.email, a.notice_lang,
                    p.name
             FROM appointments a LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
             WHERE a.id = ?1 AND a.consent_at IS NOT NULL
               AND (NOT ?2 OR a.status IN ('booked', 'checked_in'))",
        )?
        .query_row(
            // The pre-check's messages are for a booking still to come; the others (a
            // cancellation, a no-show) are about one that ended.
            params![
                id,
                matches!(kind, NoticeKind::Precheck | NoticeKind::PrecheckUpdate)
            ],
            |r| Row::try_from(r),
        )
        .optional()?;
    let Some((code, date, time, phone, email, lang, partner)) = row else {
        return Ok(0);
    };
    let facts = Facts {
        code,
        date: Some(parse_date(&date)?),
        time: Some(parse_time(&time)?),
        place: place(conn)?,
        reason: reason.to_owned(),
        office: partner.unwrap_or_else(|| "un ente convenzionato".into()),
        link: link.to_owned(),
    };
    let lang = lang.unwrap_or_else(|| "it".into());
    // One text for every channel.
    let body = body_of(conn, kind, &lang, &facts)?;
    let mut queued = 0;
    for (channel, recipient) in [("sms", phone), ("email", email)] {
        let Some(recipient) = recipient else { continue };
        let to = (channel, recipient.as_str());
        queued += usize::from(insert(conn, Some(id), kind, to, &lang, &body, now)?);
    }
    Ok(queued)
}

/// Tell the person of news on their pre-check page, at `due` (now, or once the gap since the
/// last message has passed): nothing when a message about it is already waiting to go, which
/// will bring them to the page anyway. How many were queued.
pub fn precheck_news(
    conn: &Connection,
    appointment: &str,
    link: &str,
    now: Timestamp,
    due: Timestamp,
) -> Result<usize, StoreError> {
    let waiting: bool = conn
        .prepare_cached(
            "SELECT count(*) > 0 FROM notices WHERE appointment_id = ?1 AND kind = ?2
           AND sent_at IS NULL AND failed_at IS NULL AND recipient <> ''",
        )?
        .query_row(
            params![appointment, NoticeKind::PrecheckUpdate.key()],
            |r| r.get(0),
        )?;
    if waiting {
        return Ok(0);
    }
    let queued = enqueue_with_link(conn, appointment, NoticeKind::PrecheckUpdate, "", link, now)?;
    conn.prepare_cached(
        "UPDATE notices SET due_at = ?3 WHERE appointment_id = ?1 AND kind = ?2
           AND sent_at IS NULL AND failed_at IS NULL",
    )?
    .execute(params![
        appointment,
        NoticeKind::PrecheckUpdate.key(),
        instant_text(due)
    ])?;
    Ok(queued)
}

/// The Questura's city, as messages name it ("Pavia").
pub fn place(conn: &Connection) -> Result<String, StoreError> {
    let questura = settings::questura(conn)?
        .map(|q| q.name)
        .unwrap_or_default();
    Ok(questura
        .strip_prefix("Questura di ")
        .unwrap_or(&questura)
        .to_owned())
}

/// Queue one notice of `kind` to `(channel, recipient)` about appointment `id` (or none),
/// unless the recipient opted out. Whether it was queued.
pub fn queue(
    conn: &Connection,
    id: Option<&str>,
    kind: NoticeKind,
    facts: &Facts,
    to: (&str, &str),
    lang: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let body = body_of(conn, kind, lang, facts)?;
    insert(conn, id, kind, to, lang, &body, now)
}

/// The message of `kind` in `lang`: the administration's texts where it edited them.
fn body_of(
    conn: &Connection,
    kind: NoticeKind,
    lang: &str,
    facts: &Facts,
) -> Result<String, StoreError> {
    let edited = edited_templates(conn)?;
    Ok(compose_with(kind, lang, facts, &|lang, kind| {
        edited
            .iter()
            .find(|(l, k, _)| l == lang && k == kind.key())
            .map(|(_, _, text)| text.clone())
    })
    .text)
}

/// Write one notice, unless its recipient opted out. Whether it was written.
fn insert(
    conn: &Connection,
    id: Option<&str>,
    kind: NoticeKind,
    (channel, recipient): (&str, &str),
    lang: &str,
    body: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    if opted_out(conn, channel, recipient)? {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO notices (appointment_id, kind, channel, recipient, lang, body,
             created_at, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        id,
        kind.key(),
        channel,
        recipient,
        lang,
        body,
        instant_text(now)
    ])?;
    Ok(true)
}

/// The texts the administration edited: (language, kind, text).
pub fn edited_templates(conn: &Connection) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT lang, kind, body FROM notice_templates")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Save the administration's text for `kind` in `lang`, checked first (a placeholder missing
/// or unknown is refused now, not when a message is sent); an empty text, or the shipped one,
/// goes back to the shipped one. Audited.
pub fn save_template(
    conn: &Connection,
    lang: &str,
    kind: NoticeKind,
    text: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Result<(), coper_shared::notices::TemplateError>, StoreError> {
    let text = text.trim();
    if text.is_empty() || Some(text) == template(lang, kind) {
        conn.prepare_cached("DELETE FROM notice_templates WHERE lang = ?1 AND kind = ?2")?
            .execute(params![lang, kind.key()])?;
    } else {
        if let Err(e) = check_template(kind, text) {
            return Ok(Err(e));
        }
        conn.prepare_cached(
            "INSERT INTO notice_templates (lang, kind, body, saved_at, saved_by)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (lang, kind) DO UPDATE SET body = ?3, saved_at = ?4, saved_by = ?5",
        )?
        .execute(params![lang, kind.key(), text, instant_text(now), actor])?;
    }
    audit_from(
        conn,
        now,
        actor,
        "notice_template.saved",
        &format!("{lang}/{}", kind.key()),
        &serde_json::json!({ "shipped": text.is_empty() || Some(text) == template(lang, kind) }),
        source,
    )?;
    Ok(Ok(()))
}

/// Every active booking whose reminder moment (`reminder_days_before` days before, at
/// `reminder_at`) has passed and whose slot has not, reminded once (`appointments.reminded_at`).
/// A booking made after its moment needs none: its confirmation was the reminder.
pub fn queue_reminders(conn: &mut Connection, now: Timestamp) -> Result<usize, StoreError> {
    let Some(questura) = settings::questura(conn)? else {
        return Ok(0);
    };
    let m = settings::messaging(conn)?;
    if m.reminder_days_before == 0 {
        return Ok(0);
    }
    let tz = questura.time_zone;
    let today = now.to_zoned(tz.clone()).date();
    let last = today
        .checked_add(coper_shared::jiff::Span::new().days(m.reminder_days_before))
        .map_err(|e| StoreError::InvalidData(e.to_string()))?;
    // Immediate, as every transaction of the writer (`Db::open`): it reads, then writes.
    let tx = conn.transaction()?;
    let candidates: Vec<(String, String, String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, slot_date, slot_time, created_at FROM appointments
             WHERE status = 'booked' AND consent_at IS NOT NULL AND reminded_at IS NULL
               AND slot_date BETWEEN ?1 AND ?2",
        )?;
        let rows = stmt.query_map([today.to_string(), last.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut queued = 0;
    for (id, date, time, created) in candidates {
        let day = parse_date(&date)?;
        let Some(moment) = reminder_moment(day, m.reminder_days_before, m.reminder_at)
            .and_then(|at| at.to_zoned(tz.clone()).ok())
            .map(|z| z.timestamp())
        else {
            continue;
        };
        if now < moment {
            continue;
        }
        let starts = day
            .to_datetime(parse_time(&time)?)
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(now);
        let created: Timestamp = created.parse().unwrap_or(now);
        if starts > now && created < moment {
            queued += enqueue(&tx, &id, NoticeKind::Reminder, "", now)?;
        }
        tx.prepare_cached("UPDATE appointments SET reminded_at = ?2 WHERE id = ?1")?
            .execute([&id, &instant_text(now)])?;
    }
    tx.commit()?;
    Ok(queued)
}

/// The keyed hash the opt-out list keeps of a contact: the same contact always gives the same
/// hash, and the list reads as nothing without the server's key.
fn recipient_hash(conn: &Connection, channel: &str, recipient: &str) -> Result<String, StoreError> {
    let key = settings::opt_out_key(conn, Timestamp::now())?;
    let normal = match channel {
        "email" => recipient.trim().to_lowercase(),
        _ => recipient.chars().filter(|c| !c.is_whitespace()).collect(),
    };
    let mut hash = Sha256::new();
    hash.update(key);
    hash.update(channel.as_bytes());
    hash.update([0]);
    hash.update(normal.as_bytes());
    Ok(hex::encode(hash.finalize()))
}

/// Whether `recipient` asked for no more messages on `channel`.
pub fn opted_out(conn: &Connection, channel: &str, recipient: &str) -> Result<bool, StoreError> {
    if recipient.is_empty() {
        return Ok(false);
    }
    let hash = recipient_hash(conn, channel, recipient)?;
    Ok(conn
        .prepare_cached("SELECT 1 FROM notice_opt_outs WHERE recipient_hash = ?1")?
        .query_row([hash], |_| Ok(()))
        .optional()?
        .is_some())
}

/// `recipient` asks for no more messages (`how`: `stop_reply` or `email_link`); the notices
/// still waiting for them are withdrawn. Audited without the contact. How many were withdrawn.
pub fn opt_out(
    conn: &Connection,
    channel: &str,
    recipient: &str,
    how: &str,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let hash = recipient_hash(conn, channel, recipient)?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO notice_opt_outs (recipient_hash, channel, at, how)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![hash, channel, instant_text(now), how])?;
    let withdrawn = conn
        .prepare_cached(
            "UPDATE notices SET failed_at = ?3, last_error = ?4
         WHERE channel = ?1 AND recipient = ?2 AND sent_at IS NULL AND failed_at IS NULL",
        )?
        .execute(params![channel, recipient, instant_text(now), OPTED_OUT])?;
    audit_from(
        conn,
        now,
        "persona",
        "notices.opted_out",
        channel,
        &serde_json::json!({ "how": how, "withdrawn": withdrawn }),
        "",
    )?;
    Ok(withdrawn)
}

/// Why a notice was not sent to someone who opted out (the administration page shows it).
pub const OPTED_OUT: &str = "la persona ha chiesto di non ricevere più messaggi";

/// The contact behind an e-mail's opt-out link, if the token is one.
pub fn by_stop_token(
    conn: &Connection,
    token: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT channel, recipient FROM notices WHERE stop_token = ?1 AND recipient <> ''",
        )?
        .query_row([token], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Forget the recipients of the notices about bookings that ended (delivered, cancelled,
/// no-show) before `before`, as their phone and e-mail are forgotten; the rest of each notice
/// stays, as the record of what was said. How many.
pub fn forget_recipients(conn: &Connection, before: Timestamp) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE notices SET recipient = '' WHERE recipient <> '' AND appointment_id IN (
             SELECT id FROM appointments
             WHERE (status = 'delivered' AND delivered_at < ?1)
                OR (status = 'cancelled' AND cancelled_at < ?1)
                OR (status = 'no_show' AND no_show_at < ?1))",
        )?
        .execute([instant_text(before)])?)
}

/// A notice waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub id: i64,
    pub channel: String,
    pub recipient: String,
    pub body: String,
    pub attempts: i64,
    pub stop_token: String,
    /// Handed to its channel before, with no outcome recorded: the server stopped in between,
    /// so the person may get it twice.
    pub handed_before: bool,
}

/// Up to `limit` notices due at `now`, oldest first (not those whose recipient was forgotten).
pub fn due(conn: &Connection, now: Timestamp, limit: usize) -> Result<Vec<Due>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, channel, recipient, body, attempts, stop_token, handed_at IS NOT NULL
         FROM notices
         WHERE sent_at IS NULL AND failed_at IS NULL AND due_at <= ?1 AND recipient <> ''
         ORDER BY due_at, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![instant_text(now), limit as i64], |r| {
        Ok(Due {
            id: r.get(0)?,
            channel: r.get(1)?,
            recipient: r.get(2)?,
            body: r.get(3)?,
            attempts: r.get(4)?,
            stop_token: r.get(5)?,
            handed_before: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Notice `id` is about to be handed to its channel: recorded first, so that a crash before its
/// outcome is recorded is known (the notice is sent again, once, marked as a possible double).
pub fn handing(conn: &Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE notices SET handed_at = ?2 WHERE id = ?1")?
        .execute(params![id, instant_text(now)])?;
    Ok(())
}

/// Notice `id` was accepted by its channel (`via`: `log`, `smtp`, `http`).
pub fn sent(conn: &Connection, id: i64, via: &str, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE notices SET sent_at = ?2, via = ?3, attempts = attempts + 1 WHERE id = ?1",
    )?
    .execute(params![id, instant_text(now), via])?;
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
        Some(at) => conn
            .prepare_cached(
                "UPDATE notices SET attempts = attempts + 1, last_error = ?2, due_at = ?3,
                 handed_at = NULL
             WHERE id = ?1",
            )?
            .execute(params![id, error, instant_text(at)])?,
        None => conn
            .prepare_cached(
                "UPDATE notices SET attempts = attempts + 1, last_error = ?2, failed_at = ?3
             WHERE id = ?1",
            )?
            .execute(params![id, error, instant_text(now)])?,
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
    /// Empty for a notice about no booking ("your permit is ready").
    pub booking_code: String,
    pub via: Option<String>,
}

/// The latest `limit` notices (only those given up, with `failed_only`), newest first.
pub fn latest(
    conn: &Connection,
    limit: usize,
    failed_only: bool,
) -> Result<Vec<Listed>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.created_at, n.kind, n.channel, n.recipient, n.lang, n.body, n.sent_at,
                n.failed_at, n.last_error, coalesce(a.booking_code, ''), n.via
         FROM notices n LEFT JOIN appointments a ON a.id = n.appointment_id
         WHERE ?2 = 0 OR n.failed_at IS NOT NULL
         ORDER BY n.id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![limit as i64, failed_only], |r| {
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
            via: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
