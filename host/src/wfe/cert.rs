//! Certificates: download (RFC 8555 §7.4.2) and revocation (§7.6), as HTTP; who may revoke
//! is `crate::authority::revocation`'s decision.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use http::StatusCode;
use serde::Deserialize;

use super::auth::{authenticate, KeyRule};
use super::{Incoming, Reply};
use crate::acme::Problem;
use crate::authority::revocation::{self, Requester};
use crate::authority::{store_problem, Gateway};

pub async fn download(gw: &Gateway, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    signed.require_post_as_get()?;
    let account = signed.account()?;
    let cid = id.to_string();
    let cert = gw
        .read(move |s| s.certificate(&cid))
        .await
        .map_err(|e| store_problem(e, "certificate"))?;
    if cert.account_id.as_deref() != Some(account.id.as_str()) {
        return Err(Problem::unauthorized(
            "this certificate belongs to another account",
        ));
    }
    Ok(Reply::bytes(
        StatusCode::OK,
        "application/pem-certificate-chain",
        cert.chain_pem,
    ))
}

#[derive(Deserialize)]
struct Revocation {
    certificate: String,
    #[serde(default)]
    reason: Option<i32>,
}

pub async fn revoke(gw: &Gateway, req: &Incoming) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Either).await?;
    let body: Revocation = signed.jws.json_payload()?;
    let der = B64
        .decode(body.certificate.trim_end_matches('='))
        .map_err(|_| Problem::malformed("certificate is not base64url DER"))?;
    let verify = |spki: &[u8]| signed.jws.verify_with_spki(spki);
    let requester = match &signed.account {
        Some(account) => Requester::Account(account),
        None => Requester::Key(&verify),
    };
    revocation::revoke_by_client(gw, &der, body.reason.unwrap_or(0), requester).await?;
    Ok(Reply::empty(StatusCode::OK))
}
