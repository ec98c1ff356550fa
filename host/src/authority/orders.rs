//! Orders (RFC 8555 §7.4): what newOrder creates under the account's EAB policy, the profile
//! and the order policy plugin; an order's current status (§7.1.6); and finalize, which checks
//! the CSR against the order and hands it to its issuer (`super::issuance`).

use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use super::issuance::{self, Settled};
use super::{acme_actor, ca_problem, store_problem, Gateway};
use crate::acme::identifiers::{authorization_identifier, challenge_types, normalize, LocalNames};
use crate::acme::name_policy::KeyPolicy;
use crate::acme::state::{authz_status, order_status};
use crate::acme::{
    AuthzStatus, ChallengeStatus, ChallengeType, Identifier, IdentifierType, OrderStatus, Problem,
};
use crate::ca::{Csr, Profile};
use crate::ids;
use crate::plugins::{PluginKind, PolicyDecision};
use crate::store::{Account, Authorization, Challenge, Order};

/// What a client asks newOrder for, already decoded.
#[derive(Debug)]
pub struct NewOrder {
    pub identifiers: Vec<Identifier>,
    /// The profile asked for; the EAB key's or the default one when absent.
    pub profile: Option<String>,
    /// The certID of the certificate this order replaces (RFC 9773 §5).
    pub replaces: Option<String>,
}

/// An order with its authorizations and its status now (which the stored one may lag).
#[derive(Debug)]
pub struct OrderView {
    pub order: Order,
    pub authorizations: Vec<Authorization>,
    pub status: OrderStatus,
}

/// newOrder: a pending order of `account` with one authorization per identifier and its
/// challenges, stored in one transaction.
pub async fn create(gw: &Gateway, account: &Account, body: NewOrder) -> Result<OrderView, Problem> {
    let key_policy = match &account.eab_kid {
        Some(kid) => Some(eab_policy(gw, kid).await?),
        None => None,
    };
    let profile = match &key_policy {
        Some(policy) => policy.profile(body.profile, &gw.config.acme.default_profile)?,
        None => body
            .profile
            .unwrap_or_else(|| gw.config.acme.default_profile.clone()),
    };
    if gw.profile(&profile).is_none() {
        return Err(Problem::invalid_profile(format!(
            "unknown profile {profile:?}; the directory lists the available ones"
        )));
    }
    let local_names = gw.profile(&profile).map_or(LocalNames::Refused, |p| {
        LocalNames::allowed_if(p.allow_local_names)
    });
    let identifiers = normalize(&body.identifiers, local_names)?;
    if let Some(policy) = &key_policy {
        policy.check_names(&identifiers)?;
    }
    if let Some(policy) = &gw.order_policy {
        // Fail closed: a policy that cannot answer refuses the order.
        let decision = policy
            .check_new_order(&gw.account_url(&account.id), &identifiers, Some(&profile))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "order policy plugin failed");
                Problem::server_internal(format!(
                    "the order policy could not decide; try again later ({e})"
                ))
            })?;
        if let PolicyDecision::Refuse(problem) = decision {
            return Err(problem);
        }
    }
    let replaced = match &body.replaces {
        Some(text) => Some(super::renewal::check_replaces(gw, account, text, &identifiers).await?),
        None => None,
    };
    let created = gw.now();
    let order = Order {
        id: ids::new_id(),
        account_id: account.id.clone(),
        status: OrderStatus::Pending,
        expires: created + i64::from(gw.config.acme.order_lifetime_hours) * 3600,
        identifiers: serde_json::to_string(&identifiers)
            .map_err(|e| Problem::server_internal(e.to_string()))?,
        profile,
        not_before: None,
        not_after: None,
        error: None,
        certificate_id: None,
        created_at: created,
        replaces: body.replaces.clone(),
    };
    let authz_expires = created + i64::from(gw.config.acme.authz_lifetime_hours) * 3600;
    let mut authzs = Vec::with_capacity(identifiers.len());
    let mut challenges = Vec::new();
    for id in &identifiers {
        let (authz_id, wildcard) = authorization_identifier(id);
        let authz = Authorization {
            id: ids::new_id(),
            order_id: order.id.clone(),
            account_id: account.id.clone(),
            identifier_type: authz_id.kind.as_str().into(),
            identifier_value: authz_id.value.clone(),
            wildcard,
            status: AuthzStatus::Pending,
            expires: authz_expires,
            created_at: created,
        };
        // One token per authorization: RFC 8555 §8 allows it, and a client that answers one
        // challenge type proves the same key authorization whichever it picks.
        let token = ids::new_token();
        let builtin = challenge_types(&authz_id, wildcard)
            .into_iter()
            .map(|kind| kind.as_str().to_string());
        for kind in builtin.chain(custom_challenge_types(gw, &authz_id, wildcard)) {
            challenges.push(Challenge {
                id: ids::new_id(),
                authz_id: authz.id.clone(),
                kind,
                token: token.clone(),
                status: ChallengeStatus::Pending,
                validated: None,
                error: None,
            });
        }
        authzs.push(authz);
    }
    let (o, a, c) = (order.clone(), authzs.clone(), challenges);
    let inserted = gw
        .write_as(&acme_actor(&account.id), move |s| match &replaced {
            Some(cert) => s.insert_replacing_order(&o, &a, &c, cert, created),
            None => s.insert_order(&o, &a, &c).map(|()| true),
        })
        .await
        .map_err(|e| store_problem(e, "order"))?;
    if !inserted {
        return Err(super::renewal::already_replaced(
            body.replaces.as_deref().unwrap_or_default(),
        ));
    }
    gw.metrics.order("pending");
    tracing::info!(order = %order.id, account = %account.id, names = %order.identifiers, "order created");
    Ok(OrderView {
        order,
        authorizations: authzs,
        status: OrderStatus::Pending,
    })
}

