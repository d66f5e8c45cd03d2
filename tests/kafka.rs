//! `--kafka`: every record is counted once, as delivered or lost, and (with a real broker)
//! what Kafka holds is what qof writes to a file.
//!
//! Without a broker (always run): brokers that never answer leave every record lost, counted
//! (at the end after --export-timeout, at a full buffer that drops, or when the input gave up
//! waiting for one), and the counts add up to the records a JSON file gets.
//!
//! With Apache Kafka (`#[ignore]`d: `scripts/test` runs them when `scripts/kafka-broker fetch`
//! can get the jars from Maven Central): a capture's records published to a one-node broker
//! are read back by kcat (an independent consumer) and by `qofdump --kafka`, as JSON and as
//! IPFIX, and equal the JSON file's lines, one partition per flow key; and on a 3-node cluster
//! whose partition leader is killed mid-run, every record arrives once, or the loss counter
//! says how many did not.

mod common;
use common::*;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap")
}

fn many_flows() -> PathBuf {
    corpus_dir().join("slips__test-cc__test-cc-capture-1.pcap")
}

/// The JSON lines qof writes to a file for `input` (extra options as for the Kafka run).
fn json_file_lines(input: &Path, extra: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flows.json");
    let o = run(qof()
        .arg("--in")
        .arg(input)
        .args(["--format", "json", "--out"])
        .arg(&out)
        .args(extra));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The summary line's counts: (records exported, delivered, lost, of them at the full queue).
fn summary_counts(stderr: &str) -> (u64, u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("qof: ") && l.contains("flow records exported"))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    let number_before = |what: &str| -> u64 {
        let at = line
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} not in {line}"));
        line[..at]
            .trim_end()
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let overflow = if line.contains("at the full export queue") {
        number_before(" of them at the full export queue")
    } else {
        0
    };
    (
        number_before(" flow records exported"),
        number_before(" delivered (acknowledged by all in-sync Kafka replicas)"),
        number_before(" records lost"),
        overflow,
    )
}

