//! NetFlow export judged by decoders qof did not write.
//!
//! * nfdump's collector `nfcapd` receives qof's NetFlow v9 and v5 over UDP on loopback, and
//!   `nfdump -o json` must show exactly the uniflows of qof's own JSON for the same capture:
//!   same count, addresses, ports, protocol, VLAN, TCP flags, packets, octets, and first and
//!   last times to the millisecond; nfcapd must count no sequence error and no bad packet.
//!   v5 gets the IPv4 uniflows only, and qof must say how many others it could not carry.
//! * tshark decodes the datagrams (captured by the test's own UDP socket and written into a
//!   pcap) with no malformed packet or warning, every data record resolved by its template.
//! * A collector that is not listening makes qof count every record lost and fail.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Captures with IPv4 and IPv6, TCP, UDP and ICMP, VLAN tags, pcapng, a SYN scan of 2000
/// flows (many datagrams) and long flows (active timeouts).
const CORPUS: &[&str] = &[
    "ipfixprobe__http.pcap",
    // Packets from 2015 and 2020 in one file: the exporter must "reboot" to keep times exact.
    "ipfixprobe__tls.pcap",
    "ipfixprobe__vlan.pcap",
    "tcpdump__dhcpv6-ia-na.pcap",
    "ndpi__synscan.pcap",
    "slips__test7-malicious.pcap",
    "ndpi__telegram_videocall.pcapng",
    "slips__test-cc__test-cc-capture-1.pcap",
];

/// The sample and [`CORPUS`]; with `QOF_NETFLOW_CORPUS=all`, every capture of the corpus
/// (slower: one nfcapd per capture and version).
fn captures() -> Vec<PathBuf> {
    let corpus = corpus_files();
    let mut v = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap")];
    if std::env::var("QOF_NETFLOW_CORPUS").as_deref() == Ok("all") {
        v.extend(corpus);
        return v;
    }
    for name in CORPUS {
        let p = corpus
            .iter()
            .find(|p| common::name(p) == *name)
            .unwrap_or_else(|| panic!("{name} is not in the corpus (tests/data/corpus)"));
        v.push(p.clone());
    }
    v
}

/// qof's uniflow template: one record per direction, the fields NetFlow carries.
const UNIFLOW_YAML: &str = "template:
  - flowStartMilliseconds
  - flowEndMilliseconds
  - octetDeltaCount
  - packetDeltaCount
  - sourceIPv4Address
  - destinationIPv4Address
  - sourceIPv6Address
  - destinationIPv6Address
  - sourceTransportPort
  - destinationTransportPort
  - protocolIdentifier
  - vlanId
  - tcpControlBits
";

/// One uniflow as both sides can state it. Ordered, so that lists compare as multisets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Flow {
    first: String,
    last: String,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    src_port: u16,
    /// ICMP: `type << 8 | code`.
    dst_port: u16,
    vlan: u16,
    tcp_flags: u8,
    packets: u64,
    bytes: u64,
}

fn u(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"))
}

fn ip(v: &serde_json::Value, keys: [&str; 2]) -> IpAddr {
    let s = keys
        .iter()
        .find_map(|k| v[*k].as_str())
        .unwrap_or_else(|| panic!("none of {keys:?} in {v}"));
    s.parse()
        .unwrap_or_else(|e| panic!("{s} is not an address: {e}"))
}

/// qof's own uniflows: `--format json` with the uniflow template.
fn qof_uniflows(capture: &Path, tmp: &Path) -> Vec<Flow> {
    let (flows, code) = qof_uniflows_and_status(capture, tmp);
    assert_eq!(code, Some(0), "{}", capture.display());
    flows
}

