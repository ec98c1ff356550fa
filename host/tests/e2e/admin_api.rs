//! The mTLS admin API over real TLS, driven by curl as an operator would: who gets in (no
//! certificate, another CA, expired, revoked, wrong role), and what admins and clients can do.

use std::path::PathBuf;

use acmegate::admin::{client::new_identity, keygen, Role, ROUTES};
use serde_json::{json, Value};

use crate::support::{self, Backend, Harness};

/// A client certificate and key on disk, as curl takes them.
pub(crate) struct Identity {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) serial: String,
}

/// Issues an identity from the gateway's CA and stores it, as `acmegate admin-cert issue` does.
pub(crate) async fn identity(h: &Harness, cn: &str, role: Role) -> Identity {
    let gw = &h.gw.gateway;
    let (row, pkcs8) =
        new_identity(&gw.ca, &gw.config.admin, cn, role, None, gw.now()).expect("identity");
    let key = keygen::key_from_pkcs8(&pkcs8.unwrap()).unwrap();
    store(h, &row).await;
    write_identity(h, cn, &row.chain_pem, &key.pkcs8_pem(), &row.serial)
}

async fn store(h: &Harness, row: &acmegate::store::Certificate) {
    let (s, row) = (h.gw.gateway.store.clone(), row.clone());
    tokio::task::spawn_blocking(move || s.insert_certificate(&row, &[]))
        .await
        .unwrap()
        .expect("identity stored");
}

fn write_identity(h: &Harness, name: &str, chain: &str, key: &str, serial: &str) -> Identity {
    let (cert, key_path) = (
        h.path(&format!("{name}.crt")),
        h.path(&format!("{name}.key")),
    );
    std::fs::write(&cert, chain).unwrap();
    std::fs::write(&key_path, key).unwrap();
    Identity {
        cert,
        key: key_path,
        serial: serial.to_string(),
    }
}

/// What curl got: the HTTP status and the body as JSON (or as a string), or curl's own error
/// when the TLS handshake failed.
type Answer = Result<(u16, Value), String>;

