//! Issue 15, items 1-3, end to end through the `qof` command on generated captures:
//! softflowd's per-protocol timeouts (`--timeout NAME=TIME`), sampling (`--sampler`: every
//! N-th packet, one of each N at random, whole flows by hash; as `ipfixDump` and nfcapd read
//! its description), softflowd's track levels, ipt-netflow's aggregation rules and the DSCP
//! and outer VLAN as key fields. Every option's bad inputs are refused with one line.

mod common;

use common::{qof, run};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// One packet of a generated capture.
#[derive(Clone, Debug)]
struct Pkt {
    ms: u64,
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    tcp_flags: u8,
    tos: u8,
    /// VLAN ids, outer first.
    vlans: Vec<u16>,
}

impl Pkt {
    fn new(ms: u64, proto: u8, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Pkt {
        Pkt {
            ms,
            proto,
            src,
            dst,
            sport,
            dport,
            tcp_flags: if proto == TCP { 0x10 } else { 0 },
            tos: 0,
            vlans: Vec::new(),
        }
    }

    /// The same flow, the other way.
    fn back(&self, ms: u64) -> Pkt {
        Pkt {
            ms,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..self.clone()
        }
    }
}

/// An Ethernet pcap of `pkts` (IPv4 with 10 octets of payload after the transport header).
fn pcap(pkts: &[Pkt]) -> Vec<u8> {
    let mut f = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for p in pkts {
        let l4: Vec<u8> = match p.proto {
            TCP => {
                let mut t = Vec::new();
                t.extend_from_slice(&p.sport.to_be_bytes());
                t.extend_from_slice(&p.dport.to_be_bytes());
                t.extend_from_slice(&1000u32.to_be_bytes());
                t.extend_from_slice(&2000u32.to_be_bytes());
                t.extend_from_slice(&[0x50, p.tcp_flags, 0xff, 0xff, 0, 0, 0, 0]);
                t
            }
            UDP => {
                let mut t = Vec::new();
                t.extend_from_slice(&p.sport.to_be_bytes());
                t.extend_from_slice(&p.dport.to_be_bytes());
                t.extend_from_slice(&18u16.to_be_bytes());
                t.extend_from_slice(&[0, 0]);
                t
            }
            // ICMP echo request.
            _ => vec![8, 0, 0, 0, 0, 1, 0, 1],
        };
        let total = 20 + l4.len() + 10;
        let mut ip = vec![
            0x45,
            p.tos,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            p.proto,
            0,
            0,
        ];
        ip.extend_from_slice(&p.src);
        ip.extend_from_slice(&p.dst);
        ip.extend_from_slice(&l4);
        ip.extend_from_slice(&[0xab; 10]);
        let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for (i, v) in p.vlans.iter().enumerate() {
            // An 802.1ad S-tag outside, 802.1Q inside.
            let tpid: u16 = if i == 0 && p.vlans.len() > 1 {
                0x88a8
            } else {
                0x8100
            };
            frame.extend_from_slice(&tpid.to_be_bytes());
            frame.extend_from_slice(&v.to_be_bytes());
        }
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        frame.extend_from_slice(&ip);
        let secs = 1_700_000_000 + p.ms / 1000;
        let usecs = (p.ms % 1000) * 1000;
        for v in [
            secs as u32,
            usecs as u32,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&frame);
    }
    f
}

fn write_pcap(dir: &Path, name: &str, pkts: &[Pkt]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pcap(pkts)).unwrap();
    p
}