/// qof's uniflows and its exit status (1 for a capture that ends in damage: the flows read
/// before it are still exported).
fn qof_uniflows_and_status(capture: &Path, tmp: &Path) -> (Vec<Flow>, Option<i32>) {
    let yaml = tmp.join("uniflow.yaml");
    std::fs::write(&yaml, UNIFLOW_YAML).unwrap();
    let out = run(qof()
        .arg("--in")
        .arg(capture)
        .arg("--yaml")
        .arg(&yaml)
        .args(["--format", "json"]));
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                v.get("reverseOctetDeltaCount").is_none(),
                "not a uniflow: {v}"
            );
            let time = |k: &str| {
                let s = v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"));
                s.strip_suffix('Z').unwrap_or(s).to_string()
            };
            Flow {
                first: time("flowStartMilliseconds"),
                last: time("flowEndMilliseconds"),
                src: ip(&v, ["sourceIPv4Address", "sourceIPv6Address"]),
                dst: ip(&v, ["destinationIPv4Address", "destinationIPv6Address"]),
                proto: u(&v, "protocolIdentifier") as u8,
                src_port: u(&v, "sourceTransportPort") as u16,
                dst_port: u(&v, "destinationTransportPort") as u16,
                vlan: u(&v, "vlanId") as u16,
                tcp_flags: v["tcpControlBits"].as_u64().unwrap_or(0) as u8,
                packets: u(&v, "packetDeltaCount"),
                bytes: u(&v, "octetDeltaCount"),
            }
        })
        .collect();
    (flows, out.status.code())
}

/// nfdump's flag string, `CEUAPRSF` with dots for clear bits.
fn nfdump_flags(s: &str) -> u8 {
    assert_eq!(s.len(), 8, "flags `{s}`");
    s.bytes()
        .enumerate()
        .filter(|(_, c)| *c != b'.')
        .fold(0, |acc, (i, _)| acc | 1 << (7 - i))
}

fn nfdump_flow(v: &serde_json::Value) -> Flow {
    let proto = u(v, "proto") as u8;
    let (src_port, dst_port) = if matches!(proto, 1 | 58) {
        (0, (u(v, "icmp_type") << 8 | u(v, "icmp_code")) as u16)
    } else {
        (u(v, "src_port") as u16, u(v, "dst_port") as u16)
    };
    Flow {
        first: v["first"].as_str().unwrap().to_string(),
        last: v["last"].as_str().unwrap().to_string(),
        src: ip(v, ["src4_addr", "src6_addr"]),
        dst: ip(v, ["dst4_addr", "dst6_addr"]),
        proto,
        src_port,
        dst_port,
        vlan: v["src_vlan"].as_u64().unwrap_or(0) as u16,
        tcp_flags: v["tcp_flags"].as_str().map_or(0, nfdump_flags),
        packets: u(v, "in_packets"),
        bytes: u(v, "in_bytes"),
    }
}

/// A UDP port nobody listens on right now.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_with_deadline(child: &mut Child, what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nfcapd listening on a loopback port, writing into a temporary directory.
struct Nfcapd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Nfcapd {
    fn start() -> Nfcapd {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("nfcapd.log");
            let flows = dir.path().join("flows");
            std::fs::create_dir(&flows).unwrap();
            let port = free_udp_port();
            // nfcapd reports on stderr, its final statistics included.
            let logfile = std::fs::File::create(&log).unwrap();
            let mut child = Command::new("nfcapd")
                .args(["-b", "127.0.0.1", "-p", &port.to_string()])
                // A big receive buffer: qof sends a capture's worth of datagrams at once.
                .args(["-B", "4194304", "-w"])
                .arg(&flows)
                .stdout(logfile.try_clone().unwrap())
                .stderr(logfile)
                .spawn()
                .expect("cannot start nfcapd");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Startup") {
                    return Nfcapd {
                        child,
                        port,
                        dir,
                        log,
                    };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("nfcapd did not start");
    }

