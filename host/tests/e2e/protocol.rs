//! RFC 8555 protocol checks with acmegate's own client: every §6 request check with its exact
//! problem type, accounts (update, keyChange, deactivation, EAB), orders (list, identifiers,
//! profiles, finalize rules), authorizations, revocation and CAA.

use acmegate::acme::{Identifier, ProblemType};
use acmegate::client::{csr_for_key, csr_p256, AccountKey, KeyAlg};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::{account, client, http01_responder, Backend, Harness};

use acmegate::ca::{ExtendedKeyUsage, Profile};

const JOSE: &str = "application/jose+json";

/// A signed POST that must succeed; returns the JSON body.
async fn ok_json(c: &acmegate::client::AcmeClient, url: &str, payload: Option<&Value>) -> Value {
    c.post(url, payload)
        .await
        .unwrap()
        .ok()
        .unwrap()
        .json()
        .unwrap()
}

fn problem_type(reply: &acmegate::client::Reply) -> ProblemType {
    reply
        .problem()
        .unwrap_or_else(|| {
            panic!(
                "expected a problem, got {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )
        })
        .kind
}

async fn directory_and_nonces(backend: Backend) {
    let h = Harness::start(backend).await;
    let c = client(&h, KeyAlg::Es256).await;
    for key in [
        "newNonce",
        "newAccount",
        "newOrder",
        "revokeCert",
        "keyChange",
    ] {
        assert!(c.url(key).unwrap().starts_with(&h.gw.base_url), "{key}");
    }
    assert_eq!(
        c.directory["meta"]["profiles"]["default"],
        "TLS server certificate, 90 days"
    );
    assert_eq!(c.directory["meta"]["caaIdentities"][0], "acmegate.invalid");
    let head = c.head(&c.url("newNonce").unwrap()).await.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("cache-control").as_deref(), Some("no-store"));
    assert!(head.header("replay-nonce").is_some());
    assert!(head.header("link").unwrap().contains("rel=\"index\""));
    assert_eq!(
        c.get(&c.url("newNonce").unwrap()).await.unwrap().status,
        204
    );
    // RFC 8555 §6.3: GET on a POST-only resource is 405.
    assert_eq!(
        c.get(&c.url("newOrder").unwrap()).await.unwrap().status,
        405
    );
    let root = c
        .get(&format!("{}/ca/root.pem", h.gw.base_url))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&root.body).contains("BEGIN CERTIFICATE"));
    h.gw.shutdown().await;
}
crate::on_both_backends!(directory_and_nonces, directory_and_nonces);

