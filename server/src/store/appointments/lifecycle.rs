//! An appointment's lifecycle after booking: the counter's steps (check-in, delivery, no-show),
//! the day's no-shows, cancellation by the Questura or at the kiosk, and relocation by a change
//! of hours. Each step is audited; the schema's trigger refuses any transition not allowed.

use coper_shared::{
    agenda::SlotKey,
    ids::ServiceId,
    jiff::{Timestamp, civil::Date},
    notices::NoticeKind,
    rules::hh_mm,
};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{AppointmentStatus, CounterAppointment, by_id};
use crate::store::{
    StoreError,
    audit::audit_from,
    instant_text, parse_date, parse_time,
    verdicts::{self, Restated},
};

/// A step of the counter's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CheckIn,
    Deliver,
    NoShow,
    /// Undo the last step (a delivery, a check-in, a no-show); the operation allows it only on
    /// the day the step was taken.
    Undo,
}

/// Why a step was not taken. Italian: the clerk reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("prenotazione non trovata")]
    NotFound,
    #[error("operazione non possibile per una prenotazione in stato «{0}»")]
    WrongStatus(String),
    #[error(
        "non si può ancora segnare assente: l'appuntamento è {0}, e si attende fino alla fine del ritardo ammesso"
    )]
    NotYetAbsent(String),
    #[error("non c'è nulla da annullare: la prenotazione è in stato «{0}»")]
    NothingToUndo(String),
    #[error("si può annullare un'operazione solo nel giorno in cui è stata registrata")]
    UndoTooLate,
    #[error("la persona ha già un'altra prenotazione attiva ({0}): annullare quella prima")]
    OtherBooking(String),
}

