//! ACME Renewal Information (RFC 9773) without I/O: the certID that names a certificate
//! (§4.1), the window in which its renewal is suggested (§4.2) and the wire form of both.
//!
//! The authority (`crate::authority::renewal`) decides which window a certificate gets (the
//! default one here, or one moved to a moment in the past); the front end only encodes it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// RFC 5280 §4.1.2.2: a serial is at most 20 octets; its DER INTEGER may add one 0x00 so
/// that a value with the high bit set stays positive.
const MAX_SERIAL_OCTETS: usize = 21;

/// Longer than any key identifier a CA uses (20 octets for SHA-1, 32 for SHA-256), short
/// enough that a hostile certID cannot make the gateway work on a large value.
const MAX_KEY_IDENTIFIER_OCTETS: usize = 64;

/// How long a moved window lasts: it ends at the moment it was moved to, so clients see a
/// window entirely in the past and renew at once (§4.2).
pub const MOVED_WINDOW_SECONDS: i64 = 3600;

/// Why a certID is refused; each says what is wrong with it (a `malformed` problem).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertIdError {
    #[error("a certID is base64url(AKI keyIdentifier) \".\" base64url(serial) (RFC 9773 §4.1); this one has {0} parts")]
    Parts(usize),
    #[error("the {0} part of the certID is empty")]
    Empty(&'static str),
    #[error("the {0} part of the certID is not unpadded base64url (RFC 9773 §4.1)")]
    NotBase64Url(&'static str),
    #[error("the keyIdentifier of the certID is longer than 64 octets")]
    KeyIdentifierTooLong,
    #[error("the serial of the certID is longer than 21 octets (RFC 5280 §4.1.2.2)")]
    SerialTooLong,
    #[error("the serial of the certID is a negative INTEGER; serials are positive (RFC 5280 §4.1.2.2): a serial whose first octet is 0x80 or more needs a leading 0x00")]
    NegativeSerial,
    #[error("the serial of the certID is not minimal DER: it has a leading 0x00 the value does not need (X.690 §8.3.2)")]
    NonMinimalSerial,
}

/// A certificate's identifier for ARI (RFC 9773 §4.1): the keyIdentifier of its Authority Key
/// Identifier and the content octets of its serialNumber INTEGER, in DER.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertId {
    pub key_identifier: Vec<u8>,
    /// DER content octets of the serial: minimal, positive (a leading 0x00 when the first
    /// octet of the value is 0x80 or more).
    pub serial: Vec<u8>,
}

impl CertId {
    /// The certID of a certificate with this AKI keyIdentifier and serial (DER content octets).
    pub fn new(key_identifier: &[u8], serial: &[u8]) -> CertId {
        CertId {
            key_identifier: key_identifier.to_vec(),
            serial: serial.to_vec(),
        }
    }

    /// Parses `base64url(keyIdentifier) "." base64url(serial)`, both without padding.
    pub fn parse(text: &str) -> Result<CertId, CertIdError> {
        let parts: Vec<&str> = text.split('.').collect();
        let (key_identifier, serial) = match parts.as_slice() {
            [k, s] => (*k, *s),
            _ => return Err(CertIdError::Parts(parts.len())),
        };
        let decode = |part: &str, name: &'static str| {
            if part.is_empty() {
                return Err(CertIdError::Empty(name));
            }
            B64.decode(part)
                .map_err(|_| CertIdError::NotBase64Url(name))
        };
        let key_identifier = decode(key_identifier, "keyIdentifier")?;
        let serial = decode(serial, "serial")?;
        if key_identifier.len() > MAX_KEY_IDENTIFIER_OCTETS {
            return Err(CertIdError::KeyIdentifierTooLong);
        }
        check_serial(&serial)?;
        Ok(CertId {
            key_identifier,
            serial,
        })
    }

    /// The certID of a DER certificate; `None` when it cannot be read or has no AKI
    /// keyIdentifier (§4.1: such a certificate has no certID).
    pub fn of_certificate(der: &[u8]) -> Option<CertId> {
        let info = crate::ca::certificate_info(der).ok()?;
        Some(CertId {
            key_identifier: info.authority_key_id?,
            serial: info.serial_der,
        })
    }

    /// The serial as the store keeps it: lower-case hex without leading zeros.
    pub fn serial_hex(&self) -> String {
        crate::ca::serial_hex(&self.serial)
    }
}

impl std::fmt::Display for CertId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            B64.encode(&self.key_identifier),
            B64.encode(&self.serial)
        )
    }
}

