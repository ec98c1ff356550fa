//! ACME Renewal Information (RFC 9773) policy: which window a certificate's renewalInfo
//! suggests (§4.2), whether a newOrder may replace a certificate (§5), and an admin's
//! renew-now, which moves the windows of a set of certificates into the past.
//!
//! A certificate's window is its default one (`acme::renewal::default_window`) until
//! something moves it to a moment, after which it reads as in the past and clients renew at
//! once: a revocation for key compromise (or any revocation: a revoked certificate must be
//! replaced), an admin's renew-now, its issuer's retirement, or its replacement being issued
//! (its renewal is done; a
//! host still holding it should move to the replacement). Each moved window names a page that
//! says why (`explanationURL`).

use super::{store_problem, Gateway};
use crate::acme::renewal::{default_window, CertId, Window};
use crate::acme::{CertificateStatus, Identifier, OrderStatus, Problem};
use crate::store::{
    Account, RenewNow, RenewNowFilter, RenewalState, StoreError, RENEW_ADMIN, RENEW_ISSUER_RETIRED,
    RENEW_KEY_COMPROMISE,
};

/// Where the gateway serves the pages that explain moved windows: `/renewal-explanations/<why>`.
pub const EXPLANATIONS_PREFIX: &str = "/renewal-explanations/";

/// Why a window was moved, with the page the gateway serves for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    KeyCompromise,
    Revoked,
    Admin,
    IssuerRetired,
    Replaced,
}

impl Moved {
    pub const ALL: [Moved; 5] = [
        Moved::KeyCompromise,
        Moved::Revoked,
        Moved::Admin,
        Moved::IssuerRetired,
        Moved::Replaced,
    ];

    /// The last segment of its page's path.
    pub fn slug(self) -> &'static str {
        match self {
            Moved::KeyCompromise => RENEW_KEY_COMPROMISE,
            Moved::Revoked => "revoked",
            Moved::Admin => RENEW_ADMIN,
            Moved::IssuerRetired => RENEW_ISSUER_RETIRED,
            Moved::Replaced => "replaced",
        }
    }

    /// The page's text: for the person who reads the `explanationURL` their client logged.
    pub fn explanation(self) -> &'static str {
        match self {
            Moved::KeyCompromise => {
                "This certificate was revoked because its private key is compromised. \
                 Renew it now with a new key and deploy the new certificate everywhere the \
                 old one is installed."
            }
            Moved::Revoked => {
                "This certificate was revoked. Renew it now and deploy the new certificate \
                 everywhere the old one is installed."
            }
            Moved::Admin => {
                "The operators of this certificate authority asked for this certificate to be \
                 renewed now, ahead of its usual renewal window (for instance in response to \
                 an incident). Renew it now; the new certificate gets a normal window."
            }
            Moved::IssuerRetired => {
                "The issuer that signed this certificate has been taken out of service by the \
                 operators of this certificate authority. Renew it now: the new certificate \
                 comes from the current issuer. Deploy it everywhere the old one is installed."
            }
            Moved::Replaced => {
                "A replacement for this certificate has been issued, so its renewal is done. \
                 A host that still serves this certificate should install the replacement or \
                 renew now."
            }
        }
    }

    fn from_stored(reason: &str) -> Moved {
        match reason {
            RENEW_KEY_COMPROMISE => Moved::KeyCompromise,
            RENEW_ISSUER_RETIRED => Moved::IssuerRetired,
            _ => Moved::Admin,
        }
    }
}

/// The text of the explanation page at `slug`, if there is one.
pub fn explanation(slug: &str) -> Option<&'static str> {
    Moved::ALL
        .into_iter()
        .find(|m| m.slug() == slug)
        .map(Moved::explanation)
}

/// What renewalInfo answers for a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renewal {
    pub window: Window,
    /// The page explaining a moved window.
    pub explanation_url: Option<String>,
}

/// The window of a stored certificate, and why it was moved if it was.
fn decide(state: &RenewalState, serial_der: &[u8]) -> (Window, Option<(Moved, Option<String>)>) {
    let cert = &state.certificate;
    if let Some(at) = state.marks.renew_now_at {
        let why = Moved::from_stored(state.marks.renew_reason.as_deref().unwrap_or_default());
        let page = state.marks.renew_explanation_url.clone();
        return (Window::ending_at(at), Some((why, page)));
    }
    if cert.status == CertificateStatus::Revoked {
        let at = cert.revoked_at.unwrap_or(cert.created_at);
        return (Window::ending_at(at), Some((Moved::Revoked, None)));
    }
    if let Some(order) = &state.replacement {
        if order.status == OrderStatus::Valid {
            let at = order.not_before.unwrap_or(order.created_at);
            return (Window::ending_at(at), Some((Moved::Replaced, None)));
        }
    }
    (
        default_window(cert.not_before, cert.not_after, serial_der),
        None,
    )
}