/// An order of `account`, with its stored status brought up to date (§7.1.6).
pub async fn current(gw: &Gateway, account: &Account, id: &str) -> Result<OrderView, Problem> {
    let oid = id.to_string();
    let (mut order, authzs) = gw
        .read(move |s| s.order_with_authorizations(&oid))
        .await
        .map_err(|e| store_problem(e, "order"))?;
    if order.account_id != account.id {
        return Err(Problem::unauthorized(
            "this order belongs to another account",
        ));
    }
    let t = gw.now();
    let authz_states: Vec<AuthzStatus> = authzs
        .iter()
        .map(|a| authz_status(a.status, a.expires, t))
        .collect();
    let stored: OrderStatus = order.status;
    let current = order_status(stored, &authz_states, order.expires, t);
    if current != stored {
        let (oid, from, to) = (order.id.clone(), stored, current);
        let error = (current == OrderStatus::Invalid).then(|| {
            Problem::unauthorized(
                "an authorization of this order failed, expired or was deactivated",
            )
            .to_json()
        });
        let err = error.clone();
        // Losing this race only means another request recorded the same transition.
        gw.write_as(&acme_actor(&order.account_id), move |s| {
            s.transition_order(&oid, from, to, err.as_deref())
        })
        .await
        .map_err(|e| store_problem(e, "order"))?;
        gw.metrics.order(current.as_str());
        order.status = current;
        if order.error.is_none() {
            order.error = error;
        }
    }
    Ok(OrderView {
        order,
        authorizations: authzs,
        status: current,
    })
}

