//! Importing the ready list. Kiosks check the list offline, so an import rewrites its index.

use super::{Actor, Changes};
use crate::{
    import::{self, ImportReport, ReadyRow, Stretched},
    store::{Connection, StoreError, ready},
};

/// Import `rows` (already checked whole by `import::parse`) in one transaction, keeping the
/// birth dates `stretched` beforehand (`import::stretch_births`, off this connection) so the
/// index is rewritten without stretching on the writing connection.
pub fn import(
    conn: &mut Connection,
    by: &Actor,
    rows: &[ReadyRow],
    stretched: &Stretched,
) -> Result<(ImportReport, Changes), StoreError> {
    ready::save_birth_keys(conn, &stretched.stretch, &stretched.keys)?;
    let report = import::apply(conn, rows, by.now, &by.name)?;
    Ok((report, Changes::shared()))
}
