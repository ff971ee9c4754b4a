//! The signed code in a reminder's QR: which booking it is, for which service and slot, and who
//! issued it, signed with the issuer's Ed25519 key.
//!
//! Anyone can read a QR code, so a ticket carries no personal data: the counter looks the person
//! up by the booking id. The signature is what makes a ticket proof: a kiosk signs with the key it
//! enrolled with (the server knows the public half), the server signs the bookings it makes itself
//! with its own key. A ticket stays valid when its booking is relocated: the counter compares the
//! slot printed with the slot booked and says so.
//!
//! Text form, chosen for USB scanners that type what they read as keystrokes: `CP1` and then the
//! bytes in Crockford's base 32 — digits and capital letters only, which every keyboard layout
//! types the same way and a QR stores in its compact alphanumeric mode. Lower case (a scanner
//! behind Caps Lock) and spaces are accepted when reading. The byte layout is in
//! `docs/protocol.md`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jiff::civil::{Date, Time};
use uuid::Uuid;

use crate::{booking_code::ALPHABET, ids::ServiceId};

/// The prefix of every ticket's text; its last character is the format's version.
pub const PREFIX: &str = "CP1";
const VERSION: u8 = 1;
/// Signatures are over this label and the payload, so no other message signed by a kiosk's key
/// (the sync handshake) can be passed off as a ticket.
const SIGNING_CONTEXT: &[u8] = b"coper-ticket-v1";
const EPOCH: Date = Date::constant(2000, 1, 1);

/// Who issued a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Issuer {
    /// An enrolled kiosk, by id; the booking id is its request's id.
    Kiosk(Uuid),
    /// The server itself (bookings made at the Questura); the booking id is the appointment's id.
    Server,
}

/// What a ticket says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub issuer: Issuer,
    pub booking: Uuid,
    pub service: ServiceId,
    pub date: Date,
    pub time: Time,
}

/// Why a scanned text is not a ticket that can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("not a coper ticket")]
    NotATicket,
    #[error("ticket version {0} is not known")]
    UnknownVersion(u8),
    #[error("the ticket is damaged or incomplete")]
    Malformed,
    #[error("the ticket's signature does not match: forged or altered")]
    BadSignature,
}

/// A ticket read from text, its signature not checked yet: [`Scanned::verify`] needs the issuer's
/// key, which the caller looks up from [`Scanned::issuer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    ticket: Ticket,
    signed: Vec<u8>,
    signature: Signature,
}

impl Ticket {
    /// The ticket's text, signed with `key`.
    pub fn sign(&self, key: &SigningKey) -> String {
        let payload = self.payload();
        let signature = key.sign(&signed_message(&payload));
        let mut bytes = payload;
        bytes.extend_from_slice(&signature.to_bytes());
        format!("{PREFIX}{}", base32(&bytes))
    }

    fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        out.push(VERSION);
        match self.issuer {
            Issuer::Kiosk(id) => {
                out.push(1);
                out.extend_from_slice(id.as_bytes());
            }
            Issuer::Server => {
                out.push(2);
                out.extend_from_slice(Uuid::nil().as_bytes());
            }
        }
        out.extend_from_slice(self.booking.as_bytes());
        let days = (self.date - EPOCH).get_days();
        out.extend_from_slice(&(days.clamp(0, u16::MAX as i32) as u16).to_be_bytes());
        let minutes = self.time.hour() as u16 * 60 + self.time.minute() as u16;
        out.extend_from_slice(&minutes.to_be_bytes());
        let service = self.service.as_str().as_bytes();
        out.push(service.len() as u8);
        out.extend_from_slice(service);
        out
    }
}

impl Scanned {
    /// Read a ticket from what a scanner typed. Checks the shape, not the signature.
    pub fn parse(text: &str) -> Result<Self, TicketError> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let body = cleaned.strip_prefix("CP").ok_or(TicketError::NotATicket)?;
        let (version, body) = body.split_at_checked(1).ok_or(TicketError::NotATicket)?;
        let version: u8 = version.parse().map_err(|_| TicketError::NotATicket)?;
        if version != VERSION {
            return Err(TicketError::UnknownVersion(version));
        }
        let bytes = unbase32(body).ok_or(TicketError::Malformed)?;
        if bytes.len() < 64 + 39 {
            return Err(TicketError::Malformed);
        }
        let (signed, signature) = bytes.split_at(bytes.len() - 64);
        let signature = Signature::from_bytes(signature.try_into().expect("64 bytes"));
        let ticket = read_payload(signed).ok_or(TicketError::Malformed)?;
        Ok(Self {
            ticket,
            signed: signed.to_vec(),
            signature,
        })
    }

    /// Who claims to have issued it: whose key to verify with.
    pub fn issuer(&self) -> Issuer {
        self.ticket.issuer
    }

    /// The ticket, if `key` signed it.
    pub fn verify(self, key: &VerifyingKey) -> Result<Ticket, TicketError> {
        key.verify(&signed_message(&self.signed), &self.signature)
            .map_err(|_| TicketError::BadSignature)?;
        Ok(self.ticket)
    }
}

