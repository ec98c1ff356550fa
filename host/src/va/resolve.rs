//! DNS lookups for validation through one resolver, separating "DNS says there is nothing"
//! from "the lookup failed": the first is an answer (no TXT record, no CAA restriction), the
//! second must never be mistaken for one.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::TokioResolver;

use super::caa::CaaRecord;

/// Why a lookup produced no records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum LookupError {
    /// NXDOMAIN, or NOERROR with no records of the type asked for.
    NotFound,
    /// SERVFAIL, REFUSED, timeouts, network or parse errors: nothing is known.
    Failed(String),
}

/// The validation resolver.
#[derive(Debug)]
pub(super) struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// Uses `server` over UDP and TCP, or the system configuration when `None`. Caching is off:
    /// a client that fixes its TXT record and retries must be seen with the new value.
    pub(super) fn new(server: Option<SocketAddr>, timeout: Duration) -> io::Result<Dns> {
        Ok(Dns {
            resolver: uncached_resolver(server, timeout)?,
        })
    }

    /// A and AAAA addresses of `name`.
    pub(super) async fn ips(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let found = self
            .resolver
            .lookup_ip(fqdn(name))
            .await
            .map_err(classify)?;
        non_empty(found.iter().collect())
    }

    /// TXT values of `name`; the character-strings of one record are concatenated
    /// (RFC 7208 §3.3 style), which is how ACME clients publish long values.
    pub(super) async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let found = self
            .resolver
            .txt_lookup(fqdn(name))
            .await
            .map_err(classify)?;
        non_empty(
            found
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect(),
        )
    }

    /// The CAA RRset at `name` (no climbing; see `caa::relevant_rrset`).
    pub(super) async fn caa(&self, name: &str) -> Result<Vec<CaaRecord>, LookupError> {
        let found = self
            .resolver
            .lookup(fqdn(name), RecordType::CAA)
            .await
            .map_err(classify)?;
        non_empty(
            found
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::CAA(caa) => Some(CaaRecord::from(caa)),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// A resolver using `server` over UDP and TCP, or the system configuration when `None`, with
/// caching off and each query bounded by `timeout`. Validation and the plugins' `dns`
/// capability both use one, so that plugins see what validation sees.
pub(crate) fn uncached_resolver(
    server: Option<SocketAddr>,
    timeout: Duration,
) -> io::Result<TokioResolver> {
    let (config, mut opts) = match server {
        Some(addr) => {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut connection| {
                    connection.port = addr.port();
                    connection
                })
                .collect();
            // Its NXDOMAIN answers are trusted: there is no other server to ask.
            let server = NameServerConfig::new(addr.ip(), true, connections);
            let mut opts = ResolverOpts::default();
            // An explicit server is the whole truth; /etc/hosts must not answer instead.
            opts.use_hosts_file = ResolveHosts::Never;
            (ResolverConfig::from_parts(None, vec![], vec![server]), opts)
        }
        None => hickory_resolver::system_conf::read_system_conf().map_err(io::Error::other)?,
    };
    opts.cache_size = 0;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    // One DNS query must not eat the whole budget of its caller.
    opts.timeout = opts.timeout.min(timeout);
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(io::Error::other)
}

/// Queries are absolute so that no search domain is ever appended.
pub(crate) fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn non_empty<T>(items: Vec<T>) -> Result<Vec<T>, LookupError> {
    if items.is_empty() {
        Err(LookupError::NotFound)
    } else {
        Ok(items)
    }
}

/// NXDOMAIN and NODATA are answers; every other outcome (an error code such as SERVFAIL or
/// REFUSED, a timeout, a network error) leaves nothing known.
pub(crate) fn is_no_records(err: &NetError) -> bool {
    matches!(
        err,
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code: ResponseCode::NXDomain | ResponseCode::NoError,
            ..
        }))
    )
}

fn classify(err: NetError) -> LookupError {
    if is_no_records(&err) {
        LookupError::NotFound
    } else {
        LookupError::Failed(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acmegate_testkit::dns::TestDnsServer;
    use std::net::{Ipv4Addr, Ipv6Addr};

    async fn setup() -> (TestDnsServer, Dns) {
        let server = TestDnsServer::start().await.unwrap();
        let dns = Dns::new(Some(server.addr()), Duration::from_secs(2)).unwrap();
        (server, dns)
    }

    #[tokio::test]
    async fn addresses_and_changing_txt_are_seen_without_caching() {
        let (server, dns) = setup().await;
        assert_eq!(
            dns.ips("a.test").await,
            Ok(vec![IpAddr::from(Ipv4Addr::LOCALHOST)])
        );
        server.set_aaaa("v6.test", Ipv6Addr::LOCALHOST);
        assert_eq!(
            dns.ips("v6.test").await,
            Ok(vec![IpAddr::from(Ipv6Addr::LOCALHOST)])
        );

        assert_eq!(
            dns.txt("_acme-challenge.a.test").await,
            Err(LookupError::NotFound)
        );
        server.add_txt("_acme-challenge.a.test", "first");
        assert_eq!(
            dns.txt("_acme-challenge.a.test").await,
            Ok(vec!["first".into()])
        );
        server.clear_txt("_acme-challenge.a.test");
        server.add_txt("_acme-challenge.a.test", "second");
        assert_eq!(
            dns.txt("_acme-challenge.a.test").await,
            Ok(vec!["second".into()])
        );
    }

    #[tokio::test]
    async fn servfail_is_a_failure_not_an_empty_answer() {
        let (server, dns) = setup().await;
        server.set_servfail("broken.test");
        assert!(matches!(
            dns.caa("broken.test").await,
            Err(LookupError::Failed(_))
        ));
        assert!(matches!(
            dns.txt("broken.test").await,
            Err(LookupError::Failed(_))
        ));
        assert_eq!(dns.caa("fine.test").await, Err(LookupError::NotFound));
    }

    #[tokio::test]
    async fn caa_records_come_back_in_presentation_form() {
        let (server, dns) = setup().await;
        server.set_caa(
            "example.test",
            vec![
                (0, "issue", "ca.example; accounturi=https://a.test/acct/1"),
                (128, "tbs", "opaque"),
                (0, "issuewild", ";"),
            ],
        );
        let records = dns.caa("example.test").await.unwrap();
        assert_eq!(
            records,
            [
                CaaRecord::new(0, "issue", "ca.example; accounturi=https://a.test/acct/1"),
                CaaRecord::new(128, "tbs", "opaque"),
                CaaRecord::new(0, "issuewild", ";"),
            ]
        );
    }
}
