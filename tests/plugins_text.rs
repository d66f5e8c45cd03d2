//! The text plugins (http, rtsp, sip, smtp, ssdp) against an oracle we did not write: qof's
//! JSON records, on every capture of the corpus (tests/data/corpus) and on captures written
//! here from literal messages, compared per record with tshark's dissection of the same
//! packets. The corpus has no SMTP or RTSP, its one SIP packet is in PPTP's GRE (which qof
//! does not open) and its SSDP is one flow of searches: the figures of those protocols are
//! mostly the written captures' (`plugins_text/captures.rs`). qof runs with `gre-decap`.
//!
//! tshark's packets are grouped into qof's records by flow (protocol and the two endpoints of
//! the innermost IP header) and, within a flow, in turn by each record's packet count (a
//! flow's records take its packets one after another: a split or a timeout ends one where the
//! next begins); where tshark and qof count a flow's packets differently (IP fragments, frames
//! qof cannot decode), by time. For each record and field, tshark's values in the record's
//! packets are compared with qof's: found (qof's is one of them, or one's start cut at the
//! element's bound), contradicted (qof has another value), missing (qof has none). Per field
//! over all captures, at least 97 % of tshark's values must be found and at most 1 %
//! contradicted; every value not found must be in [`EXPLAINED`], with its reason.
//!
//! tshark shows an HTTP message's fields with the packet its body ends in (its default, which
//! follows a keep-alive connection's messages by their lengths); that packet is in the
//! message's record, which ends where the next request starts.

#[path = "plugins_text/captures.rs"]
mod captures;
mod common;
#[path = "plugins_text/oracle.rs"]
mod oracle;

use captures::{http_capture, rtsp_capture, sip_capture, smtp_capture, ssdp_capture};
use common::*;
use oracle::{checks, flow, tshark_frames, Check, Flow, Frame};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

/// Values tshark shows that qof does not find (field and value), and why.
struct Explained {
    capture: &'static str,
    values: &'static [(&'static str, &'static str)],
    why: &'static str,
}

const EXPLAINED: &[Explained] = &[
    Explained {
        capture: "ndpi__6in4tunnel.pcap",
        values: &[
            ("http.host", "mail.tomasu.net"),
            ("http.user_agent", "Wget/1.16.3 (linux-gnu)"),
            ("http.request.method", "GET"),
            ("http.request.uri", "/"),
            ("http.response.code", "301"),
            (
                "http.content_type (responses)",
                "text/html; charset=iso-8859-1",
            ),
            ("http.server", "Apache/2.4.10 (Debian)"),
        ],
        why: "the exchange is IPv6 in IPv4 (6in4, protocol 41), which qof meters as the \
              tunnel's flow without opening it: no TCP flow, so no plugin sees it",
    },
    Explained {
        capture: "ndpi__gre.pcapng",
        values: &[
            ("sip.Method, sip.Status-Code", "99"),
            ("sip.Status-Code", "100"),
            ("sip.Call-ID", "AI1737AB5491ADC392@192.168.103.40"),
            ("sip.CSeq", "1 INVITE"),
            ("sip.from.addr", "sip:281@192.168.103.40"),
            ("sip.to.addr", "sip:271@192.168.10.210"),
            ("sip.Via (sent-by)", "SIP/2.0/UDP 192.168.103.40:5060"),
        ],
        why: "the message is in PPTP's enhanced GRE (version 1, PPP inside): qof opens GRE \
              version 0 only (gre-decap) and counts this frame as bad-gre, metering nothing",
    },
];

struct Record {
    flow: Flow,
    start: u64,
    packets: u64,
    json: serde_json::Map<String, Value>,
    frames: Vec<usize>,
}

