//! TCP retransmissions and RTT on real traces, against tcptrace (the Debian package): for every
//! TCP connection of the corpus (tests/data/corpus), qof's per-direction tcpRetransmitCount and its
//! minTcpRttMilliseconds are scored against tcptrace's "rexmt data pkts" and "RTT min" (`-l -r`).
//! Both must agree on at least 95 % of the connections, and every disagreement must be one of
//! the explained cases listed below (`RETX_EXPECTED`, `RTT_EXPECTED`, `ONE_SIDED`). Run with
//! `cargo test --test tcptrace_corpus -- --nocapture` to see the per-file and overall figures.
//!
//! # How a connection is scored
//!
//! A connection is the unordered pair of endpoints (address, port). tcptrace may trace several
//! connections on one pair (port reuse) and qof may write several records for one connection
//! (a packet after the FIN/ACK close starts a new record; so does an idle timeout): both sides
//! are summed per pair. qof runs with tcptrace's idle interval (4 minutes) instead of its default
//! 30 s, so that a pause in a connection does not end the record: a record starts without
//! sequence history, and a segment repeating one sent before the pause would not count as a
//! retransmission (ndpi__sites and ndpi__heuristic_tcp_ack_payload have such pauses).
//!
//! **Retransmissions** agree when, in both directions, qof's count equals tcptrace's rexmt data
//! pkts less the SYN and FIN segments without payload that repeat one seen before. tcptrace
//! counts those because SYN and FIN occupy sequence space; qof, like QoF, counts segments whose
//! payload octets were seen before. The repeats are counted from tshark's decode of the same
//! file. Without this adjustment 161 connections more disagree, 134 of them in
//! slips__test7-malicious (SYNs to hosts that never answer, sent 2-5 times); both figures are
//! printed.
//!
//! **RTT**: tcptrace's RTT a→b is the time from a segment of a to the ACK from b that
//! acknowledges exactly its end, as seen at the capture point (the half of the path beyond the
//! capture point on b's side), with Karn's rule. qof's minTcpRttMilliseconds is the least sum of
//! the two current halves (data → ACK, and also TSval → TSecr). So qof is compared with
//! min(a→b) + min(b→a): they agree when both have no RTT, or when qof's value is within
//! max(1 ms, 10 %) of that sum (qof rounds to whole milliseconds; 10 % leaves room for qof's
//! pairing of concurrent halves, which can only make its value larger). A connection where
//! tcptrace has RTT samples in one direction only cannot be compared and is counted apart, as
//! is one where only qof has an RTT (from timestamp echoes, which tcptrace does not time; there
//! is none in this corpus).
//!
//! # Figures (tcptrace 6.6.7)
//!
//! - 2,885 connections traced by both, in 27 files; 7 traced by one only (`ONE_SIDED`).
//! - Retransmissions agree on 2,877 (99.7 %); 2,716 (94.1 %) without the SYN/FIN adjustment.
//! - RTT agrees on 2,821 of 2,836 (99.5 %), 2,137 of them where neither has an RTT (SYN scans,
//!   one-packet flows); on 684 of the 699 (97.9 %) where both measured one. 49 connections are
//!   not comparable. (Before qof timed FINs: 657 of 699, 94.0 %.)
//!
//! The test asserts at least 95 % for retransmissions, for RTT over all scored connections, and
//! for RTT where both measured one; and that every disagreement is listed with its reason, and
//! every listed one still disagrees.
//! # Why they disagree ([`Why`])
//!
//! - `Fin`: tcptrace's smallest sample in one direction is a FIN acknowledged (qof times a FIN
//!   too, but only with its one wait per direction free; QoF never timed FINs). A FIN is acknowledged at once by the receiving stack,
//!   whereas data is often acknowledged with the reply, so these samples are often the smallest
//!   in the connection (the Alexa device's connections to Amazon: FIN typically 50-75 ms, data
//!   90-400 ms).
//!   The test checks this explanation: without tcptrace's FIN samples (`-Z`), the two agree, or
//!   tcptrace has no sample left in that direction.
//! - `Flight`: qof keeps one ACK wait per direction, started at the first new segment after the
//!   previous wait ended; tcptrace times every segment whose end is acknowledged exactly. Its
//!   minimum came from a later segment of a flight (acknowledged sooner than the first), which
//!   qof did not time. qof is higher.
//! - `Pair`: qof's halves include tcptrace's two minima (within the tolerance), but they were
//!   never current at the same time, and qof sums concurrent halves (QoF's definition). qof is
//!   higher.
//! - `Echo`: qof also times TSval → TSecr echoes, including those of pure ACKs, which tcptrace
//!   does not time (it times data, SYN and FIN only). An echo of a new TSval comes back no
//!   sooner than the path allows, so qof's lower value is a real round trip; tcptrace's data
//!   samples include the server's time to answer (a client sending one request, then only
//!   ACKs).
//! - `CumAck`: capture loss. qof times a segment to the first ACK covering it; tcptrace needs an
//!   ACK matching a captured segment's end exactly, and the matching segment was not captured.
//! - `Hole`: most of the sender's segments follow a hole in the capture. qof starts no ACK wait
//!   at a segment after a hole (the receiver may be holding it until the hole is filled), while
//!   tcptrace times every one whose end is acknowledged. qof's only sample is worse.

