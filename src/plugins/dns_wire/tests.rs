use super::*;
use crate::plugins::testdata::{self, hex};

/// Every entry's name, type and (for records) RDATA text, until the first error.
fn dump(msg: &[u8]) -> (Vec<String>, Option<Error>) {
    let m = Message::new_checked(msg).unwrap();
    let mut lines = Vec::new();
    for e in m.entries() {
        match e {
            Ok(Entry::Question(q)) => lines.push(format!("? {} {}", q.name.to_text(), q.qtype)),
            Ok(Entry::Record(r)) => {
                let mut s = format!(
                    "{:?} {} {} {} ",
                    r.section,
                    r.name.to_text(),
                    r.rtype,
                    r.ttl
                );
                match r.rdata() {
                    Ok(d) => d.write_text(&mut s),
                    Err(e) => s.push_str(&format!("{e:?}")),
                }
                lines.push(s);
            }
            Err(e) => return (lines, Some(e)),
        }
    }
    (lines, None)
}

/// A message with the header `id`, `flags` and counts, then `body`.
fn message(counts: [u16; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80];
    for c in counts {
        m.extend_from_slice(&c.to_be_bytes());
    }
    m.extend_from_slice(body);
    m
}

#[test]
fn header_fields() {
    let bytes = hex(testdata::RESPONSE_3A);
    let m = Message::new_checked(&bytes).unwrap();
    assert_eq!(m.id(), 0x4943);
    assert!(m.is_response());
    assert_eq!((m.opcode(), m.rcode()), (0, 0));
    assert_eq!(
        (m.qdcount(), m.ancount(), m.nscount(), m.arcount()),
        (1, 3, 0, 1)
    );
    let bytes = hex(testdata::QUERY_A);
    let q = Message::new_checked(&bytes).unwrap();
    assert!(!q.is_response());
    // An NXDOMAIN, opcode UPDATE.
    let m = hex("abcd2b03000000000000 0000");
    let m = Message::new_checked(&m).unwrap();
    assert_eq!((m.opcode(), m.rcode()), (5, 3));
}

#[test]
fn zero_length_and_short_payloads_are_not_messages() {
    for n in 0..HEADER_LEN {
        assert_eq!(
            Message::new_checked(&vec![0; n]).err(),
            Some(Error::Truncated)
        );
    }
    let m = Message::new_checked(&[0; HEADER_LEN]).unwrap();
    assert_eq!(m.entries().count(), 0);
}

#[test]
fn real_responses_read_as_tshark_shows_them() {
    let (lines, err) = dump(&hex(testdata::RESPONSE_3A));
    assert_eq!(err, None);
    assert_eq!(
        lines,
        [
            "? kernel.org 1",
            "Answer kernel.org 1 360 199.204.44.194",
            "Answer kernel.org 1 360 198.145.20.140",
            "Answer kernel.org 1 360 149.20.4.69",
            "Additional . 41 0 \\# 0",
        ]
    );
    let (lines, _) = dump(&hex(testdata::RESPONSE_PTR));
    assert_eq!(
        lines[1],
        "Answer 230.144.113.195.in-addr.arpa 12 21599 www.cesnet.cz"
    );
    let (lines, _) = dump(&hex(testdata::RESPONSE_AAAA));
    assert_eq!(lines[1], "Answer google.com 28 32 2a00:1450:400d:806::200e");
    let (lines, _) = dump(&hex(testdata::RESPONSE_MX));
    assert_eq!(
        lines[1],
        "Answer google.com 15 599 20 alt1.aspmx.l.google.com"
    );
    assert_eq!(lines[5], "Answer google.com 15 599 10 aspmx.l.google.com");
    let (lines, _) = dump(&hex(testdata::RESPONSE_TXT));
    assert_eq!(
        lines[1],
        "Answer youtube.com 16 3042 \"v=spf1 include:google.com mx -all\""
    );
    let (lines, _) = dump(&hex(testdata::RESPONSE_RRSIG));
    // (tshark: expiration Nov 4 2019 05:27:50, inception Oct 14 2019 12:28:34, signature
    // 02b74def...)
    assert!(
        lines[2].starts_with(
            "Answer example.com 46 86400 1 8 2 86400 1572845270 1571056114 56575 example.com ArdN77gYX/z0mmVRDJmFxZQ5faRmWcKd2K"
        ),
        "{}",
        lines[2]
    );
    let (lines, err) = dump(&hex(testdata::MDNS_RESPONSE));
    assert_eq!(err, None);
    assert_eq!(
        lines[2],
        "Answer black-pearl [b8:27:eb:c7:e9:c9]._workstation._tcp.local 33 120 0 0 9 black-pearl.local"
    );
    assert_eq!(
        lines[0],
        "Answer black-pearl [b8:27:eb:c7:e9:c9]._workstation._tcp.local 16 4500 \"\""
    );
    assert_eq!(
        lines[3],
        "Answer black-pearl.local 28 120 fe80::ba27:ebff:fec7:e9c9"
    );
    let (lines, _) = dump(&hex(testdata::MDNS_PROBE_HINFO));
    assert_eq!(
        lines[2],
        "Authority black-pearl.local 13 120 \"ARMV6L\" \"LINUX\""
    );
}

