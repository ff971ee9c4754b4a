//! Deciding a kiosk's requests: the undecided requests of its outbox go through the pure conflict
//! rules (`coper_shared::decide`) against the capacity they may touch, then each decision is
//! written (the appointment or the cancellation, the lease's use, the verdict, the audit line) in
//! its own savepoint, so a request the store refuses is rejected alone and never blocks the
//! others.

use std::collections::{BTreeMap, BTreeSet};

use coper_shared::{
    agenda::{DayPlan, Slot},
    decide::{ActiveBooking, Booking, Capacity, Decision, Incoming, RequestLimits, decide},
    documents::{DocName, KioskId, Outcome, Request, RequestKind, SlotCounts},
    ids::ServiceId,
    notices::NoticeKind,
};
use jiff::{Timestamp, ToSpan};
use uuid::Uuid;

use super::{Context, quotas};
use crate::store::{
    self, StoreError, Transaction,
    appointments::{self, BookingError, NewAppointment},
    partners, ready, settings, slots,
    verdicts::{self, NewVerdict},
};

/// Decide the undecided requests of `kiosk` and commit appointments and verdicts in `tx`; the
/// agenda documents the decisions touch are added to `touched`. How many were decided.
#[allow(clippy::too_many_arguments)]
pub(super) fn decide_requests(
    tx: &Transaction<'_>,
    ctx: &Context,
    kiosk: KioskId,
    requests: Vec<Request>,
    now: Timestamp,
    limits: &RequestLimits,
    touched: &mut BTreeSet<DocName>,
) -> Result<usize, StoreError> {
    let decided = verdicts::decided(tx, kiosk)?;
    let seal = settings::seal_secret(tx, now)?;
    let mut contacts: BTreeMap<Uuid, Contacted> = BTreeMap::new();
    let pending: Vec<Request> = requests
        .into_iter()
        .filter(|r| !decided.contains(&r.id))
        .map(|r| {
            let (request, contact) = opened(r, &seal);
            contacts.insert(request.id, contact);
            checked_permit(tx, request)
        })
        .collect::<Result<_, _>>()?;
    if pending.is_empty() {
        return Ok(0);
    }
    let count = pending.len();
    let (partner, kiosk_quota, partner_quota) = partners::quotas_of_kiosk(tx, kiosk)?
        .ok_or_else(|| StoreError::InvalidData(format!("kiosk {kiosk} has no partner body")))?;
    let mut capacity = load_capacity(tx, ctx, (kiosk, partner), &pending, now)?;
    capacity.quotas = quotas::holdings(tx, kiosk, partner, (kiosk_quota, partner_quota), {
        let dates = capacity.slots.keys().map(|(_, key)| key.date);
        (dates.clone().min(), dates.max())
    })?;
    let agendas = ctx.agendas();
    let by_id: BTreeMap<Uuid, Request> = pending.iter().map(|r| (r.id, r.clone())).collect();
    let incoming = pending
        .into_iter()
        .map(|request| Incoming { kiosk, request })
        .collect();
    for decision in decide(incoming, &mut capacity, &agendas, now, limits) {
        let request = &by_id[&decision.request];
        let written = match store::in_savepoint(tx, |tx| {
            let contact = contacts.get(&request.id).cloned().unwrap_or_default();
            write_decision(
                tx,
                ctx,
                (kiosk, partner),
                (request, &contact),
                &decision,
                now,
            )
        })? {
            Ok(written) => written,
            // Refused after something was written (a lease's place used, a moved booking
            // cancelled): rolled back, and the reason stands.
            Err(StoreError::Refused(reason)) => Written::rejected(reason),
            Err(e) => {
                tracing::error!(request = %request.id, error = %e, "decision not written: rejected");
                Written::rejected("store_refused")
            }
        };
        verdicts::record(
            tx,
            &NewVerdict {
                request: request.id,
                kiosk,
                outcome: written.outcome,
                service: &decision.service,
                slot: decision.slot,
                appointment: written.appointment.as_deref(),
                reason: written.reason.as_deref(),
                used_lease: decision.used_lease && written.outcome == Outcome::Confirmed,
            },
            now,
        )?;
        store::audit_from(
            tx,
            now,
            &format!("kiosk:{kiosk}"),
            "sync.decided",
            &request.id.to_string(),
            &serde_json::json!({
                "outcome": verdicts::outcome_text(written.outcome),
                "lease": decision.used_lease,
            }),
            "",
        )?;
        touched.insert(DocName::agenda_for(&decision.service, decision.slot.date));
        if decision.slot != request.slot() {
            touched.insert(DocName::agenda_for(&request.service, request.date));
        }
        touched.extend(written.touched);
    }
    Ok(count)
}

