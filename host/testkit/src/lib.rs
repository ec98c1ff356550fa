//! Test tooling for acmegate's unit and end-to-end tests, kept out of the gateway's library:
//! the release binary links none of it (`host` has this crate as a dev-dependency only).
//!
//! - [`db`]: a fresh PostgreSQL database or SQLite file per test, and raw SQL for tests that
//!   tamper with the database behind the gateway's back;
//! - [`dns`]: a real DNS server on 127.0.0.1 with the zones a test writes.
//!
//! A missing PostgreSQL fails the test (it never skips): the suite is meant to prove both
//! backends.

pub mod db;
pub mod dns;
