//! The issuers an order's profile can name, behind one interface: issue a checked CSR, or poll a
//! request the issuer accepted earlier. The built-in CA answers at once; connectors to other CAs
//! (plugins) may answer "pending" and be polled.

use std::net::IpAddr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::acme::{Identifier, Problem};
use crate::ca::{Ca, CaError, Csr, Profile};
use crate::plugins::{
    IssuerPlugin, IssuerResult, PluginIssueError, PluginIssueOutcome, PluginIssueRequest,
};

/// What an issuer gets: a CSR the gateway has checked against the order's identifiers.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    pub csr: Csr,
    pub dns_names: Vec<String>,
    pub ip_addrs: Vec<IpAddr>,
    pub profile: Profile,
    /// The order's URL: the same for every attempt at one order, so an issuer can recognise a
    /// retry.
    pub order_url: String,
    pub account_url: String,
}

/// A certificate chain an issuer returned.
#[derive(Clone, Debug)]
pub struct IssuedChain {
    /// Lower-case hex.
    pub serial_hex: String,
    pub not_before: i64,
    pub not_after: i64,
    /// Leaf first, PEM (RFC 8555 §7.4.2).
    pub chain_pem: String,
}

impl IssuedChain {
    /// The stored form of this chain: a valid certificate from `issuer`, stored now, of no
    /// account or order (the caller sets those for an ACME order).
    pub fn into_certificate(
        self,
        issuer: &str,
        origin: &str,
        identifiers: String,
        subject: String,
    ) -> crate::store::Certificate {
        crate::store::Certificate {
            id: crate::ids::new_id(),
            serial: self.serial_hex,
            account_id: None,
            order_id: None,
            chain_pem: self.chain_pem,
            identifiers,
            not_before: self.not_before,
            not_after: self.not_after,
            status: crate::acme::CertificateStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            created_at: chrono::Utc::now().timestamp(),
            issuer: issuer.to_owned(),
            origin: origin.to_owned(),
            subject,
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug)]
pub enum IssueOutcome {
    Issued(IssuedChain),
    /// Accepted, not done: poll `handle` after `retry_after` seconds.
    Pending {
        handle: String,
        retry_after: u32,
    },
}

/// Why an attempt did not produce a certificate.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The issuer refused this request for good; the client sees the problem.
    #[error("refused: {}", .0.detail)]
    Rejected(Problem),
    /// The issuer could not be reached or is busy; worth retrying.
    #[error("unavailable: {detail}")]
    Unavailable {
        detail: String,
        retry_after: Option<u32>,
    },
    /// Anything else; the attempt counts as failed and is retried like an outage.
    #[error("{0}")]
    Failed(String),
}

/// One configured issuer.
#[derive(Clone, Debug)]
pub enum Issuer {
    /// The gateway's own CA.
    Builtin(Arc<Ca>),
    /// An issuer connector plugin (another CA behind the gateway).
    Plugin(IssuerPlugin),
}

impl Issuer {
    pub async fn issue(&self, request: IssueRequest) -> Result<IssueOutcome, IssueError> {
        match self {
            Issuer::Plugin(plugin) => {
                let now = chrono::Utc::now().timestamp();
                let wire = PluginIssueRequest {
                    csr: request.csr.der.clone(),
                    identifiers: request.identifiers(),
                    profile: request.profile.name.clone(),
                    not_before: now,
                    not_after: now + i64::from(request.profile.validity_hours) * 3600,
                    account_url: request.account_url.clone(),
                    order_url: request.order_url.clone(),
                };
                plugin_outcome(plugin.issue(&wire).await, &request)
            }
            Issuer::Builtin(ca) => {
                // In place, as a JWS is verified: the built-in CA signs with ECDSA (P-256 or
                // P-384), tens of microseconds, less than a hand-off to the blocking pool and
                // back would cost.
                let issued = ca
                    .issue(
                        &request.csr,
                        &request.dns_names,
                        &request.ip_addrs,
                        &request.profile,
                    )
                    .map_err(builtin_error)?;
                Ok(IssueOutcome::Issued(IssuedChain {
                    serial_hex: issued.serial_hex,
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                    chain_pem: issued.chain_pem,
                }))
            }
        }
    }

    /// Asks about `request`, which the issuer answered `Pending` with `handle`.
    pub async fn poll(
        &self,
        handle: &str,
        request: &IssueRequest,
    ) -> Result<IssueOutcome, IssueError> {
        match self {
            Issuer::Builtin(_) => Err(IssueError::Failed(format!(
                "the built-in CA never defers issuance; unknown handle {handle:?}"
            ))),
            Issuer::Plugin(plugin) => plugin_outcome(plugin.poll(handle).await, request),
        }
    }
}

impl IssueRequest {
    /// The order's identifiers, DNS names first.
    fn identifiers(&self) -> Vec<Identifier> {
        self.dns_names
            .iter()
            .cloned()
            .map(Identifier::dns)
            .chain(self.ip_addrs.iter().map(|ip| Identifier::ip(*ip)))
            .collect()
    }
}

