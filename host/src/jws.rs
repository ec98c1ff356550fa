//! Request authentication for RFC 8555 §6.2: flattened JWS parsing, the algorithm allowlist,
//! key/algorithm agreement, signature verification (ring, and RustCrypto's p521 for ES512),
//! RFC 7638 thumbprints and the External Account Binding MAC of §7.3.4 (ring's HMAC). No
//! OpenSSL: JWKs are read here, member by member, for the one algorithm they must fit.
//!
//! Nothing here touches the network or the store: the front end decides which key applies
//! (`jwk` or the account behind `kid`) and calls in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p521::ecdsa::signature::Verifier as _;
use ring::hmac;
use ring::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED,
    ECDSA_P384_SHA384_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::acme::Problem;
use crate::ca::KeyKind;

/// The signature algorithms accepted on ACME requests (RFC 8555 §6.2: MUST NOT be `none` or a
/// MAC). Listed in `badSignatureAlgorithm` problems.
pub const ALLOWED_ALGS: [&str; 5] = ["RS256", "ES256", "ES384", "ES512", "EdDSA"];

/// How many account-key verifiers are kept. Decoding and checking a JWK costs about as much
/// as a verification; 10k keys cover every active account of a busy gateway and take a few MiB.
const VERIFIER_CACHE_CAPACITY: usize = 10_000;

/// Verifiers by (algorithm, RFC 7638 thumbprint). The thumbprint names the key exactly, so a
/// cached verifier can only ever verify for the key it was built from.
#[derive(Debug, Default)]
pub struct VerifierCache(Mutex<HashMap<(String, String), Verifier>>);

impl VerifierCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Verifier>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A public key ready to check one algorithm's signatures. ring serves every algorithm it has
/// (ES256, ES384, EdDSA, RS256): it verifies without locks or per-call algorithm lookups, which
/// OpenSSL 3 takes on every call and which showed at the top of the gateway's profile under
/// load. ES512 (P-521), which ring lacks, goes through RustCrypto's pure-Rust `p521`.
#[derive(Clone)]
pub enum Verifier {
    /// An EC point or Ed25519 key for a ring algorithm.
    Ring(Arc<UnparsedPublicKey<Vec<u8>>>),
    /// RSA modulus and exponent, PKCS#1 v1.5 with SHA-256.
    Rsa(Arc<RsaPublicKeyComponents<Vec<u8>>>),
    /// A P-521 point, ECDSA with SHA-512.
    P521(Arc<p521::ecdsa::VerifyingKey>),
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verifier::Ring(_) => "Verifier::Ring",
            Verifier::Rsa(_) => "Verifier::Rsa",
            Verifier::P521(_) => "Verifier::P521",
        })
    }
}

impl Verifier {
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Ring(key) => key.verify(message, signature).is_ok(),
            Verifier::Rsa(key) => key
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            // RFC 7518 §3.4: R || S, 66 octets each.
            Verifier::P521(key) => p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
        }
    }
}

/// Smallest RSA account key accepted, in bits; below this the key is `badPublicKey`.
const MIN_RSA_BITS: usize = 2048;

