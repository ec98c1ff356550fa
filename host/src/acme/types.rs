//! ACME wire types (RFC 8555 §7.1): identifiers, statuses and the JSON resource objects.
//!
//! These are plain serde types; the state machine in [`super::state`] and the HTTP layer in
//! `wfe` decide what goes in them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// RFC 8555 §9.7.7 identifier types: `dns`, and `ip` from RFC 8738.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierType {
    Dns,
    Ip,
}

impl IdentifierType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Ip => "ip",
        }
    }
}

impl FromStr for IdentifierType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dns" => Ok(Self::Dns),
            "ip" => Ok(Self::Ip),
            other => Err(format!("unknown identifier type {other:?}")),
        }
    }
}

/// An identifier (RFC 8555 §7.1.3 `identifiers`, §7.1.4 `identifier`). For a wildcard order
/// the `value` keeps the `*.` prefix; authorizations strip it and set `wildcard` instead.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    pub value: String,
}

impl Identifier {
    pub fn dns(value: impl Into<String>) -> Self {
        Self {
            kind: IdentifierType::Dns,
            value: value.into(),
        }
    }

    pub fn ip(addr: IpAddr) -> Self {
        Self {
            kind: IdentifierType::Ip,
            value: addr.to_string(),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        $(#[$doc])*
        ///
        /// Stored as its RFC 8555 name in a text column (`crate::store::status`).
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),* }

        /// Compares with the RFC 8555 name, as logs, JSON and tests spell statuses.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),* }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$variant),)*
                    other => Err(format!(concat!("unknown ", stringify!($name), " {:?}"), other)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// Account status (RFC 8555 §7.1.6, Figure: account objects).
    AccountStatus { Valid => "valid", Deactivated => "deactivated", Revoked => "revoked" }
}

status_enum! {
    /// Order status (RFC 8555 §7.1.6).
    OrderStatus {
        Pending => "pending", Ready => "ready", Processing => "processing",
        Valid => "valid", Invalid => "invalid",
    }
}

status_enum! {
    /// Authorization status (RFC 8555 §7.1.6).
    AuthzStatus {
        Pending => "pending", Valid => "valid", Invalid => "invalid",
        Deactivated => "deactivated", Expired => "expired", Revoked => "revoked",
    }
}

status_enum! {
    /// Challenge status (RFC 8555 §7.1.6).
    ChallengeStatus {
        Pending => "pending", Processing => "processing", Valid => "valid", Invalid => "invalid",
    }
}

status_enum! {
    /// Certificate status as the gateway records it.
    CertificateStatus { Valid => "valid", Revoked => "revoked" }
}

/// The challenge types built into the gateway: RFC 8555 §8.3, §8.4 and RFC 8737.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChallengeType {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "dns-01")]
    Dns01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl ChallengeType {
    pub const ALL: [ChallengeType; 3] = [Self::Http01, Self::Dns01, Self::TlsAlpn01];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

impl FromStr for ChallengeType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown challenge type {s:?}"))
    }
}

impl fmt::Display for ChallengeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The directory object (RFC 8555 §7.1.1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub new_nonce: String,
    pub new_account: String,
    pub new_order: String,
    pub revoke_cert: String,
    pub key_change: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_authz: Option<String>,
    /// RFC 9773 §3: where renewalInfo resources live (`{renewalInfo}/{certID}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_info: Option<String>,
    pub meta: DirectoryMeta,
}

/// Directory `meta` (RFC 8555 §7.1.1; `profiles` from draft-aaron-acme-profiles).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    #[serde(default)]
    pub external_account_required: bool,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub profiles: std::collections::BTreeMap<String, String>,
}

/// An account object (RFC 8555 §7.1.2).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountObject {
    pub status: AccountStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    pub orders: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// An order object (RFC 8555 §7.1.3).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderObject {
    pub status: OrderStatus,
    pub expires: String,
    pub identifiers: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<super::problem::Problem>,
    pub authorizations: Vec<String>,
    pub finalize: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// RFC 9773 §5: the certID of the certificate this order replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// An authorization object (RFC 8555 §7.1.4).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationObject {
    pub identifier: Identifier,
    pub status: AuthzStatus,
    pub expires: String,
    pub challenges: Vec<ChallengeObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,
}

/// A challenge object (RFC 8555 §8, §7.1.5).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeObject {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub status: ChallengeStatus,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<super::problem::Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_wire_form() {
        let id: Identifier = serde_json::from_str(r#"{"type":"ip","value":"10.0.0.1"}"#).unwrap();
        assert_eq!(id.kind, IdentifierType::Ip);
        assert_eq!(
            serde_json::to_string(&Identifier::dns("a.b")).unwrap(),
            r#"{"type":"dns","value":"a.b"}"#
        );
        assert!(serde_json::from_str::<Identifier>(r#"{"type":"email","value":"x"}"#).is_err());
    }

    #[test]
    fn statuses_parse_and_print() {
        for s in ["pending", "ready", "processing", "valid", "invalid"] {
            assert_eq!(s.parse::<OrderStatus>().unwrap().as_str(), s);
        }
        assert!("bogus".parse::<AuthzStatus>().is_err());
        assert_eq!(
            "tls-alpn-01".parse::<ChallengeType>().unwrap(),
            ChallengeType::TlsAlpn01
        );
        assert_eq!(
            serde_json::to_string(&ChallengeType::Dns01).unwrap(),
            "\"dns-01\""
        );
    }
}