async fn curl(
    h: &Harness,
    who: Option<&Identity>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let url = format!(
        "https://localhost:{}{path}",
        h.gw.admin_addr.expect("admin listener").port()
    );
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "20",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        "--cacert",
    ])
    .arg(&h.root_pem);
    if let Some(id) = who {
        cmd.arg("--cert").arg(&id.cert).arg("--key").arg(&id.key);
    }
    if let Some(body) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary"])
            .arg(body.to_string());
    }
    let out = cmd.arg(&url).output().await.expect("curl runs");
    if !out.status.success() {
        return Err(format!(
            "curl exit {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    let value = serde_json::from_str(body).unwrap_or_else(|_| Value::from(body));
    Ok((status.trim().parse().expect("status code"), value))
}

/// The HTTP status curl got for `method path` (panics when the handshake failed).
pub(crate) async fn curl_status(
    h: &Harness,
    who: Option<&Identity>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> u16 {
    match curl(h, who, method, path, body).await {
        Ok((status, _)) => status,
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// curl's answer to `method path` must have `status`; returns the body.
pub(crate) async fn call(
    h: &Harness,
    who: Option<&Identity>,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let what = format!("{method} {path} as {:?}", who.map(|w| &w.serial));
    expect(curl(h, who, method, path, body).await, status, &what)
}

/// The answer must be `status`; returns the body.
fn expect(answer: Answer, status: u16, what: &str) -> Value {
    match answer {
        Ok((got, body)) if got == status => body,
        other => panic!("{what}: expected {status}, got {other:?}"),
    }
}

/// The connection must fail (refused in the TLS handshake) or answer 401: no way in.
fn expect_refused(answer: Answer, what: &str) {
    match answer {
        Err(_) => {}
        Ok((401, body)) => assert_eq!(body["error"], "unauthorized", "{what}"),
        Ok(other) => panic!("{what}: must be refused, got {other:?}"),
    }
}

/// A client certificate from a CA the gateway does not know (rcgen).
fn foreign_identity(h: &Harness) -> Identity {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Elsewhere Root");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "intruder");
    // The OU an admin has: only the chain keeps this one out.
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "acmegate-admin");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    write_identity(
        h,
        "intruder",
        &format!("{}{}", cert.pem(), ca_cert.pem()),
        &key.serialize_pem(),
        "",
    )
}

/// The public routes answer anyone, on the ACME listener; the OpenAPI document served there
/// is the committed one.
async fn public_routes_answer_without_a_certificate(h: &Harness) {
    for path in acmegate::wfe::directory::PUBLIC_ROUTES {
        if path.contains('{') {
            continue; // issuer plugin routes; the plugin tests fetch them
        }
        let out = support::run(
            tokio::process::Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
                .arg(&h.root_pem)
                .arg(format!("https://localhost:{}{path}", h.gw.addr.port())),
            "curl public route",
        )
        .await;
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "GET {path}");
    }
    let served = support::run(
        tokio::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&h.root_pem)
            .arg(format!(
                "https://localhost:{}/openapi.json",
                h.gw.addr.port()
            )),
        "curl openapi",
    )
    .await;
    let served: Value = serde_json::from_slice(&served.stdout).unwrap();
    assert_eq!(
        served,
        serde_json::from_str::<Value>(acmegate::wfe::directory::OPENAPI).unwrap()
    );
}

/// Every route, without a certificate and with a client one: none answers 200.
async fn no_route_answers_without_a_verified_certificate(h: &Harness, client: &Identity) {
    for route in ROUTES {
        let path = route
            .path
            .replace("{id}", "x1")
            .replace("{serial}", "0a")
            .replace("{kid}", "k1");
        let body = (route.method == "POST").then(|| json!({}));
        let what = format!("{} {} without a certificate", route.method, route.path);
        let body_answer = call(h, None, route.method, &path, body.clone(), 401).await;
        assert_eq!(body_answer["error"], "unauthorized", "{what}");
        if route.role == Role::Admin {
            let what = format!("{} {} with a client certificate", route.method, route.path);
            let answer = call(h, Some(client), route.method, &path, body, 403).await;
            assert_eq!(answer["error"], "forbidden", "{what}");
        }
    }
    // Unknown paths give nothing away either.
    call(h, None, "GET", "/api/v1/nothing-here", None, 401).await;
}

async fn trust_and_roles(backend: Backend) {
    let h = Harness::start(backend).await;
    let admin = identity(&h, "ops-1", Role::Admin).await;
    let second_admin = identity(&h, "ops-2", Role::Admin).await;
    let client = identity(&h, "billing", Role::Client).await;

    // No client certificate: the handshake completes, the answer is a JSON 401.
    let body = call(&h, None, "GET", "/api/v1/profiles", None, 401).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("client certificate"),
        "{body}"
    );

    // A certificate of another CA, even with the admin OU: refused in the handshake.
    let intruder = foreign_identity(&h);
    let refused = curl(&h, Some(&intruder), "GET", "/api/v1/profiles", None).await;
    assert!(
        refused.is_err(),
        "a foreign CA's certificate got an answer: {refused:?}"
    );

    // An expired identity of the gateway's own CA: refused in the handshake.
    let now = chrono::Utc::now().timestamp();
    let gw = &h.gw.gateway;
    let (expired, key) = gw
        .ca
        .issue_identity(
            "ops-old",
            "acmegate-admin",
            (now - 3 * 86_400, now - 86_400),
            None,
        )
        .unwrap();
    let key = keygen::key_from_pkcs8(&key.unwrap()).unwrap();
    let expired = write_identity(
        &h,
        "expired",
        &expired.chain_pem,
        &key.pkcs8_pem(),
        &expired.serial_hex,
    );
    let refused = curl(&h, Some(&expired), "GET", "/api/v1/profiles", None).await;
    assert!(
        refused.is_err(),
        "an expired certificate got an answer: {refused:?}"
    );

    public_routes_answer_without_a_certificate(&h).await;

    // A valid admin: 200, and the list shape.
    let profiles = call(&h, Some(&admin), "GET", "/api/v1/profiles", None, 200).await;
    assert_eq!(profiles["total"], 1);
    assert_eq!(profiles["items"][0]["name"], "default");
    assert_eq!(profiles["items"][0]["default"], true);

    // A client on an admin route: 403; on its own routes: its certificate.
    let forbidden = call(&h, Some(&client), "GET", "/api/v1/certificates", None, 403).await;
    assert!(
        forbidden["detail"].as_str().unwrap().contains("admin role"),
        "{forbidden}"
    );
    let own = call(
        &h,
        Some(&client),
        "GET",
        "/api/client/certificate",
        None,
        200,
    )
    .await;
    assert_eq!(own["serial"], client.serial);
    assert_eq!(own["role"], "client");
    // And an admin is not a client.
    call(
        &h,
        Some(&admin),
        "GET",
        "/api/client/certificate",
        None,
        403,
    )
    .await;

    no_route_answers_without_a_verified_certificate(&h, &client).await;

    // An admin revokes another admin: that admin's next connection is refused.
    call(
        &h,
        Some(&second_admin),
        "GET",
        "/api/v1/profiles",
        None,
        200,
    )
    .await;
    let revoked = call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/certificates/{}/revoke", second_admin.serial),
        Some(json!({"reason": "keyCompromise"})),
        200,
    )
    .await;
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revocation_reason"], "keyCompromise");
    let refused = curl(&h, Some(&second_admin), "GET", "/api/v1/profiles", None).await;
    assert!(
        refused.is_err(),
        "a revoked admin's next connection must fail its handshake: {refused:?}"
    );
    // Revoking twice is a clear error.
    let again = call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/certificates/{}/revoke", second_admin.serial),
        Some(json!({})),
        400,
    )
    .await;
    assert_eq!(again["error"], "alreadyRevoked");

    // The CRL lists it with its reason, as openssl reads it.
    let crl = h.path("crl.der");
    let der = acmegate::authority::crl::current(gw).await.unwrap();
    std::fs::write(&crl, der).unwrap();
    let text = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&crl)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_ascii_lowercase();
    assert!(
        text.contains(&second_admin.serial),
        "serial missing from the CRL:\n{text}"
    );
    assert!(
        text.contains("key compromise"),
        "reason missing from the CRL:\n{text}"
    );

    // The other admin still gets in.
    call(&h, Some(&admin), "GET", "/api/v1/profiles", None, 200).await;
    h.gw.shutdown().await;
}
crate::on_both_backends!(admin_api_trust_and_roles, trust_and_roles);

