//! Booking at the kiosk: the services and slots to offer, booking and cancelling (each request
//! written into the outbox and committed locally before the call returns), the bookings made
//! here with the server's verdicts, and the signed ticket a reminder carries.

use std::time::Duration;

use coper_shared::{
    agenda::SlotKey,
    booking_code::booking_code,
    contact,
    documents::{
        DocName, Outcome, PartnerBooking, QuesturaInfo, Request, RequestKind, Verdict, collections,
        put_record, record, records,
    },
    ids::ServiceId,
    sealed::{self, Personal},
};
use jiff::civil::{Date, DateTime, Time};
use uuid::Uuid;

use super::{BookingStatus, CoreError, Inner, KioskCore, LocalBooking, Proposal, replica};

/// What a booking asks for: the slot, the person, and the ready permit found with
/// [`KioskCore::find_ready`], if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub service: ServiceId,
    pub slot: SlotKey,
    pub surname: String,
    pub given_names: String,
    /// Blank counts as none.
    pub phone: Option<String>,
    pub permit: Option<i64>,
    /// The person's active booking for this service that this one replaces (the operator
    /// chose "move" on [`KioskCore::booked_already`]'s warning).
    pub moves: Option<Uuid>,
    /// Blank counts as none.
    pub email: Option<String>,
    /// The language of the notices (the screen's, when the booking is made).
    pub lang: Option<String>,
    /// The person agreed to receive service messages at the phone or e-mail given.
    pub consent: bool,
}

impl KioskCore {
    /// The signed text for the QR code of `booking`'s reminder, at the slot it holds now (after a
    /// relocation, the new one). Signed with this kiosk's enrolment key.
    pub fn ticket(&self, booking: &LocalBooking) -> String {
        let (date, time) = match booking.status {
            BookingStatus::Relocated { date, time } => (date, time),
            _ => (booking.date, booking.time),
        };
        coper_shared::ticket::Ticket {
            issuer: coper_shared::ticket::Issuer::Kiosk(self.kiosk_id().0),
            booking: booking.request,
            service: booking.service.clone(),
            date,
            time,
        }
        .sign(&ed25519_dalek::SigningKey::from_bytes(
            &self.shared.secret_key,
        ))
    }

    /// Services offered, with their Italian names, from the last directory received.
    pub fn services(&self) -> Vec<(ServiceId, String)> {
        let inner = self.shared.lock();
        replica::services(&inner.docs)
            .into_iter()
            .map(|(id, info)| (id, info.name))
            .collect()
    }

    /// The slot to offer first. Offline with a lease left, the first slot this kiosk can confirm
    /// by itself; otherwise the first free slot of the replica.
    pub fn first_free(&self, service: &ServiceId) -> Result<Option<Proposal>, CoreError> {
        let inner = self.shared.lock();
        let now = self.now();
        let view = replica::View::build(&inner, service, now)?;
        let agenda = view.agenda();
        let from = now.to_zoned(view.tz.clone()).datetime();
        let mut free = agenda
            .free_slots(&view, now, from)
            .map(|f| view.proposal(f));
        let first = free.next();
        if !inner.online && first.as_ref().is_some_and(|p| p.lease.is_none()) {
            let with_lease = agenda
                .free_slots(&view, now, from)
                .map(|f| view.proposal(f))
                .find(|p| p.lease.is_some());
            if with_lease.is_some() {
                return Ok(with_lease);
            }
        }
        Ok(first)
    }

    /// "Another day": the first free slot of each of the next `count` days from `from`.
    pub fn options(
        &self,
        service: &ServiceId,
        from: DateTime,
        count: usize,
    ) -> Result<Vec<Proposal>, CoreError> {
        let inner = self.shared.lock();
        let now = self.now();
        let view = replica::View::build(&inner, service, now)?;
        Ok(view
            .agenda()
            .options(&view, now, from, count)
            .into_iter()
            .map(|f| view.proposal(f))
            .collect())
    }

