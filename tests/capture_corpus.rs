//! The capture readers against tshark, on every public corpus file and on hand-built files.
//!
//! tshark (Wireshark's wiretap) is the oracle: frame count, frame.len, frame.cap_len,
//! frame.time_epoch and the link type must agree frame by frame, and a file tshark refuses or finds
//! cut short must end in an error here too. Derived inputs (gzip copies, truncated copies, files
//! fed through standard input, tiny read buffers) must give exactly the frames of the original.
//!
//! Needs /usr/bin/tshark; fails loudly without it unless QOF_SKIP_EXTERNAL=1.

use flate2::write::GzEncoder;
use qof::capture::{self, CaptureError, CaptureErrorKind, PacketSource};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus");

#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnedFrame {
    ts_ns: u64,
    linktype: u32,
    orig_len: u32,
    data: Vec<u8>,
}

/// Every frame a source yields, then how it ended (None: clean end).
fn drain(mut src: Box<dyn PacketSource + Send>) -> (Vec<OwnedFrame>, Option<CaptureError>) {
    let mut frames = Vec::new();
    loop {
        match src.next_frame() {
            Ok(Some(f)) => frames.push(OwnedFrame {
                ts_ns: f.ts.nanos(),
                linktype: f.linktype,
                orig_len: f.orig_len,
                data: f.data.to_vec(),
            }),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

fn read_file(path: &Path) -> (Vec<OwnedFrame>, Option<CaptureError>) {
    match capture::open(path.to_str().expect("utf-8 path")) {
        Ok(src) => drain(src),
        Err(e) => (Vec::new(), Some(e)),
    }
}

fn read_bytes(bytes: &[u8], buffer: usize) -> (Vec<OwnedFrame>, Option<CaptureError>) {
    match capture::from_reader_with_buffer(std::io::Cursor::new(bytes.to_vec()), buffer) {
        Ok(src) => drain(src),
        Err(e) => (Vec::new(), Some(e)),
    }
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("corpus directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() > 10, "corpus looks empty: {}", files.len());
    files
}

fn skip_external() -> bool {
    std::env::var("QOF_SKIP_EXTERNAL").as_deref() == Ok("1")
}

/// What tshark says about one frame.
#[derive(Debug, PartialEq, Eq)]
struct TsharkFrame {
    len: u32,
    cap_len: u32,
    ts_ns: u64,
    wtap_encap: u32,
}

/// tshark's frames, and its complaint on stderr if it stopped early.
fn tshark(path: &Path) -> (Vec<TsharkFrame>, Option<String>) {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-T", "fields", "-E", "separator=/t"])
        .args(["-e", "frame.len", "-e", "frame.cap_len"])
        .args(["-e", "frame.time_epoch", "-e", "frame.encap_type"])
        .output()
        .expect("tshark is needed for this test (set QOF_SKIP_EXTERNAL=1 to skip)");
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 4, "unexpected tshark line {line:?}");
            // Records without a link type are not packets (tshark lists pcapng custom blocks
            // this way); a capture reader skips them.
            if f[3].is_empty() {
                return None;
            }
            Some(TsharkFrame {
                len: f[0].parse().expect("frame.len"),
                cap_len: f[1].parse().expect("frame.cap_len"),
                // A packet without a timestamp (pcapng Simple Packet Block) has none in tshark.
                ts_ns: if f[2].is_empty() {
                    NO_TIME
                } else {
                    parse_epoch(f[2])
                },
                wtap_encap: f[3].parse().expect("frame.encap_type"),
            })
        })
        .collect();
    let complaint = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("Running as user"))
        .collect::<Vec<_>>()
        .join(" ");
    (frames, (!complaint.trim().is_empty()).then_some(complaint))
}

/// Stands for tshark's empty frame.time_epoch: any timestamp of ours matches it.
const NO_TIME: u64 = u64::MAX;

/// tshark prints `seconds.nanoseconds` with the nanosecond field as an integer (`%09d`), which
/// shows more than nine digits when a file's sub-second field overflows; adding it keeps the
/// same instant we compute.
fn parse_epoch(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: u64 = secs.parse().expect("epoch seconds");
    let frac_ns: u64 = if frac.len() >= 9 {
        frac.parse().expect("epoch fraction")
    } else {
        // Fewer digits: a plain decimal fraction.
        let digits: u64 = frac.parse().expect("epoch fraction");
        digits * 10u64.pow(9 - frac.len() as u32)
    };
    secs * 1_000_000_000 + frac_ns
}

