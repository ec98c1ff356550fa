//! End-to-end tests of the plugin runtime with real components: the in-tree
//! `allowlist-validator` and the hostile fixtures of `plugins/fixtures/`, built once per test
//! run by `acmegate-plugin-build` (which installs the wasm toolchain if it is missing).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::*;
use crate::acme::problem::ProblemType;
use crate::acme::types::Identifier;

/// The directory of built components, building them on first use.
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = acmegate_plugin_build::workspace_root();
        let options = acmegate_plugin_build::Options::for_workspace(&workspace);
        let started = Instant::now();
        let plugins = acmegate_plugin_build::build_all(&options)
            .unwrap_or_else(|e| panic!("building the plugins failed: {e}"));
        eprintln!(
            "built {} plugin components in {:?}",
            plugins.len(),
            started.elapsed()
        );
        options.out_dir
    })
}

fn component(name: &str) -> PathBuf {
    built().join(format!("{name}.wasm"))
}

/// One runtime for the whole test binary, as in the gateway.
fn runtime() -> &'static PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| PluginRuntime::new(RuntimeOptions::default()).expect("runtime"))
}

const ACCOUNT: &str = "https://acme.test/acme/acct/1";
const OTHER_ACCOUNT: &str = "https://acme.test/acme/acct/2";

async fn allowlist() -> ValidatorPlugin {
    let mut spec = PluginSpec::new("allowlist", component("allowlist-validator"));
    spec.config = serde_json::json!({
        "default": ["*.internal.example", "10.0.0.0/8"],
        "accounts": { OTHER_ACCOUNT: ["only.team-b.example"] },
    })
    .to_string();
    runtime()
        .load_validator(spec)
        .await
        .expect("load allowlist")
}

async fn validate(
    plugin: &ValidatorPlugin,
    id: &Identifier,
) -> Result<ValidationOutcome, PluginError> {
    validate_as(plugin, ACCOUNT, id).await
}

async fn validate_as(
    plugin: &ValidatorPlugin,
    account: &str,
    id: &Identifier,
) -> Result<ValidationOutcome, PluginError> {
    plugin
        .validate(id, account, "http-01", "tok", "tok.thumb")
        .await
}

#[tokio::test]
async fn allowlist_describes_itself_and_approves_only_listed_identifiers() {
    let plugin = allowlist().await;
    assert_eq!(plugin.info().name, "allowlist-validator");
    assert!(matches!(
        plugin.info().kind,
        PluginKind::ChallengeValidator {
            new_order_policy: true,
            ..
        }
    ));

    for ok in [
        Identifier::dns("www.internal.example"),
        Identifier::dns("a.b.internal.example"),
        Identifier::dns("*.svc.internal.example"),
        Identifier::ip("10.1.2.3".parse().unwrap()),
    ] {
        assert_eq!(
            validate(&plugin, &ok).await.unwrap(),
            ValidationOutcome::Valid,
            "{ok}"
        );
    }
    for bad in [
        Identifier::dns("internal.example"),
        Identifier::dns("www.example.com"),
        Identifier::dns("evilinternal.example"),
        Identifier::ip("192.168.1.1".parse().unwrap()),
    ] {
        match validate(&plugin, &bad).await.unwrap() {
            ValidationOutcome::Invalid(p) => {
                assert_eq!(p.kind, ProblemType::Unauthorized, "{bad}");
                assert_eq!(p.identifier.as_ref(), Some(&bad));
            }
            other => panic!("{bad} should be invalid, got {other:?}"),
        }
    }
    // The other account has its own list instead of the default.
    let team_b = Identifier::dns("only.team-b.example");
    assert_eq!(
        validate_as(&plugin, OTHER_ACCOUNT, &team_b).await.unwrap(),
        ValidationOutcome::Valid
    );
    assert!(matches!(
        validate_as(
            &plugin,
            OTHER_ACCOUNT,
            &Identifier::dns("www.internal.example")
        )
        .await,
        Ok(ValidationOutcome::Invalid(_))
    ));
}

