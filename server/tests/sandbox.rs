//! The sandbox in which kiosks' changes are parsed first (`coper_server::sync::sandbox`), with
//! the real server binary as the child: the two inputs the fuzzer found (one makes Automerge
//! panic, one makes it allocate without bound) are refused within the child's limits, and a
//! real kiosk's changes pass.

use std::time::Instant;

use coper_server::sync::sandbox::{Sandbox, TIME};
use coper_shared::{
    automerge::{AutoCommit, sync},
    documents::{collections, put_record},
    protocol::Frame,
};

fn sandbox() -> Sandbox {
    Sandbox::new(env!("CARGO_BIN_EXE_coper-server").into())
}

/// The change chunks of the sync message in a frame the fuzzer wrote.
fn changes_in(frame: &[u8]) -> Vec<u8> {
    let Ok(Frame::Sync { message, .. }) = Frame::decode(frame) else {
        panic!("a sync frame");
    };
    let message = sync::Message::decode(&message).expect("the envelope decodes");
    message.changes.iter().flatten().copied().collect()
}

fn a_real_kiosks_changes() -> Vec<u8> {
    let mut outbox = AutoCommit::new();
    put_record(&mut outbox, collections::REQUESTS, "r1", &"a request");
    let changes: Vec<u8> = outbox
        .get_changes(&[])
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    assert!(!changes.is_empty());
    changes
}

#[test]
fn a_real_kiosks_changes_pass() {
    assert!(sandbox().changes_parse(&a_real_kiosks_changes()));
}

/// One child answers message after message; one that kills it is refused, and the next message
/// gets a fresh child rather than a refusal.
#[test]
fn the_child_is_kept_and_replaced_after_a_message_kills_it() {
    let sandbox = sandbox();
    let good = a_real_kiosks_changes();
    for _ in 0..50 {
        assert!(sandbox.changes_parse(&good));
    }
    assert!(!sandbox.changes_parse(b"not automerge at all"));
    assert!(sandbox.changes_parse(&good));
    assert!(!sandbox.changes_parse(&changes_in(include_bytes!("data/automerge_panic.bin"))));
    assert!(
        sandbox.changes_parse(&good),
        "a fresh child after the panic"
    );
}

#[test]
fn what_makes_automerge_panic_or_allocate_without_bound_is_refused_in_the_child() {
    for (what, frame) in [
        ("panic", &include_bytes!("data/automerge_panic.bin")[..]),
        (
            "unbounded memory",
            &include_bytes!("data/automerge_unbounded_memory.bin")[..],
        ),
    ] {
        let started = Instant::now();
        assert!(!sandbox().changes_parse(&changes_in(frame)), "{what}");
        assert!(
            started.elapsed() <= TIME * 2,
            "{what}: {:?}",
            started.elapsed()
        );
    }
}
