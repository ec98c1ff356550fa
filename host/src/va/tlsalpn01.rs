//! tls-alpn-01 (RFC 8737): a TLS handshake negotiating ALPN `acme-tls/1` must present a
//! certificate for exactly the identifier carrying a critical acmeIdentifier extension with
//! SHA-256 of the key authorization. IP identifiers use the reverse-DNS name as SNI
//! (RFC 8738 §6).

use std::net::IpAddr;
use std::sync::Arc;

use bcder::decode::Content;
use bcder::{Mode, OctetString, Tag};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring as ring_provider, WebPkiSupportedAlgorithms};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, PeerMisbehaved, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;
use x509_certificate::X509Certificate;

use crate::acme::Problem;

use super::{key_authorization_digest, Target, Va, ValidationRequest};

/// RFC 8737 §6.2: the ALPN protocol ID.
pub(super) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// RFC 8737 §6.1: id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31, as DER OID content octets.
const OID_ACME_IDENTIFIER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f];
/// RFC 5280 §4.2.1.6: id-ce-subjectAltName, 2.5.29.17.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// A TLS client that accepts any server certificate (RFC 8737 proves control through the
/// acmeIdentifier extension, not a chain) but still checks the handshake signature against the
/// presented certificate's key. Session resumption is off: a resumed session would replay an
/// earlier certificate instead of proving the current key authorization.
/// The plugins' TLS probe uses the same client, with the ALPN protocols the plugin asks for.
pub(crate) fn client_config(alpn: &[&[u8]]) -> std::io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(ring_provider::default_provider());
    let verifier = Arc::new(AnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

pub(super) async fn validate(
    va: &Va,
    req: &ValidationRequest,
    target: &Target,
) -> Result<(), Problem> {
    let sni = match target {
        Target::Dns(name) => name.clone(),
        Target::Ip(ip) => reverse_dns_name(*ip),
    };
    let server_name = ServerName::try_from(sni.clone())
        .map_err(|e| Problem::malformed(format!("{sni} cannot be sent as SNI: {e}")))?;
    let (tcp, peer) = va.connect(target, va.settings.tlsalpn01_port).await?;
    let tls = TlsConnector::from(va.tls_alpn.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| {
            Problem::tls(format!(
                "TLS handshake with {peer} (SNI {sni}, ALPN acme-tls/1) failed: {e}"
            ))
        })?;
    let (_, session) = tls.get_ref();
    if session.alpn_protocol() != Some(ACME_TLS_ALPN) {
        return Err(Problem::tls(format!(
            "{peer} (SNI {sni}) did not negotiate the ALPN protocol acme-tls/1 (RFC 8737 §3)"
        )));
    }
    let leaf = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| Problem::tls(format!("{peer} (SNI {sni}) presented no certificate")))?;
    check_certificate(leaf.as_ref(), target, &req.key_authorization).map_err(|p| {
        Problem::new(
            p.kind,
            format!("certificate from {peer} (SNI {sni}): {}", p.detail),
        )
    })
}

/// RFC 8738 §6: `d.c.b.a.in-addr.arpa` for IPv4, the nibble form under `ip6.arpa` for IPv6.
fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// One subjectAltName entry (RFC 5280 §4.2.1.6) as far as tls-alpn-01 cares.
#[derive(Debug, PartialEq, Eq)]
enum GeneralName {
    Dns(String),
    Ip(Vec<u8>),
    Other(u32),
}

impl std::fmt::Display for GeneralName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GeneralName::Dns(name) => write!(f, "DNS:{name}"),
            GeneralName::Ip(bytes) => match ip_from_octets(bytes) {
                Some(ip) => write!(f, "IP:{ip}"),
                None => write!(f, "IP:<{} octets>", bytes.len()),
            },
            GeneralName::Other(tag) => write!(f, "[{tag}]"),
        }
    }
}

