//! The `acmegate` command line: serve, init, migrate, eab.

use std::path::PathBuf;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use clap::{Parser, Subcommand};

use acmegate::config::{Config, SAMPLE};
use acmegate::server;

#[derive(Parser)]
#[command(
    name = "acmegate",
    version,
    about = "ACME (RFC 8555) gateway in front of an internal PKI"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./acmegate.toml when it exists, else built-in
    /// defaults. Every key can be overridden by ACMEGATE_<SECTION>_<KEY>.
    #[arg(long, short, global = true, env = "ACMEGATE_CONFIG")]
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
}

#[derive(Subcommand)]
enum EabCommand {
    /// Create a key; its kid and HMAC key are printed once.
    Create {
        /// A note for operators (who the key is for).
        #[arg(long, default_value = "")]
        label: String,
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

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Config::load(config_path(cli).as_deref(), std::env::vars())
        .context("failed to load configuration")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ACMEGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve => serve(&cli).await,
        Command::Init { force } => init(&cli, *force),
        Command::Migrate => {
            let config = load_config(&cli)?;
            server::open_store(&config).await?;
            println!("database {} is up to date", config.database_url());
            Ok(())
        }
        Command::Eab { command } => eab(&cli, command).await,
        Command::Bench(opts) => acmegate::bench::run(opts.clone()).await.map(|_| ()),
        Command::BenchPlugins(opts) => acmegate::plugin_bench::run(opts.clone()).await,
    }
}

async fn serve(cli: &Cli) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let running = server::start(config, std::env::var(server::PASSPHRASE_ENV).ok()).await?;
    println!(
        "acmegate {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        running.addr
    );
    println!("ACME directory:  {}", running.directory_url());
    println!(
        "Root certificate: {}/ca/root.pem (also at {})",
        running.base_url,
        running
            .gateway
            .config
            .data_dir
            .join("ca/root.pem")
            .display()
    );
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

fn init(cli: &Cli, force: bool) -> anyhow::Result<()> {
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("acmegate.toml"));
    if path.exists() && !force {
        anyhow::bail!("{} exists; pass --force to overwrite it", path.display());
    }
    std::fs::write(&path, SAMPLE).with_context(|| format!("failed to write {}", path.display()))?;
    let config = Config::load(Some(&path), std::env::vars())
        .context("failed to read the new configuration")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("failed to create {}", config.data_dir.display()))?;
    println!(
        "wrote {} and created {}",
        path.display(),
        config.data_dir.display()
    );
    println!(
        "start the gateway with: acmegate serve --config {}",
        path.display()
    );
    Ok(())
}

async fn eab(cli: &Cli, command: &EabCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = server::open_store(&config).await?;
    match command {
        EabCommand::Create { label } => {
            let key = acmegate::store::EabKey {
                kid: format!("eab-{}", acmegate::wfe::ids::new_id()),
                hmac_key: B64.encode(ring_random::<32>()?),
                label: label.clone(),
                account_id: None,
                revoked: false,
                created_at: chrono::Utc::now().timestamp(),
            };
            store
                .insert_eab_key(&key)
                .context("failed to store the EAB key")?;
            println!("kid:      {}", key.kid);
            println!("hmac_key: {}", key.hmac_key);
            println!("(the HMAC key is shown only now; certbot: --eab-kid KID --eab-hmac-key KEY)");
        }
        EabCommand::List => {
            for k in store.list_eab_keys().context("failed to list EAB keys")? {
                let state = if k.revoked {
                    "revoked"
                } else if k.account_id.is_some() {
                    "bound"
                } else {
                    "unused"
                };
                println!(
                    "{}\t{}\t{}\t{}",
                    k.kid,
                    state,
                    k.account_id.unwrap_or_default(),
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

fn ring_random<const N: usize>() -> anyhow::Result<[u8; N]> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("OS random generator failed"))?;
    Ok(bytes)
}
