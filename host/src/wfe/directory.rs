//! The directory (RFC 8555 §7.1.1) and the unauthenticated public resources: health and the
//! CA certificates clients need to trust the gateway.

use http::{Method, StatusCode};

use super::Reply;
use crate::acme::{Directory, DirectoryMeta};
use crate::authority::Gateway;

/// Public paths outside `/acme`: CA certificates for trust bootstrapping and AIA, and health.
pub const ROOT_PEM_PATH: &str = "/ca/root.pem";
pub const INTERMEDIATE_PEM_PATH: &str = "/ca/intermediate.pem";
pub const INTERMEDIATE_DER_PATH: &str = "/ca/intermediate.der";
pub const CRL_PATH: &str = "/ca/crl.der";
pub const CRL_PEM_PATH: &str = "/ca/crl.pem";
pub const READY_PATH: &str = "/ready";
pub const METRICS_PATH: &str = "/metrics";
pub const OPENAPI_PATH: &str = "/openapi.json";
/// The renewalInfo resource under the ACME prefix (RFC 9773 §3); certIDs follow it.
pub const RENEWAL_INFO_PATH: &str = "/renewal-info";

/// The OpenAPI 3.1 description of the admin and public routes (docs/openapi.json), served at
/// [`OPENAPI_PATH`]; a test holds it in sync with [`PUBLIC_ROUTES`] and the admin router.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// Every public (unauthenticated, GET) route outside ACME; `{name}` matches one segment.
pub const PUBLIC_ROUTES: &[&str] = &[
    "/health",
    READY_PATH,
    METRICS_PATH,
    ROOT_PEM_PATH,
    INTERMEDIATE_PEM_PATH,
    INTERMEDIATE_DER_PATH,
    CRL_PATH,
    CRL_PEM_PATH,
    "/ca/issuers/{name}/crl.der",
    "/ca/issuers/{name}/crl.pem",
    "/ca/issuers/{name}/ca.pem",
    "/renewal-explanations/{reason}",
    OPENAPI_PATH,
];

pub fn directory(gw: &Gateway) -> Reply {
    let c = &gw.config.acme;
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let dir = Directory {
        new_nonce: gw.url("/new-nonce"),
        new_account: gw.url("/new-account"),
        new_order: gw.url("/new-order"),
        revoke_cert: gw.url("/revoke-cert"),
        key_change: gw.url("/key-change"),
        new_authz: None,
        renewal_info: Some(gw.url(RENEWAL_INFO_PATH)),
        meta: DirectoryMeta {
            terms_of_service: non_empty(&c.terms_of_service),
            website: non_empty(&c.website),
            caa_identities: c.caa_identities.clone(),
            external_account_required: c.eab_required,
            profiles: gw
                .profiles
                .iter()
                .map(|p| (p.name.clone(), p.description.clone()))
                .collect(),
        },
    };
    Reply::json(StatusCode::OK, &dir)
}

/// Serves the public non-ACME resources, or `None` when `path` is not one of them.
pub fn public(gw: &Gateway, method: &Method, path: &str) -> Option<Reply> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    Some(match path {
        "/health" => Reply::bytes(StatusCode::OK, "text/plain", "ok\n"),
        ROOT_PEM_PATH => Reply::bytes(StatusCode::OK, "application/x-pem-file", gw.ca.root_pem()),
        INTERMEDIATE_PEM_PATH => Reply::bytes(
            StatusCode::OK,
            "application/x-pem-file",
            gw.ca.intermediate_pem(),
        ),
        OPENAPI_PATH => Reply::bytes(StatusCode::OK, "application/json", OPENAPI),
        // RFC 5280 §4.2.2.1: caIssuers points at a DER certificate.
        INTERMEDIATE_DER_PATH => Reply::bytes(
            StatusCode::OK,
            "application/pkix-cert",
            gw.ca.intermediate_der(),
        ),
        _ => return None,
    })
}

/// `/ready`: 200 when the database takes a write and the CA can sign, 503 otherwise (with the
/// cause, also logged), so a load balancer stops sending ACME traffic to a gateway that cannot
/// serve it: a database that reads but cannot write (disk full, read-only) is not ready.
pub async fn ready(gw: &Gateway) -> Reply {
    let (owner, at) = (gw.issuance.owner().to_owned(), gw.now());
    let store = gw.db(move |s| s.probe_write(&owner, at)).await;
    if let Err(e) = &store {
        tracing::error!(error = %e, "not ready: the database does not take writes");
    }
    let ca = crate::authority::crl::current(gw).await;
    match (store, ca) {
        (Ok(()), Ok(_)) => Reply::bytes(StatusCode::OK, "text/plain", "ready\n"),
        (Err(e), _) => Reply::bytes(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("database cannot write: {e}\n"),
        ),
        (_, Err(p)) => Reply::bytes(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("CA unavailable: {}\n", p.detail),
        ),
    }
}