/// Milliseconds since 1970 of an RFC 3339 UTC time as qof prints it (`...T12:34:56.789Z`).
fn millis(t: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from 1970-01-01 (H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    (secs * 1000 + n(20..23)) as u64
}

fn qof_records(cap: &Path, tmp: &Path) -> Vec<Record> {
    let out = tmp.join(format!("{}.jsonl", name(cap)));
    let yaml = tmp.join("gre.yaml");
    std::fs::write(&yaml, "gre-decap: true\n").unwrap();
    let mut cmd = qof();
    cmd.arg("--in").arg(cap).arg("--yaml").arg(&yaml);
    for p in ["http", "rtsp", "sip", "smtp", "ssdp"] {
        cmd.args(["--plugin", p]);
    }
    let r = run(cmd.args(["--format", "json", "--out"]).arg(&out));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        matches!(r.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
        "{}: {stderr}",
        name(cap)
    );
    let Ok(text) = std::fs::read_to_string(&out) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| {
            let Value::Object(json) = serde_json::from_str(l).unwrap() else {
                panic!("not an object: {l}");
            };
            let s = |k: &str| json.get(k).and_then(Value::as_str);
            let u = |k: &str| json.get(k).and_then(Value::as_u64).unwrap_or(0);
            let addr = |v4: &str, v6: &str| -> IpAddr {
                s(v4).or_else(|| s(v6)).unwrap().parse().unwrap()
            };
            let a = (
                addr("sourceIPv4Address", "sourceIPv6Address"),
                u("sourceTransportPort") as u16,
            );
            let b = (
                addr("destinationIPv4Address", "destinationIPv6Address"),
                u("destinationTransportPort") as u16,
            );
            Record {
                flow: flow(u("protocolIdentifier") as u8, a, b),
                start: millis(s("flowStartMilliseconds").unwrap()),
                packets: u("packetDeltaCount") + u("reversePacketDeltaCount"),
                frames: Vec::new(),
                json,
            }
        })
        .collect()
}

/// Give each record its frames: a flow's frames in turn by the records' packet counts when
/// they add up, else each frame to the last record of its flow started by its time. Returns
/// the frames no record has, grouped by flow, and the flows placed by time.
fn assign(records: &mut [Record], frames: &[Frame]) -> (Vec<Vec<usize>>, usize) {
    let mut by_flow: BTreeMap<Flow, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        by_flow.entry(r.flow).or_default().push(i);
    }
    for recs in by_flow.values_mut() {
        recs.sort_by_key(|&i| (records[i].start, i));
    }
    let mut frames_of: BTreeMap<Flow, Vec<usize>> = BTreeMap::new();
    for (i, f) in frames.iter().enumerate() {
        if let Some(fl) = f.flow {
            frames_of.entry(fl).or_default().push(i);
        }
    }
    let (mut orphans, mut by_time) = (Vec::new(), 0);
    for (fl, fr) in frames_of {
        let Some(recs) = by_flow.get(&fl) else {
            orphans.push(fr);
            continue;
        };
        let total: u64 = recs.iter().map(|&i| records[i].packets).sum();
        if total == fr.len() as u64 {
            let mut it = fr.into_iter();
            for &r in recs {
                records[r]
                    .frames
                    .extend(it.by_ref().take(records[r].packets as usize));
            }
        } else {
            by_time += 1;
            for f in fr {
                let ms = frames[f].ms;
                let r = recs
                    .iter()
                    .rev()
                    .find(|&&r| records[r].start <= ms)
                    .unwrap_or(&recs[0]);
                records[*r].frames.push(f);
            }
        }
    }
    (orphans, by_time)
}

/// qof's value of an element in a record, as text (`None` if the record has none).
fn qof_value(r: &Record, element: &str, none: &str) -> Option<String> {
    let v = match r.json.get(element)? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    (v != none).then_some(v)
}

/// qof's value is tshark's, or its start cut at the bound.
fn same(q: &str, t: &str, bound: usize) -> bool {
    q == t || (bound != usize::MAX && q.len() + 4 > bound && t.len() > q.len() && t.starts_with(q))
}

