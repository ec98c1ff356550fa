//! Signature verification (ring) for a key and an AlgorithmIdentifier as found in CSRs and
//! certificates: RSA PKCS#1 v1.5 and RSASSA-PSS with SHA-2, ECDSA P-256/P-384, Ed25519.

use bcder::decode::{Constructed, DecodeError, Source};
use bcder::{Oid, Tag};
use bytes::Bytes;
use ring::signature::{self as sig, VerificationAlgorithm};

use super::decode::{decode, take_algorithm, KeyKind, Spki};
use super::oids;

/// Verifies `signature` over `message` by `spki` under the DER AlgorithmIdentifier `algorithm`.
pub fn verify(
    spki: &Spki,
    algorithm: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let (oid, params) = decode(algorithm, take_algorithm)
        .map_err(|e| format!("malformed signature algorithm: {e}"))?;
    let ring_alg = choose(spki, &oid, &params)?;
    sig::UnparsedPublicKey::new(ring_alg, &spki.key)
        .verify(message, signature)
        .map_err(|_| "signature does not verify".to_string())
}

/// Picks ring's verifier for this key and signature algorithm, or says why there is none.
fn choose(
    spki: &Spki,
    oid: &Oid<Bytes>,
    params: &[u8],
) -> Result<&'static dyn VerificationAlgorithm, String> {
    let kind = spki.kind()?;
    let unsupported = || format!("signature algorithm {oid} does not fit a {kind:?} key");
    // RFC 4055 §5: PKCS#1 v1.5 identifiers carry NULL parameters (absence is tolerated).
    let null_or_absent = params.is_empty() || params == [0x05, 0x00];
    match &kind {
        KeyKind::Rsa {
            modulus_bits,
            pss_only,
        } => {
            // ring verifies 1024-bit moduli only through its legacy variants; whether such a key
            // is acceptable is the key policy's call, not the verifier's.
            let small = *modulus_bits < 2048;
            if *oid == oids::RSASSA_PSS {
                return match (pss_hash(params)?, small) {
                    (PssHash::Sha256, false) => Ok(&sig::RSA_PSS_2048_8192_SHA256),
                    (PssHash::Sha384, false) => Ok(&sig::RSA_PSS_2048_8192_SHA384),
                    (PssHash::Sha512, false) => Ok(&sig::RSA_PSS_2048_8192_SHA512),
                    _ => Err("RSASSA-PSS with a modulus under 2048 bits".into()),
                };
            }
            if *pss_only || !null_or_absent {
                return Err(unsupported());
            }
            if *oid == oids::SHA256_WITH_RSA {
                Ok(if small {
                    &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
                } else {
                    &sig::RSA_PKCS1_2048_8192_SHA256
                })
            } else if *oid == oids::SHA384_WITH_RSA && !small {
                Ok(&sig::RSA_PKCS1_2048_8192_SHA384)
            } else if *oid == oids::SHA512_WITH_RSA {
                Ok(if small {
                    &sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
                } else {
                    &sig::RSA_PKCS1_2048_8192_SHA512
                })
            } else {
                Err(unsupported())
            }
        }
        KeyKind::Ec(curve) => {
            // RFC 5758 §3.2: ECDSA identifiers have absent parameters.
            if !params.is_empty() {
                return Err(unsupported());
            }
            let sha256 = *oid == oids::ECDSA_WITH_SHA256;
            let sha384 = *oid == oids::ECDSA_WITH_SHA384;
            match (curve.as_str(), sha256, sha384) {
                ("P-256", true, _) => Ok(&sig::ECDSA_P256_SHA256_ASN1),
                ("P-256", _, true) => Ok(&sig::ECDSA_P256_SHA384_ASN1),
                ("P-384", true, _) => Ok(&sig::ECDSA_P384_SHA256_ASN1),
                ("P-384", _, true) => Ok(&sig::ECDSA_P384_SHA384_ASN1),
                _ => Err(unsupported()),
            }
        }
        KeyKind::Ed25519 => {
            if *oid == oids::ED25519 && params.is_empty() {
                Ok(&sig::ED25519)
            } else {
                Err(unsupported())
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PssHash {
    Sha256,
    Sha384,
    Sha512,
}

/// Reads RSASSA-PSS-params (RFC 4055 §3.1) and accepts exactly what ring verifies: one SHA-2
/// hash for both the message and MGF1, salt length equal to the hash length, trailer 1.
fn pss_hash(params: &[u8]) -> Result<PssHash, String> {
    fn hash_oid<S: Source>(cons: &mut Constructed<S>) -> Result<Oid<Bytes>, DecodeError<S::Error>> {
        cons.take_sequence(|cons| {
            let oid = Oid::take_from(cons)?;
            cons.take_opt_null()?;
            Ok(oid)
        })
    }
    let (hash, mgf, salt, trailer) = decode(params, |cons| {
        cons.take_sequence(|cons| {
            let hash = cons.take_opt_constructed_if(Tag::CTX_0, hash_oid)?;
            let mgf = cons.take_opt_constructed_if(Tag::CTX_1, |cons| {
                cons.take_sequence(|cons| Ok((Oid::take_from(cons)?, hash_oid(cons)?)))
            })?;
            let salt = cons.take_opt_constructed_if(Tag::CTX_2, |c| c.take_u32())?;
            let trailer = cons.take_opt_constructed_if(Tag::CTX_3, |c| c.take_u8())?;
            Ok((hash, mgf, salt, trailer))
        })
    })
    .map_err(|e| format!("malformed RSASSA-PSS parameters: {e}"))?;
    // Absent fields default to SHA-1, which is not accepted.
    let hash = hash.ok_or("RSASSA-PSS with SHA-1")?;
    let (which, len) = if hash == oids::SHA256 {
        (PssHash::Sha256, 32)
    } else if hash == oids::SHA384 {
        (PssHash::Sha384, 48)
    } else if hash == oids::SHA512 {
        (PssHash::Sha512, 64)
    } else {
        return Err(format!("RSASSA-PSS with hash {hash}"));
    };
    let mgf_ok = matches!(&mgf, Some((m, h)) if *m == oids::MGF1 && *h == hash);
    if !mgf_ok || salt != Some(len) || trailer.unwrap_or(1) != 1 {
        return Err("RSASSA-PSS parameters other than MGF1 with the same hash and salt length = hash length".into());
    }
    Ok(which)
}
