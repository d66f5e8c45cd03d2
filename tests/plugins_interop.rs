//! Plugin elements as collectors read them: every registered plugin at once, on corpus
//! captures. libfixbuf's `ipfixDump` (given qof's element registry, `qofdump --element-xml`)
//! reads every record without a warning and shows every value, basicLists item by item, as
//! qof's JSON does; tshark's IPFIX dissector reads every message with no malformed set;
//! qofdump prints qof's JSON lines byte for byte.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Captures with TCP, UDP, ICMP, IPv6, VLANs and MPLS between them.
const CAPTURES: &[&str] = &[
    "ipfixprobe__http.pcap",
    "ipfixprobe__dns.pcap",
    "ipfixprobe__tls.pcap",
    "ipfixprobe__vlan.pcap",
    "tcpdump__icmpv6.pcap",
    "tcpdump__mpls-traceroute.pcap",
    "ndpi__netflix.pcap",
];

/// `--plugin NAME` for every plugin this build has.
fn every_plugin() -> Vec<String> {
    qof::plugins::REGISTRY
        .iter()
        .flat_map(|s| ["--plugin".to_string(), s.kind.name().to_string()])
        .collect()
}

fn qof_output(capture: &Path, format: &str, out: &Path) {
    let o = run(qof()
        .arg("--in")
        .arg(capture)
        .args(every_plugin())
        .args(["--format", format, "--out"])
        .arg(out));
    assert!(
        o.status.success(),
        "qof {}: {}",
        name(capture),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A value as ipfixDump prints it: one scalar, or a basicList's items.
#[derive(Debug, Clone, PartialEq)]
enum Dumped {
    One(String),
    List(Vec<String>),
}

/// ipfixDump's data records (name -> value), lists under their item element's name.
fn dump_records(text: &str) -> Vec<BTreeMap<String, Dumped>> {
    let mut out = Vec::new();
    let mut cur: Option<BTreeMap<String, Dumped>> = None;
    let mut list: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("--- ") {
            out.extend(cur.take());
            list = None;
            if line.starts_with("--- data record") {
                cur = Some(BTreeMap::new());
            }
            continue;
        }
        let Some(r) = cur.as_mut() else { continue };
        let t = line.trim();
        if let Some(at) = t.find(" ie: (") {
            // "count: 2  semantic: 4-ordered  ie: (8057/1013) packetLength"
            let name = t[at..].rsplit(' ').next().unwrap_or("").to_string();
            r.insert(name.clone(), Dumped::List(Vec::new()));
            list = Some(name);
            continue;
        }
        if let Some((lhs, rhs)) = t.split_once(" : ").or_else(|| t.split_once(" :")) {
            let lhs = lhs.trim();
            if let (Some(l), Ok(_)) = (&list, lhs.parse::<u32>()) {
                if let Some(Dumped::List(items)) = r.get_mut(l) {
                    items.push(rhs.trim().to_string());
                }
                continue;
            }
            if let (true, Some(close)) = (lhs.starts_with('('), lhs.rfind(')')) {
                list = None;
                let name = lhs[close + 1..].trim();
                if name != "basicList" {
                    r.insert(name.to_string(), Dumped::One(rhs.trim().to_string()));
                }
            }
        }
    }
    out.extend(cur);
    out.retain(|r| !r.contains_key("exportingProcessId"));
    out
}

/// ipfixDump's spelling of a scalar brought to qof's JSON spelling.
fn same(dump: &str, json: &serde_json::Value) -> bool {
    let ours = match json {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // A variable-length value (a string, or octets with --hexdump) comes after its length:
    // "(len: 10) kernel.org", "(len: 4) 0xc7cc2cc2", "(len: 0)".
    if let Some(rest) = dump.strip_prefix("(len: ") {
        let Some((len, value)) = rest.split_once(')') else {
            return false;
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        let value = value
            .strip_prefix("0x")
            .filter(|_| json.is_string() && ours.len() == 2 * len.parse().unwrap_or(0))
            .unwrap_or(value);
        return value == ours;
    }
    if dump == ours {
        return true;
    }
    // Variable-length strings and octet arrays: ipfixDump writes "(len: N) " before the
    // value, octets as 0x and hex.
    if let Some((n, value)) = dump.strip_prefix("(len: ").and_then(|r| r.split_once(')')) {
        let value = value.trim_start();
        let n: usize = n.parse().unwrap_or(usize::MAX);
        let octets = value
            .strip_prefix("0x")
            .is_some_and(|hex| n * 2 == ours.len() && hex.eq_ignore_ascii_case(&ours));
        let text = n == ours.len() && value == ours;
        return octets || text;
    }
    if dump.len() == 23 && dump.as_bytes().get(10) == Some(&b' ') {
        // 2013-11-07 12:34:56.789 -> 2013-11-07T12:34:56.789Z
        return format!("{}T{}Z", &dump[..10], &dump[11..]) == ours;
    }
    // ipfixDump prints an octet array of up to eight octets as the integer its octets make
    // in the host's (little-endian) order.
    if let (Ok(d), true) = (dump.parse::<u64>(), ours.len() <= 16 && ours.len() % 2 == 0) {
        let le = (0..ours.len() / 2)
            .rev()
            .filter_map(|i| u64::from_str_radix(&ours[2 * i..2 * i + 2], 16).ok())
            .fold(0u64, |a, b| a << 8 | b);
        if le == d {
            return true;
        }
    }
    if let (Ok(a), Ok(b)) = (dump.parse::<f64>(), ours.parse::<f64>()) {
        return (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0);
    }
    if let (Ok(a), Ok(b)) = (
        dump.parse::<std::net::IpAddr>(),
        ours.parse::<std::net::IpAddr>(),
    ) {
        return a == b;
    }
    // Octet arrays: ipfixDump prints their length, or hex with --hexdump.
    dump.replace(' ', "").eq_ignore_ascii_case(&ours)
}

#[test]
fn ipfixdump_reads_every_plugin_element_as_qof_prints_it() {
    if !have_tool("ipfixDump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let xml = tmp.path().join("qof-elements.xml");
    let o = run(qofdump().arg("--element-xml"));
    assert!(o.status.success());
    std::fs::write(&xml, &o.stdout).unwrap();
    let (mut records, mut lists) = (0, 0);
    for c in CAPTURES {
        let cap = corpus_dir().join(c);
        let (ipfix, json) = (tmp.path().join("out.ipfix"), tmp.path().join("out.json"));
        qof_output(&cap, "ipfix", &ipfix);
        qof_output(&cap, "json", &json);
        let d = run(std::process::Command::new("ipfixDump")
            .arg("--element-file")
            .arg(&xml)
            .args(["--hexdump", "65535", "--in"])
            .arg(&ipfix));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&d.stdout),
            String::from_utf8_lossy(&d.stderr),
        );
        assert!(
            d.status.success() && stderr.trim().is_empty(),
            "{c}: {stderr}"
        );
        for bad in ["warn", "Warn", "error", "Error", "alien"] {
            assert!(!stdout.contains(bad), "{c}: ipfixDump mentions {bad}");
        }
        let theirs = dump_records(&stdout);
        let ours: Vec<serde_json::Value> = std::fs::read_to_string(&json)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(theirs.len(), ours.len(), "{c}: records");
        for (i, (t, o)) in theirs.iter().zip(&ours).enumerate() {
            let o = o.as_object().unwrap();
            assert_eq!(t.len(), o.len(), "{c} record {i}: {t:?} vs {o:?}");
            for (key, v) in o {
                let d = t
                    .get(key)
                    .unwrap_or_else(|| panic!("{c} record {i}: ipfixDump lacks {key}"));
                match (d, v) {
                    (Dumped::One(d), v) => assert!(same(d, v), "{c} {i} {key}: {d} vs {v}"),
                    (Dumped::List(items), serde_json::Value::Array(vs)) => {
                        lists += 1;
                        assert_eq!(items.len(), vs.len(), "{c} {i} {key}");
                        for (d, v) in items.iter().zip(vs) {
                            assert!(same(d, v), "{c} {i} {key}: {d} vs {v}");
                        }
                    }
                    (d, v) => panic!("{c} {i} {key}: {d:?} vs {v}"),
                }
            }
            records += 1;
        }
    }
    println!("{records} records, {lists} lists read by ipfixDump as qof prints them");
    assert!(
        records > 100 && lists > 100,
        "{records} records, {lists} lists"
    );
}

/// The IPFIX datagrams qof sends over UDP, with every plugin, for `capture`.
fn udp_export(capture: &Path) -> Vec<Vec<u8>> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut child = qof()
        .arg("--in")
        .arg(capture)
        .args(every_plugin())
        .args(["--ipfix", "udp", "--out", "127.0.0.1", "--ipfix-port"])
        .arg(port.to_string())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => datagrams.push(buf[..n].to_vec()),
            Err(_) if child.try_wait().unwrap().is_some() => break,
            Err(_) => {}
        }
    }
    assert!(child.wait().unwrap().success(), "{}", name(capture));
    datagrams
}