/// A flattened JWS (RFC 7515 §7.2.2) as sent in an ACME POST body.
#[derive(Debug, Clone)]
pub struct Jws {
    pub protected: Protected,
    /// The decoded payload; empty for POST-as-GET (RFC 8555 §6.3).
    pub payload: Vec<u8>,
    /// Whether the payload was the empty string (POST-as-GET) rather than e.g. `{}`.
    pub payload_empty: bool,
    /// `BASE64URL(protected) || '.' || BASE64URL(payload)`, the bytes that were signed.
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// The protected header fields ACME uses (RFC 8555 §6.2).
#[derive(Debug, Clone, Deserialize)]
pub struct Protected {
    pub alg: String,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub jwk: Option<Map<String, Value>>,
    #[serde(default)]
    pub kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
    // RFC 8555 §6.2: no unprotected header. Present => deny_unknown_fields refuses it.
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, Problem> {
    B64.decode(s)
        .map_err(|_| Problem::malformed(format!("JWS {field} is not base64url without padding")))
}

impl Jws {
    /// Parses a flattened JWS JSON body. Compact and general serialisations are refused
    /// (RFC 8555 §6.2 requires the flattened form).
    pub fn parse(body: &[u8]) -> Result<Jws, Problem> {
        let flat: Flattened = serde_json::from_slice(body).map_err(|e| {
            Problem::malformed(format!(
                "request body is not a flattened JWS JSON object: {e}"
            ))
        })?;
        let protected_json = b64("protected header", &flat.protected)?;
        let protected: Protected = serde_json::from_slice(&protected_json)
            .map_err(|e| Problem::malformed(format!("JWS protected header is invalid: {e}")))?;
        let payload = b64("payload", &flat.payload)?;
        let signature = b64("signature", &flat.signature)?;
        let mut signing_input = Vec::with_capacity(flat.protected.len() + flat.payload.len() + 1);
        signing_input.extend_from_slice(flat.protected.as_bytes());
        signing_input.push(b'.');
        signing_input.extend_from_slice(flat.payload.as_bytes());
        Ok(Jws {
            protected,
            payload_empty: flat.payload.is_empty(),
            payload,
            signing_input,
            signature,
        })
    }

    /// Checks the header rules that do not need the key: allowed `alg`, `url` present, and
    /// exactly one of `jwk`/`kid` (RFC 8555 §6.2).
    pub fn check_header(&self) -> Result<(), Problem> {
        check_alg(&self.protected.alg)?;
        if self.protected.url.is_none() {
            return Err(Problem::malformed(
                "JWS protected header has no \"url\" (RFC 8555 §6.4)",
            ));
        }
        match (&self.protected.jwk, &self.protected.kid) {
            (Some(_), Some(_)) => Err(Problem::malformed(
                "JWS protected header has both \"jwk\" and \"kid\"; exactly one is allowed",
            )),
            (None, None) => Err(Problem::malformed(
                "JWS protected header has neither \"jwk\" nor \"kid\"",
            )),
            _ => Ok(()),
        }
    }

    /// Verifies the signature with the given public JWK, checking that key and `alg` agree.
    pub fn verify(&self, jwk: &Map<String, Value>) -> Result<(), Problem> {
        let verifier = verifier_for_jwk(&self.protected.alg, jwk)?;
        self.check_signature(&verifier)
    }

    /// As [`Jws::verify`], reusing a verifier built earlier for the same key and algorithm.
    pub fn verify_cached(
        &self,
        jwk: &Map<String, Value>,
        cache: &VerifierCache,
    ) -> Result<(), Problem> {
        let key = (self.protected.alg.clone(), thumbprint(jwk)?);
        let cached = cache.lock().get(&key).cloned();
        let verifier = match cached {
            Some(v) => v,
            None => {
                let v = verifier_for_jwk(&self.protected.alg, jwk)?;
                let mut map = cache.lock();
                if map.len() >= VERIFIER_CACHE_CAPACITY {
                    // Rebuilding a verifier is cheap next to a full scan for the oldest entry.
                    map.clear();
                }
                map.insert(key, v.clone());
                v
            }
        };
        self.check_signature(&verifier)
    }

    fn check_signature(&self, verifier: &Verifier) -> Result<(), Problem> {
        if verifier.verify(&self.signing_input, &self.signature) {
            Ok(())
        } else {
            Err(Problem::malformed("JWS signature is invalid"))
        }
    }

    /// Verifies the signature with a DER SubjectPublicKeyInfo (revocation by certificate key,
    /// RFC 8555 §7.6).
    pub fn verify_with_spki(&self, spki_der: &[u8]) -> Result<(), Problem> {
        if verifier_for_spki(&self.protected.alg, spki_der)?
            .verify(&self.signing_input, &self.signature)
        {
            Ok(())
        } else {
            Err(Problem::unauthorized(
                "JWS is not signed by the certificate's key",
            ))
        }
    }