/// A serial's DER INTEGER content octets must be minimal and positive (X.690 §8.3, RFC 5280
/// §4.1.2.2), so that one certificate has exactly one certID.
fn check_serial(serial: &[u8]) -> Result<(), CertIdError> {
    match serial {
        [] => Err(CertIdError::Empty("serial")),
        s if s.len() > MAX_SERIAL_OCTETS => Err(CertIdError::SerialTooLong),
        [first, ..] if *first >= 0x80 => Err(CertIdError::NegativeSerial),
        [0x00, second, ..] if *second < 0x80 => Err(CertIdError::NonMinimalSerial),
        _ => Ok(()),
    }
}

/// A suggested renewal window, Unix seconds; `start < end` always (§4.2: a window whose end
/// does not follow its start is invalid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// A window that ends at `at` (when it was moved, in the past for every later reader):
    /// §4.2 tells a client that sees a window in the past to renew at once.
    pub fn ending_at(at: i64) -> Window {
        Window {
            start: at - MOVED_WINDOW_SECONDS,
            end: at,
        }
    }
}

/// The default window of a certificate valid from `not_before` to `not_after`: inside the
/// middle half of the last third of its lifetime (from 3/4 to 11/12), a window a quarter of
/// that span long, placed by a hash of the serial. Renewing in the last third leaves a third
/// of the lifetime for retries; spreading by serial keeps a fleet issued at one moment from
/// renewing at one moment (§1: the load spikes ARI exists to avoid). Deterministic, so every
/// replica and every poll give a certificate the same window.
pub fn default_window(not_before: i64, not_after: i64, serial: &[u8]) -> Window {
    let lifetime = not_after.saturating_sub(not_before).max(1);
    let region_start = not_before + lifetime * 3 / 4;
    let region_len = (lifetime / 6).max(1);
    let width = (region_len / 4).max(1);
    let slots = u64::try_from(region_len - width).unwrap_or(0) + 1;
    let digest = ring::digest::digest(&ring::digest::SHA256, serial);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    let offset = i64::try_from(u64::from_be_bytes(first) % slots).unwrap_or(0);
    let start = region_start + offset;
    Window {
        start,
        end: start + width,
    }
}

/// Whether an order still counts as replacing a certificate (§5: a certificate "has not
/// already been marked as replaced by a different Order that is not invalid"). An order that
/// is pending or ready past its expiry is invalid (RFC 8555 §7.1.6) even if its stored status
/// has not caught up yet.
pub fn replacement_is_live(status: super::OrderStatus, expires: i64, now: i64) -> bool {
    use super::OrderStatus::*;
    match status {
        Valid | Processing => true,
        Pending | Ready => expires > now,
        Invalid => false,
    }
}

/// The RenewalInfo object (RFC 9773 §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfo {
    pub suggested_window: SuggestedWindow,
    /// A page for a human on why the window is where it is (§4.2); set when it was moved.
    #[serde(
        default,
        rename = "explanationURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub explanation_url: Option<String>,
}

