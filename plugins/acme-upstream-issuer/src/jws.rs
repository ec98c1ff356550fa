//! Signing ACME requests (RFC 8555 §6.2) with the connector's P-256 account key: flattened
//! JWS, ES256 (RFC 7518 §3.4: r || s), the public JWK, and the External Account Binding
//! (RFC 8555 §7.3.4, HS256).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};

/// The account key from its 32-byte secret scalar (base64url).
pub fn account_key(secret_b64: &str) -> Result<SigningKey, String> {
    let bytes = B64
        .decode(secret_b64.trim().trim_end_matches('='))
        .map_err(|_| "account key is not base64url".to_string())?;
    SigningKey::from_slice(&bytes).map_err(|_| "account key is not a P-256 scalar".to_string())
}

/// The public JWK of `key`, members in RFC 7638 order.
pub fn jwk(key: &SigningKey) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({
        "crv": "P-256",
        "kty": "EC",
        "x": B64.encode(point.x().map(|x| &x[..]).unwrap_or_default()),
        "y": B64.encode(point.y().map(|y| &y[..]).unwrap_or_default()),
    })
}

/// A flattened JWS of `payload` (`None`: POST-as-GET) for `url`, identified by `kid` or, when
/// `None`, by the JWK.
pub fn sign(
    key: &SigningKey,
    kid: Option<&str>,
    nonce: &str,
    url: &str,
    payload: Option<&Value>,
) -> Vec<u8> {
    let mut protected = json!({"alg": "ES256", "nonce": nonce, "url": url});
    match kid {
        Some(kid) => protected["kid"] = Value::from(kid),
        None => protected["jwk"] = jwk(key),
    }
    let protected = B64.encode(protected.to_string());
    let payload = payload.map_or(String::new(), |p| B64.encode(p.to_string()));
    let signature: Signature = key.sign(format!("{protected}.{payload}").as_bytes());
    json!({
        "protected": protected,
        "payload": payload,
        "signature": B64.encode(signature.to_bytes()),
    })
    .to_string()
    .into_bytes()
}

/// The `externalAccountBinding` member of newAccount: the account JWK MACed with the EAB key.
pub fn eab(key: &SigningKey, kid: &str, hmac_b64: &str, url: &str) -> Result<Value, String> {
    let mac_key = B64
        .decode(hmac_b64.trim().trim_end_matches('='))
        .map_err(|_| "EAB HMAC key is not base64url".to_string())?;
    let protected = B64.encode(json!({"alg": "HS256", "kid": kid, "url": url}).to_string());
    let payload = B64.encode(jwk(key).to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&mac_key)
        .map_err(|_| "EAB HMAC key unusable".to_string())?;
    mac.update(format!("{protected}.{payload}").as_bytes());
    Ok(json!({
        "protected": protected,
        "payload": payload,
        "signature": B64.encode(mac.finalize().into_bytes()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn signs_verifiable_es256_with_jwk_or_kid() {
        let key = account_key(&B64.encode([7u8; 32])).unwrap();
        let body: Value = serde_json::from_slice(&sign(
            &key,
            None,
            "n1",
            "https://ca/new-acct",
            Some(&json!({"a": 1})),
        ))
        .unwrap();
        let protected: Value =
            serde_json::from_slice(&B64.decode(body["protected"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(protected["jwk"], jwk(&key));
        assert_eq!(protected["nonce"], "n1");
        let input = format!(
            "{}.{}",
            body["protected"].as_str().unwrap(),
            body["payload"].as_str().unwrap()
        );
        let sig = B64.decode(body["signature"].as_str().unwrap()).unwrap();
        assert_eq!(sig.len(), 64);
        let sig = Signature::from_slice(&sig).unwrap();
        assert!(key.verifying_key().verify(input.as_bytes(), &sig).is_ok());
        let get: Value = serde_json::from_slice(&sign(
            &key,
            Some("https://ca/acct/1"),
            "n2",
            "https://ca/o",
            None,
        ))
        .unwrap();
        assert_eq!(get["payload"], "");
        assert!(account_key("not base64!").is_err());
        assert!(
            account_key(&B64.encode([0u8; 32])).is_err(),
            "zero is no scalar"
        );
        let binding = eab(&key, "kid-1", &B64.encode([1u8; 32]), "https://ca/new-acct").unwrap();
        assert_eq!(
            B64.decode(binding["signature"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }
}