    /// Whether the DER SubjectPublicKeyInfo `spki_der` holds the key that signed this request,
    /// `jwk` (RFC 8555 §11.1: an account key must not be certified). EC and Ed25519 keys are
    /// compared octet for octet, which costs nothing next to the signature check it replaces
    /// (one P-256 verification per finalize); an RSA key, whose DER form the JWK does not
    /// carry, by verifying this request's signature with it.
    pub fn signed_by_spki(&self, jwk: &Map<String, Value>, spki_der: &[u8]) -> bool {
        let Ok((kind, key)) = crate::ca::public_key(spki_der) else {
            return false;
        };
        let member = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .and_then(|v| B64.decode(v).ok())
        };
        match kind {
            KeyKind::Rsa { .. } => self.verify_with_spki(spki_der).is_ok(),
            // The uncompressed SEC1 point: 0x04 || x || y.
            KeyKind::Ec(_) => match (member("x"), member("y")) {
                (Some(x), Some(y)) => key.first() == Some(&4) && key[1..] == [x, y].concat()[..],
                _ => false,
            },
            KeyKind::Ed25519 => member("x").is_some_and(|x| x == key),
        }
    }

    /// The payload parsed as JSON; POST-as-GET (empty payload) is refused here.
    pub fn json_payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, Problem> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Problem::malformed(format!("request payload is invalid: {e}")))
    }
}

fn bad_alg(alg: &str) -> Problem {
    Problem::bad_signature_algorithm(format!(
        "JWS algorithm {alg:?} is not allowed; use one of {}",
        ALLOWED_ALGS.join(", ")
    ))
    .with_algorithms(ALLOWED_ALGS.iter().map(|a| a.to_string()).collect())
}

fn check_alg(alg: &str) -> Result<(), Problem> {
    if ALLOWED_ALGS.contains(&alg) {
        Ok(())
    } else {
        Err(bad_alg(alg))
    }
}

fn str_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, Problem> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::bad_public_key(format!("JWK has no string member {name:?}")))
}

/// Builds a verifier for `alg` from a public JWK, refusing private keys and any key whose type
/// or curve does not fit the algorithm (RFC 7518 §3).
fn verifier_for_jwk(alg: &str, jwk: &Map<String, Value>) -> Result<Verifier, Problem> {
    check_alg(alg)?;
    if jwk.contains_key("d") {
        return Err(Problem::bad_public_key("JWK contains private key material"));
    }
    let kty = str_member(jwk, "kty")?;
    let crv = jwk.get("crv").and_then(Value::as_str);
    let expected = match alg {
        "RS256" => ("RSA", None),
        "ES256" => ("EC", Some("P-256")),
        "ES384" => ("EC", Some("P-384")),
        "ES512" => ("EC", Some("P-521")),
        "EdDSA" => ("OKP", Some("Ed25519")),
        _ => return Err(bad_alg(alg)),
    };
    if kty != expected.0 || (expected.1.is_some() && crv != expected.1) {
        return Err(bad_alg(alg).with_detail(format!(
            "JWS algorithm {alg} does not match the key (kty {kty}, crv {})",
            crv.unwrap_or("none")
        )));
    }
    if kty == "RSA" {
        let n = B64
            .decode(str_member(jwk, "n")?)
            .map_err(|_| Problem::bad_public_key("RSA modulus is not base64url"))?;
        let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
        if bits < MIN_RSA_BITS {
            return Err(Problem::bad_public_key(format!(
                "RSA key of about {bits} bits is too small; at least {MIN_RSA_BITS} are required"
            )));
        }
    }
    let member = |name: &str| -> Result<Vec<u8>, Problem> {
        B64.decode(str_member(jwk, name)?)
            .map_err(|_| Problem::bad_public_key(format!("JWK member {name:?} is not base64url")))
    };
    // An EC point in the uncompressed SEC1 form ring takes: 0x04 || x || y, each coordinate
    // exactly the curve's size (RFC 7518 §6.2.1.2); ring checks the point is on the curve.
    let ec_point = |size: usize| -> Result<Vec<u8>, Problem> {
        let (x, y) = (member("x")?, member("y")?);
        if x.len() != size || y.len() != size {
            return Err(Problem::bad_public_key(format!(
                "EC coordinates must be {size} bytes each"
            )));
        }
        Ok([&[4u8][..], &x, &y].concat())
    };
    let ring = |alg: &'static dyn VerificationAlgorithm, key: Vec<u8>| {
        Verifier::Ring(Arc::new(UnparsedPublicKey::new(alg, key)))
    };
    Ok(match alg {
        "ES256" => ring(&ECDSA_P256_SHA256_FIXED, ec_point(32)?),
        "ES384" => ring(&ECDSA_P384_SHA384_FIXED, ec_point(48)?),
        "EdDSA" => {
            let x = member("x")?;
            if x.len() != 32 {
                return Err(Problem::bad_public_key("Ed25519 keys are 32 bytes"));
            }
            ring(&ED25519, x)
        }
        "RS256" => {
            // ring wants the modulus without leading zero octets.
            let n = member("n")?;
            let n = n[n.iter().take_while(|b| **b == 0).count()..].to_vec();
            Verifier::Rsa(Arc::new(RsaPublicKeyComponents { n, e: member("e")? }))
        }
        _ => Verifier::P521(Arc::new(
            p521::ecdsa::VerifyingKey::from_sec1_bytes(&ec_point(66)?)
                .map_err(|_| Problem::bad_public_key("the EC point is not on P-521"))?,
        )),
    })
}

