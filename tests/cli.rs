//! The command line as a user meets it: inputs, outputs, errors, signals.

mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;

fn sample() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap")
}

fn json_records(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn packets(recs: &[serde_json::Value]) -> u64 {
    recs.iter()
        .map(|r| {
            r["packetDeltaCount"].as_u64().unwrap_or(0)
                + r["reversePacketDeltaCount"].as_u64().unwrap_or(0)
        })
        .sum()
}

/// One line on stderr that starts with `qof: ` and names `what`; exit code 1.
fn assert_one_error_line(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit code for {what}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line for {what}: {stderr}");
    assert!(
        lines[0].starts_with("qof: ") && lines[0].contains(what),
        "{what}: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn sample_to_json_on_stdout() {
    let out = run(qof().arg("--in").arg(sample()).args(["--format", "json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = json_records(&out.stdout);
    assert!(!recs.is_empty());
    // ARP frames are not IP: every other packet of the sample is in some record.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("205 packets read"), "{stderr}");
    assert!(stderr.contains("not-ip 48"), "{stderr}");
    assert_eq!(packets(&recs), 205 - 48);
    for r in &recs {
        assert!(
            r.get("flowStartMilliseconds").is_some() && r.get("protocolIdentifier").is_some(),
            "{r}"
        );
    }
}

#[test]
fn stdin_plain_and_gzip_give_the_same_flows() {
    let bytes = std::fs::read(sample()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    let mut outs = Vec::new();
    for (input, args) in [
        (&bytes, vec!["--format", "json"]),
        (&gz, vec!["--in", "-", "--format", "json"]),
    ] {
        let mut child = qof()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = input.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outs.push(packets(&json_records(&out.stdout)));
    }
    assert_eq!(outs[0], 205 - 48);
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn user_mistakes_get_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    assert_one_error_line(
        &run(qof().args(["--in", "/nonexistent/x.pcap", "--format", "json"])),
        "/nonexistent/x.pcap",
    );

    let not_pcap = tmp.path().join("notes.txt");
    std::fs::write(&not_pcap, "hello, this is not a capture\n").unwrap();
    assert_one_error_line(
        &run(qof().arg("--in").arg(&not_pcap).args(["--format", "json"])),
        "not a pcap",
    );

    let yaml = tmp.path().join("bad.yaml");
    std::fs::write(&yaml, "idle-timeout: 10\nmax-flow: 3\n").unwrap();
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .arg("--yaml")
        .arg(&yaml)
        .args(["--format", "json"]));
    assert_one_error_line(&out, "bad.yaml: line 2 column 1: unknown field `max-flow`");

    let yaml = tmp.path().join("tmpl.yaml");
    std::fs::write(
        &yaml,
        "template:\n  - sourceIPv4Address\n  - octetDeltaCounter\n",
    )
    .unwrap();
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .arg("--yaml")
        .arg(&yaml)
        .args(["--format", "json"]));
    assert_one_error_line(&out, "octetDeltaCounter");

    let out = run(qof().args(["--rotate", "60"]).arg("--in").arg(sample()));
    assert_one_error_line(&out, "--rotate needs --out");

    let out = run(qof()
        .args(["--ipfix", "tcp", "--out", "collector.example"])
        .arg("--in")
        .arg(sample()));
    assert_one_error_line(&out, "--ipfix");

    let out = run(qof().args(["--frobnicate"]));
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn version_and_help() {
    // On standard output, as clap's and GNU tools' --version; -V too.
    for flag in ["--version", "-V"] {
        let out = run(qof().arg(flag));
        assert!(out.status.success(), "{flag}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with(&format!("qof {} ", env!("CARGO_PKG_VERSION"))),
            "{flag}: {stdout}"
        );
        assert!(out.stderr.is_empty(), "{flag}");
    }
    let out = run(qof().arg("--help"));
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--in",
        "--out",
        "--yaml",
        "--filter",
        "--rotate",
        "--lock",
        "--stats",
        "--format",
        "--observation-domain",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
}

/// SIGTERM in the middle of the input: qof stops reading, exports every flow in memory and
/// exits cleanly. The input is a pipe fed continuously, so the signal lands mid-stream.
#[test]
fn sigterm_mid_stream_exports_every_flow_in_memory() {
    let bytes = std::fs::read(sample()).unwrap();
    let header = &bytes[..24];
    let body = &bytes[24..];
    let mut child = qof()
        .args(["--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let header = header.to_vec();
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        if stdin.write_all(&header).is_err() {
            return true;
        }
        // Repeat the sample's packets (same flows over and over) until qof goes away (the
        // write fails), or for at most a minute (then qof did not stop on SIGTERM).
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(60) {
            if stdin.write_all(&body).is_err() {
                return true;
            }
        }
        false
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY-free: signal the child through the `kill` command.
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let qof_went_away = writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(
        stderr.contains("packets read"),
        "summary line missing: {stderr}"
    );
    let recs = json_records(&out.stdout);
    assert!(!recs.is_empty(), "no flow exported after SIGTERM");
    // Every metered packet is in a record: compare with the summary line's count.
    let metered: u64 = stderr
        .split(" packets read, ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("summary: {stderr}"));
    assert_eq!(packets(&recs), metered, "records hold every metered packet");
    assert!(
        qof_went_away,
        "qof kept reading for a minute despite SIGTERM"
    );
}

/// `--stats`: QoF's process statistics as an options record, here at the end of the run; the
/// counts agree with the summary line and the flow records.
#[test]
fn stats_record_counts_the_run() {
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .args(["--format", "json", "--stats", "3600"]));
    assert!(out.status.success());
    let recs = json_records(&out.stdout);
    let stats: Vec<&serde_json::Value> = recs
        .iter()
        .filter(|r| r.get("packetTotalCount").is_some())
        .collect();
    assert!(!stats.is_empty(), "no statistics record");
    let last = stats.last().unwrap();
    let flows = recs
        .iter()
        .filter(|r| r.get("flowEndReason").is_some())
        .count() as u64;
    assert_eq!(last["packetTotalCount"], 157);
    assert_eq!(last["ignoredPacketTotalCount"], 48);
    assert_eq!(
        last["exportedFlowRecordTotalCount"].as_u64().unwrap(),
        flows
    );
    assert!(last["flowTablePeakCount"].as_u64().unwrap() > 0);
    assert_eq!(last["exportingProcessId"], 0);
}

/// `--out` naming a FIFO (or `/dev/null`, a terminal) is written in place: the atomic
/// rename used for regular files would replace the device with a file (as root, `--out
/// /dev/null` once turned /dev/null into a regular file). What arrives through the FIFO is
/// the same IPFIX a regular file gets.
#[test]
fn ipfix_into_a_fifo_keeps_the_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("flows.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = run(qof().arg("--in").arg(sample()).arg("--out").arg(&fifo));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Checked before joining: had the FIFO been renamed over, the reader would never return.
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["flows.fifo"], "no hidden file beside the FIFO");
    let via_fifo = reader.join().unwrap();

    let file = tmp.path().join("flows.ipfix");
    let out = run(qof().arg("--in").arg(sample()).arg("--out").arg(&file));
    assert!(out.status.success());
    let dump = |bytes: Vec<u8>| {
        let mut child = qofdump()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        json_records(&out.stdout)
    };
    let from_fifo = dump(via_fifo);
    assert!(!from_fifo.is_empty());
    assert_eq!(packets(&from_fifo), 205 - 48);
    assert_eq!(from_fifo, dump(std::fs::read(&file).unwrap()));
}

#[test]
fn ipfix_out_to_a_directory_is_one_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(qof().arg("--in").arg(sample()).arg("--out").arg(tmp.path()));
    assert_one_error_line(&out, "is a directory");
}

/// Flows ended early to make room (YAML `max-flows`) are in the summary line; without any,
/// the line does not mention them.
#[test]
fn the_summary_counts_flows_evicted_from_a_full_table() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("small.yaml");
    std::fs::write(&yaml, "max-flows: 2\n").unwrap();
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .arg("--yaml")
        .arg(&yaml)
        .args(["--format", "json"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // "..., N flows ended early for lack of room (flow table full); ..."
    let evicted: u64 = stderr
        .split(" flows ended early for lack of room (flow table full); ")
        .next()
        .filter(|head| head.len() < stderr.len())
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no eviction count: {stderr}"));
    assert!(evicted > 0, "{stderr}");
    let out = run(qof().arg("--in").arg(sample()).args(["--format", "json"]));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("ended early"));
}

/// A zero timeout is refused in one line naming the key, not taken silently.
#[test]
fn zero_timeouts_are_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    for key in ["idle-timeout", "active-timeout"] {
        let yaml = tmp.path().join("zero.yaml");
        std::fs::write(&yaml, format!("{key}: 0\n")).unwrap();
        let out = run(qof()
            .arg("--in")
            .arg(sample())
            .arg("--yaml")
            .arg(&yaml)
            .args(["--format", "json"]));
        assert_one_error_line(&out, &format!("{key}: 0 seconds: give at least 1"));
        assert!(out.stdout.is_empty());
    }
}
