//! A kiosk's request carries the person's name and phone sealed for the server alone, so the
//! outbox a kiosk keeps (whose Automerge history can never be rewritten) holds no name in clear:
//! a stolen kiosk disk reveals nobody. The kiosk keeps the clear copy it needs (its list, the
//! reminder) in its own store only until the booking is decided and printed.
//!
//! The construction is a sealed box: an ephemeral X25519 key agreed with the server's public key
//! (published in the directory document), a key derived with SHA-256 over the shared point and
//! both public keys, and ChaCha20-Poly1305. Pure: the kiosk passes the ephemeral secret in.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use curve25519_dalek::montgomery::MontgomeryPoint;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const CONTEXT: &[u8] = b"coper sealed personal fields v1";

/// What is sealed: the fields of a request that name a person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personal {
    pub surname: String,
    pub given_names: String,
    pub phone: Option<String>,
    /// An e-mail address for the notices, checked by `crate::contact::email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The language of the notices (the kiosk's, when the booking was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The person agreed to receive service messages at the phone or e-mail given.
    #[serde(default)]
    pub consent: bool,
}

/// The public key for `secret` (the server's sealing secret).
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

fn cipher(
    shared: &MontgomeryPoint,
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> ChaCha20Poly1305 {
    let mut hasher = Sha256::new();
    hasher.update(CONTEXT);
    hasher.update(shared.as_bytes());
    hasher.update(ephemeral);
    hasher.update(recipient);
    let key: [u8; 32] = hasher.finalize().into();
    ChaCha20Poly1305::new(&key.into())
}

/// `personal` sealed for the holder of `recipient`'s secret, with a fresh `ephemeral` secret
/// (random, used once). Hex, to sit in a JSON record.
pub fn seal(recipient: &[u8; 32], ephemeral: [u8; 32], personal: &Personal) -> String {
    let ephemeral_public = public_key(&ephemeral);
    let shared = MontgomeryPoint(*recipient).mul_clamped(ephemeral);
    let plaintext = serde_json::to_vec(personal).expect("plain strings serialise");
    // The key is used once (its ephemeral secret is fresh), so a fixed nonce is safe.
    let sealed = cipher(&shared, &ephemeral_public, recipient)
        .encrypt(
            Nonce::from_slice(&[0; 12]),
            Payload {
                msg: &plaintext,
                aad: CONTEXT,
            },
        )
        .expect("sealing a short text cannot fail");
    crate::ready_index::hex_lower(&[&ephemeral_public[..], &sealed].concat())
}

/// The fields sealed in `text` for `secret`, or `None` for anything else (another key, a
/// forgery, garbage). Longer than `max_chars` is refused before any work.
pub fn open(secret: &[u8; 32], text: &str, max_chars: usize) -> Option<Personal> {
    if text.len() > max_chars || text.len() < 2 * (32 + 16) {
        return None;
    }
    let bytes = from_hex(text)?;
    let (ephemeral_public, sealed) = bytes.split_at(32);
    let ephemeral_public: [u8; 32] = ephemeral_public.try_into().ok()?;
    let shared = MontgomeryPoint(ephemeral_public).mul_clamped(*secret);
    // A low-order point gives a shared secret anyone knows: refuse it.
    if shared.as_bytes() == &[0; 32] {
        return None;
    }
    let plaintext = cipher(&shared, &ephemeral_public, &public_key(secret))
        .decrypt(
            Nonce::from_slice(&[0; 12]),
            Payload {
                msg: sealed,
                aad: CONTEXT,
            },
        )
        .ok()?;
    serde_json::from_slice(&plaintext).ok()
}

/// A public key as the directory publishes it (hex).
pub fn public_key_from_hex(text: &str) -> Option<[u8; 32]> {
    from_hex(text)?.try_into().ok()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn person() -> Personal {
        Personal {
            email: None,
            lang: None,
            consent: false,
            surname: "El Amrani".into(),
            given_names: "Fatima".into(),
            phone: Some("+39 333 000 0000".into()),
        }
    }

    #[test]
    fn only_the_server_opens_what_a_kiosk_sealed() {
        let server = [7u8; 32];
        let sealed = seal(&public_key(&server), [9u8; 32], &person());
        assert!(!sealed.to_lowercase().contains("amrani"));
        assert_eq!(open(&server, &sealed, 4096), Some(person()));
        assert_eq!(open(&[8u8; 32], &sealed, 4096), None, "another key");
        assert_eq!(open(&server, &sealed, 10), None, "too long");
        let mut forged = sealed.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            open(&server, &String::from_utf8(forged).unwrap(), 4096),
            None
        );
        // A low-order "ephemeral key" (all zeros) is refused.
        let zero = format!("{}{}", "00".repeat(32), &sealed[64..]);
        assert_eq!(open(&server, &zero, 4096), None);
    }

    proptest! {
        #[test]
        fn anything_opens_or_is_refused_without_panicking(text in ".{0,300}", hex in "[0-9a-f]{0,400}") {
            let _ = open(&[1u8; 32], &text, 4096);
            let _ = open(&[1u8; 32], &hex, 4096);
        }
    }
}
