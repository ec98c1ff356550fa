//! The overview in numbers: certificates by state, how many expire on each of the coming
//! days, and issuances and failed orders over the last day and week. The console's overview
//! page draws exactly this answer.

use std::sync::Arc;

use http::StatusCode;

use super::{AdminRequest, ApiError};
use crate::authority::Gateway;
use crate::reply::Reply;

/// How far ahead the expiry timeline looks: a quarter, the horizon in which an operator plans
/// renewals and the longest lifetime most internal profiles give.
pub const HORIZON_DAYS: usize = 90;

const DAY: i64 = 86_400;

/// The windows over which issuances and failures are counted, with their names in the answer.
const WINDOWS: [(&str, i64); 2] = [("24h", DAY), ("7d", 7 * DAY)];

pub async fn summary(gw: &Arc<Gateway>, _req: &AdminRequest) -> Result<Reply, ApiError> {
    let now = gw.now();
    let since: Vec<i64> = WINDOWS.iter().map(|(_, span)| now - span).collect();
    let horizon = now + HORIZON_DAYS as i64 * DAY;
    let o = gw
        .db(move |s| s.overview(now, horizon, &since))
        .await
        .map_err(|e| ApiError::store(e, "certificates"))?;
    let window = |counts: &[i64]| -> serde_json::Map<String, serde_json::Value> {
        WINDOWS
            .iter()
            .zip(counts)
            .map(|((name, _), n)| (name.to_string(), (*n).into()))
            .collect()
    };
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "at": crate::reply::rfc3339(now),
            "certificates": {
                "valid": o.valid,
                "expired": o.expired,
                "revoked": o.revoked,
            },
            "expiring_per_day": per_day(now, &o.expiring, HORIZON_DAYS),
            "issued": window(&o.issued_since),
            "failed_orders": window(&o.failed_since),
        }),
    ))
}

/// How many of `not_afters` fall on each of the `days` days after `now` (day 0 is the next
/// 24 hours); times outside are not counted.
pub fn per_day(now: i64, not_afters: &[i64], days: usize) -> Vec<u64> {
    let mut counts = vec![0; days];
    for t in not_afters {
        if *t <= now {
            continue;
        }
        let day = usize::try_from((t - now - 1) / DAY).unwrap_or(usize::MAX);
        if let Some(n) = counts.get_mut(day) {
            *n += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_fall_on_their_day() {
        let now = 1_000_000;
        let counts = per_day(
            now,
            &[
                now,
                now + 1,
                now + DAY,
                now + DAY + 1,
                now + 3 * DAY - 5,
                now + 90 * DAY,
            ],
            3,
        );
        // `now` itself has expired; exactly one day ahead is still day 0.
        assert_eq!(counts, vec![2, 1, 1]);
        assert_eq!(per_day(now, &[], 2), vec![0, 0]);
    }
}
