//! A uPKI CA test peer on real ZeroMQ sockets, behaving as docs/upki.md describes the
//! upstream `upki-ca` on the wire: a REP socket on the main port and one on the registration
//! port (main + 1), one JSON frame per message, `{"TASK", "params"}` requests, `ANSWER` /
//! `UPKI ERROR` replies with bracketed codes, serials as JSON integers of up to 160 bits, and
//! the quirks (bare-CN `dn`, newest-per-CN revocation, CSRs without a CN refused, reason
//! names, leaf without chain, a CRL without per-entry reasons). A knob makes it silent, so
//! that timeouts can be tested.
//!
//! The real CA is Python and cannot run here (no network to fetch it); this peer stands in
//! for it, with real sockets and real certificates (rcgen), so the connector is tested over
//! the same bytes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PublicKeyData, RevocationReason, RevokedCertParams, SanType, SerialNumber, SignatureAlgorithm,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The reason names the CA takes, in RFC 5280 code order (7 is unused).
const REASONS: [(&str, RevocationReason); 10] = [
    ("unspecified", RevocationReason::Unspecified),
    ("keyCompromise", RevocationReason::KeyCompromise),
    ("cACompromise", RevocationReason::CaCompromise),
    ("affiliationChanged", RevocationReason::AffiliationChanged),
    ("superseded", RevocationReason::Superseded),
    (
        "cessationOfOperation",
        RevocationReason::CessationOfOperation,
    ),
    ("certificateHold", RevocationReason::CertificateHold),
    ("removeFromCRL", RevocationReason::RemoveFromCrl),
    ("privilegeWithdrawn", RevocationReason::PrivilegeWithdrawn),
    ("aACompromise", RevocationReason::AaCompromise),
];

