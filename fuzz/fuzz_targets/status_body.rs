//! The public status check's body, as JSON (`POST /api/v1/status-check`) and as a form (the
//! page): read, checked, and turned into the identity its limits are keyed on.
#![no_main]

use coper_server::status::Asked;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let asked: Vec<Asked> = [
        serde_json::from_slice::<Asked>(data).ok(),
        serde_urlencoded::from_bytes::<Asked>(data).ok(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for asked in asked {
        if let Ok(query) = asked.query() {
            assert_eq!(query.identity().len(), 64);
        }
    }
});
