//! Export plumbing (issue 15, item 4): several collectors at once, each with its own socket
//! and counts; `host:port` collectors with transports of their own; the source address, TTL
//! and template refresh by message count as collectors see them; the statistics record's
//! exporter address and per-collector totals; NetFlow v1 as tshark decodes it.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Packet time of the synthetic capture: 2024-01-01.
const T0: u64 = 1_704_067_200_000;

/// A pcap of `n` UDP flows (a question and its answer each, 10 ms apart), then one packet
/// 100 s later, which ends them all by idle timeout.
fn capture(dir: &Path, n: u32) -> PathBuf {
    let mut f = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    let mut packet = |t_ms: u64, flow: u32, answer: bool| {
        let client = [10, 1, (flow >> 8) as u8, flow as u8];
        let server = [192, 168, 0, 1];
        let port = 1000 + flow as u16;
        let b = if answer {
            etherparse::PacketBuilder::ethernet2([2; 6], [1; 6])
                .ipv4(server, client, 64)
                .udp(53, port)
        } else {
            etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4(client, server, 64)
                .udp(port, 53)
        };
        let mut frame = Vec::new();
        b.write(&mut frame, &[0u8; 30]).unwrap();
        for v in [
            (t_ms / 1000) as u32,
            (t_ms % 1000 * 1000) as u32,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&frame);
    };
    for i in 0..n {
        packet(T0 + u64::from(i) * 10, i, false);
        packet(T0 + u64::from(i) * 10 + 1, i, true);
    }
    packet(T0 + 100_000, 60_000, false);
    let path = dir.join(format!("flows-{n}.pcap"));
    std::fs::write(&path, f).unwrap();
    path
}

/// `qof --format json` of a capture: the flow records every collector must end up with.
fn reference(capture: &Path) -> Vec<String> {
    let out = run(qof().arg("--in").arg(capture).args(["--format", "json"]));
    assert!(out.status.success());
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// A UDP collector: its address, and the datagrams it got (with each one's IP TTL and
/// sender) once asked.
struct UdpCollector {
    sock: UdpSocket,
}

struct Datagram {
    bytes: Vec<u8>,
    ttl: Option<i32>,
    from: SocketAddr,
}

impl UdpCollector {
    fn new() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::Ipv4RecvTtl, &true).unwrap();
        UdpCollector { sock }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// Everything received so far (qof has ended: its datagrams are in the socket's queue).
    fn take(&self) -> Vec<Datagram> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn};
        use std::os::fd::AsRawFd;
        self.sock
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut out = Vec::new();
        loop {
            let mut buf = vec![0u8; 65_536];
            let mut cmsg = nix::cmsg_space!(libc::c_int);
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let Ok(msg) = recvmsg::<SockaddrIn>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::empty(),
            ) else {
                break;
            };
            let ttl = msg.cmsgs().unwrap().find_map(|c| match c {
                ControlMessageOwned::Ipv4Ttl(t) => Some(t),
                _ => None,
            });
            let from = msg.address.map(|a| SocketAddr::V4(a.into())).unwrap();
            let n = msg.bytes;
            buf.truncate(n);
            out.push(Datagram {
                bytes: buf,
                ttl,
                from,
            });
        }
        out
    }
}

/// A TCP collector reading one session into memory.
fn tcp_collector() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    });
    (port, h)
}

/// A port on 127.0.0.1 nobody listens on (UDP and TCP).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// qofdump's JSON lines of an IPFIX stream, options records apart: (flows sorted, options).
fn dump(bytes: &[u8], dir: &Path, tag: &str) -> (Vec<String>, Vec<serde_json::Value>) {
    let p = dir.join(format!("{tag}.ipfix"));
    std::fs::write(&p, bytes).unwrap();
    let out = run(qofdump().arg(&p));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut flows = Vec::new();
    let mut options = Vec::new();
    for l in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v.get("exportingProcessId").is_some() {
            options.push(v);
        } else {
            flows.push(l.to_string());
        }
    }
    flows.sort();
    (flows, options)
}

/// Template set ids (2, 3) and data set ids of one IPFIX message, in order.
fn set_ids(msg: &[u8]) -> Vec<u16> {
    let mut ids = Vec::new();
    let mut at = 16;
    while at + 4 <= msg.len() {
        let id = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
        if len < 4 {
            break;
        }
        ids.push(id);
        at += len;
    }
    ids
}

