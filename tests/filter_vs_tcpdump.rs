//! `--filter` against tcpdump: the same verdict on every frame of the corpus.
//!
//! tcpdump (same libpcap, but libpcap's own C interpreter) is the oracle. For every corpus file
//! tcpdump reads identically to our capture reader, and every expression below,
//! `tcpdump -r FILE -w OUT EXPR` must write exactly the frames our [`Filter`] accepts, in order,
//! compared by (timestamp in µs, wire length, captured bytes). Where tcpdump refuses an
//! expression for a file's link type (`ether host` on raw IP), the pair is counted as skipped
//! and we must reject every frame of it. Expressions libpcap refuses outright must give a
//! one-line error from [`Filter::new`], and tcpdump must refuse them too.
//!
//! Needs tcpdump; fails loudly without it unless QOF_SKIP_EXTERNAL=1.

use qof::capture;
use qof::filter::{Filter, FilterError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus");

/// Expressions checked on every file: protocols, hosts and nets, ports and ranges, header
/// bytes and flags, length arithmetic (every ALU operator), encapsulations, link-layer
/// addresses, boolean structure, and one run-time division by zero.
const EXPRESSIONS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "ip",
    "ip6",
    "arp",
    "tcp port 443",
    "udp port 53",
    "port 80",
    "src port 443",
    "dst port 53",
    "portrange 1-1023",
    "tcp portrange 8000-9000",
    "udp portrange 5000-65535",
    "host 172.16.42.216",
    "src host 10.54.169.250",
    "dst host 192.168.170.8",
    "net 10.0.0.0/8",
    "net 192.168.0.0/16",
    "src net 172.16.0.0/12",
    "ip6 net fe80::/10",
    "ip6 and tcp port 443",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "tcp[tcpflags] & tcp-fin != 0 or tcp[tcpflags] & tcp-rst != 0",
    "ip[6:2] & 0x1fff != 0",
    "ip[6] & 0x20 != 0",
    "ip[0] & 0xf != 5",
    "ip[8] < 64",
    "ip6 and ip6[6] == 44",
    "icmp[icmptype] == icmp-echo or icmp[icmptype] == icmp-echoreply",
    "icmp6 and ip6[40] == 135",
    "udp[8:2] & 0x8000 != 0",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    "greater 1000",
    "less 100",
    "len > 500 and len < 1400",
    "len - 14 > 1000",
    "len * 3 > 3000",
    "len / 4 == 15",
    "len % 3 == 0",
    "len & 0xf == 0",
    "len | 1 == 61",
    "len ^ 1 == 61",
    "len << 2 > 5000",
    "len >> 1 > 700",
    "-len < 4294967000",
    "ip and len % (ip[8] - ip[8]) == 0",
    "vlan",
    "vlan and host 192.168.170.8",
    "vlan and udp",
    "vlan 5",
    "mpls",
    "mpls and udp",
    "pppoes",
    "pppoes 0x17",
    "ip proto gre",
    "proto 47 or proto 50",
    "geneve",
    "ip6 protochain 6",
    "ether host 78:f8:82:d3:fb:c2",
    "ether src aa:bb:cc:00:03:10",
    "ether broadcast",
    "ether multicast",
    "ether[12:2] = 0x8100",
    "inbound",
    "not tcp",
    "not (tcp or udp)",
    "udp port 53 or (tcp and port 80)",
    "(tcp or udp) and not port 443 and not port 53",
    "ip and not net 10.0.0.0/8 and (tcp[13] & 2 != 0 or udp)",
];

/// Expressions libpcap refuses whatever the link type.
const REFUSED: &[&str] = &[
    "tcp port x",
    "tcp and",
    "host",
    "len / 0 = 1",
    "port 99999",
    "ip[",
    "foo bar",
];

/// One frame as compared: timestamp truncated to µs (libpcap reads files at µs precision
/// unless asked otherwise, and tcpdump writes µs), wire length, captured bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    ts_us: u64,
    orig_len: u32,
    data: Vec<u8>,
}

/// A frame with its link type, as our filter sees it.
struct OurFrame {
    linktype: u32,
    rec: Rec,
}

fn tcpdump_path() -> Option<PathBuf> {
    for p in ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"] {
        if Path::new(p).is_file() {
            return Some(PathBuf::from(p));
        }
    }
    if std::env::var("QOF_SKIP_EXTERNAL").as_deref() == Ok("1") {
        eprintln!("tcpdump not installed: skipped (QOF_SKIP_EXTERNAL=1)");
        return None;
    }
    panic!("tcpdump is not installed (apt-get install tcpdump, or set QOF_SKIP_EXTERNAL=1)");
}

