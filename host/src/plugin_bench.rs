//! `acmegate bench-plugins`: what a plugin costs. Validator call cost (a fresh instance,
//! configure and the call, as every request pays it) beside the same decision made natively,
//! compile time, load time from the compiled-artifact cache, and a restart that loads ten
//! cached plugins.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::acme::types::Identifier;
use crate::plugins::{PluginRuntime, PluginSpec, RuntimeOptions, ValidationOutcome};

#[derive(Debug, Clone, clap::Args)]
pub struct PluginBenchOptions {
    /// Directory of built components (plugins/build.sh writes $CARGO_TARGET_DIR/plugins).
    #[arg(long, default_value = "target/plugins")]
    pub plugin_dir: PathBuf,
    /// Validator calls to time.
    #[arg(short = 'n', long, default_value_t = 2000)]
    pub calls: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// The allowlist's decision for one name, written natively: what the plugin call is compared
/// with.
fn native_allow(name: &str, zones: &[&str]) -> bool {
    zones.iter().any(|zone| {
        name.len() > zone.len()
            && name.ends_with(zone)
            && name[..name.len() - zone.len()].ends_with('.')
    })
}

pub async fn run(opts: PluginBenchOptions) -> anyhow::Result<()> {
    let file = opts.plugin_dir.join("allowlist-validator.wasm");
    anyhow::ensure!(
        file.exists(),
        "{} not found: run plugins/build.sh and pass --plugin-dir",
        file.display()
    );
    let spec = |name: &str| {
        let mut spec = PluginSpec::new(name, &file);
        spec.config = r#"{"default": ["*.internal.example"]}"#.into();
        spec
    };

    // Compile without a cache.
    let uncached = PluginRuntime::new(RuntimeOptions::default())?;
    let t = Instant::now();
    let plugin = uncached.load_validator(spec("allowlist")).await?;
    let compile = t.elapsed();

    // Calls: fresh instance + configure + validate, one after the other.
    let id = Identifier::dns("host.internal.example");
    for _ in 0..50 {
        plugin.validate(&id, "acct", "http-01", "t", "t.k").await?;
    }
    let mut times = Vec::with_capacity(opts.calls);
    for _ in 0..opts.calls {
        let t = Instant::now();
        let outcome = plugin.validate(&id, "acct", "http-01", "t", "t.k").await?;
        times.push(t.elapsed());
        anyhow::ensure!(
            outcome == ValidationOutcome::Valid,
            "unexpected {outcome:?}"
        );
    }
    times.sort();
    let mut native = Vec::with_capacity(opts.calls);
    for i in 0..opts.calls {
        let name = if i % 2 == 0 {
            "host.internal.example"
        } else {
            "other.example"
        };
        let t = Instant::now();
        std::hint::black_box(native_allow(
            std::hint::black_box(name),
            &["internal.example"],
        ));
        native.push(t.elapsed());
    }
    native.sort();

    // Cached loads: the first fills the cache, the next loads from it; then a "restart" (a new
    // runtime) loads ten plugins from the cache.
    let cache = tempfile::tempdir().context("temporary cache dir")?;
    let cached_runtime = |dir: PathBuf| {
        PluginRuntime::new(RuntimeOptions {
            cache_dir: Some(dir),
            ..RuntimeOptions::default()
        })
    };
    let filling = cached_runtime(cache.path().to_path_buf())?;
    filling.load_validator(spec("fill")).await?;
    let restarted = cached_runtime(cache.path().to_path_buf())?;
    let t = Instant::now();
    restarted.load_validator(spec("one")).await?;
    let cached_load = t.elapsed();
    let t = Instant::now();
    let again = cached_runtime(cache.path().to_path_buf())?;
    for i in 0..10 {
        again.load_validator(spec(&format!("p{i}"))).await?;
    }
    let ten = t.elapsed();

    println!(
        "plugin: allowlist-validator ({} bytes)",
        std::fs::metadata(&file)?.len()
    );
    println!(
        "validator call (fresh instance + configure + validate), {} calls: p50 {:.1} us, p99 {:.1} us",
        opts.calls,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    println!(
        "native decision:                                              p50 {:.3} us, p99 {:.3} us",
        percentile(&native, 0.5),
        percentile(&native, 0.99)
    );
    println!("compile (no cache): {:.1} ms", compile.as_secs_f64() * 1e3);
    println!("load from cache: {:.2} ms", cached_load.as_secs_f64() * 1e3);
    println!(
        "restart with ten cached plugins (runtime + 10 loads with canary): {:.1} ms",
        ten.as_secs_f64() * 1e3
    );
    println!(
        "targets: call p50 <= 50 us: {}; ten cached plugins < 1 s: {}",
        if percentile(&times, 0.5) <= 50.0 {
            "met"
        } else {
            "NOT met"
        },
        if ten < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The benchmark runs end to end on the built plugins (few calls: numbers come from
    /// release builds).
    #[tokio::test]
    async fn runs_on_the_built_plugins() {
        let workspace = acmegate_plugin_build::workspace_root();
        let options = acmegate_plugin_build::Options::for_workspace(&workspace);
        acmegate_plugin_build::build_all(&options).expect("plugins build");
        super::run(super::PluginBenchOptions {
            plugin_dir: options.out_dir,
            calls: 20,
        })
        .await
        .expect("benchmark runs");
        let missing = super::run(super::PluginBenchOptions {
            plugin_dir: "/nonexistent".into(),
            calls: 1,
        })
        .await
        .unwrap_err();
        assert!(missing.to_string().contains("plugins/build.sh"));
    }

    #[test]
    fn native_allow_matches_below_the_zone_only() {
        let zones = ["internal.example"];
        assert!(super::native_allow("a.internal.example", &zones));
        assert!(!super::native_allow("internal.example", &zones));
        assert!(!super::native_allow("evilinternal.example", &zones));
    }
}
