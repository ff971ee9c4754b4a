//! One WebSocket per kiosk at `GET /api/v1/sync`.
//!
//! A connection is admitted by the `SyncGate` before the upgrade, then challenged (`handshake`:
//! authentication or enrolment); then both sides exchange Automerge sync messages per document
//! until one hangs up.
//!
//! Authorisation is by document: a kiosk receives only the documents [`DocName::readable_by`]
//! allows, and may send changes only to its own outbox. A sync message that carries changes to a
//! document the kiosk does not write is refused, logged with the kiosk's identity, not applied,
//! and the connection closed.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    time::Duration,
};

use automerge::sync::{self, SyncDoc};
use axum::{
    extract::{
        ConnectInfo, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use coper_shared::{
    documents::{DocName, KioskId, Writer},
    protocol::{Frame, has_changes},
};

use super::{SyncHub, handshake};
use crate::{
    AppState,
    limits::Admitted,
    store::{StoreError, documents},
};

/// How long a kiosk has to acknowledge changes sent to it before the session is presumed broken.
const ACK_TIMEOUT: Duration = Duration::from_secs(4);
/// How often a session looks at that timeout while changes of its wait for the kiosk's answer.
/// With none waiting, only the nudge and the states' save can be due, every `NUDGE_AFTER`; with
/// the kiosk in step and nothing said since, nothing is (see `sync_loop`).
const ACK_CHECK: Duration = Duration::from_millis(500);
/// How long a document may wait for the kiosk's answer before the server offers it again.
const NUDGE_AFTER: Duration = Duration::from_secs(2);
/// How often a session saves the sync states that changed (and when it ends).
const SAVE_STATES_EVERY: Duration = Duration::from_secs(5);
/// What a kiosk refused at the gate is told to wait before trying again, in seconds: it waited
/// in line already, so the server is busy (the kiosk adds jitter of its own).
const RETRY_AFTER_SECS: &str = "2";
/// Each connection's read buffer (grown as a larger message needs).
const READ_BUFFER_BYTES: usize = 4096;

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let ours = coper_shared::protocol::VERSION.to_string();
    let stated = headers.get(coper_shared::protocol::VERSION_HEADER);
    let theirs = coper_shared::protocol::stated_version(stated.map(|v| v.as_bytes()));
    if theirs != Some(coper_shared::protocol::VERSION) {
        tracing::warn!(%peer, kiosk = ?theirs, "sync refused: another protocol version");
        return (
            StatusCode::UPGRADE_REQUIRED,
            [(coper_shared::protocol::VERSION_HEADER, ours)],
            "versione del protocollo non supportata: aggiornare il chiosco \
             (unsupported protocol version: update the kiosk)",
        )
            .into_response();
    }
    // Admitted before the upgrade: a flood of connections that never authenticate is turned
    // away here, before it holds any memory; kiosks coming back together wait their turn.
    let admitted = match state.sync_gate.admit(peer.ip()).await {
        Ok(admitted) => admitted,
        Err(why) => {
            tracing::warn!(%peer, ?why, "sync connection refused: too many connections");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, RETRY_AFTER_SECS)],
                "troppe connessioni: riprovare tra poco",
            )
                .into_response();
        }
    };
    let hub = state.sync.clone();
    let limits = state.limits.clone();
    // Small buffers: hundreds of kiosks stay connected, and their messages are small (the
    // default 128 KiB read buffer per connection was most of the server's memory per kiosk).
    let response = ws
        .max_message_size(limits.sync_message_bytes)
        .max_frame_size(limits.sync_message_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            if let Err(e) = session(socket, hub, peer, admitted, limits.auth_timeout).await {
                tracing::warn!(%peer, error = %e, "sync session ended with an error");
            }
        });
    let mut response = response;
    response.headers_mut().insert(
        coper_shared::protocol::VERSION_HEADER,
        HeaderValue::from(u16::from(coper_shared::protocol::VERSION)),
    );
    response
}

#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("socket: {0}")]
    Socket(#[from] axum::Error),
}

pub(super) async fn send(socket: &mut WebSocket, frame: &Frame) -> Result<(), SessionError> {
    socket
        .send(Message::Binary(frame.encode().into()))
        .await
        .map_err(SessionError::from)
}

pub(super) async fn refuse(
    socket: &mut WebSocket,
    code: &str,
    message: &str,
) -> Result<(), SessionError> {
    send(
        socket,
        &Frame::Refused {
            code: code.into(),
            message: message.into(),
        },
    )
    .await?;
    let _ = socket.send(Message::Close(None)).await;
    Ok(())
}