/// Take `step` on appointment `id`, audited as `actor` from `source`. Delivering also marks the
/// ready permit delivered, so it leaves the list of permits to book.
pub fn take_step(
    conn: &mut Connection,
    id: &str,
    step: Step,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Result<CounterAppointment, StepError>, StoreError> {
    let tx = conn.transaction()?;
    let Some(current) = by_id(&tx, id)? else {
        return Ok(Err(StepError::NotFound));
    };
    let at = instant_text(now);
    use AppointmentStatus::*;
    let (from, sql, action): (&[AppointmentStatus], &str, &str) = match (step, current.status) {
        (Step::CheckIn, _) => (
            &[Booked, NoShow],
            "UPDATE appointments SET status = 'checked_in', checked_in_at = ?2, no_show_at = NULL
             WHERE id = ?1",
            "appointment.checked_in",
        ),
        (Step::Deliver, _) => (
            &[CheckedIn],
            "UPDATE appointments SET status = 'delivered', delivered_at = ?2 WHERE id = ?1",
            "appointment.delivered",
        ),
        (Step::NoShow, _) => (
            &[Booked],
            "UPDATE appointments SET status = 'no_show', no_show_at = ?2 WHERE id = ?1",
            "appointment.no_show",
        ),
        (Step::Undo, Delivered) => (
            &[Delivered],
            "UPDATE appointments SET status = 'checked_in', delivered_at = NULL WHERE id = ?1",
            "appointment.delivery_undone",
        ),
        (Step::Undo, CheckedIn) => (
            &[CheckedIn],
            "UPDATE appointments SET status = 'booked', checked_in_at = NULL WHERE id = ?1",
            "appointment.check_in_undone",
        ),
        (Step::Undo, NoShow) => (
            &[NoShow],
            "UPDATE appointments SET status = 'booked', no_show_at = NULL WHERE id = ?1",
            "appointment.no_show_undone",
        ),
        (Step::Undo, other) => {
            return Ok(Err(StepError::NothingToUndo(other.label().into())));
        }
    };
    if !from.contains(&current.status) {
        return Ok(Err(StepError::WrongStatus(current.status.label().into())));
    }
    // Back to active from a no-show: not while the person has booked again since (one active
    // booking per person and service).
    if current.status == NoShow
        && let Some(permit) = current.ready_permit_id
    {
        let other: Option<String> = tx
            .prepare_cached(
                "SELECT booking_code FROM appointments
                 WHERE ready_permit_id = ?1 AND service_id = ?2 AND id <> ?3
                   AND status IN ('booked', 'checked_in') AND slot_date >= ?4",
            )?
            .query_row(
                params![permit, current.service_id, id, current.date.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(code) = other {
            return Ok(Err(StepError::OtherBooking(code)));
        }
    }
    // The undos clear a time rather than stamp one.
    let mut update = tx.prepare(sql)?;
    if update.parameter_count() == 2 {
        update.execute(params![id, at])?;
    } else {
        update.execute(params![id])?;
    }
    drop(update);
    if step == Step::NoShow {
        crate::store::notices::enqueue(&tx, id, NoticeKind::Missed, "", now)?;
    }
    if let Some(permit) = current.ready_permit_id {
        match (step, current.status) {
            (Step::Deliver, _) => crate::store::ready::mark_delivered(&tx, permit, now)?,
            (Step::Undo, Delivered) => crate::store::ready::mark_undelivered(&tx, permit)?,
            _ => {}
        }
    }
    audit_from(
        &tx,
        now,
        actor,
        action,
        id,
        &serde_json::json!({ "booking_code": current.booking_code }),
        source,
    )?;
    let updated = by_id(&tx, id)?.ok_or(StoreError::InvalidData("appointment vanished".into()))?;
    tx.commit()?;
    Ok(Ok(updated))
}

/// Mark as no-show every appointment of `date` still only booked whose slot has started before
/// `cut_off` (`HH:MM`); returns how many.
pub fn mark_no_shows(
    conn: &mut Connection,
    date: Date,
    cut_off: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<usize, StoreError> {
    let tx = conn.transaction()?;
    let ids: Vec<String> = {
        let mut stmt = tx.prepare_cached("SELECT id FROM appointments WHERE slot_date = ?1 AND slot_time < ?2 AND status = 'booked'")?;
        stmt.query_map(params![date.to_string(), cut_off], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for id in &ids {
        tx.prepare_cached(
            "UPDATE appointments SET status = 'no_show', no_show_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, instant_text(now)])?;
        audit_from(
            &tx,
            now,
            actor,
            "appointment.no_show",
            id,
            &serde_json::json!({}),
            source,
        )?;
        crate::store::notices::enqueue(&tx, id, NoticeKind::Missed, "", now)?;
    }
    tx.commit()?;
    Ok(ids.len())
}

/// Why an appointment cannot be cancelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("prenotazione non trovata")]
    NotFound,
    #[error("si può annullare solo una prenotazione non ancora utilizzata (stato: {0})")]
    WrongStatus(String),
    #[error("indicare il motivo dell'annullamento")]
    MissingReason,
}

/// What a cancellation touched: the kiosk that booked it (if any), its service and date.
pub type Cancelled = (Option<String>, String, Date);

/// Cancel an appointment with a reason; a kiosk's booking has its verdict rewritten so the kiosk
/// shows it cancelled. Returns the kiosk and the agenda month touched.
pub fn cancel(
    conn: &mut Connection,
    id: &str,
    reason: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Result<Cancelled, CancelError>, StoreError> {
    if reason.trim().is_empty() {
        return Ok(Err(CancelError::MissingReason));
    }
    let tx = conn.transaction()?;
    let cancelled = cancel_in(&tx, id, reason, now, actor, source)?;
    tx.commit()?;
    Ok(cancelled)
}

/// Cancel every appointment of `ids` still only booked, in one transaction, with one reason;
/// the others are left as they are. Each gets its own audit line, and the whole one more
/// (`appointments.bulk_cancelled`, with `detail`). Returns what was cancelled.
pub fn cancel_many(
    conn: &mut Connection,
    ids: &[String],
    reason: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
    detail: &serde_json::Value,
) -> Result<Result<Vec<Cancelled>, CancelError>, StoreError> {
    if reason.trim().is_empty() {
        return Ok(Err(CancelError::MissingReason));
    }
    let tx = conn.transaction()?;
    let mut done = Vec::new();
    for id in ids {
        if let Ok(cancelled) = cancel_in(&tx, id, reason, now, actor, source)? {
            done.push(cancelled);
        }
    }
    let mut detail = detail.clone();
    detail["count"] = done.len().into();
    detail["reason"] = reason.trim().into();
    audit_from(
        &tx,
        now,
        actor,
        "appointments.bulk_cancelled",
        "",
        &detail,
        source,
    )?;
    tx.commit()?;
    Ok(Ok(done))
}

/// Cancel appointment `id`, still only booked, inside the caller's transaction: its place given
/// back, the verdict of the kiosk that booked it restated, audited as `actor`.
pub fn cancel_in(
    tx: &Connection,
    id: &str,
    reason: &str,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<Result<Cancelled, CancelError>, StoreError> {
    let row: Option<(AppointmentStatus, Option<String>, String, String)> = tx
        .prepare_cached(
            "SELECT status, kiosk_id, service_id, slot_date FROM appointments WHERE id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((status, kiosk, service, date)) = row else {
        return Ok(Err(CancelError::NotFound));
    };
    if status != AppointmentStatus::Booked {
        return Ok(Err(CancelError::WrongStatus(status.label().into())));
    }
    tx.prepare_cached("UPDATE appointments SET status = 'cancelled', cancelled_at = ?2, cancel_reason = ?3 WHERE id = ?1")?.execute(params![id, instant_text(now), reason.trim()],
    )?;
    verdicts::restate(tx, id, Restated::Cancelled)?;
    audit_from(
        tx,
        now,
        actor,
        "appointment.cancelled",
        id,
        &serde_json::json!({ "by": if actor.starts_with("kiosk:") { "kiosk" } else { "questura" } }),
        source,
    )?;
    // The person hears of it when the Questura cancels; a kiosk's own cancellation (the person is
    // there) or a move (a new booking follows) says nothing.
    if !actor.starts_with("kiosk:") {
        crate::store::notices::enqueue(tx, id, NoticeKind::Cancelled, reason.trim(), now)?;
    }
    Ok(Ok((kiosk, service, parse_date(&date)?)))
}

/// A booking still to come that a change of hours may move.
#[derive(Debug, Clone)]
pub struct Movable {
    pub id: String,
    pub booking_code: String,
    pub name: String,
    pub partner: String,
    pub kiosk: Option<String>,
    pub slot: SlotKey,
    /// The order bookings were made in: earlier ones are placed first.
    pub seq: u64,
}

/// The bookings of `service` still only booked on or after `from`, by slot then booking order.
pub fn movable_from(
    conn: &Connection,
    service: &ServiceId,
    from: Date,
) -> Result<Vec<Movable>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT a.id, a.booking_code, a.surname || ' ' || a.given_names, coalesce(p.name, 'Questura'),
                a.kiosk_id, a.slot_date, a.slot_time, a.rowid
         FROM appointments a LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
         WHERE a.service_id = ?1 AND a.status = 'booked' AND a.slot_date >= ?2
         ORDER BY a.slot_date, a.slot_time, a.rowid")?;
    let rows = stmt.query_map(params![service.as_str(), from.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, booking_code, name, partner, kiosk, date, time, seq) = row?;
        out.push(Movable {
            id,
            booking_code,
            name,
            partner,
            kiosk,
            slot: SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            },
            seq: seq as u64,
        });
    }
    Ok(out)
}

/// Move appointment `id` to `to` (the slot's row must hold a place for it) because the Questura
/// changed its hours, restating the verdict of the kiosk that booked it. The first slot it was
/// moved from is kept (the person's reminder says that one), with when and why.
pub fn relocate(
    conn: &Connection,
    id: &str,
    to: SlotKey,
    now: Timestamp,
    reason: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE appointments SET moved_from_date = coalesce(moved_from_date, slot_date),
             moved_from_time = coalesce(moved_from_time, slot_time),
             slot_date = ?2, slot_time = ?3, moved_at = ?4, moved_reason = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        to.date.to_string(),
        hh_mm(to.start),
        instant_text(now),
        reason
    ])?;
    crate::store::notices::enqueue(conn, id, NoticeKind::Moved, reason, now)?;
    verdicts::restate(conn, id, Restated::Relocated(to))
}

/// Forget the phone, e-mail and consent of every booking that ended (delivered, cancelled, no-show)
/// before `before`. How many were forgotten.
pub fn forget_contacts(conn: &Connection, before: Timestamp) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE appointments SET phone = NULL, email = NULL, consent_at = NULL
         WHERE (phone IS NOT NULL OR email IS NOT NULL OR consent_at IS NOT NULL)
           AND ((status = 'delivered' AND delivered_at < ?1)
             OR (status = 'cancelled' AND cancelled_at < ?1)
             OR (status = 'no_show' AND no_show_at < ?1))",
        )?
        .execute([instant_text(before)])?)
}

/// How the person of a booking may be reached, as staff see and correct it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactOf {
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The language of the messages (one of `coper_shared::notices::LANGUAGES`).
    pub lang: Option<String>,
    pub consent: bool,
}

