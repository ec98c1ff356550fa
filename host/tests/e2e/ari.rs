//! ACME Renewal Information (RFC 9773): renewalInfo windows, newOrder's `replaces`, windows
//! moved by a revocation for key compromise and by the admin API's renew-now; driven by the
//! gateway's own client and by certbot from PyPI, a release that checks ARI on `renew`.

use std::time::Duration;

use acmegate::acme::renewal::{default_window, CertId};
use acmegate::acme::Identifier;
use acmegate::admin::Role;
use acmegate::client::{cert_id, AcmeClient};
use serde_json::{json, Value};

use crate::admin_api::{call, identity};
use crate::certbot::{certbot_from, certonly_with};
use crate::on_both_backends;
use crate::support::{
    self, account, run, serial, stored_status, suggested_window as window, Backend, Harness,
};

fn leaf_der(chain: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

fn serial_of(chain: &str) -> String {
    CertId::of_certificate(&leaf_der(chain))
        .unwrap()
        .serial_hex()
}

async fn db<T: Send + 'static>(
    h: &Harness,
    f: impl FnOnce(&acmegate::store::Store) -> T + Send + 'static,
) -> T {
    let store = h.gw.gateway.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .unwrap()
}

/// The certificate of `serial` as the store has it, with its renewal columns.
async fn state(h: &Harness, serial: &str) -> acmegate::store::RenewalState {
    let serial = serial.to_string();
    db(h, move |s| s.renewal_state(&serial)).await.unwrap()
}

/// The problem newOrder answers when it replaces `replaces` for `names`.
async fn refused_replace(c: &AcmeClient, names: &[Identifier], replaces: &str) -> (u16, String) {
    let reply = c
        .new_order_replacing(names, None, Some(replaces))
        .await
        .unwrap();
    let problem = reply.problem().expect("a problem document");
    (reply.status, problem.kind.urn())
}

