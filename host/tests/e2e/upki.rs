//! acmegate in front of the real uPKI CA (`upki-ca` from PyPI, run by `upki_ca.rs`) through the
//! `upki-issuer` plugin, on SQLite and PostgreSQL: lego and certbot get, renew and revoke
//! certificates that chain to the CA; revocations reach the CA's CRL once, while acmegate keeps
//! the reason; the CA's newest-only revocation, its bootstrap by registration, its refusals
//! and its outages are handled as docs/upki.md says.

use std::time::{Duration, Instant};

use acmegate::acme::{Identifier, ProblemType};
use acmegate::admin::Role;
use acmegate::authority::issuance::RetryPolicy;
use acmegate::ca::Profile;
use acmegate::client::{AcmeClient, KeyAlg};
use acmegate::config::Config;
use acmegate::plugins::PluginConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::admin_api;
use crate::certbot::{self, certonly};
use crate::lego::{lego, lego_http_renew, lego_http_run};
use crate::support::*;
use crate::upki_ca::{hex, UpkiCa};

/// The CN the gateway registers with at the CA.
const RA_CN: &str = "acmegate-ra.upki.test";
/// Attempts the retry policy allows: generous, so that an order that failed after one attempt
/// was not retried.
const MAX_ATTEMPTS: u32 = 8;
/// How soon an order the CA refused must have failed: at once, not after a retry, which would
/// come 5 s after a failure (the plugin's retry-after when the CA does not answer).
const AT_ONCE: Duration = Duration::from_secs(4);
/// How long an order may take to complete once the CA is back: one retry delay, a start of the
/// CA and a sign, on a machine busy with the rest of the suite.
const BACK_WITHIN: Duration = Duration::from_secs(40);

/// A JSON object as a TOML table (plugin config and grants).
fn table(value: Value) -> toml::Table {
    toml::Value::try_from(value)
        .ok()
        .and_then(|v| v.as_table().cloned())
        .expect("a JSON object")
}

/// Every order is issued by the uPKI CA `ca`; the profile `misconfigured` maps to a uPKI
/// profile the CA does not have. Retries are generous and quick.
fn behind(c: &mut Config, ca: &UpkiCa) {
    let config = json!({
        "endpoint": ca.main,
        // Registration makes the CA generate a 4096-bit RSA key: over a second when busy.
        "timeout_ms": 10_000,
        "profiles": {"default": "server", "misconfigured": "nope"},
    });
    c.plugins = vec![PluginConfig {
        name: "upki".into(),
        kind: "issuer-connector".into(),
        file: plugin_component("upki-issuer"),
        config: table(config),
        grants: table(json!({"zmq_endpoints": [ca.main]})),
    }];
    c.profiles = vec![
        Profile {
            issuer: "upki".into(),
            ..Profile::default_server()
        },
        Profile {
            name: "misconfigured".into(),
            issuer: "upki".into(),
            ..Profile::default_server()
        },
    ];
    c.issuance.retry = RetryPolicy {
        max_attempts: MAX_ATTEMPTS,
        give_up_after_seconds: 300,
        base_delay_seconds: 1,
        max_delay_seconds: 1,
    };
}

/// As [`behind`], for the gateway's own client: challenges approved without validation.
fn behind_auto_approved(c: &mut Config, ca: &UpkiCa) {
    behind(c, ca);
    c.acme.auto_approve = true;
}

/// As [`behind_auto_approved`], for a CA that is down: a short call timeout, so that attempts
/// fail quickly, and `attempts` of them.
fn behind_with_outages(c: &mut Config, ca: &UpkiCa, attempts: u32) {
    behind_auto_approved(c, ca);
    c.plugins[0]
        .config
        .insert("timeout_ms".into(), toml::Value::Integer(1_000));
    c.issuance.retry.max_attempts = attempts;
}