/// The stored certificate a certID names, with its renewal state. `NotFound` (no certificate
/// with that serial, or one under another key identifier) is for the caller to phrase.
async fn named(gw: &Gateway, id: &CertId) -> Result<RenewalState, StoreError> {
    let serial = id.serial_hex();
    let state = gw.db(move |s| s.renewal_state(&serial)).await?;
    let leaf = super::revocation::leaf_der(&state.certificate.chain_pem);
    let theirs = leaf.and_then(|der| CertId::of_certificate(&der));
    if theirs.as_ref() != Some(id) {
        // The same serial from another issuer key is another certificate (§4.1).
        return Err(StoreError::NotFound);
    }
    Ok(state)
}

/// renewalInfo (§4.2) for the certificate `cert_id` names.
pub async fn renewal_info(gw: &Gateway, cert_id: &str) -> Result<Renewal, Problem> {
    let id = CertId::parse(cert_id).map_err(|e| Problem::malformed(e.to_string()))?;
    let state = named(gw, &id).await.map_err(|e| match e {
        StoreError::NotFound => Problem::malformed(format!(
            "this server issued no certificate with certID {id}"
        ))
        .with_status(404),
        other => store_problem(other, "certificate"),
    })?;
    let (window, moved) = explained(gw, &state, &id.serial);
    Ok(Renewal {
        window,
        explanation_url: moved.map(|(_, page)| page),
    })
}

/// [`decide`], with the page of a moved window resolved: the one an admin named, or the
/// gateway's own for the reason.
fn explained(
    gw: &Gateway,
    state: &RenewalState,
    serial_der: &[u8],
) -> (Window, Option<(Moved, String)>) {
    let (window, moved) = decide(state, serial_der);
    let moved = moved.map(|(why, page)| {
        let page =
            page.unwrap_or_else(|| format!("{}{EXPLANATIONS_PREFIX}{}", gw.base_url, why.slug()));
        (why, page)
    });
    (window, moved)
}

/// A certificate's renewal as an operator sees it (admin API): the window renewalInfo
/// suggests for it, whether and why that window was moved, and the order replacing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalView {
    pub window: Window,
    /// Why the window was moved, and the page clients are pointed to.
    pub moved: Option<(Moved, String)>,
    /// The order that replaces the certificate (RFC 9773 §5), live or not.
    pub replaced_by: Option<String>,
}

/// The [`RenewalView`] of the stored certificate with `serial`; `None` when its stored chain
/// has no readable leaf (no certID, so no renewalInfo either).
pub async fn renewal_view(gw: &Gateway, serial: &str) -> Result<Option<RenewalView>, StoreError> {
    let serial = serial.to_owned();
    let state = gw.db(move |s| s.renewal_state(&serial)).await?;
    let Some(id) = super::revocation::leaf_der(&state.certificate.chain_pem)
        .and_then(|der| CertId::of_certificate(&der))
    else {
        return Ok(None);
    };
    let (window, moved) = explained(gw, &state, &id.serial);
    Ok(Some(RenewalView {
        window,
        moved,
        replaced_by: state.marks.replaced_by,
    }))
}

