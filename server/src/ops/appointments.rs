//! Operations on appointments: presenting a booking at the counter (assessed, and checked in when
//! in order), the counter's steps (check-in, delivery, no-show, the day's no-shows) and the
//! Questura's cancellation.

use coper_shared::{
    documents::KioskId,
    ids::ServiceId,
    jiff::{
        SignedDuration,
        civil::{Date, Time},
    },
};

use super::{Actor, Changes};
use crate::{
    checkin::{Assessment, assess, local_now},
    store::{
        Connection, StoreError,
        appointments::{
            self, AppointmentFilter, CancelError, Cancelled, CounterAppointment, Step, StepError,
        },
        settings,
    },
};

/// Record how the person of appointment `id` may be reached (taken down at the counter or by
/// the administration); their body's kiosks see the phone. Whether it was recorded.
pub fn set_contact(
    conn: &mut Connection,
    by: &Actor,
    id: &str,
    contact: &appointments::ContactOf,
) -> Result<(bool, Changes), StoreError> {
    let set = appointments::set_contact(conn, id, contact, by.now, &by.name, &by.source)?;
    Ok((
        set,
        if set {
            Changes::appointments()
        } else {
            Changes::none()
        },
    ))
}

/// Take `step` on appointment `id`. Delivering also takes the permit off the kiosks' ready list.
pub fn take_step(
    conn: &mut Connection,
    by: &Actor,
    id: &str,
    step: Step,
) -> Result<(Result<CounterAppointment, StepError>, Changes), StoreError> {
    if step == Step::NoShow
        && let Some(appointment) = appointments::by_id(conn, id)?
        && !absent_allowed(conn, by, &appointment)?
    {
        let when = format!("il {} alle {}", appointment.date, appointment.time);
        return Ok((Err(StepError::NotYetAbsent(when)), Changes::none()));
    }
    if step == Step::Undo
        && let Some(appointment) = appointments::by_id(conn, id)?
        && matches!(
            appointment.status,
            appointments::AppointmentStatus::Delivered
                | appointments::AppointmentStatus::CheckedIn
                | appointments::AppointmentStatus::NoShow
        )
        && !undo_allowed(conn, by, &appointment)?
    {
        return Ok((Err(StepError::UndoTooLate), Changes::none()));
    }
    let taken = appointments::take_step(conn, id, step, by.now, &by.name, &by.source)?;
    let changes = match (&taken, step) {
        // A delivery, or its undo, changes the ready list the kiosks hold.
        (Ok(_), Step::Deliver | Step::Undo) => Changes {
            shared: true,
            ..Changes::appointments()
        },
        (Ok(_), _) => Changes::appointments(),
        (Err(_), _) => Changes::none(),
    };
    Ok((taken, changes))
}

/// Whether `appointment` may be marked absent now (`checkin::may_mark_absent`).
fn absent_allowed(
    conn: &Connection,
    by: &Actor,
    appointment: &CounterAppointment,
) -> Result<bool, StoreError> {
    let (_, local) = local_now(conn, by.now)?;
    let (_, late) = settings::checkin_window(conn)?;
    let (date, time) = appointments::slot_of(appointment)?;
    Ok(crate::checkin::may_mark_absent(date, time, local, late))
}

/// Whether the counter's last step on `appointment` may be undone now: only on the day it was
/// taken (by the Questura's calendar), so yesterday's deliveries stay as the registers say.
pub fn undo_allowed(
    conn: &Connection,
    by: &Actor,
    appointment: &CounterAppointment,
) -> Result<bool, StoreError> {
    let (zone, local) = local_now(conn, by.now)?;
    let taken_at = match appointment.status {
        appointments::AppointmentStatus::Delivered => appointment.delivered_at,
        appointments::AppointmentStatus::CheckedIn => appointment.checked_in_at,
        appointments::AppointmentStatus::NoShow => appointment.no_show_at,
        _ => return Ok(false),
    };
    Ok(taken_at.is_some_and(|at| at.to_zoned(zone).date() == local.date()))
}

/// Mark as no-show every appointment of `date` still only booked whose slot (plus the check-in
/// window) has passed: all of a past day, none of a future one. Returns the date and how many.
pub fn mark_no_shows(
    conn: &mut Connection,
    by: &Actor,
    date: Option<Date>,
) -> Result<((Date, usize), Changes), StoreError> {
    let (_, local) = local_now(conn, by.now)?;
    let date = date.unwrap_or(local.date());
    let (_, late) = settings::checkin_window(conn)?;
    let cut_off = if date < local.date() {
        "24:00".to_owned()
    } else if date == local.date() {
        let cut = local - SignedDuration::from_mins(late);
        if cut.date() < date {
            "00:00".to_owned()
        } else {
            cut.strftime("%H:%M").to_string()
        }
    } else {
        "00:00".to_owned()
    };
    let marked = appointments::mark_no_shows(conn, date, &cut_off, by.now, &by.name, &by.source)?;
    Ok(((date, marked), Changes::appointments()))
}