/// As [`behind_auto_approved`], registering as [`RA_CN`] on first use with `seed`.
fn registering(c: &mut Config, ca: &UpkiCa, seed: &str) {
    behind_auto_approved(c, ca);
    let entry = &mut c.plugins[0];
    entry
        .config
        .extend(table(json!({"registration": {"cn": RA_CN}})));
    entry.grants = table(json!({
        "zmq_endpoints": [ca.main, ca.registration],
        "state": true,
        "secrets": {"registration_seed": seed},
    }));
}

/// The CA's certificate in a file, as the root clients trust for what it issues.
fn ca_file(h: &Harness, ca: &UpkiCa) -> std::path::PathBuf {
    let path = h.path("upki-ca.pem");
    std::fs::write(&path, ca.get_ca()).expect("write the CA certificate");
    path
}

/// Checks that the PEM chain in `file` is the leaf and the CA certificate, and chains to
/// `ca_pem` (OpenSSL).
fn chains_to(ca_pem: &std::path::Path, file: &std::path::Path) {
    let chain = std::fs::read_to_string(file).expect("read the chain");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    verify_chain(ca_pem, file);
}

/// [`chains_to`] for a chain the gateway's client downloaded.
fn pem_chains_to(h: &Harness, ca_pem: &std::path::Path, chain: &str) {
    let path = h.path("upki-chain.pem");
    std::fs::write(&path, chain).expect("write the chain");
    chains_to(ca_pem, &path);
}

/// The serial of the leaf of a PEM chain, as the gateway stores it.
fn serial_of(chain: &str) -> String {
    let leaf = openssl::x509::X509::from_pem(chain.as_bytes()).expect("a PEM certificate");
    hex(&leaf.serial_number().to_bn().expect("serial"))
}

/// The CRL acmegate serves for the uPKI issuer, checked: the CA's own CRL as it is (the same
/// bytes as `get_crl`), signed by the CA's key. Returns the serials it lists, repeats kept.
async fn served_crl(h: &Harness, ca: &UpkiCa) -> Vec<String> {
    let c = client(h, KeyAlg::Es256).await;
    let reply = c
        .get(&format!("{}/ca/issuers/upki/crl.der", h.gw.base_url))
        .await
        .expect("GET the issuer's CRL");
    assert_eq!(reply.status, 200);
    let crl = openssl::x509::X509Crl::from_der(&reply.body).expect("a DER CRL");
    assert!(
        crl.verify(&ca.public_key()).expect("verify"),
        "the CRL is signed by the CA"
    );
    assert_eq!(reply.body.as_ref(), ca.get_crl(), "the CA's CRL, unchanged");
    crl.get_revoked()
        .into_iter()
        .flatten()
        .map(|r| hex(&r.serial_number().to_bn().expect("serial")))
        .collect()
}

/// `serial` is on the served CRL exactly once, and the CA says the newest certificate of `cn`
/// (which it is) is revoked, for `reason`.
async fn revoked_at_the_ca(h: &Harness, ca: &UpkiCa, cn: &str, serial: &str, reason: &str) {
    let listed = served_crl(h, ca).await;
    assert_eq!(
        listed.iter().filter(|s| *s == serial).count(),
        1,
        "{serial} once on the CRL: {listed:?}"
    );
    assert_eq!(ca.newest_serial(cn), serial);
    let view = ca.view(cn).expect("the CA knows the certificate");
    // `is_revoked` stays false in the real CA's view: `revoked` is what it keeps.
    assert_eq!(view["revoked"], true, "{view}");
    assert_eq!(view["revoke_reason"], reason, "{view}");
}

