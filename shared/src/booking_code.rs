//! Short booking codes that a person can read aloud and type when a scanner fails.
//!
//! Eight characters of Crockford's base 32 (digits and letters without I, L, O and U, so nothing
//! looks like something else), shown as two groups of four (`K7QM-4XTA`). They are drawn from
//! random bits, so a kiosk can make one offline; 32⁸ ≈ 10¹² codes make a collision among a
//! Questura's bookings very unlikely, and the store's UNIQUE constraint catches the rest. A code
//! is a convenience for typing, not a secret: the signed QR code is what proves a booking.

/// Crockford's base-32 alphabet.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The code made of the lowest 40 of these random bits.
pub fn booking_code(random_bits: u128) -> String {
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let index = ((random_bits >> (5 * i)) & 0x1f) as usize;
        code.push(ALPHABET[index] as char);
    }
    code
}

/// What a person typed, in canonical form: upper case, Crockford's look-alikes mapped (O → 0,
/// I and L → 1), the dash restored; `None` when it cannot be a booking code.
pub fn normalise(typed: &str) -> Option<String> {
    let chars: Vec<char> = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if chars.len() != 8
        || !chars
            .iter()
            .all(|c| c.is_ascii() && ALPHABET.contains(&(*c as u8)))
    {
        return None;
    }
    let mut out: String = chars[..4].iter().collect();
    out.push('-');
    out.extend(&chars[4..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every code survives being typed back in lower case, without the dash or with spaces.
        #[test]
        fn a_code_typed_back_sloppily_normalises_to_itself(bits in any::<u128>()) {
            let code = booking_code(bits);
            prop_assert_eq!(code.len(), 9);
            prop_assert_eq!(normalise(&code), Some(code.clone()));
            let sloppy = code.to_lowercase().replace('-', " ");
            prop_assert_eq!(normalise(&sloppy), Some(code.clone()));
        }
    }

    #[test]
    fn look_alikes_are_read_as_what_they_look_like() {
        assert_eq!(normalise("oil0-1234").as_deref(), Some("0110-1234"));
        assert_eq!(normalise("ABCD-EFU1"), None, "U is not in the alphabet");
        assert_eq!(normalise("ABC"), None);
    }
}
