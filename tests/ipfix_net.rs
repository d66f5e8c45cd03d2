//! IPFIX export to live collectors (`--ipfix tcp|udp|sctp`, `--tls`): collectors written here
//! (TCP and UDP sockets, a rustls TLS server) and foreign ones (ipfixDump, tshark, nfcapd)
//! receive qof's records, and they are the records `qof --format json` prints for the same
//! capture. Faults: a collector that dies and comes back, one that never accepts, SIGTERM in the
//! middle of a pipe.
//!
//! Synthetic captures make "mid-stream" deterministic: the first half ends with a packet far
//! later than the rest, so every earlier flow times out and is exported at that point; the test
//! waits until its collector has those records, then acts.

mod common;
use common::*;

use qof::ipfix::decode::{Event, Message, MessageReader, Session};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Waiting

/// Poll `done` until it holds; fail after `secs` seconds naming `what`.
fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic captures

/// Packet time of the synthetic captures (ms since the epoch): 2024-01-01.
const T0: u64 = 1_704_067_200_000;

fn pcap_header() -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65_535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    h
}

/// One UDP packet of flow `flow` (10.1.x.y:1000+flow → 192.168.0.1:53), or its answer.
fn packet(out: &mut Vec<u8>, t_ms: u64, flow: u32, answer: bool) {
    let client = [10, 1, (flow >> 8) as u8, flow as u8];
    let server = [192, 168, 0, 1];
    let port = 1000 + (flow % 60_000) as u16;
    let b = if answer {
        etherparse::PacketBuilder::ethernet2([2; 6], [1; 6])
            .ipv4(server, client, 64)
            .udp(53, port)
    } else {
        etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(client, server, 64)
            .udp(port, 53)
    };
    let payload = vec![0u8; 20 + (flow % 7) as usize];
    let mut frame = Vec::new();
    b.write(&mut frame, &payload).unwrap();
    out.extend_from_slice(&((t_ms / 1000) as u32).to_le_bytes());
    out.extend_from_slice(&((t_ms % 1000 * 1000) as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame);
}

/// Flows `flows`, one every `step_ms` from `start_ms` on, each a question and its answer.
fn flows(out: &mut Vec<u8>, flows: std::ops::Range<u32>, start_ms: u64, step_ms: u64) {
    for (i, f) in flows.enumerate() {
        let t = start_ms + i as u64 * step_ms;
        packet(out, t, f, false);
        packet(out, t + 1, f, true);
    }
}

/// A capture in two halves. The first: header, flows 0..n at T0.., then one packet 200 s
/// later, which times all of them out (30 s idle timeout), so exactly `n` records are exported
/// when qof reads it. The second: flows n..2n, then a packet 200 s later again; at its end the
/// two "clock" flows and nothing else remain.
fn two_halves(n: u32) -> (Vec<u8>, Vec<u8>) {
    let mut one = pcap_header();
    flows(&mut one, 0..n, T0, 20);
    packet(&mut one, T0 + 200_000, 60_000, false);
    let mut two = Vec::new();
    flows(&mut two, n..2 * n, T0 + 300_000, 20);
    packet(&mut two, T0 + 500_000, 60_001, false);
    (one, two)
}

/// Both halves of [`two_halves`]`(n)` in one capture file in `dir`, and the JSON lines qof
/// makes of it.
fn whole_capture(dir: &Path, n: u32) -> (PathBuf, Vec<String>) {
    let (one, two) = two_halves(n);
    let capture = [one, two].concat();
    let want = reference_json(&capture, dir);
    let path = dir.join("c.pcap");
    std::fs::write(&path, &capture).unwrap();
    (path, want)
}

/// A UDP port on 127.0.0.1 that nothing listens on (bound, then let go).
fn unused_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `qof --format json` of a capture given as bytes: the lines every collector must end up with.
fn reference_json(capture: &[u8], tmp: &Path) -> Vec<String> {
    let path = tmp.join("reference.pcap");
    std::fs::write(&path, capture).unwrap();
    json_of(&path)
}

fn json_of(capture: &Path) -> Vec<String> {
    let out = run(qof().arg("--in").arg(capture).args(["--format", "json"]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Decoding what collectors got

/// Flow records (not options records) in an IPFIX byte stream, as far as it is complete.
fn stream_records(bytes: &[u8]) -> usize {
    let mut reader = MessageReader::new(bytes);
    let mut session = Session::new();
    let mut n = 0;
    while let Ok(Some(msg)) = reader.next_message() {
        let _ = session.decode(&msg, |e| {
            if let Event::Record(r) = e {
                n += usize::from(!r.options);
            }
        });
    }
    n
}

/// Flow records in a sequence of datagrams (one UDP session).
fn datagram_records(datagrams: &[Vec<u8>]) -> usize {
    let mut session = Session::new();
    let mut n = 0;
    for d in datagrams {
        if let Ok((msg, _)) = Message::parse(d, 0) {
            let _ = session.decode(&msg, |e| {
                if let Event::Record(r) = e {
                    n += usize::from(!r.options);
                }
            });
        }
    }
    n
}

/// `qofdump` of IPFIX streams (each file one transport session): its JSON lines and stderr.
fn qofdump_lines(files: &[PathBuf], options: bool) -> (Vec<String>, String) {
    let mut cmd = qofdump();
    if !options {
        cmd.arg("--no-options");
    }
    let out = run(cmd.args(files));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "qofdump: {stderr}");
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (lines, stderr)
}

fn write_sessions(dir: &Path, tag: &str, sessions: &[Vec<u8>]) -> Vec<PathBuf> {
    sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = dir.join(format!("{tag}-{i}.ipfix"));
            std::fs::write(&p, s).unwrap();
            p
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Collectors

struct Conn {
    bytes: Vec<u8>,
    closed: bool,
    /// Error that ended the session (a failed TLS handshake), if any.
    error: Option<String>,
}

type Wrap = Arc<dyn Fn(TcpStream) -> Box<dyn Read + Send> + Send + Sync>;

/// A TCP collector on 127.0.0.1: accepts every connection and reads each to its end into its
/// own buffer (one IPFIX transport session each).
struct TcpCollector {
    port: u16,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Conn>>>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl TcpCollector {
    fn start(port: u16) -> Self {
        Self::start_with(port, Arc::new(|s| Box::new(s)))
    }

    /// `wrap` turns an accepted connection into the reader of its plaintext (TLS).
    fn start_with(port: u16, wrap: Wrap) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Conn>>> = Arc::default();
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let (stop, conns, streams) = (stop.clone(), conns.clone(), streams.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let s = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    s.set_nonblocking(false).unwrap();
                    streams.lock().unwrap().push(s.try_clone().unwrap());
                    let idx = {
                        let mut c = conns.lock().unwrap();
                        c.push(Conn {
                            bytes: Vec::new(),
                            closed: false,
                            error: None,
                        });
                        c.len() - 1
                    };
                    let (conns, wrap) = (conns.clone(), wrap.clone());
                    std::thread::spawn(move || {
                        let mut r = wrap(s);
                        let mut buf = vec![0u8; 65_536];
                        loop {
                            match r.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => conns.lock().unwrap()[idx]
                                    .bytes
                                    .extend_from_slice(&buf[..n]),
                                Err(e) => {
                                    conns.lock().unwrap()[idx].error = Some(e.to_string());
                                    break;
                                }
                            }
                        }
                        conns.lock().unwrap()[idx].closed = true;
                    });
                }
                // The listener is dropped here: the port is closed.
            })
        };
        TcpCollector {
            port,
            stop,
            conns,
            streams,
            accept: Some(accept),
        }
    }

    fn records(&self) -> usize {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| stream_records(&c.bytes))
            .sum()
    }

    /// Every connection so far has ended (qof closed it).
    fn all_closed(&self) -> bool {
        let c = self.conns.lock().unwrap();
        !c.is_empty() && c.iter().all(|c| c.closed)
    }

    fn sessions(&self) -> Vec<Vec<u8>> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.bytes.clone())
            .collect()
    }

    fn errors(&self) -> Vec<String> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .filter_map(|c| c.error.clone())
            .collect()
    }

    /// Wait for qof to close every connection, then stop; returns each session's bytes.
    fn finish(mut self) -> Vec<Vec<u8>> {
        wait_until("the collector's connections to end", 30, || {
            self.all_closed()
        });
        self.shutdown();
        self.sessions()
    }

    /// The collector dies: no more listening, every connection closed.
    fn kill(mut self) -> Vec<Vec<u8>> {
        self.shutdown();
        for s in self.streams.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        wait_until("the killed collector's readers", 10, || {
            self.conns.lock().unwrap().iter().all(|c| c.closed)
        });
        self.sessions()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            t.join().unwrap();
        }
    }
}

