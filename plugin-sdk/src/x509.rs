//! Just enough X.509 for plugins that check which certificate a target holds: the certificates
//! of a PEM bundle, and a certificate's serial number (RFC 5280 §4.1) in the form the gateway
//! uses (lowercase hex, no leading zeros). Deployers compare the serial a target serves, or the
//! file it reads, with the one they deployed. Pure and dependency-free, so it costs a plugin a
//! few kilobytes and tests natively.

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
/// the gateway uses; `None` when `cert` is not a certificate's DER.
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
    (tag == INTEGER).then(|| serial_from_bytes(value))
}

/// A serial's big-endian bytes (the content of its DER INTEGER) in the gateway's form.
pub fn serial_from_bytes(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    normalize_serial(&hex)
}

/// `der` as a PEM block labelled `label` (`CERTIFICATE`, `X509 CRL`, ...): standard base64 in
/// lines of 64 characters (RFC 7468).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Lowercase, without separators or leading zeros: `00:AB:cd` and `abcd` are one serial.
pub fn normalize_serial(serial: &str) -> String {
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

/// The DER of each `CERTIFICATE` block of a PEM text, in order (leaf first in a chain). Blocks
/// of other labels are skipped; a certificate block that is not valid base64 ends the list,
/// since what follows it cannot be trusted to be what the file meant.
pub fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut lines = pem.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != "-----BEGIN CERTIFICATE-----" {
            continue;
        }
        let body: String = lines
            .by_ref()
            .take_while(|l| *l != "-----END CERTIFICATE-----")
            .collect();
        match base64_decode(&body) {
            Some(der) => found.push(der),
            None => break,
        }
    }
    found
}

/// Standard base64 with padding (RFC 4648 §4), as PEM uses; `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        out.extend(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
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
        tbs.extend([SEQUENCE, 0]);
        let mut inner = vec![SEQUENCE, tbs.len() as u8];
        inner.extend(tbs);
        // A long-form length on the outer SEQUENCE, as real certificates have.
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
    fn pem_encoding_is_base64_in_lines_of_64_and_reads_back() {
        // RFC 4648 §10's vectors, padding included.
        for (der, b64) in [
            (&b"f"[..], "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                pem_encode("X", der),
                format!("-----BEGIN X-----\n{b64}\n-----END X-----\n")
            );
        }
        let der: Vec<u8> = (0..=255).collect();
        let pem = pem_encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
        assert_eq!(pem.lines().nth(1).map(str::len), Some(64));
        assert_eq!(pem_certificates(&pem), vec![der]);
    }

    #[test]
    fn serial_bytes_read_as_the_gateway_writes_serials() {
        assert_eq!(serial_from_bytes(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_from_bytes(&[0]), "0");
    }

    #[test]
    fn serials_compare_in_one_form() {
        assert_eq!(normalize_serial("00:9A:0B"), "9a0b");
        assert_eq!(normalize_serial("0000"), "0");
    }

    #[test]
    fn pem_bundles_give_their_certificates_in_order() {
        // "leaf" and "ca!" in base64, around a key block that is skipped.
        let pem = "-----BEGIN CERTIFICATE-----\nbGVh\nZg==\n-----END CERTIFICATE-----\n\
                   -----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n\
                   -----BEGIN CERTIFICATE-----\r\nY2Eh\r\n-----END CERTIFICATE-----\r\n";
        assert_eq!(pem_certificates(pem), [b"leaf".to_vec(), b"ca!".to_vec()]);
        let broken = "-----BEGIN CERTIFICATE-----\nbG*h\n-----END CERTIFICATE-----\n";
        assert!(pem_certificates(broken).is_empty());
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YQ==YQ=="), None, "padding only at the end");
        assert_eq!(base64_decode("YQ="), None);
    }

    #[test]
    fn a_real_certificate_from_pem() {
        // The leaf of a real chain: its serial as `openssl x509 -serial` prints it.
        let pem = include_str!("../testdata/leaf.pem");
        let der = pem_certificates(pem);
        assert_eq!(der.len(), 1);
        let expected = include_str!("../testdata/leaf.serial").trim();
        assert_eq!(serial_hex(&der[0]).unwrap(), normalize_serial(expected));
    }
}