mod common;
use common::*;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

const TEMPLATE: &[&str] = &[
    "sourceIPv4Address",
    "destinationIPv4Address",
    "sourceIPv6Address",
    "destinationIPv6Address",
    "sourceTransportPort",
    "destinationTransportPort",
    "protocolIdentifier",
    "packetDeltaCount",
    "reversePacketDeltaCount",
    "tcpSequenceCount",
    "reverseTcpSequenceCount",
    "tcpRetransmitCount",
    "reverseTcpRetransmitCount",
    "minTcpRttMilliseconds",
    "tcpRttSampleCount",
];

/// tcptrace's idle interval (NONREAL_LIVE_CONN_INTERVAL, 4 minutes), and no active timeout.
const TIMEOUTS: &str = "idle-timeout: 240\nactive-timeout: 86400\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Fin,
    Flight,
    Pair,
    Echo,
    CumAck,
    Hole,
}

/// Retransmission disagreements: file, connection (as printed by this test), reason.
const RETX_EXPECTED: &[(&str, &str, &str)] = &[
    (
        "ipfixprobe__tls.pcap",
        "87.106.189.123:443 <-> 172.16.121.155:3919",
        TLS_REPLAYED,
    ),
    (
        "ipfixprobe__tls.pcap",
        "87.106.189.123:443 <-> 172.16.121.155:3920",
        TLS_REPLAYED,
    ),
    (
        "ipfixprobe__tls.pcap",
        "87.106.189.123:443 <-> 172.16.121.155:3921",
        TLS_REPLAYED,
    ),
    (
        "ipfixprobe__tls.pcap",
        "87.106.189.123:443 <-> 172.16.121.155:3922",
        TLS_REPLAYED,
    ),
    (
        "ipfixprobe__tls.pcap",
        "87.106.189.123:443 <-> 172.16.121.155:3923",
        TLS_REPLAYED,
    ),
    (
        "ipfixprobe__tls.pcap",
        "87.106.189.123:443 <-> 172.16.121.155:3924",
        TLS_REPLAYED,
    ),
    (
        "ndpi__heuristic_tcp_ack_payload.pcap",
        "194.226.199.103:62580 <-> 217.69.139.59:443",
        "every frame of this connection is in the capture twice (same time, same IP ID). The copy \
         of the client's last segment (frame 215, 2 octets) comes after the FIN/ACK close and \
         starts a new qof record, which has no sequence history, so qof does not count it; \
         tcptrace does (17 - 1 repeated SYN = 16, qof 15). A record boundary, not a counting \
         difference",
    ),
    (
        "ndpi__reasm_crash_anon.pcapng",
        "10.209.8.148:21999 <-> 192.168.145.147:51218",
        "a fuzzed capture (nDPI's reassembly crash reproducer): flags, sequence numbers and IP \
         lengths are corrupted, and half the frames are duplicated. tcptrace records the \
         phantom octet of a FIN set in a RST|FIN|URG segment (frame 34), so the next data \
         (frame 35) overlaps it; IP lengths larger than the frames and sequence numbers with a \
         flipped bit put the two models' sequence state apart (frames 34, 35, 40, 45, 52, 95, \
         101, 105, 108: tcptrace counts them, qof does not). Neither count means anything",
    ),
];

const TLS_REPLAYED: &str = "the file is two captures concatenated, the 2015 one twice: every \
     packet of these six connections comes again later with the same time and IP ID. qof's \
     flows end on idle timeout when the second capture's packets move time on by five years, \
     and the replay is metered in new records (same counts as the first); tcptrace keeps one \
     connection (the replayed packets' times are not after its last one, and the repeated SYN \
     has the same sequence number) and counts every replayed data segment as retransmitted. \
     Nothing was retransmitted: qof is right";