/// A UDP collector on 127.0.0.1: keeps every datagram.
struct UdpCollector {
    port: u16,
    stop: Arc<AtomicBool>,
    datagrams: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
}

impl UdpCollector {
    fn start() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        // A receive buffer large enough for a whole capture's datagrams: the loopback drops
        // what does not fit, and no exporter can know (as root the system maximum does not
        // apply).
        use nix::sys::socket::{setsockopt, sockopt};
        if setsockopt(&sock, sockopt::RcvBufForce, &(64 << 20)).is_err() {
            let _ = setsockopt(&sock, sockopt::RcvBuf, &(64 << 20));
        }
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let datagrams: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let thread = {
            let (stop, datagrams) = (stop.clone(), datagrams.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        datagrams.lock().unwrap().push(buf[..n].to_vec());
                    }
                }
            })
        };
        UdpCollector {
            port,
            stop,
            datagrams,
            thread: Some(thread),
        }
    }

    fn records(&self) -> usize {
        datagram_records(&self.datagrams.lock().unwrap())
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.datagrams.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------------
// qof as a service

/// The lines of a child's output, collected by a thread as they come.
fn collect_lines(r: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text: Arc<Mutex<String>> = Arc::default();
    let t = {
        let text = text.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                let mut s = text.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        })
    };
    (text, t)
}

