//! Certificate events for the notifier plugins: issued, revoked, failed. Each goes to every
//! configured notifier in the background, so a slow or broken notifier never delays or fails
//! the change it reports; a failed delivery is logged (the plugin's counters and last error
//! show it in the admin API).

use crate::acme::Identifier;
use crate::plugins::{EventCertificate, EventType, NotifierEvent, Severity};
use crate::store::Certificate;
use crate::wfe::Gateway;

/// Sends `event` to every notifier, without waiting.
pub fn emit(gw: &Gateway, event: NotifierEvent) {
    for notifier in &gw.notifiers {
        let (notifier, event) = (notifier.clone(), event.clone());
        tokio::spawn(async move {
            let name = notifier.info().name;
            match notifier.notify(&event).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(notifier = %name, error = %e, "notification not delivered")
                }
                Err(fault) => tracing::warn!(notifier = %name, error = %fault, "notifier failed"),
            }
        });
    }
}

/// What notifiers learn about a stored certificate.
fn certificate(gw: &Gateway, cert: &Certificate) -> EventCertificate {
    EventCertificate {
        serial: cert.serial.clone(),
        identifiers: serde_json::from_str::<Vec<Identifier>>(&cert.identifiers).unwrap_or_default(),
        not_before: cert.not_before,
        not_after: cert.not_after,
        account: cert
            .account_id
            .as_deref()
            .map(|id| gw.account_url(id))
            .unwrap_or_default(),
    }
}

/// A certificate was issued (ACME order or admin API).
pub fn issued(gw: &Gateway, cert: &Certificate) {
    if gw.notifiers.is_empty() {
        return;
    }
    emit(
        gw,
        NotifierEvent {
            kind: EventType::Issued,
            severity: Severity::Info,
            certificate: Some(certificate(gw, cert)),
            days_left: None,
            message: format!("certificate {} issued by {}", cert.serial, cert.issuer),
        },
    );
}

/// A certificate was revoked with RFC 5280 `reason`.
pub fn revoked(gw: &Gateway, cert: &Certificate, reason: i32) {
    if gw.notifiers.is_empty() {
        return;
    }
    emit(
        gw,
        NotifierEvent {
            kind: EventType::Revoked,
            severity: Severity::Warning,
            certificate: Some(certificate(gw, cert)),
            days_left: None,
            message: format!("certificate {} revoked (reason {reason})", cert.serial),
        },
    );
}

/// Issuance for an order failed for good.
pub fn failed(gw: &Gateway, order_id: &str, detail: &str) {
    if gw.notifiers.is_empty() {
        return;
    }
    emit(
        gw,
        NotifierEvent {
            kind: EventType::Failed,
            severity: Severity::Critical,
            certificate: None,
            days_left: None,
            message: format!("issuance for order {order_id} failed: {detail}"),
        },
    );
}
