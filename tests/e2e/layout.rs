//! The house rules of the code's layout, checked on the source itself:
//! no module imports back up its crate's pipeline (no import cycle between
//! modules, at the top level of a crate or inside one of its modules), no
//! source file over 600 lines, and the production collector links no agent
//! code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const CRATES: [&str; 4] = ["agent", "collector", "common", "demo"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's module path within its crate: `daemon/evaluator.rs` is
/// `["daemon", "evaluator"]`, `daemon/mod.rs` is `["daemon"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments and its unit tests (a test
/// module may reach anywhere).
fn production_code(text: &str) -> String {
    let code = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate-level paths a piece of code names: `crate::a::b` and
/// `super::x` (resolved against `module`), in `use` trees and expressions.
fn referenced_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // Flatten `use` trees first: `use crate::{a::b, c};` names a::b and c.
    let mut flat = String::new();
    for statement in code.split(';') {
        let trimmed = statement.trim_start();
        let Some(tree) = trimmed
            .strip_prefix("use ")
            .or_else(|| trimmed.strip_prefix("pub use "))
        else {
            flat.push_str(statement);
            flat.push(';');
            continue;
        };
        let tree: String = tree.split_whitespace().collect();
        if let Some((prefix, rest)) = tree.split_once("::{") {
            for item in rest.trim_end_matches('}').split(',') {
                flat.push_str(&format!(" {prefix}::{item};"));
            }
        } else {
            flat.push_str(&format!(" {tree};"));
        }
    }
    for (anchor, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            let mut parent = module.to_vec();
            parent.pop();
            parent
        }),
    ] {
        for (at, _) in flat.match_indices(anchor) {
            if flat[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            {
                continue; // `self::super::`, `foo_crate::`
            }
            let path: Vec<String> = flat[at + anchor.len()..]
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let mut full = base.clone();
            full.extend(path);
            out.push(full);
        }
    }
    out
}

/// A cycle in `edges`, if there is one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_back_up_its_crates_pipeline() {
    for krate in CRATES {
        let src = workspace().join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        // Edges between the crate's top-level modules, and between the
        // submodules of each top-level module.
        let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for file in &files {
            let module = module_of(&src, file);
            if module.last().is_some_and(|m| m == "tests") || module.is_empty() {
                continue;
            }
            let text = std::fs::read_to_string(file).unwrap();
            for target in referenced_paths(&production_code(&text), &module) {
                let Some(top) = target.first() else { continue };
                if *top != module[0] {
                    graphs
                        .entry(String::new())
                        .or_default()
                        .entry(module[0].clone())
                        .or_default()
                        .insert(top.clone());
                } else if let (Some(from), Some(to)) = (module.get(1), target.get(1)) {
                    if from != to {
                        graphs
                            .entry(module[0].clone())
                            .or_default()
                            .entry(from.clone())
                            .or_default()
                            .insert(to.clone());
                    }
                }
            }
        }
        assert!(
            graphs.get("").is_some_and(|g| g.len() > 1) || krate == "demo" || krate == "common",
            "{krate}: no imports found; is the parser reading the code?"
        );
        for (scope, edges) in &graphs {
            if let Some(found) = cycle(edges) {
                panic!(
                    "{krate}{}: the modules import each other: {}",
                    if scope.is_empty() {
                        String::new()
                    } else {
                        format!("::{scope}")
                    },
                    found.join(" -> ")
                );
            }
        }
    }
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("config".to_owned(), BTreeSet::from(["model".to_owned()])),
        ("model".to_owned(), BTreeSet::from(["config".to_owned()])),
    ]
    .into();
    assert_eq!(
        cycle(&edges),
        Some(vec!["config".into(), "model".into(), "config".into()])
    );
    let paths = referenced_paths(
        "use crate::{config::Config, store};\nlet x = super::judge::age(1.0);",
        &["alerts".to_owned(), "rules".to_owned()],
    );
    assert_eq!(
        paths,
        [
            vec!["config".to_owned(), "Config".to_owned()],
            vec!["store".to_owned()],
            vec!["alerts".to_owned(), "judge".to_owned(), "age".to_owned()]
        ]
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    for krate in CRATES.iter().chain(&["tests"]) {
        let src = workspace().join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            assert!(lines <= 600, "{}: {lines} lines", file.display());
        }
    }
}

#[test]
fn the_collector_links_no_agent_code() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "brokerwatch-collector",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(workspace())
        .output()
        .expect("cargo tree");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.contains("rdkafka"), "{tree}");
    for agent_only in ["aya", "procfs", "mimalloc", "brokerwatch-agent"] {
        assert!(
            !tree
                .lines()
                .any(|l| l.starts_with(&format!("{agent_only} "))),
            "the collector links {agent_only}"
        );
    }
}
