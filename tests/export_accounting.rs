//! Exact export accounting (issue 12): every flow record qof exports to a collector is
//! delivered once or counted as lost, and qof's summary says which, whatever the collector
//! does. The collectors here are written in the test and count records exactly: each decodes
//! its connections with qof's own IPFIX decoder and keeps, per flow, how often it arrived.
//!
//! * A TCP collector killed and restarted mid-run (the issue's first reproduction): every
//!   record arrives exactly once, none is lost.
//! * A throttled TCP collector: the reading slows down, nothing is lost, everything arrives.
//! * A TCP collector that accepts and never reads: qof stops after --export-timeout; what the
//!   collector's TCP acknowledged is counted as delivered, the rest as lost.
//! * nfcapd over UDP on the loopback, with its default receive buffer: paced, it stores at
//!   least 99.9 % of 300,000 flows (IPFIX and NetFlow v9).
//!
//! The captures are made here: N single-packet UDP flows, flow `i` from 10.x.y.z = `i`, one
//! every 10 µs of packet time, with a 1 s idle timeout so that records flow all along.

mod common;
use common::*;

use qof::ipfix::decode::{Event, Message, Session};
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Packet time of the captures (s since the epoch): 2024-01-01.
const T0: u32 = 1_704_067_200;

/// A capture of `n` single-packet flows, and the YAML that times them out after 1 s.
fn single_packet_flows(dir: &Path, n: u32) -> (PathBuf, PathBuf) {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 0], [192, 168, 0, 1], 64)
        .udp(1234, 53)
        .write(&mut frame, &[0; 4])
        .unwrap();
    let path = dir.join("flows.pcap");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
    out.write_all(&2u16.to_le_bytes()).unwrap();
    out.write_all(&4u16.to_le_bytes()).unwrap();
    out.write_all(&[0; 8]).unwrap();
    out.write_all(&65_535u32.to_le_bytes()).unwrap();
    out.write_all(&1u32.to_le_bytes()).unwrap();
    let len = (frame.len() as u32).to_le_bytes();
    for i in 0..n {
        // Flow i: source 10.x.y.z = i (the IPv4 header starts at 14, its source at 26).
        frame[27..30].copy_from_slice(&i.to_be_bytes()[1..]);
        frame[24..26].copy_from_slice(&[0, 0]);
        let sum = frame[14..34]
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
        frame[24..26].copy_from_slice(&sum.to_be_bytes());
        let us = u64::from(i) * 10;
        out.write_all(&(T0 + (us / 1_000_000) as u32).to_le_bytes())
            .unwrap();
        out.write_all(&((us % 1_000_000) as u32).to_le_bytes())
            .unwrap();
        out.write_all(&len).unwrap();
        out.write_all(&len).unwrap();
        out.write_all(&frame).unwrap();
    }
    out.flush().unwrap();
    let yaml = dir.join("qof.yaml");
    std::fs::write(&yaml, "idle-timeout: 1\n").unwrap();
    (path, yaml)
}