/// `suggestedWindow`: RFC 3339 times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestedWindow {
    pub start: String,
    pub end: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn cert_ids_round_trip() {
        // RFC 9773 §4.1's example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
        // serial 00:87:65:43:21 (a leading 0x00 keeps it positive).
        let id = CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(
            id.key_identifier,
            [
                0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
                0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4
            ]
        );
        assert_eq!(id.serial, [0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(id.serial_hex(), "87654321");
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        assert_eq!(CertId::new(&[1], &[0x01, 0x02]).serial_hex(), "102");
    }

    #[test]
    fn malformed_cert_ids_say_what_is_wrong() {
        let cases = [
            ("", CertIdError::Parts(1)),
            ("abc", CertIdError::Parts(1)),
            ("a.b.c", CertIdError::Parts(3)),
            (".AQ", CertIdError::Empty("keyIdentifier")),
            ("AQ.", CertIdError::Empty("serial")),
            ("AQ==.AQ", CertIdError::NotBase64Url("keyIdentifier")),
            ("AQ.AQ==", CertIdError::NotBase64Url("serial")),
            ("AQ.A+8", CertIdError::NotBase64Url("serial")),
            ("AQ.gA", CertIdError::NegativeSerial),
            ("AQ.AAE", CertIdError::NonMinimalSerial),
            ("AQ.AAA", CertIdError::NonMinimalSerial),
        ];
        for (text, want) in cases {
            assert_eq!(CertId::parse(text), Err(want.clone()), "{text:?}");
            assert!(!want.to_string().is_empty());
        }
        let long_serial = B64.encode([1u8; 22]);
        assert_eq!(
            CertId::parse(&format!("AQ.{long_serial}")),
            Err(CertIdError::SerialTooLong)
        );
        let long_key = B64.encode([1u8; 65]);
        assert_eq!(
            CertId::parse(&format!("{long_key}.AQ")),
            Err(CertIdError::KeyIdentifierTooLong)
        );
        // Zero is a (minimal, positive) INTEGER.
        assert_eq!(CertId::parse("AQ.AA").unwrap().serial_hex(), "0");
    }

    #[test]
    fn the_default_window_lies_in_the_middle_of_the_last_third() {
        let (nb, na) = (1_000_000, 1_000_000 + 90 * DAY);
        let w = default_window(nb, na, &[0x42; 16]);
        assert!(w.start >= nb + 90 * DAY * 3 / 4, "{w:?}");
        assert!(w.end <= nb + 90 * DAY * 11 / 12, "{w:?}");
        assert_eq!(w.end - w.start, 90 * DAY / 24);
        assert_eq!(w, default_window(nb, na, &[0x42; 16]), "deterministic");
    }

    #[test]
    fn windows_spread_a_fleet() {
        let (nb, na) = (0, 90 * DAY);
        let starts: std::collections::BTreeSet<i64> = (0u32..200)
            .map(|i| default_window(nb, na, &i.to_be_bytes()).start)
            .collect();
        assert!(starts.len() > 190, "only {} distinct starts", starts.len());
        let (lo, hi) = (starts.first().unwrap(), starts.last().unwrap());
        // 200 serials cover most of the 15-day region (less the 3.75-day window).
        assert!(hi - lo > 10 * DAY, "spread {}", hi - lo);
    }

    #[test]
    fn moved_windows_end_when_moved() {
        let w = Window::ending_at(5_000);
        assert_eq!(w.end, 5_000);
        assert!(w.start < w.end);
    }

    #[test]
    fn replacements_count_until_they_fail_or_expire() {
        use crate::acme::OrderStatus::*;
        assert!(replacement_is_live(Valid, 0, 10));
        assert!(replacement_is_live(Processing, 0, 10));
        assert!(replacement_is_live(Pending, 11, 10));
        assert!(!replacement_is_live(Ready, 10, 10));
        assert!(!replacement_is_live(Invalid, 99, 10));
    }

    #[test]
    fn renewal_info_wire_form() {
        let info = RenewalInfo {
            suggested_window: SuggestedWindow {
                start: "2026-01-01T00:00:00Z".into(),
                end: "2026-01-02T00:00:00Z".into(),
            },
            explanation_url: Some("https://example.org/why".into()),
        };
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["suggestedWindow"]["start"], "2026-01-01T00:00:00Z");
        assert_eq!(v["explanationURL"], "https://example.org/why");
        let plain = RenewalInfo {
            explanation_url: None,
            ..info
        };
        assert!(serde_json::to_value(&plain)
            .unwrap()
            .get("explanationURL")
            .is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any text is parsed or refused with a reason, never a panic; what parses
            /// encodes back to the same text (one certID per certificate).
            #[test]
            fn any_text_parses_or_is_refused(text in ".{0,120}") {
                if let Ok(id) = CertId::parse(&text) {
                    prop_assert_eq!(id.to_string(), text);
                }
            }

            /// Mangled certIDs built from base64url alphabets and dots.
            #[test]
            fn base64url_shaped_text_round_trips_when_accepted(text in "[A-Za-z0-9_=.+/-]{0,60}") {
                if let Ok(id) = CertId::parse(&text) {
                    prop_assert_eq!(id.to_string(), text);
                    prop_assert!(!id.serial.is_empty() && id.serial[0] < 0x80);
                }
            }

            /// Every minimal positive serial and key identifier round-trips.
            #[test]
            fn valid_ids_round_trip(
                key in proptest::collection::vec(any::<u8>(), 1..40),
                value in proptest::collection::vec(any::<u8>(), 1..20),
            ) {
                let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
                let mut serial = if trimmed.is_empty() { vec![0] } else { trimmed };
                if serial[0] >= 0x80 {
                    serial.insert(0, 0);
                }
                let id = CertId::new(&key, &serial);
                prop_assert_eq!(CertId::parse(&id.to_string()), Ok(id));
            }

            /// The window lies inside the lifetime, after two thirds of it, and ends after
            /// it starts, whatever the lifetime and serial.
            #[test]
            fn windows_fit_the_lifetime(
                not_before in -1_000_000_000i64..4_000_000_000,
                lifetime in 1i64..(400 * 86_400),
                serial in proptest::collection::vec(any::<u8>(), 1..21),
            ) {
                let w = default_window(not_before, not_before + lifetime, &serial);
                prop_assert!(w.start < w.end);
                prop_assert!(w.start >= not_before + lifetime * 2 / 3);
                prop_assert!(w.end <= not_before + lifetime);
            }
        }
    }
}
