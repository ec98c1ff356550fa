//! Who is calling: the role a verified client certificate carries, and the revocation check
//! that makes a revoked admin's next connection fail without a restart.
//!
//! The TLS layer has already checked the chain, the validity period and the CRL the listener
//! was built with. Here the certificate's serial is also looked up in the store, which every
//! replica shares: a revocation on another replica shuts the door at once, even before this
//! replica's CRL is rebuilt.

use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::authority::Gateway;
use crate::config::AdminConfig;

/// What a certificate may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything under `/api/v1/`.
    Admin,
    /// Only `/api/client/`: its own certificate.
    Client,
    /// Reads everything an admin reads (every `GET` under `/api/v1/` and the console) and
    /// changes nothing: for the people who check the PKI rather than run it.
    Auditor,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Client => "client",
            Role::Auditor => "auditor",
        }
    }
}

/// A caller with a verified, unrevoked certificate.
#[derive(Clone, Debug, Serialize)]
pub struct Caller {
    pub role: Role,
    /// Subject common name ("" when the certificate has none).
    pub subject: String,
    /// Lower-case hex serial of the presented certificate.
    pub serial: String,
    /// The presented leaf (DER).
    #[serde(skip)]
    pub certificate: Vec<u8>,
}

impl Caller {
    /// Whether this caller may call `route`. `admin` and `client` are separate: an admin
    /// certificate is not a client identity. An `auditor` may read (`GET`) what an admin
    /// reads and is refused every change here, in the API, so that no front end (the console
    /// included) can let one through.
    pub fn permit(&self, route: &super::Route) -> Result<(), ApiError> {
        if self.role == Role::Auditor && route.role == Role::Admin {
            return if route.method == "GET" {
                Ok(())
            } else {
                Err(ApiError::forbidden(format!(
                    "the auditor role is read-only: the certificate of {:?} may not {} {}",
                    self.subject, route.method, route.path
                )))
            };
        }
        self.require(route.role)
    }

    /// Exactly `role`, for the routes that only one role may call.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this route needs the {} role; the certificate of {:?} has the {} role",
                role.name(),
                self.subject,
                self.role.name()
            )))
        }
    }

    /// How audit entries and logs name this caller.
    pub fn actor(&self) -> String {
        format!(
            "{}:{} (serial {})",
            self.role.name(),
            self.subject,
            self.serial
        )
    }
}

/// The role `config` gives a certificate with this subject: listed common names first, then
/// organizational units, each in the order admin, auditor, client. `None` when it has neither.
pub fn role_of(config: &AdminConfig, common_name: Option<&str>, units: &[String]) -> Option<Role> {
    if let Some(cn) = common_name {
        if config.admin_names.iter().any(|n| n == cn) {
            return Some(Role::Admin);
        }
        if config.auditor_names.iter().any(|n| n == cn) {
            return Some(Role::Auditor);
        }
        if config.client_names.iter().any(|n| n == cn) {
            return Some(Role::Client);
        }
    }
    if units.iter().any(|u| config.admin_units.contains(u)) {
        return Some(Role::Admin);
    }
    if units.iter().any(|u| config.auditor_units.contains(u)) {
        return Some(Role::Auditor);
    }
    if units.iter().any(|u| config.client_units.contains(u)) {
        return Some(Role::Client);
    }
    None
}

