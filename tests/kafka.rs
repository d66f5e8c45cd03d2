//! `--kafka`: every record is counted once, as delivered or lost, and (with a real broker)
//! what Kafka holds is what qof writes to a file.
//!
//! Without a broker (always run): brokers that never answer leave every record lost, counted
//! (at the end after --export-timeout, at a full buffer that drops, or when the input gave up
//! waiting for one), and the counts add up to the records a JSON file gets.
//!
//! With a broker of `scripts/kafka-broker` (Apache Kafka from Maven Central; where that cannot
//! be reached, `scripts/test` sets QOF_KAFKA_BROKER=tansu, a Kafka-compatible broker): a
//! capture's records published to one node are read back by independent consumers
//! (kafka-python, a pure-Python client, and kcat with Apache Kafka) and by `qofdump --kafka`,
//! as JSON and as IPFIX, and equal the JSON file's lines, one partition per flow key; a broker
//! that starts after qof gets every record; and (Apache Kafka only, `#[ignore]`d unless
//! `scripts/test` could fetch it) on a 3-node cluster whose partition leader is killed mid-run,
//! every record arrives once, or the loss counter says how many did not.

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

// ---- With a broker of scripts/kafka-broker ----

fn broker_script() -> Command {
    let mut c = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker"));
    c.stdin(Stdio::null());
    c
}

/// A cluster of scripts/kafka-broker in a folder of its own, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bootstrap: String,
    /// `apache` or `tansu`.
    kind: String,
}

impl Cluster {
    fn start(nodes: u32, port: Option<u16>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = broker_script();
        cmd.args(["start", "--nodes", &nodes.to_string()])
            .env("QOF_KAFKA_DIR", dir.path().join("run"));
        if let Some(p) = port {
            cmd.args(["--port", &p.to_string()]);
        }
        let o = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "scripts/kafka-broker start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let bootstrap = stdout.lines().last().unwrap().trim().to_string();
        assert_eq!(bootstrap.split(',').count(), nodes as usize, "{stdout}");
        let mut c = Cluster {
            dir,
            bootstrap,
            kind: String::new(),
        };
        c.kind = String::from_utf8_lossy(&c.script(&["kind"]).stdout)
            .trim()
            .to_string();
        eprintln!("broker: {} at {}", c.kind, c.bootstrap);
        c
    }

    /// Options qof needs for this broker: tansu 0.6.0's memory storage keeps only one record
    /// of a batch of several (its offsets count batches), so with tansu each batch is one
    /// record. Apache Kafka takes qof's batches as they are.
    fn producer_options(&self) -> Vec<&'static str> {
        if self.kind == "tansu" {
            vec!["--kafka-option", "batch.num.messages=1"]
        } else {
            Vec::new()
        }
    }

    fn script(&self, args: &[&str]) -> Output {
        broker_script()
            .args(args)
            .env("QOF_KAFKA_DIR", self.dir.path().join("run"))
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script(&["stop"]);
    }
}

/// (partition, key, payload) of each message.
type Messages = Vec<(i32, String, String)>;

