//! TCP measurements against ground truth: the lab captures in `tests/data/lab/out/captures`,
//! each with a `*.truth.json` sidecar written from the link emulator, the hosts' kernels and
//! the applications (see `tests/data/lab/README.md`).
//!
//! Checked for every connection of every capture, at every observation point:
//! - minTcpRttMilliseconds within max(1 ms, 3 %) of the configured path RTT (the `rtt-*`
//!   sweep), and at least one RTT sample on every connection that carried data both ways;
//! - tcpRetransmitCount per direction = retransmitted segments whose earlier copy was also
//!   seen at the observation point;
//! - tcpSequenceLossCount per direction = payload bytes deleted from the capture (observation
//!   loss), and 0 where nothing is missing;
//! - tcpSequenceCount per direction = the bytes the application sent;
//! - declaredTcpMss and the window-scale and timestamp characteristics = what was negotiated;
//! - why segments were sent again (observation-loss captures aside): tcpFastRetransmitCount,
//!   tcpTimeoutRetransmitCount (RTO, the go-back-N that follows it, probe and SYN timeouts),
//!   tcpSpuriousRetransmitCount and tcpReorderCount per direction = the retransmissions of
//!   each cause, the spurious ones and the reordered originals visible at the observation
//!   point, as the sidecar labels them from the sender's side and the emulator's log; at least
//!   95 % of these checks, each miss printed with its connection;
//! - in the queue run, meanTcpRttMicroseconds and maxTcpRttMicroseconds within 15 % of the
//!   path's RTT plus the mean and the largest queueing delay of the data packets.

mod common;

use common::{lab_captures_dir, name, qof, run};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const TEMPLATE: &[&str] = &[
    "flowStartMilliseconds",
    "flowEndMilliseconds",
    "sourceIPv4Address",
    "destinationIPv4Address",
    "sourceIPv6Address",
    "destinationIPv6Address",
    "sourceTransportPort",
    "destinationTransportPort",
    "protocolIdentifier",
    "flowEndReason",
    "packetDeltaCount",
    "reversePacketDeltaCount",
    "tcpSequenceCount",
    "reverseTcpSequenceCount",
    "tcpRetransmitCount",
    "reverseTcpRetransmitCount",
    "tcpSequenceLossCount",
    "reverseTcpSequenceLossCount",
    "tcpLossEventCount",
    "reverseTcpLossEventCount",
    "minTcpRttMilliseconds",
    "lastTcpRttMilliseconds",
    "tcpRttSampleCount",
    "declaredTcpMss",
    "reverseDeclaredTcpMss",
    "qofTcpCharacteristics",
    "reverseQofTcpCharacteristics",
    "tcpFastRetransmitCount",
    "reverseTcpFastRetransmitCount",
    "tcpTimeoutRetransmitCount",
    "reverseTcpTimeoutRetransmitCount",
    "tcpSpuriousRetransmitCount",
    "reverseTcpSpuriousRetransmitCount",
    "tcpReorderCount",
    "reverseTcpReorderCount",
    "meanTcpRttMicroseconds",
    "maxTcpRttMicroseconds",
];

/// The sidecar's retransmission causes that are timeouts (everything but `fast`; `unknown`
/// is neither).
const TIMEOUT_CAUSES: &[&str] = &["rto", "rto-loss-state", "syn-rto", "tlp"];

/// Observation points, in path order.
const POINTS: [&str; 3] = ["near-client", "mid", "near-server"];

const WINDOW_SCALE: u64 = 0x40;
const TIMESTAMP: u64 = 0x10;

fn captures() -> Vec<PathBuf> {
    let dir = lab_captures_dir();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the lab captures {} are missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    v
}