/// The certificate newOrder's `replaces` names (§5), checked: it exists, `account` ordered it
/// or holds valid authorizations for every name on it (as revocation asks, RFC 8555 §7.6), and
/// it shares an identifier with the new order. Returns its id; whether another order replaces
/// it already is decided when the order is stored, atomically
/// (`Store::insert_replacing_order`).
pub async fn check_replaces(
    gw: &Gateway,
    account: &Account,
    replaces: &str,
    identifiers: &[Identifier],
) -> Result<String, Problem> {
    let id = CertId::parse(replaces).map_err(|e| Problem::malformed(format!("replaces: {e}")))?;
    let state = named(gw, &id).await.map_err(|e| match e {
        StoreError::NotFound => Problem::malformed(format!(
            "replaces names certID {id}, which is no certificate this server issued"
        )),
        other => store_problem(other, "certificate"),
    })?;
    let cert = state.certificate;
    let names: Vec<Identifier> = serde_json::from_str(&cert.identifiers)
        .map_err(|e| Problem::server_internal(format!("stored identifiers unreadable: {e}")))?;
    if cert.account_id.as_deref() != Some(account.id.as_str())
        && !super::authorizations::holds_all(gw, &account.id, &names).await?
    {
        return Err(Problem::unauthorized(
            "replaces names a certificate this account neither ordered nor holds valid \
             authorizations for all its names (RFC 9773 §5)",
        ));
    }
    if !identifiers.iter().any(|i| names.contains(i)) {
        return Err(Problem::malformed(format!(
            "replaces names certificate {}, which shares no identifier with this order \
             (RFC 9773 §5)",
            cert.serial
        )));
    }
    Ok(cert.id)
}

/// The problem when another live order replaces the certificate already.
pub fn already_replaced(replaces: &str) -> Problem {
    Problem::already_replaced(format!(
        "the certificate {replaces} is already replaced by another order that is not invalid \
         (RFC 9773 §5); order without replaces, or after that order fails"
    ))
}

/// An admin's renew-now: moves the window of every valid, unexpired certificate matching
/// `filter` to now, audited as `actor`; answers the serials moved.
pub async fn renew_now(
    gw: &Gateway,
    filter: RenewNowFilter,
    explanation_url: Option<String>,
    actor: &str,
) -> Result<Vec<String>, StoreError> {
    let request = RenewNow {
        filter,
        at: gw.now(),
        reason: RENEW_ADMIN,
        explanation_url,
    };
    let serials = gw.db_as(actor, move |s| s.renew_now(&request)).await?;
    tracing::info!(count = serials.len(), %actor, "renewal windows moved to now");
    Ok(serials)
}