/// The profiles the CA ships: (name, EKUs, days).
const PROFILES: [(&str, &[ExtendedKeyUsagePurpose], i64); 6] = [
    ("server", &[ExtendedKeyUsagePurpose::ServerAuth], 60),
    (
        "webapp",
        &[
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        60,
    ),
    ("user", &[ExtendedKeyUsagePurpose::ClientAuth], 30),
    (
        "laptop",
        &[
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::EmailProtection,
        ],
        30,
    ),
    ("admin", &[ExtendedKeyUsagePurpose::ClientAuth], 365),
    (
        "ra",
        &[
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        365,
    ),
];

/// Names the CA refuses to certify.
const RESERVED: [&str; 4] = ["localhost", "local", "invalid", "test"];

/// One certificate the CA issued.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cn: String,
    pub serial: Vec<u8>,
    pub profile: String,
    pub revoked: Option<&'static str>,
}

struct CaState {
    key: KeyPair,
    params: CertificateParams,
    pem: String,
    issued: Vec<Issued>,
    /// What `get_crl` serves: the CRL of the last `generate_crl` (or of start-up).
    stored_crl: Vec<u8>,
    crl_number: u64,
    seed: String,
    registered: BTreeMap<String, Value>,
    /// `register` requests answered, right seed or not.
    registrations: u64,
}

/// A running peer. Dropping it stops its sockets.
pub struct UpkiPeer {
    /// `tcp://127.0.0.1:<port>` of the main socket.
    pub main: String,
    /// `tcp://127.0.0.1:<port + 1>` of the registration socket.
    pub registration: String,
    state: Arc<Mutex<CaState>>,
    silent: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// A CSR's P-256 subject key, as rcgen signs it: the uncompressed point and its algorithm.
struct CsrKey {
    point: Vec<u8>,
}

impl CsrKey {
    /// The key of a DER SubjectPublicKeyInfo; only P-256, which every client here uses.
    fn from_spki(spki: &[u8]) -> Option<CsrKey> {
        let key = openssl::pkey::PKey::public_key_from_der(spki).ok()?;
        let ec = key.ec_key().ok()?;
        if ec.group().curve_name() != Some(openssl::nid::Nid::X9_62_PRIME256V1) {
            return None;
        }
        let mut ctx = openssl::bn::BigNumContext::new().ok()?;
        let point = ec
            .public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .ok()?;
        Some(CsrKey { point })
    }
}

impl PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

fn answer(data: Value) -> String {
    json!({"EVENT": "ANSWER", "DATA": data}).to_string()
}

fn error(code: u32, text: &str) -> String {
    json!({"EVENT": "UPKI ERROR", "MSG": format!("[{code}] {text}")}).to_string()
}

/// Decimal digits of a big-endian unsigned integer (serials exceed u128).
pub fn decimal(bytes: &[u8]) -> String {
    let mut digits = Vec::new();
    let mut n: Vec<u8> = bytes.to_vec();
    while n.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(char::from(b'0' + rem as u8));
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.iter().rev().collect()
}

fn pem_to_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem.split(&begin).nth(1)?.split(&end).next()?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

impl CaState {
    fn new(seed: &str) -> CaState {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "uPKI Test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        let mut state = CaState {
            key,
            params,
            pem,
            issued: Vec::new(),
            stored_crl: Vec::new(),
            crl_number: 0,
            seed: seed.into(),
            registered: BTreeMap::new(),
            registrations: 0,
        };
        state.stored_crl = state.build_crl();
        state
    }

    fn build_crl(&mut self) -> Vec<u8> {
        self.crl_number += 1;
        let now = OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(7),
            crl_number: SerialNumber::from(self.crl_number),
            issuing_distribution_point: None,
            revoked_certs: self
                .issued
                .iter()
                .filter(|c| c.revoked.is_some())
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&c.serial),
                    revocation_time: now,
                    // The real CA writes no per-entry reason codes.
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_params(&self.params, &self.key);
        crl.signed_by(&issuer).expect("CRL").der().to_vec()
    }

    /// Signs `spki` for `cn` and `sans` under `profile`; returns the reply DATA.
    fn certify(
        &mut self,
        spki: Vec<u8>,
        cn: &str,
        sans: Vec<SanType>,
        profile: &str,
    ) -> Result<(String, Vec<u8>), String> {
        let Some((_, ekus, days)) = PROFILES.iter().find(|(n, _, _)| *n == profile) else {
            return Err(error(500, "Profile not found"));
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = ekus.to_vec();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(*days);
        // 160-bit serials: positive, 20 octets.
        let mut serial = [0u8; 20];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .expect("random serial");
        serial[0] = (serial[0] & 0x7f) | 0x40;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let key = CsrKey::from_spki(&spki).ok_or_else(|| error(400, "Unsupported key type"))?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| error(300, &format!("Unable to sign: {e}")))?;
        self.issued.push(Issued {
            cn: cn.into(),
            serial: serial.to_vec(),
            profile: profile.into(),
            revoked: None,
        });
        Ok((cert.pem(), serial.to_vec()))
    }

    fn sign(&mut self, params: &Value) -> String {
        let Some(pem) = params["csr"].as_str() else {
            return error(200, "Missing mandatory parameter: csr");
        };
        let profile = params["profile"].as_str().unwrap_or("server");
        let Some(der) = pem_to_der(pem, "CERTIFICATE REQUEST") else {
            return error(300, "Unable to load CSR");
        };
        // Like the real CA, the CSR's signature is not checked.
        let Some(csr) = ParsedCsr::from_der(&der) else {
            return error(300, "Unable to load CSR");
        };
        let Some(cn) = csr.common_name.clone() else {
            return error(300, "CSR has no Common Name");
        };
        if let Some(bad) = csr
            .dns_names
            .iter()
            .chain(std::iter::once(&cn))
            .find(|n| RESERVED.contains(&n.as_str()) || n.ends_with(".localhost"))
        {
            return error(200, &format!("Reserved name refused: {bad}"));
        }
        let mut sans: Vec<SanType> = csr
            .dns_names
            .iter()
            .filter_map(|d| d.clone().try_into().ok().map(SanType::DnsName))
            .collect();
        sans.extend(csr.ip_addrs.iter().map(|ip| SanType::IpAddress(*ip)));
        match self.certify(csr.spki_der, &cn, sans, profile) {
            Ok((pem, serial)) => format!(
                r#"{{"EVENT": "ANSWER", "DATA": {{"certificate": {}, "serial": {}}}}}"#,
                Value::from(pem),
                decimal(&serial)
            ),
            Err(e) => e,
        }
    }

    fn revoke(&mut self, params: &Value) -> String {
        let Some(dn) = params["dn"].as_str() else {
            return error(200, "Missing mandatory parameter: dn");
        };
        let reason = params["reason"].as_str().unwrap_or("unspecified");
        let Some((name, _)) = REASONS.iter().find(|(n, _)| *n == reason) else {
            return error(900, &format!("Invalid revocation reason: {reason}"));
        };
        // Certificates are kept by CN: only the newest one of a CN can be reached.
        let Some(newest) = self.issued.iter_mut().rev().find(|c| c.cn == dn) else {
            return error(300, "Certificate not found");
        };
        if newest.revoked.is_some() {
            return error(900, "Certificate already revoked");
        }
        newest.revoked = Some(name);
        answer(Value::Bool(true))
    }

    fn view(&self, params: &Value) -> String {
        let Some(dn) = params["dn"].as_str() else {
            return error(200, "Missing mandatory parameter: dn");
        };
        match self.issued.iter().rev().find(|c| c.cn == dn) {
            Some(c) => format!(
                r#"{{"EVENT": "ANSWER", "DATA": {{"dn": {}, "profile": {}, "serial": {}, "state": {}}}}}"#,
                Value::from(format!("/CN={}", c.cn)),
                Value::from(c.profile.clone()),
                decimal(&c.serial),
                Value::from(if c.revoked.is_some() {
                    "revoked"
                } else {
                    "valid"
                })
            ),
            None => error(300, "Certificate not found"),
        }
    }

    fn main_task(&mut self, task: &str, params: &Value) -> String {
        use base64::Engine;
        let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
        match task {
            "get_ca" => answer(Value::from(self.pem.clone())),
            "sign" => self.sign(params),
            "revoke" => self.revoke(params),
            "view" => self.view(params),
            "generate_crl" => {
                self.stored_crl = self.build_crl();
                answer(Value::from(b64(&self.stored_crl)))
            }
            "get_crl" => answer(Value::from(b64(&self.stored_crl))),
            "list_profiles" => answer(json!([
                "ca", "ra", "server", "webapp", "laptop", "user", "admin"
            ])),
            "renew" | "ocsp_check" => error(700, &format!("Task {task} failed")),
            other => error(700, &format!("Unknown task: {other}")),
        }
    }

    fn registration_task(&mut self, task: &str, params: &Value) -> String {
        match task {
            "register" => {
                self.registrations += 1;
                if params["seed"].as_str() != Some(self.seed.as_str()) {
                    return error(700, "Invalid registration seed");
                }
                let Some(cn) = params["cn"].as_str() else {
                    return error(200, "Missing mandatory parameter: cn");
                };
                let profile = params["profile"].as_str().unwrap_or("ra");
                let node_key = KeyPair::generate().expect("node key");
                let sans = vec![SanType::DnsName(
                    cn.to_string().try_into().expect("cn is a DNS name"),
                )];
                match self.certify(node_key.subject_public_key_info(), cn, sans, profile) {
                    Ok((certificate, _)) => {
                        let data = json!({
                            "status": "registered",
                            "cn": cn,
                            "profile": profile,
                            "certificate": certificate,
                            "private_key": node_key.serialize_pem(),
                            "ca_certificate": self.pem,
                        });
                        self.registered
                            .insert(cn.into(), json!({"cn": cn, "profile": profile}));
                        answer(data)
                    }
                    Err(e) => e,
                }
            }
            "status" => match params["cn"].as_str().and_then(|cn| self.registered.get(cn)) {
                Some(node) => answer(json!({"status": "registered", "node": node})),
                None => answer(json!({"status": "not_registered"})),
            },
            other => error(700, &format!("Unknown task: {other}")),
        }
    }
}