fn truth_of(pcap: &Path) -> Value {
    let p = pcap.with_extension("truth.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn records(pcap: &Path, yaml: &Path) -> Vec<Value> {
    let out = run(qof()
        .arg("--in")
        .arg(pcap)
        .arg("--yaml")
        .arg(yaml)
        .args(["--format", "json"]));
    assert!(
        out.status.success(),
        "qof failed on {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// An endpoint as (address, port).
type Endpoint = (String, u64);

fn endpoint(v: &Value) -> Endpoint {
    (v[0].as_str().unwrap().to_string(), v[1].as_u64().unwrap())
}

/// A record's `source` or `destination` address, IPv4 or IPv6 (a record has one of them).
fn address(r: &Value, which: &str) -> String {
    r.get(format!("{which}IPv4Address"))
        .or_else(|| r.get(format!("{which}IPv6Address")))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("a record without a {which} address: {r}"))
        .to_string()
}

/// Tally of one kind of check.
#[derive(Default)]
struct Tally {
    pass: usize,
    fail: Vec<String>,
    /// Checks where the truth or the measurement is not zero, and how many of them pass.
    nonzero: usize,
    nonzero_pass: usize,
}

impl Tally {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.pass += 1;
        } else {
            self.fail.push(what());
        }
    }
    fn total(&self) -> usize {
        self.pass + self.fail.len()
    }
    /// `check(got == want)`, also counted among the non-zero checks when either is.
    fn count(&mut self, got: u64, want: u64, what: impl FnOnce() -> String) {
        if got != 0 || want != 0 {
            self.nonzero += 1;
            self.nonzero_pass += usize::from(got == want);
        }
        self.check(got == want, what);
    }
}

/// Why a cause check may miss: what no header shows at this point, read from the sidecar.
/// `None` when the sidecar shows no reason.
fn explain(truth: &Value, conn: &Value, dir: &str, cause: &str) -> Option<&'static str> {
    let upstream = truth["observation_point"]["upstream_segments"][dir]
        .as_array()
        .unwrap();
    let syn_lost_before = conn["at_op"][dir]["drops"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["flags"] == "S" && d["kind"] == "orig" && upstream.contains(&d["where"]));
    (cause == "timeout" && syn_lost_before).then_some(
        "the first SYN was lost before this point: the SYN seen is the retransmission, and \
         nothing shows it (no earlier packet of the connection to compare its timestamp or IP \
         ID with)",
    )
}

