use super::*;
use crate::plugins::text_harness::*;

const GREETING: &[u8] = b"220 foo.com Simple Mail Transfer Service Ready\r\n";
const EHLO_REPLY: &[u8] = b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n\
250-DSN\r\n250 HELP\r\n";

/// RFC 5321 Appendix D.1, with a body whose lines look like commands.
fn session() -> Conv {
    let mut c = Conv::tcp(PORT);
    c.send(true, GREETING);
    c.send(false, b"EHLO bar.com\r\n").send(true, EHLO_REPLY);
    c.send(false, b"MAIL FROM:<Smith@bar.com>\r\n")
        .send(true, b"250 OK\r\n");
    c.send(false, b"RCPT TO:<Jones@foo.com>\r\n")
        .send(true, b"250 OK\r\n");
    c.send(false, b"RCPT TO:<Green@foo.com>\r\n");
    c.send(true, b"550 No such user here\r\n");
    c.send(false, b"RCPT TO:<Brown@foo.com>\r\n")
        .send(true, b"250 OK\r\n");
    c.send(false, b"DATA\r\n");
    c.send(true, b"354 Start mail input; end with <CRLF>.<CRLF>\r\n");
    c.send(
        false,
        b"Blah blah blah...\r\nMAIL FROM:<not@a.command>\r\nXYZZY\r\n",
    );
    c.send(false, b"...etc. etc. etc.\r\n.\r\n");
    c.send(true, b"250 OK\r\n");
    c.send(false, b"QUIT\r\n").send(
        true,
        b"221 foo.com Service closing transmission channel\r\n",
    );
    c
}

fn bits(codes: &[u16]) -> u64 {
    codes
        .iter()
        .map(|c| 1u64 << CODES.iter().position(|x| x == c).unwrap())
        .sum()
}

#[test]
fn a_session_gives_its_commands_replies_and_first_addresses() {
    let r = run("smtp", &session().packets);
    assert_eq!(r.len(), 1);
    let c = command::EHLO | command::MAIL | command::RCPT | command::DATA | command::QUIT;
    assert_eq!(get(&r[0], "SMTPCommands"), c.to_string());
    assert_eq!(get(&r[0], "SMTPMailCount"), "1");
    assert_eq!(get(&r[0], "SMTPRcptCount"), "3");
    assert_eq!(
        get(&r[0], "SMTPStatusCodes"),
        bits(&[220, 250, 550, 354, 221]).to_string()
    );
    // 220, the EHLO reply (five lines, one reply), 250 x 4, 221; 354; 550.
    assert_eq!(get(&r[0], "SMTPCode2XXCount"), "7");
    assert_eq!(get(&r[0], "SMTPCode3XXCount"), "1");
    assert_eq!(get(&r[0], "SMTPCode4XXCount"), "0");
    assert_eq!(get(&r[0], "SMTPCode5XXCount"), "1");
    assert_eq!(get(&r[0], "SMTPDomain"), "bar.com");
    assert_eq!(get(&r[0], "SMTPSender"), "Smith@bar.com");
    assert_eq!(get(&r[0], "SMTPRecipient"), "Jones@foo.com");
}