/// acmegate's own record of the revocation of `serial` with RFC 5280 reason `code` (`name`):
/// the CA's CRL carries no reasons, so the store and the admin API's certificate view must.
async fn revocation_recorded(h: &Harness, serial: &str, code: i32, name: &str) {
    let store = h.gw.gateway.store.clone();
    let wanted = serial.to_string();
    let cert = tokio::task::spawn_blocking(move || store.certificate_by_serial(&wanted))
        .await
        .expect("join")
        .expect("the certificate is stored");
    assert_eq!(cert.status, "revoked");
    assert_eq!(cert.revocation_reason, Some(code));
    let at = cert.revoked_at.expect("a revocation time");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - 600..=now).contains(&at),
        "revoked at {at}, now {now}"
    );

    let admin = admin_api::identity(h, "upki-operator", Role::Admin).await;
    let view = admin_api::call(
        h,
        Some(&admin),
        "GET",
        &format!("/api/v1/certificates/{serial}"),
        None,
        200,
    )
    .await;
    assert_eq!(view["status"], "revoked", "{view}");
    assert_eq!(view["issuer"], "upki", "{view}");
    assert_eq!(view["revocation_reason"], name, "{view}");
    assert!(view["revoked_at"].is_string(), "{view}");
}

/// Orders `name`, answers its challenge and finalizes it with a fresh key, without waiting for
/// the issuer; returns the order URL and finalize's answer: the order (`processing`, or settled
/// when the issuer was quick), or the issuer's problem when it refused at once.
async fn finalized(c: &AcmeClient, name: &str, profile: Option<&str>) -> (String, String) {
    let ids = [Identifier::dns(name)];
    let reply = c
        .new_order(&ids, profile)
        .await
        .and_then(|r| r.ok())
        .expect("newOrder");
    let url = reply.location().expect("order URL");
    let order = reply.json().expect("order");
    c.authorize(&order, "http-01").await.expect("authorized");
    let (csr, _) = acmegate::client::csr_p256(&ids).expect("CSR");
    let answer = c
        .post(
            order["finalize"].as_str().expect("finalize URL"),
            Some(&json!({"csr": B64.encode(csr)})),
        )
        .await
        .expect("finalize answers");
    (url, String::from_utf8_lossy(&answer.body).into_owned())
}

/// Asks for the revocation of the leaf of `chain` (PEM) with RFC 5280 `reason`, signed with the
/// account key (RFC 8555 §7.6); the gateway's answer.
async fn revoked_over_acme(c: &AcmeClient, chain: &str, reason: u8) -> acmegate::client::Reply {
    let der = openssl::x509::X509::from_pem(chain.as_bytes())
        .and_then(|x| x.to_der())
        .expect("DER");
    c.post(
        &c.url("revokeCert").expect("revokeCert URL"),
        Some(&json!({"certificate": B64.encode(der), "reason": reason})),
    )
    .await
    .expect("revokeCert answers")
}

/// The order id at the end of its URL.
fn order_id(url: &str) -> String {
    url.rsplit('/').next().expect("order id").to_string()
}

/// How many times the gateway has called the uPKI plugin (its `/metrics`, counted from the load
/// canary on): one call per issuance attempt, and nothing else calls it while an order settles.
async fn plugin_calls(h: &Harness) -> u64 {
    let c = client(h, KeyAlg::Es256).await;
    let reply = c
        .get(&format!("{}/metrics", h.gw.base_url))
        .await
        .expect("GET /metrics");
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("acmegate_plugin_calls_total{plugin=\"upki\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no call count of the upki plugin in /metrics:\n{text}"))
}

/// Finalizes an order for `name` that the CA will refuse, and checks it failed at once: one
/// attempt, invalid within [`AT_ONCE`] although [`MAX_ATTEMPTS`] were allowed. Returns the
/// order as the client sees it, and finalize's answer.
async fn fails_at_once(
    h: &Harness,
    c: &AcmeClient,
    name: &str,
    profile: Option<&str>,
) -> (Value, String) {
    let calls = plugin_calls(h).await;
    let started = Instant::now();
    let (url, answer) = finalized(c, name, profile).await;
    let order = c.poll(&url, AT_ONCE * 2).await.expect("the order");
    let took = started.elapsed();
    assert_eq!(order["status"], "invalid", "{order}");
    assert!(took < AT_ONCE, "failed after {took:?}, not at once");
    assert_eq!(plugin_calls(h).await - calls, 1, "one attempt");
    (order, answer)
}

