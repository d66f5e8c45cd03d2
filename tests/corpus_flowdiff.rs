//! Correctness against an oracle we did not write: for every capture of the corpus (tests/data/corpus),
//! qof's JSON records are scored with `flowdiff.py` against tshark's own per-packet decode.
//! The share of packets lying in directional 5-tuples whose packets and octets match exactly
//! must be 100 %, except for the files listed in `EXPECTED_BELOW_100`, each with its reason;
//! over the whole corpus it must be at least 99.5 %.

mod common;
use common::*;

/// Files where qof and tshark legitimately disagree, the least share we accept, and why.
const EXPECTED_BELOW_100: &[(&str, f64, &str)] = &[
    (
        "libpcap__ipv6_ext_headers.pcap",
        0.0,
        "one packet with a chain of ~100 IPv6 extension headers ending in UDP 12345 -> 54321; \
         tshark's decode ends in UDP too, but flowdiff.py takes the first occurrence of each \
         extension header's next-header field and so scores the packet as protocol 0",
    ),
    (
        "tcpdump__ipv6_jumbogram_1.pcap",
        0.0,
        "one RFC 2675 jumbogram: IPv6 payload length 0 and a jumbo option of 65,536+ octets; \
         qof counts the jumbo length that crossed the wire, flowdiff.py counts 0 + 40",
    ),
];

/// Files qof must stop on with one error line (tshark reports them as damaged too). The
/// flows read before the error are still scored.
const EXPECTED_ERRORS: &[(&str, &str)] = &[
    (
        "libpcap__pcapng-invalid-vers-1.pcapng",
        "pcapng version 0.1, which tshark refuses too",
    ),
    (
        "ndpi__fuzz-2021-10-13.pcap",
        "one frame, then 2 stray bytes: tshark says the file is cut short",
    ),
];

#[test]
fn flows_match_tshark_on_every_corpus_file() {
    if !have_tool("tshark") {
        return;
    }
    let flowdiff = tools_dir().join("flowdiff.py");
    let tmp = tempfile::tempdir().unwrap();
    let (mut ok_total, mut all_total) = (0u64, 0u64);
    let mut failures = Vec::new();
    let mut table = String::new();
    for cap in corpus_files() {
        let name = name(&cap);
        let out = tmp.path().join(format!("{name}.jsonl"));
        let r = run(qof()
            .arg("--in")
            .arg(&cap)
            .arg("--format")
            .arg("json")
            .arg("--out")
            .arg(&out));
        let stderr = String::from_utf8_lossy(&r.stderr);
        if let Some((_, why)) = EXPECTED_ERRORS.iter().find(|(f, _)| *f == name) {
            assert_eq!(
                r.status.code(),
                Some(1),
                "{name}: expected an error ({why}), got {stderr}"
            );
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|l| !l.contains("packets read"))
                .collect();
            assert_eq!(errors.len(), 1, "{name}: one error line: {stderr}");
            assert!(errors[0].starts_with("qof: "), "{name}: {stderr}");
            if !out.exists() {
                continue;
            }
        } else {
            assert!(r.status.success(), "{name}: qof failed: {stderr}");
        }
        let d = run(std::process::Command::new("python3")
            .arg(&flowdiff)
            .arg(&cap)
            .arg(&out)
            .args(["--min-match", "0"]));
        let text = String::from_utf8_lossy(&d.stdout);
        let last = text.lines().last().unwrap_or_default();
        // "<file>: OK/TOTAL packets in exactly matching directional flows (SHARE)"
        let frac = last
            .split(": ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .unwrap_or_else(|| panic!("{name}: flowdiff said {text}"));
        let (ok, total) = frac.split_once('/').unwrap();
        let (ok, total): (u64, u64) = (ok.parse().unwrap(), total.parse().unwrap());
        ok_total += ok;
        all_total += total;
        let share = if total == 0 {
            1.0
        } else {
            ok as f64 / total as f64
        };
        table.push_str(&format!("{share:.4} {ok:>6}/{total:<6} {name}\n"));
        let min = EXPECTED_BELOW_100
            .iter()
            .find(|(f, _, _)| *f == name)
            .map_or(1.0, |(_, m, _)| *m);
        if share < min {
            failures.push(format!("{name}: {share:.4} < {min}\n{text}"));
        }
    }
    eprintln!("{table}");
    let overall = ok_total as f64 / all_total.max(1) as f64;
    eprintln!("overall: {ok_total}/{all_total} = {overall:.5}");
    assert!(
        failures.is_empty(),
        "files below their expected share:\n{}",
        failures.join("\n")
    );
    assert!(overall >= 0.995, "overall share {overall:.5} below 0.995");
}

/// No panic, hang or crash on damaged input: every corpus file cut at several offsets either
/// reads to its end or stops with one error line and exit code 1, having written its flows.
#[test]
fn truncated_captures_end_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for cap in corpus_files() {
        let bytes = std::fs::read(&cap).unwrap();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let cut = (seed % bytes.len() as u64) as usize;
            let path = tmp.path().join("cut.pcap");
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let r = run(qof()
                .arg("--in")
                .arg(&path)
                .arg("--format")
                .arg("json")
                .arg("--out")
                .arg(tmp.path().join("o.jsonl")));
            let stderr = String::from_utf8_lossy(&r.stderr);
            assert!(
                matches!(r.status.code(), Some(0) | Some(1)),
                "{} cut at {cut}: exit {:?}: {stderr}",
                name(&cap),
                r.status
            );
            assert!(
                !stderr.contains("panicked"),
                "{} cut at {cut}: {stderr}",
                name(&cap)
            );
        }
    }
}