#[test]
fn lines_over_segments_pipelining_and_retransmissions_are_read_once() {
    let mut c = Conv::tcp(PORT);
    c.send(true, GREETING);
    c.send_in(false, b"ehlo client.example\r\nmail from: <a@b.example> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<c@d.example> NOTIFY=NEVER\r\nDATA\r\n", 7);
    let s = c.next[1];
    c.send(true, b"250 hi\r\n250 ok\r\n25");
    c.send(true, b"0 ok\r\n354 go\r\n");
    // The server's segment again.
    c.raw(true, s, PSH_ACK, b"250 hi\r\n250 ok\r\n25");
    c.send(false, b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    let r = run("smtp", &c.packets);
    let want = command::EHLO | command::MAIL | command::RCPT | command::DATA | command::QUIT;
    assert_eq!(get(&r[0], "SMTPCommands"), want.to_string());
    assert_eq!(get(&r[0], "SMTPCode2XXCount"), "4");
    assert_eq!(get(&r[0], "SMTPDomain"), "client.example");
    assert_eq!(get(&r[0], "SMTPSender"), "a@b.example");
    assert_eq!(get(&r[0], "SMTPRecipient"), "c@d.example");
}

#[test]
fn starttls_ends_the_reading_and_sasl_and_bdat_are_not_commands() {
    let mut c = Conv::tcp(PORT);
    c.send(true, GREETING)
        .send(false, b"EHLO x\r\n")
        .send(true, b"250 STARTTLS\r\n");
    c.send(false, b"STARTTLS\r\n")
        .send(true, b"220 Go ahead\r\n");
    c.send(
        false,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\nMAIL x\r\n",
    );
    c.send(true, b"\x16\x03\x03\x00\x5d\x02\r\n550 x\r\n");
    let r = run("smtp", &c.packets);
    assert_eq!(get(&r[0], "SMTPCommands"), command::EHLO.to_string());
    assert_eq!(get(&r[0], "SMTPStatusCodes"), bits(&[220, 250]).to_string());
    let s = parse(
        b"AUTH LOGIN\r\ndXNlcm5hbWU=\r\ncGFzc3dvcmQ=\r\nBDAT 12 LAST\r\nRCPT TO:<x>\r\nQUIT\r\n",
        b"220 hi\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n221 bye\r\n",
    );
    assert_eq!(s.commands, command::QUIT, "{s:?}");
    assert_eq!(s.rcpts, 0, "the BDAT chunk is not read");
}

#[test]
fn addresses_are_read_in_every_form() {
    for (arg, want) in [
        (&b"FROM:<a@b>"[..], Some("a@b")),
        (b"FROM:<>", Some("")),
        (b"from: <a@b> SIZE=1", Some("a@b")),
        (b"FROM:a@b SIZE=1", Some("a@b")),
        (b"FROM : <a@b>", Some("a@b")),
        (b"FROM:<@relay1,@relay2:user@host>", Some("user@host")),
        (b"FROM:<unterminated", Some("unterminated")),
        (b"TO:<a@b>", None),
        (b"FROM", None),
        (b"", None),
    ] {
        assert_eq!(
            address(arg, b"FROM").as_deref(),
            want,
            "{:?}",
            String::from_utf8_lossy(arg)
        );
    }
    assert_eq!(
        address(b" TO:<Postmaster>", b"TO").as_deref(),
        Some("Postmaster")
    );
}

#[test]
fn spam_unknown_codes_and_unknown_commands_have_their_bits() {
    let s = parse(
        b"HELO x\r\nFOO bar\r\nrset\r\nXCLIENT NAME=x\r\n",
        b"220 x\r\n550-5.7.1 Message\r\n550 5.7.1 rejected as SPAM\r\n599 odd\r\n421 bye\r\n",
    );
    assert_eq!(s.commands, command::HELO | command::UNKNOWN | command::RSET);
    assert_eq!(s.codes, bits(&[220, 550, 421]) as u32 | SPAM | OTHER_CODE);
    assert_eq!(s.classes, [1, 0, 1, 2]);
}

#[test]
fn other_flows_and_empty_ones_are_not_smtp() {
    let mut c = Conv::tcp(587);
    c.send(true, GREETING);
    assert_eq!(run("smtp", &c.packets), [None]);
    let mut c = Conv::tcp(PORT);
    c.send(false, b"").send(true, b"");
    assert_eq!(run("smtp", &c.packets), [None]);
}

#[test]
fn values_are_bounded_and_a_full_record_fits_a_udp_message() {
    let long = "ñ".repeat(300);
    let mut c = Conv::tcp(PORT);
    c.send(false, format!("EHLO {long}\r\n").as_bytes());
    c.send(
        false,
        format!("MAIL FROM:<{long}>\r\nRCPT TO:<{long}>\r\n").as_bytes(),
    );
    let recs = records(&["smtp"], &c.packets);
    let v = values("smtp", &recs[0]).unwrap();
    for name in ["SMTPDomain", "SMTPSender", "SMTPRecipient"] {
        assert!(
            v[name].len() <= MAX_STRING && v[name].len() + 2 > MAX_STRING,
            "{name}"
        );
    }
    let len = message_len(&["smtp"], &recs[0]);
    assert!(len + 400 <= UDP_MESSAGE, "{len}");
}

#[test]
fn junk_long_lines_and_damaged_sessions_are_read_safely() {
    let mut long = b"EHLO ".to_vec();
    long.extend(std::iter::repeat_n(b'h', 65_536));
    long.extend_from_slice(b"\r\nMAIL FROM:<a@b>\r\n");
    let s = parse(&long, b"");
    assert_eq!(s.domain.unwrap().len(), MAX_STRING);
    assert_eq!(s.sender.as_deref(), Some("a@b"));
    let s = parse(b"no line end at all", b"250 no line end");
    assert!(!s.smtp);
    let client = session();
    let (cl, sv): (Vec<u8>, Vec<u8>) =
        client
            .packets
            .iter()
            .fold((Vec::new(), Vec::new()), |(mut c, mut s), (_, p, d)| {
                if p.key.dst_port == PORT {
                    c.extend_from_slice(d);
                } else {
                    s.extend_from_slice(d);
                }
                (c, s)
            });
    let mut rng = Rng(0x5eed_0004);
    for _ in 0..6_000 {
        let s = parse(&mutate(&mut rng, &cl), &mutate(&mut rng, &sv));
        for v in [&s.domain, &s.sender, &s.recipient].into_iter().flatten() {
            assert!(v.len() <= MAX_STRING);
        }
    }
    for _ in 0..200 {
        let mut c = Conv::tcp(PORT);
        c.send_in(false, &mutate(&mut rng, &cl), 1 + rng.below(50));
        c.send_in(true, &mutate(&mut rng, &sv), 1 + rng.below(50));
        for r in run("smtp", &c.packets).iter().flatten() {
            assert!(r.values().all(|v| v.len() <= MAX_STRING));
        }
    }
}