async fn section_6_request_checks(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.server.max_body_bytes = 4096).await;
    let c = account(&h).await;
    let url = c.url("newOrder").unwrap();
    let payload = json!({"identifiers": [{"type": "dns", "value": "a.example"}]}).to_string();
    let signed = |header: Value| c.key.sign(&header, payload.as_bytes());
    let kid = c.kid.clone().unwrap();

    // Content type (§6.2): 415.
    let h0 = c.header(&url).await.unwrap();
    let r = c
        .post_raw(&url, signed(h0), "application/json")
        .await
        .unwrap();
    assert_eq!((r.status, problem_type(&r)), (415, ProblemType::Malformed));

    // Unknown nonce: badNonce, with a fresh nonce to retry with (§6.5).
    let r = c
        .post_raw(
            &url,
            signed(json!({"alg": "ES256", "kid": kid, "nonce": "bm9wZQ", "url": url})),
            JOSE,
        )
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::BadNonce);
    assert!(r.header("replay-nonce").is_some());

    // A nonce is single use.
    let nonce = c.nonce().await.unwrap();
    let body = signed(json!({"alg": "ES256", "kid": kid, "nonce": nonce, "url": url}));
    assert_eq!(
        c.post_raw(&url, body.clone(), JOSE).await.unwrap().status,
        201
    );
    let r = c.post_raw(&url, body, JOSE).await.unwrap();
    assert_eq!(problem_type(&r), ProblemType::BadNonce);

    // The signed url must be the request URL (§6.4).
    let r = c.post_raw(&url, signed(json!({"alg": "ES256", "kid": kid, "nonce": c.nonce().await.unwrap(), "url": c.url("newAccount").unwrap()})), JOSE).await.unwrap();
    assert_eq!(problem_type(&r), ProblemType::Unauthorized);

    // Algorithms: none and MACs are refused with the allowed list.
    for alg in ["none", "HS256"] {
        let r = c
            .post_raw(
                &url,
                signed(
                    json!({"alg": alg, "kid": kid, "nonce": c.nonce().await.unwrap(), "url": url}),
                ),
                JOSE,
            )
            .await
            .unwrap();
        assert_eq!(
            problem_type(&r),
            ProblemType::BadSignatureAlgorithm,
            "{alg}"
        );
        assert!(r
            .problem()
            .unwrap()
            .algorithms
            .unwrap()
            .contains(&"ES256".to_string()));
    }

    // Exactly one of kid and jwk; newOrder wants kid.
    let r = c.post_raw(&url, signed(json!({"alg": "ES256", "kid": kid, "jwk": c.key.jwk(), "nonce": c.nonce().await.unwrap(), "url": url})), JOSE).await.unwrap();
    assert_eq!(problem_type(&r), ProblemType::Malformed);
    let r = c.post_raw(&url, signed(json!({"alg": "ES256", "jwk": c.key.jwk(), "nonce": c.nonce().await.unwrap(), "url": url})), JOSE).await.unwrap();
    assert_eq!(problem_type(&r), ProblemType::Malformed);

    // Unknown account.
    let r = c.post_raw(&url, signed(json!({"alg": "ES256", "kid": format!("{}/acme/acct/nobody", h.gw.base_url), "nonce": c.nonce().await.unwrap(), "url": url})), JOSE).await.unwrap();
    assert_eq!(problem_type(&r), ProblemType::AccountDoesNotExist);

    // A signature by another key.
    let other = AccountKey::generate(KeyAlg::Es256).unwrap();
    let r = c
        .post_raw(
            &url,
            other.sign(
                &json!({"alg": "ES256", "kid": kid, "nonce": c.nonce().await.unwrap(), "url": url}),
                payload.as_bytes(),
            ),
            JOSE,
        )
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::Malformed);

    // Body size limit, and garbage bodies.
    let r = c.post_raw(&url, vec![b'x'; 10_000], JOSE).await.unwrap();
    assert_eq!((r.status, problem_type(&r)), (413, ProblemType::Malformed));
    let r = c.post_raw(&url, b"not json".to_vec(), JOSE).await.unwrap();
    assert_eq!(problem_type(&r), ProblemType::Malformed);
    h.gw.shutdown().await;
}
crate::on_both_backends!(section_6_request_checks, section_6_request_checks);