/// RTT disagreements: file, connection, why, detail (empty for `Fin`, which the test checks).
const RTT_EXPECTED: &[(&str, &str, Why, &str)] = &[
    (
        "ipfixprobe__tls.pcap",
        "185.59.208.153:443 <-> 192.168.0.228:52630",
        Why::CumAck,
        "the capture has frames 176-181 only, with a hole each way: qof times client frame 180 to \
         the first ACK covering it (frame 181, 12.8 ms), which also acknowledges an uncaptured \
         segment; tcptrace has no exact ACK for frame 180, and its client sample is frame 176 \
         (18.4 ms)",
    ),
    (
        "ndpi__alexa-app.pcapng",
        "52.94.232.134:443 <-> 172.16.42.216:45703",
        Why::Pair,
        "qof's halves include 114.8 ms (client data to server ACK) and 1.3 ms (server data to \
         client ACK), but when the 114.8 ms half came the other one was 135.2 ms, then 32.1 ms: \
         114.8 + 32.1 = 147",
    ),
    (
        "ndpi__alexa-app.pcapng",
        "52.94.232.134:443 <-> 172.16.42.216:45709",
        Why::Pair,
        "qof's halves include 71.3 ms and 2.2 ms, but when the 71.3 ms half came the other one \
         was 55.1 ms, then 36.0 ms: 71.3 + 36.0 = 107",
    ),
    (
        "ndpi__alexa-app.pcapng",
        "52.94.232.134:443 <-> 172.16.42.216:45752",
        Why::Flight,
        "frames 2584-2586 are one flight: qof times 2584 (141.6 ms to the ACK in 2587), tcptrace \
         also times 2586 (126.1 ms to 2588)",
    ),
    (
        "ndpi__alexa-app.pcapng",
        "54.239.24.186:443 <-> 172.16.42.216:34019",
        Why::Fin,
        "",
    ),
    (
        "ndpi__alexa-app.pcapng",
        "54.239.28.178:443 <-> 172.16.42.216:50800",
        Why::Pair,
        "qof's halves include 62.7 ms and 3.1 ms, but when the 62.7 ms half came the other one \
         was 18.0 ms: 62.7 + 18.0 = 81",
    ),
    (
        "ndpi__alexa-app.pcapng",
        "172.16.42.216:44001 <-> 176.32.101.52:443",
        Why::Fin,
        "",
    ),
    (
        "ndpi__heuristic_tcp_ack_payload.pcap",
        "2.22.40.186:443 <-> 194.226.199.61:6946",
        Why::Flight,
        "the client acknowledges the server's data after 0.7-4 s; qof times the first segment of \
         each flight (1484, 3489, 932 ms), tcptrace also the later ones, acknowledged sooner \
         (722.8 ms: frame 298)",
    ),
    (
        "ndpi__netflix.pcap",
        "23.246.11.133:80 <-> 192.168.1.7:53172",
        Why::Pair,
        "qof's first sample is the handshake, 11.7 ms (SYN) + 4.0 ms (SYN/ACK to ACK); its later \
         client-side halves (down to 2.0 ms) came when the server-side half was the request's \
         53.8 ms or more",
    ),
    (
        "ndpi__netflix.pcap",
        "23.246.11.141:80 <-> 192.168.1.7:53176",
        Why::Echo,
        "the client sends one request, then only ACKs; the server echoes an ACK's TSval in 15.5 \
         ms (qof 15.5 + 1.7); tcptrace's least client sample is the FIN (20.6 ms), then the SYN \
         (43 ms)",
    ),
    (
        "ndpi__netflix.pcap",
        "23.246.11.141:80 <-> 192.168.1.7:53177",
        Why::Echo,
        "an ACK's TSval echoed by the server in 25.6 ms (qof 25.6 + 2.0); tcptrace's client \
         samples are the SYN 43.7 ms, the request 99 ms and the FIN 88 ms",
    ),
    (
        "ndpi__netflix.pcap",
        "23.246.11.141:80 <-> 192.168.1.7:53180",
        Why::Echo,
        "an ACK's TSval (frame 20) echoed by the server's next segment (frame 21) in 15.2 ms; \
         tcptrace's client samples: SYN 61.8 ms, request 123 ms, FIN 94 ms",
    ),
    (
        "ndpi__netflix.pcap",
        "184.25.204.25:80 <-> 192.168.1.7:53149",
        Why::Flight,
        "tcptrace's least sample for the server's data (1.7 ms) is frame 368, sent while qof's \
         wait for frame 367 was running; frame 369 acknowledges both, 27.0 ms after 367. qof's \
         least half that way is the handshake's 6.4 ms",
    ),
    (
        "ndpi__netflix.pcap",
        "184.25.204.25:80 <-> 192.168.1.7:53150",
        Why::Fin,
        "",
    ),
    (
        "ndpi__quickplay.pcap",
        "10.54.169.250:52009 <-> 120.28.35.40:80",
        Why::Hole,
        "the capture has about one server segment per response (the server's sequence numbers \
         jump by up to 0.8 MB from one to the next): every one but the first follows a hole, so \
         qof's only server half is the first (132.9 ms); tcptrace times 20 (least 56.4 ms, frame \
         47)",
    ),
];

