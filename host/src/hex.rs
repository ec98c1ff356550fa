//! Lower-case hexadecimal: the form digests, MACs, fingerprints and serial numbers take in the
//! database, the APIs and file names.
//!
//! One function for all of them: the `format!("{b:02x}")` per byte it replaces made a string
//! per byte, 32 per HMAC, and two HMACs are made for every audit entry, so it showed in the
//! heap profile of every order (docs/performance.md).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as two lower-case hex digits each.
pub fn lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_two_lower_case_digits() {
        assert_eq!(lower(&[]), "");
        assert_eq!(lower(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(lower(&all), expected);
    }
}
