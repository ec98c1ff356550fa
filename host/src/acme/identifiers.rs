//! Identifier rules for newOrder: syntax of DNS names (incl. one leading wildcard label) and IP
//! addresses (RFC 8738), and normalisation.
