//! The ready-list file an administrator uploads (from Excel, in any encoding): every row parsed
//! and checked, every bad one reported with its line. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match coper_server::import::parse(data) {
        Ok(rows) => assert!(rows.iter().all(|r| !r.surname.trim().is_empty())),
        Err(errors) => assert!(!errors.is_empty()),
    }
});