/// Builds a verifier for `alg` from a certificate's key, refusing a key whose type or curve
/// does not fit the algorithm.
fn verifier_for_spki(alg: &str, spki_der: &[u8]) -> Result<Verifier, Problem> {
    check_alg(alg)?;
    let mismatch = || Problem::unauthorized(format!("the certificate key cannot verify {alg}"));
    let (kind, key) = crate::ca::public_key(spki_der).map_err(|_| mismatch())?;
    let ring = |alg: &'static dyn VerificationAlgorithm| {
        Verifier::Ring(Arc::new(UnparsedPublicKey::new(alg, key.clone())))
    };
    let curve = |name: &str| matches!(&kind, KeyKind::Ec(c) if c == name);
    Ok(match alg {
        // id-RSASSA-PSS keys may not make PKCS#1 v1.5 signatures (RFC 4055 §1.2).
        "RS256"
            if matches!(
                kind,
                KeyKind::Rsa {
                    pss_only: false,
                    ..
                }
            ) =>
        {
            ring(&RSA_PKCS1_2048_8192_SHA256)
        }
        "ES256" if curve("P-256") => ring(&ECDSA_P256_SHA256_FIXED),
        "ES384" if curve("P-384") => ring(&ECDSA_P384_SHA384_FIXED),
        "ES512" if curve("P-521") => Verifier::P521(Arc::new(
            p521::ecdsa::VerifyingKey::from_sec1_bytes(&key).map_err(|_| mismatch())?,
        )),
        "EdDSA" if kind == KeyKind::Ed25519 => ring(&ED25519),
        _ => return Err(mismatch()),
    })
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url): the required members in lexicographic order,
/// serialised without whitespace.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, Problem> {
    let kty = str_member(jwk, "kty")?;
    let members: &[&str] = match kty {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        other => {
            return Err(Problem::bad_public_key(format!(
                "unsupported JWK kty {other:?}"
            )))
        }
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = str_member(jwk, name)?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json escapes exactly as JSON requires; base64url values need no escaping anyway.
        canonical.push_str(&format!("{}:{}", Value::from(*name), Value::from(value)));
    }
    canonical.push('}');
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    Ok(B64.encode(digest.as_ref()))
}