fn parse_messages(stdout: &[u8]) -> Messages {
    String::from_utf8_lossy(stdout)
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

/// What kafka-python (a pure-Python client, nothing shared with qof's librdkafka) reads of
/// `topic`: QOF_KAFKA_PYTHON, or the virtual environment scripts/test makes.
fn kafka_python(bootstrap: &str, topic: &str) -> Messages {
    let python = std::env::var_os("QOF_KAFKA_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kafka/venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        python.exists(),
        "{python:?}: run scripts/test (it installs kafka-python there) or set QOF_KAFKA_PYTHON"
    );
    let o = run(Command::new(python)
        .arg(tools_dir().join("kafka_consume.py"))
        .args([bootstrap, topic]));
    assert!(
        o.status.success(),
        "kafka-python: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    parse_messages(&o.stdout)
}

/// What kcat reads of `topic` (librdkafka 2.0 of Debian's kcat cannot talk to tansu: Apache
/// Kafka only).
fn kcat(bootstrap: &str, topic: &str) -> Messages {
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
    parse_messages(&o.stdout)
}

/// Every independent consumer's reading of `topic`, by name.
fn consumers(cluster: &Cluster, topic: &str) -> Vec<(&'static str, Messages)> {
    let mut all = vec![("kafka-python", kafka_python(&cluster.bootstrap, topic))];
    if cluster.kind == "apache" {
        all.push(("kcat", kcat(&cluster.bootstrap, topic)));
    }
    all
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn a_broker_holds_exactly_the_files_records() {
    let cluster = Cluster::start(1, None);
    let input = many_flows();
    // flowhash: each line carries the flowKeyHash its message is keyed by.
    let file = json_file_lines(&input, &["--plugin", "flowhash"]);
    let o = run(qof()
        .arg("--in")
        .arg(&input)
        .args(cluster.producer_options())
        .args([
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

    for (consumer, got) in consumers(&cluster, "flows-json") {
        assert_eq!(
            got.len(),
            file.len(),
            "{consumer} read as many records as the file has"
        );
        let payloads: Vec<String> = got.iter().map(|(_, _, s)| s.clone()).collect();
        assert_eq!(sorted(payloads), sorted(file.clone()), "{consumer}");
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
    }

    // The project's own reader prints the same lines.
    let o = run(qofdump().args(["--kafka", &cluster.bootstrap, "--kafka-topic", "flows-json"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(sorted(lines), sorted(file.clone()));

    // IPFIX messages, each with its templates: qofdump decodes them to the same records.
    let o = run(qof()
        .arg("--in")
        .arg(&input)
        .args(cluster.producer_options())
        .args([
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
    let mut decoded: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut expected: Vec<serde_json::Value> = file
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        decoded.len(),
        expected.len(),
        "qofdump decoded every IPFIX record"
    );
    let key = |v: &serde_json::Value| v.to_string();
    decoded.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(decoded, expected);
}

/// Brokers that are not up yet when qof starts: the records wait in the buffer, and all are
/// delivered once a broker listens.
#[test]
fn a_broker_that_starts_late_gets_every_record() {
    let input = many_flows();
    let file = json_file_lines(&input, &[]);
    let port = closed_port();
    // (Known before the broker runs: the kind scripts/kafka-broker will start.)
    let tansu = std::env::var("QOF_KAFKA_BROKER").is_ok_and(|b| b == "tansu");
    let child = qof()
        .arg("--in")
        .arg(&input)
        .args(if tansu {
            &["--kafka-option", "batch.num.messages=1"][..]
        } else {
            &[][..]
        })
        .args([
            "--kafka",
            &format!("127.0.0.1:{port}"),
            "--kafka-topic",
            "late",
        ])
        .args(["--export-timeout", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let cluster = Cluster::start(1, Some(port));
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let n = file.len() as u64;
    assert_eq!(summary_counts(&stderr), (n, n, 0, 0), "{stderr}");
    for (consumer, got) in consumers(&cluster, "late") {
        assert_eq!(got.len(), file.len(), "{consumer} read every record");
        let payloads: Vec<String> = got.into_iter().map(|(_, _, s)| s).collect();
        assert_eq!(sorted(payloads), sorted(file.clone()), "{consumer}");
    }
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
#[ignore = "needs a 3-node Apache Kafka (scripts/kafka-broker fetches it from Maven Central): scripts/test runs it when it can"]
fn a_killed_partition_leader_loses_nothing_acknowledged() {
    let cluster = Cluster::start(3, None);
    assert_eq!(cluster.kind, "apache");
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

    for (consumer, got) in consumers(&cluster, topic) {
        let mut count: BTreeMap<&str, u32> = BTreeMap::new();
        for (_, _, payload) in &got {
            *count.entry(payload.as_str()).or_default() += 1;
        }
        // Idempotent delivery: nothing twice, whatever was retried.
        assert!(
            count.values().all(|&c| c == 1),
            "{consumer}: a record arrived twice"
        );
        for line in count.keys() {
            assert!(
                file.iter().any(|f| f == line),
                "{consumer}: not a record of the file: {line}"
            );
        }
        // Every acknowledged record is there; missing ones are counted lost (a message purged
        // in flight may still have arrived: at most `lost` more than delivered).
        let arrived = got.len() as u64;
        assert!(
            arrived >= delivered && arrived - delivered <= lost,
            "{consumer}: {arrived} arrived; {stderr}"
        );
        assert_eq!(arrived, exported, "{consumer}: {stderr}");
    }
    assert_eq!(
        lost, 0,
        "a 60 s --export-timeout outlasts the leader election: {stderr}"
    );
    assert!(o.status.success(), "{stderr}");
}

/// `qofctl statistics` on a running qof shows Kafka as its collector: a record expired by
/// `qofctl expire-all` is one message handed to librdkafka and held there (no broker
/// answers), neither delivered nor lost; at SIGTERM it is counted lost. A live capture on the
/// loopback interface (a file read would leave no time to ask), skipped without CAP_NET_RAW.
#[test]
fn qofctl_sees_the_kafka_export() {
    if socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::RAW, None).is_err() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ctl = tmp.path().join("qof.ctl");
    let target = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let brokers = format!("127.0.0.1:{}", closed_port());
    let child = qof()
        .args([
            "--in",
            "int:lo",
            "--filter",
            &format!("udp and dst port {port}"),
        ])
        .arg("--ctl")
        .arg(&ctl)
        .args(["--kafka", &brokers, "--kafka-topic", "flows"])
        .args(["--export-timeout", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // (Killed if an assertion fails first.)
    struct Kill(Option<std::process::Child>);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(c) = &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut child = Kill(Some(child));
    let qofctl = |command: &str| -> String {
        let o = run(Command::new(env!("CARGO_BIN_EXE_qofctl"))
            .arg("-c")
            .arg(&ctl)
            .arg(command));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("the control socket", &|| {
        std::os::unix::net::UnixStream::connect(&ctl).is_ok()
    });
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // (Sent until qof sees it: its packet socket may not be bound to lo yet.)
    wait_for("the flow in memory", &|| {
        sender.send_to(&[7; 40], ("127.0.0.1", port)).unwrap();
        qofctl("dump-flows").starts_with("1 flows in memory")
    });
    let peer = format!("collector kafka {brokers} topic flows: ");
    let line = |stats: &str| -> String {
        stats
            .lines()
            .find(|l| l.starts_with(&peer))
            .unwrap_or_else(|| panic!("no {peer:?} in {stats}"))
            .to_string()
    };
    assert!(
        line(&qofctl("statistics")).starts_with(&format!(
            "{peer}0 records delivered, 0 lost (0 at the full queue), 0 messages queued, 0 \
             messages (0 octets) sent"
        )),
        "{}",
        qofctl("statistics")
    );
    assert_eq!(
        qofctl("expire-all"),
        "1 flows expired: their records are exported\n"
    );
    wait_for("the record's message held by librdkafka", &|| {
        line(&qofctl("statistics")).contains(" 1 messages queued, 1 messages (")
    });
    let stats = line(&qofctl("statistics"));
    assert!(
        stats.starts_with(&format!("{peer}0 records delivered, 0 lost")),
        "{stats}"
    );

    let mut c = child.0.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = c.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(summary_counts(&stderr), (1, 0, 1, 0), "{stderr}");
}
