//! The admin API's one error type: an HTTP status, a short machine-readable code and a detail
//! for people, sent as `{"error": ..., "detail": ...}`.

use http::StatusCode;

use crate::acme::Problem;
use crate::authority::admin_issuance::AdminIssueError;
use crate::reply::Reply;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Short code, e.g. `unauthorized`, `not_found`, `bad_request`.
    pub error: String,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            detail: detail.into(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// A store failure while reading or changing `what`.
    pub fn store(e: StoreError, what: &str) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(format!("{what} not found")),
            StoreError::Conflict(detail) => Self::conflict(detail),
            other => {
                tracing::error!(error = %other, "store failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    other.client_message(),
                )
            }
        }
    }

    pub fn into_reply(self) -> Reply {
        Reply::json(
            self.status,
            &serde_json::json!({ "error": self.error, "detail": self.detail }),
        )
    }
}

/// ACME-side failures (CA, issuers, revocation) keep their status; the problem type's short
/// name (`badCSR`, `alreadyRevoked`, ...) becomes the error code.
impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        Self::new(
            StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST),
            p.kind.name(),
            p.detail,
        )
    }
}

/// Admin issuance refusals and failures, each with the status and code it always had.
impl From<AdminIssueError> for ApiError {
    fn from(e: AdminIssueError) -> Self {
        let detail = e.to_string();
        match e {
            AdminIssueError::BadRequest(_) => Self::bad_request(detail),
            AdminIssueError::Refused(problem) => problem.into(),
            AdminIssueError::IssuerPending { .. } => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "issuer_pending", detail)
            }
            AdminIssueError::IssuerFailed { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "issuer_unavailable", detail)
            }
            AdminIssueError::Store(e) => Self::store(e, "certificate"),
            AdminIssueError::Internal(_) => Self::internal(detail),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error,
            self.detail
        )
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_keep_status_and_name_their_type() {
        let e = ApiError::from(Problem::already_revoked("gone"));
        assert_eq!(e.error, "alreadyRevoked");
        assert_eq!(e.detail, "gone");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let reply = ApiError::not_found("no such thing").into_reply();
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"], "not_found");
        assert_eq!(body["detail"], "no such thing");
    }

    #[test]
    fn admin_issuance_errors_keep_their_status_and_code() {
        let cases = [
            (
                AdminIssueError::BadRequest("unknown profile".into()),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                AdminIssueError::Refused(Problem::bad_csr("no")),
                StatusCode::BAD_REQUEST,
                "badCSR",
            ),
            (
                AdminIssueError::IssuerPending {
                    issuer: "upki".into(),
                    handle: "h1".into(),
                },
                StatusCode::GATEWAY_TIMEOUT,
                "issuer_pending",
            ),
            (
                AdminIssueError::IssuerFailed {
                    issuer: "upki".into(),
                    detail: "down".into(),
                },
                StatusCode::BAD_GATEWAY,
                "issuer_unavailable",
            ),
            (
                AdminIssueError::Store(StoreError::NotFound),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                AdminIssueError::Internal("issuer \"x\" is not loaded".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        for (error, status, code) in cases {
            let text = error.to_string();
            let api = ApiError::from(error);
            assert_eq!((api.status, api.error.as_str()), (status, code), "{text}");
            assert!(!api.detail.is_empty());
        }
        let pending = ApiError::from(AdminIssueError::IssuerPending {
            issuer: "upki".into(),
            handle: "h1".into(),
        });
        assert_eq!(
            pending.detail,
            "issuer \"upki\" has not issued within 60 s (handle h1)"
        );
    }
}
