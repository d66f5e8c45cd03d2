use super::*;
use crate::plugins::text_harness::*;

fn notify(nt: &str, location: &str) -> Vec<u8> {
    format!(
        "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=100\r\n\
LOCATION: {location}\r\nNT: {nt}\r\nNTS: ssdp:alive\r\n\
SERVER: Linux/3.14.0 UPnP/1.0 IpBridge/1.26.0\r\nUSN: uuid:2f402f80-da50-11e1-9b23::{nt}\r\n\r\n"
    )
    .into_bytes()
}

const SEARCH: &[u8] = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\
MAN: \"ssdp:discover\"\r\nMX: 2\r\nST: urn:dial-multiscreen-org:service:dial:1\r\n\
USER-AGENT: Google Chrome/120.0 Windows\r\n\r\n";

#[test]
fn notifications_give_types_location_port_and_server() {
    let mut c = Conv::udp(PORT, PORT);
    let loc = "http://192.168.1.2:80/description.xml";
    c.send(false, &notify("upnp:rootdevice", loc));
    c.send(false, &notify("urn:schemas-upnp-org:device:basic:1", loc));
    c.send(false, &notify("uuid:2f402f80-da50-11e1-9b23", loc));
    c.send(false, &notify("urn:schemas-upnp-org:device:basic:1", loc));
    c.send(
        false,
        &notify(
            "urn:schemas-upnp-org:service:Dimming:1",
            "http://[fe80::1]:49152/x",
        ),
    );
    let r = run("ssdp", &c.packets);
    assert_eq!(r.len(), 1);
    assert_eq!(get(&r[0], "SSDPLocationPort"), "49152");
    assert_eq!(
        get(&r[0], "SSDPNT"),
        "schemas-upnp-org:device:basic:1;schemas-upnp-org:service:Dimming:1"
    );
    assert_eq!(
        get(&r[0], "SSDPServer"),
        "Linux/3.14.0 UPnP/1.0 IpBridge/1.26.0"
    );
    assert_eq!(get(&r[0], "SSDPUserAgent"), "");
    assert_eq!(get(&r[0], "SSDPST"), "");
}

#[test]
fn searches_and_answers_give_search_types_and_agents() {
    let mut c = Conv::udp(50_000, PORT);
    c.send(false, SEARCH);
    // Field names in any case (the version is case-sensitive, RFC 9112 §2.3).
    let lower = SEARCH
        .to_ascii_lowercase()
        .replace_all(b"m-search * http/", b"M-SEARCH * HTTP/");
    c.send(false, &lower);
    c.send(
        false,
        b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\nUSER-AGENT: other\r\n\r\n",
    );
    let r = run("ssdp", &c.packets);
    assert_eq!(get(&r[0], "SSDPST"), "dial-multiscreen-org:service:dial:1");
    assert_eq!(
        get(&r[0], "SSDPUserAgent"),
        "Google Chrome/120.0 Windows;google chrome/120.0 windows;other"
    );
    assert_eq!(get(&r[0], "SSDPServer"), "");
    // A device's answer, from port 1900 to the searcher's port.
    let mut a = Conv::udp(PORT, 50_000);
    a.send(
        false,
        b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n\
LOCATION: http://192.168.1.7:8008/ssdp/device-desc.xml\r\nSERVER: Linux/3.8.13, UPnP/1.0, Portable SDK for UPnP devices/1.6.18\r\n\
ST: urn:dial-multiscreen-org:service:dial:1\r\nUSN: uuid:x::urn:dial-multiscreen-org:service:dial:1\r\n\r\n",
    );
    let r = run("ssdp", &a.packets);
    assert_eq!(get(&r[0], "SSDPLocationPort"), "8008");
    assert_eq!(get(&r[0], "SSDPST"), "dial-multiscreen-org:service:dial:1");
    assert_eq!(
        get(&r[0], "SSDPServer"),
        "Linux/3.8.13, UPnP/1.0, Portable SDK for UPnP devices/1.6.18"
    );
}

