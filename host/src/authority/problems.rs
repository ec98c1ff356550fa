//! How failures of the parts look to an ACME client: the problem documents (RFC 7807) the
//! authority answers with.

use crate::acme::Problem;
use crate::ca::CaError;
use crate::store::StoreError;

/// Turns a store failure into the problem a client sees; `what` names the missing resource.
pub fn store_problem(e: StoreError, what: &str) -> Problem {
    match e {
        StoreError::NotFound => Problem::malformed(format!("{what} not found")).with_status(404),
        StoreError::Conflict(detail) => {
            Problem::malformed(format!("conflict: {detail}")).with_status(409)
        }
        other => {
            tracing::error!(error = %other, "store failure");
            Problem::server_internal(other.client_message())
        }
    }
}

/// Turns a CA failure into the problem a client sees.
pub fn ca_problem(e: CaError) -> Problem {
    match e {
        CaError::BadCsr(d) => Problem::bad_csr(d),
        CaError::KeyPolicy(d) => Problem::bad_csr(format!("CSR key refused: {d}")),
        CaError::BadCertificate(d) => Problem::malformed(format!("bad certificate: {d}")),
        other => {
            tracing::error!(error = %other, "CA failure");
            Problem::server_internal("the CA could not issue; try again later")
        }
    }
}
