//! How stored rows look in admin answers, and the paging every listing shares.

use std::collections::BTreeMap;

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::ApiError;
use crate::reply::{rfc3339, Reply};
use crate::store::{
    Account, Authorization, Certificate, Challenge, ManagedCertificate, Order, Page, PageRequest,
};

/// Largest page a listing returns, whatever the request asks.
pub const MAX_PER_PAGE: u32 = 500;

/// Page number (from 1) and size of a listing, from `page` and `per_page` in the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    pub page: u32,
    pub per_page: u32,
}

impl Paging {
    pub fn from_query(
        query: &BTreeMap<String, String>,
        default_per_page: u32,
    ) -> Result<Self, ApiError> {
        let number = |key: &str, default: u32| -> Result<u32, ApiError> {
            match query.get(key) {
                None => Ok(default),
                Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::bad_request(format!("{key} must be a whole number from 1, not {v:?}"))
                }),
            }
        };
        Ok(Self {
            page: number("page", 1)?,
            per_page: number("per_page", default_per_page.clamp(1, MAX_PER_PAGE))?
                .min(MAX_PER_PAGE),
        })
    }

    pub fn request(self) -> PageRequest {
        PageRequest {
            offset: i64::from(self.page - 1) * i64::from(self.per_page),
            limit: i64::from(self.per_page),
        }
    }

    /// `{items, total, page, per_page}`.
    pub fn reply<T, V: Serialize>(self, page: Page<T>, view: impl Fn(&T) -> V) -> Reply {
        let items: Vec<V> = page.items.iter().map(view).collect();
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({
                "items": items,
                "total": page.total,
                "page": self.page,
                "per_page": self.per_page,
            }),
        )
    }
}

/// Stored JSON text as a value (`null` if unreadable, which the store never writes).
fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub fn account(a: &Account) -> Value {
    serde_json::json!({
        "id": a.id,
        "status": a.status,
        "contact": json_text(&a.contact),
        "jwk_thumbprint": a.jwk_thumbprint,
        "eab_kid": a.eab_kid,
        "terms_of_service_agreed": a.tos_agreed,
        "created_at": rfc3339(a.created_at),
    })
}

/// An order (RFC 8555 §7.1.3) as of `now`: a pending or ready one past its expiry reads
/// `invalid` (§7.1.6), as the ACME side reports it, though the stored status only moves
/// when its client polls again (an abandoned order never does).
pub fn order(o: &Order, now: i64) -> Value {
    // Its authorizations are not read here: only the expiry edge applies, which is the one
    // that needs no client.
    let status = crate::acme::state::order_status(o.status, &[], o.expires, now);
    serde_json::json!({
        "id": o.id,
        "account_id": o.account_id,
        "status": status,
        "identifiers": json_text(&o.identifiers),
        "profile": o.profile,
        "expires": rfc3339(o.expires),
        "error": o.error.as_deref().map(json_text),
        "certificate_id": o.certificate_id,
        "created_at": rfc3339(o.created_at),
        "replaces": o.replaces,
    })
}

/// An authorization (RFC 8555 §7.1.4) with its challenges (§8), as of `now`: a pending or
/// valid one past its expiry reads `expired`, as the ACME side reports it.
pub fn authorization(a: &Authorization, challenges: &[Challenge], now: i64) -> Value {
    let status = crate::acme::state::authz_status(a.status, a.expires, now);
    serde_json::json!({
        "id": a.id,
        "identifier": { "type": a.identifier_type, "value": a.identifier_value },
        "wildcard": a.wildcard,
        "status": status,
        "expires": rfc3339(a.expires),
        "challenges": challenges.iter().map(|c| serde_json::json!({
            "id": c.id,
            "type": c.kind,
            "status": c.status,
            "validated": c.validated.map(rfc3339),
            "error": c.error.as_deref().map(json_text),
        })).collect::<Vec<_>>(),
    })
}