/// POSTs `body` to the admin API's `path` with curl (OpenSSL), as `admin`, and writes the
/// answer to `out`: binary answers (PKCS#12) as a client other than ours receives them.
async fn curl_post_to_file(
    h: &Harness,
    admin: &Identity,
    path: &str,
    body: Value,
    out: &std::path::Path,
) {
    let port = h.gw.admin_addr.expect("admin listener").port();
    support::run(
        tokio::process::Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(&h.root_pem)
            .arg("--cert")
            .arg(&admin.cert)
            .arg("--key")
            .arg(&admin.key)
            .args(["-H", "content-type: application/json", "--data-binary"])
            .arg(body.to_string())
            .arg("-o")
            .arg(out)
            .arg(format!("https://localhost:{port}{path}")),
        &format!("curl POST {path}"),
    )
    .await;
}

/// A PKCS#12 identity the gateway writes is a client certificate as curl (OpenSSL) takes it:
/// an admin creates an admin identity as PKCS#12, and curl gets in with that file and its
/// password alone; with a wrong password curl cannot open it.
async fn pkcs12_identity_as_client_certificate(backend: Backend) {
    let h = Harness::start(backend).await;
    let admin = identity(&h, "ops-1", Role::Admin).await;
    let port = h.gw.admin_addr.expect("admin listener").port();
    let p12 = h.path("ops-2.p12");
    curl_post_to_file(
        &h,
        &admin,
        "/api/v1/identities",
        json!({"common_name": "ops-2", "role": "admin", "format": "pkcs12", "password": "s3cret"}),
        &p12,
    )
    .await;
    let with_p12 = |password: &str| {
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args(["-sS", "--fail", "--cacert"])
            .arg(&h.root_pem)
            .args(["--cert-type", "P12", "--cert"])
            .arg(format!("{}:{password}", p12.display()))
            .arg(format!("https://localhost:{port}/api/v1/profiles"));
        cmd
    };
    let out = support::run(&mut with_p12("s3cret"), "curl with the PKCS#12").await;
    let profiles: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(profiles["total"].as_u64().unwrap() >= 1, "{profiles}");
    let wrong = support::run_failing(&mut with_p12("wrong"), "curl with a wrong password").await;
    assert!(!wrong.is_empty());
}

