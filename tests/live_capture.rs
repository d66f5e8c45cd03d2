//! Live capture (`--in int:INTERFACE`, Linux): datagrams sent over the loopback interface
//! while qof captures on it come out as one flow, each packet counted once, timed by the
//! kernel's clock. Without the privilege to capture, qof says so in one line.

#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::net::UdpSocket;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether process `pid` has a packet socket bound to interface `ifindex` (its sockets'
/// inodes, from /proc/PID/fd, found in /proc/net/packet with that interface).
fn capturing(pid: u32, ifindex: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let inodes: Vec<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/packet").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(4) == Some(&ifindex.to_string().as_str())
                && cols.get(8).is_some_and(|i| inodes.iter().any(|n| n == i))
        })
        .count()
}

/// Wait until `child` captures on interface `iface` with `sockets` sockets (one per worker:
/// a fanout group's members take frames once the last has joined, a moment after its bind).
fn wait_capturing_on(child: &std::process::Child, iface: &str, sockets: usize) {
    let ifindex: u32 = std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let t0 = Instant::now();
    while capturing(child.id(), ifindex) < sockets {
        assert!(t0.elapsed() < Duration::from_secs(20), "qof never bound");
        std::thread::sleep(Duration::from_millis(20));
    }
    if sockets > 1 {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether this process may open a packet socket (root, or CAP_NET_RAW; a container can
/// withhold it even from root).
fn can_capture() -> bool {
    socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::RAW, None).is_ok()
}

/// qof capturing on `iface` (`--in int:IFACE` and `args`), once its socket is bound there.
fn capture_on(iface: &str, args: &[&str]) -> std::process::Child {
    let child = qof()
        .args(["--in", &format!("int:{iface}")])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let workers = args
        .iter()
        .position(|a| *a == "--workers")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1);
    wait_capturing_on(&child, iface, workers);
    child
}

/// What an ended qof wrote on standard error.
fn stderr_of(child: &mut std::process::Child) -> String {
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    stderr
}

/// SIGTERM to qof; its exit status and standard error once it has ended.
fn terminate(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    (status, stderr_of(&mut child))
}

/// The JSON records of an output file, and its text (for messages).
fn records(path: &std::path::Path) -> (Vec<serde_json::Value>, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let recs = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (recs, text)
}

/// One test on the loopback interface at a time: the flood of one would be the other's drops.
static LOOPBACK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn loopback_datagrams_are_one_flow_counted_once() {
    if !can_capture() {
        // Without root the one thing to check is the refusal.
        let out = run(qof().args(["--in", "int:lo", "--format", "json", "--out", "/dev/null"]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.trim(),
            "qof: cannot open int:lo: cannot open a packet socket: Operation not permitted \
             (os error 1) (live capture needs root or CAP_NET_RAW)"
        );
        return;
    }
    let _one_at_a_time = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("live.json");
    let child = capture_on("lo", &["--format", "json", "--out", out.to_str().unwrap()]);
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    for i in 0..50u8 {
        sender
            .send_to(&[i; 100], receiver.local_addr().unwrap())
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let ended = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let (status, stderr) = terminate(child);
    assert!(status.success(), "{stderr}");

    let sport = sender.local_addr().unwrap().port();
    let dport = receiver.local_addr().unwrap().port();
    let (recs, text) = records(&out);
    let flows: Vec<&serde_json::Value> = recs
        .iter()
        .filter(|r| r["sourceTransportPort"] == sport && r["destinationTransportPort"] == dport)
        .collect();
    assert_eq!(flows.len(), 1, "{text}");
    let f = flows[0];
    assert_eq!(f["protocolIdentifier"], 17);
    assert_eq!(f["packetDeltaCount"], 50, "each packet once: {f}");
    assert_eq!(f["octetDeltaCount"], 50 * 128);
    // Timed by the clock: within the sending, to the millisecond.
    let ms = |key: &str| {
        let s = f[key].as_str().unwrap();
        let secs = std::process::Command::new("date")
            .args(["-u", "-d", s, "+%s%3N"])
            .output()
            .unwrap();
        String::from_utf8(secs.stdout)
            .unwrap()
            .trim()
            .parse::<u128>()
            .unwrap()
    };
    assert!(
        ms("flowStartMilliseconds") >= started.as_millis() - 1,
        "{f}"
    );
    assert!(ms("flowEndMilliseconds") <= ended.as_millis() + 1, "{f}");
}

/// Frames the kernel could not queue for qof (qof stopped while a flood passes) are counted
/// in the summary line, not lost silently.
#[test]
fn kernel_drops_are_counted_in_the_summary() {
    if !can_capture() {
        return; // (the refusal without privilege is checked above)
    }
    let _one_at_a_time = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    let child = capture_on("lo", &["--out", "/dev/null"]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    use nix::sys::signal::{kill, Signal};
    kill(pid, Signal::SIGSTOP).unwrap();
    // Far more than its 64 MiB ring holds.
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.connect(receiver.local_addr().unwrap()).unwrap();
    for _ in 0..200_000 {
        let _ = sender.send(&[0; 1400]);
    }
    kill(pid, Signal::SIGCONT).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = terminate(child);
    assert!(status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("qof: ") && l.contains("packets read"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let dropped: u64 = line
        .split(" dropped by the kernel")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop count: {line}"));
    assert!(dropped > 0, "{line}");
}

/// On a quiet interface time still passes: a flow idle past its timeout ends (reason 1, idle)
/// while qof waits, without a later frame to advance packet time.
#[test]
fn flows_on_a_quiet_interface_expire_by_the_clock() {
    if !can_capture() {
        return; // (the refusal without privilege is checked above)
    }
    let _one_at_a_time = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("q.yaml");
    std::fs::write(&yaml, "idle-timeout: 1\n").unwrap();
    let out = tmp.path().join("live.json");
    let child = capture_on(
        "lo",
        &[
            "--format",
            "json",
            "--yaml",
            yaml.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        sender
            .send_to(&[1; 20], receiver.local_addr().unwrap())
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(2500));
    let (status, stderr) = terminate(child);
    assert!(status.success(), "{stderr}");
    let sport = sender.local_addr().unwrap().port();
    let (recs, text) = records(&out);
    let flow = recs
        .iter()
        .find(|r| r["sourceTransportPort"] == sport)
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(flow["packetDeltaCount"], 3, "{flow}");
    assert_eq!(
        flow["flowEndReason"], 1,
        "ended idle, not at the signal: {flow}"
    );
}

/// A veth pair made for a test, removed when dropped.
struct Veth(String);

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

fn ip(args: &[&str]) {
    let st = std::process::Command::new("ip")
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "ip {args:?}");
}

/// The interface going down ends the capture with one line naming the cause, every flow read
/// before it is exported, and the exit status is 1 (before, a socket in error made qof spin).
#[test]
fn an_interface_going_down_ends_the_capture_with_one_line() {
    if !can_capture() {
        return; // (the refusal without privilege is checked above)
    }
    let (a, b) = (
        format!("qofa{}", std::process::id() % 100_000),
        format!("qofb{}", std::process::id() % 100_000),
    );
    ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
    let _cleanup = Veth(a.clone());
    ip(&["link", "set", &a, "up"]);
    ip(&["link", "set", &b, "up"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("live.json");
    let mut child = capture_on(&a, &["--format", "json", "--out", out.to_str().unwrap()]);
    // Five UDP datagrams 10.0.0.1:8080 -> 10.0.0.2:53, sent as Ethernet frames into the peer.
    let send = format!(
        "import socket\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('{b}', 0))\n\
         f = bytes.fromhex('ffffffffffff020000000001' '0800' \
         '4500001c00004000401100000a0000010a000002' '1f900035000800000000')\n\
         for i in range(5): s.send(f)\n"
    );
    let st = std::process::Command::new("python3")
        .args(["-c", &send])
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(500));
    ip(&["link", "set", &a, "down"]);
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("qof did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("capture stopped"))
        .collect();
    assert_eq!(
        errors,
        [format!(
            "qof: int:{a}: capture stopped: Network is down (os error 100)"
        )],
        "{stderr}"
    );
    let (recs, text) = records(&out);
    let flow = recs
        .iter()
        .find(|r| r["sourceTransportPort"] == 8080)
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(flow["packetDeltaCount"], 5, "{flow}");
    assert_eq!(flow["destinationIPv4Address"], "10.0.0.2");
}

/// A live capture cannot wait for a collector: with none there and a small export queue, the
/// capture goes on, the queue drops its oldest messages, and the summary counts every record
/// as lost, naming those dropped at the full queue (beside the kernel's drops, none here).
#[test]
fn a_live_capture_drops_and_counts_what_an_absent_collector_cannot_take() {
    if !can_capture() {
        return; // (the refusal without privilege is checked above)
    }
    let _one_at_a_time = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = capture_on(
        "lo",
        &[
            "--ipfix",
            "tcp",
            "--out",
            "127.0.0.1",
            "--ipfix-port",
            &port.to_string(),
            "--export-queue-bytes",
            "16K",
            "--export-timeout",
            "1",
        ],
    );
    // 5,000 flows: one datagram each to a port nobody listens on.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in 0..5_000u16 {
        let _ = sender.send_to(&[1; 20], ("127.0.0.1", 20_000 + p));
    }
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    let (status, stderr) = terminate(child);
    assert!(stopped.elapsed() < Duration::from_secs(10), "{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("qof: ") && l.contains("flow records exported"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let number = |before: &str| -> u64 {
        line.split(before)
            .next()
            .and_then(|s| s.rsplit([' ', '(']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{before:?}: {line}"))
    };
    let exported = number(" flow records exported");
    assert!(exported >= 5_000, "{line}");
    assert_eq!(number(" delivered ("), 0, "{line}");
    assert_eq!(number(" records lost to the network"), exported, "{line}");
    let overflow = number(" of them at the full export queue");
    assert!(overflow > 0 && overflow < exported, "{line}");
    assert!(
        stderr.contains("export queue full (16384 octets)"),
        "{stderr}"
    );
}

/// `--filter` on a live interface runs in the kernel: frames it refuses never reach qof (the
/// summary reads only the accepted ones), and `--snaplen` cuts what the kernel copies (the
/// wire length, and so the octet counts, stay whole). With `--workers 2`, live packets are
/// metered by workers and the records are the same.
#[test]
fn the_kernel_filters_and_cuts_live_frames() {
    if !can_capture() {
        return;
    }
    let _one_at_a_time = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    for workers in ["1", "2"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("live.json");
        let wanted = UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let filter = format!("udp dst port {}", wanted.local_addr().unwrap().port());
        let child = capture_on(
            "lo",
            &[
                "--format",
                "json",
                "--out",
                out.to_str().unwrap(),
                "--filter",
                &filter,
                "--snaplen",
                "64",
                "--workers",
                workers,
            ],
        );
        for i in 0..30u8 {
            sender
                .send_to(&[i; 1000], wanted.local_addr().unwrap())
                .unwrap();
            sender
                .send_to(&[i; 1000], other.local_addr().unwrap())
                .unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let (status, stderr) = terminate(child);
        assert!(status.success(), "{stderr}");
        let (recs, text) = records(&out);
        assert_eq!(
            recs.len(),
            1,
            "workers {workers}: only the filtered flow: {text}"
        );
        let f = &recs[0];
        assert_eq!(
            f["destinationTransportPort"],
            wanted.local_addr().unwrap().port()
        );
        assert_eq!(f["packetDeltaCount"], 30, "{f}");
        // Whole wire lengths though the kernel kept 64 octets of each frame.
        assert_eq!(f["octetDeltaCount"], 30 * 1028, "{f}");
        assert!(
            stderr.contains("qof: 30 packets read"),
            "workers {workers}: the refused frames never reached qof: {stderr}"
        );
        assert!(!stderr.contains("filtered out"), "{stderr}");
    }
}

#[test]
fn live_options_are_checked() {
    for (args, says) in [
        (&["--in", "int:lo", "--snaplen", "10"][..], "--snaplen 10"),
        (&["--in", "int:lo", "--ring-size", "1"][..], "--ring-size 1"),
        (
            &["--in", "x.pcap", "--snaplen", "100"][..],
            "apply to live capture",
        ),
    ] {
        let out = run(qof().args(args).args(["--out", "/dev/null"]));
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
    }
}