/// Flows in the kill-and-restart capture: the issue's 3,000,000 (about 20 s with a debug
/// build), or `QOF_ACCOUNTING_FLOWS`.
fn flows_to_export() -> u32 {
    std::env::var("QOF_ACCOUNTING_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000_000)
}

/// One test at a time: each runs qof flat out against a collector, and on two cores a
/// neighbour's qof would take the CPU a paced UDP collector needs (the figures are about
/// qof, not about the machine's load).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------------
// A collector that counts

/// What a collector received: per flow id, how often.
#[derive(Default)]
struct Tally {
    seen: Vec<u8>,
    records: u64,
    duplicates: u64,
    /// Records that are not one of the capture's flows (should stay 0).
    strangers: u64,
    warnings: Vec<String>,
}

impl Tally {
    fn new(n: u32) -> Arc<Mutex<Tally>> {
        Arc::new(Mutex::new(Tally {
            seen: vec![0; n as usize],
            ..Tally::default()
        }))
    }
}

/// Decodes one connection's octets as they come, into the tally.
struct Decoder {
    buf: Vec<u8>,
    offset: u64,
    session: Session,
    tally: Arc<Mutex<Tally>>,
}

impl Decoder {
    fn new(tally: &Arc<Mutex<Tally>>) -> Self {
        Decoder {
            buf: Vec::new(),
            offset: 0,
            session: Session::new(),
            tally: tally.clone(),
        }
    }

    /// Take `bytes`, decode every whole message.
    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        let mut t = self.tally.lock().unwrap();
        while self.buf.len() - at >= 16 {
            let len = usize::from(u16::from_be_bytes([self.buf[at + 2], self.buf[at + 3]]));
            if len < 16 || self.buf.len() - at < len {
                break;
            }
            let (msg, _) = Message::parse(&self.buf[at..at + len], self.offset).unwrap();
            self.session
                .decode(&msg, |e| match e {
                    Event::Record(r) if !r.options => {
                        let id =
                            r.fields.iter().find(|f| f.id == 8 && f.pen == 0).map(|f| {
                                u32::from_be_bytes([0, f.bytes[1], f.bytes[2], f.bytes[3]])
                            });
                        t.records += 1;
                        match id.and_then(|id| t.seen.get_mut(id as usize)) {
                            Some(c) => {
                                *c = c.saturating_add(1);
                                if *c > 1 {
                                    t.duplicates += 1;
                                }
                            }
                            None => t.strangers += 1,
                        }
                    }
                    Event::Warning(w) => t.warnings.push(format!("{w:?}")),
                    _ => {}
                })
                .unwrap();
            at += len;
            self.offset += len as u64;
        }
        self.buf.drain(..at);
    }
}

/// How a collector treats its connections.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads as fast as it can, to the end.
    Reads,
    /// Reads at most this many octets per 10 ms.
    Throttled(usize),
    /// Reads until `records` have arrived, then dies (see [`die`]).
    DiesAfter(u64),
    /// Accepts and never reads; once `done`, reads what its socket still holds.
    NeverReads,
}

/// A TCP collector on 127.0.0.1:`port` (0: any), serving connections one after another until
/// `done` is set and its connection ends (or, for `DiesAfter`, until it died).
fn collector(
    port: u16,
    behaviour: Behaviour,
    tally: &Arc<Mutex<Tally>>,
    done: &Arc<AtomicBool>,
) -> (u16, JoinHandle<()>) {
    // A fixed receive buffer of 1 MiB (no autotuning up to tcp_rmem's maximum): a collector
    // that stops reading closes its window soon, as one busy elsewhere does.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_reuse_address(true).unwrap();
    sock.set_recv_buffer_size(1 << 20).unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    sock.bind(&addr.into()).unwrap();
    sock.listen(16).unwrap();
    let listener: TcpListener = sock.into();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tally, done) = (tally.clone(), done.clone());
    let mut listener = Some(listener);
    let thread = std::thread::spawn(move || loop {
        let Some(l) = &listener else { return };
        let s = match l.accept() {
            Ok((s, _)) => s,
            Err(_) if done.load(Ordering::Relaxed) => return,
            Err(_) => {
                assert!(Instant::now() < give_up(), "the collector waited in vain");
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        s.set_nonblocking(false).unwrap();
        if serve(s, behaviour, &tally, &done, &mut listener) {
            return; // died
        }
    });
    (port, thread)
}

/// A test that has not ended by then is stuck (qof stopped early?): its collector fails it
/// rather than wait forever.
fn give_up() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now) + Duration::from_secs(600)
}

