//! Orders: newOrder (RFC 8555 §7.4), reading an order with its current status (§7.1.6) and
//! finalize (§7.4) with CSR checks, handing the order to its issuer (`crate::issuance`).

use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use http::StatusCode;
use serde::Deserialize;

use super::auth::{authenticate, KeyRule, Signed};
use super::{ca_problem, ids, now, rfc3339, store_problem, Gateway, Incoming, Reply};
use crate::acme::identifiers::{authorization_identifier, challenge_types, normalize, LocalNames};
use crate::acme::state::{authz_status, order_status};
use crate::acme::{
    AuthzStatus, ChallengeStatus, ChallengeType, Identifier, IdentifierType, OrderObject,
    OrderStatus, Problem,
};
use crate::issuance::{self, Settled};
use crate::plugins::{PluginKind, PolicyDecision};
use crate::store::{Authorization, Challenge, Order};

/// Seconds a client is asked to wait before polling a processing order again.
const PROCESSING_RETRY_AFTER: u64 = 1;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    identifiers: Vec<Identifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    profile: Option<String>,
}

pub async fn new_order(gw: &Gateway, req: &Incoming) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let account = signed.account()?.clone();
    let body: NewOrder = signed.jws.json_payload()?;
    if body.not_before.is_some() || body.not_after.is_some() {
        // RFC 8555 §7.4 lets a server refuse these; lifetimes come from profiles here.
        return Err(Problem::malformed(
            "notBefore/notAfter are not supported; choose a profile from the directory instead",
        ));
    }
    let key_policy = match &account.eab_kid {
        Some(kid) => Some(super::account::key_policy(gw, kid).await?),
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
    let created = now();
    let order = Order {
        id: ids::new_id(),
        account_id: account.id.clone(),
        status: OrderStatus::Pending.as_str().into(),
        expires: created + i64::from(gw.config.acme.order_lifetime_hours) * 3600,
        identifiers: serde_json::to_string(&identifiers)
            .map_err(|e| Problem::server_internal(e.to_string()))?,
        profile,
        not_before: None,
        not_after: None,
        error: None,
        certificate_id: None,
        created_at: created,
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
            status: AuthzStatus::Pending.as_str().into(),
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
                status: ChallengeStatus::Pending.as_str().into(),
                validated: None,
                error: None,
            });
        }
        authzs.push(authz);
    }
    let (o, a, c) = (order.clone(), authzs.clone(), challenges);
    gw.db_as(&super::acme_actor(&account.id), move |s| {
        s.insert_order(&o, &a, &c)
    })
    .await
    .map_err(|e| store_problem(e, "order"))?;
    gw.metrics.order("pending");
    tracing::info!(order = %order.id, account = %account.id, names = %order.identifiers, "order created");
    let object = order_object(
        gw,
        &order,
        &authzs,
        order.status.parse().unwrap_or(OrderStatus::Pending),
    );
    Ok(Reply::json(StatusCode::CREATED, &object).location(gw.order_url(&order.id)))
}

fn order_object(
    gw: &Gateway,
    order: &Order,
    authzs: &[Authorization],
    status: OrderStatus,
) -> OrderObject {
    OrderObject {
        status,
        expires: rfc3339(order.expires),
        identifiers: serde_json::from_str(&order.identifiers).unwrap_or_default(),
        not_before: order.not_before.map(rfc3339),
        not_after: order.not_after.map(rfc3339),
        error: order
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok()),
        authorizations: authzs.iter().map(|a| gw.authz_url(&a.id)).collect(),
        finalize: format!("{}/finalize", gw.order_url(&order.id)),
        certificate: order.certificate_id.as_deref().map(|id| gw.cert_url(id)),
        profile: Some(order.profile.clone()),
    }
}

