//! `--workers N`: every corpus and lab capture gives the same records (but for flowId and
//! order) with 1, 2 and 4 metering workers, with the default template, every TCP element and
//! every plugin; flowIds stay unique; the summary counts the same packets and records. A file
//! is read by every worker (each metering its share); standard input by the reading thread,
//! which hands each worker its share: both ways are checked.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

/// The records of one run, flowIds taken out and checked unique, as sorted JSON lines; and
/// the summary line's counts with the exit status (a damaged capture ends in an error: the
/// same one whatever the workers).
fn run_with(capture: &Path, workers: usize, extra: &[String]) -> (Vec<String>, String) {
    run_from(capture, false, workers, extra)
}

/// As [`run_with`], the capture read from the file or (`piped`) from standard input.
fn run_from(
    capture: &Path,
    piped: bool,
    workers: usize,
    extra: &[String],
) -> (Vec<String>, String) {
    let mut cmd = qof();
    if piped {
        cmd.args(["--in", "-"])
            .stdin(std::fs::File::open(capture).unwrap());
    } else {
        cmd.arg("--in").arg(capture);
    }
    let out = run(cmd
        .args(["--format", "json", "--workers", &workers.to_string()])
        .args(extra));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
        "{} x{workers}: {stderr}",
        name(capture)
    );
    let mut ids = BTreeSet::new();
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(id) = v.as_object_mut().unwrap().remove("flowId") {
                // A continuation (active timeout, a plugin's split) shares its flow's id.
                let key = (id.as_u64().unwrap(), v["flowStartMilliseconds"].to_string());
                assert!(ids.insert(key), "{}: flowId {id} twice", name(capture));
            }
            v.to_string()
        })
        .collect();
    lines.sort();
    // "qof: 1793 packets read, 1793 metered, 0 ignored; 92 flow records exported; ..."; a
    // capture that cannot be opened has only its error line.
    let counts = stderr
        .lines()
        .find(|l| l.starts_with("qof: ") && l.contains("packets read"))
        .and_then(|l| l.rsplit_once("; ").map(|(c, _)| c.to_string()))
        .unwrap_or_else(|| {
            // (The error line names the input.)
            stderr
                .trim()
                .replace(&capture.display().to_string(), "INPUT")
                .replace("standard input", "INPUT")
        });
    (lines, format!("{counts}; exit {:?}", out.status.code()))
}

fn same_for_every_worker_count(captures: &[std::path::PathBuf], extra: &[String]) -> usize {
    let mut records = 0;
    for cap in captures {
        let (one, counts) = run_with(cap, 1, extra);
        for (w, piped) in [(2, false), (4, false), (2, true)] {
            let (many, many_counts) = run_from(cap, piped, w, extra);
            let how = if piped { " from standard input" } else { "" };
            assert_eq!(counts, many_counts, "{} x{w}{how}: summary", name(cap));
            assert_eq!(one.len(), many.len(), "{} x{w}{how}: records", name(cap));
            for (a, b) in one.iter().zip(&many) {
                assert_eq!(a, b, "{} x{w}{how}", name(cap));
            }
        }
        records += one.len();
    }
    records
}

#[test]
fn corpus_records_are_the_same_with_1_2_and_4_workers() {
    let tcp_all = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/tcp-all.yaml");
    let mut plugins: Vec<String> = Vec::new();
    for s in qof::plugins::REGISTRY {
        plugins.extend(["--plugin".to_string(), s.kind.name().to_string()]);
    }
    let files = corpus_files();
    let a = same_for_every_worker_count(&files, &[]);
    let b = same_for_every_worker_count(
        &files,
        &["--yaml".to_string(), tcp_all.display().to_string()],
    );
    let c = same_for_every_worker_count(&files, &plugins);
    println!(
        "{} captures: {a} records (default), {b} (every TCP element), {c} (plugins)",
        files.len()
    );
    assert!(a > 3000 && b > 3000 && c > 3000, "{a} {b} {c}");
}

#[test]
fn lab_records_are_the_same_with_1_2_and_4_workers() {
    let tcp_all = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/tcp-all.yaml");
    let mut lab: Vec<_> = std::fs::read_dir(lab_captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    lab.sort();
    let n =
        same_for_every_worker_count(&lab, &["--yaml".to_string(), tcp_all.display().to_string()]);
    println!("{} lab captures: {n} records", lab.len());
    assert!(n > 600, "{n}");
}

#[test]
fn worker_counts_are_checked() {
    for bad in ["0", "x", "2000", ""] {
        let out = run(qof().args(["--workers", bad, "--in", "-"]));
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--workers {bad}");
        assert!(e.contains("--workers"), "{e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
    }
}