/// Wireshark's WTAP_ENCAP for a LINKTYPE_ (wiretap/pcap-common.c), for the link types we meet.
fn wtap_encap(linktype: u32) -> Option<u32> {
    Some(match linktype {
        0 => 15,            // NULL
        1 => 1,             // ETHERNET
        9 => 4,             // PPP
        12 | 14 | 101 => 7, // RAW_IP
        104 => 28,          // CHDLC
        113 => 25,          // SLL
        228 => 129,         // RAW_IP4
        229 => 130,         // RAW_IP6
        276 => 210,         // SLL2
        _ => return None,
    })
}

/// Compares our reading of `path` with tshark's; returns the disagreements. With `same_error`,
/// an early end must be the same kind of end (cut short = truncated); without, any error on
/// both sides agrees (wiretap reports some framing damage as a short file, we as damage).
fn compare_with_tshark(path: &Path, same_error: bool) -> Vec<String> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let (ours, our_end) = read_file(path);
    let (theirs, complaint) = tshark(path);
    let mut problems = Vec::new();
    if ours.len() != theirs.len() {
        problems.push(format!(
            "{name}: {} frames here, {} in tshark (our end: {:?}, tshark: {:?})",
            ours.len(),
            theirs.len(),
            our_end.as_ref().map(|e| e.to_string()),
            complaint
        ));
    }
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let got = TsharkFrame {
            len: a.orig_len,
            cap_len: a.data.len() as u32,
            ts_ns: if b.ts_ns == NO_TIME { NO_TIME } else { a.ts_ns },
            wtap_encap: wtap_encap(a.linktype).unwrap_or(u32::MAX),
        };
        if &got != b {
            problems.push(format!(
                "{name}: frame {}: ours {got:?}, tshark {b:?}",
                i + 1
            ));
            break;
        }
    }
    // How the file ends must agree too: tshark's complaint means an error here.
    match (&our_end, &complaint) {
        (None, None) => {}
        (Some(e), Some(c)) => {
            let cut_short = c.contains("cut short");
            let truncated = matches!(e.kind, CaptureErrorKind::Truncated);
            if same_error && cut_short != truncated {
                problems.push(format!("{name}: we say {e}, tshark says {c}"));
            }
        }
        (Some(e), None) => problems.push(format!("{name}: we say {e}, tshark reads it cleanly")),
        (None, Some(c)) => problems.push(format!("{name}: clean here, tshark says {c}")),
    }
    problems
}

#[test]
fn corpus_matches_tshark_frame_by_frame() {
    if skip_external() {
        eprintln!("QOF_SKIP_EXTERNAL=1: skipping the tshark comparison");
        return;
    }
    let mut problems = Vec::new();
    let mut frames = 0usize;
    for path in corpus_files() {
        let p = compare_with_tshark(&path, true);
        frames += read_file(&path).0.len();
        problems.extend(p);
    }
    assert!(
        problems.is_empty(),
        "disagreements with tshark:\n{}",
        problems.join("\n")
    );
    assert!(frames > 10_000, "suspiciously few frames: {frames}");
}

#[test]
fn open_errors_name_the_file_and_refuse_live_sources() {
    let e = capture::open("/nonexistent/dir/foo.pcap")
        .err()
        .expect("missing file must fail");
    assert!(matches!(e.kind, CaptureErrorKind::Open(_)));
    assert_eq!(
        e.to_string(),
        "cannot open /nonexistent/dir/foo.pcap: No such file or directory (os error 2)"
    );
    for live in ["pcapint:eth0", "dag:/dev/dag0"] {
        let e = capture::open(live)
            .err()
            .expect("other live sources are refused");
        assert!(
            matches!(e.kind, CaptureErrorKind::Unsupported(_)),
            "{live}: {e}"
        );
        assert!(
            e.to_string()
                .contains("the only live source is int:INTERFACE"),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
    }
    #[cfg(target_os = "linux")]
    for (spec, name) in [
        ("int:nosuch0", "nosuch0"),
        ("int:../x", "../x"),
        ("int:", ""),
    ] {
        let e = capture::open(spec).err().expect("no such interface");
        assert_eq!(
            e.to_string(),
            format!("cannot open int:{name}: no such network interface")
        );
    }
    let e = capture::open("/tmp").err().expect("a directory is refused");
    assert_eq!(e.to_string(), "cannot open /tmp: is a directory");
    // A path that merely contains ':' opens, and `pcapfile:` is stripped.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(CORPUS).join("tcpdump__icmpv6.pcap");
    let odd = dir.path().join("int:odd.pcap");
    std::fs::copy(&src, &odd).expect("copy");
    let expected = read_file(&src).0;
    assert_eq!(read_file(&odd).0, expected);
    let prefixed = format!("pcapfile:{}", src.display());
    assert_eq!(
        drain(capture::open(&prefixed).expect("pcapfile: prefix")).0,
        expected
    );
    // Not a capture at all: the file is named.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"hello world\n").expect("write");
    let e = capture::open(text.to_str().expect("utf-8"))
        .err()
        .expect("text is refused");
    assert!(matches!(e.kind, CaptureErrorKind::BadMagic(_)));
    assert!(e.to_string().contains("notes.txt"), "{e}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn same_end(a: &Option<CaptureError>, b: &Option<CaptureError>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.offset == b.offset
                && std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind)
        }
        _ => false,
    }
}

