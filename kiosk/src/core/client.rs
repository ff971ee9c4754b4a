//! The sync client: one WebSocket to the server, reopened with backoff whenever it drops.
//!
//! A session answers the server's challenge with the kiosk's signature, then exchanges Automerge
//! sync messages for every document the server lists, until the connection drops. Every document
//! and sync state received is saved before the next message is handled, so a restart resumes
//! where the last session stopped.

use std::{collections::HashSet, path::Path, sync::Arc, time::Duration};

use automerge::sync::{self, SyncDoc};
use coper_shared::{
    documents::{DocName, KioskId},
    protocol::{self, Frame, auth_payload, next_sync_frame},
};
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use jiff::Timestamp;
use tokio_tungstenite::{
    Connector, MaybeTlsStream, WebSocketStream, connect_async_tls_with_config,
    tungstenite::{self, Message, client::IntoClientRequest, http::StatusCode},
};
use uuid::Uuid;

use super::{CoreError, Shared};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long to wait for the server's answer during the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A session that makes no progress for this long while something is still unsettled (a request
/// without verdict, a document not in step) is presumed stuck and reopened: a lost message leaves
/// Automerge's sync waiting for changes it believes were sent, and a fresh session starts over.
/// Progress is a document that changed or came into step, not mere traffic, since two peers can
/// keep exchanging messages that carry nothing new.
const STALL_TIMEOUT: Duration = Duration::from_secs(4);
/// How often a session checks for a stall.
const STALL_CHECK: Duration = Duration::from_millis(500);
/// How often what arrived from the server is saved.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// [`super::SyncStatus::refused`] when the server speaks another protocol version.
pub const PROTOCOL_VERSION_REFUSAL: &str = "protocol_version";

/// Reconnect forever, with exponential backoff and jitter (a busy server's `Retry-After` heeded).
pub(super) async fn run(shared: Arc<Shared>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let result = session(&shared).await;
        if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            shared.lock().online = false;
            shared.changed();
            return;
        }
        // A session that got through the handshake proves the way is open: after it ends, try
        // again soon. Backoff grows only while connecting keeps failing.
        let was_online = std::mem::replace(&mut shared.lock().online, false);
        if was_online {
            backoff = FIRST_BACKOFF;
        }
        match result {
            Ok(()) => backoff = FIRST_BACKOFF,
            Err(CoreError::Refused { code, message }) => {
                let forgotten = code == protocol::NOT_WRITER
                    && forget_server_document(&shared, protocol::not_writer_document(&message));
                if forgotten {
                    // Taken afresh at the next session, at once.
                    backoff = FIRST_BACKOFF;
                } else {
                    tracing::warn!(code, message, "server refused this kiosk");
                    shared.lock().refused = Some(code);
                    backoff = MAX_BACKOFF;
                }
            }
            // Up, but busy with other kiosks: back when it asked, and no later.
            Err(CoreError::Busy { retry_after }) => backoff = retry_after,
            Err(e @ CoreError::ProtocolVersion { .. }) => {
                tracing::warn!(error = %e, "the server speaks another protocol version");
                shared.lock().refused = Some(PROTOCOL_VERSION_REFUSAL.into());
                backoff = MAX_BACKOFF;
            }
            Err(e) => tracing::debug!(error = %e, "sync session ended"),
        }
        shared.changed();
        // Somewhere in the second half of the backoff: kiosks that lost the server together
        // come back spread out, not in one wave.
        let half = backoff / 2;
        let jitter = half.mul_f64(f64::from(random_u16()) / f64::from(u16::MAX));
        tokio::select! {
            () = tokio::time::sleep(half + jitter) => {}
            () = shared.stop.notified() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The server refused our changes to `document`, one only it writes: it does not have them, as
/// after a restore from a backup. Drop our copy and its sync state, so the next session takes
/// the server's. Whether a server's document was forgotten (never our own outbox).
fn forget_server_document(shared: &Shared, document: Option<&str>) -> bool {
    let Some(name) = document.and_then(DocName::parse) else {
        return false;
    };
    if name.writer() != coper_shared::documents::Writer::Server {
        return false;
    }
    tracing::warn!(document = %name, "the server lacks changes to its own document (restored from a backup?): taking its copy afresh");
    let mut inner = shared.lock();
    inner
        .docs
        .insert(name.clone(), automerge::AutoCommit::new());
    if let Err(e) = inner.store.forget_document(&name) {
        tracing::error!(document = %name, error = %e, "could not drop the stored copy");
        return false;
    }
    true
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).expect("the OS has randomness");
    u16::from_le_bytes(b)
}

