//! The kiosk ↔ server sync protocol's envelope: small, versioned, binary frames carried as
//! WebSocket binary messages. `docs/protocol.md` is the prose description; this is the code.
//!
//! ```text
//! frame   = version:u8 (= 2) kind:u8 body
//! Hello   0x01 S→K  nonce[32] server_time_ms:i64
//! Auth    0x02 K→S  kiosk_id[16] client_time_ms:i64 signature[64]
//! Welcome 0x03 S→K  server_time_ms:i64 clock_trusted:u8 count:u16 (len:u16 name)*
//! Sync    0x04 both len:u16 document-name automerge-sync-message…
//! Refused 0x05 S→K  len:u16 code message…
//! Enrol   0x06 K→S  public_key[32] client_time_ms:i64 signature[64] code…
//! Enrolled 0x07 S→K kiosk_id[16] partner_body_id:i64
//! ```
//! Integers are big-endian; strings UTF-8. A kiosk signs [`auth_payload`] with its Ed25519 key.

use uuid::Uuid;

/// 2: a partner body's bookings are one set of records for all its kiosks, each naming the kiosk
/// that made it (`made_at`), where version 1 told each kiosk whether it was `here`.
pub const VERSION: u8 = 2;

/// The HTTP header with which each side states its protocol version when the WebSocket opens:
/// the kiosk on its upgrade request, the server on its answer. A server that cannot speak a
/// kiosk's version answers `426 Upgrade Required` (with its own version in this header) instead
/// of upgrading, and a kiosk that finds the server's version is not its own closes and asks to
/// be updated; neither side ever misreads the other's frames.
pub const VERSION_HEADER: &str = "coper-protocol";

/// The refusal's code when a kiosk offers changes to a document only the server writes that the
/// server does not have. A forgery is refused so; so is a kiosk that holds what a server restored
/// from a backup has forgotten, which then drops its copy of that document and takes the
/// server's afresh (the server's copy is the truth).
pub const NOT_WRITER: &str = "not_writer";

/// The message of a [`NOT_WRITER`] refusal: the document's name first, then the reason.
pub fn not_writer_message(document: &str) -> String {
    format!("{document}: il chiosco non può modificare questo documento")
}

/// The document a [`NOT_WRITER`] refusal's message names.
pub fn not_writer_document(message: &str) -> Option<&str> {
    message.split_once(": ").map(|(document, _)| document)
}

