//! Captures written from literal messages: what the corpus lacks (SMTP, RTSP, SIP, SSDP)
//! and HTTP cases it does not have (heads over segments, out of order, interim responses).

use etherparse::PacketBuilder;
use std::path::Path;

type Endpoint = ([u8; 4], u16);

/// IPv4 packets (LINKTYPE_RAW), one millisecond apart.
#[derive(Default)]
pub struct Capture {
    packets: Vec<Vec<u8>>,
}

impl Capture {
    fn udp(&mut self, from: Endpoint, to: Endpoint, data: &[u8]) {
        let b = PacketBuilder::ipv4(from.0, to.0, 64).udp(from.1, to.1);
        let mut p = Vec::with_capacity(b.size(data.len()));
        b.write(&mut p, data).unwrap();
        self.packets.push(p);
    }

    /// A TCP connection's handshake; the connection then sends with [`Tcp`].
    fn tcp(&mut self, client: Endpoint, server: Endpoint) -> Tcp<'_> {
        let mut t = Tcp {
            cap: self,
            ends: [client, server],
            next: [1_000, 500_000],
        };
        t.raw(false, 999, Flags::Syn, b"");
        t.raw(true, 499_999, Flags::SynAck, b"");
        t.raw(false, 1_000, Flags::Ack, b"");
        t
    }

    pub fn write(&self, path: &Path) {
        let mut f = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 101] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for (i, p) in self.packets.iter().enumerate() {
            let (s, us) = (1_700_000_000 + i as u32 / 1000, (i as u32 % 1000) * 1000);
            for v in [s, us, p.len() as u32, p.len() as u32] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend_from_slice(p);
        }
        std::fs::write(path, f).unwrap();
    }
}

#[derive(Clone, Copy)]
enum Flags {
    Syn,
    SynAck,
    Ack,
    PshAck,
    FinAck,
}

struct Tcp<'a> {
    cap: &'a mut Capture,
    /// Client, server.
    ends: [Endpoint; 2],
    next: [u32; 2],
}

impl Tcp<'_> {
    fn raw(&mut self, server: bool, seq: u32, flags: Flags, data: &[u8]) -> &mut Self {
        let (from, to) = (
            self.ends[usize::from(server)],
            self.ends[usize::from(!server)],
        );
        let b = PacketBuilder::ipv4(from.0, to.0, 64).tcp(from.1, to.1, seq, 65_535);
        let ack = self.next[usize::from(!server)];
        let b = match flags {
            Flags::Syn => b.syn(),
            Flags::SynAck => b.syn().ack(ack),
            Flags::Ack => b.ack(ack),
            Flags::PshAck => b.psh().ack(ack),
            Flags::FinAck => b.fin().ack(ack),
        };
        let mut p = Vec::with_capacity(b.size(data.len()));
        b.write(&mut p, data).unwrap();
        self.cap.packets.push(p);
        self
    }

    fn send(&mut self, server: bool, data: &[u8]) -> &mut Self {
        let i = usize::from(server);
        self.raw(server, self.next[i], Flags::PshAck, data);
        self.next[i] = self.next[i].wrapping_add(data.len() as u32);
        self
    }

    /// `data` in segments of at most `mss` octets.
    fn send_in(&mut self, server: bool, data: &[u8], mss: usize) -> &mut Self {
        for chunk in data.chunks(mss) {
            self.send(server, chunk);
        }
        self
    }

    fn close(&mut self) {
        let [c, s] = self.next;
        self.raw(false, c, Flags::FinAck, b"");
        self.next[0] += 1;
        self.raw(true, s, Flags::FinAck, b"");
        self.next[1] += 1;
        self.raw(false, c + 1, Flags::Ack, b"");
    }
}

const CLIENT: [u8; 4] = [192, 0, 2, 10];
const SERVER: [u8; 4] = [198, 51, 100, 20];