/// Waits until issuance of order `id` has failed `n` times (the CA did not answer).
async fn failed_attempts(h: &Harness, id: &str, n: i32) {
    let store = h.gw.gateway.store.clone();
    eventually(&format!("{n} failed attempt(s) of {id}"), || {
        (store.issuance_job(id).ok()?.attempts >= n).then_some(())
    })
    .await;
    assert_eq!(store.order(id).expect("order").status, "processing");
}

/// The chain issued for order `id`, once it is valid.
async fn issued_chain(h: &Harness, id: &str) -> String {
    let store = h.gw.gateway.store.clone();
    let order = wait_settled_within(&store, id, BACK_WITHIN).await;
    assert_eq!(order.status, "valid", "{order:?}");
    let certs = store.certificates_of_order(id).expect("certificates");
    assert_eq!(certs.len(), 1, "one certificate per order");
    certs[0].chain_pem.clone()
}

/// lego issues (real http-01), renews and revokes through the real CA. Chains are leaf + CA
/// certificate and verify against `get_ca`. The revocation reaches the CA's CRL (served by the
/// gateway, signature checked) and its view; acmegate keeps the reason, which the CRL cannot
/// carry. Revoking again is `alreadyRevoked` and the CRL still lists the serial once (the CA
/// would add it twice).
async fn lego_issues_renews_and_revokes(backend: Backend) {
    let ca = UpkiCa::start("seed");
    let h = Harness::start_with(backend, |c| behind(c, &ca)).await;
    let root = ca_file(&h, &ca);
    let name = "web.upki.test";
    let cert = lego_http_run(&h, name, "lego run via uPKI").await;
    chains_to(&root, &cert);
    let first = serial(&cert);
    assert_eq!(stored_status(&h, &first).await, "valid");
    assert_eq!(ca.newest_serial(name), first);
    lego_http_renew(&h, name, "lego renew via uPKI").await;
    chains_to(&root, &cert);
    let second = serial(&cert);
    assert_ne!(first, second);
    assert_eq!(ca.newest_serial(name), second);

    let revoke = || {
        let mut cmd = lego(&h);
        cmd.args(["-d", name, "revoke", "--keep", "--reason", "1"]);
        cmd
    };
    run(&mut revoke(), "lego revoke via uPKI").await;
    revoked_at_the_ca(&h, &ca, name, &second, "keyCompromise").await;
    revocation_recorded(&h, &second, 1, "keyCompromise").await;
    assert_eq!(stored_status(&h, &first).await, "valid");

    let again = run_failing(&mut revoke(), "lego revoke again").await;
    assert!(again.contains("alreadyRevoked"), "{again}");
    revoked_at_the_ca(&h, &ca, name, &second, "keyCompromise").await;
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    lego_issues_renews_and_revokes,
    lego_issues_renews_and_revokes
);

/// certbot issues (its CSR has no subject: the CA gets a CN anyway) and revokes through the
/// real CA; the chain verifies against `get_ca`, the revocation reaches the CA's CRL, and
/// acmegate keeps certbot's reason.
async fn certbot_issues_and_revokes(backend: Backend) {
    let ca = UpkiCa::start("seed");
    let h = Harness::start_with(backend, |c| behind(c, &ca)).await;
    let name = "bot.upki.test";
    let live = certonly(&h, name, "certbot certonly via uPKI").await;
    chains_to(&ca_file(&h, &ca), &live.join("fullchain.pem"));
    assert!(sans(&live.join("cert.pem")).contains(&format!("DNS:{name}")));
    let issued = serial(&live.join("cert.pem"));
    assert_eq!(ca.newest_serial(name), issued);
    certbot::revoke(&h, &live, "superseded", "certbot revoke via uPKI").await;
    revoked_at_the_ca(&h, &ca, name, &issued, "superseded").await;
    revocation_recorded(&h, &issued, 4, "superseded").await;
    h.gw.shutdown().await;
}
crate::on_both_backends!(certbot_issues_and_revokes, certbot_issues_and_revokes);