    /// Stop nfcapd (SIGTERM makes it write its file), then read the flows back with nfdump.
    /// Returns the flows, nfdump's CSV of each file nfcapd wrote (for the engine column) and
    /// nfcapd's log.
    fn stop(mut self) -> (Vec<Flow>, Vec<String>, String) {
        // Let nfcapd drain its socket: qof has returned, its datagrams are in flight.
        std::thread::sleep(Duration::from_millis(500));
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_with_deadline(&mut self.child, "nfcapd", Duration::from_secs(20));
        let log = std::fs::read_to_string(&self.log).unwrap();
        let dir = self.dir.path().join("flows");
        let flows = common::nfdump_json(&dir)
            .iter()
            .inspect(|v| assert_eq!(v["sampled"], 0, "unsampled: {v}"))
            .map(nfdump_flow)
            .collect();
        let csv = common::nfcapd_files(&dir)
            .iter()
            .map(|file| {
                let out = run(Command::new("nfdump")
                    .env("TZ", "UTC")
                    .arg("-r")
                    .arg(file)
                    .args(["-o", "csv"]));
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .collect();
        (flows, csv, log)
    }
}

/// nfcapd's statistics, summed over the line it logs as it closes each file: (flows,
/// sequence errors, bad packets).
fn nfcapd_totals(log: &str) -> (u64, u64, u64) {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Sequence Errors"))
        .collect();
    assert!(!lines.is_empty(), "no statistics in nfcapd's log:\n{log}");
    let field = |line: &str, name: &str| -> u64 {
        let rest =
            &line[line.find(name).unwrap_or_else(|| panic!("{name}: {line}")) + name.len()..];
        rest.trim_start_matches([':', ' '])
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    lines.iter().fold((0, 0, 0), |(f, s, b), l| {
        (
            f + field(l, "Flows"),
            s + field(l, "Sequence Errors"),
            b + field(l, "Bad Packets"),
        )
    })
}

/// Both lists as multisets: what one has more of than the other, a few of each.
fn assert_same_flows(label: &str, ours: &[Flow], theirs: &[Flow]) {
    let mut count: BTreeMap<&Flow, i64> = BTreeMap::new();
    for f in ours {
        *count.entry(f).or_default() += 1;
    }
    for f in theirs {
        *count.entry(f).or_default() -= 1;
    }
    let only_ours: Vec<_> = count.iter().filter(|(_, n)| **n > 0).take(5).collect();
    let only_theirs: Vec<_> = count.iter().filter(|(_, n)| **n < 0).take(5).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty() && ours.len() == theirs.len(),
        "{label}: qof {} uniflows, nfdump {}\nonly in qof's JSON: {only_ours:#?}\nonly in nfdump's: {only_theirs:#?}",
        ours.len(),
        theirs.len()
    );
}

/// Run qof's NetFlow export of `capture` into a fresh nfcapd; returns qof's output and what
/// nfdump read back.
fn export_to_nfcapd(capture: &Path, version: &str) -> (Output, Vec<Flow>, Vec<String>, String) {
    let collector = Nfcapd::start();
    let out = run(qof()
        .arg("--in")
        .arg(capture)
        .args(["--netflow", version, "--out", "127.0.0.1", "--ipfix-port"])
        .arg(collector.port.to_string())
        .args(["--engine-id", "7", "--observation-domain", "5"]));
    let (flows, csv, log) = collector.stop();
    (out, flows, csv, log)
}

/// Every row of nfdump's CSV, over all of nfcapd's files, names engine type 0, id 7
/// (`--engine-id 7`).
fn assert_engine(label: &str, csvs: &[String], rows: usize) {
    let mut engines: Vec<String> = Vec::new();
    for csv in csvs {
        // Rows, then a blank line or `Summary` and nfdump's totals.
        // A file without flows has the header and `No matching flows`.
        let mut lines = csv
            .lines()
            .take_while(|l| !l.trim().is_empty() && l.trim() != "Summary")
            .filter(|l| l.trim() != "No matching flows");
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let eng = header
            .iter()
            .position(|h| *h == "eng")
            .unwrap_or_else(|| panic!("{label}: no eng column in {header:?}"));
        engines.extend(lines.map(|l| l.split(',').nth(eng).unwrap_or("").trim().to_string()));
    }
    assert_eq!(engines.len(), rows, "{label}: CSV rows");
    assert!(engines.iter().all(|e| e == "0/7"), "{label}: {engines:?}");
}

#[test]
fn nfcapd_reads_exactly_qofs_uniflows_from_netflow_v9() {
    if !have_tool("nfcapd") || !have_tool("nfdump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    for capture in captures() {
        let label = format!("v9 {}", common::name(&capture));
        let (expected, code) = qof_uniflows_and_status(&capture, tmp.path());
        if expected.is_empty() {
            // Only in the whole-corpus run: [`CORPUS`] has flows in every capture.
            assert!(
                !CORPUS.contains(&common::name(&capture).as_str()),
                "{label}"
            );
            continue;
        }
        let (out, flows, csv, log) = export_to_nfcapd(&capture, "9");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), code, "{label}: {stderr}");
        assert!(!stderr.contains("not exported"), "{label}: {stderr}");
        assert_same_flows(&label, &expected, &flows);
        let (n, seq_errors, bad) = nfcapd_totals(&log);
        assert_eq!(
            (n, seq_errors, bad),
            (expected.len() as u64, 0, 0),
            "{label}: {log}"
        );
        assert_engine(&label, &csv, expected.len());
        total += expected.len();
    }
    eprintln!("v9: nfdump read the same {total} uniflows as qof's JSON");
}

