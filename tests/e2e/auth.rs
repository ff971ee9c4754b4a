//! Test 6. Kiosks that are unknown, revoked, sign with the wrong key, or try to write a document
//! they do not own are refused, and nothing they sent is applied. Spoken to with a raw WebSocket
//! client, as an attacker would.

use automerge::{
    AutoCommit, ROOT,
    sync::{self, SyncDoc},
    transaction::Transactable,
};
use coper_shared::{
    documents::DocName,
    protocol::{Frame, auth_payload},
};
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{TestApp, connect_sync, spawn_demo};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv(socket: &mut Socket) -> Option<Frame> {
    loop {
        match socket.next().await? {
            Ok(Message::Binary(bytes)) => {
                return Some(Frame::decode(&bytes).expect("a valid frame"));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn send(socket: &mut Socket, frame: Frame) {
    socket
        .send(Message::Binary(frame.encode().into()))
        .await
        .unwrap();
}

fn key() -> SigningKey {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    SigningKey::from_bytes(&bytes)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Present `code` with a fresh enrolment signed by `key`; the server's answer.
async fn present_code(app: &TestApp, key: &SigningKey, code: &str) -> Option<Frame> {
    let mut socket = connect_sync(&app.ws_url()).await.unwrap();
    let Some(Frame::Hello { nonce, .. }) = recv(&mut socket).await else {
        panic!("no challenge")
    };
    let t = now_ms();
    send(
        &mut socket,
        Frame::Enrol {
            public_key: key.verifying_key().to_bytes(),
            client_time_ms: t,
            signature: key.sign(&auth_payload(&nonce, Uuid::nil(), t)).to_bytes(),
            code: code.to_owned(),
        },
    )
    .await;
    recv(&mut socket).await
}

/// Enrol `key` with a fresh code for partner body 1; the kiosk's id.
async fn enrol(app: &TestApp, key: &SigningKey) -> Uuid {
    match present_code(app, key, &app.kiosk_code(1)).await {
        Some(Frame::Enrolled {
            kiosk_id,
            partner_body_id: 1,
        }) => kiosk_id,
        other => panic!("enrolment failed: {other:?}"),
    }
}

/// Answer the challenge as `kiosk` signing with `key`; the server's answer.
async fn authenticate(app: &TestApp, kiosk: Uuid, key: &SigningKey) -> (Socket, Option<Frame>) {
    let mut socket = connect_sync(&app.ws_url()).await.unwrap();
    let Some(Frame::Hello { nonce, .. }) = recv(&mut socket).await else {
        panic!("no challenge")
    };
    let t = now_ms();
    send(
        &mut socket,
        Frame::Auth {
            kiosk_id: kiosk,
            client_time_ms: t,
            signature: key.sign(&auth_payload(&nonce, kiosk, t)).to_bytes(),
        },
    )
    .await;
    let answer = recv(&mut socket).await;
    (socket, answer)
}

fn refused_with(frame: Option<Frame>) -> String {
    match frame {
        Some(Frame::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The code of the first refusal among the frames still to come (sync frames may precede it).
async fn first_refusal(socket: &mut Socket) -> Option<String> {
    while let Some(frame) = recv(socket).await {
        if let Frame::Refused { code, .. } = frame {
            return Some(code);
        }
    }
    None
}

/// After a refusal the server sends nothing more: no document flows.
async fn nothing_more(mut socket: Socket) {
    assert_eq!(recv(&mut socket).await, None);
}

#[tokio::test]
async fn unknown_mis_signing_and_revoked_kiosks_are_refused_before_any_document() {
    let app = spawn_demo().await;
    let (socket, answer) = authenticate(&app, Uuid::now_v7(), &key()).await;
    assert_eq!(refused_with(answer), "unknown_kiosk");
    nothing_more(socket).await;

    let real = key();
    let kiosk = enrol(&app, &real).await;
    let (socket, answer) = authenticate(&app, kiosk, &key()).await;
    assert_eq!(refused_with(answer), "bad_signature");
    nothing_more(socket).await;

    let (_socket, answer) = authenticate(&app, kiosk, &real).await;
    assert!(matches!(answer, Some(Frame::Welcome { .. })), "{answer:?}");

    app.cli(&["kiosk-revoke", &kiosk.to_string()]);
    let (socket, answer) = authenticate(&app, kiosk, &real).await;
    assert_eq!(refused_with(answer), "revoked");
    nothing_more(socket).await;
}

/// A kiosk whose "enrolled" answer was lost asks again with the same key and code, and is told
/// the same identity; another key with that code is refused.
#[tokio::test]
async fn a_lost_enrolment_answer_can_be_asked_for_again() {
    let app = spawn_demo().await;
    let code = app.kiosk_code(4);
    let k = key();
    let first = present_code(&app, &k, &code).await;
    let again = present_code(&app, &k, &code).await;
    assert!(
        matches!(
            first,
            Some(Frame::Enrolled {
                partner_body_id: 4,
                ..
            })
        ),
        "{first:?}"
    );
    assert_eq!(first, again);
    assert_eq!(
        refused_with(present_code(&app, &key(), &code).await),
        "used_code"
    );
}

/// A code withdrawn before use enrols nobody.
#[tokio::test]
async fn a_withdrawn_code_is_refused() {
    let app = spawn_demo().await;
    let code = app.kiosk_code(3);
    app.cli(&["kiosk-revoke", &code]);
    assert_eq!(
        refused_with(present_code(&app, &key(), &code).await),
        "used_code"
    );
}

#[tokio::test]
async fn enrolment_codes_work_once() {
    let app = spawn_demo().await;
    let code = app.kiosk_code(2);
    for (attempt, expected) in [(0, None), (1, Some("used_code"))] {
        let answer = present_code(&app, &key(), &code).await;
        match expected {
            None => assert!(
                matches!(
                    answer,
                    Some(Frame::Enrolled {
                        partner_body_id: 2,
                        ..
                    })
                ),
                "attempt {attempt}: {answer:?}"
            ),
            Some(code) => assert_eq!(refused_with(answer), code),
        }
    }
}

/// A kiosk that sends changes to a document the server writes, or asks for another kiosk's
/// outbox, is refused and disconnected; the server's document is unchanged.
#[tokio::test]
async fn a_kiosk_writing_a_document_it_does_not_own_is_refused_and_nothing_is_applied() {
    let app = spawn_demo().await;
    let real = key();
    let kiosk = enrol(&app, &real).await;

    let (mut socket, welcome) = authenticate(&app, kiosk, &real).await;
    assert!(matches!(welcome, Some(Frame::Welcome { .. })));
    // Take the server's opening message for the directory, so the forged document knows what the
    // server has and offers its own change.
    let mut forged = AutoCommit::new();
    forged.put(ROOT, "questura", "forged").unwrap();
    let mut state = sync::State::new();
    loop {
        match recv(&mut socket).await {
            Some(Frame::Sync { document, message }) if document == "directory" => {
                let message = sync::Message::decode(&message).unwrap();
                forged
                    .sync()
                    .receive_sync_message(&mut state, message)
                    .unwrap();
                break;
            }
            Some(_) => continue,
            None => panic!("connection closed before the directory's sync"),
        }
    }
    let message = forged.sync().generate_sync_message(&mut state).unwrap();
    let forged_head = forged.get_heads()[0];
    assert!(
        message.heads.contains(&forged_head),
        "the forged message offers a change"
    );
    send(
        &mut socket,
        Frame::Sync {
            document: DocName::Directory.to_string(),
            message: message.encode(),
        },
    )
    .await;
    assert_eq!(
        first_refusal(&mut socket).await.as_deref(),
        Some("not_writer")
    );

    let (mut socket, _) = authenticate(&app, kiosk, &real).await;
    let other = DocName::Outbox(coper_shared::documents::KioskId(Uuid::now_v7()));
    let empty = AutoCommit::new()
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    send(
        &mut socket,
        Frame::Sync {
            document: other.to_string(),
            message: empty.encode(),
        },
    )
    .await;
    assert_eq!(
        first_refusal(&mut socket).await.as_deref(),
        Some("forbidden_document")
    );

    // The directory a fresh, honest kiosk receives has no trace of the forged change.
    let honest = crate::helpers::TestKiosk::enrol(&app, 1, &app.ws_url()).await;
    let questura = honest.core.raw_records(
        &DocName::Directory,
        coper_shared::documents::collections::QUESTURA,
    );
    assert_eq!(questura.len(), 1);
    assert!(questura[0].1["name"].as_str().unwrap().contains("Questura"));
    let audit = app.scalar("SELECT count(*) FROM audit_log WHERE action = 'kiosk.enrolled'");
    assert_eq!(audit, 2);
}