/// Loads an order of the signing account and brings its stored status up to date (§7.1.6).
async fn load_order(
    gw: &Gateway,
    signed: &Signed,
    id: &str,
) -> Result<(Order, Vec<Authorization>, OrderStatus), Problem> {
    let account = signed.account()?;
    let oid = id.to_string();
    let (mut order, authzs) = gw
        .db(move |s| Ok((s.order(&oid)?, s.authorizations_for_order(&oid)?)))
        .await
        .map_err(|e| store_problem(e, "order"))?;
    if order.account_id != account.id {
        return Err(Problem::unauthorized(
            "this order belongs to another account",
        ));
    }
    let t = now();
    let authz_states: Vec<AuthzStatus> = authzs
        .iter()
        .map(|a| {
            authz_status(
                a.status.parse().unwrap_or(AuthzStatus::Invalid),
                a.expires,
                t,
            )
        })
        .collect();
    let stored: OrderStatus = order.status.parse().map_err(Problem::server_internal)?;
    let current = order_status(stored, &authz_states, order.expires, t);
    if current != stored {
        let (oid, from, to) = (order.id.clone(), stored.as_str(), current.as_str());
        let error = (current == OrderStatus::Invalid).then(|| {
            Problem::unauthorized(
                "an authorization of this order failed, expired or was deactivated",
            )
            .to_json()
        });
        let err = error.clone();
        // Losing this race only means another request recorded the same transition.
        gw.db_as(&super::acme_actor(&order.account_id), move |s| {
            s.transition_order(&oid, from, to, err.as_deref())
        })
        .await
        .map_err(|e| store_problem(e, "order"))?;
        gw.metrics.order(current.as_str());
        order.status = current.as_str().into();
        if order.error.is_none() {
            order.error = error;
        }
    }
    Ok((order, authzs, current))
}

fn order_reply(
    gw: &Gateway,
    order: &Order,
    authzs: &[Authorization],
    status: OrderStatus,
) -> Reply {
    let mut reply = Reply::json(StatusCode::OK, &order_object(gw, order, authzs, status))
        .location(gw.order_url(&order.id));
    if status == OrderStatus::Processing {
        reply = reply.header("retry-after", PROCESSING_RETRY_AFTER.to_string());
    }
    reply
}

pub async fn get_order(gw: &Gateway, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    signed.require_post_as_get()?;
    let (order, authzs, status) = load_order(gw, &signed, id).await?;
    Ok(order_reply(gw, &order, &authzs, status))
}

#[derive(Deserialize)]
struct Finalize {
    csr: String,
}

pub async fn finalize(gw: &Arc<Gateway>, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let body: Finalize = signed.jws.json_payload()?;
    let (order, authzs, status) = load_order(gw, &signed, id).await?;
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
    let der = B64
        .decode(body.csr.trim_end_matches('='))
        .map_err(|_| Problem::bad_csr("csr is not base64url"))?;
    let csr = crate::ca::parse_csr_for(&der, profile).map_err(ca_problem)?;
    let identifiers: Vec<Identifier> = serde_json::from_str(&order.identifiers)
        .map_err(|e| Problem::server_internal(e.to_string()))?;
    check_csr_names(&csr, &identifiers)?;
    refuse_account_key(&signed, &csr)?;
    let job = issuance::new_job(gw, &order.id, &profile.issuer, &der);
    let queued = job.clone();
    let moved = gw
        .db_as(&super::acme_actor(&order.account_id), move |s| {
            s.begin_issuance(&queued)
        })
        .await
        .map_err(|e| store_problem(e, "order"))?;
    if !moved {
        return Err(Problem::order_not_ready("order is already being finalized"));
    }
    match issuance::finalize(gw, job).await? {
        Settled::Valid(cert) => {
            let done = Order {
                status: OrderStatus::Valid.as_str().into(),
                certificate_id: Some(cert.id),
                not_before: Some(cert.not_before),
                not_after: Some(cert.not_after),
                ..order
            };
            Ok(order_reply(gw, &done, &authzs, OrderStatus::Valid))
        }
        // RFC 8555 §7.4: a refused CSR is the finalize request's error; the order is invalid.
        Settled::Invalid(problem) => Err(problem),
        Settled::Processing => {
            let processing = Order {
                status: OrderStatus::Processing.as_str().into(),
                ..order
            };
            Ok(order_reply(
                gw,
                &processing,
                &authzs,
                OrderStatus::Processing,
            ))
        }
    }
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
fn check_csr_names(
    csr: &crate::ca::Csr,
    ids: &[Identifier],
) -> Result<(Vec<String>, Vec<IpAddr>), Problem> {
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
/// certificate's key (a web server, a load balancer) could act for the account. The finalize
/// request is signed with the account key, so its signature verifies under the CSR's key
/// exactly when the two are the same key, whatever its type.
fn refuse_account_key(signed: &Signed, csr: &crate::ca::Csr) -> Result<(), Problem> {
    if signed.jws.verify_with_spki(&csr.spki_der).is_ok() {
        return Err(Problem::bad_csr(
            "the CSR's public key is the account key; an account key must not be a \
             certificate key (RFC 8555 §11.1): make the CSR with a new key",
        ));
    }
    Ok(())
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