/// qof reading a pipe the test writes to; its stderr collected as it comes.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Running {
    fn spawn(args: &[&str]) -> Self {
        Self::spawn_cmd(qof().args(args))
    }

    fn spawn_cmd(cmd: &mut Command) -> Self {
        let mut child = cmd
            .args(["--in", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let (stderr, reader) = collect_lines(child.stderr.take().unwrap());
        Running {
            child,
            stdin,
            stderr,
            reader: Some(reader),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin.take();
    }

    fn wait_log(&self, needle: &str, secs: u64) {
        wait_until(&format!("qof to log {needle:?}"), secs, || {
            self.stderr.lock().unwrap().contains(needle)
        });
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    fn finish(mut self) -> (ExitStatus, String) {
        self.close_stdin();
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stderr)
    }
}

/// The "N records lost to the network" of qof's summary line.
fn lost_in_summary(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("qof: ") && l.contains("records lost to the network"))
        .unwrap_or_else(|| panic!("no summary line with a loss count: {stderr}"));
    let before = line.split(" records lost to the network").next().unwrap();
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary: {line}"))
}

/// The "N sent (delivery not confirmed)" of qof's summary line over UDP, which claims no loss
/// count it cannot know.
fn sent_in_summary(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("qof: ") && l.contains(" sent (delivery not confirmed)"))
        .unwrap_or_else(|| panic!("no summary line with a sent count: {stderr}"));
    assert!(!line.contains("lost"), "{line}");
    let before = line.split(" sent (delivery not confirmed)").next().unwrap();
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary: {line}"))
}