/// Key authorization of RFC 8555 §8.1: `token || '.' || thumbprint`.
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// Verifies an External Account Binding (RFC 8555 §7.3.4): a JWS whose protected header has a
/// MAC `alg`, the EAB `kid` and the newAccount `url`, whose payload is the account's JWK, and
/// whose MAC is made with the EAB key. Returns the kid it names. `key_for_kid` looks the kid up
/// (`None` when unknown).
pub fn verify_eab(
    eab: &Value,
    new_account_url: &str,
    account_jwk: &Map<String, Value>,
    key_for_kid: impl FnOnce(&str) -> Option<Vec<u8>>,
) -> Result<String, Problem> {
    let body =
        serde_json::to_vec(eab).map_err(|_| Problem::malformed("bad externalAccountBinding"))?;
    let inner = Jws::parse(&body).map_err(|p| {
        let detail = format!("externalAccountBinding: {}", p.detail);
        p.with_detail(detail)
    })?;
    let p = &inner.protected;
    if p.nonce.is_some() {
        return Err(Problem::malformed(
            "externalAccountBinding must not carry a nonce",
        ));
    }
    if p.url.as_deref() != Some(new_account_url) {
        return Err(Problem::malformed(
            "externalAccountBinding url must be the newAccount URL",
        ));
    }
    let kid = p
        .kid
        .clone()
        .ok_or_else(|| Problem::malformed("externalAccountBinding has no kid"))?;
    let payload: Map<String, Value> = inner.json_payload().map_err(|_| {
        Problem::malformed("externalAccountBinding payload must be the account JWK")
    })?;
    if thumbprint(&payload)? != thumbprint(account_jwk)? {
        return Err(Problem::unauthorized(
            "externalAccountBinding payload is not the key that signs this request",
        ));
    }
    let key = key_for_kid(&kid).ok_or_else(|| {
        Problem::unauthorized(format!(
            "external account key {kid:?} is unknown, revoked or used"
        ))
    })?;
    let algorithm = match p.alg.as_str() {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        other => {
            return Err(Problem::bad_signature_algorithm(format!(
                "externalAccountBinding alg {other:?} is not a MAC algorithm (HS256/384/512)"
            )))
        }
    };
    // ring compares in constant time.
    hmac::verify(
        &hmac::Key::new(algorithm, &key),
        &inner.signing_input,
        &inner.signature,
    )
    .map_err(|_| eab_mac_failed())?;
    Ok(kid)
}

