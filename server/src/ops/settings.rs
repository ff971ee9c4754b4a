//! Saving the Questura's settings. The directory every kiosk holds carries its name, address and
//! holidays, so it is rewritten.

use super::{Actor, Changes};
use crate::store::{
    Connection, StoreError,
    settings::{self, Settings},
};

pub fn save(
    conn: &mut Connection,
    by: &Actor,
    new: &Settings,
) -> Result<((), Changes), StoreError> {
    settings::save_settings(conn, new, by.now, &by.name, &by.source)?;
    Ok(((), Changes::shared()))
}
