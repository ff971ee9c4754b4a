//! The documents written from SQLite: the directory (the Questura, services, partner bodies),
//! the ready list's index, each kiosk's operators, the agendas' counts and leases, and each
//! kiosk's inbox of verdicts. Every writer is idempotent: a record already right adds nothing,
//! and each returns whether its document changed.

use std::collections::{BTreeMap, BTreeSet};

use coper_shared::{
    agenda::SlotKey,
    documents::{
        BookedPermit, DocName, KioskId, LeaseEntry, PartnerBooking, QuesturaInfo, ServiceInfo,
        SlotCounts, SyncSettings, collections, delete_record, put_exactly, put_record, records,
    },
    ready_index::{Permit, ReadyEntry},
    rules::hh_mm,
};
use jiff::{Timestamp, civil::Date};

use super::{Context, SyncConfig, docs::Documents};
use crate::store::{
    Connection, StoreError, appointments, checklists, parse_date, partners, precheck, ready,
    settings, slots, users, verdicts,
};

/// Write the agendas named in `touched`, then the inboxes it names, from SQLite; the documents
/// that changed, in that order (counts before verdicts).
pub(super) fn project(
    conn: &Connection,
    docs: &mut Documents,
    touched: impl IntoIterator<Item = DocName>,
) -> Result<Vec<DocName>, StoreError> {
    let mut changed = Vec::new();
    let mut inboxes = BTreeSet::new();
    for name in touched {
        match name {
            DocName::Agenda { .. } if write_agenda(conn, docs, &name)? => changed.push(name),
            DocName::Inbox(other) => {
                inboxes.insert(other);
            }
            _ => {}
        }
    }
    for inbox in inboxes {
        if write_inbox(conn, docs, inbox)? {
            changed.push(DocName::Inbox(inbox));
        }
    }
    Ok(changed)
}

/// Write the directory from SQLite. Returns whether the document changed.
fn write_directory(
    conn: &Connection,
    docs: &mut Documents,
    ctx: &Context,
    clock_skew_bound_ms: i64,
    seal_key: &str,
) -> Result<bool, StoreError> {
    let mut doc = docs.get(conn, &DocName::Directory)?;
    let mut changed = put_record(
        &mut doc,
        collections::QUESTURA,
        "questura",
        &QuesturaInfo {
            name: ctx.questura.name.clone(),
            address: ctx.questura.address.clone(),
            time_zone: ctx
                .questura
                .time_zone
                .iana_name()
                .unwrap_or("Europe/Rome")
                .to_owned(),
            holidays: ctx.questura.holidays.clone(),
        },
    );
    for service in &ctx.services {
        changed |= put_record(
            &mut doc,
            collections::SERVICES,
            service.id.as_str(),
            &ServiceInfo {
                name: service.name.clone(),
                what_to_bring: service.what_to_bring.clone(),
                what_to_bring_in: service.what_to_bring_in.clone(),
                rules: service.rules.to_draft(),
            },
        );
    }
    changed |= put_record(
        &mut doc,
        collections::SETTINGS,
        "sync",
        &SyncSettings {
            clock_skew_bound_ms,
        },
    );
    // Kiosks seal a person's name and phone with this key: only the server opens them.
    changed |= put_record(&mut doc, collections::SETTINGS, "seal", &seal_key);
    for partner in partners::active(conn)? {
        changed |= put_record(
            &mut doc,
            collections::PARTNERS,
            &partner.id.to_string(),
            &serde_json::json!({
                "name": partner.name, "address": partner.address, "city": partner.city,
                "phone": partner.phone, "opening_hours": partner.opening_hours,
            }),
        );
    }
    docs.persist(conn, &DocName::Directory, doc)?;
    Ok(changed)
}

/// Write one agenda document's counts and leases from SQLite. Returns whether it changed.
pub(super) fn write_agenda(
    conn: &Connection,
    docs: &mut Documents,
    name: &DocName,
) -> Result<bool, StoreError> {
    let DocName::Agenda {
        service,
        year,
        month,
    } = name
    else {
        return Ok(false);
    };
    let first = Date::new(*year, *month, 1).map_err(|e| StoreError::InvalidData(e.to_string()))?;
    let last = first.last_of_month();
    let slot_text = |key: SlotKey| format!("{} {}", key.date, hh_mm(key.start));
    let counts: Vec<(String, SlotCounts)> = slots::counts_between(conn, service, first, last)?
        .into_iter()
        .map(|(key, counts)| (slot_text(key), counts))
        .collect();
    let leases: Vec<(String, LeaseEntry)> = slots::leases_between(conn, service, first, last)?
        .into_iter()
        .map(|(kiosk, key, lease)| (format!("{kiosk} {}", slot_text(key)), lease))
        .collect();
    let mut doc = docs.get(conn, name)?;
    let mut changed = false;
    for (key, value) in &counts {
        changed |= put_record(&mut doc, collections::SLOTS, key, value);
    }
    let live: BTreeSet<&String> = leases.iter().map(|(k, _)| k).collect();
    for (key, value) in &leases {
        changed |= put_record(&mut doc, collections::LEASES, key, value);
    }
    for (key, _) in records::<LeaseEntry>(&doc, collections::LEASES) {
        if !live.contains(&key) {
            changed |= delete_record(&mut doc, collections::LEASES, &key);
        }
    }
    docs.persist(conn, name, doc)?;
    Ok(changed)
}

