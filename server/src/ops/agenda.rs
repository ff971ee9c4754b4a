//! Operations on the agenda: creating a service, saving its description and rules, and closing
//! a day. A change of rules moves the bookings it displaces (`crate::agenda_change`); the changes
//! name the agendas and the kiosks' inboxes to rewrite.

use coper_shared::{
    ids::ServiceId,
    jiff::civil::Date,
    rules::{DateException, ExceptionKind, ServiceRules},
};

use super::{Actor, Changes};
use crate::{
    agenda_change::{self, Applied},
    store::{self, Connection, StoreError},
};

fn changes_of(applied: &Applied) -> Changes {
    Changes {
        agendas: applied.agendas.clone(),
        inboxes: applied.kiosks.clone(),
        // The directory carries every service's rules.
        shared: true,
        appointments: true,
    }
}

/// Create a service with no hours yet; `false` if the id is taken.
pub fn create_service(
    conn: &mut Connection,
    by: &Actor,
    id: &ServiceId,
    name: &str,
) -> Result<(bool, Changes), StoreError> {
    let tx = conn.transaction()?;
    if !store::services::create(&tx, id, name)? {
        return Ok((false, Changes::none()));
    }
    store::audit_from(
        &tx,
        by.now,
        &by.name,
        "service.created",
        id.as_str(),
        &serde_json::json!({}),
        &by.source,
    )?;
    tx.commit()?;
    Ok((true, Changes::shared()))
}

/// Why bookings moved when the administrator gave no reason: a change of hours, a closed day.
pub const HOURS_CHANGED: &str = "cambio di orario";
pub const DAY_CLOSED: &str = "giorno chiuso";

/// Save a service's description ("what to bring" in Italian and the other languages given) and
/// rules, moving the bookings the rules displace for `reason`
/// (blank: [`HOURS_CHANGED`]).
#[allow(clippy::too_many_arguments)]
pub fn save_service(
    conn: &mut Connection,
    by: &Actor,
    rules: &ServiceRules,
    name: &str,
    description: &str,
    (what_to_bring, what_to_bring_in): &(String, coper_shared::precheck::Translations),
    reason: &str,
) -> Result<(Applied, Changes), StoreError> {
    let reason = Some(super::clean_reason(reason))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| HOURS_CHANGED.to_owned());
    let tx = conn.transaction()?;
    store::services::describe(
        &tx,
        rules.service(),
        name,
        description,
        what_to_bring,
        what_to_bring_in,
    )?;
    let applied = agenda_change::apply(&tx, rules, &reason, by.now, &by.name, &by.source)?;
    tx.commit()?;
    let changes = changes_of(&applied);
    Ok((applied, changes))
}

/// A day to close, as the administrator typed it.
#[derive(Debug, Clone)]
pub struct Closure {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// A service id, or empty for every service.
    pub service: String,
    /// Why, for the people and the audit log.
    pub note: String,
}

/// The services' rules with `date` closed, or why the date cannot be closed.
pub fn rules_with_closure(
    conn: &Connection,
    form: &Closure,
) -> Result<Result<Vec<ServiceRules>, String>, StoreError> {
    let Ok(date) = form.date.trim().parse::<Date>() else {
        return Ok(Err("indicare una data valida".into()));
    };
    let services = store::services::services(conn)?;
    let mut out = Vec::new();
    for service in services {
        if !form.service.is_empty() && service.id.as_str() != form.service {
            continue;
        }
        let mut draft = service.rules.to_draft();
        draft.exceptions.retain(|e| e.date != date);
        draft.exceptions.push(DateException {
            date,
            kind: ExceptionKind::Closed {
                note: super::clean_reason(&form.note),
            },
        });
        match ServiceRules::new(draft) {
            Ok(rules) => out.push(rules),
            Err(e) => return Ok(Err(e.to_string())),
        }
    }
    if out.is_empty() {
        return Ok(Err("servizio sconosciuto".into()));
    }
    Ok(Ok(out))
}

/// Close a day: save each service's rules with the closure, moving the bookings it displaces;
/// or why the day cannot be closed (nothing changes then).
pub fn close_day(
    conn: &mut Connection,
    by: &Actor,
    closure: &Closure,
) -> Result<(Result<Applied, String>, Changes), StoreError> {
    let rules = match rules_with_closure(conn, closure)? {
        Ok(rules) => rules,
        Err(why) => return Ok((Err(why), Changes::none())),
    };
    let tx = conn.transaction()?;
    let mut all = Applied::default();
    for r in &rules {
        let reason = Some(super::clean_reason(&closure.note))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DAY_CLOSED.to_owned());
        let applied = agenda_change::apply(&tx, r, &reason, by.now, &by.name, &by.source)?;
        all.displaced.extend(applied.displaced);
        all.agendas.extend(applied.agendas);
        all.kiosks.extend(applied.kiosks);
    }
    // The closure itself, with the reason the administrator typed, beside the rules it changed.
    store::audit_from(
        &tx,
        by.now,
        &by.name,
        "agenda.day_closed",
        &closure.date,
        &serde_json::json!({
            "service": closure.service,
            "reason": super::clean_reason(&closure.note),
            "moved": all.displaced.len(),
        }),
        &by.source,
    )?;
    tx.commit()?;
    let changes = changes_of(&all);
    Ok((Ok(all), changes))
}