/// Retransmissions the observation point can see as such: the sidecar's count of segments
/// whose earlier copy was also captured. In a capture with frames deleted afterwards, a
/// retransmission whose original (or which itself) was deleted is no longer seen twice.
fn expected_retransmits(truth: &Value, conn: &Value, dir: &str) -> u64 {
    let at = &conn["at_op"][dir];
    let seen = at["retransmissions"]["data"]["seen_before_at_op"]
        .as_u64()
        .unwrap();
    let Some(removed) = truth["observation_loss"]["removed_frames"].as_array() else {
        return seen;
    };
    let retransmitted: HashSet<u64> = at["drops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["plen"].as_u64().unwrap() > 0)
        .map(|d| d["rseq"].as_u64().unwrap())
        .collect();
    let client = endpoint(&conn["five_tuple"]["client"]);
    let hidden = removed
        .iter()
        .filter(|f| {
            f["dir"] == dir
                && endpoint(&f["client"]) == client
                && f["plen"].as_u64().unwrap() > 0
                && retransmitted.contains(&f["rseq"].as_u64().unwrap())
        })
        .count() as u64;
    seen - hidden
}

/// Bytes the application sent in a direction: from its own log, or (iperf3, whose logs the
/// sidecar does not carry) the sequence span the emulator saw less the SYN and FIN.
fn app_bytes(conn: &Value, dir: &str) -> u64 {
    if let Some(n) = conn["app"]["payload_bytes"][dir].as_u64() {
        return n;
    }
    let sent = &conn["at_op"][dir]["sent_by_host"];
    let flag = |k: &str| u64::from(sent[k].as_u64().unwrap() > 0);
    sent["seq_span"].as_u64().unwrap() - flag("syn") - flag("fin")
}

/// Retransmissions of `causes` visible at the observation point, per the sidecar.
fn visible_of(conn: &Value, dir: &str, causes: &[&str]) -> u64 {
    let by = &conn["at_op"][dir]["retransmissions"]["by_cause"];
    causes
        .iter()
        .filter_map(|c| by[*c]["visible_at_op"].as_u64())
        .sum()
}

/// Spurious retransmissions visible at the observation point: those the sender's side labels
/// spurious (an earlier copy reached the receiver) and that were not dropped before the point.
fn spurious_visible(truth: &Value, conn: &Value, dir: &str) -> u64 {
    let upstream = truth["observation_point"]["upstream_segments"][dir]
        .as_array()
        .unwrap();
    conn["retransmission_causes"][dir]["per_packet"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["spurious"] == true && !upstream.contains(&p["dropped_at"]))
        .count() as u64
}

/// Originals that arrived after later data at the observation point (reorder runs, c2s).
fn reordered_visible(conn: &Value, dir: &str) -> u64 {
    conn["at_op"][dir]["reordering"]["reordered_visible_at_op"]
        .as_u64()
        .unwrap_or(0)
}

/// Payload bytes deleted from the capture although the receiver got them, per direction.
fn observation_lost(truth: &Value, conn: &Value, dir: &str) -> u64 {
    let client = endpoint(&conn["five_tuple"]["client"]);
    truth["observation_loss"]["per_connection"]
        .as_array()
        .map_or(0, |v| {
            v.iter()
                .filter(|c| c["dir"] == dir && endpoint(&c["client"]) == client)
                .map(|c| c["obs_lost_payload_bytes"].as_u64().unwrap())
                .sum()
        })
}

#[test]
fn tcp_measurements_match_the_lab_truth() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("tcp.yaml");
    std::fs::write(&yaml, common::template_yaml(TEMPLATE)).unwrap();

    let mut rtt = Tally::default();
    let mut samples = Tally::default();
    let mut retx = Tally::default();
    let mut loss = Tally::default();
    let mut count = Tally::default();
    let mut options = Tally::default();
    // Causes, by cause and observation point.
    let cause_names = ["fast", "timeout", "spurious", "reorder"];
    let mut causes: HashMap<(&str, &str), Tally> = HashMap::new();
    let mut load = Tally::default();
    let mut report = String::new();

    for pcap in captures() {
        let cap = name(&pcap);
        let truth = truth_of(&pcap);
        let recs = records(&pcap, &yaml);
        // Records by (client, server) endpoints, whichever way the record is oriented.
        let mut by_conn: HashMap<(Endpoint, Endpoint), Vec<(&Value, bool)>> = HashMap::new();
        for r in &recs {
            if u(r, "protocolIdentifier") != 6 {
                continue;
            }
            let a = (address(r, "source"), u(r, "sourceTransportPort"));
            let b = (address(r, "destination"), u(r, "destinationTransportPort"));
            // The lab's client is 10.77.0.1 (fd77::1 in the IPv6 runs).
            if a.0 == "10.77.0.1" || a.0 == "fd77::1" {
                by_conn.entry((a, b)).or_default().push((r, false));
            } else {
                by_conn.entry((b, a)).or_default().push((r, true));
            }
        }
        let lossless = truth["scenario"] != "transport-loss"
            && truth["observation_loss"].is_null()
            && !cap.starts_with("iperf3");
        for conn in truth["connections"].as_array().unwrap() {
            let client = endpoint(&conn["five_tuple"]["client"]);
            let server = endpoint(&conn["five_tuple"]["server"]);
            let label = format!("{cap} {}:{}", client.0, client.1);
            let Some(rs) = by_conn.get(&(client.clone(), server.clone())) else {
                count.check(false, || format!("{label}: no flow record"));
                continue;
            };
            if rs.len() != 1 {
                writeln!(report, "{label}: {} records", rs.len()).unwrap();
            }
            // Sum directional counters over the connection's records (a connection whose
            // last packets follow its close is continued in a second record).
            let sum = |fwd_key: &str, dir: &str| -> u64 {
                rs.iter()
                    .map(|(r, swapped)| {
                        let forward = (dir == "c2s") != *swapped;
                        let key = if forward {
                            fwd_key.to_string()
                        } else {
                            format!(
                                "reverse{}{}",
                                fwd_key[..1].to_ascii_uppercase(),
                                &fwd_key[1..]
                            )
                        };
                        u(r, &key)
                    })
                    .sum()
            };
            let first = rs[0].0;
            let id = truth["observation_point"]["id"].as_str().unwrap();
            let point = POINTS.into_iter().find(|p| *p == id).unwrap_or("obs");
            // Frames deleted after the capture (`obs-*`): the sidecar's causes describe the
            // capture they were deleted from.
            let obs_loss = truth["observation_loss"]["removed_frames"].is_array();
            if !obs_loss {
                for dir in ["c2s", "s2c"] {
                    let wants = [
                        visible_of(conn, dir, &["fast"]),
                        visible_of(conn, dir, TIMEOUT_CAUSES),
                        spurious_visible(&truth, conn, dir),
                        reordered_visible(conn, dir),
                    ];
                    let keys = [
                        "tcpFastRetransmitCount",
                        "tcpTimeoutRetransmitCount",
                        "tcpSpuriousRetransmitCount",
                        "tcpReorderCount",
                    ];
                    for ((cause, key), want) in cause_names.into_iter().zip(keys).zip(wants) {
                        let got = sum(key, dir);
                        causes
                            .entry((cause, point))
                            .or_default()
                            .count(got, want, || {
                                let why =
                                    explain(&truth, conn, dir, cause).unwrap_or("UNEXPLAINED");
                                format!("{label} {dir}: {key} {got}, truth {want}: {why}")
                            });
                    }
                }
            }
            if cap.starts_with("queue-") {
                // The RTT the data met: the path's (the client's kernel's minimum) plus the
                // queueing delay, mean and largest over the data packets.
                let q = &conn["at_op"]["c2s"]["queueing"]["wait_ms_data"];
                let path_ms = conn["rtt_truth_ms"]["kernel_client_min_rtt"]
                    .as_f64()
                    .unwrap();
                for (key, wait) in [
                    ("meanTcpRttMicroseconds", q["mean"].as_f64().unwrap()),
                    ("maxTcpRttMicroseconds", q["max"].as_f64().unwrap()),
                ] {
                    let want = path_ms + wait;
                    let got = u(first, key) as f64 / 1000.0;
                    load.check((got - want).abs() <= want * 0.15, || {
                        format!("{label}: {key} {got:.1} ms, path and queue {want:.1} ms (±15 %)")
                    });
                    writeln!(report, "{label}: {key} {got:.1} ms, truth {want:.1} ms").unwrap();
                }
            }
            for dir in ["c2s", "s2c"] {
                let app = app_bytes(conn, dir);
                let got = sum("tcpSequenceCount", dir);
                count.check(got == app, || {
                    format!("{label} {dir}: tcpSequenceCount {got}, application sent {app}")
                });
                let want = expected_retransmits(&truth, conn, dir);
                let got = sum("tcpRetransmitCount", dir);
                retx.check(got == want, || {
                    format!("{label} {dir}: tcpRetransmitCount {got}, visible twice {want}")
                });
                let got = sum("tcpSequenceLossCount", dir);
                if !truth["observation_loss"].is_null() {
                    let want = observation_lost(&truth, conn, dir);
                    loss.check(got == want, || {
                        format!("{label} {dir}: tcpSequenceLossCount {got}, deleted {want}")
                    });
                } else if lossless {
                    loss.check(got == 0, || {
                        format!("{label} {dir}: tcpSequenceLossCount {got} on a lossless capture")
                    });
                } else if got != 0 {
                    writeln!(
                        report,
                        "{label} {dir}: tcpSequenceLossCount {got} (transport loss capture)"
                    )
                    .unwrap();
                }
            }
            // Options. Negotiated = both hosts' sysctls on; the kernel's tcp_info agrees
            // where the sidecar has it. The MSS option carries the host's advertised MSS
            // (tcp_info's advmss is that less the 12 timestamp-option octets), or MTU - 40.
            let hosts = &truth["hosts"];
            let both = |k: &str| hosts["client"][k] == 1 && hosts["server"][k] == 1;
            let (ts, ws) = (both("tcp_timestamps"), both("tcp_window_scaling"));
            let declared = |side: &str| -> u64 {
                let info = &conn["kernel"][side]["tcp_info_final"];
                match info["advmss"].as_u64() {
                    Some(adv) => adv + if ts { 12 } else { 0 },
                    None => hosts[side]["mtu"].as_u64().unwrap() - 40,
                }
            };
            let (r, swapped) = rs[0];
            let get = |client_side: bool, n: &str| -> u64 {
                if client_side != swapped {
                    u(r, n)
                } else {
                    u(
                        r,
                        &format!("reverse{}{}", n[..1].to_ascii_uppercase(), &n[1..]),
                    )
                }
            };
            for (side, is_client) in [("client", true), ("server", false)] {
                let want = declared(side);
                let got = get(is_client, "declaredTcpMss");
                options.check(got == want, || {
                    format!("{label}: {side} declaredTcpMss {got}, advertised {want}")
                });
                let chars = get(is_client, "qofTcpCharacteristics");
                for (bit, want, what) in [
                    (WINDOW_SCALE, ws, "window scale"),
                    (TIMESTAMP, ts, "timestamps"),
                ] {
                    let got = chars & bit != 0;
                    options.check(got == want, || {
                        format!("{label}: {side} {what} seen {got}, negotiated {want}")
                    });
                }
            }
            // RTT.
            let both_ways = app_bytes(conn, "c2s") > 0 && app_bytes(conn, "s2c") > 0;
            if both_ways {
                let n: u64 = rs.iter().map(|(r, _)| u(r, "tcpRttSampleCount")).sum();
                samples.check(n > 0, || format!("{label}: no RTT sample"));
            }
            if cap.starts_with("rtt-") {
                let cfg = truth["path"]["rtt_configured_ms"].as_f64().unwrap();
                let got = u(first, "minTcpRttMilliseconds") as f64;
                let tol = (cfg * 0.03).max(1.0);
                rtt.check((got - cfg).abs() <= tol, || {
                    format!("{label}: minTcpRttMilliseconds {got}, path RTT {cfg} (±{tol})")
                });
            }
            writeln!(
                report,
                "{label}: rtt min {} last {} n {} | loss events {}/{}",
                u(first, "minTcpRttMilliseconds"),
                u(first, "lastTcpRttMilliseconds"),
                u(first, "tcpRttSampleCount"),
                sum("tcpLossEventCount", "c2s"),
                sum("tcpLossEventCount", "s2c"),
            )
            .unwrap();
        }
    }

    let tallies = [
        ("minTcpRtt within tolerance", &rtt),
        ("RTT sample on two-way connections", &samples),
        ("tcpRetransmitCount", &retx),
        ("tcpSequenceLossCount", &loss),
        ("tcpSequenceCount", &count),
        ("MSS, window scale, timestamps", &options),
    ];
    let mut summary = String::new();
    let (mut pass, mut total) = (0, 0);
    for (what, t) in &tallies {
        writeln!(summary, "{what}: {} of {}", t.pass, t.total()).unwrap();
        for f in &t.fail {
            writeln!(summary, "  FAIL {f}").unwrap();
        }
        pass += t.pass;
        total += t.total();
    }
    // Causes: a table by cause and point, then every miss.
    // (In parentheses: the checks where the truth or qof is not zero.)
    let mut table = String::from(
        "\ncauses (pass/checks, non-zero)   near-client                mid        near-server\n",
    );
    let (mut c_pass, mut c_total) = (0, 0);
    let mut misses = String::new();
    for cause in cause_names {
        write!(table, "{cause:<30}").unwrap();
        for point in POINTS {
            let t = causes.remove(&(cause, point)).unwrap_or_default();
            let cell = format!(
                "{}/{} ({}/{})",
                t.pass,
                t.total(),
                t.nonzero_pass,
                t.nonzero
            );
            write!(table, " {cell:>18}").unwrap();
            c_pass += t.pass;
            c_total += t.total();
            for f in t.fail {
                writeln!(misses, "  MISS {f}").unwrap();
            }
        }
        table.push('\n');
    }
    writeln!(
        table,
        "cause checks: {c_pass} of {c_total} ({:.2} %)\n{misses}RTT under load (queue run): {} of {}",
        100.0 * c_pass as f64 / c_total as f64,
        load.pass,
        load.total()
    )
    .unwrap();
    for f in &load.fail {
        writeln!(table, "  FAIL {f}").unwrap();
    }
    println!("{report}");
    println!("{summary}all checks: {pass} of {total}{table}");
    assert_eq!(pass, total, "\n{summary}");
    assert!(
        c_pass * 100 >= c_total * 95,
        "cause checks below 95 %:{table}"
    );
    assert!(
        !misses.contains("UNEXPLAINED"),
        "a cause check missed for no reason the sidecar shows:{table}"
    );
    assert_eq!(load.pass, load.total(), "{table}");
    assert_eq!(
        load.total(),
        6,
        "the queue run at three points, mean and max"
    );
}