/// finalize: checks the CSR (`csr`, base64url DER as the finalize payload carries it) against the order and its profile, refuses the account
/// key as certificate key (`is_account_key` tells whether a public key, as SubjectPublicKeyInfo
/// DER, is the key that signed the request: RFC 8555 §11.1), and hands the order to its issuer.
/// The answer is the order as it stands afterwards: valid, or processing while the issuer works.
pub async fn finalize(
    gw: &Arc<Gateway>,
    account: &Account,
    id: &str,
    csr: &str,
    is_account_key: impl FnOnce(&[u8]) -> bool,
) -> Result<OrderView, Problem> {
    let OrderView {
        order,
        authorizations: authzs,
        status,
    } = current(gw, account, id).await?;
    if status != OrderStatus::Ready {
        return Err(Problem::order_not_ready(format!(
            "order is {status}, not ready; finalize needs every authorization valid"
        )));
    }
    let profile = gw.profile(&order.profile).ok_or_else(|| {
        Problem::server_internal(format!(
            "profile {:?} is no longer configured",
            order.profile
        ))
    })?;
    let identifiers: Vec<Identifier> = serde_json::from_str(&order.identifiers)
        .map_err(|e| Problem::server_internal(e.to_string()))?;
    let der = check_csr(csr, profile, &identifiers, is_account_key)?;
    let (order, status) = match issuance::finalize(gw, order.clone(), &profile.issuer, der).await? {
        Settled::Valid(cert) => (
            Order {
                status: OrderStatus::Valid,
                certificate_id: Some(cert.id),
                not_before: Some(cert.not_before),
                not_after: Some(cert.not_after),
                ..order
            },
            OrderStatus::Valid,
        ),
        // RFC 8555 §7.4: a refused CSR is the finalize request's error; the order is invalid.
        Settled::Invalid(problem) => return Err(problem),
        Settled::Processing => (
            Order {
                status: OrderStatus::Processing,
                ..order
            },
            OrderStatus::Processing,
        ),
    };
    Ok(OrderView {
        order,
        authorizations: authzs,
        status,
    })
}

/// What finalize checks of the client's CSR before anything is stored: base64url DER
/// (padding tolerated), a well-formed, self-signed request with a key `profile` allows
/// (`ca::parse_csr_for`), exactly the order's `identifiers` (RFC 8555 §7.4), and not the account
/// key (§11.1). Returns the DER. Public for the fuzz target `csr` (host/fuzz), which feeds it
/// arbitrary requests.
pub fn check_csr(
    csr: &str,
    profile: &Profile,
    identifiers: &[Identifier],
    is_account_key: impl FnOnce(&[u8]) -> bool,
) -> Result<Vec<u8>, Problem> {
    let der = B64
        .decode(csr.trim_end_matches('='))
        .map_err(|_| Problem::bad_csr("csr is not base64url"))?;
    let csr = crate::ca::parse_csr_for(&der, profile).map_err(ca_problem)?;
    check_csr_names(&csr, identifiers)?;
    refuse_account_key(&csr, is_account_key)?;
    Ok(der)
}

/// Challenge types that are not built in but mapped to a plugin that handles `id`'s type
/// (never for wildcards, which RFC 8555 §7.1.3 ties to dns-01).
fn custom_challenge_types(gw: &Gateway, id: &Identifier, wildcard: bool) -> Vec<String> {
    if wildcard {
        return Vec::new();
    }
    gw.challenge_plugins
        .iter()
        .filter(|(kind, _)| kind.parse::<ChallengeType>().is_err())
        .filter(|(_, plugin)| match plugin.info().kind {
            PluginKind::ChallengeValidator {
                identifier_types, ..
            } => identifier_types.contains(&id.kind),
            _ => false,
        })
        .map(|(kind, _)| kind.clone())
        .collect()
}

