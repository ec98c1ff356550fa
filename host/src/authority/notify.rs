//! Certificate events for the notifier plugins: issued, renewed, revoked, failed (issuance,
//! deployment, a managed certificate's renewal or deployment), and
//! expiring (from `crate::authority::expiry`). Each goes to every configured notifier in the background,
//! so a slow or broken notifier never delays or fails the change it reports; a failed delivery
//! is logged (the plugin's counters and last error show it in the admin API).

use crate::acme::Identifier;
use crate::authority::Gateway;
use crate::plugins::{EventCertificate, EventType, NotifierEvent, Severity};
use crate::store::Certificate;

/// Sends `event` to every notifier, without waiting.
pub fn emit(gw: &Gateway, event: NotifierEvent) {
    for notifier in &gw.notifiers {
        let (notifier, event) = (notifier.clone(), event.clone());
        tokio::spawn(async move {
            let name = notifier.info().name;
            // A delivery the plugin reports failed is its own error, not a fault: it shows as
            // the plugin's last error in its status, and a fault counts towards quarantine.
            if let Err(e) = notifier.notify(&event).await {
                tracing::warn!(notifier = %name, error = %e, "notification not delivered");
            }
        });
    }
}

/// An info event (`issued` or `renewed`) about the stored certificate `cert`.
fn issued_event(gw: &Gateway, kind: EventType, cert: &Certificate, message: String) {
    emit(
        gw,
        NotifierEvent {
            kind,
            severity: Severity::Info,
            certificate: Some(certificate(gw, cert)),
            days_left: None,
            message,
        },
    );
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

/// A certificate was issued (ACME order or admin API): `renewed` when the same account had a
/// certificate for exactly these identifiers before, else `issued`.
pub async fn issued(gw: &Gateway, cert: &Certificate) {
    if gw.notifiers.is_empty() {
        return;
    }
    let (account, identifiers, serial) = (
        cert.account_id.clone(),
        cert.identifiers.clone(),
        cert.serial.clone(),
    );
    let renewal = gw
        .db(move |s| s.is_renewal(account.as_deref(), &identifiers, &serial))
        .await
        .unwrap_or(false);
    let (kind, verb) = if renewal {
        (EventType::Renewed, "renewed")
    } else {
        (EventType::Issued, "issued")
    };
    issued_event(
        gw,
        kind,
        cert,
        format!("certificate {} {verb} by {}", cert.serial, cert.issuer),
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

/// `cert` has `days_left` whole days left and reached `threshold` (30, 14, 7, 0).
pub fn expiring(gw: &Gateway, cert: &Certificate, days_left: i64, threshold: i32) {
    let names: Vec<String> = serde_json::from_str::<Vec<Identifier>>(&cert.identifiers)
        .unwrap_or_default()
        .into_iter()
        .map(|id| id.value)
        .collect();
    let subject = if names.is_empty() {
        cert.subject.clone()
    } else {
        names.join(", ")
    };
    emit(
        gw,
        NotifierEvent {
            kind: EventType::Expiring,
            severity: crate::authority::expiry::severity(threshold),
            certificate: Some(certificate(gw, cert)),
            days_left: Some(i32::try_from(days_left).unwrap_or(i32::MAX)),
            message: format!(
                "certificate {} for {subject} expires in {days_left} day(s)",
                cert.serial
            ),
        },
    );
}

/// Deploying `cert` to `target` failed on every attempt.
pub fn deploy_failed(gw: &Gateway, cert: &Certificate, target: &str, detail: &str) {
    let message = format!(
        "deployment of certificate {} to target {target} failed: {detail}",
        cert.serial
    );
    failure(gw, Some(cert), message);
}

/// Managed certificate `name` got `cert`: `renewed` when it replaced `replaced`, else
/// `issued` (its first certificate); sent once every target has it.
pub fn managed_renewed(gw: &Gateway, name: &str, cert: &Certificate, replaced: Option<&str>) {
    let (kind, message) = match replaced {
        Some(old) => (
            EventType::Renewed,
            format!(
                "managed certificate {name} renewed: {} replaces {old}, deployed to its targets",
                cert.serial
            ),
        ),
        None => (
            EventType::Issued,
            format!(
                "managed certificate {name} issued: {}, deployed to its targets",
                cert.serial
            ),
        ),
    };
    issued_event(gw, kind, cert, message);
}

/// A round of managed certificate work failed: its renewal (`cert` is `None`) or the
/// deployment of `cert`, for the `attempts`-th time in a row. A warning that will be retried,
/// until `critical`: the operator must act.
pub fn managed_failed(gw: &Gateway, cert: Option<&Certificate>, message: String, critical: bool) {
    emit(
        gw,
        NotifierEvent {
            kind: EventType::Failed,
            severity: if critical {
                Severity::Critical
            } else {
                Severity::Warning
            },
            certificate: cert.map(|c| certificate(gw, c)),
            days_left: None,
            message,
        },
    );
}

/// Issuance for an order failed for good.
pub fn failed(gw: &Gateway, order_id: &str, detail: &str) {
    failure(
        gw,
        None,
        format!("issuance for order {order_id} failed: {detail}"),
    );
}

/// A critical `failed` event, about `cert` when there is one.
fn failure(gw: &Gateway, cert: Option<&Certificate>, message: String) {
    if gw.notifiers.is_empty() {
        return;
    }
    emit(
        gw,
        NotifierEvent {
            kind: EventType::Failed,
            severity: Severity::Critical,
            certificate: cert.map(|c| certificate(gw, c)),
            days_left: None,
            message,
        },
    );
}
