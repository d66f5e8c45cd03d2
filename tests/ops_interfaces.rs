//! Interfaces (issue 15, item 7): ingressInterface from the input (a number given for files,
//! the kernel's index for a live interface, or what ipt-netflow-style rules make of its
//! name), and several live interfaces at once, each packet in a flow of the link it was seen
//! on.

mod common;
use common::*;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const TEMPLATE: &[&str] = &[
    "flowStartMilliseconds",
    "sourceIPv4Address",
    "destinationIPv4Address",
    "sourceTransportPort",
    "destinationTransportPort",
    "protocolIdentifier",
    "packetDeltaCount",
    "ingressInterface",
];

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap")
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A file's flows carry `--ingress-interface` (0 without it), in JSON and in IPFIX as
/// ipfixDump-free qofdump reads it back; NetFlow v9 carries it as INPUT_SNMP (tshark).
#[test]
fn files_carry_the_ingress_interface_given() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("t.yaml");
    std::fs::write(&yaml, template_yaml(TEMPLATE)).unwrap();
    for (args, want) in [
        (&[][..], 0u64),
        (&["--ingress-interface", "4000000000"][..], 4_000_000_000),
    ] {
        let out = run(qof()
            .arg("--in")
            .arg(sample())
            .arg("--yaml")
            .arg(&yaml)
            .args(["--format", "json"])
            .args(args));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recs = json_lines(&String::from_utf8(out.stdout).unwrap());
        assert!(recs.len() > 10);
        assert!(
            recs.iter().all(|r| r["ingressInterface"] == want),
            "{recs:?}"
        );
    }
    let ipfix = tmp.path().join("f.ipfix");
    let out = run(qof()
        .arg("--in")
        .arg(sample())
        .arg("--yaml")
        .arg(&yaml)
        .args(["--ingress-interface", "12", "--out"])
        .arg(&ipfix));
    assert!(out.status.success());
    let dumped = run(qofdump().arg("--no-options").arg(&ipfix));
    let recs = json_lines(&String::from_utf8(dumped.stdout).unwrap());
    assert!(!recs.is_empty() && recs.iter().all(|r| r["ingressInterface"] == 12));
    if have_tool("tshark") {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let out = run(qof().arg("--in").arg(sample()).args([
            "--netflow",
            "9",
            "--out",
            &format!("127.0.0.1:{port}"),
            "--ingress-interface",
            "12",
        ]));
        assert!(out.status.success());
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut datagrams = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = sock.recv(&mut buf) {
            datagrams.push(buf[..n].to_vec());
        }
        let text = tshark_decode(&datagrams, port, tmp.path());
        let inputs: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("InputInt: "))
            .collect();
        assert!(!inputs.is_empty(), "{text}");
        assert!(inputs.iter().all(|i| *i == "12"), "{inputs:?}");
    }
}

/// Whether this process may open a packet socket.
fn can_capture() -> bool {
    socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::RAW, None).is_ok()
}

fn ifindex(name: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
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

/// Number of packet sockets of `pid` bound to `iface`.
fn bound(pid: u32, iface: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: Vec<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let index = ifindex(iface).to_string();
    std::fs::read_to_string("/proc/net/packet")
        .unwrap()
        .lines()
        .skip(1)
        .any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(4) == Some(&index.as_str())
                && cols.get(8).is_some_and(|i| inodes.iter().any(|n| n == i))
        })
}

/// qof, killed if the test fails first.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Five Ethernet frames (UDP 10.0.0.1:8080 -> 10.0.0.2:53) sent into `iface` from a packet
/// socket (they pass the interface outgoing, and arrive on its veth peer).
fn send_frames(iface: &str) {
    let send = format!(
        "import socket\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('{iface}', 0))\n\
         f = bytes.fromhex('ffffffffffff020000000001' '0800' \
         '4500001c00004000401100000a0000010a000002' '1f900035000800000000')\n\
         for i in range(5): s.send(f)\n"
    );
    let st = std::process::Command::new("python3")
        .args(["-c", &send])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Capturing on both ends of a veth pair at once: each frame is seen leaving one end and
/// arriving at the other, and makes one flow per interface, each with that interface's
/// index: the kernel's, or `--interface-rules`' (NAME:BASE, BASE + the number after NAME).
#[test]
fn several_live_interfaces_keep_their_links_apart() {
    if !can_capture() {
        return;
    }
    let n = std::process::id() % 100_000;
    let (a, b) = (format!("qifa{n}"), format!("qifb{n}"));
    ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
    let _cleanup = Veth(a.clone());
    ip(&["link", "set", &a, "up"]);
    ip(&["link", "set", &b, "up"]);
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("t.yaml");
    std::fs::write(&yaml, template_yaml(TEMPLATE)).unwrap();
    for rules in [None, Some("qifb:7000,qifa:5000")] {
        let out = tmp.path().join("live.json");
        let mut cmd = qof();
        cmd.args(["--in", &format!("int:{a}"), "--in", &format!("int:{b}")])
            .arg("--yaml")
            .arg(&yaml)
            .args(["--format", "json", "--out"])
            .arg(&out)
            .stderr(Stdio::piped());
        if let Some(r) = rules {
            cmd.args(["--interface-rules", r]);
        }
        let mut child = Running(Some(cmd.spawn().unwrap()));
        let pid = child.0.as_ref().unwrap().id();
        let t0 = Instant::now();
        while !(bound(pid, &a) && bound(pid, &b)) {
            assert!(t0.elapsed() < Duration::from_secs(20), "qof never bound");
            std::thread::sleep(Duration::from_millis(20));
        }
        send_frames(&b);
        std::thread::sleep(Duration::from_millis(500));
        let c = child.0.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let result = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{stderr}");
        let recs = json_lines(&std::fs::read_to_string(&out).unwrap());
        let mut ours: Vec<(u64, u64)> = recs
            .iter()
            .filter(|r| r["sourceTransportPort"] == 8080 && r["destinationTransportPort"] == 53)
            .map(|r| {
                (
                    r["ingressInterface"].as_u64().unwrap(),
                    r["packetDeltaCount"].as_u64().unwrap(),
                )
            })
            .collect();
        ours.sort();
        let mut want = match rules {
            None => vec![(ifindex(&a), 5), (ifindex(&b), 5)],
            Some(_) => vec![(5000 + u64::from(n), 5), (7000 + u64::from(n), 5)],
        };
        want.sort();
        assert_eq!(ours, want, "{recs:?}");
    }
}

/// Live capture on lo: ingressInterface is lo's kernel index.
#[test]
fn a_live_interface_gives_its_kernel_index() {
    if !can_capture() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("t.yaml");
    std::fs::write(&yaml, template_yaml(TEMPLATE)).unwrap();
    let out = tmp.path().join("live.json");
    let mut child = Running(Some(
        qof()
            .args(["--in", "int:lo"])
            .arg("--yaml")
            .arg(&yaml)
            .args(["--format", "json", "--out"])
            .arg(&out)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let pid = child.0.as_ref().unwrap().id();
    let t0 = Instant::now();
    while !bound(pid, "lo") {
        assert!(t0.elapsed() < Duration::from_secs(20), "qof never bound");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&[1; 10], r.local_addr().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let c = child.0.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(c.wait_with_output().unwrap().status.success());
    let recs = json_lines(&std::fs::read_to_string(&out).unwrap());
    let sport = s.local_addr().unwrap().port();
    let f = recs
        .iter()
        .find(|r| r["sourceTransportPort"] == sport)
        .unwrap_or_else(|| panic!("{recs:?}"));
    assert_eq!(f["ingressInterface"], ifindex("lo"));
}