/// The caller behind `peer` (the leaf the TLS layer verified), or why it gets nothing.
pub async fn authenticate(gw: &Gateway, peer: Option<&[u8]>) -> Result<Caller, ApiError> {
    let der = peer.ok_or_else(|| {
        ApiError::unauthorized(
            "the admin API needs a client certificate of this gateway's CA (curl --cert/--key)",
        )
    })?;
    let info = crate::ca::certificate_info(der)
        .map_err(|e| ApiError::unauthorized(format!("unreadable client certificate: {e}")))?;
    let role = role_of(
        &gw.config.admin,
        info.subject_cn.as_deref(),
        &info.subject_units,
    )
    .ok_or_else(|| {
        ApiError::forbidden(format!(
            "the certificate of {:?} (OU {:?}) carries no admin API role",
            info.subject_cn.as_deref().unwrap_or_default(),
            info.subject_units
        ))
    })?;
    let serial = info.serial_hex.clone();
    let stored = {
        let serial = serial.clone();
        gw.db(move |s| s.certificate_by_serial(&serial)).await
    };
    match stored {
        Ok(cert) if cert.status == crate::acme::CertificateStatus::Revoked => {
            return Err(ApiError::unauthorized(format!(
                "the client certificate {serial} is revoked"
            )))
        }
        Ok(_) | Err(crate::store::StoreError::NotFound) => {}
        Err(e) => return Err(ApiError::store(e, "certificate")),
    }
    Ok(Caller {
        role,
        subject: info.subject_cn.unwrap_or_default(),
        serial,
        certificate: der.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_listed_names_then_units() {
        let config = AdminConfig {
            admin_names: vec!["root-operator".into()],
            client_names: vec!["billing".into()],
            auditor_names: vec!["inspector".into()],
            ..AdminConfig::default()
        };
        let units = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            role_of(&config, Some("x"), &units(&["acmegate-admin"])),
            Some(Role::Admin)
        );
        assert_eq!(
            role_of(&config, Some("x"), &units(&["acmegate-client"])),
            Some(Role::Client)
        );
        // A listed name wins over the unit.
        assert_eq!(
            role_of(&config, Some("billing"), &units(&["acmegate-admin"])),
            Some(Role::Client)
        );
        assert_eq!(
            role_of(&config, Some("root-operator"), &[]),
            Some(Role::Admin)
        );
        assert_eq!(
            role_of(&config, Some("x"), &units(&["acmegate-auditor"])),
            Some(Role::Auditor)
        );
        assert_eq!(
            role_of(&config, Some("inspector"), &units(&["acmegate-client"])),
            Some(Role::Auditor)
        );
        assert_eq!(role_of(&config, Some("x"), &units(&["other"])), None);
        assert_eq!(role_of(&config, None, &[]), None);
    }

    #[test]
    fn roles_are_not_interchangeable() {
        let caller = Caller {
            role: Role::Client,
            subject: "svc".into(),
            serial: "01".into(),
            certificate: Vec::new(),
        };
        assert!(caller.require(Role::Client).is_ok());
        let e = caller.require(Role::Admin).unwrap_err();
        assert_eq!(e.status, http::StatusCode::FORBIDDEN);
        assert!(e.detail.contains("admin role"), "{}", e.detail);
    }

    #[test]
    fn auditors_read_every_admin_route_and_change_nothing() {
        let caller = |role| Caller {
            role,
            subject: "eve".into(),
            serial: "02".into(),
            certificate: Vec::new(),
        };
        let auditor = caller(Role::Auditor);
        let mut reads = 0;
        for route in super::super::ROUTES {
            let verdict = auditor.permit(route);
            match (route.role, route.method) {
                (Role::Admin, "GET") => {
                    assert!(verdict.is_ok(), "{} {}", route.method, route.path);
                    reads += 1;
                }
                _ => {
                    let e = verdict.unwrap_err();
                    assert_eq!(e.status, http::StatusCode::FORBIDDEN, "{}", route.path);
                }
            }
            if route.role == Role::Admin && route.method != "GET" {
                let e = auditor.permit(route).unwrap_err();
                assert!(
                    e.detail.contains("auditor role is read-only"),
                    "{}",
                    e.detail
                );
            }
            // The other roles are unchanged by the auditor's rule.
            assert_eq!(
                caller(Role::Admin).permit(route).is_ok(),
                route.role == Role::Admin
            );
            assert_eq!(
                caller(Role::Client).permit(route).is_ok(),
                route.role == Role::Client
            );
        }
        assert!(reads >= 10, "only {reads} admin reads");
    }
}