/// The contact of appointment `id`.
pub fn contact_of(conn: &Connection, id: &str) -> Result<Option<ContactOf>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT phone, email, notice_lang, consent_at IS NOT NULL FROM appointments
             WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(ContactOf {
                phone: r.get(0)?,
                email: r.get(1)?,
                lang: r.get(2)?,
                consent: r.get(3)?,
            })
        })
        .optional()?)
}

/// Record how the person of appointment `id` may be reached, as staff took it down at the
/// counter or the office (checked by the caller); consent given now is dated now, withdrawn is
/// forgotten. Only while the booking has not ended, or is a missed one to call back. Audited
/// without the contact itself. Whether it was recorded.
pub fn set_contact(
    conn: &Connection,
    id: &str,
    contact: &ContactOf,
    now: Timestamp,
    actor: &str,
    source: &str,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE appointments SET phone = ?2, email = ?3, notice_lang = ?4,
             consent_at = CASE WHEN ?5 THEN coalesce(consent_at, ?6) END
         WHERE id = ?1 AND status IN ('booked', 'checked_in', 'no_show')",
        )?
        .execute(params![
            id,
            contact.phone,
            contact.email,
            contact.lang,
            contact.consent,
            instant_text(now)
        ])?;
    if changed > 0 {
        crate::store::audit_from(
            conn,
            now,
            actor,
            "appointment.contact_set",
            id,
            &serde_json::json!({
                "phone": contact.phone.is_some(),
                "email": contact.email.is_some(),
                "consent": contact.consent,
            }),
            source,
        )?;
    }
    Ok(changed > 0)
}