/// qof's JSON records for `capture` with `args`; the run must succeed.
fn records(capture: &Path, args: &[&str]) -> Vec<Value> {
    let out = run(qof()
        .arg("--in")
        .arg(capture)
        .args(["--format", "json"])
        .args(args));
    assert!(
        out.status.success(),
        "qof {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// qof refuses `args` with one line on standard error that contains `says`.
fn refused(capture: &Path, args: &[&str], says: &str) {
    let out = run(qof()
        .arg("--in")
        .arg(capture)
        .args(["--format", "json"])
        .args(args));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line:\n{err}"
    );
    assert!(
        err.contains(says),
        "{args:?}: {err:?} does not say {says:?}"
    );
    assert!(out.stdout.is_empty(), "{args:?}: records written");
}

/// Records per protocol.
fn per_proto(recs: &[Value]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for r in recs {
        *m.entry(n(r, "protocolIdentifier")).or_insert(0) += 1;
    }
    m
}

// ---------------------------------------------------------------------------------------------
// 2. Timeouts.

/// A TCP, a UDP and an ICMP flow, each with two packets, a pause of 40 s, two more.
fn paused_flows() -> Vec<Pkt> {
    let a = [10, 0, 0, 1];
    let b = [10, 0, 0, 2];
    let mut v = Vec::new();
    for (i, t) in [0u64, 1_000, 41_000, 42_000].into_iter().enumerate() {
        let mut tcp = Pkt::new(t, TCP, a, b, 40_000, 80);
        if i == 0 {
            tcp.tcp_flags = 0x02;
        }
        v.push(tcp);
        v.push(Pkt::new(t + 10, UDP, a, b, 40_001, 53));
        v.push(Pkt::new(t + 20, ICMP, a, b, 0, 0));
    }
    v
}

#[test]
fn a_pause_past_one_protocols_timeout_splits_exactly_its_flows() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "paused.pcap", &paused_flows());
    // qof's default idle timeout (30 s) splits every one of them.
    let all = per_proto(&records(&cap, &[]));
    assert_eq!(all, BTreeMap::from([(1, 2), (6, 2), (17, 2)]));
    // A general timeout of a minute keeps each whole; one protocol's 20 s splits only it.
    let none = per_proto(&records(&cap, &["--timeout", "general=1m"]));
    assert_eq!(none, BTreeMap::from([(1, 1), (6, 1), (17, 1)]));
    for (name, proto) in [("tcp", 6u64), ("udp", 17), ("icmp", 1)] {
        let arg = format!("{name}=20s");
        let recs = records(&cap, &["--timeout", "general=60", "--timeout", &arg]);
        for (p, count) in per_proto(&recs) {
            assert_eq!(count, if p == proto { 2 } else { 1 }, "{arg}: protocol {p}");
        }
        // The split is the idle timeout's (flowEndReason 1), between the pause's packets.
        let split: Vec<&Value> = recs
            .iter()
            .filter(|r| n(r, "protocolIdentifier") == proto)
            .collect();
        assert_eq!(n(split[0], "flowEndReason"), 1, "{arg}");
        assert_eq!(n(split[0], "packetDeltaCount"), 2, "{arg}");
        assert_eq!(n(split[1], "packetDeltaCount"), 2, "{arg}");
    }
    // The YAML `timeouts:` map does the same, and the command line wins over it.
    let yaml = tmp.path().join("t.yaml");
    std::fs::write(&yaml, "timeouts:\n  general: 1m\n  udp: 20s\n").unwrap();
    let y = yaml.to_str().unwrap();
    let recs = per_proto(&records(&cap, &["--yaml", y]));
    assert_eq!(recs, BTreeMap::from([(1, 1), (6, 1), (17, 2)]));
    let recs = per_proto(&records(&cap, &["--yaml", y, "--timeout", "udp=1h"]));
    assert_eq!(recs, BTreeMap::from([(1, 1), (6, 1), (17, 1)]));
    // With the wheel looked at only every 50 s (expint), a packet past its flow's timeout
    // still ends the flow when it comes.
    let recs = per_proto(&records(
        &cap,
        &[
            "--timeout",
            "general=60",
            "--timeout",
            "udp=20",
            "--timeout",
            "expint=50",
        ],
    ));
    assert_eq!(recs, BTreeMap::from([(1, 1), (6, 1), (17, 2)]));
}