/// The version the peer stated in [`VERSION_HEADER`]: absent means 1 (kiosks and servers made
/// before the header existed spoke version 1); anything unreadable is `None`.
pub fn stated_version(header: Option<&[u8]>) -> Option<u8> {
    match header {
        None => Some(1),
        Some(value) => std::str::from_utf8(value).ok()?.trim().parse().ok(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello {
        nonce: [u8; 32],
        server_time_ms: i64,
    },
    Auth {
        kiosk_id: Uuid,
        client_time_ms: i64,
        signature: [u8; 64],
    },
    Welcome {
        server_time_ms: i64,
        /// False when the kiosk's clock is further from the server's than the allowed bound: the
        /// kiosk must then not use its leases.
        clock_trusted: bool,
        documents: Vec<String>,
    },
    Sync {
        document: String,
        message: Vec<u8>,
    },
    Refused {
        code: String,
        message: String,
    },
    /// A new kiosk answers the challenge with its fresh public key, signed (with the nil kiosk
    /// id in the payload), and the one-time code the Questura gave it.
    Enrol {
        public_key: [u8; 32],
        client_time_ms: i64,
        signature: [u8; 64],
        code: String,
    },
    Enrolled {
        kiosk_id: Uuid,
        partner_body_id: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame too short")]
    Truncated,
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("unknown frame kind {0:#04x}")]
    Kind(u8),
    #[error("text is not UTF-8")]
    Utf8,
    #[error("trailing bytes after the frame")]
    Trailing,
}

/// The bytes a kiosk signs to answer a challenge: a domain separator, the server's nonce, the
/// kiosk's id and its clock, so a signature cannot be replayed in another session or context.
pub fn auth_payload(nonce: &[u8; 32], kiosk_id: Uuid, client_time_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + 32 + 16 + 8);
    out.extend_from_slice(b"coper-sync-v1\0");
    out.extend_from_slice(nonce);
    out.extend_from_slice(kiosk_id.as_bytes());
    out.extend_from_slice(&client_time_ms.to_be_bytes());
    out
}

/// The next sync message of document `name` for the peer whose state is `state`, as a frame to
/// send, and whether it carries changes (which the peer must acknowledge); `None` when the peer
/// already has everything. Both sides of the protocol send documents through this one function.
pub fn next_sync_frame(
    doc: &mut automerge::AutoCommit,
    name: &crate::documents::DocName,
    state: &mut automerge::sync::State,
) -> Option<(Frame, bool)> {
    use automerge::sync::SyncDoc;
    let message = doc.sync().generate_sync_message(state)?;
    let carries_changes = !message.changes.is_empty();
    Some((
        Frame::Sync {
            document: name.to_string(),
            message: message.encode(),
        },
        carries_changes,
    ))
}

/// Whether `doc` has every change `heads` names. Usually they are its own heads (a peer in step),
/// answered without looking a change up: Automerge builds the whole change to say whether it has
/// it, which, with hundreds of kiosks acknowledging every booking, was a tenth of the server's
/// work.
pub fn has_changes(doc: &mut automerge::AutoCommit, heads: &[automerge::ChangeHash]) -> bool {
    let ours = doc.get_heads();
    heads
        .iter()
        .all(|h| ours.contains(h) || doc.get_change_meta_by_hash(h).is_some())
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        match self {
            Frame::Hello {
                nonce,
                server_time_ms,
            } => {
                out.push(0x01);
                out.extend_from_slice(nonce);
                out.extend_from_slice(&server_time_ms.to_be_bytes());
            }
            Frame::Auth {
                kiosk_id,
                client_time_ms,
                signature,
            } => {
                out.push(0x02);
                out.extend_from_slice(kiosk_id.as_bytes());
                out.extend_from_slice(&client_time_ms.to_be_bytes());
                out.extend_from_slice(signature);
            }
            Frame::Welcome {
                server_time_ms,
                clock_trusted,
                documents,
            } => {
                out.push(0x03);
                out.extend_from_slice(&server_time_ms.to_be_bytes());
                out.push(u8::from(*clock_trusted));
                out.extend_from_slice(&(documents.len() as u16).to_be_bytes());
                for name in documents {
                    put_str(&mut out, name);
                }
            }
            Frame::Sync { document, message } => {
                out.push(0x04);
                put_str(&mut out, document);
                out.extend_from_slice(message);
            }
            Frame::Refused { code, message } => {
                out.push(0x05);
                put_str(&mut out, code);
                out.extend_from_slice(message.as_bytes());
            }
            Frame::Enrol {
                public_key,
                client_time_ms,
                signature,
                code,
            } => {
                out.push(0x06);
                out.extend_from_slice(public_key);
                out.extend_from_slice(&client_time_ms.to_be_bytes());
                out.extend_from_slice(signature);
                out.extend_from_slice(code.as_bytes());
            }
            Frame::Enrolled {
                kiosk_id,
                partner_body_id,
            } => {
                out.push(0x07);
                out.extend_from_slice(kiosk_id.as_bytes());
                out.extend_from_slice(&partner_body_id.to_be_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let frame = match r.u8()? {
            0x01 => Frame::Hello {
                nonce: r.array()?,
                server_time_ms: r.i64()?,
            },
            0x02 => Frame::Auth {
                kiosk_id: Uuid::from_bytes(r.array()?),
                client_time_ms: r.i64()?,
                signature: r.array()?,
            },
            0x03 => {
                let server_time_ms = r.i64()?;
                let clock_trusted = r.u8()? != 0;
                let count = r.u16()?;
                let documents = (0..count).map(|_| r.str()).collect::<Result<_, _>>()?;
                Frame::Welcome {
                    server_time_ms,
                    clock_trusted,
                    documents,
                }
            }
            0x04 => Frame::Sync {
                document: r.str()?,
                message: r.rest().to_vec(),
            },
            0x05 => Frame::Refused {
                code: r.str()?,
                message: String::from_utf8(r.rest().to_vec()).map_err(|_| FrameError::Utf8)?,
            },
            0x06 => Frame::Enrol {
                public_key: r.array()?,
                client_time_ms: r.i64()?,
                signature: r.array()?,
                code: String::from_utf8(r.rest().to_vec()).map_err(|_| FrameError::Utf8)?,
            },
            0x07 => Frame::Enrolled {
                kiosk_id: Uuid::from_bytes(r.array()?),
                partner_body_id: r.i64()?,
            },
            kind => return Err(FrameError::Kind(kind)),
        };
        if !r.0.is_empty() {
            return Err(FrameError::Trailing);
        }
        Ok(frame)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, FrameError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }
    fn str(&mut self) -> Result<String, FrameError> {
        let len = self.u16()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| FrameError::Utf8)
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `has_changes` says what Automerge's own lookup says: its heads, an older change, no heads
    /// at all, and a change it never had.
    #[test]
    fn has_changes_agrees_with_automerge() {
        let mut doc = automerge::AutoCommit::new();
        crate::documents::put_record(&mut doc, "slots", "a", &1);
        let older = doc.get_heads();
        crate::documents::put_record(&mut doc, "slots", "b", &2);
        let heads = doc.get_heads();
        let mut other = automerge::AutoCommit::new();
        crate::documents::put_record(&mut other, "slots", "c", &3);
        let foreign = other.get_heads();
        for (asked, expected) in [
            (heads.clone(), true),
            (older.clone(), true),
            (Vec::new(), true),
            (foreign.clone(), false),
            ([heads, foreign].concat(), false),
        ] {
            let by_automerge = asked.iter().all(|h| doc.get_change_by_hash(h).is_some());
            assert_eq!(by_automerge, expected);
            assert_eq!(has_changes(&mut doc, &asked), expected, "{asked:?}");
        }
    }

    proptest! {
        #[test]
        fn frames_round_trip(nonce in any::<[u8; 32]>(), t in any::<i64>(), name in "[a-z/0-9-]{0,40}",
                             body in prop::collection::vec(any::<u8>(), 0..200), trusted in any::<bool>()) {
            let frames = [
                Frame::Hello { nonce, server_time_ms: t },
                Frame::Auth { kiosk_id: Uuid::from_bytes(nonce[..16].try_into().unwrap()), client_time_ms: t, signature: [7; 64] },
                Frame::Welcome { server_time_ms: t, clock_trusted: trusted, documents: vec![name.clone(), "directory".into()] },
                Frame::Sync { document: name.clone(), message: body.clone() },
                Frame::Refused { code: name.clone(), message: "no".into() },
                Frame::Enrol { public_key: nonce, client_time_ms: t, signature: [9; 64], code: name.clone() },
                Frame::Enrolled { kiosk_id: Uuid::from_bytes(nonce[..16].try_into().unwrap()), partner_body_id: t },
            ];
            for frame in frames {
                prop_assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
            }
        }

        /// Garbage never panics the decoder.
        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
            let _ = Frame::decode(&bytes);
        }
    }

    #[test]
    fn other_versions_and_truncations_are_refused() {
        let mut hello = Frame::Hello {
            nonce: [1; 32],
            server_time_ms: 5,
        }
        .encode();
        for other in [VERSION - 1, VERSION + 1] {
            hello[0] = other;
            assert_eq!(Frame::decode(&hello), Err(FrameError::Version(other)));
        }
        let hello = Frame::Hello {
            nonce: [1; 32],
            server_time_ms: 5,
        }
        .encode();
        assert_eq!(Frame::decode(&hello[..10]), Err(FrameError::Truncated));
    }
}
