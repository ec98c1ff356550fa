//! The admin API's routes, in one table: dispatch reads it, the tests walk it (no route may
//! answer without a verified certificate) and the OpenAPI document is checked against it.

use std::sync::Arc;

use super::auth::Role;
use super::{
    acme, certificates, client, eab, managed, operations, summary, AdminRequest, ApiError,
};
use crate::authority::Gateway;
use crate::reply::Reply;

/// Prefix of the admin role's routes.
pub const ADMIN_PREFIX: &str = "/api/v1";
/// Prefix of the client role's routes.
pub const CLIENT_PREFIX: &str = "/api/client";

/// One route: method, path pattern (`{name}` matches one segment), who may call it.
#[derive(Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub role: Role,
    pub summary: &'static str,
    handler: Handler,
}

#[derive(Clone, Copy, Debug)]
enum Handler {
    ListAccounts,
    GetAccount,
    DeactivateAccount,
    ListOrders,
    GetOrder,
    ListCertificates,
    IssueCertificate,
    GenerateCertificate,
    RenewNow,
    GetCertificate,
    RevokeCertificate,
    DeployCertificate,
    ListManaged,
    CreateManaged,
    GetManaged,
    DeleteManaged,
    RenewManaged,
    PauseManaged,
    ResumeManaged,
    ListEabKeys,
    CreateEabKey,
    RevokeEabKey,
    ListProfiles,
    RegenerateCrl,
    ListPlugins,
    ListTargets,
    ReloadPlugins,
    ReloadPlugin,
    EnablePlugin,
    DisablePlugin,
    ListAudit,
    VerifyAudit,
    Summary,
    IssueIdentity,
    ClientCertificate,
    ClientRenew,
    ClientRevoke,
}

const fn route(
    role: Role,
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        role,
        summary,
        handler,
    }
}

const fn admin(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    handler: Handler,
) -> Route {
    route(Role::Admin, method, path, summary, handler)
}

const fn client(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    handler: Handler,
) -> Route {
    route(Role::Client, method, path, summary, handler)
}

