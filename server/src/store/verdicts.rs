//! The server's verdicts on kiosks' requests (`sync_verdicts`): written once when a request is
//! decided, restated when the Questura later moves or cancels the booking, and read back into
//! each kiosk's inbox document. Keyed by request id, so a request is never decided twice.

use std::collections::BTreeSet;

use coper_shared::{
    agenda::SlotKey,
    documents::{KioskId, Outcome, Verdict},
    ids::ServiceId,
    rules::hh_mm,
};
use jiff::Timestamp;
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{StoreError, instant_text, parse_date, parse_time};

/// The ids of the requests of `kiosk` that already have a verdict.
pub fn decided(conn: &Connection, kiosk: KioskId) -> Result<BTreeSet<Uuid>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT request_id FROM sync_verdicts WHERE kiosk_id = ?1")?;
    let ids: Vec<String> = stmt
        .query_map([kiosk.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
}

/// A verdict as first written.
#[derive(Debug, Clone)]
pub struct NewVerdict<'a> {
    pub request: Uuid,
    pub kiosk: KioskId,
    pub outcome: Outcome,
    pub service: &'a ServiceId,
    pub slot: SlotKey,
    pub appointment: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub used_lease: bool,
}

/// Record the verdict on a request.
pub fn record(conn: &Connection, v: &NewVerdict<'_>, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_verdicts (request_id, kiosk_id, outcome, service_id, slot_date,
             slot_time, appointment_id, reason, used_lease, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        v.request.to_string(),
        v.kiosk.to_string(),
        outcome_text(v.outcome),
        v.service.as_str(),
        v.slot.date.to_string(),
        hh_mm(v.slot.start),
        v.appointment,
        v.reason,
        v.used_lease,
        instant_text(now),
    ])?;
    Ok(())
}

/// What the Questura did to a booking after its verdict.
#[derive(Debug, Clone, Copy)]
pub enum Restated {
    /// Moved to another slot (a change of hours, a closed day).
    Relocated(SlotKey),
    /// Cancelled by the staff.
    Cancelled,
}

/// Restate the verdict of the kiosk request that made `appointment`, if one did, so the kiosk
/// shows what the Questura did.
pub fn restate(conn: &Connection, appointment: &str, what: Restated) -> Result<(), StoreError> {
    match what {
        Restated::Relocated(to) => conn
            .prepare_cached(
                "UPDATE sync_verdicts SET outcome = 'relocated', slot_date = ?2, slot_time = ?3
             WHERE appointment_id = ?1",
            )?
            .execute(params![appointment, to.date.to_string(), hh_mm(to.start)])?,
        Restated::Cancelled => conn
            .prepare_cached(
                "UPDATE sync_verdicts SET outcome = 'cancelled' WHERE appointment_id = ?1",
            )?
            .execute([appointment])?,
    };
    Ok(())
}

/// Every verdict on `kiosk`'s requests, with the booking code of the appointment it made.
pub fn of_kiosk(conn: &Connection, kiosk: KioskId) -> Result<Vec<Verdict>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT v.request_id, v.outcome, v.service_id, v.slot_date, v.slot_time,
                v.appointment_id, v.reason, v.decided_at, a.booking_code
         FROM sync_verdicts v LEFT JOIN appointments a ON a.id = v.appointment_id
         WHERE v.kiosk_id = ?1",
    )?;
    let rows = stmt.query_map([kiosk.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })?;
    let mut verdicts = Vec::new();
    for row in rows {
        let (request, outcome, service, date, time, appointment, reason, decided_at, code) = row?;
        let invalid = |e: String| StoreError::InvalidData(e);
        verdicts.push(Verdict {
            request: request
                .parse()
                .map_err(|e: uuid::Error| invalid(e.to_string()))?,
            outcome: parse_outcome(&outcome),
            service: ServiceId::parse(&service).map_err(|e| invalid(e.to_string()))?,
            date: parse_date(&date)?,
            time: parse_time(&time)?,
            appointment: appointment.and_then(|a| a.parse().ok()),
            reason,
            decided_at_ms: decided_at
                .parse::<Timestamp>()
                .map(|t| t.as_millisecond())
                .unwrap_or_default(),
            booking_code: code,
        });
    }
    Ok(verdicts)
}

pub fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Confirmed => "confirmed",
        Outcome::Relocated => "relocated",
        Outcome::Rejected => "rejected",
        Outcome::Cancelled => "cancelled",
    }
}

fn parse_outcome(text: &str) -> Outcome {
    match text {
        "confirmed" => Outcome::Confirmed,
        "relocated" => Outcome::Relocated,
        "cancelled" => Outcome::Cancelled,
        _ => Outcome::Rejected,
    }
}
