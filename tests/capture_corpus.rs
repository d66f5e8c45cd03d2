//! The capture readers against tshark, on every public corpus file and on hand-built files.
//!
//! tshark (Wireshark's wiretap) is the oracle: frame count, frame.len, frame.cap_len,
//! frame.time_epoch and the link type must agree frame by frame, and a file tshark refuses or finds
//! cut short must end in an error here too. Derived inputs (gzip copies, truncated copies, files
//! fed through standard input, tiny read buffers) must give exactly the frames of the original.
//!
//! Needs /usr/bin/tshark; fails loudly without it unless QOF_SKIP_EXTERNAL=1.

use qof::capture::{self, CaptureError, CaptureErrorKind, PacketSource};
use std::path::{Path, PathBuf};
use std::process::Command;

const CORPUS: &str = "/work/shared/corpus/public";

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

#[allow(dead_code)]
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
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 4, "unexpected tshark line {line:?}");
            TsharkFrame {
                len: f[0].parse().expect("frame.len"),
                cap_len: f[1].parse().expect("frame.cap_len"),
                ts_ns: parse_epoch(f[2]),
                wtap_encap: f[3].parse().expect("frame.encap_type"),
            }
        })
        .collect();
    let complaint = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("Running as user"))
        .collect::<Vec<_>>()
        .join(" ");
    (frames, (!complaint.trim().is_empty()).then_some(complaint))
}

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

/// Compares our reading of `path` with tshark's; returns the disagreements.
fn compare_with_tshark(path: &Path) -> Vec<String> {
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
            ts_ns: a.ts_ns,
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
            if cut_short != truncated {
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
        let p = compare_with_tshark(&path);
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
    for live in ["int:eth0", "pcapint:eth0", "dag:/dev/dag0"] {
        let e = capture::open(live).err().expect("live capture is refused");
        assert!(
            matches!(e.kind, CaptureErrorKind::Unsupported(_)),
            "{live}: {e}"
        );
        assert!(
            e.to_string().contains("live capture is not supported"),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
    }
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
