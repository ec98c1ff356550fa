//! RFC 7807 problem documents with the `urn:ietf:params:acme:error:*` types of RFC 8555 §6.7.
//!
//! Every error the ACME side returns is a [`Problem`], built by one constructor per error type so
//! that the type URN and the HTTP status always agree.

use serde::{Deserialize, Serialize};

use super::types::Identifier;

/// The ACME error types (RFC 8555 §6.7 table, plus RFC 8555 §7.3.4 and draft profiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ProblemType {
    AccountDoesNotExist,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Compound,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
    /// draft-aaron-acme-profiles: the requested profile is unknown.
    InvalidProfile,
    /// RFC 9773 §5: newOrder's `replaces` names a certificate another order replaces already.
    AlreadyReplaced,
}

impl ProblemType {
    /// The RFC 8555 §6.7 error name, as it appears after `urn:ietf:params:acme:error:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccountDoesNotExist => "accountDoesNotExist",
            Self::AlreadyRevoked => "alreadyRevoked",
            Self::BadCsr => "badCSR",
            Self::BadNonce => "badNonce",
            Self::BadPublicKey => "badPublicKey",
            Self::BadRevocationReason => "badRevocationReason",
            Self::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Self::Caa => "caa",
            Self::Compound => "compound",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::ExternalAccountRequired => "externalAccountRequired",
            Self::IncorrectResponse => "incorrectResponse",
            Self::InvalidContact => "invalidContact",
            Self::Malformed => "malformed",
            Self::OrderNotReady => "orderNotReady",
            Self::RateLimited => "rateLimited",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::ServerInternal => "serverInternal",
            Self::Tls => "tls",
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedContact => "unsupportedContact",
            Self::UnsupportedIdentifier => "unsupportedIdentifier",
            Self::UserActionRequired => "userActionRequired",
            Self::InvalidProfile => "invalidProfile",
            Self::AlreadyReplaced => "alreadyReplaced",
        }
    }

    /// The full type URN.
    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }

    /// The HTTP status that goes with this type when it is the top-level error of a response.
    pub fn http_status(self) -> u16 {
        match self {
            Self::AccountDoesNotExist => 400,
            Self::Unauthorized => 403,
            Self::OrderNotReady => 403,
            Self::RateLimited => 429,
            Self::ServerInternal => 500,
            Self::UserActionRequired => 403,
            // The request conflicts with the certificate's state, as Boulder answers it.
            Self::AlreadyReplaced => 409,
            _ => 400,
        }
    }

    fn from_urn(urn: &str) -> Option<Self> {
        let name = urn.strip_prefix("urn:ietf:params:acme:error:")?;
        ALL.iter().copied().find(|t| t.name() == name)
    }
}

const ALL: [ProblemType; 26] = [
    ProblemType::AccountDoesNotExist,
    ProblemType::AlreadyRevoked,
    ProblemType::BadCsr,
    ProblemType::BadNonce,
    ProblemType::BadPublicKey,
    ProblemType::BadRevocationReason,
    ProblemType::BadSignatureAlgorithm,
    ProblemType::Caa,
    ProblemType::Compound,
    ProblemType::Connection,
    ProblemType::Dns,
    ProblemType::ExternalAccountRequired,
    ProblemType::IncorrectResponse,
    ProblemType::InvalidContact,
    ProblemType::Malformed,
    ProblemType::OrderNotReady,
    ProblemType::RateLimited,
    ProblemType::RejectedIdentifier,
    ProblemType::ServerInternal,
    ProblemType::Tls,
    ProblemType::Unauthorized,
    ProblemType::UnsupportedContact,
    ProblemType::UnsupportedIdentifier,
    ProblemType::UserActionRequired,
    ProblemType::InvalidProfile,
    ProblemType::AlreadyReplaced,
];

