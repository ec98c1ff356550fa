//! Rows of the gateway's tables as plain Rust types. Times are Unix seconds; identifiers,
//! contacts and problems are JSON text so that one schema serves SQLite and PostgreSQL.

use diesel::{Insertable, Queryable, QueryableByName, Selectable};

use crate::acme::{AccountStatus, AuthzStatus, CertificateStatus, ChallengeStatus, OrderStatus};

/// An ACME account (RFC 8555 §7.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = super::schema::accounts)]
pub struct Account {
    pub id: String,
    /// RFC 7638 thumbprint of `jwk`, base64url; unique.
    pub jwk_thumbprint: String,
    /// The account public key as JWK JSON.
    pub jwk: String,
    pub status: AccountStatus,
    /// JSON array of contact URLs.
    pub contact: String,
    pub tos_agreed: bool,
    /// The EAB key this account was bound with (RFC 8555 §7.3.4), if any.
    pub eab_kid: Option<String>,
    pub created_at: i64,
}

/// An order (RFC 8555 §7.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::orders)]
pub struct Order {
    pub id: String,
    pub account_id: String,
    pub status: OrderStatus,
    pub expires: i64,
    /// JSON array of identifiers, as requested (wildcards keep `*.`).
    pub identifiers: String,
    pub profile: String,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// JSON problem document when invalid.
    pub error: Option<String>,
    pub certificate_id: Option<String>,
    pub created_at: i64,
    /// The certID (RFC 9773 §4.1) of the certificate this order replaces (§5), if any.
    pub replaces: Option<String>,
}

/// An authorization (RFC 8555 §7.1.4); one per identifier per order.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::authorizations)]
pub struct Authorization {
    pub id: String,
    pub order_id: String,
    pub account_id: String,
    /// "dns" | "ip".
    pub identifier_type: String,
    /// Without the `*.` of a wildcard.
    pub identifier_value: String,
    pub wildcard: bool,
    /// As stored; [`crate::acme::state::authz_status`] tells whether it has expired since.
    pub status: AuthzStatus,
    pub expires: i64,
    pub created_at: i64,
}

/// A challenge (RFC 8555 §8).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::challenges)]
pub struct Challenge {
    pub id: String,
    pub authz_id: String,
    /// "http-01" | "dns-01" | "tls-alpn-01".
    pub kind: String,
    pub token: String,
    pub status: ChallengeStatus,
    pub validated: Option<i64>,
    /// JSON problem document when invalid.
    pub error: Option<String>,
}

/// An issued certificate.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::certificates)]
pub struct Certificate {
    pub id: String,
    /// Lower-case hex, unique.
    pub serial: String,
    /// The ACME account and order it was issued for; `None` for admin-issued certificates.
    pub account_id: Option<String>,
    pub order_id: Option<String>,
    /// Leaf first, PEM.
    pub chain_pem: String,
    /// JSON array of identifiers the certificate covers.
    pub identifiers: String,
    pub not_before: i64,
    pub not_after: i64,
    pub status: CertificateStatus,
    pub revoked_at: Option<i64>,
    /// RFC 5280 §5.3.1 CRLReason code.
    pub revocation_reason: Option<i32>,
    pub created_at: i64,
    /// The issuer that signed it: "builtin" or an issuer plugin's name.
    pub issuer: String,
    /// How it was requested: [`ORIGIN_ACME`], [`ORIGIN_ADMIN`], [`ORIGIN_IDENTITY`] or
    /// [`ORIGIN_MANAGED`].
    pub origin: String,
    /// Subject common name of admin-issued certificates; empty for ACME ones.
    pub subject: String,
}

/// A certificate of an ACME order.
pub const ORIGIN_ACME: &str = "acme";
/// A certificate an admin issued through the admin API (from a CSR or with a generated key).
pub const ORIGIN_ADMIN: &str = "admin";
/// An admin API identity (`acmegate admin-cert issue`, or a client's renewal of its own).
pub const ORIGIN_IDENTITY: &str = "identity";
/// A managed certificate's, issued by the gateway on its own (`crate::authority::managed`).
pub const ORIGIN_MANAGED: &str = "managed";