#[test]
fn tcp_rst_and_fin_linger_and_maxlife() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    // A RST at 1 s and a stray ACK 2 s later.
    let mut rst = vec![Pkt::new(0, TCP, a, b, 40_000, 80)];
    let mut r = rst[0].back(1_000);
    r.tcp_flags = 0x04;
    rst.push(r);
    rst.push(Pkt::new(3_000, TCP, a, b, 40_000, 80));
    // Packet time goes on (another flow) past the linger.
    rst.push(Pkt::new(20_000, UDP, a, b, 1, 2));
    let cap = write_pcap(tmp.path(), "rst.pcap", &rst);
    let tcp = |recs: Vec<Value>| -> Vec<Value> {
        recs.into_iter()
            .filter(|r| n(r, "protocolIdentifier") == 6)
            .collect()
    };
    // qof ends a connection at its RST: the stray ACK is a flow of its own.
    let recs = tcp(records(&cap, &[]));
    assert_eq!(recs.len(), 2);
    assert_eq!(n(&recs[0], "flowEndReason"), 3);
    // softflowd's tcp.rst: the flow stays 10 s after the RST, takes the ACK, and ends
    // (end of flow) when the 10 s have passed without a packet.
    let recs = tcp(records(&cap, &["--timeout", "tcp.rst=10"]));
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(
        n(&recs[0], "packetDeltaCount") + n(&recs[0], "reversePacketDeltaCount"),
        3
    );
    assert_eq!(n(&recs[0], "flowEndReason"), 3);
    // ... and no longer: 1 s of linger lets the ACK 2 s later start a new flow.
    assert_eq!(tcp(records(&cap, &["--timeout", "tcp.rst=1"])).len(), 2);

    // Both FINs acknowledged, then a late ACK.
    let mut fin = vec![Pkt::new(0, TCP, a, b, 40_000, 80)];
    let mut f1 = fin[0].clone();
    f1.ms = 100;
    f1.tcp_flags = 0x11;
    let mut f2 = f1.back(200);
    f2.tcp_flags = 0x11;
    let mut f3 = f1.clone();
    f3.ms = 300;
    f3.tcp_flags = 0x10;
    fin.extend([f1, f2, f3, Pkt::new(2_300, TCP, a, b, 40_000, 80)]);
    let cap = write_pcap(tmp.path(), "fin.pcap", &fin);
    assert_eq!(records(&cap, &[]).len(), 2);
    assert_eq!(records(&cap, &["--timeout", "tcp.fin=5s"]).len(), 1);

    // A flow with a packet every 20 s for 400 s: the active timeout (300 s) continues it in
    // a second record; maxlife=0 turns it off; maxlife=100 makes four records.
    let long: Vec<Pkt> = (0..=20)
        .map(|i| Pkt::new(i * 20_000, UDP, a, b, 5000, 5001))
        .collect();
    let cap = write_pcap(tmp.path(), "long.pcap", &long);
    assert_eq!(records(&cap, &[]).len(), 2);
    assert_eq!(records(&cap, &["--timeout", "maxlife=0"]).len(), 1);
    let recs = records(&cap, &["--timeout", "maxlife=100"]);
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert!(recs[..3].iter().all(|r| n(r, "flowEndReason") == 2));
}