async fn send(socket: &mut Socket, frame: &Frame) -> Result<(), CoreError> {
    socket
        .send(Message::Binary(frame.encode().into()))
        .await
        .map_err(|e| CoreError::Network(e.to_string()))
}

async fn next_frame(socket: &mut Socket) -> Result<Frame, CoreError> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => {
                return Frame::decode(&bytes).map_err(|e| CoreError::Protocol(e.to_string()));
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(CoreError::Network("connection closed".into()));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(CoreError::Network(e.to_string())),
        }
    }
}

async fn handshake_frame(socket: &mut Socket) -> Result<Frame, CoreError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, next_frame(socket)).await {
        Ok(Ok(Frame::Refused { code, message })) => Err(CoreError::Refused { code, message }),
        Ok(frame) => frame,
        Err(_) => Err(CoreError::Network("handshake timed out".into())),
    }
}

/// The file in the kiosk's data folder holding the certificate(s) pinned at enrolment (PEM):
/// when present, a `wss://` server must present a certificate they issued, and the system's
/// CAs are not consulted.
pub const PINNED_CERTIFICATE: &str = "server-ca.pem";

/// A connector that accepts only servers whose certificate was issued by one in the PEM file
/// `pinned` (the system's CAs are not consulted).
pub(super) fn tls_connector(pinned: &Path) -> Result<Connector, CoreError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let bad =
        |e: &dyn std::fmt::Display| CoreError::Certificate(format!("{}: {e}", pinned.display()));
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(pinned).map_err(|e| bad(&e))? {
        roots
            .add(certificate.map_err(|e| bad(&e))?)
            .map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"no certificate in the file"));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// Open the WebSocket to `url`, stating this kiosk's protocol version, and check the server's.
async fn connect(url: &str, data_dir: &Path) -> Result<Socket, CoreError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| CoreError::Network(e.to_string()))?;
    request.headers_mut().insert(
        protocol::VERSION_HEADER,
        protocol::VERSION
            .to_string()
            .parse()
            .expect("a number is a header value"),
    );
    // On `wss://`: the pinned certificate if the kiosk has one, else the system's CAs.
    let pinned = data_dir.join(PINNED_CERTIFICATE);
    let connector = if pinned.exists() {
        Some(tls_connector(&pinned)?)
    } else {
        None
    };
    // Without TCP_NODELAY, a sync reply written right after another waits for the server's
    // delayed acknowledgement (Nagle): 40 ms per booking, measured by `coper-loadgen trace`.
    let connected = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        connect_async_tls_with_config(request, None, true, connector),
    )
    .await
    .map_err(|_| CoreError::Network("connection timed out".into()))?;
    let version_of = |headers: &tungstenite::http::HeaderMap| {
        protocol::stated_version(headers.get(protocol::VERSION_HEADER).map(|v| v.as_bytes()))
    };
    let (socket, response) = match connected {
        Ok(connected) => connected,
        Err(tungstenite::Error::Http(response))
            if response.status() == StatusCode::UPGRADE_REQUIRED =>
        {
            return Err(CoreError::ProtocolVersion {
                kiosk: protocol::VERSION,
                server: version_of(response.headers()),
            });
        }
        Err(tungstenite::Error::Http(response))
            if response.status() == StatusCode::SERVICE_UNAVAILABLE =>
        {
            return Err(CoreError::Busy {
                retry_after: retry_after(response.headers()),
            });
        }
        Err(e) => return Err(CoreError::Network(e.to_string())),
    };
    let server = version_of(response.headers());
    if server != Some(protocol::VERSION) {
        return Err(CoreError::ProtocolVersion {
            kiosk: protocol::VERSION,
            server,
        });
    }
    Ok(socket)
}