fn signed_message(payload: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, payload].concat()
}

fn read_payload(bytes: &[u8]) -> Option<Ticket> {
    let uuid_at = |at: usize| Uuid::from_slice(bytes.get(at..at + 16)?).ok();
    if *bytes.first()? != VERSION {
        return None;
    }
    let issuer = match *bytes.get(1)? {
        1 => Issuer::Kiosk(uuid_at(2)?),
        2 if uuid_at(2)?.is_nil() => Issuer::Server,
        _ => return None,
    };
    let booking = uuid_at(18)?;
    let days = u16::from_be_bytes(bytes.get(34..36)?.try_into().ok()?);
    let minutes = u16::from_be_bytes(bytes.get(36..38)?.try_into().ok()?);
    let service_len = *bytes.get(38)? as usize;
    let service = std::str::from_utf8(bytes.get(39..39 + service_len)?).ok()?;
    if bytes.len() != 39 + service_len || minutes >= 24 * 60 {
        return None;
    }
    Some(Ticket {
        issuer,
        booking,
        service: ServiceId::parse(service).ok()?,
        date: EPOCH
            .checked_add(jiff::Span::new().days(days as i64))
            .ok()?,
        time: Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()?,
    })
}

/// Bytes in Crockford's base 32, most significant bits first, no padding.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | byte as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 0x1f) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize] as char);
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    // Leftover bits are padding and must be zero, so one text means one payload.
    (buffer & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn ticket(issuer: Issuer) -> Ticket {
        Ticket {
            issuer,
            booking: Uuid::from_u128(0x0190_1234_5678_7abc_8def_0123_4567_89ab),
            service: ServiceId::parse("consegna-pse").unwrap(),
            date: Date::constant(2026, 11, 24),
            time: Time::constant(9, 40, 0, 0),
        }
    }

    #[test]
    fn a_signed_ticket_reads_back_with_the_issuers_key_only() {
        let original = ticket(Issuer::Kiosk(Uuid::from_u128(7)));
        let text = original.sign(&key(1));
        assert!(text.starts_with(PREFIX));
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
            "{text}"
        );
        let scanned = Scanned::parse(&text).unwrap();
        assert_eq!(scanned.issuer(), Issuer::Kiosk(Uuid::from_u128(7)));
        assert_eq!(
            scanned.clone().verify(&key(2).verifying_key()),
            Err(TicketError::BadSignature)
        );
        assert_eq!(scanned.verify(&key(1).verifying_key()), Ok(original));
    }

    #[test]
    fn caps_lock_and_spaces_from_a_scanner_are_forgiven() {
        let text = ticket(Issuer::Server).sign(&key(3));
        let sloppy = format!(" {} \n", text.to_lowercase());
        let read = Scanned::parse(&sloppy).unwrap();
        assert_eq!(read.issuer(), Issuer::Server);
        assert_eq!(
            read.verify(&key(3).verifying_key()).unwrap(),
            ticket(Issuer::Server)
        );
    }

    #[test]
    fn other_text_is_not_a_ticket() {
        assert_eq!(Scanned::parse("K7QM-4XTA"), Err(TicketError::NotATicket));
        assert_eq!(
            Scanned::parse("CP9ABC"),
            Err(TicketError::UnknownVersion(9))
        );
        assert_eq!(Scanned::parse("CP1ABC"), Err(TicketError::Malformed));
        let text = ticket(Issuer::Server).sign(&key(3));
        assert_eq!(
            Scanned::parse(&text[..text.len() - 10]),
            Err(TicketError::Malformed)
        );
    }

    proptest! {
        /// Changing any one character of a ticket makes it unreadable or its signature fail:
        /// nobody can move a booking to another day by editing the text.
        #[test]
        fn any_altered_character_is_caught(at in 3usize..180, replacement in 0usize..32) {
            let text = ticket(Issuer::Kiosk(Uuid::from_u128(9))).sign(&key(4));
            let at = at.min(text.len() - 1);
            let mut altered = text.clone().into_bytes();
            altered[at] = ALPHABET[replacement];
            prop_assume!(altered != text.as_bytes());
            let altered = String::from_utf8(altered).unwrap();
            let outcome = Scanned::parse(&altered).and_then(|s| s.verify(&key(4).verifying_key()));
            prop_assert!(outcome.is_err(), "accepted {altered}");
        }

        #[test]
        fn any_ticket_round_trips(booking in any::<u128>(), days in 0i64..20000, minutes in 0u16..1440,
                                  kiosk in any::<u128>()) {
            let original = Ticket {
                issuer: Issuer::Kiosk(Uuid::from_u128(kiosk)),
                booking: Uuid::from_u128(booking),
                service: ServiceId::parse("rilievi").unwrap(),
                date: EPOCH.checked_add(jiff::Span::new().days(days)).unwrap(),
                time: Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).unwrap(),
            };
            let text = original.sign(&key(5));
            prop_assert_eq!(Scanned::parse(&text).unwrap().verify(&key(5).verifying_key()), Ok(original));
        }
    }
}