#[test]
fn bad_timeouts_are_one_line_each() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "one.pcap", &paused_flows()[..1]);
    for (arg, says) in [
        ("tcpp=5", "unknown timeout name \"tcpp\""),
        ("tcp", "expected NAME=TIME"),
        ("udp=5q", "unknown unit"),
        ("udp=", "not a time"),
        ("udp=m", "needs a number"),
        ("udp=-3", "not a time"),
        ("udp=0", "at least 1 s"),
        ("general=0", "at least 1 s"),
        ("icmp=53w", "more than a year"),
        ("tcp=99999999999999999999", "too large"),
        ("expint=1x", "unknown unit"),
    ] {
        refused(&cap, &["--timeout", arg], says);
    }
    for (yaml, says) in [
        ("timeouts:\n  tcpp: 5\n", "unknown timeout name"),
        ("timeouts:\n  udp: 5q\n", "timeouts: udp"),
        ("timeouts:\n  general: 5\nidle-timeout: 5\n", "idle-timeout"),
        (
            "timeouts:\n  maxlife: 5\nactive-timeout: 50\n",
            "active-timeout",
        ),
        ("timeouts: 5\n", "line 1"),
    ] {
        let y = tmp.path().join("bad.yaml");
        std::fs::write(&y, yaml).unwrap();
        refused(&cap, &["--yaml", y.to_str().unwrap()], says);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Sampling.

/// `count` single-packet UDP flows, source port 1000 + i, 1 ms apart.
fn numbered(count: u16) -> Vec<Pkt> {
    (0..count)
        .map(|i| {
            Pkt::new(
                u64::from(i),
                UDP,
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                1000 + i,
                53,
            )
        })
        .collect()
}

/// The packets metered, by their number (the flows' source ports less 1000).
fn numbers(recs: &[Value]) -> BTreeSet<u64> {
    let set: BTreeSet<u64> = recs
        .iter()
        .map(|r| n(r, "sourceTransportPort") - 1000)
        .collect();
    assert_eq!(set.len(), recs.len(), "one record per packet");
    assert!(recs.iter().all(|r| n(r, "packetDeltaCount") == 1));
    set
}

#[test]
fn deterministic_sampling_meters_exactly_every_nth_packet() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "numbered.pcap", &numbered(1000));
    for workers in ["1", "2"] {
        for n_ in [2u64, 7, 100] {
            let arg = format!("deterministic:{n_}");
            let got = numbers(&records(&cap, &["--sampler", &arg, "--workers", workers]));
            let want: BTreeSet<u64> = (0..1000).filter(|i| i % n_ == n_ - 1).collect();
            assert_eq!(got, want, "{arg} --workers {workers}");
        }
    }
    // The YAML key does the same.
    let y = tmp.path().join("s.yaml");
    std::fs::write(&y, "sampler: deterministic:10\n").unwrap();
    let got = numbers(&records(&cap, &["--yaml", y.to_str().unwrap()]));
    assert_eq!(got, (0..1000).filter(|i| i % 10 == 9).collect());
}

#[test]
fn random_sampling_takes_one_packet_of_each_n_at_a_random_place() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "numbered.pcap", &numbered(7000));
    let got = numbers(&records(&cap, &["--sampler", "random:7:42"]));
    // Random 1-out-of-7 (RFC 5475 n-out-of-N): exactly one packet of each 7 in a row.
    assert_eq!(got.len(), 1000);
    let mut places = [0u32; 7];
    for w in 0..1000u64 {
        let inside: Vec<u64> = got.range(w * 7..w * 7 + 7).copied().collect();
        assert_eq!(inside.len(), 1, "window {w}: {inside:?}");
        places[(inside[0] - w * 7) as usize] += 1;
    }
    // Each place about 1000/7 = 143 times (binomial sd 11): within 6 sd, so not systematic.
    assert!(
        places.iter().all(|&p| (77..=209).contains(&p)),
        "{places:?}"
    );
    // The seed decides: the same seed the same packets, another seed others; with workers
    // the same as without (the choice is made before the packets are shared out).
    assert_eq!(
        numbers(&records(
            &cap,
            &["--sampler", "random:7:42", "--workers", "2"]
        )),
        got
    );
    let other = numbers(&records(&cap, &["--sampler", "random:7:43"]));
    assert_eq!(other.len(), 1000);
    assert!(
        other.intersection(&got).count() < 300,
        "seeds 42 and 43 agree too much"
    );
    // Without a seed, about 1/N still (two runs differ).
    let a = numbers(&records(&cap, &["--sampler", "random:7"]));
    assert_eq!(a.len(), 1000);
}

/// `flows` UDP flows from 10.1.x.y:port to 10.2.0.1:53, each with 2 packets one way and 1 back.
fn two_way_flows(flows: u32) -> Vec<Pkt> {
    let mut v = Vec::new();
    for i in 0..flows {
        let src = [10, 1, (i >> 8) as u8, i as u8];
        let p = Pkt::new(
            u64::from(i) * 3,
            UDP,
            src,
            [10, 2, 0, 1],
            2000 + (i % 7) as u16,
            53,
        );
        v.push(p.clone());
        v.push(p.back(u64::from(i) * 3 + 1));
        v.push(Pkt {
            ms: u64::from(i) * 3 + 2,
            ..p
        });
    }
    v
}

