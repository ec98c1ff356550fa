//! Just enough DER to read a certificate's serial number (RFC 5280 §4.1): the verify step
//! compares the serial a target serves with the one deployed.

/// One TLV: its tag and content, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: the low bits count the length bytes; four are plenty for a certificate.
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT Version`, present in v2 and v3 certificates.
const VERSION: u8 = 0xa0;

/// The serial of the DER certificate `cert` as lowercase hex without leading zeros, the form
/// the gateway uses.
pub fn serial_hex(cert: &[u8]) -> Option<String> {
    let (SEQUENCE, certificate, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(certificate)? else {
        return None;
    };
    let (mut tag, mut value, rest) = tlv(tbs)?;
    if tag == VERSION {
        (tag, value, _) = tlv(rest)?;
    }
    (tag == INTEGER).then(|| normalize(&hex(value)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase, without separators or leading zeros: `00:AB:cd` and `abcd` are one serial.
pub fn normalize(serial: &str) -> String {
    let digits: String = serial
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate skeleton: SEQUENCE { SEQUENCE { [0] { INTEGER 2 }, INTEGER serial, ... } }.
    fn skeleton(serial: &[u8], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend([VERSION, 3, INTEGER, 1, 2]);
        }
        tbs.extend([INTEGER, serial.len() as u8]);
        tbs.extend(serial);
        // A long-form length on the outer SEQUENCE, as real certificates have.
        tbs.extend([SEQUENCE, 0]);
        let mut inner = vec![SEQUENCE, tbs.len() as u8];
        inner.extend(tbs);
        let mut cert = vec![SEQUENCE, 0x81, inner.len() as u8];
        cert.extend(inner);
        cert
    }

    #[test]
    fn reads_the_serial_with_and_without_a_version() {
        assert_eq!(
            serial_hex(&skeleton(&[0x00, 0x9a, 0x0b], true)).as_deref(),
            Some("9a0b")
        );
        assert_eq!(serial_hex(&skeleton(&[0x42], false)).as_deref(), Some("42"));
        assert_eq!(serial_hex(b"\x30\x05\x30"), None, "truncated");
        assert_eq!(serial_hex(b""), None);
    }

    #[test]
    fn serials_compare_in_one_form() {
        assert_eq!(normalize("00:9A:0B"), "9a0b");
        assert_eq!(normalize("0000"), "0");
    }
}
