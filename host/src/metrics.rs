//! Prometheus metrics in the text exposition format, kept in plain atomics and maps so that
//! recording costs a few nanoseconds and needs no metrics crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the issuance latency histogram: local signing takes milliseconds,
/// an issuer plugin or remote CA may take seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Counters keyed by label values.
#[derive(Debug, Default)]
struct LabelledCounter(Mutex<BTreeMap<Vec<String>, u64>>);

impl LabelledCounter {
    fn inc(&self, labels: &[&str]) {
        let key: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str, label_names: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (values, n) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let labels: Vec<String> = label_names
                .iter()
                .zip(values)
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {n}", labels.join(","));
        }
    }
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: LabelledCounter,
    orders: LabelledCounter,
    validations: LabelledCounter,
    revocations: AtomicU64,
    issuance_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    issuance_count: AtomicU64,
    issuance_sum_micros: AtomicU64,
    /// Connections open now on the ACME and the admin listener.
    connections_open: [AtomicU64; 3],
    /// Times a listener held a new connection back because `server.max_connections` were open.
    connections_held: [AtomicU64; 3],
}

/// A listener, for the connection metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Acme = 0,
    Admin = 1,
    /// The plain-HTTP listener for CA certificates and CRLs (`server.http_listen`).
    Pki = 2,
}

impl Listener {
    fn label(i: usize) -> &'static str {
        ["acme", "admin", "pki"][i]
    }
}

/// Counts a connection as open for as long as it lives.
#[derive(Debug)]
pub struct OpenConnection<'a>(&'a AtomicU64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// A request answered; `route` is the route's pattern (never the raw path, which would
    /// make one series per resource id).
    pub fn request(&self, route: &str, status: u16) {
        self.requests.inc(&[route, &status.to_string()]);
    }

    /// An order reached `state` (created as pending, or moved to ready/valid/invalid).
    pub fn order(&self, state: &str) {
        self.orders.inc(&[state]);
    }

    pub fn validation(&self, challenge: &str, valid: bool) {
        self.validations
            .inc(&[challenge, if valid { "valid" } else { "invalid" }]);
    }

    pub fn revocation(&self) {
        self.revocations.fetch_add(1, Ordering::Relaxed);
    }

    /// Time from finalize to an issued certificate.
    pub fn issuance(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.issuance_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.issuance_count.fetch_add(1, Ordering::Relaxed);
        self.issuance_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// A connection accepted on `listener`; it counts as open until the guard drops.
    pub fn connection(&self, listener: Listener) -> OpenConnection<'_> {
        let open = &self.connections_open[listener as usize];
        open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(open)
    }

    /// `listener` reached its connection cap and held a new connection back.
    pub fn connection_held(&self, listener: Listener) {
        self.connections_held[listener as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.requests.render(
            &mut out,
            "acmegate_http_requests_total",
            "HTTP requests by route and status.",
            &["route", "status"],
        );
        self.orders.render(
            &mut out,
            "acmegate_orders_total",
            "Orders entering each state.",
            &["state"],
        );
        self.validations.render(
            &mut out,
            "acmegate_validations_total",
            "Challenge validations by type and outcome.",
            &["challenge", "outcome"],
        );
        let _ = writeln!(out, "# HELP acmegate_revocations_total Certificates revoked.\n# TYPE acmegate_revocations_total counter");
        let _ = writeln!(
            out,
            "acmegate_revocations_total {}",
            self.revocations.load(Ordering::Relaxed)
        );
        let name = "acmegate_issuance_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from finalize to an issued certificate.\n# TYPE {name} histogram"
        );
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                self.issuance_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.issuance_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.issuance_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        for (name, kind, help, values) in [
            (
                "acmegate_connections_open",
                "gauge",
                "Connections open now, by listener.",
                &self.connections_open,
            ),
            (
                "acmegate_connections_held_total",
                "counter",
                "New connections held back because server.max_connections were open.",
                &self.connections_held,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (i, value) in values.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{}\"}} {}",
                    Listener::label(i),
                    value.load(Ordering::Relaxed)
                );
            }
        }
        out
    }
}

