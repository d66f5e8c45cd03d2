//! Live capture with `--workers` (issue 16): one interface, N sockets in a `PACKET_FANOUT`
//! group, each read by its own worker. On a veth pair in a network namespace made by the test
//! (nothing else talks there), many UDP and TCP flows, both directions of each, are sent into
//! one end and captured at the other with `--workers 2`: both workers receive frames, every
//! flow comes out once as one biflow (the kernel's hash is symmetric: both directions reached
//! the same worker), and the packets read plus those the kernel dropped are those sent. Then
//! qof is stopped (SIGSTOP) while a flood fills its small rings: the drops are counted, per
//! worker and in all, and read + dropped is still what was sent.

#![cfg(target_os = "linux")]

mod common;
use common::*;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Whether this process may open a packet socket and make network namespaces.
fn can_capture() -> bool {
    socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::RAW, None).is_ok()
        && nix::unistd::Uid::effective().is_root()
        && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

/// A network namespace with a veth pair `a` (captured) and `b` (sent into), IPv6 off so that
/// the kernel sends nothing of its own there; removed when dropped.
struct Netns {
    name: String,
    a: String,
    b: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let n = std::process::id() % 100_000;
        let name = format!("qof{tag}{n}");
        let (a, b) = (format!("qfa{tag}{n}"), format!("qfb{tag}{n}"));
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        let ns = Netns { name, a, b };
        for key in ["all", "default"] {
            let st = ns
                .exec("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")])
                .status()
                .unwrap();
            assert!(st.success());
        }
        ip(&[
            "-n", &ns.name, "link", "add", &ns.a, "type", "veth", "peer", "name", &ns.b,
        ]);
        ip(&["-n", &ns.name, "link", "set", &ns.a, "up"]);
        ip(&["-n", &ns.name, "link", "set", &ns.b, "up"]);
        ns
    }

    /// `program` run in the namespace (`ip netns exec` becomes it: same process id).
    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// qof capturing on `a` with `args`.
    fn qof(&self, args: &[&str]) -> Command {
        let mut c = self.exec(env!("CARGO_BIN_EXE_qof"));
        c.args(["--in", &format!("int:{}", self.a)]).args(args);
        c
    }

    /// Send `frames` into `b` (they arrive at `a`), from a packet socket, in this order.
    fn send(&self, frames: &[Vec<u8>], dir: &std::path::Path) {
        let file = dir.join("frames.bin");
        let mut data = Vec::new();
        for f in frames {
            data.extend_from_slice(&(f.len() as u16).to_be_bytes());
            data.extend_from_slice(f);
        }
        std::fs::write(&file, data).unwrap();
        let script = format!(
            "import socket\n\
             s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
             s.bind(('{}', 0))\n\
             d = open('{}', 'rb').read()\n\
             i = 0\n\
             while i < len(d):\n\
             \x20   n = int.from_bytes(d[i:i+2], 'big')\n\
             \x20   s.send(d[i+2:i+2+n])\n\
             \x20   i += 2 + n\n",
            self.b,
            file.display()
        );
        let st = self.exec("python3").args(["-c", &script]).status().unwrap();
        assert!(st.success());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// qof running, its standard error read line by line as it comes; killed if the test fails.
struct Running {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Running {
            child: Some(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait for a line of standard error containing `text`.
    fn wait_for(&mut self, text: &str) {
        let t0 = Instant::now();
        while !self.seen.iter().any(|l| l.contains(text)) {
            let left = Duration::from_secs(20).saturating_sub(t0.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("no {text:?} from qof: {:?}", self.seen),
            }
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
    }

    /// SIGTERM; the exit status and every line of standard error.
    fn terminate(self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait()
    }

    /// The exit status and every line of standard error, once qof has ended.
    fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.child.take().unwrap().wait().unwrap();
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.lines.iter());
        (status, lines)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One flow the test sends: its client and server ends, and its protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Flow {
    proto: u8,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame of an IPv4 packet from `src` to `dst` with `l4` after its header.
fn frame(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    fragment(proto, src, dst, l4, 1, None)
}

/// The same, a fragment of datagram `id` (`Some((offset in octets, more follow))`) or
/// a whole datagram (`None`: don't fragment).
fn fragment(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    l4: &[u8],
    id: u16,
    frag: Option<(usize, bool)>,
) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0xa, 2, 0, 0, 0, 0, 0xb, 0x08, 0x00];
    let total = (20 + l4.len()) as u16;
    let flags = match frag {
        None => 0x4000,
        Some((offset, more)) => (offset / 8) as u16 | if more { 0x2000 } else { 0 },
    };
    let mut iph = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
    iph[4..6].copy_from_slice(&id.to_be_bytes());
    iph[6..8].copy_from_slice(&flags.to_be_bytes());
    iph[2..4].copy_from_slice(&total.to_be_bytes());
    iph.extend_from_slice(&src);
    iph.extend_from_slice(&dst);
    let c = checksum(&iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(l4);
    f
}

/// An Ethernet frame of an IPv6 packet from `src` to `dst` with flow label `label` and `l4`
/// after its header.
fn frame6(proto: u8, src: [u8; 16], dst: [u8; 16], label: u32, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0xa, 2, 0, 0, 0, 0, 0xb, 0x86, 0xdd];
    f.extend_from_slice(&((6u32 << 28) | (label & 0xf_ffff)).to_be_bytes());
    f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    f.extend_from_slice(&[proto, 64]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(l4);
    f
}

/// Packet `k` of `flow` (0-4): three from the client, two from the server. TCP: SYN,
/// SYN-ACK, ACK, data, ACK (no FIN: the flow ends when qof stops). Over IPv6 the client's
/// packets carry a flow label and the server's none (a hash that stopped at the label, as
/// Linux's did before 6.6, would send the two directions two ways).
fn packet(flow: &Flow, k: usize) -> Vec<u8> {
    let forward = matches!(k, 0 | 2 | 3);
    let ((sa, sp), (da, dp)) = if forward {
        (flow.client, flow.server)
    } else {
        (flow.server, flow.client)
    };
    let mut l4 = Vec::new();
    l4.extend_from_slice(&sp.to_be_bytes());
    l4.extend_from_slice(&dp.to_be_bytes());
    if flow.proto == 17 {
        let payload = [k as u8; 12];
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(&payload);
    } else {
        let (seq, ack, flags, payload): (u32, u32, u8, &[u8]) = match k {
            0 => (1000, 0, 0x02, b""),
            1 => (5000, 1001, 0x12, b""),
            2 => (1001, 5001, 0x10, b""),
            3 => (1001, 5001, 0x18, b"hello there"),
            _ => (5001, 1012, 0x10, b""),
        };
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&ack.to_be_bytes());
        l4.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        l4.extend_from_slice(payload);
    }
    match (sa, da) {
        (IpAddr::V4(s), IpAddr::V4(d)) => frame(flow.proto, s.octets(), d.octets(), &l4),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let label = if forward { 0x5_4321 } else { 0 };
            frame6(flow.proto, s.octets(), d.octets(), label, &l4)
        }
        _ => unreachable!("one family per flow"),
    }
}

/// `n` UDP and `n` TCP flows over IPv4 and `n / 4` of each over IPv6 between many hosts and
/// ports, and a few whose two addresses are exactly 2^31 apart (10.0.0.1 and 138.0.0.1: a
/// pair the kernel's hash sent two ways before Linux 6.0).
fn flows(n: u16) -> Vec<Flow> {
    let mut v = Vec::new();
    for i in 0..n {
        for proto in [17u8, 6] {
            let client = (v4([10, 1, (i >> 8) as u8, i as u8]), 20_000 + i);
            let server = (
                v4([10, 2, 0, (i % 7) as u8 + 1]),
                if proto == 6 { 80 } else { 53 },
            );
            v.push(Flow {
                proto,
                client,
                server,
            });
        }
    }
    for i in 0..n / 4 {
        for proto in [17u8, 6] {
            let client: IpAddr = format!("2001:db8:1::{:x}", i + 1).parse().unwrap();
            let server: IpAddr = format!("2001:db8:2::{:x}", i % 5 + 1).parse().unwrap();
            v.push(Flow {
                proto,
                client: (client, 21_000 + i),
                server: (server, if proto == 6 { 443 } else { 123 }),
            });
        }
    }
    for i in 0..16u16 {
        let (a, b) = (v4([10, 0, 0, 1]), v4([138, 0, 0, 1]));
        let (client, server) = if i % 2 == 0 { (a, b) } else { (b, a) };
        v.push(Flow {
            proto: if i % 4 < 2 { 17 } else { 6 },
            client: (client, 40_000 + i),
            server: (server, 7000 + i),
        });
    }
    v
}

/// `qofctl -c CTL COMMAND`'s answer (it must succeed).
fn qofctl(ctl: &std::path::Path, command: &str) -> String {
    let out = run(Command::new(env!("CARGO_BIN_EXE_qofctl"))
        .arg("-c")
        .arg(ctl)
        .arg(command));
    assert!(
        out.status.success(),
        "qofctl {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A number in `line` just before `what`.
fn number_before(line: &str, what: &str) -> Option<u64> {
    let at = line.find(what)?;
    line[..at].split_whitespace().last()?.parse().ok()
}

/// Per worker (in order): packets read and dropped by the kernel, from the log; and the
/// summary's packets read and dropped.
fn counts(lines: &[String]) -> (Vec<(u64, u64)>, (u64, u64)) {
    let mut workers = BTreeMap::new();
    for l in lines {
        if let Some(at) = l.find(" worker ") {
            let rest = &l[at + 8..];
            let Some((i, rest)) = rest.split_once(": ") else {
                continue;
            };
            let read = number_before(rest, " packets read").unwrap();
            let dropped = number_before(rest, " dropped by the kernel").unwrap();
            workers.insert(i.parse::<usize>().unwrap(), (read, dropped));
        }
    }
    let summary = lines
        .iter()
        .find(|l| l.starts_with("qof: ") && l.contains(" packets read"))
        .unwrap_or_else(|| panic!("no summary: {lines:?}"));
    let read = number_before(summary, " packets read").unwrap();
    let dropped = number_before(summary, " dropped by the kernel").unwrap_or(0);
    (workers.into_values().collect(), (read, dropped))
}

#[test]
fn two_workers_share_a_fanout_group_and_every_flow_is_one_biflow() {
    if !can_capture() {
        return;
    }
    let ns = Netns::new("f");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("flows.json");
    let ctl = tmp.path().join("qof.ctl");
    let mut qof = Running::start(ns.qof(&[
        "--workers",
        "2",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--ctl",
        ctl.to_str().unwrap(),
        "--verbose",
    ]));
    // Logged once every socket has joined the group with its filter in place.
    qof.wait_for("sockets in PACKET_FANOUT group");
    let flows = flows(300);
    // Every flow's packets interleaved with the others' (flows overlap in time).
    let mut frames = Vec::new();
    for k in 0..5 {
        for f in &flows {
            frames.push(packet(f, k));
        }
    }
    ns.send(&frames, tmp.path());
    // The workers' flows through qofctl: listed, counted, expired (their records exported
    // at once), and qof shut down.
    let t0 = Instant::now();
    let want = format!("{} flows in memory\n", flows.len());
    loop {
        let listing = qofctl(&ctl, "dump-flows");
        if listing.starts_with(&want) {
            assert_eq!(listing.lines().count(), flows.len() + 1);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{listing:.200}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = qofctl(&ctl, "statistics");
    assert!(
        stats.contains(&format!("packets: {} read", frames.len()))
            && stats.contains(" 0 dropped by the kernel"),
        "{stats}"
    );
    // Each worker's socket: frames read (both some), none dropped; they add up.
    let each: Vec<u64> = stats
        .lines()
        .filter(|l| l.starts_with("worker "))
        .map(|l| {
            assert!(l.ends_with(" packets read, 0 dropped by the kernel"), "{l}");
            number_before(l, " packets read").unwrap()
        })
        .collect();
    assert_eq!(each.len(), 2, "{stats}");
    assert!(each.iter().all(|&r| r > 0), "{stats}");
    assert_eq!(each.iter().sum::<u64>(), frames.len() as u64, "{stats}");
    assert_eq!(
        qofctl(&ctl, "expire-all"),
        format!(
            "{} flows expired: their records are exported\n",
            flows.len()
        )
    );
    assert_eq!(qofctl(&ctl, "dump-flows"), "0 flows in memory\n");
    qofctl(&ctl, "shutdown");
    let (status, lines) = qof.wait();
    let text = lines.join("\n");
    assert!(status.success(), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains("qofctl: stopping input"), "{text}");

    let (workers, (read, dropped)) = counts(&lines);
    println!(
        "{} frames sent; read, dropped per worker: {workers:?}; in all {read}, {dropped}",
        frames.len()
    );
    assert_eq!(workers.len(), 2, "{text}");
    assert!(
        workers.iter().all(|&(r, _)| r > 0),
        "both workers receive frames: {workers:?}"
    );
    assert_eq!(workers.iter().map(|w| w.0).sum::<u64>(), read, "{text}");
    assert_eq!(workers.iter().map(|w| w.1).sum::<u64>(), dropped, "{text}");
    assert_eq!(read + dropped, frames.len() as u64, "{text}");
    // 32 MiB rings for 3,830 small frames: nothing is dropped.
    assert_eq!(dropped, 0, "{text}");

    // Every flow exactly once, one biflow with both directions' packets.
    let mut seen: BTreeMap<Flow, serde_json::Value> = BTreeMap::new();
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let addr = |r: &serde_json::Value, end: &str| -> IpAddr {
        let a = r
            .get(format!("{end}IPv4Address"))
            .or_else(|| r.get(format!("{end}IPv6Address")))
            .unwrap_or_else(|| panic!("{r}"));
        a.as_str().unwrap().parse().unwrap()
    };
    for r in &records {
        let f = Flow {
            proto: r["protocolIdentifier"].as_u64().unwrap() as u8,
            client: (
                addr(r, "source"),
                r["sourceTransportPort"].as_u64().unwrap() as u16,
            ),
            server: (
                addr(r, "destination"),
                r["destinationTransportPort"].as_u64().unwrap() as u16,
            ),
        };
        assert!(flows.contains(&f), "a flow not sent, or reversed: {r}");
        assert!(seen.insert(f, r.clone()).is_none(), "{f:?} twice: {r}");
        assert_eq!(r["packetDeltaCount"], 3, "{r}");
        assert_eq!(r["reversePacketDeltaCount"], 2, "{r}");
    }
    assert_eq!(seen.len(), flows.len(), "every flow once");
    assert_eq!(records.len(), flows.len());
}

#[test]
fn kernel_drops_are_counted_per_worker_and_in_all() {
    if !can_capture() {
        return;
    }
    let ns = Netns::new("d");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("flows.json");
    let mut qof = Running::start(ns.qof(&[
        "--workers",
        "2",
        "--ring-size",
        "4",
        "--stats",
        "3600",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--verbose",
    ]));
    qof.wait_for("each with a 2 MiB ring");
    // qof stopped, the flood fills both rings (2 MiB each, some 13,000 of these frames) and
    // the kernel drops the rest.
    qof.signal(nix::sys::signal::Signal::SIGSTOP);
    let flows = flows(6000);
    let mut frames = Vec::new();
    for k in 0..5 {
        for f in &flows {
            frames.push(packet(f, k));
        }
    }
    ns.send(&frames, tmp.path());
    qof.signal(nix::sys::signal::Signal::SIGCONT);
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = qof.terminate();
    let text = lines.join("\n");
    assert!(status.success(), "{text}");
    let (workers, (read, dropped)) = counts(&lines);
    println!(
        "{} frames sent; read, dropped per worker: {workers:?}; in all {read}, {dropped}",
        frames.len()
    );
    assert_eq!(workers.len(), 2, "{text}");
    assert!(
        workers.iter().all(|&(r, d)| r > 0 && d > 0),
        "each worker reads and its kernel socket drops: {workers:?}"
    );
    assert_eq!(workers.iter().map(|w| w.0).sum::<u64>(), read, "{text}");
    assert_eq!(workers.iter().map(|w| w.1).sum::<u64>(), dropped, "{text}");
    assert!(dropped > 0 && read > 0, "{text}");
    assert_eq!(read + dropped, frames.len() as u64, "{text}");
    // The statistics record at the end (--stats) says the same: every frame read metered.
    let text = std::fs::read_to_string(&out).unwrap();
    let stats: serde_json::Value = text
        .lines()
        .rfind(|l| l.contains("droppedPacketTotalCount"))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no statistics record"));
    assert_eq!(stats["droppedPacketTotalCount"], dropped, "{stats}");
    assert_eq!(stats["packetTotalCount"], read, "{stats}");
}

/// Errors of a live capture with workers are one line.
#[test]
fn fanout_errors_are_one_line() {
    for (args, says) in [
        (
            &["--in", "int:qofnosuch0", "--workers", "2"][..],
            "int:qofnosuch0: no such network interface",
        ),
        (
            &["--in", "int:lo", "--workers", "2", "--ring-size", "1"][..],
            "--ring-size 1: expected 2 to 65536 MiB",
        ),
        (
            &["--in", "int:lo", "--workers", "two"][..],
            "--workers two: expected a number",
        ),
    ] {
        let out = run(qof().args(args).args(["--out", "/dev/null"]));
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
    }
}

/// IPv4 fragments with fanout (`PACKET_FANOUT_FLAG_DEFRAG`): the kernel reassembles a
/// fragmented datagram before hashing it, so it reaches its flow's worker (with the ports of
/// its first fragment in the hash), and that worker meters it as one packet, whole. 64 UDP
/// flows, each two whole datagrams and one in three fragments from the client, two whole ones
/// back: every flow is one biflow of 3 + 2 packets, the fragmented datagram one packet of its
/// full length.
#[test]
fn ipv4_fragments_reach_their_flows_worker_reassembled() {
    if !can_capture() {
        return;
    }
    let ns = Netns::new("g");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("flows.json");
    let mut qof = Running::start(ns.qof(&[
        "--workers",
        "2",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--verbose",
    ]));
    qof.wait_for("sockets in PACKET_FANOUT group");
    let flows: Vec<Flow> = (0..64u16)
        .map(|i| Flow {
            proto: 17,
            client: (v4([10, 3, 0, 1]), 30_000 + i),
            server: (v4([10, 4, 0, 1]), 5000 + i),
        })
        .collect();
    let udp = |sp: u16, dp: u16, payload: &[u8]| {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sp.to_be_bytes());
        l4.extend_from_slice(&dp.to_be_bytes());
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(payload);
        l4
    };
    let mut frames = Vec::new();
    for (i, f) in flows.iter().enumerate() {
        let ((IpAddr::V4(ca), cp), (IpAddr::V4(sa), sp)) = (f.client, f.server) else {
            unreachable!("IPv4 flows");
        };
        let (ca, sa) = (ca.octets(), sa.octets());
        frames.push(frame(17, ca, sa, &udp(cp, sp, &[1; 100])));
        frames.push(frame(17, sa, ca, &udp(sp, cp, &[2; 100])));
        // 2,408 octets of UDP in fragments of 1,000, 1,000 and 408.
        let big = udp(cp, sp, &[3; 2400]);
        for (at, more) in [(0, true), (1000, true), (2000, false)] {
            let end = if more { at + 1000 } else { big.len() };
            frames.push(fragment(
                17,
                ca,
                sa,
                &big[at..end],
                i as u16 + 100,
                Some((at, more)),
            ));
        }
        frames.push(frame(17, ca, sa, &udp(cp, sp, &[4; 100])));
        frames.push(frame(17, sa, ca, &udp(sp, cp, &[5; 100])));
    }
    ns.send(&frames, tmp.path());
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = qof.terminate();
    let text = lines.join("\n");
    assert!(status.success(), "{text}");
    let (workers, (read, dropped)) = counts(&lines);
    println!(
        "{} frames sent; read, dropped per worker: {workers:?}; in all {read}, {dropped}",
        frames.len()
    );
    assert!(workers.iter().all(|&(r, _)| r > 0), "{workers:?}");
    // Each datagram's three fragments are read as one frame.
    assert_eq!(read + dropped, (flows.len() * 5) as u64, "{text}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), flows.len(), "every flow once: {records:?}");
    for r in &records {
        assert_eq!(r["sourceIPv4Address"], "10.3.0.1", "{r}");
        assert_eq!(r["packetDeltaCount"], 3, "{r}");
        assert_eq!(r["reversePacketDeltaCount"], 2, "{r}");
        // 2 x 128 + the datagram whole (20 + 2,408).
        assert_eq!(r["octetDeltaCount"], 2 * 128 + 2428, "{r}");
    }
}

/// With fanout, each worker's clock runs on while its socket is quiet: flows end idle (YAML
/// idle-timeout 1 s) on every worker without a later frame, not at the signal.
#[test]
fn quiet_workers_end_idle_flows_by_the_clock() {
    if !can_capture() {
        return;
    }
    let ns = Netns::new("q");
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("q.yaml");
    std::fs::write(&yaml, "idle-timeout: 1\n").unwrap();
    let out = tmp.path().join("flows.json");
    let mut qof = Running::start(ns.qof(&[
        "--workers",
        "2",
        "--yaml",
        yaml.to_str().unwrap(),
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--verbose",
    ]));
    qof.wait_for("sockets in PACKET_FANOUT group");
    let flows = flows(20);
    let mut frames = Vec::new();
    for k in 0..5 {
        for f in &flows {
            frames.push(packet(f, k));
        }
    }
    ns.send(&frames, tmp.path());
    std::thread::sleep(Duration::from_millis(2500));
    let (status, lines) = qof.terminate();
    let text = lines.join("\n");
    assert!(status.success(), "{text}");
    let (workers, _) = counts(&lines);
    assert!(workers.iter().all(|&(r, _)| r > 0), "{workers:?}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), flows.len(), "{records:?}");
    for r in &records {
        assert_eq!(r["flowEndReason"], 1, "ended idle, not at the signal: {r}");
    }
}

/// With fanout, the interface going down ends the capture in one line (exit 1), every
/// worker's flows exported.
#[test]
fn an_interface_going_down_ends_a_fanout_capture_in_one_line() {
    if !can_capture() {
        return;
    }
    let ns = Netns::new("n");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("flows.json");
    let mut qof = Running::start(ns.qof(&[
        "--workers",
        "2",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--verbose",
    ]));
    qof.wait_for("sockets in PACKET_FANOUT group");
    let flows = flows(20);
    let mut frames = Vec::new();
    for k in 0..5 {
        for f in &flows {
            frames.push(packet(f, k));
        }
    }
    ns.send(&frames, tmp.path());
    std::thread::sleep(Duration::from_millis(500));
    ip(&["-n", &ns.name, "link", "set", &ns.a, "down"]);
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = qof.child.as_mut().unwrap().try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "qof did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<String> = qof.lines.iter().collect();
    let text = lines.join("\n");
    assert_eq!(status.code(), Some(1), "{text}");
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("capture stopped"))
        .collect();
    assert_eq!(
        errors,
        [&format!(
            "qof: int:{}: capture stopped: Network is down (os error 100)",
            ns.a
        )],
        "{text}"
    );
    let records = std::fs::read_to_string(&out).unwrap().lines().count();
    assert_eq!(records, flows.len(), "{text}");
}

/// Several interfaces with `--workers`: no fanout (a group is for one interface); the
/// reading thread shares every interface's frames out to the workers, as before, and says
/// so. Both ends of the veth pair captured: each frame is seen leaving one and arriving at
/// the other, so each flow is one biflow per interface.
#[test]
fn several_interfaces_with_workers_are_shared_out_by_the_reading_thread() {
    if !can_capture() {
        return;
    }
    let ns = Netns::new("m");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("flows.json");
    let mut qof = Running::start(ns.qof(&[
        "--in",
        &format!("int:{}", ns.b),
        "--workers",
        "2",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--verbose",
    ]));
    qof.wait_for("2 interfaces: the reading thread shares their frames out to the 2 workers");
    // (Both sockets are bound once the sink is open: the warning about root comes after.)
    qof.wait_for("running as root");
    let flows = flows(20);
    let mut frames = Vec::new();
    for k in 0..5 {
        for f in &flows {
            frames.push(packet(f, k));
        }
    }
    ns.send(&frames, tmp.path());
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = qof.terminate();
    let text = lines.join("\n");
    assert!(status.success(), "{text}");
    assert!(!text.contains("PACKET_FANOUT"), "{text}");
    assert!(
        text.contains(&format!("qof: {} packets read", 2 * frames.len())),
        "{text}"
    );
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2 * flows.len(), "{text}");
    for r in &records {
        assert_eq!(r["packetDeltaCount"], 3, "{r}");
        assert_eq!(r["reversePacketDeltaCount"], 2, "{r}");
    }
}
