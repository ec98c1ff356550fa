//! The order and authorization state machine of RFC 8555 §7.1.6, as plain functions over
//! statuses and times, so every transition is testable without a server.

use super::types::{AuthzStatus, OrderStatus};

/// The status an authorization has now: pending or valid authorizations past `expires` are
/// `expired` (§7.1.6).
pub fn authz_status(stored: AuthzStatus, expires: i64, now: i64) -> AuthzStatus {
    match stored {
        AuthzStatus::Pending | AuthzStatus::Valid if now >= expires => AuthzStatus::Expired,
        other => other,
    }
}

/// The status an order has now, from its stored status and its authorizations' current
/// statuses (§7.1.6): a pending order becomes `ready` when every authorization is valid and
/// `invalid` when any fails, is deactivated, expires or is revoked, or when the order expires.
pub fn order_status(
    stored: OrderStatus,
    authzs: &[AuthzStatus],
    expires: i64,
    now: i64,
) -> OrderStatus {
    match stored {
        OrderStatus::Pending | OrderStatus::Ready if now >= expires => OrderStatus::Invalid,
        OrderStatus::Pending => {
            if authzs
                .iter()
                .any(|a| !matches!(a, AuthzStatus::Pending | AuthzStatus::Valid))
            {
                OrderStatus::Invalid
            } else if !authzs.is_empty() && authzs.iter().all(|a| *a == AuthzStatus::Valid) {
                OrderStatus::Ready
            } else {
                OrderStatus::Pending
            }
        }
        other => other,
    }
}

/// Whether a client may deactivate an authorization in this status (§7.5.2).
pub fn authz_deactivatable(status: AuthzStatus) -> bool {
    matches!(status, AuthzStatus::Pending | AuthzStatus::Valid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthzStatus as A;
    use OrderStatus as O;

    #[test]
    fn order_follows_its_authorizations() {
        assert_eq!(
            order_status(O::Pending, &[A::Pending, A::Valid], 100, 0),
            O::Pending
        );
        assert_eq!(
            order_status(O::Pending, &[A::Valid, A::Valid], 100, 0),
            O::Ready
        );
        assert_eq!(
            order_status(O::Pending, &[A::Valid, A::Invalid], 100, 0),
            O::Invalid
        );
        assert_eq!(
            order_status(O::Pending, &[A::Deactivated], 100, 0),
            O::Invalid
        );
        assert_eq!(order_status(O::Pending, &[A::Expired], 100, 0), O::Invalid);
        assert_eq!(order_status(O::Pending, &[], 100, 0), O::Pending);
    }

    #[test]
    fn expiry_invalidates_unfinished_orders_only() {
        assert_eq!(order_status(O::Pending, &[A::Valid], 100, 100), O::Invalid);
        assert_eq!(order_status(O::Ready, &[A::Valid], 100, 200), O::Invalid);
        assert_eq!(order_status(O::Valid, &[A::Valid], 100, 200), O::Valid);
        assert_eq!(
            order_status(O::Processing, &[A::Valid], 100, 200),
            O::Processing
        );
        assert_eq!(authz_status(A::Valid, 10, 10), A::Expired);
        assert_eq!(authz_status(A::Invalid, 10, 99), A::Invalid);
        assert_eq!(authz_status(A::Pending, 10, 9), A::Pending);
    }

    #[test]
    fn deactivation_rules() {
        assert!(authz_deactivatable(A::Pending));
        assert!(authz_deactivatable(A::Valid));
        assert!(!authz_deactivatable(A::Invalid));
        assert!(!authz_deactivatable(A::Deactivated));
    }
}
