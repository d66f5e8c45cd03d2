//! `--workers N`: every corpus and lab capture gives the same records (but for flowId and
//! order) with 1, 2 and 4 metering workers, with the default template, every TCP element and
//! every plugin; flowIds stay unique; the summary counts the same packets and records. A pcap
//! file is read once for all the workers (each given its share), or with `--filter` (or as
//! pcapng) by every worker (each metering its share); standard input by the reading thread,
//! which hands each worker its share: every way is checked.

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
    // With --filter every worker reads the file itself (and runs the filter); without, one
    // thread reads it for all of them: both ways are checked.
    let d = same_for_every_worker_count(&files, &["--filter".to_string(), "not udp".to_string()]);
    println!(
        "{} captures: {a} records (default), {b} (every TCP element), {c} (plugins), {d} \
         (--filter 'not udp')",
        files.len()
    );
    assert!(
        a > 3000 && b > 3000 && c > 3000 && d > 1000,
        "{a} {b} {c} {d}"
    );
    assert!(d < a, "the filter takes some flows out: {d} of {a}");
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

/// A classic pcap file of `frames` (time in µs, frame bytes), in either byte order, with
/// nanosecond or microsecond times.
fn pcap_file(frames: &[(u64, Vec<u8>)], big: bool, nanos: bool) -> Vec<u8> {
    let w32 = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend(w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend(w16(2));
    out.extend(w16(4));
    out.extend([0; 8]);
    out.extend(w32(1 << 24));
    out.extend(w32(1)); // Ethernet
    for (us, f) in frames {
        out.extend(w32((us / 1_000_000) as u32));
        let frac = us % 1_000_000;
        out.extend(w32(if nanos { frac * 1000 } else { frac } as u32));
        out.extend(w32(f.len() as u32));
        out.extend(w32(f.len() as u32));
        out.extend(f);
    }
    out
}

/// An Ethernet frame of one UDP datagram from 10.0.`a`.`b` to 10.1.0.1, `len` octets of
/// payload; or (`ip` false) an ARP-typed frame of the same size, which no meter takes.
fn udp_frame(a: u8, b: u8, len: usize, ip: bool) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend(if ip { [0x08, 0x00] } else { [0x08, 0x06] });
    let total = (20 + 8 + len).min(65535) as u16;
    f.extend([
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend([10, 0, a, b, 10, 1, 0, 1]);
    f.extend([0x30, 0x39, 0x00, 0x35]);
    let ulen = (8 + len).min(65535) as u16;
    f.extend([(ulen >> 8) as u8, ulen as u8, 0, 0]);
    f.resize(f.len() + len, 0x5a);
    f
}

/// The edges of a file read once for every worker: both byte orders, nanosecond times,
/// records larger than the reading thread's 1 MiB chunks, frames no meter takes opening a
/// second (they move no clock), a file cut inside a record and one with a damaged record
/// header. Each gives the records, counts and error of `--workers 1`.
#[test]
fn generated_files_read_once_for_every_worker_match_one_meter() {
    let tmp = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    let mut us = 1_700_000_000_000_000u64;
    for i in 0..6000u32 {
        let (a, b) = ((i % 200) as u8, (i % 7) as u8);
        // Mostly small frames, some of 1.5 and 3 MiB; every 50th an ARP frame; a pause of
        // 20 s now and then (idle flows end) opened by a frame no meter takes.
        let len = match i % 997 {
            13 => 3 << 20,
            500 => 1_500_000,
            _ => 40 + (i % 300) as usize,
        };
        us += if i % 1500 == 1499 { 20_000_000 } else { 3_000 };
        let ip = i % 50 != 0 && i % 1500 != 1499;
        frames.push((us, udp_frame(a, b, len, ip)));
    }
    let mut files = Vec::new();
    for (big, nanos) in [(false, false), (true, true)] {
        let bytes = pcap_file(&frames, big, nanos);
        let name = format!("gen-{}-{}.pcap", big as u8, nanos as u8);
        std::fs::write(tmp.path().join(&name), &bytes).unwrap();
        files.push(tmp.path().join(name));
        if !big {
            // Cut inside a record after the first large one; a damaged length further on.
            let cut = tmp.path().join("gen-cut.pcap");
            std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
            files.push(cut);
            let mut damaged = bytes.clone();
            let mut at = 24;
            for (_, f) in &frames[..4000] {
                at += 16 + f.len();
            }
            damaged[at + 8..at + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
            let bad = tmp.path().join("gen-damaged.pcap");
            std::fs::write(&bad, damaged).unwrap();
            files.push(bad);
        }
    }
    // (An idle timeout shorter than the pauses.)
    let idle = ["--timeout".to_string(), "general=5".to_string()];
    let mut records = 0;
    for file in &files {
        let (one, counts) = run_with(file, 1, &idle);
        for w in [2, 3] {
            let (many, many_counts) = run_with(file, w, &idle);
            assert_eq!(counts, many_counts, "{} x{w}", name(file));
            assert_eq!(one.len(), many.len(), "{} x{w}: records", name(file));
            if let Some((a, b)) = one.iter().zip(&many).find(|(a, b)| a != b) {
                panic!("{} x{w}: first difference\n{a}\n{b}", name(file));
            }
        }
        records += one.len();
    }
    let ended_idle = |f: &Path| {
        run_with(f, 1, &idle)
            .0
            .iter()
            .filter(|r| r.contains("\"flowEndReason\":1"))
            .count()
    };
    assert!(ended_idle(&files[0]) > 100, "idle flows end in the pauses");
    let (_, cut) = run_with(&files[1], 1, &[]);
    assert!(cut.contains("exit Some(1)"), "{cut}");
    let (_, damaged) = run_with(&files[2], 1, &[]);
    assert!(damaged.contains("exit Some(1)"), "{damaged}");
    assert!(records > 3000, "{records}");
}