async fn account_lifecycle_and_key_change(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut c = client(&h, KeyAlg::EdDsa).await;
    let url = c.url("newAccount").unwrap();
    let r = c
        .post(&url, Some(&json!({"onlyReturnExisting": true})))
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::AccountDoesNotExist);
    for (contact, kind) in [
        ("tel:+15551234", ProblemType::UnsupportedContact),
        ("mailto:a@b.org?subject=x", ProblemType::InvalidContact),
    ] {
        let r = c
            .post(&url, Some(&json!({"contact": [contact]})))
            .await
            .unwrap();
        assert_eq!(problem_type(&r), kind, "{contact}");
    }
    let created = c
        .new_account(&["mailto:ops@example.org"], None)
        .await
        .unwrap();
    assert_eq!(created.status, 201);
    let kid = c.kid.clone().unwrap();
    let again = c
        .post_jwk(&url, Some(&json!({"onlyReturnExisting": true})))
        .await
        .unwrap();
    assert_eq!((again.status, again.location()), (200, Some(kid.clone())));

    // Update the contact.
    let upd = ok_json(
        &c,
        &kid,
        Some(&json!({"contact": ["mailto:new@example.org"]})),
    )
    .await;
    assert_eq!(upd["contact"][0], "mailto:new@example.org");

    // keyChange (§7.3.5): the inner JWS is signed by the new key.
    let new_key = AccountKey::generate(KeyAlg::Es384).unwrap();
    let kc_url = c.url("keyChange").unwrap();
    let inner = new_key.sign(
        &json!({"alg": "ES384", "jwk": new_key.jwk(), "url": kc_url}),
        json!({"account": kid, "oldKey": c.key.jwk()})
            .to_string()
            .as_bytes(),
    );
    let inner: Value = serde_json::from_slice(&inner).unwrap();
    c.post(&kc_url, Some(&inner)).await.unwrap().ok().unwrap();
    // The old key no longer authenticates (an EdDSA signature for an account that now has a
    // P-384 key: the algorithm does not fit the key); the new one does.
    let r = c.post(&kid, None).await.unwrap();
    assert_eq!(problem_type(&r), ProblemType::BadSignatureAlgorithm);
    let old = std::mem::replace(&mut c.key, new_key);
    assert_eq!(c.post(&kid, None).await.unwrap().status, 200);

    // A key another account holds is refused with 409 and that account's URL.
    let other = account(&h).await;
    let other_kid = other.kid.clone().unwrap();
    let inner = other.key.sign(
        &json!({"alg": "ES256", "jwk": other.key.jwk(), "url": kc_url}),
        json!({"account": kid, "oldKey": c.key.jwk()})
            .to_string()
            .as_bytes(),
    );
    let r = c
        .post(&kc_url, Some(&serde_json::from_slice(&inner).unwrap()))
        .await
        .unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(r.location(), Some(other_kid));
    drop(old);

    // Deactivation (§7.3.6): afterwards the account is refused.
    let d = ok_json(&c, &kid, Some(&json!({"status": "deactivated"}))).await;
    assert_eq!(d["status"], "deactivated");
    let r = c
        .new_order(&[Identifier::dns("x.example")], None)
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::Unauthorized);
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    account_lifecycle_and_key_change,
    account_lifecycle_and_key_change
);