pub fn http_capture() -> Capture {
    let mut cap = Capture::default();
    let req = |path: &str, extra: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: Mozilla/5.0 (X11; \
             Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\n\
             Referer: http://www.example.org/start\r\n{extra}\r\n"
        )
        .into_bytes()
    };
    let resp = |status: &str, body: usize| {
        format!(
            "HTTP/1.1 {status}\r\nServer: Apache/2.4.62 (Debian)\r\nContent-Type: text/html; \
             charset=UTF-8\r\nSet-Cookie: PHPSESSID=abc; path=/\r\nSet-Cookie: theme=dark\r\n\
             Content-Length: {body}\r\n\r\n{}",
            "b".repeat(body)
        )
        .into_bytes()
    };
    // Connections of one exchange each, the response setting cookies.
    for n in 0..4u16 {
        let mut t = cap.tcp((CLIENT, 40_100 + n), (SERVER, 80));
        t.send(false, &req(&format!("/login/{n}"), ""));
        let a = format!(
            "HTTP/1.1 302 Found\r\nLocation: /home\r\nSet-Cookie: session{n}=x; HttpOnly\r\n\
Set-Cookie: csrftoken=y{n}; Path=/\r\nset-cookie: lang=en\r\nContent-Length: 0\r\n\r\n"
        );
        t.send(true, a.as_bytes());
        t.close();
    }
    // Keep-alive: three exchanges, heads over several segments.
    let mut t = cap.tcp((CLIENT, 40_001), (SERVER, 80));
    for (path, status, mss) in [("/a", "200 OK", 40), ("/b?x=1", "404 Not Found", 300)] {
        t.send_in(false, &req(path, ""), mss);
        t.send_in(true, &resp(status, 3000), 1448);
    }
    t.send(false, &req("/c", "Cookie: PHPSESSID=abc\r\n"));
    t.send_in(true, &resp("304 Not Modified", 0), 64);
    t.close();
    // Out of order and retransmitted segments; field names in other cases.
    let mut t = cap.tcp((CLIENT, 40_002), (SERVER, 8080));
    let q = b"POST /form HTTP/1.1\r\nhost: api.example.net:8080\r\nuser-agent: curl/8.5.0\r\n\
content-type: application/x-www-form-urlencoded\r\ncontent-length: 7\r\n\r\na=1&b=2";
    let s = t.next[0];
    t.raw(false, s + 30, Flags::PshAck, &q[30..]);
    t.raw(false, s, Flags::PshAck, &q[..30]);
    t.next[0] = s + q.len() as u32;
    t.send(
        true,
        b"HTTP/1.1 201 Created\r\nserver: gunicorn\r\ncontent-type: application/json\r\n\
content-length: 2\r\n\r\n{}",
    );
    t.raw(false, s, Flags::PshAck, &q[..30]);
    t.close();
    // An interim response, then the final one.
    let mut t = cap.tcp((CLIENT, 40_003), (SERVER, 80));
    t.send(
        false,
        b"PUT /upload/file.bin HTTP/1.1\r\nHost: files.example.com\r\nUser-Agent: uploader/2\r\n\
Expect: 100-continue\r\nContent-Length: 10\r\n\r\n",
    );
    t.send(true, b"HTTP/1.1 100 Continue\r\n\r\n");
    t.send(false, b"0123456789");
    t.send(
        true,
        b"HTTP/1.1 204 No Content\r\nServer: nginx/1.26.1\r\nContent-Length: 0\r\n\r\n",
    );
    t.close();
    cap
}