    /// Every free slot of `date`, in time order: the times the operator may choose on a day
    /// picked from "another day".
    pub fn times_of(&self, service: &ServiceId, date: Date) -> Result<Vec<Proposal>, CoreError> {
        let inner = self.shared.lock();
        let now = self.now();
        let view = replica::View::build(&inner, service, now)?;
        Ok(view
            .agenda()
            .free_slots(&view, now, date.to_datetime(Time::midnight()))
            .take_while(|f| f.slot.date == date)
            .map(|f| view.proposal(f))
            .collect())
    }

    /// Book `slot` for a person (no ready permit attached): the short form of
    /// [`KioskCore::book_request`].
    pub fn book(
        &self,
        service: &ServiceId,
        slot: SlotKey,
        surname: &str,
        given_names: &str,
        phone: Option<&str>,
    ) -> Result<LocalBooking, CoreError> {
        self.book_request(&BookingRequest {
            service: service.clone(),
            slot,
            surname: surname.to_owned(),
            given_names: given_names.to_owned(),
            phone: phone.map(str::to_owned),
            permit: None,
            moves: None,
            email: None,
            lang: None,
            consent: false,
        })
    }

    /// Book what `booking` asks. Committed to the local store before this returns.
    pub fn book_request(&self, booking: &BookingRequest) -> Result<LocalBooking, CoreError> {
        let BookingRequest {
            service,
            slot,
            surname,
            given_names,
            phone,
            permit,
            moves,
            email,
            lang,
            consent,
        } = booking;
        let surname = surname.trim();
        if surname.is_empty() {
            return Err(CoreError::MissingSurname);
        }
        // How to reach the person, checked before anything is written: blank is none.
        let phone = contact::optional_phone(phone.as_deref().unwrap_or_default())?;
        let email = contact::optional_email(email.as_deref().unwrap_or_default())?;
        let now = self.now();
        let mut inner = self.shared.lock();
        let view = replica::View::build(&inner, service, now)?;
        let free = view
            .agenda()
            .check_slot(&view, now, *slot)
            .map_err(|_| CoreError::SlotNotFree)?;
        let lease = view.proposal(free).lease;
        let mut request = Request {
            id: Uuid::now_v7(),
            kind: RequestKind::Book,
            service: service.clone(),
            date: slot.date,
            time: slot.start,
            surname: surname.to_owned(),
            given_names: given_names.trim().to_owned(),
            phone,
            booking_code: booking_code(random_bits()),
            created_at_ms: now.as_millisecond(),
            lease,
            cancels: None,
            permit: *permit,
            sealed: None,
            moves: *moves,
        };
        let reachable = request.phone.is_some() || email.is_some();
        let personal = Personal {
            surname: std::mem::take(&mut request.surname),
            given_names: std::mem::take(&mut request.given_names),
            phone: request.phone.take(),
            email: email.clone(),
            lang: lang.clone(),
            consent: *consent && reachable,
        };
        match replica::seal_key(&inner.docs) {
            // The outbox holds the person sealed for the server; the kiosk keeps the clear copy
            // in its own store until the booking is settled.
            Some(server) => {
                let mut ephemeral = [0u8; 32];
                getrandom::fill(&mut ephemeral).expect("the OS has randomness");
                request.sealed = Some(sealed::seal(&server, ephemeral, &personal));
                inner.store.keep_person(
                    &request.id.to_string(),
                    &personal,
                    &request.date.to_string(),
                )?;
            }
            // A server from before sealing: the fields go in clear.
            None => {
                request.surname.clone_from(&personal.surname);
                request.given_names.clone_from(&personal.given_names);
                request.phone.clone_from(&personal.phone);
            }
        }
        write_request(&mut inner, &request)?;
        drop(inner);
        tracing::debug!(target: "coper_timeline", kiosk = %self.kiosk_id(), "kiosk: request committed");
        self.outbox_changed();
        Ok(LocalBooking {
            request: request.id,
            booking_code: request.booking_code,
            service: request.service,
            date: request.date,
            time: request.time,
            surname: personal.surname,
            given_names: personal.given_names,
            status: BookingStatus::Pending {
                lease: lease.is_some(),
            },
            cancel_refused: None,
            permit: request.permit,
            lang: lang.clone(),
        })
    }