async fn external_account_binding(backend: Backend) {
    let h = Harness::start_with(backend, |c| {
        c.acme.eab_required = true;
        crate::support::with_short_profile(c);
    })
    .await;
    let key = b"0123456789abcdef0123456789abcdef".to_vec();
    let store = h.gw.gateway.store.clone();
    let row = acmegate::store::EabKey {
        kid: "kid-1".into(),
        hmac_key: B64.encode(&key),
        label: "t".into(),
        account_id: None,
        revoked: false,
        created_at: 0,
        // The key's policy: names under team-a only, every order on the short profile.
        allowed_names: r#"["*.team-a.example"]"#.into(),
        profile: "short".into(),
    };
    tokio::task::spawn_blocking(move || store.insert_eab_key(&row))
        .await
        .unwrap()
        .unwrap();
    let mut c = client(&h, KeyAlg::Es256).await;
    assert_eq!(c.directory["meta"]["externalAccountRequired"], true);
    match c.new_account(&[], None).await {
        Err(acmegate::client::ClientError::Api(p)) => {
            assert_eq!(p.kind, ProblemType::ExternalAccountRequired)
        }
        other => panic!("expected externalAccountRequired, got {other:?}"),
    }
    match c
        .new_account(&[], Some(("kid-1", b"wrong-key-wrong-key-wrong-key-xx")))
        .await
    {
        Err(acmegate::client::ClientError::Api(p)) => assert_eq!(p.kind, ProblemType::Unauthorized),
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert_eq!(
        c.new_account(&[], Some(("kid-1", &key)))
            .await
            .unwrap()
            .status,
        201
    );
    // The key is bound now: another account cannot use it.
    let mut d = client(&h, KeyAlg::Es256).await;
    match d.new_account(&[], Some(("kid-1", &key))).await {
        Err(acmegate::client::ClientError::Api(p)) => assert_eq!(p.kind, ProblemType::Unauthorized),
        other => panic!("expected unauthorized, got {other:?}"),
    }

    // The key's policy at newOrder: names outside it, another profile, then what it allows.
    let outside = c
        .new_order(
            &[
                Identifier::dns("www.team-a.example"),
                Identifier::dns("www.team-b.example"),
            ],
            None,
        )
        .await
        .unwrap();
    let p = outside.problem().unwrap();
    assert_eq!(p.kind, ProblemType::RejectedIdentifier, "{p}");
    assert_eq!(p.subproblems.len(), 1, "{p:?}");
    assert_eq!(
        p.subproblems[0].identifier,
        Some(Identifier::dns("www.team-b.example"))
    );
    let other_profile = c
        .new_order(&[Identifier::dns("www.team-a.example")], Some("default"))
        .await
        .unwrap();
    assert_eq!(problem_type(&other_profile), ProblemType::InvalidProfile);
    let allowed = c
        .new_order(&[Identifier::dns("*.team-a.example")], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(allowed.json().unwrap()["profile"], "short");
    // Revoking the key stops its account from ordering.
    let store = h.gw.gateway.store.clone();
    tokio::task::spawn_blocking(move || store.revoke_eab_key("kid-1"))
        .await
        .unwrap()
        .unwrap();
    let revoked = c
        .new_order(&[Identifier::dns("www.team-a.example")], None)
        .await
        .unwrap();
    assert_eq!(problem_type(&revoked), ProblemType::Unauthorized);
    h.gw.shutdown().await;
}
crate::on_both_backends!(external_account_binding, external_account_binding);

async fn orders_identifiers_and_revocation(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.acme.orders_per_page = 2).await;
    let tokens = http01_responder(h.http_port).await;
    // An account key we hold as PKCS#8, to make a CSR with it below.
    let (_, account_pkcs8) = csr_p256(&[Identifier::dns("unused.example")]).unwrap();
    let mut c = client(&h, KeyAlg::Es256).await;
    c.key = AccountKey::from_ec_p256_pkcs8(&account_pkcs8).unwrap();
    c.new_account(&["mailto:ops@example.org"], None)
        .await
        .unwrap();
    let thumb = acmegate::jws::thumbprint(c.key.jwk()).unwrap();

    // Refusals at newOrder: bad names with subproblems, unknown profile.
    let r = c
        .new_order(
            &[
                Identifier::dns("ok.example"),
                Identifier::dns("bad_name.example"),
                Identifier::dns("*.com"),
            ],
            None,
        )
        .await
        .unwrap();
    let p = r.problem().unwrap();
    assert_eq!(
        (p.kind, p.subproblems.len()),
        (ProblemType::RejectedIdentifier, 2)
    );
    let r = c
        .new_order(&[Identifier::dns("ok.example")], Some("gold"))
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::InvalidProfile);

    // An IP identifier (RFC 8738) proven over http-01; a wildcard over dns-01.
    let ip = Identifier::ip("127.0.0.1".parse().unwrap());
    let order = c
        .new_order(&[ip.clone(), Identifier::dns("*.wild.example")], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let order_url = order.location().unwrap();
    let order = order.json().unwrap();
    assert_eq!(order["status"], "pending");

    // Finalize before the authorizations are valid: orderNotReady.
    let (csr, leaf_key) = csr_p256(&[ip.clone(), Identifier::dns("*.wild.example")]).unwrap();
    let finalize = order["finalize"].as_str().unwrap().to_string();
    let r = c
        .post(&finalize, Some(&json!({"csr": B64.encode(&csr)})))
        .await
        .unwrap();
    assert_eq!(
        (r.status, problem_type(&r)),
        (403, ProblemType::OrderNotReady)
    );

    for authz_url in order["authorizations"].as_array().unwrap() {
        let authz_url = authz_url.as_str().unwrap();
        let authz = ok_json(&c, authz_url, None).await;
        let kinds: Vec<&str> = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ch| ch["type"].as_str().unwrap())
            .collect();
        let want = if authz["identifier"]["type"] == "ip" {
            assert!(!kinds.contains(&"dns-01"), "no dns-01 for IPs: {kinds:?}");
            "http-01"
        } else {
            assert_eq!(authz["wildcard"], true);
            assert_eq!(kinds, ["dns-01"], "wildcards only with dns-01");
            "dns-01"
        };
        let chall = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ch| ch["type"] == want)
            .unwrap();
        let token = chall["token"].as_str().unwrap();
        let key_auth = format!("{token}.{thumb}");
        if want == "http-01" {
            tokens.lock().unwrap().insert(token.to_string(), key_auth);
        } else {
            let digest = ring::digest::digest(&ring::digest::SHA256, key_auth.as_bytes());
            h.dns
                .add_txt("_acme-challenge.wild.example", &B64.encode(digest));
        }
        let r = c
            .post(chall["url"].as_str().unwrap(), Some(&json!({})))
            .await
            .unwrap()
            .ok()
            .unwrap();
        assert!(r.header("link").unwrap().contains("rel=\"up\""));
        let done = c
            .poll(authz_url, std::time::Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(done["status"], "valid", "{done}");
    }
    let ready = c
        .poll(&order_url, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");

    // A CSR that does not name exactly the identifiers: badCSR.
    let (wrong, _) = csr_p256(std::slice::from_ref(&ip)).unwrap();
    let r = c
        .post(&finalize, Some(&json!({"csr": B64.encode(&wrong)})))
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::BadCsr);
    // A CSR for the account's own key: badCSR (RFC 8555 §11.1), and the order stays ready.
    let own = csr_for_key(
        &account_pkcs8,
        &[ip.clone(), Identifier::dns("*.wild.example")],
    )
    .unwrap();
    let r = c
        .post(&finalize, Some(&json!({"csr": B64.encode(&own)})))
        .await
        .unwrap();
    let p = r.problem().unwrap();
    assert_eq!((r.status, p.kind), (400, ProblemType::BadCsr));
    assert_eq!(
        p.detail,
        "the CSR's public key is the account key; an account key must not be a certificate key \
         (RFC 8555 §11.1): make the CSR with a new key"
    );
    let done = ok_json(&c, &finalize, Some(&json!({"csr": B64.encode(&csr)}))).await;
    assert_eq!(done["status"], "valid");
    let chain = c
        .post(done["certificate"].as_str().unwrap(), None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(
        chain.header("content-type").as_deref(),
        Some("application/pem-certificate-chain")
    );
    let pem = String::from_utf8(chain.body.to_vec()).unwrap();
    let leaf = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let text = String::from_utf8(leaf.to_text().unwrap()).unwrap();
    assert!(
        text.contains("IP Address:127.0.0.1") && text.contains("DNS:*.wild.example"),
        "{text}"
    );

    // Orders list, two per page, linked with rel="next" (§7.1.2.1).
    c.new_order(&[Identifier::dns("p1.example")], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    c.new_order(&[Identifier::dns("p2.example")], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let acct = c
        .post(c.kid.as_ref().unwrap(), None)
        .await
        .unwrap()
        .json()
        .unwrap();
    let page1 = c
        .post(acct["orders"].as_str().unwrap(), None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(page1.json().unwrap()["orders"].as_array().unwrap().len(), 2);
    assert_eq!(page1.json().unwrap()["orders"][0], order_url);
    let next = page1
        .header("link")
        .into_iter()
        .chain(
            page1
                .headers
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string),
        )
        .find(|l| l.contains("rel=\"next\""))
        .expect("next link");
    let next_url = next
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let page2 = ok_json(&c, &next_url, None).await;
    assert_eq!(page2["orders"].as_array().unwrap().len(), 1);

    // Authorization deactivation (§7.5.2) makes its pending order invalid.
    let pending = c
        .new_order(&[Identifier::dns("gone.example")], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let pending_url = pending.location().unwrap();
    let authz_url = pending.json().unwrap()["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let d = ok_json(&c, &authz_url, Some(&json!({"status": "deactivated"}))).await;
    assert_eq!(d["status"], "deactivated");
    assert_eq!(
        c.post(&pending_url, None).await.unwrap().json().unwrap()["status"],
        "invalid"
    );

    // Revocation: a stranger without authorizations is refused; a bad reason is refused; the
    // certificate's own key may revoke (§7.6), once.
    let leaf_der = leaf.to_der().unwrap();
    let stranger = account(&h).await;
    let revoke = c.url("revokeCert").unwrap();
    let r = stranger
        .post(
            &revoke,
            Some(&json!({"certificate": B64.encode(&leaf_der)})),
        )
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::Unauthorized);
    let r = c
        .post(
            &revoke,
            Some(&json!({"certificate": B64.encode(&leaf_der), "reason": 7})),
        )
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::BadRevocationReason);
    let mut by_key = client(&h, KeyAlg::Es256).await;
    by_key.key = AccountKey::from_ec_p256_pkcs8(&leaf_key).unwrap();
    assert_eq!(
        by_key
            .post(
                &revoke,
                Some(&json!({"certificate": B64.encode(&leaf_der), "reason": 1}))
            )
            .await
            .unwrap()
            .status,
        200
    );
    let r = c
        .post(
            &revoke,
            Some(&json!({"certificate": B64.encode(&leaf_der)})),
        )
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::AlreadyRevoked);

    // The CRL at the URL the certificate names lists it at once, with its reason.
    let crl_url = format!("{}/ca/crl.der", h.gw.base_url);
    assert!(text.contains(&format!("URI:{crl_url}")), "{text}");
    let crl = c.get(&crl_url).await.unwrap();
    assert_eq!(
        crl.header("content-type").as_deref(),
        Some("application/pkix-crl")
    );
    let crl = openssl::x509::X509Crl::from_der(&crl.body).unwrap();
    let intermediate =
        openssl::x509::X509::from_pem(h.gw.gateway.ca.intermediate_pem().as_bytes()).unwrap();
    assert!(crl.verify(&intermediate.public_key().unwrap()).unwrap());
    let listed: Vec<String> = crl
        .get_revoked()
        .unwrap()
        .iter()
        .map(|r| {
            r.serial_number()
                .to_bn()
                .unwrap()
                .to_hex_str()
                .unwrap()
                .to_ascii_lowercase()
        })
        .collect();
    let serial = leaf
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_ascii_lowercase();
    assert_eq!(listed, [serial]);
    let crl_pem = c
        .get(&format!("{}/ca/crl.pem", h.gw.base_url))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&crl_pem.body).contains("BEGIN X509 CRL"));
    assert_eq!(
        c.get(&format!("{}/ready", h.gw.base_url))
            .await
            .unwrap()
            .status,
        200
    );
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    orders_identifiers_and_revocation,
    orders_identifiers_and_revocation
);