#[test]
fn hash_sampling_keeps_about_one_flow_in_n_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "twoway.pcap", &two_way_flows(4000));
    let recs = records(&cap, &["--sampler", "hash:8:12345"]);
    // About 500 of 4000 flows (binomial sd 21): within 5 sd.
    assert!((395..=605).contains(&recs.len()), "{} flows", recs.len());
    // Each chosen flow whole: both its forward packets and its reverse one.
    for r in &recs {
        assert_eq!(n(r, "packetDeltaCount"), 2, "{r}");
        assert_eq!(n(r, "reversePacketDeltaCount"), 1, "{r}");
    }
    let flows = |recs: &[Value]| -> BTreeSet<String> {
        recs.iter().map(|r| s(r, "sourceIPv4Address")).collect()
    };
    // The key decides, not the worker.
    let with_workers = records(&cap, &["--sampler", "hash:8:12345", "--workers", "2"]);
    assert_eq!(flows(&with_workers), flows(&recs));
    // Another key chooses other flows.
    let other = flows(&records(&cap, &["--sampler", "hash:8:999"]));
    assert!(other.intersection(&flows(&recs)).count() < 200);
    // The summary counts the packets passed over.
    let out =
        run(qof()
            .arg("--in")
            .arg(&cap)
            .args(["--format", "json", "--sampler", "hash:8:12345"]));
    let err = String::from_utf8_lossy(&out.stderr);
    let passed = 12_000 - 3 * recs.len();
    assert!(
        err.contains(&format!("{} metered", 3 * recs.len()))
            && err.contains(&format!("{passed} not sampled")),
        "{err}"
    );
}

