//! The opening of a sync session: the server's challenge ([`Frame::Hello`]), and the kiosk's
//! answer: [`Frame::Auth`] signed with its enrolled key, or [`Frame::Enrol`] with a one-time code
//! and a new key. Unknown, revoked and mis-signing kiosks are refused here, before any document
//! is exchanged; only a kiosk that proved who it is counts as seen.

use std::{net::SocketAddr, time::Duration};

use axum::extract::ws::WebSocket;
use coper_shared::{
    documents::KioskId,
    protocol::{Frame, auth_payload},
};
use ed25519_dalek::{Signature, VerifyingKey};
use uuid::Uuid;

use super::{
    SyncHub,
    ws::{SessionError, next_frame, refuse, send},
};
use crate::store::{StoreError, kiosks};

/// Challenge the kiosk on `socket` and check its answer: the authenticated kiosk and its clock,
/// or `None` when the session ends here (an enrolment answered, or a refusal sent).
pub(super) async fn challenge(
    socket: &mut WebSocket,
    hub: &SyncHub,
    peer: SocketAddr,
    auth_timeout: Duration,
) -> Result<Option<(KioskId, i64)>, SessionError> {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).expect("the OS has randomness");
    let server_time_ms = hub.now().as_millisecond();
    send(
        socket,
        &Frame::Hello {
            nonce,
            server_time_ms,
        },
    )
    .await?;
    let first = tokio::time::timeout(auth_timeout, next_frame(socket)).await;
    let (kiosk, client_time_ms) = match first {
        Ok(Some(Ok(Frame::Auth {
            kiosk_id,
            client_time_ms,
            signature,
        }))) => match authenticate(hub, kiosk_id, &nonce, client_time_ms, &signature).await? {
            Ok(kiosk) => (kiosk, client_time_ms),
            Err((code, message)) => {
                tracing::warn!(%peer, kiosk = %kiosk_id, code, "kiosk refused");
                refuse(socket, code, message).await?;
                return Ok(None);
            }
        },
        Ok(Some(Ok(Frame::Enrol {
            public_key,
            client_time_ms,
            signature,
            code,
        }))) => {
            let verified = VerifyingKey::from_bytes(&public_key).ok().filter(|key| {
                key.verify_strict(
                    &auth_payload(&nonce, Uuid::nil(), client_time_ms),
                    &Signature::from_bytes(&signature),
                )
                .is_ok()
            });
            if verified.is_none() {
                tracing::warn!(%peer, "enrolment with a bad signature refused");
                refuse(socket, "bad_signature", "firma non valida").await?;
                return Ok(None);
            }
            let now = hub.now();
            match hub
                .db()
                .call(move |conn| kiosks::redeem(conn, &code, &public_key, now))
                .await?
            {
                Ok((kiosk_id, partner_body_id)) => {
                    tracing::info!(%peer, kiosk = %kiosk_id, "kiosk enrolled");
                    send(
                        socket,
                        &Frame::Enrolled {
                            kiosk_id: kiosk_id.0,
                            partner_body_id,
                        },
                    )
                    .await?;
                }
                Err(refusal) => {
                    tracing::warn!(%peer, code = refusal.code(), "enrolment refused");
                    refuse(socket, refusal.code(), &refusal.to_string()).await?;
                }
            }
            return Ok(None);
        }
        _ => {
            tracing::warn!(%peer, "no valid answer to the challenge");
            refuse(socket, "no_auth", "autenticazione mancante").await?;
            return Ok(None);
        }
    };
    Ok(Some((kiosk, client_time_ms)))
}

/// Check a kiosk's answer to the challenge. The outer error is the store's; the inner one is a
/// refusal with its code and Italian message.
async fn authenticate(
    hub: &SyncHub,
    kiosk_id: Uuid,
    nonce: &[u8; 32],
    client_time_ms: i64,
    signature: &[u8; 64],
) -> Result<Result<KioskId, (&'static str, &'static str)>, StoreError> {
    let row = hub
        .db()
        .call(move |conn| kiosks::key_of(conn, &kiosk_id.to_string()))
        .await?;
    let Some((key, revoked)) = row else {
        return Ok(Err(("unknown_kiosk", "chiosco non registrato")));
    };
    if revoked {
        return Ok(Err(("revoked", "chiosco revocato")));
    }
    let valid = VerifyingKey::from_bytes(&key).ok().is_some_and(|k| {
        k.verify_strict(
            &auth_payload(nonce, kiosk_id, client_time_ms),
            &Signature::from_bytes(signature),
        )
        .is_ok()
    });
    if !valid {
        return Ok(Err(("bad_signature", "firma non valida")));
    }
    // Only a kiosk that proved who it is counts as seen.
    hub.seen(KioskId(kiosk_id)).await?;
    Ok(Ok(KioskId(kiosk_id)))
}