#[test]
fn rdata_of_every_type_has_its_zone_file_form() {
    // Each record: owner = root, then type, class IN, TTL 7, RDLENGTH, RDATA. A name in
    // RDATA may point back to "ex.com" at offset 12.
    let cases: &[(u16, &str, &str)] = &[
        (rtype::NS, "02657803636f6d00", "ex.com"),
        (rtype::CNAME, "c00c", "ex.com"),
        (rtype::DNAME, "03777777c00c", "www.ex.com"),
        (
            rtype::SOA,
            "c00c c00c 00000001 00000002 00000003 00000004 00000005",
            "ex.com ex.com 1 2 3 4 5",
        ),
        (rtype::MX, "000a 00", "10 ."),
        (rtype::SRV, "0001 0002 0035 c00c", "1 2 53 ex.com"),
        (
            rtype::TXT,
            "03612262 00 025c2e 01ff",
            "\"a\\\"b\" \"\" \"\\\\.\" \"\\255\"",
        ),
        (rtype::HINFO, "0178 0179", "\"x\" \"y\""),
        (rtype::MINFO, "c00c 00", "ex.com ."),
        (rtype::DS, "ec45 05 01 2bb183af", "60485 5 1 2bb183af"),
        (rtype::DNSKEY, "0101 03 08 4d616e", "257 3 8 TWFu"),
        (rtype::DNSKEY, "0101 03 08 4d61", "257 3 8 TWE="),
        (rtype::DNSKEY, "0101 03 08 4d", "257 3 8 TQ=="),
        (99, "00", "\"\""),
        (999, "0a000001", "\\# 4 0a000001"),
        (999, "", "\\# 0"),
    ];
    for &(ty, rdata, text) in cases {
        let rdata = hex(rdata);
        let mut body = hex("02657803636f6d00 0001 0001");
        body.push(0);
        body.extend_from_slice(&ty.to_be_bytes());
        body.extend_from_slice(&hex("0001 00000007"));
        body.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        body.extend_from_slice(&rdata);
        let (lines, err) = dump(&message([1, 1, 0, 0], &body));
        assert_eq!(err, None, "{ty}");
        assert_eq!(lines[1], format!("Answer . {ty} 7 {text}"), "{ty}");
    }
    // Content that does not fit RDLENGTH.
    for (ty, rdata) in [
        (rtype::A, "0a0000"),
        (rtype::AAAA, "0a000001"),
        (rtype::MX, "000a"),
        (rtype::NS, "0361"),
        (rtype::SOA, "00 00 00000001"),
        (rtype::HINFO, "0178"),
        (rtype::SRV, "0001"),
        (rtype::RRSIG, "0001"),
        (rtype::DS, "00"),
    ] {
        let rdata = hex(rdata);
        let mut body = vec![0];
        body.extend_from_slice(&ty.to_be_bytes());
        body.extend_from_slice(&hex("0001 00000007"));
        body.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        body.extend_from_slice(&rdata);
        let (lines, err) = dump(&message([0, 1, 0, 0], &body));
        assert_eq!(err, None);
        assert!(lines[0].ends_with("BadRdata"), "{ty}: {lines:?}");
    }
}