    /// The reminder of `booking` was printed, marked `provisional` or not: the clear name and
    /// phone the kiosk kept for it are deleted once the booking is decided and printed as
    /// decided; a slip printed before the verdict is remembered until it is printed again, so
    /// the operator is asked to reprint it if the verdict says otherwise
    /// ([`Self::slips_to_reprint`]).
    pub fn reminder_printed(
        &self,
        booking: &LocalBooking,
        provisional: bool,
    ) -> Result<(), CoreError> {
        let inner = self.shared.lock();
        let before_verdict =
            matches!(booking.status, BookingStatus::Pending { .. }).then_some(!provisional);
        inner.store.slip_printed(
            &booking.request.to_string(),
            &booking.date.to_string(),
            before_verdict,
        )?;
        replica::forget_printed(&inner, booking.request, self.now())
    }

    /// Bookings made here whose reminder was printed before the verdict, which has arrived
    /// since and differs from the slip: a provisional slip (any verdict), or one printed as
    /// confirmed by a leased place that the server relocated or refused (a person may hold
    /// only one booking, even in a lease). The person holds a slip that no longer tells the
    /// truth.
    pub fn slips_to_reprint(&self) -> Vec<Uuid> {
        let inner = self.shared.lock();
        let slips = inner.store.early_slips().unwrap_or_default();
        let inbox = inner.docs.get(&DocName::Inbox(inner.kiosk));
        slips
            .into_iter()
            .filter_map(|(request, confirmed)| {
                let verdict: Verdict = record(inbox?, collections::VERDICTS, &request)?;
                let differs = !confirmed || verdict.outcome != Outcome::Confirmed;
                differs.then(|| request.parse().ok()).flatten()
            })
            .collect()
    }

    /// The operator has told the person about a refused booking's slip.
    pub fn slip_dealt_with(&self, request: Uuid) -> Result<(), CoreError> {
        let inner = self.shared.lock();
        inner.store.slip_printed(&request.to_string(), "", None)
    }

    /// Write `request` into the outbox exactly as given, bypassing every check: what a buggy or
    /// hostile kiosk could send. For the server's tests only.
    #[doc(hidden)]
    pub fn write_raw_request(&self, request: &Request) -> Result<(), CoreError> {
        self.write_raw_requests(std::slice::from_ref(request))
    }

    /// [`Self::write_raw_request`] for many at once, saved once: a flood as one change.
    #[doc(hidden)]
    pub fn write_raw_requests(&self, requests: &[Request]) -> Result<(), CoreError> {
        write_requests(&mut self.shared.lock(), requests)?;
        self.outbox_changed();
        Ok(())
    }

    /// Ask the server to cancel a booking made at this kiosk.
    pub fn cancel(&self, booking: Uuid) -> Result<Uuid, CoreError> {
        let now = self.now();
        let mut inner = self.shared.lock();
        let outbox = DocName::Outbox(inner.kiosk);
        let original: Request = inner
            .docs
            .get(&outbox)
            .and_then(|doc| record(doc, collections::REQUESTS, &booking.to_string()))
            .filter(|r: &Request| r.kind == RequestKind::Book)
            .ok_or(CoreError::UnknownBooking)?;
        let request = Request {
            id: Uuid::now_v7(),
            kind: RequestKind::Cancel,
            cancels: Some(booking),
            created_at_ms: now.as_millisecond(),
            lease: None,
            permit: None,
            ..original
        };
        write_request(&mut inner, &request)?;
        drop(inner);
        self.outbox_changed();
        Ok(request.id)
    }