/// The reason stored for a booking cancelled at the kiosk that made it.
pub const CANCELLED_AT_KIOSK: &str = "cancelled at the kiosk";
/// The reason stored for a booking replaced by a new one when the person moved it.
pub const REPLACED_BY_MOVE: &str = "spostata con una nuova prenotazione";

/// Cancel the booking a kiosk's request made, at that kiosk's request.
pub fn cancel_at_kiosk(conn: &Connection, request: Uuid, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = ?2, cancel_reason = ?3
         WHERE request_id = ?1 AND status = 'booked'",
    )?
    .execute(params![
        request.to_string(),
        instant_text(now),
        CANCELLED_AT_KIOSK
    ])?;
    Ok(())
}

/// The bookings still active of ready permit `permit` take the list's corrected spelling of the
/// name, as the counter will read it.
pub fn rename_for_permit(
    conn: &Connection,
    permit: i64,
    surname: &str,
    given_names: &str,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE appointments SET surname = ?2, given_names = ?3
         WHERE ready_permit_id = ?1 AND status IN ('booked', 'checked_in')",
        )?
        .execute(params![permit, surname, given_names])?)
}

/// A ready permit's active booking (booked or checked in) for `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveForPermit {
    pub id: String,
    pub slot: SlotKey,
    pub status: AppointmentStatus,
    pub request: Option<String>,
    pub kiosk: Option<String>,
    pub partner: Option<i64>,
}

