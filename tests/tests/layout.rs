//! The layout holds: the host library carries no CLI, server, mock or bundled component, and no
//! module of a connector imports one that imports it.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The packages `package` depends on through the given edge kinds (`normal`, `build`).
fn dependencies(package: &str, edges: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .current_dir(workspace())
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            edges,
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn the_host_library_links_no_cli_server_or_mock_and_builds_no_guest() {
    let normal = dependencies("accessgov-host", "normal");
    for unwanted in
        ["axum", "clap", "comfy-table", "indicatif", "accessgov-mock", "bundled-connectors"]
    {
        assert!(!normal.contains(unwanted), "accessgov-host depends on {unwanted}");
    }
    // A nested wasm32-wasip2 build comes only from a build script using guest-build.
    let with_build = dependencies("accessgov-host", "normal,build");
    for unwanted in
        ["guest-build", "bundled-connectors", "chatgpt-connector", "openai-platform-connector"]
    {
        assert!(!with_build.contains(unwanted), "building accessgov-host builds {unwanted}");
    }
    // The check itself sees what it looks for: the CLI does bundle, through guest-build.
    let cli = dependencies("harness", "normal,build");
    assert!(cli.contains("guest-build") && cli.contains("clap"), "{cli:?}");
}

/// The crate-internal modules each module of `src` names in its `use crate::` lines and
/// `crate::` paths, tests included.
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut imports = BTreeSet::new();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                imports.insert(name);
            }
        }
        graph.insert(module, imports);
    }
    graph
}

/// A cycle of imports, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut found = path[start..].to_vec();
            found.push(module.to_string());
            return Some(found);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_of_a_connector_imports_one_that_imports_it() {
    for connector in ["connector/chatgpt/src", "connector/openai-platform/src", "connector/sdk/src"]
    {
        let graph = module_imports(&workspace().join(connector));
        assert!(graph.len() > 3, "{connector}: {graph:?}");
        assert_eq!(cycle(&graph), None, "{connector} has a cycle of imports");
    }
    // The check finds a cycle where there is one.
    let looped = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(cycle(&looped).map(|c| c.len()), Some(4));
}

#[test]
fn the_chatgpt_connector_keeps_no_copy_of_the_contracts_types() {
    let src = workspace().join("connector/chatgpt/src");
    for gone in ["model.rs", "error.rs", "guest.rs", "transport.rs"] {
        assert!(!src.join(gone).exists(), "connector/chatgpt/src/{gone} is back");
    }
    for entry in std::fs::read_dir(&src).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("wit_bindgen::generate!"), "the SDK generates the bindings once");
    }
}