/// Serve one connection; true if the collector died (its listener closed first, as it is
/// when the process dies: a connection qof made meanwhile would otherwise wait in the
/// listener's backlog, its octets acknowledged by the kernel and never read).
fn serve(
    mut s: TcpStream,
    behaviour: Behaviour,
    tally: &Arc<Mutex<Tally>>,
    done: &AtomicBool,
    listener: &mut Option<TcpListener>,
) -> bool {
    let mut dec = Decoder::new(tally);
    let mut buf = vec![0u8; 1 << 16];
    if let Behaviour::NeverReads = behaviour {
        while !done.load(Ordering::Relaxed) {
            assert!(Instant::now() < give_up(), "qof did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        // qof has ended (and reset the connection): what the kernel acknowledged is still
        // in the socket, readable before the reset's error.
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            dec.feed(&buf[..n]);
        }
        return false;
    }
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    loop {
        assert!(Instant::now() < give_up(), "the collector waited in vain");
        let want = match behaviour {
            Behaviour::Throttled(n) => n.min(buf.len()),
            _ => buf.len(),
        };
        match s.read(&mut buf[..want]) {
            Ok(0) => return false,
            Ok(n) => dec.feed(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
        match behaviour {
            Behaviour::Throttled(_) => std::thread::sleep(Duration::from_millis(10)),
            Behaviour::DiesAfter(n) if tally.lock().unwrap().records >= n => {
                *listener = None;
                die(s, &mut dec);
                return true;
            }
            _ => {}
        }
    }
}

/// The collector dies with records in flight, as `kill -9` makes it: its kernel resets the
/// connection and qof's unacknowledged octets never arrive.
///
/// One thing a real kill does cannot be counted by anyone: octets the collector's TCP had
/// acknowledged and the process had not read die with it. qof promises TCP-level delivery,
/// so to check its count exactly the collector stops reading first, lets its receive window
/// close (no octet moves for 300 ms: qof's send buffer fills with unacknowledged data, the
/// case the issue found lost), counts what its kernel holds (peeked, not read: nothing is
/// acknowledged by it), then resets the connection (SO_LINGER 0), as the kernel does for a
/// process killed with unread data. Its receive buffer is 1 MiB ([`collector`]): the window
/// closes with at least 256 KiB queued.
fn die(s: TcpStream, dec: &mut Decoder) {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut peek = vec![0u8; 64 << 20];
    let mut last = usize::MAX;
    let mut since = Instant::now();
    loop {
        assert!(Instant::now() < give_up(), "the window never closed");
        let n = recv(
            s.as_raw_fd(),
            &mut peek,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        )
        .unwrap_or(0);
        if n != last {
            last = n;
            since = Instant::now();
        } else if n >= 256 << 10 && since.elapsed() >= Duration::from_millis(300) {
            // The window is closed (records come in bursts, as flows time out: a queue that
            // stands still while small is a pause between them).
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    dec.feed(&peek[..last]);
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// The numbers of qof's summary line: (records exported, delivered or sent, lost).
fn summary(stderr: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("qof: ") && l.contains("flow records exported"))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    let before = |what: &str| -> u64 {
        line.split(what)
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{what:?} in {line}"))
    };
    let delivered = if line.contains(" delivered (") {
        before(" delivered (")
    } else {
        before(" sent (")
    };
    let lost = if line.contains(" records lost to the network") {
        before(" records lost to the network")
    } else {
        0
    };
    (before(" flow records exported"), delivered, lost)
}

fn qof_tcp(capture: &Path, yaml: &Path, port: u16, timeout: &str) -> Command {
    let mut c = qof();
    c.arg("--in")
        .arg(capture)
        .arg("--yaml")
        .arg(yaml)
        .args(["--ipfix", "tcp", "--out", "127.0.0.1", "--ipfix-port"])
        .arg(port.to_string())
        .args(["--export-timeout", timeout, "--loglevel", "info"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// What the collector counted, checked: no duplicate, no stranger, no decoder warning.
fn counted(tally: &Arc<Mutex<Tally>>) -> u64 {
    let t = tally.lock().unwrap();
    assert_eq!(t.duplicates, 0, "records arrived twice");
    assert_eq!(t.strangers, 0, "records of no flow");
    assert!(t.warnings.is_empty(), "decoder: {:?}", t.warnings);
    t.records
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The issue's reproduction: a TCP collector dies mid-run with qof's send buffer full of
/// unacknowledged records, and a new one listens on the same port 2 s later. Every record
/// arrives exactly once: what the collector counted is what qof says it delivered, and
/// delivered + lost = exported, with nothing lost (the input waited for the new collector).
#[test]
fn a_tcp_collector_killed_and_restarted_gets_every_record_once() {
    let _one = serial();
    let n = flows_to_export();
    let tmp = tempfile::tempdir().unwrap();
    let (capture, yaml) = single_packet_flows(tmp.path(), n);
    let tally = Tally::new(n);
    let done = Arc::new(AtomicBool::new(false));
    let (port, first) = collector(0, Behaviour::DiesAfter(u64::from(n / 3)), &tally, &done);
    let started = Instant::now();
    let mut q = qof_tcp(&capture, &yaml, port, "20").spawn().unwrap();
    first.join().unwrap();
    let died = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let (_, second) = collector(port, Behaviour::Reads, &tally, &done);
    let mut stderr = String::new();
    q.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = q.wait().unwrap();
    done.store(true, Ordering::Relaxed);
    second.join().unwrap();
    let received = counted(&tally);
    let (exported, delivered, lost) = summary(&stderr);
    eprintln!(
        "{n} flows: {received} records received, {lost} lost; qof took {:.1} s ({:.1} s after \
         the collector died)",
        started.elapsed().as_secs_f64(),
        died.elapsed().as_secs_f64()
    );
    assert_eq!(exported, u64::from(n), "{stderr}");
    assert_eq!(
        delivered, received,
        "qof's count is the collector's: {stderr}"
    );
    assert_eq!(received + lost, exported, "{stderr}");
    assert!(received * 100 >= exported * 99, "{stderr}");
    assert_eq!(lost, 0, "the input waited for the new collector: {stderr}");
    assert!(status.success(), "{stderr}");
    // The death caught records in flight, and they went again.
    let line = stderr
        .lines()
        .find(|l| l.contains("connection lost"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let again: u64 = line
        .split(" records) it had not acknowledged")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(again > 0, "{line}");
    assert!(stderr.contains("connected again after"), "{stderr}");
}

/// The issue's third reproduction: a collector that reads slowly. The reading waits for it;
/// every record arrives, exactly what qof says it delivered.
#[test]
fn a_throttled_collector_gets_everything() {
    let _one = serial();
    let n = 200_000;
    let tmp = tempfile::tempdir().unwrap();
    let (capture, yaml) = single_packet_flows(tmp.path(), n);
    let tally = Tally::new(n);
    let done = Arc::new(AtomicBool::new(false));
    // 64 KiB per 10 ms: about 6 MB/s, a third of what qof sends unthrottled.
    let (port, c) = collector(0, Behaviour::Throttled(64 << 10), &tally, &done);
    let out = qof_tcp(&capture, &yaml, port, "5").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    done.store(true, Ordering::Relaxed);
    c.join().unwrap();
    let received = counted(&tally);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary(&stderr), (u64::from(n), received, 0), "{stderr}");
    assert_eq!(received, u64::from(n));
}

/// A collector that accepts and never reads: its TCP acknowledges what fits its receive
/// buffer, then nothing moves. With a queue smaller than the capture's records, the input
/// waits --export-timeout, then qof stops with one line saying why; with room for them all,
/// the end of the run waits --export-timeout. Either way the exit status is 1, the records
/// the collector's TCP acknowledged are delivered (it can still read them after qof reset
/// the connection), the rest are counted as lost, and nothing arrives twice.
#[test]
fn a_collector_that_never_reads_is_given_up_and_counted() {
    let _one = serial();
    let n = 200_000;
    let tmp = tempfile::tempdir().unwrap();
    let (capture, yaml) = single_packet_flows(tmp.path(), n);
    for (queue, says) in [
        (
            "1M",
            "the collector took nothing for 1 s (--export-timeout) while the export queue was \
             full; stopped reading the input",
        ),
        (
            "32M",
            "could not be delivered within 1 s (--export-timeout)",
        ),
    ] {
        let tally = Tally::new(n);
        let done = Arc::new(AtomicBool::new(false));
        let (port, c) = collector(0, Behaviour::NeverReads, &tally, &done);
        let started = Instant::now();
        let out = qof_tcp(&capture, &yaml, port, "1")
            .args(["--export-queue-bytes", queue])
            .output()
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        done.store(true, Ordering::Relaxed);
        c.join().unwrap();
        let received = counted(&tally);
        let (exported, delivered, lost) = summary(&stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{queue}: {stderr}");
        assert!(took < Duration::from_secs(20), "{took:?}");
        assert_eq!(delivered, received, "{queue}: {stderr}");
        assert!(received > 0 && lost > 0, "{queue}: {stderr}");
        assert_eq!(received + lost, exported, "{queue}: {stderr}");
        if queue == "32M" {
            assert_eq!(exported, u64::from(n), "{stderr}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// UDP to nfcapd

/// A UDP port on 127.0.0.1 that nothing listens on (bound, then let go).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Octets waiting in the receive queue of the UDP socket bound to 127.0.0.1:`port`.
fn udp_rx_queue(port: u16) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes([127, 0, 0, 1]));
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1) != Some(&local.as_str()) {
            return None;
        }
        u64::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok()
    })
}

/// nfcapd with its default receive buffer stores at least 99.9 % of 300,000 flows qof sends
/// over UDP on the loopback, as IPFIX and as NetFlow v9, at the default --export-rate. (The
/// issue's run, unpaced: 280,380, 93.5 %.) qof says "sent", not "0 lost".
#[test]
fn nfcapd_stores_three_hundred_thousand_paced_flows() {
    if !have_tool("nfcapd") || !have_tool("nfdump") {
        return;
    }
    let _one = serial();
    let n = 300_000;
    let tmp = tempfile::tempdir().unwrap();
    let (capture, yaml) = single_packet_flows(tmp.path(), n);
    for export in [&["--ipfix", "udp"][..], &["--netflow", "9"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let log = dir.path().join("nfcapd.log");
        let logfile = std::fs::File::create(&log).unwrap();
        let mut nfcapd = Command::new("nfcapd")
            .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-w"])
            .arg(dir.path())
            .stdout(logfile.try_clone().unwrap())
            .stderr(logfile)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Startup")
        {
            assert!(Instant::now() < deadline, "nfcapd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut cmd = qof();
        cmd.arg("--in").arg(&capture);
        if export[0] == "--ipfix" {
            // (NetFlow's records have fixed fields.)
            cmd.arg("--yaml").arg(&yaml);
        }
        let started = Instant::now();
        let out =
            run(cmd
                .args(export)
                .args(["--out", "127.0.0.1", "--ipfix-port", &port.to_string()]));
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let (exported, sent, lost) = summary(&stderr);
        assert_eq!((exported, lost), (u64::from(n), 0), "{stderr}");
        assert_eq!(sent, exported, "{stderr}");
        assert!(stderr.contains("sent (delivery not confirmed)"), "{stderr}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while udp_rx_queue(port) != Some(0) {
            assert!(Instant::now() < deadline, "nfcapd did not read its socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = nix::unistd::Pid::from_raw(nfcapd.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        nfcapd.wait().unwrap();
        let mut stored = 0u64;
        for file in nfcapd_files(dir.path()) {
            let stat = run(Command::new("nfdump").arg("-r").arg(&file).arg("-I"));
            let text = String::from_utf8_lossy(&stat.stdout);
            stored += text
                .lines()
                .find_map(|l| l.strip_prefix("Flows: "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("nfdump -I: {text}"));
        }
        eprintln!(
            "{}: nfcapd stored {stored} of {n} flows ({:.3} %) in {:.1} s",
            export.join(" "),
            stored as f64 * 100.0 / f64::from(n),
            took.as_secs_f64()
        );
        assert!(stored * 1000 >= u64::from(n) * 999, "{stored} of {n}");
        assert!(stored <= u64::from(n));
    }
}