/// Connections only one tool traced: file, connection, reason.
const ONE_SIDED: &[(&str, &str, &str)] = &[
    (
        "ndpi__fuzz-2021-10-13.pcap",
        "[302e::3d00:0:8001]:0 <-> [3400:3a30:3035:2f75:706c:6f32:643f:6c3d]:44288",
        "one fuzzed frame, NULL link type with an unknown family (0x6c): tcptrace decodes it as \
         IPv6 anyway, qof and tshark do not",
    ),
    (
        "ndpi__ip_fragmented_garbage.pcap",
        "10.0.0.2:9253 <-> 10.128.0.2:24102",
        FRAGMENTS,
    ),
    (
        "ndpi__ip_fragmented_garbage.pcap",
        "10.0.0.2:16417 <-> 10.128.0.2:16419",
        FRAGMENTS,
    ),
    (
        "ndpi__ip_fragmented_garbage.pcap",
        "10.0.0.2:18730 <-> 10.128.0.2:20304",
        FRAGMENTS,
    ),
    (
        "ndpi__ip_fragmented_garbage.pcap",
        "10.0.0.2:24102 <-> 10.128.0.2:10792",
        FRAGMENTS,
    ),
    (
        "pcapplusplus__sll2.pcap",
        "7.249.151.114:57292 <-> 116.63.66.108:443",
        "Linux SLL2 link type (276), which tcptrace does not read",
    ),
    (
        "tcpdump__bigtcp-ipv4.pcap",
        "10.25.132.11:36425 <-> 10.25.132.13:35871",
        "a BIG TCP packet: IPv4 total length 0 for an 80,052-octet segment; tcptrace skips it",
    ),
];

const FRAGMENTS: &str = "TCP in fragmented IP datagrams (nDPI's garbage fragments test; \
     tshark reassembles them too); tcptrace does not reassemble IP fragments";

type Endpoint = (IpAddr, u16);
/// The two endpoints, the lower first. Direction 0 is from the lower to the higher.
type Key = (Endpoint, Endpoint);

fn key_of(a: Endpoint, b: Endpoint) -> (Key, bool) {
    if a <= b {
        ((a, b), true)
    } else {
        ((b, a), false)
    }
}

fn show_ep((ip, port): Endpoint) -> String {
    match ip {
        IpAddr::V4(v) => format!("{v}:{port}"),
        IpAddr::V6(v) => format!("[{v}]:{port}"),
    }
}

fn show(k: &Key) -> String {
    format!("{} <-> {}", show_ep(k.0), show_ep(k.1))
}

fn parse_ep(s: &str) -> Option<Endpoint> {
    let (addr, port) = s.trim().rsplit_once(':')?;
    Some((addr.parse().ok()?, port.parse().ok()?))
}

/// qof's records of one connection, summed.
#[derive(Default, Debug)]
struct Qof {
    records: u32,
    retx: [u64; 2],
    rtt_min_ms: Option<u64>,
    rtt_samples: u64,
}

fn qof_connections(pcap: &Path, yaml: &Path) -> BTreeMap<Key, Qof> {
    let out = run(qof()
        .arg("--in")
        .arg(pcap)
        .arg("--yaml")
        .arg(yaml)
        .args(["--format", "json"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Two corpus files are damaged (see corpus_flowdiff): qof stops with exit code 1 after
    // writing what it read.
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)) && !stderr.contains("panicked"),
        "qof failed on {}: {stderr}",
        pcap.display()
    );
    let mut conns: BTreeMap<Key, Qof> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        if r["protocolIdentifier"] != 6 {
            continue;
        }
        let addr = |v4: &str, v6: &str| -> IpAddr {
            r[v4].as_str().or(r[v6].as_str()).unwrap().parse().unwrap()
        };
        let port = |k: &str| r[k].as_u64().unwrap() as u16;
        let src = (
            addr("sourceIPv4Address", "sourceIPv6Address"),
            port("sourceTransportPort"),
        );
        let dst = (
            addr("destinationIPv4Address", "destinationIPv6Address"),
            port("destinationTransportPort"),
        );
        let (k, forward_is_0) = key_of(src, dst);
        let c = conns.entry(k).or_default();
        c.records += 1;
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let retx = [n("tcpRetransmitCount"), n("reverseTcpRetransmitCount")];
        let d = usize::from(!forward_is_0);
        c.retx[d] += retx[0];
        c.retx[d ^ 1] += retx[1];
        if let Some(ms) = r["minTcpRttMilliseconds"].as_u64() {
            c.rtt_min_ms = Some(c.rtt_min_ms.map_or(ms, |m| m.min(ms)));
            c.rtt_samples += n("tcpRttSampleCount");
        }
    }
    conns
}