/// When a busy server asks to be tried again (`Retry-After`, in seconds), within the backoff's
/// bounds; the first backoff when it does not say.
fn retry_after(headers: &tungstenite::http::HeaderMap) -> Duration {
    headers
        .get(tungstenite::http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map_or(FIRST_BACKOFF, Duration::from_secs)
        .clamp(FIRST_BACKOFF, MAX_BACKOFF)
}

/// Enrol a new key with a one-time code: the kiosk's id and its partner body.
pub(super) async fn enrol(
    url: &str,
    data_dir: &Path,
    secret_key: &[u8; 32],
    code: &str,
    now: Timestamp,
) -> Result<(KioskId, i64), CoreError> {
    let mut socket = connect(url, data_dir).await?;
    let Frame::Hello { nonce, .. } = handshake_frame(&mut socket).await? else {
        return Err(CoreError::Protocol("expected a challenge".into()));
    };
    let key = SigningKey::from_bytes(secret_key);
    let client_time_ms = now.as_millisecond();
    let signature = key.sign(&auth_payload(&nonce, Uuid::nil(), client_time_ms));
    send(
        &mut socket,
        &Frame::Enrol {
            public_key: key.verifying_key().to_bytes(),
            client_time_ms,
            signature: signature.to_bytes(),
            code: code.trim().to_owned(),
        },
    )
    .await?;
    match handshake_frame(&mut socket).await? {
        Frame::Enrolled {
            kiosk_id,
            partner_body_id,
        } => Ok((KioskId(kiosk_id), partner_body_id)),
        _ => Err(CoreError::Protocol(
            "expected the enrolment's answer".into(),
        )),
    }
}

async fn session(shared: &Arc<Shared>) -> Result<(), CoreError> {
    let mut socket = connect(&shared.server_url, &shared.config.data_dir).await?;
    let Frame::Hello { nonce, .. } = handshake_frame(&mut socket).await? else {
        return Err(CoreError::Protocol("expected a challenge".into()));
    };
    let kiosk = shared.lock().kiosk;
    let client_time_ms = shared.config.now().as_millisecond();
    let key = SigningKey::from_bytes(&shared.secret_key);
    let signature = key.sign(&auth_payload(&nonce, kiosk.0, client_time_ms));
    send(
        &mut socket,
        &Frame::Auth {
            kiosk_id: kiosk.0,
            client_time_ms,
            signature: signature.to_bytes(),
        },
    )
    .await?;
    let Frame::Welcome {
        server_time_ms,
        clock_trusted,
        documents,
    } = handshake_frame(&mut socket).await?
    else {
        return Err(CoreError::Protocol("expected the welcome".into()));
    };
    let names: Vec<DocName> = documents.iter().filter_map(|d| DocName::parse(d)).collect();
    let mut states: Vec<(DocName, sync::State)> = Vec::with_capacity(names.len());
    {
        let mut inner = shared.lock();
        let now_ms = shared.config.now().as_millisecond();
        // Trust our clock only if the server does and it agrees with us now.
        let bound = super::replica::clock_skew_bound_ms(&inner.docs);
        let trusted = clock_trusted && (server_time_ms - now_ms).abs() < bound;
        inner.online = true;
        inner.refused = None;
        inner.clock_trusted = trusted;
        inner.last_sync_ms = Some(now_ms);
        inner.store.save_session(now_ms, trusted, &documents)?;
        inner.session_docs = names.iter().map(|n| (n.clone(), false)).collect();
        for name in &names {
            let state = inner.store.load_state(name)?;
            if super::store::kept_on_disk(name) {
                inner.docs.entry(name.clone()).or_default();
            } else {
                // The server sends these afresh each session (their history would carry
                // past days' names): start from empty, as it does.
                inner
                    .docs
                    .insert(name.clone(), automerge::AutoCommit::new());
            }
            states.push((name.clone(), state));
        }
    }
    shared.changed();
    let mut dirty: HashSet<DocName> = HashSet::new();
    let result = exchange(shared, &mut socket, kiosk, &mut states, &mut dirty).await;
    flush(shared, &states, &mut dirty)?;
    result
}

/// Run the sync exchange until the connection fails or stalls. What arrives is applied in memory
/// at once and saved every [`FLUSH_EVERY`] (documents and their sync states together, so a saved
/// state never claims more than the saved documents hold); a crash loses at most that much, which
/// the next session fetches again. The outbox is different: a request is saved when it is made.
async fn exchange(
    shared: &Arc<Shared>,
    socket: &mut Socket,
    kiosk: KioskId,
    states: &mut [(DocName, sync::State)],
    dirty: &mut HashSet<DocName>,
) -> Result<(), CoreError> {
    for (name, state) in states.iter_mut() {
        send_sync(shared, socket, name, state).await?;
    }
    shared.lock().last_progress = std::time::Instant::now();
    let mut stall_check = tokio::time::interval(STALL_CHECK);
    let mut flush_tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            // Stopping: the caller saves what arrived.
            () = shared.stop.notified() => return Ok(()),
            _ = flush_tick.tick() => flush(shared, states, dirty)?,
            _ = stall_check.tick() => {
                let stalled = {
                    let inner = shared.lock();
                    inner.last_progress.elapsed() > STALL_TIMEOUT
                };
                if stalled && unsettled(shared) {
                    return Err(CoreError::Network("sync stalled".into()));
                }
            }
            frame = next_frame(socket) => {
                let (document, message) = match frame? {
                    Frame::Sync { document, message } => (document, message),
                    Frame::Refused { code, message } => return Err(CoreError::Refused { code, message }),
                    _ => return Err(CoreError::Protocol("unexpected frame".into())),
                };
                tracing::debug!(target: "coper_timeline", %kiosk, document, "kiosk: received");
                let Some((name, state)) = states.iter_mut().find(|(n, _)| n.to_string() == document) else {
                    return Err(CoreError::Protocol(format!("unknown document {document}")));
                };
                let message = sync::Message::decode(&message).map_err(|e| CoreError::Protocol(e.to_string()))?;
                receive(shared, name, state, message);
                tracing::debug!(target: "coper_timeline", %kiosk, document, "kiosk: applied");
                dirty.insert(name.clone());
                send_sync(shared, socket, name, state).await?;
            }
            () = shared.outbox_changed.notified() => {
                // A new request starts its own wait for the server.
                shared.lock().last_progress = std::time::Instant::now();
                let outbox = DocName::Outbox(kiosk);
                if let Some((name, state)) = states.iter_mut().find(|(n, _)| *n == outbox) {
                    send_sync(shared, socket, name, state).await?;
                    dirty.insert(name.clone());
                }
            }
        }
    }
}