/// The CA revokes by CN, so only the newest certificate of a name: revoking the older of two
/// is `unauthorized`, naming the newest serial, and touches nothing at the CA; the newest one
/// is revoked.
async fn only_the_newest_certificate_of_a_name_is_revoked(backend: Backend) {
    let ca = UpkiCa::start("seed");
    let h = Harness::start_with(backend, |c| behind_auto_approved(c, &ca)).await;
    let root = ca_file(&h, &ca);
    let c = account(&h).await;
    let name = "twice.upki.test";
    let ids = [Identifier::dns(name)];
    let (_, old_chain) = c.issue(&ids, "http-01", None).await.expect("first");
    let (_, new_chain) = c.issue(&ids, "http-01", None).await.expect("second");
    pem_chains_to(&h, &root, &new_chain);
    let (old, new) = (serial_of(&old_chain), serial_of(&new_chain));
    assert_eq!(ca.newest_serial(name), new);

    let refused = revoked_over_acme(&c, &old_chain, 1).await;
    let problem = refused.problem().expect("the older certificate is refused");
    assert_eq!(problem.kind, ProblemType::Unauthorized);
    assert!(
        problem.detail.contains(&new),
        "names the newest serial {new}: {}",
        problem.detail
    );
    assert_eq!(stored_status(&h, &old).await, "valid");
    // Absent until the CA revokes something, then `true` for a revoked CN.
    assert_ne!(ca.view(name).expect("view")["revoked"], true);
    assert!(served_crl(&h, &ca).await.is_empty());

    let done = revoked_over_acme(&c, &new_chain, 1).await;
    assert_eq!(done.status, 200, "{:?}", done.problem());
    revoked_at_the_ca(&h, &ca, name, &new, "keyCompromise").await;
    assert!(!served_crl(&h, &ca).await.contains(&old));
    assert_eq!(stored_status(&h, &old).await, "valid");
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    only_the_newest_certificate_of_a_name_is_revoked,
    only_the_newest_certificate_of_a_name_is_revoked
);

/// A revocation the CA made but whose answer never reached the gateway (a timeout, a crash):
/// asked again, the connector finds the serial on the CA's CRL and reports it done instead of
/// revoking again (which would add a second CRL entry), and acmegate records it.
async fn a_revocation_already_at_the_ca_is_recorded_not_repeated(backend: Backend) {
    let ca = UpkiCa::start("seed");
    let h = Harness::start_with(backend, |c| behind_auto_approved(c, &ca)).await;
    let c = account(&h).await;
    let name = "lost.upki.test";
    let (_, chain) = c
        .issue(&[Identifier::dns(name)], "http-01", None)
        .await
        .expect("issued");
    let serial = serial_of(&chain);
    ca.revoke(name, "keyCompromise");
    assert_eq!(stored_status(&h, &serial).await, "valid");

    let done = revoked_over_acme(&c, &chain, 1).await;
    assert_eq!(done.status, 200, "{:?}", done.problem());
    revoked_at_the_ca(&h, &ca, name, &serial, "keyCompromise").await;
    revocation_recorded(&h, &serial, 1, "keyCompromise").await;
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    a_revocation_already_at_the_ca_is_recorded_not_repeated,
    a_revocation_already_at_the_ca_is_recorded_not_repeated
);

/// An acmegate profile mapped to a uPKI profile the CA does not have: the CA's answer is
/// final, so the order fails on its first attempt with the CA's own text.
async fn unknown_upki_profile_fails_the_order_at_once(backend: Backend) {
    let ca = UpkiCa::start("seed");
    let h = Harness::start_with(backend, |c| behind_auto_approved(c, &ca)).await;
    let c = account(&h).await;
    let (order, _) = fails_at_once(&h, &c, "profile.upki.test", Some("misconfigured")).await;
    let detail = order["error"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("[500] Profile not found: nope"), "{order}");
    assert_eq!(
        ca.view("profile.upki.test").unwrap_err(),
        "[300] Certificate not found: profile.upki.test"
    );
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    unknown_upki_profile_fails_the_order_at_once,
    unknown_upki_profile_fails_the_order_at_once
);

