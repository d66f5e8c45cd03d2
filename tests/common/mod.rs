//! Helpers shared by the integration tests: paths, the qof binary, external oracles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// The files nfcapd closed in `dir`, oldest first. nfcapd starts a new file on every 5-minute
/// boundary of the clock, so a run that crosses one leaves two: a test must read them all.
pub fn nfcapd_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = name(p);
            n.starts_with("nfcapd.2") && !n.contains("current")
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "nfcapd wrote no file in {}",
        dir.display()
    );
    files
}

/// Every flow nfcapd stored in `dir`, as nfdump prints them with `-o json`, across all its files.
pub fn nfdump_json(dir: &Path) -> Vec<serde_json::Value> {
    let mut flows = Vec::new();
    for file in nfcapd_files(dir) {
        let out = run(Command::new("nfdump")
            .env("TZ", "UTC")
            .arg("-r")
            .arg(&file)
            .args(["-o", "json"]));
        assert!(
            out.status.success(),
            "nfdump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("No matching flows") || text.trim().is_empty() {
            continue;
        }
        let all: Vec<serde_json::Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("nfdump's JSON of {}: {e}\n{text}", file.display()));
        flows.extend(all);
    }
    flows
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

/// A pcap of raw IPv4/UDP packets (LINKTYPE_RAW) carrying `payloads` from port 40000 to `port`.
pub fn udp_pcap(payloads: &[Vec<u8>], port: u16) -> Vec<u8> {
    let mut f = Vec::new();
    // Magic, version 2.4 (two little-endian u16s), zone, accuracy, snap length, LINKTYPE_RAW.
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 101] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for (i, p) in payloads.iter().enumerate() {
        let total = 28 + p.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            i as u8,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        let sum = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let udp_len = (8 + p.len()) as u16;
        ip.extend_from_slice(&40_000u16.to_be_bytes());
        ip.extend_from_slice(&port.to_be_bytes());
        ip.extend_from_slice(&udp_len.to_be_bytes());
        ip.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
        ip.extend_from_slice(p);
        for v in [
            1_700_000_000 + i as u32,
            0,
            ip.len() as u32,
            ip.len() as u32,
        ] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&ip);
    }
    f
}

/// `tshark -V` of the datagrams, decoded as NetFlow/IPFIX (the `cflow` dissector). `port`
/// (the collector's) only names the file: the datagrams are put in packets to port 2055, so
/// that tshark's notes on a port do not depend on the port a test happened to get (one in
/// 33434-33534 adds "Expert Info ... Possible traceroute" to every packet).
pub fn tshark_decode(datagrams: &[Vec<u8>], port: u16, tmp: &Path) -> String {
    const WRAPPED_TO: u16 = 2055;
    let pcap = tmp.join(format!("netflow-{port}.pcap"));
    std::fs::write(&pcap, udp_pcap(datagrams, WRAPPED_TO)).unwrap();
    let out = run(Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-d", &format!("udp.port=={WRAPPED_TO},cflow"), "-V"])
        // (tshark uses no template of more than 60 fields unless told: every plugin at once
        // makes templates of more.)
        .args(["-o", "cflow.max_template_fields:1024"])
        .stdin(Stdio::null()));
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
