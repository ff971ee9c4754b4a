//! Importing the ready list. Kiosks check the list offline, so an import rewrites its index.

use super::{Actor, Changes};
use crate::{
    import::{self, ImportReport, ReadyRow},
    store::{Connection, StoreError},
};

/// Import `rows` (already checked whole by `import::parse`) in one transaction.
pub fn import(
    conn: &mut Connection,
    by: &Actor,
    rows: &[ReadyRow],
) -> Result<(ImportReport, Changes), StoreError> {
    let report = import::apply(conn, rows, by.now, &by.name)?;
    Ok((report, Changes::shared()))
}
