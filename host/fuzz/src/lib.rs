//! What more than one fuzz target needs: finalize's CSR check for a fixed order, and DER
//! signing of a fuzzed CertificationRequestInfo with a fixed key.

use std::sync::LazyLock;

use acmegate::acme::Identifier;
use acmegate::authority::issuance::IssueRequest;
use acmegate::authority::orders::check_csr;
use acmegate::ca::{Csr, Profile};
use acmegate::config::Config;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// The built-in default profile, as a gateway with no configuration has it.
static PROFILE: LazyLock<Profile> = LazyLock::new(|| {
    Config::default()
        .profiles()
        .into_iter()
        .next()
        .expect("the built-in default profile")
});

/// The order the CSRs are checked against: the names of the seed requests (corpus/csr).
static ORDER: LazyLock<[Identifier; 2]> = LazyLock::new(|| {
    [
        Identifier::dns("a.example"),
        Identifier::ip("10.0.0.1".parse().expect("an IP address")),
    ]
});

/// finalize's CSR check (`check_csr`) of `der` for [`ORDER`] under [`PROFILE`], the CSR sent
/// base64url as a finalize payload carries it.
pub fn finalize(der: &[u8]) {
    let _ = check_csr(&B64.encode(der), &PROFILE, &*ORDER, |_| false);
}

/// The Ed25519 key that signs fuzzed request infos: fixed, so that the seed infos of
/// corpus/csr_signed can carry its public key. `openssl` makes the same key from
/// `302e020100300506032b657004220420` followed by these 32 bytes (PKCS#8 DER).
pub const SIGNING_SEED: [u8; 32] = [7; 32];

static SIGNER: LazyLock<Ed25519KeyPair> = LazyLock::new(|| {
    Ed25519KeyPair::from_seed_unchecked(&SIGNING_SEED).expect("a 32-byte Ed25519 seed")
});

/// The public key of [`SIGNING_SEED`].
pub fn signing_public_key() -> &'static [u8] {
    SIGNER.public_key().as_ref()
}

/// A CertificationRequest (RFC 2986 §4.2) around `info`, signed with Ed25519 (RFC 8410).
pub fn sign_request_info(info: &[u8]) -> Vec<u8> {
    const ED25519_ALGORITHM: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
    let signature = SIGNER.sign(info);
    let mut bits = vec![0u8];
    bits.extend_from_slice(signature.as_ref());
    let mut content = info.to_vec();
    content.extend_from_slice(&ED25519_ALGORITHM);
    content.extend(tlv(0x03, &bits));
    tlv(0x30, &content)
}

/// One DER TLV with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
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

/// The SubjectPublicKeyInfo (RFC 8410 §4) of [`SIGNING_SEED`]'s key.
pub fn signing_spki() -> Vec<u8> {
    const ED25519_SPKI_PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(signing_public_key());
    spki
}

/// What an issuer connector is asked for [`ORDER`] with a CSR of [`SIGNING_SEED`]'s key: the
/// request its answer is checked against.
pub fn issue_request() -> IssueRequest {
    let (mut dns_names, mut ip_addrs) = (Vec::new(), Vec::new());
    for id in ORDER.iter() {
        match id.value.parse() {
            Ok(ip) => ip_addrs.push(ip),
            Err(_) => dns_names.push(id.value.clone()),
        }
    }
    IssueRequest {
        csr: Csr {
            common_name: None,
            dns_names: dns_names.clone(),
            ip_addrs: ip_addrs.clone(),
            spki_der: signing_spki(),
            der: Vec::new(),
        },
        dns_names,
        ip_addrs,
        profile: PROFILE.clone(),
        order_url: "https://gw.example/acme/order/o-1".into(),
        account_url: "https://gw.example/acme/account/acct-1".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/corpus/{name}", env!("CARGO_MANIFEST_DIR"))).expect("a seed")
    }

    fn check(der: &[u8]) -> Result<Vec<u8>, acmegate::acme::Problem> {
        check_csr(&B64.encode(der), &PROFILE, &*ORDER, |_| false)
    }

    /// The harness signs what the seeds hold so that finalize accepts it: mutations start past
    /// the signature, where `csr_signed` means to be.
    #[test]
    fn signed_seed_infos_pass_finalize_and_its_refusals_are_the_seeds_own() {
        let names = sign_request_info(&seed("csr_signed/names.der"));
        assert_eq!(check(&names).expect("a CSR finalize accepts"), names);
        assert!(check(&sign_request_info(&seed("csr_signed/ip-cn.der"))).is_ok());
        let ca = check(&sign_request_info(&seed("csr_signed/ca-true.der"))).unwrap_err();
        assert!(ca.detail.contains("CA certificate"), "{}", ca.detail);
        let email = check(&sign_request_info(&seed("csr_signed/other-san.der"))).unwrap_err();
        assert!(
            email.detail.contains("other than dNSName"),
            "{}",
            email.detail
        );
        // The seeds carry the harness's key.
        let key = signing_public_key();
        assert!(seed("csr_signed/names.der")
            .windows(key.len())
            .any(|w| w == key));
    }

    #[test]
    fn openssl_seed_csrs_pass_finalize() {
        for name in ["p256", "rsa2048", "ed25519"] {
            let der = seed(&format!("csr/{name}.der"));
            check(&der).unwrap_or_else(|p| panic!("{name}: {}", p.detail));
        }
    }

    #[test]
    fn der_lengths_of_every_form() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 200]);
        assert_eq!(&long[..3], [0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0; 300]);
        assert_eq!(&longer[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(longer.len(), 304);
    }

    /// The plugin_answers seeds reach the checks the target is for: the good chain (for the
    /// fixed key and the order's names) is accepted, the others are refused for their fault.
    #[test]
    fn plugin_answer_seeds_match_the_request() {
        let chain = |name: &str| {
            String::from_utf8(seed(&format!("plugin_answers/{name}"))[1..].to_vec()).unwrap()
        };
        let request = issue_request();
        assert!(request.accept_chain(chain("chain-ok")).is_ok());
        for (name, fault) in [
            ("chain-other-names", "instead of"),
            ("chain-other-key", "another key"),
        ] {
            let err = request.accept_chain(chain(name)).unwrap_err().to_string();
            assert!(err.contains(fault), "{name}: {err}");
        }
    }
}
