//! The host side of the `dns` capability: lookups through the resolver validation uses (the
//! gateway's `validation.dns_resolver`, or the system's), uncached, answers in presentation
//! format. NXDOMAIN and NODATA are answers (an empty list), not errors.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};
use hickory_resolver::net::NetError;
use hickory_resolver::TokioResolver;

use super::bindings::wit::dns::RecordType as WitRecordType;
use super::bindings::wit::types::CapabilityError;

/// Bound on one lookup; the plugin's own wall-clock limit usually ends the call sooner.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The resolver plugins share, made on first use.
pub(crate) struct PluginDns {
    server: Option<SocketAddr>,
    resolver: OnceLock<Result<TokioResolver, String>>,
}

impl std::fmt::Debug for PluginDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginDns")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl PluginDns {
    /// Through `server`, or the system configuration when `None`.
    pub(crate) fn new(server: Option<SocketAddr>) -> Self {
        Self {
            server,
            resolver: OnceLock::new(),
        }
    }

    fn resolver(&self) -> Result<&TokioResolver, CapabilityError> {
        self.resolver
            .get_or_init(|| {
                crate::va::resolve::uncached_resolver(self.server, DNS_TIMEOUT)
                    .map_err(|e| format!("no DNS resolver: {e}"))
            })
            .as_ref()
            .map_err(|e| CapabilityError::Failed(e.clone()))
    }

    /// The records of `name` of type `kind`, each as text: addresses, TXT strings joined,
    /// other types in presentation format.
    pub(crate) async fn lookup(
        &self,
        name: &str,
        kind: WitRecordType,
    ) -> Result<Vec<String>, CapabilityError> {
        if name.is_empty() || name.len() > 253 || !name.is_ascii() {
            return Err(CapabilityError::Invalid(format!(
                "{name:?} is not a DNS name (1 to 253 ASCII characters)"
            )));
        }
        let kind = match kind {
            WitRecordType::A => RecordType::A,
            WitRecordType::Aaaa => RecordType::AAAA,
            WitRecordType::Cname => RecordType::CNAME,
            WitRecordType::Txt => RecordType::TXT,
            WitRecordType::Caa => RecordType::CAA,
            WitRecordType::Mx => RecordType::MX,
        };
        let lookup = tokio::time::timeout(
            DNS_TIMEOUT,
            self.resolver()?
                .lookup(crate::va::resolve::fqdn(name), kind),
        )
        .await
        .map_err(|_| CapabilityError::Timeout)?;
        match lookup {
            Ok(found) => Ok(found
                .answers()
                .iter()
                .filter(|r| r.record_type() == kind)
                .map(|r| presentation(&r.data))
                .collect()),
            Err(e) if crate::va::resolve::is_no_records(&e) => Ok(Vec::new()),
            Err(NetError::Timeout) => Err(CapabilityError::Timeout),
            Err(e) => Err(CapabilityError::Failed(format!("lookup of {name}: {e}"))),
        }
    }
}

fn presentation(data: &RData) -> String {
    match data {
        RData::A(a) => a.to_string(),
        RData::AAAA(a) => a.to_string(),
        // One value per record, its character-strings joined, as ACME clients publish them.
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|part| String::from_utf8_lossy(part))
            .collect(),
        other => other.to_string(),
    }
}