#[test]
fn names_are_escaped_so_the_text_says_which_octets_were_sent() {
    // Labels: "a.b", "c\\d", 0xff 0x00, "ü" (UTF-8), a tab.
    let body = hex("03612e62 03635c64 02ff00 02c3bc 0109 00 0001 0001");
    let (lines, err) = dump(&message([1, 0, 0, 0], &body));
    assert_eq!(err, None);
    assert_eq!(lines[0], "? a\\.b.c\\\\d.\\255\\000.ü.\\009 1");
    let m = message([1, 0, 0, 0], &hex("0141 02636f00 0001 0001"));
    let m = Message::new_checked(&m).unwrap();
    let (name, end) = m.name_at(HEADER_LEN).unwrap();
    assert_eq!(end, HEADER_LEN + 6);
    assert_eq!(name.to_text(), "A.co");
}

#[test]
fn compression_loops_and_wild_pointers_end_the_name() {
    // A pointer to itself.
    let m = message([1, 0, 0, 0], &hex("c00c 0001 0001"));
    assert_eq!(dump(&m).1, Some(Error::PointerLoop));
    // Two pointers to each other, behind a label.
    let m = message([1, 0, 0, 0], &hex("0161 c00e c00c"));
    assert_eq!(dump(&m).1, Some(Error::PointerLoop));
    // A pointer past the end, and one to the very last octet (a label length with nothing).
    let m = message([1, 0, 0, 0], &hex("c0ff"));
    assert_eq!(dump(&m).1, Some(Error::PointerOutOfRange));
    let m = message([1, 0, 0, 0], &hex("c00e 05"));
    assert_eq!(dump(&m).1, Some(Error::Truncated));
    // Label types 01 and 10 (extended, obsolete bit labels).
    for b in ["41", "81"] {
        let m = message([1, 0, 0, 0], &hex(&format!("{b}00 0001 0001")));
        assert_eq!(dump(&m).1, Some(Error::BadLabel));
    }
    // A chain of MAX_JUMPS pointers resolves; one more is a loop.
    for (jumps, ok) in [(MAX_JUMPS, true), (MAX_JUMPS + 1, false)] {
        let mut body = hex("00");
        for i in 0..jumps - 1 {
            // Each pointer aims at the one before (the first at the root label at 12).
            let at = if i == 0 { 12 } else { 13 + 2 * (i - 1) };
            body.extend_from_slice(&(0xc000u16 | at as u16).to_be_bytes());
        }
        let q = body.len() + 12;
        body.extend_from_slice(&(0xc000u16 | (q - 2) as u16).to_be_bytes());
        let m = message([0, 0, 0, 0], &body);
        let m = Message::new_checked(&m).unwrap();
        let r = m.name_at(q);
        assert_eq!(r.is_ok(), ok, "{jumps}: {r:?}");
        if let Ok((n, end)) = r {
            assert!(n.is_root());
            assert_eq!(end, q + 2);
        }
    }
}

#[test]
fn names_longer_than_255_octets_are_refused() {
    // Four labels of 63: 4 * 64 + 1 = 257 octets. Three and one of 61: 255.
    let mut long = Vec::new();
    for _ in 0..4 {
        long.push(63);
        long.extend_from_slice(&[b'x'; 63]);
    }
    long.push(0);
    let m = message([0, 0, 0, 0], &long);
    let m = Message::new_checked(&m).unwrap();
    assert_eq!(m.name_at(12).err(), Some(Error::NameTooLong));
    let mut ok = Vec::new();
    for len in [63u8, 63, 63, 61] {
        ok.push(len);
        ok.extend(vec![b'y'; usize::from(len)]);
    }
    ok.push(0);
    assert_eq!(ok.len(), 255);
    let m = message([0, 0, 0, 0], &ok);
    let m = Message::new_checked(&m).unwrap();
    assert_eq!(m.name_at(12).unwrap().0.labels().count(), 4);
    // A label of 64 or more is no length at all.
    let m = message([1, 0, 0, 0], &[64]);
    assert_eq!(dump(&m).1, Some(Error::BadLabel));
}