/// A plugin's answer as the gateway's outcome. A chain is only accepted when its leaf is for
/// the CSR's key and names exactly the order's identifiers: a connector (or the CA behind it)
/// that returns anything else has failed, whatever it says.
fn plugin_outcome(
    answer: IssuerResult<PluginIssueOutcome>,
    request: &IssueRequest,
) -> Result<IssueOutcome, IssueError> {
    match answer {
        Err(fault) => Err(IssueError::Failed(format!("issuer plugin fault: {fault}"))),
        Ok(Err(PluginIssueError::Rejected(problem))) => Err(IssueError::Rejected(problem)),
        Ok(Err(PluginIssueError::Unavailable(secs))) => Err(IssueError::Unavailable {
            detail: "the CA is unreachable or busy".into(),
            retry_after: Some(secs),
        }),
        Ok(Err(PluginIssueError::Failed(message))) => Err(IssueError::Failed(message)),
        Ok(Ok(PluginIssueOutcome::Pending {
            handle,
            retry_after,
        })) => Ok(IssueOutcome::Pending {
            handle,
            retry_after,
        }),
        Ok(Ok(PluginIssueOutcome::Issued(chain_pem))) => {
            Ok(IssueOutcome::Issued(request.accept_chain(chain_pem)?))
        }
    }
}

impl IssueRequest {
    /// The chain an issuer connector returned, accepted only when its first PEM certificate is
    /// for the CSR's key and names exactly the order's identifiers (in any order, duplicates
    /// ignored). Public for the `plugin_answers` fuzz target: a connector's answer is input
    /// the gateway does not control.
    pub fn accept_chain(&self, chain_pem: String) -> Result<IssuedChain, IssueError> {
        let bad = |what: String| IssueError::Failed(format!("the issuer returned {what}"));
        let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| bad("no PEM certificate".into()))?;
        let info = crate::ca::certificate_info(&leaf)
            .map_err(|e| bad(format!("an unreadable leaf: {e}")))?;
        if info.spki_der != self.csr.spki_der {
            return Err(bad("a certificate for another key than the CSR's".into()));
        }
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        let got = sorted(
            info.dns_names
                .iter()
                .cloned()
                .chain(info.ip_addrs.iter().map(ToString::to_string))
                .collect(),
        );
        let want = sorted(
            self.dns_names
                .iter()
                .cloned()
                .chain(self.ip_addrs.iter().map(ToString::to_string))
                .collect(),
        );
        if got != want {
            return Err(bad(format!(
                "a certificate for [{}] instead of [{}]",
                got.join(", "),
                want.join(", ")
            )));
        }
        Ok(IssuedChain {
            serial_hex: info.serial_hex,
            not_before: info.not_before,
            not_after: info.not_after,
            chain_pem,
        })
    }
}

/// A revocation to carry out at the issuer (RFC 8555 §7.6).
#[derive(Debug)]
pub struct RevokeRequest<'a> {
    /// The certificate, DER.
    pub certificate: &'a [u8],
    /// Lower-case hex.
    pub serial_hex: &'a str,
    /// RFC 5280 §5.3.1 reason code.
    pub reason: u8,
}

impl Issuer {
    /// Revokes at the issuer, before the gateway records the revocation: an issuer that
    /// refuses (or is unreachable) leaves the certificate valid and the client told why. The
    /// built-in CA keeps its revocations in the store, which its CRL is built from.
    pub async fn revoke(&self, request: RevokeRequest<'_>) -> Result<(), IssueError> {
        match self {
            Issuer::Builtin(_) => Ok(()),
            Issuer::Plugin(plugin) if !plugin.revokes() => {
                Err(IssueError::Rejected(Problem::server_internal(format!(
                    "issuer {} cannot revoke certificates",
                    plugin.info().name
                ))))
            }
            Issuer::Plugin(plugin) => {
                let answer = plugin
                    .revoke(request.certificate, request.serial_hex, request.reason)
                    .await;
                match answer {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(PluginIssueError::Rejected(problem))) => {
                        Err(IssueError::Rejected(problem))
                    }
                    Ok(Err(PluginIssueError::Unavailable(secs))) => Err(IssueError::Unavailable {
                        detail: "the CA is unreachable or busy".into(),
                        retry_after: Some(secs),
                    }),
                    Ok(Err(PluginIssueError::Failed(message))) => Err(IssueError::Failed(message)),
                    Err(fault) => Err(IssueError::Failed(format!("issuer plugin fault: {fault}"))),
                }
            }
        }
    }
}

/// The built-in CA refuses bad requests for good; its other failures (an expired
/// intermediate, a signing fault) are the operator's to fix, so they are retried.
fn builtin_error(e: CaError) -> IssueError {
    match e {
        CaError::BadCsr(_) | CaError::KeyPolicy(_) | CaError::BadCertificate(_) => {
            IssueError::Rejected(crate::authority::ca_problem(e))
        }
        other => IssueError::Failed(other.to_string()),
    }
}