/// Write the documents every kiosk shares: the directory and the ready list. Returns those that
/// changed. Without a Questura set up (`ctx` is `None`), the ready list alone.
pub(super) fn write_shared(
    conn: &Connection,
    docs: &mut Documents,
    ctx: Option<&Context>,
    config: SyncConfig,
    now: Timestamp,
) -> Result<Vec<DocName>, StoreError> {
    let mut changed = Vec::new();
    let seal_key = hex::encode(coper_shared::sealed::public_key(&settings::seal_secret(
        conn, now,
    )?));
    if let Some(ctx) = ctx
        && write_directory(conn, docs, ctx, config.clock_skew_bound_ms, &seal_key)?
    {
        changed.push(DocName::Directory);
    }
    let ready = write_ready(conn, docs, now)?;
    let booked = match ctx {
        Some(ctx) => write_booked(conn, docs, ctx, now)?,
        None => false,
    };
    if ready | booked | write_precheck(conn, docs)? {
        changed.push(DocName::Ready);
    }
    Ok(changed)
}

/// Write the ready list's index from SQLite: permits not delivered yet, as salted hashes.
/// Returns whether the document changed.
fn write_ready(
    conn: &Connection,
    docs: &mut Documents,
    now: Timestamp,
) -> Result<bool, StoreError> {
    // Every kiosk connection reconciles: hash the list again only when it changed (an import, a
    // delivery, the stretching cost) since this process last wrote it.
    let stretch = settings::ready_stretch(conn, now)?;
    let version = format!("{}/{}", ready::version(conn)?, stretch.id());
    if docs.ready_version.as_deref() == Some(version.as_str()) {
        return Ok(false);
    }
    let secret = settings::server_key(conn, now)?;
    let permits = ready::undelivered(conn)?;
    // Imports stretch their birth dates beforehand; what is still missing (the demo, a new
    // cost) is stretched here.
    let mut births = ready::birth_keys(conn, &stretch.id())?;
    let missing: BTreeSet<String> = permits
        .iter()
        .map(|(_, p)| p.birth_date.clone())
        .filter(|b| !births.contains_key(b))
        .collect();
    if !missing.is_empty() {
        let stretched = crate::import::stretch_births(&stretch, missing.into_iter().collect());
        ready::save_birth_keys(conn, &stretched.stretch, &stretched.keys)?;
        births.extend(stretched.keys);
    }
    let mut entries: Vec<ReadyEntry> = Vec::new();
    for (id, permit) in permits {
        let Some(born) = births.get(&permit.birth_date) else {
            continue;
        };
        // A stable salt per permit, which only the server can derive.
        let seed = [&secret[..], &id.to_be_bytes()].concat();
        let salt = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&seed)[..8]);
        entries.push(ReadyEntry::new(
            &Permit {
                id,
                surname: &permit.surname,
                given_names: &permit.given_names,
                birth_date: &permit.birth_date,
                fingerprint_date: parse_date(&permit.fingerprint_date)?,
                receipt: permit.receipt_number.as_deref(),
                pratica: permit.pratica_number.as_deref(),
            },
            &salt,
            born,
        ));
    }
    let mut doc = docs.get(conn, &DocName::Ready)?;
    let mut changed = put_record(&mut doc, collections::SETTINGS, "stretch", &stretch);
    // Delivered (or removed) permits leave the list.
    let listed = entries.iter().map(|e| (e.permit.to_string(), e));
    changed |= put_exactly(&mut doc, collections::PERMITS, listed);
    docs.persist(conn, &DocName::Ready, doc)?;
    docs.ready_version = Some(version);
    Ok(changed)
}

/// Write, beside the ready list, each permit's active booking (no names), so kiosks warn before
/// booking a person twice. Returns whether the document changed.
pub(super) fn write_booked(
    conn: &Connection,
    docs: &mut Documents,
    ctx: &Context,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let today = ctx.today(now);
    docs.booked_written_on = Some(today);
    let active = appointments::active_with_permits(conn, today)?;
    let mut doc = docs.get(conn, &DocName::Ready)?;
    let entries = active.iter().filter_map(|(permit, service, booked)| {
        let service = coper_shared::ids::ServiceId::parse(service).ok()?;
        Some((BookedPermit::key(*permit, &service), booked))
    });
    let changed = put_exactly(&mut doc, collections::BOOKED, entries);
    // Persisted even unchanged: it may carry what this write changed before.
    docs.persist(conn, &DocName::Ready, doc)?;
    Ok(changed)
}

