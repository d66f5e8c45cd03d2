//! qof as a service (issue 15, items 5 and 6), on a live capture of the loopback interface:
//! `--metrics` serves Prometheus text that a strict parser written here accepts, whose
//! counters grow with the traffic and agree with the final statistics record; `qofctl`
//! lists the flows in memory, expires them (their records reach the collector at once),
//! deletes them, resends templates, shuts qof down or makes it exit without export;
//! `--pidfile` and SIGHUP.

#![cfg(target_os = "linux")]

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Stdio};

/// A qof started by a test: killed if the test fails before it ends.
struct Running(Option<Child>);

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Wait for qof to end: its status and standard error.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.0.take().expect("running");
        let status = child.wait().unwrap();
        (status, stderr_of(&mut child))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A strict parser of the Prometheus text exposition format (version 0.0.4)

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: each family's type, and every sample.
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the one sample of `name` with these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want)
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0].value
    }

    /// Every sample of `name`, summed.
    fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }
}

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    matches!(chars.next(), Some(c) if first_ok(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse::<f64>().map_err(|_| format!("bad value `{v}`")),
    }
}

/// Parse `text` strictly: every line a HELP, a TYPE or a sample; a family's TYPE before its
/// samples, each at most once; a family's samples together; label values escaped as the
/// format says; no series twice; counters named `_total`, never negative; the text ends in
/// a newline.
fn parse_exposition(text: &str) -> Result<Exposition, String> {
    if !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    let mut e = Exposition::default();
    let mut helps = BTreeSet::new();
    // Families whose lines are over (another family's came after them), and the family of
    // the line before.
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}: `{line}`", i + 1);
        // Every line belongs to a family; a family's lines come together.
        let mut enter = |family: &str| -> Result<(), String> {
            if current.as_deref() == Some(family) {
                return Ok(());
            }
            if finished.contains(family) {
                return Err(format!("the lines of `{family}` are not together"));
            }
            if let Some(c) = current.replace(family.to_string()) {
                finished.insert(c);
            }
            Ok(())
        };
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, tail) = (parts.next(), parts.next(), parts.next());
            let name = name.ok_or_else(|| at("no metric name".into()))?;
            if !is_name(name, true) {
                return Err(at(format!("bad metric name `{name}`")));
            }
            if e.samples.iter().any(|s| s.name == name) {
                return Err(at(format!("{kw:?} after the samples of `{name}`")));
            }
            enter(name).map_err(&at)?;
            match kw {
                Some("HELP") => {
                    let help = tail.ok_or_else(|| at("HELP without text".into()))?;
                    if help.contains(['\n', '\r']) || !helps.insert(name.to_string()) {
                        return Err(at("second HELP or bad text".into()));
                    }
                }
                Some("TYPE") => {
                    let t = tail.ok_or_else(|| at("TYPE without a type".into()))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(at(format!("unknown type `{t}`")));
                    }
                    if e.types.insert(name.to_string(), t.to_string()).is_some() {
                        return Err(at("second TYPE".into()));
                    }
                }
                _ => return Err(at("a comment that is neither HELP nor TYPE".into())),
            }
            continue;
        }
        // name{label="value",...} value [timestamp]
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(at(format!("bad metric name `{name}`")));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find('=').ok_or_else(|| at("label without `=`".into()))?;
                let lname = &r[..eq];
                if !is_name(lname, false) || lname.starts_with("__") {
                    return Err(at(format!("bad label name `{lname}`")));
                }
                r = r[eq + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| at("label value without quotes".into()))?;
                let mut value = String::new();
                let mut chars = r.char_indices();
                let end = loop {
                    match chars.next() {
                        None => return Err(at("unterminated label value".into())),
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            other => return Err(at(format!("bad escape {other:?}"))),
                        },
                        Some((_, c)) => value.push(c),
                    }
                };
                if labels.insert(lname.to_string(), value).is_some() {
                    return Err(at(format!("label `{lname}` twice")));
                }
                r = &r[end + 1..];
                if let Some(after) = r.strip_prefix(',') {
                    r = after;
                } else if !r.starts_with('}') {
                    return Err(at("expected `,` or `}` after a label".into()));
                }
            }
            rest = r;
        }
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or(""))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|_| at(format!("bad timestamp `{ts}`")))?;
        }
        if fields.next().is_some() {
            return Err(at("more than a value and a timestamp".into()));
        }
        let family = name.to_string();
        let kind = e
            .types
            .get(&family)
            .ok_or_else(|| at(format!("a sample of `{family}` before its TYPE")))?;
        enter(&family).map_err(&at)?;
        if kind == "counter" && (!family.ends_with("_total") || value < 0.0 || value.is_nan()) {
            return Err(at(
                "a counter must be named _total and not be negative".into()
            ));
        }
        if !series.insert(format!("{family}{labels:?}")) {
            return Err(at("the same series twice".into()));
        }
        e.samples.push(Sample {
            name: family,
            labels,
            value,
        });
    }
    Ok(e)
}