/// The gateway's own client through the whole of RFC 9773: renewalInfo of a fresh
/// certificate (its default window, Retry-After), refusals of bad and unknown certIDs, a
/// renewal with `replaces` recorded in the store, `alreadyReplaced`, the replaced
/// certificate's window read as done, an admin's renew-now (audited), a replacement freed
/// when its order expires (the clock moved, not waited for), and a revocation for key
/// compromise.
async fn the_gateway_client_renews_by_ari(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.acme.auto_approve = true).await;
    let c = account(&h).await;
    let names = [Identifier::dns("a.ari.example")];
    assert_eq!(
        c.url("renewalInfo").unwrap(),
        format!(
            "{}/renewal-info",
            h.directory().trim_end_matches("/directory")
        )
    );

    // A fresh certificate: its default window, deterministic, with Retry-After.
    let (order1_url, chain1) = c.issue(&names, "http-01", None).await.unwrap();
    let id1 = cert_id(&chain1).unwrap();
    let leaf1 = acmegate::ca::certificate_info(&leaf_der(&chain1)).unwrap();
    let reply = c.renewal_info(&chain1).await.unwrap();
    assert_eq!(reply.header("retry-after").as_deref(), Some("21600"));
    let (start, end, body) = window(&c, &chain1).await;
    let want = default_window(leaf1.not_before, leaf1.not_after, &leaf1.serial_der);
    assert_eq!((start, end), (want.start, want.end), "{body}");
    let lifetime = leaf1.not_after - leaf1.not_before;
    assert!(start >= leaf1.not_before + lifetime * 2 / 3 && end <= leaf1.not_after);
    assert!(
        start > h.clock().now(),
        "a fresh certificate is not due: {body}"
    );
    assert!(body.get("explanationURL").is_none(), "{body}");

    // Refusals: malformed, unknown, a key identifier of another issuer, POST.
    let base = c.url("renewalInfo").unwrap();
    for (bad, status, kind) in [
        ("not-a-cert-id", 400, "malformed"),
        ("AQ.gA", 400, "malformed"),
        ("AQ.AAE", 400, "malformed"),
        ("AQ==.AQ", 400, "malformed"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", 404, "malformed"),
    ] {
        let reply = c.get(&format!("{base}/{bad}")).await.unwrap();
        assert_eq!(reply.status, status, "{bad}: {:?}", reply.problem());
        let problem = reply.problem().unwrap();
        assert_eq!(problem.kind.name(), kind, "{bad}");
        assert!(!problem.detail.is_empty());
    }
    let other_issuer = CertId::parse(&id1).unwrap();
    let other_issuer = CertId::new(&[7; 20], &other_issuer.serial).to_string();
    let reply = c.get(&format!("{base}/{other_issuer}")).await.unwrap();
    assert_eq!(reply.status, 404, "{:?}", reply.problem());
    let reply = c.post(&format!("{base}/{id1}"), None).await.unwrap();
    assert_eq!(reply.status, 405);

    // A second account may not replace it (no authorizations), nor may an order with no
    // identifier in common.
    let stranger = account(&h).await;
    assert_eq!(
        refused_replace(&stranger, &names, &id1).await,
        (403, "urn:ietf:params:acme:error:unauthorized".into())
    );
    assert_eq!(
        refused_replace(&c, &[Identifier::dns("b.ari.example")], &id1).await,
        (400, "urn:ietf:params:acme:error:malformed".into())
    );

    // The renewal names what it replaces; the order echoes it and the store records both ends.
    let (order2_url, chain2) = c
        .issue_replacing(&names, "http-01", None, Some(&id1))
        .await
        .unwrap();
    let order2 = c.post(&order2_url, None).await.unwrap().json().unwrap();
    assert_eq!(order2["replaces"], id1.as_str(), "{order2}");
    let order2_id = order2_url.rsplit('/').next().unwrap().to_string();
    let (serial1, serial2) = (serial_of(&chain1), serial_of(&chain2));
    let old = state(&h, &serial1).await;
    assert_eq!(old.marks.replaced_by.as_deref(), Some(order2_id.as_str()));
    let stored_order2 = old.replacement.clone().unwrap();
    assert_eq!(stored_order2.replaces.as_deref(), Some(id1.as_str()));
    let new = state(&h, &serial2).await;
    assert_eq!(
        stored_order2.certificate_id.as_deref(),
        Some(new.certificate.id.as_str())
    );
    assert!(order1_url != order2_url);

    // Replaced once: a second replacement is refused.
    assert_eq!(
        refused_replace(&c, &names, &id1).await,
        (409, "urn:ietf:params:acme:error:alreadyReplaced".into())
    );

    // The replaced certificate's window reads as done (in the past, explained); the
    // replacement's is in the future.
    let now = h.clock().now();
    let (_, end, body) = window(&c, &chain1).await;
    assert!(end <= now, "{body}");
    let page = body["explanationURL"].as_str().unwrap();
    assert!(page.ends_with("/renewal-explanations/replaced"), "{page}");
    let text = c.get(page).await.unwrap();
    assert_eq!(text.status, 200);
    assert!(String::from_utf8_lossy(&text.body).contains("replacement"));
    let (start2, end2, _) = window(&c, &chain2).await;
    assert!(start2 > now);

    // The admin API shows each certificate's window, why it moved and what replaces it.
    let admin = identity(&h, "ops", Role::Admin).await;
    let renewal = |view: &Value, key: &str| {
        chrono::DateTime::parse_from_rfc3339(view["renewal"][key].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    let detail = |serial: &str| format!("/api/v1/certificates/{serial}");
    let view = call(&h, Some(&admin), "GET", &detail(&serial1), None, 200).await;
    assert_eq!(view["renewal"]["moved"], "replaced", "{view}");
    assert_eq!(view["renewal"]["replaced_by"], order2_id.as_str(), "{view}");
    assert_eq!(view["renewal"]["explanation_url"], page, "{view}");
    assert!(renewal(&view, "window_end") <= now, "{view}");
    let view = call(&h, Some(&admin), "GET", &detail(&serial2), None, 200).await;
    assert!(view["renewal"]["moved"].is_null(), "{view}");
    assert!(view["renewal"]["replaced_by"].is_null(), "{view}");
    assert_eq!(
        (renewal(&view, "window_start"), renewal(&view, "window_end")),
        (start2, end2),
        "{view}"
    );

    // An admin's renew-now by name: both certificates for the name move (the replaced one
    // is still valid), audited; the answer says how many.
    let path = "/api/v1/certificates/renew-now";
    let refused = call(&h, Some(&admin), "POST", path, Some(json!({})), 400).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("names"),
        "{refused}"
    );
    let bad_page = json!({"names": ["a.ari.example"], "explanation_url": "ftp://x"});
    call(&h, Some(&admin), "POST", path, Some(bad_page), 400).await;
    let none = json!({"names": ["nothing.ari.example"]});
    let moved = call(&h, Some(&admin), "POST", path, Some(none), 200).await;
    assert_eq!(moved["count"], 0, "{moved}");
    let incident = "https://status.example.org/incident-42";
    let by_name = json!({"names": ["A.ari.example"], "explanation_url": incident});
    let moved = call(&h, Some(&admin), "POST", path, Some(by_name), 200).await;
    assert_eq!(moved["count"], 2, "{moved}");
    let mut both = vec![serial1.clone(), serial2.clone()];
    both.sort();
    assert_eq!(moved["serials"], json!(both));
    let (_, end, body) = window(&c, &chain2).await;
    assert!(
        end <= h.clock().now(),
        "renew-now puts the window in the past: {body}"
    );
    assert_eq!(body["explanationURL"], incident);
    let view = call(&h, Some(&admin), "GET", &detail(&serial2), None, 200).await;
    assert_eq!(view["renewal"]["moved"], "admin", "{view}");
    assert_eq!(view["renewal"]["explanation_url"], incident, "{view}");
    let audit = call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/audit?action=certificate.renew_now",
        None,
        200,
    )
    .await;
    assert_eq!(audit["total"], 2, "{audit}");
    assert_eq!(audit["items"][0]["details"]["count"], 2, "{audit}");
    assert_eq!(
        audit["items"][0]["details"]["filter"]["names"],
        json!(["a.ari.example"])
    );
    // The other filters: a profile and an issuance range that match it, an issuer that does
    // not.
    let by_profile = json!({"profile": "default", "issued_after": "-1d"});
    let moved = call(&h, Some(&admin), "POST", path, Some(by_profile), 200).await;
    assert_eq!(moved["count"], 2, "{moved}");
    let by_issuer = json!({"issuer": "elsewhere"});
    let moved = call(&h, Some(&admin), "POST", path, Some(by_issuer), 200).await;
    assert_eq!(moved["count"], 0, "{moved}");
    let before = json!({"issued_before": "-1d"});
    let moved = call(&h, Some(&admin), "POST", path, Some(before), 200).await;
    assert_eq!(moved["count"], 0, "{moved}");

    // The client renews after renew-now; the new certificate has a normal window again.
    let id2 = cert_id(&chain2).unwrap();
    let (_, chain3) = c
        .issue_replacing(&names, "http-01", None, Some(&id2))
        .await
        .unwrap();
    let (start3, _, body) = window(&c, &chain3).await;
    assert!(start3 > h.clock().now(), "{body}");
    let serial3 = serial_of(&chain3);
    let replaced = state(&h, &serial2).await.replacement.unwrap();
    assert_eq!(replaced.replaces.as_deref(), Some(id2.as_str()));

    // A replacing order that never completes holds the certificate until it expires; then
    // another order may replace it. The clock is moved past the order's lifetime.
    let id3 = cert_id(&chain3).unwrap();
    let pending = c
        .new_order_replacing(&names, None, Some(&id3))
        .await
        .unwrap();
    assert_eq!(pending.status, 201, "{:?}", pending.problem());
    assert_eq!(
        refused_replace(&c, &names, &id3).await,
        (409, "urn:ietf:params:acme:error:alreadyReplaced".into())
    );
    h.clock().advance(25 * 3600);
    let again = c
        .new_order_replacing(&names, None, Some(&id3))
        .await
        .unwrap();
    assert_eq!(again.status, 201, "{:?}", again.problem());

    // A revocation for key compromise moves the window to the revocation.
    let revoke = format!("/api/v1/certificates/{serial3}/revoke");
    call(
        &h,
        Some(&admin),
        "POST",
        &revoke,
        Some(json!({"reason": "keyCompromise"})),
        200,
    )
    .await;
    let (_, end, body) = window(&c, &chain3).await;
    assert!(end <= h.clock().now(), "{body}");
    assert!(
        body["explanationURL"]
            .as_str()
            .unwrap()
            .ends_with("/renewal-explanations/key-compromise"),
        "{body}"
    );
    let s3 = state(&h, &serial3).await;
    assert_eq!(s3.marks.renew_reason.as_deref(), Some("key-compromise"));
    h.gw.shutdown().await;
}
on_both_backends!(
    the_gateway_client_renews_by_ari,
    the_gateway_client_renews_by_ari
);