#[test]
fn nfcapd_reads_qofs_ipv4_uniflows_from_netflow_v5_and_qof_counts_the_rest() {
    if !have_tool("nfcapd") || !have_tool("nfdump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut total, mut others) = (0, 0);
    for capture in captures() {
        let label = format!("v5 {}", common::name(&capture));
        let (all, code) = qof_uniflows_and_status(&capture, tmp.path());
        let (mut v4, not_v4): (Vec<Flow>, Vec<Flow>) =
            all.iter().cloned().partition(|f| f.src.is_ipv4());
        for f in &mut v4 {
            f.vlan = 0; // v5 records have no VLAN field
        }
        let (out, flows, csv, log) = export_to_nfcapd(&capture, "5");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), code, "{label}: {stderr}");
        assert_same_flows(&label, &v4, &flows);
        let said = format!(
            "{} of {} uniflow records were not IPv4 and were not exported",
            not_v4.len(),
            all.len()
        );
        assert_eq!(
            stderr.contains(&said),
            !not_v4.is_empty(),
            "{label}: expected `{said}` exactly when some flow is not IPv4:\n{stderr}"
        );
        if v4.is_empty() {
            // Nothing to send: nfcapd saw no exporter at all.
            assert!(flows.is_empty(), "{label}");
            continue;
        }
        let (n, seq_errors, bad) = nfcapd_totals(&log);
        assert_eq!(
            (n, seq_errors, bad),
            (v4.len() as u64, 0, 0),
            "{label}: {log}"
        );
        assert_engine(&label, &csv, v4.len());
        total += v4.len();
        others += not_v4.len();
    }
    assert!(
        others > 0,
        "the captures include IPv6 flows v5 cannot carry"
    );
    eprintln!("v5: nfdump read the same {total} IPv4 uniflows as qof's JSON; {others} others counted as not carried");
}

/// Receive qof's datagrams on a socket of our own while qof runs.
fn capture_datagrams(capture: &Path, version: &str) -> (Output, Vec<Vec<u8>>, u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut qof = qof();
    qof.arg("--in")
        .arg(capture)
        .args(["--netflow", version, "--out", "127.0.0.1", "--ipfix-port"])
        .arg(port.to_string());
    let (out, datagrams) = receive_while(vec![sock], &mut qof);
    (out, datagrams, port)
}

/// Run `cmd` while `socks` receive; returns its output and every datagram they got.
fn receive_while(socks: Vec<UdpSocket>, cmd: &mut Command) -> (Output, Vec<Vec<u8>>) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = socks
        .into_iter()
        .map(|sock| {
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 65_536];
                loop {
                    match sock.recv(&mut buf) {
                        Ok(n) => got.push(buf[..n].to_vec()),
                        // Stop once the command has ended and the socket has been quiet a while.
                        Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => return got,
                        Err(_) => {}
                    }
                }
            })
        })
        .collect();
    let out = run(cmd);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let datagrams = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    (out, datagrams)
}