fn eab_mac_failed() -> Problem {
    Problem::unauthorized("externalAccountBinding MAC does not verify with the key for its kid")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use josekit::jwk::alg::ec::EcCurve;
    use josekit::jwk::alg::ec::EcKeyPair;
    // Signing, in tests, goes through josekit (OpenSSL): an implementation independent of the
    // verifiers above.
    use josekit::jws::{EdDSA, JwsSigner, ES256, ES384, ES512, HS256, RS256};

    /// Builds a flattened JWS for tests with the given header and payload.
    pub(crate) fn sign(signer: &dyn JwsSigner, header: Value, payload: &[u8]) -> Vec<u8> {
        let protected = B64.encode(serde_json::to_vec(&header).unwrap());
        let payload = B64.encode(payload);
        let sig = signer
            .sign(format!("{protected}.{payload}").as_bytes())
            .unwrap();
        serde_json::to_vec(&serde_json::json!({
            "protected": protected, "payload": payload, "signature": B64.encode(sig)
        }))
        .unwrap()
    }

    fn es256() -> (EcKeyPair, Map<String, Value>) {
        let kp = EcKeyPair::generate(EcCurve::P256).unwrap();
        let jwk: Map<String, Value> = kp.to_jwk_public_key().into();
        (kp, jwk)
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk: Map<String, Value> = serde_json::from_str(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn verifies_es256_and_rejects_tampering() {
        let (kp, jwk) = es256();
        let signer = ES256.signer_from_jwk(&kp.to_jwk_private_key()).unwrap();
        let header = serde_json::json!({"alg":"ES256","nonce":"n","url":"https://x/a","jwk":jwk});
        let body = sign(&signer, header, br#"{"a":1}"#);
        let jws = Jws::parse(&body).unwrap();
        jws.check_header().unwrap();
        jws.verify(&jwk).unwrap();
        let cache = VerifierCache::default();
        jws.verify_cached(&jwk, &cache).unwrap();
        jws.verify_cached(&jwk, &cache).unwrap();
        assert_eq!(cache.lock().len(), 1);
        // A different key does not verify, cached or not.
        let (_, other_key) = es256();
        assert!(jws.verify_cached(&other_key, &cache).is_err());
        let (_, other) = es256();
        assert_eq!(
            jws.verify(&other).unwrap_err().kind,
            crate::acme::ProblemType::Malformed
        );
        // Flipping one payload bit breaks the signature.
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["payload"] = Value::from(B64.encode(br#"{"a":2}"#));
        let tampered = Jws::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(tampered.verify(&jwk).is_err());
    }

    /// Every allowed algorithm verifies through its verifier (ring, p521 for ES512) and
    /// refuses a signature over other bytes and a key of the right type that did not sign.
    #[test]
    fn every_allowed_algorithm_verifies_and_refuses_forgeries() {
        use josekit::jwk::alg::ed::EdCurve;
        use josekit::jwk::alg::rsa::RsaKeyPair;
        type Pair = (Box<dyn JwsSigner>, Map<String, Value>);
        let rsa = || -> Pair {
            let kp = RsaKeyPair::generate(2048).unwrap();
            let signer = RS256.signer_from_jwk(&kp.to_jwk_private_key()).unwrap();
            (Box::new(signer), kp.to_jwk_public_key().into())
        };
        let ec = |alg: &str| -> Pair {
            let (curve, signer_alg) = match alg {
                "ES256" => (EcCurve::P256, ES256),
                "ES384" => (EcCurve::P384, ES384),
                _ => (EcCurve::P521, ES512),
            };
            let kp = EcKeyPair::generate(curve).unwrap();
            let signer = signer_alg
                .signer_from_jwk(&kp.to_jwk_private_key())
                .unwrap();
            (Box::new(signer), kp.to_jwk_public_key().into())
        };
        let ed = || -> Pair {
            let kp = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
            let signer = EdDSA.signer_from_jwk(&kp.to_jwk_private_key()).unwrap();
            (Box::new(signer), kp.to_jwk_public_key().into())
        };
        for alg in ALLOWED_ALGS {
            let make = || match alg {
                "RS256" => rsa(),
                "EdDSA" => ed(),
                other => ec(other),
            };
            let (signer, jwk) = make();
            let header = serde_json::json!({"alg": alg, "url": "https://x/a", "jwk": jwk});
            let body = sign(signer.as_ref(), header, br#"{"a":1}"#);
            let jws = Jws::parse(&body).unwrap();
            jws.verify(&jwk).unwrap_or_else(|e| panic!("{alg}: {e}"));
            let cache = VerifierCache::default();
            jws.verify_cached(&jwk, &cache).unwrap();
            let (_, stranger) = make();
            assert!(jws.verify(&stranger).is_err(), "{alg}: another key");
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            v["payload"] = Value::from(B64.encode(br#"{"a":2}"#));
            let tampered = Jws::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
            assert!(tampered.verify(&jwk).is_err(), "{alg}: other payload");
        }
        // A point that is not on the curve is refused when verifying (ring checks it).
        let (signer, mut jwk) = ec("ES256");
        let body = sign(
            signer.as_ref(),
            serde_json::json!({"alg": "ES256", "url": "u", "jwk": jwk}),
            b"",
        );
        jwk.insert("y".into(), Value::from(B64.encode([7u8; 32])));
        assert!(Jws::parse(&body).unwrap().verify(&jwk).is_err());
        jwk.insert("y".into(), Value::from(B64.encode([7u8; 31])));
        assert_eq!(
            Jws::parse(&body).unwrap().verify(&jwk).unwrap_err().kind,
            crate::acme::ProblemType::BadPublicKey
        );
    }

    /// Algorithm, signer, public JWK and SubjectPublicKeyInfo of a fresh key.
    type KeyCase = (
        &'static str,
        Box<dyn JwsSigner>,
        Map<String, Value>,
        Vec<u8>,
    );

    /// A fresh key for every allowed algorithm.
    fn a_key_of_every_algorithm() -> [KeyCase; 5] {
        use josekit::jwk::alg::ed::EdCurve;
        use josekit::jwk::alg::rsa::RsaKeyPair;
        let public = |jwk: josekit::jwk::Jwk| jwk.as_ref().clone();
        let ec = |curve| EcKeyPair::generate(curve).unwrap();
        let (p256, p384, p521) = (ec(EcCurve::P256), ec(EcCurve::P384), ec(EcCurve::P521));
        let rsa = RsaKeyPair::generate(2048).unwrap();
        let ed = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
        [
            (
                "ES256",
                Box::new(ES256.signer_from_jwk(&p256.to_jwk_private_key()).unwrap()),
                public(p256.to_jwk_public_key()),
                p256.to_der_public_key(),
            ),
            (
                "ES384",
                Box::new(ES384.signer_from_jwk(&p384.to_jwk_private_key()).unwrap()),
                public(p384.to_jwk_public_key()),
                p384.to_der_public_key(),
            ),
            (
                "ES512",
                Box::new(ES512.signer_from_jwk(&p521.to_jwk_private_key()).unwrap()),
                public(p521.to_jwk_public_key()),
                p521.to_der_public_key(),
            ),
            (
                "RS256",
                Box::new(RS256.signer_from_jwk(&rsa.to_jwk_private_key()).unwrap()),
                public(rsa.to_jwk_public_key()),
                rsa.to_der_public_key(),
            ),
            (
                "EdDSA",
                Box::new(EdDSA.signer_from_jwk(&ed.to_jwk_private_key()).unwrap()),
                public(ed.to_jwk_public_key()),
                ed.to_der_public_key(),
            ),
        ]
    }

    /// Revocation by certificate key (RFC 8555 §7.6): every allowed algorithm verifies with the
    /// SubjectPublicKeyInfo of the key that signed, and a key of another type or curve is refused.
    #[test]
    fn certificate_keys_verify_their_algorithm_only() {
        let cases = a_key_of_every_algorithm();
        for (alg, signer, _, spki) in &cases {
            let header = serde_json::json!({"alg": alg, "url": "u", "kid": "k"});
            let jws = Jws::parse(&sign(signer.as_ref(), header, b"{}")).unwrap();
            jws.verify_with_spki(spki)
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            for (other, _, _, other_spki) in &cases {
                if other != alg {
                    let err = jws.verify_with_spki(other_spki).unwrap_err();
                    assert_eq!(
                        err.kind,
                        crate::acme::ProblemType::Unauthorized,
                        "{alg} {other}"
                    );
                }
            }
        }
        let (_, signer, _, spki) = &cases[0];
        let jws = Jws::parse(&sign(
            signer.as_ref(),
            serde_json::json!({"alg": "ES256", "url": "u", "kid": "k"}),
            b"{}",
        ))
        .unwrap();
        let stranger = EcKeyPair::generate(EcCurve::P256)
            .unwrap()
            .to_der_public_key();
        assert!(jws.verify_with_spki(&stranger).is_err());
        assert!(jws.verify_with_spki(spki).is_ok());
    }

    /// RFC 8555 §11.1 at finalize: a CSR key is recognised as the account key for every key
    /// type, and no other key is taken for it.
    #[test]
    fn the_account_key_is_recognised_in_a_certificate_key() {
        let cases = a_key_of_every_algorithm();
        let stranger = EcKeyPair::generate(EcCurve::P256)
            .unwrap()
            .to_der_public_key();
        for (alg, signer, jwk, spki) in &cases {
            let header = serde_json::json!({"alg": alg, "url": "u", "kid": "k"});
            let jws = Jws::parse(&sign(signer.as_ref(), header, b"{}")).unwrap();
            assert!(jws.signed_by_spki(jwk, spki), "{alg}");
            assert!(!jws.signed_by_spki(jwk, &stranger), "{alg}");
            assert!(!jws.signed_by_spki(jwk, b"not DER"), "{alg}");
            for (other, _, _, other_spki) in &cases {
                assert_eq!(
                    jws.signed_by_spki(jwk, other_spki),
                    other == alg,
                    "{alg} {other}"
                );
            }
        }
    }

    #[test]
    fn refuses_bad_algorithms_and_mismatched_keys() {
        let (kp, jwk) = es256();
        let signer = ES256.signer_from_jwk(&kp.to_jwk_private_key()).unwrap();
        for alg in ["none", "HS256", "RS512"] {
            let body = sign(
                &signer,
                serde_json::json!({"alg":alg,"url":"u","jwk":jwk}),
                b"",
            );
            let err = Jws::parse(&body).unwrap().check_header().unwrap_err();
            assert_eq!(
                err.kind,
                crate::acme::ProblemType::BadSignatureAlgorithm,
                "{alg}"
            );
            assert!(err.to_json().contains("\"algorithms\""));
        }
        // ES384 claimed over a P-256 key.
        let body = sign(
            &signer,
            serde_json::json!({"alg":"ES384","url":"u","jwk":jwk}),
            b"",
        );
        let err = Jws::parse(&body).unwrap().verify(&jwk).unwrap_err();
        assert_eq!(err.kind, crate::acme::ProblemType::BadSignatureAlgorithm);
    }

    #[test]
    fn header_needs_exactly_one_of_jwk_and_kid() {
        let (kp, jwk) = es256();
        let signer = ES256.signer_from_jwk(&kp.to_jwk_private_key()).unwrap();
        let both = sign(
            &signer,
            serde_json::json!({"alg":"ES256","url":"u","jwk":jwk,"kid":"k"}),
            b"",
        );
        assert!(Jws::parse(&both).unwrap().check_header().is_err());
        let none = sign(&signer, serde_json::json!({"alg":"ES256","url":"u"}), b"");
        assert!(Jws::parse(&none).unwrap().check_header().is_err());
        let no_url = sign(&signer, serde_json::json!({"alg":"ES256","kid":"k"}), b"");
        assert!(Jws::parse(&no_url).unwrap().check_header().is_err());
    }

    #[test]
    fn refuses_non_flattened_and_private_keys() {
        assert!(Jws::parse(b"eyJ.eyJ.sig").is_err());
        assert!(
            Jws::parse(br#"{"protected":"e30","payload":"","signature":"","header":{}}"#).is_err()
        );
        let (kp, _) = es256();
        let private: Map<String, Value> = kp.to_jwk_private_key().into();
        let signer = ES256.signer_from_jwk(&kp.to_jwk_private_key()).unwrap();
        let body = sign(
            &signer,
            serde_json::json!({"alg":"ES256","url":"u","jwk":private}),
            b"",
        );
        let err = Jws::parse(&body).unwrap().verify(&private).unwrap_err();
        assert_eq!(err.kind, crate::acme::ProblemType::BadPublicKey);
    }

    #[test]
    fn eab_round_trip_and_refusals() {
        let (_, jwk) = es256();
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let mac = HS256.signer_from_bytes(&key).unwrap();
        let url = "https://gw/acme/new-account";
        let eab_body = sign(
            &mac,
            serde_json::json!({"alg":"HS256","kid":"kid1","url":url}),
            &serde_json::to_vec(&jwk).unwrap(),
        );
        let eab: Value = serde_json::from_slice(&eab_body).unwrap();
        assert_eq!(
            verify_eab(&eab, url, &jwk, |_| Some(key.clone())).unwrap(),
            "kid1"
        );
        let wrong = verify_eab(&eab, url, &jwk, |_| {
            Some(b"other-key-other-key-other-key-xx".to_vec())
        });
        assert_eq!(
            wrong.unwrap_err().kind,
            crate::acme::ProblemType::Unauthorized
        );
        assert!(verify_eab(&eab, "https://gw/other", &jwk, |_| Some(key.clone())).is_err());
        assert!(verify_eab(&eab, url, &jwk, |_| None).is_err());
        let (_, other_jwk) = es256();
        assert!(verify_eab(&eab, url, &other_jwk, |_| Some(key.clone())).is_err());
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever bytes arrive as a request body, parsing answers with the JWS or a
            /// problem that says what is wrong; it never panics.
            #[test]
            fn any_body_parses_or_is_refused_with_a_reason(body in proptest::collection::vec(any::<u8>(), 0..512)) {
                if let Err(p) = Jws::parse(&body) {
                    prop_assert!(!p.detail.is_empty());
                }
            }

            /// Flattened JWS JSON with arbitrary field contents: parsed or refused, never a
            /// panic, and a refusal names the problem.
            #[test]
            fn mangled_flattened_json_is_refused_with_a_reason(
                protected in "[A-Za-z0-9_=+/-]{0,64}",
                payload in "[A-Za-z0-9_=.-]{0,64}",
                signature in "[A-Za-z0-9_-]{0,64}",
            ) {
                let body = serde_json::json!({
                    "protected": protected, "payload": payload, "signature": signature
                })
                .to_string();
                match Jws::parse(body.as_bytes()) {
                    Ok(jws) => {
                        if let Err(p) = jws.check_header() {
                            prop_assert!(!p.detail.is_empty());
                        }
                    }
                    Err(p) => prop_assert!(!p.detail.is_empty()),
                }
            }
        }
    }
}
