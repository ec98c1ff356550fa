//! The crate's layering, checked from its sources (Boulder's split at our size): the front ends
//! (`wfe`, `admin`) sit on the authority, which sits on the parts; nothing below a front end
//! reaches up into one, and no import cycle spans two top-level modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules that may use the front ends: the wiring, the binary, and the benchmark that drives
/// a whole server.
const ABOVE_THE_FRONT_ENDS: [&str; 4] = ["server", "main", "bench", "lib"];
const FRONT_ENDS: [&str; 2] = ["wfe", "admin"];

/// Each top-level module with the top-level modules its non-test code names as `crate::x`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let test_only = ["tests.rs", "test_support.rs", "testing.rs", "testutil.rs"];
            if !name.ends_with(".rs") || test_only.contains(&name.as_str()) {
                continue;
            }
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let top = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            // Code before the first test module, without comments.
            let code = text.split("#[cfg(test)]").next().unwrap();
            let targets = graph.entry(top.clone()).or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let module: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                        .collect();
                    if !module.is_empty() && module != top {
                        targets.insert(module);
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn nothing_below_the_front_ends_reaches_up_into_them() {
    for (module, targets) in imports() {
        if ABOVE_THE_FRONT_ENDS.contains(&module.as_str()) || FRONT_ENDS.contains(&module.as_str())
        {
            continue;
        }
        for front in FRONT_ENDS {
            assert!(
                !targets.contains(front),
                "{module} imports the front end {front}; move what it needs below it"
            );
        }
    }
}

#[test]
fn no_import_cycle_spans_two_top_level_modules() {
    let graph = imports();
    assert!(
        graph.contains_key("authority") && graph.contains_key("wfe"),
        "{graph:?}"
    );
    // A module is in a cycle with another exactly when each reaches the other.
    let reaches = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    for (module, targets) in &graph {
        for target in targets {
            assert!(
                !reaches(target).contains(module),
                "import cycle: {module} -> {target} -> ... -> {module}"
            );
        }
    }
}
