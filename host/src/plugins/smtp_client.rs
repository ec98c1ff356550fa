//! The `smtp` capability: e-mail through the relay the operator configured for a plugin.
//!
//! What a message may do is the operator's: the relay, the sender address (a plugin cannot
//! impersonate anyone), the recipients (addresses, or `@domain` for any address there), the
//! transport security and the credentials. The plugin writes only the recipients among those,
//! the subject and a plain-text body. Transport security is STARTTLS, required, unless the
//! grant says `tls` (TLS from the first byte, port 465) or, for a relay on a trusted network,
//! `none`; the relay's certificate is checked against the system bundle or `ca_files`. Message
//! building and the SMTP dialogue are lettre's.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::bindings::wit::smtp::Message as WitMessage;
use super::bindings::wit::types::CapabilityError;
use super::capabilities::SecretValue;

/// The longest a whole delivery (connect, TLS, dialogue) may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// The most recipients and the largest body one message may have.
pub const SMTP_MAX_RECIPIENTS: usize = 50;
pub const SMTP_MAX_BODY_BYTES: usize = 256 << 10;

/// Where the system's CA bundle is on Debian (and most distributions).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How the connection to the relay is protected.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded by STARTTLS, which the relay must offer (port 587 or 25).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay the operator trusts on the path.
    None,
}

/// The `smtp` grant (`[plugins.grants.smtp]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpGrant {
    /// `host:port` of the relay.
    pub server: String,
    /// The sender address of every message.
    pub from: String,
    /// Who may receive: addresses, or `@domain` for any address at that domain.
    pub recipients: Vec<String>,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretValue>,
    /// PEM files of the CAs the relay's certificate is checked against (default: the system's).
    #[serde(default)]
    pub ca_files: Vec<std::path::PathBuf>,
}

impl SmtpGrant {
    /// What deserializing cannot check; the error names the key and the value.
    pub fn check(&self) -> Result<(), String> {
        self.host_and_port()?;
        self.from
            .parse::<Mailbox>()
            .map_err(|e| format!("smtp.from = {:?} is not an address: {e}", self.from))?;
        if self.recipients.is_empty() {
            return Err("smtp.recipients = [] allows nobody: list addresses or @domain".into());
        }
        if self.username.is_some() != self.password.is_some() {
            return Err("smtp.username and smtp.password go together".into());
        }
        Ok(())
    }

    fn host_and_port(&self) -> Result<(&str, u16), String> {
        let bad = || format!("smtp.server = {:?} must be host:port", self.server);
        let (host, port) = self.server.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok((host.trim_matches(['[', ']']), port))
    }

    /// Whether `address` (as written, compared without case) is one this grant allows.
    pub fn allows(&self, address: &str) -> bool {
        let address = address.trim().to_ascii_lowercase();
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        self.recipients.iter().any(|allowed| {
            let allowed = allowed.trim().to_ascii_lowercase();
            match allowed.strip_prefix('@') {
                Some(zone) => domain == zone,
                None => address == allowed,
            }
        })
    }
}

/// Sends `message` through the relay of `grant`.
pub async fn send(
    plugin: &str,
    grant: &SmtpGrant,
    message: WitMessage,
) -> Result<String, CapabilityError> {
    let invalid = |what: String| CapabilityError::Invalid(what);
    if message.to.is_empty() || message.to.len() > SMTP_MAX_RECIPIENTS {
        return Err(invalid(format!(
            "a message needs 1 to {SMTP_MAX_RECIPIENTS} recipients"
        )));
    }
    if message.body.len() > SMTP_MAX_BODY_BYTES {
        return Err(invalid(format!(
            "the body is {} bytes, more than {SMTP_MAX_BODY_BYTES}",
            message.body.len()
        )));
    }
    let from: Mailbox = grant
        .from
        .parse()
        .map_err(|e| CapabilityError::Failed(format!("smtp.from: {e}")))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(message.subject.replace(['\r', '\n'], " "))
        .header(ContentType::TEXT_PLAIN);
    for to in &message.to {
        if !grant.allows(to) {
            return Err(CapabilityError::Denied(format!(
                "mail to {to:?} is not granted to plugin {plugin}; the operator can allow it in \
                 `smtp.recipients`"
            )));
        }
        let mailbox: Mailbox = to
            .parse()
            .map_err(|e| invalid(format!("recipient {to:?}: {e}")))?;
        builder = builder.to(mailbox);
    }
    let email = builder
        .body(message.body)
        .map_err(|e| invalid(format!("message: {e}")))?;
    let transport = transport(grant)?;
    let response = tokio::time::timeout(SMTP_TIMEOUT, transport.send(email))
        .await
        .map_err(|_| CapabilityError::Timeout)?
        .map_err(|e| CapabilityError::Failed(format!("mail relay {}: {e}", grant.server)))?;
    let text: Vec<&str> = response.message().collect();
    Ok(format!("{} {}", response.code(), text.join(" ")))
}