/// A ready permit's active booking for `service`, of `today` or later (a past day's booking never
/// marked absent does not count: the person may book again).
pub fn active_for_permit(
    conn: &Connection,
    permit: i64,
    service: &ServiceId,
    today: Date,
) -> Result<Option<ActiveForPermit>, StoreError> {
    type Row = (
        String,
        String,
        String,
        AppointmentStatus,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT id, slot_date, slot_time, status, request_id, kiosk_id, partner_body_id
             FROM appointments
             WHERE ready_permit_id = ?1 AND service_id = ?2 AND status IN ('booked', 'checked_in')
               AND slot_date >= ?3
             ORDER BY slot_date, slot_time LIMIT 1",
        )?
        .query_row(params![permit, service.as_str(), today.to_string()], |r| {
            Row::try_from(r)
        })
        .optional()?;
    row.map(|(id, date, time, status, request, kiosk, partner)| {
        Ok(ActiveForPermit {
            id,
            slot: SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            },
            status,
            request,
            kiosk,
            partner,
        })
    })
    .transpose()
}

/// Every ready permit's active booking of `today` or later: permit, service, and where it is.
pub fn active_with_permits(
    conn: &Connection,
    today: Date,
) -> Result<Vec<(i64, String, coper_shared::documents::BookedPermit)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.ready_permit_id, a.service_id, a.id, a.slot_date, a.slot_time,
                coalesce(p.name, 'Questura'), a.status = 'booked'
         FROM appointments a LEFT JOIN partner_bodies p ON p.id = a.partner_body_id
         WHERE a.ready_permit_id IS NOT NULL AND a.status IN ('booked', 'checked_in')
           AND a.slot_date >= ?1
         -- Latest first: where two stored before the rule share a permit, the earliest is
         -- written last and stands, as in `active_for_permit`.
         ORDER BY a.slot_date DESC, a.slot_time DESC",
    )?;
    let rows = stmt.query_map([today.to_string()], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, bool>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (permit, service, id, date, time, partner, movable) = row?;
        let Ok(appointment) = id.parse() else {
            continue;
        };
        out.push((
            permit,
            service,
            coper_shared::documents::BookedPermit {
                appointment,
                date: parse_date(&date)?,
                time: parse_time(&time)?,
                partner,
                movable,
            },
        ));
    }
    Ok(out)
}

/// The slot of the booking `kiosk`'s request `request` made, if it is still only booked.
pub fn booked_by_request(
    conn: &Connection,
    kiosk: &str,
    request: Uuid,
) -> Result<Option<(ServiceId, SlotKey)>, StoreError> {
    let row: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT service_id, slot_date, slot_time FROM appointments
             WHERE request_id = ?1 AND kiosk_id = ?2 AND status = 'booked'",
        )?
        .query_row(params![request.to_string(), kiosk], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    row.map(|(service, date, time)| {
        Ok((
            ServiceId::parse(&service).map_err(|e| StoreError::InvalidData(e.to_string()))?,
            SlotKey {
                date: parse_date(&date)?,
                start: parse_time(&time)?,
            },
        ))
    })
    .transpose()
}