/// What the CA reads from a CSR: subject CN, SANs and key, without checking the signature.
struct ParsedCsr {
    common_name: Option<String>,
    dns_names: Vec<String>,
    ip_addrs: Vec<std::net::IpAddr>,
    spki_der: Vec<u8>,
}

impl ParsedCsr {
    fn from_der(der: &[u8]) -> Option<ParsedCsr> {
        let req = openssl::x509::X509Req::from_der(der).ok()?;
        let common_name = req
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok());
        let (mut dns_names, mut ip_addrs) = (Vec::new(), Vec::new());
        // X509Req exposes no SAN accessor; a certificate made from the request does.
        if let Ok(exts) = req.extensions() {
            let mut b = openssl::x509::X509::builder().ok()?;
            for ext in exts {
                b.append_extension(ext).ok()?;
            }
            let x = b.build();
            for name in x.subject_alt_names().into_iter().flatten() {
                if let Some(d) = name.dnsname() {
                    dns_names.push(d.to_string());
                } else if let Some(ip) = name.ipaddress() {
                    match ip.len() {
                        4 => ip_addrs.push(std::net::IpAddr::from(<[u8; 4]>::try_from(ip).ok()?)),
                        16 => ip_addrs.push(std::net::IpAddr::from(<[u8; 16]>::try_from(ip).ok()?)),
                        _ => return None,
                    }
                }
            }
        }
        let spki_der = req.public_key().ok()?.public_key_to_der().ok()?;
        Some(ParsedCsr {
            common_name,
            dns_names,
            ip_addrs,
            spki_der,
        })
    }
}