/// RFC 8555 §7.4: the CSR must request exactly the order's identifiers. A CN, when present,
/// must be one of them.
fn check_csr_names(csr: &Csr, ids: &[Identifier]) -> Result<(Vec<String>, Vec<IpAddr>), Problem> {
    let mut want_dns: Vec<String> = ids
        .iter()
        .filter(|i| i.kind == IdentifierType::Dns)
        .map(|i| i.value.clone())
        .collect();
    let mut want_ip: Vec<IpAddr> = ids
        .iter()
        .filter(|i| i.kind == IdentifierType::Ip)
        .filter_map(|i| i.value.parse().ok())
        .collect();
    let mut got_dns = csr.dns_names.clone();
    let mut got_ip = csr.ip_addrs.clone();
    for v in [&mut want_dns, &mut got_dns] {
        v.sort();
        v.dedup();
    }
    for v in [&mut want_ip, &mut got_ip] {
        v.sort();
        v.dedup();
    }
    if want_dns != got_dns || want_ip != got_ip {
        let fmt = |d: &[String], i: &[IpAddr]| {
            d.iter()
                .cloned()
                .chain(i.iter().map(IpAddr::to_string))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Problem::bad_csr(format!(
            "CSR names [{}] differ from the order's identifiers [{}]",
            fmt(&got_dns, &got_ip),
            fmt(&want_dns, &want_ip)
        )));
    }
    Ok((want_dns, want_ip))
}

/// RFC 8555 §11.1: an account key must not also be a certificate key, or whoever holds the
/// certificate's key (a web server, a load balancer) could act for the account.
fn refuse_account_key(
    csr: &Csr,
    is_account_key: impl FnOnce(&[u8]) -> bool,
) -> Result<(), Problem> {
    if is_account_key(&csr.spki_der) {
        return Err(Problem::bad_csr(
            "the CSR's public key is the account key; an account key must not be a \
             certificate key (RFC 8555 §11.1): make the CSR with a new key",
        ));
    }
    Ok(())
}

/// The policy of the EAB key `kid` an account was bound with. A revoked key stops its accounts
/// from ordering; a policy the gateway cannot read (or that names a profile that is gone)
/// refuses rather than allowing everything.
pub async fn eab_policy(gw: &Gateway, kid: &str) -> Result<KeyPolicy, Problem> {
    let lookup = kid.to_owned();
    let key = gw
        .db(move |s| s.eab_key(&lookup))
        .await
        .map_err(|e| store_problem(e, "EAB key"))?;
    if key.revoked {
        return Err(Problem::unauthorized(format!(
            "the External Account Binding key {kid} of this account was revoked"
        )));
    }
    let policy = KeyPolicy::from_stored(&key.kid, &key.allowed_names, &key.profile)
        .map_err(Problem::server_internal)?;
    if let Some(profile) = &policy.profile {
        if gw.profile(profile).is_none() {
            return Err(Problem::server_internal(format!(
                "EAB key {kid} pins profile {profile:?}, which is not configured"
            )));
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(dns: &[&str], ips: &[&str]) -> crate::ca::Csr {
        crate::ca::Csr {
            common_name: None,
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ip_addrs: ips.iter().map(|s| s.parse().unwrap()).collect(),
            spki_der: vec![],
            der: vec![],
        }
    }

    #[test]
    fn csr_must_match_identifiers_exactly() {
        let ids = vec![
            Identifier::dns("a.example"),
            Identifier::dns("*.b.example"),
            Identifier::ip("10.0.0.1".parse().unwrap()),
        ];
        let (d, i) = check_csr_names(
            &csr(&["*.b.example", "a.example", "a.example"], &["10.0.0.1"]),
            &ids,
        )
        .unwrap();
        assert_eq!(d, vec!["*.b.example", "a.example"]);
        assert_eq!(i.len(), 1);
        let missing = check_csr_names(&csr(&["a.example"], &["10.0.0.1"]), &ids).unwrap_err();
        assert_eq!(missing.kind, crate::acme::ProblemType::BadCsr);
        assert!(missing.detail.contains("*.b.example"));
        assert!(check_csr_names(
            &csr(
                &["a.example", "*.b.example", "extra.example"],
                &["10.0.0.1"]
            ),
            &ids
        )
        .is_err());
        assert!(check_csr_names(&csr(&["a.example", "*.b.example"], &[]), &ids).is_err());
    }
}