/// How the person may be reached, as a kiosk's sealed request says, checked again here: a
/// hostile kiosk's address or language is dropped, not stored.
#[derive(Debug, Clone, Default)]
struct Contacted {
    email: Option<String>,
    lang: Option<String>,
    consent: bool,
}

/// `request` with its sealed name and phone opened into the clear fields, and the contact it
/// carries. What does not open (another key, a forgery, too long) leaves them empty, and the
/// rules reject the request as invalid.
fn opened(mut request: Request, seal: &[u8; 32]) -> (Request, Contacted) {
    let Some(sealed) = request.sealed.take() else {
        return (request, Contacted::default());
    };
    // A few bounded fields, JSON, sealed and hex: a few kilobytes at most.
    let personal = coper_shared::sealed::open(seal, &sealed, 8 * 1024).unwrap_or_default();
    request.surname = personal.surname;
    request.given_names = personal.given_names;
    request.phone = personal
        .phone
        .and_then(|p| coper_shared::contact::phone(&p).ok());
    let email = personal
        .email
        .and_then(|e| coper_shared::contact::email(&e).ok());
    let contact = Contacted {
        consent: personal.consent && (request.phone.is_some() || email.is_some()),
        email,
        lang: personal
            .lang
            .filter(|l| coper_shared::notices::LANGUAGES.contains(&l.as_str())),
    };
    (request, contact)
}

/// `request` with its ready permit (and the move of that permit's booking) kept only when the
/// names typed are the person's on the list. A kiosk's word alone is not believed: a hostile
/// kiosk could otherwise read the list's names back through its body's bookings, or move
/// somebody else's booking away. Unmatched, it is booked as typed, with no permit.
fn checked_permit(tx: &Transaction<'_>, mut request: Request) -> Result<Request, StoreError> {
    let listed = match request.permit {
        Some(id) => ready::names(tx, id)?,
        None => None,
    };
    let theirs = listed.is_some_and(|(surname, given)| {
        coper_shared::names::names_match(&request.surname, &request.given_names, &surname, &given)
    });
    if !theirs {
        request.permit = None;
        request.moves = None;
    }
    Ok(request)
}

/// What a decision left in the store.
struct Written {
    outcome: Outcome,
    appointment: Option<String>,
    reason: Option<String>,
    /// Other documents it changed: a moved booking's month and its kiosk's inbox, and the ready
    /// list when a booking of a listed permit was made or may have ended (its booked permits).
    touched: Vec<DocName>,
}

impl Default for Written {
    fn default() -> Self {
        Self {
            outcome: Outcome::Rejected,
            appointment: None,
            reason: None,
            touched: Vec::new(),
        }
    }
}

impl Written {
    fn rejected(reason: &str) -> Self {
        Self {
            outcome: Outcome::Rejected,
            reason: Some(reason.to_owned()),
            ..Self::default()
        }
    }
}