    /// What a service asks people to bring, from the last directory received.
    /// What to bring for `service`: in Italian, and in `lang` when the Questura gave it.
    pub fn what_to_bring(
        &self,
        service: &ServiceId,
        lang: &str,
    ) -> Option<(String, Option<String>)> {
        let inner = self.shared.lock();
        replica::services(&inner.docs)
            .into_iter()
            .find(|(id, _)| id == service)
            .map(|(_, mut info)| {
                let theirs = info.what_to_bring_in.remove(lang);
                (info.what_to_bring, theirs)
            })
    }

    /// The Questura, from the last directory received.
    pub fn questura(&self) -> Option<QuesturaInfo> {
        let inner = self.shared.lock();
        inner
            .docs
            .get(&DocName::Directory)
            .and_then(|d| record(d, collections::QUESTURA, "questura"))
    }

    /// Every booking made at this kiosk, newest first, with what the server said of it.
    pub fn bookings(&self) -> Vec<LocalBooking> {
        let inner = self.shared.lock();
        replica::bookings(&inner)
    }

    /// The bookings of this kiosk's partner body from today on, made at any of its kiosks, with
    /// what the Questura did to each, as the server last sent them; by slot.
    pub fn partner_bookings(&self) -> Vec<PartnerBooking> {
        let inner = self.shared.lock();
        let name = DocName::Bookings(inner.kiosk);
        // Until this session's copy has arrived (or the server said it has nothing more), the
        // last session's.
        let arrived = inner.session_docs.get(&name) == Some(&true);
        let read = |doc: Option<&automerge::AutoCommit>| -> Vec<(String, PartnerBooking)> {
            doc.map(|doc| records(doc, collections::BOOKINGS))
                .unwrap_or_default()
        };
        let mut current = read(inner.docs.get(&name));
        if current.is_empty() && !arrived {
            current = read(inner.previous_docs.get(&name));
        }
        let mut all: Vec<PartnerBooking> = current.into_iter().map(|(_, b)| b).collect();
        all.sort_by_key(|b| (b.date, b.time, b.appointment));
        all
    }

    /// The server's verdict on `request`, if it has arrived.
    pub fn verdict(&self, request: Uuid) -> Option<Verdict> {
        let inner = self.shared.lock();
        inner
            .docs
            .get(&DocName::Inbox(inner.kiosk))
            .and_then(|doc| record(doc, collections::VERDICTS, &request.to_string()))
    }

    /// Wait up to `timeout` for the verdict on `request` (the kiosk waits briefly online before
    /// printing, so the reminder can say "confirmed").
    pub async fn wait_for_verdict(&self, request: Uuid, timeout: Duration) -> Option<Verdict> {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(verdict) = self.verdict(request) {
                return Some(verdict);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return self.verdict(request);
            }
        }
    }

    /// A request was written: the sync client sends it, and the screens show it.
    fn outbox_changed(&self) {
        self.shared.outbox_changed.notify_one();
        self.shared.changed();
    }
}

/// Add a request to the outbox and commit it to the local store. If the store refuses, the
/// outbox goes back to what the store holds, so a request the operator was told failed is never
/// sent.
fn write_request(inner: &mut Inner, request: &Request) -> Result<(), CoreError> {
    write_requests(inner, std::slice::from_ref(request))
}

fn write_requests(inner: &mut Inner, requests: &[Request]) -> Result<(), CoreError> {
    let outbox = DocName::Outbox(inner.kiosk);
    let doc = inner.docs.entry(outbox.clone()).or_default();
    for request in requests {
        put_record(doc, collections::REQUESTS, &request.id.to_string(), request);
    }
    let saved = inner.store.save_document(&outbox, doc);
    if saved.is_err() {
        let restored = inner.store.load_document(&outbox).ok().flatten();
        inner.docs.insert(outbox, restored.unwrap_or_default());
    }
    saved
}

fn random_bits() -> u128 {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    u128::from_le_bytes(bytes)
}