/// Values read from the gateway's state when scraped, rather than counted as they happen.
#[derive(Debug, Default)]
pub struct Scraped {
    /// (plugin name, calls, faults) of each loaded plugin since it was loaded.
    pub plugins: Vec<(String, u64, u64)>,
    pub plugin_reloads: u64,
    pub plugin_reload_failures: u64,
    /// (window, unrevoked certificates that expire within it); absent when the database did
    /// not answer.
    pub expiring: Vec<(&'static str, i64)>,
    /// (plugin name, whether it serves): what replicas must agree on after an admin's switch.
    pub plugins_enabled: Vec<(String, bool)>,
    /// SHA-256 of the CA's root: every replica of one PKI shows the same.
    pub ca_root_sha256: String,
    /// Revocations the database has recorded (the generation replicas follow); absent when
    /// the database did not answer.
    pub revocations: Option<i64>,
}

/// Expiry windows reported by `acmegate_certificates_expiring`, with their length in seconds:
/// the points at which operators are usually warned.
pub const EXPIRY_WINDOWS: [(&str, i64); 4] = [
    ("1d", 86_400),
    ("7d", 7 * 86_400),
    ("14d", 14 * 86_400),
    ("30d", 30 * 86_400),
];

/// The text exposition of `s`.
pub fn render_scraped(s: &Scraped) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let per_plugin = |value: fn(&(String, u64, u64)) -> u64| {
        s.plugins
            .iter()
            .map(|p| (format!("{{plugin=\"{}\"}}", p.0), value(p).to_string()))
            .collect()
    };
    family(
        "acmegate_plugin_calls_total",
        "counter",
        "Calls of each loaded plugin (since its last load).",
        per_plugin(|p| p.1),
    );
    family(
        "acmegate_plugin_faults_total",
        "counter",
        "Traps, timeouts and out-of-memory outcomes of each loaded plugin.",
        per_plugin(|p| p.2),
    );
    family(
        "acmegate_plugin_reloads_total",
        "counter",
        "Hot reloads of plugin files.",
        vec![(String::new(), s.plugin_reloads.to_string())],
    );
    family(
        "acmegate_plugin_reload_failures_total",
        "counter",
        "Hot reloads that failed (the old version stayed live).",
        vec![(String::new(), s.plugin_reload_failures.to_string())],
    );
    family(
        "acmegate_plugin_enabled",
        "gauge",
        "1 when the plugin serves, 0 when an admin switched it off or its file is gone.",
        s.plugins_enabled
            .iter()
            .map(|(name, on)| (format!("{{plugin=\"{name}\"}}"), u8::from(*on).to_string()))
            .collect(),
    );
    if !s.ca_root_sha256.is_empty() {
        family(
            "acmegate_ca_info",
            "gauge",
            "The CA this gateway issues from, by its root's SHA-256 (the same on every replica).",
            vec![(
                format!("{{root_sha256=\"{}\"}}", s.ca_root_sha256),
                "1".into(),
            )],
        );
    }
    if let Some(n) = s.revocations {
        family(
            "acmegate_revocations_recorded",
            "gauge",
            "Revocations recorded in the database; replicas that agree show the same.",
            vec![(String::new(), n.to_string())],
        );
    }
    if !s.expiring.is_empty() {
        family(
            "acmegate_certificates_expiring",
            "gauge",
            "Unrevoked, unexpired certificates whose notAfter falls within the window.",
            s.expiring
                .iter()
                .map(|(window, n)| (format!("{{within=\"{window}\"}}"), n.to_string()))
                .collect(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_scraped_gauges() {
        let text = render_scraped(&Scraped {
            plugins: vec![("upki".into(), 12, 1)],
            plugin_reloads: 3,
            plugin_reload_failures: 1,
            expiring: vec![("7d", 2), ("30d", 5)],
            plugins_enabled: vec![("upki".into(), false)],
            ca_root_sha256: "ab12".into(),
            revocations: Some(4),
        });
        assert!(
            text.contains("acmegate_plugin_enabled{plugin=\"upki\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("acmegate_ca_info{root_sha256=\"ab12\"} 1"),
            "{text}"
        );
        assert!(text.contains("acmegate_revocations_recorded 4"), "{text}");
        assert!(
            text.contains("acmegate_plugin_calls_total{plugin=\"upki\"} 12"),
            "{text}"
        );
        assert!(text.contains("acmegate_plugin_faults_total{plugin=\"upki\"} 1"));
        assert!(text.contains("acmegate_plugin_reloads_total 3"));
        assert!(text.contains("acmegate_plugin_reload_failures_total 1"));
        assert!(text.contains("# TYPE acmegate_certificates_expiring gauge"));
        assert!(text.contains("acmegate_certificates_expiring{within=\"30d\"} 5"));
        let without_db = render_scraped(&Scraped::default());
        assert!(!without_db.contains("acmegate_certificates_expiring"));
        assert!(!without_db.contains("acmegate_revocations_recorded"));
    }

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.request("/acme/new-order", 201);
        m.request("/acme/new-order", 201);
        m.request("/acme/order/{id}", 400);
        m.order("pending");
        m.validation("http-01", false);
        m.revocation();
        m.issuance(Duration::from_millis(3));
        m.issuance(Duration::from_secs(2));
        let text = m.render();
        assert!(
            text.contains(
                "acmegate_http_requests_total{route=\"/acme/new-order\",status=\"201\"} 2"
            ),
            "{text}"
        );
        assert!(text
            .contains("acmegate_http_requests_total{route=\"/acme/order/{id}\",status=\"400\"} 1"));
        assert!(text
            .contains("acmegate_validations_total{challenge=\"http-01\",outcome=\"invalid\"} 1"));
        assert!(text.contains("acmegate_revocations_total 1"));
        assert!(text.contains("acmegate_issuance_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("acmegate_issuance_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("acmegate_issuance_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("acmegate_issuance_seconds_count 2"));
    }

    #[test]
    fn counts_open_connections_per_listener() {
        let m = Metrics::default();
        let first = m.connection(Listener::Acme);
        let second = m.connection(Listener::Acme);
        let _admin = m.connection(Listener::Admin);
        m.connection_held(Listener::Acme);
        drop(first);
        let text = m.render();
        assert!(
            text.contains("acmegate_connections_open{listener=\"acme\"} 1"),
            "{text}"
        );
        assert!(text.contains("acmegate_connections_open{listener=\"admin\"} 1"));
        assert!(text.contains("acmegate_connections_held_total{listener=\"acme\"} 1"));
        drop(second);
        assert!(m
            .render()
            .contains("acmegate_connections_open{listener=\"acme\"} 0"));
    }
}
