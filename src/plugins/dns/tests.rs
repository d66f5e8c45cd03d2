use super::*;
use crate::plugins::testdata::{self, exported, hex, json, tcp, udp, view};

fn sum(msg: &str) -> Summary {
    summarize(&hex(msg), true).expect("a DNS message")
}

#[test]
fn real_messages_summarize_as_tshark_dissects_them() {
    // tshark: dns.id 0x4943, 3 answers, A kernel.org IN, first TTL 360, EDNS 512.
    let s = sum(testdata::RESPONSE_3A);
    assert_eq!(
        s,
        Summary {
            id: 0x4943,
            rcode: 0,
            answers: 3,
            name: "kernel.org".into(),
            qtype: 1,
            qclass: 1,
            ttl: 360,
            rdlength: 4,
            rdata: "199.204.44.194".into(),
            psize: 512,
            dnssec_ok: false,
        }
    );
    let s = sum(testdata::QUERY_A);
    assert_eq!(
        (s.answers, s.psize, s.ttl, s.rdata.as_str()),
        (0, 4096, 0, "")
    );
    let s = sum(testdata::RESPONSE_PTR);
    assert_eq!(
        (s.name.as_str(), s.qtype, s.rdata.as_str(), s.rdlength),
        ("230.144.113.195.in-addr.arpa", 12, "www.cesnet.cz", 15)
    );
    let s = sum(testdata::RESPONSE_MX);
    assert_eq!(
        (s.rdata.as_str(), s.rdlength),
        ("20 alt1.aspmx.l.google.com", 17)
    );
    let s = sum(testdata::RESPONSE_TXT);
    assert_eq!(s.rdata, "\"v=spf1 include:google.com mx -all\"");
    assert_eq!(s.rdlength, 34, "the wire RDLENGTH, not the text's length");
    // EDNS 4096 with DO set.
    let s = sum(testdata::RESPONSE_RRSIG);
    assert_eq!(
        (s.psize, s.dnssec_ok, s.rcode, s.answers),
        (4096, true, 0, 2)
    );
    // An NXDOMAIN without questions.
    let s = summarize(&hex("abcd8183 0000 0000 0000 0000"), true).unwrap();
    assert_eq!((s.rcode, s.name.as_str(), s.qtype), (3, "", 0));
}

#[test]
fn what_is_not_dns_is_refused_and_a_cut_message_reads_to_the_cut() {
    assert_eq!(summarize(&[], true), None);
    assert_eq!(summarize(&[0; 11], false), None);
    // A first question that is no name, or that a whole message lacks.
    assert_eq!(
        summarize(&hex("0001 0100 0001 0000 0000 0000 4142"), true),
        None
    );
    assert_eq!(summarize(&hex("0001 0100 0001 0000 0000 0000"), true), None);
    // The same cut by the capture: its header is read.
    let s = summarize(&hex("0001 0100 0001 0000 0000 0000"), false).unwrap();
    assert_eq!((s.id, s.name.as_str()), (1, ""));
    // A response cut inside its second answer keeps the first.
    let full = hex(testdata::RESPONSE_3A);
    let s = summarize(&full[..50], false).unwrap();
    assert_eq!(
        (s.answers, s.rdata.as_str(), s.psize),
        (3, "199.204.44.194", 0)
    );
    // Malformed answers after a good question: the question is kept.
    let mut bad = full.clone();
    bad[28] = 0x41;
    let s = summarize(&bad, true).unwrap();
    assert_eq!((s.name.as_str(), s.ttl), ("kernel.org", 0));
}

#[test]
fn rdata_text_is_bounded() {
    // One TXT answer of 40 strings of 255 octets.
    let mut body = hex("00 0010 0001 0000003c");
    let rdata: Vec<u8> = (0..40)
        .flat_map(|_| std::iter::once(255).chain([b'a'; 255]))
        .collect();
    body.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    body.extend_from_slice(&rdata);
    let mut msg = hex("0001 8180 0000 0001 0000 0000");
    msg.extend_from_slice(&body);
    let s = summarize(&msg, true).unwrap();
    assert_eq!(s.rdata.len(), MAX_RDATA_TEXT);
    assert_eq!(usize::from(s.rdlength), rdata.len());
    let mut t = "aé".to_string();
    cut_text(&mut t, 2);
    assert_eq!(t, "a");
}

/// Feed `pkts` (packet, payload, stream, reverse) to one flow; the verdicts.
fn feed(
    plugin: &mut Dns,
    state: &mut Option<State>,
    pkts: &[(crate::decode::Packet, Vec<u8>, Vec<u8>, bool)],
) -> Vec<Verdict> {
    let mut out = Vec::new();
    for (pkt, payload, stream, rev) in pkts {
        let v = view(pkt, payload, stream, *rev);
        if state.is_none() {
            *state = plugin.attach(&v);
        }
        if let Some(s) = state.as_mut() {
            out.push(plugin.packet(s, &v));
        }
    }
    out
}

