//! Debian's Pebble (Let's Encrypt's ACME test server) as a child process on free ports of
//! 127.0.0.1: the benchmark's reference server and the upstream of the ACME issuer connector
//! tests.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::ports::free_port;
use crate::client::{AccountKey, AcmeClient, KeyAlg};

/// A running Pebble; killed when dropped.
#[derive(Debug)]
pub struct Pebble {
    /// `https://localhost:<port>/dir`.
    pub directory: String,
    /// The root its HTTPS certificate chains to (a throwaway acmegate CA).
    pub root_pem: String,
    /// The root of the certificates it issues, from its management interface.
    pub issuing_root_pem: String,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts Pebble with its chaos (nonce rejection, authorization reuse, validation
    /// sleeps) off. With `validate` false its VA approves every challenge.
    pub async fn start(validate: bool) -> anyhow::Result<Pebble> {
        Self::start_with(validate, None).await
    }

    /// As [`Pebble::start`]; with `eab` (kid, base64url HMAC key) Pebble requires External
    /// Account Binding and knows that one key.
    pub async fn start_with(validate: bool, eab: Option<(&str, &str)>) -> anyhow::Result<Pebble> {
        let dir = tempfile::tempdir().context("failed to create a temporary directory")?;
        let ca = crate::ca::Ca::load_or_create(
            &dir.path().join("ca"),
            &crate::ca::KeySecret::File(dir.path().join("ca.key")),
            &crate::ca::CaSettings {
                root_cn: "pebble listener root".into(),
                intermediate_cn: "pebble listener issuing".into(),
                organization: "acmegate tests".into(),
                crl_url: "https://localhost/crl".into(),
                ca_issuers_url: "https://localhost/ca".into(),
            },
        )?;
        let (chain, key) = ca.issue_tls_server(&["localhost".into(), "127.0.0.1".into()])?;
        let cert_pem: String = chain
            .iter()
            .map(|c| crate::ca::pem("CERTIFICATE", c))
            .collect();
        std::fs::write(dir.path().join("cert.pem"), cert_pem)?;
        std::fs::write(
            dir.path().join("key.pem"),
            crate::ca::pem("PRIVATE KEY", &key),
        )?;
        let (port, management) = (free_port()?, free_port()?);
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": free_port()?,
            "tlsPort": free_port()?,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        if let Some((kid, key)) = eab {
            config["pebble"]["externalAccountBindingRequired"] = true.into();
            config["pebble"]["externalAccountMACKeys"] = serde_json::json!({ kid: key });
        }
        std::fs::write(dir.path().join("pebble.json"), config.to_string())?;
        let mut cmd = tokio::process::Command::new("pebble");
        cmd.arg("-config")
            .arg(dir.path().join("pebble.json"))
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if !validate {
            cmd.env("PEBBLE_VA_ALWAYS_VALID", "1");
        }
        let child = cmd
            .spawn()
            .context("failed to start pebble (apt-get install pebble)")?;
        let directory = format!("https://localhost:{port}/dir");
        let root_pem = ca.root_pem();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = AcmeClient::connect(
                &directory,
                root_pem.as_bytes(),
                AccountKey::generate(KeyAlg::Es256)?,
            )
            .await;
            if probe.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("pebble did not come up at {directory}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let issuing_root_pem = {
            let url: http::Uri = format!("https://localhost:{management}/roots/0").parse()?;
            let transport = crate::client::transport::Transport::new(&url, root_pem.as_bytes())?;
            let request =
                http::Request::get(url).body(http_body_util::Full::new(bytes::Bytes::new()))?;
            let reply = transport.send(request).await?;
            String::from_utf8_lossy(reply.body()).into_owned()
        };
        Ok(Pebble {
            directory,
            root_pem,
            issuing_root_pem,
            child,
            _dir: dir,
        })
    }

    /// The child's process id, for CPU accounting.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