/// Every frame our reader yields before the end or the first error.
fn read_ours(path: &Path) -> Vec<OurFrame> {
    let mut out = Vec::new();
    let Ok(mut src) = capture::open(&path.to_string_lossy()) else {
        return out;
    };
    while let Ok(Some(f)) = src.next_frame() {
        out.push(OurFrame {
            linktype: f.linktype,
            rec: Rec {
                ts_us: f.ts.nanos() / 1000,
                orig_len: f.orig_len,
                data: f.data.to_vec(),
            },
        });
    }
    out
}

/// The frames of a file tcpdump wrote.
fn read_written(path: &Path) -> Vec<Rec> {
    read_ours(path).into_iter().map(|f| f.rec).collect()
}

/// What tcpdump did with a (file, expression) pair.
enum Verdict {
    /// The frames it wrote.
    Wrote(Vec<Rec>),
    /// It refused to compile the expression for the file's link type; its message.
    Refused(String),
    /// It could not read the file at all.
    Unreadable(String),
}

fn tcpdump_filter(tcpdump: &Path, file: &Path, expr: Option<&str>, out: &Path) -> Verdict {
    let _ = std::fs::remove_file(out);
    let mut cmd = Command::new(tcpdump);
    cmd.arg("-r").arg(file).arg("-w").arg(out);
    if let Some(e) = expr {
        // `--`: an expression may start with '-' (`-len < ...`).
        cmd.arg("--").arg(e);
    }
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    if o.status.success() {
        return Verdict::Wrote(read_written(out));
    }
    // A failure is either a refusal (nothing written: tcpdump compiles before opening OUT)
    // or damage in the input after some frames were written. `-d` tells them apart: it only
    // compiles the expression for the file's link type.
    if let Some(e) = expr {
        let d = Command::new(tcpdump)
            .arg("-d")
            .arg("-r")
            .arg(file)
            .arg("--")
            .arg(e)
            .output()
            .unwrap_or_else(|err| panic!("cannot run tcpdump -d: {err}"));
        if !d.status.success() {
            return Verdict::Refused(String::from_utf8_lossy(&d.stderr).into_owned());
        }
    }
    if out.exists() {
        Verdict::Wrote(read_written(out))
    } else {
        Verdict::Unreadable(stderr)
    }
}