#[test]
fn each_udp_message_ends_its_record_with_every_element() {
    let mut p = Dns;
    let q = hex(testdata::QUERY_A);
    let mut state = None;
    let v = feed(
        &mut p,
        &mut state,
        &[(udp(40000, 53, q.len()), q, vec![], false)],
    );
    assert_eq!(v, [Verdict::EndAfter]);
    let ext = exported(&mut p, PluginKind::Dns, state.unwrap()).unwrap();
    assert_eq!(json(&ext, "DNSName"), "\"kernel.org\"");
    assert_eq!(json(&ext, "DNSTransactionID"), "18755");
    assert_eq!(json(&ext, "DNSPSize"), "4096");
    assert_eq!(json(&ext, "DNSRData"), "\"\"");
    assert_eq!(json(&ext, "DNSAnswers"), "0");
    // Not DNS on port 53: the record goes on and has nothing.
    let mut state = None;
    let junk = vec![0x41; 5];
    let v = feed(
        &mut p,
        &mut state,
        &[(udp(53, 1234, 5), junk, vec![], true)],
    );
    assert_eq!(v, [Verdict::Continue]);
    assert!(exported(&mut p, PluginKind::Dns, state.unwrap()).is_none());
    // Other ports are not looked at.
    let pkt = udp(5353, 5353, 0);
    assert!(p.attach(&view(&pkt, &[], &[], false)).is_none());
}

#[test]
fn tcp_messages_come_from_the_stream() {
    let mut p = Dns;
    let q = hex(testdata::QUERY_A);
    let r = hex(testdata::RESPONSE_3A);
    let mut qs = (q.len() as u16).to_be_bytes().to_vec();
    qs.extend_from_slice(&q);
    let mut rs = (r.len() as u16).to_be_bytes().to_vec();
    rs.extend_from_slice(&r);
    // Handshake, then the query in two segments: the record ends with its second.
    let mut state = None;
    let v = feed(
        &mut p,
        &mut state,
        &[
            (tcp(40000, 53, 9, 0x02, 0), vec![], vec![], false),
            (tcp(53, 40000, 99, 0x12, 0), vec![], vec![], true),
            (
                tcp(40000, 53, 10, 0x18, 20),
                qs[..20].to_vec(),
                qs[..20].to_vec(),
                false,
            ),
            (
                tcp(40000, 53, 30, 0x18, qs.len() - 20),
                qs[20..].to_vec(),
                qs.clone(),
                false,
            ),
        ],
    );
    assert_eq!(
        v,
        [
            Verdict::Continue,
            Verdict::Continue,
            Verdict::Continue,
            Verdict::EndAfter
        ]
    );
    let ext = exported(&mut p, PluginKind::Dns, state.unwrap()).unwrap();
    assert_eq!(json(&ext, "DNSName"), "\"kernel.org\"");
    // The response starts the next record (its stream starts with its first segment).
    let mut state = None;
    let v = feed(
        &mut p,
        &mut state,
        &[(tcp(53, 40000, 100, 0x18, rs.len()), rs.clone(), rs, false)],
    );
    assert_eq!(v, [Verdict::EndAfter]);
    let ext = exported(&mut p, PluginKind::Dns, state.unwrap()).unwrap();
    assert_eq!(json(&ext, "DNSAnswers"), "3");
    assert_eq!(json(&ext, "DNSRRTTL"), "360");
}

#[test]
fn thousands_of_damaged_real_messages_summarize_without_panic() {
    let damaged = testdata::mutations(&testdata::all(), 400);
    let mut read = 0;
    for (i, m) in damaged.iter().enumerate() {
        if let Some(s) = summarize(m, i % 2 == 0) {
            read += 1;
            assert!(s.rdata.len() <= MAX_RDATA_TEXT);
            assert!(s.name.len() <= 4 * 255);
        }
    }
    assert!(read > 1_000, "{read}");
}

#[test]
fn a_fragmented_response_is_read_from_its_first_fragment_and_ends_with_its_last() {
    use crate::plugins::testdata::fragment;
    let mut p = Dns;
    let r = hex(testdata::RESPONSE_MX);
    let mut state = None;
    let first = fragment(udp(53, 40000, 2000), 7, 0, true);
    let mut later = fragment(udp(53, 40000, 0), 7, 80, false);
    later.has_l4 = false;
    let v = feed(
        &mut p,
        &mut state,
        &[
            (first, r[..80].to_vec(), vec![], false),
            (later, vec![], vec![], false),
        ],
    );
    assert_eq!(v, [Verdict::Continue, Verdict::EndAfter]);
    let ext = exported(&mut p, PluginKind::Dns, state.unwrap()).unwrap();
    assert_eq!(json(&ext, "DNSAnswers"), "5");
    assert_eq!(json(&ext, "DNSRData"), "\"20 alt1.aspmx.l.google.com\"");
}