pub fn rtsp_capture() -> Capture {
    let mut cap = Capture::default();
    let agents = [
        "LibVLC/3.0.20 (LIVE555 Streaming Media v2016.11.28)",
        "Lavf58.76.100",
        "GStreamer/1.22.0",
    ];
    for (n, agent) in agents.iter().enumerate() {
        let mut t = cap.tcp((CLIENT, 40_010 + n as u16), (SERVER, 554));
        let url = format!("rtsp://media.example.com:554/live/stream{n}");
        let sdp = "v=0\r\no=- 0 0 IN IP4 198.51.100.20\r\ns=live\r\nm=video 0 RTP/AVP 96\r\n";
        for (i, (method, target, reply, body)) in [
            ("OPTIONS", url.clone(), "RTSP/1.0 200 OK\r\nPublic: DESCRIBE, SETUP, PLAY\r\n", ""),
            (
                "DESCRIBE",
                url.clone(),
                "RTSP/1.0 200 OK\r\nContent-Type: application/sdp\r\nServer: GStreamer RTSP server\r\n",
                sdp,
            ),
            (
                "SETUP",
                format!("{url}/trackID=1"),
                "RTSP/1.0 200 OK\r\nSession: 12345678\r\nTransport: RTP/AVP;unicast\r\n",
                "",
            ),
            ("PLAY", url.clone(), "RTSP/1.0 200 OK\r\nSession: 12345678\r\n", ""),
            (
                "GET_PARAMETER",
                url.clone(),
                "RTSP/1.0 200 OK\r\nContent-Type: text/parameters\r\n",
                "position: 42\r\n",
            ),
            ("TEARDOWN", url.clone(), "RTSP/1.0 454 Session Not Found\r\n", ""),
        ]
        .into_iter()
        .enumerate()
        {
            let cseq = i + 1;
            let q = format!("{method} {target} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: {agent}\r\n\r\n");
            let a = format!("{reply}CSeq: {cseq}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            t.send_in(false, q.as_bytes(), 50 + 20 * n);
            t.send_in(true, a.as_bytes(), 70 + 20 * n);
        }
        t.close();
    }
    cap
}

pub fn sip_capture() -> Capture {
    let mut cap = Capture::default();
    let (alice, bob) = ((CLIENT, 5060), (SERVER, 5060));
    let msg = |line: &str, cseq: &str, extra: &str| {
        format!(
            "{line}\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\nCall-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: {cseq}\r\nUser-Agent: Linphone/5.2.5 (belle-sip/5.2.0)\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    let invite = "INVITE sip:bob@biloxi.example.com SIP/2.0";
    // Calls between several pairs of agents, each message its record.
    for n in 0..8u8 {
        let (alice, bob) = if n == 0 {
            (alice, bob)
        } else {
            (([192, 0, 2, 50 + n], 5060), ([198, 51, 100, 50 + n], 5060))
        };
        let msg = |line: &str, cseq: &str| {
            let m = String::from_utf8(msg(line, cseq, "")).unwrap();
            m.replace("a84b4c76e66710", &format!("a84b4c76e6671{n}"))
                .replace("Linphone/5.2.5", &format!("Linphone/5.2.{n}"))
                .into_bytes()
        };
        cap.udp(alice, bob, &msg(invite, "314159 INVITE"));
        for status in ["100 Trying", "180 Ringing", "200 OK"] {
            cap.udp(
                bob,
                alice,
                &msg(&format!("SIP/2.0 {status}"), "314159 INVITE"),
            );
        }
        cap.udp(
            alice,
            bob,
            &msg("ACK sip:bob@192.0.2.4 SIP/2.0", "314159 ACK"),
        );
        cap.udp(
            alice,
            bob,
            &msg("BYE sip:bob@192.0.2.4 SIP/2.0", "314160 BYE"),
        );
        cap.udp(bob, alice, &msg("SIP/2.0 200 OK", "314160 BYE"));
    }
    // Registration with a challenge, compact forms, folding, two Via values in one field.
    let (phone, registrar) = (([192, 0, 2, 11], 5062), ([198, 51, 100, 21], 5060));
    let reg = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:registrar.example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.11:5062;branch=z9hG4bKnashds7, SIP/2.0/UDP 10.0.0.1:5060\r\n\
f: <sip:carol@example.com>;tag=456248\r\nt: <sip:carol@example.com>\r\n\
i: 843817637684230@998sdasdh09\r\nCSeq: {cseq} REGISTER\r\nUser-Agent: Grandstream\r\n GXP2170 1.0.11\r\n\
{auth}Expires: 7200\r\nl: 0\r\n\r\n"
        )
        .into_bytes()
    };
    cap.udp(phone, registrar, &reg(1, ""));
    cap.udp(
        registrar,
        phone,
        b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 192.0.2.11:5062;branch=z9hG4bKnashds7\r\n\
From: <sip:carol@example.com>;tag=456248\r\nTo: <sip:carol@example.com>;tag=2493k59kd\r\n\
Call-ID: 843817637684230@998sdasdh09\r\nCSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"example.com\", nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\"\r\n\
Content-Length: 0\r\n\r\n",
    );
    cap.udp(
        phone,
        registrar,
        &reg(2, "Authorization: Digest username=\"carol\"\r\n"),
    );
    cap.udp(
        registrar,
        phone,
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.11:5062;branch=z9hG4bKnashds8\r\n\
From: <sip:carol@example.com>;tag=456248\r\nTo: <sip:carol@example.com>;tag=2493k59kd\r\n\
Call-ID: 843817637684230@998sdasdh09\r\nCSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n",
    );
    // Methods ipfixprobe does not read.
    for (i, method) in ["OPTIONS", "MESSAGE", "SUBSCRIBE", "NOTIFY", "INFO", "PRACK"]
        .iter()
        .enumerate()
    {
        let line = format!("{method} sip:svc@198.51.100.22 SIP/2.0");
        let (client, server) = (
            ([192, 0, 2, 12], 5070 + i as u16),
            ([198, 51, 100, 22], 5060),
        );
        cap.udp(client, server, &msg(&line, &format!("1 {method}"), ""));
        let status = [
            "200 OK",
            "202 Accepted",
            "489 Bad Event",
            "481 Call Does Not Exist",
            "415 Unsupported Media Type",
            "405 Method Not Allowed",
        ][i];
        cap.udp(
            server,
            client,
            &msg(&format!("SIP/2.0 {status}"), &format!("1 {method}"), ""),
        );
    }
    // Over TCP, the INVITE in several segments.
    let mut t = cap.tcp(([192, 0, 2, 13], 40_020), ([198, 51, 100, 23], 5060));
    let sdp = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.13\r\ns=-\r\nc=IN IP4 192.0.2.13\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n";
    let mut inv = msg(
        "INVITE sips:bob@biloxi.example.com SIP/2.0",
        "1 INVITE",
        "Content-Type: application/sdp\r\n",
    );
    let at = inv
        .windows(16)
        .position(|w| w == b"Content-Length: ")
        .unwrap();
    inv.truncate(at);
    inv.extend_from_slice(format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()).as_bytes());
    t.send_in(false, &inv, 120);
    t.send(true, &msg("SIP/2.0 180 Ringing", "1 INVITE", ""));
    t.send(true, &msg("SIP/2.0 486 Busy Here", "1 INVITE", ""));
    t.close();
    cap
}