/// Write one decision: the appointment (or the cancellation) and the lease's use.
fn write_decision(
    tx: &Transaction<'_>,
    ctx: &Context,
    (kiosk, partner): (KioskId, i64),
    (request, contact): (&Request, &Contacted),
    decision: &Decision,
    now: Timestamp,
) -> Result<Written, StoreError> {
    match decision.outcome {
        Outcome::Rejected => Ok(Written {
            outcome: Outcome::Rejected,
            reason: decision.reason.map(str::to_owned),
            ..Written::default()
        }),
        Outcome::Cancelled => {
            if let Some(cancelled) = request.cancels {
                appointments::cancel_at_kiosk(tx, cancelled, now)?;
            }
            Ok(Written {
                outcome: Outcome::Cancelled,
                // The cancelled booking may have been a listed permit's.
                touched: vec![DocName::Ready],
                ..Written::default()
            })
        }
        Outcome::Confirmed | Outcome::Relocated => {
            let Some(service) = ctx.services.iter().find(|s| s.id == decision.service) else {
                return Ok(Written::rejected("unknown_service"));
            };
            let slot = if decision.used_lease {
                slots::use_leased_place(tx, kiosk, &service.id, decision.slot)?;
                // The place was set aside when the lease was granted: book it as it was then,
                // even if the rules have changed since.
                slots::places_of(tx, &service.id, decision.slot)?.map(|places| Slot {
                    date: decision.slot.date,
                    start: decision.slot.start,
                    end: decision.slot.start,
                    places,
                })
            } else {
                match ctx.agenda(service).day(decision.slot.date) {
                    DayPlan::Open(slots) => {
                        slots.into_iter().find(|s| s.start == decision.slot.start)
                    }
                    DayPlan::Closed(_) => None,
                }
            };
            let Some(slot) = slot else {
                return Err(StoreError::Refused("slot_not_open"));
            };
            let kiosk_text = kiosk.to_string();
            let request_id = request.id.to_string();
            let created_by = format!("kiosk:{kiosk_text}");
            let mut touched = Vec::new();
            // The person's earlier booking gives its place back first (the operator chose to
            // move it); its kiosk shows it cancelled.
            if let Some(old) = decision.moves {
                match appointments::cancel_in(
                    tx,
                    &old.to_string(),
                    appointments::REPLACED_BY_MOVE,
                    now,
                    &created_by,
                    "",
                )? {
                    Ok((old_kiosk, old_service, old_date)) => {
                        if let Ok(old_service) = ServiceId::parse(&old_service) {
                            touched.push(DocName::agenda_for(&old_service, old_date));
                        }
                        touched.extend(
                            old_kiosk
                                .and_then(|k| k.parse().ok())
                                .map(|k| DocName::Inbox(KioskId(k))),
                        );
                    }
                    // No longer only booked (served meanwhile).
                    Err(_) => return Err(StoreError::Refused("already_booked")),
                }
            }
            // Only a permit the list still has: a stale kiosk must not make the booking fail.
            // The booking carries the list's spelling of the name, as the counter will read it.
            let listed = match request.permit {
                Some(id) => ready::names(tx, id)?.map(|names| (id, names)),
                None => None,
            };
            let permit = listed.as_ref().map(|(id, _)| *id);
            // A listed permit booked, or a booking replaced that may have been one: every kiosk
            // warns before booking that person again.
            if permit.is_some() || decision.moves.is_some() {
                touched.push(DocName::Ready);
            }
            let (surname, given_names) = match &listed {
                Some((_, (surname, given))) => (surname.as_str(), given.as_str()),
                None => (request.surname.as_str(), request.given_names.as_str()),
            };
            let new = NewAppointment {
                service: &service.id,
                slot,
                surname,
                given_names,
                phone: request.phone.as_deref(),
                ready_permit_id: permit,
                partner_body_id: Some(partner),
                kiosk: Some((&kiosk_text, &request_id)),
                created_by: &created_by,
                contact: appointments::Contact {
                    email: contact.email.as_deref(),
                    lang: contact.lang.as_deref(),
                    consent: contact.consent,
                },
            };
            // A code the kiosk drew offline may already be taken: the server then draws another,
            // and the verdict carries it back.
            let mut booked = appointments::book_with_code(tx, &new, &request.booking_code, now);
            if matches!(booked, Err(BookingError::CodeTaken)) {
                booked = appointments::book(tx, &new, now);
            }
            // Every refusal from here on is an error, so the savepoint undoes what this decision
            // already wrote (a leased place used, a moved booking cancelled): the person keeps
            // the booking a move would have replaced.
            match booked {
                // Another active booking the rules did not see (one stored before the rule, or
                // around midnight, where the trigger's UTC day differs): the person has theirs.
                Err(BookingError::AlreadyBooked) => Err(StoreError::Refused("already_booked")),
                Ok(b) => {
                    let kind = if decision.outcome == Outcome::Relocated {
                        NoticeKind::Relocated
                    } else {
                        NoticeKind::Confirmed
                    };
                    store::notices::enqueue(tx, &b.id.to_string(), kind, "", now)?;
                    Ok(Written {
                        outcome: decision.outcome,
                        appointment: Some(b.id.to_string()),
                        reason: None,
                        touched,
                    })
                }
                // The schema disagreed with the decision (it never should): reject, loudly.
                Err(
                    BookingError::SlotFull | BookingError::SlotNotOpen | BookingError::CodeTaken,
                ) => {
                    tracing::error!(request = %request.id, "store refused a decided booking");
                    Err(StoreError::Refused("store_refused"))
                }
                Err(BookingError::Store(e)) => Err(e),
            }
        }
    }
}

