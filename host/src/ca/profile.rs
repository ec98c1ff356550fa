//! Certificate profiles: validity, extended key usage and key policy, chosen per order
//! (draft-aaron-acme-profiles `profile` field) or by default.

use serde::{Deserialize, Serialize};

/// Which extended key usages a profile's certificates carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExtendedKeyUsage {
    /// id-kp-serverAuth only.
    #[default]
    Server,
    /// id-kp-clientAuth only.
    Client,
    /// Both serverAuth and clientAuth.
    Both,
}

/// Which subject keys a profile accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyPolicy {
    /// Smallest RSA modulus accepted, in bits (0 refuses RSA).
    pub rsa_min_bits: u32,
    pub rsa_max_bits: u32,
    /// Allowed ECDSA curves: "P-256", "P-384".
    pub ec_curves: Vec<String>,
    pub ed25519: bool,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rsa_min_bits: 2048,
            rsa_max_bits: 8192,
            ec_curves: vec!["P-256".into(), "P-384".into()],
            ed25519: true,
        }
    }
}

/// A named certificate profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// Shown in the directory's `meta.profiles`.
    #[serde(default)]
    pub description: String,
    /// Certificate lifetime in hours.
    pub validity_hours: u32,
    #[serde(default)]
    pub eku: ExtendedKeyUsage,
    #[serde(default)]
    pub key_policy: KeyPolicy,
    /// Who issues this profile's certificates: `builtin` (the gateway's CA) or an issuer
    /// plugin's name.
    #[serde(default = "builtin_issuer")]
    pub issuer: String,
    /// Issue names that only mean something on a local network: single-label names
    /// (`printer`) and names under `localhost`. Off by default: such names mean a different
    /// host in every search domain. Names under `invalid` are refused always.
    #[serde(default)]
    pub allow_local_names: bool,
}

fn builtin_issuer() -> String {
    crate::ca::BUILTIN_ISSUER.into()
}

impl Profile {
    /// The profile a fresh install serves: 90-day server certificates, like the public WebPKI.
    pub fn default_server() -> Self {
        Self {
            name: "default".into(),
            description: "TLS server certificate, 90 days".into(),
            validity_hours: 90 * 24,
            eku: ExtendedKeyUsage::Server,
            key_policy: KeyPolicy::default(),
            issuer: builtin_issuer(),
            allow_local_names: false,
        }
    }
}