/// Save the documents and sync states changed since the last flush, in one transaction.
fn flush(
    shared: &Shared,
    states: &[(DocName, sync::State)],
    dirty: &mut HashSet<DocName>,
) -> Result<(), CoreError> {
    if dirty.is_empty() {
        return Ok(());
    }
    let mut inner = shared.lock();
    let inner = &mut *inner;
    let items: Vec<(DocName, Vec<u8>, Vec<u8>)> = dirty
        .drain()
        .filter(super::store::kept_on_disk)
        .filter_map(|name| {
            let state = states.iter().find(|(n, _)| *n == name)?.1.encode();
            let snapshot = super::store::snapshot(inner.docs.get_mut(&name)?);
            Some((name, snapshot, state))
        })
        .collect();
    let at_ms = inner.last_sync_ms.unwrap_or_default();
    inner.store.save_received(&items, at_ms)?;
    // A verdict may have settled a booking whose names the kiosk kept in clear.
    super::replica::forget_settled(inner, shared.config.now())?;
    Ok(())
}

/// Whether something still waits on the server: a request without verdict, or a document not
/// yet in step.
fn unsettled(shared: &Shared) -> bool {
    let inner = shared.lock();
    !inner.session_docs.values().all(|synced| *synced) || super::replica::has_pending(&inner)
}