pub fn smtp_capture() -> Capture {
    let mut cap = Capture::default();
    // RFC 5321 D.1, the message's lines looking like commands.
    let mut t = cap.tcp((CLIENT, 40_030), (SERVER, 25));
    t.send(true, b"220 foo.com Simple Mail Transfer Service Ready\r\n");
    t.send(false, b"EHLO bar.com\r\n");
    t.send(
        true,
        b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250 HELP\r\n",
    );
    t.send(false, b"MAIL FROM:<Smith@bar.com>\r\n")
        .send(true, b"250 OK\r\n");
    t.send(false, b"RCPT TO:<Jones@foo.com>\r\n")
        .send(true, b"250 OK\r\n");
    t.send(false, b"RCPT TO:<Green@foo.com>\r\n");
    t.send(true, b"550 No such user here\r\n");
    t.send(false, b"DATA\r\n")
        .send(true, b"354 Start mail input; end with <CRLF>.<CRLF>\r\n");
    t.send(
        false,
        b"Subject: test\r\n\r\nMAIL FROM:<not@a.command>\r\nRCPT TO:<x@y>\r\n",
    );
    t.send(false, b"bye\r\n.\r\n").send(true, b"250 OK\r\n");
    t.send(false, b"QUIT\r\n").send(
        true,
        b"221 foo.com Service closing transmission channel\r\n",
    );
    t.close();
    // Pipelining (RFC 2920), lines cut between segments, parameters.
    let mut t = cap.tcp((CLIENT, 40_031), (SERVER, 25));
    t.send(true, b"220 mx.example.net ESMTP Postfix\r\n");
    t.send(false, b"EHLO client.example.org\r\n");
    t.send(
        true,
        b"250-mx.example.net\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n",
    );
    // (Commands cut between segments are in the unit tests: tshark 4.0 takes what follows
    // a reassembled line in its segment for whole lines, and a cut pipelined RCPT for two.)
    t.send(
        false,
        b"MAIL FROM:<alerts@client.example.org> SIZE=1024 BODY=8BITMIME\r\n\
RCPT TO:<ops@example.net> NOTIFY=FAILURE\r\nRCPT TO:<oncall@example.net>\r\nDATA\r\n",
    );
    t.send(true, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n450 4.2.0 <oncall@example.net>: Recipient address rejected: Greylisted\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    t.send(false, b"From: a\r\n\r\nhello\r\n.\r\n");
    t.send(true, b"554 5.7.1 Message rejected as spam\r\n");
    t.send(false, b"RSET\r\n").send(true, b"250 2.0.0 Ok\r\n");
    t.send(false, b"NOOP\r\n").send(true, b"250 2.0.0 Ok\r\n");
    t.send(false, b"quit\r\n").send(true, b"221 2.0.0 Bye\r\n");
    t.close();
    // STARTTLS: nothing after it is read by either.
    let mut t = cap.tcp((CLIENT, 40_032), (SERVER, 25));
    t.send(true, b"220 smtp.example.com ESMTP\r\n");
    t.send(false, b"HELO laptop\r\n")
        .send(true, b"250 smtp.example.com\r\n");
    t.send(false, b"STARTTLS\r\n")
        .send(true, b"220 2.0.0 Ready to start TLS\r\n");
    t.send(false, b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00");
    t.send(true, b"\x16\x03\x03\x00\x05\x02\x00\x00\x01\x00");
    t.close();
    // A bounce (null sender), VRFY, EXPN, HELP.
    let mut t = cap.tcp((CLIENT, 40_033), (SERVER, 25));
    t.send(true, b"220 relay.example.com\r\n");
    t.send(false, b"HELO [192.0.2.10]\r\n")
        .send(true, b"250 relay.example.com\r\n");
    t.send(false, b"VRFY postmaster\r\n")
        .send(true, b"252 2.0.0 Cannot VRFY user\r\n");
    t.send(false, b"EXPN staff\r\n")
        .send(true, b"502 5.5.1 Command not implemented\r\n");
    t.send(false, b"HELP\r\n")
        .send(true, b"214 2.0.0 See RFC 5321\r\n");
    t.send(false, b"MAIL FROM:<>\r\n").send(true, b"250 OK\r\n");
    t.send(false, b"RCPT TO:<Postmaster>\r\n")
        .send(true, b"251 User not local\r\n");
    t.send(false, b"QUIT\r\n").send(true, b"221 Bye\r\n");
    t.close();
    // Sessions from other clients, a line over two segments in each.
    for (n, (domain, from, to)) in [
        (
            "mail.example.com",
            "newsletter@example.com",
            "reader@example.org",
        ),
        (
            "smtp-out.example.net",
            "billing@example.net",
            "customer@example.com",
        ),
        (
            "host.example.edu",
            "prof@example.edu",
            "student@example.edu",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut t = cap.tcp((CLIENT, 40_034 + n as u16), (SERVER, 25));
        t.send(true, b"220 mx ESMTP\r\n");
        t.send_in(false, format!("EHLO {domain}\r\n").as_bytes(), 9);
        t.send(true, b"250-mx\r\n250 8BITMIME\r\n");
        t.send_in(false, format!("MAIL FROM:<{from}>\r\n").as_bytes(), 15);
        t.send(true, b"250 2.1.0 Ok\r\n");
        t.send(false, format!("RCPT TO:<{to}>\r\n").as_bytes());
        t.send(true, b"250 2.1.5 Ok\r\n");
        t.send(false, b"DATA\r\n").send(true, b"354 Go ahead\r\n");
        t.send(false, b"Subject: hi\r\n\r\nHELO there\r\n.\r\n");
        t.send(true, b"250 2.0.0 Ok: queued\r\n");
        t.send(false, b"QUIT\r\n").send(true, b"221 2.0.0 Bye\r\n");
        t.close();
    }
    cap
}

pub fn ssdp_capture() -> Capture {
    let mut cap = Capture::default();
    let group = ([239, 255, 255, 250], 1900);
    let devices = [
        (
            "Linux/3.14.0 UPnP/1.0 IpBridge/1.26.0",
            "http://192.0.2.30:80/description.xml",
        ),
        (
            "Linux/4.9 UPnP/1.0 Sonos/70.3-35220",
            "http://192.0.2.33:1400/xml/device_description.xml",
        ),
        (
            "Microsoft-Windows/10.0 UPnP/1.0 UPnP-Device-Host/1.0",
            "http://[fe80::1]:2869/upnphost/udhisapi.dll",
        ),
        (
            "Linux, UPnP/1.0, Private SDK",
            "https://192.0.2.35/rootDesc.xml",
        ),
        ("RTOS/1.0 UPnP/1.0 Printer/2.1", "http://192.0.2.36:8080/"),
    ];
    for (n, (server, location)) in devices.iter().enumerate() {
        let device = ([192, 0, 2, 30 + n as u8], 1900);
        for nt in [
            "upnp:rootdevice".to_string(),
            format!("uuid:2f402f80-da50-11e1-9b23-00178825{n:04}"),
            "urn:schemas-upnp-org:device:basic:1".to_string(),
            format!("urn:schemas-upnp-org:service:Service{n}:1"),
            "urn:schemas-upnp-org:device:basic:1".to_string(),
        ] {
            let m = format!(
                "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=100\r\n\
LOCATION: {location}\r\nSERVER: {server}\r\nNTS: ssdp:alive\r\nNT: {nt}\r\nUSN: uuid:2f402f80::{nt}\r\n\r\n"
            );
            cap.udp(device, group, m.as_bytes());
        }
    }
    let agents = [
        "Google Chrome/120.0.6099.129 Linux",
        "Windows/10.0 UPnP/1.1 Xbox/2.0",
        "Android/14 UPnP/1.1 Netflix/8.100",
        "iOS/17.2 UPnP/1.1 Spotify/8.9",
        "Linux/6.1 UPnP/1.1 VLC/3.0.20",
    ];
    for (n, agent) in agents.iter().enumerate() {
        let searcher = ([192, 0, 2, 40 + n as u8], 50_000 + n as u16);
        for st in [
            "urn:dial-multiscreen-org:service:dial:1".to_string(),
            "ssdp:all".to_string(),
            format!("urn:schemas-upnp-org:device:MediaRenderer:{n}"),
        ] {
            let m = format!(
                "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\
MX: 1\r\nST: {st}\r\nUSER-AGENT: {agent}\r\n\r\n"
            );
            cap.udp(searcher, group, m.as_bytes());
        }
        // A device answers, from port 1900 to the searcher's port.
        let m = format!(
            "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n\
LOCATION: http://192.0.2.31:{}/ssdp/device-desc.xml\r\n\
SERVER: Linux/3.8.13+, UPnP/1.0, Portable SDK for UPnP devices/1.6.{n}\r\n\
ST: urn:dial-multiscreen-org:service:dial:1\r\nUSN: uuid:3e1cc7c0::urn:dial-multiscreen-org:service:dial:1\r\n\r\n",
            8008 + n
        );
        cap.udp(([192, 0, 2, 31], 1900), searcher, m.as_bytes());
    }
    cap
}