#[test]
fn gzip_copies_and_tiny_buffers_give_identical_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    for path in corpus_files() {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let bytes = std::fs::read(&path).expect("read corpus file");
        let (want, want_end) = read_file(&path);

        // One gzip member, read through open() (a misleading name: detection is by content).
        let gz_path = dir.path().join(format!("{name}.data"));
        std::fs::write(&gz_path, gzip(&bytes)).expect("write gzip copy");
        let (got, got_end) = read_file(&gz_path);
        assert_eq!(got, want, "{name}: gzip copy differs");
        assert!(
            same_end(&got_end, &want_end),
            "{name}: {got_end:?} vs {want_end:?}"
        );

        // Two members (as `cat a.gz b.gz` makes), split mid-file.
        let mid = bytes.len() / 2;
        let mut two = gzip(&bytes[..mid]);
        two.extend(gzip(&bytes[mid..]));
        let (got, got_end) = read_bytes(&two, capture::DEFAULT_BUFFER);
        assert_eq!(got, want, "{name}: two-member gzip differs");
        assert!(
            same_end(&got_end, &want_end),
            "{name}: {got_end:?} vs {want_end:?}"
        );

        // Small buffers force refills, compaction and growth for records larger than the buffer.
        for buffer in [64, 100, 1500, 4096] {
            let (got, got_end) = read_bytes(&bytes, buffer);
            assert_eq!(got, want, "{name}: buffer {buffer} differs");
            assert!(
                same_end(&got_end, &want_end),
                "{name}/{buffer}: {got_end:?} vs {want_end:?}"
            );
        }
    }
}

#[test]
fn position_and_len_hint_cover_the_whole_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Path::new(CORPUS).join("ndpi__alexa-app.pcapng");
    let bytes = std::fs::read(&path).expect("read");
    let gz_path = dir.path().join("alexa.pcapng.gz");
    let gz = gzip(&bytes);
    std::fs::write(&gz_path, &gz).expect("write");
    for (p, size) in [(path.clone(), bytes.len()), (gz_path, gz.len())] {
        let mut src = capture::open(p.to_str().expect("utf-8")).expect("open");
        assert_eq!(src.len_hint(), Some(size as u64));
        let mut last = 0;
        while let Some(_f) = src.next_frame().expect("clean file") {
            assert!(src.position() >= last, "position went back");
            assert!(src.position() <= size as u64);
            last = src.position();
        }
        assert_eq!(src.position(), size as u64, "{}", p.display());
    }
}

/// Deterministic xorshift64*, so that failures reproduce.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

#[test]
fn truncated_copies_keep_every_frame_before_the_cut() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for path in corpus_files() {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let bytes = std::fs::read(&path).expect("read corpus file");
        let (full, full_end) = read_file(&path);
        let mut cuts: Vec<usize> = (0..40).map(|_| rng.below(bytes.len() + 1)).collect();
        cuts.extend([
            0,
            1,
            3,
            4,
            23,
            24,
            25,
            28,
            40,
            bytes.len().saturating_sub(1),
        ]);
        for cut in cuts.into_iter().filter(|&c| c <= bytes.len()) {
            let buffer = if cut % 2 == 0 {
                256
            } else {
                capture::DEFAULT_BUFFER
            };
            let (got, end) = read_bytes(&bytes[..cut], buffer);
            assert!(
                got.len() <= full.len(),
                "{name} cut {cut}: more frames than the whole file"
            );
            assert_eq!(
                got,
                full[..got.len()],
                "{name} cut {cut}: frames differ from the full read"
            );
            match &end {
                Some(e) => {
                    assert!(
                        e.offset <= cut as u64,
                        "{name} cut {cut}: error offset {}",
                        e.offset
                    );
                    // A cut through a sound file is a truncation, never damage.
                    if full_end.is_none() && cut > 0 {
                        assert!(
                            matches!(e.kind, CaptureErrorKind::Truncated),
                            "{name} cut {cut}: {e}"
                        );
                    }
                    // The error points at the start of the cut record: everything before it reads
                    // cleanly into the same frames (no complete frame was lost before the error).
                    if matches!(e.kind, CaptureErrorKind::Truncated) && e.offset > 24 {
                        let (again, again_end) = read_bytes(&bytes[..e.offset as usize], 4096);
                        assert_eq!(
                            again, got,
                            "{name} cut {cut}: frames before the error offset"
                        );
                        assert!(again_end.is_none(), "{name} cut {cut}: {again_end:?}");
                    }
                }
                None => {
                    // A clean end is right only where a record ends: every byte was consumed.
                    let mut src = capture::from_reader(std::io::Cursor::new(bytes[..cut].to_vec()))
                        .expect("opened before");
                    while src.next_frame().expect("read cleanly before").is_some() {}
                    assert_eq!(
                        src.position(),
                        cut as u64,
                        "{name} cut {cut}: clean end mid-record"
                    );
                }
            }
        }
        // A cut gzip stream: the frames before the cut, then an error, never a panic.
        let gz = gzip(&bytes);
        for cut in [gz.len() / 3, gz.len() / 2, gz.len().saturating_sub(5)] {
            let (got, _end) = read_bytes(&gz[..cut], capture::DEFAULT_BUFFER);
            assert_eq!(
                got,
                full[..got.len().min(full.len())],
                "{name} gzip cut {cut}"
            );
        }
    }
}