/// The next binary frame, or `None` when the socket closed.
pub(super) async fn next_frame(socket: &mut WebSocket) -> Option<Result<Frame, String>> {
    loop {
        match socket.recv().await? {
            Ok(Message::Binary(bytes)) => {
                return Some(Frame::decode(&bytes).map_err(|e| e.to_string()));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn session(
    mut socket: WebSocket,
    hub: SyncHub,
    peer: SocketAddr,
    admitted: Admitted,
    auth_timeout: Duration,
) -> Result<(), SessionError> {
    let Some((kiosk, client_time_ms)) =
        handshake::challenge(&mut socket, &hub, peer, auth_timeout).await?
    else {
        return Ok(());
    };
    let skew = (client_time_ms - hub.now().as_millisecond()).abs();
    let clock_trusted = skew <= hub.config.clock_skew_bound_ms;
    // Registered before the documents are prepared for it: the session it replaces, ending, then
    // cannot take away what this one was given (its body's bookings).
    let live = hub.open_session(kiosk);
    let result = run_session(
        &mut socket,
        &hub,
        kiosk,
        peer,
        clock_trusted,
        admitted,
        &live,
    )
    .await;
    hub.close_session(kiosk, &live);
    tracing::info!(%peer, %kiosk, "kiosk disconnected");
    result
}

/// Bring kiosk `kiosk` up to date, welcome it, then run its sync loop.
async fn run_session(
    socket: &mut WebSocket,
    hub: &SyncHub,
    kiosk: KioskId,
    peer: SocketAddr,
    clock_trusted: bool,
    mut admitted: Admitted,
    live: &super::changes::Session,
) -> Result<(), SessionError> {
    hub.reconcile(kiosk).await?;
    let names = hub.documents_for(kiosk).await?;
    live.set_documents(names.clone());
    send(
        socket,
        &Frame::Welcome {
            server_time_ms: hub.now().as_millisecond(),
            clock_trusted,
            documents: names.iter().map(ToString::to_string).collect(),
        },
    )
    .await?;
    // Only now does the next connection in line start: kiosks coming back together after an
    // outage are brought up to date a few at a time, each within its timeouts, instead of all
    // at once with every one of them waiting past its own.
    admitted.started();
    tracing::info!(%peer, %kiosk, clock_trusted, "kiosk connected");
    sync_loop(socket, hub, kiosk, peer, clock_trusted, &names, live).await
}

/// Exchange sync messages until the kiosk hangs up, misbehaves, or opens a newer session.
async fn sync_loop(
    socket: &mut WebSocket,
    hub: &SyncHub,
    kiosk: KioskId,
    peer: SocketAddr,
    clock_trusted: bool,
    names: &[DocName],
    live: &super::changes::Session,
) -> Result<(), SessionError> {
    let (hub, names) = (hub.clone(), names.to_vec());
    let mut states = load_states(&hub, kiosk, &names).await?;
    // Shared documents changed after this are sent at the session's instants; before it, the
    // first messages below carry them.
    let mut shared_seen = hub.shared_seen();
    // Requests that arrived before a crash but were never decided are decided now.
    hub.process_outbox(kiosk, false, clock_trusted).await?;
    // Documents to which we sent changes that the kiosk has not answered yet. A lost message
    // would leave Automerge's sync waiting forever; an unanswered one ends the session, and the
    // kiosk's reconnection starts the exchange afresh.
    let mut awaiting: HashMap<DocName, tokio::time::Instant> = HashMap::new();
    let mut last_check = tokio::time::Instant::now();
    // Sync states are saved every few seconds (a stale one only costs a larger resend on
    // reconnect), not after every message: with hundreds of kiosks that would be a disk flush
    // per kiosk per booking.
    let mut dirty: HashSet<DocName> = HashSet::new();
    // Each session's saves start at an offset of its own: hundreds of kiosks that connected
    // together (after a restart) would otherwise all write at the same tick, a queue of disk
    // flushes in front of the next booking.
    let offset = (kiosk.0.as_u128() % SAVE_STATES_EVERY.as_millis()) as u64;
    let mut last_save = tokio::time::Instant::now()
        .checked_sub(Duration::from_millis(offset))
        .unwrap_or_else(tokio::time::Instant::now);
    let mut last_heard: HashMap<DocName, tokio::time::Instant> = HashMap::new();
    let mut last_offer = tokio::time::Instant::now();
    // Whether anything was sent or heard since the last look at the documents' heads, and
    // whether that look found the kiosk in step with every one. Only a message, or a change of
    // ours (which is then sent), can put it out of step again: a session in step and quiet sets
    // no timer at all (500 kiosks connected, each woken to look every half second, cost the
    // server about 50 ms of processor a second for nothing; docs/BENCHMARKS.md).
    let (mut active, mut in_step) = (true, false);
    // The kiosk's own documents that are sent with the shared ones (its bookings, its operators).
    let mut gathered: HashSet<DocName> = HashSet::new();
    // Moves at an instant of this session's group when a shared document changed.
    let mut instants = hub.shared_instants(kiosk);
    for name in &names {
        let state = states.get_mut(name).expect("state per doc");
        send_sync(socket, &hub, kiosk, name, state, &mut awaiting).await?;
    }

    loop {
        let next_check = if !awaiting.is_empty() {
            Some(last_check + ACK_CHECK)
        } else if active || !in_step || !dirty.is_empty() {
            Some(last_check + NUDGE_AFTER)
        } else {
            None
        };
        let own_due = (!gathered.is_empty()).then(|| super::changes::gather_deadline(kiosk));
        tokio::select! {
            () = until(next_check) => {
                let now = tokio::time::Instant::now();
                last_check = now;
                if now - last_save > SAVE_STATES_EVERY {
                    last_save = now;
                    save_states(&hub, kiosk, &states, &mut dirty).await?;
                }
                if awaiting.values().any(|since| since.elapsed() > ACK_TIMEOUT) {
                    tracing::info!(%peer, %kiosk, "kiosk did not acknowledge changes: closing");
                    break;
                }
                // A message of ours lost on the way leaves Automerge waiting for an answer, or
                // believing it sent what never arrived, so later changes may never be offered.
                // Every few seconds, a quiet document whose kiosk (by its last word) lacks our
                // heads is offered afresh.
                if now - last_offer >= NUDGE_AFTER && (active || !in_step) {
                    last_offer = now;
                    (active, in_step) = (false, true);
                    let heads = hub.heads_of(names.clone()).await?;
                    for (name, state) in states.iter_mut() {
                        let quiet = last_heard.get(name).is_none_or(|t| t.elapsed() > NUDGE_AFTER);
                        let behind = state.their_heads.as_ref() != heads.get(name);
                        let out_of_step = state.in_flight || behind;
                        in_step &= !out_of_step;
                        if quiet && out_of_step {
                            state.in_flight = false;
                            state.sent_hashes.clear();
                            send_sync(socket, &hub, kiosk, name, state, &mut awaiting).await?;
                        }
                    }
                }
            }
            () = time_to_send(&mut instants, own_due) => {
                active = true;
                let shared = hub.shared_changed_since(&mut shared_seen);
                gathered.extend(shared.into_iter().filter(|name| states.contains_key(name)));
                for name in gathered.drain() {
                    let state = states.get_mut(&name).expect("state per doc");
                    send_sync(socket, &hub, kiosk, &name, state, &mut awaiting).await?;
                }
            }
            why = live.ended() => {
                if why == super::upkeep::REVOKED {
                    tracing::warn!(%peer, %kiosk, "kiosk revoked during its session");
                    refuse(socket, "revoked", "chiosco revocato").await?;
                } else {
                    // Replaced by a newer session, its body's bookings started afresh, or its
                    // documents changed (a new month in the horizon: its next session lists it).
                    tracing::info!(%peer, %kiosk, why, "session ended by the server");
                }
                break;
            }
            frame = next_frame(socket) => {
                let Some(frame) = frame else { break };
                active = true;
                let (document, message) = match frame {
                    Ok(Frame::Sync { document, message }) => (document, message),
                    Ok(_) | Err(_) => {
                        tracing::warn!(%peer, %kiosk, "unexpected frame");
                        refuse(socket, "protocol", "messaggio inatteso").await?;
                        break;
                    }
                };
                tracing::debug!(target: "coper_timeline", %kiosk, document, "server: received");
                let Some(name) = DocName::parse(&document).filter(|n| names.contains(n)) else {
                    tracing::warn!(%peer, %kiosk, document, "sync of a document the kiosk may not have");
                    refuse(socket, "forbidden_document", "documento non consentito").await?;
                    break;
                };
                let Ok(message) = sync::Message::decode(&message) else {
                    refuse(socket, "protocol", "messaggio di sincronizzazione non valido").await?;
                    break;
                };
                if name.writer() == Writer::Kiosk(kiosk)
                    && !message.changes.is_empty()
                    && let Some(sandbox) = hub.sandbox.clone()
                {
                    // Parsed first where a malformed change can cost no more than the child's
                    // limits (Automerge can be made to panic or allocate without bound).
                    let changes: Vec<u8> = message.changes.iter().flatten().copied().collect();
                    let parses = tokio::task::spawn_blocking(move || sandbox.changes_parse(&changes))
                        .await
                        .unwrap_or(false);
                    tracing::debug!(target: "coper_timeline", %kiosk, document, "server: changes checked");
                    if !parses {
                        tracing::warn!(%peer, %kiosk, document, "sync message refused: its changes do not parse within the limits");
                        refuse(socket, "protocol", "messaggio di sincronizzazione non valido").await?;
                        break;
                    }
                }
                if name.writer() == Writer::Kiosk(kiosk) {
                    // What one kiosk can make the server store is bounded: a full outbox takes
                    // no more changes (checked before applying, so it grows past the limit by
                    // one message at most).
                    let key = name.to_string();
                    let stored = hub
                        .db()
                        .read(move |conn| documents::stored_bytes(conn, &key))
                        .await?;
                    if stored >= hub.config.outbox_bytes {
                        tracing::warn!(%peer, %kiosk, stored, "outbox full: sync message refused");
                        refuse(socket, "outbox_full", "archivio delle richieste del chiosco pieno: contattare la Questura").await?;
                        break;
                    }
                }
                let state = states.get_mut(&name).expect("state per doc");
                let outcome = if name.writer() == Writer::Kiosk(kiosk) {
                    receive_own(&hub, kiosk, state, message, clock_trusted).await
                } else {
                    receive_read_only(&hub, &name, state, message).await
                };
                match outcome {
                    // (The writer marks its own: the outbox's is applied in its transaction.)
                    Ok(Received::Applied) if !matches!(name, DocName::Outbox(_)) => {
                        tracing::debug!(target: "coper_timeline", %kiosk, document, "server: applied");
                    }
                    Ok(Received::Applied) => {}
                    Ok(Received::Decided) => {
                        tracing::debug!(target: "coper_timeline", %kiosk, "server: outbox processed");
                        // The verdicts first, before the acknowledgement of the outbox: the
                        // operator is waiting for them (the inbox's notification then finds
                        // nothing to send).
                        let inbox = DocName::Inbox(kiosk);
                        if let Some(state) = states.get_mut(&inbox) {
                            send_sync(socket, &hub, kiosk, &inbox, state, &mut awaiting).await?;
                        }
                    }
                    Ok(Received::NotWriter) => {
                        tracing::warn!(%peer, %kiosk, document, "kiosk tried to write a document it does not own");
                        let refusal = coper_shared::protocol::not_writer_message(&document);
                        refuse(socket, coper_shared::protocol::NOT_WRITER, &refusal).await?;
                        break;
                    }
                    // Automerge panicked on it: the message was malformed.
                    Err(StoreError::DocumentRefused(_)) => {
                        tracing::warn!(%peer, %kiosk, document, "sync message refused: it could not be applied");
                        refuse(socket, "protocol", "messaggio di sincronizzazione non valido").await?;
                        break;
                    }
                    Ok(Received::Bad(e)) => {
                        tracing::warn!(%peer, %kiosk, document, error = %e, "bad sync message");
                        refuse(socket, "protocol", "messaggio di sincronizzazione non valido").await?;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
                awaiting.remove(&name);
                last_heard.insert(name.clone(), tokio::time::Instant::now());
                let state = states.get_mut(&name).expect("state per doc");
                send_sync(socket, &hub, kiosk, &name, state, &mut awaiting).await?;
                dirty.insert(name.clone());
            }
            own = live.take_own() => {
                active = true;
                tracing::debug!(target: "coper_timeline", %kiosk, documents = own.len(), "server: notified");
                for name in own {
                    let Some(state) = states.get_mut(&name) else { continue };
                    if !matches!(name, DocName::Inbox(_) | DocName::Outbox(_)) {
                        gathered.insert(name);
                        continue;
                    }
                    send_sync(socket, &hub, kiosk, &name, state, &mut awaiting).await?;
                }
            }
        }
    }
    save_states(&hub, kiosk, &states, &mut dirty).await?;
    Ok(())
}

/// Wait for the next instant of the session's group at which it has something to send: a shared
/// document changed (`instants` moved), or the kiosk's own documents gathered are due (`own_due`).
/// Nothing to send, no wake-up.
async fn time_to_send(
    instants: &mut tokio::sync::watch::Receiver<u64>,
    own_due: Option<tokio::time::Instant>,
) {
    tokio::select! {
        Ok(()) = instants.changed() => {}
        () = until(own_due) => {}
    }
}

/// Sleep until `deadline`; with none, for ever.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What became of a kiosk's sync message.
enum Received {
    /// Applied (or, for a document the kiosk does not write, its acknowledgement read).
    Applied,
    /// Applied to the kiosk's outbox, and what it brought decided.
    Decided,
    /// It carried changes to a document the kiosk does not write.
    NotWriter,
    /// Automerge refused it.
    Bad(automerge::AutomergeError),
}

/// Apply `message` to the kiosk's own outbox and decide what it brought, in one transaction of
/// the writer's (the request and its verdict saved with one disk flush).
async fn receive_own(
    hub: &SyncHub,
    kiosk: KioskId,
    state: &mut sync::State,
    message: sync::Message,
    clock_trusted: bool,
) -> Result<Received, StoreError> {
    let (back, outcome) = hub
        .receive_outbox(kiosk, std::mem::take(state), message, clock_trusted)
        .await?;
    *state = back;
    Ok(match outcome {
        Ok(true) => Received::Decided,
        Ok(false) => Received::Applied,
        Err(e) => Received::Bad(e),
    })
}

/// Read the kiosk's acknowledgement of a document it does not write. Its sync state for it is
/// read-only, so changes are never applied; a kiosk whose heads include a change we never had
/// is offering a forgery. (Automerge may resend changes we already have after a lost or
/// reordered message; those are harmless.)
async fn receive_read_only(
    hub: &SyncHub,
    name: &DocName,
    state: &mut sync::State,
    message: sync::Message,
) -> Result<Received, StoreError> {
    let heads = message.heads.clone();
    let moved = std::mem::take(state);
    let (back, outcome) = hub
        .with_doc(name.clone(), move |doc| {
            let mut state = moved;
            if !has_changes(doc, &heads) {
                return (state, Received::NotWriter);
            }
            let outcome = match doc.sync().receive_sync_message(&mut state, message) {
                Ok(()) => Received::Applied,
                Err(e) => Received::Bad(e),
            };
            (state, outcome)
        })
        .await?;
    *state = back;
    Ok(outcome)
}

/// Send the next sync message of `name`, if any; one that carries changes, which the kiosk must
/// acknowledge, is noted in `awaiting` (from when, if it was not waiting already).
async fn send_sync(
    socket: &mut WebSocket,
    hub: &SyncHub,
    kiosk: KioskId,
    name: &DocName,
    state: &mut sync::State,
    awaiting: &mut HashMap<DocName, tokio::time::Instant>,
) -> Result<(), SessionError> {
    let (back, next) = hub.next_frame(name.clone(), std::mem::take(state)).await?;
    *state = back;
    let Some((frame, carries_changes)) = next else {
        return Ok(());
    };
    socket.send(Message::Binary(frame)).await?;
    tracing::debug!(target: "coper_timeline", %kiosk, document = %name, "server: sent");
    if carries_changes {
        awaiting
            .entry(name.clone())
            .or_insert_with(tokio::time::Instant::now);
    }
    Ok(())
}

async fn load_states(
    hub: &SyncHub,
    kiosk: KioskId,
    names: &[DocName],
) -> Result<HashMap<DocName, sync::State>, StoreError> {
    let names = names.to_vec();
    hub.db()
        .call(move |conn| {
            let mut out = HashMap::new();
            for name in names {
                let saved = documents::peer_state(conn, &kiosk.to_string(), &name.to_string())?;
                let mut state = saved
                    .and_then(|bytes| sync::State::decode(&bytes).ok())
                    .unwrap_or_default();
                // What the kiosk does not write, it cannot change: never apply its changes.
                state.set_read_only(name.writer() != Writer::Kiosk(kiosk));
                out.insert(name, state);
            }
            Ok(out)
        })
        .await
}

/// Save the sync states changed since the last save, in one transaction.
async fn save_states(
    hub: &SyncHub,
    kiosk: KioskId,
    states: &HashMap<DocName, sync::State>,
    dirty: &mut HashSet<DocName>,
) -> Result<(), StoreError> {
    if dirty.is_empty() {
        return Ok(());
    }
    let rows: Vec<(String, Vec<u8>)> = dirty
        .drain()
        // A body's bookings start afresh each session: their states are never kept.
        .filter(|name| !matches!(name, DocName::Bookings(_)))
        .filter_map(|name| Some((name.to_string(), states.get(&name)?.encode())))
        .collect();
    hub.db()
        .call(move |conn| documents::save_peer_states(conn, &kiosk.to_string(), &rows))
        .await
}
