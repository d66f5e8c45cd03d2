//! qof's IPFIX files as libfixbuf (the library behind YAF, QoF and SiLK) reads them:
//! `ipfixDump` must read every file without a warning, and every value it prints must equal
//! what qof's JSON printer says for the same records.

mod common;
use common::*;
use qof::export::{rotated_name, FileOutput, IpfixFileSink, JsonSink, RecordSink};
use qof::ipfix::TemplateSpec;
use qof::key::FlowKey;
use qof::meter::{DirStats, FlowRecord, ProcessStats};
use qof::time::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;

fn records() -> Vec<FlowRecord> {
    let mut v = Vec::new();
    let t0 = Timestamp::from_millis(1_383_827_696_789);
    let mut id = 0;
    for (proto, sp, dp, v6, rev, big) in [
        (6u8, 40000u16, 80u16, false, true, false),
        (6, 443, 51000, true, true, true),
        (17, 5353, 53, false, false, false),
        (1, 0, 0x0800, false, false, false),
        (58, 0, 0x8000, true, true, false),
        (47, 0, 0, false, true, false),
    ] {
        id += 1;
        let mut key = FlowKey {
            proto,
            src_port: sp,
            dst_port: dp,
            vlan: 12,
            ..Default::default()
        };
        if v6 {
            key.set_ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, id],
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            );
        } else {
            key.set_ipv4([192, 0, 2, id], [198, 51, 100, 7]);
        }
        let d = |p: u64, o: u64| DirStats {
            packets: p,
            octets: o,
            transport_packets: p - 1,
            transport_octets: o / 2,
            min_ttl: 3,
            max_ttl: 64,
            initial_tcp_flags: 0x02,
            union_tcp_flags: 0x19,
            ..DirStats::default()
        };
        v.push(FlowRecord {
            key,
            flow_id: u64::from(id) << 33,
            start: t0,
            end: Timestamp::from_millis(t0.millis() + 1234 * u64::from(id)),
            rev_start: rev.then(|| Timestamp::from_millis(t0.millis() + 17)),
            end_reason: id % 5 + 1,
            fwd: d(5 * u64::from(id), if big { 6_000_000_000 } else { 900 }),
            rev: if rev { d(3, 200) } else { DirStats::default() },
            src_mac: [0, 0x11, 0x22, 0x33, 0x44, id],
            dst_mac: [0xff; 6],
            ..FlowRecord::default()
        });
    }
    v
}

const FULL_TEMPLATE: &[&str] = &[
    "flowStartMilliseconds",
    "flowEndMilliseconds",
    "octetDeltaCount",
    "reverseOctetDeltaCount",
    "packetDeltaCount",
    "reversePacketDeltaCount",
    "transportOctetDeltaCount",
    "reverseTransportOctetDeltaCount",
    "transportPacketDeltaCount",
    "sourceIPv4Address",
    "destinationIPv4Address",
    "sourceIPv6Address",
    "destinationIPv6Address",
    "sourceTransportPort",
    "destinationTransportPort",
    "protocolIdentifier",
    "flowEndReason",
    "flowId",
    "vlanId",
    "sourceMacAddress",
    "destinationMacAddress",
    "minimumTTL",
    "reverseMaximumTTL",
    "tcpControlBits",
    "initialTCPFlags",
    "reverseUnionTCPFlags",
    "reverseFlowDeltaMilliseconds",
];

/// ipfixDump's data records as name → value text, skipping the statistics record.
fn dump_records(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur: Option<BTreeMap<String, String>> = None;
    for line in text.lines() {
        if line.starts_with("--- ") {
            if let Some(r) = cur.take() {
                out.push(r);
            }
            if line.starts_with("--- data record") {
                cur = Some(BTreeMap::new());
            }
            continue;
        }
        if let (Some(r), Some((lhs, rhs))) = (cur.as_mut(), line.split_once(" : ")) {
            // "(29305/2)   reversePacketDeltaCount" or "(144) (S)   exportingProcessId"
            let lhs = lhs.trim();
            if let (true, Some(close)) = (lhs.starts_with('('), lhs.rfind(')')) {
                r.insert(lhs[close + 1..].trim().to_string(), rhs.trim().to_string());
            }
        }
    }
    out.extend(cur);
    out.retain(|r| !r.contains_key("exportingProcessId"));
    out
}