#[test]
fn the_parser_is_strict() {
    let good = "# HELP a_total x y\n# TYPE a_total counter\na_total{l=\"q\\\"\\\\\\n\"} 3\n\
                # TYPE g gauge\ng 1.5 1700000000\ng{x=\"1\"} +Inf\n";
    let e = parse_exposition(good).unwrap();
    assert_eq!(e.get("a_total", &[("l", "q\"\\\n")]), 3.0);
    for bad in [
        "a_total 1\n",                                     // no TYPE
        "# TYPE a counter\na 1\n",                         // counter without _total
        "# TYPE a_total counter\na_total -1\n",            // negative counter
        "# TYPE g gauge\ng 1\ng 2\n",                      // the same series twice
        "# TYPE g gauge\ng{x=\"1} 1\n",                    // unterminated label value
        "# TYPE g gauge\ng{x=\"\\t\"} 1\n",                // bad escape
        "# TYPE g gauge\ng{1x=\"a\"} 1\n",                 // bad label name
        "# TYPE g gauge\ng one\n",                         // bad value
        "# TYPE g gauge\n# TYPE h gauge\nh 1\ng 1\n",      // TYPE g then h, g's samples late
        "# TYPE g gauge\ng 1\n# TYPE h gauge\nh 1\ng 2\n", // g's samples not together
        "# TYPE g gauge\ng 1",                             // no final newline
        "# TYPE g gauge\n\ng 1\n",                         // empty line
        "# TYPE g meter\ng 1\n",                           // unknown type
        "# TYPE g gauge\n# TYPE g gauge\ng 1\n",           // second TYPE
        "# comment\n",                                     // neither HELP nor TYPE
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted: {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Running qof live on the loopback interface

/// Whether this process may open a packet socket.
fn can_capture() -> bool {
    socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::RAW, None).is_ok()
}

/// One test on the loopback interface at a time (a flood of one is another's drops).
static LOOPBACK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A free TCP port on 127.0.0.1 (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `f` until it gives `Some`, at most `secs` seconds.
fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// qof capturing on lo with `args`, once its packet socket is bound to lo and `ready` holds
/// (its control socket or metrics port answers).
fn start_qof(args: &[&str], ready: impl Fn() -> bool) -> Running {
    let child = qof()
        .args(["--in", "int:lo"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let child = Running(Some(child));
    wait_for("qof's packet socket", 20, || {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()?
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter_map(|l| {
                let l = l.to_string_lossy().into_owned();
                Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
            })
            .collect();
        let table = std::fs::read_to_string("/proc/net/packet").ok()?;
        let lo = std::fs::read_to_string("/sys/class/net/lo/ifindex").ok()?;
        table
            .lines()
            .skip(1)
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.get(4) == Some(&lo.trim())
                    && cols.get(8).is_some_and(|i| inodes.iter().any(|n| n == i))
            })
            .then_some(())
    });
    wait_for("qof's control socket or metrics port", 20, || {
        ready().then_some(())
    });
    child
}

/// The control socket answers.
fn ctl_ready(ctl: &Path) -> impl Fn() -> bool + '_ {
    move || std::os::unix::net::UnixStream::connect(ctl).is_ok()
}

fn terminate(mut child: Running) -> (std::process::ExitStatus, String) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.child().id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait()
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

/// GET /metrics: the status line, headers and body.
fn scrape(port: u16) -> (String, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: qof\r\n\r\n")
        .unwrap();
    let mut r = String::new();
    c.read_to_string(&mut r).unwrap();
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn metrics(port: u16) -> Exposition {
    let (head, body) = scrape(port);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

/// Every counter of `later` is at least its value in `earlier`.
fn counters_never_fall(earlier: &Exposition, later: &Exposition) {
    for s in &earlier.samples {
        if earlier.types[&s.name] != "counter" {
            continue;
        }
        let labels: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(
            later.get(&s.name, &labels) >= s.value,
            "{} {labels:?} fell",
            s.name
        );
    }
}

/// The JSON lines of a file: (flow records, statistics records).
fn json_file(path: &Path) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .partition(|v| v.get("packetTotalCount").is_none())
}

/// `--metrics` on a live capture: the endpoint parses strictly, its counters grow with the
/// traffic (and never fall), the rates move, and what it says once the traffic has stopped
/// agrees with the statistics record qof writes at the end.
#[test]
fn metrics_of_a_live_capture_grow_and_agree_with_the_statistics_record() {
    if !can_capture() {
        return; // (live_capture.rs checks the refusal without privilege)
    }
    let _one = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("flows.json");
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let mport = free_port();
    let filter = format!("udp and dst port {port}");
    let child = start_qof(
        &[
            "--filter",
            &filter,
            "--metrics",
            &format!("127.0.0.1:{mport}"),
            "--stats",
            "3600",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
        || TcpStream::connect(("127.0.0.1", mport)).is_ok(),
    );
    let first = metrics(mport);
    for family in [
        "qof_packets_read_total",
        "qof_bytes_read_total",
        "qof_packets_dropped_total",
        "qof_packets_ignored_total",
        "qof_flows_active",
        "qof_flows_created_total",
        "qof_flow_records_total",
        "qof_fragments_pending",
        "qof_rate_packets_per_second",
    ] {
        assert!(first.types.contains_key(family), "{family} missing");
    }
    assert_eq!(first.types["qof_flows_active"], "gauge");
    assert_eq!(first.get("qof_packets_metered_total", &[]), 0.0);

    // 20 datagrams over two seconds from one socket, then 30 from another.
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20u8 {
        a.send_to(&[i; 64], ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = wait_for("20 packets metered", 10, || {
        let m = metrics(mport);
        (m.get("qof_packets_metered_total", &[]) == 20.0).then_some(m)
    });
    counters_never_fall(&first, &second);
    assert_eq!(second.get("qof_flows_active", &[]), 1.0);
    assert!(second.get("qof_bytes_read_total", &[]) >= 20.0 * (64.0 + 42.0));
    assert!(
        second.get("qof_rate_packets_per_second", &[("window", "1m")]) > 0.0,
        "the 1-minute rate moved"
    );
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..30u8 {
        b.send_to(&[i; 100], ("127.0.0.1", port)).unwrap();
    }
    let last = wait_for("50 packets metered", 10, || {
        let m = metrics(mport);
        (m.get("qof_packets_metered_total", &[]) == 50.0).then_some(m)
    });
    counters_never_fall(&second, &last);
    assert_eq!(last.get("qof_flows_active", &[]), 2.0);
    assert_eq!(last.get("qof_flows_created_total", &[]), 2.0);
    // Nothing else comes (the filter lets our datagrams in only): the figures are final.
    std::thread::sleep(Duration::from_millis(300));
    let settled = metrics(mport);
    for name in ["qof_packets_metered_total", "qof_flows_created_total"] {
        assert_eq!(settled.get(name, &[]), last.get(name, &[]), "{name}");
    }

    let (status, stderr) = terminate(child);
    assert!(status.success(), "{stderr}");
    let (flows, stats) = json_file(&out);
    let s = stats.last().expect("a statistics record at the end");
    let m = &settled;
    assert_eq!(
        s["packetTotalCount"],
        m.get("qof_packets_metered_total", &[]) as u64
    );
    assert_eq!(
        s["ignoredPacketTotalCount"],
        m.sum("qof_packets_ignored_total") as u64
    );
    assert_eq!(
        s["droppedPacketTotalCount"],
        m.get("qof_packets_dropped_total", &[]) as u64
    );
    assert_eq!(s["flowTablePeakCount"], m.get("qof_flows_peak", &[]) as u64);
    assert_eq!(
        s["expiredFragmentCount"],
        m.get("qof_fragments_expired_total", &[]) as u64
    );
    // The flows still in memory when scraped were exported at the end.
    assert_eq!(
        s["exportedFlowRecordTotalCount"],
        (m.get("qof_flow_records_total", &[]) + m.get("qof_flows_active", &[])) as u64
    );
    assert_eq!(flows.len(), 2);
    let packets: u64 = flows
        .iter()
        .map(|f| f["packetDeltaCount"].as_u64().unwrap())
        .sum();
    assert_eq!(packets, 50);
}

/// A UDP collector's datagrams received so far.
fn received(c: &UdpSocket) -> Vec<Vec<u8>> {
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut v = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = c.recv(&mut buf) {
        v.push(buf[..n].to_vec());
    }
    v
}

/// Flow records (JSON lines, options records apart) of IPFIX datagrams, by qofdump.
fn flow_records(datagrams: &[Vec<u8>], dir: &Path) -> Vec<serde_json::Value> {
    let p = dir.join(format!("got-{}.ipfix", datagrams.len()));
    std::fs::write(&p, datagrams.concat()).unwrap();
    let out = run(qofdump().arg("--no-options").arg(&p));
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn qofctl(ctl: &Path, command: &str) -> (i32, String, String) {
    let out = run(std::process::Command::new(env!("CARGO_BIN_EXE_qofctl"))
        .arg("-c")
        .arg(ctl)
        .arg(command));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The template sets (id 2) in a list of IPFIX datagrams.
fn template_sets(datagrams: &[Vec<u8>]) -> usize {
    datagrams
        .iter()
        .map(|m| {
            let mut n = 0;
            let mut at = 16;
            while at + 4 <= m.len() {
                let id = u16::from_be_bytes([m[at], m[at + 1]]);
                let len = usize::from(u16::from_be_bytes([m[at + 2], m[at + 3]]));
                if len < 4 {
                    break;
                }
                n += usize::from(id == 2);
                at += len;
            }
            n
        })
        .sum()
}

/// `qofctl` against a running qof: dump-flows lists the flows in memory (what their records
/// would say); expire-all makes their records reach the collector at once (the idle timeout
/// is 30 s); delete-all drops flows without a record; timeouts, statistics and send-template
/// answer; shutdown ends qof cleanly; the pid file lives as long as qof.
#[test]
fn qofctl_lists_expires_and_deletes_the_flows_of_a_running_qof() {
    if !can_capture() {
        return;
    }
    let _one = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let ctl = tmp.path().join("qof.ctl");
    let pidfile = tmp.path().join("qof.pid");
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let filter = format!("udp and dst port {port}");
    let child = start_qof(
        &[
            "--filter",
            &filter,
            "--ctl",
            ctl.to_str().unwrap(),
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--ipfix",
            "udp",
            "--out",
            &format!("127.0.0.1:{}", collector.local_addr().unwrap().port()),
        ],
        ctl_ready(&ctl),
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", child.id())
    );
    let senders: Vec<UdpSocket> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, s) in senders.iter().enumerate() {
        for _ in 0..=i {
            s.send_to(&[7; 40], ("127.0.0.1", port)).unwrap();
        }
    }
    let listing = wait_for("three flows in memory", 10, || {
        let (code, out, err) = qofctl(&ctl, "dump-flows");
        assert_eq!(code, 0, "{err}");
        out.starts_with("3 flows in memory\n").then_some(out)
    });
    for (i, s) in senders.iter().enumerate() {
        let sport = s.local_addr().unwrap().port();
        let line = listing
            .lines()
            .find(|l| l.contains(&format!("udp 127.0.0.1:{sport} > 127.0.0.1:{port} ")))
            .unwrap_or_else(|| panic!("{listing}"));
        assert!(
            line.ends_with(&format!(" packets {}/0 octets {}/0", i + 1, (i + 1) * 68)),
            "{line}"
        );
    }
    // The records wait for the idle timeout: nothing yet.
    assert!(flow_records(&received(&collector), tmp.path()).is_empty());
    let (code, out, _) = qofctl(&ctl, "expire-all");
    assert_eq!(
        (code, out.as_str()),
        (0, "3 flows expired: their records are exported\n")
    );
    let asked = Instant::now();
    let got = wait_for("the three records at the collector", 5, || {
        let r = flow_records(&received(&collector), tmp.path());
        (!r.is_empty()).then_some(r)
    });
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(got.len(), 3, "{got:?}");
    for r in &got {
        assert_eq!(r["flowEndReason"], 4, "{r}");
        assert_eq!(r["destinationTransportPort"], port);
    }
    let (_, out, _) = qofctl(&ctl, "dump-flows");
    assert_eq!(out, "0 flows in memory\n");

    // A new flow, deleted without a record.
    senders[0].send_to(&[1; 10], ("127.0.0.1", port)).unwrap();
    wait_for("the new flow", 10, || {
        qofctl(&ctl, "dump-flows")
            .1
            .starts_with("1 flows in memory")
            .then_some(())
    });
    let (code, out, _) = qofctl(&ctl, "delete-all");
    assert_eq!(
        (code, out.as_str()),
        (0, "1 flows deleted without export\n")
    );
    let (_, stats, _) = qofctl(&ctl, "statistics");
    assert!(
        stats.contains(
            "flows: 0 in memory (peak 3), 4 created, 3 records, 0 evicted (table full), 1 deleted"
        ),
        "{stats}"
    );
    assert!(
        stats.contains(&format!(
            "collector udp 127.0.0.1:{}: 3 records sent, 0 lost",
            collector.local_addr().unwrap().port()
        )),
        "{stats}"
    );
    let (_, out, _) = qofctl(&ctl, "timeouts");
    assert_eq!(out, "idle-timeout: 30 s\nactive-timeout: 300 s\n");
    // send-template: the templates go again (with the statistics template that opens every
    // stream, they went once so far).
    let before = template_sets(&received(&collector));
    assert_eq!(before, 0, "(all received above)");
    let (code, out, _) = qofctl(&ctl, "send-template");
    assert_eq!(
        (code, out.as_str()),
        (0, "templates go again with the next records\n")
    );
    senders[1].send_to(&[2; 10], ("127.0.0.1", port)).unwrap();
    wait_for("the flow", 10, || {
        qofctl(&ctl, "dump-flows")
            .1
            .starts_with("1 flows in memory")
            .then_some(())
    });
    qofctl(&ctl, "expire-all");
    let again = wait_for("templates again", 5, || {
        let d = received(&collector);
        (!d.is_empty()).then_some(d)
    });
    assert!(template_sets(&again) >= 1, "templates sent again");

    let (code, out, _) = qofctl(&ctl, "shutdown");
    assert_eq!(code, 0);
    assert!(out.starts_with("shutting down:"), "{out}");
    let (status, stderr) = child.wait();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("qofctl: stopping input"), "{stderr}");
    assert!(!ctl.exists(), "the control socket goes with qof");
    assert!(!pidfile.exists(), "the pid file goes with qof");
    // An unknown command, and no qof to talk to: one line each, non-zero status.
    let (code, _, err) = qofctl(&ctl, "reboot");
    assert_eq!(code, 2);
    assert!(err.starts_with("qofctl: unknown command `reboot`") && err.lines().count() == 1);
    let (code, _, err) = qofctl(&ctl, "statistics");
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("qofctl: {}: ", ctl.display())),
        "{err}"
    );
}

/// `qofctl exit`: qof ends without exporting the flows in memory.
#[test]
fn qofctl_exit_ends_without_exporting() {
    if !can_capture() {
        return;
    }
    let _one = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let ctl = tmp.path().join("qof.ctl");
    let out = tmp.path().join("flows.json");
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let filter = format!("udp and dst port {port}");
    let child = start_qof(
        &[
            "--filter",
            &filter,
            "--ctl",
            ctl.to_str().unwrap(),
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
        ctl_ready(&ctl),
    );
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&[3; 30], ("127.0.0.1", port))
        .unwrap();
    wait_for("the flow", 10, || {
        qofctl(&ctl, "dump-flows")
            .1
            .starts_with("1 flows in memory")
            .then_some(())
    });
    let (code, answer, _) = qofctl(&ctl, "exit");
    assert_eq!(
        (code, answer.as_str()),
        (0, "exiting: 1 flows deleted without export\n")
    );
    let (status, stderr) = child.wait();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("0 flow records exported"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "");
}

/// SIGHUP: the JSON written so far is published under the output's name and qof goes on in
/// a new file (logrotate moves the first away); the log file is opened again.
#[test]
fn sighup_publishes_the_output_and_reopens_the_log() {
    if !can_capture() {
        return;
    }
    let _one = LOOPBACK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let ctl = tmp.path().join("qof.ctl");
    let out = tmp.path().join("flows.json");
    let log = tmp.path().join("qof.log");
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let filter = format!("udp and dst port {port}");
    let child = start_qof(
        &[
            "--filter",
            &filter,
            "--ctl",
            ctl.to_str().unwrap(),
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--loglevel",
            "info",
        ],
        ctl_ready(&ctl),
    );
    let send = |n: u8| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(&[n; 20], ("127.0.0.1", port)).unwrap();
        wait_for("the flow", 10, || {
            qofctl(&ctl, "dump-flows")
                .1
                .starts_with("1 flows in memory")
                .then_some(())
        });
        qofctl(&ctl, "expire-all");
        s.local_addr().unwrap().port()
    };
    let first = send(1);
    assert!(!out.exists(), "the output appears only when finished");
    let rotated_log = tmp.path().join("qof.log.1");
    std::fs::rename(&log, &rotated_log).unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for("the published output", 10, || out.exists().then_some(()));
    let rotated = tmp.path().join("flows.json.1");
    std::fs::rename(&out, &rotated).unwrap();
    let second = send(2);
    let (status, stderr) = terminate(child);
    assert!(status.success(), "{stderr}");
    let ports = |p: &Path| -> Vec<u64> {
        json_file(p)
            .0
            .iter()
            .map(|r| r["sourceTransportPort"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ports(&rotated), [u64::from(first)]);
    assert_eq!(ports(&out), [u64::from(second)]);
    let old = std::fs::read_to_string(&rotated_log).unwrap();
    let new = std::fs::read_to_string(&log).unwrap();
    assert!(old.contains("SIGHUP: reopening"), "{old}");
    assert!(
        new.contains("qofctl dump-flows") && !new.contains("SIGHUP"),
        "{new}"
    );
}