crate::on_both_backends!(
    admin_api_pkcs12_identity,
    pkcs12_identity_as_client_certificate
);

async fn operations(backend: Backend) {
    let h = Harness::start_with(backend, |c| {
        c.acme.auto_approve = true;
        crate::support::with_short_profile(c);
    })
    .await;
    let admin = identity(&h, "ops", Role::Admin).await;

    // EAB keys: the HMAC key once, never in the list; revoke.
    let created = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/eab-keys",
        Some(
            json!({"label": "team-a", "allowed_names": ["*.team-a.example", "10.0.0.0/8"], "profile": "short"}),
        ),
        201,
    ).await;
    let kid = created["kid"].as_str().unwrap().to_string();
    assert!(created["hmac_key"].as_str().unwrap().len() >= 43);
    assert_eq!(
        created["allowed_names"],
        json!(["*.team-a.example", "10.0.0.0/8"])
    );
    assert_eq!(created["profile"], "short");
    for (body, what) in [
        (json!({"allowed_names": ["not a pattern"]}), "bad pattern"),
        (json!({"profile": "gold"}), "unknown profile"),
    ] {
        let refused = call(
            &h,
            Some(&admin),
            "POST",
            "/api/v1/eab-keys",
            Some(body),
            400,
        )
        .await;
        assert_eq!(refused["error"], "bad_request", "{what}");
    }
    let listed = call(&h, Some(&admin), "GET", "/api/v1/eab-keys", None, 200).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["state"], "unused");
    assert!(listed["items"][0].get("hmac_key").is_none());
    let revoked = call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/eab-keys/{kid}/revoke"),
        None,
        200,
    )
    .await;
    assert_eq!(revoked["state"], "revoked");
    call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/eab-keys/{kid}/revoke"),
        None,
        409,
    )
    .await;

    // An ACME account and order, seen and deactivated from the admin side.
    let acme = support::account(&h).await;
    acme.issue(
        &[acmegate::acme::Identifier::dns("shop.example")],
        "http-01",
        None,
    )
    .await
    .expect("ACME issuance");
    let accounts = call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/accounts?status=valid",
        None,
        200,
    )
    .await;
    assert_eq!(accounts["total"], 1);
    let account_id = accounts["items"][0]["id"].as_str().unwrap().to_string();
    let orders = call(
        &h,
        Some(&admin),
        "GET",
        &format!("/api/v1/orders?account={account_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(orders["total"], 1);
    assert_eq!(orders["items"][0]["status"], "valid");
    let order_id = orders["items"][0]["id"].as_str().unwrap();
    let order = call(
        &h,
        Some(&admin),
        "GET",
        &format!("/api/v1/orders/{order_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(order["identifiers"][0]["value"], "shop.example");
    let acme_certs = call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/certificates?name=shop&origin=acme",
        None,
        200,
    )
    .await;
    assert_eq!(acme_certs["total"], 1);
    let deactivated = call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/accounts/{account_id}/deactivate"),
        None,
        200,
    )
    .await;
    assert_eq!(deactivated["status"], "deactivated");
    let refused = acme
        .new_order(&[acmegate::acme::Identifier::dns("more.example")], None)
        .await
        .and_then(|r| r.ok());
    assert!(
        refused.is_err(),
        "a deactivated account must not order: {refused:?}"
    );
    call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/accounts/{account_id}/deactivate"),
        None,
        409,
    )
    .await;
    call(&h, Some(&admin), "GET", "/api/v1/accounts/nope", None, 404).await;

    // Issue from a CSR made by openssl.
    let (_, csr) = openssl_csr(
        &h,
        "svc",
        "/CN=svc.internal",
        &["-addext", "subjectAltName=DNS:svc.internal,IP:10.1.2.3"],
    )
    .await;
    let issued = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/certificates",
        Some(json!({"csr": csr, "profile": "default"})),
        201,
    )
    .await;
    assert_eq!(issued["origin"], "admin");
    assert_eq!(issued["parsed"]["dns_names"], json!(["svc.internal"]));
    assert_eq!(issued["parsed"]["ip_addresses"], json!(["10.1.2.3"]));
    let chain = h.path("svc-chain.pem");
    std::fs::write(&chain, issued["chain_pem"].as_str().unwrap()).unwrap();
    support::verify_chain(&h.root_pem, &chain);
    let bad = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/certificates",
        Some(json!({"csr": "not a csr"})),
        400,
    )
    .await;
    assert_eq!(bad["error"], "bad_request");
    call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/certificates",
        Some(json!({"csr": csr, "profile": "nope"})),
        400,
    )
    .await;

    // Issue with a generated key, as PKCS#12; openssl opens it with the password.
    let p12_path = h.path("device.p12");
    curl_post_to_file(
        &h,
        &admin,
        "/api/v1/certificates/generate",
        json!({"dns_names": ["device.internal"], "format": "pkcs12", "password": "s3cret"}),
        &p12_path,
    )
    .await;
    let opened = support::run(
        tokio::process::Command::new("openssl")
            .args(["pkcs12", "-nodes", "-passin", "pass:s3cret", "-in"])
            .arg(&p12_path),
        "openssl pkcs12",
    )
    .await;
    let opened = String::from_utf8_lossy(&opened.stdout);
    assert!(
        opened.contains("BEGIN PRIVATE KEY") && opened.matches("BEGIN CERTIFICATE").count() == 2,
        "{opened}"
    );
    assert!(
        opened.contains("CN = device.internal") || opened.contains("CN=device.internal"),
        "{opened}"
    );
    let pem = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/certificates/generate",
        Some(json!({"dns_names": ["pem.internal"], "key_type": "rsa2048", "profile": "short"})),
        201,
    )
    .await;
    assert!(pem["private_key_pem"]
        .as_str()
        .unwrap()
        .contains("BEGIN PRIVATE KEY"));
    call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/certificates/generate",
        Some(json!({"dns_names": ["x.internal"], "format": "pkcs12"})),
        400,
    )
    .await;
    // The ACME name policy holds for admins too: no certificate for a reserved name.
    let refused = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/certificates/generate",
        Some(json!({"dns_names": ["localhost"]})),
        400,
    )
    .await;
    assert_eq!(refused["error"], "rejectedIdentifier", "{refused}");

    // Listings filter and page.
    let admin_issued = call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/certificates?origin=admin&per_page=2",
        None,
        200,
    )
    .await;
    assert_eq!(admin_issued["total"], 3);
    assert_eq!(admin_issued["items"].as_array().unwrap().len(), 2);
    assert_eq!(admin_issued["per_page"], 2);
    let by_serial = call(
        &h,
        Some(&admin),
        "GET",
        &format!(
            "/api/v1/certificates?serial={}",
            issued["serial"].as_str().unwrap()
        ),
        None,
        200,
    )
    .await;
    assert_eq!(by_serial["total"], 1);
    let soon = call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/certificates?expiring_before=1d",
        None,
        200,
    )
    .await;
    assert_eq!(soon["total"], 1, "the 12-hour certificate: {soon}");
    assert_eq!(soon["items"][0]["subject"], "pem.internal");
    let metrics = support::run(
        tokio::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&h.root_pem)
            .arg(format!("https://localhost:{}/metrics", h.gw.addr.port())),
        "curl metrics",
    )
    .await;
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.contains("acmegate_certificates_expiring{within=\"1d\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("acmegate_plugin_reloads_total 0"),
        "{metrics}"
    );
    call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/certificates?status=weird",
        None,
        400,
    )
    .await;
    let crl = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/crl/regenerate",
        None,
        200,
    )
    .await;
    assert!(crl["next_update"].is_string(), "{crl}");
    let plugins = call(&h, Some(&admin), "GET", "/api/v1/plugins", None, 200).await;
    assert_eq!(plugins["total"], 0);

    // An admin creates a client identity; the client renews from its own CSR, then revokes
    // its old certificate and keeps working with the new one.
    let created = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/identities",
        Some(json!({"common_name": "inventory", "role": "client"})),
        201,
    )
    .await;
    let client = write_identity(
        &h,
        "inventory",
        created["chain_pem"].as_str().unwrap(),
        created["private_key_pem"].as_str().unwrap(),
        created["serial"].as_str().unwrap(),
    );
    let (new_key, new_csr) = openssl_csr(&h, "inventory-new", "/CN=ignored", &[]).await;
    let renewed = call(
        &h,
        Some(&client),
        "POST",
        "/api/client/renew",
        Some(json!({"csr": new_csr})),
        201,
    )
    .await;
    assert_eq!(
        renewed["subject"], "inventory",
        "the subject stays the client's own"
    );
    assert_ne!(renewed["serial"], created["serial"]);
    let renewed_id = write_identity(
        &h,
        "inventory-new",
        renewed["chain_pem"].as_str().unwrap(),
        &std::fs::read_to_string(&new_key).unwrap(),
        renewed["serial"].as_str().unwrap(),
    );
    let gone = call(
        &h,
        Some(&client),
        "POST",
        "/api/client/revoke",
        Some(json!({"reason": "superseded"})),
        200,
    )
    .await;
    assert_eq!(gone["status"], "revoked");
    expect_refused(
        curl(&h, Some(&client), "GET", "/api/client/certificate", None).await,
        "old client certificate",
    );
    let own = call(
        &h,
        Some(&renewed_id),
        "GET",
        "/api/client/certificate",
        None,
        200,
    )
    .await;
    assert_eq!(own["serial"], renewed["serial"]);

    audit_trail(&h, &admin, &account_id).await;
    h.gw.shutdown().await;
}
crate::on_both_backends!(admin_api_operations, operations);