/// Bring ipfixDump's spelling of a value to ours.
fn normalise(dump: &str, json: &serde_json::Value) -> (String, String) {
    let ours = match json {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Ok(a) = dump.parse::<IpAddr>() {
        return (a.to_string(), ours);
    }
    if dump.len() == 23 && dump.as_bytes()[10] == b' ' {
        // 2013-11-07 12:34:56.789 -> 2013-11-07T12:34:56.789Z
        return (format!("{}T{}Z", &dump[..10], &dump[11..]), ours);
    }
    (dump.to_string(), ours)
}

fn check_template(names: &[&str], force_biflow: bool) {
    if !have_tool("ipfixDump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("flows.ipfix");
    let spec = TemplateSpec::from_names(names).unwrap();
    let out = FileOutput {
        path: Some(path.clone()),
        rotate_secs: None,
        lock: false,
        input: None,
    };
    let mut sink = IpfixFileSink::new(spec.clone(), 42, force_biflow, out).unwrap();
    let mut json = JsonSink::new(spec, force_biflow, Vec::new());
    for r in records() {
        sink.write_flow(&r).unwrap();
        json.write_flow(&r).unwrap();
    }
    sink.write_stats(&ProcessStats {
        packets: 99,
        observation_domain: 42,
        ..Default::default()
    })
    .unwrap();
    sink.finish().unwrap();
    // Published under its name; no hidden file left.
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["flows.ipfix"]);

    let dump = run(std::process::Command::new("ipfixDump")
        .arg("--yaf")
        .arg("--in")
        .arg(&path));
    let stderr = String::from_utf8_lossy(&dump.stderr);
    let stdout = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.status.success() && stderr.trim().is_empty(),
        "ipfixDump complained: {stderr}"
    );
    for bad in ["warn", "Warn", "WARN", "error", "Error", "alien"] {
        assert!(
            !stdout.contains(bad),
            "ipfixDump output mentions {bad}:\n{stdout}"
        );
    }
    let theirs = dump_records(&stdout);
    let ours: Vec<serde_json::Value> = String::from_utf8(json.into_inner())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(theirs.len(), ours.len(), "record count");
    for (t, o) in theirs.iter().zip(&ours) {
        let o = o.as_object().unwrap();
        assert_eq!(
            t.len(),
            o.len(),
            "field count: ipfixDump {t:?} vs ours {o:?}"
        );
        for (name, v) in o {
            let d = t
                .get(name)
                .unwrap_or_else(|| panic!("ipfixDump lacks {name}: {t:?}"));
            let (d, v) = normalise(d, v);
            assert_eq!(d, v, "{name}");
        }
    }
    assert!(stdout.contains("observation domain id: 42"));
}

#[test]
fn ipfixdump_reads_the_default_template() {
    check_template(qof::ipfix::QOF_DEFAULT, false);
}

#[test]
fn ipfixdump_reads_every_measured_element() {
    check_template(FULL_TEMPLATE, false);
    check_template(FULL_TEMPLATE, true);
}

#[test]
fn ipfixdump_reads_uniflow_records() {
    check_template(
        &[
            "flowStartMilliseconds",
            "sourceIPv4Address",
            "destinationIPv4Address",
            "sourceIPv6Address",
            "destinationIPv6Address",
            "packetDeltaCount",
            "octetDeltaCount",
            "protocolIdentifier",
        ],
        false,
    );
}

#[test]
fn rotation_by_packet_time_names_and_publishes_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("qof");
    let out = FileOutput {
        path: Some(prefix.clone()),
        rotate_secs: Some(60),
        lock: true,
        input: None,
    };
    let mut sink = IpfixFileSink::new(TemplateSpec::qof_default(), 0, false, out).unwrap();
    let t0 = Timestamp::from_secs(1_383_827_696);
    let mut r = records()[0].clone();
    for minute in 0..3u64 {
        let now = Timestamp::from_secs(t0.secs() + minute * 61);
        sink.tick(now).unwrap();
        r.start = now;
        r.end = now;
        sink.write_flow(&r).unwrap();
        // While a file is written its lock exists.
        let current = rotated_name(&prefix, now, minute as u32);
        assert!(current
            .with_file_name(format!(
                "{}.lock",
                current.file_name().unwrap().to_string_lossy()
            ))
            .exists());
    }
    sink.finish().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "qof-20131107123456-00000.ipfix",
            "qof-20131107123557-00001.ipfix",
            "qof-20131107123658-00002.ipfix"
        ]
    );
    if have_tool("ipfixDump") {
        for n in names {
            let d = run(std::process::Command::new("ipfixDump")
                .arg("--yaf")
                .arg("--in")
                .arg(tmp.path().join(&n)));
            assert!(d.status.success() && d.stderr.is_empty(), "{n}");
            assert_eq!(
                dump_records(&String::from_utf8_lossy(&d.stdout)).len(),
                1,
                "{n}"
            );
        }
    }
}

#[test]
fn a_run_without_flows_still_writes_a_valid_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("empty.ipfix");
    let out = FileOutput {
        path: Some(path.clone()),
        rotate_secs: None,
        lock: false,
        input: None,
    };
    IpfixFileSink::new(TemplateSpec::qof_default(), 0, false, out)
        .unwrap()
        .finish()
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.len() > 16 && bytes[..2] == [0, 10],
        "a message with the statistics template"
    );
    if have_tool("ipfixDump") {
        let d = run(std::process::Command::new("ipfixDump")
            .arg("--in")
            .arg(&path));
        assert!(d.status.success() && d.stderr.is_empty());
    }
}