/// The summary line of qof's standard error.
fn summary(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("qof: ") && l.contains("flow records exported"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"))
}

/// Two collectors over UDP: both get exactly the records `--format json` prints, each from
/// the source address asked for, with the TTL asked for; each one's statistics record names
/// that address and counts that collector's own messages and octets before it.
#[test]
fn two_udp_collectors_get_the_same_records() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = capture(tmp.path(), 300);
    let want = reference(&cap);
    assert_eq!(want.len(), 301);
    let (a, b) = (UdpCollector::new(), UdpCollector::new());
    let out = run(qof().arg("--in").arg(&cap).args([
        "--ipfix",
        "udp",
        "--out",
        &format!("127.0.0.1:{},127.0.0.1:{}@127.0.0.3", a.port(), b.port()),
        "--source-address",
        "127.0.0.2",
        "--export-ttl",
        "7",
        "--export-rate",
        "0",
        "--stats",
        "3600",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = summary(&stderr);
    for c in [&a, &b] {
        assert!(
            line.contains(&format!("udp 127.0.0.1:{}: 301 sent", c.port())),
            "{line}"
        );
    }
    for (c, source) in [(&a, [127, 0, 0, 2]), (&b, [127, 0, 0, 3])] {
        let got = c.take();
        assert!(got.len() > 5, "{} datagrams", got.len());
        for d in &got {
            assert_eq!(d.ttl, Some(7), "--export-ttl");
            assert_eq!(
                d.from.ip(),
                std::net::IpAddr::from(source),
                "source address"
            );
        }
        let stream: Vec<u8> = got.iter().flat_map(|d| d.bytes.clone()).collect();
        let (flows, options) = dump(&stream, tmp.path(), &format!("c{}", c.port()));
        assert_eq!(flows, want, "collector {}", c.port());
        let stats = options.last().expect("a statistics record");
        let ip = std::net::Ipv4Addr::from(source).to_string();
        assert_eq!(stats["exporterIPv4Address"], ip.as_str());
        assert_eq!(stats["exporterIPv6Address"], "::");
        assert_eq!(stats["notSentFlowTotalCount"], 0);
        // Unpaced: every message before the one with the statistics record was sent.
        let at = got
            .iter()
            .position(|d| set_ids(&d.bytes).contains(&0xD000))
            .unwrap();
        let octets: usize = got[..at].iter().map(|d| d.bytes.len()).sum();
        assert_eq!(stats["exportedMessageTotalCount"], at as u64);
        assert_eq!(stats["exportedOctetTotalCount"], octets as u64);
        assert_eq!(stats["exportedFlowRecordTotalCount"], 301);
    }
}

/// One collector down (nothing listens on its port): it loses every record to its own count,
/// the other gets every one and counts none lost, and the run ends with status 1. Over UDP
/// (the refusals counted) and over TCP (given up after --export-timeout), with each
/// collector's transport named in --out.
#[test]
fn a_collector_that_is_down_loses_records_only_to_its_own_count() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = capture(tmp.path(), 200);
    let want = reference(&cap);
    // UDP: one listening, one not.
    let up = UdpCollector::new();
    let down = closed_port();
    let out = run(qof().arg("--in").arg(&cap).args([
        "--ipfix",
        "udp",
        "--out",
        &format!("127.0.0.1:{},127.0.0.1:{down}", up.port()),
        "--stats",
        "3600",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = summary(&stderr);
    assert!(
        line.contains(&format!(
            "201 flow records exported: udp 127.0.0.1:{}: 201 sent (delivery not confirmed); \
             udp 127.0.0.1:{down}: 0 sent (delivery not confirmed), 201 records lost to the \
             network",
            up.port()
        )),
        "{line}"
    );
    let stream: Vec<u8> = up.take().into_iter().flat_map(|d| d.bytes).collect();
    let (flows, options) = dump(&stream, tmp.path(), "udp-up");
    assert_eq!(flows, want);
    assert_eq!(options.last().unwrap()["notSentFlowTotalCount"], 0);

    // TCP up, TCP down (given up at the end after --export-timeout), and a UDP one up, in
    // one --out.
    let (tcp_port, tcp) = tcp_collector();
    let udp = UdpCollector::new();
    let down = closed_port();
    let out = run(qof().arg("--in").arg(&cap).args([
        "--ipfix",
        "tcp",
        "--out",
        &format!(
            "127.0.0.1:{tcp_port},tcp://127.0.0.1:{down},udp://127.0.0.1:{}",
            udp.port()
        ),
        "--export-timeout",
        "1",
        "--stats",
        "3600",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = summary(&stderr);
    for part in [
        format!(
            "tcp 127.0.0.1:{tcp_port}: 201 delivered (acknowledged by the collector's TCP), 0 \
             records lost to the network"
        ),
        format!(
            "tcp 127.0.0.1:{down}: 0 delivered (acknowledged by the collector's TCP), 201 \
             records lost to the network"
        ),
        format!(
            "udp 127.0.0.1:{}: 201 sent (delivery not confirmed)",
            udp.port()
        ),
    ] {
        assert!(line.contains(&part), "{part}\n{line}");
    }
    let (flows, options) = dump(&tcp.join().unwrap(), tmp.path(), "tcp-up");
    assert_eq!(flows, want);
    assert_eq!(options.last().unwrap()["notSentFlowTotalCount"], 0);
    assert_eq!(options.last().unwrap()["exporterIPv4Address"], "127.0.0.1");
    let stream: Vec<u8> = udp.take().into_iter().flat_map(|d| d.bytes).collect();
    assert_eq!(dump(&stream, tmp.path(), "udp-too").0, want);
}

/// `--template-refresh-packets 3`: over UDP every third message carries the templates again
/// (the time refresh, 60 s, never comes in a run this short); without it only the first.
#[test]
fn templates_are_refreshed_by_message_count() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = capture(tmp.path(), 400);
    for (every, want) in [(Some("3"), 3usize), (None, 0)] {
        let c = UdpCollector::new();
        let mut cmd = qof();
        cmd.arg("--in").arg(&cap).args([
            "--ipfix",
            "udp",
            "--out",
            &format!("127.0.0.1:{}", c.port()),
        ]);
        if let Some(n) = every {
            cmd.args(["--template-refresh-packets", n]);
        }
        let out = run(&mut cmd);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = c.take();
        assert!(got.len() > 9, "{} datagrams", got.len());
        // Messages that define again a template defined before (a template met for the first
        // time is defined where it is first used: the last record is one-way).
        let mut known = std::collections::BTreeSet::new();
        let mut again = Vec::new();
        for (i, d) in got.iter().enumerate() {
            let defined = defined_templates(&d.bytes);
            if defined.iter().any(|t| known.contains(t)) {
                again.push(i);
            }
            known.extend(defined);
        }
        assert!(
            set_ids(&got[0].bytes).contains(&2),
            "templates open the stream"
        );
        if want == 0 {
            assert_eq!(again, Vec::<usize>::new(), "no refresh");
        } else {
            let expected: Vec<usize> = (want..got.len()).step_by(want).collect();
            assert_eq!(again, expected);
        }
    }
}

/// The template ids a message's template sets define.
fn defined_templates(msg: &[u8]) -> Vec<u16> {
    let mut ids = Vec::new();
    let mut at = 16;
    while at + 4 <= msg.len() {
        let id = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
        if len < 4 {
            break;
        }
        if id == 2 {
            let mut t = at + 4;
            while t + 4 <= at + len {
                ids.push(u16::from_be_bytes([msg[t], msg[t + 1]]));
                let count = usize::from(u16::from_be_bytes([msg[t + 2], msg[t + 3]]));
                t += 4;
                for _ in 0..count {
                    let ie = u16::from_be_bytes([msg[t], msg[t + 1]]);
                    t += if ie & 0x8000 != 0 { 8 } else { 4 };
                }
            }
        }
        at += len;
    }
    ids
}

/// NetFlow v1 (softflowd's -v 1) to two collectors: tshark decodes every datagram as version
/// 1 without a warning, and the flows it shows are the capture's, with their packet counts.
#[test]
fn netflow_v1_reaches_every_collector_as_tshark_decodes_it() {
    if !have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cap = capture(tmp.path(), 60);
    let (a, b) = (UdpCollector::new(), UdpCollector::new());
    let out = run(qof().arg("--in").arg(&cap).args([
        "--netflow",
        "1",
        "--out",
        &format!("127.0.0.1:{},[::ffff:127.0.0.1]:{}", a.port(), b.port()),
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ga, gb) = (a.take(), b.take());
    let bytes = |g: &[Datagram]| g.iter().map(|d| d.bytes.clone()).collect::<Vec<_>>();
    assert_eq!(bytes(&ga), bytes(&gb), "the same datagrams to both");
    // 121 biflows: 120 uniflows each way of 60 flows, and the last packet's.
    let text = tshark_decode(&bytes(&ga), a.port(), tmp.path());
    assert!(
        !text.contains("Malformed") && !text.contains("Expert Info"),
        "{text}"
    );
    let versions = text.matches("Version: 1\n").count();
    assert_eq!(versions, ga.len(), "{text}");
    let pdus: usize = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Count: "))
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    assert_eq!(pdus, 121);
    let mut ports: BTreeMap<String, usize> = BTreeMap::new();
    for l in text.lines() {
        if let Some(p) = l.trim().strip_prefix("SrcPort: ") {
            *ports.entry(p.to_string()).or_default() += 1;
        }
    }
    assert_eq!(ports.get("1000"), Some(&1), "{ports:?}");
    assert_eq!(
        ports.get("53"),
        Some(&60),
        "answers from port 53: {ports:?}"
    );
    assert_eq!(text.matches("Packets: 1\n").count(), 121);
}