#[test]
fn collectors_by_ipv6_address_and_by_host_name() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let expected = qof_uniflows(&sample, tmp.path()).len();
    // localhost may name 127.0.0.1, ::1 or both: listen on both, same port.
    let (v6, v4) = (0..20)
        .find_map(|_| {
            let v6 = UdpSocket::bind("[::1]:0").ok()?;
            let port = v6.local_addr().ok()?.port();
            let v4 = UdpSocket::bind(("127.0.0.1", port)).ok()?;
            Some((v6, v4))
        })
        .expect("a port free on both loopbacks");
    let port = v6.local_addr().unwrap().port();
    for host in ["::1", "[::1]", "localhost"] {
        let socks = vec![v6.try_clone().unwrap(), v4.try_clone().unwrap()];
        let mut cmd = qof();
        cmd.arg("--in")
            .arg(&sample)
            .args(["--netflow", "9", "--out", host, "--ipfix-port"])
            .arg(port.to_string());
        let (out, datagrams) = receive_while(socks, &mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{host}: {stderr}");
        // Each datagram's records: the header count less templates and options records.
        let mut parser = netflow_parser::NetflowParser::default();
        let mut flows = 0;
        for d in &datagrams {
            for p in parser.parse_bytes(d).packets {
                let netflow_parser::NetflowPacket::V9(v9) = p else {
                    panic!("{host}: not v9");
                };
                for fs in v9.flowsets {
                    if let netflow_parser::variable_versions::v9::FlowSetBody::Data(data) = fs.body
                    {
                        flows += data.fields.len();
                    }
                }
            }
        }
        assert_eq!(flows, expected, "{host}: {} datagrams", datagrams.len());
    }
}

fn count_lines(text: &str, pred: impl Fn(&str) -> bool) -> usize {
    text.lines().filter(|l| pred(l.trim_start())).count()
}

#[test]
fn tshark_decodes_every_netflow_record_without_complaint() {
    if !have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for capture in captures() {
        let (uniflows, code) = qof_uniflows_and_status(&capture, tmp.path());
        let v4 = uniflows.iter().filter(|f| f.src.is_ipv4()).count();
        for (version, expected) in [("9", uniflows.len()), ("5", v4)] {
            let label = format!("v{version} {}", common::name(&capture));
            let (out, datagrams, port) = capture_datagrams(&capture, version);
            assert_eq!(
                out.status.code(),
                code,
                "{label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if expected == 0 {
                assert!(datagrams.is_empty(), "{label}");
                continue;
            }
            let text = tshark_decode(&datagrams, port, tmp.path());
            for bad in [
                "Malformed",
                "Expert Info (Warn",
                "Expert Info (Error",
                "no template",
            ] {
                let hits: Vec<&str> = text.lines().filter(|l| l.contains(bad)).take(3).collect();
                assert!(hits.is_empty(), "{label}: tshark says {hits:?}");
            }
            let packets = count_lines(&text, |l| l.starts_with("Cisco NetFlow/IPFIX"));
            assert_eq!(
                packets,
                datagrams.len(),
                "{label}: every datagram is NetFlow"
            );
            let versions = count_lines(&text, |l| l == format!("Version: {version}"));
            assert_eq!(versions, datagrams.len(), "{label}");
            // Every flow record, v5 or v9, shows its octet count.
            let flows = count_lines(&text, |l| l.starts_with("Octets: "));
            assert_eq!(flows, expected, "{label}: flow records tshark decoded");
            if version == "9" {
                // Every data flowset was matched to a template tshark had seen.
                let data_sets = count_lines(&text, |l| l.starts_with("FlowSet Id: (Data)"));
                let resolved = count_lines(&text, |l| l.starts_with("[Template Frame: "));
                assert_eq!(
                    resolved, data_sets,
                    "{label}: data flowsets with their template"
                );
                assert!(
                    data_sets >= datagrams.len(),
                    "{label}: {data_sets} data flowsets"
                );
                let templates = count_lines(&text, |l| {
                    ["Template Id: 256", "Template Id: 257", "Template Id: 258"].contains(&l)
                });
                assert!(templates >= 3, "{label}: templates 256, 257, 258 announced");
                // The options record says: every packet metered.
                let options = count_lines(&text, |l| l.starts_with("Sampling interval: "));
                let unsampled = count_lines(&text, |l| l == "Sampling interval: 1");
                assert!(options >= 1 && unsampled == options, "{label}");
            } else {
                let headers = count_lines(&text, |l| {
                    l.starts_with("SampleRate: ") || l.contains("= SampleRate: 0")
                });
                assert_eq!(
                    headers,
                    datagrams.len(),
                    "{label}: sampling interval 0 in every header"
                );
            }
        }
    }
}