/// Every admin API route. Literal paths come before patterns that would also match them.
pub static ROUTES: &[Route] = &[
    admin(
        "GET",
        "/api/v1/accounts",
        "List ACME accounts, each with its number of orders (filter: status)",
        Handler::ListAccounts,
    ),
    admin(
        "GET",
        "/api/v1/accounts/{id}",
        "One ACME account",
        Handler::GetAccount,
    ),
    admin(
        "POST",
        "/api/v1/accounts/{id}/deactivate",
        "Deactivate an ACME account",
        Handler::DeactivateAccount,
    ),
    admin(
        "GET",
        "/api/v1/orders",
        "List orders (filters: account, status)",
        Handler::ListOrders,
    ),
    admin("GET", "/api/v1/orders/{id}", "One order", Handler::GetOrder),
    admin(
        "GET",
        "/api/v1/certificates",
        "List certificates (filters: name, serial, status, expiring_before, origin, issuer)",
        Handler::ListCertificates,
    ),
    admin(
        "POST",
        "/api/v1/certificates",
        "Issue a certificate from a CSR under a profile",
        Handler::IssueCertificate,
    ),
    admin(
        "POST",
        "/api/v1/certificates/generate",
        "Issue a certificate with a key the gateway generates (PEM or PKCS#12)",
        Handler::GenerateCertificate,
    ),
    admin(
        "POST",
        "/api/v1/certificates/renew-now",
        "Move the ARI renewal window of every matching certificate into the past (filter: names, serials, profile, issuer, issued_after, issued_before)",
        Handler::RenewNow,
    ),
    admin(
        "GET",
        "/api/v1/certificates/{serial}",
        "One certificate: PEM chain and parsed fields",
        Handler::GetCertificate,
    ),
    admin(
        "POST",
        "/api/v1/certificates/{serial}/revoke",
        "Revoke a certificate with a reason",
        Handler::RevokeCertificate,
    ),
    admin(
        "POST",
        "/api/v1/certificates/{serial}/deploy",
        "Deploy a certificate to its targets now (one attempt each, then verify)",
        Handler::DeployCertificate,
    ),
    admin(
        "GET",
        "/api/v1/managed",
        "List managed certificates: state, next renewal, last deployment outcome",
        Handler::ListManaged,
    ),
    admin(
        "POST",
        "/api/v1/managed",
        "Declare a managed certificate: the gateway issues, deploys and renews it",
        Handler::CreateManaged,
    ),
    admin(
        "GET",
        "/api/v1/managed/{name}",
        "One managed certificate",
        Handler::GetManaged,
    ),
    admin(
        "DELETE",
        "/api/v1/managed/{name}",
        "Stop managing a certificate declared over the API (its certificates stay valid)",
        Handler::DeleteManaged,
    ),
    admin(
        "POST",
        "/api/v1/managed/{name}/renew",
        "Renew a managed certificate now (new key, new certificate, redeployed)",
        Handler::RenewManaged,
    ),
    admin(
        "POST",
        "/api/v1/managed/{name}/pause",
        "Pause a managed certificate: neither renewed nor deployed until resumed",
        Handler::PauseManaged,
    ),
    admin(
        "POST",
        "/api/v1/managed/{name}/resume",
        "Resume a paused managed certificate (renewed at once if it fell due meanwhile)",
        Handler::ResumeManaged,
    ),
    admin(
        "GET",
        "/api/v1/eab-keys",
        "List EAB keys (without their HMAC keys)",
        Handler::ListEabKeys,
    ),
    admin(
        "POST",
        "/api/v1/eab-keys",
        "Create an EAB key; its HMAC key is shown only in this answer",
        Handler::CreateEabKey,
    ),
    admin(
        "POST",
        "/api/v1/eab-keys/{kid}/revoke",
        "Revoke an EAB key",
        Handler::RevokeEabKey,
    ),
    admin(
        "GET",
        "/api/v1/profiles",
        "List certificate profiles",
        Handler::ListProfiles,
    ),
    admin(
        "POST",
        "/api/v1/crl/regenerate",
        "Rebuild the CRL now",
        Handler::RegenerateCrl,
    ),
    admin(
        "GET",
        "/api/v1/plugins",
        "Loaded plugins and their counters",
        Handler::ListPlugins,
    ),
    admin(
        "GET",
        "/api/v1/targets",
        "Deploy targets: name, deployer plugin, the names they cover, never their config (filter: serial, the targets that cover that certificate)",
        Handler::ListTargets,
    ),
    admin(
        "POST",
        "/api/v1/plugins/reload",
        "Reload every plugin from its file",
        Handler::ReloadPlugins,
    ),
    admin(
        "POST",
        "/api/v1/plugins/{name}/reload",
        "Reload one plugin from its file (the old version stays live if the new one fails)",
        Handler::ReloadPlugin,
    ),
    admin(
        "POST",
        "/api/v1/plugins/{name}/enable",
        "Switch a disabled plugin back on",
        Handler::EnablePlugin,
    ),
    admin(
        "POST",
        "/api/v1/plugins/{name}/disable",
        "Switch a plugin off: its calls fail at once without running it",
        Handler::DisablePlugin,
    ),
    admin(
        "GET",
        "/api/v1/summary",
        "Certificates by state, expiries per day for 90 days, issuances and failed orders over 24 h and 7 d",
        Handler::Summary,
    ),
    admin(
        "GET",
        "/api/v1/audit",
        "Audit entries, newest first (filters: actor, action, resource prefix, since, until)",
        Handler::ListAudit,
    ),
    admin(
        "GET",
        "/api/v1/audit/verify",
        "Verify the audit chain; names the first broken or missing link",
        Handler::VerifyAudit,
    ),
    admin(
        "POST",
        "/api/v1/identities",
        "Issue an admin API identity (admin or client role) with a generated key",
        Handler::IssueIdentity,
    ),
    client(
        "GET",
        "/api/client/certificate",
        "The caller's own certificate",
        Handler::ClientCertificate,
    ),
    client(
        "POST",
        "/api/client/renew",
        "Renew the caller's certificate from a CSR",
        Handler::ClientRenew,
    ),
    client(
        "POST",
        "/api/client/revoke",
        "Revoke the caller's own certificate",
        Handler::ClientRevoke,
    ),
];

/// The route for `method` and `path`, with its path parameters.
pub fn find(method: &str, path: &str) -> Option<(&'static Route, Vec<String>)> {
    ROUTES
        .iter()
        .filter(|r| r.method == method)
        .find_map(|r| matches(r.path, path).map(|params| (r, params)))
}

/// The methods some route accepts at `path` (for a 405's Allow).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|r| matches(r.path, path).is_some())
        .map(|r| r.method)
        .collect()
}