#[test]
fn a_message_cut_anywhere_reads_up_to_the_cut() {
    for msg in testdata::all().iter().filter(|m| m.len() > 40) {
        let (whole, _) = dump(msg);
        for cut in HEADER_LEN..msg.len() {
            let m = Message::new_checked(&msg[..cut]).unwrap();
            let mut n = 0;
            for e in m.entries() {
                match e {
                    Ok(_) => n += 1,
                    Err(e) => assert!(
                        matches!(e, Error::Truncated | Error::PointerOutOfRange),
                        "{e:?}"
                    ),
                }
            }
            assert!(n <= whole.len());
        }
    }
}

#[test]
fn a_65535_octet_message_reads_to_its_end() {
    // One question, then as many A records as fit, each named by a pointer to the question.
    let mut body = hex("07 6578616d706c65 03636f6d 00 0001 0001");
    let rr = hex("c00c 0001 0001 0000003c 0004 c0000201");
    // (Room for the padding record's 11 octets of header.)
    let n = (65_535 - 12 - body.len() - 11) / rr.len();
    for _ in 0..n {
        body.extend_from_slice(&rr);
    }
    // Pad to 65,535 with one unknown record.
    let pad = 65_535 - 12 - body.len() - 11;
    body.extend_from_slice(&hex("00 ffff 0001 00000000"));
    body.extend_from_slice(&(pad as u16).to_be_bytes());
    body.resize(body.len() + pad, 0xab);
    let m = message([1, n as u16 + 1, 0, 0], &body);
    assert_eq!(m.len(), 65_535);
    let msg = Message::new_checked(&m).unwrap();
    let mut entries = msg.entries();
    let records = entries.by_ref().filter(|e| e.is_ok()).count();
    assert_eq!(records, n + 2);
    assert_eq!(entries.offset(), 65_535);
    // A pointer reaches at most 16,383: names far into a big message still resolve.
    let far = 0x3ff0;
    let mut big = m.clone();
    big[far..far + 4].copy_from_slice(&hex("01 7a c00c"));
    let mut tail = big.clone();
    tail.extend_from_slice(&(0xc000u16 | far as u16).to_be_bytes());
    let tail_msg = Message::new_checked(&tail).unwrap();
    assert_eq!(
        tail_msg.name_at(65_535).unwrap().0.to_text(),
        "z.example.com"
    );
}

#[test]
fn reverse_names_decode_to_addresses() {
    let name = |text: &str| {
        let mut body = Vec::new();
        for l in text.split('.') {
            body.push(l.len() as u8);
            body.extend_from_slice(l.as_bytes());
        }
        body.push(0);
        message([0, 0, 0, 0], &body)
    };
    let cases = [
        ("230.144.113.195.in-addr.arpa", Some("195.113.144.230")),
        ("4.4.8.8.IN-ADDR.ARPA", Some("8.8.4.4")),
        ("4.8.8.in-addr.arpa", None),
        ("256.4.8.8.in-addr.arpa", None),
        ("04.4.8.8.in-addr.arpa", None),
        ("0.4.8.8.in-addr.arpa", Some("8.8.4.0")),
        (
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            Some("2001:db8::567:89ab"),
        ),
        (
            "9.C.9.E.7.C.E.F.F.F.B.E.7.2.A.B.0.0.0.0.0.0.0.0.0.0.0.0.0.8.E.F.ip6.arpa",
            Some("fe80::ba27:ebff:fec7:e9c9"),
        ),
        (
            "a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            None,
        ),
        (
            "g.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            None,
        ),
        ("www.example.com", None),
    ];
    for (text, want) in cases {
        let m = name(text);
        let msg = Message::new_checked(&m).unwrap();
        let (n, _) = msg.name_at(12).unwrap();
        let got = reverse_address(&n).map(|a| a.to_string());
        assert_eq!(got.as_deref(), want, "{text}");
    }
}

