//! Certificate revocation lists (RFC 5280 §5) signed by the issuing intermediate: CRL number,
//! authority key identifier, and a reason code on each entry that has one.

use bcder::encode::{self, PrimitiveContent};
use bcder::Tag;

use super::der::{self, Raw};
use super::{oids, Ca, CaError};

/// One revoked certificate as the CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial as lower-case hex (as the store keeps it).
    pub serial_hex: String,
    /// Unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 §5.3.1 CRLReason.
    pub reason: i32,
}

fn hex_bytes(hex: &str) -> Result<Vec<u8>, CaError> {
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| CaError::Signing(format!("serial {hex:?} is not hex")))
}

fn time(t: i64) -> Result<Vec<u8>, CaError> {
    der::time(t).ok_or_else(|| CaError::Signing(format!("time {t} cannot be encoded")))
}

impl Ca {
    /// A v2 CRL listing `entries`, numbered `number`, valid from `this_update` to
    /// `next_update` (Unix seconds), signed by the intermediate that issued the leaves.
    pub fn crl(
        &self,
        entries: &[RevokedEntry],
        number: u64,
        this_update: i64,
        next_update: i64,
    ) -> Result<Vec<u8>, CaError> {
        let mut revoked = Vec::with_capacity(entries.len());
        for e in entries {
            // RFC 5280 §5.3.1: "unspecified" (0) is conveyed by leaving the reason out.
            let reason = (e.reason != 0)
                .then(|| -> Result<Vec<u8>, CaError> {
                    let code = u8::try_from(e.reason).map_err(|_| {
                        CaError::Signing(format!("reason {} out of range", e.reason))
                    })?;
                    let enumerated = der::to_der(code.encode_as(Tag::ENUMERATED));
                    Ok(der::to_der(encode::sequence(Raw(&der::extension(
                        oids::REASON_CODE,
                        false,
                        &enumerated,
                    )))))
                })
                .transpose()?;
            revoked.push(der::to_der(encode::sequence((
                Raw(&der::positive_integer(&hex_bytes(&e.serial_hex)?)),
                Raw(&time(e.revoked_at)?),
                reason.as_deref().map(Raw),
            ))));
        }
        let algorithm = der::ecdsa_with_sha256();
        let extensions = der::to_der(encode::sequence((
            Raw(&der::extension(
                oids::AUTHORITY_KEY_IDENTIFIER,
                false,
                &der::authority_key_identifier(&self.intermediate_key_id),
            )),
            Raw(&der::extension(
                oids::CRL_NUMBER,
                false,
                &der::positive_integer(&number.to_be_bytes()),
            )),
        )));
        let revoked_list: Vec<Raw<'_>> = revoked.iter().map(|r| Raw(r)).collect();
        let tbs = der::to_der(encode::sequence((
            1u8.encode(), // v2
            Raw(&algorithm),
            Raw(&self.intermediate_subject),
            Raw(&time(this_update)?),
            Raw(&time(next_update)?),
            // An empty list is left out, not encoded empty (RFC 5280 §5.1.2.6).
            (!revoked_list.is_empty()).then(|| encode::sequence(revoked_list)),
            encode::Constructed::new(Tag::CTX_0, Raw(&extensions)),
        )));
        let signature = self
            .signer
            .sign(&self.rng, &tbs)
            .map_err(|_| CaError::Signing("ECDSA signing failed".into()))?;
        Ok(der::certificate(&tbs, &algorithm, signature.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_reads_the_crl() {
        let ca = super::super::testutil::shared_ca();
        let entries = vec![
            RevokedEntry {
                serial_hex: "1a2b3c".into(),
                revoked_at: 1_800_000_000,
                reason: 1,
            },
            RevokedEntry {
                serial_hex: "abc".into(),
                revoked_at: 1_800_000_100,
                reason: 0,
            },
        ];
        let der = ca.crl(&entries, 42, 1_800_000_000, 1_800_086_400).unwrap();
        let crl = openssl::x509::X509Crl::from_der(&der).unwrap();
        let int = openssl::x509::X509::from_der(&ca.intermediate_der()).unwrap();
        assert!(
            crl.verify(&int.public_key().unwrap()).unwrap(),
            "signed by the intermediate"
        );
        let revoked = crl.get_revoked().unwrap();
        let serials: Vec<String> = revoked
            .iter()
            .map(|r| {
                r.serial_number()
                    .to_bn()
                    .unwrap()
                    .to_hex_str()
                    .unwrap()
                    .to_ascii_lowercase()
            })
            .collect();
        assert_eq!(serials, ["1a2b3c", "0abc"]);
        let text = {
            let mut child = std::process::Command::new("openssl")
                .args(["crl", "-inform", "DER", "-noout", "-text"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&der).unwrap();
            String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
        };
        assert!(
            text.contains("X509v3 CRL Number") && text.contains("42"),
            "{text}"
        );
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        let empty = ca.crl(&[], 43, 1_800_000_000, 1_800_086_400).unwrap();
        let empty = openssl::x509::X509Crl::from_der(&empty).unwrap();
        assert!(empty.get_revoked().is_none());
    }

    #[test]
    fn a_crl_summary_reads_what_was_written() {
        let ca = super::super::testutil::shared_ca();
        let entry = |serial_hex: &str| RevokedEntry {
            serial_hex: serial_hex.into(),
            revoked_at: 1_800_000_000,
            reason: 4,
        };
        let der = ca
            .crl(&[entry("01"), entry("ff")], 7, 1_800_000_000, 1_800_086_400)
            .unwrap();
        let summary = crate::ca::crl_summary(&der).unwrap();
        assert_eq!(
            summary,
            crate::ca::CrlSummary {
                this_update: 1_800_000_000,
                next_update: Some(1_800_086_400),
                revoked: 2,
            }
        );
        let empty = ca.crl(&[], 8, 1_800_000_000, 1_800_086_400).unwrap();
        assert_eq!(crate::ca::crl_summary(&empty).unwrap().revoked, 0);
        assert!(crate::ca::crl_summary(&der[..der.len() - 1]).is_err());
    }
}