/// The parameters `path` gives `pattern`'s `{...}` segments, or `None` if it does not match.
fn matches(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && !g.is_empty() => params.push(g.to_string()),
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

pub(super) async fn dispatch(
    gw: &Arc<Gateway>,
    route: &Route,
    req: &AdminRequest,
) -> Result<Reply, ApiError> {
    match route.handler {
        Handler::ListAccounts => acme::list_accounts(gw, req).await,
        Handler::GetAccount => acme::get_account(gw, req).await,
        Handler::DeactivateAccount => acme::deactivate_account(gw, req).await,
        Handler::ListOrders => acme::list_orders(gw, req).await,
        Handler::GetOrder => acme::get_order(gw, req).await,
        Handler::ListCertificates => certificates::list(gw, req).await,
        Handler::IssueCertificate => certificates::issue(gw, req).await,
        Handler::GenerateCertificate => certificates::generate(gw, req).await,
        Handler::RenewNow => certificates::renew_now(gw, req).await,
        Handler::GetCertificate => certificates::get(gw, req).await,
        Handler::RevokeCertificate => certificates::revoke(gw, req).await,
        Handler::DeployCertificate => certificates::deploy(gw, req).await,
        Handler::ListManaged => managed::list(gw, req).await,
        Handler::CreateManaged => managed::create(gw, req).await,
        Handler::GetManaged => managed::get(gw, req).await,
        Handler::DeleteManaged => managed::delete(gw, req).await,
        Handler::RenewManaged => managed::renew(gw, req).await,
        Handler::PauseManaged => managed::pause(gw, req, true).await,
        Handler::ResumeManaged => managed::pause(gw, req, false).await,
        Handler::ListEabKeys => eab::list(gw, req).await,
        Handler::CreateEabKey => eab::create(gw, req).await,
        Handler::RevokeEabKey => eab::revoke(gw, req).await,
        Handler::ListProfiles => operations::profiles(gw),
        Handler::RegenerateCrl => operations::regenerate_crl(gw, req).await,
        Handler::ListPlugins => operations::plugins(gw),
        Handler::ListTargets => operations::targets(gw, req).await,
        Handler::ReloadPlugins => operations::reload_plugins(gw, req).await,
        Handler::ReloadPlugin => operations::reload_plugin(gw, req).await,
        Handler::EnablePlugin => operations::switch_plugin(gw, req, true).await,
        Handler::DisablePlugin => operations::switch_plugin(gw, req, false).await,
        Handler::ListAudit => operations::audit(gw, req).await,
        Handler::VerifyAudit => operations::verify_audit(gw).await,
        Handler::Summary => summary::summary(gw, req).await,
        Handler::IssueIdentity => client::issue_identity(gw, req).await,
        Handler::ClientCertificate => client::certificate(gw, req).await,
        Handler::ClientRenew => client::renew(gw, req).await,
        Handler::ClientRevoke => client::revoke(gw, req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_bind_segments() {
        assert_eq!(
            matches("/api/v1/accounts/{id}", "/api/v1/accounts/abc"),
            Some(vec!["abc".to_string()])
        );
        assert_eq!(matches("/api/v1/accounts/{id}", "/api/v1/accounts/"), None);
        assert_eq!(
            matches("/api/v1/accounts/{id}", "/api/v1/accounts/a/b"),
            None
        );
        assert_eq!(
            matches("/api/v1/accounts", "/api/v1/accounts"),
            Some(vec![])
        );
        let (route, params) = find("POST", "/api/v1/certificates/generate").unwrap();
        assert_eq!(route.path, "/api/v1/certificates/generate");
        assert!(params.is_empty());
        let (route, params) = find("POST", "/api/v1/certificates/0a1b/revoke").unwrap();
        assert_eq!(route.path, "/api/v1/certificates/{serial}/revoke");
        assert_eq!(params, vec!["0a1b"]);
        assert!(find("DELETE", "/api/v1/accounts").is_none());
        assert_eq!(allowed_methods("/api/v1/eab-keys"), vec!["GET", "POST"]);
    }

    /// docs/openapi.json describes exactly the admin routes and the public ones, and says
    /// how each admin route refuses.
    #[test]
    fn openapi_document_matches_the_router() {
        use std::collections::BTreeSet;
        let doc: serde_json::Value = serde_json::from_str(crate::wfe::directory::OPENAPI).unwrap();
        let paths = doc["paths"].as_object().expect("paths");
        let documented: BTreeSet<(String, String)> = paths
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .expect("operations")
                    .keys()
                    .map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect();
        let mut served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        served.extend(
            crate::wfe::directory::PUBLIC_ROUTES
                .iter()
                .map(|p| ("GET".to_string(), p.to_string())),
        );
        let missing: Vec<_> = served.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "undocumented: {missing:?}; documented but not served: {stale:?}"
        );
        for r in ROUTES {
            let op = &paths[r.path][r.method.to_lowercase()];
            for code in ["401", "403"] {
                assert!(
                    op["responses"][code].is_object(),
                    "{} {} does not document {code}",
                    r.method,
                    r.path
                );
            }
            assert!(
                op.get("security").is_none(),
                "{} {} must keep the mTLS requirement",
                r.method,
                r.path
            );
        }
        assert_eq!(doc["security"][0]["mtls"], serde_json::json!([]));
    }

    #[test]
    fn routes_are_unique_and_prefixed_by_role() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "duplicate route {} {}",
                r.method,
                r.path
            );
            let prefix = match r.role {
                Role::Admin => ADMIN_PREFIX,
                Role::Client => CLIENT_PREFIX,
                Role::Auditor => unreachable!("no route is for auditors only"),
            };
            assert!(
                r.path.starts_with(prefix),
                "{} is not under {prefix}",
                r.path
            );
            // Each route is reachable: no earlier route shadows it.
            let concrete = r
                .path
                .replace("{id}", "x1")
                .replace("{serial}", "0a")
                .replace("{kid}", "k1")
                .replace("{name}", "p1");
            let (found, _) = find(r.method, &concrete).unwrap();
            assert!(
                std::ptr::eq(found, r),
                "{} {} is shadowed by {}",
                r.method,
                r.path,
                found.path
            );
        }
    }
}