#[test]
fn an_absent_collector_means_lost_records_and_a_failed_run() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let expected = qof_uniflows(&sample, tmp.path()).len();
    for version in ["9", "5"] {
        let port = free_udp_port(); // bound and released: nobody listens there now
        let out = run(qof()
            .arg("--in")
            .arg(&sample)
            .args(["--netflow", version, "--out", "127.0.0.1", "--ipfix-port"])
            .arg(port.to_string()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "v{version}: {stderr}");
        let records = if version == "9" {
            expected
        } else {
            // v5 carries the IPv4 ones only.
            qof_uniflows(&sample, tmp.path())
                .iter()
                .filter(|f| f.src.is_ipv4())
                .count()
        };
        assert!(
            stderr.contains(&format!("{records} of {records} flow records were lost")),
            "v{version}: {stderr}"
        );
        // The usual summary line still comes, before the error.
        assert!(stderr.contains("flow records exported"), "{stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn netflow_option_mistakes_get_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("template.yaml");
    std::fs::write(&yaml, UNIFLOW_YAML).unwrap();
    let yaml = yaml.to_str().unwrap();
    for (args, what) in [
        (&["--netflow", "9"][..], "--netflow needs --out HOST"),
        (
            &["--netflow", "9", "--out", "127.0.0.1", "--format", "json"],
            "--format json",
        ),
        (
            &["--netflow", "5", "--out", "127.0.0.1", "--rotate", "60"],
            "--rotate",
        ),
        (
            &["--netflow", "9", "--out", "127.0.0.1", "--ipfix", "udp"],
            "--ipfix",
        ),
        // (`HOST:PORT` names the port, softflowd's -n style; a bad one is named.)
        (
            &["--netflow", "9", "--out", "127.0.0.1:0"],
            "port `0` is not a number from 1 to 65535",
        ),
        (
            &["--netflow", "9", "--out", "no-such-host.invalid"],
            "no-such-host.invalid",
        ),
    ] {
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "TEMPLATE_YAML" { yaml } else { a })
            .collect();
        let out = run(qof()
            .args(&args)
            .arg("--in")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap")));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("qof: ") && lines[0].contains(what),
            "{args:?}: {stderr}"
        );
    }
}

/// NetFlow has no record for qof's process statistics: `--stats` logs them instead.
#[test]
fn statistics_go_to_the_log() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mixed.pcap");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut cmd = qof();
    cmd.arg("--in")
        .arg(&sample)
        .args(["--netflow", "5", "--out", "127.0.0.1", "--ipfix-port"])
        .arg(port.to_string())
        .args(["--stats", "1", "--loglevel", "info"]);
    let (out, datagrams) = receive_while(vec![sock], &mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!datagrams.is_empty());
    // 157 packets metered in the sample (205 read, 48 ARP).
    assert!(
        stderr.contains("statistics: ") && stderr.contains("157 packets metered"),
        "{stderr}"
    );
    assert!(stderr.contains("NetFlow v5 to 127.0.0.1:"), "{stderr}");
}
