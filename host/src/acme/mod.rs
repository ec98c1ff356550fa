//! The ACME protocol (RFC 8555) without I/O: wire types, problem documents, identifier rules
//! and the order/authorization state machine. The HTTP layer (`wfe`) decodes, calls, encodes.

pub mod identifiers;
pub mod name_policy;
pub mod problem;
pub mod renewal;
pub mod state;
pub mod types;

pub use problem::{Problem, ProblemType};
pub use types::*;