/// First use registers with the CA on its registration port (main + 1) with the granted seed,
/// once: the CA issues the `ra`-profile certificate of [`RA_CN`], and the identity is kept
/// sealed in the plugin's state. A gateway restart reuses it; so does a CA restart, after
/// which the CA has forgotten the registration (it keeps them in memory) and is not asked
/// again.
async fn registers_once_and_keeps_its_identity(backend: Backend) {
    let mut ca = UpkiCa::start("the-seed-1234");
    assert_eq!(ca.registration_status(RA_CN), "not_registered");
    let h = Harness::start_with(backend, |c| registering(c, &ca, "the-seed-1234")).await;
    let c = account(&h).await;
    c.issue(&[Identifier::dns("a.upki.test")], "http-01", None)
        .await
        .expect("issued after registering");
    assert_eq!(ca.registration_status(RA_CN), "registered");
    let ra = ca
        .view(RA_CN)
        .expect("the CA issued the RA its certificate");
    assert_eq!(ra["subject"]["organizationalUnitName"], "RA", "{ra}");
    let identity = ca.newest_serial(RA_CN);
    // The identity and nothing else (no seed) is kept, sealed.
    let store = h.gw.gateway.store.clone();
    let mut keys = store.plugin_state_keys("upki", "").expect("plugin state");
    keys.sort();
    assert_eq!(
        keys,
        [
            "identity/ca_certificate",
            "identity/certificate",
            "identity/private_key"
        ]
    );
    for key in &keys {
        let sealed = store
            .plugin_state_get("upki", key)
            .expect("plugin state")
            .expect("a value");
        assert!(!sealed.contains("-----BEGIN"), "{key} is sealed at rest");
    }

    let config = h.gw.gateway.config.clone();
    let h = h.restart(config.clone(), || {}).await;
    let c = account(&h).await;
    c.issue(&[Identifier::dns("b.upki.test")], "http-01", None)
        .await
        .expect("issued after a gateway restart");
    assert_eq!(ca.newest_serial(RA_CN), identity, "no second registration");

    let h = h
        .restart(config, || {
            ca.stop();
            ca.start_again();
        })
        .await;
    assert_eq!(ca.registration_status(RA_CN), "not_registered");
    let c = account(&h).await;
    c.issue(&[Identifier::dns("c.upki.test")], "http-01", None)
        .await
        .expect("issued after a CA restart");
    assert_eq!(ca.registration_status(RA_CN), "not_registered");
    assert_eq!(ca.newest_serial(RA_CN), identity, "no second registration");
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    registers_once_and_keeps_its_identity,
    registers_once_and_keeps_its_identity
);

/// A wrong registration seed is final: the order fails on its first attempt with the CA's
/// message, the seed appears nowhere in the problem, nothing is kept, and the CA registered
/// no one.
async fn wrong_seed_fails_on_the_first_attempt(backend: Backend) {
    let ca = UpkiCa::start("the-seed-1234");
    let h = Harness::start_with(backend, |c| registering(c, &ca, "wrong-seed-5678")).await;
    let c = account(&h).await;
    let (order, answer) = fails_at_once(&h, &c, "a.upki.test", None).await;
    let detail = order["error"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!(
            "uPKI registration of {RA_CN} refused: [700] Invalid registration seed"
        )),
        "{order}"
    );
    for told in [order.to_string(), answer] {
        assert!(!told.contains("wrong-seed-5678"), "the seed leaked: {told}");
    }
    let store = h.gw.gateway.store.clone();
    assert_eq!(
        store.plugin_state_keys("upki", "").expect("plugin state"),
        Vec::<String>::new()
    );
    assert_eq!(ca.registration_status(RA_CN), "not_registered");
    assert!(ca.view(RA_CN).is_err(), "no RA certificate");
    assert!(ca.view("a.upki.test").is_err(), "nothing signed");
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    wrong_seed_fails_on_the_first_attempt,
    wrong_seed_fails_on_the_first_attempt
);

