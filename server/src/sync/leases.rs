//! Settling a kiosk's leases once its outbox is fully received: expired leases give their unused
//! places back, the others are extended, and the kiosk is topped up to its partner body's places
//! per day on the next open days. The arithmetic of the pool is `store::slots`'s.

use std::collections::BTreeSet;

use coper_shared::documents::{DocName, KioskId};
use jiff::{Timestamp, ToSpan, civil::Time};

use super::{Context, SyncConfig, quotas};
use crate::store::{
    StoreError, Transaction, partners,
    slots::{self, Existing, LeaseScope},
};

/// With the kiosk's outbox fully received: return its expired leases to the pool, extend the
/// others, and top it up to its partner body's places per day on the next open days.
pub(super) fn settle_leases(
    tx: &Transaction<'_>,
    ctx: &Context,
    kiosk: KioskId,
    now: Timestamp,
    config: SyncConfig,
    clock_trusted: bool,
    touched: &mut BTreeSet<DocName>,
) -> Result<(), StoreError> {
    let now_ms = now.as_millisecond();
    // Everything this kiosk wrote before its leases expired has been decided (it is in sync), and
    // its clock is within the bound: what is left of a lease expired by more than the bound goes
    // back to the pool. A lease is never withdrawn before that, whatever the kiosk's clock, so a
    // kiosk can never hold a lease the server has taken back.
    let expired = LeaseScope::ExpiredOf {
        kiosk,
        before_ms: now_ms - config.clock_skew_bound_ms,
    };
    for (service, date) in slots::return_unused(tx, expired)? {
        touched.insert(DocName::agenda_for(&service, date));
    }
    if !clock_trusted {
        return Ok(());
    }
    let expires_at_ms = now_ms + config.lease_ttl_ms;
    slots::extend_leases(tx, kiosk, expires_at_ms)?;
    let per_day = partners::lease_places_per_day(tx, kiosk)?;
    if per_day == 0 {
        return Ok(());
    }
    let today = ctx.today(now);
    let Some((partner, kiosk_quota, partner_quota)) = partners::quotas_of_kiosk(tx, kiosk)? else {
        return Ok(());
    };
    let last_day = ctx
        .services
        .iter()
        .map(|s| today.saturating_add((s.rules.horizon_days() as i32).days()))
        .max()
        .unwrap_or(today);
    let mut quotas = quotas::holdings(
        tx,
        kiosk,
        partner,
        (kiosk_quota, partner_quota),
        (Some(today), Some(last_day)),
    )?;
    // Places already leased and not used yet may still become bookings: they count too.
    for (service, date) in slots::leased_days_of(tx, kiosk)? {
        for _ in 0..slots::unused_on(tx, kiosk, &service, date)? {
            quotas.take(date);
        }
    }
    for service in &ctx.services {
        let agenda = ctx.agenda(service);
        let last = today.saturating_add((service.rules.horizon_days() as i32).days());
        let taken = slots::taken_between(tx, &service.id, today, last)?;
        let mut days_done = 0;
        let mut date = today;
        while days_done < config.lease_days && date <= last {
            let free: Vec<_> = agenda
                .free_slots(&taken, now, date.to_datetime(Time::midnight()))
                .take_while(|f| f.slot.date == date)
                .collect();
            date = date.saturating_add(1.day());
            let Some(first) = free.first() else {
                continue;
            };
            days_done += 1;
            let day = first.slot.date;
            let mut missing =
                per_day.saturating_sub(slots::unused_on(tx, kiosk, &service.id, day)?);
            for free in free {
                if missing == 0 {
                    break;
                }
                let key = free.slot.key();
                slots::set_places(tx, &service.id, key, free.slot.places, Existing::Keep)?;
                if !quotas.allows(day) {
                    break;
                }
                if !slots::grant_place(tx, kiosk, &service.id, key, expires_at_ms)? {
                    continue;
                }
                quotas.take(day);
                missing -= 1;
                touched.insert(DocName::agenda_for(&service.id, day));
            }
        }
    }
    // Every agenda holding one of this kiosk's leases shows the new expiry.
    for (service, date) in slots::leased_days_of(tx, kiosk)? {
        touched.insert(DocName::agenda_for(&service, date));
    }
    Ok(())
}