/// The issuers `issuance.retired_issuers` names: moves the window of each of their valid,
/// unexpired certificates to now, once per certificate (a restart finds nothing left to move
/// and writes nothing), so that ARI clients renew through the profiles' current issuers.
/// Audited by the system, one entry per issuer that had certificates to move. Returns the
/// serials moved.
pub async fn retire_issuers(gw: &Gateway, issuers: &[String]) -> Result<Vec<String>, StoreError> {
    let mut moved = Vec::new();
    for issuer in issuers {
        let request = RenewNow {
            filter: RenewNowFilter {
                issuer: Some(issuer.clone()),
                unmoved_only: true,
                ..RenewNowFilter::default()
            },
            at: gw.now(),
            reason: RENEW_ISSUER_RETIRED,
            explanation_url: None,
        };
        let serials = gw.db(move |s| s.renew_now(&request)).await?;
        if !serials.is_empty() {
            tracing::info!(%issuer, count = serials.len(), "issuer retired: renewal windows moved to now");
        }
        moved.extend(serials);
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Certificate, Order, RenewalMarks};

    fn state(status: CertificateStatus) -> RenewalState {
        RenewalState {
            certificate: Certificate {
                id: "c1".into(),
                serial: "abc".into(),
                account_id: Some("a1".into()),
                order_id: Some("o1".into()),
                chain_pem: String::new(),
                identifiers: "[]".into(),
                not_before: 1_000,
                not_after: 1_000 + 90 * 86_400,
                status,
                revoked_at: (status == CertificateStatus::Revoked).then_some(5_000),
                revocation_reason: None,
                created_at: 1_000,
                issuer: "builtin".into(),
                origin: "acme".into(),
                subject: String::new(),
            },
            marks: RenewalMarks {
                replaced_by: None,
                renew_now_at: None,
                renew_reason: None,
                renew_explanation_url: None,
            },
            replacement: None,
        }
    }

    #[test]
    fn windows_follow_the_certificate_state() {
        let serial = [0x0a, 0xbc];
        let plain = state(CertificateStatus::Valid);
        let (w, moved) = decide(&plain, &serial);
        assert_eq!(w, default_window(1_000, 1_000 + 90 * 86_400, &serial));
        assert!(moved.is_none());

        let (w, moved) = decide(&state(CertificateStatus::Revoked), &serial);
        assert_eq!(w, Window::ending_at(5_000));
        assert_eq!(moved, Some((Moved::Revoked, None)));

        let mut admin = state(CertificateStatus::Valid);
        admin.marks.renew_now_at = Some(7_000);
        admin.marks.renew_reason = Some(RENEW_ADMIN.into());
        admin.marks.renew_explanation_url = Some("https://status.example/incident".into());
        let (w, moved) = decide(&admin, &serial);
        assert_eq!(w.end, 7_000);
        assert_eq!(
            moved,
            Some((
                Moved::Admin,
                Some("https://status.example/incident".to_string())
            ))
        );

        let mut compromised = state(CertificateStatus::Revoked);
        compromised.marks.renew_now_at = Some(5_000);
        compromised.marks.renew_reason = Some(RENEW_KEY_COMPROMISE.into());
        assert_eq!(
            decide(&compromised, &serial).1,
            Some((Moved::KeyCompromise, None))
        );

        let mut replaced = state(CertificateStatus::Valid);
        let order = |status| Order {
            id: "o2".into(),
            account_id: "a1".into(),
            status,
            expires: 99_999,
            identifiers: "[]".into(),
            profile: "default".into(),
            not_before: Some(9_000),
            not_after: None,
            error: None,
            certificate_id: None,
            created_at: 8_000,
            replaces: Some("x.y".into()),
        };
        replaced.replacement = Some(order(OrderStatus::Pending));
        assert!(
            decide(&replaced, &serial).1.is_none(),
            "a pending replacement moves nothing"
        );
        replaced.replacement = Some(order(OrderStatus::Valid));
        let (w, moved) = decide(&replaced, &serial);
        assert_eq!(w.end, 9_000);
        assert_eq!(moved, Some((Moved::Replaced, None)));
    }

    #[test]
    fn every_reason_has_a_page() {
        for m in Moved::ALL {
            assert_eq!(explanation(m.slug()), Some(m.explanation()));
        }
        assert_eq!(explanation("nope"), None);
    }

    /// The certID of a real certificate of the built-in CA: its AKI keyIdentifier is the
    /// intermediate's key identifier, and the encoded certID parses back to the stored serial.
    #[test]
    fn cert_ids_of_gateway_certificates() {
        use crate::ca::testutil::{csr_der, shared_ca, KeyType};
        let ca = shared_ca();
        let csr = crate::ca::parse_csr(&csr_der(KeyType::P256, None, &["ari.example"])).unwrap();
        let profile = crate::ca::Profile::default_server();
        let issued = ca.issue(&csr, &csr.dns_names, &[], &profile).unwrap();
        let id = CertId::of_certificate(&issued.leaf_der).unwrap();
        let leaf = openssl::x509::X509::from_der(&issued.leaf_der).unwrap();
        let openssl_aki = leaf.authority_key_id().unwrap().as_slice().to_vec();
        assert_eq!(id.key_identifier, openssl_aki);
        let parsed = CertId::parse(&id.to_string()).unwrap();
        assert_eq!(parsed, id);
        assert_eq!(parsed.serial_hex(), issued.serial_hex);
    }

    /// A certificate made by OpenSSL (an independent encoder) whose serial has its high bit
    /// set: its DER INTEGER carries a leading 0x00, which the certID keeps (RFC 9773 §4.1), and
    /// the serial read back is OpenSSL's.
    #[test]
    fn cert_ids_keep_the_leading_zero_of_high_serials() {
        use openssl::asn1::Asn1Time;
        use openssl::bn::BigNum;
        use openssl::hash::MessageDigest;
        use openssl::x509::extension::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
        use openssl::x509::{X509Builder, X509NameBuilder};
        let key = crate::ca::testutil::key(crate::ca::testutil::KeyType::P256);
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "high serial").unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_hex_str("87654321aabbccdd").unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(90).unwrap())
            .unwrap();
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(ski).unwrap();
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(aki).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        let id = CertId::of_certificate(&cert.to_der().unwrap()).unwrap();
        assert_eq!(
            id.serial,
            [0x00, 0x87, 0x65, 0x43, 0x21, 0xaa, 0xbb, 0xcc, 0xdd]
        );
        assert_eq!(
            id.key_identifier,
            cert.authority_key_id().unwrap().as_slice().to_vec()
        );
        let text = id.to_string();
        assert!(text.ends_with(".AIdlQyGqu8zd"), "{text}");
        assert_eq!(
            CertId::parse(&text).unwrap().serial_hex(),
            "87654321aabbccdd"
        );
    }
}
