//! `acmegate bench-plugins`: what a plugin costs. Validator call cost (a fresh instance,
//! configure and the call, as every request pays it) beside the same decision made natively,
//! compile time, load time from the compiled-artifact cache, and a restart that loads ten
//! cached plugins. Then the same validator written in Rust, Python and JavaScript
//! (`examples/dns-persist-validator*`), side by side: what the language costs a plugin.

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
    /// Validator calls to time per language in the comparison (interpreters are slower).
    #[arg(long, default_value_t = 200)]
    pub language_calls: usize,
}

/// The dns-persist-01 example validator in each language the plugin contract is proven in:
/// the component's file stem and the language.
const LANGUAGES: [(&str, &str); 3] = [
    ("dns-persist-validator", "Rust"),
    ("dns-persist-validator-py", "Python"),
    ("dns-persist-validator-js", "JavaScript"),
];

/// What one language's build of the example validator costs.
#[derive(Debug)]
struct LanguageCost {
    bytes: u64,
    compile: Duration,
    cached_load: Duration,
    /// Sorted call times.
    calls: Vec<Duration>,
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
    languages(&opts).await?;
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

/// Prints the example validator's cost in each language whose build is in the plugin dir (a
/// missing one is named with the command that builds it). The calls go through the lookup
/// path without a resolver grant: a fresh instance, `configure`, a `dns.lookup` the host denies,
/// the plugin's log call (denied too) and its `retry-later` answer, so the figure is the
/// language's own cost, not a resolver's.
async fn languages(opts: &PluginBenchOptions) -> anyhow::Result<()> {
    println!("the dns-persist-01 example validator by language (calls through a denied lookup):");
    for (stem, language) in LANGUAGES {
        let file = opts.plugin_dir.join(format!("{stem}.wasm"));
        if !file.exists() {
            println!("  {language:<10} not built: run plugins/build.sh");
            continue;
        }
        let cost = language_cost(&file, opts.language_calls.max(1)).await?;
        println!(
            "  {language:<10} {:>5.1} MB, compile {:>6.0} ms, load from cache {:>5.1} ms, call p50 {:>8.1} us, p99 {:>8.1} us",
            cost.bytes as f64 / 1e6,
            cost.compile.as_secs_f64() * 1e3,
            cost.cached_load.as_secs_f64() * 1e3,
            percentile(&cost.calls, 0.5),
            percentile(&cost.calls, 0.99)
        );
    }
    Ok(())
}

async fn language_cost(file: &std::path::Path, calls: usize) -> anyhow::Result<LanguageCost> {
    let spec = |name: &str| {
        let mut spec = PluginSpec::new(name, file);
        spec.config = r#"{"issuer_domain": "acmegate.invalid"}"#.into();
        spec
    };
    let cache = tempfile::tempdir().context("temporary cache dir")?;
    let runtime = |dir: &std::path::Path| {
        PluginRuntime::new(RuntimeOptions {
            cache_dir: Some(dir.to_path_buf()),
            ..RuntimeOptions::default()
        })
    };
    let t = Instant::now();
    let plugin = runtime(cache.path())?
        .load_validator(spec("compile"))
        .await?;
    let compile = t.elapsed();
    let restarted = runtime(cache.path())?;
    let t = Instant::now();
    restarted.load_validator(spec("cached")).await?;
    let cached_load = t.elapsed();

    let id = Identifier::dns("www.example.org");
    let call = || plugin.validate(&id, "https://ca/acct/1", "dns-persist-01", "t", "t.k");
    for _ in 0..calls.min(20) {
        call().await?;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let outcome = call().await?;
        times.push(t.elapsed());
        anyhow::ensure!(
            matches!(outcome, ValidationOutcome::RetryLater(_)),
            "{}: a denied lookup must answer retry-later, not {outcome:?}",
            file.display()
        );
    }
    times.sort();
    Ok(LanguageCost {
        bytes: std::fs::metadata(file)?.len(),
        compile,
        cached_load,
        calls: times,
    })
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
            plugin_dir: options.out_dir.clone(),
            calls: 20,
            language_calls: 5,
        })
        .await
        .expect("benchmark runs");
        // The Rust example is always built with the others; its denied lookup answers
        // retry-later, or language_cost fails.
        let rust = super::language_cost(&options.out_dir.join("dns-persist-validator.wasm"), 3)
            .await
            .expect("the Rust example is measured");
        assert_eq!(rust.calls.len(), 3);
        assert!(rust.bytes > 0 && rust.calls.windows(2).all(|w| w[0] <= w[1]));
        let missing = super::run(super::PluginBenchOptions {
            plugin_dir: "/nonexistent".into(),
            calls: 1,
            language_calls: 1,
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