/// The capacity the batch may touch: every slot of the services concerned from the earliest
/// asked date to the end of the horizon, the kiosk's leases, and the bookings being cancelled.
fn load_capacity(
    tx: &Transaction<'_>,
    ctx: &Context,
    (kiosk, partner): (KioskId, i64),
    pending: &[Request],
    now: Timestamp,
) -> Result<Capacity, StoreError> {
    let mut capacity = Capacity::default();
    let services: BTreeSet<&ServiceId> = pending.iter().map(|r| &r.service).collect();
    let today = ctx.today(now);
    for service in services {
        let Some(known) = ctx.services.iter().find(|s| &s.id == service) else {
            continue;
        };
        let asked = pending
            .iter()
            .filter(|r| &r.service == service)
            .map(|r| r.date);
        let from = asked.clone().min().unwrap_or(today).min(today);
        // Through the horizon, and through any date asked (a leased slot may lie beyond a horizon
        // shortened since the lease was granted).
        let to = today
            .saturating_add((known.rules.horizon_days() as i32).days())
            .max(asked.max().unwrap_or(today));
        for (key, counts) in slots::counts_between(tx, service, from, to)? {
            capacity.slots.insert((service.clone(), key), counts);
        }
    }
    for (service, key, lease) in slots::leases_of(tx, kiosk)? {
        capacity.leases.insert((kiosk, service, key), lease);
    }
    // Each person's active booking, for the one-booking-per-person rule.
    let kiosk_text = kiosk.to_string();
    for request in pending.iter().filter(|r| r.kind == RequestKind::Book) {
        let Some(permit) = request.permit else {
            continue;
        };
        let Some(active) = appointments::active_for_permit(tx, permit, &request.service, today)?
        else {
            continue;
        };
        capacity
            .slots
            .entry((request.service.clone(), active.slot))
            .or_insert(SlotCounts {
                places: 0,
                taken: 1,
                held: 0,
            });
        capacity.permits.insert(
            (permit, request.service.clone()),
            ActiveBooking {
                appointment: active.id.parse().ok(),
                slot: active.slot,
                movable: active.status == appointments::AppointmentStatus::Booked,
                request: active.request.and_then(|r| r.parse().ok()),
                this_kiosk: active.kiosk.as_deref() == Some(kiosk_text.as_str()),
                this_body: active.partner == Some(partner),
            },
        );
    }
    for cancelled in pending.iter().filter_map(|r| r.cancels) {
        if let Some((service, key)) = appointments::booked_by_request(tx, &kiosk_text, cancelled)? {
            capacity
                .slots
                .entry((service.clone(), key))
                .or_insert(SlotCounts {
                    places: 0,
                    taken: 0,
                    held: 0,
                });
            capacity.bookings.insert(
                cancelled,
                Booking {
                    kiosk,
                    service,
                    slot: key,
                },
            );
        }
    }
    Ok(capacity)
}
