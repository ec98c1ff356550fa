//! The WIT contract: one package, four worlds, each exporting `plugin` and its own interface
//! and importing every host capability, at the version the SDK declares.

use wit_parser::Resolve;

const CAPABILITIES: [&str; 9] = [
    "log",
    "clock",
    "random",
    "state",
    "http",
    "dns",
    "tls-probe",
    "zmq",
    "secrets",
];

#[test]
fn every_world_exports_plugin_and_its_interface_and_imports_every_capability() {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/wit"))
        .expect("the WIT package parses and resolves");
    let version = format!("@{}", acmegate_plugin_sdk::CONTRACT_VERSION);
    assert_eq!(
        resolve.packages[package].name.to_string(),
        format!("acmegate:plugin{version}")
    );
    let worlds = [
        ("challenge-validator", "validator"),
        ("issuer-connector", "issuer"),
        ("target-deployer", "deployer"),
        ("notifier", "notifications"),
    ];
    for (world, interface) in worlds {
        let id = resolve
            .select_world(&[package], Some(world))
            .unwrap_or_else(|e| panic!("world {world}: {e}"));
        let w = &resolve.worlds[id];
        let exports: Vec<String> = w
            .exports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect();
        let imports: Vec<String> = w
            .imports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect();
        let name = |i: &str| format!("acmegate:plugin/{i}{version}");
        assert_eq!(
            exports,
            [name("plugin"), name(interface)],
            "{world} exports"
        );
        for capability in CAPABILITIES {
            assert!(
                imports.contains(&name(capability)),
                "{world} imports {capability}"
            );
        }
    }
}