/// Runs in a child process (see `standard_input_reads_like_the_file`): prints a summary of the
/// frames read from standard input.
#[test]
fn stdin_child_entry() {
    if std::env::var_os("QOF_CAPTURE_STDIN_CHILD").is_none() {
        return;
    }
    let (frames, end) = drain(capture::open("-").expect("open standard input"));
    println!("SUMMARY {}", summary(&frames, &end));
}

fn summary(frames: &[OwnedFrame], end: &Option<CaptureError>) -> String {
    let bytes: usize = frames.iter().map(|f| f.data.len()).sum();
    let ts: u64 = frames
        .iter()
        .fold(0u64, |a, f| a.wrapping_mul(31).wrapping_add(f.ts_ns));
    let data: u64 = frames
        .iter()
        .flat_map(|f| f.data.iter())
        .fold(0u64, |a, &b| a.wrapping_mul(131).wrapping_add(u64::from(b)));
    format!(
        "frames={} bytes={bytes} ts={ts} data={data} end={:?}",
        frames.len(),
        end.as_ref().map(|e| e.to_string())
    )
}

#[test]
fn standard_input_reads_like_the_file() {
    let exe = std::env::current_exe().expect("test binary");
    for (file, gz) in [("ndpi__sites.pcapng", false), ("ndpi__netflix.pcap", true)] {
        let path = Path::new(CORPUS).join(file);
        let bytes = std::fs::read(&path).expect("read");
        let (frames, end) = read_file(&path);
        let want = summary(
            &frames,
            &end.map(|mut e| {
                e.file = Some("standard input".into());
                e
            }),
        );
        let mut child = Command::new(&exe)
            .args([
                "stdin_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("QOF_CAPTURE_STDIN_CHILD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let input = if gz { gzip(&bytes) } else { bytes };
        let mut stdin = child.stdin.take().expect("stdin");
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("child output");
        feeder.join().expect("feeder").expect("write to child");
        let text = String::from_utf8_lossy(&out.stdout);
        let got = text
            .lines()
            .find_map(|l| l.split_once("SUMMARY ").map(|(_, s)| s))
            .unwrap_or_else(|| panic!("child printed no summary: {text}"));
        assert_eq!(got, want, "{file} via standard input (gzip: {gz})");
    }
}

// ---- Hand-built files: each is checked against the values the format defines and against tshark.

/// Builds a pcap file.
struct PcapFile {
    big: bool,
    out: Vec<u8>,
}

impl PcapFile {
    fn new(magic: u32, big: bool, linktype: u32) -> PcapFile {
        let mut f = PcapFile {
            big,
            out: Vec::new(),
        };
        f.u32(magic);
        f.u16(2);
        f.u16(4);
        f.u32(0);
        f.u32(0);
        f.u32(65535);
        f.u32(linktype);
        f
    }
    fn u16(&mut self, v: u16) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend(b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend(b);
    }
    fn record(&mut self, secs: u32, frac: u32, data: &[u8], orig_len: u32) -> &mut Self {
        self.u32(secs);
        self.u32(frac);
        self.u32(data.len() as u32);
        self.u32(orig_len);
        self.out.extend(data);
        self
    }
}

/// Builds a pcapng file block by block.
struct NgFile {
    big: bool,
    out: Vec<u8>,
}

impl NgFile {
    fn new() -> NgFile {
        NgFile {
            big: false,
            out: Vec::new(),
        }
    }
    fn w16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn w32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    /// type, total length, body padded to 4, total length.
    fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let (t, l) = (self.w32(block_type), self.w32(total));
        self.out.extend(t);
        self.out.extend(l);
        self.out.extend(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend(l);
        self
    }
    fn shb(&mut self, big: bool, major: u16, minor: u16) -> &mut Self {
        self.big = big;
        let mut body = self.w32(0x1a2b_3c4d).to_vec();
        body.extend(self.w16(major));
        body.extend(self.w16(minor));
        body.extend([0xff; 8]); // section length unknown
        self.block(0x0a0d_0d0a, &body)
    }
    fn idb(&mut self, linktype: u16, snaplen: u32, options: &[(u16, &[u8])]) -> &mut Self {
        let mut body = self.w16(linktype).to_vec();
        body.extend([0, 0]);
        body.extend(self.w32(snaplen));
        for (code, value) in options {
            body.extend(self.w16(*code));
            body.extend(self.w16(value.len() as u16));
            body.extend(*value);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        if !options.is_empty() {
            body.extend([0, 0, 0, 0]);
        }
        self.block(1, &body)
    }
    fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = self.w32(iface).to_vec();
        body.extend(self.w32((ts >> 32) as u32));
        body.extend(self.w32(ts as u32));
        body.extend(self.w32(data.len() as u32));
        body.extend(self.w32(orig_len));
        body.extend(data);
        self.block(6, &body)
    }
    fn spb(&mut self, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = self.w32(orig_len).to_vec();
        body.extend(data);
        self.block(3, &body)
    }
    fn obsolete_pb(&mut self, iface: u16, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = self.w16(iface).to_vec();
        body.extend(self.w16(0));
        body.extend(self.w32((ts >> 32) as u32));
        body.extend(self.w32(ts as u32));
        body.extend(self.w32(data.len() as u32));
        body.extend(self.w32(orig_len));
        body.extend(data);
        self.block(2, &body)
    }
}

/// Writes `bytes` to a temporary file and asserts that tshark sees what we see.
fn assert_tshark_agrees(label: &str, bytes: &[u8]) {
    assert_tshark_agrees_on(label, bytes, true);
}

fn assert_tshark_agrees_on(label: &str, bytes: &[u8], same_error: bool) {
    if skip_external() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("{label}.cap"));
    std::fs::write(&path, bytes).expect("write");
    // QOF_CAPTURE_KEEP=<dir> keeps the hand-built files for a look with other tools.
    if let Some(keep) = std::env::var_os("QOF_CAPTURE_KEEP") {
        std::fs::write(Path::new(&keep).join(format!("{label}.cap")), bytes).expect("keep");
    }
    let problems = compare_with_tshark(&path, same_error);
    assert!(problems.is_empty(), "{label}: {}", problems.join("\n"));
}

const FRAME_A: &[u8] = &[0xaa; 60];
const FRAME_B: &[u8] = &[0xbb; 41];

fn ok_frames(bytes: &[u8]) -> Vec<OwnedFrame> {
    let (frames, end) = read_bytes(bytes, capture::DEFAULT_BUFFER);
    assert!(end.is_none(), "unexpected {end:?}");
    frames
}

fn frame(ts_ns: u64, linktype: u32, orig_len: u32, data: &[u8]) -> OwnedFrame {
    OwnedFrame {
        ts_ns,
        linktype,
        orig_len,
        data: data.to_vec(),
    }
}

#[test]
fn pcap_both_byte_orders_and_both_time_units() {
    for (magic, unit_ns) in [(0xa1b2_c3d4u32, 1_000u64), (0xa1b2_3c4d, 1)] {
        for big in [false, true] {
            let mut f = PcapFile::new(magic, big, 1);
            f.record(1_500_000_000, 123_456, FRAME_A, 60);
            f.record(1_500_000_001, 999_999, FRAME_B, 1514);
            let label = format!("pcap-{magic:x}-{}", if big { "be" } else { "le" });
            assert_eq!(
                ok_frames(&f.out),
                vec![
                    frame(
                        1_500_000_000_000_000_000 + 123_456 * unit_ns,
                        1,
                        60,
                        FRAME_A
                    ),
                    frame(
                        1_500_000_001_000_000_000 + 999_999 * unit_ns,
                        1,
                        1514,
                        FRAME_B
                    ),
                ],
                "{label}"
            );
            assert_tshark_agrees(&label, &f.out);
        }
    }
}

#[test]
fn pcap_link_type_ignores_the_fcs_bits() {
    // LINKTYPE_RAW with "FCS present, 4 bytes" flags in the upper bits of the network field.
    let mut f = PcapFile::new(0xa1b2_c3d4, false, 101 | 0x1000_0000 | 0x0400_0000);
    f.record(1, 2, FRAME_A, 60);
    assert_eq!(
        ok_frames(&f.out),
        vec![frame(1_000_002_000, 101, 60, FRAME_A)]
    );
    assert_tshark_agrees("pcap-fcs-bits", &f.out);
}

#[test]
fn modified_pcap_has_longer_record_headers() {
    let mut out = PcapFile::new(0xa1b2_cd34, false, 1).out;
    for (secs, data) in [(7u32, FRAME_A), (8, FRAME_B)] {
        for v in [secs, 5, data.len() as u32, data.len() as u32, 3] {
            out.extend(v.to_le_bytes());
        }
        out.extend([0x08, 0x00, 0x00, 0x00]); // protocol, packet type, padding
        out.extend(data);
    }
    assert_eq!(
        ok_frames(&out),
        vec![
            frame(7_000_005_000, 1, 60, FRAME_A),
            frame(8_000_005_000, 1, 41, FRAME_B)
        ]
    );
    assert_tshark_agrees("modified-pcap", &out);
}

#[test]
fn pcapng_resolutions_offsets_and_interfaces() {
    for big in [false, true] {
        let mut f = NgFile::new();
        f.shb(big, 1, 0);
        let offset = if big {
            100i64.to_be_bytes()
        } else {
            100i64.to_le_bytes()
        };
        f.idb(1, 0, &[]); // 0: Ethernet, default µs
        f.idb(101, 0, &[(9, &[9])]); // 1: raw IP, 10^-9
        f.idb(113, 0, &[(9, &[0x80 | 10])]); // 2: Linux SLL, 2^-10
        f.idb(1, 0, &[(9, &[3]), (14, &offset)]); // 3: ms, +100 s
        f.idb(1, 0, &[(9, &[12])]); // 4: ps, finer than a nanosecond
        f.epb(0, 1_600_000_000_123_456, FRAME_A, 60);
        f.epb(1, 1_600_000_000_123_456_789, FRAME_B, 41);
        f.epb(2, (1_600_000_000u64 << 10) | 512, FRAME_A, 1000);
        f.epb(3, 1_600_000_000_250, FRAME_B, 41);
        f.epb(4, 16_000_000_001_999_999, FRAME_A, 60); // 16000.000001999999 s
        let label = format!("ng-resolutions-{}", if big { "be" } else { "le" });
        assert_eq!(
            ok_frames(&f.out),
            vec![
                frame(1_600_000_000_123_456_000, 1, 60, FRAME_A),
                frame(1_600_000_000_123_456_789, 101, 41, FRAME_B),
                frame(1_600_000_000_500_000_000, 113, 1000, FRAME_A),
                frame(1_600_000_100_250_000_000, 1, 41, FRAME_B),
                frame(16_000_000_001_999, 1, 60, FRAME_A),
            ],
            "{label}"
        );
        assert_tshark_agrees(&label, &f.out);
    }
}

#[test]
fn pcapng_sections_reset_byte_order_and_interfaces() {
    let mut f = NgFile::new();
    f.shb(false, 1, 0).idb(1, 0, &[]).idb(101, 0, &[]);
    f.epb(1, 1_000_000, FRAME_A, 60);
    // Second section, big-endian: interface 0 is now Linux SLL, and interface 1 does not exist.
    f.shb(true, 1, 0).idb(113, 0, &[]);
    f.block(4, &[0, 0, 0, 0]); // name resolution block (end of records only): skipped
    f.block(0x0000_0bad, &[1, 2, 3, 4, 5, 6, 7, 8]); // custom block: skipped
    f.epb(0, 2_000_000, FRAME_B, 41);
    f.block(5, &[0; 12]); // interface statistics: skipped
    assert_eq!(
        ok_frames(&f.out),
        vec![
            frame(1_000_000_000, 101, 60, FRAME_A),
            frame(2_000_000_000, 113, 41, FRAME_B)
        ]
    );
    assert_tshark_agrees("ng-two-sections", &f.out);

    let before = f.out.len() as u64;
    f.epb(1, 3_000_000, FRAME_A, 60);
    let (frames, end) = read_bytes(&f.out, 4096);
    assert_eq!(frames.len(), 2);
    let e = end.expect("interface 1 was not described in the second section");
    assert!(matches!(e.kind, CaptureErrorKind::Malformed(_)), "{e}");
    assert_eq!(e.offset, before);
    assert_tshark_agrees("ng-undefined-interface", &f.out);
}

#[test]
fn pcapng_simple_and_obsolete_packet_blocks() {
    let mut f = NgFile::new();
    f.shb(false, 1, 0).idb(1, 50, &[]);
    f.epb(0, 5_000_000, &FRAME_A[..50], 60);
    // A Simple Packet Block has no timestamp (we give it the last one seen; tshark shows none);
    // its captured length is the wire length cut at the interface's snap length (50 here), and
    // the block padding is not data.
    f.spb(&FRAME_B[..41], 41);
    f.spb(&FRAME_A[..50], 60); // cut to 50 by the snap length
    f.obsolete_pb(0, 6_000_000, &FRAME_B[..30], 41);
    let frames = ok_frames(&f.out);
    assert_eq!(
        frames,
        vec![
            frame(5_000_000_000, 1, 60, &FRAME_A[..50]),
            frame(5_000_000_000, 1, 41, &FRAME_B[..41]),
            frame(5_000_000_000, 1, 60, &FRAME_A[..50]),
            frame(6_000_000_000, 1, 41, &FRAME_B[..30]),
        ]
    );
    assert_tshark_agrees("ng-spb-pb", &f.out);
}

#[test]
fn pcapng_version_one_two_is_read_and_others_refused() {
    let mut f = NgFile::new();
    f.shb(false, 1, 2).idb(1, 0, &[]).epb(0, 1, FRAME_A, 60);
    assert_eq!(ok_frames(&f.out).len(), 1);
    assert_tshark_agrees("ng-version-1.2", &f.out);
    for (major, minor) in [(2u16, 0u16), (0, 1), (1, 1)] {
        let mut f = NgFile::new();
        f.shb(false, major, minor)
            .idb(1, 0, &[])
            .epb(0, 1, FRAME_A, 60);
        let (frames, end) = read_bytes(&f.out, 4096);
        assert!(frames.is_empty());
        let e = end.expect("unsupported version");
        assert!(matches!(e.kind, CaptureErrorKind::Unsupported(_)), "{e}");
        assert!(
            e.to_string().contains(&format!("version {major}.{minor}")),
            "{e}"
        );
        assert_tshark_agrees(&format!("ng-version-{major}.{minor}"), &f.out);
    }
}

#[test]
fn pcapng_bad_block_lengths_are_damage_at_their_offset() {
    let mut good = NgFile::new();
    good.shb(false, 1, 0).idb(1, 0, &[]).epb(0, 1, FRAME_A, 60);
    let at = good.out.len();
    good.epb(0, 2, FRAME_B, 41);
    let len_field = at + 4;
    let total = u32::from_le_bytes(good.out[len_field..len_field + 4].try_into().expect("4"));
    type Damage = fn(&mut Vec<u8>, usize, u32);
    let damages: [(&str, Damage); 5] = [
        ("not-multiple-of-4", |b, i, t| {
            b[i..i + 4].copy_from_slice(&(t + 2).to_le_bytes())
        }),
        ("too-small", |b, i, _| {
            b[i..i + 4].copy_from_slice(&8u32.to_le_bytes())
        }),
        ("trailer-differs", |b, i, t| {
            let end = i - 4 + t as usize;
            b[end - 4..end].copy_from_slice(&(t + 4).to_le_bytes());
        }),
        ("caplen-beyond-block", |b, i, _| {
            b[i + 16..i + 20].copy_from_slice(&200u32.to_le_bytes())
        }),
        ("huge", |b, i, _| {
            b[i..i + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes())
        }),
    ];
    for (label, damage) in damages {
        let mut bytes = good.out.clone();
        damage(&mut bytes, len_field, total);
        let (frames, end) = read_bytes(&bytes, 4096);
        assert_eq!(frames.len(), 1, "{label}");
        let e = end.unwrap_or_else(|| panic!("{label}: damage not noticed"));
        assert!(
            matches!(e.kind, CaptureErrorKind::Malformed(_)),
            "{label}: {e}"
        );
        assert_eq!(e.offset, at as u64, "{label}");
        assert_tshark_agrees_on(&format!("ng-{label}"), &bytes, false);
    }
}

#[test]
fn pcap_oversized_record_is_damage_not_an_allocation() {
    let mut f = PcapFile::new(0xa1b2_c3d4, false, 1);
    f.record(1, 0, FRAME_A, 60);
    let at = f.out.len() as u64;
    f.u32(2);
    f.u32(0);
    f.u32(capture::MAX_CAPLEN + 1);
    f.u32(capture::MAX_CAPLEN + 1);
    let (frames, end) = read_bytes(&f.out, 4096);
    assert_eq!(frames.len(), 1);
    let e = end.expect("oversized record");
    assert!(matches!(e.kind, CaptureErrorKind::Malformed(_)), "{e}");
    assert_eq!(e.offset, at);
}

/// Every corpus frame, damaged three ways (one to four bytes of its first 96 overwritten at
/// random, and sometimes cut short), through the whole pipeline: decode, every TCP
/// measurement, JSON, the default template's IPFIX, and every plugin (IPFIX and JSON). qof
/// must not panic, must exit 0 and must account for every frame (metered or ignored).
#[test]
fn damaged_frames_through_the_whole_pipeline_never_panic() {
    let mut rng = Rng(0x0bad_f00d_dead_beef);
    let dir = tempfile::tempdir().expect("tempdir");
    let every_tcp = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/tcp-causes.yaml");
    let mut checked = 0;
    for path in corpus_files() {
        let (frames, _) = read_file(&path);
        let Some(linktype) = frames.first().map(|f| f.linktype) else {
            continue;
        };
        // A classic nanosecond pcap of the damaged copies (frames of the file's first link type).
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // time zone, accuracy
        out.extend_from_slice(&0x0004_0000u32.to_le_bytes()); // snaplen
        out.extend_from_slice(&linktype.to_le_bytes());
        let mut n = 0u64;
        for f in frames.iter().filter(|f| f.linktype == linktype) {
            for _ in 0..3 {
                let mut data = f.data.clone();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(data.len().min(96));
                    if let Some(b) = data.get_mut(at) {
                        *b = rng.below(256) as u8;
                    }
                }
                if rng.below(4) == 0 {
                    data.truncate(rng.below(data.len() + 1));
                }
                let secs = (f.ts_ns / 1_000_000_000) as u32;
                let nanos = (f.ts_ns % 1_000_000_000) as u32;
                for v in [
                    secs,
                    nanos,
                    data.len() as u32,
                    f.orig_len.max(data.len() as u32),
                ] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&data);
                n += 1;
            }
        }
        let damaged = dir.path().join("damaged.pcap");
        std::fs::write(&damaged, &out).expect("write damaged capture");
        // Every TCP element (JSON), the default template (IPFIX), and every plugin (both).
        let mut plugins: Vec<&str> = Vec::new();
        for s in qof::plugins::REGISTRY {
            plugins.extend(["--plugin", s.kind.name()]);
        }
        let json_plugins: Vec<&str> = plugins
            .iter()
            .copied()
            .chain(["--format", "json"])
            .collect();
        let runs: [&[&str]; 4] = [
            &[
                "--yaml",
                every_tcp.to_str().expect("utf-8"),
                "--format",
                "json",
            ],
            &[],
            &plugins,
            &json_plugins,
        ];
        for extra in runs {
            let records = dir.path().join("records");
            let out = Command::new(env!("CARGO_BIN_EXE_qof"))
                .arg("--in")
                .arg(&damaged)
                .arg("--out")
                .arg(&records)
                .args(extra)
                .stdin(Stdio::null())
                .output()
                .expect("run qof");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && !stderr.contains("panicked"),
                "{} {extra:?}: {stderr}",
                path.display()
            );
            assert!(
                stderr.contains(&format!("qof: {n} packets read")),
                "{} {extra:?}: every frame read: {stderr}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 10, "only {checked} captures checked");
}

/// `frame_ready` promises that the next frame needs no more input: over every corpus capture,
/// read through a small buffer, no frame promised so waits for a read, and the promise is
/// given for most frames (it is what lets the meter's look-ahead hold packets back).
#[test]
fn frame_ready_means_the_next_frame_needs_no_read() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    /// Counts the reads made of it.
    struct Counted(std::io::Cursor<Vec<u8>>, Arc<AtomicUsize>);
    impl std::io::Read for Counted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.read(buf)
        }
    }
    let (mut promised, mut frames) = (0u64, 0u64);
    for path in corpus_files() {
        let bytes = std::fs::read(&path).expect("read corpus file");
        let reads = Arc::new(AtomicUsize::new(0));
        let Ok(mut src) = capture::from_reader_with_buffer(
            Counted(std::io::Cursor::new(bytes), Arc::clone(&reads)),
            16 * 1024,
        ) else {
            continue;
        };
        loop {
            let ready = src.frame_ready();
            let before = reads.load(Ordering::Relaxed);
            match src.next_frame() {
                Ok(Some(_)) => {
                    frames += 1;
                    if ready {
                        promised += 1;
                        assert_eq!(
                            reads.load(Ordering::Relaxed),
                            before,
                            "{}: frame {frames} promised ready needed a read",
                            path.display()
                        );
                    }
                }
                _ => break,
            }
        }
    }
    eprintln!("{promised} of {frames} frames promised ready");
    assert!(
        promised * 10 > frames * 9,
        "only {promised} of {frames} frames were promised ready"
    );
}