/// tcptrace's connections on one endpoint pair, summed.
#[derive(Default, Debug)]
struct Tcptrace {
    numbers: Vec<u32>,
    rexmt: [u64; 2],
    rtt_samples: [u64; 2],
    /// Least sample per direction, ms (0.1 ms resolution).
    rtt_min: [Option<f64>; 2],
    /// Every RTT sample (`-Z`): first sequence number of the segment, whole ms (truncated).
    raw: [Vec<(u32, u32)>; 2],
}

/// The two values of a two-column line of tcptrace's long output ("label: a2b ... label: b2a").
fn columns(block: &[&str], label: &str) -> Option<[String; 2]> {
    let pat = format!("{label}:");
    block.iter().find_map(|l| {
        let v: Vec<String> = l
            .match_indices(&pat)
            .map(|(i, _)| {
                l[i + pat.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        (v.len() == 2).then(|| [v[0].clone(), v[1].clone()])
    })
}

/// tcptrace's connections (`-l -r -n -Z`, run in an empty directory for the `-Z` files), or
/// None when tcptrace cannot read the file.
fn tcptrace_connections(pcap: &Path) -> Option<BTreeMap<Key, Tcptrace>> {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new("tcptrace")
        .args(["-l", "-r", "-n", "-Z"])
        .arg(pcap)
        .current_dir(dir.path()));
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let raw_files: HashMap<String, std::path::PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?;
            let (pair, _) = n.split_once("_rttraw.")?;
            Some((pair.to_string(), p.clone()))
        })
        .collect();
    let raw = |from: &str, to: &str| -> Vec<(u32, u32)> {
        raw_files
            .get(&format!("{from}2{to}"))
            .map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .filter_map(|l| {
                        let mut w = l.split_whitespace();
                        Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let lines: Vec<&str> = text.lines().collect();
    // "TCP connection 12:" heads each connection's block.
    let number = |l: &str| -> Option<u32> {
        l.strip_prefix("TCP connection ")?
            .strip_suffix(':')?
            .parse()
            .ok()
    };
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| number(lines[i]).is_some())
        .chain([lines.len()])
        .collect();
    let mut conns: BTreeMap<Key, Tcptrace> = BTreeMap::new();
    for w in starts.windows(2) {
        let block = &lines[w[0]..w[1]];
        let number = number(block[0]).unwrap();
        // "\thost a:        192.168.0.30:44328", then host b.
        let hosts: Vec<(&str, Endpoint)> = block
            .iter()
            .filter_map(|l| {
                let (h, ep) = l.trim().strip_prefix("host ")?.split_once(':')?;
                Some((h, parse_ep(ep)?))
            })
            .collect();
        let [(la, a), (lb, b)] = hosts[..] else {
            panic!("{}: connection {number}: hosts {hosts:?}", pcap.display())
        };
        let get = |label: &str| -> [String; 2] {
            columns(block, label)
                .unwrap_or_else(|| panic!("{}: connection {number}: no {label}", pcap.display()))
        };
        let int = |label: &str| get(label).map(|v| v.parse::<u64>().unwrap());
        let rexmt = int("rexmt data pkts");
        let samples = int("RTT samples");
        let min = get("RTT min").map(|v| v.parse::<f64>().unwrap());
        let (k, a_is_0) = key_of(a, b);
        let c = conns.entry(k).or_default();
        c.numbers.push(number);
        for (i, (from, to)) in [(la, lb), (lb, la)].into_iter().enumerate() {
            let d = i ^ usize::from(!a_is_0);
            c.rexmt[d] += rexmt[i];
            c.rtt_samples[d] += samples[i];
            if samples[i] > 0 {
                c.rtt_min[d] = Some(c.rtt_min[d].map_or(min[i], |m| m.min(min[i])));
            }
            c.raw[d].extend(raw(from, to));
        }
    }
    Some(conns)
}

/// What tshark sees of one direction: SYN and FIN segments without payload repeating one seen
/// before (tcptrace counts them as retransmitted), and the sequence numbers of FINs without
/// payload (to recognise tcptrace's FIN samples).
#[derive(Default)]
struct Direction {
    syns: HashSet<u32>,
    fin_ends: HashSet<u32>,
    repeats: u64,
    bare_fins: HashSet<u32>,
}

fn tshark_directions(pcap: &Path) -> HashMap<(Endpoint, Endpoint), Direction> {
    let out = run(Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", "tcp && !icmp && !icmpv6", "-T", "fields"])
        // Innermost layer's value where a field occurs more than once.
        .args(["-E", "occurrence=l"])
        .args([
            "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst",
        ])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.flags.syn",
        ])
        .args(["-e", "tcp.flags.fin", "-e", "tcp.len", "-e", "tcp.seq_raw"]));
    let mut dirs: HashMap<(Endpoint, Endpoint), Direction> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 10 {
            continue;
        }
        let ip =
            |a: &str, b: &str| -> Option<IpAddr> { if a.is_empty() { b } else { a }.parse().ok() };
        let (Some(src), Some(dst), Ok(sp), Ok(dp), Ok(len), Ok(seq)) = (
            ip(f[0], f[1]),
            ip(f[2], f[3]),
            f[4].parse::<u16>(),
            f[5].parse::<u16>(),
            f[8].parse::<u32>(),
            f[9].parse::<u32>(),
        ) else {
            continue;
        };
        let flag = |s: &str| s == "1" || s.eq_ignore_ascii_case("true");
        let d = dirs.entry(((src, sp), (dst, dp))).or_default();
        if flag(f[6]) {
            if len == 0 && d.syns.contains(&seq) {
                d.repeats += 1;
            }
            d.syns.insert(seq);
        }
        if flag(f[7]) {
            let end = seq.wrapping_add(len);
            if len == 0 {
                if d.fin_ends.contains(&end) {
                    d.repeats += 1;
                }
                d.bare_fins.insert(seq);
            }
            d.fin_ends.insert(end);
        }
    }
    dirs
}

