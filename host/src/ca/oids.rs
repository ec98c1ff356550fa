//! Object identifiers the CA reads and writes, as DER content octets (bcder `ConstOid`).

use bcder::{ConstOid, Oid};

// RFC 5280 §4.2.1: certificate extensions (id-ce = 2.5.29).
pub const SUBJECT_KEY_IDENTIFIER: ConstOid = Oid(&[85, 29, 14]);
pub const KEY_USAGE: ConstOid = Oid(&[85, 29, 15]);
pub const SUBJECT_ALT_NAME: ConstOid = Oid(&[85, 29, 17]);
pub const BASIC_CONSTRAINTS: ConstOid = Oid(&[85, 29, 19]);
pub const CRL_DISTRIBUTION_POINTS: ConstOid = Oid(&[85, 29, 31]);
pub const AUTHORITY_KEY_IDENTIFIER: ConstOid = Oid(&[85, 29, 35]);
pub const EXT_KEY_USAGE: ConstOid = Oid(&[85, 29, 37]);
/// 1.3.6.1.5.5.7.1.1, RFC 5280 §4.2.2.1.
pub const AUTHORITY_INFO_ACCESS: ConstOid = Oid(&[43, 6, 1, 5, 5, 7, 1, 1]);
/// 1.3.6.1.5.5.7.48.2 id-ad-caIssuers.
pub const CA_ISSUERS: ConstOid = Oid(&[43, 6, 1, 5, 5, 7, 48, 2]);
/// 1.3.6.1.5.5.7.3.1 id-kp-serverAuth.
pub const KP_SERVER_AUTH: ConstOid = Oid(&[43, 6, 1, 5, 5, 7, 3, 1]);
/// 1.3.6.1.5.5.7.3.2 id-kp-clientAuth.
pub const KP_CLIENT_AUTH: ConstOid = Oid(&[43, 6, 1, 5, 5, 7, 3, 2]);

/// 1.2.840.113549.1.9.14 PKCS#9 extensionRequest (RFC 2985 §5.4.2).
pub const EXTENSION_REQUEST: ConstOid = Oid(&[42, 134, 72, 134, 247, 13, 1, 9, 14]);

// Key algorithms (RFC 3279, RFC 5480, RFC 8410).
pub const RSA_ENCRYPTION: ConstOid = Oid(&[42, 134, 72, 134, 247, 13, 1, 1, 1]);
pub const RSASSA_PSS: ConstOid = Oid(&[42, 134, 72, 134, 247, 13, 1, 1, 10]);
pub const EC_PUBLIC_KEY: ConstOid = Oid(&[42, 134, 72, 206, 61, 2, 1]);
pub const ED25519: ConstOid = Oid(&[43, 101, 112]);
pub const SECP256R1: ConstOid = Oid(&[42, 134, 72, 206, 61, 3, 1, 7]);
pub const SECP384R1: ConstOid = Oid(&[43, 129, 4, 0, 34]);
pub const SECP521R1: ConstOid = Oid(&[43, 129, 4, 0, 35]);

// Signature algorithms (RFC 4055, RFC 5758).
pub const SHA256_WITH_RSA: ConstOid = Oid(&[42, 134, 72, 134, 247, 13, 1, 1, 11]);
pub const SHA384_WITH_RSA: ConstOid = Oid(&[42, 134, 72, 134, 247, 13, 1, 1, 12]);
pub const SHA512_WITH_RSA: ConstOid = Oid(&[42, 134, 72, 134, 247, 13, 1, 1, 13]);
pub const ECDSA_WITH_SHA256: ConstOid = Oid(&[42, 134, 72, 206, 61, 4, 3, 2]);
pub const ECDSA_WITH_SHA384: ConstOid = Oid(&[42, 134, 72, 206, 61, 4, 3, 3]);
/// 1.2.840.113549.1.1.8 id-mgf1 (RFC 4055 §2.2).
pub const MGF1: ConstOid = Oid(&[42, 134, 72, 134, 247, 13, 1, 1, 8]);

// Digests (RFC 5754).
pub const SHA256: ConstOid = Oid(&[96, 134, 72, 1, 101, 3, 4, 2, 1]);
pub const SHA384: ConstOid = Oid(&[96, 134, 72, 1, 101, 3, 4, 2, 2]);
pub const SHA512: ConstOid = Oid(&[96, 134, 72, 1, 101, 3, 4, 2, 3]);

// RFC 5280 §5.2 and §5.3: CRL and CRL entry extensions.
/// 2.5.29.20 cRLNumber.
pub const CRL_NUMBER: ConstOid = Oid(&[85, 29, 20]);
/// 2.5.29.21 reasonCode.
pub const REASON_CODE: ConstOid = Oid(&[85, 29, 21]);
