use super::*;

const HTTP: Syntax = Syntax {
    version: b"HTTP/",
    methods: &[b"GET", b"POST"],
};
const SIP: Syntax = Syntax {
    version: b"SIP/",
    methods: &[],
};

use Kind::{Request, Response};
use Start::{Maybe, Message, Not};

#[test]
fn start_lines_are_told_apart() {
    for (buf, want) in [
        (&b"GET / HTTP/1.1\r\n"[..], Message(Request)),
        (b"GET /very/long/and/not/finished", Message(Request)),
        (b"GET ", Message(Request)),
        (b"PROPFIND /a HTTP/1.1\r\n", Message(Request)),
        (b"PROPFIND /a HTTP/1", Message(Request)),
        (b"PROPFIND /a HTT", Maybe),
        (b"PROPFIND /a", Maybe),
        (b"GE", Maybe),
        (b"", Maybe),
        (b"HTT", Maybe),
        (b"HTTP/", Maybe),
        (b"HTTP/1.1 200 OK\r\n", Message(Response)),
        (b"HTTP/x", Not),
        // A SIP request is not an HTTP one, even with a method HTTP knows.
        (b"GET sip:a@b SIP/2.0\r\n", Not),
        (b"GET / SIP/2.0", Not),
        // HTTP/0.9, an empty target, two spaces, junk in the target, lower-case version.
        (b"GET /\r\n", Not),
        (b"GET  / HTTP/1.1\r\n", Not),
        (b"GET /a\x00b HTTP/1.1\r\n", Not),
        (b"GET / http/1.1\r\n", Not),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Not),
        (b" GET / HTTP/1.1", Not),
        (&[b'A'; 40][..], Not),
        (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1", Not),
    ] {
        assert_eq!(
            classify(buf, &HTTP),
            want,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
    assert_eq!(
        classify(b"INVITE sip:bob@b SIP/2.0\r\n", &SIP),
        Message(Request)
    );
    assert_eq!(classify(b"INVITE sip:bob@b", &SIP), Maybe);
    assert_eq!(classify(b"SIP/2.0 180 Ringing", &SIP), Message(Response));
    assert_eq!(classify(b"OPTIONS * HTTP/1.1\r\n", &SIP), Not);
}

#[test]
fn heads_give_their_fields_without_regard_to_case_or_spacing() {
    let msg = b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nuser-agent:curl/8\r\n\
X-Folded: one\r\n  two\r\n\tthree\r\nno colon here\r\nbad name: x\r\nReferer :  r \r\n\r\nbody";
    let h = head(msg, &HTTP).unwrap();
    assert_eq!(h.kind, Request);
    assert!(h.complete);
    assert_eq!(&msg[h.len..], b"body");
    assert_eq!(h.method(), Some(&b"GET"[..]));
    assert_eq!(h.target(), Some(&b"/a?b=1"[..]));
    assert_eq!(h.status(), None);
    assert_eq!(h.value(b"HOST"), Some(&b"example.com"[..]));
    assert_eq!(h.value(b"User-Agent"), Some(&b"curl/8"[..]));
    assert_eq!(h.value(b"referer"), Some(&b"r"[..]));
    assert_eq!(h.value(b"bad name"), None);
    assert_eq!(text(h.value(b"x-folded").unwrap(), 100), "one two three");
    let names: Vec<&[u8]> = h.fields().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [&b"Host"[..], b"user-agent", b"X-Folded", b"Referer"]
    );
    // Bare LF line ends.
    let h = head(b"HTTP/1.0 404 Not Found\nServer: x\n\n", &HTTP).unwrap();
    assert_eq!(
        (h.kind, h.status(), h.complete),
        (Response, Some(404), true)
    );
    assert_eq!(h.value(b"server"), Some(&b"x"[..]));
    assert_eq!(h.parts()[2], b"Not Found");
}

#[test]
fn cut_heads_keep_their_whole_lines() {
    let msg = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/ht";
    let h = head(msg, &HTTP).unwrap();
    assert!(!h.complete);
    assert_eq!(h.len, 32);
    assert_eq!(h.value(b"server"), Some(&b"nginx"[..]));
    assert_eq!(h.value(b"content-type"), None, "a cut line is not read");
    // No line end at all: the start line is what there is.
    let h = head(b"GET /only-this", &HTTP).unwrap();
    assert_eq!(
        (h.line, h.complete, h.fields().count()),
        (&b"GET /only-this"[..], false, 0)
    );
    assert_eq!(h.target(), Some(&b"/only-this"[..]));
    // Odd status lines.
    for (line, status) in [
        (&b"HTTP/1.1 20 OK\r\n\r\n"[..], None),
        (b"HTTP/1.1 2000 OK\r\n\r\n", None),
        (b"HTTP/1.1\r\n\r\n", None),
        (b"HTTP/1.1 999\r\n\r\n", Some(999)),
    ] {
        assert_eq!(head(line, &HTTP).unwrap().status(), status);
    }
    assert!(head(b"", &HTTP).is_none());
    assert!(head(b"\x00\x01", &HTTP).is_none());
}

#[test]
fn a_64_kib_field_line_is_read_in_one_pass() {
    let mut msg = b"GET / HTTP/1.1\r\nCookie: ".to_vec();
    msg.extend(std::iter::repeat_n(b'c', 65_536));
    msg.extend_from_slice(b"\r\nHost: h\r\n\r\n");
    let h = head(&msg, &HTTP).unwrap();
    assert!(h.complete);
    assert_eq!(h.value(b"host"), Some(&b"h"[..]));
    assert_eq!(text(h.value(b"cookie").unwrap(), 300).len(), 300);
    // The same line never finished.
    let h = head(&msg[..40_000], &HTTP).unwrap();
    assert!(!h.complete);
    assert_eq!(h.fields().count(), 0);
}

#[test]
fn text_values_are_bounded_utf8() {
    assert_eq!(text(b"a\r\n b", 10), "a b");
    assert_eq!(
        text(b"a\x00b\x1b\x7fc\td", 20),
        "a\u{fffd}b\u{fffd}\u{fffd}c\td"
    );
    assert_eq!(text(b"caf\xc3\xa9 \xff", 20), "caf\u{e9} \u{fffd}");
    // Cut at a character boundary: é is two octets.
    assert_eq!(text("aé".as_bytes(), 2), "a");
    assert_eq!(text("aéb".as_bytes(), 3), "aé");
    assert_eq!(text(&[0xff; 100], 10), "\u{fffd}\u{fffd}\u{fffd}");
    assert_eq!(text(&[b'x'; 5000], 255).len(), 255);
    assert_eq!(text(b"", 5), "");
    assert_eq!(text(b"\r\n", 5), "");
}

#[test]
fn lists_keep_whole_values_within_their_bound() {
    let mut l = List::default();
    for v in ["a", "bb", "a", "", "ccc", "dddd"] {
        l.add_distinct(v, 9);
    }
    assert_eq!(l.as_str(), "a;bb;ccc");
    // A value with a ';' of its own is one value.
    let mut l = List::default();
    for v in ["x;y", "x", "y", "x;y", "x"] {
        l.add_distinct(v, 100);
    }
    assert_eq!(l.as_str(), "x;y;x;y");
    let mut l = List::default();
    for v in ["v", "v", "w"] {
        l.add(v, 4);
    }
    assert_eq!(l.as_str(), "v;v");
}

fn lines_of(a: &mut LineAssembler, seq: u32, data: &[u8]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    a.push(seq, data, |l, cut| {
        out.push((String::from_utf8_lossy(l).into_owned(), cut));
        Next::Line
    });
    out
}

#[test]
fn lines_are_assembled_across_segments_in_sequence_order() {
    let mut a = LineAssembler::default();
    assert!(lines_of(&mut a, 100, b"EHLO exa").is_empty());
    assert_eq!(
        lines_of(&mut a, 108, b"mple.org\r\nMAIL FROM:<a@b>\r\nRC"),
        [
            ("EHLO example.org".into(), false),
            ("MAIL FROM:<a@b>".into(), false)
        ]
    );
    // A retransmission of what was read, and one that carries new octets too.
    assert!(lines_of(&mut a, 108, b"mple.org\r\n").is_empty());
    assert_eq!(
        lines_of(&mut a, 135, b"RCPT TO:<c@d>\r\n"),
        [("RCPT TO:<c@d>".into(), false)]
    );
    // A gap: the line it cuts is dropped, the next one read.
    assert_eq!(
        lines_of(&mut a, 200, b"lost line\r\nQUIT\r\n"),
        [("QUIT".into(), false)]
    );
    // Sequence numbers wrap.
    let mut a = LineAssembler::default();
    assert!(lines_of(&mut a, u32::MAX - 1, b"NO").is_empty());
    assert_eq!(lines_of(&mut a, 0, b"OP\n"), [("NOOP".into(), false)]);
}

#[test]
fn long_lines_are_cut_and_binary_data_skipped() {
    let mut a = LineAssembler::default();
    let long = vec![b'x'; 3 * MAX_LINE];
    let mut seq = 0u32;
    for chunk in long.chunks(500) {
        assert!(lines_of(&mut a, seq, chunk).is_empty());
        seq += chunk.len() as u32;
    }
    let got = lines_of(&mut a, seq, b"y\r\nok\r\n");
    assert_eq!(got[0].0.len(), MAX_LINE);
    assert!(got[0].1);
    assert_eq!(got[1], ("ok".into(), false));
    assert!(a.carry.capacity() <= 2 * MAX_LINE);
    // A line whole in one segment and longer than the bound.
    let mut b = LineAssembler::default();
    let mut one = vec![b'z'; 70_000];
    one.extend_from_slice(b"\r\n");
    let got = lines_of(&mut b, 0, &one);
    assert_eq!((got[0].0.len(), got[0].1), (MAX_LINE, true));
    // Skip and stop.
    let mut c = LineAssembler::default();
    let mut seen = Vec::new();
    c.push(
        0,
        b"BDAT 5\r\n\x00\n\r\x01\nNEXT\r\nSTARTTLS\r\nnot read\r\n",
        |l, _| {
            seen.push(l.to_vec());
            match l {
                b"BDAT 5" => Next::Skip(5),
                b"STARTTLS" => Next::Stop,
                _ => Next::Line,
            }
        },
    );
    assert_eq!(
        seen,
        [b"BDAT 5".to_vec(), b"NEXT".to_vec(), b"STARTTLS".to_vec()]
    );
    c.push(100, b"more\r\n", |_, _| panic!("stopped"));
}

/// Thousands of damaged copies of real heads, and their lines cut into segments: every part
/// within its input, every value and line within its bound.
#[test]
fn damaged_heads_and_lines_are_read_safely() {
    use crate::plugins::text_harness::{mutate, Rng};
    let samples: [&[u8]; 3] = [
        b"GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: x/1\r\n\
Cookie: a=b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nServer: s\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        b"INVITE sip:bob@b SIP/2.0\r\nv: SIP/2.0/UDP a\r\nf: <sip:a@a>\r\n\r\n",
    ];
    let mut rng = Rng(0x5eed_0000);
    for i in 0..8_000 {
        let m = mutate(&mut rng, samples[i % 3]);
        let syntax = if i % 3 == 2 { &SIP } else { &HTTP };
        if let Some(h) = head(&m, syntax) {
            assert!(h.len <= m.len() && h.line.len() <= m.len());
            let _ = (h.method(), h.target(), h.status());
            for (name, value) in h.fields() {
                assert!(!name.is_empty() && name.len() + value.len() < m.len());
                assert!(text(value, 64).len() <= 64);
            }
        }
        let mut a = LineAssembler::default();
        let mut seq = rng.next() as u32;
        for seg in m.chunks(1 + rng.below(40)) {
            // Now and then a segment lost, or sent twice.
            match rng.below(10) {
                0 => {}
                1 => {
                    let _ = lines_of(&mut a, seq, seg);
                    assert!(lines_of(&mut a, seq, seg).is_empty());
                }
                _ => a.push(seq, seg, |l, _| {
                    assert!(l.len() <= MAX_LINE);
                    Next::Line
                }),
            }
            seq = seq.wrapping_add(seg.len() as u32);
        }
        assert!(a.carry.capacity() <= 2 * (MAX_LINE + 1) + 64);
    }
}

#[test]
fn tchars_are_rfc_9110s() {
    for b in 0..=255u8 {
        let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(is_tchar(b), want, "{b:#04x}");
    }
}

#[test]
fn values_without_line_breaks_read_as_those_with_one() {
    // A value that ends in a line break goes through the octet-by-octet reading; without
    // one, a value with no control character is copied whole: the two must agree.
    let values: [&[u8]; 6] = [
        b"Mozilla/5.0 (X11; Linux x86_64)",
        "caf\u{e9} \u{20ac}uro \u{1f600}".as_bytes(),
        b"bad \xff\xfe utf-8 \xe2\x82",
        b"tab\there",
        b"",
        b"x",
    ];
    for v in values {
        let with_break = [v, b"\r\n"].concat();
        for max in 0..40 {
            assert_eq!(text(v, max), text(&with_break, max), "{v:?} {max}");
        }
    }
}

#[test]
fn first_values_are_values_of_each_name() {
    let msg = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nhost: b\r\nUser-Agent: u\r\n  v\r\n\r\n";
    let h = head(msg, &HTTP).unwrap();
    let names: [&[u8]; 4] = [b"host", b"user-agent", b"referer", b"x-a"];
    assert_eq!(h.first_values(names), names.map(|n| h.value(n)));
    assert_eq!(h.first_values(names)[0], Some(&b"a"[..]));
}

#[test]
fn a_version_need_not_start_with_a_tchar() {
    // (The first-octet test passes the version's own first octet, whatever it is.)
    const ODD: Syntax = Syntax {
        version: b"(X/",
        methods: &[],
    };
    assert_eq!(classify(b"(X/2 200 OK\r\n", &ODD), Message(Response));
    assert_eq!(classify(b"(", &ODD), Maybe);
    assert_eq!(classify(b")", &ODD), Not);
    assert_eq!(classify(b"\x16\x03\x01", &HTTP), Not);
}