/// Parses a request frame; `Err` is the reply for a malformed one.
fn parse(frame: &[u8]) -> Result<(String, Value), String> {
    let invalid = |e: String| json!({"EVENT": "UPKI ERROR", "MSG": format!("Invalid JSON: {e}")});
    let v: Value = serde_json::from_slice(frame).map_err(|e| invalid(e.to_string()).to_string())?;
    let task = v["TASK"]
        .as_str()
        .ok_or_else(|| error(200, "Missing TASK"))?
        .to_string();
    let params = match &v["params"] {
        Value::Null => json!({}),
        p => p.clone(),
    };
    Ok((task, params))
}

impl UpkiPeer {
    /// Starts the peer on two free consecutive ports of 127.0.0.1, with registration `seed`.
    pub fn start(seed: &str) -> UpkiPeer {
        let ctx = zmq::Context::new();
        let (main_sock, reg_sock, port) = (0..50)
            .find_map(|_| {
                let port = crate::support::free_port();
                let main = ctx.socket(zmq::REP).ok()?;
                main.bind(&format!("tcp://127.0.0.1:{port}")).ok()?;
                let reg = ctx.socket(zmq::REP).ok()?;
                reg.bind(&format!("tcp://127.0.0.1:{}", port + 1)).ok()?;
                Some((main, reg, port))
            })
            .expect("two free consecutive ports");
        let mut peer = UpkiPeer {
            main: format!("tcp://127.0.0.1:{port}"),
            registration: format!("tcp://127.0.0.1:{}", port + 1),
            state: Arc::new(Mutex::new(CaState::new(seed))),
            silent: Arc::default(),
            requests: Arc::default(),
            stop: Arc::default(),
            threads: Vec::new(),
        };
        peer.threads.push(peer.serve(main_sock, true));
        peer.threads.push(peer.serve(reg_sock, false));
        peer
    }

    fn serve(&self, socket: zmq::Socket, main: bool) -> JoinHandle<()> {
        let (state, silent, requests, stop) = (
            self.state.clone(),
            self.silent.clone(),
            self.requests.clone(),
            self.stop.clone(),
        );
        std::thread::spawn(move || {
            socket.set_rcvtimeo(50).expect("rcvtimeo");
            socket.set_linger(0).expect("linger");
            while !stop.load(Ordering::SeqCst) {
                let Ok(frame) = socket.recv_bytes(0) else {
                    continue;
                };
                requests.fetch_add(1, Ordering::SeqCst);
                if silent.load(Ordering::SeqCst) {
                    // A CA that hangs: the request is swallowed. REP must answer before it
                    // can receive again, so it answers into the void once it wakes up.
                    while silent.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let _ = socket.send(error(700, "late answer").as_bytes(), 0);
                    continue;
                }
                let reply = match parse(&frame) {
                    Err(reply) => reply,
                    Ok((task, params)) => {
                        let mut ca = state.lock().expect("peer state");
                        if main {
                            ca.main_task(&task, &params)
                        } else {
                            ca.registration_task(&task, &params)
                        }
                    }
                };
                let _ = socket.send(reply.as_bytes(), 0);
            }
        })
    }

