//! The WIT contract: one package, four worlds, each exporting `plugin` and its own interface
//! and importing exactly the host capabilities of its kind, at the version the SDK declares;
//! and the 0.1.0 package kept beside it for the gateway's bindings of old plugins.

use wit_parser::Resolve;

/// What every world imports.
const BASE: [&str; 5] = ["log", "clock", "random", "state", "secrets"];

/// Each world, its exported interface and the capabilities it imports besides [`BASE`].
const WORLDS: [(&str, &str, &[&str]); 4] = [
    (
        "challenge-validator",
        "validator",
        &["http", "dns", "tls-probe"],
    ),
    ("issuer-connector", "issuer", &["http", "zmq"]),
    (
        "target-deployer",
        "deployer",
        &["http", "files", "commands", "tls-probe"],
    ),
    ("notifier", "notifications", &["http", "smtp"]),
];

/// The world names' interfaces in `dir`'s package, as `(package, imports, exports)` per world.
fn worlds(dir: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(format!("{}/{dir}", env!("CARGO_MANIFEST_DIR")))
        .expect("the WIT package parses and resolves");
    WORLDS
        .iter()
        .map(|(world, _, _)| {
            let id = resolve
                .select_world(&[package], Some(world))
                .unwrap_or_else(|e| panic!("world {world}: {e}"));
            let w = &resolve.worlds[id];
            let names = |keys: Vec<&wit_parser::WorldKey>| {
                keys.into_iter()
                    .map(|k| resolve.name_world_key(k))
                    .collect::<Vec<_>>()
            };
            (
                resolve.packages[package].name.to_string(),
                names(w.imports.keys().collect()),
                names(w.exports.keys().collect()),
            )
        })
        .collect()
}

#[test]
fn every_world_exports_plugin_and_its_interface_and_imports_only_its_capabilities() {
    let version = format!("@{}", acmegate_plugin_sdk::CONTRACT_VERSION);
    let name = |i: &str| format!("acmegate:plugin/{i}{version}");
    for ((package, imports, exports), (world, interface, extra)) in
        worlds("wit").into_iter().zip(WORLDS)
    {
        assert_eq!(package, format!("acmegate:plugin{version}"));
        assert_eq!(
            exports,
            [name("plugin"), name(interface)],
            "{world} exports"
        );
        let mut capabilities: Vec<String> = imports
            .into_iter()
            .filter(|i| i != &name("types"))
            .collect();
        capabilities.sort();
        let mut expected: Vec<String> = BASE.iter().chain(extra).map(|c| name(c)).collect();
        expected.sort();
        assert_eq!(capabilities, expected, "{world} imports");
    }
    // The notifier of the issue that asked for this: no zmq, no files.
    let notifier = &worlds("wit")[3].1;
    assert!(!notifier.contains(&name("zmq")) && !notifier.contains(&name("files")));
}

/// The 0.1.0 package the gateway still binds: every world imports all twelve capabilities.
#[test]
fn the_0_1_0_package_is_kept_whole() {
    for (package, imports, exports) in worlds("wit-0.1.0") {
        assert_eq!(package, "acmegate:plugin@0.1.0");
        assert_eq!(exports.len(), 2);
        assert_eq!(
            imports
                .iter()
                .filter(|i| i.as_str() != "acmegate:plugin/types@0.1.0")
                .count(),
            12,
            "{imports:?}"
        );
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