#[test]
fn qofdump_prints_plugin_records_as_qof_does_and_tshark_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    for c in CAPTURES {
        let cap = corpus_dir().join(c);
        let (ipfix, json) = (tmp.path().join("out.ipfix"), tmp.path().join("out.json"));
        qof_output(&cap, "ipfix", &ipfix);
        qof_output(&cap, "json", &json);
        let d = run(qofdump().arg("--no-options").arg(&ipfix));
        assert!(d.status.success(), "{c}");
        let ours = std::fs::read_to_string(&json).unwrap();
        assert_eq!(String::from_utf8_lossy(&d.stdout), ours, "{c}");
        if !have_tool("tshark") {
            continue;
        }
        // tshark reads IPFIX from UDP datagrams: qof exports over UDP to a socket here (a
        // file's messages reach 64 KiB, more than a datagram holds).
        let messages = udp_export(&cap);
        let text = tshark_decode(&messages, 4739, tmp.path());
        for bad in [
            "Malformed",
            "Expert Info (Warn",
            "Expert Info (Error",
            "no template",
        ] {
            let hits: Vec<&str> = text.lines().filter(|l| l.contains(bad)).take(3).collect();
            assert!(hits.is_empty(), "{c}: tshark says {hits:?}");
        }
        let flows = text
            .lines()
            .filter(|l| l.trim_start().starts_with("Flow ") && !l.contains(':'))
            .count();
        let lines = ours.lines().count();
        assert_eq!(flows, lines, "{c}: records tshark decoded");
        let lists = text
            .lines()
            .filter(|l| l.contains("Type 291: Value"))
            .count();
        let ours_lists: usize = ours
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| {
                v.as_object()
                    .unwrap()
                    .values()
                    .filter(|x| x.is_array())
                    .count()
            })
            .sum();
        assert_eq!(lists, ours_lists, "{c}: basicLists tshark read");
    }
}