fn transport(grant: &SmtpGrant) -> Result<AsyncSmtpTransport<Tokio1Executor>, CapabilityError> {
    let failed = |what: String| CapabilityError::Failed(what);
    let (host, port) = grant.host_and_port().map_err(CapabilityError::Invalid)?;
    let tls = match grant.security {
        Security::None => Tls::None,
        security => {
            let mut params = TlsParameters::builder(host.to_string())
                .certificate_store(lettre::transport::smtp::client::CertificateStore::None);
            let files: Vec<std::path::PathBuf> = if grant.ca_files.is_empty() {
                vec![SYSTEM_BUNDLE.into()]
            } else {
                grant.ca_files.clone()
            };
            for file in &files {
                let pem = std::fs::read(file)
                    .map_err(|e| failed(format!("CA file {}: {e}", file.display())))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| failed(format!("CA file {}: {e}", file.display())))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| failed(format!("TLS settings: {e}")))?;
            if security == Security::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(password)) = (&grant.username, &grant.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.reveal().into()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(recipients: &[&str]) -> SmtpGrant {
        SmtpGrant {
            server: "mail.example:587".into(),
            from: "acmegate@example.org".into(),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            security: Security::default(),
            username: None,
            password: None,
            ca_files: Vec::new(),
        }
    }

    #[test]
    fn recipients_are_the_operators() {
        let g = grant(&["pki@example.org", "@ops.example"]);
        assert!(g.allows("PKI@example.org"));
        assert!(g.allows("anyone@ops.example"));
        assert!(
            !g.allows("anyone@sub.ops.example"),
            "a domain, not its subdomains"
        );
        assert!(!g.allows("pki@example.org.evil"));
        assert!(!g.allows("other@example.org"));
        assert!(!g.allows("no-at-sign"));
    }

    #[test]
    fn grants_are_checked_naming_the_key() {
        assert!(grant(&["a@b.example"]).check().is_ok());
        let mut g = grant(&["a@b.example"]);
        g.server = "mail.example".into();
        assert!(g.check().unwrap_err().contains("smtp.server"));
        let mut g = grant(&["a@b.example"]);
        g.from = "not an address".into();
        assert!(g.check().unwrap_err().contains("smtp.from"));
        assert!(grant(&[]).check().unwrap_err().contains("smtp.recipients"));
        let mut g = grant(&["a@b.example"]);
        g.username = Some("u".into());
        assert!(g.check().unwrap_err().contains("go together"));
    }

    #[tokio::test]
    async fn refused_before_connecting() {
        let g = grant(&["pki@example.org"]);
        let message = |to: &str| WitMessage {
            to: vec![to.into()],
            subject: "s".into(),
            body: "b".into(),
        };
        let denied = send("p", &g, message("boss@example.org")).await;
        assert!(
            matches!(&denied, Err(CapabilityError::Denied(m)) if m.contains("smtp.recipients")),
            "{denied:?}"
        );
        let empty = send(
            "p",
            &g,
            WitMessage {
                to: vec![],
                subject: "s".into(),
                body: "b".into(),
            },
        )
        .await;
        assert!(matches!(empty, Err(CapabilityError::Invalid(_))));
    }
}