/// Forget the phone and e-mail of the bookings that ended more than the settings' retention ago
/// (`contact_retention_days`), audited with how many. Run by the server every hour.
pub fn forget_contacts(conn: &mut Connection, by: &Actor) -> Result<(usize, Changes), StoreError> {
    let days = settings::messaging(conn)?.contact_retention_days;
    let before = by.now - SignedDuration::from_hours(24 * days);
    let tx = conn.transaction()?;
    let forgotten = appointments::forget_contacts(&tx, before)?;
    crate::store::notices::forget_recipients(&tx, before)?;
    if forgotten > 0 {
        crate::store::audit_from(
            &tx,
            by.now,
            &by.name,
            "contacts.forgotten",
            "",
            &serde_json::json!({ "count": forgotten, "days": days }),
            &by.source,
        )?;
    }
    tx.commit()?;
    // The bodies' lists on the kiosks carry phones.
    Ok((forgotten, Changes::appointments()))
}

/// Cancel appointment `id` with a reason; the kiosk that booked it shows it cancelled.
pub fn cancel(
    conn: &mut Connection,
    by: &Actor,
    id: &str,
    reason: &str,
) -> Result<(Result<(), CancelError>, Changes), StoreError> {
    Ok(
        match appointments::cancel(conn, id, reason, by.now, &by.name, &by.source)? {
            Ok(cancelled) => (Ok(()), changes_of(&[cancelled])),
            Err(e) => (Err(e), Changes::none()),
        },
    )
}

/// Cancel, with one reason, every appointment matching `filter` that is still only booked and
/// not in the past (a revoked kiosk's bookings, a day's, a service's): one transaction, audited
/// as a whole and one by one; the kiosks that booked them show them cancelled. How many.
pub fn cancel_all(
    conn: &mut Connection,
    by: &Actor,
    filter: &AppointmentFilter,
    reason: &str,
) -> Result<(Result<usize, CancelError>, Changes), StoreError> {
    let (_, local) = local_now(conn, by.now)?;
    let filter = filter.still_to_come(local.date());
    let ids: Vec<String> = appointments::search(conn, &filter, usize::MAX)?
        .into_iter()
        .map(|row| row.id)
        .collect();
    let detail = serde_json::json!({
        "from": filter.from.map(|d| d.to_string()),
        "to": filter.to.map(|d| d.to_string()),
        "service": filter.service,
        "partner": filter.partner,
        "kiosk": filter.kiosk,
        "text": filter.text,
    });
    let cancelled =
        match appointments::cancel_many(conn, &ids, reason, by.now, &by.name, &by.source, &detail)?
        {
            Ok(cancelled) => cancelled,
            Err(e) => return Ok((Err(e), Changes::none())),
        };
    Ok((Ok(cancelled.len()), changes_of(&cancelled)))
}

/// What cancellations change: the lists, the inboxes of the kiosks that booked them, the agenda
/// months that have a free place again.
fn changes_of(cancelled: &[Cancelled]) -> Changes {
    let mut changes = Changes::appointments();
    for (kiosk, service, date) in cancelled {
        changes = changes.inbox(kiosk.as_ref().and_then(|k| k.parse().ok()).map(KioskId));
        if let Ok(service) = ServiceId::parse(service) {
            changes = changes.agenda(&service, *date);
        }
    }
    changes
}

/// A booking presented at the counter: what the counter says of it and, when the scan checked
/// the person in, the booking as it is now.
#[derive(Debug, Clone)]
pub struct Presented {
    pub assessment: Assessment,
    pub appointment: CounterAppointment,
    /// `Some` when the person was checked in by this presentation (or the attempt failed).
    pub checked_in: Option<Result<CounterAppointment, StepError>>,
    /// Whether the clerk may mark the person absent now (the slot and the late window passed).
    pub may_mark_absent: bool,
    /// Whether the last step taken on it may be undone now (it was taken today).
    pub may_undo: bool,
}

/// Assess `appointment` as presented now (with the slot printed on its ticket, for a scan) and,
/// when `auto_check_in` and everything is in order, check the person in.
pub fn present(
    conn: &mut Connection,
    by: &Actor,
    appointment: CounterAppointment,
    ticket_slot: Option<(Date, Time)>,
    auto_check_in: bool,
) -> Result<(Presented, Changes), StoreError> {
    let (zone, local) = local_now(conn, by.now)?;
    let window = settings::checkin_window(conn)?;
    let (booked_date, booked_time) = appointments::slot_of(&appointment)?;
    let may_mark_absent =
        crate::checkin::may_mark_absent(booked_date, booked_time, local, window.1);
    let may_undo = undo_allowed(conn, by, &appointment)?;
    let checked_in_at = appointment
        .checked_in_at
        .map(|t| t.to_zoned(zone.clone()).strftime("%H:%M").to_string())
        .unwrap_or_default();
    let assessment = assess(
        &appointment,
        booked_time,
        ticket_slot,
        local,
        window,
        || checked_in_at.clone(),
    );
    if auto_check_in && assessment.checks_in() {
        let (checked_in, changes) = take_step(conn, by, &appointment.id, Step::CheckIn)?;
        let presented = Presented {
            assessment,
            appointment,
            checked_in: Some(checked_in),
            may_mark_absent,
            may_undo,
        };
        return Ok((presented, changes));
    }
    let presented = Presented {
        assessment,
        appointment,
        checked_in: None,
        may_mark_absent,
        may_undo,
    };
    Ok((presented, Changes::none()))
}
