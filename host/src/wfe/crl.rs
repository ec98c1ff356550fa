//! The public CRL routes: the gateway's own CRL (`crate::authority::crl`) and, under
//! [`ISSUERS_PREFIX`], those of issuer plugins.

use http::StatusCode;

use super::Reply;
use crate::acme::Problem;
use crate::authority::crl::current;
use crate::authority::Gateway;

/// GET `/ca/crl.der` or `/ca/crl.pem`.
pub async fn serve(gw: &Gateway, pem: bool) -> Reply {
    crl_reply(current(gw).await, pem)
}

/// Prefix of the public routes of issuer plugins: `/ca/issuers/<name>/crl.der`, `crl.pem`
/// and `ca.pem`. Certificates of such issuers name no CRL of the gateway's; relying parties
/// fetch their CA's CRL here (for a uPKI CA, as the CA built it).
pub const ISSUERS_PREFIX: &str = "/ca/issuers/";

/// GET under [`ISSUERS_PREFIX`]; `None` when the path is not one of its routes.
pub async fn serve_issuer(gw: &Gateway, path: &str) -> Option<Reply> {
    let (name, file) = path.strip_prefix(ISSUERS_PREFIX)?.split_once('/')?;
    let plugin = match gw.issuer(name) {
        Some(crate::authority::issuance::Issuer::Plugin(plugin)) => plugin,
        _ => {
            return Some(Reply::problem(
                &Problem::malformed(format!("no issuer plugin named {name:?}")).with_status(404),
            ))
        }
    };
    let unavailable = |what: &str, e: String| {
        Problem::server_internal(format!("issuer {name:?} could not give its {what}: {e}"))
    };
    Some(match file {
        "crl.der" | "crl.pem" => {
            let crl = match plugin.crl().await {
                Ok(Ok(der)) => Ok(der),
                Ok(Err(e)) => Err(unavailable("CRL", format!("{e:?}"))),
                Err(fault) => Err(unavailable("CRL", fault.to_string())),
            };
            crl_reply(crl, file == "crl.pem")
        }
        "ca.pem" => match plugin.ca_chain().await {
            Ok(Ok(pem)) => Reply::bytes(StatusCode::OK, "application/x-pem-file", pem),
            Ok(Err(e)) => Reply::problem(&unavailable("CA chain", format!("{e:?}"))),
            Err(fault) => Reply::problem(&unavailable("CA chain", fault.to_string())),
        },
        _ => return None,
    })
}

fn crl_reply(crl: Result<Vec<u8>, Problem>, pem: bool) -> Reply {
    match crl {
        Ok(der) if pem => Reply::bytes(
            StatusCode::OK,
            "application/x-pem-file",
            crate::ca::pem("X509 CRL", &der),
        ),
        Ok(der) => Reply::bytes(StatusCode::OK, "application/pkix-crl", der),
        Err(p) => Reply::problem(&p),
    }
}