/// What the operations above left in the audit log, and `verify` finding a row edited
/// directly in the database.
async fn audit_trail(h: &Harness, admin: &Identity, account_id: &str) {
    let actor = format!("admin:ops (serial {})", admin.serial);
    let query = format!("actor={}", urlencode(&actor));
    assert_audited(
        h,
        admin,
        &query,
        &[
            "eab.create",
            "eab.revoke",
            "account.update",
            "certificate.issue",
            "crl.regenerate",
        ],
    )
    .await;
    let account = call(
        h,
        Some(admin),
        "GET",
        &format!("/api/v1/audit?resource=account/{account_id}"),
        None,
        200,
    )
    .await;
    let entries = account["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{account}");
    assert_eq!(entries[1]["action"], "account.create");
    assert_eq!(entries[1]["actor"], format!("acme:{account_id}"));
    assert_eq!(entries[0]["details"]["status"], "deactivated");
    let client_revoke = call(
        h,
        Some(admin),
        "GET",
        "/api/v1/audit?action=certificate.revoke",
        None,
        200,
    )
    .await;
    assert_eq!(client_revoke["total"], 1);
    assert!(
        client_revoke["items"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("client:inventory"),
        "{client_revoke}"
    );

    let verdict = call(h, Some(admin), "GET", "/api/v1/audit/verify", None, 200).await;
    assert_eq!(verdict["intact"], true, "{verdict}");
    let entries = verdict["entries"].as_i64().unwrap();
    assert!(entries > 10, "{verdict}");

    // Someone with database access rewrites history: the revocation never happened.
    let seq = client_revoke["items"][0]["seq"].as_i64().unwrap();
    acmegate_testkit::db::execute_sql(
        &h.gw.gateway.config.database_url(),
        &format!("UPDATE audit_log SET actor = 'system' WHERE seq = {seq}"),
    );
    let verdict = call(h, Some(admin), "GET", "/api/v1/audit/verify", None, 200).await;
    assert_eq!(verdict["intact"], false, "{verdict}");
    assert_eq!(verdict["broken_at"], seq, "{verdict}");
}

/// A P-256 key and a CSR for `subject` made by openssl (with `extra` arguments to `openssl
/// req`); returns the key file and the CSR PEM.
async fn openssl_csr(h: &Harness, name: &str, subject: &str, extra: &[&str]) -> (PathBuf, String) {
    let (key, csr) = (
        h.path(&format!("{name}.key")),
        h.path(&format!("{name}.csr")),
    );
    support::run(
        tokio::process::Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                subject,
            ])
            .args(extra)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
        "openssl req",
    )
    .await;
    (key, std::fs::read_to_string(&csr).unwrap())
}

