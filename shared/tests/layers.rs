//! The layering of docs/architecture.md, checked: no module of the shared
//! crate imports another in a circle, the model is a leaf, the rules know no
//! adapter or run loop, and no function crate depends on another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source tree") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `rules/planner.rs` → `rules::planner`; `aws/mod.rs` → `aws`; `lib.rs` → ``.
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// Every module each module's code (not its docs, not its tests) names with `crate::` or `super::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&root, f)).collect();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|k| parts[..k].join("::"))
            .find(|m| modules.contains(m))
    };
    let mut graph = BTreeMap::new();
    for file in &files {
        let me = module_of(&root, file);
        let text = std::fs::read_to_string(file).expect("readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut deps = BTreeSet::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (prefix, base) in [("crate::", String::new()), ("super::", parent(&me))] {
                for (at, _) in line.match_indices(prefix) {
                    let rest: String = line[at + prefix.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == ':')
                        .collect();
                    let full = [base.as_str(), rest.trim_end_matches(':')]
                        .iter()
                        .filter(|p| !p.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join("::");
                    let target = resolve(&full).unwrap_or_else(|| base.clone());
                    if target != me {
                        deps.insert(target);
                    }
                }
            }
        }
        graph.insert(me, deps);
    }
    graph
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map(|(p, _)| p.to_owned())
        .unwrap_or_default()
}

fn within(module: &str, top: &str) -> bool {
    module == top || module.starts_with(&format!("{top}::"))
}

#[test]
fn no_module_imports_another_in_a_circle() {
    let graph = imports();
    assert!(graph.len() > 20, "the source tree was read: {graph:?}");
    // Depth-first: a module seen again on its own path is a circle.
    fn walk(graph: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>) -> Option<String> {
        let last = path.last().cloned().unwrap_or_default();
        for next in graph.get(&last).into_iter().flatten() {
            if let Some(at) = path.iter().position(|m| m == next) {
                return Some(format!("{} -> {next}", path[at..].join(" -> ")));
            }
            path.push(next.clone());
            if let Some(circle) = walk(graph, path) {
                return Some(circle);
            }
            path.pop();
        }
        None
    }
    for module in graph.keys() {
        let circle = walk(&graph, &mut vec![module.clone()]);
        assert_eq!(circle, None, "modules import each other in a circle");
    }
}

#[test]
fn the_model_is_a_leaf_and_the_rules_are_pure() {
    for (module, deps) in imports() {
        if within(&module, "model") {
            let outside: Vec<&String> = deps.iter().filter(|d| !within(d, "model")).collect();
            assert!(outside.is_empty(), "{module} imports {outside:?}");
        }
        if within(&module, "rules") {
            let allowed = ["model", "rules", "report", "error"];
            let outside: Vec<&String> = deps
                .iter()
                .filter(|d| !allowed.iter().any(|a| within(d, a)))
                .collect();
            assert!(outside.is_empty(), "{module} imports {outside:?}");
        }
    }
}

#[test]
fn no_function_crate_depends_on_another() {
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let names: Vec<String> = std::fs::read_dir(&functions)
        .expect("functions/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    for name in &names {
        let manifest =
            std::fs::read_to_string(functions.join(name).join("Cargo.toml")).expect("Cargo.toml");
        for other in names.iter().filter(|o| *o != name) {
            let depends = manifest.lines().any(|l| {
                l.trim_start().starts_with(&format!("{other}."))
                    || l.trim_start().starts_with(&format!("{other} ="))
            });
            assert!(!depends, "functions/{name} depends on {other}");
        }
    }
}