#[test]
fn bad_samplers_are_one_line_each() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "one.pcap", &numbered(1));
    for (arg, says) in [
        ("", "unknown sampler"),
        ("often:5", "unknown sampler"),
        ("hash", "N must be a whole number"),
        ("hash:", "N must be a whole number"),
        ("random:x", "N must be a whole number"),
        ("deterministic:1", "out of range"),
        ("deterministic:0", "out of range"),
        ("hash:4294967296", "out of range"),
        ("deterministic:5:1", "takes no key"),
        ("random:5:x", "the key must be a number"),
        ("hash:5:1:2", "expected"),
    ] {
        refused(&cap, &["--sampler", arg], says);
    }
    let y = tmp.path().join("bad.yaml");
    std::fs::write(&y, "sampler: sometimes\n").unwrap();
    refused(&cap, &["--yaml", y.to_str().unwrap()], "sampler:");
    // NetFlow v5's header has 14 bits for N.
    let out = run(qof().arg("--in").arg(&cap).args([
        "--netflow",
        "5",
        "--out",
        "127.0.0.1:9",
        "--sampler",
        "deterministic:16384",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("at most 16383"), "{err}");
}

/// ipfixDump's text of qof's IPFIX file for `capture` with `sampler`.
fn ipfix_dump(capture: &Path, sampler: &str, tmp: &Path) -> String {
    let out_file = tmp.join("s.ipfix");
    let out = run(qof()
        .arg("--in")
        .arg(capture)
        .arg("--out")
        .arg(&out_file)
        .args(["--sampler", sampler]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = run(Command::new("ipfixDump").arg("--in").arg(&out_file));
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    String::from_utf8_lossy(&d.stdout).into_owned()
}

/// ipfixDump's data record of the sampling options template: element name -> value.
fn selector_record(dump: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut inside = false;
    for line in dump.lines() {
        if line.trim_start().starts_with("count:") && line.contains("tid: 53249") {
            inside = true;
            continue;
        }
        if inside && line.starts_with("---") {
            break;
        }
        if inside {
            if let Some((name, value)) = line.split_once(" : ") {
                let name = name.split_whitespace().last().unwrap_or("").to_string();
                m.insert(name, value.trim().to_string());
            }
        }
    }
    m
}

#[test]
fn ipfix_dump_reads_the_sampling_parameters() {
    if !common::have_tool("ipfixDump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "numbered.pcap", &numbered(50));
    let want = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // RFC 5477 semantics: systematic count-based = 1 selected, N - 1 passed over.
    let dump = ipfix_dump(&cap, "deterministic:10", tmp.path());
    assert!(dump.contains("options template record"), "{dump}");
    assert_eq!(
        selector_record(&dump),
        want(&[
            ("selectorId", "1"),
            ("selectorAlgorithm", "1"),
            ("samplingPacketInterval", "1"),
            ("samplingPacketSpace", "9"),
        ]),
        "{dump}"
    );
    let dump = ipfix_dump(&cap, "random:25:3", tmp.path());
    assert_eq!(
        selector_record(&dump),
        want(&[
            ("selectorId", "1"),
            ("selectorAlgorithm", "2"),
            ("samplingSize", "1"),
            ("samplingPopulation", "25"),
        ])
    );
    let dump = ipfix_dump(&cap, "hash:4:77", tmp.path());
    assert_eq!(
        selector_record(&dump),
        want(&[
            ("selectorId", "1"),
            ("selectorAlgorithm", "6"),
            ("hashOutputRangeMin", "0"),
            ("hashOutputRangeMax", "4294967295"),
            ("hashSelectedRangeMin", "0"),
            ("hashSelectedRangeMax", "1073741823"),
            ("hashInitialiserValue", "77"),
        ])
    );
}

/// A UDP port nobody listens on right now.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nfcapd on a loopback port: started, fed by `feed`, stopped; nfdump's JSON flows.
fn through_nfcapd(feed: impl Fn(u16) -> Output) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    let log = dir.path().join("nfcapd.log");
    let port = free_udp_port();
    let logfile = std::fs::File::create(&log).unwrap();
    let mut child: Child = Command::new("nfcapd")
        .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-w"])
        .arg(&flows)
        .stdout(logfile.try_clone().unwrap())
        .stderr(logfile)
        .spawn()
        .expect("cannot start nfcapd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Startup")
    {
        assert!(Instant::now() < deadline, "nfcapd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = feed(port);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "nfcapd did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    common::nfdump_json(&flows)
}

#[test]
fn nfcapd_reads_the_netflow_sampling_fields() {
    if !common::have_tool("nfcapd") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "numbered.pcap", &numbered(200));
    for (version, sampler, interval) in [
        ("5", "deterministic:10", 10u64),
        ("5", "random:40:1", 40),
        ("9", "deterministic:20", 20),
        ("9", "hash:3:5", 3),
    ] {
        let flows = through_nfcapd(|port| {
            run(qof().arg("--in").arg(&cap).args([
                "--netflow",
                version,
                "--out",
                &format!("127.0.0.1:{port}"),
                "--sampler",
                sampler,
            ]))
        });
        assert!(!flows.is_empty(), "v{version} {sampler}");
        // qof sends what it metered (1 packet of 38 octets a flow); nfcapd read the sampling
        // interval and scales by it (nfdump's own choice), and marks the flows sampled.
        for f in &flows {
            assert_eq!(f["sampled"], 1, "v{version} {sampler}: {f}");
            assert_eq!(n(f, "in_packets"), interval, "v{version} {sampler}: {f}");
            assert_eq!(n(f, "in_bytes"), 38 * interval, "v{version} {sampler}: {f}");
        }
        if sampler.starts_with("deterministic") {
            assert_eq!(flows.len() as u64, 200 / interval, "v{version} {sampler}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Track levels, aggregation, DSCP and VLAN keys.

/// (source, destination, source port, destination port, protocol) -> (packets, reverse
/// packets), over every record.
/// Source, destination, their ports, protocol.
type Key = (String, String, u64, u64, u64);

fn totals(recs: &[Value]) -> BTreeMap<Key, (u64, u64)> {
    let mut m = BTreeMap::new();
    for r in recs {
        let k = (
            s(r, "sourceIPv4Address"),
            s(r, "destinationIPv4Address"),
            n(r, "sourceTransportPort"),
            n(r, "destinationTransportPort"),
            n(r, "protocolIdentifier"),
        );
        let e = m.entry(k).or_insert((0, 0));
        e.0 += n(r, "packetDeltaCount");
        e.1 += n(r, "reversePacketDeltaCount");
    }
    m
}

fn key(src: &str, dst: &str, sp: u64, dp: u64, proto: u64) -> Key {
    (src.to_string(), dst.to_string(), sp, dp, proto)
}

#[test]
fn aggregation_rules_make_one_record_per_prefix_both_directions() {
    let tmp = tempfile::tempdir().unwrap();
    let server = [10, 0, 0, 1];
    let mut v = Vec::new();
    // Two hosts of 192.168.1.0/24 and one of 192.168.2.0/24, each a connection to the
    // server and its answer; the first connection is reset before the second opens.
    for (i, host) in [[192, 168, 1, 5], [192, 168, 1, 7], [192, 168, 2, 9]]
        .into_iter()
        .enumerate()
    {
        let t = i as u64 * 1000;
        let mut syn = Pkt::new(t, TCP, host, server, 40_000 + i as u16, 80);
        syn.tcp_flags = 0x02;
        let mut back = syn.back(t + 10);
        back.tcp_flags = 0x12;
        let mut rst = syn.clone();
        rst.ms = t + 20;
        rst.tcp_flags = 0x04;
        v.extend([syn, back, rst]);
    }
    let cap = write_pcap(tmp.path(), "hosts.pcap", &v);
    // Without rules: a record per connection.
    assert_eq!(records(&cap, &[]).len(), 3);
    let rules = "192.168.0.0/16=24, 1024-65535=1024";
    let want = BTreeMap::from([
        (key("192.168.1.0", "10.0.0.1", 1024, 80, 6), (4, 2)),
        (key("192.168.2.0", "10.0.0.1", 1024, 80, 6), (2, 1)),
    ]);
    for workers in ["1", "2"] {
        let recs = records(&cap, &["--aggregation", rules, "--workers", workers]);
        assert_eq!(totals(&recs), want, "--workers {workers}");
        // Aggregates are not connections: the first host's RST did not end the /24's record,
        // nor did the second host's SYN split it.
        assert_eq!(recs.len(), 2, "--workers {workers}: {recs:?}");
    }
    // ipt-netflow's single port form, and the YAML list form.
    let recs = records(&cap, &["--aggregation", "80=8080"]);
    assert!(recs
        .iter()
        .all(|r| n(r, "destinationTransportPort") == 8080));
    let y = tmp.path().join("a.yaml");
    std::fs::write(
        &y,
        "aggregation:\n  - 192.168.0.0/16=24\n  - 1024-65535=1024\n",
    )
    .unwrap();
    assert_eq!(
        totals(&records(&cap, &["--yaml", y.to_str().unwrap()])),
        want
    );
}

#[test]
fn track_levels_keep_one_record_per_host_pair_or_protocol() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let v = vec![
        Pkt::new(0, TCP, a, b, 40_000, 80),
        Pkt::new(1, TCP, a, b, 40_001, 443),
        Pkt::new(2, TCP, a, b, 40_000, 80).back(2),
        Pkt::new(3, UDP, a, b, 5353, 53),
        Pkt::new(4, UDP, b, a, 53, 5353),
        Pkt::new(5, ICMP, a, b, 0, 0),
    ];
    let cap = write_pcap(tmp.path(), "pair.pcap", &v);
    assert_eq!(records(&cap, &["--track-level", "full"]).len(), 4);
    assert_eq!(
        totals(&records(&cap, &["--track-level", "proto"])),
        BTreeMap::from([
            (key("10.0.0.1", "10.0.0.2", 0, 0, 1), (1, 0)),
            (key("10.0.0.1", "10.0.0.2", 0, 0, 6), (2, 1)),
            (key("10.0.0.1", "10.0.0.2", 0, 0, 17), (1, 1)),
        ])
    );
    for workers in ["1", "2"] {
        assert_eq!(
            totals(&records(
                &cap,
                &["--track-level", "ip", "--workers", workers]
            )),
            BTreeMap::from([(key("10.0.0.1", "10.0.0.2", 0, 0, 0), (4, 2))])
        );
    }
}

#[test]
fn dscp_and_outer_vlan_as_key_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut v = Vec::new();
    // One UDP 5-tuple: DSCP 0, then EF (0xb8) twice, the second with an ECN mark.
    for (ms, tos) in [(0, 0x00), (1, 0xb8), (2, 0xb9)] {
        let mut p = Pkt::new(ms, UDP, a, b, 7000, 7001);
        p.tos = tos;
        v.push(p);
    }
    let cap = write_pcap(tmp.path(), "tos.pcap", &v);
    assert_eq!(records(&cap, &[]).len(), 1);
    let recs = records(&cap, &["--key-tos", "--plugin", "headers"]);
    let got: BTreeSet<(u64, u64)> = recs
        .iter()
        .map(|r| (n(r, "ipClassOfService"), n(r, "packetDeltaCount")))
        .collect();
    // ECN bits are not part of the key: they change within a connection.
    assert_eq!(got, BTreeSet::from([(0, 1), (0xb8, 2)]), "{recs:?}");

    // Q-in-Q: the same inner VLAN (10) under two outer ones, and a reply.
    let mut v = Vec::new();
    for (ms, outer) in [(0u64, 100u16), (1, 200), (2, 100)] {
        let mut p = Pkt::new(ms, UDP, a, b, 7000, 7001);
        p.vlans = vec![outer, 10];
        v.push(if ms == 2 { p.back(ms) } else { p });
    }
    let cap = write_pcap(tmp.path(), "qinq.pcap", &v);
    assert_eq!(records(&cap, &[]).len(), 1);
    let recs = records(&cap, &["--key-vlan", "--plugin", "vlan"]);
    let got: BTreeSet<(u64, u64, u64, u64)> = recs
        .iter()
        .map(|r| {
            (
                n(r, "dot1qVlanId"),
                n(r, "dot1qCustomerVlanId"),
                n(r, "packetDeltaCount"),
                n(r, "reversePacketDeltaCount"),
            )
        })
        .collect();
    assert_eq!(
        got,
        BTreeSet::from([(100, 10, 1, 1), (200, 10, 1, 0)]),
        "{recs:?}"
    );
    let y = tmp.path().join("k.yaml");
    std::fs::write(&y, "key-vlan: true\nkey-tos: 1\n").unwrap();
    assert_eq!(records(&cap, &["--yaml", y.to_str().unwrap()]).len(), 2);
}

#[test]
fn bad_track_levels_and_aggregation_rules_are_one_line_each() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = write_pcap(tmp.path(), "one.pcap", &numbered(1));
    for (args, says) in [
        (["--track-level", "ports"], "unknown track level \"ports\""),
        (["--track-level", ""], "unknown track level"),
        (["--aggregation", "10.0.0.0/33=8"], "at most 32"),
        (["--aggregation", "2001:db8::/32=129"], "at most 128"),
        (["--aggregation", "ten/8=16"], "not an IP address"),
        (["--aggregation", "10.0.0.0/8"], "no '='"),
        (["--aggregation", "10.0.0.0/x=8"], "whole numbers"),
        (["--aggregation", "90-80=80"], "low port is above"),
        (["--aggregation", "80-x=1"], "ports are whole numbers"),
        (["--aggregation", "70000=1"], "ports are whole numbers"),
        (["--aggregation", "80=,"], "ports are whole numbers"),
    ] {
        refused(&cap, &args, says);
    }
    for (yaml, says) in [
        ("track-level: pairs\n", "track-level"),
        ("aggregation: 1.2.3.4/8\n", "aggregation"),
        ("aggregation:\n  - 80=80\n  - x\n", "aggregation"),
        ("key-tos: maybe\n", "expected true, false, 1 or 0"),
    ] {
        let y = tmp.path().join("bad.yaml");
        std::fs::write(&y, yaml).unwrap();
        refused(&cap, &["--yaml", y.to_str().unwrap()], says);
    }
}
