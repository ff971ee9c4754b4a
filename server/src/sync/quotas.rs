//! Loading a kiosk's quotas and what it, and its partner body, already hold, for the pure rules
//! (`coper_shared::quota`) to count each booking against.

use coper_shared::{
    documents::KioskId,
    jiff::civil::Date,
    quota::{Allowance, Quota, Quotas},
};

use crate::store::{
    StoreError, Transaction,
    appointments::{self, Holder},
};

/// The quotas of `kiosk` (of partner body `partner`) with their holdings over the whole weeks
/// around `dates` (the first and last slot date a decision may touch; none: nothing to count).
pub(super) fn holdings(
    tx: &Transaction<'_>,
    kiosk: KioskId,
    partner: i64,
    (kiosk_quota, partner_quota): (Quota, Quota),
    dates: (Option<Date>, Option<Date>),
) -> Result<Quotas, StoreError> {
    let mut quotas = Quotas {
        kiosk: Allowance::new(kiosk_quota),
        partner: Allowance::new(partner_quota),
    };
    let (Some(first), Some(last)) = dates else {
        return Ok(quotas);
    };
    let (from, to) = Quotas::window(first, last);
    let kiosk_text = kiosk.to_string();
    quotas.kiosk.held = appointments::held_by(tx, Holder::Kiosk(&kiosk_text), from, to)?;
    quotas.partner.held = appointments::held_by(tx, Holder::Partner(partner), from, to)?;
    Ok(quotas)
}
