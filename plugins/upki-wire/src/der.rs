//! Just enough DER for the uPKI CA's quirks (see `docs/upki.md`): give a CSR a subject Common
//! Name (the CA refuses CSRs without one and copies the subject from the request, and many ACME
//! clients send an empty subject), read a certificate's Common Name (the CA finds certificates
//! by CN), and list a CRL's serials (the CA revokes by CN, so only its CRL says whether one
//! certificate is revoked).
//!
//! For the CN: the request info is rebuilt with `CN=<name>` and the rest unchanged (version, key,
//! attributes with the SANs); the original signature is kept. It no longer matches, which the
//! CA does not check (it never verifies CSR signatures); the gateway verified the client's
//! original CSR before calling the connector.

/// A DER element: its tag, and where its header and content lie in the input.
struct Element<'a> {
    tag: u8,
    whole: &'a [u8],
    content: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and the rest.
fn element(input: &[u8]) -> Result<(Element<'_>, &[u8]), String> {
    let truncated = || "truncated DER".to_string();
    let tag = *input.first().ok_or_else(truncated)?;
    let first = *input.get(1).ok_or_else(truncated)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 {
            return Err("unsupported DER length".into());
        }
        let bytes = input.get(2..2 + octets).ok_or_else(truncated)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + octets)
    };
    let end = header.checked_add(len).ok_or_else(truncated)?;
    let whole = input.get(..end).ok_or_else(truncated)?;
    Ok((
        Element {
            tag,
            whole,
            content: &whole[header..],
        },
        &input[end..],
    ))
}

/// Encodes `content` under `tag` with a definite length.
fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
/// id-at-commonName, 2.5.4.3.
const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];
/// X.520 ub-common-name.
pub const MAX_CN_LEN: usize = 64;

/// Whether the CSR's subject is empty.
pub fn subject_is_empty(der: &[u8]) -> Result<bool, String> {
    let (subject, _) = subject(der)?;
    Ok(subject.content.is_empty())
}

/// The request info's elements: (subject, [version, subject, rest...] as raw parts).
fn subject(der: &[u8]) -> Result<(Element<'_>, Vec<&[u8]>), String> {
    let (request, _) = element(der)?;
    let (info, _) = element(request.content)?;
    let (version, rest) = element(info.content)?;
    let (subject, rest) = element(rest)?;
    if request.tag != SEQUENCE || info.tag != SEQUENCE || subject.tag != SEQUENCE {
        return Err("not a PKCS#10 request".into());
    }
    Ok((subject, vec![version.whole, rest]))
}

/// The CSR with its subject replaced by `CN=<cn>`, signature kept.
pub fn with_common_name(der: &[u8], cn: &str) -> Result<Vec<u8>, String> {
    if cn.is_empty() || cn.len() > MAX_CN_LEN {
        return Err(format!("a Common Name has 1 to {MAX_CN_LEN} characters"));
    }
    let (request, _) = element(der)?;
    let (info, after_info) = element(request.content)?;
    let (_, parts) = subject(der)?;
    let attribute = encode(
        SEQUENCE,
        &[encode(OID, &CN_OID), encode(UTF8_STRING, cn.as_bytes())].concat(),
    );
    let name = encode(SEQUENCE, &encode(SET, &attribute));
    let info = encode(info.tag, &[parts[0], &name, parts[1]].concat());
    Ok(encode(SEQUENCE, &[&info[..], after_info].concat()))
}

/// The subject Common Name of a DER certificate.
pub fn certificate_common_name(der: &[u8]) -> Option<String> {
    let (cert, _) = element(der).ok()?;
    let (tbs, _) = element(cert.content).ok()?;
    let mut rest = tbs.content;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let mut fields = Vec::new();
    while fields.len() < 6 && !rest.is_empty() {
        let (field, next) = element(rest).ok()?;
        fields.push(field);
        rest = next;
    }
    let skip = usize::from(fields.first()?.tag == 0xa0);
    let subject = fields.get(skip + 4)?;
    let mut sets = subject.content;
    while !sets.is_empty() {
        let (set, next) = element(sets).ok()?;
        sets = next;
        let (attribute, _) = element(set.content).ok()?;
        let (oid, value) = element(attribute.content).ok()?;
        if oid.content == CN_OID {
            let (value, _) = element(value).ok()?;
            return String::from_utf8(value.content.to_vec()).ok();
        }
    }
    None
}

const INTEGER: u8 = 0x02;