/// Write, beside the ready list, each permit's document pre-check (no names, no link): whether
/// it is complete and what is still to bring. Returns whether the document changed.
fn write_precheck(conn: &Connection, docs: &mut Documents) -> Result<bool, StoreError> {
    let added = checklists::added_names(conn)?;
    let summaries = precheck::summaries(conn, &added)?;
    let mut doc = docs.get(conn, &DocName::Ready)?;
    let entries = summaries.iter().map(|(permit, s)| (permit.to_string(), s));
    let changed = put_exactly(&mut doc, collections::PRECHECK, entries);
    // Persisted even unchanged: it may carry what this write changed before.
    docs.persist(conn, &DocName::Ready, doc)?;
    Ok(changed)
}

/// Write the bookings document of the partner bodies `partners` (every body when `None`) whose
/// kiosks have a session: the body's bookings from today on, once for all its kiosks (see
/// `docs`). Returns the documents that changed: the body's document under each kiosk's name.
pub(super) fn write_bookings(
    conn: &Connection,
    docs: &mut Documents,
    ctx: &Context,
    now: Timestamp,
    partners: Option<&BTreeSet<i64>>,
    public_url: Option<&str>,
) -> Result<Vec<DocName>, StoreError> {
    let today = ctx.today(now);
    let mut changed_docs = Vec::new();
    let bodies: Vec<(i64, Vec<KioskId>)> = docs
        .bodies()
        .into_iter()
        .filter(|(partner, kiosks)| {
            !kiosks.is_empty() && partners.is_none_or(|p| p.contains(partner))
        })
        .collect();
    let tokens = match public_url {
        Some(_) if !bodies.is_empty() => precheck::tokens_by_appointment(conn)?,
        _ => Default::default(),
    };
    for (partner, kiosks) in bodies {
        if docs.body_outworn(partner, today) {
            // Yesterday's records must not stay in its history: its kiosks reconnect and take a
            // fresh one.
            docs.restart_body(partner);
            continue;
        }
        let mut rows = appointments::of_partner_from(conn, partner, today)?;
        if let Some(base) = public_url {
            for row in &mut rows {
                row.precheck_link = tokens
                    .get(&row.appointment.to_string())
                    .map(|token| crate::precheck::person_link(base, token));
            }
        }
        let rows: BTreeMap<String, PartnerBooking> = rows
            .into_iter()
            .map(|row| (row.appointment.to_string(), row))
            .collect();
        let name = DocName::Bookings(kiosks[0]);
        let mut doc = docs.get(conn, &name)?;
        let Some(body) = docs.body(partner) else {
            continue;
        };
        // The document holds exactly what was last written: only the difference is put.
        let changed = if body.written.is_empty() {
            put_exactly(
                &mut doc,
                collections::BOOKINGS,
                rows.iter().map(|(k, b)| (k.clone(), b)),
            )
        } else {
            let mut changed = false;
            for (key, booking) in &rows {
                if body.written.get(key) != Some(booking) {
                    changed |= put_record(&mut doc, collections::BOOKINGS, key, booking);
                }
            }
            for key in body.written.keys().filter(|k| !rows.contains_key(*k)) {
                changed |= delete_record(&mut doc, collections::BOOKINGS, key);
            }
            changed
        };
        body.written = rows;
        if changed {
            body.changes += 1;
            changed_docs.extend(kiosks.into_iter().map(DocName::Bookings));
        }
        docs.persist(conn, &name, doc)?;
    }
    Ok(changed_docs)
}

/// Write kiosk `kiosk`'s partner body and its operators' accounts. Returns whether it changed.
pub(super) fn write_operators(
    conn: &Connection,
    docs: &mut Documents,
    kiosk: KioskId,
) -> Result<bool, StoreError> {
    let Some(partner) = partners::of_kiosk(conn, kiosk)? else {
        return Ok(false);
    };
    let operators = users::operators_of(conn, partner.id)?;
    let mut doc = docs.get(conn, &DocName::Operators(kiosk))?;
    let mut changed = put_record(&mut doc, collections::PARTNER, "partner", &partner);
    for operator in &operators {
        changed |= put_record(
            &mut doc,
            collections::OPERATORS,
            &operator.username.to_lowercase(),
            operator,
        );
    }
    docs.persist(conn, &DocName::Operators(kiosk), doc)?;
    Ok(changed)
}

/// Write every verdict of `kiosk` from SQLite into its inbox. Returns whether it changed.
pub(super) fn write_inbox(
    conn: &Connection,
    docs: &mut Documents,
    kiosk: KioskId,
) -> Result<bool, StoreError> {
    let verdicts = verdicts::of_kiosk(conn, kiosk)?;
    let mut doc = docs.get(conn, &DocName::Inbox(kiosk))?;
    let mut changed = false;
    for verdict in &verdicts {
        changed |= put_record(
            &mut doc,
            collections::VERDICTS,
            &verdict.request.to_string(),
            verdict,
        );
    }
    docs.persist(conn, &DocName::Inbox(kiosk), doc)?;
    Ok(changed)
}
