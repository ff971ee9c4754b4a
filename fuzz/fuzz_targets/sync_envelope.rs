//! The kiosk ↔ server WebSocket envelope and what it carries, as the server reads a message
//! from a kiosk: the frame, the document's name, the Automerge sync message, applied to an
//! outbox, and the requests read back and checked. Nothing may panic, hang or blow up.
#![no_main]

use coper_shared::{
    automerge::{AutoCommit, sync, sync::SyncDoc},
    decide::{RequestLimits, well_formed},
    documents::{DocName, Request, collections, records},
    protocol::Frame,
};
use libfuzzer_sys::fuzz_target;

/// libFuzzer's panic hook aborts on any panic. A panic inside Automerge (or its column codec,
/// hexane) while it reads a message is caught by the server, so it is let through to the
/// `catch_unwind` below; any other panic still aborts and is a finding.
fn let_automerge_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map(|l| l.file()).unwrap_or_default();
            if !(file.contains("/automerge-") || file.contains("/hexane-")) {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_automerge_panics_unwind();
    let Ok(frame) = Frame::decode(data) else {
        return;
    };
    // Whatever decodes encodes back to something that decodes the same.
    assert_eq!(Frame::decode(&frame.encode()).ok(), Some(frame.clone()));
    let Frame::Sync { document, message } = frame else {
        return;
    };
    let _ = DocName::parse(&document);
    let Ok(message) = sync::Message::decode(&message) else {
        return;
    };
    let mut outbox = AutoCommit::new();
    let mut state = sync::State::new();
    // Automerge 0.12 panics on some malformed messages (the server catches it: `SyncHub::with_doc`
    // refuses the message and reloads the document); a caught panic is the server's behaviour,
    // not a finding. What follows must not panic.
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        outbox.sync().receive_sync_message(&mut state, message)
    }));
    if let Ok(Ok(())) = applied {
        for (_, request) in records::<Request>(&outbox, collections::REQUESTS) {
            let _ = well_formed(&request, &RequestLimits::default());
        }
    }
});