    /// While set, requests get no answer (a CA that hangs).
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
    }

    /// Requests received on both sockets so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// `register` requests received, and the CNs registered.
    pub fn registrations(&self) -> (u64, Vec<String>) {
        let ca = self.state.lock().expect("peer state");
        (ca.registrations, ca.registered.keys().cloned().collect())
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.state.lock().expect("peer state").pem.clone()
    }

    /// Every certificate issued so far, oldest first.
    pub fn issued(&self) -> Vec<Issued> {
        self.state.lock().expect("peer state").issued.clone()
    }
}

impl Drop for UpkiPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.silent.store(false, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request on a fresh REQ socket, as a connector must do it.
    fn call(endpoint: &str, request: &str) -> Option<String> {
        let ctx = zmq::Context::new();
        let req = ctx.socket(zmq::REQ).unwrap();
        req.set_linger(0).unwrap();
        req.set_rcvtimeo(2_000).unwrap();
        req.connect(endpoint).unwrap();
        req.send(request.as_bytes(), 0).unwrap();
        req.recv_string(0).ok().map(|r| r.unwrap())
    }

    /// A PEM CSR with an optional subject CN and dNSName SANs, signed by a fresh P-256 key.
    pub fn csr_pem(cn: Option<&str>, names: &[&str]) -> String {
        use openssl::x509::{extension::SubjectAlternativeName, X509NameBuilder, X509Req};
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let mut b = X509Req::builder().unwrap();
        b.set_pubkey(&key).unwrap();
        if let Some(cn) = cn {
            let mut name = X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", cn).unwrap();
            b.set_subject_name(&name.build()).unwrap();
        }
        let mut san = SubjectAlternativeName::new();
        for n in names {
            san.dns(n);
        }
        let mut exts = openssl::stack::Stack::new().unwrap();
        exts.push(san.build(&b.x509v3_context(None)).unwrap())
            .unwrap();
        b.add_extensions(&exts).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        String::from_utf8(b.build().to_pem().unwrap()).unwrap()
    }

    fn task(endpoint: &str, task: &str, params: Value) -> Value {
        let reply = call(
            endpoint,
            &json!({"TASK": task, "params": params}).to_string(),
        )
        .expect("the peer answers");
        serde_json::from_str(&reply).expect("reply is JSON")
    }

    /// The peer answers as the document says: envelope, codes, quirks, 160-bit serials.
    #[test]
    fn peer_speaks_the_upki_protocol() {
        let peer = UpkiPeer::start("s3cret");
        let ca = task(&peer.main, "get_ca", Value::Null);
        assert_eq!(ca["EVENT"], "ANSWER");
        assert!(ca["DATA"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));

        // A CSR without CN is refused; with one it is signed, the serial a 160-bit integer.
        let no_cn = task(
            &peer.main,
            "sign",
            json!({"csr": csr_pem(None, &["a.example"])}),
        );
        assert_eq!(no_cn["MSG"], "[300] CSR has no Common Name");
        let raw = call(
            &peer.main,
            &json!({"TASK": "sign", "params": {"csr": csr_pem(Some("a.example"), &["a.example"])}})
                .to_string(),
        )
        .unwrap();
        let serial_digits = raw
            .split("\"serial\": ")
            .nth(1)
            .unwrap()
            .trim_end_matches("}}");
        assert!(serial_digits.len() > 39, "beyond u128: {serial_digits}");
        assert!(serial_digits.parse::<u128>().is_err());
        let signed: Value = serde_json::from_str(&raw).unwrap();
        let leaf = signed["DATA"]["certificate"].as_str().unwrap();
        assert_eq!(leaf.matches("BEGIN CERTIFICATE").count(), 1, "leaf alone");
        let x = openssl::x509::X509::from_pem(leaf.as_bytes()).unwrap();
        let ca_x = openssl::x509::X509::from_pem(peer.ca_pem().as_bytes()).unwrap();
        assert!(
            x.verify(&ca_x.public_key().unwrap()).unwrap(),
            "signed by the CA"
        );

        let reserved = task(
            &peer.main,
            "sign",
            json!({"csr": csr_pem(Some("localhost"), &[])}),
        );
        assert!(reserved["MSG"].as_str().unwrap().starts_with("[200]"));
        let profile = task(
            &peer.main,
            "sign",
            json!({"csr": csr_pem(Some("b.example"), &[]), "profile": "nope"}),
        );
        assert_eq!(profile["MSG"], "[500] Profile not found");

        // dn is the bare CN; only the newest certificate of a CN is revoked.
        let slashed = task(&peer.main, "revoke", json!({"dn": "/CN=a.example"}));
        assert_eq!(slashed["MSG"], "[300] Certificate not found");
        task(
            &peer.main,
            "sign",
            json!({"csr": csr_pem(Some("a.example"), &[])}),
        );
        let revoked = task(
            &peer.main,
            "revoke",
            json!({"dn": "a.example", "reason": "keyCompromise"}),
        );
        assert_eq!(revoked["DATA"], true);
        let issued = peer.issued();
        assert_eq!(
            issued.iter().map(|c| c.revoked).collect::<Vec<_>>(),
            [None, Some("keyCompromise")],
            "the newest one"
        );
        let bad_reason = task(
            &peer.main,
            "revoke",
            json!({"dn": "a.example", "reason": "1"}),
        );
        assert!(bad_reason["MSG"].as_str().unwrap().starts_with("[900]"));

        // get_crl serves the stored CRL until generate_crl rebuilds it.
        let crl_of = |v: &Value| {
            use base64::Engine;
            let der = base64::engine::general_purpose::STANDARD
                .decode(v["DATA"].as_str().unwrap())
                .unwrap();
            openssl::x509::X509Crl::from_der(&der).unwrap()
        };
        let stale = crl_of(&task(&peer.main, "get_crl", Value::Null));
        assert!(stale.get_revoked().is_none_or(|r| r.is_empty()));
        let fresh = crl_of(&task(&peer.main, "generate_crl", Value::Null));
        assert_eq!(fresh.get_revoked().unwrap().len(), 1);
        assert_eq!(
            fresh
                .get_revoked()
                .unwrap()
                .iter()
                .next()
                .unwrap()
                .serial_number()
                .to_bn()
                .unwrap()
                .to_vec(),
            issued[1].serial
        );

        // Malformed JSON, and the registration port.
        let junk = call(&peer.main, "{not json").unwrap();
        assert!(junk.contains("Invalid JSON"));
        let wrong = task(
            &peer.registration,
            "register",
            json!({"seed": "guess", "cn": "ra.example"}),
        );
        assert_eq!(wrong["MSG"], "[700] Invalid registration seed");
        let reg = task(
            &peer.registration,
            "register",
            json!({"seed": "s3cret", "cn": "ra.example"}),
        );
        assert_eq!(reg["DATA"]["status"], "registered");
        assert!(reg["DATA"]["private_key"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY"));
        let status = task(&peer.registration, "status", json!({"cn": "ra.example"}));
        assert_eq!(status["DATA"]["status"], "registered");
    }

    /// A silent CA leaves the REQ socket without an answer; the next request on a fresh
    /// socket is served once the CA is back.
    #[test]
    fn silent_peer_times_out_then_recovers() {
        let peer = UpkiPeer::start("seed");
        peer.set_silent(true);
        assert!(
            call(&peer.main, r#"{"TASK": "get_ca"}"#).is_none(),
            "no answer while silent"
        );
        peer.set_silent(false);
        let back = call(&peer.main, r#"{"TASK": "get_ca"}"#).expect("answers again");
        assert!(back.contains("ANSWER"));
        assert!(peer.requests() >= 2);
    }

    #[test]
    fn decimal_handles_160_bit_serials() {
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        assert_eq!(decimal(&[]), "0");
        // 2^159 has 48 digits: beyond u128.
        let mut top = [0u8; 20];
        top[0] = 0x80;
        assert_eq!(
            decimal(&top),
            "730750818665451459101842416358141509827966271488"
        );
    }
}
