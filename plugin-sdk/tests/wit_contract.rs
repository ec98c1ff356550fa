//! The WIT contract: one package, four worlds, each exporting `plugin` and its own interface
//! and importing every host capability, at the version the SDK declares.

use wit_parser::Resolve;

const CAPABILITIES: [&str; 12] = [
    "log",
    "clock",
    "random",
    "state",
    "http",
    "dns",
    "tls-probe",
    "zmq",
    "secrets",
    "files",
    "commands",
    "smtp",
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

/// docs/plugins.md carries the full WIT for plugin authors; it must be the WIT the gateway
/// and the SDK build from, file by file.
#[test]
fn the_documented_wit_is_the_package() {
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = std::fs::read_to_string(format!("{root}/../docs/plugins.md")).expect("docs");
    let mut files = 0;
    for entry in std::fs::read_dir(format!("{root}/wit")).expect("wit dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("wit file");
        let block = format!("### `{name}`\n\n```wit\n{}\n```\n", text.trim_end());
        assert!(
            docs.contains(&block),
            "docs/plugins.md does not carry the current {name}; copy plugin-sdk/wit/{name} into its section"
        );
        files += 1;
    }
    assert_eq!(files, 6, "the six files of the package");
}
