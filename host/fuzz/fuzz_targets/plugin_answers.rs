//! What a plugin hands the gateway, which trusts none of it: the certificate chain an issuer
//! connector answers (`IssueRequest::accept_chain`: first PEM certificate, its key against the
//! CSR's, its names against the order's), the URL of an HTTP capability call
//! (`Grants::http_url`: scheme, host against `http_hosts`, plain http) and a log line
//! (`plugins::sanitize_line`). The first input byte picks which; the rest is the string, as a
//! WIT `string` would carry it. Each answer is checked against what the gateway relies on.
#![no_main]

use acmegate::plugins::limits::LOG_LINE_MAX_BYTES;
use acmegate::plugins::{sanitize_line, Grants};
use acmegate_fuzz::issue_request;
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

fuzz_target!(|input: &[u8]| {
    let Some((&which, rest)) = input.split_first() else {
        return;
    };
    // WIT strings are UTF-8: the host sees what a lossy decoding leaves.
    let text = String::from_utf8_lossy(rest).into_owned();
    match which % 3 {
        0 => chain(text),
        1 => url(&text),
        _ => log_line(&text),
    }
});

/// An issuer's chain for the fuzz order (a.example, 10.0.0.1) and the fixed Ed25519 key; seeds
/// are certificates for that key (seeds.sh).
fn chain(pem: String) {
    let request = issue_request();
    if let Ok(issued) = request.accept_chain(pem) {
        // Accepted: the first certificate must really be for the CSR's key.
        let leaf = CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .expect("an accepted chain starts with a PEM certificate");
        let info = acmegate::ca::certificate_info(&leaf).expect("an accepted leaf reads");
        assert_eq!(info.spki_der, request.csr.spki_der);
        assert!(!issued.serial_hex.is_empty());
    }
}

/// An HTTP call under grants for `api.example` and `*.svc.example`, https only.
fn url(url: &str) {
    let grants = Grants {
        http_hosts: vec!["api.example".into(), "*.svc.example".into()],
        ..Grants::default()
    };
    if let Ok(parsed) = grants.http_url(url) {
        assert_eq!(parsed.scheme(), "https", "{url}");
        let host = parsed.host_str().expect("an allowed URL has a host");
        assert!(
            host == "api.example" || host.ends_with(".svc.example"),
            "{url} reaches {host}"
        );
    }
}

/// A log line: no control character survives (no forged lines), and the length is bounded.
fn log_line(message: &str) {
    let line = sanitize_line(message);
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(line.len() <= LOG_LINE_MAX_BYTES + " [truncated]".len());
}