/// An External Account Binding key (RFC 8555 §7.3.4).
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::eab_keys)]
pub struct EabKey {
    pub kid: String,
    /// base64url of the HMAC key. Secret: never logged (see the Debug impl).
    pub hmac_key: String,
    pub label: String,
    /// Set once an account has been created with this key.
    pub account_id: Option<String>,
    pub revoked: bool,
    pub created_at: i64,
    /// JSON array of name patterns (`acme::name_policy`) the key's accounts may order; empty
    /// allows every name.
    pub allowed_names: String,
    /// The profile every order of the key's accounts gets; empty lets them choose.
    pub profile: String,
}

impl std::fmt::Debug for EabKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabKey")
            .field("kid", &self.kid)
            .field("hmac_key", &"<redacted>")
            .field("label", &self.label)
            .field("account_id", &self.account_id)
            .field("revoked", &self.revoked)
            .field("created_at", &self.created_at)
            .field("allowed_names", &self.allowed_names)
            .field("profile", &self.profile)
            .finish()
    }
}

/// A challenge under validation: who validates it and until when (the lease), and how many
/// attempts have started. Exists exactly while the challenge is `processing`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::validation_jobs)]
pub struct ValidationJob {
    pub challenge_id: String,
    /// Attempts started, including ones a crash cut short.
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
    pub created_at: i64,
}

/// A deployment of a stored certificate to one target that is still owed (see
/// `migrations/*_deployment_jobs`).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::deployment_jobs)]
pub struct DeploymentJob {
    pub certificate_id: String,
    /// The `[[targets]]` entry's name.
    pub target: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the job may next be claimed; while an attempt runs, the end of its lease.
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
    /// The deployment carries a key the gateway generated and holds only in memory.
    pub with_key: bool,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A finalized order waiting for its issuer (see `migrations/*_issuance_jobs`). Exists exactly
/// while the order is `processing`.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::issuance_jobs)]
pub struct IssuanceJob {
    pub order_id: String,
    /// "builtin" or a plugin's name.
    pub issuer: String,
    /// The finalize CSR, DER, base64url.
    pub csr: String,
    /// Failed attempts so far.
    pub attempts: i32,
    pub next_attempt_at: i64,
    /// The issuer's handle once it has accepted the request (then it is polled, not asked again).
    pub handle: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A certificate the gateway keeps on its own (see `migrations/*_managed_certificates`).
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::managed_certificates)]
pub struct ManagedCertificate {
    pub name: String,
    /// JSON array of DNS names and IP addresses.
    pub names: String,
    pub profile: String,
    pub key_type: String,
    /// JSON array of `[[targets]]` names.
    pub targets: String,
    /// Renew at this percentage of the lifetime; `None`: in the ARI window.
    pub renew_at_percent: Option<i32>,
    /// [`MANAGED_ACTIVE`] or [`MANAGED_PAUSED`].
    pub state: String,
    /// Declared in the config file rather than by an admin.
    pub declared: bool,
    /// When the row is next due (the renewal, or a retry).
    pub next_renewal_at: i64,
    pub certificate_serial: Option<String>,
    /// The current key, sealed (`crate::ca::seal_at_rest`). Secret even sealed: never logged.
    pub sealed_key: Option<String>,
    /// When the current certificate is to be renewed, on the gateway's clock.
    pub renew_at: Option<i64>,
    /// The certificate every target last received.
    pub deployed_serial: Option<String>,
    /// JSON: when and what the last deployment came to.
    pub last_deployment: Option<String>,
    /// Consecutive failed attempts.
    pub failures: i32,
    pub last_error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ManagedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedCertificate")
            .field("name", &self.name)
            .field("names", &self.names)
            .field("state", &self.state)
            .field("next_renewal_at", &self.next_renewal_at)
            .field("certificate_serial", &self.certificate_serial)
            .field("sealed_key", &self.sealed_key.as_ref().map(|_| "<sealed>"))
            .field("deployed_serial", &self.deployed_serial)
            .field("failures", &self.failures)
            .field("lease_owner", &self.lease_owner)
            .finish_non_exhaustive()
    }
}

/// A managed certificate the gateway renews when due.
pub const MANAGED_ACTIVE: &str = "active";
/// A managed certificate an admin paused: nothing is renewed or deployed until resumed.
pub const MANAGED_PAUSED: &str = "paused";