/// How an RTT comparison came out.
#[derive(Debug, PartialEq)]
enum Rtt {
    Agree,
    /// qof's value, and tcptrace's sum of minima.
    Disagree(Option<u64>, f64),
    OneDirection,
    QofOnly,
}

fn compare_rtt(q: Option<u64>, min: [Option<f64>; 2]) -> Rtt {
    match (min, q) {
        ([None, None], None) => Rtt::Agree,
        ([None, None], Some(_)) => Rtt::QofOnly,
        ([Some(a), Some(b)], q) => {
            let sum = a + b;
            match q {
                Some(q) if (q as f64 - sum).abs() <= (0.1 * sum).max(1.0) => Rtt::Agree,
                _ => Rtt::Disagree(q, sum),
            }
        }
        _ => Rtt::OneDirection,
    }
}

/// tcptrace's per-direction minimum without the samples of FINs without payload: the exact
/// minimum when a non-FIN sample reaches it, else the least non-FIN sample (whole ms,
/// truncated by tcptrace) plus half a millisecond.
fn min_without_fins(t: &Tcptrace, fins: [&HashSet<u32>; 2]) -> [Option<f64>; 2] {
    std::array::from_fn(|d| {
        let all = t.raw[d].iter().map(|&(_, ms)| ms).min()?;
        let kept = t.raw[d]
            .iter()
            .filter(|(seq, _)| !fins[d].contains(seq))
            .map(|&(_, ms)| ms)
            .min()?;
        if kept == all {
            t.rtt_min[d]
        } else {
            Some(f64::from(kept) + 0.5)
        }
    })
}

#[derive(Default)]
struct Totals {
    conns: usize,
    retx_ok: usize,
    retx_raw_ok: usize,
    rtt_ok: usize,
    rtt_both_ok: usize,
    rtt_bad: usize,
    rtt_one_dir: usize,
    rtt_qof_only: usize,
    rtt_nofin_ok: usize,
    rtt_nofin_both_ok: usize,
    rtt_nofin_bad: usize,
}