fn port_arg(port: u16) -> String {
    port.to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Every record of every corpus capture reaches a TCP collector and a UDP collector, and is
/// the record `qof --format json` prints. libfixbuf's ipfixDump reads each TCP session with no
/// complaint and as many data records.
#[test]
fn corpus_over_tcp_and_udp_equals_json() {
    let ipfix_dump = have_tool("ipfixDump");
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut records = 0;
    for cap in corpus_files() {
        let name = name(&cap);
        let json = run(qof().arg("--in").arg(&cap).args(["--format", "json"]));
        if !json.status.success() && json.stdout.is_empty() {
            continue; // refused at open (see corpus_flowdiff.rs)
        }
        let want: Vec<String> = String::from_utf8(json.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();

        let tcp = TcpCollector::start(0);
        let out = run(qof().arg("--in").arg(&cap).args([
            "--ipfix",
            "tcp",
            "--out",
            "127.0.0.1",
            "--ipfix-port",
            &port_arg(tcp.port),
        ]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), json.status.code(), "{name}: {stderr}");
        assert_eq!(lost_in_summary(&stderr), 0, "{name}: {stderr}");
        let sessions = tcp.finish();
        assert_eq!(sessions.len(), 1, "{name}: one connection");
        let files = write_sessions(tmp.path(), "tcp", &sessions);
        let (got, complaints) = qofdump_lines(&files, false);
        assert!(complaints.is_empty(), "{name}: qofdump: {complaints}");
        assert_eq!(got, want, "{name}: over TCP");

        if ipfix_dump {
            let d = run(Command::new("ipfixDump").arg("--in").arg(&files[0]));
            let err = String::from_utf8_lossy(&d.stderr);
            assert!(
                d.status.success() && err.trim().is_empty(),
                "{name}: ipfixDump: {err}"
            );
            let n = String::from_utf8_lossy(&d.stdout)
                .lines()
                .filter(|l| l.starts_with("--- data record"))
                .count();
            assert_eq!(n, want.len(), "{name}: ipfixDump's data records");
        }

        let udp = UdpCollector::start();
        let out = run(qof().arg("--in").arg(&cap).args([
            "--ipfix",
            "udp",
            "--out",
            "127.0.0.1",
            "--ipfix-port",
            &port_arg(udp.port),
        ]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        // UDP cannot confirm delivery: "sent", never "0 lost".
        assert_eq!(
            sent_in_summary(&stderr),
            want.len() as u64,
            "{name}: {stderr}"
        );
        wait_until(&format!("{name}: UDP records"), 10, || {
            udp.records() >= want.len()
        });
        let datagrams = udp.finish();
        assert!(datagrams.iter().all(|d| d.len() <= 1420), "{name}: MTU");
        let file = write_sessions(tmp.path(), "udp", &[datagrams.concat()]);
        let (got, complaints) = qofdump_lines(&file, false);
        assert!(complaints.is_empty(), "{name}: qofdump: {complaints}");
        assert_eq!(got, want, "{name}: over UDP");
        checked += 1;
        records += want.len();
    }
    assert!(checked > 70, "only {checked} captures checked");
    assert!(records > 1000, "only {records} records");
}

/// Collectors on IPv6: the address bare or in brackets, over TCP and UDP.
#[test]
fn ipv6_collectors_receive_everything() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        // No IPv6 loopback in this sandbox: nothing to test against.
        eprintln!("no ::1 here; IPv6 export not tested");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cap = sample_capture();
    let want = json_of(&cap);
    let port = listener.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let out = run(qof().arg("--in").arg(&cap).args([
        "--ipfix",
        "tcp",
        "--out",
        "::1",
        "--ipfix-port",
        &port_arg(port),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let files = write_sessions(tmp.path(), "v6", &[reader.join().unwrap()]);
    assert_eq!(qofdump_lines(&files, false).0, want, "TCP over IPv6");

    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let out = run(qof().arg("--in").arg(&cap).args([
        "--ipfix",
        "udp",
        "--out",
        "[::1]",
        "--ipfix-port",
        &port_arg(port),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while datagram_records(&datagrams) < want.len() {
        let n = sock.recv(&mut buf).expect("every datagram within 10 s");
        datagrams.push(buf[..n].to_vec());
    }
    let files = write_sessions(tmp.path(), "v6u", &[datagrams.concat()]);
    assert_eq!(qofdump_lines(&files, false).0, want, "UDP over IPv6");
}

/// The collector dies between two halves of the input (listener and connection dropped) and a
/// new one starts on the same port once qof has noticed: every record arrives exactly once,
/// the templates on the new connection included, and nothing is counted as lost.
#[test]
fn tcp_collector_restart_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 1000;
    let (one, two) = two_halves(n);
    let want = reference_json(&[one.clone(), two.clone()].concat(), tmp.path());
    assert_eq!(want.len(), 2 * n as usize + 2);

    let a = TcpCollector::start(0);
    let port = a.port;
    let mut q = Running::spawn(&[
        "--ipfix",
        "tcp",
        "--out",
        "localhost",
        "--ipfix-port",
        &port_arg(port),
        "--export-timeout",
        "30",
        "--loglevel",
        "info",
    ]);
    q.feed(&one);
    wait_until("the first half's records", 30, || a.records() == n as usize);
    let first = a.kill();

    q.feed(&two);
    q.wait_log("connection lost", 30);
    let b = TcpCollector::start(port);
    q.close_stdin();
    let (status, stderr) = q.finish();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("connected again after"), "{stderr}");
    assert_eq!(lost_in_summary(&stderr), 0, "{stderr}");
    let second = b.finish();

    let mut sessions = first;
    sessions.extend(second);
    let files = write_sessions(tmp.path(), "s", &sessions);
    let (got, complaints) = qofdump_lines(&files, false);
    assert!(complaints.is_empty(), "decoder warnings: {complaints}");
    assert_eq!(got, want, "records after a collector restart");
}

/// The same, with room for one message while the collector is away, and a queue that drops
/// rather than waits (as for a live capture, `--export-queue-full drop`): the oldest messages
/// are dropped, and the loss counter (summary line and the statistics record's
/// notSentFlowTotalCount) is exactly what is missing; nothing arrives twice.
#[test]
fn tcp_queue_overflow_is_counted_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 1000;
    let (one, two) = two_halves(n);
    let want = reference_json(&[one.clone(), two.clone()].concat(), tmp.path());

    let a = TcpCollector::start(0);
    let port = a.port;
    let mut q = Running::spawn(&[
        "--ipfix",
        "tcp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(port),
        "--export-queue",
        "1",
        "--export-queue-full",
        "drop",
        "--export-timeout",
        "30",
        "--stats",
        "3600",
        "--loglevel",
        "info",
    ]);
    q.feed(&one);
    wait_until("the first half's records", 30, || a.records() == n as usize);
    let first = a.kill();
    q.feed(&two);
    q.wait_log("export queue full (8192 octets)", 30);
    let b = TcpCollector::start(port);
    // Back in touch before the end of input: the statistics record, made at the end, then
    // carries the final loss count.
    q.wait_log("connected again", 30);
    let (status, stderr) = q.finish();
    let lost = lost_in_summary(&stderr);
    assert!(lost > 0, "{stderr}");
    assert_eq!(status.code(), Some(1), "records were lost: {stderr}");
    let second = b.finish();

    let mut sessions = first;
    sessions.extend(second);
    let files = write_sessions(tmp.path(), "s", &sessions);
    let (all, complaints) = qofdump_lines(&files, true);
    assert!(complaints.is_empty(), "decoder warnings: {complaints}");
    let (stats, got): (Vec<String>, Vec<String>) = all
        .into_iter()
        .partition(|l| l.contains("notSentFlowTotalCount"));
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "a record arrived twice");
    assert!(got.iter().all(|l| want.contains(l)), "a record no run made");
    assert_eq!(got.len() as u64 + lost, want.len() as u64);
    let last: serde_json::Value = serde_json::from_str(stats.last().unwrap()).unwrap();
    assert_eq!(last["notSentFlowTotalCount"], lost);
}

/// SIGTERM while qof waits on a pipe that stays open: every flow in memory reaches the
/// collector, exactly what the same bytes give at a normal end of input.
#[test]
fn sigterm_flushes_every_flow_to_the_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 600;
    let mut capture = pcap_header();
    flows(&mut capture, 0..n, T0, 20);
    // Still active when the clock packet comes: in memory at the signal.
    flows(&mut capture, n..n + 300, T0 + 190_000, 20);
    packet(&mut capture, T0 + 200_000, 60_000, false);
    let want = reference_json(&capture, tmp.path());
    assert_eq!(want.len(), n as usize + 301);

    let c = TcpCollector::start(0);
    let mut q = Running::spawn(&[
        "--ipfix",
        "tcp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(c.port),
    ]);
    q.feed(&capture);
    wait_until("the timed-out flows", 30, || c.records() == n as usize);
    q.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, stderr) = q.finish();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("signal received"), "{stderr}");
    let files = write_sessions(tmp.path(), "s", &c.finish());
    let (got, _) = qofdump_lines(&files, false);
    assert_eq!(got, want);
}

/// SIGUSR1 logs the flow and fragment tables' statistics and the exporter's state.
#[test]
fn sigusr1_logs_table_and_export_statistics() {
    let n = 200;
    let (one, two) = two_halves(n);
    let c = TcpCollector::start(0);
    let mut q = Running::spawn(&[
        "--ipfix",
        "tcp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(c.port),
    ]);
    q.feed(&one);
    wait_until("the first half's records", 30, || c.records() == n as usize);
    // Delivered means acknowledged by the collector's TCP, which may delay its ACK (Linux:
    // at most 200 ms), and qof asks its kernel every 10 ms: let both pass.
    std::thread::sleep(Duration::from_millis(500));
    q.signal(nix::sys::signal::Signal::SIGUSR1);
    // The signal is acted on with the next packet read.
    q.feed(&two);
    q.wait_log("fragments:", 30);
    let (status, stderr) = q.finish();
    assert!(status.success(), "{stderr}");
    let line = stderr.lines().find(|l| l.contains("flow table:")).unwrap();
    // Acted on after the first packet of the second half: the first half's flows, its clock
    // flow and that packet's flow.
    assert!(
        line.contains(&format!("{} packets read", 2 * n + 2)),
        "{line}"
    );
    assert!(line.contains(&format!("{} created", n + 2)), "{line}");
    assert!(line.contains("datagrams assembled"), "{line}");
    let export = stderr
        .lines()
        .find(|l| l.contains("status: tcp 127.0.0.1"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        export.contains(&format!("{n} records delivered, 0 lost")),
        "{export}"
    );
    c.finish();
}

/// A collector that is not there at all: memory stays bounded (the queue holds 2 messages),
/// the input waits for the collector for --export-timeout, then qof stops reading with one
/// line saying why; the summary counts every record as lost and the exit status is 1.
#[test]
fn collector_never_listening_counts_everything_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, want) = whole_capture(tmp.path(), 1500);
    let want = want.len() as u64;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = run(qof().arg("--in").arg(&path).args([
        "--ipfix",
        "tcp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(port),
        "--export-queue",
        "2",
        "--export-timeout",
        "1",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "took too long");
    assert!(
        stderr.contains("cannot connect (Connection refused"),
        "{stderr}"
    );
    assert!(
        stderr.contains("qof: tcp 127.0.0.1:")
            && stderr.contains("the collector took nothing for 1 s (--export-timeout)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("export queue full"),
        "nothing dropped: {stderr}"
    );
    assert_eq!(lost_in_summary(&stderr), want, "{stderr}");
}

/// Over UDP, a collector that is not there answers every datagram with port unreachable. The
/// kernel reports it on the next send, which it refuses: that datagram and the one before are
/// lost, and after the last datagram the socket is asked once more. Every record is counted as
/// lost (none as sent), and the exit status is 1.
#[test]
fn udp_collector_not_listening_counts_everything_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, want) = whole_capture(tmp.path(), 1000);
    let want = want.len() as u64;
    let port = unused_udp_port();
    let out = run(qof().arg("--in").arg(&path).args([
        "--ipfix",
        "udp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(port),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert_eq!(lost_in_summary(&stderr), want, "{stderr}");
}

/// A collector that listens but never accepts, its backlog full: connection attempts time out
/// (bounded), records are counted as lost, exit status 1.
#[test]
fn collector_never_accepting_counts_everything_lost() {
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    // Fill the accept queue; further handshakes are not answered.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            fillers.push(s);
        }
    }
    let started = Instant::now();
    let out = run(qof().arg("--in").arg(sample_capture()).args([
        "--ipfix",
        "tcp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(addr.port()),
        "--export-timeout",
        "1",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "took too long");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert_eq!(lost_in_summary(&stderr), 52, "{stderr}");
    drop(fillers);
}

fn sample_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap")
}

/// --ipfix sctp: sent over SCTP where the kernel has it, else refused in one line.
#[test]
fn sctp_is_used_or_refused_in_one_line() {
    let have_sctp = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::from(132)),
    )
    .is_ok();
    let out = run(qof().arg("--in").arg(sample_capture()).args([
        "--ipfix",
        "sctp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        "9",
        "--export-timeout",
        "0",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    if have_sctp {
        // Nothing listens on port 9: the records are lost, and said so.
        assert_eq!(lost_in_summary(&stderr), 52, "{stderr}");
    } else {
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("qof: --ipfix sctp: this kernel does not support SCTP ("),
            "{stderr}"
        );
    }
}

/// --template-refresh: templates are sent again in a later message (UDP by default every
/// 60 s; here 1 s), and over TCP too when asked; collectors read the stream without warnings.
#[test]
fn templates_are_refreshed() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 100;
    let (one, two) = two_halves(n);
    let want = reference_json(&[one.clone(), two.clone()].concat(), tmp.path());
    for transport in ["udp", "tcp"] {
        let udp = (transport == "udp").then(UdpCollector::start);
        let tcp = (transport == "tcp").then(|| TcpCollector::start(0));
        let port = udp
            .as_ref()
            .map_or_else(|| tcp.as_ref().unwrap().port, |u| u.port);
        let records = || {
            udp.as_ref()
                .map_or_else(|| tcp.as_ref().unwrap().records(), |u| u.records())
        };
        let mut q = Running::spawn(&[
            "--ipfix",
            transport,
            "--out",
            "127.0.0.1",
            "--ipfix-port",
            &port_arg(port),
            "--template-refresh",
            "1",
        ]);
        q.feed(&one);
        wait_until("the first half's records", 30, || records() == n as usize);
        // The refresh period is wall-clock time: let it pass.
        std::thread::sleep(Duration::from_millis(1100));
        q.feed(&two);
        let (status, stderr) = q.finish();
        assert!(status.success(), "{transport}: {stderr}");
        let messages: Vec<Vec<u8>> = match (udp, tcp) {
            (Some(u), _) => {
                wait_until("all UDP records", 10, || u.records() == want.len());
                u.finish()
            }
            (_, Some(t)) => {
                let s = t.finish();
                split_messages(&s[0])
            }
            _ => unreachable!(),
        };
        // Template sets (set ID 2) in the messages carrying data: more than one defines the
        // flow template, so it was sent again.
        let with_templates = messages
            .iter()
            .filter(|m| m.len() > 20 && m[16..18] == [0, 2])
            .count();
        assert!(with_templates >= 2, "{transport}: {with_templates}");
        let file = write_sessions(tmp.path(), transport, &[messages.concat()]);
        let (got, complaints) = qofdump_lines(&file, false);
        assert!(complaints.is_empty(), "{transport}: {complaints}");
        assert_eq!(got, want, "{transport}");
    }
}

/// The messages of one IPFIX byte stream.
fn split_messages(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = stream;
    while let Ok((_, len)) = Message::parse(rest, 0) {
        out.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Foreign collectors

/// tshark dissects qof's IPFIX datagrams (wrapped in a pcap the test writes) as CFLOW with no
/// malformed packet and no expert warning, and finds every data record.
#[test]
fn tshark_decodes_udp_export_cleanly() {
    if !have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (path, want) = whole_capture(tmp.path(), 300);
    let udp = UdpCollector::start();
    let out = run(qof().arg("--in").arg(&path).args([
        "--ipfix",
        "udp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(udp.port),
        "--stats",
        "3600",
    ]));
    assert!(out.status.success());
    wait_until("UDP records", 10, || udp.records() == want.len());
    let datagrams = udp.finish();

    let mut pcap = pcap_header();
    for (i, d) in datagrams.iter().enumerate() {
        let mut frame = Vec::new();
        // Unicast MACs: tshark warns about a group address as a source.
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .udp(40_000, 4739)
            .write(&mut frame, d)
            .unwrap();
        pcap.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        pcap.extend_from_slice(&0u32.to_le_bytes());
        pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&frame);
    }
    let pcap_path = tmp.path().join("ipfix.pcap");
    std::fs::write(&pcap_path, &pcap).unwrap();
    let t = run(Command::new("tshark").arg("-r").arg(&pcap_path).args([
        "-d",
        "udp.port==4739,cflow",
        "-V",
    ]));
    let text = String::from_utf8_lossy(&t.stdout);
    let err = String::from_utf8_lossy(&t.stderr);
    assert!(t.status.success(), "tshark: {err}");
    for bad in ["Malformed", "Expert Info (Warning", "Expert Info (Error"] {
        assert!(!text.contains(bad), "tshark says {bad}:\n{text}");
    }
    let flows = text
        .lines()
        .filter(|l| l.trim_start().starts_with("Flow ") && l.trim().len() < 12)
        .count();
    assert_eq!(
        flows,
        want.len() + 1,
        "tshark's data records (flows + statistics)"
    );
}

/// nfcapd (nfdump) collects qof's IPFIX over UDP; nfdump shows the same flows as qof's JSON:
/// count, keys, packets and bytes each way.
#[test]
fn nfcapd_collects_udp_export() {
    if !have_tool("nfcapd") || !have_tool("nfdump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cap = sample_capture();
    let want = flow_tuples_from_json(&json_of(&cap));
    let port = unused_udp_port();
    let dir = tmp.path().join("nf");
    std::fs::create_dir(&dir).unwrap();
    let mut nfcapd = Command::new("nfcapd")
        .arg("-w")
        .arg(&dir)
        .args(["-b", "127.0.0.1", "-p", &port_arg(port)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect_lines(nfcapd.stderr.take().unwrap());
    // nfcapd logs its start once its socket is bound; waiting for it beats guessing.
    wait_until("nfcapd to start", 20, || {
        log.0.lock().unwrap().contains("Startup")
    });
    let out = run(qof().arg("--in").arg(&cap).args([
        "--ipfix",
        "udp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(port),
    ]));
    assert!(out.status.success());
    // Every datagram was queued at nfcapd's socket when qof's send returned (loopback); once
    // that queue is empty nfcapd has read them all, and SIGTERM makes it write its file.
    wait_until("nfcapd to read every datagram", 20, || {
        udp_rx_queue(port) == Some(0)
    });
    let pid = nix::unistd::Pid::from_raw(nfcapd.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    nfcapd.wait().unwrap();
    log.1.join().unwrap();
    let seen = log.0.lock().unwrap().clone();
    let got = flow_tuples_from_nfdump(&nfdump_json(&dir));
    assert_eq!(got.len(), want.len(), "flows: {seen}");
    assert_eq!(got, want);
}

/// Octets waiting in the receive queue of the UDP socket bound to 127.0.0.1:`port`, from
/// /proc/net/udp (addresses there are in host byte order, hex).
fn udp_rx_queue(port: u16) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes([127, 0, 0, 1]));
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1) != Some(&local.as_str()) {
            return None;
        }
        let queues = f.get(4)?;
        u64::from_str_radix(queues.split(':').nth(1)?, 16).ok()
    })
}

/// (source, destination, source port, destination port, protocol, packets, octets, reverse
/// packets, reverse octets), sorted.
type Tuple = (String, String, u64, u64, u64, u64, u64, u64, u64);

fn flow_tuples_from_json(lines: &[String]) -> Vec<Tuple> {
    let mut v: Vec<Tuple> = lines
        .iter()
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |a: &str, b: &str| {
                j.get(a)
                    .or_else(|| j.get(b))
                    .and_then(|v| v.as_str())
                    .unwrap()
                    .to_string()
            };
            let u = |k: &str| j.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            (
                s("sourceIPv4Address", "sourceIPv6Address"),
                s("destinationIPv4Address", "destinationIPv6Address"),
                u("sourceTransportPort"),
                u("destinationTransportPort"),
                u("protocolIdentifier"),
                u("packetDeltaCount"),
                u("octetDeltaCount"),
                u("reversePacketDeltaCount"),
                u("reverseOctetDeltaCount"),
            )
        })
        .collect();
    v.sort();
    v
}

fn flow_tuples_from_nfdump(all: &[serde_json::Value]) -> Vec<Tuple> {
    let mut v: Vec<Tuple> = all
        .iter()
        .filter(|f| f["type"] == "FLOW")
        .map(|f| {
            let s = |a: &str, b: &str| {
                f.get(a)
                    .or_else(|| f.get(b))
                    .and_then(|v| v.as_str())
                    .unwrap()
                    .to_string()
            };
            let u = |k: &str| f.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            // nfdump splits ICMP's destination port into type and code.
            let dport = if f.get("icmp_type").is_some() {
                u("icmp_type") << 8 | u("icmp_code")
            } else {
                u("dst_port")
            };
            (
                s("src4_addr", "src6_addr"),
                s("dst4_addr", "dst6_addr"),
                u("src_port"),
                dport,
                u("proto"),
                u("in_packets"),
                u("in_bytes"),
                u("out_packets"),
                u("out_bytes"),
            )
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// TLS

/// A throwaway PKI made with the openssl command: a CA, a collector certificate for localhost
/// and 127.0.0.1, an exporter certificate with an encrypted PKCS#8 key, and a second CA that
/// signs nothing of the collector's.
struct Pki {
    dir: tempfile::TempDir,
}

const KEY_PASSWORD: &str = "s3cret pass";

impl Pki {
    fn make() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ossl = |args: &[&str]| {
            let out = run(Command::new("openssl").current_dir(d).args(args));
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        for ca in ["ca", "other-ca"] {
            let mut a = vec!["req", "-x509", "-nodes", "-days", "2"];
            a.extend_from_slice(&ec);
            let key = format!("{ca}.key");
            let pem = format!("{ca}.pem");
            let subj = format!("/CN=qof test {ca}");
            a.extend_from_slice(&["-keyout", &key, "-out", &pem, "-subj", &subj]);
            ossl(&a);
        }
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        std::fs::write(d.join("client.ext"), "basicConstraints=CA:FALSE\n").unwrap();
        // The collector's key and certificate, signed by ca.
        let mut a = vec!["req", "-nodes"];
        a.extend_from_slice(&ec);
        a.extend_from_slice(&[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        ossl(&a);
        ossl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        // The exporter's key, encrypted (PBES2, AES-256-CBC), and certificates from each CA.
        let pass = format!("pass:{KEY_PASSWORD}");
        ossl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes-256-cbc",
            "-pass",
            &pass,
            "-out",
            "client.key",
        ]);
        ossl(&[
            "req",
            "-new",
            "-key",
            "client.key",
            "-passin",
            &pass,
            "-out",
            "client.csr",
            "-subj",
            "/CN=qof exporter",
        ]);
        for (ca, out) in [("ca", "client.pem"), ("other-ca", "client-other.pem")] {
            let ca_pem = format!("{ca}.pem");
            let ca_key = format!("{ca}.key");
            ossl(&[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "client.ext",
                "-out",
                out,
            ]);
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A collector that demands a client certificate from `ca` (rustls server).
    fn collector(&self) -> TcpCollector {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.path("ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(self.path("server.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(self.path("server.key")).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap(),
        );
        TcpCollector::start_with(
            0,
            Arc::new(move |s| {
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                Box::new(rustls::StreamOwned::new(conn, s))
            }),
        )
    }

    fn qof_args(&self, port: u16, ca: &str, cert: &str) -> Command {
        let mut c = qof();
        c.args([
            "--ipfix",
            "tcp",
            "--tls",
            "--out",
            "localhost",
            "--ipfix-port",
        ])
        .arg(port_arg(port))
        .arg("--tls-ca")
        .arg(self.path(ca))
        .arg("--tls-cert")
        .arg(self.path(cert))
        .arg("--tls-key")
        .arg(self.path("client.key"))
        .env("QOF_TLS_PASS", KEY_PASSWORD);
        c
    }
}

/// With the right certificates the stream arrives through TLS (collector verified against the
/// CA, qof's certificate verified by the collector, qof's key decrypted with QOF_TLS_PASS).
/// A wrong CA, a missing password, or a certificate the collector does not trust: nothing
/// arrives, and qof says why.
#[test]
fn tls_export_needs_certificates_that_check_out() {
    if !have_tool("openssl") {
        return;
    }
    let pki = Pki::make();
    let tmp = tempfile::tempdir().unwrap();
    let cap = sample_capture();
    let want = json_of(&cap);

    let c = pki.collector();
    let out = run(pki
        .qof_args(c.port, "ca.pem", "client.pem")
        .arg("--in")
        .arg(&cap));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(lost_in_summary(&stderr), 0);
    let files = write_sessions(tmp.path(), "tls", &c.finish());
    let (got, complaints) = qofdump_lines(&files, false);
    assert!(complaints.is_empty(), "{complaints}");
    assert_eq!(got, want, "records over TLS");

    // The collector's certificate is not from the CA qof trusts: one line, at start.
    let c = pki.collector();
    let out = run(pki
        .qof_args(c.port, "other-ca.pem", "client.pem")
        .arg("--in")
        .arg(&cap));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("qof: --ipfix tls localhost:")
            && stderr.contains("certificate was rejected")
            && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    assert!(c.sessions().iter().all(Vec::is_empty));

    // The key is encrypted and no password is given.
    let out = run(pki
        .qof_args(c.port, "ca.pem", "client.pem")
        .env_remove("QOF_TLS_PASS")
        .arg("--in")
        .arg(&cap));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("QOF_TLS_PASS is not set"), "{stderr}");
    let out = run(pki
        .qof_args(c.port, "ca.pem", "client.pem")
        .env("QOF_TLS_PASS", "wrong")
        .arg("--in")
        .arg(&cap));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot decrypt"), "{stderr}");

    // Our certificate is from a CA the collector does not trust: it refuses the handshake
    // (TLS 1.3: after qof's side of it ended), qof says so in one line and no record gets
    // through.
    let out = run(pki
        .qof_args(c.port, "ca.pem", "client-other.pem")
        .arg("--in")
        .arg(&cap));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("the collector refused"), "{stderr}");
    assert!(
        c.sessions().iter().all(Vec::is_empty),
        "plaintext reached the collector"
    );
    assert!(!c.errors().is_empty(), "the collector refused no handshake");
    c.kill();
}

/// A collector that accepts the TCP connection and never answers the TLS handshake: each
/// attempt gives up after --export-timeout (not a fixed 5 s) and says "timed out"; the run
/// ends within a few timeouts, every record counted as lost.
#[test]
fn a_tls_handshake_that_never_ends_times_out_on_the_export_timeout() {
    if !have_tool("openssl") {
        return;
    }
    let pki = Pki::make();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let silent = {
        let stop = stop.clone();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            // Accepted and held open, never read nor written.
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok((s, _)) = listener.accept() {
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            held.len()
        })
    };
    let started = Instant::now();
    let out = run(pki
        .qof_args(port, "ca.pem", "client.pem")
        .args(["--export-timeout", "1"])
        .arg("--in")
        .arg(sample_capture()));
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let attempts = silent.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TLS handshake timed out after 1 s (--export-timeout)"),
        "{stderr}"
    );
    assert!(!stderr.contains("temporarily unavailable"), "{stderr}");
    assert_eq!(lost_in_summary(&stderr), 52, "{stderr}");
    // At start (1 s), then at most 1 s at the end; before, 5 s twice.
    assert!(took < Duration::from_secs(4), "took {took:?}: {stderr}");
    assert!(attempts >= 1);
}

// ---------------------------------------------------------------------------------------------
// Privileges

/// As root, --become-user drops to that user once the collector's socket is open, and export
/// still works (reconnections need no privilege). Without root the option is refused.
#[test]
fn become_user_drops_privileges() {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        let out = run(qof()
            .arg("--in")
            .arg(sample_capture())
            .args(["--become-user", "nobody"]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr.contains("not running as root"), "{stderr}");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the nobody user");
    let n = 100;
    let (one, two) = two_halves(n);
    let c = TcpCollector::start(0);
    let mut q = Running::spawn(&[
        "--ipfix",
        "tcp",
        "--out",
        "127.0.0.1",
        "--ipfix-port",
        &port_arg(c.port),
        "--become-user",
        "nobody",
    ]);
    q.feed(&one);
    wait_until("the first half's records", 30, || c.records() == n as usize);
    let status = std::fs::read_to_string(format!("/proc/{}/status", q.child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .map(|u| u.parse().unwrap())
        .collect();
    assert!(uids.iter().all(|&u| u == nobody.uid.as_raw()), "{uid_line}");
    q.feed(&two);
    let (status, stderr) = q.finish();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("privileges are not dropped"), "{stderr}");
    c.finish();

    // Without root: refused in one line (setpriv runs qof as nobody).
    if have_tool("setpriv") {
        let out = run(Command::new("setpriv")
            .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_qof"))
            .arg("--in")
            .arg(sample_capture())
            .args(["--become-user", "nobody"]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.contains("Permission denied") {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("not running as root"), "{stderr}");
        }
    }
}
