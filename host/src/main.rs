//! The `acmegate` command line: serve, init, migrate, eab, plugins, audit, certs, admin-cert,
//! bench.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use acmegate::config::{Config, LogFormat};
use acmegate::server;

#[derive(Parser)]
#[command(
    name = "acmegate",
    version,
    about = "ACME (RFC 8555) gateway in front of an internal PKI"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./acmegate.toml when it exists, else built-in
    /// defaults. Every key can be overridden by ACMEGATE_<SECTION>_<KEY>. Long form only:
    /// `-c` is `bench`'s concurrency, as in other load generators (ab, hey).
    #[arg(long, global = true, env = "ACMEGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ACME server.
    Serve,
    /// Write a commented configuration file and create the data directory.
    Init {
        /// Overwrite an existing configuration file.
        #[arg(long)]
        force: bool,
        /// The URL ACME clients and relying parties reach the gateway at
        /// (`server.base_url`), e.g. https://acme.example.internal:8443. Asked for when
        /// absent and the terminal is interactive.
        #[arg(long)]
        base_url: Option<String>,
        /// A plain-HTTP listener for the CA certificates and CRLs (`server.http_listen`),
        /// e.g. 0.0.0.0:80.
        #[arg(long)]
        http_listen: Option<String>,
    },
    /// Run database migrations and exit.
    Migrate,
    /// Benchmark full ACME orders against acmegate (and Pebble with --pebble).
    Bench(acmegate::bench::BenchOptions),
    /// Benchmark plugin calls, compilation and cached loading.
    BenchPlugins(acmegate::plugin_bench::PluginBenchOptions),
    /// External Account Binding keys (RFC 8555 §7.3.4).
    Eab {
        #[command(subcommand)]
        command: EabCommand,
    },
    /// The configured plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Managed certificates of a running gateway, through its admin API (mTLS): the
    /// certificates it issues, deploys and renews on its own.
    Certs {
        /// The admin API, https://HOST:PORT. Default: admin.listen of the configuration.
        #[arg(long, env = "ACMEGATE_ADMIN_URL")]
        admin_url: Option<String>,
        /// An admin identity: the directory `acmegate admin-cert issue --out DIR` wrote
        /// (cert.pem, key.pem, ca.pem).
        #[arg(long, env = "ACMEGATE_ADMIN_IDENTITY")]
        identity: PathBuf,
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Client certificates for the mTLS admin API, from the built-in CA (no API needed).
    AdminCert {
        #[command(subcommand)]
        command: AdminCertCommand,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Load every configured plugin as `serve` would (compile or use the cache, version check,
    /// describe + configure) and print its status; exits 1 if one fails. A running gateway's
    /// live status (calls, faults, reloads) is at GET /api/v1/plugins.
    Status,
    /// What a component file declares, before it is loaded: its contract version, its kind
    /// (world), and each capability it imports with the grant that capability needs. Nothing
    /// of the component runs.
    Inspect {
        /// The component (`.wasm`).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every link of the chain in the database (from the archive checkpoint on); exits 1
    /// naming the first broken or missing entry.
    Verify {
        /// Check the archive files first (`retention.audit_archive_dir`), from entry 1 up to
        /// the checkpoint the database's chain continues from.
        #[arg(long)]
        archive: bool,
    },
    /// Move audit entries older than some days from the database to archive files now (what
    /// retention does with `retention.audit_keep_days`).
    Archive {
        /// Entries written more than this many days ago move.
        #[arg(long)]
        older_than_days: u32,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Every managed certificate: state, next renewal, last deployment outcome.
    List,
    /// Renew one now (new key, new certificate, redeployed to its targets).
    Renew { name: String },
    /// Pause one: neither renewed nor deployed until resumed.
    Pause { name: String },
    /// Resume a paused one (renewed at once if it fell due meanwhile).
    Resume { name: String },
}

#[derive(Subcommand)]
enum AdminCertCommand {
    /// Issue an identity: writes cert.pem (with its chain), key.pem, identity.p12 and ca.pem.
    Issue {
        /// Subject common name (who holds it).
        #[arg(long)]
        cn: String,
        #[arg(long, value_enum, default_value = "admin")]
        role: RoleArg,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Password of identity.p12 (empty by default).
        #[arg(long, env = "ACMEGATE_P12_PASSWORD", default_value = "")]
        p12_password: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Admin,
    Client,
    /// Reads everything an admin reads (API and console), changes nothing.
    Auditor,
}

#[derive(Subcommand)]
enum EabCommand {
    /// Create a key; its kid and HMAC key are printed once.
    Create {
        /// A note for operators (who the key is for).
        #[arg(long, default_value = "")]
        label: String,
        /// A name pattern the key's accounts may order (host.example, *.zone, IP, CIDR);
        /// repeat for more. None: every name.
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// The profile every order of the key's accounts gets.
        #[arg(long, default_value = "")]
        profile: String,
    },
    /// List keys (without their secrets).
    List,
    /// Revoke a key so that no new account can use it.
    Revoke { kid: String },
}

fn config_path(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        let default = PathBuf::from("acmegate.toml");
        default.exists().then_some(default)
    })
}

/// Reads the configuration and starts logging as it says (`log.format`). Every command that
/// reads the configuration calls this once, before it logs anything.
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let config = Config::load(config_path(cli).as_deref(), std::env::vars())
        .context("failed to load configuration")?;
    start_logging(config.log.format);
    Ok(config)
}

/// Events to stdout, filtered by `ACMEGATE_LOG` (default `info`). Colour codes only when stdout
/// is a terminal: in a file or a pipe they are noise to whoever reads it.
fn start_logging(format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ACMEGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => logs.init(),
        // The message beside level and target rather than inside `fields`, where collectors
        // look for it.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// Errors end the process with one line on stderr (the context chain joined by `: `) and
/// status 1: an operator's mistake, a bad configuration key, is not a crash, so it gets no
/// backtrace and no `Caused by:` list.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acmegate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The commands that read no configuration log as text.
    if matches!(
        cli.command,
        Command::Init { .. } | Command::Bench(_) | Command::BenchPlugins(_)
    ) {
        start_logging(LogFormat::default());
    }
    match &cli.command {
        Command::Serve => serve(&cli).await,
        Command::Init {
            force,
            base_url,
            http_listen,
        } => init(&cli, *force, base_url.clone(), http_listen.as_deref()),
        Command::Migrate => {
            let config = load_config(&cli)?;
            server::open_store(&config, std::env::var(server::PASSPHRASE_ENV).ok()).await?;
            // The URL may carry a password: it is not for the terminal.
            println!(
                "database {} is up to date",
                acmegate::store::redacted_url(&config.database_url())
            );
            Ok(())
        }
        Command::Eab { command } => eab(&cli, command).await,
        Command::Audit {
            command: AuditCommand::Verify { archive },
        } => audit_verify(&cli, *archive).await,
        Command::Audit {
            command: AuditCommand::Archive { older_than_days },
        } => audit_archive(&cli, *older_than_days).await,
        Command::Plugins {
            command: PluginsCommand::Status,
        } => plugins_status(&cli).await,
        Command::Plugins {
            command: PluginsCommand::Inspect { file },
        } => plugins_inspect(&cli, file).await,
        Command::AdminCert {
            command:
                AdminCertCommand::Issue {
                    cn,
                    role,
                    out,
                    p12_password,
                },
        } => admin_cert_issue(&cli, cn, *role, out, p12_password).await,
        Command::Certs {
            admin_url,
            identity,
            command,
        } => certs(&cli, admin_url.as_deref(), identity, command).await,
        Command::Bench(opts) => acmegate::bench::run(opts.clone()).await.map(|_| ()),
        Command::BenchPlugins(opts) => acmegate::plugin_bench::run(opts.clone()).await,
    }
}

/// `acmegate certs`: one call to the admin API, its answer printed for an operator. Every
/// failure (no identity, no connection, a refusal) ends in an error that says why.
async fn certs(
    cli: &Cli,
    admin_url: Option<&str>,
    identity: &std::path::Path,
    command: &CertsCommand,
) -> anyhow::Result<()> {
    let url = match admin_url {
        Some(url) => url.to_owned(),
        None => {
            let config = load_config(cli)?;
            let addr = config.admin.listen_addr().context(
                "admin.listen is empty (the admin API is off): give --admin-url https://HOST:PORT",
            )?;
            format!("https://{addr}")
        }
    };
    let client = acmegate::client::admin::AdminClient::new(&url, identity)
        .context("failed to set up the admin API client")?;
    let (method, path, verb) = match command {
        CertsCommand::List => ("GET", "/api/v1/managed?per_page=500".to_owned(), ""),
        CertsCommand::Renew { name } => (
            "POST",
            format!("/api/v1/managed/{name}/renew"),
            "renewal requested",
        ),
        CertsCommand::Pause { name } => ("POST", format!("/api/v1/managed/{name}/pause"), "paused"),
        CertsCommand::Resume { name } => {
            ("POST", format!("/api/v1/managed/{name}/resume"), "resumed")
        }
    };
    let answer = client
        .call(method, &path, None)
        .await
        .with_context(|| format!("failed to reach the admin API at {url}"))?;
    match command {
        CertsCommand::List => {
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            println!("{}", managed_table(&items));
        }
        _ => println!(
            "{}: {verb}; next renewal {}",
            answer["name"].as_str().unwrap_or_default(),
            answer["next_renewal_at"].as_str().unwrap_or_default()
        ),
    }
    Ok(())
}

/// Managed certificates as a table: one line each.
fn managed_table(items: &[serde_json::Value]) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let mut rows = vec![[
        "NAME".to_owned(),
        "STATE".to_owned(),
        "NEXT RENEWAL".to_owned(),
        "SERIAL".to_owned(),
        "LAST DEPLOYMENT".to_owned(),
    ]];
    for m in items {
        let deployment = match &m["last_deployment"] {
            serde_json::Value::Null => "-".to_owned(),
            d if d["deployed"] == true => format!("deployed {}", text(&d["serial"])),
            d => format!(
                "FAILED {} ({} failure(s)): {}",
                text(&d["serial"]),
                m["failures"],
                text(&m["last_error"])
            ),
        };
        rows.push([
            text(&m["name"]),
            text(&m["state"]),
            text(&m["next_renewal_at"]),
            text(&m["certificate_serial"]),
            deployment,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                line.push_str(&format!("{:<width$}  ", r[i]));
            }
            line.push_str(&r[4]);
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn serve(cli: &Cli) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let format = config.log.format;
    let running = server::start(config, std::env::var(server::PASSPHRASE_ENV).ok()).await?;
    // Where to find the gateway, for whoever started it: plain lines beside text logs, log
    // events when the logs are JSON, so that every line of stdout stays one JSON object.
    let tell = |line: String| match format {
        LogFormat::Text => println!("{line}"),
        LogFormat::Json => tracing::info!("{line}"),
    };
    tell(format!(
        "acmegate {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        running.addr
    ));
    tell(format!("ACME directory:  {}", running.directory_url()));
    tell(format!(
        "Root certificate: {}/ca/root.pem (also at {})",
        running.base_url,
        running
            .gateway
            .config
            .data_dir
            .join("ca/root.pem")
            .display()
    ));
    if let Some(addr) = running.pki_addr {
        tell(format!(
            "CA certificates and CRL over plain HTTP on {addr}; certificates name {}/ca/crl.der",
            running.pki_url
        ));
    }
    if let Some(addr) = running.admin_addr {
        tell(format!("Admin API (mTLS): https://{addr}/api/v1/ (first client certificate: acmegate admin-cert issue --cn NAME --out DIR)"));
    }
    running.serve_until(shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn init(
    cli: &Cli,
    force: bool,
    base_url: Option<String>,
    http_listen: Option<&str>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("acmegate.toml"));
    if path.exists() && !force {
        anyhow::bail!("{} exists; pass --force to overwrite it", path.display());
    }
    let base_url = match base_url {
        Some(url) => url,
        None if std::io::stdin().is_terminal() => ask_base_url()?,
        None => String::new(),
    };
    let text = acmegate::config::sample_with(&base_url, http_listen.unwrap_or_default());
    std::fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))?;
    let config = match Config::load(Some(&path), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            // Leave no file that `serve` would refuse.
            let _ = std::fs::remove_file(&path);
            return Err(anyhow::Error::new(e).context("the configuration is not usable"));
        }
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("failed to create {}", config.data_dir.display()))?;
    println!(
        "wrote {} and created {}",
        path.display(),
        config.data_dir.display()
    );
    if base_url.is_empty() {
        eprintln!(
            "NOTE: server.base_url is not set, so ACME clients and the CRL and CA certificate \
             URLs in every certificate use https://localhost:{}, which only this machine \
             reaches. For other machines: acmegate init --force --base-url \
             https://HOST:PORT (or edit server.base_url) before issuing.",
            config.server.listen.port()
        );
    } else {
        println!(
            "ACME clients use {}{}/directory; certificates name {}/ca/crl.der",
            config.base_url(config.server.listen.port()),
            acmegate::authority::ACME_PREFIX,
            config.server.pki_url(
                config.server.http_listen_addr().map(|a| a.port()),
                &config.base_url(config.server.listen.port())
            )
        );
    }
    println!(
        "start the gateway with: acmegate serve --config {}",
        path.display()
    );
    Ok(())
}

/// Asks on the terminal for the public base URL; empty keeps the localhost default.
fn ask_base_url() -> anyhow::Result<String> {
    use std::io::Write;
    print!(
        "The URL ACME clients and relying parties reach this gateway at, e.g. \
         https://acme.example.internal:8443 (empty: https://localhost:8443, this machine only): "
    );
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("failed to read the base URL")?;
    Ok(line.trim().to_string())
}

async fn eab(cli: &Cli, command: &EabCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = server::open_store(&config, std::env::var(server::PASSPHRASE_ENV).ok())
        .await?
        .acting_as(CLI_ACTOR);
    match command {
        EabCommand::Create {
            label,
            allow,
            profile,
        } => {
            let key = acmegate::admin::eab::new_key(
                label,
                allow,
                profile,
                &config.profiles(),
                chrono::Utc::now().timestamp(),
            )?;
            store
                .insert_eab_key(&key)
                .context("failed to store the EAB key")?;
            println!("kid:      {}", key.kid);
            println!("hmac_key: {}", key.hmac_key);
            println!("(the HMAC key is shown only now; certbot: --eab-kid KID --eab-hmac-key KEY)");
        }
        EabCommand::List => {
            for k in store.list_eab_keys().context("failed to list EAB keys")? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.kid,
                    acmegate::admin::eab::state(&k),
                    k.account_id.clone().unwrap_or_default(),
                    k.label
                );
            }
        }
        EabCommand::Revoke { kid } => {
            if !store
                .revoke_eab_key(kid)
                .context("failed to revoke the EAB key")?
            {
                anyhow::bail!("no active EAB key {kid}");
            }
            println!("revoked {kid}");
        }
    }
    Ok(())
}