#[test]
fn unreachable_brokers_count_every_record_lost() {
    let expected = json_file_lines(&sample(), &[]).len() as u64;
    let t = Instant::now();
    let o = run(qof().arg("--in").arg(sample()).args([
        "--kafka",
        &format!("127.0.0.1:{}", closed_port()),
        "--kafka-topic",
        "flows",
        "--export-timeout",
        "1",
    ]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(
        summary_counts(&stderr),
        (expected, 0, expected, 0),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{expected} messages were not acknowledged within 1 s (--export-timeout): counted lost"
        )),
        "{stderr}"
    );
    // The metadata wait at the start and the end's --export-timeout, not librdkafka's minutes.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn a_full_buffer_that_drops_counts_what_it_dropped() {
    let expected = json_file_lines(&many_flows(), &[]).len() as u64;
    let o = run(qof().arg("--in").arg(many_flows()).args([
        "--kafka",
        &format!("127.0.0.1:{}", closed_port()),
        "--kafka-topic",
        "flows",
        "--export-queue-bytes",
        "8K",
        "--export-queue-full",
        "drop",
        "--export-timeout",
        "0",
    ]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let (exported, delivered, lost, overflow) = summary_counts(&stderr);
    assert_eq!(
        (exported, delivered, lost),
        (expected, 0, expected),
        "{stderr}"
    );
    // 8 KiB holds a few dozen JSON records: most of the 439 are dropped at the buffer, the
    // ones it held are given up at the end.
    assert!(overflow > expected / 2 && overflow < expected, "{stderr}");
    assert!(
        stderr.contains("the Kafka buffer is full (--export-queue-bytes 8192)"),
        "{stderr}"
    );
}

#[test]
fn a_full_buffer_that_waits_gives_up_after_the_timeout() {
    let expected = json_file_lines(&many_flows(), &[]).len() as u64;
    let o = run(qof().arg("--in").arg(many_flows()).args([
        "--kafka",
        &format!("127.0.0.1:{}", closed_port()),
        "--kafka-topic",
        "flows",
        "--export-queue-bytes",
        "8K",
        "--export-timeout",
        "1",
    ]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the brokers acknowledged nothing for 1 s (--export-timeout) while the Kafka buffer was full: stopped reading"),
        "{stderr}"
    );
    // Reading stopped early, the flows in memory were still handed over: every record made
    // is counted, none delivered.
    let (exported, delivered, lost, overflow) = summary_counts(&stderr);
    assert_eq!((delivered, lost, overflow), (0, exported, 0), "{stderr}");
    assert!(exported > 0 && exported <= expected, "{stderr}");
}

#[test]
fn kafka_options_are_checked() {
    for (args, what) in [
        (
            &["--kafka", "h:9092"][..],
            "--kafka needs --kafka-topic TOPIC",
        ),
        (
            &["--kafka", "h:9092", "--kafka-topic", "a b"],
            "--kafka-topic \"a b\"",
        ),
        (&["--kafka-topic", "t"], "need --kafka BROKERS"),
        (
            &["--kafka", "h:9092", "--kafka-topic", "t", "--ipfix", "tcp"],
            "cannot be combined with --ipfix",
        ),
        (
            &["--kafka", "h:9092", "--kafka-topic", "t", "--out", "x"],
            "records go to the Kafka topic",
        ),
        (
            &[
                "--kafka",
                "h:9092",
                "--kafka-topic",
                "t",
                "--kafka-sasl",
                "scram-sha-256",
            ],
            "give --kafka-user USER",
        ),
        (
            &[
                "--kafka",
                "h:9092",
                "--kafka-topic",
                "t",
                "--kafka-option",
                "linger.ms",
            ],
            "expected KEY=VALUE",
        ),
        (
            &[
                "--kafka",
                "h:9092",
                "--kafka-topic",
                "t",
                "--kafka-option",
                "no.such.property=1",
            ],
            "no.such.property",
        ),
    ] {
        let o = run(qof().arg("--in").arg(sample()).args(args));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(
            stderr.starts_with("qof: ") && stderr.contains(what),
            "{args:?}: {stderr}"
        );
    }
}

// ---- With Apache Kafka (scripts/kafka-broker) ----

/// A cluster of scripts/kafka-broker in a folder of its own, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bootstrap: String,
}

impl Cluster {
    fn start(nodes: u32) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker"))
            .args(["start", "--nodes", &nodes.to_string()])
            .env("QOF_KAFKA_DIR", dir.path().join("run"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "scripts/kafka-broker start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let bootstrap = stdout.lines().last().unwrap().trim().to_string();
        assert_eq!(bootstrap.split(',').count(), nodes as usize, "{stdout}");
        Cluster { dir, bootstrap }
    }

    fn script(&self, args: &[&str]) -> Output {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker"))
            .args(args)
            .env("QOF_KAFKA_DIR", self.dir.path().join("run"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script(&["stop"]);
    }
}

/// What kcat reads of `topic`, from the start to the end: (partition, key, payload) each.
fn kcat(bootstrap: &str, topic: &str) -> Vec<(i32, String, String)> {
    let o = run(Command::new("kcat").args([
        "-b",
        bootstrap,
        "-t",
        topic,
        "-C",
        "-e",
        "-q",
        "-f",
        "%p\t%k\t%s\n",
    ]));
    assert!(
        o.status.success(),
        "kcat: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let p = f.next().unwrap().parse().unwrap();
            (
                p,
                f.next().unwrap().to_string(),
                f.next().unwrap().to_string(),
            )
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
#[ignore = "needs Apache Kafka (scripts/kafka-broker fetches it from Maven Central)"]
fn kcat_and_qofdump_read_what_the_file_has() {
    let cluster = Cluster::start(1);
    let input = many_flows();
    // flowhash: each line carries the flowKeyHash its message is keyed by.
    let file = json_file_lines(&input, &["--plugin", "flowhash"]);
    let o = run(qof().arg("--in").arg(&input).args([
        "--plugin",
        "flowhash",
        "--kafka",
        &cluster.bootstrap,
        "--kafka-topic",
        "flows-json",
    ]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let n = file.len() as u64;
    assert_eq!(summary_counts(&stderr), (n, n, 0, 0), "{stderr}");

    let got = kcat(&cluster.bootstrap, "flows-json");
    assert_eq!(
        got.len(),
        file.len(),
        "kcat read as many records as the file has"
    );
    let payloads: Vec<String> = got.iter().map(|(_, _, s)| s.clone()).collect();
    assert_eq!(sorted(payloads), sorted(file.clone()));
    // The key is the record's flowKeyHash, and one key lives in one partition.
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for (p, key, payload) in &got {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(key, &format!("{:016x}", v["flowKeyHash"].as_u64().unwrap()));
        assert_eq!(
            *partition_of.entry(key).or_insert(*p),
            *p,
            "key {key} in two partitions"
        );
    }
    let partitions: std::collections::BTreeSet<i32> = got.iter().map(|(p, _, _)| *p).collect();
    assert!(
        partitions.len() > 1,
        "the flows spread over the partitions: {partitions:?}"
    );

    // The project's own reader prints the same lines.
    let o = run(qofdump().args(["--kafka", &cluster.bootstrap, "--kafka-topic", "flows-json"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(sorted(lines), sorted(file.clone()));

    // IPFIX messages, each with its templates: qofdump decodes them to the same records.
    let o = run(qof().arg("--in").arg(&input).args([
        "--plugin",
        "flowhash",
        "--format",
        "ipfix",
        "--kafka",
        &cluster.bootstrap,
        "--kafka-topic",
        "flows-ipfix",
    ]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(summary_counts(&stderr), (n, n, 0, 0), "{stderr}");
    let o = run(qofdump().args([
        "--kafka",
        &cluster.bootstrap,
        "--kafka-topic",
        "flows-ipfix",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let decoded: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut expected: Vec<serde_json::Value> = file
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |v: &serde_json::Value| v.to_string();
    let mut decoded = decoded;
    decoded.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(decoded, expected);
}

/// A pcap written slowly to qof's standard input, so that the run lasts `secs` seconds.
fn feed_slowly(mut stdin: std::process::ChildStdin, pcap: Vec<u8>, secs: u64) {
    let chunks = 50;
    let step = pcap.len().div_ceil(chunks);
    for c in pcap.chunks(step) {
        if stdin.write_all(c).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(secs * 1000 / chunks as u64));
    }
}

#[test]
#[ignore = "needs Apache Kafka (scripts/kafka-broker fetches it from Maven Central)"]
fn a_killed_partition_leader_loses_nothing_acknowledged() {
    let cluster = Cluster::start(3);
    let input = many_flows();
    let file = json_file_lines(&input, &["--plugin", "flowhash"]);
    // Created by qof's first record: 4 partitions, 3 replicas, 2 in sync at least.
    let topic = "flows-failover";

    let mut child = qof()
        .args(["--in", "-", "--plugin", "flowhash"])
        .args([
            "--kafka",
            &cluster.bootstrap,
            "--kafka-topic",
            topic,
            "--export-timeout",
            "60",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let pcap = std::fs::read(&input).unwrap();
    let feeder = std::thread::spawn(move || feed_slowly(stdin, pcap, 10));
    std::thread::sleep(Duration::from_secs(3));
    let leader = String::from_utf8_lossy(&cluster.script(&["leader", topic, "0"]).stdout)
        .trim()
        .to_string();
    assert!(!leader.is_empty(), "partition 0 has a leader");
    let killed = cluster.script(&["kill", &leader]);
    assert!(
        killed.status.success(),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    feeder.join().unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let (exported, delivered, lost, _) = summary_counts(&stderr);
    assert_eq!(exported, file.len() as u64, "{stderr}");
    assert_eq!(delivered + lost, exported, "{stderr}");

    let got = kcat(&cluster.bootstrap, topic);
    let mut count: BTreeMap<&str, u32> = BTreeMap::new();
    for (_, _, payload) in &got {
        *count.entry(payload.as_str()).or_default() += 1;
    }
    // Idempotent delivery: nothing twice, whatever was retried.
    assert!(count.values().all(|&c| c == 1), "a record arrived twice");
    for line in &count {
        assert!(
            file.contains(&line.0.to_string()),
            "not a record of the file: {}",
            line.0
        );
    }
    // Every acknowledged record is there; missing ones are exactly the ones counted lost
    // (a message purged in flight may still have arrived: at most `lost` more).
    let arrived = got.len() as u64;
    assert!(
        arrived >= delivered && arrived - delivered <= lost,
        "{arrived} arrived; {stderr}"
    );
    assert_eq!(
        lost, 0,
        "a 60 s --export-timeout outlasts the leader election: {stderr}"
    );
    assert_eq!(arrived, exported);
    assert!(o.status.success(), "{stderr}");
}