/// Apply one message from the server, in memory; [`flush`] saves it.
fn receive(shared: &Shared, name: &DocName, state: &mut sync::State, message: sync::Message) {
    let mut inner = shared.lock();
    let inner = &mut *inner;
    let doc = inner.docs.entry(name.clone()).or_default();
    let before = doc.get_heads();
    let their_heads = message.heads.clone();
    // Automerge may panic on a malformed message rather than refuse it: the kiosk goes back to
    // the document it last saved and keeps running.
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.sync().receive_sync_message(state, message)
    }));
    match applied {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(document = %name, error = %e, "sync message not applied");
            return;
        }
        Err(_) => {
            tracing::error!(document = %name, "a sync message made Automerge panic: reloaded");
            let saved = inner.store.load_document(name).ok().flatten();
            inner.docs.insert(name.clone(), saved.unwrap_or_default());
            *state = sync::State::new();
            return;
        }
    }
    let changed = doc.get_heads() != before;
    let complete = coper_shared::protocol::has_changes(doc, &their_heads);
    let was_complete = inner.session_docs.insert(name.clone(), complete) == Some(true);
    if changed || (complete && !was_complete) {
        inner.last_progress = std::time::Instant::now();
    }
    inner.last_sync_ms = Some(shared.config.now().as_millisecond());
    shared.changed();
}

async fn send_sync(
    shared: &Shared,
    socket: &mut Socket,
    name: &DocName,
    state: &mut sync::State,
) -> Result<(), CoreError> {
    let (next, kiosk) = {
        let mut inner = shared.lock();
        let kiosk = inner.kiosk;
        let doc = inner.docs.entry(name.clone()).or_default();
        (next_sync_frame(doc, name, state), kiosk)
    };
    if let Some((frame, _)) = next {
        if let Err(e) = send(socket, &frame).await {
            return Err(refusal_or(socket, e).await);
        }
        tracing::debug!(target: "coper_timeline", %kiosk, document = %name, "kiosk: sent");
    }
    Ok(())
}

/// A send failed: the server may have refused us and closed while we were still writing. Its
/// refusal, if it is there to read (it says what to do), else the send's own error.
async fn refusal_or(socket: &mut Socket, failed: CoreError) -> CoreError {
    let read = async {
        loop {
            match next_frame(socket).await {
                Ok(Frame::Refused { code, message }) => return Some((code, message)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(1), read).await {
        Ok(Some((code, message))) => CoreError::Refused { code, message },
        _ => failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy server's `Retry-After` is heeded within the backoff's bounds; without one, or with
    /// one that is not a number of seconds, the kiosk tries again soon.
    #[test]
    fn retry_after_is_heeded_within_the_backoff() {
        let with = |value: Option<&str>| {
            let mut headers = tungstenite::http::HeaderMap::new();
            if let Some(value) = value {
                headers.insert(
                    tungstenite::http::header::RETRY_AFTER,
                    value.parse().unwrap(),
                );
            }
            retry_after(&headers)
        };
        assert_eq!(with(Some("2")), Duration::from_secs(2));
        assert_eq!(with(Some(" 3 ")), Duration::from_secs(3));
        assert_eq!(with(Some("3600")), MAX_BACKOFF);
        assert_eq!(with(Some("0")), FIRST_BACKOFF);
        assert_eq!(with(Some("Wed, 21 Oct 2026 07:28:00 GMT")), FIRST_BACKOFF);
        assert_eq!(with(None), FIRST_BACKOFF);
    }
}