/// Waits (up to 5 s) until the plugin status says the one plugin is `enabled`.
async fn until_enabled(h: &Harness, admin: &Identity, enabled: bool) {
    let started = std::time::Instant::now();
    loop {
        let listed = call(h, Some(admin), "GET", "/api/v1/plugins", None, 200).await;
        if listed["items"][0]["enabled"] == enabled {
            return;
        }
        assert!(
            started.elapsed().as_secs() < 5,
            "plugin not enabled={enabled}: {listed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The audit entries matching `query` include every one of `actions`.
async fn assert_audited(h: &Harness, admin: &Identity, query: &str, actions: &[&str]) {
    let path = format!("/api/v1/audit?{query}&per_page=100");
    let page = call(h, Some(admin), "GET", &path, None, 200).await;
    let found: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in actions {
        assert!(
            found.contains(expected),
            "{expected} missing from {found:?} ({query})"
        );
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The allowlist validator at `file`, named `allow`, as the order policy: names under
/// `allowed.test` only.
pub(crate) fn allowlist_policy(c: &mut acmegate::config::Config, file: PathBuf) {
    let mut config = toml::Table::new();
    config.insert(
        "default".into(),
        toml::Value::Array(vec!["*.allowed.test".into()]),
    );
    c.plugins = vec![acmegate::plugins::PluginConfig {
        name: "allow".into(),
        kind: "challenge-validator".into(),
        file,
        config,
        grants: toml::Table::new(),
    }];
    c.validation.order_policy = "allow".into();
}

/// Plugins as an admin runs them: status, disable (the order policy then fails closed),
/// enable, reload from the file, a failed reload that keeps the old version, all audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_switched_and_reloaded_by_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow.wasm");
    std::fs::copy(support::plugin_component("allowlist-validator"), &file).unwrap();
    let plugin_file = file.clone();
    let h = Harness::start_with(Backend::Sqlite, move |c| allowlist_policy(c, plugin_file)).await;
    let admin = identity(&h, "ops", Role::Admin).await;
    let acme = support::account(&h).await;
    let order = |name: &'static str| {
        let acme = &acme;
        async move {
            acme.new_order(&[acmegate::acme::Identifier::dns(name)], None)
                .await
                .unwrap()
        }
    };

    let listed = call(&h, Some(&admin), "GET", "/api/v1/plugins", None, 200).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["name"], "allow");
    assert_eq!(listed["items"][0]["kind"], "challenge-validator");
    assert_eq!(listed["items"][0]["enabled"], true);
    assert_eq!(listed["items"][0]["generation"], 1);
    assert_eq!(listed["items"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(order("a.allowed.test").await.status, 201);

    let off = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/plugins/allow/disable",
        None,
        200,
    )
    .await;
    assert_eq!(off["enabled"], false);
    let refused = order("b.allowed.test").await;
    assert_eq!(
        refused.status, 500,
        "the order policy fails closed while disabled"
    );
    assert!(
        refused.problem().unwrap().detail.contains("disabled"),
        "{:?}",
        refused.problem()
    );
    let on = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/plugins/allow/enable",
        None,
        200,
    )
    .await;
    assert_eq!(on["enabled"], true);
    assert_eq!(order("c.allowed.test").await.status, 201);

    let reloaded = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/plugins/allow/reload",
        None,
        200,
    )
    .await;
    assert_eq!(reloaded["generation"], 2);
    assert_eq!(reloaded["plugin_name"], "allowlist-validator");
    let all = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/plugins/reload",
        None,
        200,
    )
    .await;
    assert_eq!(all["items"][0]["reloaded"], true);
    call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/plugins/nope/reload",
        None,
        404,
    )
    .await;

    // A broken file: the reload fails, the loaded version keeps deciding.
    std::fs::write(&file, b"not a component").unwrap();
    let failed = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/plugins/allow/reload",
        None,
        422,
    )
    .await;
    assert_eq!(failed["error"], "reload_failed");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("previous version stays live"),
        "{failed}"
    );
    assert_eq!(order("d.allowed.test").await.status, 201);
    let refused = order("evil.example").await;
    assert_eq!(
        refused.problem().unwrap().kind,
        acmegate::acme::ProblemType::RejectedIdentifier
    );

    // The file removed: the plugin drains (orders through it are refused); back, it serves.
    std::fs::remove_file(&file).unwrap();
    until_enabled(&h, &admin, false).await;
    assert_eq!(order("e.allowed.test").await.status, 500);
    std::fs::copy(support::plugin_component("allowlist-validator"), &file).unwrap();
    until_enabled(&h, &admin, true).await;
    assert_eq!(order("f.allowed.test").await.status, 201);

    assert_audited(
        &h,
        &admin,
        "resource=plugin/allow",
        &[
            "plugin.load",
            "plugin.disable",
            "plugin.enable",
            "plugin.reload",
            "plugin.reload_failed",
            "plugin.drain",
        ],
    )
    .await;
    h.gw.shutdown().await;
}