#[tokio::test]
async fn allowlist_refuses_unlisted_identifiers_at_new_order() {
    let plugin = allowlist().await;
    let good = Identifier::dns("api.internal.example");
    assert_eq!(
        plugin
            .check_new_order(ACCOUNT, std::slice::from_ref(&good), None)
            .await
            .unwrap(),
        PolicyDecision::Allow
    );
    let bad = Identifier::dns("www.example.com");
    match plugin
        .check_new_order(ACCOUNT, &[good, bad.clone()], Some("default"))
        .await
        .unwrap()
    {
        PolicyDecision::Refuse(problem) => {
            assert_eq!(problem.kind, ProblemType::RejectedIdentifier);
            assert_eq!(problem.subproblems.len(), 1);
            assert_eq!(problem.subproblems[0].identifier.as_ref(), Some(&bad));
            assert_eq!(problem.subproblems[0].kind, ProblemType::RejectedIdentifier);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_configuration_is_refused_at_load_with_the_plugins_message() {
    let mut spec = PluginSpec::new("allowlist-bad", component("allowlist-validator"));
    spec.config = r#"{"default": ["**bad"]}"#.into();
    match runtime().load_validator(spec).await {
        Err(PluginError::Config { plugin, message }) => {
            assert_eq!(plugin, "allowlist-bad");
            assert!(message.contains("bad pattern"), "{message}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    let mut spec = PluginSpec::new("allowlist-typo", component("allowlist-validator"));
    spec.config = r#"{"defualt": []}"#.into();
    assert!(matches!(
        runtime().load_validator(spec).await,
        Err(PluginError::Config { .. })
    ));
}

#[tokio::test]
async fn a_call_on_a_live_instance_pre_costs_microseconds() {
    let plugin = allowlist().await;
    let id = Identifier::dns("www.internal.example");
    for _ in 0..50 {
        validate(&plugin, &id).await.unwrap();
    }
    let n = 2000u32;
    let started = Instant::now();
    for _ in 0..n {
        assert_eq!(
            validate(&plugin, &id).await.unwrap(),
            ValidationOutcome::Valid
        );
    }
    let per_call = started.elapsed() / n;
    // Fresh store + instantiate + configure (JSON parse) + validate, per call.
    println!("allowlist validate: {per_call:?} per call ({n} calls, fresh instance each)");
    assert_eq!(plugin.stats().calls, u64::from(n) + 50 + 1);
}

fn hostile_spec(name: &str, limits: Limits) -> PluginSpec {
    let mut spec = PluginSpec::new(name, component("hostile-validator"));
    spec.limits = Some(limits);
    spec
}

async fn hostile(name: &str, limits: Limits) -> ValidatorPlugin {
    runtime()
        .load_validator(hostile_spec(name, limits))
        .await
        .expect("load hostile-validator")
}

fn fast_limits() -> Limits {
    Limits {
        cpu: Duration::from_millis(100),
        wall: Duration::from_secs(10),
        ..limits::VALIDATOR_LIMITS
    }
}

/// After any fault, the same plugin serves a good call from a fresh instance.
async fn assert_recovers(plugin: &ValidatorPlugin) {
    let ok = validate(plugin, &Identifier::dns("fine.test")).await;
    assert_eq!(ok.unwrap(), ValidationOutcome::Valid);
}

#[tokio::test]
async fn an_endless_loop_hits_the_cpu_limit_and_the_next_call_works() {
    let plugin = hostile("hostile-loop", fast_limits()).await;
    let started = Instant::now();
    match validate(&plugin, &Identifier::dns("loop.test")).await {
        Err(PluginError::Timeout {
            limit: TimeLimit::Cpu,
            budget,
            ..
        }) => {
            assert_eq!(budget, Duration::from_millis(100));
        }
        other => panic!("expected a CPU timeout, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "stopped after {took:?}");
    println!("endless loop stopped after {took:?} (CPU budget 100 ms)");
    assert_recovers(&plugin).await;
    assert_eq!(plugin.stats().faults, 1);
}

#[tokio::test]
async fn the_wall_clock_limit_covers_the_whole_call() {
    let limits = Limits {
        cpu: Duration::from_secs(30),
        wall: Duration::from_millis(200),
        ..limits::VALIDATOR_LIMITS
    };
    let plugin = hostile("hostile-wall", limits).await;
    match validate(&plugin, &Identifier::dns("loop.test")).await {
        Err(PluginError::Timeout {
            limit: TimeLimit::WallClock,
            ..
        }) => {}
        other => panic!("expected a wall-clock timeout, got {other:?}"),
    }
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn allocating_forever_is_out_of_memory_and_the_next_call_works() {
    // Time is not what this test is about: a budget the allocation cannot use up, even on a
    // machine busy enough to stretch it (100 ms ran out before 64 MB were reached beside three
    // builds), so that only the memory limit can end the call.
    let limits = Limits {
        cpu: Duration::from_secs(10),
        wall: Duration::from_secs(20),
        ..limits::VALIDATOR_LIMITS
    };
    let plugin = hostile("hostile-alloc", limits).await;
    match validate(&plugin, &Identifier::dns("allocate.test")).await {
        Err(PluginError::OutOfMemory { limit_bytes, .. }) => {
            assert_eq!(limit_bytes, limits::VALIDATOR_LIMITS.memory_bytes);
        }
        other => panic!("expected out of memory, got {other:?}"),
    }
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn a_panic_is_a_trap_and_a_fresh_instance_serves_the_next_call() {
    let plugin = hostile("hostile-panic", fast_limits()).await;
    match validate(&plugin, &Identifier::dns("panic.test")).await {
        Err(PluginError::Trap { detail, call, .. }) => {
            assert_eq!(call, "validate");
            assert!(detail.contains("unreachable"), "{detail}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_recovers(&plugin).await;
}

#[tokio::test]
async fn a_plugin_that_keeps_trapping_is_quarantined_then_retried() {
    // The quarantine is timed by the runtime's clock: the test moves it instead of sleeping.
    let clock = crate::clock::Clock::fixed(1_700_000_000);
    let runtime = PluginRuntime::new(RuntimeOptions {
        clock: clock.clone(),
        ..RuntimeOptions::default()
    })
    .unwrap();
    let plugin = runtime
        .load_validator(hostile_spec("hostile-quarantine", fast_limits()))
        .await
        .expect("load hostile-validator");
    let panic_id = Identifier::dns("panic.test");
    for _ in 0..limits::QUARANTINE_AFTER {
        assert!(matches!(
            validate(&plugin, &panic_id).await,
            Err(PluginError::Trap { .. })
        ));
    }
    match validate(&plugin, &Identifier::dns("fine.test")).await {
        Err(PluginError::Quarantined {
            traps, retry_in, ..
        }) => {
            assert_eq!(traps, limits::QUARANTINE_AFTER);
            assert!(retry_in <= limits::QUARANTINE_BASE);
        }
        other => panic!("expected quarantine, got {other:?}"),
    }
    // Until the clock moves, the plugin stays benched, however long the calls took.
    assert!(matches!(
        validate(&plugin, &Identifier::dns("fine.test")).await,
        Err(PluginError::Quarantined { .. })
    ));
    clock.advance(i64::try_from(limits::QUARANTINE_BASE.as_secs()).unwrap());
    assert_recovers(&plugin).await;
}

#[test]
fn quarantine_backoff_doubles_up_to_the_maximum() {
    assert_eq!(
        runtime::quarantine_after(limits::QUARANTINE_AFTER - 1),
        None
    );
    assert_eq!(
        runtime::quarantine_after(limits::QUARANTINE_AFTER),
        Some(limits::QUARANTINE_BASE)
    );
    assert_eq!(
        runtime::quarantine_after(limits::QUARANTINE_AFTER + 2),
        Some(limits::QUARANTINE_BASE * 4)
    );
    assert_eq!(runtime::quarantine_after(60), Some(limits::QUARANTINE_MAX));
}

#[tokio::test]
async fn a_log_flood_is_cut_at_the_per_call_budget() {
    let mut spec = hostile_spec(
        "hostile-log",
        Limits {
            cpu: Duration::from_secs(5),
            wall: Duration::from_secs(20),
            ..limits::VALIDATOR_LIMITS
        },
    );
    spec.grants.log = true;
    let plugin = runtime().load_validator(spec).await.unwrap();
    let outcome = validate(&plugin, &Identifier::dns("log-flood.test")).await;
    assert_eq!(outcome.unwrap(), ValidationOutcome::Valid);
    assert_eq!(
        plugin.stats().log_lines_dropped,
        100_000 - u64::from(limits::LOG_LINES_PER_CALL)
    );
}

#[tokio::test]
async fn a_host_not_granted_is_denied_with_the_grant_that_would_allow_it() {
    let mut spec = hostile_spec("hostile-http", fast_limits());
    spec.grants.http_hosts = vec!["allowed.example".into()];
    let plugin = runtime().load_validator(spec).await.unwrap();
    match validate(&plugin, &Identifier::dns("forbidden-host.test")).await {
        Err(PluginError::Plugin { message, .. }) => {
            assert!(message.starts_with("denied:"), "{message}");
            assert!(message.contains("forbidden.example"), "{message}");
            assert!(message.contains("http_hosts"), "{message}");
        }
        other => panic!("expected the plugin to report the denial, got {other:?}"),
    }
    // A denial is the plugin's ordinary error, not a fault.
    assert_eq!(plugin.stats().faults, 0);
}

#[tokio::test]
async fn a_plugin_for_another_contract_major_is_refused_naming_both_versions() {
    let spec = PluginSpec::new("future", component("wrong-major"));
    match runtime().load_validator(spec).await {
        Err(err @ PluginError::IncompatibleVersion { .. }) => {
            let text = err.to_string();
            assert!(text.contains("acmegate:plugin@1.0.0"), "{text}");
            assert!(text.contains("acmegate:plugin@0.2.x"), "{text}");
            assert!(text.contains("acmegate:plugin@0.1.x"), "{text}");
        }
        other => panic!("expected an incompatible version, got {other:?}"),
    }
}

#[tokio::test]
async fn files_that_are_not_components_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "text",
            b"#!/bin/sh\necho not wasm\n",
            "not a WebAssembly file",
        ),
        ("core", b"\0asm\x01\0\0\0", "core WebAssembly module"),
        ("garbage", b"\0asm\x0d\0\x01\0\xff\xff", ""),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        match runtime().load_validator(PluginSpec::new(name, &path)).await {
            Err(PluginError::InvalidModule { detail, .. }) => {
                assert!(detail.contains(expected), "{name}: {detail}");
            }
            other => panic!("{name}: expected an invalid module, got {other:?}"),
        }
    }
    let missing = PluginSpec::new("missing", dir.path().join("nope.wasm"));
    assert!(matches!(
        runtime().load_validator(missing).await,
        Err(PluginError::Io { .. })
    ));
}

#[tokio::test]
async fn compiled_components_are_cached_and_a_corrupt_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cached = PluginRuntime::new(RuntimeOptions {
        cache_dir: Some(dir.path().join("cache")),
        ..RuntimeOptions::default()
    })
    .unwrap();
    let spec = || {
        let mut spec = PluginSpec::new("allowlist", component("allowlist-validator"));
        spec.config = r#"{"default": ["*.internal.example"]}"#.into();
        spec
    };
    let entries = || -> Vec<PathBuf> {
        std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };
    let first = Instant::now();
    cached.load_validator(spec()).await.unwrap();
    let compile_time = first.elapsed();
    let files = entries();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".cwasm"));
    let second = Instant::now();
    let plugin = cached.load_validator(spec()).await.unwrap();
    println!(
        "load: {compile_time:?} compiling, {:?} from the cache",
        second.elapsed()
    );
    assert_eq!(
        validate(&plugin, &Identifier::dns("a.internal.example"))
            .await
            .unwrap(),
        ValidationOutcome::Valid
    );

    std::fs::write(&files[0], b"corrupt").unwrap();
    let plugin = cached.load_validator(spec()).await.unwrap();
    assert_eq!(
        validate(&plugin, &Identifier::dns("a.internal.example"))
            .await
            .unwrap(),
        ValidationOutcome::Valid
    );
    assert!(
        std::fs::metadata(&files[0]).unwrap().len() > 1000,
        "entry rewritten"
    );
}

#[test]
fn grants_default_to_nothing_and_secrets_are_redacted() {
    let grants = Grants::default();
    assert!(!grants.log && !grants.clock && !grants.random && !grants.state);
    assert!(!grants.dns && !grants.tls_probe);
    assert!(grants.http_hosts.is_empty() && grants.zmq_endpoints.is_empty());
    let grants: Grants =
        serde_json::from_str(r#"{"secrets": {"token": "hunter2"}, "log": true}"#).unwrap();
    let shown = format!("{grants:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redacted"));
    assert!(serde_json::from_str::<Grants>(r#"{"network": true}"#).is_err());
}

#[tokio::test]
async fn a_reload_swaps_the_version_and_a_failed_reload_keeps_the_old_one() {
    let plugin = allowlist().await;
    let clone = plugin.clone();
    let moved = Identifier::dns("www.moved.example");
    assert!(matches!(
        validate(&plugin, &moved).await,
        Ok(ValidationOutcome::Invalid(_))
    ));

    let mut spec = PluginSpec::new("allowlist", component("allowlist-validator"));
    spec.config = r#"{"default": ["*.moved.example"]}"#.into();
    runtime().reload_validator(&plugin, spec).await.unwrap();
    // Clones share the plugin, so both see the new version.
    assert_eq!(
        validate(&clone, &moved).await.unwrap(),
        ValidationOutcome::Valid
    );
    // Counters start again with the new version: its load canary and this call.
    assert_eq!(plugin.stats().calls, 2);

    let mut bad = PluginSpec::new("allowlist", component("allowlist-validator"));
    bad.config = r#"{"default": ["**"]}"#.into();
    assert!(matches!(
        runtime().reload_validator(&plugin, bad).await,
        Err(PluginError::Config { .. })
    ));
    let future = PluginSpec::new("allowlist", component("wrong-major"));
    assert!(matches!(
        runtime().reload_validator(&plugin, future).await,
        Err(PluginError::IncompatibleVersion { .. })
    ));
    assert_eq!(
        validate(&plugin, &moved).await.unwrap(),
        ValidationOutcome::Valid
    );
}

#[tokio::test]
async fn a_disabled_plugin_is_not_called_until_enabled_even_across_reloads() {
    // A name of its own: the switch is per name in the shared runtime.
    let name = format!("switch-{}", crate::ids::new_id());
    let mut spec = PluginSpec::new(name.clone(), component("allowlist-validator"));
    spec.config = r#"{"default": ["*.internal.example"]}"#.into();
    let plugin = runtime().load_validator(spec.clone()).await.unwrap();
    let id = Identifier::dns("www.internal.example");
    assert_eq!(
        validate(&plugin, &id).await.unwrap(),
        ValidationOutcome::Valid
    );

    runtime().set_enabled(&name, false);
    assert!(!runtime().is_enabled(&name));
    let calls = plugin.stats().calls;
    assert!(matches!(
        validate(&plugin, &id).await,
        Err(PluginError::Disabled { .. })
    ));
    assert_eq!(plugin.stats().calls, calls, "a disabled plugin is not run");
    runtime().reload_validator(&plugin, spec).await.unwrap();
    assert!(matches!(
        validate(&plugin, &id).await,
        Err(PluginError::Disabled { .. })
    ));

    runtime().set_enabled(&name, true);
    assert_eq!(
        validate(&plugin, &id).await.unwrap(),
        ValidationOutcome::Valid
    );
}

async fn scripted_issuer(config: serde_json::Value, state: bool) -> IssuerPlugin {
    let mut spec = PluginSpec::new(
        format!("scripted-{}", crate::ids::new_id()),
        component("scripted-issuer"),
    );
    spec.config = config.to_string();
    spec.grants.state = state;
    runtime()
        .load_issuer(spec)
        .await
        .expect("load scripted issuer")
}

fn issue_request() -> PluginIssueRequest {
    PluginIssueRequest {
        csr: vec![0x30, 0x00],
        identifiers: vec![Identifier::dns("a.example")],
        profile: "default".into(),
        not_before: 0,
        not_after: 3600,
        account_url: ACCOUNT.into(),
        order_url: "https://acme.test/acme/order/7".into(),
    }
}

/// An issuer connector's every answer reaches the host intact: deferral and poll, refusal,
/// outage, revocation refused, and state-driven recovery.
#[tokio::test]
async fn issuer_connector_answers_pass_through() {
    let chain = "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n";
    let pending = scripted_issuer(
        serde_json::json!({"mode": "pending", "chain": chain, "revoke": "refuse"}),
        false,
    )
    .await;
    assert!(matches!(
        pending.info().kind,
        PluginKind::IssuerConnector { revoke: true, .. }
    ));
    let outcome = pending.issue(&issue_request()).await.unwrap().unwrap();
    assert_eq!(
        outcome,
        PluginIssueOutcome::Pending {
            handle: "h:https://acme.test/acme/order/7".into(),
            retry_after: 1
        }
    );
    let polled = pending
        .poll("h:https://acme.test/acme/order/7")
        .await
        .unwrap();
    assert_eq!(polled, Ok(PluginIssueOutcome::Issued(chain.into())));
    assert!(matches!(
        pending.poll("nope").await.unwrap(),
        Err(PluginIssueError::Failed(m)) if m.contains("unknown handle")
    ));
    match pending.revoke(b"der", "ab", 1).await.unwrap() {
        Err(PluginIssueError::Rejected(p)) => {
            assert_eq!(p.kind, ProblemType::Unauthorized);
            assert!(p.detail.contains("ab"));
        }
        other => panic!("revoke must be refused: {other:?}"),
    }

    let reject = scripted_issuer(serde_json::json!({"mode": "reject"}), false).await;
    match reject.issue(&issue_request()).await.unwrap() {
        Err(PluginIssueError::Rejected(p)) => assert_eq!(p.kind, ProblemType::BadCsr),
        other => panic!("must be rejected: {other:?}"),
    }
    let down = scripted_issuer(serde_json::json!({"mode": "unavailable"}), false).await;
    assert_eq!(
        down.issue(&issue_request()).await.unwrap(),
        Err(PluginIssueError::Unavailable(1))
    );

    // Down for the first call, counted in the plugin's state, then issuing.
    let flaky = scripted_issuer(
        serde_json::json!({"mode": "flaky", "fail_first": 1, "chain": chain}),
        true,
    )
    .await;
    assert_eq!(
        flaky.issue(&issue_request()).await.unwrap(),
        Err(PluginIssueError::Unavailable(1))
    );
    assert_eq!(
        flaky.issue(&issue_request()).await.unwrap(),
        Ok(PluginIssueOutcome::Issued(chain.into()))
    );
    assert_eq!(flaky.stats().calls, 3, "describe canary + two issues");
}

/// A validator is not an issuer, and a bad configuration fails the canary.
#[tokio::test]
async fn issuer_loading_checks_world_and_configuration() {
    let err = runtime()
        .load_issuer(PluginSpec::new(
            "wrong-world",
            component("allowlist-validator"),
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("issuer-connector"), "{err}");
    let mut spec = PluginSpec::new("bad-config", component("scripted-issuer"));
    spec.config = r#"{"mode": "sometimes"}"#.into();
    let err = runtime().load_issuer(spec).await.unwrap_err();
    assert!(matches!(err, PluginError::Config { .. }), "{err}");
    assert!(err.to_string().contains("sometimes"));
}

/// Builds of the same in-tree plugins against 0.1.0 and 0.2.0 load in one runtime and answer
/// alike; a 0.1.0 plugin's bare string error is retryable, while a 0.2.0 deployer's permanent
/// error (a target configuration it cannot use) stays permanent.
#[tokio::test]
async fn builds_of_0_1_and_0_2_serve_side_by_side() {
    let allowlist_config = serde_json::json!({"default": ["*.internal.example"]}).to_string();
    let files_target = |version: &str| Deployment {
        target: format!("web-{version}"),
        target_config: "{}".into(),
        identifiers: vec![Identifier::dns("www.internal.example")],
        serial: "0a".into(),
        chain: String::new(),
        private_key: None,
        not_after: 0,
    };
    let chain = "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n";
    for (version, dir) in [
        ("0.1.0", acmegate_plugin_build::contract_0_1_plugins()),
        ("0.2.0", built()),
    ] {
        let file = |name: &str| dir.join(format!("{name}.wasm"));
        let inspection = runtime()
            .inspect(&file("allowlist-validator"))
            .await
            .unwrap();
        assert_eq!(
            inspection.contract,
            Some(format!("acmegate:plugin@{version}")),
            "{inspection:?}"
        );
        assert_eq!(inspection.incompatible, None);

        // A validator: the same answers from both builds.
        let mut spec = PluginSpec::new(format!("allow-{version}"), file("allowlist-validator"));
        spec.config = allowlist_config.clone();
        let allow = runtime().load_validator(spec).await.expect(version);
        assert_eq!(allow.info().name, "allowlist-validator");
        let good = Identifier::dns("www.internal.example");
        assert_eq!(
            validate(&allow, &good).await.unwrap(),
            ValidationOutcome::Valid,
            "{version}"
        );
        let bad = Identifier::dns("www.example.com");
        assert!(
            matches!(
                validate(&allow, &bad).await.unwrap(),
                ValidationOutcome::Invalid(p) if p.identifier.as_ref() == Some(&bad)
            ),
            "{version}"
        );
        assert!(
            matches!(
                allow.check_new_order(ACCOUNT, &[good, bad], None).await.unwrap(),
                PolicyDecision::Refuse(p) if p.subproblems.len() == 1
            ),
            "{version}"
        );

        // A validator's own error: retryable in both (0.1.0: a bare string; 0.2.0: `?` on a
        // string).
        let mut spec = PluginSpec::new(format!("hostile-{version}"), file("hostile-validator"));
        spec.limits = Some(fast_limits());
        let hostile = runtime().load_validator(spec).await.expect(version);
        match validate(&hostile, &Identifier::dns("forbidden-host.test")).await {
            Err(e @ PluginError::Plugin { .. }) => {
                assert!(!e.is_permanent(), "{version}: {e}");
                assert!(e.to_string().contains("denied"), "{e}");
            }
            other => panic!("{version}: expected the plugin's error, got {other:?}"),
        }

        // A deployer given a target configuration it cannot use: 0.2.0 says no retry can
        // succeed; 0.1.0 could not say so, and is retried.
        let files = runtime()
            .load_deployer(PluginSpec::new(
                format!("files-{version}"),
                file("files-deployer"),
            ))
            .await
            .expect(version);
        let err = files.deploy(&files_target(version)).await.unwrap_err();
        assert!(err.to_string().contains("bad config"), "{err}");
        assert_eq!(err.is_permanent(), version == "0.2.0", "{version}: {err}");
        let err = files.verify("web", "{}", "0a").await.unwrap_err();
        assert_eq!(err.is_permanent(), version == "0.2.0", "{version}: {err}");

        // A notifier whose receiver is down: its own (retryable) error in both.
        let mut spec = PluginSpec::new(format!("hook-{version}"), file("webhook-notifier"));
        spec.config = serde_json::json!({"url": "http://127.0.0.1:9/hook"}).to_string();
        spec.grants.http_hosts = vec!["127.0.0.1".into()];
        spec.grants.http_plain = true;
        spec.grants.http_private = true;
        let hook = runtime().load_notifier(spec).await.expect(version);
        let event = NotifierEvent {
            kind: EventType::Failed,
            severity: Severity::Critical,
            certificate: None,
            days_left: None,
            message: "a test".into(),
        };
        match hook.notify(&event).await {
            Err(e @ PluginError::Plugin { .. }) => {
                assert!(!e.is_permanent(), "{version}: {e}");
                assert!(e.to_string().contains("webhook unreachable"), "{e}");
            }
            other => panic!("{version}: expected the plugin's error, got {other:?}"),
        }

        // An issuer: answers and typed errors pass through either way.
        let mut spec = PluginSpec::new(format!("scripted-{version}"), file("scripted-issuer"));
        spec.config = serde_json::json!({"mode": "pending", "chain": chain}).to_string();
        let pending = runtime().load_issuer(spec).await.expect(version);
        let handle = match pending.issue(&issue_request()).await.unwrap().unwrap() {
            PluginIssueOutcome::Pending { handle, .. } => handle,
            other => panic!("{version}: expected pending, got {other:?}"),
        };
        assert_eq!(
            pending.poll(&handle).await.unwrap(),
            Ok(PluginIssueOutcome::Issued(chain.into()))
        );
        let mut spec = PluginSpec::new(format!("down-{version}"), file("scripted-issuer"));
        spec.config = serde_json::json!({"mode": "unavailable"}).to_string();
        let down = runtime().load_issuer(spec).await.expect(version);
        assert_eq!(
            down.issue(&issue_request()).await.unwrap(),
            Err(PluginIssueError::Unavailable(1))
        );
    }
}
