//! ACME Renewal Information (RFC 9773) as HTTP: `GET {renewalInfo}/{certID}`, which any client
//! may ask without signing (§4.1: a plain GET, not POST-as-GET), with `Retry-After` saying when
//! to ask again (§4.3). Which window a certificate gets is `crate::authority::renewal`'s.

use http::StatusCode;

use super::{rfc3339, Reply};
use crate::acme::renewal::{RenewalInfo, SuggestedWindow};
use crate::acme::Problem;
use crate::authority::{renewal, Gateway};

pub async fn renewal_info(gw: &Gateway, cert_id: &str) -> Result<Reply, Problem> {
    let answer = renewal::renewal_info(gw, cert_id).await?;
    let body = RenewalInfo {
        suggested_window: SuggestedWindow {
            start: rfc3339(answer.window.start),
            end: rfc3339(answer.window.end),
        },
        explanation_url: answer.explanation_url,
    };
    let retry_after = gw.config.acme.renewal_info_retry_after_seconds.max(1);
    Ok(Reply::json(StatusCode::OK, &body).header("retry-after", retry_after.to_string()))
}

/// The page explaining a moved window (`explanationURL`), or `None` when `path` names none.
pub fn explanation(path: &str) -> Option<Reply> {
    let text = path
        .strip_prefix(renewal::EXPLANATIONS_PREFIX)
        .and_then(renewal::explanation)?;
    Some(Reply::bytes(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        format!("{text}\n"),
    ))
}
