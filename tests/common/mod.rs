//! Helpers shared by the integration tests: paths, the qof binary, external oracles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared corpus, tools and lab beside the repository (`../shared`).
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

pub fn corpus_files() -> Vec<PathBuf> {
    let dir = shared().join("corpus/public");
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