#[test]
fn retransmissions_and_rtt_agree_with_tcptrace() {
    if !have_tool("tcptrace") || !have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("t.yaml");
    let mut text = common::template_yaml(TEMPLATE);
    text.push_str(TIMEOUTS);
    std::fs::write(&yaml, text).unwrap();

    let mut t = Totals::default();
    let mut table = String::new();
    let mut unexplained = Vec::new();
    let mut explained = String::new();
    let mut seen_retx = HashSet::new();
    let mut seen_rtt = HashSet::new();
    let mut seen_one_sided = HashSet::new();

    for pcap in corpus_files() {
        let file = name(&pcap);
        let q = qof_connections(&pcap, &yaml);
        let tt = tcptrace_connections(&pcap);
        if q.is_empty() && tt.as_ref().is_none_or(|t| t.is_empty()) {
            continue;
        }
        let tt = tt.unwrap_or_default();
        let dirs = tshark_directions(&pcap);
        let none = Direction::default();
        let dir = |a: Endpoint, b: Endpoint| dirs.get(&(a, b)).unwrap_or(&none);

        let keys: HashSet<&Key> = q.keys().chain(tt.keys()).collect();
        let mut keys: Vec<&Key> = keys.into_iter().collect();
        keys.sort();
        let (mut n, mut retx_ok, mut rtt_ok, mut rtt_scored, mut rtt_nc) = (0, 0, 0, 0, 0);
        for k in keys {
            let conn = show(k);
            let (Some(qc), Some(tc)) = (q.get(k), tt.get(k)) else {
                let who = if q.contains_key(k) { "qof" } else { "tcptrace" };
                match ONE_SIDED.iter().find(|(f, c, _)| *f == file && *c == conn) {
                    Some((_, _, why)) => {
                        seen_one_sided.insert((file.clone(), conn.clone()));
                        writeln!(explained, "  {file} {conn}: only {who} traced it: {why}")
                            .unwrap();
                    }
                    None => unexplained.push(format!("{file} {conn}: only {who} traced it")),
                }
                continue;
            };
            n += 1;
            t.conns += 1;
            let (d0, d1) = (dir(k.0, k.1), dir(k.1, k.0));

            // Retransmissions.
            let want = [
                tc.rexmt[0] - d0.repeats.min(tc.rexmt[0]),
                tc.rexmt[1] - d1.repeats.min(tc.rexmt[1]),
            ];
            if qc.retx == tc.rexmt {
                t.retx_raw_ok += 1;
            }
            if qc.retx == want {
                retx_ok += 1;
                t.retx_ok += 1;
            } else {
                let what = format!(
                    "{file} {conn} (tcptrace {:?}, qof records {}): tcpRetransmitCount {:?}, \
                     tcptrace {:?} less {:?} SYN/FIN repeats",
                    tc.numbers,
                    qc.records,
                    qc.retx,
                    tc.rexmt,
                    [d0.repeats, d1.repeats]
                );
                match RETX_EXPECTED
                    .iter()
                    .find(|(f, c, _)| *f == file && *c == conn)
                {
                    Some((_, _, why)) => {
                        seen_retx.insert((file.clone(), conn.clone()));
                        writeln!(explained, "  retx {what}\n      {why}").unwrap();
                    }
                    None => unexplained.push(format!("retx {what}")),
                }
            }

            // RTT.
            let fins = [&d0.bare_fins, &d1.bare_fins];
            let nofin = min_without_fins(tc, fins);
            match compare_rtt(qc.rtt_min_ms, nofin) {
                Rtt::Agree => {
                    t.rtt_nofin_ok += 1;
                    if qc.rtt_min_ms.is_some() {
                        t.rtt_nofin_both_ok += 1;
                    }
                }
                Rtt::Disagree(..) => t.rtt_nofin_bad += 1,
                _ => {}
            }
            match compare_rtt(qc.rtt_min_ms, tc.rtt_min) {
                Rtt::Agree => {
                    rtt_ok += 1;
                    rtt_scored += 1;
                    t.rtt_ok += 1;
                    if qc.rtt_min_ms.is_some() {
                        t.rtt_both_ok += 1;
                    }
                }
                Rtt::OneDirection => {
                    rtt_nc += 1;
                    t.rtt_one_dir += 1;
                }
                Rtt::QofOnly => {
                    rtt_nc += 1;
                    t.rtt_qof_only += 1;
                }
                Rtt::Disagree(got, sum) => {
                    rtt_scored += 1;
                    t.rtt_bad += 1;
                    let what = format!(
                        "{file} {conn} (tcptrace {:?}, qof records {}): minTcpRttMilliseconds \
                         {} ({} samples), tcptrace {:.1} + {:.1} = {sum:.1} ms ({:?} samples); \
                         without FIN samples {:?}",
                        tc.numbers,
                        qc.records,
                        got.map_or("none".into(), |v| v.to_string()),
                        qc.rtt_samples,
                        tc.rtt_min[0].unwrap(),
                        tc.rtt_min[1].unwrap(),
                        tc.rtt_samples,
                        nofin,
                    );
                    match RTT_EXPECTED
                        .iter()
                        .find(|(f, c, _, _)| *f == file && *c == conn)
                    {
                        Some((_, _, why, detail)) => {
                            seen_rtt.insert((file.clone(), conn.clone()));
                            if *why == Why::Fin {
                                // The explanation must hold: without tcptrace's FIN samples
                                // the two agree, or a direction is left without samples.
                                let r = compare_rtt(qc.rtt_min_ms, nofin);
                                assert!(
                                    matches!(r, Rtt::Agree | Rtt::OneDirection),
                                    "{what}: listed as Fin, but without FIN samples: {r:?}"
                                );
                            }
                            writeln!(explained, "  rtt {what}\n      {why:?}: {detail}").unwrap();
                        }
                        None => unexplained.push(format!("rtt {what}")),
                    }
                }
            }
        }
        if n > 0 {
            writeln!(
                table,
                "{file:<60} {n:>5} conns  retx {retx_ok:>5}/{n:<5}  \
                 rtt {rtt_ok:>5}/{rtt_scored:<5} (+{rtt_nc} not comparable)"
            )
            .unwrap();
        }
    }

    let rtt_scored = t.rtt_ok + t.rtt_bad;
    let both = t.rtt_both_ok + t.rtt_bad;
    let nofin_scored = t.rtt_nofin_ok + t.rtt_nofin_bad;
    let nofin_both = t.rtt_nofin_both_ok + t.rtt_nofin_bad;
    let share = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    eprintln!("{table}");
    eprintln!("explained disagreements:\n{explained}");
    eprintln!(
        "connections traced by both: {}\n\
         retransmissions agree: {}/{} = {:.4} (without the SYN/FIN adjustment {}/{} = {:.4})\n\
         RTT agree: {}/{} = {:.4}, of which both measured an RTT: {}/{} = {:.4}; \
         not comparable: {} (tcptrace RTT in one direction only) + {} (only qof has an RTT)\n\
         RTT agree against tcptrace without its FIN samples: {}/{} = {:.4}, of which both \
         measured an RTT: {}/{} = {:.4}",
        t.conns,
        t.retx_ok,
        t.conns,
        share(t.retx_ok, t.conns),
        t.retx_raw_ok,
        t.conns,
        share(t.retx_raw_ok, t.conns),
        t.rtt_ok,
        rtt_scored,
        share(t.rtt_ok, rtt_scored),
        t.rtt_both_ok,
        both,
        share(t.rtt_both_ok, both),
        t.rtt_one_dir,
        t.rtt_qof_only,
        t.rtt_nofin_ok,
        nofin_scored,
        share(t.rtt_nofin_ok, nofin_scored),
        t.rtt_nofin_both_ok,
        nofin_both,
        share(t.rtt_nofin_both_ok, nofin_both),
    );
    for (f, c, _) in RETX_EXPECTED {
        if !seen_retx.contains(&(f.to_string(), c.to_string())) {
            unexplained.push(format!("retx {f} {c} is listed but now agrees: remove it"));
        }
    }
    for (f, c, _, _) in RTT_EXPECTED {
        if !seen_rtt.contains(&(f.to_string(), c.to_string())) {
            unexplained.push(format!("rtt {f} {c} is listed but now agrees: remove it"));
        }
    }
    for (f, c, _) in ONE_SIDED {
        if !seen_one_sided.contains(&(f.to_string(), c.to_string())) {
            eprintln!("note: {f} {c} is listed as one-sided but is not");
        }
    }

    assert!(
        unexplained.is_empty(),
        "disagreements not explained:\n{}",
        unexplained.join("\n")
    );
    // The corpus has ~2,900 TCP connections both tools trace, ~700 with RTT samples both ways.
    assert!(t.conns >= 2500, "only {} connections compared", t.conns);
    assert!(both >= 600, "only {both} connections with an RTT from both");
    assert!(
        share(t.retx_ok, t.conns) >= 0.95,
        "retransmissions agree on {}/{}",
        t.retx_ok,
        t.conns
    );
    assert!(
        share(t.rtt_ok, rtt_scored) >= 0.95,
        "RTT agrees on {}/{rtt_scored}",
        t.rtt_ok
    );
    // Counting only connections where both measured an RTT (most agreements above are
    // connections where neither has one).
    assert!(
        share(t.rtt_both_ok, both) >= 0.95,
        "RTT (both measured) agrees on {}/{both}",
        t.rtt_both_ok
    );
}
