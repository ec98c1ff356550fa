//! A small ACME client (RFC 8555) for the gateway's own tests and benchmark: it signs requests
//! with ES256/ES384/RS256/EdDSA keys (ring, through `ca::keys`), follows the order flow, and can also send
//! deliberately broken requests so that tests can assert the exact problem a server returns.

pub(crate) mod transport;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use crate::acme::{Identifier, Problem};
use crate::ca::keys::{EcdsaEncoding, KeyType, PrivateKey, Signer};
pub use transport::Transport;

pub mod admin;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("HTTP: {0}")]
    Http(String),
    /// The server answered with a problem document, kept whole.
    #[error("ACME problem: {0}")]
    Api(Problem),
    #[error("protocol: {0}")]
    Protocol(String),
    /// The admin API refused a request: its status and `{error, detail}` answer.
    #[error("the admin API answered {status} ({error}): {detail}")]
    Admin {
        status: u16,
        error: String,
        detail: String,
    },
}

/// Account key algorithms the client can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlg {
    Es256,
    Es384,
    Rs256,
    EdDsa,
}

/// An account key pair: its signer and public JWK.
pub struct AccountKey {
    signer: Signer,
    jwk: Map<String, Value>,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKey")
            .field("alg", &self.alg())
            .finish()
    }
}

fn protocol(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

impl AccountKey {
    pub fn generate(alg: KeyAlg) -> Result<AccountKey, ClientError> {
        let key_type = match alg {
            KeyAlg::Es256 => KeyType::P256,
            KeyAlg::Es384 => KeyType::P384,
            KeyAlg::Rs256 => KeyType::Rsa2048,
            KeyAlg::EdDsa => KeyType::Ed25519,
        };
        Self::from_key(&PrivateKey::generate(key_type).map_err(protocol)?)
    }

    /// A key from a PKCS#8 DER private key (e.g. a certificate key, for revocation §7.6).
    pub fn from_ec_p256_pkcs8(der: &[u8]) -> Result<AccountKey, ClientError> {
        Self::from_key(&PrivateKey::from_pkcs8(KeyType::P256, der.to_vec()).map_err(protocol)?)
    }

    fn from_key(key: &PrivateKey) -> Result<AccountKey, ClientError> {
        // RFC 7518 §3.4: JWS ECDSA signatures are r || s, not DER.
        let signer = key.signer(EcdsaEncoding::Fixed).map_err(protocol)?;
        let jwk = public_jwk(&signer)?;
        Ok(AccountKey { signer, jwk })
    }

    pub fn alg(&self) -> &str {
        match self.signer.key_type() {
            KeyType::P256 => "ES256",
            KeyType::P384 => "ES384",
            KeyType::Rsa2048 | KeyType::Rsa3072 => "RS256",
            KeyType::Ed25519 => "EdDSA",
        }
    }

    pub fn jwk(&self) -> &Map<String, Value> {
        &self.jwk
    }

    /// A flattened JWS over `payload` with the given protected header.
    pub fn sign(&self, protected: &Value, payload: &[u8]) -> Vec<u8> {
        // Signing with an in-memory key only fails for a malformed key, which loading excludes.
        sign_with(
            |input| self.signer.sign(input).unwrap_or_default(),
            protected,
            payload,
        )
    }
}

/// The public JWK of `signer` (RFC 7518 §6.2, §6.3; RFC 8037 §2 for Ed25519).
fn public_jwk(signer: &Signer) -> Result<Map<String, Value>, ClientError> {
    let point = signer.public_key();
    let ec = |crv: &str, len: usize| {
        // An uncompressed point: 0x04 || x || y.
        json!({"kty": "EC", "crv": crv, "x": B64.encode(&point[1..=len]), "y": B64.encode(&point[1 + len..])})
    };
    let jwk = match signer.key_type() {
        KeyType::P256 => ec("P-256", 32),
        KeyType::P384 => ec("P-384", 48),
        KeyType::Rsa2048 | KeyType::Rsa3072 => {
            let (n, e) = signer
                .rsa_components()
                .ok_or_else(|| protocol("an RSA key without its components"))?;
            json!({"kty": "RSA", "n": B64.encode(n), "e": B64.encode(e)})
        }
        KeyType::Ed25519 => json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(point)}),
    };
    match jwk {
        Value::Object(map) => Ok(map),
        _ => Err(protocol("a JWK that is not an object")),
    }
}