/// How the audit log names changes made with this command line.
const CLI_ACTOR: &str = "cli";

/// `acmegate plugins status`.
async fn plugins_status(cli: &Cli) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    if config.plugins.is_empty() {
        println!("no plugins configured");
        return Ok(());
    }
    let runtime = server::plugin_runtime(&config, None, acmegate::clock::Clock::system())?;
    let mut failures = 0;
    for entry in &config.plugins {
        match server::load_configured(&runtime, entry).await {
            Ok(loaded) => {
                let status = loaded.plugin.status();
                println!(
                    "{}\t{}\t{} {}\tsha256:{}\t{}",
                    entry.name,
                    status.info.kind.name(),
                    status.info.name,
                    status.info.version,
                    status.sha256,
                    loaded.spec.path.display()
                );
            }
            Err(e) => {
                failures += 1;
                println!("{}\tFAILED\t{e:#}", entry.name);
            }
        }
    }
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// `acmegate plugins inspect FILE`.
async fn plugins_inspect(cli: &Cli, file: &std::path::Path) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let runtime = server::plugin_runtime(&config, None, acmegate::clock::Clock::system())?;
    let found = runtime
        .inspect(file)
        .await
        .with_context(|| format!("failed to inspect {}", file.display()))?;
    println!("file      {}", file.display());
    println!("sha256    {}", found.sha256);
    let speaks = acmegate::plugins::supported_contracts();
    let contract = found.contract.as_deref().unwrap_or("none");
    match &found.incompatible {
        None => println!("contract  {contract} (loads on this gateway, which speaks {speaks})"),
        Some(version) => {
            println!("contract  {version}: does NOT load on this gateway, which speaks {speaks}")
        }
    }
    println!(
        "world     {}",
        found
            .kind()
            .unwrap_or("none (it exports no plugin interface)")
    );
    println!("imports");
    for import in &found.imports {
        match acmegate::plugins::grant_needed(import) {
            Some(grant) => println!("  {import}\tgrant: {grant}"),
            None if import.starts_with("wasi:") => {
                println!(
                    "  {import}\tWASI: answered by the sandbox (no files, network or environment)"
                )
            }
            None => println!("  {import}\tno grant needed"),
        }
    }
    Ok(())
}