/// How many renewalInfo requests the gateway answered with 200.
fn renewal_info_requests(h: &Harness) -> u64 {
    let text = h.gw.gateway.metrics.render();
    text.lines()
        .find(|l| {
            l.starts_with(
                r#"acmegate_http_requests_total{route="/acme/renewal-info/{id}",status="200"}"#,
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// certbot from PyPI (certbot_venv.sh) checks ARI on `renew`: it does not renew a certificate
/// before its window, renews it once renew-now moved the window into the past, and then not
/// again (the new certificate's window is ahead). certbot takes the real time, so the
/// gateway answers with a Retry-After of one second and the test waits that out between runs
/// (certbot skips ARI until its last Retry-After has passed).
async fn certbot_renews_when_the_window_says(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.acme.renewal_info_retry_after_seconds = 1).await;
    let venv = support::installed_tool("certbot_venv.sh", "certbot-venv");
    let program = venv.join("bin/certbot");
    let name = "ari.certbot.test";
    let live = certonly_with(&h, certbot_from(&h, &program), name, "certbot certonly").await;
    let first = serial(&live.join("cert.pem"));
    assert_eq!(stored_status(&h, &first).await, "valid");
    let renew = || {
        let mut cmd = certbot_from(&h, &program);
        cmd.args(["renew", "--no-random-sleep-on-renew"]);
        cmd
    };

    let asked = renewal_info_requests(&h);
    let out = run(&mut renew(), "certbot renew (before the window)").await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serial(&live.join("cert.pem")),
        first,
        "renewed early:\n{said}"
    );
    assert!(said.contains("not yet due"), "{said}");
    assert_eq!(
        renewal_info_requests(&h),
        asked + 1,
        "certbot asked renewalInfo once"
    );

    let admin = identity(&h, "ops", Role::Admin).await;
    let moved = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/certificates/renew-now",
        Some(json!({"names": [name]})),
        200,
    )
    .await;
    assert_eq!(moved["count"], 1, "{moved}");
    // certbot's own Retry-After bookkeeping has second resolution.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let out = run(&mut renew(), "certbot renew (after renew-now)").await;
    let second = serial(&live.join("cert.pem"));
    assert_ne!(
        second,
        first,
        "renew-now must make certbot renew:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stored_status(&h, &second).await, "valid");
    // certbot 5.8 does not send `replaces` (its client has no such field): the new order
    // replaces nothing in the store, and the old certificate stays unmarked.
    let new = state(&h, &second).await;
    let order_id = new.certificate.order_id.clone().unwrap();
    let order = db(&h, move |s| s.order(&order_id)).await.unwrap();
    assert_eq!(order.replaces, None);
    assert_eq!(state(&h, &first).await.marks.replaced_by, None);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let asked = renewal_info_requests(&h);
    let out = run(&mut renew(), "certbot renew (new certificate)").await;
    assert_eq!(
        serial(&live.join("cert.pem")),
        second,
        "the new certificate is not due:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(renewal_info_requests(&h), asked + 1);
    h.gw.shutdown().await;
}
on_both_backends!(
    certbot_renews_when_the_window_says,
    certbot_renews_when_the_window_says
);
