//! Sync messages of the server's own documents, made once for every kiosk in the same state.
//!
//! A booking changes an agenda that hundreds of kiosks replicate, and each is owed a sync
//! message built by Automerge from the document and that kiosk's sync state: a Bloom filter, the
//! changes to send, the encoding. Kiosks that were in step before the change hold equal states
//! (their acknowledgement trims what was sent to them), so they are owed the same bytes.
//! `generate_sync_message` is a function of the document (named by its heads) and the state
//! alone: what it gave for one (heads, state) is what it gives for every kiosk with that state,
//! and the state it leaves is the same too. The memo keeps the last few answers per document and
//! hands them out again; it forgets them when the document's heads move.
//!
//! Only the documents every kiosk receives are memoised ([`DocName::is_shared`]: the directory,
//! the agendas, the ready list). A kiosk's own documents have one reader: keeping their answers
//! saves nothing and cost memory (with 500 kiosks connected, 215 MiB instead of 121). Answers
//! are keyed by the document's heads, which name its content: a document dropped from memory and
//! loaded again is answered the same.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use automerge::{AutoCommit, ChangeHash, sync};
use axum::body::Bytes;
use coper_shared::{documents::DocName, protocol::next_sync_frame};

/// Answers kept per document: kiosks in step share one; the few others (just connected, a
/// message lost) make their own.
const KEPT_PER_DOCUMENT: usize = 8;
/// A larger frame (a whole document for a kiosk that has none) is a one-off: not kept.
const KEPT_FRAME_BYTES: usize = 64 * 1024;

/// A frame to send, encoded, and whether it carries changes (which the kiosk must acknowledge).
pub(super) type Outgoing = Option<(Bytes, bool)>;

/// `next_sync_frame`'s frame, encoded for the socket.
pub(super) fn encoded_frame(
    doc: &mut AutoCommit,
    name: &DocName,
    state: &mut sync::State,
) -> Outgoing {
    next_sync_frame(doc, name, state)
        .map(|(frame, carries_changes)| (Bytes::from(frame.encode()), carries_changes))
}

#[derive(Default)]
pub(super) struct SyncMemo {
    documents: Mutex<HashMap<DocName, Answers>>,
}

/// What was generated for one document at `heads`, newest last.
struct Answers {
    heads: Vec<ChangeHash>,
    made: VecDeque<Answer>,
}

struct Answer {
    before: sync::State,
    after: sync::State,
    outgoing: Outgoing,
}

impl SyncMemo {
    /// The next sync frame of the server's own document `name` for a kiosk whose state is
    /// `state`, as `next_sync_frame` would make it, and `state` advanced as it would advance it.
    pub(super) fn next_frame(
        &self,
        doc: &mut AutoCommit,
        name: &DocName,
        state: &mut sync::State,
    ) -> Outgoing {
        let heads = doc.get_heads();
        if let Some(answer) = self.recall(name, &heads, state) {
            return answer;
        }
        let before = state.clone();
        let outgoing = encoded_frame(doc, name, state);
        if outgoing
            .as_ref()
            .is_none_or(|(bytes, _)| bytes.len() <= KEPT_FRAME_BYTES)
        {
            self.remember(name, heads, before, state.clone(), outgoing.clone());
        }
        outgoing
    }

    fn recall(
        &self,
        name: &DocName,
        heads: &[ChangeHash],
        state: &mut sync::State,
    ) -> Option<Outgoing> {
        let documents = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        let answers = documents.get(name).filter(|a| a.heads == heads)?;
        let answer = answers.made.iter().find(|a| a.before == *state)?;
        state.clone_from(&answer.after);
        Some(answer.outgoing.clone())
    }

    fn remember(
        &self,
        name: &DocName,
        heads: Vec<ChangeHash>,
        before: sync::State,
        after: sync::State,
        outgoing: Outgoing,
    ) {
        let mut documents = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        let answers = documents.entry(name.clone()).or_insert_with(|| Answers {
            heads: heads.clone(),
            made: VecDeque::new(),
        });
        if answers.heads != heads {
            answers.heads = heads;
            answers.made.clear();
        }
        if answers.made.len() == KEPT_PER_DOCUMENT {
            answers.made.pop_front();
        }
        answers.made.push_back(Answer {
            before,
            after,
            outgoing,
        });
    }
}

#[cfg(test)]
mod tests {
    use automerge::sync::SyncDoc;
    use coper_shared::documents::put_record;

    use super::*;

    /// Kiosks in step with a document get, from the memo, the very bytes and states Automerge
    /// makes for each of them; a kiosk in another state gets its own; a change is never answered
    /// from before it.
    #[test]
    fn the_memo_answers_as_automerge_would_for_every_kiosk() {
        let name = DocName::Directory;
        let mut server = AutoCommit::new();
        put_record(&mut server, "slots", "a", &1);
        // Three kiosks in step, and one that connects later.
        let mut kiosks: Vec<(AutoCommit, sync::State, sync::State)> = (0..3)
            .map(|_| (AutoCommit::new(), sync::State::new(), sync::State::new()))
            .collect();
        let settle = |server: &mut AutoCommit,
                      kiosk: &mut AutoCommit,
                      ours: &mut sync::State,
                      theirs: &mut sync::State| {
            for _ in 0..10 {
                let out = server.sync().generate_sync_message(ours);
                let back = kiosk.sync().generate_sync_message(theirs);
                if out.is_none() && back.is_none() {
                    break;
                }
                if let Some(m) = out {
                    kiosk.sync().receive_sync_message(theirs, m).unwrap();
                }
                if let Some(m) = back {
                    server.sync().receive_sync_message(ours, m).unwrap();
                }
            }
        };
        for (kiosk, ours, theirs) in &mut kiosks {
            settle(&mut server, kiosk, ours, theirs);
        }
        put_record(&mut server, "slots", "b", &2);
        let memo = SyncMemo::default();
        let mut recalled = 0;
        for (_, ours, _) in &mut kiosks {
            let mut expected_state = ours.clone();
            let expected = encoded_frame(&mut server.clone(), &name, &mut expected_state);
            let before = memo.recall(&name, &server.get_heads(), &mut ours.clone());
            recalled += usize::from(before.is_some());
            let got = memo.next_frame(&mut server, &name, ours);
            assert_eq!(got, expected);
            assert_eq!(*ours, expected_state);
            assert!(got.is_some_and(|(_, changes)| changes));
        }
        assert_eq!(
            recalled, 2,
            "the second and third kiosk are answered from the memo"
        );
        // A kiosk that never synced is in another state: Automerge's own answer.
        let mut fresh = sync::State::new();
        let mut expected_state = fresh.clone();
        let expected = encoded_frame(&mut server.clone(), &name, &mut expected_state);
        assert_eq!(memo.next_frame(&mut server, &name, &mut fresh), expected);
        assert_eq!(fresh, expected_state);
        // After a change, nothing from before it is handed out.
        put_record(&mut server, "slots", "c", &3);
        assert!(
            memo.recall(&name, &server.get_heads(), &mut kiosks[1].1.clone())
                .is_none()
        );
    }
}