fn ip_from_octets(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// RFC 8737 §3 checks on the leaf certificate: exactly one subjectAltName, equal to the
/// identifier, and a critical acmeIdentifier extension holding SHA-256(key authorization).
fn check_certificate(der: &[u8], target: &Target, key_authorization: &str) -> Result<(), Problem> {
    let cert = X509Certificate::from_der(der)
        .map_err(|e| Problem::incorrect_response(format!("cannot be parsed: {e}")))?;
    let san = single_extension(&cert, OID_SUBJECT_ALT_NAME, "subjectAltName")?;
    let names = parse_general_names(&san.value.to_bytes()).map_err(|e| {
        Problem::incorrect_response(format!("the subjectAltName extension is malformed: {e}"))
    })?;
    let matches = match (names.as_slice(), target) {
        ([GeneralName::Dns(name)], Target::Dns(want)) => name.eq_ignore_ascii_case(want),
        ([GeneralName::Ip(bytes)], Target::Ip(want)) => ip_from_octets(bytes) == Some(*want),
        _ => false,
    };
    if !matches {
        let listed: Vec<String> = names.iter().map(ToString::to_string).collect();
        return Err(Problem::unauthorized(format!(
            "the subjectAltName must be exactly {target} (RFC 8737 §3), found [{}]",
            listed.join(", ")
        )));
    }

    let ext = single_extension(&cert, OID_ACME_IDENTIFIER, "acmeIdentifier")?;
    if ext.critical != Some(true) {
        return Err(Problem::unauthorized(
            "the acmeIdentifier extension is not marked critical (RFC 8737 §3)",
        ));
    }
    let value = ext.value.to_bytes();
    let digest = Mode::Der
        .decode(value.as_ref(), OctetString::take_from)
        .map(|octets| octets.to_bytes())
        .map_err(|_| {
            Problem::unauthorized(
                "the acmeIdentifier extension value is not a DER OCTET STRING (RFC 8737 §3)",
            )
        })?;
    let expected = key_authorization_digest(key_authorization);
    if digest.as_ref() != expected.as_ref() {
        return Err(Problem::unauthorized(format!(
            "the acmeIdentifier extension holds {}, expected SHA-256 of the key authorization {}",
            crate::hex::lower(&digest),
            crate::hex::lower(expected.as_ref())
        )));
    }
    Ok(())
}

/// The one extension with `oid`; absence or repetition is an error.
fn single_extension<'a>(
    cert: &'a X509Certificate,
    oid: &[u8],
    label: &str,
) -> Result<&'a x509_certificate::rfc5280::Extension, Problem> {
    let mut found = cert.iter_extensions().filter(|e| e.id.as_ref() == oid);
    match (found.next(), found.next()) {
        (Some(ext), None) => Ok(ext),
        (None, _) => Err(Problem::unauthorized(format!(
            "no {label} extension (RFC 8737 §3)"
        ))),
        (Some(_), Some(_)) => Err(Problem::unauthorized(format!(
            "more than one {label} extension"
        ))),
    }
}

/// `GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName`; dNSName is `[2] IA5String`,
/// iPAddress `[7] OCTET STRING`, both implicitly tagged.
fn parse_general_names(der: &[u8]) -> Result<Vec<GeneralName>, String> {
    Mode::Der
        .decode(der, |cons| {
            cons.take_sequence(|cons| {
                let mut names = Vec::new();
                while let Some(name) = cons.take_opt_value(|tag, content| {
                    if tag == Tag::CTX_2 || tag == Tag::ctx(7) {
                        let bytes = content.as_primitive()?.take_all()?;
                        return Ok(if tag == Tag::CTX_2 {
                            GeneralName::Dns(String::from_utf8_lossy(&bytes).into_owned())
                        } else {
                            GeneralName::Ip(bytes.to_vec())
                        });
                    }
                    match content {
                        Content::Primitive(p) => p.skip_all()?,
                        Content::Constructed(c) => c.skip_all()?,
                    }
                    Ok(GeneralName::Other(tag.number()))
                })? {
                    names.push(name);
                }
                Ok(names)
            })
        })
        .map_err(|e| e.to_string())
}

/// Accepts every certificate, verifies handshake signatures with its key (see
/// [`client_config`]).
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(&self.algorithms, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // RFC 8446 §4.2.3: PKCS#1 v1.5 and SHA-1 schemes may not sign TLS 1.3 handshakes.
        if !allowed_in_tls13(dss.scheme) {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        verify_signature(&self.algorithms, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn allowed_in_tls13(scheme: SignatureScheme) -> bool {
    matches!(
        scheme,
        SignatureScheme::ECDSA_NISTP256_SHA256
            | SignatureScheme::ECDSA_NISTP384_SHA384
            | SignatureScheme::ECDSA_NISTP521_SHA512
            | SignatureScheme::RSA_PSS_SHA256
            | SignatureScheme::RSA_PSS_SHA384
            | SignatureScheme::RSA_PSS_SHA512
            | SignatureScheme::ED25519
            | SignatureScheme::ED448
    )
}

/// Verifies a handshake signature with the certificate's subjectPublicKeyInfo directly.
/// rustls' own helpers parse the certificate with webpki, which rejects the (critical, and to
/// webpki unknown) acmeIdentifier extension, so the key is taken out with x509-certificate.
fn verify_signature(
    algorithms: &WebPkiSupportedAlgorithms,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let bad_encoding = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    let parsed = X509Certificate::from_der(cert.as_ref()).map_err(|_| bad_encoding())?;
    let spki = &parsed.tbs_certificate().subject_public_key_info;
    let algorithm_id = algorithm_identifier_content(&spki.algorithm).ok_or_else(bad_encoding)?;
    let public_key = spki.subject_public_key.octet_bytes();
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algs)| *algs)
        .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    let valid = candidates
        .iter()
        .filter(|alg| alg.public_key_alg_id().as_ref() == algorithm_id.as_slice())
        .any(|alg| {
            alg.verify_signature(&public_key, message, dss.signature())
                .is_ok()
        });
    if valid {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature,
        ))
    }
}