pub fn certificate(c: &Certificate) -> Value {
    serde_json::json!({
        "id": c.id,
        "serial": c.serial,
        "status": c.status,
        "origin": c.origin,
        "issuer": c.issuer,
        "subject": c.subject,
        "identifiers": json_text(&c.identifiers),
        "not_before": rfc3339(c.not_before),
        "not_after": rfc3339(c.not_after),
        "revoked_at": c.revoked_at.map(rfc3339),
        "revocation_reason": c.revocation_reason.map(reason_name),
        "account_id": c.account_id,
        "order_id": c.order_id,
        "created_at": rfc3339(c.created_at),
    })
}

/// A managed certificate as operators see it: its definition, state, next renewal and the
/// outcome of its last deployment. Its key stays out, sealed or not.
pub fn managed(m: &ManagedCertificate) -> Value {
    serde_json::json!({
        "name": m.name,
        "names": json_text(&m.names),
        "profile": m.profile,
        "key_type": m.key_type,
        "targets": json_text(&m.targets),
        "renew_at_percent": m.renew_at_percent,
        "renew_policy": if m.renew_at_percent.is_some() { "percent" } else { "ari" },
        "state": m.state,
        "declared": m.declared,
        "next_renewal_at": rfc3339(m.next_renewal_at),
        "certificate_serial": m.certificate_serial,
        "deployed_serial": m.deployed_serial,
        "last_deployment": m.last_deployment.as_deref().map(json_text),
        "failures": m.failures,
        "last_error": m.last_error,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
    })
}

/// RFC 5280 §5.3.1 CRLReason names by code.
const REASONS: &[(i32, &str)] = &[
    (0, "unspecified"),
    (1, "keyCompromise"),
    (2, "cACompromise"),
    (3, "affiliationChanged"),
    (4, "superseded"),
    (5, "cessationOfOperation"),
    (6, "certificateHold"),
    (8, "removeFromCRL"),
    (9, "privilegeWithdrawn"),
    (10, "aACompromise"),
];

pub fn reason_name(code: i32) -> String {
    REASONS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| code.to_string(), |(_, name)| name.to_string())
}

/// The body of a revocation: `{"reason": "keyCompromise"}` (or a code; none is unspecified).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    #[serde(default)]
    reason: Value,
}

impl RevokeBody {
    pub fn reason(&self) -> Result<i32, ApiError> {
        parse_reason(&self.reason)
    }
}

/// A revocation reason given by name (`keyCompromise`) or code (`1`). certificateHold and
/// removeFromCRL are refused: the gateway's revocations are final.
pub fn parse_reason(value: &Value) -> Result<i32, ApiError> {
    let code = match value {
        Value::Null => Some(0),
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => REASONS
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s))
            .map(|(c, _)| *c),
        _ => None,
    };
    match code {
        Some(c) if REASONS.iter().any(|(k, _)| *k == c) && c != 6 && c != 8 => Ok(c),
        _ => Err(ApiError::bad_request(format!(
            "reason {value} is not a final RFC 5280 reason; use one of unspecified, keyCompromise, \
             cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, aACompromise"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_caps_and_refuses_zero() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            Paging::from_query(&q(&[]), 50).unwrap(),
            Paging {
                page: 1,
                per_page: 50
            }
        );
        let p = Paging::from_query(&q(&[("page", "3"), ("per_page", "10000")]), 50).unwrap();
        assert_eq!(
            p,
            Paging {
                page: 3,
                per_page: MAX_PER_PAGE
            }
        );
        assert_eq!(p.request().offset, 1000);
        assert!(Paging::from_query(&q(&[("page", "0")]), 50).is_err());
        assert!(Paging::from_query(&q(&[("per_page", "x")]), 50).is_err());
    }

    #[test]
    fn reasons_by_name_or_code() {
        assert_eq!(parse_reason(&Value::from("keyCompromise")).unwrap(), 1);
        assert_eq!(parse_reason(&Value::from("superseded")).unwrap(), 4);
        assert_eq!(parse_reason(&Value::from(5)).unwrap(), 5);
        assert_eq!(parse_reason(&Value::Null).unwrap(), 0);
        assert!(parse_reason(&Value::from("certificateHold")).is_err());
        assert!(parse_reason(&Value::from(7)).is_err());
        assert!(parse_reason(&Value::from("nonsense")).is_err());
        assert_eq!(reason_name(1), "keyCompromise");
        assert_eq!(reason_name(42), "42");
    }
}