/// A flattened JWS (RFC 7515 §7.2.2) over `payload` with `protected`, signed by `sign`.
fn sign_with(sign: impl FnOnce(&[u8]) -> Vec<u8>, protected: &Value, payload: &[u8]) -> Vec<u8> {
    let protected = B64.encode(protected.to_string());
    let payload = B64.encode(payload);
    let sig = sign(format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": B64.encode(sig)})
        .to_string()
        .into_bytes()
}

/// A response, with helpers for what ACME puts in it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(protocol)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn location(&self) -> Option<String> {
        self.header("location")
    }

    /// The problem document, if the response is one.
    pub fn problem(&self) -> Option<Problem> {
        let ct = self.header("content-type")?;
        if !ct.starts_with("application/problem+json") {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }

    /// Turns an error status into `ClientError::Api`.
    pub fn ok(self) -> Result<Reply, ClientError> {
        if self.status < 400 {
            return Ok(self);
        }
        Err(match self.problem() {
            Some(p) => ClientError::Api(p),
            None => {
                ClientError::Protocol(format!("HTTP {} without a problem document", self.status))
            }
        })
    }
}

/// An ACME client bound to one server and one account key.
#[derive(Debug)]
pub struct AcmeClient {
    transport: Transport,
    pub directory: Value,
    pub key: AccountKey,
    /// The account URL once registered.
    pub kid: Option<String>,
    /// Pause between polls of a pending or processing resource.
    pub poll_interval: Duration,
    nonce: std::sync::Mutex<Option<String>>,
}

impl AcmeClient {
    /// Connects to `directory_url`, trusting the PEM roots given, and reads the directory.
    pub async fn connect(
        directory_url: &str,
        roots_pem: &[u8],
        key: AccountKey,
    ) -> Result<AcmeClient, ClientError> {
        let uri: http::Uri = directory_url.parse().map_err(protocol)?;
        let transport = Transport::new(&uri, roots_pem)?;
        let mut client = AcmeClient {
            transport,
            directory: Value::Null,
            key,
            kid: None,
            poll_interval: Duration::from_millis(100),
            nonce: std::sync::Mutex::new(None),
        };
        client.directory = client.get(directory_url).await?.ok()?.json()?;
        Ok(client)
    }

    /// A directory URL by its name (`newNonce`, `newAccount`, ...).
    pub fn url(&self, name: &str) -> Result<String, ClientError> {
        self.directory[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| protocol(format!("directory has no {name}")))
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Reply, ClientError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header("user-agent", "acmegate-client");
        let body = match body {
            Some((bytes, ct)) => {
                builder = builder.header("content-type", ct);
                bytes
            }
            None => Vec::new(),
        };
        let req = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(protocol)?;
        let resp = self.transport.send(req).await?;
        let (parts, body) = resp.into_parts();
        if let Some(n) = parts
            .headers
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
        {
            *self.nonce.lock().unwrap_or_else(|e| e.into_inner()) = Some(n.to_string());
        }
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> Result<Reply, ClientError> {
        self.request(Method::GET, url, None).await
    }

    pub async fn head(&self, url: &str) -> Result<Reply, ClientError> {
        self.request(Method::HEAD, url, None).await
    }

    /// A fresh nonce: the last one a response carried, else one from newNonce.
    pub async fn nonce(&self) -> Result<String, ClientError> {
        let cached = self.nonce.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(n) = cached {
            return Ok(n);
        }
        self.head(&self.url("newNonce")?).await?;
        self.nonce
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| protocol("newNonce gave no Replay-Nonce"))
    }