/// An RFC 7807 problem document as ACME uses it (RFC 8555 §6.7), with optional subproblems
/// (§6.7.1) that each name the identifier they concern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", with = "urn_serde")]
    pub kind: ProblemType,
    pub detail: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(default, rename = "subproblems", skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Problem>,
    /// RFC 8555 §6.2: `badSignatureAlgorithm` lists the algorithms the server accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    /// Seconds the client should wait; sent as a Retry-After header, not in the body.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

mod urn_serde {
    use super::ProblemType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &ProblemType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.urn())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ProblemType, D::Error> {
        let s = String::deserialize(d)?;
        ProblemType::from_urn(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown ACME error type {s}")))
    }
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $fn:ident => $kind:ident,)*) => {
        impl Problem {
            $(
                $(#[$doc])*
                pub fn $fn(detail: impl Into<String>) -> Self {
                    Self::new(ProblemType::$kind, detail)
                }
            )*
        }
    };
}

constructors! {
    account_does_not_exist => AccountDoesNotExist,
    already_revoked => AlreadyRevoked,
    bad_csr => BadCsr,
    bad_nonce => BadNonce,
    bad_public_key => BadPublicKey,
    bad_revocation_reason => BadRevocationReason,
    bad_signature_algorithm => BadSignatureAlgorithm,
    caa => Caa,
    compound => Compound,
    connection => Connection,
    dns => Dns,
    external_account_required => ExternalAccountRequired,
    incorrect_response => IncorrectResponse,
    invalid_contact => InvalidContact,
    malformed => Malformed,
    order_not_ready => OrderNotReady,
    rate_limited => RateLimited,
    rejected_identifier => RejectedIdentifier,
    server_internal => ServerInternal,
    tls => Tls,
    unauthorized => Unauthorized,
    unsupported_contact => UnsupportedContact,
    unsupported_identifier => UnsupportedIdentifier,
    user_action_required => UserActionRequired,
    invalid_profile => InvalidProfile,
    already_replaced => AlreadyReplaced,
}

impl Problem {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: kind.http_status(),
            identifier: None,
            subproblems: Vec::new(),
            algorithms: None,
            retry_after: None,
        }
    }

    /// Overrides the HTTP status (e.g. 404 for a malformed request naming no known resource,
    /// 405 or 415 where RFC 8555 asks for them).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn with_identifier(mut self, identifier: Identifier) -> Self {
        self.identifier = Some(identifier);
        self
    }

    /// Wraps per-identifier problems (RFC 8555 §6.7.1). A single subproblem is returned as the
    /// top-level problem itself, since a compound wrapper adds nothing then.
    pub fn from_subproblems(
        kind: ProblemType,
        detail: impl Into<String>,
        subs: Vec<Problem>,
    ) -> Self {
        let mut p = Self::new(kind, detail);
        p.subproblems = subs;
        p
    }

    pub fn with_algorithms(mut self, algorithms: Vec<String>) -> Self {
        self.algorithms = Some(algorithms);
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            // Serialising these plain fields cannot fail; keep a valid body regardless.
            r#"{"type":"urn:ietf:params:acme:error:serverInternal","detail":"","status":500}"#
                .into()
        })
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_urn() {
        for t in ALL {
            assert_eq!(ProblemType::from_urn(&t.urn()), Some(t), "{t:?}");
        }
    }

    #[test]
    fn serialises_with_urn_and_status() {
        let p = Problem::bad_nonce("stale");
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["type"], "urn:ietf:params:acme:error:badNonce");
        assert_eq!(v["status"], 400);
        assert_eq!(v["detail"], "stale");
        assert!(v.get("subproblems").is_none());
        assert_eq!(Problem::unauthorized("x").status, 403);
        assert_eq!(
            Problem::bad_csr("x").kind.urn(),
            "urn:ietf:params:acme:error:badCSR"
        );
    }

    #[test]
    fn subproblems_carry_identifiers() {
        let sub = Problem::rejected_identifier("no").with_identifier(Identifier::dns("a.example"));
        let p = Problem::from_subproblems(ProblemType::RejectedIdentifier, "refused", vec![sub]);
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["subproblems"][0]["identifier"]["value"], "a.example");
        let back: Problem = serde_json::from_value(v).unwrap();
        assert_eq!(back.subproblems.len(), 1);
    }
}