/// A value not found: capture, check, tshark's values, qof's value and where.
type Miss = (String, &'static str, String, String);

#[derive(Default, Clone, Copy)]
struct Score {
    found: u64,
    contradicted: u64,
    missing: u64,
}

impl Score {
    fn total(&self) -> u64 {
        self.found + self.contradicted + self.missing
    }
}

/// Score one capture: per check, and every value not found (capture, check, tshark's
/// value, qof's).
fn score(cap: &Path, tmp: &Path, checks: &[Check], table: &mut String) -> (Vec<Score>, Vec<Miss>) {
    let capture = name(cap);
    let frames = tshark_frames(cap);
    let mut records = qof_records(cap, tmp);
    let (orphans, by_time) = assign(&mut records, &frames);
    let mut scores = vec![Score::default(); checks.len()];
    let mut misses = Vec::new();
    let groups = records
        .iter()
        .map(|r| (Some(r), r.frames.clone()))
        .chain(orphans.into_iter().map(|f| (None, f)));
    for (rec, idx) in groups {
        let group: Vec<&Frame> = idx.iter().map(|&i| &frames[i]).collect();
        for (c, s) in checks.iter().zip(scores.iter_mut()) {
            let want = (c.oracle)(&group);
            if want.is_empty() {
                continue;
            }
            let got = rec.and_then(|r| qof_value(r, c.element, c.none));
            match &got {
                Some(q) if want.iter().any(|t| same(q, t, c.bound)) => s.found += 1,
                Some(_) => s.contradicted += 1,
                None => s.missing += 1,
            }
            if !got
                .as_ref()
                .is_some_and(|q| want.iter().any(|t| same(q, t, c.bound)))
            {
                let at = group.first().map_or(0, |f| f.number);
                let t = want.iter().cloned().collect::<Vec<_>>().join(" | ");
                misses.push((
                    capture.clone(),
                    c.label,
                    t,
                    format!("{} (frame {at})", got.unwrap_or_else(|| "none".into())),
                ));
            }
        }
    }
    let rows: Vec<String> = checks
        .iter()
        .zip(&scores)
        .filter(|(_, s)| s.total() > 0)
        .map(|(c, s)| {
            format!(
                "    {:<32} {:>4} found {:>3} contradicted {:>3} missing",
                c.label, s.found, s.contradicted, s.missing
            )
        })
        .collect();
    if !rows.is_empty() {
        table.push_str(&format!(
            "{capture}: {} records, {} frames ({by_time} flows placed by time)\n{}\n",
            records.len(),
            frames.len(),
            rows.join("\n")
        ));
    }
    (scores, misses)
}

#[test]
fn text_plugins_agree_with_tshark() {
    if !have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut captures = corpus_files();
    for (file, cap) in [
        ("synthetic-http.pcap", http_capture()),
        ("synthetic-rtsp.pcap", rtsp_capture()),
        ("synthetic-sip.pcap", sip_capture()),
        ("synthetic-smtp.pcap", smtp_capture()),
        ("synthetic-ssdp.pcap", ssdp_capture()),
    ] {
        let path = tmp.path().join(file);
        cap.write(&path);
        // To look at them with other tools: QOF_KEEP_CAPTURES=DIR.
        if let Some(dir) = std::env::var_os("QOF_KEEP_CAPTURES") {
            std::fs::copy(&path, Path::new(&dir).join(file)).unwrap();
        }
        captures.push(path);
    }
    let checks = checks();
    let mut totals = vec![Score::default(); checks.len()];
    let (mut table, mut unexplained) = (String::new(), Vec::new());
    let mut used = BTreeSet::new();
    for cap in &captures {
        let (scores, misses) = score(cap, tmp.path(), &checks, &mut table);
        for (t, s) in totals.iter_mut().zip(scores) {
            t.found += s.found;
            t.contradicted += s.contradicted;
            t.missing += s.missing;
        }
        for m in misses {
            let known = EXPLAINED.iter().enumerate().find_map(|(i, e)| {
                let j = e.values.iter().position(|&(f, v)| f == m.1 && v == m.2)?;
                (e.capture == m.0).then_some((i, j))
            });
            match known {
                Some(k) => {
                    used.insert(k);
                }
                None => unexplained.push(m),
            }
        }
    }
    table.push_str("all captures:\n");
    let mut failures = Vec::new();
    for (c, t) in checks.iter().zip(&totals) {
        let total = t.total().max(1) as f64;
        let (found, contra) = (t.found as f64 / total, t.contradicted as f64 / total);
        table.push_str(&format!(
            "    {:<32} {:>4} of {:>4} found ({:>5.1} %), {:>3} contradicted ({:.1} %)\n",
            c.label,
            t.found,
            t.total(),
            100.0 * found,
            t.contradicted,
            100.0 * contra
        ));
        if t.total() < 5 {
            failures.push(format!("{}: only {} values compared", c.label, t.total()));
        } else if found < 0.97 || contra > 0.01 {
            failures.push(format!(
                "{}: {:.3} found, {:.3} contradicted",
                c.label, found, contra
            ));
        }
    }
    eprintln!("{table}");
    for (i, e) in EXPLAINED.iter().enumerate() {
        for (j, (f, v)) in e.values.iter().enumerate() {
            if !used.contains(&(i, j)) {
                failures.push(format!(
                    "explained miss not seen: {} {f} {v:?} ({})",
                    e.capture, e.why
                ));
            }
        }
    }
    for (capture, field, want, got) in &unexplained {
        failures.push(format!(
            "unexplained: {capture} {field}: tshark {want:?}, qof {got}"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
