//! For every corpus capture: the IPFIX file qof writes is read by libfixbuf's `ipfixDump`
//! without a warning and with as many data records as qof's JSON has lines, and `qofdump` turns
//! it back into exactly the JSON lines `qof --format json` prints for the same capture, with
//! consistent sequence numbers.

mod common;
use common::*;

#[test]
fn ipfix_files_read_back_identically_and_cleanly() {
    let checked = check(&corpus_files(), None);
    assert!(checked > 70, "only {checked} files checked");
}

/// The same with every TCP element (templates of every dimension: RTT, timestamp clock,
/// reduced size), over the corpus and the TCP lab captures.
#[test]
fn tcp_template_files_read_back_identically_and_cleanly() {
    let yaml = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/tcp-causes.yaml");
    let mut files = corpus_files();
    let lab = lab_captures_dir();
    for e in std::fs::read_dir(&lab).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pcap") {
            files.push(p);
        }
    }
    let checked = check(&files, Some(&yaml));
    assert!(checked > 120, "only {checked} files checked");
}

/// Returns the number of files checked.
fn check(files: &[std::path::PathBuf], yaml: Option<&std::path::Path>) -> usize {
    if !have_tool("ipfixDump") {
        return usize::MAX;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for cap in files {
        let name = name(cap);
        let ipfix = tmp.path().join("f.ipfix");
        let json = tmp.path().join("f.jsonl");
        let with_yaml = |c: &mut std::process::Command| {
            if let Some(y) = yaml {
                c.arg("--yaml").arg(y);
            }
        };
        let mut qa = qof();
        with_yaml(qa.arg("--in").arg(cap).arg("--out").arg(&ipfix));
        let a = run(&mut qa);
        let mut qb = qof();
        with_yaml(
            qb.arg("--in")
                .arg(cap)
                .args(["--format", "json", "--out"])
                .arg(&json),
        );
        let b = run(&mut qb);
        assert_eq!(a.status.code(), b.status.code(), "{name}");
        if !a.status.success() && !ipfix.exists() {
            continue; // refused at open (see corpus_flowdiff.rs)
        }
        let dumped = run(qofdump().arg(&ipfix));
        assert!(
            dumped.status.success(),
            "{name}: qofdump: {}",
            String::from_utf8_lossy(&dumped.stderr)
        );
        let want = std::fs::read_to_string(&json).unwrap();
        let got = String::from_utf8(dumped.stdout).unwrap();
        assert_eq!(
            got, want,
            "{name}: qofdump of the IPFIX differs from qof's JSON"
        );

        let d = run(std::process::Command::new("ipfixDump")
            .arg("--yaf")
            .arg("--in")
            .arg(&ipfix));
        let stderr = String::from_utf8_lossy(&d.stderr);
        let stdout = String::from_utf8_lossy(&d.stdout);
        assert!(
            d.status.success() && stderr.trim().is_empty(),
            "{name}: ipfixDump: {stderr}"
        );
        let records = stdout
            .lines()
            .filter(|l| l.starts_with("--- data record"))
            .count();
        assert_eq!(
            records,
            want.lines().count(),
            "{name}: data records seen by ipfixDump"
        );
        checked += 1;
    }
    checked
}