fn corpus_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap_or_else(|e| panic!("the corpus {CORPUS} is missing: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn every_frame_gets_tcpdumps_verdict() {
    let Some(tcpdump) = tcpdump_path() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.pcap");

    let mut filters: Vec<(&str, Filter)> = EXPRESSIONS
        .iter()
        .map(|e| {
            let f = Filter::new(e).unwrap_or_else(|err| panic!("{e}: {err}"));
            (*e, f)
        })
        .collect();

    let mut files_used = 0usize;
    let mut excluded = Vec::new();
    let mut linktypes = BTreeSet::new();
    let mut frames_checked = 0u64;
    let mut pairs_checked = 0usize;
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut accepted_per_expr: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut failures = Vec::new();

    for file in corpus_files() {
        // Only files both readers see identically test the filter rather than the readers.
        let ours = read_ours(&file);
        let baseline = match tcpdump_filter(&tcpdump, &file, None, &out) {
            Verdict::Wrote(frames) => frames,
            Verdict::Refused(msg) | Verdict::Unreadable(msg) => {
                excluded.push(format!(
                    "{}: tcpdump cannot read it: {}",
                    name(&file),
                    msg.trim()
                ));
                continue;
            }
        };
        let our_recs: Vec<&Rec> = ours.iter().map(|f| &f.rec).collect();
        if baseline.iter().collect::<Vec<_>>() != our_recs {
            excluded.push(format!(
                "{}: tcpdump and qof read different frames ({} vs {})",
                name(&file),
                baseline.len(),
                ours.len()
            ));
            continue;
        }
        files_used += 1;
        linktypes.extend(ours.iter().map(|f| f.linktype));

        for (expr, filter) in filters.iter_mut() {
            let accepted: Vec<&Rec> = ours
                .iter()
                .filter(|f| filter.matches(f.linktype, f.rec.orig_len, &f.rec.data))
                .map(|f| &f.rec)
                .collect();
            let entry = accepted_per_expr.entry(expr).or_default();
            entry.0 += accepted.len() as u64;
            entry.1 += (ours.len() - accepted.len()) as u64;
            match tcpdump_filter(&tcpdump, &file, Some(expr), &out) {
                Verdict::Wrote(theirs) => {
                    pairs_checked += 1;
                    frames_checked += ours.len() as u64;
                    if theirs.iter().collect::<Vec<_>>() != accepted {
                        let first_diff = theirs
                            .iter()
                            .zip(&accepted)
                            .position(|(a, b)| a != *b)
                            .unwrap_or(theirs.len().min(accepted.len()));
                        failures.push(format!(
                            "{} '{}': tcpdump kept {} frames, qof {}; first difference at kept frame {}",
                            name(&file),
                            expr,
                            theirs.len(),
                            accepted.len(),
                            first_diff
                        ));
                    }
                }
                Verdict::Refused(msg) => {
                    // tcpdump's last line is its reason ("no VLAN support for PPP").
                    let reason = msg.trim().lines().last().unwrap_or_default().to_string();
                    *skipped.entry(reason).or_default() += 1;
                    if !accepted.is_empty() {
                        failures.push(format!(
                            "{} '{}': tcpdump refuses the expression for this link type but qof accepted {} frames",
                            name(&file),
                            expr,
                            accepted.len()
                        ));
                    }
                }
                Verdict::Unreadable(msg) => failures.push(format!(
                    "{} '{}': tcpdump failed: {}",
                    name(&file),
                    expr,
                    msg.trim()
                )),
            }
        }
    }

    eprintln!(
        "filter vs tcpdump: {} expressions, {} files ({} excluded), link types {:?}",
        EXPRESSIONS.len(),
        files_used,
        excluded.len(),
        linktypes
    );
    for e in &excluded {
        eprintln!("  excluded {e}");
    }
    eprintln!(
        "  {pairs_checked} (file, expression) pairs agree-checked over {frames_checked} frame verdicts; {} pairs skipped (tcpdump refuses the expression for the link type)",
        skipped.values().sum::<usize>()
    );
    for (reason, n) in &skipped {
        eprintln!("  {n:>4} pairs skipped: {reason}");
    }
    for (e, (acc, rej)) in &accepted_per_expr {
        eprintln!("  {acc:>6} accepted {rej:>6} rejected  {e}");
    }

    assert!(
        failures.is_empty(),
        "{} disagreements with tcpdump:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(files_used >= 40, "only {files_used} corpus files usable");
    // The link types the task names must all have been exercised.
    for lt in [0u32, 1, 9, 101, 113, 228, 229, 276] {
        assert!(linktypes.contains(&lt), "no usable file of link type {lt}");
    }
    // Every expression must select something somewhere and leave something out somewhere,
    // or agreeing with tcpdump would prove little; the run-time division by zero is the one
    // expression meant to reject everything.
    let vacuous: Vec<&&str> = accepted_per_expr
        .iter()
        .filter(|(e, (acc, rej))| *rej == 0 || (*acc == 0 && !e.contains("(ip[8] - ip[8])")))
        .map(|(e, _)| e)
        .collect();
    assert!(
        vacuous.is_empty(),
        "expressions that accept or reject every frame of the corpus: {vacuous:?}"
    );
}

#[test]
fn expressions_libpcap_refuses_give_one_line_errors_as_tcpdump_does() {
    let Some(tcpdump) = tcpdump_path() else {
        return;
    };
    let file = Path::new(CORPUS).join("tcpdump__mptcp-v0.pcap");
    for expr in REFUSED {
        let err = Filter::new(expr).expect_err(expr);
        let text = err.to_string();
        assert!(
            matches!(err, FilterError::Expression { .. }),
            "{expr}: {err:?}"
        );
        assert!(text.starts_with(&format!("--filter '{expr}': ")), "{text}");
        assert!(!text.contains('\n'), "{text}");
        let d = Command::new(&tcpdump)
            .arg("-d")
            .arg("-r")
            .arg(&file)
            .arg("--")
            .arg(expr)
            .output()
            .expect("run tcpdump -d");
        assert!(!d.status.success(), "tcpdump accepted '{expr}'");
        // Same libpcap, same message.
        let theirs = String::from_utf8_lossy(&d.stderr);
        let ours = text.trim_start_matches(&format!("--filter '{expr}': "));
        assert!(
            theirs.contains(ours),
            "'{expr}': ours {ours:?}, tcpdump's {theirs:?}"
        );
    }
}

#[test]
fn missing_libpcap_is_a_clear_error() {
    let err = Filter::with_library_names("tcp", &["libnotthere.so", "libnotthere.so.1"])
        .expect_err("no such library");
    let text = err.to_string();
    assert!(matches!(err, FilterError::LibpcapMissing { .. }), "{err:?}");
    assert!(
        text.starts_with("--filter: libpcap is not installed (apt-get install libpcap0.8): "),
        "{text}"
    );
    assert!(text.contains("libnotthere.so.1"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}