async fn caa_refuses_other_issuers(backend: Backend) {
    let h = Harness::start(backend).await;
    let c = account(&h).await;
    let thumb = acmegate::jws::thumbprint(c.key.jwk()).unwrap();
    h.dns
        .set_caa("caa.example", vec![(0, "issue", "other-ca.example")]);
    h.dns
        .set_caa("ok.caa2.example", vec![(0, "issue", "acmegate.invalid")]);
    for (name, want) in [("caa.example", "invalid"), ("ok.caa2.example", "valid")] {
        let order = c
            .new_order(&[Identifier::dns(name)], None)
            .await
            .unwrap()
            .ok()
            .unwrap()
            .json()
            .unwrap();
        let authz_url = order["authorizations"][0].as_str().unwrap();
        let authz = c.post(authz_url, None).await.unwrap().json().unwrap();
        let chall = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ch| ch["type"] == "dns-01")
            .unwrap();
        let key_auth = format!("{}.{thumb}", chall["token"].as_str().unwrap());
        h.dns.add_txt(
            &format!("_acme-challenge.{name}"),
            &B64.encode(ring::digest::digest(
                &ring::digest::SHA256,
                key_auth.as_bytes(),
            )),
        );
        c.post(chall["url"].as_str().unwrap(), Some(&json!({})))
            .await
            .unwrap()
            .ok()
            .unwrap();
        let done = c
            .poll(authz_url, std::time::Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(done["status"], want, "{name}: {done}");
        if want == "invalid" {
            let failed = done["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|ch| ch["type"] == "dns-01")
                .unwrap();
            assert_eq!(
                failed["error"]["type"], "urn:ietf:params:acme:error:caa",
                "{done}"
            );
        }
    }
    h.gw.shutdown().await;
}
crate::on_both_backends!(caa_refuses_other_issuers, caa_refuses_other_issuers);

async fn profiles_choose_lifetime_and_usage(backend: Backend) {
    let h = Harness::start_with(backend, |c| {
        c.acme.auto_approve = true;
        c.profiles = vec![
            Profile::default_server(),
            Profile {
                name: "short".into(),
                description: "one day, client and server".into(),
                validity_hours: 24,
                eku: ExtendedKeyUsage::Both,
                key_policy: Default::default(),
                issuer: "builtin".into(),
                allow_local_names: false,
            },
            Profile {
                name: "p384".into(),
                key_policy: acmegate::ca::KeyPolicy {
                    ec_curves: vec!["P-384".into()],
                    ..Default::default()
                },
                ..Profile::default_server()
            },
            Profile {
                name: "lan".into(),
                allow_local_names: true,
                ..Profile::default_server()
            },
        ];
    })
    .await;
    let c = account(&h).await;
    // Single-label names only under a profile that allows local names.
    let refused = c
        .new_order(&[Identifier::dns("printer")], None)
        .await
        .unwrap();
    let problem = refused.problem().unwrap();
    assert_eq!(problem.kind, ProblemType::RejectedIdentifier);
    assert!(
        problem.detail.contains("allow_local_names"),
        "{}",
        problem.detail
    );
    let (_, pem) = c
        .issue(&[Identifier::dns("printer")], "http-01", Some("lan"))
        .await
        .unwrap();
    let leaf = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let text = String::from_utf8(leaf.to_text().unwrap()).unwrap();
    assert!(text.contains("DNS:printer"), "{text}");
    // finalize checks the CSR key against the order's profile and names both.
    match c
        .issue(&[Identifier::dns("p384.example")], "http-01", Some("p384"))
        .await
    {
        Err(acmegate::client::ClientError::Api(p)) => assert_eq!(
            (p.kind, p.detail.as_str()),
            (
                ProblemType::BadCsr,
                "CSR key refused: EC curve P-256 not accepted; accepted: P-384 (profile \"p384\")"
            )
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.directory["meta"]["profiles"]["short"],
        "one day, client and server"
    );
    let (order_url, pem) = c
        .issue(
            &[Identifier::dns("short.example")],
            "http-01",
            Some("short"),
        )
        .await
        .unwrap();
    let order = c.post(&order_url, None).await.unwrap().json().unwrap();
    assert_eq!(order["profile"], "short");
    let leaf = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let text = String::from_utf8(leaf.to_text().unwrap()).unwrap();
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    let lifetime = leaf.not_before().diff(leaf.not_after()).unwrap();
    assert_eq!(
        lifetime.days * 86400 + lifetime.secs,
        24 * 3600 + 60,
        "24 h plus the 60 s backdate"
    );
    // Without a profile, the default applies: 90 days, server only.
    let (_, pem) = c
        .issue(&[Identifier::dns("long.example")], "http-01", None)
        .await
        .unwrap();
    let leaf = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(leaf.not_before().diff(leaf.not_after()).unwrap().days, 90);
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    profiles_choose_lifetime_and_usage,
    profiles_choose_lifetime_and_usage
);

/// What curl reports for a POST of `megabytes` MiB to the ACME listener, announced with
/// Content-Length or streamed chunked: the status (`000` when the connection broke first).
async fn curl_post_size(h: &Harness, megabytes: usize, chunked: bool) -> String {
    use tokio::io::AsyncWriteExt;
    let url = format!("{}/acme/new-account", h.gw.base_url);
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&h.root_pem)
        .args(["-H", "content-type: application/jose+json"]);
    if chunked {
        cmd.args(["-H", "transfer-encoding: chunked"]);
    }
    let mut child = cmd
        .args(["--data-binary", "@-", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    let mut stdin = child.stdin.take().unwrap();
    let feed = tokio::spawn(async move {
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..megabytes {
            // The gateway may answer (and curl stop reading its input) before the end.
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().await.unwrap();
    feed.await.unwrap();
    // curl's own error, if any, follows the status so that a failure shows it.
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// `server.max_body_bytes` is answered with 413 for every oversized body, including a 100 MiB
/// chunked one, whose size nothing announces: the client hears the status, not a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let h = Harness::start(Backend::Sqlite).await;
    assert_eq!(curl_post_size(&h, 1, false).await, "413");
    assert_eq!(curl_post_size(&h, 100, true).await, "413");
    h.gw.shutdown().await;
}

/// Finalizing `order` (its JSON) with a good CSR for `names` answers `orderNotReady`.
async fn finalize_is_refused_as_not_ready(
    c: &acmegate::client::AcmeClient,
    order: &Value,
    names: &[Identifier],
) {
    let (csr, _) = csr_p256(names).unwrap();
    let finalize = order["finalize"].as_str().unwrap();
    let r = c
        .post(finalize, Some(&json!({"csr": B64.encode(&csr)})))
        .await
        .unwrap();
    assert_eq!(problem_type(&r), ProblemType::OrderNotReady);
}

/// RFC 8555 §7.1.6 expiries, by moving the gateway's clock rather than waiting: an order past
/// `expires` is invalid and cannot be finalized; its authorization, later, is `expired`, and a
/// response to its challenge starts no validation.
async fn time_runs_out_on_orders_and_authorizations(backend: Backend) {
    let h = Harness::start(backend).await;
    let c = account(&h).await;
    let name = Identifier::dns("late.example");
    let order = c
        .new_order(std::slice::from_ref(&name), None)
        .await
        .unwrap();
    let order_url = order.location().unwrap();
    let order = order.ok().unwrap().json().unwrap();
    assert_eq!(order["status"], "pending");
    let authz_url = order["authorizations"][0].as_str().unwrap().to_string();
    let authz = ok_json(&c, &authz_url, None).await;
    assert_eq!(authz["status"], "pending");
    let challenge = authz["challenges"][0]["url"].as_str().unwrap().to_string();

    // One second short of the order's lifetime: still pending.
    let acme = &h.gw.gateway.config.acme;
    let order_life = i64::from(acme.order_lifetime_hours) * 3600;
    let authz_life = i64::from(acme.authz_lifetime_hours) * 3600;
    assert!(
        authz_life > order_life + 2,
        "the test needs authorizations to outlive orders"
    );
    h.clock().advance(order_life - 2);
    assert_eq!(ok_json(&c, &order_url, None).await["status"], "pending");

    h.clock().advance(3);
    let order = ok_json(&c, &order_url, None).await;
    assert_eq!(order["status"], "invalid", "{order}");
    finalize_is_refused_as_not_ready(&c, &order, std::slice::from_ref(&name)).await;
    assert_eq!(ok_json(&c, &authz_url, None).await["status"], "pending");

    h.clock().advance(authz_life - order_life);
    assert_eq!(ok_json(&c, &authz_url, None).await["status"], "expired");
    let answer = ok_json(&c, &challenge, Some(&json!({}))).await;
    assert_eq!(answer["status"], "pending", "{answer}");
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    time_runs_out_on_orders_and_authorizations,
    time_runs_out_on_orders_and_authorizations
);

/// RFC 8555 §7.1.6 ("Authorization failure" from ready to invalid): a ready order whose
/// authorization the client then deactivates is invalid, and finalize refuses it instead of
/// issuing on an authorization the client gave up.
async fn a_ready_order_loses_an_authorization(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.acme.auto_approve = true).await;
    let c = account(&h).await;
    let names = [
        Identifier::dns("a.given-up.example"),
        Identifier::dns("b.given-up.example"),
    ];
    let order = c.new_order(&names, None).await.unwrap();
    let order_url = order.location().unwrap();
    let order = order.ok().unwrap().json().unwrap();
    c.authorize(&order, "http-01").await.unwrap();
    assert_eq!(ok_json(&c, &order_url, None).await["status"], "ready");

    let authz = order["authorizations"][1].as_str().unwrap();
    let gone = ok_json(&c, authz, Some(&json!({"status": "deactivated"}))).await;
    assert_eq!(gone["status"], "deactivated");
    finalize_is_refused_as_not_ready(&c, &order, &names).await;
    let order = ok_json(&c, &order_url, None).await;
    assert_eq!(order["status"], "invalid", "{order}");
    assert!(order["certificate"].is_null(), "{order}");
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    a_ready_order_loses_an_authorization,
    a_ready_order_loses_an_authorization
);