#[test]
fn tcp_framing_finds_messages_across_segments() {
    let a = hex(testdata::QUERY_A);
    let b = hex(testdata::RESPONSE_3A);
    let mut stream = Vec::new();
    for m in [&a, &b] {
        stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
        stream.extend_from_slice(m);
    }
    assert_eq!(framed(&stream, 0), Framed::Complete(&a, 2 + a.len()));
    let next = 2 + a.len();
    assert_eq!(framed(&stream, next), Framed::Complete(&b, stream.len()));
    assert_eq!(framed(&stream, stream.len()), Framed::NeedLength);
    assert_eq!(framed(&stream[..next + 1], next), Framed::NeedLength);
    assert_eq!(
        framed(&stream[..next + 10], next),
        Framed::Partial {
            len: b.len(),
            have: &b[..8]
        }
    );
    assert_eq!(framed(&[0, 0], 0), Framed::Complete(&[], 2));
}

#[test]
fn thousands_of_damaged_real_messages_never_panic() {
    let damaged = testdata::mutations(&testdata::all(), 400);
    assert!(damaged.len() > 5_000);
    let mut entries = 0usize;
    let mut text = String::new();
    for m in &damaged {
        let Ok(msg) = Message::new_checked(m) else {
            continue;
        };
        for e in msg.entries() {
            let Ok(e) = e else { break };
            entries += 1;
            text.clear();
            match e {
                Entry::Question(q) => q.name.write_text(&mut text),
                Entry::Record(r) => {
                    r.name.write_text(&mut text);
                    if let Ok(d) = r.rdata() {
                        d.write_text(&mut text);
                    }
                    let _ = reverse_address(&r.name);
                }
            }
            assert!(std::str::from_utf8(text.as_bytes()).is_ok());
        }
        let _ = framed(m, 0);
    }
    assert!(entries > 10_000, "{entries}");
}

/// The escaping of [`write_escaped`] done one character at a time, as RFC 1035 §5.1 reads:
/// what copying runs of plain octets whole must still write.
fn escaped_one_by_one(bytes: &[u8], special: Option<u8>) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (ok, tail) = rest.split_at(e.valid_up_to());
                (std::str::from_utf8(ok).unwrap(), tail)
            }
        };
        for c in valid.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii() && special == Some(c as u8) => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\{b:03}"));
                    }
                }
                c => out.push(c),
            }
        }
        let Some((&b, tail)) = bad.split_first() else {
            break;
        };
        out.push_str(&format!("\\{b:03}"));
        rest = tail;
    }
    out
}

#[test]
fn escaping_copies_plain_runs_as_one_by_one_escaping_writes_them() {
    let long = [&b"0123456789abcdef"[..]; 5].concat();
    let long_then_escape = [&long[..], b"\\", &long[..], b"."].concat();
    let cases: [&[u8]; 14] = [
        &long,
        &long_then_escape,
        b"",
        b"www",
        b"a.b\\c\"d e",
        b"\x00\x1f\x7f\x20~",
        "ü€😀".as_bytes(),
        // U+0080 and U+009F are control characters too.
        b"x\xc2\x80y\xc2\x9fz",
        // Cut and invalid sequences, in the middle and at the end.
        b"\xe2\x82A\xe2\x82",
        b"\xf0\x9f\x98",
        b"\xff\xfe\xc0\xaf\xed\xa0\x80",
        b"ab\x80cd\xbf",
        b"tail\xc3",
        b"\xc3\xbc.\xc3",
    ];
    for b in cases {
        for special in [None, Some(b'.'), Some(b'"')] {
            let mut s = String::from("prefix:");
            write_escaped(b, &mut s, special);
            assert_eq!(
                s,
                format!("prefix:{}", escaped_one_by_one(b, special)),
                "{b:?}"
            );
        }
    }
    // Every octet, alone and after a plain run.
    for x in 0..=255u8 {
        for b in [
            vec![x],
            vec![b'a', x, b'z'],
            [&long[..20], &[x], &long[..3]].concat(),
        ] {
            let mut s = String::new();
            write_escaped(&b, &mut s, Some(b'.'));
            assert_eq!(s, escaped_one_by_one(&b, Some(b'.')), "{b:?}");
        }
    }
}

#[test]
fn hex_is_two_lower_case_digits_an_octet() {
    let mut s = String::new();
    write_hex(&[0x00, 0x0f, 0xa0, 0xff], &mut s);
    assert_eq!(s, "000fa0ff");
}
