//! Writes the starting corpora of the fuzz targets that need well-formed binary inputs (a signed
//! ticket, sync frames carrying a real outbox), into `fuzz/corpus/`. Run by hand when the
//! formats change: `cargo test -p coper-shared --test fuzz_seeds -- --ignored`.

use coper_shared::{
    automerge::{AutoCommit, sync, sync::SyncDoc},
    documents::{DocName, KioskId, Request, RequestKind, collections, put_record},
    ids::ServiceId,
    protocol::Frame,
    sealed::{Personal, public_key, seal},
    ticket::{Issuer, Ticket},
};
use jiff::civil::{date, time};
use uuid::Uuid;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
#[ignore = "writes the fuzz corpora's seeds; run by hand"]
fn write_fuzz_seeds() {
    let service = ServiceId::parse("consegna-pse").unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    for (n, issuer) in [Issuer::Kiosk(Uuid::from_u128(7)), Issuer::Server]
        .into_iter()
        .enumerate()
    {
        let ticket = Ticket {
            issuer,
            booking: Uuid::from_u128(99),
            service: service.clone(),
            date: date(2026, 12, 7),
            time: time(9, 30, 0, 0),
        };
        write("ticket", &format!("seed-{n}"), ticket.sign(&key).as_bytes());
    }

    let kiosk = KioskId(Uuid::from_u128(7));
    let mut outbox = AutoCommit::new();
    for (n, sealed) in [false, true].into_iter().enumerate() {
        let personal = Personal {
            surname: "El Amrani".into(),
            given_names: "Fatima".into(),
            phone: Some("+39 333 000 0000".into()),
            ..Personal::default()
        };
        let request = Request {
            id: Uuid::from_u128(1000 + n as u128),
            kind: RequestKind::Book,
            service: service.clone(),
            date: date(2026, 12, 7),
            time: time(9, 30, 0, 0),
            surname: if sealed {
                String::new()
            } else {
                personal.surname.clone()
            },
            given_names: if sealed {
                String::new()
            } else {
                personal.given_names.clone()
            },
            phone: None,
            booking_code: "K7QM-4XTA".into(),
            created_at_ms: 1_795_000_000_000,
            lease: None,
            cancels: None,
            permit: None,
            sealed: sealed.then(|| seal(&public_key(&[5u8; 32]), [6u8; 32], &personal)),
            moves: None,
        };
        put_record(
            &mut outbox,
            collections::REQUESTS,
            &request.id.to_string(),
            &request,
        );
    }
    let mut state = sync::State::new();
    let message = outbox.sync().generate_sync_message(&mut state).unwrap();
    let frames = [
        Frame::Sync {
            document: DocName::Outbox(kiosk).to_string(),
            message: message.encode(),
        },
        Frame::Hello {
            nonce: [1; 32],
            server_time_ms: 1_795_000_000_000,
        },
        Frame::Refused {
            code: "outbox_full".into(),
            message: "pieno".into(),
        },
    ];
    for (n, frame) in frames.iter().enumerate() {
        write("sync_envelope", &format!("seed-{n}"), &frame.encode());
    }
}
