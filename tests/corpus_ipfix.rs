//! For every corpus capture: the IPFIX file qof writes is read by libfixbuf's `ipfixDump`
//! without a warning and with as many data records as qof's JSON has lines, and `qofdump` turns
//! it back into exactly the JSON lines `qof --format json` prints for the same capture, with
//! consistent sequence numbers.

mod common;
use common::*;

#[test]
fn ipfix_files_read_back_identically_and_cleanly() {
    if !have_tool("ipfixDump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for cap in corpus_files() {
        let name = name(&cap);
        let ipfix = tmp.path().join("f.ipfix");
        let json = tmp.path().join("f.jsonl");
        let a = run(qof().arg("--in").arg(&cap).arg("--out").arg(&ipfix));
        let b = run(qof()
            .arg("--in")
            .arg(&cap)
            .args(["--format", "json", "--out"])
            .arg(&json));
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
    assert!(checked > 70, "only {checked} files checked");
}
