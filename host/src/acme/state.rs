//! The order and authorization state machine of RFC 8555 §7.1.6, as plain functions over
//! statuses and times, so every transition is testable without a server.

use super::types::{AuthzStatus, ChallengeStatus, OrderStatus};

/// Whether an order may move from `from` to `to` (§7.1.6, "State Transitions for Order
/// Objects"): pending to ready or invalid, ready to processing or invalid, processing to valid
/// or invalid. `valid` and `invalid` are final.
pub fn order_may_become(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    matches!(
        (from, to),
        (Pending, Ready | Invalid) | (Ready, Processing | Invalid) | (Processing, Valid | Invalid)
    )
}

/// Whether an authorization may move from `from` to `to` (§7.1.6, "State Transitions for
/// Authorization Objects"): pending to valid, invalid, expired or deactivated; valid to
/// expired, deactivated or revoked. The others are final.
pub fn authz_may_become(from: AuthzStatus, to: AuthzStatus) -> bool {
    use AuthzStatus::*;
    matches!(
        (from, to),
        (Pending, Valid | Invalid | Expired | Deactivated)
            | (Valid, Expired | Deactivated | Revoked)
    )
}

/// Whether a challenge may move from `from` to `to` (§7.1.6, "State Transitions for Challenge
/// Objects"): pending to processing (validation starts) or straight to valid (the operator
/// turned validation off), processing to valid or invalid; a failed authorization also fails
/// its other pending challenges. `valid` and `invalid` are final.
pub fn challenge_may_become(from: ChallengeStatus, to: ChallengeStatus) -> bool {
    use ChallengeStatus::*;
    matches!(
        (from, to),
        (Pending, Processing | Valid | Invalid) | (Processing, Valid | Invalid)
    )
}

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
/// `invalid` when any fails, is deactivated, expires or is revoked, or when the order expires;
/// a ready order becomes `invalid` when it expires or an authorization stops being valid.
pub fn order_status(
    stored: OrderStatus,
    authzs: &[AuthzStatus],
    expires: i64,
    now: i64,
) -> OrderStatus {
    match stored {
        OrderStatus::Pending | OrderStatus::Ready if now >= expires => OrderStatus::Invalid,
        // A ready order whose authorization was deactivated, revoked or expired since is not
        // ready any more: the figure's "Authorization failure" edge from ready to invalid, so
        // finalize cannot issue on an authorization the client gave up.
        OrderStatus::Ready if authzs.iter().any(|a| *a != AuthzStatus::Valid) => {
            OrderStatus::Invalid
        }
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
        assert_eq!(
            order_status(O::Ready, &[A::Valid, A::Valid], 100, 0),
            O::Ready
        );
        assert_eq!(
            order_status(O::Ready, &[A::Valid, A::Deactivated], 100, 0),
            O::Invalid,
            "an authorization given up after the order was ready"
        );
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
    fn transitions_follow_the_rfc_figures() {
        assert!(order_may_become(O::Pending, O::Ready));
        assert!(order_may_become(O::Ready, O::Processing));
        assert!(order_may_become(O::Processing, O::Valid));
        assert!(
            !order_may_become(O::Pending, O::Processing),
            "finalize needs ready"
        );
        assert!(!order_may_become(O::Valid, O::Invalid), "valid is final");
        assert!(
            !order_may_become(O::Ready, O::Ready),
            "no move is not a transition"
        );
        assert!(authz_may_become(A::Valid, A::Revoked));
        assert!(!authz_may_become(A::Pending, A::Revoked));
        assert!(
            !authz_may_become(A::Deactivated, A::Valid),
            "deactivated is final"
        );
        use ChallengeStatus as C;
        assert!(challenge_may_become(C::Pending, C::Processing));
        assert!(!challenge_may_become(C::Processing, C::Pending));
        assert!(!challenge_may_become(C::Invalid, C::Valid));
    }

    #[test]
    fn deactivation_rules() {
        assert!(authz_deactivatable(A::Pending));
        assert!(authz_deactivatable(A::Valid));
        assert!(!authz_deactivatable(A::Invalid));
        assert!(!authz_deactivatable(A::Deactivated));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn authz() -> impl Strategy<Value = A> {
            prop_oneof![
                Just(A::Pending),
                Just(A::Valid),
                Just(A::Invalid),
                Just(A::Deactivated),
                Just(A::Expired),
                Just(A::Revoked),
            ]
        }

        fn order() -> impl Strategy<Value = O> {
            prop_oneof![
                Just(O::Pending),
                Just(O::Ready),
                Just(O::Processing),
                Just(O::Valid),
                Just(O::Invalid),
            ]
        }

        /// One thing that can happen to an order of two authorizations.
        #[derive(Clone, Debug)]
        enum Event {
            /// Time moves on by this many seconds.
            Wait(i64),
            /// An authorization moves (validated, failed, deactivated, revoked...), if the RFC
            /// allows it.
            Authz(usize, A),
            /// The client finalizes; the issuer then succeeds or fails.
            Finalize,
            Issued(bool),
        }

        fn event() -> impl Strategy<Value = Event> {
            prop_oneof![
                (1i64..50).prop_map(Event::Wait),
                (0usize..2, authz()).prop_map(|(i, a)| Event::Authz(i, a)),
                Just(Event::Finalize),
                any::<bool>().prop_map(Event::Issued),
            ]
        }

        proptest! {
            /// Whatever an order's authorizations and the clock say, the status read from them
            /// is the stored one or one the RFC lets it move to, and a final status stays.
            #[test]
            fn a_read_status_moves_only_as_the_rfc_allows(
                stored in order(),
                authzs in proptest::collection::vec(authz(), 0..4),
                expires in 0i64..100,
                now in 0i64..200,
            ) {
                let read = order_status(stored, &authzs, expires, now);
                prop_assert!(read == stored || order_may_become(stored, read), "{stored} -> {read}");
                if matches!(stored, O::Valid | O::Invalid) {
                    prop_assert_eq!(read, stored);
                }
                for a in authzs {
                    let read = authz_status(a, expires, now);
                    prop_assert!(read == a || authz_may_become(a, read), "{a} -> {read}");
                }
            }

            /// Any history of an order: every status it takes follows the RFC's figure, it
            /// never leaves valid or invalid, and it is valid only after both authorizations
            /// were valid when it was finalized.
            #[test]
            fn histories_follow_the_state_machine(events in proptest::collection::vec(event(), 0..40)) {
                let (expires, authz_expires) = (100, 300);
                let mut now = 0;
                let mut authzs = [A::Pending, A::Pending];
                let mut status = O::Pending;
                let mut finalized_with_valid_authzs = false;
                for event in events {
                    match event {
                        Event::Wait(d) => now += d,
                        Event::Authz(i, to) => {
                            let current = authz_status(authzs[i], authz_expires, now);
                            if authz_may_become(current, to) {
                                authzs[i] = to;
                            }
                        }
                        Event::Finalize if status == O::Ready => {
                            finalized_with_valid_authzs = authzs.iter().all(|a| *a == A::Valid);
                            status = O::Processing;
                        }
                        Event::Issued(ok) if status == O::Processing => {
                            status = if ok { O::Valid } else { O::Invalid };
                        }
                        Event::Finalize | Event::Issued(_) => {}
                    }
                    let current: Vec<A> =
                        authzs.iter().map(|a| authz_status(*a, authz_expires, now)).collect();
                    let read = order_status(status, &current, expires, now);
                    prop_assert!(read == status || order_may_become(status, read), "{status} -> {read}");
                    if matches!(status, O::Valid | O::Invalid) {
                        prop_assert_eq!(read, status);
                    }
                    status = read;
                }
                if status == O::Valid {
                    prop_assert!(finalized_with_valid_authzs);
                }
            }
        }
    }
}
