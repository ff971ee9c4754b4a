//! The signed code in a reminder's QR, as the counter reads a scan: parsed, then verified
//! against a key. A forged or garbled code must be refused, never panic.
#![no_main]

use coper_shared::ticket::Scanned;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(signed) = Scanned::parse(&text) {
        let _ = signed.issuer();
    }
});