/// The serials a DER CRL lists (RFC 5280 §5.1), as lower-case hex without leading zeros (the
/// gateway's form).
pub fn crl_serials(der: &[u8]) -> Result<Vec<String>, String> {
    let (list, _) = element(der)?;
    let (tbs, _) = element(list.content)?;
    if list.tag != SEQUENCE || tbs.tag != SEQUENCE {
        return Err("not a CRL".into());
    }
    // version (optional INTEGER), signature, issuer, thisUpdate, nextUpdate (optional Time),
    // revokedCertificates (optional SEQUENCE OF), crlExtensions ([0], optional).
    let mut rest = tbs.content;
    let mut seen = 0;
    while !rest.is_empty() {
        let (field, next) = element(rest)?;
        rest = next;
        if field.tag == INTEGER && seen == 0 {
            continue;
        }
        seen += 1;
        // After signature, issuer and thisUpdate, the first SEQUENCE is the revoked list.
        if seen > 3 && field.tag == SEQUENCE {
            let mut entries = field.content;
            let mut serials = Vec::new();
            while !entries.is_empty() {
                let (entry, next) = element(entries)?;
                entries = next;
                let (serial, _) = element(entry.content)?;
                if serial.tag != INTEGER {
                    return Err("a CRL entry without a serial".into());
                }
                serials.push(hex_serial(serial.content));
            }
            return Ok(serials);
        }
    }
    Ok(Vec::new())
}

/// Big-endian serial bytes as lower-case hex without leading zeros.
fn hex_serial(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match hex.trim_start_matches('0') {
        "" => "0".into(),
        trimmed => trimmed.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSR skeleton: SEQUENCE { SEQUENCE { INTEGER 0, SEQUENCE {}, SEQUENCE { key }, [0] {} },
    /// SEQUENCE { alg }, BIT STRING sig }.
    fn skeleton() -> Vec<u8> {
        let info = encode(
            SEQUENCE,
            &[
                encode(0x02, &[0]),
                encode(SEQUENCE, &[]),
                encode(SEQUENCE, &[0x05, 0x00]),
                encode(0xa0, &[]),
            ]
            .concat(),
        );
        encode(
            SEQUENCE,
            &[
                info,
                encode(SEQUENCE, &[0x05, 0x00]),
                encode(0x03, &[0, 1, 2, 3]),
            ]
            .concat(),
        )
    }

    #[test]
    fn adds_a_common_name_and_keeps_the_rest() {
        let csr = skeleton();
        assert!(subject_is_empty(&csr).unwrap());
        let named = with_common_name(&csr, "www.example.org").unwrap();
        assert!(!subject_is_empty(&named).unwrap());
        let (subject, _) = subject(&named).unwrap();
        assert!(subject.whole.windows(15).any(|w| w == b"www.example.org"));
        // Signature algorithm and signature are the original bytes, at the end.
        assert!(named.ends_with(&encode(0x03, &[0, 1, 2, 3])));
        // Long-form lengths work (a name of 64 characters pushes nothing past 127 here, so
        // check the encoder directly).
        assert_eq!(&encode(0x04, &[0u8; 200])[..3], &[0x04, 0x81, 200]);
        assert!(with_common_name(&csr, &"a".repeat(65)).is_err());
        assert!(with_common_name(&csr[..10], "x").is_err());
    }

    /// A CRL as the uPKI CA writes it (v2, no extensions), with the entries given.
    fn crl(entries: &[&[u8]]) -> Vec<u8> {
        let time = encode(0x17, b"261204155441Z");
        let revoked: Vec<u8> = entries
            .iter()
            .flat_map(|serial| encode(SEQUENCE, &[encode(INTEGER, serial), time.clone()].concat()))
            .collect();
        let mut tbs = vec![
            encode(INTEGER, &[1]),
            encode(SEQUENCE, &[0x05, 0x00]),
            encode(SEQUENCE, &[]),
            time.clone(),
            time.clone(),
        ];
        if !entries.is_empty() {
            tbs.push(encode(SEQUENCE, &revoked));
        }
        encode(
            SEQUENCE,
            &[
                encode(SEQUENCE, &tbs.concat()),
                encode(SEQUENCE, &[0x05, 0x00]),
                encode(0x03, &[0]),
            ]
            .concat(),
        )
    }

    #[test]
    fn lists_the_serials_of_a_crl() {
        assert_eq!(crl_serials(&crl(&[])).unwrap(), Vec::<String>::new());
        let big = [0x00, 0x8f, 0x01, 0x02];
        assert_eq!(
            crl_serials(&crl(&[&big, &[0x12, 0xaf]])).unwrap(),
            vec!["8f0102".to_string(), "12af".to_string()]
        );
        assert!(crl_serials(&[0x30, 0x05, 0x30]).is_err());
        // Written by upki-ca 0.1.5 after revoking one certificate.
        let real = include_bytes!("../testdata/upki-ca-0.1.5-crl.der");
        assert_eq!(
            crl_serials(real).unwrap(),
            vec!["12af1bb5c3d9def66a4d8187d532146af08dfe3f".to_string()]
        );
    }
}