/// `GET /api/v1/targets` lists the deploy targets without their config (it may hold a
/// deployer's credentials), to admins and auditors alike; `serial` keeps the targets that
/// cover that certificate, and an unknown serial is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_targets_listed_without_their_config() {
    let h = Harness::start_with(Backend::Sqlite, |c| {
        c.plugins = vec![crate::deployers::push_deployer(json!({"timeout_ms": 3000}))];
        c.targets = vec![
            crate::deployers::target(
                "edge",
                &["*.edge.test"],
                2,
                json!({"url": "http://127.0.0.1:9/edge", "token": "s3cret-token"}),
            ),
            crate::deployers::target("all", &[], 1, json!({"url": "http://127.0.0.1:9/all"})),
        ];
    })
    .await;
    let admin = identity(&h, "ops", Role::Admin).await;
    let auditor = identity(&h, "inspector", Role::Auditor).await;
    let listed = call(&h, Some(&admin), "GET", "/api/v1/targets", None, 200).await;
    assert_eq!(listed["total"], 2, "{listed}");
    assert_eq!(
        listed["items"][0],
        json!({"name": "edge", "deployer": "push", "names": ["*.edge.test"], "verify": true, "attempts": 2})
    );
    assert_eq!(listed["items"][1]["names"], json!([]), "{listed}");
    assert!(!listed.to_string().contains("s3cret"), "{listed}");
    assert_eq!(
        call(&h, Some(&auditor), "GET", "/api/v1/targets", None, 200).await,
        listed
    );
    let covering = |name: &'static str| {
        let (h, admin) = (&h, &admin);
        async move {
            let cert = call(
                h,
                Some(admin),
                "POST",
                "/api/v1/certificates/generate",
                Some(json!({"dns_names": [name]})),
                201,
            )
            .await;
            let serial = cert["serial"].as_str().expect("serial").to_string();
            let path = format!("/api/v1/targets?serial={serial}");
            let found = call(h, Some(admin), "GET", &path, None, 200).await;
            found["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(covering("a.edge.test").await, ["edge", "all"]);
    assert_eq!(covering("b.other.test").await, ["all"]);
    call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/targets?serial=ffff01",
        None,
        404,
    )
    .await;
    h.gw.shutdown().await;
}