trait ReplaceAll {
    fn replace_all(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceAll for Vec<u8> {
    fn replace_all(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.len() {
            if self[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(self[i]);
                i += 1;
            }
        }
        out
    }
}

#[test]
fn location_ports_are_read_from_urls() {
    for (url, port) in [
        (&b"http://192.168.1.2:80/d.xml"[..], Some(80)),
        (b"http://192.168.1.2/d.xml", Some(80)),
        (b"https://h.example/d", Some(443)),
        (b"HTTP://h.example:8080", Some(8080)),
        (b"http://[2001:db8::1]:1400/xml", Some(1400)),
        (b"http://[2001:db8::1]/xml", Some(80)),
        (b"http://user:pw@h:81/", Some(81)),
        (b"http://h:99999/", None),
        (b"http://h:/", None),
        (b"http://h:8a/", None),
        (b"ftp://h/", None),
        (b"not a url", None),
        (b"", None),
    ] {
        assert_eq!(url_port(url), port, "{}", String::from_utf8_lossy(url));
    }
}

#[test]
fn other_flows_and_messages_give_nothing() {
    let mut c = Conv::udp(40_000, 53);
    c.send(false, SEARCH);
    assert_eq!(run("ssdp", &c.packets), [None]);
    let mut c = Conv::udp(40_000, PORT);
    c.send(false, b"")
        .send(false, b"\x00\x01junk")
        .send(false, b"hello\r\n\r\n");
    assert_eq!(run("ssdp", &c.packets), [None]);
    let mut t = Conv::tcp(PORT);
    t.send(false, SEARCH);
    assert_eq!(run("ssdp", &t.packets), [None]);
}

#[test]
fn lists_are_bounded_and_a_full_record_fits_a_udp_message() {
    let mut c = Conv::udp(PORT, PORT);
    for i in 0..60 {
        let mut m = notify(
            &format!("urn:schemas-upnp-org:service:Service{i}:1"),
            "http://1.2.3.4:5/",
        );
        m = m.replace_all(b"IpBridge/1.26.0", format!("Server{i}").as_bytes());
        c.send(false, &m);
        c.send(
            false,
            format!("M-SEARCH * HTTP/1.1\r\nST: urn:x:{i}\r\nUSER-AGENT: agent {i}\r\n\r\n")
                .as_bytes(),
        );
    }
    let recs = records(&["ssdp"], &c.packets);
    let v = values("ssdp", &recs[0]).unwrap();
    for (name, max) in [
        ("SSDPNT", max::NT),
        ("SSDPST", max::ST),
        ("SSDPServer", max::SERVER),
        ("SSDPUserAgent", max::USER_AGENT),
    ] {
        assert!(
            v[name].len() <= max && v[name].len() + 50 > max,
            "{name}: {}",
            v[name]
        );
        assert!(!v[name].ends_with(';') && !v[name].contains('\r'));
    }
    let len = message_len(&["ssdp"], &recs[0]);
    assert!(len + 400 <= UDP_MESSAGE, "{len}");
}

#[test]
fn junk_and_damaged_messages_are_read_safely() {
    assert_eq!(parse([&b""[..]]), None);
    let f = parse([&b"NOTIFY * HTTP/1.1\r\nNT: urn:cut-here"[..]]).unwrap();
    assert_eq!(f, Fields::default(), "a cut line is not read");
    let mut big = b"NOTIFY * HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'q', 65_536));
    big.extend_from_slice(b"\r\nNT: urn:late\r\n\r\n");
    assert_eq!(parse([&big[..]]).unwrap().nt.as_str(), "");
    let n = notify("urn:a:b", "http://h:1/");
    let mut rng = Rng(0x5eed_0005);
    for i in 0..6_000 {
        let a = mutate(&mut rng, if i % 2 == 0 { &n } else { SEARCH });
        let b = mutate(&mut rng, SEARCH);
        if let Some(f) = parse([&a[..], &b[..]]) {
            assert!(f.nt.as_str().len() <= max::NT && f.st.as_str().len() <= max::ST);
            assert!(f.server.as_str().len() <= max::SERVER);
            assert!(f.user_agent.as_str().len() <= max::USER_AGENT);
        }
    }
}