    /// Sends a raw body with a chosen content type: for tests that break the rules on purpose.
    pub async fn post_raw(
        &self,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Reply, ClientError> {
        self.request(Method::POST, url, Some((body, content_type)))
            .await
    }

    /// The protected header a normal request uses: `kid` once registered, else `jwk`.
    pub async fn header(&self, url: &str) -> Result<Value, ClientError> {
        self.header_with(url, self.kid.is_none()).await
    }

    async fn header_with(&self, url: &str, jwk: bool) -> Result<Value, ClientError> {
        let mut h = json!({"alg": self.key.alg(), "nonce": self.nonce().await?, "url": url});
        match (&self.kid, jwk) {
            (Some(kid), false) => h["kid"] = Value::from(kid.clone()),
            _ => h["jwk"] = Value::Object(self.key.jwk().clone()),
        }
        Ok(h)
    }

    /// A signed POST; `payload` None is POST-as-GET (RFC 8555 §6.3). Retries once on badNonce
    /// as §6.5 allows.
    pub async fn post(&self, url: &str, payload: Option<&Value>) -> Result<Reply, ClientError> {
        self.signed_post(url, payload, self.kid.is_none()).await
    }

    /// A POST signed with `jwk` even when the account is registered (newAccount, revocation
    /// by certificate key).
    pub async fn post_jwk(&self, url: &str, payload: Option<&Value>) -> Result<Reply, ClientError> {
        self.signed_post(url, payload, true).await
    }

    async fn signed_post(
        &self,
        url: &str,
        payload: Option<&Value>,
        jwk: bool,
    ) -> Result<Reply, ClientError> {
        let bytes = payload
            .map(|p| p.to_string().into_bytes())
            .unwrap_or_default();
        for attempt in 0..2 {
            let header = self.header_with(url, jwk).await?;
            let reply = self
                .post_raw(url, self.key.sign(&header, &bytes), "application/jose+json")
                .await?;
            let bad_nonce = reply
                .problem()
                .is_some_and(|p| p.kind == crate::acme::ProblemType::BadNonce);
            if !bad_nonce || attempt == 1 {
                return Ok(reply);
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// newAccount (§7.3), optionally with External Account Binding (§7.3.4).
    pub async fn new_account(
        &mut self,
        contact: &[&str],
        eab: Option<(&str, &[u8])>,
    ) -> Result<Reply, ClientError> {
        let url = self.url("newAccount")?;
        let mut payload = json!({"termsOfServiceAgreed": true, "contact": contact});
        if let Some((kid, hmac)) = eab {
            let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, hmac);
            let jwk = Value::Object(self.key.jwk().clone()).to_string();
            let inner = sign_with(
                |input| ring::hmac::sign(&mac, input).as_ref().to_vec(),
                &json!({"alg": "HS256", "kid": kid, "url": url}),
                jwk.as_bytes(),
            );
            payload["externalAccountBinding"] = serde_json::from_slice(&inner).map_err(protocol)?;
        }
        let reply = self.post_jwk(&url, Some(&payload)).await?.ok()?;
        self.kid = reply.location();
        Ok(reply)
    }

    pub async fn new_order(
        &self,
        identifiers: &[Identifier],
        profile: Option<&str>,
    ) -> Result<Reply, ClientError> {
        self.new_order_replacing(identifiers, profile, None).await
    }

    /// newOrder that names the certificate it replaces by its certID (RFC 9773 §5).
    pub async fn new_order_replacing(
        &self,
        identifiers: &[Identifier],
        profile: Option<&str>,
        replaces: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let mut payload = json!({"identifiers": identifiers});
        if let Some(p) = profile {
            payload["profile"] = Value::from(p);
        }
        if let Some(r) = replaces {
            payload["replaces"] = Value::from(r);
        }
        self.post(&self.url("newOrder")?, Some(&payload)).await
    }

    /// The renewalInfo (RFC 9773 §4.2) of the certificate whose chain (leaf first) is
    /// `chain_pem`: a plain GET of `{renewalInfo}/{certID}`.
    pub async fn renewal_info(&self, chain_pem: &str) -> Result<Reply, ClientError> {
        let id = cert_id(chain_pem)?;
        self.get(&format!("{}/{id}", self.url("renewalInfo")?))
            .await
    }

    /// Polls `url` with POST-as-GET every `poll_interval` until its status leaves
    /// `pending`/`processing` or `timeout` passes.
    pub async fn poll(&self, url: &str, timeout: Duration) -> Result<Value, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let reply = self.post(url, None).await?.ok()?;
            let v = reply.json()?;
            let status = v["status"].as_str().unwrap_or("");
            if !matches!(status, "pending" | "processing") || tokio::time::Instant::now() > deadline
            {
                return Ok(v);
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// The whole flow for one order: answer `challenge_type` on every authorization, finalize
    /// with a fresh P-256 key, and download the chain. Returns (order URL, chain PEM).
    pub async fn issue(
        &self,
        identifiers: &[Identifier],
        challenge_type: &str,
        profile: Option<&str>,
    ) -> Result<(String, String), ClientError> {
        self.issue_replacing(identifiers, challenge_type, profile, None)
            .await
    }

    /// [`AcmeClient::issue`] for an order that replaces the certificate `replaces` names
    /// (a certID, RFC 9773 §5).
    pub async fn issue_replacing(
        &self,
        identifiers: &[Identifier],
        challenge_type: &str,
        profile: Option<&str>,
        replaces: Option<&str>,
    ) -> Result<(String, String), ClientError> {
        let order = self
            .new_order_replacing(identifiers, profile, replaces)
            .await?
            .ok()?;
        let order_url = order
            .location()
            .ok_or_else(|| protocol("newOrder without Location"))?;
        let order = order.json()?;
        self.authorize(&order, challenge_type).await?;
        let (csr, _key) = csr_p256(identifiers)?;
        let finalize = order["finalize"]
            .as_str()
            .ok_or_else(|| protocol("order without finalize"))?;
        self.post(finalize, Some(&json!({"csr": B64.encode(csr)})))
            .await?
            .ok()?;
        let done = self.poll(&order_url, Duration::from_secs(30)).await?;
        let cert_url = done["certificate"]
            .as_str()
            .ok_or_else(|| protocol(format!("order ended without certificate: {done}")))?;
        let chain = self.post(cert_url, None).await?.ok()?;
        Ok((order_url, String::from_utf8_lossy(&chain.body).into_owned()))
    }

    /// Answers `challenge_type` on every authorization of `order` (its JSON) that is not
    /// valid yet, and waits until each is valid.
    pub async fn authorize(&self, order: &Value, challenge_type: &str) -> Result<(), ClientError> {
        for authz_url in order["authorizations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let authz = self.post(authz_url, None).await?.ok()?.json()?;
            if authz["status"] == "valid" {
                continue;
            }
            let chall = authz["challenges"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == challenge_type))
                .ok_or_else(|| protocol(format!("no {challenge_type} challenge offered")))?;
            let chall_url = chall["url"]
                .as_str()
                .ok_or_else(|| protocol("challenge without url"))?;
            self.post(chall_url, Some(&json!({}))).await?.ok()?;
            let done = self.poll(authz_url, Duration::from_secs(30)).await?;
            if done["status"] != "valid" {
                return Err(protocol(format!(
                    "authorization ended {}: {}",
                    done["status"], done
                )));
            }
        }
        Ok(())
    }
}

/// The ARI certID (RFC 9773 §4.1) of the leaf of `chain_pem`.
pub fn cert_id(chain_pem: &str) -> Result<String, ClientError> {
    use rustls_pki_types::pem::PemObject;
    let leaf = rustls_pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .ok_or_else(|| protocol("no certificate in the chain"))?
        .map_err(protocol)?;
    crate::acme::renewal::CertId::of_certificate(&leaf)
        .map(|id| id.to_string())
        .ok_or_else(|| protocol("the certificate has no Authority Key Identifier, so no certID"))
}

/// A P-256 key (PKCS#8 DER) and a CSR (DER) naming `identifiers` as SANs, with no subject.
pub fn csr_p256(identifiers: &[Identifier]) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
    let key = PrivateKey::generate(KeyType::P256).map_err(protocol)?;
    let pkcs8 = key.pkcs8_der().to_vec();
    Ok((csr_for_key(&pkcs8, identifiers)?, pkcs8))
}

/// A CSR for the P-256 key `pkcs8` (DER) naming `identifiers`.
pub fn csr_for_key(pkcs8: &[u8], identifiers: &[Identifier]) -> Result<Vec<u8>, ClientError> {
    let key = PrivateKey::from_pkcs8(KeyType::P256, pkcs8.to_vec()).map_err(protocol)?;
    let mut dns_names = Vec::new();
    let mut ip_addrs = Vec::new();
    for id in identifiers {
        match id.kind {
            crate::acme::IdentifierType::Dns => dns_names.push(id.value.clone()),
            crate::acme::IdentifierType::Ip => ip_addrs.push(id.value.parse().map_err(|e| {
                protocol(format!(
                    "identifier {:?} is not an IP address: {e}",
                    id.value
                ))
            })?),
        }
    }
    key.csr(None, &dns_names, &ip_addrs).map_err(protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every account key algorithm signs a JWS that the gateway's own verifier (ring) accepts
    /// with the key's public JWK, and rejects once the payload changes.
    #[test]
    fn every_account_key_signs_what_the_gateway_verifies() {
        for (alg, name) in [
            (KeyAlg::Es256, "ES256"),
            (KeyAlg::Es384, "ES384"),
            (KeyAlg::Rs256, "RS256"),
            (KeyAlg::EdDsa, "EdDSA"),
        ] {
            let key = AccountKey::generate(alg).unwrap();
            assert_eq!(key.alg(), name);
            let header = json!({"alg": name, "jwk": key.jwk(), "nonce": "n", "url": "https://x/acme/new-acct"});
            let body = key.sign(&header, br#"{"termsOfServiceAgreed":true}"#);
            let jws = crate::jws::Jws::parse(&body).unwrap();
            jws.verify(key.jwk())
                .unwrap_or_else(|p| panic!("{name}: {}", p.detail));
            let mut forged: Value = serde_json::from_slice(&body).unwrap();
            forged["payload"] = Value::from(B64.encode(b"{}"));
            let forged = crate::jws::Jws::parse(forged.to_string().as_bytes()).unwrap();
            assert!(forged.verify(key.jwk()).is_err(), "{name}");
            crate::jws::thumbprint(key.jwk()).unwrap();
        }
    }

    /// The External Account Binding the client builds (HMAC with ring) is one the gateway
    /// accepts with the right EAB key and refuses with another.
    #[test]
    fn eab_binds_the_account_key_with_an_hmac_the_gateway_checks() {
        let key = AccountKey::generate(KeyAlg::Es256).unwrap();
        let url = "https://x/acme/new-acct";
        let hmac = [7u8; 32];
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hmac);
        let jwk = Value::Object(key.jwk().clone()).to_string();
        let eab = sign_with(
            |input| ring::hmac::sign(&mac, input).as_ref().to_vec(),
            &json!({"alg": "HS256", "kid": "kid-1", "url": url}),
            jwk.as_bytes(),
        );
        let eab: Value = serde_json::from_slice(&eab).unwrap();
        let kid = crate::jws::verify_eab(&eab, url, key.jwk(), |kid| {
            (kid == "kid-1").then(|| hmac.to_vec())
        })
        .unwrap();
        assert_eq!(kid, "kid-1");
        assert!(crate::jws::verify_eab(&eab, url, key.jwk(), |_| Some(vec![8u8; 32])).is_err());
    }
}
