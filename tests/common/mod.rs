//! Helpers shared by the integration tests: paths, the qof binary, external oracles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The captures the tests read, carried in the repository (`tests/data/README.md` names each
/// one's origin and licence).
pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Real captures from other projects' test suites (`tests/data/CORPUS.tsv`).
pub fn corpus_dir() -> PathBuf {
    data().join("corpus")
}

/// The truth lab's captures, each with its `*.truth.json` sidecar (`tests/data/lab/README.md`).
pub fn lab_captures_dir() -> PathBuf {
    data().join("lab/out/captures")
}

/// Test helper scripts (flowdiff.py).
pub fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools")
}

pub fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the shared corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// True when tests that need an external tool should run: the tool must be present unless
/// QOF_SKIP_EXTERNAL=1 says to skip them.
pub fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("QOF_SKIP_EXTERNAL").as_deref() != Ok("1") {
        panic!("{name} is not installed (run scripts/test, or set QOF_SKIP_EXTERNAL=1 to skip)");
    }
    found
}

pub fn qof() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qof"))
}

pub fn qofdump() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qofdump"))
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// A YAML configuration whose `template:` lists `elements`, in order.
pub fn template_yaml(elements: &[&str]) -> String {
    let mut text = String::from("template:\n");
    for n in elements {
        text.push_str("  - ");
        text.push_str(n);
        text.push('\n');
    }
    text
}