/// The DER content octets of an AlgorithmIdentifier (without the SEQUENCE header), the form
/// `SignatureVerificationAlgorithm::public_key_alg_id` uses.
fn algorithm_identifier_content(
    algorithm: &x509_certificate::rfc5280::AlgorithmIdentifier,
) -> Option<Vec<u8>> {
    use bcder::encode::Values;
    let mut der = Vec::new();
    algorithm.write_encoded(Mode::Der, &mut der).ok()?;
    Mode::Der
        .decode(der.as_slice(), |cons| {
            cons.take_sequence(|c| c.capture_all())
        })
        .ok()
        .map(|captured| captured.as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::{ChallengeType, Identifier, ProblemType};
    use crate::va::test_support::{
        acme_identifier_value, build_cert, refused_port, request, settings, tls_server, AcmeCert,
        San,
    };
    use acmegate_testkit::dns::TestDnsServer;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const KEY_AUTHZ: &str = "tok.thumbprint";
    const ALPN: &[&[u8]] = &[ACME_TLS_ALPN];
    const ALL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];

    async fn run(
        spec: &AcmeCert,
        alpn: &[&[u8]],
        identifier: Identifier,
    ) -> (Result<(), Problem>, Vec<Option<String>>) {
        let (port, sni) = tls_server(spec, alpn, ALL_VERSIONS).await;
        let dns = TestDnsServer::start().await.unwrap();
        let va = Va::new(settings(&dns, 0, port)).unwrap();
        let outcome = va
            .validate(&request(identifier, ChallengeType::TlsAlpn01, KEY_AUTHZ))
            .await;
        let seen = sni.lock().unwrap().clone();
        (outcome, seen)
    }

    #[tokio::test]
    async fn valid_certificate_passes_with_the_name_as_sni() {
        let spec = AcmeCert::valid(San::Dns("www.example.test"), KEY_AUTHZ);
        let (outcome, sni) = run(&spec, ALPN, Identifier::dns("www.example.test")).await;
        outcome.unwrap();
        assert_eq!(sni, [Some("www.example.test".to_owned())]);
    }

    #[tokio::test]
    async fn tls12_handshake_signatures_are_verified_too() {
        let spec = AcmeCert::valid(San::Dns("a.test"), KEY_AUTHZ);
        let (port, _) = tls_server(&spec, ALPN, &[&rustls::version::TLS12]).await;
        let dns = TestDnsServer::start().await.unwrap();
        let va = Va::new(settings(&dns, 0, port)).unwrap();
        va.validate(&request(
            Identifier::dns("a.test"),
            ChallengeType::TlsAlpn01,
            KEY_AUTHZ,
        ))
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn ip_identifiers_use_reverse_dns_sni_and_an_ip_san() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let spec = AcmeCert::valid(San::Ip(ip), KEY_AUTHZ);
        let (outcome, sni) = run(&spec, ALPN, Identifier::ip(ip)).await;
        outcome.unwrap();
        assert_eq!(sni, [Some("1.0.0.127.in-addr.arpa".to_owned())]);

        // A dNSName for an ip identifier is not the identifier.
        let spec = AcmeCert::valid(San::Dns("127.0.0.1"), KEY_AUTHZ);
        let (outcome, _) = run(&spec, ALPN, Identifier::ip(ip)).await;
        assert_eq!(outcome.unwrap_err().kind, ProblemType::Unauthorized);
    }

    #[test]
    fn reverse_names_follow_rfc_8738() {
        assert_eq!(
            reverse_dns_name(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            "1.2.0.192.in-addr.arpa"
        );
        let v6: Ipv6Addr = "2001:db8::567:89ab".parse().unwrap();
        assert_eq!(
            reverse_dns_name(IpAddr::V6(v6)),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[tokio::test]
    async fn a_server_without_acme_tls_alpn_fails_with_tls() {
        let spec = AcmeCert::valid(San::Dns("a.test"), KEY_AUTHZ);
        // No ALPN support at all: the handshake completes without a protocol.
        let (outcome, _) = run(&spec, &[], Identifier::dns("a.test")).await;
        let p = outcome.unwrap_err();
        assert_eq!(p.kind, ProblemType::Tls);
        assert!(p.detail.contains("did not negotiate"), "{}", p.detail);
        // Other protocols only: the server refuses the handshake.
        let (outcome, _) = run(&spec, &[b"h2"], Identifier::dns("a.test")).await;
        let p = outcome.unwrap_err();
        assert_eq!(p.kind, ProblemType::Tls);
        assert!(p.detail.contains("handshake"), "{}", p.detail);
    }

    #[tokio::test]
    async fn wrong_digest_is_unauthorized() {
        let spec = AcmeCert {
            sans: vec![San::Dns("a.test")],
            acme_identifier: Some((true, acme_identifier_value("other.thumbprint"))),
        };
        let (outcome, _) = run(&spec, ALPN, Identifier::dns("a.test")).await;
        let p = outcome.unwrap_err();
        assert_eq!(p.kind, ProblemType::Unauthorized);
        assert!(p.detail.contains("expected SHA-256"), "{}", p.detail);
    }

    #[tokio::test]
    async fn non_critical_extension_is_unauthorized() {
        let spec = AcmeCert {
            sans: vec![San::Dns("a.test")],
            acme_identifier: Some((false, acme_identifier_value(KEY_AUTHZ))),
        };
        let (outcome, _) = run(&spec, ALPN, Identifier::dns("a.test")).await;
        let p = outcome.unwrap_err();
        assert_eq!(p.kind, ProblemType::Unauthorized);
        assert!(p.detail.contains("not marked critical"), "{}", p.detail);
    }

    #[tokio::test]
    async fn extra_or_wrong_san_is_unauthorized() {
        let spec = AcmeCert {
            sans: vec![San::Dns("a.test"), San::Dns("b.test")],
            acme_identifier: Some((true, acme_identifier_value(KEY_AUTHZ))),
        };
        let (outcome, _) = run(&spec, ALPN, Identifier::dns("a.test")).await;
        let p = outcome.unwrap_err();
        assert_eq!(p.kind, ProblemType::Unauthorized);
        assert!(
            p.detail.contains("[DNS:a.test, DNS:b.test]"),
            "{}",
            p.detail
        );

        let spec = AcmeCert::valid(San::Dns("b.test"), KEY_AUTHZ);
        let (outcome, _) = run(&spec, ALPN, Identifier::dns("a.test")).await;
        assert_eq!(outcome.unwrap_err().kind, ProblemType::Unauthorized);
    }

    #[test]
    fn certificate_checks_without_a_network() {
        let target = Target::Dns("a.test".into());
        let (good, _) = build_cert(&AcmeCert::valid(San::Dns("A.Test"), KEY_AUTHZ));
        check_certificate(&good, &target, KEY_AUTHZ).unwrap();

        let (no_ext, _) = build_cert(&AcmeCert {
            sans: vec![San::Dns("a.test")],
            acme_identifier: None,
        });
        let p = check_certificate(&no_ext, &target, KEY_AUTHZ).unwrap_err();
        assert!(p.detail.contains("no acmeIdentifier"), "{}", p.detail);

        let (no_san, _) = build_cert(&AcmeCert {
            sans: vec![],
            acme_identifier: Some((true, acme_identifier_value(KEY_AUTHZ))),
        });
        let p = check_certificate(&no_san, &target, KEY_AUTHZ).unwrap_err();
        assert!(p.detail.contains("no subjectAltName"), "{}", p.detail);

        // The raw digest without its OCTET STRING wrapper is not the RFC 8737 encoding.
        let raw = ring::digest::digest(&ring::digest::SHA256, KEY_AUTHZ.as_bytes());
        let (unwrapped, _) = build_cert(&AcmeCert {
            sans: vec![San::Dns("a.test")],
            acme_identifier: Some((true, raw.as_ref().to_vec())),
        });
        let p = check_certificate(&unwrapped, &target, KEY_AUTHZ).unwrap_err();
        assert_eq!(p.kind, ProblemType::Unauthorized);

        let p = check_certificate(b"not a certificate", &target, KEY_AUTHZ).unwrap_err();
        assert_eq!(p.kind, ProblemType::IncorrectResponse);
    }

    #[tokio::test]
    async fn connection_refused_is_connection() {
        let dns = TestDnsServer::start().await.unwrap();
        let va = Va::new(settings(&dns, 0, refused_port().await)).unwrap();
        let p = va
            .validate(&request(
                Identifier::dns("a.test"),
                ChallengeType::TlsAlpn01,
                KEY_AUTHZ,
            ))
            .await
            .unwrap_err();
        assert_eq!(p.kind, ProblemType::Connection);
    }
}