/// The CA down during an order, then back: the order stays `processing` and completes. First
/// a CA that hangs (SIGSTOP: connections accepted, nothing answers), then one that was killed
/// (connection refused) and comes back on its data while the gateway restarts: the
/// certificate still chains to the CA certificate of before.
async fn ca_down_then_back(backend: Backend) {
    let mut ca = UpkiCa::start("seed");
    let h = Harness::start_with(backend, |c| behind_with_outages(c, &ca, MAX_ATTEMPTS)).await;
    let root = ca_file(&h, &ca);
    let c = account(&h).await;

    ca.pause();
    let id = order_id(&finalized(&c, "hung.upki.test", None).await.0);
    failed_attempts(&h, &id, 1).await;
    ca.resume();
    pem_chains_to(&h, &root, &issued_chain(&h, &id).await);

    ca.stop();
    let id = order_id(&finalized(&c, "killed.upki.test", None).await.0);
    failed_attempts(&h, &id, 1).await;
    let (store, config) = (h.gw.gateway.store.clone(), h.gw.gateway.config.clone());
    let h = h
        .restart(config, || {
            assert_eq!(store.order(&id).expect("order").status, "processing");
            ca.start_again();
        })
        .await;
    pem_chains_to(&h, &root, &issued_chain(&h, &id).await);
    h.gw.shutdown().await;
}
crate::on_both_backends!(ca_down_then_back, ca_down_then_back);

/// A CA that stays down: the order fails once the retries are spent, with a problem that
/// names the issuer.
async fn ca_left_down_fails_the_order(backend: Backend) {
    let mut ca = UpkiCa::start("seed");
    let h = Harness::start_with(backend, |c| behind_with_outages(c, &ca, 2)).await;
    let c = account(&h).await;
    ca.stop();
    let id = order_id(&finalized(&c, "down.upki.test", None).await.0);
    failed_attempts(&h, &id, 1).await;
    let order = wait_settled_within(&h.gw.gateway.store, &id, BACK_WITHIN).await;
    assert_eq!(order.status, "invalid", "{order:?}");
    let problem: Value =
        serde_json::from_str(order.error.as_deref().unwrap_or("null")).expect("a problem document");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("\"upki\""), "names the issuer: {problem}");
    h.gw.shutdown().await;
}
crate::on_both_backends!(ca_left_down_fails_the_order, ca_left_down_fails_the_order);

/// Names no internal certificate should carry are refused at newOrder (`rejectedIdentifier`)
/// and never reach the CA, which would sign `www.localhost` and single-label names (it refuses
/// only the bare reserved names).
async fn reserved_names_never_reach_the_ca(backend: Backend) {
    let ca = UpkiCa::start("seed");
    let h = Harness::start_with(backend, |c| behind_auto_approved(c, &ca)).await;
    let c = account(&h).await;
    let calls = plugin_calls(&h).await;
    for name in ["localhost", "www.localhost", "printer.invalid", "printer"] {
        let reply = c
            .new_order(&[Identifier::dns(name)], None)
            .await
            .expect("newOrder answers");
        let problem = reply.problem().unwrap_or_else(|| panic!("{name} refused"));
        assert_eq!(problem.kind, ProblemType::RejectedIdentifier, "{name}");
        assert!(ca.view(name).is_err(), "{name} reached the CA");
    }
    assert_eq!(plugin_calls(&h).await, calls, "the issuer was never asked");
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    reserved_names_never_reach_the_ca,
    reserved_names_never_reach_the_ca
);
