//! What the upki-issuer plugin reads from and writes to a uPKI CA, free of I/O: the reply
//! frames of its ZeroMQ protocol (`protocol`) and just enough DER for its quirks (`der`).
//! `docs/upki.md` has the protocol and the decision for each quirk. Fuzzed by host/fuzz's
//! `upki_wire` target: every byte here comes from the CA.

pub mod der;
pub mod protocol;
