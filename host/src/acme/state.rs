//! The order/authorization state machine of RFC 8555 §7.1.6, as plain functions.