/// `acmegate audit verify [--archive]`.
async fn audit_verify(cli: &Cli, archive: bool) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = server::open_store(&config, std::env::var(server::PASSPHRASE_ENV).ok()).await?;
    let dir = config.retention.audit_archive_dir(&config.data_dir);
    let (archived, verdict) = store
        .call(move |store| {
            let archived = archive
                .then(|| store.verify_audit_archive(&dir).map(|v| (dir, v)))
                .transpose()?;
            Ok((archived, store.verify_audit()?))
        })
        .await
        .context("failed to read the audit log")?;
    use acmegate::store::Verdict;
    if let Some((dir, verdict)) = archived {
        match verdict {
            Verdict::Intact { entries, .. } => println!(
                "audit archive intact: entries 1 to {entries} in {}, every link verified",
                dir.display()
            ),
            Verdict::Broken { seq, reason } => {
                println!("audit archive BROKEN at entry {seq}: {reason}");
                std::process::exit(1);
            }
        }
    }
    match verdict {
        Verdict::Intact { entries, archived } => {
            println!(
                "audit log intact: {entries} entries, every link verified{}",
                if archived > 0 {
                    format!(" (entries 1 to {archived} archived, from their sealed checkpoint on)")
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        Verdict::Broken { seq, reason } => {
            println!("audit log BROKEN at entry {seq}: {reason}");
            std::process::exit(1);
        }
    }
}

/// `acmegate audit archive --older-than-days N`.
async fn audit_archive(cli: &Cli, older_than_days: u32) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = server::open_store(&config, std::env::var(server::PASSPHRASE_ENV).ok()).await?;
    let dir = config.retention.audit_archive_dir(&config.data_dir);
    let cutoff = acmegate::clock::Clock::system().now() - i64::from(older_than_days) * 86_400;
    let files = store
        .call(move |store| {
            let mut files = Vec::new();
            while let Some(file) =
                store.archive_audit(&dir, cutoff, acmegate::authority::retention::ARCHIVE_BATCH)?
            {
                files.push(file);
            }
            Ok(files)
        })
        .await
        .context("failed to archive the audit log")?;
    if files.is_empty() {
        println!("no audit entries older than {older_than_days} days to archive");
    }
    for f in files {
        println!(
            "archived entries {} to {} into {}",
            f.first,
            f.last,
            f.file.display()
        );
    }
    Ok(())
}

/// `acmegate admin-cert issue`: an admin API identity from the built-in CA, stored like
/// every certificate (so it can be listed and revoked) and written to `out`.
async fn admin_cert_issue(
    cli: &Cli,
    cn: &str,
    role: RoleArg,
    out: &std::path::Path,
    p12_password: &str,
) -> anyhow::Result<()> {
    use acmegate::admin::{client::new_identity, keygen, Role};
    let config = load_config(cli)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("failed to create {}", config.data_dir.display()))?;
    let base_url = config.base_url(config.server.listen.port());
    let pki_url = config.server.pki_url(
        config.server.http_listen_addr().map(|a| a.port()),
        &base_url,
    );
    let passphrase = std::env::var(server::PASSPHRASE_ENV).ok();
    let (ca, store) = server::open_pki(&config, passphrase, &pki_url).await?;
    let store = store.acting_as(CLI_ACTOR);
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Client => Role::Client,
        RoleArg::Auditor => Role::Auditor,
    };
    let (row, pkcs8) = new_identity(
        &ca,
        &config.admin,
        cn,
        role,
        None,
        chrono::Utc::now().timestamp(),
    )?;
    let key = keygen::key_from_pkcs8(&pkcs8.unwrap_or_default())?;
    let p12 = keygen::pkcs12(&key, &row.chain_pem, cn, p12_password)?;
    store
        .insert_certificate(&row, &[])
        .context("failed to store the identity")?;
    std::fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))?;
    let write = |name: &str, bytes: &[u8], private: bool| -> anyhow::Result<()> {
        let path = out.join(name);
        write_file(&path, bytes, private)
            .with_context(|| format!("failed to write {}", path.display()))
    };
    write("cert.pem", row.chain_pem.as_bytes(), false)?;
    write("key.pem", key.pkcs8_pem().as_bytes(), true)?;
    write("identity.p12", &p12, true)?;
    write("ca.pem", ca.root_pem().as_bytes(), false)?;
    println!(
        "issued {} identity {cn:?}, serial {}, valid until {}",
        role.name(),
        row.serial,
        chrono::DateTime::from_timestamp(row.not_after, 0).unwrap_or_default()
    );
    println!(
        "wrote cert.pem, key.pem, identity.p12 and ca.pem to {}",
        out.display()
    );
    if let Some(addr) = config.admin.listen_addr() {
        let d = out.display();
        println!(
            "try: curl --cert {d}/cert.pem --key {d}/key.pem --cacert {d}/ca.pem https://localhost:{}/api/v1/profiles",
            addr.port()
        );
        println!(
            "or import {d}/identity.p12 (and trust {d}/ca.pem) in a browser and open https://localhost:{}/console/",
            addr.port()
        );
    }
    Ok(())
}

/// Writes a file; `private` ones are created readable by the owner only.
fn write_file(path: &std::path::Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = private;
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap's consistency checks, which a debug build runs when it starts: the global `-c` of
    /// `--config` once clashed with `bench -c`, so a debug `acmegate bench` stopped at an
    /// assertion.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "acmegate", "--config", "x.toml", "bench", "-n", "5", "-c", "4",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        match cli.command {
            Command::Bench(options) => assert_eq!((options.orders, options.concurrency), (5, 4)),
            _ => panic!("bench expected"),
        }
    }
}
