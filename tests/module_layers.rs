//! The pipeline's layers depend only downwards, and no modules depend on each other in a
//! cycle: read from the sources (every `crate::` and `super::` path outside test modules), so
//! that a change that makes a cycle fails here, not in a review.
//!
//! Layers, lowest first: `time`, `key`; `capture`, `natevent` (the I/O edge, like capture),
//! `filter`; `decode`; `meter`; `ie`;
//! `ipfix`, `netflow`; `plugins`, `config`; `export`; `control`, `metrics`. The sans-IO meter knows nothing of the
//! element table, the encoders or the plugins built on its seam.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the layer it sits in.
const LAYERS: &[(&str, u8)] = &[
    ("time", 0),
    ("key", 0),
    ("testrand", 0),
    ("capture", 1),
    ("natevent", 1),
    ("filter", 1),
    ("decode", 2),
    ("meter", 3),
    ("ie", 4),
    ("ipfix", 5),
    ("netflow", 5),
    ("plugins", 6),
    ("config", 6),
    ("export", 7),
    ("control", 8),
    ("metrics", 8),
    // The qof command's own modules (beside main.rs): above the library.
    ("engine", 9),
    ("logging", 9),
    ("privilege", 9),
    ("progress", 9),
    ("service", 9),
    ("sinks", 9),
    ("route", 9),
    ("split", 9),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/meter/tcp/mod.rs` -> `meter::tcp`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The source without comments and without `#[cfg(test)] mod x { ... }` blocks.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        out.push_str(code);
        out.push('\n');
    }
    let mut cut = out.clone();
    while let Some(at) = cut.find("#[cfg(test)]") {
        let rest = &cut[at..];
        let Some(open) = rest.find('{') else { break };
        // Only a module body is cut; a `mod x;` declaration ends before any brace.
        if rest[..open].contains(';') {
            cut.replace_range(at..at + "#[cfg(test)]".len(), "");
            continue;
        }
        let mut depth = 0;
        let mut end = rest.len();
        for (i, c) in rest.char_indices().skip(open) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        cut.replace_range(at..at + end, "");
    }
    cut
}

/// Paths after `prefix` (`crate::` or `super::`) in `code`: `a::b::c`.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':')
        })
        .collect()
}

/// Module -> the modules it uses (the longest known module each path names).
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")) && !f.ends_with("main.rs"));
    files.retain(|f| f.file_name().is_some_and(|n| n != "tests.rs"));
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains(m))
    };
    let mut deps = BTreeMap::new();
    for f in &files {
        let m = module_of(&src, f);
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let parent = m.rsplit_once("::").map_or("", |(p, _)| p).to_string();
        let mut uses = BTreeSet::new();
        for p in paths_after(&code, "crate::") {
            uses.extend(resolve(p));
        }
        for p in paths_after(&code, "super::") {
            let full = if parent.is_empty() {
                p.to_string()
            } else {
                format!("{parent}::{p}")
            };
            uses.extend(resolve(&full));
        }
        // A module's own children and ancestors are not dependencies across modules.
        uses.retain(|u| *u != m && !m.starts_with(&format!("{u}::")));
        deps.insert(m, uses);
    }
    deps
}

fn layer(module: &str) -> u8 {
    let top = module.split("::").next().unwrap_or("");
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module `{top}` has no layer in LAYERS: add it"))
}

#[test]
fn layers_depend_only_downwards() {
    let mut wrong = Vec::new();
    for (m, uses) in dependencies() {
        for u in uses {
            let (a, b) = (m.split("::").next(), u.split("::").next());
            if a != b && layer(&u) > layer(&m) {
                wrong.push(format!("{m} uses {u}"));
            }
        }
    }
    assert!(wrong.is_empty(), "upward dependencies: {wrong:#?}");
}

#[test]
fn no_module_cycles() {
    let deps = dependencies();
    // Every module that can reach itself (a depth-first walk from each).
    let mut cyclic = Vec::new();
    for start in deps.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = deps[start].iter().collect();
        while let Some(m) = stack.pop() {
            if m == start {
                cyclic.push(start.clone());
                break;
            }
            if seen.insert(m.clone()) {
                stack.extend(deps.get(m).into_iter().flatten());
            }
        }
    }
    assert!(cyclic.is_empty(), "modules in a cycle: {cyclic:?}");
    assert!(deps.len() > 40, "only {} modules read", deps.len());
    assert!(deps["meter::table"].contains("meter::index"));
}
