//! Operations on partner bodies and their operators. Kiosks learn both from the documents every
//! kiosk shares (the directory, and each kiosk's operators), so each change rewrites them.

use super::{Actor, Changes};
use crate::{
    accounts::{self, AccountError, Role},
    store::{
        Connection, StoreError,
        partners::{self, Partner, PartnerError},
        users,
    },
};

/// Create (`partner.id == 0`) or update a partner body; its id.
pub fn save(
    conn: &mut Connection,
    by: &Actor,
    partner: &Partner,
) -> Result<(Result<i64, PartnerError>, Changes), StoreError> {
    let saved = partners::save_partner(conn, partner, by.now, &by.name, &by.source)?;
    let changes = if saved.is_ok() {
        Changes::shared()
    } else {
        Changes::none()
    };
    Ok((saved, changes))
}

/// Create an operator of `partner`, who logs in at the body's kiosks.
pub fn create_operator(
    conn: &mut Connection,
    by: &Actor,
    partner: i64,
    username: &str,
    display_name: &str,
    password: &str,
) -> Result<(Result<i64, AccountError>, Changes), StoreError> {
    let created = accounts::create_user(
        conn,
        username,
        display_name,
        password,
        Role::Operator,
        Some(partner),
        by.now,
        &by.name,
    )?;
    let changes = if created.is_ok() {
        Changes::shared()
    } else {
        Changes::none()
    };
    Ok((created, changes))
}

/// Set a new password hash for `user` (and unlock the account); `false` if there is no such user.
pub fn reset_password(
    conn: &mut Connection,
    by: &Actor,
    user: i64,
    password_hash: &str,
) -> Result<(bool, Changes), StoreError> {
    let done = users::reset_password(conn, user, password_hash, by.now, &by.name, &by.source)?;
    Ok((done, Changes::shared()))
}

/// Activate or deactivate `user`.
pub fn set_active(
    conn: &mut Connection,
    by: &Actor,
    user: i64,
    active: bool,
) -> Result<(bool, Changes), StoreError> {
    let done = users::set_active(conn, user, active, by.now, &by.name, &by.source)?;
    Ok((done, Changes::shared()))
}
