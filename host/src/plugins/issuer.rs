//! Issuer connector plugins: loading with the describe + configure canary, and the `issue`,
//! `poll`, `revoke`, `ca-chain` and `crl` calls, translated to the gateway's types.

use wasmtime::Store;

use super::bindings::issuer::exports::acmegate::plugin::issuer as wit_issuer;
use super::bindings::issuer::IssuerConnector;
use super::bindings::{v0_1, Versioned};
use super::capabilities::HostState;
use super::compat;
use super::limits::ISSUER_LIMITS;
use super::validator::{identifier_to_wit, problem_from_wit};
use super::{PluginError, PluginKind};
use crate::acme::problem::Problem;
use crate::acme::types::Identifier;

super::live::plugin_handle!(
    /// A loaded issuer connector.
    IssuerPlugin,
    super::bindings::IssuerWorld,
    ISSUER_LIMITS,
    load_issuer,
    reload_issuer
);

/// What the gateway asks an issuer to sign (RFC 8555 §7.4, after its own CSR checks).
#[derive(Clone, Debug)]
pub struct PluginIssueRequest {
    /// DER.
    pub csr: Vec<u8>,
    pub identifiers: Vec<Identifier>,
    pub profile: String,
    pub not_before: i64,
    pub not_after: i64,
    pub account_url: String,
    pub order_url: String,
}

/// An issuer's answer to `issue` or `poll`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginIssueOutcome {
    /// The chain, PEM, leaf first.
    Issued(String),
    /// Accepted; poll `handle` after `retry_after` seconds.
    Pending { handle: String, retry_after: u32 },
}

/// An issuer's refusal or failure, as it reported it. Faults of the plugin itself (traps,
/// timeouts, quarantine) are [`PluginError`]s instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginIssueError {
    Rejected(Problem),
    /// Unreachable or busy: retry after this many seconds.
    Unavailable(u32),
    Failed(String),
}

/// The result of an issuer call: the plugin ran (and answered `Ok` or `Err`), or it faulted.
pub type IssuerResult<T> = Result<Result<T, PluginIssueError>, PluginError>;

impl IssuerPlugin {
    /// One call in a fresh, configured instance of the current version. The inner `Result`
    /// carries the plugin's own `issuer-error`, an answer rather than a fault of the call.
    async fn call<R>(
        &self,
        call: &'static str,
        f: impl AsyncFnOnce(
            &Versioned<IssuerConnector, v0_1::issuer::IssuerConnector>,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, wit_issuer::IssuerError>>,
    ) -> IssuerResult<R> {
        self.version()
            .call(call, async |bindings, store| {
                Ok(Ok(f(bindings, store).await?.map_err(error_from_wit)))
            })
            .await
    }

    /// Whether `describe` said the plugin implements `revoke`.
    pub fn revokes(&self) -> bool {
        matches!(
            self.version().info.kind,
            PluginKind::IssuerConnector { revoke: true, .. }
        )
    }

    pub async fn issue(&self, request: &PluginIssueRequest) -> IssuerResult<PluginIssueOutcome> {
        let wit_request = wit_issuer::IssueRequest {
            csr: request.csr.clone(),
            identifiers: request.identifiers.iter().map(identifier_to_wit).collect(),
            profile: request.profile.clone(),
            not_before: request.not_before,
            not_after: request.not_after,
            account: request.account_url.clone(),
            order: request.order_url.clone(),
        };
        let answer = self
            .call("issue", async |b, store| match b {
                Versioned::Current(b) => {
                    b.acmegate_plugin_issuer()
                        .call_issue(store, &wit_request)
                        .await
                }
                Versioned::V0_1(b) => compat::issue(b, store, &wit_request).await,
            })
            .await?;
        Ok(answer.map(outcome_from_wit))
    }

    pub async fn poll(&self, handle: &str) -> IssuerResult<PluginIssueOutcome> {
        let answer = self
            .call("poll", async |b, store| match b {
                Versioned::Current(b) => b.acmegate_plugin_issuer().call_poll(store, handle).await,
                Versioned::V0_1(b) => compat::poll(b, store, handle).await,
            })
            .await?;
        Ok(answer.map(outcome_from_wit))
    }

    /// Revokes `certificate` (DER) with RFC 5280 `reason`.
    pub async fn revoke(
        &self,
        certificate: &[u8],
        serial_hex: &str,
        reason: u8,
    ) -> IssuerResult<()> {
        let request = wit_issuer::RevokeRequest {
            certificate: certificate.to_vec(),
            serial: serial_hex.into(),
            reason,
        };
        self.call("revoke", async |b, store| match b {
            Versioned::Current(b) => {
                b.acmegate_plugin_issuer()
                    .call_revoke(store, &request)
                    .await
            }
            Versioned::V0_1(b) => compat::revoke(b, store, &request).await,
        })
        .await
    }

    /// The issuing CA's chain, PEM.
    pub async fn ca_chain(&self) -> IssuerResult<String> {
        self.call("ca-chain", async |b, store| match b {
            Versioned::Current(b) => b.acmegate_plugin_issuer().call_ca_chain(store).await,
            Versioned::V0_1(b) => compat::ca_chain(b, store).await,
        })
        .await
    }

    /// The CA's current CRL, DER.
    pub async fn crl(&self) -> IssuerResult<Vec<u8>> {
        self.call("crl", async |b, store| match b {
            Versioned::Current(b) => b.acmegate_plugin_issuer().call_crl(store).await,
            Versioned::V0_1(b) => compat::crl(b, store).await,
        })
        .await
    }
}

fn outcome_from_wit(outcome: wit_issuer::IssueOutcome) -> PluginIssueOutcome {
    match outcome {
        wit_issuer::IssueOutcome::Issued(chain) => PluginIssueOutcome::Issued(chain),
        wit_issuer::IssueOutcome::Pending(p) => PluginIssueOutcome::Pending {
            handle: p.handle,
            retry_after: p.retry_after,
        },
    }
}

fn error_from_wit(error: wit_issuer::IssuerError) -> PluginIssueError {
    match error {
        wit_issuer::IssuerError::Rejected(p) => PluginIssueError::Rejected(problem_from_wit(p)),
        wit_issuer::IssuerError::Unavailable(secs) => PluginIssueError::Unavailable(secs),
        wit_issuer::IssuerError::Failed(message) => PluginIssueError::Failed(message),
    }
}
